-- Why: the capture overhead. Writing one cesar.event_log row per changed row (a JSON image,
-- a heap tuple, two index entries) in the writer's transaction made a bulk INSERT 2-3x as
-- slow as on an unwatched table: turning a row into JSON alone costs about as much as
-- inserting it. Capture now keeps the statement's rows as they are. Each watched table has a
-- capture store, cesar.captured_<n>, whose rows hold a statement's transition rows as an
-- array of a composite type with the table's columns (one array up to 64 MB; beyond, arrays
-- of about 16 MB, each made into events on its own), and each array one row in
-- cesar.captures (store, op, transaction, origin, time, rows), so finding what waits is one
-- static query whatever the number of stores. A 10,000-row INSERT writes two rows and
-- converts nothing. cesar.expand_captures(), called by the event processor's claim, makes
-- the same events as before from them, one expansion at a time, in statement order.
--
-- The store's element type is a copy of the table's columns, not the table's own row type (a
-- column of a table's row type forbids ALTER COLUMN TYPE on that table). When a watched table
-- changes shape (ALTER TABLE), an event trigger calls cesar.watch() again, which makes a new
-- store for the new shape in the same transaction and retires the old one; retired stores are
-- expanded like the others and dropped by maintenance.prune once empty.

create sequence cesar.capture_statement_seq;

