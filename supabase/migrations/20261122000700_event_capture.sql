-- Why: INSERT / UPDATE / DELETE on the agents' tables must run workflows without ever losing
-- a change. The change is written to cesar.event_log inside the writer's own transaction
-- (so a committed change always has its event and a rolled-back one never does), by
-- statement-level triggers that read the statement's transition tables: one INSERT ... SELECT
-- per statement instead of one per row. A doorbell (one pg_net call per transaction) asks
-- the webhook function to process events at once; a pg_cron sweep every tick is the net.

create table cesar.event_log (
  id bigint generated always as identity primary key,
  schema_name text not null,
  table_name text not null,
  op text not null check (op in ('INSERT', 'UPDATE', 'DELETE')),
  record jsonb,
  old_record jsonb,
  -- UPDATE: the columns whose values changed (updated_at aside).
  changed_columns text[],
  -- The changed row's primary key, as text: events of one row are processed in id order.
  row_key text,
  -- The writer's transaction (pg_current_xact_id); null for native webhook deliveries.
  txid bigint,
  source text not null default 'trigger' check (source in ('trigger', 'webhook')),
  -- Native webhook deliveries: a digest of the payload, so a re-delivery is recognised.
  dedup_key text,
  status text not null default 'pending'
    check (status in ('pending', 'processing', 'processed', 'ignored', 'failed')),
  attempts integer not null default 0,
  last_error text,
  occurred_at timestamptz not null default now(),
  processed_at timestamptz
);
comment on table cesar.event_log is 'Every captured change of a watched table, written in the writer''s transaction.';

-- Every index here is paid for by every captured row, in the writer's transaction, so there
-- are as few as the claim needs: measured on a 10,000-row insert into a copy of tasks, an
-- index on (table_name, row_key, id) alone cost 45 ms of 163. Listing, replay and retention
-- walk the primary key (ids grow with time).
create index event_log_pending_idx on cesar.event_log (id) where status in ('pending', 'processing');
create unique index event_log_dedup_idx on cesar.event_log (dedup_key) where dedup_key is not null;

-- One drain processes events at a time, holding this lease: batches are then turned into
-- jobs strictly in event order, which keeps each row's events in order without an index on
-- the capture path. A lease, not a session lock, so it works through Supabase's transaction
-- pooler; a drain that dies loses it when it runs out.
create table cesar.event_processor (
  id boolean primary key default true check (id),
  holder text,
  lease_until timestamptz not null default '-infinity'
);
insert into cesar.event_processor default values;

create table cesar.watched_tables (
  table_name text primary key,
  key_column text not null,
  watched_at timestamptz not null default now()
);

-- The capture function, for the three statement triggers of a watched table. It runs with
-- the writer's rights plus its own (security definer, owner: the migration role) so that any
-- role allowed to write a watched table also writes its events, while cesar stays closed to
-- it. TG_ARGV[0] names the key column. Rows are turned into JSON as alias.*: a bare alias
-- would mean a column of the same name. An UPDATE pairs old and new rows by key; one that
-- changes nothing but updated_at makes no event (one that changes the key itself is recorded
-- as the new row's event, without an old image). Each branch names only the transition
-- tables its operation has: PL/pgSQL plans a statement when it first runs it.
create function cesar.capture() returns trigger
language plpgsql
security definer
set search_path = ''
as $$
declare
  txid bigint := pg_current_xact_id()::text::bigint;
begin
  if tg_op = 'INSERT' then
    insert into cesar.event_log (schema_name, table_name, op, record, row_key, txid)
    select tg_table_schema, tg_table_name, tg_op, r.doc, r.doc ->> tg_argv[0], txid
    from (select to_jsonb(n.*) as doc from new_rows n) r;
  elsif tg_op = 'DELETE' then
    insert into cesar.event_log (schema_name, table_name, op, old_record, row_key, txid)
    select tg_table_schema, tg_table_name, tg_op, r.doc, r.doc ->> tg_argv[0], txid
    from (select to_jsonb(o.*) as doc from old_rows o) r;
  else
    insert into cesar.event_log (schema_name, table_name, op, record, old_record, changed_columns, row_key, txid)
    select tg_table_schema, tg_table_name, tg_op, n.doc, o.doc, c.changed, n.doc ->> tg_argv[0], txid
    from (select to_jsonb(x.*) as doc from new_rows x) n
    left join (select to_jsonb(x.*) as doc from old_rows x) o on (o.doc ->> tg_argv[0]) = (n.doc ->> tg_argv[0])
    cross join lateral (
      select array_agg(k.key order by k.key) as changed
      from jsonb_each(n.doc) k
      where k.key <> 'updated_at' and k.value is distinct from (o.doc -> k.key)
    ) c
    where c.changed is not null;
  end if;
  if found then
    perform cesar.ring_doorbell('webhook/drain');
  end if;
  return null;
end
$$;

-- Watching is data: cesar.watch('public.tasks') adds the three triggers, cesar.unwatch drops
-- them. The table needs a single-column primary key.
create function cesar.watch(target regclass) returns text
language plpgsql
set search_path = ''
as $$
declare
  key_column text;
  rel record;
begin
  select n.nspname as schema_name, c.relname as table_name into rel
  from pg_class c join pg_namespace n on n.oid = c.relnamespace where c.oid = target;
  select a.attname into key_column
  from pg_index i join pg_attribute a on a.attrelid = i.indrelid and a.attnum = i.indkey[0]
  where i.indrelid = target and i.indisprimary and i.indnatts = 1;
  if key_column is null then
    raise exception 'cannot watch %: it needs a single-column primary key', target using errcode = '22023';
  end if;
  if rel.schema_name = 'cesar' then
    raise exception 'cannot watch %: the cesar schema is machinery', target using errcode = '22023';
  end if;
  execute format('drop trigger if exists cesar_capture_insert on %s', target);
  execute format('drop trigger if exists cesar_capture_update on %s', target);
  execute format('drop trigger if exists cesar_capture_delete on %s', target);
  execute format('create trigger cesar_capture_insert after insert on %s referencing new table as new_rows '
                 'for each statement execute function cesar.capture(%L)', target, key_column);
  execute format('create trigger cesar_capture_update after update on %s referencing old table as old_rows new table as new_rows '
                 'for each statement execute function cesar.capture(%L)', target, key_column);
  execute format('create trigger cesar_capture_delete after delete on %s referencing old table as old_rows '
                 'for each statement execute function cesar.capture(%L)', target, key_column);
  insert into cesar.watched_tables (table_name, key_column)
  values (rel.schema_name || '.' || rel.table_name, key_column)
  on conflict (table_name) do update set key_column = excluded.key_column;
  return rel.schema_name || '.' || rel.table_name;
end
$$;

create function cesar.unwatch(target regclass) returns text
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
  delete from cesar.watched_tables where table_name = name;
  return name;
end
$$;

revoke execute on function cesar.watch(regclass), cesar.unwatch(regclass) from public, anon, authenticated;
grant execute on function cesar.watch(regclass), cesar.unwatch(regclass) to service_role;

select cesar.watch(t::regclass)
from unnest(array['public.agents', 'public.tasks', 'public.sessions', 'public.a2a_messages',
                  'public.a2a_conversations', 'public.llm_collaborations',
                  'public.local_llm_learning_examples']) as t;
