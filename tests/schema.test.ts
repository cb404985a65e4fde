import { readdirSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { repoRoot } from '../scripts/lib/paths.ts';
import { testSql, withRollback } from './helpers/db.ts';

const sql = testSql();

const publicTables = async () =>
  (await sql<Array<{ name: string }>>`
    select c.relname as name from pg_class c
    where c.relnamespace = 'public'::regnamespace and c.relkind in ('r', 'p')
    order by 1
  `).map((r) => r.name);

describe('migrations', () => {
  it('are all recorded in the Supabase CLI history table', async () => {
    const files = readdirSync(path.join(repoRoot, 'supabase/migrations'))
      .filter((f) => f.endsWith('.sql'))
      .map((f) => f.replace(/\.sql$/, ''))
      .sort();
    const rows = await sql<Array<{ version: string; name: string }>>`
      select version, name from supabase_migrations.schema_migrations order by version
    `;
    expect(rows.map((r) => `${r.version}_${r.name}`)).toEqual(files);
  });

  it('enable pg_cron and create the cesar schema', async () => {
    const ext = await sql`select extname from pg_extension where extname = 'pg_cron'`;
    expect(ext).toHaveLength(1);
    const [schema] = await sql`select 1 as ok from pg_namespace where nspname = 'cesar'`;
    expect(schema).toBeDefined();
  });

  it('create every table of the inventory', async () => {
    expect(await publicTables()).toEqual(expect.arrayContaining([
      'agents',
      'tasks',
      'task_dependencies',
      'sessions',
      'agent_sessions',
      'collaboration_sessions',
      'a2a_messages',
      'a2a_conversations',
      'llm_collaborations',
      'local_llm_learning_examples',
      'local_llm_training_batches',
      'llm_cache_metrics',
      'financial_data',
      'agent_events',
      'memory_episodic',
      'memory_semantic',
      'ingestion_log',
      'email_ingest_state',
    ]));
  });

  it('give every public table a UUID primary key, timestamps, an updated_at trigger and RLS', async () => {
    const rows = await sql<
      Array<
        {
          name: string;
          pk: string | null;
          rls: boolean;
          created: boolean;
          updated: boolean;
          trigger: boolean;
        }
      >
    >`
      select c.relname as name,
             (select format_type(a.atttypid, a.atttypmod)
                from pg_index i join pg_attribute a on a.attrelid = i.indrelid and a.attnum = i.indkey[0]
               where i.indrelid = c.oid and i.indisprimary and i.indnatts = 1) as pk,
             c.relrowsecurity as rls,
             exists (select from pg_attribute a where a.attrelid = c.oid and a.attname = 'created_at'
                       and a.atttypid = 'timestamptz'::regtype and a.attnotnull) as created,
             exists (select from pg_attribute a where a.attrelid = c.oid and a.attname = 'updated_at'
                       and a.atttypid = 'timestamptz'::regtype and a.attnotnull) as updated,
             exists (select from pg_trigger t where t.tgrelid = c.oid
                       and t.tgfoid = 'cesar.touch_updated_at'::regproc) as trigger
      from pg_class c
      where c.relnamespace = 'public'::regnamespace and c.relkind in ('r', 'p')
    `;
    expect(rows.length).toBeGreaterThanOrEqual(18);
    for (const row of rows) {
      expect(row, row.name).toEqual({
        name: row.name,
        pk: 'uuid',
        rls: true,
        created: true,
        updated: true,
        trigger: true,
      });
    }
  });

  it('link tasks, messages and memories to agents with foreign keys', async () => {
    const fks = await sql<Array<{ child: string; parent: string }>>`
      select conrelid::regclass::text as child, confrelid::regclass::text as parent
      from pg_constraint where contype = 'f' and connamespace = 'public'::regnamespace
    `;
    const pairs = fks.map((f) => `${f.child}->${f.parent}`);
    for (
      const expected of [
        'tasks->agents',
        'a2a_messages->agents',
        'a2a_messages->a2a_conversations',
        'memory_episodic->agents',
        'agent_sessions->sessions',
        'task_dependencies->tasks',
        'llm_collaborations->tasks',
      ]
    ) {
      expect(pairs).toContain(expected);
    }
  });

  it('keep updated_at current on update', async () => {
    await withRollback(sql, async (tx) => {
      const [agent] = await tx`
        insert into agents (name, type, updated_at) values ('touch-test', 'monitor', now() - interval '1 day')
        returning updated_at`;
      const [after] =
        await tx`update agents set status = 'idle' where name = 'touch-test' returning updated_at`;
      expect(after!.updated_at.getTime()).toBeGreaterThan(agent!.updated_at.getTime());
    });
  });
});

describe('row level security', () => {
  it('lets anon and authenticated read nothing and write nothing', async () => {
    await withRollback(sql, async (tx) => {
      await tx`set local role anon`;
      const [{ count }] = await tx`select count(*)::int as count from agents` as unknown as [
        { count: number },
      ];
      expect(count).toBe(0);
    });
    await withRollback(sql, async (tx) => {
      await tx`set local role authenticated`;
      const [{ count }] = await tx`select count(*)::int as count from tasks` as unknown as [
        { count: number },
      ];
      expect(count).toBe(0);
    });
    await expect(withRollback(sql, async (tx) => {
      await tx`set local role anon`;
      await tx`insert into agents (name, type) values ('sneaky', 'monitor')`;
    })).rejects.toThrow(/row-level security/);
  });

  it('lets the service role bypass it', async () => {
    await withRollback(sql, async (tx) => {
      const [{ all }] = await tx`select count(*)::int as all from agents` as unknown as [
        { all: number },
      ];
      await tx`set local role service_role`;
      const [{ count }] = await tx`select count(*)::int as count from agents` as unknown as [
        { count: number },
      ];
      expect(all).toBeGreaterThanOrEqual(48);
      expect(count).toBe(all);
    });
  });

  it('keeps the cesar schema from the API roles', async () => {
    await expect(withRollback(sql, async (tx) => {
      await tx`set local role anon`;
      await tx`select * from cesar.local_settings`;
    })).rejects.toThrow(/permission denied/);
    await expect(withRollback(sql, async (tx) => {
      await tx`set local role authenticated`;
      await tx`select cesar.setting('cesar_function_secret')`;
    })).rejects.toThrow(/permission denied/);
  });
});

describe('cesar.setting', () => {
  it('reads cesar.local_settings where there is no Vault', async () => {
    await withRollback(sql, async (tx) => {
      await tx`insert into cesar.local_settings (name, value) values ('test_setting', 'local-value')`;
      const [row] =
        await tx`select cesar.setting('test_setting') as value, cesar.setting('no_such_setting') as missing`;
      expect(row).toEqual({ value: 'local-value', missing: null });
    });
  });

  it('prefers Vault where vault.decrypted_secrets exists, falling back to local settings', async () => {
    await withRollback(sql, async (tx) => {
      // The shape of Supabase Vault's view, enough for the lookup.
      await tx`create schema vault`;
      await tx`create view vault.decrypted_secrets as
                 select * from (values ('test_setting', 'vault-value')) as s (name, decrypted_secret)`;
      await tx`insert into cesar.local_settings (name, value) values ('test_setting', 'local-value'), ('only_local', 'x')`;
      const [row] =
        await tx`select cesar.setting('test_setting') as vault, cesar.setting('only_local') as local`;
      expect(row).toEqual({ vault: 'vault-value', local: 'x' });
    });
  });

  it('require_setting names the missing setting', async () => {
    await expect(sql`select cesar.require_setting('no_such_setting')`).rejects.toThrow(
      'setting no_such_setting is not configured',
    );
  });
});

describe('seed', () => {
  it('has 48 agents of at least 10 types, each with capabilities', async () => {
    const [row] = await sql`
      select count(*)::int as agents, count(distinct type)::int as types,
             count(*) filter (where cardinality(capabilities) = 0)::int as without_capabilities
      from agents where metadata ->> 'seeded' = 'true'`;
    expect(row).toEqual({ agents: 48, types: expect.any(Number), without_capabilities: 0 });
    expect(row!.types).toBeGreaterThanOrEqual(10);
    const [other] =
      await sql`select (select count(*) from tasks)::int as tasks, (select count(*) from sessions)::int as sessions`;
    expect(other!.tasks).toBeGreaterThan(0);
    expect(other!.sessions).toBeGreaterThan(0);
  });

  it('is idempotent', async () => {
    const { readFile } = await import('node:fs/promises');
    const seed = await readFile(path.join(repoRoot, 'supabase/seed.sql'), 'utf8');
    await withRollback(sql, async (tx) => {
      const before =
        await tx`select (select count(*) from agents)::int a, (select count(*) from tasks)::int t, (select count(*) from sessions)::int s, (select count(*) from agent_sessions)::int j`;
      await tx.unsafe(seed);
      const after =
        await tx`select (select count(*) from agents)::int a, (select count(*) from tasks)::int t, (select count(*) from sessions)::int s, (select count(*) from agent_sessions)::int j`;
      expect(after).toEqual(before);
    }, 'isolation level repeatable read');
  });
});
