-- Why: the database owns the change pipeline. Captured statements used to become events
-- in SQL, then travel to the webhook function only for the keys of mirrored rows to come back
-- to SQL as outbox marks: the mirror sync depended on the webhook function having run, and
-- its pending work had to be read from the outbox, the pending events and the capture stores
-- together. Now cesar.expand_captures() makes, in the one statement that takes the captured
-- rows, the events of watched tables (cesar.watched_tables: tables templates or operators
-- watch) and the outbox marks of mirrored tables (cesar.sync_tables); the sync expands what
-- waits itself and reads the outbox alone (plus, for exactness within one statement, what
-- is captured and not yet expanded).
--
-- Capturing a table is what watching and mirroring share: cesar.recapture() gives a table
-- the store and statement triggers its purpose needs (watched, mirrored or both), or none.
-- Rules that were written more than once have one definition here: which columns an UPDATE
-- changed (cesar.changed_columns, also used for native webhook deliveries), the SQL the
-- capture generates (one renderer, cesar.render_sql, with named slots).

-- Generated SQL: a template with named slots, rendered in one pass. {name} is the slot's
-- text as given (SQL the caller rendered), {name:ident} the text quoted as an identifier,
-- {name:literal} quoted as a literal. A slot the template names and the slots lack, or a slot
-- given and never named, is an error: a misspelt slot never reaches EXECUTE. One pass: a
-- value is never searched for slots itself, whatever it holds (a table called "{store}").
create function cesar.render_sql(template text, slots jsonb) returns text
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

-- Which columns an UPDATE changed: those whose values differ between the two images,
-- updated_at aside (a touch that changes nothing else is not news). Null when none did. The
-- capture's expansion and native webhook deliveries both decide with it. No SET clause, so
-- that the planner may inline it (it runs for every captured UPDATE row).
create function cesar.changed_columns(new_image jsonb, old_image jsonb) returns text[]
language sql
immutable
parallel safe
return (
  select pg_catalog.array_agg(k.key order by k.key)
  from (select pg_catalog.jsonb_object_keys(new_image) as key
        union
        select pg_catalog.jsonb_object_keys(old_image)) k
  where k.key <> 'updated_at' and (new_image -> k.key) is distinct from (old_image -> k.key)
);

-- The outbox: its entries carry the change itself (id, transaction, time), not an event's id,
-- so that the sync never reads the event log. change_id orders the entries: one value per
-- expansion, from this sequence (expansions run one at a time, in statement order), so a
-- later change of a row always has a larger one; 0 for entries the sync made itself.
create sequence cesar.sync_change_seq;
alter table cesar.sync_outbox rename column event_id to change_id;
alter table cesar.sync_outbox add column txid bigint, add column occurred_at timestamptz;
update cesar.sync_outbox o set txid = e.txid, occurred_at = e.occurred_at
from cesar.event_log e where e.id = o.change_id;
alter index cesar.sync_outbox_page_idx rename to sync_outbox_order_idx;
select setval('cesar.sync_change_seq', greatest(1, (select max(change_id) from cesar.sync_outbox)));
drop function cesar.mark_sync_dirty(jsonb);

drop function cesar.sync_outbox_page(text, bigint, text, integer);
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

drop function cesar.clear_sync_outbox(text, text[], bigint[]);
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

-- Marks every row of a table dirty: the first push, or after the mirror was rebuilt.
create or replace function cesar.sync_backfill(target text) returns integer
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

-- The store's trigger function, one template. A statement of 64 MB or less (a count and a
-- size first: one cheap pass) is one array per side, in order. Past that, each array is made
-- into events on its own (a statement of millions of rows must not need one transaction
-- longer than a function may run): an INSERT's or DELETE's rows go to arrays of at most 16 MB
-- in order (each row counted 16 kB more than its size: at most 1,024 rows an array; the
-- running count orders them); an UPDATE's go to arrays by a hash of their key (about 8 MB or
-- 512 rows each), so that a row's old and new images are in the same array, paired by key
-- when the events are made. The doorbell asks the webhook function to expand and process.
create function cesar.capture_function_sql(store_id integer, key_column text) returns text
language sql
immutable
set search_path = ''
as $$
  select cesar.render_sql($template$
create function cesar.{function:ident}() returns trigger
language plpgsql
security definer
set search_path = ''
as $body$
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
$body$
$template$, jsonb_build_object(
    'function', 'capture_' || store_id,
    'store', 'captured_' || store_id,
    'element', 'captured_' || store_id || '_row',
    'store_id', store_id,
    'key', key_column,
    'insert_side', cesar.render_sql(side.template, jsonb_build_object(
      'side', 'new_rows', 'store', 'captured_' || store_id,
      'element', 'captured_' || store_id || '_row', 'store_id', store_id)),
    'delete_side', cesar.render_sql(side.template, jsonb_build_object(
      'side', 'old_rows', 'store', 'captured_' || store_id,
      'element', 'captured_' || store_id || '_row', 'store_id', store_id))))
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

