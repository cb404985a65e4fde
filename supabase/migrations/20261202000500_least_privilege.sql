-- Why: the API roles held every privilege on every public table (`grant all`), and row level
-- security does not govern all of them: TRUNCATE ignores RLS (`TRUNCATE public.agents CASCADE`
-- by anon wiped twelve tables, unseen by events and the mirror), and TRIGGER let anon attach
-- a trigger to public.tasks that later ran as whoever wrote the table. The API roles keep what
-- RLS-governed access needs: SELECT, INSERT, UPDATE, DELETE on tables and USAGE, SELECT on
-- sequences; nobody but the owner creates objects in public. tests/privileges.test.ts lists
-- every grant to anon, authenticated and PUBLIC and compares it with this intent.

revoke truncate, trigger, references on all tables in schema public from anon, authenticated;
revoke update on all sequences in schema public from anon, authenticated;
revoke create on schema public from public, anon, authenticated;

-- Tables and sequences made later by the migrations' role get the same.
alter default privileges in schema public
  revoke truncate, trigger, references on tables from anon, authenticated;
alter default privileges in schema public
  revoke update on sequences from anon, authenticated;

-- Every function gets EXECUTE for PUBLIC by PostgreSQL's default, which a schema's default
-- privileges cannot take away: the machinery's functions (the capture triggers, security
-- definer among them) lose it, now and for those made later. That default is the migration
-- role's in every schema, so functions it makes in public get EXECUTE for the API roles
-- explicitly, as hosted Supabase grants them; elsewhere a function is callable by whom it is
-- granted to. The API roles cannot reach the cesar schema anyway; the service role keeps what
-- it was granted.
revoke execute on all functions in schema cesar from public;
alter default privileges revoke execute on functions from public;
alter default privileges in schema public
  grant execute on functions to anon, authenticated, service_role;
