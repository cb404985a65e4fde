-- Why: the pull (mirror -> primary), both directions, and restore. A pulled change is written
-- to the primary with the origin marker `cesar.origin = 'mirror'` (a transaction-local
-- setting): its event is still captured (workflows run on pulled data, the audit is whole),
-- but it is not marked dirty for the push, so it does not bounce back to the mirror; and its
-- updated_at is the mirror's, which last-writer-wins needs. Conflicts keep their losing
-- version in cesar.sync_conflicts.

alter table cesar.event_log add column origin text;
comment on column cesar.event_log.origin is
  'null: written on the primary; mirror: pulled from the mirror; restore: rebuilt from the mirror (neither is pushed back; a restore runs no workflow).';

-- cesar.capture() as before, plus the origin, read once per statement.
create or replace function cesar.capture() returns trigger
language plpgsql
security definer
set search_path = ''
as $$
declare
  txid bigint := pg_current_xact_id()::text::bigint;
  origin text := nullif(current_setting('cesar.origin', true), '');
begin
  if tg_op = 'INSERT' then
    insert into cesar.event_log (schema_name, table_name, op, record, row_key, txid, origin)
    select tg_table_schema, tg_table_name, tg_op, r.doc, r.doc ->> tg_argv[0], txid, origin
    from (select to_jsonb(n.*) as doc from new_rows n) r;
  elsif tg_op = 'DELETE' then
    insert into cesar.event_log (schema_name, table_name, op, old_record, row_key, txid, origin)
    select tg_table_schema, tg_table_name, tg_op, r.doc, r.doc ->> tg_argv[0], txid, origin
    from (select to_jsonb(o.*) as doc from old_rows o) r;
  else
    insert into cesar.event_log (schema_name, table_name, op, record, old_record, changed_columns, row_key, txid, origin)
    select tg_table_schema, tg_table_name, tg_op, n.doc, o.doc, c.changed, n.doc ->> tg_argv[0], txid, origin
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

-- A row applied from the mirror keeps the mirror's updated_at: last-writer-wins compares it.
create or replace function cesar.touch_updated_at() returns trigger
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

-- Per table: 'up' (push), 'down' (pull) and 'restore'.
-- - up: a table's first push copies it whole, in key order (watermark_key: the last key
--   copied; snapshot: the primary's snapshot when the copy began), then sets copied_at; from
--   then on it pushes what the outbox says changed. A copy into an empty mirror table loads
--   it with COPY and records bulk_loaded_from, the mirror's clock when it began: the rows it
--   loaded carry older updated_at values, which is how the pull knows them for the
--   primary's (other pushed rows have their version in the mirror's cesar_sync_versions).
-- - down: watermark is the newest mirror updated_at applied (each pull re-reads a look-back
--   window before it, for commits that landed late).
-- - restore: watermark_key is the last key rebuilt, at the mirror snapshot it reads.
alter table cesar.sync_state drop constraint sync_state_direction_check;
alter table cesar.sync_state add constraint sync_state_direction_check
  check (direction in ('up', 'down', 'restore'));
alter table cesar.sync_state
  add column watermark timestamptz,
  add column watermark_key text,
  add column snapshot text,
  add column copied_at timestamptz,
  add column bulk_loaded_from timestamptz;

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

-- The push's page of a table's dirty rows, in (event_id, row_key) order: an ordered scan of
-- the page index that stops at the limit. The outbox changes too fast for its statistics, and
-- with stale ones the planner read all of a table's entries to sort them (52 ms a page at
-- 100,000 entries, against 1 ms).
create function cesar.sync_outbox_page(target text, after_event bigint, after_key text, page_size integer)
returns table (row_key text, event_id bigint)
language sql
stable
set search_path = ''
set enable_bitmapscan = off
set enable_sort = off
as $$
  select o.row_key, o.event_id from cesar.sync_outbox o
  where o.table_name = target and (o.event_id, o.row_key) > (after_event, after_key)
  order by o.table_name, o.event_id, o.row_key
  limit page_size
$$;

-- The push's checkpoint: a page's entries cleared, each only if no newer change arrived
-- meanwhile (its event id is still the one pushed). Found by primary key, one by one.
create function cesar.clear_sync_outbox(target text, keys text[], event_ids bigint[]) returns integer
language sql
volatile
set search_path = ''
set enable_hashjoin = off
set enable_mergejoin = off
as $$
  with cleared as (
    delete from cesar.sync_outbox o
    using unnest(keys, event_ids) as p (row_key, event_id)
    where o.table_name = target and o.row_key = p.row_key and o.event_id = p.event_id
    returning 1
  )
  select count(*)::int from cleared
$$;

revoke execute on function cesar.sync_outbox_page(text, bigint, text, integer),
  cesar.clear_sync_outbox(text, text[], bigint[]) from public, anon, authenticated;