create table cesar.captures (
  statement_id bigint not null,
  chunk integer not null,
  store_id integer not null,
  op text not null check (op in ('INSERT', 'UPDATE', 'DELETE')),
  txid bigint not null,
  origin text,
  occurred_at timestamptz not null default now(),
  -- Rows in the array (an UPDATE's new rows; those that changed nothing make no event).
  row_count integer not null check (row_count >= 0),
  primary key (statement_id, chunk)
);
comment on table cesar.captures is
  'Arrays of captured rows not yet made into events, one per statement (more past 64 MB); the rows are in cesar.captured_<store_id>.';

create table cesar.capture_stores (
  id integer generated always as identity primary key,
  relid oid not null,
  schema_name text not null,
  table_name text not null,
  key_column text not null,
  -- The table's columns when the store was made ("name type" each, in order).
  columns text[] not null,
  created_at timestamptz not null default now(),
  retired_at timestamptz
);
create unique index capture_stores_active_idx on cesar.capture_stores (relid) where retired_at is null;
comment on table cesar.capture_stores is
  'One store per watched table and shape: cesar.captured_<id> (rows), cesar.captured_<id>_row (their type), cesar.capture_<id>() (the trigger function).';

-- A table's columns as "name type", in order: a store's shape.
create function cesar.column_list(target oid) returns text[]
language sql
stable
set search_path = ''
as $$
  select coalesce(array_agg(format('%I %s', a.attname, format_type(a.atttypid, a.atttypmod)) order by a.attnum), '{}')
  from pg_catalog.pg_attribute a
  where a.attrelid = target and a.attnum > 0 and not a.attisdropped
$$;

-- The column of a table's single-column primary key; null when it has none (or a wider one).
create function cesar.single_key_column(target oid) returns text
language sql
stable
set search_path = ''
as $$
  select a.attname
  from pg_catalog.pg_index i
  join pg_catalog.pg_attribute a on a.attrelid = i.indrelid and a.attnum = i.indkey[0]
  where i.indrelid = target and i.indisprimary and i.indnatts = 1
$$;

-- Makes the store for a table's shape (watch() has read it): its row type, its table and the
-- statement trigger function that fills it. Arrays are compressed with lz4 where the server
-- has it.
create function cesar.create_capture_store(
  target regclass, schema_name text, table_name text, key_column text, columns text[]
) returns integer
language plpgsql
set search_path = ''
as $$
declare
  store_id integer;
  store text;
  element text;
  compression text := '';
  one_side text;
begin
  insert into cesar.capture_stores (relid, schema_name, table_name, key_column, columns)
  values (target, schema_name, table_name, key_column, columns)
  returning id into store_id;
  store := 'captured_' || store_id;
  element := store || '_row';
  if exists (select from pg_settings where name = 'default_toast_compression' and 'lz4' = any (enumvals)) then
    compression := ' compression lz4';
  end if;
  execute format('create type cesar.%I as (%s)', element, array_to_string(columns, ', '));
  execute format(
    'create table cesar.%I (
       statement_id bigint not null,
       chunk integer not null,
       new_rows cesar.%I[]%s,
       old_rows cesar.%I[]%s,
       primary key (statement_id, chunk))', store, element, compression, element, compression);
  execute format('comment on table cesar.%I is %L', store,
                 format('Captured statements on %I.%I not yet turned into events (see cesar.capture_stores).',
                        schema_name, table_name));
  -- An INSERT's new rows or a DELETE's old rows, into the store: one array, or past the
  -- one-array size arrays of at most 16 MB in order (each row counted 16 kB more than its
  -- size: at most 1,024 rows an array; the running count orders them).
  one_side := replace(replace(replace($side$
        select count(*), sum(pg_column_size(t.*)) into changed, bytes from {side} t;
        if changed = 0 then
          return null;
        elsif bytes <= one_array then
          insert into cesar.{store} (statement_id, chunk, {side})
          select statement_id, 0, array_agg(row(t.*)::cesar.{element}) from {side} t;
          insert into cesar.captures (statement_id, chunk, store_id, op, txid, origin, row_count)
          values (statement_id, 0, {store_id}, tg_op, txid, origin, changed);
        else
          with arrays as (
            insert into cesar.{store} (statement_id, chunk, {side})
            select statement_id, c.pos / 16777216, array_agg(c.r order by c.pos)
            from (select x.r, sum(pg_column_size(x.r) + 16384) over (rows unbounded preceding) - 1 as pos
                  from (select row(t.*)::cesar.{element} as r from {side} t) x) c
            group by c.pos / 16777216
            returning chunk, cardinality({side}) as n)
          insert into cesar.captures (statement_id, chunk, store_id, op, txid, origin, row_count)
          select statement_id, a.chunk, {store_id}, tg_op, txid, origin, a.n from arrays a;
        end if;$side$, '{store}', store), '{element}', element), '{store_id}', store_id::text);
  -- The trigger function. A statement of 64 MB or less (a count and a size first: one cheap
  -- pass) is one array per side, in order. Past that, each array is made into events on its
  -- own (a statement of millions of rows must not need one transaction longer than a
  -- function may run): an UPDATE's rows then go to arrays by a hash of their key (about 8 MB
  -- or 512 rows each), so that a row's old and new images are in the same array; they are
  -- paired by key when the events are made.
  execute format($fn$
    create function cesar.%1$I() returns trigger
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
      -- Each branch names only the transition tables its operation has (a statement is
      -- planned when it first runs).
      if tg_op = 'INSERT' then
%5$s
      elsif tg_op = 'DELETE' then
%6$s
      else
        select count(*), sum(pg_column_size(n.*)) into changed, bytes from new_rows n;
        if changed = 0 then
          return null;
        end if;
        bytes := bytes + (select sum(pg_column_size(o.*)) from old_rows o);
        if bytes <= one_array then
          insert into cesar.%2$I (statement_id, chunk, new_rows, old_rows)
          select statement_id, 0, (select array_agg(row(n.*)::cesar.%3$I) from new_rows n),
                 (select array_agg(row(o.*)::cesar.%3$I) from old_rows o);
          insert into cesar.captures (statement_id, chunk, store_id, op, txid, origin, row_count)
          values (statement_id, 0, %4$s, tg_op, txid, origin, changed);
        else
          arrays := greatest(ceil(bytes / 8388608.0), ceil(changed / 512.0));
          with chunks as (
            insert into cesar.%2$I (statement_id, chunk, new_rows, old_rows)
            select statement_id, c.chunk,
                   array_agg(c.r order by c.ord) filter (where c.new),
                   array_agg(c.r order by c.ord) filter (where not c.new)
            from (select true as new, x.r, row_number() over () as ord,
                         abs(mod(hashtext((x.r).%7$I::text), arrays)) as chunk
                  from (select row(n.*)::cesar.%3$I as r from new_rows n) x
                  union all
                  select false, x.r, row_number() over (), abs(mod(hashtext((x.r).%7$I::text), arrays))
                  from (select row(o.*)::cesar.%3$I as r from old_rows o) x) c
            group by c.chunk
            returning chunk, coalesce(cardinality(new_rows), 0) as n)
          insert into cesar.captures (statement_id, chunk, store_id, op, txid, origin, row_count)
          select statement_id, a.chunk, %4$s, tg_op, txid, origin, a.n from chunks a;
        end if;
      end if;
      perform cesar.ring_doorbell('webhook/drain');
      return null;
    end
    $body$ $fn$, 'capture_' || store_id, store, element, store_id,
    replace(one_side, '{side}', 'new_rows'), replace(one_side, '{side}', 'old_rows'), key_column);
  return store_id;
