import http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { repoRoot } from '../scripts/lib/paths.ts';
import { serverPort, startGateway } from '../scripts/local/gateway.ts';

let upstream: http.Server;
let gateway: http.Server;
let base: string;

beforeAll(async () => {
  upstream = http.createServer((req, res) => {
    let body = '';
    req.on('data', (d) => (body += d));
    req.on('end', () => {
      res.writeHead(201, { 'content-type': 'application/json', 'x-upstream': '1' });
      res.end(
        JSON.stringify({ method: req.method, url: req.url, auth: req.headers.authorization, body }),
      );
    });
  });
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', () => r()));
  const upstreamPort = serverPort(upstream);
  gateway = await startGateway({
    port: 0,
    functionPort: (name) => (name === 'api' ? upstreamPort : undefined),
  });
  base = `http://127.0.0.1:${serverPort(gateway)}`;
});

afterAll(() => {
  gateway.closeAllConnections();
  gateway.close();
  upstream.closeAllConnections();
  upstream.close();
});

describe('local functions gateway', () => {
  it('routes /functions/v1/<name>/<rest> to the function as /<name>/<rest>, body and headers intact', async () => {
    const res = await fetch(`${base}/functions/v1/api/jobs/retry?x=1`, {
      method: 'POST',
      headers: { authorization: 'Bearer t' },
      body: '{"ids":[1]}',
    });
    expect(res.status).toBe(201);
    expect(res.headers.get('x-upstream')).toBe('1');
    expect(await res.json()).toEqual({
      method: 'POST',
      url: '/api/jobs/retry?x=1',
      auth: 'Bearer t',
      body: '{"ids":[1]}',
    });
  });

  it('answers 404 in the error shape for unknown functions and paths', async () => {
    for (const path of ['/functions/v1/nope/health', '/elsewhere']) {
      const res = await fetch(base + path);
      expect(res.status).toBe(404);
      expect((await res.json()).error.message).toMatch(/not served here|no route/);
    }
  });

  it("serves the dashboard's files and answers 404 for any other name, prototype names included", async () => {
    expect((await fetch(`${base}/dashboard/app.js`)).status).toBe(200);
    for (
      const name of ['constructor', '__proto__', 'toString', 'hasOwnProperty', '..%2Fpackage.json']
    ) {
      const res = await fetch(`${base}/dashboard/${name}`);
      expect(res.status, name).toBe(404);
      const text = await res.text();
      expect(text, name).not.toContain(repoRoot);
      expect(JSON.parse(text).error.message).toMatch(/no dashboard file/);
    }
  });
});
