-- Why: the platform every other migration relies on, as on a hosted Supabase project: the API
-- roles (anon, authenticated, service_role), pg_cron, pg_net, a `cesar` schema for the
-- machinery and who may use it, the settings the machinery reads (functions' URL, shared
-- secret: Vault first), and the doorbell that asks a function to run now. On Supabase the
-- roles and pg_net already exist and these statements do nothing; on the local stack (plain
-- PostgreSQL 15) they create what is missing. pg_net has no Debian package: the local stack
-- installs a stand-in with pg_net's SQL interface before migrations run, so this file only
-- creates the real extension where it is available.
--
-- This baseline replaces the chain of migrations that built the schema step by step (kept,
-- unchanged, in tests/fixtures/migration-chain; tests/migration-baseline.test.ts proves that
-- both produce the same database). From here on migrations are forward-only: a change is a
-- new file after these, a landed file is never edited.

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

-- Every function gets EXECUTE for PUBLIC by PostgreSQL's default, which a schema's default
-- privileges cannot take away: the machinery's functions (the capture triggers, security
-- definer among them) must not have it. That default is the migration role's in every schema,
-- so it is revoked for every function this role makes; functions it makes in public get
-- EXECUTE for the API roles explicitly (see the rls_and_grants migration), as hosted Supabase
-- grants them; elsewhere a function is callable by whom it is granted to. The API roles cannot
-- reach the cesar schema anyway; the service role keeps what it was granted.
alter default privileges revoke execute on functions from public;

-- Keeps updated_at current on every row update, like Supabase's moddatetime. A row applied
-- from the mirror keeps the mirror's updated_at: last-writer-wins compares it.
create function cesar.touch_updated_at() returns trigger
language plpgsql
set search_path = ''
as $$
begin
  if coalesce(current_setting('cesar.origin', true), '') not in ('mirror', 'restore') then
    new.updated_at := now();
  end if;
  return new;
end
$$;

-- Settings: pg_cron jobs and triggers call the Edge Functions through pg_net and need the
-- functions' base URL and the shared secret. Those must never be literals in a migration or a
-- trigger definition. In production they live in Supabase Vault; the local stack has no
-- Vault, so it writes them to cesar.local_settings. cesar.setting() is the one way to read
-- them, and it prefers Vault wherever Vault exists.
--
-- Names used by the machinery:
--   cesar_functions_url     base URL of the functions, e.g. https://<ref>.supabase.co/functions/v1
--   cesar_function_secret   the CESAR_FUNCTION_SECRET the functions accept as a bearer token

create table cesar.local_settings (
  name text primary key check (name ~ '^[a-z][a-z0-9_]*$'),
  value text not null,
  updated_at timestamptz not null default now()
);
comment on table cesar.local_settings is
  'Settings for databases without Supabase Vault (the local stack). Vault wins where it exists.';

create trigger local_settings_touch before update on cesar.local_settings
  for each row execute function cesar.touch_updated_at();

create function cesar.setting(setting_name text) returns text
language plpgsql
stable
security definer
set search_path = ''
as $$
declare
  found text;
begin
  -- Vault's view is looked up at run time: the same function works with and without Vault.
  if to_regclass('vault.decrypted_secrets') is not null then
    execute 'select decrypted_secret from vault.decrypted_secrets where name = $1 limit 1'
      into found using setting_name;
    if found is not null then
      return found;
    end if;
  end if;
  select s.value into found from cesar.local_settings s where s.name = setting_name;
  return found;
end
$$;
comment on function cesar.setting(text) is
  'Reads a secret or setting: Supabase Vault (vault.decrypted_secrets) first, then cesar.local_settings.';

-- It returns secrets: nobody but the owner and the service role may call it.
revoke execute on function cesar.setting(text) from public, anon, authenticated;
grant execute on function cesar.setting(text) to service_role;

-- The same, but an error naming the setting when it is missing, for callers that cannot go on.
create function cesar.require_setting(setting_name text) returns text
language plpgsql
stable
security definer
set search_path = ''
as $$
declare
  found text := cesar.setting(setting_name);
begin
  if found is null or found = '' then
    raise exception 'setting % is not configured', setting_name
      using hint = 'Add it to Supabase Vault (select vault.create_secret(value, name)) or, on the local stack, to cesar.local_settings.',
            errcode = 'P0002';
  end if;
  return found;
end
$$;
revoke execute on function cesar.require_setting(text) from public, anon, authenticated;
grant execute on function cesar.require_setting(text) to service_role;

-- Doorbell: asks a function to run now instead of at the next pg_cron tick. At most one
-- pg_net call per transaction and function, however many rows the transaction writes. The
-- URL and secret come from cesar.setting() (Vault in production); without them, or without
-- pg_net, it does nothing and the tick does the work. Purely for latency: pg_net delivery
-- is never relied on.
create function cesar.ring_doorbell(target text) returns boolean
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  -- target: a function and optional path, e.g. 'job-drain' or 'webhook/drain'.
  flag text := 'cesar.doorbell.' || regexp_replace(target, '[^a-z0-9_]', '_', 'g');
  base_url text;
  secret text;
begin
  if coalesce(current_setting(flag, true), '') = 'rung' then
    return false;
  end if;
  perform set_config(flag, 'rung', true);
  if to_regprocedure('net.http_post(text,jsonb,jsonb,jsonb,integer)') is null then
    return false;
  end if;
  base_url := cesar.setting('cesar_functions_url');
  secret := cesar.setting('cesar_function_secret');
  if base_url is null or secret is null then
    return false;
  end if;
  perform net.http_post(
    rtrim(base_url, '/') || '/' || target,
    jsonb_build_object('reason', 'doorbell'),
    '{}'::jsonb,
    jsonb_build_object('Content-Type', 'application/json', 'Authorization', 'Bearer ' || secret),
    -- A drain answers once its queue is empty or its budget is spent: give it that long.
    60000
  );
  return true;
end
$$;
revoke execute on function cesar.ring_doorbell(text) from public, anon, authenticated;
