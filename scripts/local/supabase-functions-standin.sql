-- Local stand-in for what `supabase start` and every hosted project have for Database Webhooks:
-- schema supabase_functions, its audit table hooks, the trigger function http_request() that
-- Studio's webhooks call, and the role supabase_functions_admin that owns them. Written from
-- the documented contract (supabase/postgres migration 20240822021428_enable_webhooks_by_default
-- describes the shipped objects): trigger arguments url, method ('GET' or 'POST'), headers
-- (JSON), params (JSON), timeout_ms; the POST body {old_record, record, type, table, schema};
-- one hooks row per call with pg_net's request id.
--
-- Installed by the local stack and the tests right after the pg_net stand-in, never in
-- production. Skipped where the real schema exists (its comment is not this file's).
-- Idempotent: run again, it refreshes the function and the grants.

-- The API roles exist before any migration on Supabase; the platform migration creates them
-- the same way where they are missing.
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
  if not exists (select from pg_roles where rolname = 'supabase_functions_admin') then
    -- As on Supabase: a login role whose search_path is its schema.
    create role supabase_functions_admin noinherit createrole login noreplication;
  end if;
end
$$;
alter role supabase_functions_admin set search_path = supabase_functions;

create schema if not exists supabase_functions;
comment on schema supabase_functions is
  'Local stand-in for Supabase Database Webhooks (scripts/local/supabase-functions-standin.sql).';

create table if not exists supabase_functions.migrations (
  version text primary key,
  inserted_at timestamptz not null default now()
);
insert into supabase_functions.migrations (version)
values ('initial'), ('20210809183423_update_grants')
on conflict do nothing;

create table if not exists supabase_functions.hooks (
  id bigserial primary key,
  hook_table_id integer not null,
  hook_name text not null,
  created_at timestamptz not null default now(),
  request_id bigint
);
create index if not exists supabase_functions_hooks_request_id_idx
  on supabase_functions.hooks (request_id);
create index if not exists supabase_functions_hooks_h_table_id_h_name_idx
  on supabase_functions.hooks (hook_table_id, hook_name);
comment on table supabase_functions.hooks is
  'Supabase Functions Hooks: Audit trail for triggered hooks.';

-- The webhook trigger. Security definer (owner supabase_functions_admin) with its own
-- search_path, as Supabase defines it: whoever writes the table (service_role, authenticated
-- through PostgREST) fires it without any privilege on net or on hooks. An argument that is
-- missing or the text 'null' takes the documented default; a bad one fails the write, as on
-- Supabase, with a message naming the argument.
create or replace function supabase_functions.http_request()
returns trigger
language plpgsql
security definer
set search_path = supabase_functions
as $$
declare
  url text := tg_argv[0];
  method text := tg_argv[1];
  headers jsonb := '{"Content-Type": "application/json"}';
  params jsonb := '{}';
  timeout_ms integer := 1000;
  request_id bigint;
begin
  if url is null or url = 'null' then
    raise exception 'url argument is missing';
  end if;
  if method is null or method = 'null' then
    raise exception 'method argument is missing';
  end if;
  begin
    if tg_nargs > 2 and tg_argv[2] <> 'null' then
      headers := tg_argv[2]::jsonb;
    end if;
    if tg_nargs > 3 and tg_argv[3] <> 'null' then
      params := tg_argv[3]::jsonb;
    end if;
    if tg_nargs > 4 and tg_argv[4] <> 'null' then
      timeout_ms := tg_argv[4]::integer;
    end if;
  exception when data_exception then
    raise exception 'webhook % on %.%: headers and params must be JSON, timeout_ms an integer (%)',
      tg_name, tg_table_schema, tg_table_name, sqlerrm using errcode = '22023';
  end;

  if method = 'GET' then
    request_id := net.http_get(url, params, headers, timeout_ms);
  elsif method = 'POST' then
    -- OLD and NEW are null where the operation has none (INSERT, DELETE): JSON null.
    request_id := net.http_post(
      url,
      jsonb_build_object('old_record', old, 'record', new, 'type', tg_op,
                         'table', tg_table_name, 'schema', tg_table_schema),
      params,
      headers,
      timeout_ms
    );
  else
    raise exception 'method argument % is invalid', method;
  end if;

  insert into supabase_functions.hooks (hook_table_id, hook_name, request_id)
  values (tg_relid, tg_name, request_id);
  return new;
end
$$;

-- Ownership and grants as Supabase ships them: supabase_functions_admin owns the objects (and
-- postgres is a member); the schema is usable and the function callable by the API roles and
-- postgres, not by PUBLIC. The tables keep the schema's default grants on Supabase (ALL to
-- postgres, anon, authenticated, service_role); the schema is not exposed through the API.
alter table supabase_functions.migrations owner to supabase_functions_admin;
alter table supabase_functions.hooks owner to supabase_functions_admin;
alter function supabase_functions.http_request() owner to supabase_functions_admin;
grant all on schema supabase_functions to supabase_functions_admin;
grant supabase_functions_admin to postgres;

grant usage on schema supabase_functions to postgres, anon, authenticated, service_role;
grant all on all tables in schema supabase_functions to postgres, anon, authenticated, service_role;
grant all on all sequences in schema supabase_functions
  to postgres, anon, authenticated, service_role;
revoke all on function supabase_functions.http_request() from public;
grant execute on function supabase_functions.http_request()
  to postgres, anon, authenticated, service_role;

-- Supabase's grant_pg_net_access event trigger gives these roles USAGE on schema net
-- explicitly (pg_net 0.12 and later gives it to PUBLIC as well).
do $$
begin
  if exists (select from pg_namespace where nspname = 'net') then
    grant usage on schema net
      to supabase_functions_admin, postgres, anon, authenticated, service_role;
  end if;
end
$$;
