import { execFile } from 'node:child_process';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createJobDrainApp } from '../packages/shared/src/queue/app.ts';
import { createSyncApp } from '../packages/shared/src/mirror/app.ts';
import { renderBar } from '../scripts/cli/progress.ts';
import { bin, repoRoot } from '../scripts/lib/paths.ts';
import { databaseUrl, functionSql, poolerUrl, testSql } from './helpers/db.ts';
import { recordingMirror } from './helpers/mirror.ts';
import { apiApp, process as processEvents, SECRET, webhookApp } from './helpers/workflows.ts';

// The `cesar` CLI as an operator runs it: a child process talking HTTP to the sync and api
// functions' apps (served here on a free port), on a mirrored table of its own.

const sql = testSql(undefined, 6);
// The functions' own pool: through the transaction pooler, as CESAR_DB_URL gives it.
const fnSql = functionSql(6, 'cli');
const { mirror } = recordingMirror();
const TABLE = 'synccli.items';
const syncApp = createSyncApp({
  sql: fnSql,
  mirror,
  config: { functionSecret: SECRET, serviceRoleKey: null },
});
const api = apiApp(fnSql);
const apps = {
  api,
  sync: syncApp,
  webhook: webhookApp(fnSql),
  'job-drain': createJobDrainApp({
    sql: fnSql,
    config: { functionSecret: SECRET, serviceRoleKey: null },
    clock: { now: () => new Date() },
    handlers: {},
  }),
} as Record<string, { fetch: (r: Request) => Response | Promise<Response> }>;
let base = '';

const server = http.createServer(async (req, res) => {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  const app = apps[req.url!.split('/')[1]!.split('?')[0]!];
  if (!app) {
    res.writeHead(404, { 'content-type': 'text/plain' });
    return void res.end('no such function');
  }
  const response = await app.fetch(
    new Request(`http://127.0.0.1${req.url}`, {
      method: req.method,
      headers: req.headers as Record<string, string>,
      body: chunks.length > 0 ? Buffer.concat(chunks) : undefined,
    }),
  );
  res.writeHead(response.status, Object.fromEntries(response.headers));
  res.end(Buffer.from(await response.arrayBuffer()));
});

beforeAll(async () => {
  await sql.unsafe(`
    create schema if not exists synccli;
    create table if not exists synccli.items (
      id uuid primary key default gen_random_uuid(),
      label text not null,
      updated_at timestamptz not null default now()
    );
    insert into cesar.sync_tables (table_name) values ('synccli.items') on conflict do nothing;
    select cesar.watch('synccli.items');
    insert into synccli.items (label) select 'item ' || i from generate_series(1, 5) i;
  `);
  await mirror`create schema if not exists synccli`;
  await processEvents(sql);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

function cesar(
  args: string[],
  secret = SECRET,
  extra: Record<string, string> = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      bin('tsx'),
      [path.join(repoRoot, 'scripts/cesar.ts'), ...args],
      {
        env: {
          ...process.env,
          CESAR_FUNCTIONS_URL: base,
          CESAR_FUNCTION_SECRET: secret,
          CESAR_ENV_FILE: '/nonexistent/.env.local',
          SUPABASE_DB_URL: databaseUrl(),
          CESAR_DB_URL: poolerUrl(),
          ...extra,
        },
      },
      (err, stdout, stderr) =>
        resolve({ code: err ? (err as { code?: number }).code ?? 1 : 0, stdout, stderr }),
    );
  });
}

