import { readFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { Agent, type Dispatcher } from 'undici';
import { WORKER_LIMIT_BODY, WORKER_LIMIT_STATUS } from '../../packages/shared/src/limits.ts';
import { repoRoot } from '../lib/paths.ts';
import type { FunctionHost, Lease } from './functions.ts';
import { checkVerifyJwt, type GatewayAuth, loadGatewayAuth } from './gateway-auth.ts';

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
  /**
   * verify_jwt per function and the keys the check accepts (gateway-auth.ts). Absent: read at
   * start from supabase/config.toml and the environment (SUPABASE_JWT_SECRET, the key sets).
   */
  auth?: GatewayAuth;
  /**
   * The runtime's functions (functions.ts): each request holds an isolate, so the hosted
   * limits can be enforced. Absent: plain forwarding to functionPort, no limits.
   */
  functions?: Pick<FunctionHost, 'has' | 'acquire' | 'limits'>;
  /** The request idle timeout; the functions' limits' by default (none without them). */
  idleTimeoutMs?: number;
}

// The function side with undici's pools (keep-alive, one per isolate's port): a third less of
// the gateway's CPU per request than node:http's client, measured under autocannon. Its own
// timeouts are off: the idle timeout is the gateway's (touch(), below).
const upstreamAgent = new Agent({ connections: 256, headersTimeout: 0, bodyTimeout: 0 });
// Hop-by-hop, and `expect`: node:http answers a client's 100-continue itself.
const HOP_BY_HOP = [
  'connection',
  'keep-alive',
  'transfer-encoding',
  'upgrade',
  'proxy-connection',
  'expect',
];

