-- Why: a review of the change pipeline found, after the baseline was squashed (forward-only
-- from here):
-- - the generated capture function was dollar-quoted ($body$) around quoted identifiers, so a
--   key column renamed to contain "$body$" ended the body early: its body is a literal now;
-- - an UPDATE that changed a row's key made no outbox mark for the old key, and the mirror
--   kept the row under it for good: the old key is marked deleted now (events are unchanged:
--   the new row's event, without an old image);
-- - cesar.captured_changes (the pull's "what the primary has not pushed") read stores that
--   are not mirrored, and not the old key of an UPDATE that changed it;
-- - a table mirrored again after a pause (or dropped and made again) missed the changes of the
--   pause: its next push copies it whole again; a dropped table's sync_tables row is disabled;
-- - cesar.render_sql returned null for a null slot (a part of the expansion would vanish);
-- - a TRUNCATE of a mirrored table was refused as if the table were only watched.
-- The capture functions of the existing stores are made again from the new template.

-- Generated SQL: a template with named slots, rendered in one pass. {name} is the slot's
-- text as given (SQL the caller rendered), {name:ident} the text quoted as an identifier,
-- {name:literal} quoted as a literal. A slot the template names and the slots lack, or a slot
-- given and never named, is an error: a misspelt slot never reaches EXECUTE. One pass: a
-- value is never searched for slots itself, whatever it holds (a table called "{store}"). A
-- null value is an error too: it would make the whole text null, and a null part vanish
-- from a string_agg.
create or replace function cesar.render_sql(template text, slots jsonb) returns text
language plpgsql
immutable
set search_path = ''
as $$
declare
  slot_pattern constant text := '\{([a-z_][a-z0-9_]*)(?::(ident|literal))?\}';
  rendered text := '';
  start integer := 1;
  found_at integer;
  token text[];
  used text[] := '{}';
  value text;
begin
  loop
    found_at := regexp_instr(template, slot_pattern, start);
    exit when found_at = 0;
    token := regexp_match(substr(template, found_at), '^' || slot_pattern);
    if not slots ? token[1] then
      raise exception 'render_sql: the slot {%} has no value', token[1] using errcode = '22023';
    end if;
    value := slots ->> token[1];
    if value is null then
      raise exception 'render_sql: the slot {%} is null', token[1] using errcode = '22004';
    end if;
    rendered := rendered || substr(template, start, found_at - start) ||
      case token[2] when 'ident' then quote_ident(value)
                    when 'literal' then quote_literal(value)
                    else value end;
    used := used || token[1];
    start := found_at + length('{' || token[1] || coalesce(':' || token[2], '') || '}');
  end loop;
  if exists (select from jsonb_object_keys(slots) k where k <> all (used)) then
    raise exception 'render_sql: slots given and not in the template: %',
      (select string_agg(k, ', ') from jsonb_object_keys(slots) k where k <> all (used))
      using errcode = '22023';
  end if;
  return rendered || substr(template, start);
end
$$;

-- The store's trigger function, one template. A statement of 64 MB or less (a count and a
-- size first: one cheap pass) is one array per side, in order. Past that, each array is made
-- into events on its own (a statement of millions of rows must not need one transaction
-- longer than a function may run): an INSERT's or DELETE's rows go to arrays of at most 16 MB
-- in order (each row counted 16 kB more than its size: at most 1,024 rows an array; the
-- running count orders them); an UPDATE's go to arrays by a hash of their key (about 8 MB or
-- 512 rows each), so that a row's old and new images are in the same array, paired by key
-- when the events are made. The doorbell asks the webhook function to expand and process.
-- The body is a literal, not dollar-quoted: a column named with a dollar tag in it cannot end
-- it early.
create or replace function cesar.capture_function_sql(store_id integer, key_column text) returns text
language sql
immutable
set search_path = ''
as $$
  select cesar.render_sql($function$
create or replace function cesar.{function:ident}() returns trigger
language plpgsql
security definer
set search_path = ''
as {body:literal}$function$,
    jsonb_build_object('function', 'capture_' || store_id, 'body', cesar.render_sql($template$
declare
  statement_id bigint := nextval('cesar.capture_statement_seq');
  txid bigint := pg_current_xact_id()::text::bigint;
  origin text := nullif(current_setting('cesar.origin', true), '');
  changed integer;
  bytes bigint;
  arrays integer;
  -- Statements up to this size are kept as one array per side (a setting for tests).
  one_array bigint := coalesce(nullif(current_setting('cesar.capture_one_array_bytes', true), '')::bigint, 67108864);
begin
  -- Each branch names only the transition tables its operation has (a statement is planned
  -- when it first runs).
  if tg_op = 'INSERT' then
{insert_side}
  elsif tg_op = 'DELETE' then
{delete_side}
  else
    select count(*), sum(pg_column_size(n.*)) into changed, bytes from new_rows n;
    if changed = 0 then
      return null;
    end if;
    bytes := bytes + (select sum(pg_column_size(o.*)) from old_rows o);
    if bytes <= one_array then
      insert into cesar.{store:ident} (statement_id, chunk, new_rows, old_rows)
      select statement_id, 0, (select array_agg(row(n.*)::cesar.{element:ident}) from new_rows n),
             (select array_agg(row(o.*)::cesar.{element:ident}) from old_rows o);
      insert into cesar.captures (statement_id, chunk, store_id, op, txid, origin, row_count)
      values (statement_id, 0, {store_id}, tg_op, txid, origin, changed);
    else
      arrays := greatest(ceil(bytes / 8388608.0), ceil(changed / 512.0));
      with chunks as (
        insert into cesar.{store:ident} (statement_id, chunk, new_rows, old_rows)
        select statement_id, c.chunk,
               array_agg(c.r order by c.ord) filter (where c.new),
               array_agg(c.r order by c.ord) filter (where not c.new)
        from (select true as new, x.r, row_number() over () as ord,
                     abs(mod(hashtext((x.r).{key:ident}::text), arrays)) as chunk
              from (select row(n.*)::cesar.{element:ident} as r from new_rows n) x
              union all
              select false, x.r, row_number() over (), abs(mod(hashtext((x.r).{key:ident}::text), arrays))
              from (select row(o.*)::cesar.{element:ident} as r from old_rows o) x) c
        group by c.chunk
        returning chunk, coalesce(cardinality(new_rows), 0) as n)
      insert into cesar.captures (statement_id, chunk, store_id, op, txid, origin, row_count)
      select statement_id, a.chunk, {store_id}, tg_op, txid, origin, a.n from chunks a;
    end if;
  end if;
  perform cesar.ring_doorbell('webhook/drain');
  return null;
end
$template$, jsonb_build_object(
    'store', 'captured_' || store_id,
    'element', 'captured_' || store_id || '_row',
    'store_id', store_id,
    'key', key_column,
    'insert_side', cesar.render_sql(side.template, jsonb_build_object(
      'side', 'new_rows', 'store', 'captured_' || store_id,
      'element', 'captured_' || store_id || '_row', 'store_id', store_id)),
    'delete_side', cesar.render_sql(side.template, jsonb_build_object(
      'side', 'old_rows', 'store', 'captured_' || store_id,
      'element', 'captured_' || store_id || '_row', 'store_id', store_id))))))
  -- An INSERT's new rows or a DELETE's old rows, into the store.
  from (select $side$
    select count(*), sum(pg_column_size(t.*)) into changed, bytes from {side} t;
    if changed = 0 then
      return null;
    elsif bytes <= one_array then
      insert into cesar.{store:ident} (statement_id, chunk, {side})
      select statement_id, 0, array_agg(row(t.*)::cesar.{element:ident}) from {side} t;
      insert into cesar.captures (statement_id, chunk, store_id, op, txid, origin, row_count)
      values (statement_id, 0, {store_id}, tg_op, txid, origin, changed);
    else
      with arrays as (
        insert into cesar.{store:ident} (statement_id, chunk, {side})
        select statement_id, c.pos / 16777216, array_agg(c.r order by c.pos)
        from (select x.r, sum(pg_column_size(x.r) + 16384) over (rows unbounded preceding) - 1 as pos
              from (select row(t.*)::cesar.{element:ident} as r from {side} t) x) c
        group by c.pos / 16777216
        returning chunk, cardinality({side}) as n)
      insert into cesar.captures (statement_id, chunk, store_id, op, txid, origin, row_count)
      select statement_id, a.chunk, {store_id}, tg_op, txid, origin, a.n from arrays a;
    end if;$side$ as template) side
