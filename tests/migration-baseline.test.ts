import { chmod, copyFile, mkdir, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { applyMigrations, connect, installPgNetStandIn } from '../scripts/lib/database.ts';
import { repoRoot } from '../scripts/lib/paths.ts';
import {
  type ClusterSpec,
  clusterUrl,
  initCluster,
  startCluster,
  stopCluster,
} from '../scripts/lib/pg-cluster.ts';
import { dumpSchema } from '../scripts/lib/schema-dump.ts';
import { freePort } from '../scripts/local/functions.ts';

// The migrations in supabase/migrations are a squashed baseline: one file per concern, each
// object defined once in its final form. The chain they replace (22 files that redefined,
// altered and dropped what earlier ones made) is kept unchanged in
// tests/fixtures/migration-chain. Both are applied by the Supabase CLI, each to a fresh
// cluster of its own (pg_cron lives in one database per cluster), and must leave the same
// database: schema, seeded rows, pg_cron jobs, event triggers, grants and default privileges.

const migrationsDir = path.join(repoRoot, 'supabase/migrations');
const chainDir = path.join(repoRoot, 'tests/fixtures/migration-chain');
/**
 * The baseline's files. Migrations after them are forward-only changes on top: they may
 * replace what the baseline made, and are not part of the comparison.
 */
const isBaseline = (file: string) => /^20261203000[1-8]00_\w+\.sql$/.test(file);

type Snapshot = Awaited<ReturnType<typeof snapshot>>;

async function snapshot(url: string) {
  const sql = connect(url);
  try {
    const schema = await dumpSchema(url);
    const seeds = {
      jobTypes: await sql`
        select job_type, max_attempts, backoff_base_seconds::text, backoff_cap_seconds::text,
               concurrency, lease_seconds
        from cesar.job_types order by job_type`,
      syncTables: await sql`select table_name, enabled from cesar.sync_tables order by table_name`,
      watchedTables: await sql`
        select table_name, key_column from cesar.watched_tables order by table_name`,
      captureStores: await sql`
        select relid::regclass::text as relation, schema_name, table_name, key_column, columns,
               retired_at is null as active, watched, mirrored
        from cesar.capture_stores order by relation, active`,
      eventProcessor: await sql`select holder, lease_until::text from cesar.event_processor`,
      // Any other table a migration seeds: the row count of every cesar table.
      rowCounts: await Promise.all(
        (await sql<Array<{ name: string }>>`
          select c.relname as name from pg_class c
          where c.relnamespace = 'cesar'::regnamespace and c.relkind in ('r', 'p')
          order by c.relname`).map(async ({ name }) => {
          const [row] = await sql`select count(*)::int as rows from ${sql('cesar')}.${sql(name)}`;
          return { name, rows: row!.rows as number };
        }),
      ),
    };
    const cronJobs = await sql`
      select jobname, schedule, command, database, username, active from cron.job order by jobname`;
    const eventTriggers = await sql`
      select evtname, evtevent, evtfoid::regprocedure::text as function, evtenabled, evttags
      from pg_event_trigger order by evtname`;
    const functionGrants = await sql`
      select n.nspname || '.' || p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ')'
               as function,
             p.proacl::text as grants, p.prosecdef as security_definer
      from pg_proc p join pg_namespace n on n.oid = p.pronamespace
      where n.nspname in ('cesar', 'net', 'public')
      order by 1`;
    // Tables, views and sequences, the generated capture stores included (the dump leaves them out).
    const relationGrants = await sql`
      select n.nspname || '.' || c.relname as relation, c.relkind, c.relacl::text as grants,
             c.relrowsecurity as rls
      from pg_class c join pg_namespace n on n.oid = c.relnamespace
      where n.nspname in ('cesar', 'public') and c.relkind in ('r', 'p', 'v', 'm', 'S')
      order by 1`;
    const defaultPrivileges = await sql`
      select d.defaclrole::regrole::text as role, d.defaclnamespace::regnamespace::text as schema,
             d.defaclobjtype as type, d.defaclacl::text as grants
      from pg_default_acl d order by 1, 2, 3`;
    return {
      schema,
      seeds,
      cronJobs: [...cronJobs],
      eventTriggers: [...eventTriggers],
      functionGrants: [...functionGrants],
      relationGrants: [...relationGrants],
      defaultPrivileges: [...defaultPrivileges],
    };
  } finally {
    await sql.end();
  }
}

/** A fresh cluster with pg_cron and the pg_net stand-in, migrated from `workdir`'s supabase/. */
async function migratedCluster(dir: string, name: string, workdir: string) {
  const spec: ClusterSpec = {
    name,
    dataDir: path.join(dir, name),
    port: await freePort(),
    cron: true,
    durable: false,
  };
  await initCluster(spec);
  await startCluster(spec);
  const url = clusterUrl(spec.port);
  await installPgNetStandIn(url);
  await applyMigrations(url, workdir);
  return { spec, url };
}

describe('the squashed baseline', () => {
  let dir: string;
  const specs: ClusterSpec[] = [];
  let chain: Snapshot;
  let baseline: Snapshot;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'cesar-baseline-'));
    await chmod(dir, 0o755);
    // A project each: the same config.toml, the old chain or the baseline's files.
    const project = async (name: string, from: string, files: string[]) => {
      const root = path.join(dir, `${name}-project`);
      await mkdir(path.join(root, 'supabase/migrations'), { recursive: true });
      await copyFile(
        path.join(repoRoot, 'supabase/config.toml'),
        path.join(root, 'supabase/config.toml'),
      );
      for (const file of files) {
        await copyFile(path.join(from, file), path.join(root, 'supabase/migrations', file));
      }
      return root;
    };
    const [old, squashed] = await Promise.all([
      project('chain', chainDir, await readdir(chainDir))
        .then((root) => migratedCluster(dir, 'chain', root)),
      project('baseline', migrationsDir, (await readdir(migrationsDir)).filter(isBaseline))
        .then((root) => migratedCluster(dir, 'baseline', root)),
    ]);
    specs.push(old.spec, squashed.spec);
    [chain, baseline] = await Promise.all([snapshot(old.url), snapshot(squashed.url)]);
  }, 240_000);

  afterAll(async () => {
    for (const spec of specs) await stopCluster(spec);
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('was applied from both sides: the chain has its 22 files, the baseline its own', async () => {
    expect((await readdir(chainDir)).length).toBe(22);
    expect(chain.seeds.jobTypes.length).toBeGreaterThan(0);
    expect(chain.cronJobs.length).toBeGreaterThan(0);
  });

  it('produces the schema dump of the chain', () => {
    const a = baseline.schema.split('\n');
    const c = chain.schema.split('\n');
    const first = a.findIndex((line, i) => line !== c[i]);
    expect(first === -1 ? null : { line: first + 1, baseline: a[first], chain: c[first] })
      .toBeNull();
    expect(a.length).toBe(c.length);
  });

  it('seeds the same rows into the machinery tables', () => {
    expect(baseline.seeds).toEqual(chain.seeds);
  });

  it('schedules the same pg_cron jobs', () => {
    expect(baseline.cronJobs).toEqual(chain.cronJobs);
  });

  it('makes the same event triggers', () => {
    expect(baseline.eventTriggers).toEqual(chain.eventTriggers);
  });

  it('grants the same on every cesar, net and public function', () => {
    expect(baseline.functionGrants).toEqual(chain.functionGrants);
  });

  it('grants the same on every table, view and sequence, capture stores included', () => {
    expect(baseline.relationGrants).toEqual(chain.relationGrants);
  });

  it('leaves the same default privileges for what later migrations make', () => {
    expect(baseline.defaultPrivileges).toEqual(chain.defaultPrivileges);
  });
});

