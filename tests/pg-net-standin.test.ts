import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../scripts/local/functions.ts';
import { type PgNetWorker, startPgNetWorker } from '../scripts/local/pg-net-worker.ts';
import { databaseUrl, testSql, withRollback } from './helpers/db.ts';

const sql = testSql();
const received: Array<
  { method: string; url: string; headers: http.IncomingHttpHeaders; body: string }
> = [];
let server: http.Server;
let base: string;
let worker: PgNetWorker;

beforeAll(async () => {
  server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (d) => (body += d));
    req.on('end', () => {
      received.push({ method: req.method!, url: req.url!, headers: req.headers, body });
      if (req.url?.startsWith('/slow')) return setTimeout(() => res.end('late'), 2000);
      res.writeHead(req.url?.startsWith('/teapot') ? 418 : 200, {
        'content-type': 'application/json',
      });
      res.end(JSON.stringify({ echoed: body }));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  worker = await startPgNetWorker({ databaseUrl: databaseUrl(), pollIntervalMs: 200 });
});

afterAll(async () => {
  await worker.stop();
  server.closeAllConnections();
  server.close();
});

async function responseFor(id: string, timeoutMs = 10_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const [row] = await sql`select * from net._http_response where id = ${id}`;
    if (row) return row;
    if (Date.now() > deadline) throw new Error(`no response for request ${id}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

describe('pg_net stand-in', () => {
  it('has the signatures Supabase Database Webhooks call positionally', async () => {
    // supabase_functions.http_request calls net.http_post(url, body, params, headers, timeout).
    const [{ id }] = await sql`
      select net.http_post(${`${base}/hook`}, '{"type":"INSERT"}'::jsonb, '{"a":"1 2"}'::jsonb,
                           '{"Content-Type":"application/json","X-Test":"yes"}'::jsonb, 1000) as id
    ` as unknown as [{ id: string }];
    const response = await responseFor(id);
    expect(response).toMatchObject({
      status_code: 200,
      timed_out: false,
      error_msg: null,
      content_type: 'application/json',
    });
    expect(JSON.parse(response.content)).toEqual({ echoed: '{"type": "INSERT"}' });
    const request = received.find((r) => r.url.startsWith('/hook'))!;
    expect(request).toMatchObject({ method: 'POST', url: '/hook?a=1%202' });
    expect(request.headers['x-test']).toBe('yes');
  });

  it('lets any role queue a request, as pg_net 0.12 and later grant it on Supabase', async () => {
    // Security invoker functions, EXECUTE and the queue's table privileges for PUBLIC: anon,
    // authenticated and service_role call it directly. Content-Type is added when missing.
    for (const role of ['anon', 'authenticated', 'service_role']) {
      const [request] = await withRollback(sql, async (tx) => {
        await tx.unsafe(`set local role ${role}`);
        const [{ id }] = await tx`
          select net.http_post(${`${base}/as-${role}`}, '{}'::jsonb, headers => '{"X-Role":"r"}') as id
        ` as unknown as [{ id: string }];
        return await tx`select headers from net.http_request_queue where id = ${id}`;
      });
      expect(request!.headers, role).toEqual({ 'X-Role': 'r', 'Content-Type': 'application/json' });
    }
    await expect(
      sql`select net.http_post(${base}, '{}'::jsonb, headers => '{"content-type":"text/plain"}')`,
    ).rejects.toThrow('Content-Type header must be "application/json"');
  });

  it('performs GET and DELETE and records non-2xx statuses', async () => {
    const [{ get, del }] = await sql`
      select net.http_get(${`${base}/teapot`}) as get, net.http_delete(${`${base}/thing`}, '{"id":"7"}') as del
    ` as unknown as [{ get: string; del: string }];
    expect((await responseFor(get)).status_code).toBe(418);
    expect((await responseFor(del)).status_code).toBe(200);
    expect(received.some((r) => r.method === 'DELETE' && r.url === '/thing?id=7')).toBe(true);
  });

  it('sends nothing for a rolled-back transaction, as pg_net does', async () => {
    const marker = `/rolled-back-${Date.now()}`;
    await sql.begin(async (tx) => {
      await tx`select net.http_get(${base + marker})`;
      throw new Error('roll back');
    }).catch(() => {});
    await new Promise((r) => setTimeout(r, 600));
    expect(received.some((r) => r.url === marker)).toBe(false);
  });

  it('records a timeout and a connection error', async () => {
    const closedPort = await freePort();
    const [{ slow, refused }] = await sql`
      select net.http_get(${`${base}/slow`}, timeout_milliseconds => 100) as slow,
             net.http_get(${`http://127.0.0.1:${closedPort}/nothing`}) as refused
    ` as unknown as [{ slow: string; refused: string }];
    expect(await responseFor(slow)).toMatchObject({
      status_code: null,
      timed_out: true,
      error_msg: 'Timeout of 100 ms reached',
    });
    expect(await responseFor(refused)).toMatchObject({
      status_code: null,
      timed_out: false,
      error_msg: expect.stringMatching(/ECONNREFUSED/),
    });
  });

  it('starts a committed request within milliseconds, woken by NOTIFY rather than the poll', async () => {
    const [{ id }] = await sql`select net.http_get(${`${base}/fast`}) as id` as unknown as [
      { id: string },
    ];
    const started = Date.now();
    await responseFor(id);
    // The poll interval is 200 ms here; NOTIFY makes it far quicker. Generous bound for noisy CI.
    expect(Date.now() - started).toBeLessThan(2000);
  });
});
