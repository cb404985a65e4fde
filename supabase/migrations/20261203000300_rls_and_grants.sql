-- Why: the public schema is exposed through Supabase's API to the anon and authenticated
-- roles. Row level security is enabled on every public table with no policy, so those roles
-- read and write nothing until a policy says otherwise; the service role bypasses RLS, and
-- the functions connect as the database owner. A test asserts that no public table is
-- without RLS, so a table added later without it fails CI.
--
-- And RLS does not govern every privilege: TRUNCATE ignores it (`TRUNCATE public.agents
-- CASCADE` by anon wiped twelve tables, unseen by events and the mirror), and TRIGGER let anon
-- attach a trigger to public.tasks that later ran as whoever wrote the table. So the API roles
-- get what RLS-governed access needs and nothing more: SELECT, INSERT, UPDATE, DELETE on
-- tables and USAGE, SELECT on sequences; nobody but the owner creates objects in public.
-- tests/privileges.test.ts lists every grant to anon, authenticated and PUBLIC and compares it
-- with this intent. (The cesar schema's privileges are set with the schema, in the platform
-- migration.)

do $$
declare
  t record;
begin
  for t in select c.relname from pg_class c
           where c.relnamespace = 'public'::regnamespace and c.relkind in ('r', 'p')
  loop
    execute format('alter table public.%I enable row level security', t.relname);
  end loop;
end
$$;

-- As on Supabase: the API roles may use the public schema; row level security decides rows.
grant usage on schema public to anon, authenticated, service_role;
revoke create on schema public from public, anon, authenticated;

grant select, insert, update, delete on all tables in schema public to anon, authenticated;
grant all on all tables in schema public to service_role;

-- Tables and sequences made later by the migrations' role get the same.
alter default privileges in schema public grant all on tables to anon, authenticated, service_role;
alter default privileges in schema public
  revoke truncate, trigger, references on tables from anon, authenticated;
alter default privileges in schema public grant all on sequences to anon, authenticated, service_role;
alter default privileges in schema public
  revoke update on sequences from anon, authenticated;

-- Functions the migrations' role makes in public are callable by the API roles, as hosted
-- Supabase grants them (for every other function, EXECUTE is granted where it is meant: see
-- the platform migration).
alter default privileges in schema public
  grant execute on functions to anon, authenticated, service_role;
