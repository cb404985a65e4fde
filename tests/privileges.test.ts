import { describe, expect, it } from 'vitest';
import { testSql, withRollback } from './helpers/db.ts';

// Every privilege the API roles (anon, authenticated) and PUBLIC hold on schemas, tables,
// views, sequences and security definer functions, against the intended list: the API roles
// get what RLS-governed access needs and nothing more (supabase/migrations/*platform* and
// *rls_and_grants*).

const sql = testSql();

const grants = (db = sql) =>
  db<Array<{ kind: string; object: string; grantee: string; privileges: string }>>`
  with grantee as (
    select 0::oid as oid, 'PUBLIC' as name
    union all select oid, rolname from pg_roles where rolname in ('anon', 'authenticated')
  )
  select 'schema' as kind, n.nspname as object, g.name as grantee,
         string_agg(a.privilege_type, ',' order by a.privilege_type) as privileges
  from pg_namespace n, aclexplode(coalesce(n.nspacl, acldefault('n', n.nspowner))) a
  join grantee g on g.oid = a.grantee
  group by 1, 2, 3
  union all
  select case c.relkind when 'S' then 'sequence' when 'v' then 'view'
                        when 'm' then 'materialized view' else 'table' end,
         n.nspname || '.' || c.relname, g.name,
         string_agg(a.privilege_type, ',' order by a.privilege_type)
  from pg_class c join pg_namespace n on n.oid = c.relnamespace,
       aclexplode(coalesce(c.relacl, acldefault('r', c.relowner))) a
  join grantee g on g.oid = a.grantee
  where c.relkind in ('r', 'p', 'v', 'm', 'S', 'f')
    and n.nspname not in ('pg_catalog', 'information_schema')
  group by 1, 2, 3
  union all
  select 'security definer function', p.oid::regprocedure::text, g.name, 'EXECUTE'
  from pg_proc p, aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a
  join grantee g on g.oid = a.grantee
  where p.prosecdef and a.privilege_type = 'EXECUTE'
  order by 1, 2, 3`;