end
$$;

-- Watching is data, as before: cesar.watch('public.tasks') points the table's three statement
-- triggers at its store (making one when the table has none, or a new one when its shape
-- changed), cesar.unwatch drops them. The table needs a single-column primary key.
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
  if rel.schema_name = 'cesar' then
    raise exception 'cannot watch %: the cesar schema is machinery', target using errcode = '22023';
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
  delete from cesar.watched_tables w
  where w.table_name = store.schema_name || '.' || store.table_name;
  insert into cesar.watched_tables (table_name, key_column)
  values (rel.schema_name || '.' || rel.table_name, key_column)
  on conflict (table_name) do update set key_column = excluded.key_column;
  return rel.schema_name || '.' || rel.table_name;
end
$$;

-- What the table's store still holds is made into events as usual; the store is dropped once
-- it is empty.
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
  update cesar.capture_stores s set retired_at = now() where s.relid = target and s.retired_at is null;
  delete from cesar.watched_tables where table_name = name;
  return name;
end
$$;

-- An ALTER TABLE on a watched table (a column added, dropped, retyped or renamed; the table
-- renamed) moves its capture to a store of the new shape before the ALTER commits, so no
-- write after it meets a stale store. A table left without a single-column primary key
-- (its key being replaced) keeps its store, keyed by the old key column, and is not refused.
create function cesar.rewatch_altered_tables() returns event_trigger
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
    if cesar.single_key_column(altered) is not null then
      perform cesar.watch(altered::regclass);
    else
      raise notice 'cesar: % has no single-column primary key now; its capture is unchanged', altered::regclass;
    end if;
  end loop;
end
$$;
create event trigger cesar_rewatch_altered_tables on ddl_command_end
  when tag in ('ALTER TABLE') execute function cesar.rewatch_altered_tables();

-- A watched table dropped: its store is retired (what it holds still becomes events) and the
-- table is no longer listed as watched.
create function cesar.retire_dropped_tables() returns event_trigger
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
create event trigger cesar_retire_dropped_tables on sql_drop
  when tag in ('DROP TABLE', 'DROP SCHEMA') execute function cesar.retire_dropped_tables();