-- What a store is for is fixed when it is made, like its shape: its rows become events when
-- the table was watched (cesar.watched_tables) and outbox marks when it was mirrored
-- (cesar.sync_tables), at the time they were captured. A change of purpose makes a new store,
-- as a change of shape does, and what the old one holds is expanded as it was captured (the
-- changes of a table unwatched or dropped since are still its events).
alter table cesar.capture_stores
  add column watched boolean not null default false,
  add column mirrored boolean not null default false;
update cesar.capture_stores s
set watched = exists (select from cesar.watched_tables w where w.table_name = s.schema_name || '.' || s.table_name)
              or s.retired_at is not null,
    mirrored = exists (select from cesar.sync_tables t
                       where t.table_name = s.schema_name || '.' || s.table_name and t.enabled);

-- Makes the store for a table's shape and purpose: its row type, its table and its trigger
-- function. Arrays are compressed with lz4 where the server has it.
drop function cesar.create_capture_store(regclass, text, text, text, text[]);
create function cesar.create_capture_store(
  target regclass, schema_name text, table_name text, key_column text, columns text[],
  watched boolean, mirrored boolean
) returns integer
language plpgsql
set search_path = ''
as $$
declare
  store_id integer;
  slots jsonb;
begin
  insert into cesar.capture_stores (relid, schema_name, table_name, key_column, columns, watched, mirrored)
  values (target, schema_name, table_name, key_column, columns, watched, mirrored)
  returning id into store_id;
  slots := jsonb_build_object(
    'store', 'captured_' || store_id,
    'element', 'captured_' || store_id || '_row',
    'columns', array_to_string(columns, ', '),
    'compression', case when exists (select from pg_settings
                                     where name = 'default_toast_compression' and 'lz4' = any (enumvals))
                        then ' compression lz4' else '' end);
  execute cesar.render_sql('create type cesar.{element:ident} as ({columns})', slots - 'store' - 'compression');
  execute cesar.render_sql(
    'create table cesar.{store:ident} (
       statement_id bigint not null,
       chunk integer not null,
       new_rows cesar.{element:ident}[]{compression},
       old_rows cesar.{element:ident}[]{compression},
       primary key (statement_id, chunk))', slots - 'columns');
  execute format('comment on table cesar.%I is %L', 'captured_' || store_id,
                 format('Captured statements on %I.%I not yet made into events and outbox marks (see cesar.capture_stores).',
                        schema_name, table_name));
  execute cesar.capture_function_sql(store_id, key_column);
  return store_id;
end
$$;

-- Makes a table's capture match what it is for: none when it is neither watched nor mirrored
-- (its store retired: what it holds is still expanded, and maintenance drops it once empty);
-- otherwise its statement triggers writing to a store of its current shape and purpose (a
-- new one when either changed). What watching, mirroring and ALTER TABLE share. A captured
-- table needs a single-column primary key and must be one an operator may capture
-- (cesar.system_table_reason); TRUNCATE is refused while it is captured (it would make no
-- change anyone hears of). A watched table renamed or re-keyed stays watched under its new
-- name.
create function cesar.recapture(target regclass) returns text
language plpgsql
set search_path = ''
as $$
declare
  key_col text := cesar.single_key_column(target);
  shape text[] := cesar.column_list(target);
  refused text := cesar.system_table_reason(target);
  rel record;
  store record;
  name text;
  is_watched boolean;
  is_mirrored boolean;
  store_id integer;
