import { Hono } from 'hono';
import net from 'node:net';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { createSql } from '../packages/shared/src/db.ts';
import { onError } from '../packages/shared/src/http/errors.ts';
import { freePort } from '../scripts/local/functions.ts';
import { databaseUrl } from './helpers/db.ts';

// The project's own pool (createSql, used by every function) against a port that first
// refuses connections, then forwards to the test database, then drops and refuses again:
// postgres.js 3.4 with a socket factory that rejected left one connection "connecting" for
// good per refusal, and after `max` of them every query hung.

/** A TCP forwarder to the test database on `port`, that can be opened and closed. */
function forwarder(port: number) {
  const target = new URL(databaseUrl());
  let server: net.Server | null = null;
  const sockets = new Set<net.Socket>();
  return {
    open: () =>
      new Promise<void>((resolve, reject) => {
        server = net.createServer((client) => {
          const upstream = net.connect(Number(target.port), target.hostname);
          for (const s of [client, upstream]) {
            sockets.add(s);
            s.on('error', () => {});
            s.on('close', () => sockets.delete(s));
          }
          client.pipe(upstream).pipe(client);
        });
        server.once('error', reject);
        server.listen(port, '127.0.0.1', () => resolve());
      }),
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        if (!server) return resolve();
        server.close(() => resolve());
        server = null;
      }),
  };
}

/** The test database's URL with another port: nothing listens there until a forwarder does. */
function onPort(port: number): string {
  const url = new URL(databaseUrl());
  url.port = String(port);
  return url.toString();
}

/** How a query ended, and after how long. */
async function attempt(query: () => Promise<unknown>) {
  const started = performance.now();
  try {
    await query();
    return { ok: true, code: null, ms: performance.now() - started };
  } catch (err) {
    return { ok: false, code: (err as { code?: string }).code, ms: performance.now() - started };
  }
}

describe('createSql', () => {
  it('fails fast while the database refuses, and works on the next query once it answers', async () => {
    const port = await freePort();
    const sql = createSql(onPort(port), { applicationName: 'cesar-edge/pool-test', max: 3 });
    const db = forwarder(port);
    afterAll(async () => {
      await sql.end({ timeout: 1 });
      await db.close();
    });

    // More refusals than the pool has connections, one after another and all at once.
    const sequential = [];
    for (let i = 0; i < 8; i++) sequential.push(await attempt(() => sql`select 1`));
    const parallel = await Promise.all(
      Array.from({ length: 6 }, () => attempt(() => sql`select 1`)),
    );
    for (const result of [...sequential, ...parallel]) {
      expect(result.ok).toBe(false);
      expect(result.code).toBe('ECONNREFUSED');
      // At most the reconnect delay (1 s) and the refusal itself: never the connect timeout.
      expect(result.ms).toBeLessThan(2_000);
    }

    await db.open();
    const back = await attempt(() => sql`select 1 as one`);
    expect(back).toMatchObject({ ok: true });
    expect(back.ms).toBeLessThan(2_000);
    // Every connection of the pool works again, not just one: six queries at once open all
    // three, each of them answers, and all three are connected afterwards.
    const answers = await Promise.all(
      Array.from({ length: 6 }, () => sql`select pg_sleep(0.05), 1 as one`),
    );
    expect(answers.map((rows) => rows[0]!.one)).toEqual([1, 1, 1, 1, 1, 1]);
    const [connected] = await sql`select count(*)::int as n from pg_stat_activity
                                  where application_name = 'cesar-edge/pool-test'`;
    expect(connected!.n).toBe(3);

    // The database goes away under open connections, then comes back.
    await db.close();
    const dropped = await Promise.all(
      Array.from({ length: 6 }, () => attempt(() => sql`select 1`)),
    );
    for (const result of dropped) {
      expect(result.ok).toBe(false);
      expect(result.ms).toBeLessThan(2_000);
    }
    await db.open();
    expect(await attempt(() => sql`select 1`)).toMatchObject({ ok: true });
  });
});

describe('a function app whose database is away', () => {
  it('answers 503 with the reason, not a 500, and a bug is still a 500', async () => {
    const away = createSql(onPort(await freePort()), {
      applicationName: 'cesar-edge/pool-test',
      max: 2,
    });
    const here = createSql(databaseUrl(), { applicationName: 'cesar-edge/pool-test', max: 1 });
    afterAll(async () => {
      await away.end({ timeout: 1 });
      await here.end({ timeout: 1 });
    });
    const app = new Hono();
    app.onError(onError);
    app.get('/away', async (c) => c.json(await away`select 1`));
    app.get('/bug', async (c) => c.json(await here`select 1 / 0`));
    const quiet = vi.spyOn(console, 'error').mockImplementation(() => {});

    const res = await app.request('/away');
    expect(res.status).toBe(503);
    expect(res.headers.get('retry-after')).toBe('1');
    expect(await res.json()).toEqual({
      error: { message: 'database unavailable (ECONNREFUSED), try again' },
    });
    const bug = await app.request('/bug');
    expect(bug.status).toBe(500);
    expect(await bug.json()).toEqual({ error: { message: 'internal error' } });
    quiet.mockRestore();
  });
});
