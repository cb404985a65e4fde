import { chmod, mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readEnvFile, writeEnvFile } from '../scripts/lib/env-file.ts';
import { repoRoot } from '../scripts/lib/paths.ts';
import { pgbouncerShow } from '../scripts/lib/pgbouncer.ts';
import { run } from '../scripts/lib/run.ts';
import { startTempStack, type TempStack } from '../scripts/lib/temp-stack.ts';
import { freePort } from '../scripts/local/functions.ts';
import { signJwt, verifyJwt } from '../scripts/local/jwt.ts';
import { functionInstances } from './helpers/stack.ts';

// `npm start` / `npm stop` end to end, on free ports and in a temporary folder, so it
// neither needs nor disturbs a stack the developer runs on the default ports.

let stack: TempStack;
let env: NodeJS.ProcessEnv;
let settings: Record<string, string>;

async function portOpen(port: number): Promise<boolean> {
  return await fetch(`http://127.0.0.1:${port}/`, { signal: AbortSignal.timeout(1000) }).then(
    () => true,
    () => false,
  );
}

/** Does anything accept TCP connections on the port (PgBouncer does not speak HTTP)? */
function tcpOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port }, () => {
      socket.end();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

beforeAll(async () => {
  stack = await startTempStack();
  env = stack.env;
  settings = stack.settings;
}, 180_000);

afterAll(() => stack.destroy(), 60_000);

describe('npm start', () => {
  it('writes the settings with production names and a generated secret', () => {
    expect(settings).toMatchObject({
      SUPABASE_URL: `http://127.0.0.1:${env.CESAR_FUNCTIONS_PORT}`,
      SUPABASE_DB_URL: expect.stringContaining(`:${env.CESAR_DB_PORT}/postgres`),
      CESAR_DB_URL: expect.stringContaining(`:${env.CESAR_POOLER_PORT}/postgres`),
      COCKROACH_DB_URL: expect.stringContaining(`:${env.CESAR_MIRROR_PORT}/defaultdb`),
      CESAR_FUNCTIONS_URL: `http://127.0.0.1:${env.CESAR_FUNCTIONS_PORT}/functions/v1`,
    });
    expect(settings.CESAR_FUNCTION_SECRET).toMatch(/^[0-9a-f]{64}$/);
  });

  it('serves the api function: 200 with database and mirror pings, 401 without the header', async () => {
    const url = `${settings.CESAR_FUNCTIONS_URL}/api/health`;
    const res = await fetch(url, {
      headers: { authorization: `Bearer ${settings.CESAR_FUNCTION_SECRET}` },
    });
    expect(res.status).toBe(200);
    const body = await res.json();
    expect(body.components.database).toMatchObject({ status: 'up', ping_ms: expect.any(Number) });
    expect(body.components.mirror).toMatchObject({ status: 'up', ping_ms: expect.any(Number) });
    expect((await fetch(url)).status).toBe(401);
  });

  it('runs the functions behind PgBouncer in transaction mode, as behind Supavisor', async () => {
    for (const fn of ['api/health', 'job-drain', 'sync/status', 'webhook']) {
      const res = await fetch(`${settings.CESAR_FUNCTIONS_URL}/${fn}`, {
        method: fn === 'job-drain' || fn === 'webhook' ? 'POST' : 'GET',
        headers: {
          authorization: `Bearer ${settings.CESAR_FUNCTION_SECRET}`,
          'content-type': 'application/json',
        },
        body: fn === 'job-drain' ? '{"budget_ms":200}' : fn === 'webhook' ? '{}' : undefined,
      });
      await res.body?.cancel();
      expect(res.status, fn).toBeLessThan(500);
    }
    const health = await fetch(`${settings.CESAR_FUNCTIONS_URL}/api/health`, {
      headers: { authorization: `Bearer ${settings.CESAR_FUNCTION_SECRET}` },
    }).then((r) => r.json());
    expect(health.components.database.pool).toMatchObject({ via: 'pooler', max: 4 });
    // Every function's pool is a client of the pooler, under its instance's name.
    const instances = await functionInstances(settings.CESAR_DB_URL!);
    for (const fn of ['api', 'job-drain', 'sync', 'webhook']) {
      expect(instances.filter((name) => name.startsWith(`cesar-edge/${fn}/`)), fn).toHaveLength(1);
    }
    const config = await pgbouncerShow<{ key: string; value: string }>(
      settings.CESAR_DB_URL!,
      'CONFIG',
    );
    const value = (key: string) => config.find((c) => c.key === key)?.value;
    expect(value('pool_mode')).toBe('transaction');
    expect(value('listen_port')).toBe(env.CESAR_POOLER_PORT);
    // supabase/config.toml [db.pooler]: the smallest hosted compute's pool and client limit.
    expect(value('default_pool_size')).toBe('15');
    expect(value('max_client_conn')).toBe('200');
    expect(await tcpOpen(Number(env.CESAR_POOLER_PORT))).toBe(true);
    const status = await stack.run('status');
    expect(status.output).toMatch(
      new RegExp(`pooler\\s+running on ${env.CESAR_POOLER_PORT} \\(PgBouncer, transaction mode\\)`),
    );
  });

  it('applies the migrations, pg_cron and the seed', async () => {
    const sql = postgres(settings.SUPABASE_DB_URL!, { max: 1 });
    try {
      const [row] = await sql`
        select (select count(*) from public.agents)::int as agents,
               (select count(*) from supabase_migrations.schema_migrations)::int as migrations,
               exists (select from pg_extension where extname = 'pg_cron') as cron`;
      expect(row).toMatchObject({ agents: 48, cron: true });
      expect(row!.migrations).toBeGreaterThanOrEqual(4);
    } finally {
      await sql.end();
    }
  });

  it('runs the pg_net worker, with URL and secret read through cesar.setting', async () => {
    const sql = postgres(settings.SUPABASE_DB_URL!, { max: 1 });
    try {
      const [{ id }] = await sql`
        select net.http_get(
          cesar.require_setting('cesar_functions_url') || '/api/health',
          headers => jsonb_build_object('Authorization', 'Bearer ' || cesar.require_setting('cesar_function_secret'))
        ) as id` as unknown as [{ id: string }];
      let response;
      for (let i = 0; i < 200 && !response; i++) {
        [response] = await sql`select status_code from net._http_response where id = ${id}`;
        if (!response) await new Promise((r) => setTimeout(r, 50));
      }
      expect(response).toEqual({ status_code: 200 });
    } finally {
      await sql.end();
    }
  });

  it('runs an enqueued job within moments: the doorbell calls job-drain through pg_net', async () => {
    const sql = postgres(settings.SUPABASE_DB_URL!, { max: 1 });
    try {
      const [{ id }] = await sql`select cesar.enqueue('system.noop') as id` as unknown as [
        { id: string },
      ];
      // Within moments (milliseconds on a quiet machine); up to 15 s for a stack just started
      // beside a whole test suite on two cores (its functions' first requests boot them).
      let status = 'pending';
      for (let i = 0; i < 600 && status !== 'completed'; i++) {
        [{ status }] =
          await sql`select status from cesar.job_queue where id = ${id}` as unknown as [
            { status: string },
          ];
        if (status !== 'completed') await new Promise((r) => setTimeout(r, 25));
      }
      expect(status).toBe('completed');
    } finally {
      await sql.end();
    }
  });

  it('schedules the queue tick and housekeeping with pg_cron', async () => {
    const sql = postgres(settings.SUPABASE_DB_URL!, { max: 1 });
    try {
      const jobs = await sql`select jobname from cron.job order by jobname`;
      expect(jobs.map((j) => j.jobname)).toEqual(
        expect.arrayContaining([
          'cesar-job-drain-tick',
          'cesar-maintenance-prune',
          'cesar-monitoring-refresh',
        ]),
      );
    } finally {
      await sql.end();
    }
  });

  it('writes the keys `supabase start` gives, and the functions take them as hosted does', async () => {
    expect(settings.SUPABASE_JWT_SECRET).toMatch(/^[0-9a-f]{64}$/);
    const roles = { SUPABASE_ANON_KEY: 'anon', SUPABASE_SERVICE_ROLE_KEY: 'service_role' };
    for (const [name, role] of Object.entries(roles)) {
      expect(verifyJwt(settings[name]!, settings.SUPABASE_JWT_SECRET!), name).toMatchObject({
        ok: true,
        claims: { iss: 'supabase-demo', role },
      });
    }
    const first = (json: string) => Object.values(JSON.parse(json))[0] as string;
    const secretKey = first(settings.SUPABASE_SECRET_KEYS!);
    const publishable = first(settings.SUPABASE_PUBLISHABLE_KEYS!);
    const now = Math.floor(Date.now() / 1000);
    const user = signJwt({ role: 'authenticated', exp: now + 600 }, settings.SUPABASE_JWT_SECRET!);
    const health = (headers: Record<string, string>) =>
      fetch(`${settings.CESAR_FUNCTIONS_URL}/api/health`, { headers }).then((r) => r.status);
    expect(await health({ apikey: secretKey })).toBe(200);
    expect(await health({ authorization: `Bearer ${settings.SUPABASE_SERVICE_ROLE_KEY}` }))
      .toBe(200);
    expect(await health({ apikey: publishable })).toBe(403);
    expect(await health({ authorization: `Bearer ${settings.SUPABASE_ANON_KEY}` })).toBe(403);
    expect(await health({ authorization: `Bearer ${user}` })).toBe(401);
  });

  it('is harmless on a running stack and does not seed twice', async () => {
    const again = await stack.run('start');
    expect(again.code, again.output).toBe(0);
    expect(again.output).toMatch(/functions\s+already running/);
    expect(again.output).not.toMatch(/seed/);
    expect((await readEnvFile(env.CESAR_ENV_FILE!)).CESAR_FUNCTION_SECRET).toBe(
      settings.CESAR_FUNCTION_SECRET,
    );
  }, 120_000);
});

describe('npm start on a taken port', () => {
  it('stops with a message naming the port instead of talking to whatever holds it', async () => {
    const server = net.createServer();
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const port = (server.address() as net.AddressInfo).port;
    const dir = await mkdtemp(path.join(tmpdir(), 'cesar-taken-'));
    await chmod(dir, 0o755);
    const env = {
      ...process.env,
      CESAR_LOCAL_DIR: path.join(dir, 'local'),
      CESAR_ENV_FILE: path.join(dir, '.env.local'),
      CESAR_FUNCTIONS_PORT: String(port),
      CESAR_DB_PORT: String(await freePort()),
      CESAR_MIRROR_PORT: String(await freePort()),
      CESAR_POOLER_PORT: String(await freePort()),
    };
    const stackCli = (command: string) =>
      run(process.execPath, ['--import', 'tsx', 'scripts/stack.ts', command], {
        cwd: repoRoot,
        env,
        allowFailure: true,
      });
    try {
      const started = await stackCli('start');
      expect(started.code).toBe(1);
      expect(started.stderr).toContain(`port ${port} is in use by another process`);
    } finally {
      await stackCli('stop');
      server.close();
      await rm(dir, { recursive: true, force: true });
    }
  }, 120_000);
});

describe('npm stop', () => {
  it('stops the functions and both databases', async () => {
    const stopped = await stack.run('stop');
    expect(stopped.code, stopped.output).toBe(0);
    expect(stopped.output).toMatch(/functions\s+stopped/);
    expect(stopped.output).toMatch(/primary\s+stopped/);
    expect(stopped.output).toMatch(/pooler\s+stopped/);
    expect(await tcpOpen(Number(env.CESAR_POOLER_PORT))).toBe(false);
    expect(stopped.output).toMatch(/mirror\s+stopped/);
    expect(await portOpen(Number(env.CESAR_FUNCTIONS_PORT))).toBe(false);
    const sql = postgres(settings.SUPABASE_DB_URL!, { max: 1, connect_timeout: 2 });
    await expect(sql`select 1`).rejects.toThrow(/ECONNREFUSED/);
    await sql.end();
  }, 60_000);
});

describe('npm start on a stack from before the JWT keys', () => {
  it('remakes the hex service_role key as a JWT and keeps the function secret', async () => {
    // The stack is stopped (above). Its .env.local as `npm start` wrote it before keys.ts.
    const old = Object.fromEntries(
      Object.entries(settings).filter(([k]) => !/JWT_SECRET|ANON_KEY|_KEYS$/.test(k)),
    );
    old.SUPABASE_SERVICE_ROLE_KEY = 'e'.repeat(64);
    await writeEnvFile(env.CESAR_ENV_FILE!, old, 'an older stack');
    const started = await stack.run('start');
    expect(started.code, started.output).toBe(0);
    const now = await readEnvFile(env.CESAR_ENV_FILE!);
    expect(now.CESAR_FUNCTION_SECRET).toBe(settings.CESAR_FUNCTION_SECRET);
    expect(verifyJwt(now.SUPABASE_SERVICE_ROLE_KEY!, now.SUPABASE_JWT_SECRET!)).toMatchObject({
      ok: true,
      claims: { role: 'service_role' },
    });
    const health = (token: string) =>
      fetch(`${now.CESAR_FUNCTIONS_URL}/api/health`, {
        headers: { authorization: `Bearer ${token}` },
      }).then((r) => r.status);
    expect(await health(now.SUPABASE_SERVICE_ROLE_KEY!)).toBe(200);
    expect(await health(now.CESAR_FUNCTION_SECRET!)).toBe(200);
    expect(await health('e'.repeat(64))).toBe(401);
  }, 180_000);
});
