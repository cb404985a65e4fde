-- Why: INSERT / UPDATE / DELETE on the agents' tables must run workflows and reach the mirror
-- without ever losing a change. The change is captured inside the writer's own transaction
-- (so a committed change always has its capture and a rolled-back one never does), by
-- statement-level triggers that read the statement's transition tables: one INSERT per
-- statement instead of one per row. A doorbell (one pg_net call per transaction) asks the
-- webhook function to process at once; a pg_cron sweep every tick is the net.
--
-- The capture overhead: writing one cesar.event_log row per changed row (a JSON image, a heap
-- tuple, two index entries) in the writer's transaction made a bulk INSERT 2-3x as slow as on
-- an unwatched table: turning a row into JSON alone costs about as much as inserting it.
-- Capture therefore keeps the statement's rows as they are. Each captured table has a capture
-- store, cesar.captured_<n>, whose rows hold a statement's transition rows as an array of a
-- composite type with the table's columns (one array up to 64 MB; beyond, arrays of about
-- 16 MB, each expanded on its own), and each array one row in cesar.captures (store, op,
-- transaction, origin, time, rows), so finding what waits is one static query whatever the
-- number of stores. A 10,000-row INSERT writes two rows and converts nothing.
--
-- The database owns the change pipeline: cesar.expand_captures() makes, in the one statement
-- that takes the captured rows, the events of watched tables (cesar.watched_tables: tables
-- templates or operators watch) and the outbox marks of mirrored tables (cesar.sync_tables,
-- in the mirror migration); the sync expands what waits itself and reads the outbox alone
-- (plus, for exactness within one statement, what is captured and not yet expanded).
--
-- Capturing a table is what watching and mirroring share: cesar.recapture() gives a table the
-- store and statement triggers its purpose needs (watched, mirrored or both), or none. The
-- store's element type is a copy of the table's columns, not the table's own row type (a
-- column of a table's row type forbids ALTER COLUMN TYPE on that table). When a captured
-- table changes shape (ALTER TABLE), an event trigger makes a new store for the new shape in
-- the same transaction and retires the old one; retired stores are expanded like the others
-- and dropped by maintenance.prune once empty. Rules stated once here: which columns an
-- UPDATE changed (cesar.changed_columns, also used for native webhook deliveries), the SQL the
-- capture generates (one renderer, cesar.render_sql, with named slots), which tables may be
-- captured (cesar.system_table_reason).

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
  processed_at timestamptz,
  origin text
);
comment on table cesar.event_log is 'Every captured change of a watched table, written in the writer''s transaction.';
comment on column cesar.event_log.origin is
  'null: written on the primary; mirror: pulled from the mirror; restore: rebuilt from the mirror (neither is pushed back; a restore runs no workflow).';

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

-- What a store is for is fixed when it is made, like its shape: its rows become events when
-- the table was watched (cesar.watched_tables) and outbox marks when it was mirrored
-- (cesar.sync_tables), at the time they were captured (watched, mirrored). A change of
-- purpose makes a new store, as a change of shape does, and what the old one holds is
-- expanded as it was captured (the changes of a table unwatched or dropped since are still
-- its events).
create table cesar.capture_stores (
  id integer generated always as identity primary key,
  relid oid not null,
  schema_name text not null,
  table_name text not null,
  key_column text not null,
  -- The table's columns when the store was made ("name type" each, in order).
  columns text[] not null,
  created_at timestamptz not null default now(),
  retired_at timestamptz,
  watched boolean not null default false,
  mirrored boolean not null default false
);
create unique index capture_stores_active_idx on cesar.capture_stores (relid) where retired_at is null;
comment on table cesar.capture_stores is
  'One store per watched table and shape: cesar.captured_<id> (rows), cesar.captured_<id>_row (their type), cesar.capture_<id>() (the trigger function).';

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