begin
  select n.nspname as schema_name, c.relname as table_name into rel
  from pg_class c join pg_namespace n on n.oid = c.relnamespace where c.oid = target;
  name := rel.schema_name || '.' || rel.table_name;
  select * into store from cesar.capture_stores s where s.relid = target and s.retired_at is null;
  if store.id is not null and key_col is not null then
    update cesar.watched_tables w set table_name = name, key_column = key_col
    where w.table_name = store.schema_name || '.' || store.table_name;
  end if;
  is_watched := exists (select from cesar.watched_tables w where w.table_name = name);
  is_mirrored := exists (select from cesar.sync_tables s where s.table_name = name and s.enabled);
  if is_watched or is_mirrored then
    if key_col is null then
      raise exception 'cannot watch %: it needs a single-column primary key', target using errcode = '22023';
    end if;
    if refused is not null then
      raise exception 'cannot watch %: %', target, refused using errcode = '22023';
    end if;
    if (store.columns, store.key_column, store.schema_name, store.table_name, store.watched, store.mirrored)
       is not distinct from (shape, key_col, rel.schema_name, rel.table_name, is_watched, is_mirrored) then
      return name;
    end if;
  end if;
  update cesar.capture_stores s set retired_at = now() where s.id = store.id;
  execute format('drop trigger if exists cesar_capture_insert on %s', target);
  execute format('drop trigger if exists cesar_capture_update on %s', target);
  execute format('drop trigger if exists cesar_capture_delete on %s', target);
  execute format('drop trigger if exists cesar_refuse_truncate on %s', target);
  if not (is_watched or is_mirrored) then
    return name;
  end if;
  store_id := cesar.create_capture_store(target, rel.schema_name, rel.table_name, key_col, shape,
                                         is_watched, is_mirrored);
  execute format('create trigger cesar_capture_insert after insert on %s referencing new table as new_rows '
                 'for each statement execute function cesar.%I()', target, 'capture_' || store_id);
  execute format('create trigger cesar_capture_update after update on %s referencing old table as old_rows new table as new_rows '
                 'for each statement execute function cesar.%I()', target, 'capture_' || store_id);
  execute format('create trigger cesar_capture_delete after delete on %s referencing old table as old_rows '
                 'for each statement execute function cesar.%I()', target, 'capture_' || store_id);
  execute format('create trigger cesar_refuse_truncate before truncate on %s '
                 'for each statement execute function cesar.refuse_truncate()', target);
  return name;
end
$$;

-- Watching is data: cesar.watch('public.tasks') makes the table's changes events (for the
-- workflows), cesar.unwatch stops that. The checks come before the table is listed.
create or replace function cesar.watch(target regclass) returns text
language plpgsql
set search_path = ''
as $$
declare
  name text := (select n.nspname || '.' || c.relname
                from pg_class c join pg_namespace n on n.oid = c.relnamespace where c.oid = target);
begin
  if cesar.single_key_column(target) is null then
    raise exception 'cannot watch %: it needs a single-column primary key', target using errcode = '22023';
  end if;
  if cesar.system_table_reason(target) is not null then
    raise exception 'cannot watch %: %', target, cesar.system_table_reason(target) using errcode = '22023';
  end if;
  insert into cesar.watched_tables (table_name, key_column)
  values (name, cesar.single_key_column(target))
  on conflict (table_name) do update set key_column = excluded.key_column;
  return cesar.recapture(target);
end
$$;

create or replace function cesar.unwatch(target regclass) returns text
language plpgsql
set search_path = ''
as $$
begin
  delete from cesar.watched_tables
  where table_name = (select n.nspname || '.' || c.relname
                      from pg_class c join pg_namespace n on n.oid = c.relnamespace where c.oid = target);
  return cesar.recapture(target);
end
$$;

-- Mirroring is data too: a row in cesar.sync_tables (enabled) captures the table for the
-- outbox; deleting or disabling it stops that.
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

-- An ALTER TABLE on a captured table moves its capture to a store of the new shape before the
-- ALTER commits, so no write after it meets a stale store; a table now refused is no longer
-- watched or mirrored. A table left without a single-column primary key (its key being
-- replaced) keeps its store, keyed by the old key column.
create or replace function cesar.rewatch_altered_tables() returns event_trigger
language plpgsql
security definer
set search_path = ''
as $$
declare
  altered record;
begin
  for altered in
    select distinct c.objid, s.schema_name || '.' || s.table_name as name
    from pg_event_trigger_ddl_commands() c
    join cesar.capture_stores s on s.relid = c.objid and s.retired_at is null
    where c.command_tag = 'ALTER TABLE'
  loop
    if cesar.system_table_reason(altered.objid::regclass) is not null then
      raise notice 'cesar: % may not be watched (%); unwatched', altered.objid::regclass,
        cesar.system_table_reason(altered.objid::regclass);
      delete from cesar.watched_tables where table_name = altered.name;
      update cesar.sync_tables set enabled = false where table_name = altered.name;
      perform cesar.recapture(altered.objid::regclass);
    elsif cesar.single_key_column(altered.objid) is not null then
      perform cesar.recapture(altered.objid::regclass);
    else
      raise notice 'cesar: % has no single-column primary key now; its capture is unchanged', altered.objid::regclass;
    end if;
  end loop;
end
$$;

-- A captured table dropped: its store is retired (what it holds is still expanded) and the
-- table is no longer watched.
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
  end loop;
end
$$;