export function startGateway(settings: GatewayOptions): Promise<http.Server> {
  const options = { ...settings, auth: settings.auth ?? loadGatewayAuth() };
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

function route(
  options: GatewayOptions & { auth: GatewayAuth },
  req: http.IncomingMessage,
  res: http.ServerResponse,
) {
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
  const served = options.functions?.has(name!) ?? options.functionPort(name!) !== undefined;
  if (!served) return reply(res, 404, `function ${name} is not served here`);
  // Before the function sees the request, as hosted's platform check does: a refusal costs the
  // function nothing.
  const refusal = checkVerifyJwt(name!, req.method, req.headers, options.auth);
  if (refusal) {
    const body = JSON.stringify({ code: refusal.status, message: refusal.message });
    res.writeHead(refusal.status, {
      'content-type': 'application/json',
      'content-length': Buffer.byteLength(body),
      'sb-error-code': refusal.code,
    });
    return res.end(body);
  }
  proxy(options, req, res, name!, `/${name}${rest}${url.search}`).catch((err) => {
    if (!res.headersSent) reply(res, 500, `gateway: ${(err as Error).message}`);
    else res.destroy(err as Error);
  });
}

/**
 * Forwards one request to the function, under the hosted limits when the runtime enforces
 * them: an isolate stopped for a limit while this request is in flight answers 546 with
 * hosted's body (functions.ts decides, limits-monitor.ts measures); a function that sends
 * nothing for the idle timeout gets a 504, or its answer cut if it had started one.
 */
async function proxy(
  options: GatewayOptions,
  req: http.IncomingMessage,
  res: http.ServerResponse,
  name: string,
  target: string,
) {
  let lease: Lease | undefined;
  let port: number | undefined;
  if (options.functions) {
    try {
      lease = await options.functions.acquire(name);
    } catch (err) {
      return reply(res, 503, `function ${name} did not start: ${(err as Error).message}`);
    }
    port = lease?.port;
  } else {
    port = options.functionPort(name);
  }
  if (port === undefined) return reply(res, 404, `function ${name} is not served here`);
  if (res.destroyed) return lease?.release();
  // The request holds its isolate until the function has answered, whether or not the client
  // still listens: a handler goes on after its caller hung up, on hosted as here, and a
  // retired isolate must not be ended under it (nor its CPU go uncounted).
  const release = () => lease?.release();
  // Aborted by the gateway itself (the idle timeout, a limit stop, the client gone mid-body):
  // the answer is given (or the connection cut) where it is aborted.
  const upstream = new AbortController();
  let answer: Dispatcher.ResponseData | undefined;

  const headers: Record<string, string | string[] | undefined> = { ...req.headers };
  for (const h of HOP_BY_HOP) delete headers[h];
  let idle: NodeJS.Timeout | undefined;
  const idleMs = options.idleTimeoutMs ?? options.functions?.limits?.idleTimeoutMs;
  const touch = () => {
    if (idleMs === undefined) return;
    clearTimeout(idle);
    idle = setTimeout(() => {
      upstream.abort();
      // Hosted's gateway: a 504 before any answer; an answer already under way is cut.
      if (!res.headersSent) {
        reply(
          res,
          504,
          `function ${name} sent nothing for ${idleMs / 1000} s (request idle timeout)`,
        );
      } else res.destroy();
    }, idleMs);
  };
  touch();
  if (lease) {
    lease.onStop = () => {
      clearTimeout(idle);
      upstream.abort();
      if (!res.headersSent) replyWorkerLimit(res);
      else res.destroy();
    };
  }
  res.on('close', () => {
    clearTimeout(idle);
    if (res.writableFinished) return;
    // The client went away. Its request all sent: the function finishes it, and what it
    // answers is read and dropped. Sent in part: the function cannot finish it; drop it.
    if (req.complete) answer?.body.unpipe(res).resume();
    else upstream.abort();
  });
  // A client that goes away mid-request: drop the upstream call too. (One that goes away
  // after sending it all is the 'close' above: the function finishes it.)
  req.on('error', () => {
    if (!req.complete) upstream.abort();
  });
  const hasBody = req.headers['transfer-encoding'] !== undefined ||
    (req.headers['content-length'] !== undefined && req.headers['content-length'] !== '0');
  // The body through a stream of its own: undici destroys the body it was given when the
  // answer comes before all of it was sent, and the client's socket must outlive that (the
  // early answer, below). A request with no body is read to its end at once.
  const body = hasBody ? req.pipe(new PassThrough()) : null;
  if (!hasBody) req.resume();
  try {
    answer = await upstreamAgent.request({
      origin: `http://127.0.0.1:${port}`,
      path: target,
      method: req.method as Dispatcher.HttpMethod,
      headers,
      body,
      signal: upstream.signal,
    });
  } catch (err) {
    release();
    if (upstream.signal.aborted || res.headersSent || res.destroyed) {
      return void res.destroy(err as Error);
    }
    // The isolate's process died: if a limit killed it (V8's heap cap, say), hosted's 546;
    // the exit is known within moments of the socket closing.
    const reason = lease
      ? await Promise.race([lease.gone, new Promise<null>((r) => setTimeout(() => r(null), 500))])
      : null;
    if (res.headersSent || res.destroyed) return;
    clearTimeout(idle);
    if (reason) replyWorkerLimit(res);
    else reply(res, 502, `function ${name} did not answer: ${(err as Error).message}`);
    return;
  }
  const answerBody = answer.body;
  answerBody.once('close', release);
  if (res.destroyed) return void answerBody.resume();
  touch();
  const out: http.OutgoingHttpHeaders = { ...answer.headers };
  for (const h of HOP_BY_HOP) delete out[h];
  // Answered before the request was all sent (a 413 for a body too large): neither
  // connection can carry another request, since the rest of this body is still on its way;
  // the rest is read and dropped, and the client gets the answer before the connection ends.
  if (!req.complete) {
    out.connection = 'close';
    answerBody.once('end', () => {
      if (body) req.unpipe(body);
      upstream.abort();
      req.resume();
    });
  }
  res.writeHead(answer.statusCode, out);
  // A function that dies mid-answer cuts this answer short, and only this one.
  answerBody.on('error', (err) => res.destroy(err));
  answerBody.on('data', touch);
  // A client that reads slowly holds the function back; that is not the function's silence.
  res.on('drain', touch);
  answerBody.pipe(res);
}

function replyWorkerLimit(res: http.ServerResponse) {
  const body = JSON.stringify(WORKER_LIMIT_BODY);
  res.writeHead(WORKER_LIMIT_STATUS, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(body),
  });
  res.end(body);
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