$$;

-- The expansion of one store's rows: new images (INSERT, UPDATE) with their old ones, the old
-- images of an UPDATE whose key changed alone (their record is null), old images alone
-- (DELETE), and what the store is for: events (watched), outbox marks (mirrored).
create or replace function cesar.expansion_part_sql(store cesar.capture_stores) returns text
language sql
stable
set search_path = ''
as $$
  select cesar.render_sql($part$
    select {schema:literal}::text as schema_name, {table:literal}::text as table_name,
           {watched}::boolean as watched, {mirrored}::boolean as mirrored,
           coalesce(n.statement_id, o.statement_id) as statement_id, coalesce(n.chunk, o.chunk) as chunk,
           coalesce(n.ord, o.ord) as ord, n.doc as record, o.doc as old_record, coalesce(n.k, o.k) as row_key
    from (select d.statement_id, d.chunk, u.ord, to_jsonb(u.r) as doc, ((u.r).{key:ident})::text as k
          from {rows:ident} d cross join lateral (select r, row_number() over () as ord from unnest(d.new_rows) r) u) n
    full join (select d.statement_id, d.chunk, u.ord, to_jsonb(u.r) as doc, ((u.r).{key:ident})::text as k
               from {rows:ident} d join h on h.statement_id = d.statement_id and h.chunk = d.chunk and h.op = 'UPDATE'
               cross join lateral (select r, row_number() over () as ord from unnest(d.old_rows) r) u) o
      on o.statement_id = n.statement_id and o.k = n.k
    union all
    select {schema:literal}, {table:literal}, {watched}, {mirrored}, d.statement_id, d.chunk, u.ord,
           null, to_jsonb(u.r), ((u.r).{key:ident})::text
    from {rows:ident} d join h on h.statement_id = d.statement_id and h.chunk = d.chunk and h.op = 'DELETE'
    cross join lateral (select r, row_number() over () as ord from unnest(d.old_rows) r) u$part$,
    jsonb_build_object(
      'schema', store.schema_name, 'table', store.table_name, 'key', store.key_column,
      'rows', 'd' || store.id,
      'watched', store.watched, 'mirrored', store.mirrored))
