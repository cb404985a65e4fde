-- The expansion statement of a set of capture stores, rendered once. cesar.expand_captures
-- rendered it on every call (cesar.render_sql and cesar.expansion_part_sql for each store:
-- about 1 ms of the 2.5 ms a one-event expansion took, on the path from a write's commit to
-- its job), although it is made from the stores' rows in cesar.capture_stores alone. Kept
-- under a digest of the rows it was rendered from, which each call reads: whatever changes in
-- a store's row, a statement rendered from the old row is not used for the new one (a store's
-- purpose changing makes a new store today; the digest does not rely on that). The rows'
-- changes also empty the cache, which would otherwise keep what no call uses any more.
-- Unlogged: a cache, rendered again after a crash. A migration that changes how the
-- statement is rendered (cesar.expand_captures, cesar.expansion_part_sql) must empty it, as
-- this one's first use does.
create unlogged table cesar.expansion_statements (
  stores_digest text primary key,
  statement text not null
);
comment on table cesar.expansion_statements is
  'cesar.expand_captures''s statement per set of capture stores, under a digest of their rows; emptied when cesar.capture_stores changes, and by any migration that changes its rendering.';
revoke all on cesar.expansion_statements from public, anon, authenticated;
revoke update, truncate on cesar.expansion_statements from service_role;

create function cesar.forget_expansion_statements() returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  delete from cesar.expansion_statements;
  return null;
end
$$;
revoke execute on function cesar.forget_expansion_statements() from public, anon, authenticated;

create trigger forget_expansion_statements
after insert or update or delete or truncate on cesar.capture_stores
for each statement execute function cesar.forget_expansion_statements();

-- The digest of the stores' rows as the rendering reads them (its columns only: not their
-- timestamps, whose text depends on the session's settings).
create function cesar.expansion_digest(stores cesar.capture_stores[]) returns text
language sql
immutable
set search_path = ''
as $$
  select md5(string_agg(concat_ws(',', s.id, s.schema_name, s.table_name, s.key_column, s.watched,
                                   s.mirrored), ';' order by s.id))
  from unnest(expansion_digest.stores) s
$$;
revoke execute on function cesar.expansion_digest(cesar.capture_stores[]) from public, anon, authenticated;

-- As in 20261203000900, with the statement taken from cesar.expansion_statements (rendered
-- and kept there when it is not).
create or replace function cesar.expand_captures(max_rows integer default null) returns integer
language plpgsql
volatile
set search_path = ''
as $$
declare
  statements bigint[];
  chunks integer[];
  stores integer[];
  taken_rows integer;
  slots jsonb;
  digest text;
  expansion text;
begin
  perform pg_advisory_xact_lock(hashtext('cesar.expand_captures'));
  select array_agg(t.statement_id order by t.statement_id, t.chunk),
         array_agg(t.chunk order by t.statement_id, t.chunk), array_agg(distinct t.store_id),
         sum(t.row_count)
  into statements, chunks, stores, taken_rows
  from (select c.statement_id, c.chunk, c.store_id, c.row_count,
               sum(greatest(c.row_count, 1)) over (order by c.statement_id, c.chunk) - greatest(c.row_count, 1) as before
        from (select * from cesar.captures order by statement_id, chunk limit max_rows) c) t
  where max_rows is null or t.before < max_rows;
  if statements is null then
    return 0;
  end if;
  select e.statement into expansion from cesar.expansion_statements e
  where e.stores_digest = (select cesar.expansion_digest(array_agg(s order by s.id))
                           from cesar.capture_stores s where s.id = any (stores));
  if not found then
    -- The digest of the rows the statement is rendered from (this statement's snapshot).
    select cesar.expansion_digest(array_agg(s order by s.id)), jsonb_build_object(
      'store_rows', string_agg(cesar.render_sql(
        '{rows:ident} as (delete from cesar.{store:ident} d using taken t
           where d.statement_id = t.statement_id and d.chunk = t.chunk returning d.*)',
        jsonb_build_object('rows', 'd' || s.id, 'store', 'captured_' || s.id)), ', '),
      'parts', string_agg(cesar.expansion_part_sql(s), ' union all '),
      'events', case when bool_or(s.watched) then $events$,
        events as (
          insert into cesar.event_log
            (schema_name, table_name, op, record, old_record, changed_columns, row_key, txid, origin, occurred_at)
          select c.schema_name, c.table_name, c.op, c.record, c.old_record, c.changed, c.row_key,
                 c.txid, c.origin, c.occurred_at
          from changes c where c.watched and not c.vanished
          order by c.statement_id, c.chunk, c.ord
          returning 1
        )$events$ else '' end,
      'marks', case when bool_or(s.mirrored) then $marks$,
        marks as (
          insert into cesar.sync_outbox as o (table_name, row_key, op, change_id, txid, occurred_at)
          select distinct on (c.schema_name, c.table_name, c.row_key)
                 c.schema_name || '.' || c.table_name, c.row_key, c.op, $3, c.txid, c.occurred_at
          from changes c where c.mirrored and c.origin is null
          order by c.schema_name, c.table_name, c.row_key, c.statement_id desc, c.chunk desc, c.ord desc
          on conflict (table_name, row_key) do update
            set op = excluded.op, change_id = excluded.change_id, txid = excluded.txid,
                occurred_at = excluded.occurred_at
          returning 1
        )$marks$ else '' end)
    into digest, slots
    from cesar.capture_stores s where s.id = any (stores);
    expansion := cesar.render_sql($expansion$
        with taken as (select * from unnest($1::bigint[], $2::integer[]) as t (statement_id, chunk)),
        h as (delete from cesar.captures c using taken t
              where c.statement_id = t.statement_id and c.chunk = t.chunk returning c.*),
        {store_rows},
        changes as (
          select e.*, case when e.record is null then 'DELETE' else h.op end as op,
                 h.op = 'UPDATE' and e.record is null as vanished, h.txid, h.origin, h.occurred_at,
                 c.changed
          from ({parts}) e
          join h on h.statement_id = e.statement_id and h.chunk = e.chunk
          -- Compared for UPDATEs only: other changes give it no images, and it returns null.
          cross join lateral cesar.changed_columns(case when h.op = 'UPDATE' then e.record end,
                                                   case when h.op = 'UPDATE' then e.old_record end) c
          where h.op <> 'UPDATE' or c.changed is not null or e.record is null
        ){events}{marks}
        select$expansion$, slots);
    -- Kept for the sets of stores batches meet; should they be many, begun afresh.
    delete from cesar.expansion_statements
    where (select count(*) from cesar.expansion_statements) >= 256;
    insert into cesar.expansion_statements (stores_digest, statement) values (digest, expansion)
    on conflict do nothing;
  end if;
  execute expansion
  using statements, chunks, nextval('cesar.sync_change_seq');
  return taken_rows;
end
$$;