describe('privileges of anon, authenticated and PUBLIC', () => {
  it('are exactly the intended ones', async () => {
    // One snapshot for both reads: other files create and drop public tables meanwhile.
    const { publicTables, granted } = await withRollback(sql, async (tx) => ({
      publicTables: await tx<Array<{ name: string }>>`
      select 'public.' || relname as name from pg_class
      where relnamespace = 'public'::regnamespace and relkind in ('r', 'p') order by 1`,
      granted: await grants(tx),
    }), 'isolation level repeatable read');
    const row = (kind: string, object: string, grantee: string, privileges: string) => ({
      kind,
      object,
      grantee,
      privileges,
    });
    const intended = [
      // PostgreSQL's own: its catalogs are readable by everyone, as on every server.
      row('schema', 'information_schema', 'PUBLIC', 'USAGE'),
      row('schema', 'pg_catalog', 'PUBLIC', 'USAGE'),
      // As on Supabase: the API roles use the public schema; RLS decides rows. No CREATE.
      row('schema', 'public', 'PUBLIC', 'USAGE'),
      row('schema', 'public', 'anon', 'USAGE'),
      row('schema', 'public', 'authenticated', 'USAGE'),
      // pg_cron's own grants; its row level security shows each role only its own jobs.
      row('sequence', 'cron.jobid_seq', 'PUBLIC', 'SELECT'),
      row('sequence', 'cron.runid_seq', 'PUBLIC', 'SELECT'),
      row('table', 'cron.job', 'PUBLIC', 'SELECT'),
      row('table', 'cron.job_run_details', 'PUBLIC', 'DELETE,SELECT'),
      // pg_net's own (0.12 and later, as on Supabase): anyone may queue a request, and its
      // functions are security invoker, so PUBLIC holds the schema and all of its tables.
      row('schema', 'net', 'PUBLIC', 'USAGE'),
      row('schema', 'net', 'anon', 'USAGE'),
      row('schema', 'net', 'authenticated', 'USAGE'),
      row('sequence', 'net.http_request_queue_id_seq', 'PUBLIC', 'SELECT,UPDATE,USAGE'),
      ...['net._http_response', 'net.http_request_queue'].map((t) =>
        row('table', t, 'PUBLIC', 'DELETE,INSERT,REFERENCES,SELECT,TRIGGER,TRUNCATE,UPDATE')
      ),
      // Supabase's Database Webhooks (supabase_functions, as `supabase start` and hosted have
      // it; not exposed through the API): the trigger function is callable by the API roles,
      // and its schema's default grants give them its tables.
      ...['anon', 'authenticated'].flatMap((role) => [
        row('schema', 'supabase_functions', role, 'USAGE'),
        row('security definer function', 'supabase_functions.http_request()', role, 'EXECUTE'),
        row('sequence', 'supabase_functions.hooks_id_seq', role, 'SELECT,UPDATE,USAGE'),
        ...['supabase_functions.hooks', 'supabase_functions.migrations'].map((t) =>
          row('table', t, role, 'DELETE,INSERT,REFERENCES,SELECT,TRIGGER,TRUNCATE,UPDATE')
        ),
      ]),
      // Every public table: what RLS governs, nothing it does not (no TRUNCATE, TRIGGER,
      // REFERENCES).
      ...publicTables.flatMap(({ name }) => [
        row('table', name, 'anon', 'DELETE,INSERT,SELECT,UPDATE'),
        row('table', name, 'authenticated', 'DELETE,INSERT,SELECT,UPDATE'),
      ]),
    ].sort((a, b) =>
      a.kind.localeCompare(b.kind) || a.object.localeCompare(b.object) ||
      a.grantee.localeCompare(b.grantee)
    );
    const actual = [...granted].sort((a, b) =>
      a.kind.localeCompare(b.kind) || a.object.localeCompare(b.object) ||
      a.grantee.localeCompare(b.grantee)
    );
    expect(actual).toEqual(intended);
  });

  it('gives what the migrations make later the same: tables and functions, by default', async () => {
    await withRollback(sql, async (tx) => {
      await tx`create table public.default_probe (id int primary key)`;
      await tx`create function public.default_probe_fn() returns int language sql return 1`;
      await tx`create function cesar.default_probe_fn() returns int language sql return 1`;
      const [table] = await tx`
        select has_table_privilege('anon', 'public.default_probe', 'SELECT') as select,
               has_table_privilege('anon', 'public.default_probe', 'TRUNCATE') as truncate,
               has_table_privilege('authenticated', 'public.default_probe', 'TRIGGER') as trigger,
               has_table_privilege('anon', 'public.default_probe', 'REFERENCES') as references`;
      expect(table).toEqual({ select: true, truncate: false, trigger: false, references: false });
      const [fn] = await tx`
        select has_function_privilege('anon', 'public.default_probe_fn()', 'EXECUTE') as public_fn,
               exists (select from pg_proc p, aclexplode(p.proacl) a
                       where p.oid = 'cesar.default_probe_fn()'::regprocedure and a.grantee = 0)
                 as machinery_fn_for_public`;
      expect(fn).toEqual({ public_fn: true, machinery_fn_for_public: false });
    });
  });

  it('lets anon neither TRUNCATE a table nor attach a trigger to one', async () => {
    await expect(withRollback(sql, async (tx) => {
      await tx`set local role anon`;
      await tx`truncate public.agents cascade`;
    })).rejects.toThrow(/permission denied/);
    await expect(withRollback(sql, async (tx) => {
      await tx`set local role anon`;
      await tx`create trigger anon_trap before insert on public.tasks
               for each row execute function public.anon_trap()`;
    })).rejects.toThrow(/permission denied for table tasks/);
    await expect(withRollback(sql, async (tx) => {
      await tx`set local role authenticated`;
      await tx`create table public.anon_made (id int)`;
    })).rejects.toThrow(/permission denied/);
  });

  it('refuses a TRUNCATE of a watched table even to its owner: it would make no event', async () => {
    await expect(withRollback(sql, async (tx) => {
      await tx`truncate public.agents cascade`;
    })).rejects.toThrow(/TRUNCATE of public\.agents is refused: the table is captured/);
    await withRollback(sql, async (tx) => {
      await tx`create table public.truncate_probe (id int primary key)`;
      await tx`truncate public.truncate_probe`; // not watched: allowed
      await tx`select cesar.watch('public.truncate_probe')`;
      await expect(tx`truncate public.truncate_probe`).rejects.toThrow(/is refused/);
    });
  });
});