-- The expansion of one store's rows: new images (INSERT, UPDATE) with their old ones, old
-- images alone (DELETE), and what the store is for: events (watched), outbox marks (mirrored).
create function cesar.expansion_part_sql(store cesar.capture_stores) returns text
language sql
stable
set search_path = ''
as $$
  select cesar.render_sql($part$
    select {schema:literal}::text as schema_name, {table:literal}::text as table_name,
           {watched}::boolean as watched, {mirrored}::boolean as mirrored,
           n.statement_id, n.chunk, n.ord, n.doc as record, o.doc as old_record, n.k as row_key
    from (select d.statement_id, d.chunk, u.ord, to_jsonb(u.r) as doc, ((u.r).{key:ident})::text as k
          from {rows:ident} d cross join lateral (select r, row_number() over () as ord from unnest(d.new_rows) r) u) n
    left join (select d.statement_id, to_jsonb(r) as doc, (r.{key:ident})::text as k
               from {rows:ident} d join h on h.statement_id = d.statement_id and h.chunk = d.chunk and h.op = 'UPDATE'
               cross join lateral unnest(d.old_rows) r) o
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
-- without an old image. Returns the number of changes expanded.
create or replace function cesar.expand_captures(max_rows integer default null) returns integer
language plpgsql
volatile
set search_path = ''
as $$
declare
  statements bigint[];
  chunks integer[];
  stores integer[];
  expanded integer;
begin
  perform pg_advisory_xact_lock(hashtext('cesar.expand_captures'));
  select array_agg(t.statement_id order by t.statement_id, t.chunk),
         array_agg(t.chunk order by t.statement_id, t.chunk), array_agg(distinct t.store_id)
  into statements, chunks, stores
  from (select c.statement_id, c.chunk, c.store_id,
               sum(greatest(c.row_count, 1)) over (order by c.statement_id, c.chunk) - greatest(c.row_count, 1) as before
        from (select * from cesar.captures order by statement_id, chunk limit max_rows) c) t
  where max_rows is null or t.before < max_rows;
  if statements is null then
    return 0;
  end if;
  execute (
    select cesar.render_sql($expansion$
      with taken as (select * from unnest($1::bigint[], $2::integer[]) as t (statement_id, chunk)),
      h as (delete from cesar.captures c using taken t
            where c.statement_id = t.statement_id and c.chunk = t.chunk returning c.*),
      {store_rows},
      changes as (
        select e.*, h.op, h.txid, h.origin, h.occurred_at, c.changed
        from ({parts}) e
        join h on h.statement_id = e.statement_id and h.chunk = e.chunk
        cross join lateral (select case when h.op = 'UPDATE'
                                        then cesar.changed_columns(e.record, e.old_record) end as changed) c
        where h.op <> 'UPDATE' or c.changed is not null
      ),
      events as (
        insert into cesar.event_log
          (schema_name, table_name, op, record, old_record, changed_columns, row_key, txid, origin, occurred_at)
        select c.schema_name, c.table_name, c.op, c.record, c.old_record, c.changed, c.row_key,
               c.txid, c.origin, c.occurred_at
        from changes c where c.watched
        order by c.statement_id, c.chunk, c.ord
        returning 1
      ),
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
      )
      select (select count(*) from changes)::int$expansion$,
      jsonb_build_object(
        'store_rows', string_agg(cesar.render_sql(
          '{rows:ident} as (delete from cesar.{store:ident} d using taken t
             where d.statement_id = t.statement_id and d.chunk = t.chunk returning d.*)',
          jsonb_build_object('rows', 'd' || s.id, 'store', 'captured_' || s.id)), ', '),
        'parts', string_agg(cesar.expansion_part_sql(s), ' union all ')))
    from cesar.capture_stores s where s.id = any (stores))
  into expanded
  using statements, chunks, nextval('cesar.sync_change_seq');
  return expanded;
end
$$;

-- The primary's changes to a mirrored table that the mirror has not had yet, latest per row:
-- the outbox, and what is captured and not yet expanded (so that a pull, in one statement,
-- sees a change committed a moment before it). Plain SQL without a SET clause, so that it is
-- inlined and a caller's condition on row_key reaches the indexes.
create or replace function cesar.unpushed_changes(target text)
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

-- Mirrored tables need not be watched any more: the watched ones stay watched (their events
-- may feed templates). Every captured table's store now says what it is for.
select cesar.recapture(s.relid::regclass) from cesar.capture_stores s
where s.retired_at is null order by s.id;

revoke execute on function cesar.render_sql(text, jsonb), cesar.changed_columns(jsonb, jsonb),
  cesar.capture_function_sql(integer, text), cesar.recapture(regclass),
  cesar.expansion_part_sql(cesar.capture_stores), cesar.sync_outbox_page(text, bigint, text, integer),
  cesar.clear_sync_outbox(text, text[], bigint[]) from public, anon, authenticated;
revoke usage on sequence cesar.sync_change_seq from public, anon, authenticated;