-- Makes the events of captured arrays, oldest statement first, until at least max_rows
-- events (whole arrays: a statement of 64 MB or less is one; null: everything captured).
-- One expansion at a time (advisory lock): event ids then follow statement order, so the
-- changes of one row (whose statements are ordered by its row lock) get increasing ids. An
-- UPDATE's sides are paired by key (a row's two images are in the same array); one that
-- changes nothing but updated_at makes no event; one that changes the key is the new row's
-- event without an old image. Returns the number of events made.
create function cesar.expand_captures(max_rows integer default null) returns integer
language plpgsql
volatile
set search_path = ''
as $$
declare
  statements bigint[];
  chunks integer[];
  stores integer[];
  expansion text;
  made integer;
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
  select format(
    'with taken as (select * from unnest($1::bigint[], $2::integer[]) as t (statement_id, chunk)),
     h as (delete from cesar.captures c using taken t
           where c.statement_id = t.statement_id and c.chunk = t.chunk returning c.*), %s
     insert into cesar.event_log (schema_name, table_name, op, record, old_record, changed_columns, row_key, txid, origin, occurred_at)
     select e.schema_name, e.table_name, h.op, e.record, e.old_record, c.changed, e.row_key, h.txid, h.origin, h.occurred_at
     from (%s) e
     join h on h.statement_id = e.statement_id and h.chunk = e.chunk
     cross join lateral (
       select array_agg(k.key order by k.key) as changed
       from jsonb_each(e.record) k
       where h.op = ''UPDATE'' and k.key <> ''updated_at'' and k.value is distinct from (e.old_record -> k.key)
     ) c
     where h.op <> ''UPDATE'' or c.changed is not null
     order by e.statement_id, e.chunk, e.ord',
    string_agg(format('d%s as (delete from cesar.%I d using taken t
                               where d.statement_id = t.statement_id and d.chunk = t.chunk returning d.*)',
                      s.id, 'captured_' || s.id), ', '),
    string_agg(format(
      -- New images (INSERT, UPDATE) with their old ones; old images alone (DELETE).
      $part$select %1$L::text as schema_name, %2$L::text as table_name, n.statement_id, n.chunk, n.ord,
                   n.doc as record, o.doc as old_record, n.k as row_key
            from (select d.statement_id, d.chunk, u.ord, to_jsonb(u.r) as doc, ((u.r).%3$I)::text as k
                  from d%4$s d cross join lateral (select r, row_number() over () as ord from unnest(d.new_rows) r) u) n
            left join (select d.statement_id, to_jsonb(r) as doc, (r.%3$I)::text as k
                       from d%4$s d join h on h.statement_id = d.statement_id and h.chunk = d.chunk and h.op = 'UPDATE'
                       cross join lateral unnest(d.old_rows) r) o
              on o.statement_id = n.statement_id and o.k = n.k
            union all
            select %1$L, %2$L, d.statement_id, d.chunk, u.ord, null, to_jsonb(u.r), ((u.r).%3$I)::text
            from d%4$s d join h on h.statement_id = d.statement_id and h.chunk = d.chunk and h.op = 'DELETE'
            cross join lateral (select r, row_number() over () as ord from unnest(d.old_rows) r) u$part$,
      s.schema_name, s.table_name, s.key_column, s.id), ' union all '))
  into expansion
  from cesar.capture_stores s where s.id = any (stores);
  execute expansion using statements, chunks;
  get diagnostics made = row_count;
  return made;
end
$$;

-- Events waiting to be processed, captured statements included: the drain's "anything
-- left?", the sweep, /status and /metrics.
create function cesar.event_backlog(out pending bigint, out oldest timestamptz)
language sql
stable
set search_path = ''
as $$
  select e.pending + c.pending, least(e.oldest, c.oldest)
  from (select count(*) as pending, min(occurred_at) as oldest
        from cesar.event_log where status in ('pending', 'processing')) e,
       (select coalesce(sum(row_count), 0) as pending, min(occurred_at) as oldest
        from cesar.captures) c
$$;

create function cesar.events_pending() returns boolean
language sql
stable
set search_path = ''
as $$
  select exists (select from cesar.event_log where status in ('pending', 'processing'))
      or exists (select from cesar.captures)
$$;