describe('cesar sync, verify, restore', () => {
  it('syncs a table in both directions and reports it as JSON', async () => {
    const { code, stdout } = await cesar([
      'sync',
      '--table',
      TABLE,
      '--direction',
      'both',
      '--json',
    ]);
    expect(code).toBe(0);
    expect(JSON.parse(stdout)).toMatchObject({
      ok: true,
      direction: 'both',
      tables: [
        { table: TABLE, direction: 'down', status: 'completed' },
        { table: TABLE, direction: 'up', status: 'completed', inserted: 5 },
      ],
    });
    expect(await mirror`select count(*)::int as n from synccli.items`).toEqual([{ n: 5 }]);
  });

  it('dry-runs without writing, in a table a person can read', async () => {
    await sql`insert into synccli.items (label) values ('dry')`;
    await processEvents(sql);
    const { code, stdout } = await cesar(['sync', '--table', TABLE, '--dry-run']);
    expect(code).toBe(0);
    expect(stdout).toMatch(/^Dry run: nothing was written\./);
    expect(stdout).toMatch(/synccli\.items\s+up\s+completed\s+1\s+0\s+0\s+0/);
    expect(await mirror`select 1 from synccli.items where label = 'dry'`).toHaveLength(0);
  });

  it('verifies (exit 1 with the differing key), then restores the primary from the mirror', async () => {
    await cesar(['sync', '--table', TABLE]);
    expect((await cesar(['verify', '--table', TABLE])).code).toBe(0);
    const [row] = await sql`select id from synccli.items order by id limit 1`;
    await mirror`update synccli.items set label = 'fixed on the mirror' where id = ${row!.id}`;
    const differs = await cesar(['verify', '--table', TABLE]);
    expect(differs.code).toBe(1);
    expect(differs.stdout).toContain(`${TABLE} ${row!.id}: different`);

    const restored = await cesar(['restore', '--table', TABLE, '--json']);
    expect(restored.code).toBe(0);
    expect(JSON.parse(restored.stdout)).toMatchObject({
      ok: true,
      tables: [{ table: TABLE, status: 'completed', updated: 1, verify: { equal: true } }],
    });
    expect(await sql`select label from synccli.items where id = ${row!.id}`).toEqual([
      { label: 'fixed on the mirror' },
    ]);
  });
});

describe('cesar workflows and events', () => {
  it('lists the seeded workflows and recent events', async () => {
    const workflows = await cesar(['workflows', 'list', '--json']);
    expect(workflows.code).toBe(0);
    const names = JSON.parse(workflows.stdout).workflows.map((w: { name: string }) => w.name);
    expect(names).toEqual(expect.arrayContaining(['Mirror sync', 'Daily financial analysis']));
    const events = await cesar(['events', 'list', '--table', TABLE, '--limit', '2']);
    expect(events.code).toBe(0);
    expect(events.stdout).toMatch(/^id\s+table\s+op\s+status/);
    expect(events.stdout).toContain(TABLE);
  });
});

describe('cesar jobs', () => {
  it('lists failed jobs, retries and cancels them', async () => {
    const [job] = await sql`
      insert into cesar.job_queue (job_type, status, attempts, last_error, finished_at)
      values ('cli.test', 'failed', 5, 'it broke', now()) returning id::text`;
    const list = await cesar(['jobs', 'list', '--status', 'failed', '--type', 'cli.test']);
    expect(list.code).toBe(0);
    expect(list.stdout).toMatch(new RegExp(`${job!.id}\\s+cli\\.test\\s+failed\\s+5/5`));
    expect(await cesar(['jobs', 'retry', job!.id])).toMatchObject({
      code: 0,
      stdout: '1 job(s) requeued\n',
    });
    expect(await cesar(['jobs', 'cancel', job!.id, '--json'])).toMatchObject({ code: 0 });
    expect(await sql`select status from cesar.job_queue where id = ${job!.id}`).toEqual([{
      status: 'cancelled',
    }]);
    // Cancelling it again cancels nothing: exit 1.
    expect((await cesar(['jobs', 'cancel', job!.id])).code).toBe(1);
    expect((await cesar(['jobs', 'retry'])).code).toBe(2);
  });

  it("lists a running job's progress and marks a running job for cancelling", async () => {
    // A job whose (absent) drain reported progress and holds it for 10 minutes.
    const [job] = await sql`
      insert into cesar.job_queue (job_type, status, attempts, locked_by, locked_until,
                                   started_at, progress, progress_message)
      values ('cli.progress', 'running', 1, 'cli-test-drain', now() + interval '10 minutes',
              now(), 0.4, 'copied 40,000 rows')
      returning id::text`;
    try {
      const list = await cesar(['jobs', 'list', '--status', 'running', '--type', 'cli.progress']);
      expect(list.code).toBe(0);
      expect(list.stdout).toMatch(/^id\s+type\s+status\s+key\s+attempts\s+progress/);
      expect(list.stdout).toMatch(
        new RegExp(`${job!.id}\\s+cli\\.progress\\s+running\\s+1/5\\s+40% copied 40,000 rows`),
      );
      expect(await cesar(['jobs', 'cancel', job!.id])).toMatchObject({ code: 0 });
      const [row] = await sql`select status, cancel_requested_at from cesar.job_queue
                              where id = ${job!.id}`;
      expect(row!.status).toBe('running');
      expect(row!.cancel_requested_at).not.toBeNull();
    } finally {
      await sql`delete from cesar.job_queue where id = ${job!.id}`;
    }
  });
});

