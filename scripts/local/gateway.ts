import { readFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { repoRoot } from '../lib/paths.ts';

// The local stand-in for Supabase's API gateway in front of the Edge Runtime: requests to
// /functions/v1/<name>/<rest> reach function <name> with the path /<name>/<rest>, as they do
// on a hosted project. It also serves the dashboard's static files at /dashboard.

// A Map, not an object: `constructor` or `__proto__` must not read as a file of its own.
const DASHBOARD_FILES = new Map([
  ['', 'text/html; charset=utf-8'],
  ['index.html', 'text/html; charset=utf-8'],
  ['app.js', 'text/javascript; charset=utf-8'],
  ['style.css', 'text/css; charset=utf-8'],
]);

async function serveDashboard(res: http.ServerResponse, file: string) {
  const type = DASHBOARD_FILES.get(file);
  if (type === undefined) return reply(res, 404, `no dashboard file ${file}`);
  const body = await readFile(path.join(repoRoot, 'dashboard', file || 'index.html'));
  res.writeHead(200, { 'content-type': type, 'cache-control': 'no-cache' });
  res.end(body);
}

export interface GatewayOptions {
  port: number;
  host?: string;
  /** Where each function listens; looked up per request, so restarts can move a function. */
  functionPort: (name: string) => number | undefined;
}

const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });
const HOP_BY_HOP = ['connection', 'keep-alive', 'transfer-encoding', 'upgrade', 'proxy-connection'];

export function startGateway(options: GatewayOptions): Promise<http.Server> {
  const server = http.createServer((req, res) => {
    // One request can never take the gateway down: a throw becomes a 500 for that request.
    try {
      route(options, req, res);
    } catch (err) {
      if (!res.headersSent) reply(res, 500, `gateway: ${(err as Error).message}`);
      else res.destroy(err as Error);
    }
  });
  server.keepAliveTimeout = 65_000;
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host ?? '127.0.0.1', () => {
      server.off('error', reject);
      resolve(server);
    });
  });
}

function route(options: GatewayOptions, req: http.IncomingMessage, res: http.ServerResponse) {
  let url: URL;
  try {
    // `GET // HTTP/1.1` is a valid request line but no URL: '//' reads as a host-less authority.
    url = new URL(req.url ?? '/', 'http://gateway');
  } catch {
    return reply(res, 400, `invalid request target ${JSON.stringify(req.url)}`);
  }
  if (url.pathname === '/dashboard') {
    res.writeHead(301, { location: '/dashboard/' });
    return res.end();
  }
  const dashboard = /^\/dashboard\/(.*)$/.exec(url.pathname);
  if (dashboard && req.method === 'GET') {
    return void serveDashboard(res, dashboard[1]!).catch((err) => {
      // Logged here; the answer names no path on disk.
      console.error(`dashboard: ${(err as Error).message}`);
      reply(res, 500, 'dashboard: the file could not be read');
    });
  }
  const match = /^\/functions\/v1\/([a-z0-9][a-z0-9_-]*)(\/.*)?$/.exec(url.pathname);
  if (!match) {
    return reply(
      res,
      404,
      `no route for ${url.pathname}; functions live under /functions/v1/<name>`,
    );
  }
  const [, name, rest = ''] = match;
  const port = options.functionPort(name!);
  if (port === undefined) return reply(res, 404, `function ${name} is not served here`);
  const headers = { ...req.headers };
  for (const h of HOP_BY_HOP) delete headers[h];
  const upstream = http.request(
    {
      host: '127.0.0.1',
      port,
      method: req.method,
      path: `/${name}${rest}${url.search}`,
      headers,
      agent,
    },
    (up) => {
      const out: http.OutgoingHttpHeaders = { ...up.headers };
      for (const h of HOP_BY_HOP) delete out[h];
      // Answered before the request was all sent (a 413 for a body too large): neither
      // connection can carry another request, since the rest of this body is still on its way.
      const early = !req.complete;
      if (early) {
        out.connection = 'close';
        up.once('end', () => {
          req.unpipe(upstream);
          upstream.destroy();
          req.resume();
        });
      }
      res.writeHead(up.statusCode ?? 502, out);
      // A function that dies mid-answer cuts this answer short, and only this one.
      up.on('error', (err) => res.destroy(err));
      up.pipe(res);
    },
  );
  upstream.on('error', (err) => {
    if (!res.headersSent) reply(res, 502, `function ${name} did not answer: ${err.message}`);
    else res.destroy(err);
  });
  // A client that goes away mid-request: drop the upstream call too.
  req.on('error', () => upstream.destroy());
  req.pipe(upstream);
}

function reply(res: http.ServerResponse, status: number, message: string) {
  const body = JSON.stringify({ error: { message } });
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(body),
  });
  res.end(body);
}

export function serverPort(server: http.Server): number {
  return (server.address() as AddressInfo).port;
}
