-- Why: the CockroachDB mirror. Which tables are mirrored is data (cesar.sync_tables). Every
-- change to them is captured in the writer's transaction, and the capture's expansion
-- (cesar.expand_captures, in the capture migration) marks the changed row dirty in
-- cesar.sync_outbox; a push copies dirty rows to the mirror and clears them. Being
-- status-based (a row is dirty until pushed), this cannot skip a row whose transaction
-- committed after a later one: the late commit's capture is simply expanded when it becomes
-- visible, and marks its row dirty then.
--
-- The pull (mirror -> primary), both directions, and restore: a pulled change is written to
-- the primary with the origin marker `cesar.origin = 'mirror'` (a transaction-local setting):
-- its event is still captured (workflows run on pulled data, the audit is whole), but it is
-- not marked dirty for the push, so it does not bounce back to the mirror; and its updated_at
-- is the mirror's (cesar.touch_updated_at), which last-writer-wins needs. Conflicts keep
-- their losing version in cesar.sync_conflicts.

create table cesar.sync_tables (
  table_name text primary key check (table_name ~ '^[a-z_][a-z0-9_]*\.[a-z_][a-z0-9_]*$'),
  enabled boolean not null default true,
  created_at timestamptz not null default now()
);

-- Mirroring is data too: a row in cesar.sync_tables (enabled) captures the table for the
-- outbox (cesar.recapture); deleting or disabling it stops that.
create function cesar.recapture_mirrored_table() returns trigger
language plpgsql
set search_path = ''
as $$
begin
  if tg_op in ('UPDATE', 'DELETE') and to_regclass(old.table_name) is not null then
    perform cesar.recapture(to_regclass(old.table_name));
  end if;
  if tg_op in ('INSERT', 'UPDATE') then
    if to_regclass(new.table_name) is null then
      raise exception 'cannot mirror %: no such table', new.table_name using errcode = '42P01';
    end if;
    perform cesar.recapture(to_regclass(new.table_name));
  end if;
  return null;
end
$$;
create trigger recapture_mirrored_table after insert or update or delete on cesar.sync_tables
  for each row execute function cesar.recapture_mirrored_table();
-- Rows changed since they were last pushed, one entry per row: the last change wins. The
-- entries carry the change itself (id, transaction, time), not an event's id, so that the
-- sync never reads the event log. change_id orders the entries: one value per expansion,
-- from cesar.sync_change_seq (expansions run one at a time, in statement order), so a later
-- change of a row always has a larger one; 0 for entries the sync made itself.
create table cesar.sync_outbox (
  table_name text not null,
  row_key text not null,
  op text not null check (op in ('INSERT', 'UPDATE', 'DELETE')),
  change_id bigint not null,
  txid bigint,
  occurred_at timestamptz,
  primary key (table_name, row_key)
);
-- The push pages through a table's dirty rows in (change_id, row_key) order.
create index sync_outbox_order_idx on cesar.sync_outbox (table_name, change_id, row_key);
create sequence cesar.sync_change_seq;

-- Marks every row of a table dirty: the first push, or after the mirror was rebuilt.
create function cesar.sync_backfill(target text) returns integer
language plpgsql
volatile
set search_path = ''
as $$
declare
  key_column text := cesar.single_key_column(to_regclass(target));
  marked integer;
begin
  if key_column is null or not exists (select from cesar.sync_tables s where s.table_name = target) then
    raise exception 'table % is not mirrored', target using errcode = '22023';
  end if;
  execute format(
    'insert into cesar.sync_outbox (table_name, row_key, op, change_id) '
    'select %L, t.%I::text, %L, 0 from %s t on conflict (table_name, row_key) do nothing',
    target, key_column, 'INSERT', target::regclass);
  get diagnostics marked = row_count;
  return marked;
end
$$;

