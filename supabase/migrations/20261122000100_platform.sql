-- Why: every later migration relies on the same platform as a hosted Supabase project:
-- the API roles (anon, authenticated, service_role), pg_cron, pg_net, and a `cesar` schema
-- for the machinery. On Supabase the roles and pg_net already exist and these statements do
-- nothing; on the local stack (plain PostgreSQL 15) they create what is missing. pg_net has
-- no Debian package: the local stack installs a stand-in with pg_net's SQL interface before
-- migrations run, so this file only creates the real extension where it is available.

do $$
begin
  if not exists (select from pg_roles where rolname = 'anon') then
    create role anon nologin noinherit;
  end if;
  if not exists (select from pg_roles where rolname = 'authenticated') then
    create role authenticated nologin noinherit;
  end if;
  if not exists (select from pg_roles where rolname = 'service_role') then
    create role service_role nologin noinherit bypassrls;
  end if;
end
$$;

create extension if not exists pg_cron;

do $$
begin
  if exists (select from pg_available_extensions where name = 'pg_net')
     and not exists (select from pg_extension where extname = 'pg_net') then
    create extension pg_net;
  end if;
end
$$;

create schema if not exists cesar;
comment on schema cesar is 'CESAR Edge machinery: settings, events, jobs, workflows, sync, monitoring.';

-- The machinery is for the service role and the functions' own connection, never for the
-- public API roles.
revoke all on schema cesar from public, anon, authenticated;
grant usage on schema cesar to service_role;
alter default privileges in schema cesar grant all on tables to service_role;
alter default privileges in schema cesar grant all on sequences to service_role;
alter default privileges in schema cesar revoke execute on functions from public;
alter default privileges in schema cesar grant execute on functions to service_role;

-- As on Supabase: the API roles may use the public schema; row level security decides rows.
grant usage on schema public to anon, authenticated, service_role;
alter default privileges in schema public grant all on tables to anon, authenticated, service_role;
alter default privileges in schema public grant all on sequences to anon, authenticated, service_role;

-- Keeps updated_at current on every row update, like Supabase's moddatetime.
create function cesar.touch_updated_at() returns trigger
language plpgsql
set search_path = ''
as $$
begin
  new.updated_at := now();
  return new;
end
$$;
