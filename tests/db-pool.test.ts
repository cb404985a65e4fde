import { Hono } from 'hono';
import net from 'node:net';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createSql, isPooled, type Sql } from '../packages/shared/src/db.ts';
import { onError } from '../packages/shared/src/http/errors.ts';
import { startPooler, stopPooler } from '../scripts/lib/pgbouncer.ts';
import { freePort } from '../scripts/local/functions.ts';
import { databaseUrl, poolerUrl, testSql } from './helpers/db.ts';

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

describe("createSql's transactions on a pooled URL when the connection goes away", () => {
  // postgres.js 3.4.9 writes a ROLLBACK for a closed reserved connection onto its nulled socket
  // (an uncaught TypeError, and the ROLLBACK never settles), and a release() of it hands the
  // closed connection to the next query, which hangs the same way: a sync call hung for good
  // when the primary stopped in the middle of a bulk load.
  it('fails the transaction at once, and the next query of the pool (one connection) answers', async () => {
    const port = await freePort();
    const sql = createSql(onPort(port), {
      applicationName: 'cesar-edge/pool-test/tx-lost',
      max: 1,
      pooled: true,
    });
    const db = forwarder(port);
    await db.open();
    try {
      const cases: Record<string, (tx: Sql) => Promise<unknown>> = {
        'a statement in flight': async (tx) => await tx`select pg_sleep(10)`,
        'a COPY TO STDOUT streaming': async (tx) => {
          const source =
            await tx`copy (select i, repeat('x', 200) from generate_series(1, 5000000) i)
                                  to stdout`.readable();
          await new Promise((resolve, reject) => {
            source.on('data', () => {});
            source.on('end', resolve);
            source.on('error', reject);
          });
        },
      };
      for (const [what, work] of Object.entries(cases)) {
        const started = performance.now();
        const failed = attempt(() => sql.begin((tx) => work(tx as unknown as Sql)));
        await new Promise((r) => setTimeout(r, 300));
        await db.close();
        const outcome = await failed;
        expect(outcome, what).toMatchObject({ ok: false, code: 'CONNECTION_CLOSED' });
        expect(performance.now() - started, what).toBeLessThan(3_000);
        await db.open();
        const next = await attempt(() =>
          Promise.race([
            sql`select 1`,
            new Promise((_, reject) => setTimeout(() => reject(new Error('hung')), 5_000)),
          ])
        );
        expect(next, what).toMatchObject({ ok: true });
        // A transaction runs on the connection made afresh, and releases it.
        expect(await sql.begin((tx) => tx`select 2 as two`), what).toEqual([{ two: 2 }]);
      }
    } finally {
      await sql.end({ timeout: 1 });
      await db.close();
    }
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

describe('isPooled', () => {
  it("is CESAR_DB_URL by contract, and a URL on Supavisor's port 6543 whatever its name", () => {
    const direct = 'postgresql://postgres:pw@db.ref.supabase.co:5432/postgres';
    expect(isPooled(direct)).toBe(false);
    expect(isPooled(direct, true)).toBe(true);
    expect(isPooled('postgres://u.ref:pw@aws-0-eu.pooler.supabase.com:6543/postgres')).toBe(true);
    expect(isPooled('postgres://u:pw@host:6543')).toBe(true);
    expect(isPooled('postgres://u:pw@host:65432/postgres')).toBe(false);
    expect(isPooled('postgres://u:pw@host:5432/db6543')).toBe(false);
  });
});

// PgBouncer 1.18 in transaction mode (the test run's pooler, as `npm start` runs it) lends a
// server connection for one transaction: a statement prepared on one is unknown on the next.
describe('createSql through the transaction pooler', () => {
  const direct = testSql(undefined, 2);

  /**
   * A client runs a query, another client's transaction holds that server connection, and the
   * first runs the query again in a transaction of its own, which gets another server
   * connection. Outside a transaction postgres.js re-prepares a statement the server does not
   * know (it retries once); inside one the error has already aborted the transaction.
   */
  async function preparedAcrossServers(pooled: boolean) {
    const name = `cesar-edge/pool-test/${pooled ? 'pooled' : 'prepared'}`;
    const client = createSql(poolerUrl(), { applicationName: name, max: 1, pooled });
    const holder = createSql(poolerUrl(), { applicationName: `${name}-holder`, max: 1, pooled });
    const query = (sql: Sql, n: number) =>
      sql`select ${n}::int as n, current_setting('application_name') as a`;
    try {
      const [first] = await query(client, 1);
      let release!: () => void;
      const released = new Promise<void>((r) => (release = r));
      let held!: () => void;
      const holding = new Promise<void>((r) => (held = r));
      // The holder's transaction takes the idle server connection the client just used.
      const hold = holder.begin(async (tx) => {
        await tx`select 1`;
        held();
        await released;
      });
      await holding;
      const again = await attempt(() =>
        client.begin((tx) => query(tx as unknown as Sql, 2)) as Promise<unknown>
      );
      release();
      await hold;
      return { first, again };
    } finally {
      await client.end({ timeout: 1 });
      await holder.end({ timeout: 1 });
    }
  }

  it('keeps no prepared statements on a pooled URL, which a direct pool would lose', async () => {
    const lost = await preparedAcrossServers(false);
    // The statement prepared on the first server connection is unknown on the second (26000),
    // and postgres.js's retry then meets the aborted transaction (25P02).
    expect(lost.again).toMatchObject({ ok: false, code: expect.stringMatching(/^(26000|25P02)$/) });
    const pooled = await preparedAcrossServers(true);
    // PgBouncer sets each client's application_name on the server connection it lends.
    expect(pooled.first).toEqual({ n: 1, a: 'cesar-edge/pool-test/pooled' });
    expect(pooled.again).toMatchObject({ ok: true });
  });

  it('runs transactions, and leaves no session state behind on the server', async () => {
    const sql = createSql(poolerUrl(), {
      applicationName: 'cesar-edge/pool-test/tx',
      max: 4,
      pooled: true,
    });
    try {
      const results = await Promise.all(
        Array.from({ length: 12 }, (_, i) =>
          sql.begin(async (tx) => {
            // Transaction-scoped, as every setting and advisory lock of the project is.
            await tx`select set_config('cesar.origin', ${`t${i}`}, true)`;
            await tx`select pg_advisory_xact_lock(hashtext('cesar-pool-test'))`;
            const [row] = await tx`select current_setting('cesar.origin') as origin`;
            return row!.origin as string;
          })),
      );
      expect(results).toEqual(Array.from({ length: 12 }, (_, i) => `t${i}`));
      const [after] = await sql`select current_setting('cesar.origin', true) as origin`;
      expect(after!.origin ?? '').toBe('');
      // Fewer server connections than client transactions: the pooler shared them.
      const [servers] = await direct`select count(*)::int as n from pg_stat_activity
        where application_name = 'cesar-edge/pool-test/tx'`;
      expect(servers!.n).toBeGreaterThan(0);
      expect(servers!.n).toBeLessThanOrEqual(4);
    } finally {
      await sql.end({ timeout: 1 });
    }
  });

  it('answers every query when more run at once than it has connections, transactions among them', async () => {
    // postgres.js pipelines the queries it has no free connection for; behind the pooler the
    // replies of those were lost and their callers waited for good (max_pipeline in db.ts).
    const sql = createSql(poolerUrl(), {
      applicationName: 'cesar-edge/pool-test/busy',
      max: 2,
      pooled: true,
    });
    try {
      const work = Array.from({ length: 40 }, (_, i) =>
        i % 4 === 0
          ? sql.begin(async (tx) => {
            const [row] = await tx`select ${i}::int as n`;
            return row!.n as number;
          })
          : i % 2 === 0
          ? sql`select pg_sleep(0.01), ${i}::int as n`.then(([row]) => row!.n as number)
          : sql`select 1 as one`.then(() => i));
      const settled = await Promise.race([
        Promise.all(work),
        new Promise<'hung'>((resolve) => setTimeout(() => resolve('hung'), 10_000)),
      ]);
      expect(settled).toEqual(Array.from({ length: 40 }, (_, i) => i));
    } finally {
      await sql.end({ timeout: 1 });
    }
  });

  it('answers fast with a connection error the functions recognise when the database is away', async () => {
    // A second PgBouncer whose server port has nobody listening.
    const dir = await mkdtemp(path.join(tmpdir(), 'cesar-pooler-'));
    await chmod(dir, 0o755);
    const spec = {
      name: 'away pooler',
      dir: path.join(dir, 'pooler'),
      port: await freePort(),
      serverPort: await freePort(),
      defaultPoolSize: 2,
      maxClientConn: 20,
    };
    await startPooler(spec, databaseUrl());
    const url = new URL(poolerUrl());
    url.port = String(spec.port);
    const away = createSql(url.toString(), {
      applicationName: 'cesar-edge/pool-test/away',
      max: 2,
      pooled: true,
    });
    const app = new Hono();
    app.onError(onError);
    app.get('/away', async (c) => c.json(await away`select 1`));
    const quiet = vi.spyOn(console, 'error').mockImplementation(() => {});
    try {
      // PgBouncer 1.18 keeps a client queued while it cannot reach the server (a refused
      // connect does not count as a failed login, which would refuse new clients at once),
      // until query_wait_timeout: 5 s in this project's configuration, 120 s by default. A new
      // client is not even welcomed before that (PgBouncer waits for a server's parameters),
      // so postgres.js's connect_timeout (5 s) may end it first.
      const calls = await Promise.all(Array.from({ length: 2 }, async () => {
        const started = performance.now();
        const res = await app.request('/away');
        return { res, ms: performance.now() - started, body: await res.json() };
      }));
      for (const { res, ms, body } of calls) {
        expect(res.status).toBe(503);
        expect(body.error.message).toMatch(/^database unavailable \((08P01|CONNECT)/);
        expect(ms).toBeLessThan(6_500);
      }
    } finally {
      quiet.mockRestore();
      await away.end({ timeout: 1 });
      await stopPooler(spec);
      await rm(dir, { recursive: true, force: true });
    }
  });
});
