-- Local stand-in for Supabase's pg_net, which has no Debian package. It has pg_net's SQL
-- interface (net.http_get / http_post / http_delete, net.http_request_queue,
-- net._http_response) so migrations and Supabase's Database Webhook trigger run unchanged;
-- scripts/local/pg-net-worker.ts performs the queued requests. Like pg_net, a request is
-- only sent after the transaction that queued it commits: the worker reads committed rows,
-- and NOTIFY is delivered at commit.
--
-- Installed by the local stack and the tests before migrations; never in production, where
-- `create extension pg_net` provides the real thing. Idempotent.

create schema if not exists net;

-- Unlogged, as in pg_net: requests are not worth a WAL flush, and a crash may drop them.
create unlogged table if not exists net.http_request_queue (
  id bigserial primary key,
  method text not null check (method in ('GET', 'POST', 'DELETE')),
  url text not null,
  headers jsonb not null default '{}',
  body bytea,
  timeout_milliseconds integer not null
);

create unlogged table if not exists net._http_response (
  id bigint,
  status_code integer,
  content_type text,
  headers jsonb,
  content text,
  timed_out boolean,
  error_msg text,
  created timestamptz not null default now()
);
create index if not exists _http_response_created_idx on net._http_response (created);

-- params are url-encoded and appended to the url, as pg_net does.
create or replace function net._encode_url_with_params_array(url text, params jsonb)
returns text
language sql
immutable
as $$
  select case
    when params is null or params = '{}'::jsonb then url
    else url || case when strpos(url, '?') > 0 then '&' else '?' end || (
      select string_agg(
        replace(replace(replace(key, '%', '%25'), '&', '%26'), '=', '%3D') || '=' ||
        replace(replace(replace(replace(value, '%', '%25'), '&', '%26'), '=', '%3D'), ' ', '%20'),
        '&')
      from jsonb_each_text(params))
  end
$$;

create or replace function net._enqueue(method text, url text, headers jsonb, body bytea,
                                        timeout_milliseconds integer)
returns bigint
language plpgsql
as $$
declare
  request_id bigint;
begin
  insert into net.http_request_queue (method, url, headers, body, timeout_milliseconds)
  values (method, url, coalesce(headers, '{}'::jsonb), body, timeout_milliseconds)
  returning id into request_id;
  perform pg_notify('cesar_pg_net', request_id::text);
  return request_id;
end
$$;

create or replace function net.http_get(
  url text,
  params jsonb default '{}'::jsonb,
  headers jsonb default '{}'::jsonb,
  timeout_milliseconds integer default 5000
) returns bigint
language sql
as $$
  select net._enqueue('GET', net._encode_url_with_params_array(url, params), headers, null,
                      timeout_milliseconds)
$$;

-- As pg_net: a Content-Type header (any letter case; Studio writes "Content-type") must say
-- application/json, and is added when missing.
create or replace function net.http_post(
  url text,
  body jsonb default '{}'::jsonb,
  params jsonb default '{}'::jsonb,
  headers jsonb default '{"Content-Type": "application/json"}'::jsonb,
  timeout_milliseconds integer default 5000
) returns bigint
language plpgsql
as $$
declare
  content_type text;
begin
  select value into content_type
  from jsonb_each_text(coalesce(headers, '{}'::jsonb))
  where lower(key) = 'content-type'
  limit 1;
  if content_type is null then
    headers := coalesce(headers, '{}'::jsonb) || '{"Content-Type": "application/json"}'::jsonb;
  elsif content_type <> 'application/json' then
    raise exception 'Content-Type header must be "application/json"';
  end if;
  return net._enqueue('POST', net._encode_url_with_params_array(url, params), headers,
                      convert_to(body::text, 'UTF8'), timeout_milliseconds);
end
$$;

create or replace function net.http_delete(
  url text,
  params jsonb default '{}'::jsonb,
  headers jsonb default '{}'::jsonb,
  timeout_milliseconds integer default 5000
) returns bigint
language sql
as $$
  select net._enqueue('DELETE', net._encode_url_with_params_array(url, params), headers, null,
                      timeout_milliseconds)
$$;

-- Privileges as pg_net 0.12 and later ships them on Supabase: the request functions are
-- security invoker and callable by everyone, so whoever calls one needs the tables too, and
-- PUBLIC has USAGE on the schema and every privilege on its tables and sequences (without
-- them a call fails with "permission denied for schema net", then "... for table
-- http_request_queue": Supabase's troubleshooting guide for that error is to re-create the
-- extension at a version that has these grants). Supabase's Database Webhook function calls
-- pg_net as its owner, supabase_functions_admin (supabase-functions-standin.sql).
grant usage on schema net to public;
grant all on all tables in schema net to public;
grant all on all sequences in schema net to public;
-- Granted explicitly: the migrations revoke EXECUTE from PUBLIC in default privileges, which
-- would otherwise apply to a function this file creates on a database already migrated.
grant execute on all functions in schema net to public;