describe('the baseline files', () => {
  async function files() {
    const names = (await readdir(migrationsDir)).filter(isBaseline).sort();
    expect(names).toHaveLength(8);
    return Promise.all(
      names.map(async (name) => ({
        name,
        text: await readFile(path.join(migrationsDir, name), 'utf8'),
      })),
    );
  }

  /** Names made by top-level statements (column 0), each once across the files. */
  function duplicates(all: Array<{ name: string; text: string }>, pattern: RegExp) {
    const seen = new Map<string, string[]>();
    for (const { name, text } of all) {
      for (const match of text.matchAll(pattern)) {
        const key = match.slice(1).filter(Boolean).join(' ').toLowerCase();
        seen.set(key, [...(seen.get(key) ?? []), name]);
      }
    }
    return [...seen].filter(([, where]) => where.length > 1);
  }

  it('open with a -- Why: comment', async () => {
    for (const { name, text } of await files()) {
      expect(text.startsWith('-- Why: '), name).toBe(true);
    }
  });

  it('define each object once, in its final form', async () => {
    const all = await files();
    for (const { name, text: source } of all) {
      // The statements, without comments (which name ALTER TABLE and the like in prose).
      const text = source.replace(/--.*$/gm, '');
      // Nothing replaced, dropped or altered after it is made.
      expect(text.match(/\bcreate\s+or\s+replace\b/gi), name).toBeNull();
      expect(
        text.match(/^\s*drop\s+(function|table|view|materialized view|trigger|index|type)\b/gim),
        name,
      )
        .toBeNull();
      // Columns and constraints belong in the create table; enabling RLS is the one ALTER
      // TABLE a table needs.
      expect(
        text.match(/^\s*alter\s+(table|index|view|materialized view|sequence|function)\b/gim),
        name,
      )
        .toBeNull();
      expect(
        [...text.matchAll(/\balter\s+table\b[^;]*/g)].map((m) => m[0])
          .filter((statement) => !/enable row level security/i.test(statement)),
        name,
      ).toEqual([]);
    }
    expect(duplicates(all, /^create function ([\w.]+)\(/gim)).toEqual([]);
    expect(
      duplicates(
        all,
        /^create (table|view|materialized view|sequence|type|event trigger|schema if not exists) ([\w.]+)/gim,
      ),
    ).toEqual([]);
    expect(duplicates(all, /^create (?:unique )?index (\w+)/gim)).toEqual([]);
    expect(duplicates(all, /^create trigger (\w+) .*? on ([\w.]+)/gim)).toEqual([]);
  });

  it('schedule each pg_cron job once and seed each table once', async () => {
    const all = await files();
    expect(duplicates(all, /cron\.schedule\('([^']+)'/g)).toEqual([]);
    expect(duplicates(all, /^insert into ([\w.]+)/gim)).toEqual([]);
  });
});
