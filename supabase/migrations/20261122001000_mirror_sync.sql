-- Why: the CockroachDB mirror. Which tables are mirrored is data (cesar.sync_tables). Every
-- change to them is already captured in the writer's transaction (cesar.event_log); the event
-- processor marks the changed row dirty in cesar.sync_outbox, and a push copies dirty rows to
-- the mirror and clears them. Being status-based (a row is dirty until pushed), this cannot
-- skip a row whose transaction committed after a later one: the late commit's event is simply
-- processed when it becomes visible, and marks its row dirty then.

create table cesar.sync_tables (
  table_name text primary key check (table_name ~ '^[a-z_][a-z0-9_]*\.[a-z_][a-z0-9_]*$'),
  enabled boolean not null default true,
  created_at timestamptz not null default now()
);

insert into cesar.sync_tables (table_name)
select 'public.' || t from unnest(array[
  'agents', 'tasks', 'task_dependencies', 'sessions', 'agent_sessions', 'collaboration_sessions',
  'a2a_conversations', 'a2a_messages', 'llm_collaborations', 'local_llm_training_batches',
  'local_llm_learning_examples', 'llm_cache_metrics', 'financial_data', 'financial_daily_summaries',
  'agent_events', 'memory_episodic', 'memory_semantic', 'knowledge_graph_edges', 'ingestion_log',
  'email_ingest_state']) as t;

-- Mirrored tables are watched, so that every change reaches the outbox.
select cesar.watch(table_name::regclass) from cesar.sync_tables;

-- Rows changed since they were last pushed, one entry per row: the last event wins.
create table cesar.sync_outbox (
  table_name text not null,
  row_key text not null,
  op text not null check (op in ('INSERT', 'UPDATE', 'DELETE')),
  event_id bigint not null,
  primary key (table_name, row_key)
);
-- The push pages through a table's dirty rows in (event_id, row_key) order.
create index sync_outbox_page_idx on cesar.sync_outbox (table_name, event_id, row_key);

-- Called by the event processor in the transaction that marks events processed, with the
-- changed rows of mirrored tables ([{table_name, row_key, op, event_id}]) it has in hand.
create function cesar.mark_sync_dirty(dirty jsonb) returns integer
language sql
volatile
set search_path = ''
as $$
  with marked as (
    insert into cesar.sync_outbox as o (table_name, row_key, op, event_id)
    select distinct on (d.table_name, d.row_key) d.table_name, d.row_key, d.op, d.event_id
    from jsonb_to_recordset(dirty) as d (table_name text, row_key text, op text, event_id bigint)
    order by d.table_name, d.row_key, d.event_id desc
    on conflict (table_name, row_key) do update
      set op = excluded.op, event_id = excluded.event_id
      where excluded.event_id > o.event_id
    returning 1
  )
  select count(*)::int from marked
$$;

-- Marks every row of a table dirty: the first push, or after the mirror was rebuilt.
create function cesar.sync_backfill(target text) returns integer
language plpgsql
volatile
set search_path = ''
as $$
declare
  key_column text;
  marked integer;
begin
  select w.key_column into key_column from cesar.watched_tables w where w.table_name = target;
  if key_column is null or not exists (select from cesar.sync_tables s where s.table_name = target) then
    raise exception 'table % is not mirrored', target using errcode = '22023';
  end if;
  execute format(
    'insert into cesar.sync_outbox (table_name, row_key, op, event_id) '
    'select %L, t.%I::text, %L, 0 from %s t on conflict (table_name, row_key) do nothing',
    target, key_column, 'INSERT', target::regclass);
  get diagnostics marked = row_count;
  return marked;
end
$$;

-- Per table and direction: the state of the last run, and a lease so that two runs of the
-- same table and direction never overlap.
create table cesar.sync_state (
  table_name text not null,
  direction text not null check (direction in ('up', 'down')),
  status text not null default 'pending' check (status in ('pending', 'in_progress', 'completed', 'failed')),
  last_sync_at timestamptz,
  records_synced bigint not null default 0,
  conflicts bigint not null default 0,
  error_message text,
  lease_holder text,
  lease_until timestamptz not null default '-infinity',
  updated_at timestamptz not null default now(),
  primary key (table_name, direction)
);

revoke execute on function cesar.mark_sync_dirty(jsonb), cesar.sync_backfill(text)
  from public, anon, authenticated;

-- Sync lag per mirrored table and direction: live for GET /sync/status, and materialized
-- for monitoring and alerting ("lag past 5 minutes"), refreshed with the other views.
create view cesar.sync_lag as
select t.table_name, d.direction,
       coalesce(s.status, 'pending') as status,
       s.last_sync_at,
       extract(epoch from now() - s.last_sync_at)::bigint as lag_seconds,
       coalesce(s.records_synced, 0) as records_synced,
       coalesce(s.conflicts, 0) as conflicts,
       case when d.direction = 'up'
            then (select count(*) from cesar.sync_outbox o where o.table_name = t.table_name) end as dirty_rows,
       s.error_message
from cesar.sync_tables t
cross join (values ('up'), ('down')) as d (direction)
left join cesar.sync_state s on s.table_name = t.table_name and s.direction = d.direction
where t.enabled;

create materialized view cesar.mv_sync_lag as
select l.*, now() as refreshed_at from cesar.sync_lag l;
create unique index mv_sync_lag_key on cesar.mv_sync_lag (table_name, direction);

create or replace function cesar.refresh_monitoring_views() returns text[]
language plpgsql
volatile
set search_path = ''
as $$
begin
  -- One refresh of the set at a time, whoever calls (the job, an operator, a test).
  perform pg_advisory_xact_lock(hashtext('cesar.refresh_monitoring_views'));
  refresh materialized view concurrently cesar.mv_job_queue_backlog;
  refresh materialized view concurrently cesar.mv_sync_lag;
  return array['cesar.mv_job_queue_backlog', 'cesar.mv_sync_lag'];
end
$$;
