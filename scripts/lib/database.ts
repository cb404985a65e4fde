import { readFile } from 'node:fs/promises';
import path from 'node:path';
import postgres from 'postgres';
import { healingPoolOptions } from '../../packages/shared/src/db.ts';
import { bin, repoRoot } from './paths.ts';
import { run } from './run.ts';

// Bringing a local database to the state production has: the pg_net stand-in where the
// real extension is missing, the migrations through the Supabase CLI, the settings that
// pg_cron and triggers read, and the seed.

export function connect(url: string, max = 1) {
  return postgres(url, { ...healingPoolOptions, max, onnotice: () => {} });
}

/**
 * Installs the pg_net stand-in unless the real extension is there, then the Database Webhooks
 * stand-in (installSupabaseFunctionsStandIn), which calls it. Idempotent.
 */
export async function installPgNetStandIn(url: string): Promise<'real' | 'stand-in'> {
  const sql = connect(url);
  let net: 'real' | 'stand-in' = 'real';
  try {
    const [real] = await sql`select 1 from pg_available_extensions where name = 'pg_net'`;
    if (!real) {
      const ddl = await readFile(path.join(repoRoot, 'scripts/local/pg-net-standin.sql'), 'utf8');
      await sql.unsafe(ddl);
      net = 'stand-in';
    }
  } finally {
    await sql.end();
  }
  await installSupabaseFunctionsStandIn(url);
  return net;
}

/**
 * What `supabase start` gives a project for Database Webhooks (schema supabase_functions, its
 * http_request() trigger function, the supabase_functions_admin role), unless the real schema
 * is there: one this stand-in did not make. Idempotent.
 */
export async function installSupabaseFunctionsStandIn(url: string): Promise<'real' | 'stand-in'> {
  const sql = connect(url);
  try {
    const [existing] = await sql<Array<{ comment: string | null }>>`
      select obj_description(oid, 'pg_namespace') as comment
      from pg_namespace where nspname = 'supabase_functions'
    `;
    if (existing && !existing.comment?.startsWith('Local stand-in')) return 'real';
    const file = 'scripts/local/supabase-functions-standin.sql';
    const ddl = await readFile(path.join(repoRoot, file), 'utf8');
    // One transaction: a failure leaves nothing half made.
    await sql.begin((tx) => tx.unsafe(ddl));
    return 'stand-in';
  } finally {
    await sql.end();
  }
}

/**
 * Applies pending migrations with the Supabase CLI, which records them in its history table.
 * `workdir` holds the `supabase/` folder (config.toml, migrations/): the project's by default.
 */
export async function applyMigrations(url: string, workdir = repoRoot): Promise<string> {
  const { stdout, stderr } = await run(
    bin('supabase'),
    ['migration', 'up', `--remote=${url}`, '--yes', '--workdir', workdir],
    { cwd: repoRoot, env: { ...process.env, SUPABASE_TELEMETRY_DISABLED: '1', DO_NOT_TRACK: '1' } },
  );
  return (stdout + stderr).trim();
}

/** The settings that pg_cron jobs and triggers read through cesar.setting(). */
export async function writeLocalSettings(url: string, settings: Record<string, string>) {
  const sql = connect(url);
  try {
    for (const [name, value] of Object.entries(settings)) {
      await sql`
        insert into cesar.local_settings (name, value) values (${name}, ${value})
        on conflict (name) do update set value = excluded.value
        where cesar.local_settings.value is distinct from excluded.value
      `;
    }
  } finally {
    await sql.end();
  }
}

export async function loadSeed(url: string): Promise<void> {
  const sql = connect(url);
  try {
    // One transaction: the seed's last statement recognises its own captured events by it.
    const seed = await readFile(path.join(repoRoot, 'supabase/seed.sql'), 'utf8');
    await sql.begin((tx) => tx.unsafe(seed));
  } finally {
    await sql.end();
  }
}

export async function waitForDatabase(url: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const sql = connect(url);
    try {
      await sql`select 1`;
      return;
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 200));
    } finally {
      await sql.end({ timeout: 1 });
    }
  }
}