describe('cesar jobs types set, cesar jobs rate-limit', () => {
  it("sets a type's rate key and cap and a key's own rate limit, and shows them; 1 for a refused setting, 2 for usage", async () => {
    const type = 'cli.rated';
    await sql`insert into cesar.job_types (job_type) values (${type}) on conflict do nothing`;
    try {
      const set = await cesar([
        'jobs',
        'types',
        'set',
        type,
        '--rate-key',
        'payload.rate_group',
        '--concurrency',
        '3',
      ]);
      expect(set.code).toBe(0);
      expect(set.stdout).toMatch(/^type\s+attempts\s+lease\s+concurrency\s+rate\s+per key\n/);
      expect(
        await cesar([
          'jobs',
          'rate-limit',
          'set',
          type,
          'partner-x',
          '--limit',
          '10',
          '--period',
          '60',
        ]),
      ).toMatchObject({
        code: 0,
        stdout: 'cli.rated: at most 10 jobs of the key partner-x start in any 60s\n',
      });
      const types = await cesar(['jobs', 'types']);
      expect(types.stdout).toMatch(
        /cli\.rated\s+5\s+60s\s+3\s+payload\.rate_group=partner-x: 10\/60s/,
      );
      const json = JSON.parse((await cesar(['jobs', 'types', '--json'])).stdout);
      expect(json.policies.find((p: { job_type: string }) => p.job_type === type)).toMatchObject({
        rate_key: 'payload.rate_group',
        concurrency: 3,
        key_rate_limits: [{ key: 'partner-x', rate_limit: 10, rate_period_seconds: 60 }],
      });

      const refused = await cesar([
        'jobs',
        'types',
        'set',
        type,
        '--rate-limit',
        '0',
        '--rate-period',
        '60',
      ]);
      expect(refused).toMatchObject({
        code: 1,
        stderr: expect.stringMatching(/400 invalid request body \(rate_limit: /),
      });
      expect((await cesar(['jobs', 'rate-limit', 'set', type, 'partner-x'])).code).toBe(2);
      expect((await cesar(['jobs', 'types', 'set', type, '--rate-limt', '5'])).stderr).toMatch(
        /unknown option --rate-limt/,
      );
      expect(await cesar(['jobs', 'rate-limit', 'delete', type, 'partner-x'])).toMatchObject({
        code: 0,
        stdout: 'cli.rated: the key partner-x has no rate limit of its own now\n',
      });
      expect(await cesar(['jobs', 'rate-limit', 'delete', type, 'partner-x'])).toMatchObject({
        code: 1,
        stderr: expect.stringMatching(/404 job type cli\.rated has no rate limit for the key/),
      });
      expect(await sql`select rate_limit from cesar.job_types where job_type = ${type}`).toEqual([
        { rate_limit: null },
      ]);
    } finally {
      await sql`delete from cesar.job_types where job_type = ${type}`;
    }
  });
});

describe('cesar doctor and migrate', () => {
  it('checks every part, and says what is wrong and how to fix it', async () => {
    const healthy = await cesar(['doctor', '--json']);
    const checks = JSON.parse(healthy.stdout).checks as Array<{ name: string; ok: boolean }>;
    const okOf = (name: string) => checks.find((c) => c.name === name)?.ok;
    for (
      const name of ['primary database', 'migrations', 'pg_cron', 'pg_net', 'transaction pooler']
    ) {
      expect(okOf(name), name).toBe(true);
    }
    for (const fn of ['api', 'webhook', 'job-drain', 'sync']) {
      expect(okOf(`function ${fn}`)).toBe(true);
    }

    const wrong = await cesar(['doctor'], 'wrong-secret-0000000000000000');
    expect(wrong.code).toBe(1);
    expect(wrong.stdout).toMatch(
      /FAIL {2}function api: refuses the secret\n {6}fix: set the same CESAR_FUNCTION_SECRET/,
    );

    const noDb = await cesar(['doctor'], SECRET, {
      SUPABASE_DB_URL: 'postgresql://postgres:postgres@127.0.0.1:9/none',
    });
    expect(noDb.code).toBe(1);
    expect(noDb.stdout).toMatch(/FAIL {2}primary database: cannot connect/);

    expect(checks.find((c) => c.name === 'transaction pooler')).toMatchObject({
      detail: expect.stringMatching(/^PgBouncer in transaction mode answers/),
    });
    const noPooler = await cesar(['doctor'], SECRET, { CESAR_DB_URL: '' });
    expect(noPooler.stdout).toMatch(
      /FAIL {2}transaction pooler: CESAR_DB_URL is not set: the functions connect directly/,
    );
    const direct = await cesar(['doctor'], SECRET, { CESAR_DB_URL: databaseUrl() });
    expect(direct.stdout).toMatch(
      /FAIL {2}transaction pooler: answers on port \d+, not Supavisor's transaction port 6543/,
    );
  });

  it('lists the pending migrations on a dry run and changes nothing', async () => {
    expect(await cesar(['migrate', '--dry-run'])).toMatchObject({
      code: 0,
      stdout: 'The database is up to date.\n',
    });
    const empty = `cli_${Date.now().toString(36)}`;
    await sql.unsafe(`create database ${empty}`);
    try {
      const url = databaseUrl().replace(/\/[^/?]+(\?|$)/, `/${empty}$1`);
      const dry = await cesar(['migrate', '--dry-run', '--db-url', url, '--json']);
      expect(dry.code).toBe(0);
      const { pending } = JSON.parse(dry.stdout);
      expect(pending[0]).toBe('20261203000100_platform.sql');
      expect(pending.length).toBeGreaterThanOrEqual(8);
      const scratch = postgres(url, { max: 1, onnotice: () => {} });
      try {
        expect(await scratch`select to_regclass('cesar.job_queue') as t`).toEqual([{ t: null }]);
      } finally {
        await scratch.end();
      }
    } finally {
      await sql.unsafe(`drop database ${empty} with (force)`);
    }
  });
});

describe('cesar exit codes', () => {
  it('2 for usage, 1 for a refused operation, 3 for a wrong secret', async () => {
    const usage = await cesar(['sync', '--direction', 'sideways']);
    expect(usage).toMatchObject({
      code: 2,
      stderr: expect.stringMatching(/--direction must be up, down or both/),
    });
    expect((await cesar(['sync', '--tabel', TABLE])).stderr).toMatch(/unknown option --tabel/);
    expect((await cesar(['frobnicate'])).code).toBe(2);
    const unknown = await cesar(['verify', '--table', 'public.nope']);
    expect(unknown).toMatchObject({
      code: 1,
      stderr: expect.stringMatching(/not mirrored: public\.nope/),
    });
    const secret = await cesar(['verify', '--table', TABLE], 'wrong-secret-0000000000000000');
    expect(secret).toMatchObject({
      code: 3,
      stderr: expect.stringMatching(/401 invalid bearer token/),
    });
  });

  it("runs as `npx cesar` through the package's bin", async () => {
    const help = await new Promise<{ code: number; stdout: string }>((resolve) =>
      execFile(
        process.execPath,
        [path.join(repoRoot, 'bin/cesar.mjs'), '--help'],
        (err, stdout) => resolve({ code: err ? (err as { code?: number }).code ?? 1 : 0, stdout }),
      )
    );
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/^cesar <command> \[options\]/);
  });

  it('draws a progress bar', () => {
    expect(renderBar(0, 4, 'a', 8)).toBe('[........] 0/4 a');
    expect(renderBar(3, 4, 'b', 8)).toBe('[######..] 3/4 b');
    expect(renderBar(0, 0, 'c', 4)).toBe('[####] 0/0 c');
  });
});
