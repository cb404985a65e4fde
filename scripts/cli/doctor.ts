import { existsSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import postgres from 'postgres';
import { applyMigrations } from '../lib/database.ts';
import { repoRoot } from '../lib/paths.ts';
import { pgbouncerShow } from '../lib/pgbouncer.ts';
import { functionNames } from '../local/functions.ts';
import { stackProcesses } from '../local/stack-processes.ts';
import { type Parsed, single, UsageError } from './args.ts';
import { CliError, EXIT, settings } from './client.ts';
import type { CommandResult } from './sync.ts';

// `cesar doctor`: every part checked, and for each failure what is wrong and how to fix it.
// `cesar migrate [--dry-run]`: pending migrations, applied through the Supabase CLI.

interface Check {
  name: string;
  ok: boolean;
  detail: string;
  fix?: string;
}

async function migrationFiles(): Promise<string[]> {
  const files = await readdir(path.join(repoRoot, 'supabase/migrations'));
  return files.filter((f) => /^\d+_.+\.sql$/.test(f)).sort();
}

async function appliedVersions(sql: postgres.Sql): Promise<Set<string>> {
  const [table] = await sql`select to_regclass('supabase_migrations.schema_migrations') as t`;
  if (!table?.t) return new Set();
  const rows = await sql<Array<{ version: string }>>`
    select version from supabase_migrations.schema_migrations`;
  return new Set(rows.map((r) => r.version));
}

async function pendingMigrations(sql: postgres.Sql): Promise<string[]> {
  const applied = await appliedVersions(sql);
  return (await migrationFiles()).filter((f) => !applied.has(f.split('_')[0]!));
}

function databaseUrl(found: Record<string, string | undefined>, parsed?: Parsed): string {
  const url = (parsed && single(parsed, 'db-url')) ?? found.SUPABASE_DB_URL;
  if (!url) {
    throw new CliError(
      'no database to talk to: run `npm start` (it writes .env.local), or set SUPABASE_DB_URL',
      EXIT.unreachable,
    );
  }
  return url;
}

export async function migrateCommand(parsed: Parsed): Promise<CommandResult> {
  if (parsed.positionals.length > 1) throw new UsageError('migrate takes no arguments');
  const url = databaseUrl(await settings(), parsed);
  const sql = postgres(url, { max: 1, onnotice: () => {}, connect_timeout: 5 });
  try {
    const pending = await pendingMigrations(sql).catch((err) => {
      throw new CliError(`cannot read the database: ${(err as Error).message}`, EXIT.unreachable);
    });
    if (parsed.flags.has('dry-run') || pending.length === 0) {
      return {
        json: { dry_run: parsed.flags.has('dry-run'), pending, applied: [] },
        human: pending.length === 0
          ? 'The database is up to date.'
          : `Would apply (dry run):\n${pending.map((f) => `  ${f}`).join('\n')}`,
        exitCode: EXIT.ok,
      };
    }
    await applyMigrations(url);
    const still = await pendingMigrations(sql);
    const applied = pending.filter((f) => !still.includes(f));
    return {
      json: { dry_run: false, pending: still, applied },
      human: `Applied:\n${applied.map((f) => `  ${f}`).join('\n')}` +
        (still.length > 0 ? `\nStill pending:\n${still.map((f) => `  ${f}`).join('\n')}` : ''),
      exitCode: still.length === 0 ? EXIT.ok : EXIT.failed,
    };
  } finally {
    await sql.end();
  }
}

async function checkFunction(base: string, secret: string, name: string): Promise<Check> {
  const url = `${base.replace(/\/$/, '')}/${name}/__doctor`;
  try {
    const res = await fetch(url, {
      headers: { authorization: `Bearer ${secret}` },
      signal: AbortSignal.timeout(5000),
    });
    // Our apps answer an unknown path with a JSON 404 once the secret is accepted.
    if (res.status === 404) return { name: `function ${name}`, ok: true, detail: 'answers' };
    if (res.status === 401) {
      return {
        name: `function ${name}`,
        ok: false,
        detail: 'refuses the secret',
        fix:
          'set the same CESAR_FUNCTION_SECRET for the CLI and the functions (supabase secrets set)',
      };
    }
    return { name: `function ${name}`, ok: false, detail: `answered ${res.status}` };
  } catch (err) {
    return {
      name: `function ${name}`,
      ok: false,
      detail: `cannot reach ${url}: ${(err as Error).message}`,
      fix:
        'start the local stack (`npm start`) or deploy the functions (supabase functions deploy)',
    };
  }
}

/** The pooler's pool_mode, when it is a PgBouncer whose admin console lets us ask. */
async function pgbouncerMode(url: string): Promise<string | null> {
  try {
    const rows = await pgbouncerShow<{ key: string; value: string }>(url, 'CONFIG');
    return rows.find((r) => r.key === 'pool_mode')?.value ?? null;
  } catch {
    return null; // Supavisor, or a PgBouncer that does not let this user in.
  }
}

/**
 * CESAR_DB_URL: the functions' way to the primary, a transaction pooler (Supavisor's port 6543
 * on hosted, PgBouncer locally). Without it they fall back to SUPABASE_DB_URL, a direct
 * connection per pool slot, which the smallest computes run out of (60 in all).
 */
export async function checkPooler(url: string | undefined): Promise<Check> {
  const name = 'transaction pooler';
  if (!url) {
    return {
      name,
      ok: false,
      detail: 'CESAR_DB_URL is not set: the functions connect directly (SUPABASE_DB_URL)',
      fix: 'supabase secrets set CESAR_DB_URL=<the transaction pooler URL, port 6543, from ' +
        "the dashboard's Connect panel> (locally `npm start` writes it)",
    };
  }
  const sql = postgres(url, { max: 1, prepare: false, connect_timeout: 5, onnotice: () => {} });
  let port = '';
  try {
    port = new URL(url).port;
    const started = performance.now();
    await sql`select 1`;
    const ms = Math.round(performance.now() - started);
    const mode = await pgbouncerMode(url);
    if (mode !== null) {
      return mode === 'transaction'
        ? { name, ok: true, detail: `PgBouncer in transaction mode answers (${ms} ms)` }
        : {
          name,
          ok: false,
          detail: `PgBouncer in ${mode} mode`,
          fix: 'pool_mode = transaction ([db.pooler] in supabase/config.toml)',
        };
    }
    return port === '6543' ? { name, ok: true, detail: `answers on port 6543 (${ms} ms)` } : {
      name,
      ok: false,
      detail: `answers on port ${port || 5432}, not Supavisor's transaction port 6543`,
      fix: 'use the transaction pooler URL (port 6543) for CESAR_DB_URL',
    };
  } catch (err) {
    return {
      name,
      ok: false,
      detail: `cannot connect: ${(err as Error).message}`,
      fix: 'start the local stack (`npm start`), or check CESAR_DB_URL',
    };
  } finally {
    await sql.end({ timeout: 1 });
  }
}

/**
 * The local stack's processes (stack-processes.ts): one supervisor, one runtime, one Deno
 * process per function (two while a standby waits or a retired isolate finishes). Null when there is no local stack here (nothing started, or stopped).
 */
export function checkLocalRuntime(localDir: string): Check | null {
  const parts = stackProcesses(localDir);
  if (parts.length === 0 && !existsSync(path.join(localDir, 'supervisor.pid'))) return null;
  const problems: string[] = [];
  const count = (role: string) => parts.filter((p) => p.role === role).length;
  for (const role of ['supervisor', 'runtime']) {
    const n = count(role);
    if (n === 0) problems.push(`${role} not running`);
    if (n > 1) problems.push(`${n} ${role}s running`);
  }
  const names = functionNames();
  const runtimes = new Set(parts.filter((p) => p.role === 'runtime').map((p) => p.pid));
  for (const name of names) {
    const procs = parts.filter((p) => p.role === 'function' && p.fn === name);
    // The runtime may run two for a while: the serving isolate and a standby, or a retiring
    // one finishing its requests (scripts/local/functions.ts). Any other is a duplicate.
    const theRuntimes = procs.filter((p) => runtimes.has(p.ppid)).length;
    if (procs.length === 0) problems.push(`function ${name} not running`);
    if (procs.length > 1 && (procs.length > theRuntimes || theRuntimes > 2)) {
      problems.push(`function ${name}: ${procs.length} Deno processes`);
    }
  }
  const fns = count('function');
  if (problems.length === 0) {
    return {
      name: 'local runtime',
      ok: true,
      detail: `supervisor, runtime and ${fns} Deno function processes running`,
    };
  }
  if (fns !== names.length) {
    problems.push(`${fns} Deno function processes for ${names.length} functions`);
  }
  return {
    name: 'local runtime',
    ok: false,
    detail: problems.join('; '),
    fix: 'npm stop && npm start (it stops every process of this stack, then starts one set)',
  };
}

/**
 * `target` points doctor at a deployed project (cesar deploy): its settings instead of the
 * environment and .env.local, and no look at this machine's local stack.
 */
export async function doctorCommand(
  target?: { settings: Record<string, string> },
): Promise<CommandResult> {
  const found = target?.settings ?? await settings();
  const checks: Check[] = [];
  const need = (name: string, fix: string) => {
    const ok = Boolean(found[name]);
    checks.push({ name: `setting ${name}`, ok, detail: ok ? 'set' : 'missing', fix });
    return ok;
  };
  const haveDb = need(
    'SUPABASE_DB_URL',
    "run `npm start`, or set it to the project's database URL",
  );
  const haveUrl = need(
    'CESAR_FUNCTIONS_URL',
    'run `npm start`, or set it to https://<project>.supabase.co/functions/v1',
  );
  const haveSecret = need(
    'CESAR_FUNCTION_SECRET',
    'run `npm start`, or set the secret the functions use',
  );

  if (haveDb) {
    const sql = postgres(found.SUPABASE_DB_URL!, {
      max: 1,
      onnotice: () => {},
      connect_timeout: 5,
    });
    try {
      const [version] = await sql`select current_setting('server_version_num')::int as v`;
      checks.push({
        name: 'primary database',
        ok: version!.v >= 150000,
        detail: `PostgreSQL ${Math.floor(version!.v / 10000)}`,
        fix: version!.v >= 150000 ? undefined : 'CESAR Edge needs PostgreSQL 15 or later',
      });
      const pending = await pendingMigrations(sql);
      checks.push({
        name: 'migrations',
        ok: pending.length === 0,
        detail: pending.length === 0
          ? 'up to date'
          : `${pending.length} pending: ${pending.join(', ')}`,
        fix: 'npm run cesar -- migrate',
      });
      const [cron] = await sql`
        select exists (select from pg_extension where extname = 'pg_cron') as installed,
               (select count(*)::int from pg_catalog.pg_namespace where nspname = 'cron') as schema`;
      const cronJobs = cron!.installed
        ? (await sql`select count(*)::int as n from cron.job where jobname like 'cesar-%'`)[0]!.n
        : 0;
      checks.push({
        name: 'pg_cron',
        ok: cron!.installed && cronJobs > 0,
        detail: cron!.installed ? `${cronJobs} cesar jobs scheduled` : 'not installed',
        fix: cron!.installed
          ? 'npm run cesar -- migrate (the migrations schedule the jobs)'
          : 'enable pg_cron (Supabase: Database > Extensions; locally `npm start` installs it)',
      });
      const [net] = await sql`
        select to_regclass('net.http_request_queue') is not null as installed,
               (select count(*)::int from net.http_request_queue) as queued`
        .catch(() => [{ installed: false, queued: 0 }]);
      checks.push({
        name: 'pg_net',
        ok: Boolean(net!.installed) && net!.queued < 100,
        detail: !net!.installed ? 'not installed' : `${net!.queued} request(s) waiting to be sent`,
        fix: !net!.installed
          ? 'enable pg_net (Supabase: Database > Extensions; locally `npm start` provides a stand-in)'
          : 'the pg_net worker is not sending: restart the stack (`npm stop && npm start`)',
      });
      const [setting] = await sql`
        select cesar.setting('cesar_functions_url') as url,
               cesar.setting('cesar_function_secret') = ${
        found.CESAR_FUNCTION_SECRET ?? ''
      } as same_secret`
        .catch(() => [{ url: null, same_secret: false }]);
      checks.push({
        name: 'settings for pg_cron and the doorbells',
        ok: Boolean(setting!.url) && Boolean(setting!.same_secret),
        detail: !setting!.url
          ? 'cesar_functions_url is not set'
          : setting!.same_secret
          ? `functions at ${setting!.url}`
          : 'cesar_function_secret differs from CESAR_FUNCTION_SECRET',
        fix:
          'store cesar_functions_url and cesar_function_secret in Vault (locally `npm start` writes them)',
      });
    } catch (err) {
      checks.push({
        name: 'primary database',
        ok: false,
        detail: `cannot connect: ${(err as Error).message}`,
        fix: 'start the local stack (`npm start`), or check SUPABASE_DB_URL',
      });
    } finally {
      await sql.end();
    }
  }

  checks.push(await checkPooler(found.CESAR_DB_URL));

  if (haveUrl && haveSecret) {
    for (const name of ['api', 'webhook', 'job-drain', 'sync']) {
      checks.push(
        await checkFunction(found.CESAR_FUNCTIONS_URL!, found.CESAR_FUNCTION_SECRET!, name),
      );
    }
    const health = await fetch(`${found.CESAR_FUNCTIONS_URL!.replace(/\/$/, '')}/api/health`, {
      headers: { authorization: `Bearer ${found.CESAR_FUNCTION_SECRET}` },
      signal: AbortSignal.timeout(5000),
    }).then((r) => r.json()).catch(() => null);
    const mirror = health?.components?.mirror;
    if (mirror) {
      checks.push({
        name: 'mirror (CockroachDB)',
        ok: mirror.status === 'up',
        detail: `${mirror.status}${mirror.kind ? ` (${mirror.kind})` : ''}`,
        fix: "check COCKROACH_DB_URL in the functions' secrets, and that the cluster answers",
      });
    }
  }

  const local = target ? null : checkLocalRuntime(
    path.resolve(found.CESAR_LOCAL_DIR ?? path.join(repoRoot, '.local')),
  );
  if (local) checks.push(local);

  const ok = checks.every((c) => c.ok);
  const human = checks.map((c) =>
    `${c.ok ? 'ok  ' : 'FAIL'}  ${c.name}: ${c.detail}${
      !c.ok && c.fix ? `\n      fix: ${c.fix}` : ''
    }`
  ).join('\n');
  return { json: { ok, checks }, human, exitCode: ok ? EXIT.ok : EXIT.failed };
}