-- The primary's unpushed changes (cesar.unpushed_changes) include statements captured but not
-- yet made into events: their rows' keys, read from the table's stores.
create function cesar.captured_changes(target text)
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
    where s.schema_name || '.' || s.table_name = target
      and exists (select from cesar.captures c where c.store_id = s.id)
  loop
    return query execute format(
      'select (r.%I)::text, h.op, h.occurred_at
       from cesar.captures h
       join cesar.%I d on d.statement_id = h.statement_id and d.chunk = h.chunk
       cross join lateral unnest(coalesce(d.new_rows, d.old_rows)) r
       where h.store_id = $1 and h.origin is null', store.key_column, 'captured_' || store.id)
    using store.id;
  end loop;
end
$$;

create or replace function cesar.unpushed_changes(target text)
returns table (row_key text, op text, occurred_at timestamptz)
language sql
stable
as $$
  select distinct on (c.row_key) c.row_key, c.op, c.occurred_at
  from (
    select o.row_key, o.op, e.occurred_at
    from cesar.sync_outbox o left join cesar.event_log e on e.id = o.event_id
    where o.table_name = target
    union all
    select e.row_key, e.op, e.occurred_at
    from cesar.event_log e
    where e.status in ('pending', 'processing') and e.origin is null
      and e.schema_name || '.' || e.table_name = target
    union all
    select c.row_key, c.op, c.occurred_at from cesar.captured_changes(target) c
  ) c
  order by c.row_key, c.occurred_at desc nulls last
$$;

-- Drops the stores retired (table unwatched, dropped or reshaped) that have nothing left to
-- make into events.
create function cesar.drop_retired_capture_stores() returns integer
language plpgsql
set search_path = ''
as $$
declare
  store integer;
  dropped integer := 0;
begin
  perform pg_advisory_xact_lock(hashtext('cesar.expand_captures'));
  for store in
    select s.id from cesar.capture_stores s
    where s.retired_at is not null
      and not exists (select from cesar.captures c where c.store_id = s.id)
    order by s.id
  loop
    execute format('drop table cesar.%I', 'captured_' || store);
    execute format('drop function cesar.%I()', 'capture_' || store);
    execute format('drop type cesar.%I', 'captured_' || store || '_row');
    delete from cesar.capture_stores where id = store;
    dropped := dropped + 1;
  end loop;
  return dropped;
end
$$;

-- The claim first makes the events of the next captured arrays (a batch's worth).
create or replace function cesar.claim_events(batch_size integer) returns setof cesar.event_log
language plpgsql
volatile
set search_path = ''
set enable_bitmapscan = off
as $$
begin
  perform cesar.expand_captures(claim_events.batch_size);
  return query
    update cesar.event_log e
    set status = 'processing', attempts = e.attempts + 1
    where e.id in (
      select c.id from cesar.event_log c
      where c.status in ('pending', 'processing')
      order by c.id
      limit claim_events.batch_size
      for update skip locked)
    returning e.*;
end
$$;

select cron.schedule('cesar-webhook-sweep', cesar.tick_schedule(),
  $cmd$select cesar.ring_doorbell('webhook/drain') where cesar.events_pending()$cmd$);

-- Every watched table moves to a store (what the old trigger function captured is already in
-- cesar.event_log); entries for tables dropped since are forgotten.
delete from cesar.watched_tables where to_regclass(table_name) is null;
select cesar.watch(table_name::regclass) from cesar.watched_tables order by table_name;
drop function cesar.capture();

revoke execute on function cesar.column_list(oid), cesar.single_key_column(oid),
  cesar.create_capture_store(regclass, text, text, text, text[]),
  cesar.expand_captures(integer), cesar.event_backlog(), cesar.events_pending(),
  cesar.captured_changes(text), cesar.drop_retired_capture_stores() from public, anon, authenticated;
grant execute on function cesar.expand_captures(integer), cesar.event_backlog(), cesar.events_pending()
  to service_role;