-- Per table and direction: the state of the last run, and a lease so that two runs of the
-- same table and direction never overlap. Per table: 'up' (push), 'down' (pull) and 'restore'.
-- - up: a table's first push copies it whole, in key order (watermark_key: the last key
--   copied; snapshot: the primary's snapshot when the copy began), then sets copied_at; from
--   then on it pushes what the outbox says changed. A copy into an empty mirror table loads
--   it with COPY and records bulk_loaded_from, the mirror's clock when it began: the rows it
--   loaded carry older updated_at values, which is how the pull knows them for the
--   primary's (other pushed rows have their version in the mirror's cesar_sync_versions).
-- - down: watermark is the newest mirror updated_at applied (each pull re-reads a look-back
--   window before it, for commits that landed late).
-- - restore: watermark_key is the last key rebuilt, at the mirror snapshot it reads.
create table cesar.sync_state (
  table_name text not null,
  direction text not null check (direction in ('up', 'down', 'restore')),
  status text not null default 'pending' check (status in ('pending', 'in_progress', 'completed', 'failed')),
  last_sync_at timestamptz,
  records_synced bigint not null default 0,
  conflicts bigint not null default 0,
  error_message text,
  lease_holder text,
  lease_until timestamptz not null default '-infinity',
  updated_at timestamptz not null default now(),
  watermark timestamptz,
  watermark_key text,
  snapshot text,
  copied_at timestamptz,
  bulk_loaded_from timestamptz,
  primary key (table_name, direction)
);

-- The losing version of every conflict last-writer-wins decided.
create table cesar.sync_conflicts (
  id bigint generated always as identity primary key,
  table_name text not null,
  row_key text not null,
  -- The run that found it: 'up' (the mirror's row was newer than the pushed one) or 'down'.
  direction text not null check (direction in ('up', 'down')),
  winner text not null check (winner in ('primary', 'mirror')),
  -- The version that lost, as JSON; null when the loser was a deletion.
  losing_version jsonb,
  winner_updated_at timestamptz,
  loser_updated_at timestamptz,
  detected_at timestamptz not null default now()
);
create index sync_conflicts_table_idx on cesar.sync_conflicts (table_name, detected_at);
comment on table cesar.sync_conflicts is 'Each conflict between primary and mirror, with the version that lost.';

-- A value as a field of COPY's text format (backslash escapes, \N for null): the first push
-- of a table into an empty mirror table sends it with COPY, as an initial load does. No SET
-- clause, so that it is inlined (it is called for every column of every row); the calls are
-- qualified instead.
create function cesar.copy_field(value text) returns text
language sql
immutable
parallel safe
return coalesce(
  pg_catalog.replace(pg_catalog.replace(pg_catalog.replace(pg_catalog.replace(
    value, E'\\', E'\\\\'), E'\t', E'\\t'), E'\n', E'\\n'), E'\r', E'\\r'),
  E'\\N');

-- The push's page of a table's dirty rows, in (change_id, row_key) order: an ordered scan of
-- the order index that stops at the limit. The outbox changes too fast for its statistics,
-- and with stale ones the planner read all of a table's entries to sort them (52 ms a page at
-- 100,000 entries, against 1 ms).
create function cesar.sync_outbox_page(target text, after_change bigint, after_key text, page_size integer)
returns table (row_key text, change_id bigint)
language sql
stable
set search_path = ''
set enable_bitmapscan = off
set enable_sort = off
as $$
  select o.row_key, o.change_id from cesar.sync_outbox o
  where o.table_name = target and (o.change_id, o.row_key) > (after_change, after_key)
  order by o.table_name, o.change_id, o.row_key
  limit page_size
$$;

-- The push's checkpoint: a page's entries cleared, each only if no newer change arrived
-- meanwhile (its change id is still the one pushed). Found by primary key, one by one.
create function cesar.clear_sync_outbox(target text, keys text[], change_ids bigint[]) returns integer
language sql
volatile
set search_path = ''
set enable_hashjoin = off
set enable_mergejoin = off
as $$
  with cleared as (
    delete from cesar.sync_outbox o
    using unnest(keys, change_ids) as p (row_key, change_id)
    where o.table_name = target and o.row_key = p.row_key and o.change_id = p.change_id
    returning 1
  )
  select count(*)::int from cleared
