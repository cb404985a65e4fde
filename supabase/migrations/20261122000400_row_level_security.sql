-- Why: the public schema is exposed through Supabase's API to the anon and authenticated
-- roles. Row level security is enabled on every public table with no policy, so those roles
-- read and write nothing until a policy says otherwise; the service role bypasses RLS, and
-- the functions connect as the database owner. A test asserts that no public table is
-- without RLS, so a table added later without it fails CI.

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

grant all on all tables in schema public to anon, authenticated, service_role;