-- Which columns an UPDATE changed: the columns of the new image whose values differ from the
-- old image's (a column the old image lacks included), updated_at aside (a touch that changes
-- nothing else is not news). Null when none did. The capture's expansion and native webhook
-- deliveries both decide with it. A set-returning SQL function without a SET clause, so that
-- the planner inlines it into the caller's query like a subquery: it runs for every captured
-- UPDATE row, and as a scalar function with a subquery (not inlined) it made the expansion
-- of 90,000 updated rows 1.8x as slow.
create function cesar.changed_columns(new_image jsonb, old_image jsonb)
returns table (changed text[])
language sql
immutable
parallel safe
as $$
  select array_agg(n.key order by n.key)
  from jsonb_each(new_image) n
  where n.key <> 'updated_at' and n.value is distinct from (old_image -> n.key)
$$;

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

-- A TRUNCATE of a captured table would make no event: rows would vanish that no workflow and
-- no mirror ever heard of. It is refused (delete the rows, which is captured, or unwatch the
-- table first).
create function cesar.refuse_truncate() returns trigger
language plpgsql
set search_path = ''
as $$
begin
  raise exception 'TRUNCATE of %.% is refused: the table is watched, and a TRUNCATE makes no event; delete the rows, or unwatch the table first',
    tg_table_schema, tg_table_name using errcode = '0A000';
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

-- Makes the store for a table's shape and purpose: its row type, its table and its trigger
-- function. Arrays are compressed with lz4 where the server has it.
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
create function cesar.watch(target regclass) returns text
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

create function cesar.unwatch(target regclass) returns text
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

-- An ALTER TABLE on a captured table moves its capture to a store of the new shape before the
-- ALTER commits, so no write after it meets a stale store; a table now refused is no longer
-- watched or mirrored. A table left without a single-column primary key (its key being
-- replaced) keeps its store, keyed by the old key column.
create function cesar.rewatch_altered_tables() returns event_trigger
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

create event trigger cesar_rewatch_altered_tables on ddl_command_end
  when tag in ('ALTER TABLE') execute function cesar.rewatch_altered_tables();

-- A captured table dropped: its store is retired (what it holds is still expanded) and the
-- table is no longer watched.
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
-- without an old image. Only the writes the expanded stores need are in the statement, so
-- that the changes stream into the one they feed: written for both (stores watched and
-- mirrored), they are materialized first. Returns the number of captured rows taken.
create function cesar.expand_captures(max_rows integer default null) returns integer
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
        from changes c where c.watched
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
        select e.*, h.op, h.txid, h.origin, h.occurred_at, c.changed
        from ({parts}) e
        join h on h.statement_id = e.statement_id and h.chunk = e.chunk
        -- Compared for UPDATEs only: other changes give it no images, and it returns null.
        cross join lateral cesar.changed_columns(case when h.op = 'UPDATE' then e.record end,
                                                 case when h.op = 'UPDATE' then e.old_record end) c
        where h.op <> 'UPDATE' or c.changed is not null
      ){events}{marks}
      select$expansion$, slots)
  using statements, chunks, nextval('cesar.sync_change_seq');
  return taken_rows;
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

-- The primary's unpushed changes (cesar.unpushed_changes, in the mirror migration) include
-- statements captured but not yet expanded: their rows' keys, read from the table's stores.
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

revoke execute on function cesar.watch(regclass), cesar.unwatch(regclass) from public, anon, authenticated;
grant execute on function cesar.watch(regclass), cesar.unwatch(regclass) to service_role;
revoke execute on function cesar.render_sql(text, jsonb), cesar.changed_columns(jsonb, jsonb),
  cesar.column_list(oid), cesar.single_key_column(oid), cesar.capture_function_sql(integer, text),
  cesar.create_capture_store(regclass, text, text, text, text[], boolean, boolean),
  cesar.recapture(regclass), cesar.expansion_part_sql(cesar.capture_stores),
  cesar.expand_captures(integer), cesar.event_backlog(), cesar.events_pending(),
  cesar.captured_changes(text), cesar.drop_retired_capture_stores() from public, anon, authenticated;
grant execute on function cesar.expand_captures(integer), cesar.event_backlog(), cesar.events_pending()
  to service_role;