$$;

-- The primary's changes to a mirrored table that the mirror has not had yet, latest per row:
-- the outbox, and what is captured and not yet expanded (so that a pull, in one statement,
-- sees a change committed a moment before it). The pull and the restore both need it. Plain
-- SQL without a SET clause, so that it is inlined and a caller's condition on row_key reaches
-- the indexes.
create function cesar.unpushed_changes(target text)
returns table (row_key text, op text, occurred_at timestamptz)
language sql
stable
as $$
  select distinct on (c.row_key) c.row_key, c.op, c.occurred_at
  from (
    select o.row_key, o.op, o.occurred_at from cesar.sync_outbox o where o.table_name = target
    union all
    select c.row_key, c.op, c.occurred_at from cesar.captured_changes(target) c
  ) c
  order by c.row_key, c.occurred_at desc nulls last
$$;

-- Sync lag per mirrored table and direction: live for GET /sync/status, and materialized
-- for monitoring and alerting ("lag past 5 minutes", cesar.mv_sync_lag in the operations
-- migration). A run renews a short lease while it works (sync/run.ts): a lease that lapsed
-- on a run still marked in progress means that run died (a mirror crash mid-push, a killed
-- instance), and the live status says so at once. (A run that stopped at its budget is
-- 'in_progress' too, to be continued, but holds no lease.)
create view cesar.sync_lag as
select t.table_name, d.direction,
       case when s.status = 'in_progress' and s.lease_holder is not null and s.lease_until < now() then 'failed'
            else coalesce(s.status, 'pending') end as status,
       s.last_sync_at,
       extract(epoch from now() - s.last_sync_at)::bigint as lag_seconds,
       coalesce(s.records_synced, 0) as records_synced,
       coalesce(s.conflicts, 0) as conflicts,
       case when d.direction = 'up'
            then (select count(*) from cesar.sync_outbox o where o.table_name = t.table_name) end as dirty_rows,
       case when s.status = 'in_progress' and s.lease_holder is not null and s.lease_until < now()
            then 'run ' || s.lease_holder || ' stopped without recording an outcome (lease expired '
                 || s.lease_until || '); the next run takes over'
            else s.error_message end as error_message
from cesar.sync_tables t
cross join (values ('up'), ('down')) as d (direction)
left join cesar.sync_state s on s.table_name = t.table_name and s.direction = d.direction
where t.enabled;

revoke execute on function cesar.recapture_mirrored_table(), cesar.sync_backfill(text),
  cesar.copy_field(text), cesar.sync_outbox_page(text, bigint, text, integer),
  cesar.clear_sync_outbox(text, text[], bigint[]), cesar.unpushed_changes(text)
  from public, anon, authenticated;

-- The tables captured from the start, all mirrored and all watched (their changes are events
-- templates may use). Listed as watched first, so that each is captured once, by the
-- sync_tables trigger, into a store for both purposes; in name order, as their stores are
-- numbered.
insert into cesar.watched_tables (table_name, key_column)
select 'public.' || t, 'id' from unnest(array[
  'agents', 'tasks', 'task_dependencies', 'sessions', 'agent_sessions', 'collaboration_sessions',
  'a2a_conversations', 'a2a_messages', 'llm_collaborations', 'local_llm_training_batches',
  'local_llm_learning_examples', 'llm_cache_metrics', 'financial_data', 'financial_daily_summaries',
  'agent_events', 'memory_episodic', 'memory_semantic', 'knowledge_graph_edges', 'ingestion_log',
  'email_ingest_state']) as t;
insert into cesar.sync_tables (table_name)
select table_name from cesar.watched_tables order by table_name;