$$;

-- Expands captured arrays, oldest statement first, until at least max_rows rows (whole
-- arrays: a statement of 64 MB or less is one; null: everything captured), in one statement:
-- the events of watched tables and the outbox marks of mirrored tables (a change the sync
-- applied from the mirror, with an origin, is not marked: it is not pushed back). One
-- expansion at a time (advisory lock): event ids then follow statement order, so the changes
-- of one row (whose statements are ordered by its row lock) get increasing ids, and each
-- expansion's change id is larger than the last. An UPDATE's sides are paired by key (a row's
-- two images are in the same array); one that changes nothing but updated_at
-- (cesar.changed_columns) is no change; one that changes the key is the new row's change
-- without an old image, and for the outbox also the old key's deletion (the mirror must not
-- keep the row under its old key). Only the writes the expanded stores need are in the statement, so
-- that the changes stream into the one they feed: written for both (stores watched and
-- mirrored), they are materialized first. Returns the number of captured rows taken.
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
  select jsonb_build_object(
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
  into slots
  from cesar.capture_stores s where s.id = any (stores);
  execute cesar.render_sql($expansion$
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
      select$expansion$, slots)
  using statements, chunks, nextval('cesar.sync_change_seq');
  return taken_rows;
end
$$;

-- What is captured of a mirrored table and not yet expanded, for cesar.unpushed_changes: the
-- keys of both images (an UPDATE may have changed the key). Only mirrored stores: the others
-- never reach the outbox. A retired store dropped by maintenance (once expanded) after this
-- function listed it has nothing left and is skipped.
create or replace function cesar.captured_changes(target text)
returns table (row_key text, op text, occurred_at timestamptz)
language plpgsql
stable
set search_path = ''
as $$
declare
  store record;
begin
  for store in
    select s.id, s.key_column from cesar.capture_stores s
    where s.schema_name || '.' || s.table_name = target and s.mirrored
      and exists (select from cesar.captures c where c.store_id = s.id)
  loop
    continue when to_regclass('cesar.' || quote_ident('captured_' || store.id)) is null;
    return query execute cesar.render_sql(
      'select ((x.r).{key:ident})::text, h.op, h.occurred_at
       from cesar.captures h
       join cesar.{store:ident} d on d.statement_id = h.statement_id and d.chunk = h.chunk
       cross join lateral (select r from unnest(d.new_rows) r
                           union all select r from unnest(d.old_rows) r) x (r)
       where h.store_id = $1 and h.origin is null',
      jsonb_build_object('key', store.key_column, 'store', 'captured_' || store.id))
    using store.id;
  end loop;
end
$$;

-- Mirroring is data too: a row in cesar.sync_tables (enabled) captures the table for the
-- outbox (cesar.recapture); deleting or disabling it stops that. A table mirrored again after
-- a pause missed the changes made meanwhile, so its next push copies it whole again, as a
-- first push does. Only an enabled row must name an existing table (a dropped table's row
-- can still be disabled or deleted).
create or replace function cesar.recapture_mirrored_table() returns trigger
language plpgsql
set search_path = ''
as $$
begin
  if tg_op in ('UPDATE', 'DELETE') and to_regclass(old.table_name) is not null then
    perform cesar.recapture(to_regclass(old.table_name));
  end if;
  if tg_op in ('INSERT', 'UPDATE') and new.enabled then
    if to_regclass(new.table_name) is null then
      raise exception 'cannot mirror %: no such table', new.table_name using errcode = '42P01';
    end if;
    perform cesar.recapture(to_regclass(new.table_name));
    if tg_op = 'INSERT' or not old.enabled or old.table_name <> new.table_name then
      update cesar.sync_state set copied_at = null, snapshot = null, watermark_key = null
      where table_name = new.table_name and direction = 'up';
    end if;
  end if;
  return null;
end
$$;

-- A captured table dropped: its store is retired (what it holds is still expanded), and the
-- table is no longer watched nor mirrored (mirroring a table made again under its name starts
-- with a whole copy).
create or replace function cesar.retire_dropped_tables() returns event_trigger
language plpgsql
security definer
set search_path = ''
as $$
declare
  dropped record;
begin
  for dropped in
    select s.id, s.schema_name, s.table_name
    from pg_event_trigger_dropped_objects() d
    join cesar.capture_stores s on s.relid = d.objid and s.retired_at is null
    where d.object_type = 'table'
  loop
    update cesar.capture_stores set retired_at = now() where id = dropped.id;
    delete from cesar.watched_tables where table_name = dropped.schema_name || '.' || dropped.table_name;
    update cesar.sync_tables set enabled = false
    where table_name = dropped.schema_name || '.' || dropped.table_name and enabled;
  end loop;
end
$$;

do $$
declare
  store record;
begin
  for store in select s.id, s.key_column from cesar.capture_stores s order by s.id loop
    execute cesar.capture_function_sql(store.id, store.key_column);
  end loop;
end
$$;

create or replace function cesar.refuse_truncate() returns trigger
language plpgsql
set search_path = ''
as $$
begin
  raise exception 'TRUNCATE of %.% is refused: the table is captured (watched or mirrored), and a TRUNCATE makes no change anyone hears of; delete the rows, or unwatch and unmirror the table first',
    tg_table_schema, tg_table_name using errcode = '0A000';
end
$$;
