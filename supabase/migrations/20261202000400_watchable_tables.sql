-- Why: a template could watch any table, a native webhook payload could name any table, and
-- watch() refused only the cesar schema. A template on net.http_request_queue fed itself
-- (each event's doorbell is a row there: 3,215 events in 5 s), and pg_catalog.pg_authid or a
-- cron table could be named. The tables of the system, of Supabase and of this project's
-- machinery are refused, by watch() and by the functions alike, with the reason.
--
-- And a TRUNCATE of a watched table made no event: rows vanished that no workflow and no
-- mirror ever heard of. It is refused now (delete the rows, which is captured, or unwatch the
-- table first).

-- Null when the table is an operator's to watch; otherwise why not. Supabase Auth's tables
-- are refused too, auth.users included: its rows carry password hashes and tokens, which
-- events, placeholders and the mirror would spread (react to sign-ups with an Auth hook or a
-- trigger that copies the public fields to a table of your own).
create function cesar.system_table_reason(target regclass) returns text
language sql
stable
set search_path = ''
as $$
  select case
    when n.nspname = 'cesar' then 'the cesar schema is machinery'
    when n.nspname in ('net', 'cron', 'vault', 'supabase_functions', 'supabase_migrations',
                       'storage', 'realtime', '_realtime', 'graphql', 'graphql_public',
                       'extensions', 'pgsodium', 'pgsodium_masks', 'pgbouncer',
                       'information_schema')
         or n.nspname like 'pg\_%'
      then 'the ' || n.nspname || ' schema belongs to the system or to Supabase'
    when n.nspname = 'auth'
      then 'Supabase Auth''s tables hold password hashes and tokens; copy what you need to a table of your own'
    when c.relkind not in ('r', 'p') then 'it is not a table'
  end
  from pg_class c join pg_namespace n on n.oid = c.relnamespace
  where c.oid = target
$$;

revoke execute on function cesar.system_table_reason(regclass) from public, anon, authenticated;
grant execute on function cesar.system_table_reason(regclass) to service_role;

create function cesar.refuse_truncate() returns trigger
language plpgsql
set search_path = ''
as $$
begin
  raise exception 'TRUNCATE of %.% is refused: the table is watched, and a TRUNCATE makes no event; delete the rows, or unwatch the table first',
    tg_table_schema, tg_table_name using errcode = '0A000';
end
$$;

create or replace function cesar.watch(target regclass) returns text
language plpgsql
set search_path = ''
as $$
declare
  key_column text := cesar.single_key_column(target);
  columns text[] := cesar.column_list(target);
  rel record;
  store record;
  store_id integer;
begin
  select n.nspname as schema_name, c.relname as table_name into rel
  from pg_class c join pg_namespace n on n.oid = c.relnamespace where c.oid = target;
  if key_column is null then
    raise exception 'cannot watch %: it needs a single-column primary key', target using errcode = '22023';
  end if;
  if cesar.system_table_reason(target) is not null then
    raise exception 'cannot watch %: %', target, cesar.system_table_reason(target) using errcode = '22023';
  end if;
  select * into store from cesar.capture_stores s where s.relid = target and s.retired_at is null;
  if store.id is not null
     and (store.columns, store.key_column, store.schema_name, store.table_name)
         is not distinct from (columns, key_column, rel.schema_name, rel.table_name) then
    store_id := store.id;
  else
    update cesar.capture_stores s set retired_at = now() where s.id = store.id;
    store_id := cesar.create_capture_store(target, rel.schema_name, rel.table_name, key_column, columns);
  end if;
  execute format('drop trigger if exists cesar_capture_insert on %s', target);
  execute format('drop trigger if exists cesar_capture_update on %s', target);
  execute format('drop trigger if exists cesar_capture_delete on %s', target);
  execute format('create trigger cesar_capture_insert after insert on %s referencing new table as new_rows '
                 'for each statement execute function cesar.%I()', target, 'capture_' || store_id);
  execute format('create trigger cesar_capture_update after update on %s referencing old table as old_rows new table as new_rows '
                 'for each statement execute function cesar.%I()', target, 'capture_' || store_id);
  execute format('create trigger cesar_capture_delete after delete on %s referencing old table as old_rows '
                 'for each statement execute function cesar.%I()', target, 'capture_' || store_id);
  execute format('drop trigger if exists cesar_refuse_truncate on %s', target);
  execute format('create trigger cesar_refuse_truncate before truncate on %s '
                 'for each statement execute function cesar.refuse_truncate()', target);
  delete from cesar.watched_tables w
  where w.table_name = store.schema_name || '.' || store.table_name;
  insert into cesar.watched_tables (table_name, key_column)
  values (rel.schema_name || '.' || rel.table_name, key_column)
  on conflict (table_name) do update set key_column = excluded.key_column;
  return rel.schema_name || '.' || rel.table_name;
end
$$;

create or replace function cesar.unwatch(target regclass) returns text
language plpgsql
set search_path = ''
as $$
declare
  name text;
begin
  select n.nspname || '.' || c.relname into name
  from pg_class c join pg_namespace n on n.oid = c.relnamespace where c.oid = target;
  execute format('drop trigger if exists cesar_capture_insert on %s', target);
  execute format('drop trigger if exists cesar_capture_update on %s', target);
  execute format('drop trigger if exists cesar_capture_delete on %s', target);
  execute format('drop trigger if exists cesar_refuse_truncate on %s', target);
  update cesar.capture_stores s set retired_at = now() where s.relid = target and s.retired_at is null;
  delete from cesar.watched_tables where table_name = name;
  return name;
end
$$;

-- ALTER TABLE on a watched table watches it again; a table this migration or a later rule
-- refuses (see below) is unwatched instead of failing the ALTER.
create or replace function cesar.rewatch_altered_tables() returns event_trigger
language plpgsql
security definer
set search_path = ''
as $$
declare
  altered oid;
begin
  for altered in
    select distinct c.objid
    from pg_event_trigger_ddl_commands() c
    join cesar.capture_stores s on s.relid = c.objid and s.retired_at is null
    where c.command_tag = 'ALTER TABLE'
  loop
    if cesar.system_table_reason(altered::regclass) is not null then
      raise notice 'cesar: % may not be watched (%); unwatched', altered::regclass,
        cesar.system_table_reason(altered::regclass);
      perform cesar.unwatch(altered::regclass);
    elsif cesar.single_key_column(altered) is not null then
      perform cesar.watch(altered::regclass);
    else
      raise notice 'cesar: % has no single-column primary key now; its capture is unchanged', altered::regclass;
    end if;
  end loop;
end
$$;

-- The tables watched already: those now refused (a template on net.http_request_queue, say)
-- are unwatched and their templates disabled, the others refuse TRUNCATE from now on.
do $$
declare
  t record;
begin
  for t in select s.relid::regclass as target, cesar.system_table_reason(s.relid::regclass) as refused
           from cesar.capture_stores s where s.retired_at is null
  loop
    if t.refused is not null then
      raise notice 'cesar: % may not be watched (%): unwatched, its templates disabled', t.target, t.refused;
      update cesar.workflow_templates w set enabled = false
      where w.trigger ->> 'type' = 'database_event'
        and to_regclass(w.trigger ->> 'table') = t.target;
      perform cesar.unwatch(t.target);
    else
      execute format('create trigger cesar_refuse_truncate before truncate on %s '
                     'for each statement execute function cesar.refuse_truncate()', t.target);
    end if;
  end loop;
end
$$;
