--
-- PostgreSQL database dump
--

SET statement_timeout = 0;
SET lock_timeout = 0;
SET idle_in_transaction_session_timeout = 0;
SET client_encoding = 'UTF8';
SET standard_conforming_strings = on;
SELECT pg_catalog.set_config('search_path', '', false);
SET check_function_bodies = false;
SET xmloption = content;
SET client_min_messages = warning;
SET row_security = off;

--
-- Name: cesar; Type: SCHEMA; Schema: -; Owner: -
--

CREATE SCHEMA cesar;

--
-- Name: SCHEMA cesar; Type: COMMENT; Schema: -; Owner: -
--

COMMENT ON SCHEMA cesar IS 'CESAR Edge machinery: settings, events, jobs, workflows, sync, monitoring.';

--
-- Name: public; Type: SCHEMA; Schema: -; Owner: -
--

CREATE SCHEMA public;

--
-- Name: SCHEMA public; Type: COMMENT; Schema: -; Owner: -
--

COMMENT ON SCHEMA public IS 'standard public schema';

--
-- Name: cron_schedule; Type: TYPE; Schema: cesar; Owner: -
--

CREATE TYPE cesar.cron_schedule AS (
	minutes integer[],
	hours integer[],
	days integer[],
	months integer[],
	weekdays integer[],
	any_day boolean,
	any_weekday boolean,
	wildcard boolean
);

--
-- Name: action_jobs(jsonb); Type: FUNCTION; Schema: cesar; Owner: -
--

CREATE FUNCTION cesar.action_jobs(actions jsonb) RETURNS TABLE(job_type text, payload jsonb)
    LANGUAGE sql IMMUTABLE
    SET search_path TO ''
    AS $$
  select case a.action ->> 'type'
           when 'enqueue_job' then a.action ->> 'job_type'
           when 'agent_task' then 'agent.task'
           when 'sync_table' then 'sync.table'
           when 'http_request' then 'http.request'
         end,
         case a.action ->> 'type'
           when 'enqueue_job' then coalesce(a.action -> 'payload', '{}')
           else jsonb_strip_nulls(a.action - 'type')
         end
  from jsonb_array_elements(actions) with ordinality as a (action, ordinality)
  order by a.ordinality
$$;

--
-- Name: await_jobs(text, integer, text[], integer, integer, integer, jsonb); Type: PROCEDURE; Schema: cesar; Owner: -
--

CREATE PROCEDURE cesar.await_jobs(IN worker text, IN batch_size integer, IN job_types text[], IN default_lease_seconds integer, IN start_count integer, IN timeout_ms integer, INOUT step jsonb DEFAULT NULL::jsonb)
    LANGUAGE plpgsql
    AS $$
begin
  step := null;
  if cesar.await_work('job-drain', timeout_ms, job_types) then
    commit;
    step := cesar.finish_and_claim(worker, '[]'::pg_catalog.jsonb, '[]'::pg_catalog.jsonb,
                                   batch_size, job_types, default_lease_seconds, start_count);
  end if;
end
$$;

--
-- Name: await_work(text, integer, text[]); Type: FUNCTION; Schema: cesar; Owner: -
--

CREATE FUNCTION cesar.await_work(target text, timeout_ms integer, job_types text[] DEFAULT NULL::text[]) RETURNS boolean
    LANGUAGE plpgsql
    SET search_path TO ''
    AS $$
declare
  give_up timestamptz := clock_timestamp() + make_interval(secs => least(timeout_ms, 5000) / 1000.0);
  next_look timestamptz;
  seen bigint;
  writer bigint;
  -- A writer published and not yet ended.
  pending bigint;
begin
  if cesar.doorbell_sequence(target) is null then
    raise exception 'no doorbell %', target using errcode = '22023';
  end if;
  seen := cesar.doorbell_last_writer(target);
  loop
    -- Each look is a statement of its own, with a fresh snapshot.
    if (target = 'webhook/drain' and cesar.events_pending())
       -- clock_timestamp(): now() stays at this statement's start, before the jobs awaited.
       or (target = 'job-drain' and cesar.jobs_due(await_work.job_types, clock_timestamp())) then
      return true;
    end if;
    next_look := least(give_up, clock_timestamp() + interval '3 milliseconds');
    loop
      exit when clock_timestamp() >= next_look;
      writer := cesar.doorbell_last_writer(target);
      if writer is distinct from seen then
        seen := writer;
        pending := writer;
      end if;
      if pending is null then
        perform pg_sleep(0.001);
      elsif cesar.doorbell_await_writer(
              target, pending,
              ceil(extract(epoch from next_look - clock_timestamp()) * 1000)::integer) then
        -- It has ended: look now.
        pending := null;
        exit;
      end if;
    end loop;
    exit when clock_timestamp() >= give_up;
  end loop;
  return false;
end
$$;

--
-- Name: cancel_jobs(bigint[]); Type: FUNCTION; Schema: cesar; Owner: -
--

CREATE FUNCTION cesar.cancel_jobs(ids bigint[]) RETURNS SETOF bigint
    LANGUAGE sql
    SET search_path TO ''
    AS $$
  update cesar.job_queue q
  set status = case when q.status = 'running' and q.started_at is not null then 'running' else 'cancelled' end,
      finished_at = case when q.status = 'running' and q.started_at is not null then null else now() end,
      cancel_requested_at = case when q.status = 'running' and q.started_at is not null
                              then coalesce(q.cancel_requested_at, now()) end,
      locked_by = case when q.status = 'running' and q.started_at is not null then q.locked_by end,
      locked_until = case when q.status = 'running' and q.started_at is not null then q.locked_until end,
      updated_at = now()
  where q.id = any (cancel_jobs.ids) and q.status in ('pending', 'running')
  returning q.id
$$;

--
-- Name: capture_function_sql(integer, text); Type: FUNCTION; Schema: cesar; Owner: -
--

CREATE FUNCTION cesar.capture_function_sql(store_id integer, key_column text) RETURNS text
    LANGUAGE sql IMMUTABLE
    SET search_path TO ''
    AS $_$
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
$_$;

--
-- Name: captured_changes(text); Type: FUNCTION; Schema: cesar; Owner: -
--

CREATE FUNCTION cesar.captured_changes(target text) RETURNS TABLE(row_key text, op text, occurred_at timestamp with time zone)
    LANGUAGE plpgsql STABLE
    SET search_path TO ''
    AS $_$
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
$_$;

--
-- Name: changed_columns(jsonb, jsonb); Type: FUNCTION; Schema: cesar; Owner: -
--

CREATE FUNCTION cesar.changed_columns(new_image jsonb, old_image jsonb) RETURNS TABLE(changed text[])
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$
  select array_agg(n.key order by n.key)
  from jsonb_each(new_image) n
  where n.key <> 'updated_at' and n.value is distinct from (old_image -> n.key)
$$;

--
-- Name: check_schedule_trigger(jsonb); Type: FUNCTION; Schema: cesar; Owner: -
--

CREATE FUNCTION cesar.check_schedule_trigger(trigger jsonb) RETURNS void
    LANGUAGE plpgsql STABLE
    SET search_path TO ''
    AS $$
declare
  zone text := coalesce(trigger ->> 'timezone', 'UTC');
begin
  perform cesar.cron_fields(trigger ->> 'cron');
  if zone <> 'UTC' and not exists (select from pg_catalog.pg_timezone_names n where n.name = zone) then
    raise exception 'invalid time zone "%"', zone using errcode = '22023';
  end if;
  if coalesce(trigger ->> 'catch_up', 'none') not in ('none', 'latest', 'all') then
    raise exception 'invalid catch_up "%": none, latest or all', trigger ->> 'catch_up'
      using errcode = '22023';
  end if;
  if trigger ? 'catch_up_max' and (jsonb_typeof(trigger -> 'catch_up_max') <> 'number'
      or (trigger ->> 'catch_up_max')::numeric not between 1 and 1000
      or (trigger ->> 'catch_up_max')::numeric % 1 <> 0) then
    raise exception 'invalid catch_up_max: an integer from 1 to 1000' using errcode = '22023';
  end if;
end
$$;

SET default_tablespace = '';

SET default_table_access_method = heap;

--
-- Name: event_log; Type: TABLE; Schema: cesar; Owner: -
--

CREATE TABLE cesar.event_log (
    id bigint NOT NULL,
    schema_name text NOT NULL,
    table_name text NOT NULL,
    op text NOT NULL,
    record jsonb,
    old_record jsonb,
    changed_columns text[],
    row_key text,
    txid bigint,
    source text DEFAULT 'trigger'::text NOT NULL,
    dedup_key text,
    status text DEFAULT 'pending'::text NOT NULL,
    attempts integer DEFAULT 0 NOT NULL,
    last_error text,
    occurred_at timestamp with time zone DEFAULT now() NOT NULL,
    processed_at timestamp with time zone,
    origin text,
    CONSTRAINT event_log_op_check CHECK ((op = ANY (ARRAY['INSERT'::text, 'UPDATE'::text, 'DELETE'::text]))),
    CONSTRAINT event_log_source_check CHECK ((source = ANY (ARRAY['trigger'::text, 'webhook'::text]))),
    CONSTRAINT event_log_status_check CHECK ((status = ANY (ARRAY['pending'::text, 'processing'::text, 'processed'::text, 'ignored'::text, 'failed'::text])))
);

--
-- Name: TABLE event_log; Type: COMMENT; Schema: cesar; Owner: -
--

COMMENT ON TABLE cesar.event_log IS 'Every captured change of a watched table, written in the writer''s transaction.';

--
-- Name: COLUMN event_log.origin; Type: COMMENT; Schema: cesar; Owner: -
--

COMMENT ON COLUMN cesar.event_log.origin IS 'null: written on the primary; mirror: pulled from the mirror; restore: rebuilt from the mirror (neither is pushed back; a restore runs no workflow).';

--
-- Name: claim_events(integer); Type: FUNCTION; Schema: cesar; Owner: -
--

CREATE FUNCTION cesar.claim_events(batch_size integer) RETURNS SETOF cesar.event_log
    LANGUAGE plpgsql
    SET search_path TO ''
    SET enable_bitmapscan TO 'off'
    AS $$
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

--
-- Name: claim_jobs(text, integer, text[], integer, integer); Type: FUNCTION; Schema: cesar; Owner: -
--

CREATE FUNCTION cesar.claim_jobs(worker text, batch_size integer, job_types text[] DEFAULT NULL::text[], default_lease_seconds integer DEFAULT 60, start_count integer DEFAULT NULL::integer) RETURNS TABLE(id bigint, job_type text, payload jsonb, attempts integer, max_attempts integer, priority integer, run_at timestamp with time zone, created_at timestamp with time zone, locked_until timestamp with time zone, backoff_base_seconds numeric, backoff_cap_seconds numeric, lease_seconds integer, started boolean, attempts_left boolean)
    LANGUAGE plpgsql
    SET search_path TO ''
    SET enable_seqscan TO 'off'
    SET enable_bitmapscan TO 'off'
    SET jit TO 'off'
    AS $$
#variable_conflict use_column
declare
  capped_count integer;
  -- Types in scope with a rate limit or a per-key cap and due jobs (locked by the probe).
  flow_count integer;
  flow_types text[];
  -- Those of them with a per-key cap: drawn round-robin over their keys (keyed_pending).
  keyed_types text[];
  -- The flow types' clock: read once their locks are held, so that the starts recorded under
  -- a type's lock are in the order the claims took it.
  claim_at timestamptz;
  -- Extra candidates to look at when some due jobs belong to capped types.
  spare integer := 0;
begin
  if batch_size is null or batch_size < 1 then
    return;
  end if;

  -- A claim need not survive a server crash: if its commit record is lost, the job is simply
  -- due again and runs again, as after an expired lease (delivery is at least once either
  -- way). Not waiting for the WAL flush takes the fsync off the start of every job: on the
  -- local stack it cut the median claim-to-handler-start of a drain call from 1.15 ms to
  -- 0.74 ms. (A lost claim of a rate-limited job loses its recorded start with it: the
  -- job's start is lost too.)
  perform set_config('synchronous_commit', 'off', true);

  -- Every statement below has an index made for it, and statistics cannot be trusted on a
  -- queue, whose rows change state by the thousand between two analyzes:
  --   * with statistics taken during a burst (a type with 100,000 due jobs), the planner
  --     reckoned a capped type's one-row probe below would find a row at once in a sequential
  --     scan; the capped types had no due job, so each probe read the whole table: 1.3
  --     million rows, 210 ms per capped type, on every claim, and a 200,000-job drain fell
  --     from 18,000 to 500 jobs/s once autovacuum had analyzed the queue in its middle;
  --   * the claim must walk the pending index in order and stop at the batch: an ordered
  --     index scan also marks the entries of finished jobs dead as it passes them, so the
  --     next claim skips them. After a burst the planner would rather take a bitmap scan and
  --     sort every pending entry, dead ones included: after draining 20,000 jobs that made a
  --     0.14 ms claim take 1.2 ms, every time, until vacuum.
  -- So neither kind of scan is planned here (the function's settings, off for its own
  -- statements only).

  -- Per-type caps, rate limits and per-key caps: lock every such type that has due jobs, in
  -- one sorted pass (the lock is postponed past the sort: volatile).
  -- Each type is probed for one due job on its own, in job_queue_type_status_idx (the
  -- LIMITs keep the probes from being flattened into a semi-join; the ORDER BY, the index's
  -- order, keeps the planner from walking every pending job in job_queue_claim_idx instead,
  -- which it did with statistics taken before a burst): as a plain EXISTS the planner, once
  -- its plan was generic, hashed every due job of the queue to find the few capped types, on
  -- every claim: 10-16 ms of a claim of 100 with 18,000 no-op jobs queued (EXPLAIN ANALYZE),
  -- growing with the queue. Now one or two index probes per such type in scope (none for
  -- system.noop).
  select count(*), count(*) filter (where l.flow),
         array_agg(l.job_type) filter (where l.flow),
         array_agg(l.job_type) filter (where l.keyed)
  into capped_count, flow_count, flow_types, keyed_types
  from (
    select t.job_type,
           pg_advisory_xact_lock(hashtext('cesar.job_queue'), hashtext(t.job_type)) as locked,
           t.rate_limit is not null or t.key_concurrency is not null
             or (t.rate_key is not null and exists (
                   select from cesar.job_rate_limits l where l.job_type = t.job_type)) as flow,
           t.key_concurrency is not null as keyed
    from cesar.job_types t
    -- A type with a rate_key and no rate_limit of its own is rate-limited only with limits
    -- for some of its keys (cesar.job_rate_limits): http.request without any costs nothing.
    where (t.concurrency is not null or t.rate_limit is not null or t.key_concurrency is not null
           or (t.rate_key is not null and exists (
                 select from cesar.job_rate_limits l where l.job_type = t.job_type)))
      and (claim_jobs.job_types is null or t.job_type = any (claim_jobs.job_types))
      and ((select count(*) from (
             select from cesar.job_queue q
             where q.job_type = t.job_type and q.status = 'pending' and q.run_at <= now()
             order by q.job_type, q.status
             limit 1) p) > 0
           or (select count(*) from (
             select from cesar.job_queue q
             where q.job_type = t.job_type and q.status = 'running' and q.locked_until < now()
             order by q.job_type, q.status
             limit 1) r) > 0)
    order by t.job_type
  ) l;
  if capped_count > 0 then
    spare := claim_jobs.batch_size;
  end if;
  -- Rate-limited or keyed types are due: the statement below, which also holds the per-type
  -- caps. Otherwise the statement after it, 20261203001500_job_lifecycle.sql's, unchanged but
  -- for one filter (two since per-key limits). One statement with both, the new parts skipped
  -- by one-time filters, cost the hot path 5-10% (20,000 no-op jobs claimed 100 at a time, 10
  -- interleaved runs each).
  if flow_count > 0 then
    claim_at := clock_timestamp();
    return query
  -- Sources, each read in its own index order: due pending jobs, running jobs whose lease ran
  -- out, and (keyed types only) due pending jobs round-robin over their keys. When capped
  -- types are due, look at twice the batch so that capped types with no room do not starve
  -- it; the extra rows stay locked only until this statement ends.
  with pending as (
    select q.id, q.job_type, q.priority, q.run_at, q.backoff_base_seconds, q.backoff_cap_seconds
    from cesar.job_queue q
    where q.status = 'pending' and q.run_at <= now()
      -- The drain's types as an array containment, which no index serves: as
      -- `job_type = any (...)` it matched job_queue_type_status_idx, and on a table never
      -- analyzed (a fresh project's queue) the planner took that index and sorted every
      -- pending job of the types for each batch instead of walking job_queue_claim_idx in
      -- order: 18-30 ms a claim of 500 with 20,000 jobs queued instead of 11 ms, and the
      -- bench drained at half the rate it reached with statistics.
      and (claim_jobs.job_types is null or array[q.job_type] <@ claim_jobs.job_types)
      -- Keyed types come from keyed_pending: their backlog (10,000 jobs of one key at its
      -- cap, say) would otherwise fill this batch and starve every other type and key.
      and (keyed_types is null or not (array[q.job_type] <@ keyed_types))
      -- A job with a serial key waits for the earlier unfinished jobs of its key.
      and (q.serial_key is null or not exists (
        select from cesar.job_queue e
        where e.serial_key = q.serial_key and e.id < q.id and e.status in ('pending', 'running')))
    order by q.priority desc, q.run_at, q.id
    limit claim_jobs.batch_size + spare
    for update skip locked
  ), expired as (
    select q.id, q.job_type, q.priority, q.run_at, q.backoff_base_seconds, q.backoff_cap_seconds
    from cesar.job_queue q
    where q.status = 'running' and q.locked_until < now() and cesar.job_attempts_left(q.attempts, q.max_attempts)
      and q.cancel_requested_at is null
      and (claim_jobs.job_types is null or q.job_type = any (claim_jobs.job_types))
    order by q.locked_until
    limit claim_jobs.batch_size
    for update skip locked
  ), keyed_running as (
    -- Keyed types' running jobs per key (their leases held), counted once per claim: a type's
    -- running jobs are at most its drains' slots.
    select q.job_type,
           coalesce(q.payload #>> string_to_array(substr(kt.concurrency_key, 9), '.'), '') as ckey,
           count(*) as n
    from cesar.job_queue q
    join cesar.job_types kt on kt.job_type = q.job_type
    where keyed_types is not null and q.job_type = any (keyed_types) and q.status = 'running'
      and q.locked_until >= now()
    group by 1, 2
  ), keyed_pending as (
    -- Per keyed type: its due jobs, each key's first (key_concurrency - running) in order, the
    -- keys taken in turn (all keys' first job, then all keys' second...), at most a batch.
    -- Sorting the type's due jobs costs a few milliseconds per 10,000 of them, for keyed types
    -- only; keys at their cap are passed by before the sort.
    select q.id, q.job_type, q.priority, q.run_at, q.backoff_base_seconds, q.backoff_cap_seconds
    from cesar.job_queue q
    where q.id in (
      select w.id from (
        select k.id, k.priority, k.run_at, k.room,
               row_number() over (partition by k.job_type, k.ckey
                                  order by k.priority desc, k.run_at, k.id) as nth
        from (
          select k.*, k.key_concurrency - coalesce(r.n, 0) as room
          from (
            select e.id, e.job_type, e.priority, e.run_at, kt.key_concurrency,
                   coalesce(e.payload #>> string_to_array(substr(kt.concurrency_key, 9), '.'), '') as ckey
            from cesar.job_queue e
            join cesar.job_types kt on kt.job_type = e.job_type
            where keyed_types is not null and e.job_type = any (keyed_types)
              and e.status = 'pending' and e.run_at <= now()
              and (e.serial_key is null or not exists (
                select from cesar.job_queue s
                where s.serial_key = e.serial_key and s.id < e.id and s.status in ('pending', 'running')))
          ) k
          left join keyed_running r on r.job_type = k.job_type and r.ckey = k.ckey
        ) k
        where k.room > 0
      ) w
      where w.nth <= w.room
      order by w.nth, w.priority desc, w.run_at, w.id
      limit claim_jobs.batch_size)
      and q.status = 'pending'
    for update skip locked
  ), dead as (
    -- A job whose lease expired on its last attempt is failed for good, not retried; one
    -- whose cancel was requested (cesar.cancel_jobs) ends cancelled: its drain died before it
    -- could stop the handler and record it. Same scan of job_queue_lease_idx as before.
    update cesar.job_queue q
    set status = case when q.cancel_requested_at is not null then 'cancelled' else 'failed' end,
        finished_at = now(), updated_at = now(),
        last_error = case when q.cancel_requested_at is not null
                       then 'cancelled: the drain running attempt ' || q.attempts || ' stopped before its handler did'
                       else 'lease expired: the drain running attempt ' || q.attempts || ' stopped before recording an outcome' end,
        errors = q.errors || cesar.job_error_entry(q.attempts,
                   case when q.cancel_requested_at is not null then 'cancelled' else 'lease_expired' end,
                   case when q.cancel_requested_at is not null then 'cancelled; lease expired' else 'lease expired' end,
                   q.locked_by, now()),
        locked_by = null, locked_until = null
    where q.id in (
      select d.id from cesar.job_queue d
      where d.status = 'running' and d.locked_until < now()
        and (d.cancel_requested_at is not null or not cesar.job_attempts_left(d.attempts, d.max_attempts))
        and (claim_jobs.job_types is null or d.job_type = any (claim_jobs.job_types))
      limit 1000
      for update skip locked)
  ), candidates as (
    select c.id, c.job_type, c.priority, c.run_at, t.concurrency,
           coalesce(t.lease_seconds, claim_jobs.default_lease_seconds) as lease_seconds,
           coalesce(c.backoff_base_seconds, t.backoff_base_seconds, 300) as backoff_base_seconds,
           coalesce(c.backoff_cap_seconds, t.backoff_cap_seconds, 3600) as backoff_cap_seconds,
           t.rate_limit is not null or t.key_concurrency is not null
             or (t.rate_key is not null and exists (
                   select from cesar.job_rate_limits l where l.job_type = t.job_type)) as flow
    from (select * from pending union all select * from expired union all select * from keyed_pending) c
    left join cesar.job_types t on t.job_type = c.job_type
  ), flowed as (
    -- Capped, rate-limited or keyed types are due: each candidate with its type's running
    -- jobs and, for the latter two, its keys, and the rate limit of its key: the key's own
    -- (cesar.job_rate_limits) or else the type's (none: not limited). A job of such a type
    -- whose type the probe did not lock (enqueued since) waits for the next claim.
    select c.*,
           row_number() over (partition by c.job_type order by c.priority desc, c.run_at, c.id) as nth,
           case when c.concurrency is null then 0 else (
             select count(*) from cesar.job_queue r
             where r.job_type = c.job_type and r.status = 'running' and r.locked_until >= now()
           ) end as running,
           coalesce(kl.rate_limit, t.rate_limit) as rate_limit,
           coalesce(kl.rate_period_seconds, t.rate_period_seconds) as rate_period_seconds,
           t.key_concurrency, k.rkey,
           case when t.key_concurrency is not null
             then coalesce(p.payload #>> string_to_array(substr(t.concurrency_key, 9), '.'), '') end as ckey
    from candidates c
    left join cesar.job_types t on c.flow and t.job_type = c.job_type
    left join cesar.job_queue p on c.flow and p.id = c.id
    left join lateral (
      select coalesce(p.payload #>> string_to_array(substr(t.rate_key, 9), '.'), '') as rkey
      where t.rate_limit is not null or t.rate_key is not null
    ) k on true
    left join cesar.job_rate_limits kl
      on t.rate_key is not null and kl.job_type = c.job_type and kl.key_value = k.rkey
    where not c.flow or c.job_type = any (flow_types)
  ), fits as (
    -- Within the type's cap and its key's.
    select f.* from (
      select f.*,
             row_number() over (partition by f.job_type, f.ckey order by f.priority desc, f.run_at, f.id) as nth_key,
             coalesce((select r.n from keyed_running r where r.job_type = f.job_type and r.ckey = f.ckey), 0) as key_running
      from flowed f
    ) f
    where (f.concurrency is null or f.nth <= f.concurrency - f.running)
      and (f.key_concurrency is null or f.nth_key <= f.key_concurrency - f.key_running)
  ), rated as (
    -- And within the key's rate: `recent` are the key's starts in the window ending now.
    select f.*,
           row_number() over (partition by f.job_type, f.rkey order by f.priority desc, f.run_at, f.id) as nth_rate,
           coalesce(w.recent, '{}') as recent
    from fits f
    left join lateral (
      select array(select s from unnest(rw.starts) s
                   where s > claim_at - make_interval(secs => f.rate_period_seconds::float8)
                   order by s) as recent
      from cesar.job_rate_windows rw
      where rw.job_type = f.job_type and rw.rate_key = f.rkey
    ) w on f.rate_limit is not null
  ), flow_chosen as (
    -- Per type and key, only as many as the caps and rates leave room for. With rate-limited
    -- or keyed types due, only as many as the drain starts now (start_count): such a job is
    -- never leased to wait in a drain's local queue, to be started later (cesar.start_jobs)
    -- out of its window's and its key's count.
    select r.id, r.job_type, r.priority, r.run_at, r.lease_seconds, r.backoff_base_seconds,
           r.backoff_cap_seconds, r.flow, r.rkey
    from rated r
    where r.rate_limit is null or r.nth_rate <= r.rate_limit - cardinality(r.recent)
    order by r.priority desc, r.run_at, r.id
    limit least(claim_jobs.batch_size, coalesce(claim_jobs.start_count, claim_jobs.batch_size))
  ), numbered as (
    -- Every flow_chosen job starts now.
    select f.*, true as starts from flow_chosen f
  ), used as (
    -- The rate-limited keys' windows after this claim: their recent starts and this claim's
    -- (every flow_chosen job starts now).
    select k.job_type, k.rkey, k.rate_limit, k.rate_period_seconds,
           k.recent || array_fill(claim_at, array[(
             select count(*) from flow_chosen f
             where f.job_type = k.job_type and f.rkey = k.rkey)::int]) as starts
    from (select distinct on (r.job_type, r.rkey) r.job_type, r.rkey, r.rate_limit,
                 r.rate_period_seconds, r.recent
          from rated r where r.rate_limit is not null) k
  ), windows as (
    insert into cesar.job_rate_windows as w (job_type, rate_key, starts)
    select u.job_type, u.rkey,
           u.starts[greatest(1, cardinality(u.starts) - u.rate_limit + 1):]
    from used u
    where exists (select from flow_chosen f where f.job_type = u.job_type and f.rkey = u.rkey)
    on conflict (job_type, rate_key) do update set starts = excluded.starts
  ), deferred as (
    -- Over the rate: stays pending, no attempt charged, due again when the window frees its
    -- slot. With the window's L starts s[1..L] (oldest first, this claim's included), the k-th
    -- job over takes start s[(k-1) % L + 1]'s slot, (k-1) / L + 1 periods later: the first
    -- L when the current starts leave the window, the next L a period after them, and so on,
    -- so that a backlog does not all fall due again at once (the jobs looked at, that is: a
    -- later claim schedules the rest from the same window, and a job due with more ahead of
    -- it than its window allows is held back again).
    update cesar.job_queue q
    set run_at = greatest(q.run_at,
                          u.starts[(r.nth_rate - (r.rate_limit - cardinality(r.recent)) - 1) % cardinality(u.starts) + 1]
                            + make_interval(secs => r.rate_period_seconds::float8
                                                    * ((r.nth_rate - (r.rate_limit - cardinality(r.recent)) - 1)
                                                       / cardinality(u.starts) + 1))),
        updated_at = now()
    from rated r
    join used u on u.job_type = r.job_type and u.rkey = r.rkey
    where q.id = r.id and r.rate_limit is not null
      and r.nth_rate > r.rate_limit - cardinality(r.recent)
      and cardinality(u.starts) > 0
      and q.status = 'pending'
  )
  update cesar.job_queue q
  set status = 'running',
      attempts = q.attempts + case when n.starts then 1 else 0 end,
      -- A rate-limited job starts at the clock its window was checked against.
      started_at = case when n.starts then coalesce(case when n.flow then claim_at end, now()) end,
      locked_by = claim_jobs.worker,
      locked_until = now() + make_interval(secs => n.lease_seconds),
      updated_at = now(),
      -- A new attempt reports its own progress (a cancelled job may have been retried).
      progress = null, progress_message = null, cancel_requested_at = null,
      -- Taken over from a drain that died: an attempt whose handler started is lost.
      errors = case when q.status = 'running' and q.started_at is not null
                 then q.errors || cesar.job_error_entry(q.attempts, 'lease_expired', 'lease expired', q.locked_by, now())
                 else q.errors end,
      last_error = case when q.status = 'running' and q.started_at is not null then 'lease expired' else q.last_error end
  from numbered n
  where q.id = n.id
  returning q.id, q.job_type, q.payload, q.attempts, q.max_attempts, q.priority, q.run_at, q.created_at,
            q.locked_until, n.backoff_base_seconds, n.backoff_cap_seconds, n.lease_seconds, n.starts,
            cesar.job_attempts_left(q.attempts, q.max_attempts);
    return;
  end if;

  return query
  -- Two sources, each read in its own index order: due pending jobs, and running jobs whose
  -- lease ran out. When capped types are due, look at twice the batch so that capped types
  -- with no room do not starve it; the extra rows stay locked only until this statement ends.
  with pending as (
    select q.id, q.job_type, q.priority, q.run_at, q.backoff_base_seconds, q.backoff_cap_seconds
    from cesar.job_queue q
    where q.status = 'pending' and q.run_at <= now()
      -- The drain's types as an array containment, which no index serves: as
      -- `job_type = any (...)` it matched job_queue_type_status_idx, and on a table never
      -- analyzed (a fresh project's queue) the planner took that index and sorted every
      -- pending job of the types for each batch instead of walking job_queue_claim_idx in
      -- order: 18-30 ms a claim of 500 with 20,000 jobs queued instead of 11 ms, and the
      -- bench drained at half the rate it reached with statistics.
      and (claim_jobs.job_types is null or array[q.job_type] <@ claim_jobs.job_types)
      -- A job with a serial key waits for the earlier unfinished jobs of its key.
      and (q.serial_key is null or not exists (
        select from cesar.job_queue e
        where e.serial_key = q.serial_key and e.id < q.id and e.status in ('pending', 'running')))
    order by q.priority desc, q.run_at, q.id
    limit claim_jobs.batch_size + spare
    for update skip locked
  ), expired as (
    select q.id, q.job_type, q.priority, q.run_at, q.backoff_base_seconds, q.backoff_cap_seconds
    from cesar.job_queue q
    where q.status = 'running' and q.locked_until < now() and cesar.job_attempts_left(q.attempts, q.max_attempts)
      and q.cancel_requested_at is null
      and (claim_jobs.job_types is null or q.job_type = any (claim_jobs.job_types))
    order by q.locked_until
    limit claim_jobs.batch_size
    for update skip locked
  ), dead as (
    -- A job whose lease expired on its last attempt is failed for good, not retried; one
    -- whose cancel was requested (cesar.cancel_jobs) ends cancelled: its drain died before it
    -- could stop the handler and record it. Same scan of job_queue_lease_idx as before.
    update cesar.job_queue q
    set status = case when q.cancel_requested_at is not null then 'cancelled' else 'failed' end,
        finished_at = now(), updated_at = now(),
        last_error = case when q.cancel_requested_at is not null
                       then 'cancelled: the drain running attempt ' || q.attempts || ' stopped before its handler did'
                       else 'lease expired: the drain running attempt ' || q.attempts || ' stopped before recording an outcome' end,
        errors = q.errors || cesar.job_error_entry(q.attempts,
                   case when q.cancel_requested_at is not null then 'cancelled' else 'lease_expired' end,
                   case when q.cancel_requested_at is not null then 'cancelled; lease expired' else 'lease expired' end,
                   q.locked_by, now()),
        locked_by = null, locked_until = null
    where q.id in (
      select d.id from cesar.job_queue d
      where d.status = 'running' and d.locked_until < now()
        and (d.cancel_requested_at is not null or not cesar.job_attempts_left(d.attempts, d.max_attempts))
        and (claim_jobs.job_types is null or d.job_type = any (claim_jobs.job_types))
      limit 1000
      for update skip locked)
  ), candidates as (
    select c.id, c.job_type, c.priority, c.run_at, t.concurrency,
           coalesce(t.lease_seconds, claim_jobs.default_lease_seconds) as lease_seconds,
           coalesce(c.backoff_base_seconds, t.backoff_base_seconds, 300) as backoff_base_seconds,
           coalesce(c.backoff_cap_seconds, t.backoff_cap_seconds, 3600) as backoff_cap_seconds
    from (select * from pending union all select * from expired) c
    left join cesar.job_types t on t.job_type = c.job_type
    -- A rate-limited or keyed type's job enqueued since the probe waits for the next claim.
    where t.rate_limit is null and t.key_concurrency is null
      and (t.rate_key is null or not exists (
             select from cesar.job_rate_limits l where l.job_type = t.job_type))
  ), chosen as (
    -- No capped type is due: every candidate may run (the common case, and the cheap one:
    -- the branch below is skipped as a whole).
    (select c.id, c.priority, c.run_at, c.lease_seconds, c.backoff_base_seconds, c.backoff_cap_seconds
     from candidates c
     where spare = 0
     limit claim_jobs.batch_size)
    union all
    -- Capped types are due: per type, take only as many as its cap leaves room for.
    (select r.id, r.priority, r.run_at, r.lease_seconds, r.backoff_base_seconds, r.backoff_cap_seconds
     from (
       select c.*,
              row_number() over (partition by c.job_type order by c.priority desc, c.run_at, c.id) as nth,
              case when c.concurrency is null then 0 else (
                select count(*) from cesar.job_queue r
                where r.job_type = c.job_type and r.status = 'running' and r.locked_until >= now()
              ) end as running
       from candidates c
       where spare > 0
     ) r
     where r.concurrency is null or r.nth <= r.concurrency - r.running
     order by r.priority desc, r.run_at, r.id
     limit claim_jobs.batch_size)
  ), numbered as (
    select ch.*, row_number() over (order by ch.priority desc, ch.run_at, ch.id) <= coalesce(claim_jobs.start_count, claim_jobs.batch_size) as starts
    from chosen ch
  )
  update cesar.job_queue q
  set status = 'running',
      attempts = q.attempts + case when n.starts then 1 else 0 end,
      started_at = case when n.starts then now() end,
      locked_by = claim_jobs.worker,
      locked_until = now() + make_interval(secs => n.lease_seconds),
      updated_at = now(),
      -- A new attempt reports its own progress (a cancelled job may have been retried).
      progress = null, progress_message = null, cancel_requested_at = null,
      -- Taken over from a drain that died: an attempt whose handler started is lost.
      errors = case when q.status = 'running' and q.started_at is not null
                 then q.errors || cesar.job_error_entry(q.attempts, 'lease_expired', 'lease expired', q.locked_by, now())
                 else q.errors end,
      last_error = case when q.status = 'running' and q.started_at is not null then 'lease expired' else q.last_error end
  from numbered n
  where q.id = n.id
  returning q.id, q.job_type, q.payload, q.attempts, q.max_attempts, q.priority, q.run_at, q.created_at,
            q.locked_until, n.backoff_base_seconds, n.backoff_cap_seconds, n.lease_seconds, n.starts,
            cesar.job_attempts_left(q.attempts, q.max_attempts);
end
$$;

--
-- Name: clear_sync_outbox(text, text[], bigint[]); Type: FUNCTION; Schema: cesar; Owner: -
--

CREATE FUNCTION cesar.clear_sync_outbox(target text, keys text[], change_ids bigint[]) RETURNS integer
    LANGUAGE sql
    SET search_path TO ''
    SET enable_hashjoin TO 'off'
    SET enable_mergejoin TO 'off'
    AS $$
  with cleared as (
    delete from cesar.sync_outbox o
    using unnest(keys, change_ids) as p (row_key, change_id)
    where o.table_name = target and o.row_key = p.row_key and o.change_id = p.change_id
    returning 1
  )
  select count(*)::int from cleared
$$;

--
-- Name: column_list(oid); Type: FUNCTION; Schema: cesar; Owner: -
--

CREATE FUNCTION cesar.column_list(target oid) RETURNS text[]
    LANGUAGE sql STABLE
    SET search_path TO ''
    AS $$
  select coalesce(array_agg(format('%I %s', a.attname, format_type(a.atttypid, a.atttypmod)) order by a.attnum), '{}')
  from pg_catalog.pg_attribute a
  where a.attrelid = target and a.attnum > 0 and not a.attisdropped
$$;

--
-- Name: complete_jobs(text, jsonb); Type: FUNCTION; Schema: cesar; Owner: -
--

CREATE FUNCTION cesar.complete_jobs(worker text, completions jsonb) RETURNS TABLE(id bigint)
    LANGUAGE sql
    SET search_path TO ''
    AS $$
  with done as (
    update cesar.job_queue q
    set status = case when q.cancel_requested_at is null then 'completed' else 'cancelled' end,
        result = c.result, finished_at = now(), updated_at = now(),
        locked_by = null, locked_until = null
    from jsonb_to_recordset(complete_jobs.completions) as c (id bigint, attempt integer, result jsonb)
    where q.id = c.id and q.attempts = c.attempt and q.status = 'running'
      and q.locked_by = complete_jobs.worker
    returning q.id, q.job_type, q.status
  ), counted as (
    insert into cesar.job_totals as t (job_type, slot, completed)
    select d.job_type, cesar.job_totals_slot(), count(*)
    from done d where d.status = 'completed' group by d.job_type
    on conflict (job_type, slot) do update set completed = t.completed + excluded.completed
  )
  select d.id from done d where d.status = 'completed'
$$;

--
-- Name: copy_field(text); Type: FUNCTION; Schema: cesar; Owner: -
--

CREATE FUNCTION cesar.copy_field(value text) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN COALESCE(replace(replace(replace(replace(value, '\'::text, '\\'::text), '	'::text, '\t'::text), '
'::text, '\n'::text), ''::text, '\r'::text), '\N'::text);

--
-- Name: create_capture_store(regclass, text, text, text, text[], boolean, boolean); Type: FUNCTION; Schema: cesar; Owner: -
--

CREATE FUNCTION cesar.create_capture_store(target regclass, schema_name text, table_name text, key_column text, columns text[], watched boolean, mirrored boolean) RETURNS integer
    LANGUAGE plpgsql
    SET search_path TO ''
    AS $$
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

--
-- Name: create_executions(jsonb); Type: FUNCTION; Schema: cesar; Owner: -
--

CREATE FUNCTION cesar.create_executions(plans jsonb) RETURNS TABLE(execution_id bigint, event_id bigint, job_count integer)
    LANGUAGE plpgsql
    SET search_path TO ''
    AS $_$
#variable_conflict use_column
declare
  made jsonb;
  execution jsonb;
  action jsonb;
  jobs_made integer;
begin
  -- A keyed action names a key or a mode. One whose key rendered to null (a missing value
  -- in the event) goes to enqueue_keyed too, which refuses it: made a plain job, it would
  -- have lost its dedup or debounce without a word.
  if not jsonb_path_exists(plans, '$[*].actions[*] ? (exists(@.key) || exists(@.mode))') then
    return query
    with plan as (
      select p.*, e.ordinality
      from jsonb_array_elements(plans) with ordinality as e (doc, ordinality)
      cross join lateral jsonb_to_record(e.doc)
        as p (template_id uuid, kind text, event_id bigint, slot timestamptz, actions jsonb,
              retry_policy jsonb, serial_key text)
    ), created as (
      insert into cesar.workflow_executions (template_id, trigger_kind, event_id, schedule_slot, job_count)
      select template_id, kind, event_id, slot, jsonb_array_length(actions) from plan order by ordinality
      on conflict do nothing
      returning id, template_id, event_id, schedule_slot, job_count
    ), jobs as (
      insert into cesar.job_queue (job_type, payload, max_attempts, execution_id, serial_key,
                                   backoff_base_seconds, backoff_cap_seconds)
      select j.job_type, j.payload,
             coalesce((p.retry_policy ->> 'max_attempts')::int, t.max_attempts, 5),
             c.id, p.serial_key,
             (p.retry_policy ->> 'backoff_base_seconds')::numeric,
             (p.retry_policy ->> 'backoff_cap_seconds')::numeric
      from created c
      -- Equalities on coalesced keys, not IS NOT DISTINCT FROM: those can be hash-joined, which
      -- matters for a batch of 1,000 plans (a nested loop halved the events processed per second).
      join plan p on p.template_id = c.template_id
        and coalesce(p.event_id, -1) = coalesce(c.event_id, -1)
        and coalesce(p.slot, '-infinity') = coalesce(c.schedule_slot, '-infinity')
      cross join lateral cesar.action_jobs(p.actions) with ordinality as j (job_type, payload, n)
      left join cesar.job_types t on t.job_type = j.job_type
      order by p.ordinality, j.n
      returning 1
    ), doorbell as (
      select cesar.ring_doorbell('job-drain') where (select count(*) from jobs) > 0
    )
    select c.id, c.event_id, c.job_count from created c, (select count(*) from doorbell) d;
    return;
  end if;

  with plan as (
    select p.*, e.ordinality, cesar.unkeyed_actions(p.actions) as plain_actions
    from jsonb_array_elements(plans) with ordinality as e (doc, ordinality)
    cross join lateral jsonb_to_record(e.doc)
      as p (template_id uuid, kind text, event_id bigint, slot timestamptz, actions jsonb,
            retry_policy jsonb, serial_key text)
  ), created as (
    insert into cesar.workflow_executions (template_id, trigger_kind, event_id, schedule_slot, job_count)
    select template_id, kind, event_id, slot, jsonb_array_length(actions) from plan order by ordinality
    on conflict do nothing
    returning id, template_id, event_id, schedule_slot
  ), matched as (
    select c.id, c.event_id, p.ordinality, p.actions, p.plain_actions, p.retry_policy, p.serial_key
    from created c
    join plan p on p.template_id = c.template_id
      and coalesce(p.event_id, -1) = coalesce(c.event_id, -1)
      and coalesce(p.slot, '-infinity') = coalesce(c.schedule_slot, '-infinity')
  ), jobs as (
    insert into cesar.job_queue (job_type, payload, max_attempts, execution_id, serial_key,
                                 backoff_base_seconds, backoff_cap_seconds)
    select j.job_type, j.payload,
           coalesce((m.retry_policy ->> 'max_attempts')::int, t.max_attempts, 5),
           m.id, m.serial_key,
           (m.retry_policy ->> 'backoff_base_seconds')::numeric,
           (m.retry_policy ->> 'backoff_cap_seconds')::numeric
    from matched m
    cross join lateral cesar.action_jobs(m.plain_actions) with ordinality as j (job_type, payload, n)
    left join cesar.job_types t on t.job_type = j.job_type
    order by m.ordinality, j.n
    returning execution_id
  ), doorbell as (
    select cesar.ring_doorbell('job-drain') where (select count(*) from jobs) > 0
  )
  select coalesce(jsonb_agg(jsonb_build_object(
           'id', m.id, 'event_id', m.event_id, 'actions', m.actions,
           'retry_policy', m.retry_policy, 'serial_key', m.serial_key,
           'plain', (select count(*) from jobs j where j.execution_id = m.id)) order by m.ordinality), '[]')
  into made
  from matched m, (select count(*) from doorbell) d;

  for execution in select e.value from jsonb_array_elements(made) e loop
    jobs_made := (execution ->> 'plain')::int;
    for action in
      select a.value from jsonb_array_elements(execution -> 'actions') with ordinality a
      where a.value ? 'key' or a.value ? 'mode' order by a.ordinality
    loop
      jobs_made := jobs_made + (
        select k.inserted::int
        from cesar.enqueue_keyed(
          action ->> 'job_type', coalesce(action -> 'payload', '{}'), null, 0,
          (execution -> 'retry_policy' ->> 'max_attempts')::int, action ->> 'key',
          coalesce(action ->> 'mode', 'keep'),
          (action ->> 'delay_seconds')::float8 * interval '1 second',
          (action ->> 'period_seconds')::float8 * interval '1 second',
          (execution ->> 'id')::bigint, execution ->> 'serial_key',
          (execution -> 'retry_policy' ->> 'backoff_base_seconds')::numeric,
          (execution -> 'retry_policy' ->> 'backoff_cap_seconds')::numeric) k);
    end loop;
    update cesar.workflow_executions x
    set job_count = jobs_made,
        status = case when jobs_made = 0 then 'completed' else x.status end,
        started_at = case when jobs_made = 0 then now() else x.started_at end,
        finished_at = case when jobs_made = 0 then now() else x.finished_at end,
        updated_at = now()
    where x.id = (execution ->> 'id')::bigint;
    execution_id := (execution ->> 'id')::bigint;
    event_id := (execution ->> 'event_id')::bigint;
    job_count := jobs_made;
    return next;
  end loop;
end
$_$;

--
-- Name: cron_field(text, integer, integer, text[]); Type: FUNCTION; Schema: cesar; Owner: -
--

CREATE FUNCTION cesar.cron_field(field text, low integer, high integer, names text[] DEFAULT NULL::text[]) RETURNS integer[]
    LANGUAGE plpgsql IMMUTABLE
    SET search_path TO ''
    AS $_$
declare
  spec text := lower(field);
  part text;
  m text[];
  lo integer;
  hi integer;
  step integer;
  allowed integer[] := '{}';
begin
  for i in 1 .. coalesce(array_length(names, 1), 0) loop
    spec := replace(spec, names[i], (low + i - 1)::text);
  end loop;
  foreach part in array string_to_array(spec, ',') loop
    m := regexp_match(part, '^(?:(\*)|(\d{1,2})(?:-(\d{1,2}))?)(?:/(\d{1,2}))?$');
    if m is null then
      raise exception 'invalid schedule: cannot read "%"', field using errcode = '22023';
    end if;
    lo := coalesce(m[2]::integer, low);
    hi := coalesce(m[3]::integer, case when m[1] is null and m[4] is null then lo else high end);
    step := coalesce(m[4]::integer, 1);
    if lo < low or hi > high or lo > hi or step < 1 then
      raise exception 'invalid schedule: "%" is outside %-%', field, low, high using errcode = '22023';
    end if;
    allowed := allowed || array(select generate_series(lo, hi, step));
  end loop;
  return array(select distinct v from unnest(allowed) v order by v);
end
$_$;

--
-- Name: cron_fields(text); Type: FUNCTION; Schema: cesar; Owner: -
--

CREATE FUNCTION cesar.cron_fields(cron text, OUT minutes integer[], OUT hours integer[], OUT days integer[], OUT months integer[], OUT weekdays integer[], OUT any_day boolean, OUT any_weekday boolean, OUT wildcard boolean) RETURNS record
    LANGUAGE plpgsql IMMUTABLE
    SET search_path TO ''
    AS $$
declare
  f text[] := regexp_split_to_array(btrim(cron), '\s+');
begin
  if cardinality(f) <> 5 then
    raise exception 'invalid schedule: "%" is not five fields', cron using errcode = '22023';
  end if;
  minutes := cesar.cron_field(f[1], 0, 59);
  hours := cesar.cron_field(f[2], 0, 23);
  days := cesar.cron_field(f[3], 1, 31);
  months := cesar.cron_field(f[4], 1, 12,
    array['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec']);
  -- 0-7, both 0 and 7 Sunday.
  weekdays := array(select distinct d % 7 from unnest(cesar.cron_field(f[5], 0, 7,
    array['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'])) d order by 1);
  any_day := f[3] like '*%';
  any_weekday := f[5] like '*%';
  wildcard := f[1] like '*%' or f[2] like '*%';
end
$$;

--
-- Name: cron_next_slot(cesar.cron_schedule, text, timestamp with time zone, timestamp with time zone); Type: FUNCTION; Schema: cesar; Owner: -
--

CREATE FUNCTION cesar.cron_next_slot(f cesar.cron_schedule, timezone text, after timestamp with time zone, upto timestamp with time zone) RETURNS timestamp with time zone
    LANGUAGE plpgsql STABLE
    SET search_path TO ''
    AS $$
declare
  local_from timestamp := (after at time zone timezone) - interval '3 hours';
  local_to timestamp := (upto at time zone timezone) + interval '3 hours';
  d date := local_from::date;
  found_on date;
  slot timestamptz;
  earliest timestamptz;
begin
  while d <= local_to::date and (found_on is null or d = found_on + 1) loop
    slot := (cesar.schedule_day_slots(f, timezone, d, local_from, local_to, after, upto, 1,
                                      false))[1];
    earliest := least(earliest, slot);
    if found_on is null and slot is not null then
      exit when (slot at time zone timezone) < (d + 1)::timestamp - interval '3 hours';
      found_on := d;
    end if;
    d := d + 1;
  end loop;
  return earliest;
end
$$;

--
-- Name: cron_next_due(cesar.cron_schedule, text, timestamp with time zone); Type: FUNCTION; Schema: cesar; Owner: -
--

CREATE FUNCTION cesar.cron_next_due(f cesar.cron_schedule, timezone text, after timestamp with time zone) RETURNS timestamp with time zone
    LANGUAGE sql STABLE
    SET search_path TO ''
    RETURN COALESCE(cesar.cron_next_slot(f, timezone, after, (after + '1 day'::interval)), (after + '1 day'::interval));

--
-- Name: cron_slots(cesar.cron_schedule, text, timestamp with time zone, timestamp with time zone, integer); Type: FUNCTION; Schema: cesar; Owner: -
--

CREATE FUNCTION cesar.cron_slots(f cesar.cron_schedule, timezone text, after timestamp with time zone, upto timestamp with time zone, max_slots integer DEFAULT NULL::integer) RETURNS SETOF timestamp with time zone
    LANGUAGE plpgsql STABLE
    SET search_path TO ''
    AS $$
declare
  local_from timestamp := (after at time zone timezone) - interval '3 hours';
  local_to timestamp := (upto at time zone timezone) + interval '3 hours';
  d date := local_to::date;
  collected timestamptz[] := '{}';
begin
  while d >= local_from::date and (max_slots is null or cardinality(collected) < max_slots) loop
    collected := collected || cesar.schedule_day_slots(f, timezone, d, local_from, local_to,
                                                      after, upto, max_slots, true);
    d := d - 1;
  end loop;
  return query
    select x.slot from (
      select distinct u.slot from unnest(collected) u (slot) order by u.slot desc
      limit max_slots) x
    order by x.slot;
end
$$;

--
-- Name: doorbell_await_writer(text, bigint, integer); Type: FUNCTION; Schema: cesar; Owner: -
--

CREATE FUNCTION cesar.doorbell_await_writer(target text, writer bigint, timeout_ms integer) RETURNS boolean
    LANGUAGE plpgsql
    SET search_path TO ''
    SET lock_timeout TO '3ms'
    AS $$
declare
  pid integer := (writer & 8388607)::integer;
begin
  perform set_config('lock_timeout', greatest(timeout_ms, 1) || 'ms', true);
  perform pg_advisory_lock_shared(cesar.doorbell_wake_class(target), pid);
  perform pg_advisory_unlock_shared(cesar.doorbell_wake_class(target), pid);
  return true;
exception
  when lock_not_available then
    return false;
  when query_canceled then
    -- Not held when the cancel came during the wait: the unlock then only warns.
    perform pg_advisory_unlock_shared(cesar.doorbell_wake_class(target), pid);
    raise;
end
$$;

--
-- Name: doorbell_call(text, integer); Type: FUNCTION; Schema: cesar; Owner: -
--

CREATE FUNCTION cesar.doorbell_call(target text, linger_ms integer DEFAULT 2000) RETURNS boolean
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    AS $$
declare
  base_url text;
  secret text;
begin
  if to_regprocedure('net.http_post(text,jsonb,jsonb,jsonb,integer)') is null then
    return false;
  end if;
  base_url := cesar.setting('cesar_functions_url');
  secret := cesar.setting('cesar_function_secret');
  if base_url is null or secret is null then
    return false;
  end if;
  perform net.http_post(
    rtrim(base_url, '/') || '/' || target,
    jsonb_build_object('reason', 'doorbell', 'linger_ms', linger_ms),
    '{}'::jsonb,
    jsonb_build_object('Content-Type', 'application/json', 'Authorization', 'Bearer ' || secret),
    -- A drain answers once its queue is empty or its budget is spent: give it that long.
    60000
  );
  return true;
end
$$;

--
-- Name: doorbell_hand_over(text, integer); Type: FUNCTION; Schema: cesar; Owner: -
--

CREATE FUNCTION cesar.doorbell_hand_over(target text, grace_ms integer DEFAULT 5000) RETURNS boolean
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    AS $$
begin
  if not cesar.doorbell_call(target) then
    return false;
  end if;
  perform cesar.doorbell_hold(target, grace_ms);
  return true;
end
$$;

--
-- Name: doorbell_held(text); Type: FUNCTION; Schema: cesar; Owner: -
--

CREATE FUNCTION cesar.doorbell_held(target text) RETURNS boolean
    LANGUAGE sql SECURITY DEFINER
    SET search_path TO ''
    AS $$
  select coalesce(pg_sequence_last_value(cesar.doorbell_sequence(target)) > cesar.epoch_ms(),
                  false)
      or exists (select from cesar.doorbell_calls c
                 where c.target = doorbell_held.target
                   and c.called_at > clock_timestamp() - interval '2 seconds')
$$;

--
-- Name: doorbell_hold(text, integer); Type: FUNCTION; Schema: cesar; Owner: -
--

CREATE FUNCTION cesar.doorbell_hold(target text, hold_ms integer DEFAULT 3000) RETURNS bigint
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    AS $$
declare
  seq regclass := cesar.doorbell_sequence(target);
begin
  if seq is null then
    raise exception 'no doorbell %', target using errcode = '22023';
  end if;
  return setval(seq, cesar.epoch_ms() + greatest(hold_ms, 0));
end
$$;

--
-- Name: doorbell_last_writer(text); Type: FUNCTION; Schema: cesar; Owner: -
--

CREATE FUNCTION cesar.doorbell_last_writer(target text) RETURNS bigint
    LANGUAGE sql SECURITY DEFINER
    SET search_path TO ''
    AS $$
  select pg_sequence_last_value(cesar.doorbell_wake_sequence(target))
$$;

--
-- Name: doorbell_lock_key(text); Type: FUNCTION; Schema: cesar; Owner: -
--

CREATE FUNCTION cesar.doorbell_lock_key(target text) RETURNS bigint
    LANGUAGE sql IMMUTABLE
    SET search_path TO ''
    AS $$
  select hashtextextended('cesar.doorbell:' || target, 0)
$$;

--
-- Name: doorbell_release(text, integer, bigint); Type: FUNCTION; Schema: cesar; Owner: -
--

CREATE FUNCTION cesar.doorbell_release(target text, wait_ms integer DEFAULT 1000, held bigint DEFAULT NULL::bigint) RETURNS boolean
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    AS $$
declare
  seq regclass := cesar.doorbell_sequence(target);
  give_up timestamptz := clock_timestamp() + make_interval(secs => wait_ms / 1000.0);
begin
  if seq is null then
    raise exception 'no doorbell %', target using errcode = '22023';
  end if;
  if held is null or pg_sequence_last_value(seq) = held then
    perform setval(seq, 0);
  end if;
  delete from cesar.doorbell_calls c where c.target = doorbell_release.target;
  loop
    if pg_try_advisory_xact_lock(cesar.doorbell_lock_key(target)) then
      return true;
    end if;
    exit when clock_timestamp() >= give_up;
    perform pg_sleep(0.002);
  end loop;
  return false;
end
$$;

--
-- Name: doorbell_sequence(text); Type: FUNCTION; Schema: cesar; Owner: -
--

CREATE FUNCTION cesar.doorbell_sequence(target text) RETURNS regclass
    LANGUAGE sql IMMUTABLE
    SET search_path TO ''
    AS $$
  select case target
    when 'webhook/drain' then 'cesar.doorbell_hold_webhook_drain'::regclass
    when 'job-drain' then 'cesar.doorbell_hold_job_drain'::regclass
  end
$$;

--
-- Name: doorbell_wake_class(text); Type: FUNCTION; Schema: cesar; Owner: -
--

CREATE FUNCTION cesar.doorbell_wake_class(target text) RETURNS integer
    LANGUAGE sql IMMUTABLE
    SET search_path TO ''
    AS $$
  select hashtext('cesar.doorbell_wake:' || target)
$$;

--
-- Name: doorbell_wake_sequence(text); Type: FUNCTION; Schema: cesar; Owner: -
--

CREATE FUNCTION cesar.doorbell_wake_sequence(target text) RETURNS regclass
    LANGUAGE sql IMMUTABLE
    SET search_path TO ''
    AS $$
  select case target
    when 'webhook/drain' then 'cesar.doorbell_wake_webhook_drain'::regclass
    when 'job-drain' then 'cesar.doorbell_wake_job_drain'::regclass
  end
$$;

--
-- Name: drop_retired_capture_stores(); Type: FUNCTION; Schema: cesar; Owner: -
--

CREATE FUNCTION cesar.drop_retired_capture_stores() RETURNS integer
    LANGUAGE plpgsql
    SET search_path TO ''
    AS $$
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

--
-- Name: enqueue(text, jsonb, timestamp with time zone, integer, integer, text, text, text, interval, interval); Type: FUNCTION; Schema: cesar; Owner: -
--

CREATE FUNCTION cesar.enqueue(job_type text, payload jsonb DEFAULT '{}'::jsonb, run_at timestamp with time zone DEFAULT NULL::timestamp with time zone, priority integer DEFAULT 0, max_attempts integer DEFAULT NULL::integer, dedup_key text DEFAULT NULL::text, key text DEFAULT NULL::text, mode text DEFAULT NULL::text, delay interval DEFAULT NULL::interval, period interval DEFAULT NULL::interval) RETURNS bigint
    LANGUAGE plpgsql
    SET search_path TO ''
    AS $$
#variable_conflict use_column
declare
  new_id bigint;
  due timestamptz := coalesce(enqueue.run_at, now());
  tries integer := 0;
begin
  if enqueue.key is not null or enqueue.mode is not null then
    if enqueue.dedup_key is not null then
      raise exception 'enqueue: give key or dedup_key, not both' using errcode = '22023';
    end if;
    if enqueue.key is null then
      raise exception 'enqueue: mode % needs a key', enqueue.mode using errcode = '22023';
    end if;
    select k.id into new_id
    from cesar.enqueue_keyed(enqueue.job_type, enqueue.payload, enqueue.run_at, enqueue.priority,
                             enqueue.max_attempts, enqueue.key, coalesce(enqueue.mode, 'keep'),
                             enqueue.delay, enqueue.period) k;
    return new_id;
  end if;
  if enqueue.delay is not null or enqueue.period is not null then
    raise exception 'enqueue: delay and period need a key and a mode' using errcode = '22023';
  end if;
  loop
    insert into cesar.job_queue (job_type, payload, run_at, priority, max_attempts, dedup_key)
    values (
      enqueue.job_type, coalesce(enqueue.payload, '{}'), due, coalesce(enqueue.priority, 0),
      coalesce(enqueue.max_attempts,
               (select t.max_attempts from cesar.job_types t where t.job_type = enqueue.job_type),
               5),
      enqueue.dedup_key)
    on conflict (dedup_key) where dedup_key is not null and status in ('pending', 'running')
    do nothing
    returning id into new_id;
    exit when new_id is not null;
    -- A dedup_key's holder: retried when it finished before we could read it.
    select q.id into new_id from cesar.job_queue q
    where q.dedup_key = enqueue.dedup_key and q.status in ('pending', 'running');
    if new_id is not null then
      return new_id;
    end if;
    tries := tries + 1;
    if tries >= 3 then
      raise exception 'enqueue: the holder of dedup_key % kept changing', enqueue.dedup_key
        using errcode = '40001';
    end if;
  end loop;
  if due <= now() then
    perform cesar.ring_doorbell('job-drain');
  end if;
  return new_id;
end
$$;

--
-- Name: enqueue_keyed(text, jsonb, timestamp with time zone, integer, integer, text, text, interval, interval, bigint, text, numeric, numeric); Type: FUNCTION; Schema: cesar; Owner: -
--

CREATE FUNCTION cesar.enqueue_keyed(job_type text, payload jsonb, run_at timestamp with time zone, priority integer, max_attempts integer, key text, mode text, delay interval, period interval, execution_id bigint DEFAULT NULL::bigint, serial_key text DEFAULT NULL::text, backoff_base_seconds numeric DEFAULT NULL::numeric, backoff_cap_seconds numeric DEFAULT NULL::numeric, OUT id bigint, OUT inserted boolean) RETURNS record
    LANGUAGE plpgsql
    SET search_path TO ''
    AS $$
#variable_conflict use_variable
declare
  due timestamptz;
  attempts_max integer;
  tries integer := 0;
begin
  if key is null or key = '' then
    raise exception 'enqueue: key must be a non-empty text' using errcode = '22023';
  end if;
  if mode is null or mode not in ('keep', 'replace', 'debounce', 'unique_for') then
    raise exception 'enqueue: mode must be keep, replace, debounce or unique_for, not %',
      coalesce(mode, 'null') using errcode = '22023';
  end if;
  if mode = 'debounce' then
    if delay is null or delay <= interval '0' then
      raise exception 'enqueue: mode debounce needs a positive delay' using errcode = '22023';
    end if;
    if run_at is not null then
      raise exception 'enqueue: mode debounce sets run_at itself (now() + delay); give no run_at'
        using errcode = '22023';
    end if;
  elsif delay is not null then
    raise exception 'enqueue: delay is for mode debounce only' using errcode = '22023';
  end if;
  if mode = 'unique_for' then
    if period is null or period <= interval '0' then
      raise exception 'enqueue: mode unique_for needs a positive period' using errcode = '22023';
    end if;
  elsif period is not null then
    raise exception 'enqueue: period is for mode unique_for only' using errcode = '22023';
  end if;

  due := case when mode = 'debounce' then now() + delay else coalesce(run_at, now()) end;
  attempts_max := coalesce(max_attempts,
    (select t.max_attempts from cesar.job_types t where t.job_type = enqueue_keyed.job_type), 5);

  if mode = 'keep' then
    -- Retried when the holder we conflicted with finished before we could read it (an id of
    -- null would lose the enqueue).
    loop
      insert into cesar.job_queue as q (job_type, payload, run_at, priority, max_attempts,
                                        dedup_key, key_mode, execution_id, serial_key,
                                        backoff_base_seconds, backoff_cap_seconds)
      values (job_type, coalesce(payload, '{}'), due, coalesce(priority, 0), attempts_max, key,
              'keep', execution_id, serial_key, backoff_base_seconds, backoff_cap_seconds)
      on conflict (dedup_key) where dedup_key is not null and status in ('pending', 'running')
      do nothing
      returning q.id into id;
      inserted := id is not null;
      exit when inserted;
      select q.id into id from cesar.job_queue q
      where q.dedup_key = key and q.status in ('pending', 'running');
      if id is not null then
        return;
      end if;
      tries := tries + 1;
      if tries >= 3 then
        raise exception 'enqueue: the holder of key % kept changing', key using errcode = '40001';
      end if;
    end loop;
  elsif mode in ('replace', 'debounce') then
    -- xmax is 0 on a row this statement inserted, and our transaction id on one it updated.
    insert into cesar.job_queue as q (job_type, payload, run_at, priority, max_attempts, job_key,
                                      key_mode, execution_id, serial_key, backoff_base_seconds,
                                      backoff_cap_seconds)
    values (job_type, coalesce(payload, '{}'), due, coalesce(priority, 0), attempts_max, key,
            mode, execution_id, serial_key, backoff_base_seconds, backoff_cap_seconds)
    on conflict (job_key) where job_key is not null and status = 'pending'
                                and key_mode in ('replace', 'debounce')
    do update set payload = excluded.payload, run_at = excluded.run_at,
                  key_mode = excluded.key_mode, updated_at = now()
    returning q.id, q.xmax = 0 into id, inserted;
  else
    -- unique_for. Retried when the window we conflicted with was given back before we could
    -- read it (its period ended in between): the next pass takes the window.
    loop
      update cesar.job_queue q set key_until = null
      where q.job_key = key and q.key_until <= now();
      insert into cesar.job_queue as q (job_type, payload, run_at, priority, max_attempts, job_key,
                                        key_mode, key_until, execution_id, serial_key,
                                        backoff_base_seconds, backoff_cap_seconds)
      values (job_type, coalesce(payload, '{}'), due, coalesce(priority, 0), attempts_max, key,
              'unique_for', now() + period, execution_id, serial_key, backoff_base_seconds,
              backoff_cap_seconds)
      on conflict (job_key) where key_until is not null
      do nothing
      returning q.id into id;
      inserted := id is not null;
      if not inserted then
        select q.id into id from cesar.job_queue q
        where q.job_key = key and q.key_until is not null;
        if id is not null then
          return;
        end if;
      end if;
      exit when inserted;
      tries := tries + 1;
      if tries >= 3 then
        raise exception 'enqueue: the window of key % kept changing', key using errcode = '40001';
      end if;
    end loop;
  end if;
  if due <= now() then
    perform cesar.ring_doorbell('job-drain');
  end if;
end
$$;

--
-- Name: enqueue_many(jsonb); Type: FUNCTION; Schema: cesar; Owner: -
--

CREATE FUNCTION cesar.enqueue_many(jobs jsonb) RETURNS integer
    LANGUAGE plpgsql
    SET search_path TO ''
    AS $$
#variable_conflict use_column
declare
  inserted integer;
  any_due boolean;
  any_keyed boolean;
  keyed record;
begin
  if jsonb_typeof(jobs) is distinct from 'array' then
    raise exception 'enqueue_many expects a JSON array of jobs' using errcode = '22023';
  end if;
  with input as (
    select j.job_type, coalesce(j.payload, '{}') as payload, coalesce(j.run_at, now()) as run_at,
           coalesce(j.priority, 0) as priority, j.max_attempts, j.dedup_key, j.ordinality,
           -- A delay or period without a key is refused below, not ignored.
           j.key is not null or j.mode is not null or j.delay_seconds is not null
             or j.period_seconds is not null as keyed
    from rows from (jsonb_to_recordset(jobs)
      as (job_type text, payload jsonb, run_at timestamptz, priority integer,
          max_attempts integer, dedup_key text, key text, mode text, delay_seconds float8,
          period_seconds float8)) with ordinality
      as j (job_type, payload, run_at, priority, max_attempts, dedup_key, key, mode,
            delay_seconds, period_seconds, ordinality)
  ), ins as (
    insert into cesar.job_queue (job_type, payload, run_at, priority, max_attempts, dedup_key)
    select i.job_type, i.payload, i.run_at, i.priority,
           coalesce(i.max_attempts, t.max_attempts, 5), i.dedup_key
    from input i left join cesar.job_types t on t.job_type = i.job_type
    where not i.keyed
    order by i.ordinality
    on conflict (dedup_key) where dedup_key is not null and status in ('pending', 'running')
    do nothing
    returning run_at
  )
  select count(*), coalesce(bool_or(run_at <= now()), false),
         (select bool_or(i.keyed) from input i)
  into inserted, any_due, any_keyed from ins;
  if any_due then
    perform cesar.ring_doorbell('job-drain');
  end if;
  if any_keyed then
    for keyed in
      select j.* from rows from (jsonb_to_recordset(jobs)
        as (job_type text, payload jsonb, run_at timestamptz, priority integer,
            max_attempts integer, dedup_key text, key text, mode text, delay_seconds float8,
            period_seconds float8)) with ordinality
        as j (job_type, payload, run_at, priority, max_attempts, dedup_key, key, mode,
              delay_seconds, period_seconds, ordinality)
      where j.key is not null or j.mode is not null or j.delay_seconds is not null
        or j.period_seconds is not null
      order by j.ordinality
    loop
      if keyed.dedup_key is not null then
        raise exception 'enqueue_many: give key or dedup_key, not both' using errcode = '22023';
      end if;
      if keyed.key is null then
        raise exception 'enqueue_many: mode, delay_seconds and period_seconds need a key'
          using errcode = '22023';
      end if;
      inserted := inserted + (
        select k.inserted::int
        from cesar.enqueue_keyed(keyed.job_type, keyed.payload, keyed.run_at, keyed.priority,
                                 keyed.max_attempts, keyed.key, coalesce(keyed.mode, 'keep'),
                                 keyed.delay_seconds * interval '1 second',
                                 keyed.period_seconds * interval '1 second') k);
    end loop;
  end if;
  return inserted;
end
$$;

--
-- Name: epoch_ms(); Type: FUNCTION; Schema: cesar; Owner: -
--

CREATE FUNCTION cesar.epoch_ms() RETURNS bigint
    LANGUAGE sql
    SET search_path TO ''
    AS $$
  select (extract(epoch from clock_timestamp()) * 1000)::bigint
$$;

--
-- Name: event_backlog(); Type: FUNCTION; Schema: cesar; Owner: -
--

CREATE FUNCTION cesar.event_backlog(OUT pending bigint, OUT oldest timestamp with time zone) RETURNS record
    LANGUAGE sql STABLE
    SET search_path TO ''
    AS $$
  select e.pending + c.pending, least(e.oldest, c.oldest)
  from (select count(*) as pending, min(occurred_at) as oldest
        from cesar.event_log where status in ('pending', 'processing')) e,
       (select coalesce(sum(row_count), 0) as pending, min(occurred_at) as oldest
        from cesar.captures) c
$$;

--
-- Name: events_pending(); Type: FUNCTION; Schema: cesar; Owner: -
--

CREATE FUNCTION cesar.events_pending() RETURNS boolean
    LANGUAGE sql STABLE
    SET search_path TO ''
    SET enable_seqscan TO 'off'
    SET enable_bitmapscan TO 'off'
    AS $$
  select exists (select from cesar.event_log where status in ('pending', 'processing'))
      or exists (select from cesar.captures)
$$;

--
-- Name: expand_captures(integer); Type: FUNCTION; Schema: cesar; Owner: -
--

CREATE FUNCTION cesar.expand_captures(max_rows integer DEFAULT NULL::integer) RETURNS integer
    LANGUAGE plpgsql
    SET search_path TO ''
    AS $_$
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
$_$;

--
-- Name: capture_stores; Type: TABLE; Schema: cesar; Owner: -
--

CREATE TABLE cesar.capture_stores (
    id integer NOT NULL,
    relid oid NOT NULL,
    schema_name text NOT NULL,
    table_name text NOT NULL,
    key_column text NOT NULL,
    columns text[] NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    retired_at timestamp with time zone,
    watched boolean DEFAULT false NOT NULL,
    mirrored boolean DEFAULT false NOT NULL
);

--
-- Name: TABLE capture_stores; Type: COMMENT; Schema: cesar; Owner: -
--

COMMENT ON TABLE cesar.capture_stores IS 'One store per watched table and shape: cesar.captured_<id> (rows), cesar.captured_<id>_row (their type), cesar.capture_<id>() (the trigger function).';

--
-- Name: expansion_digest(cesar.capture_stores[]); Type: FUNCTION; Schema: cesar; Owner: -
--

CREATE FUNCTION cesar.expansion_digest(stores cesar.capture_stores[]) RETURNS text
    LANGUAGE sql IMMUTABLE
    SET search_path TO ''
    AS $$
  select md5(string_agg(concat_ws(',', s.id, s.schema_name, s.table_name, s.key_column, s.watched,
                                   s.mirrored), ';' order by s.id))
  from unnest(expansion_digest.stores) s
$$;

--
-- Name: expansion_part_sql(cesar.capture_stores); Type: FUNCTION; Schema: cesar; Owner: -
--

CREATE FUNCTION cesar.expansion_part_sql(store cesar.capture_stores) RETURNS text
    LANGUAGE sql STABLE
    SET search_path TO ''
    AS $_$
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
$_$;

--
-- Name: fail_jobs(text, jsonb); Type: FUNCTION; Schema: cesar; Owner: -
--

CREATE FUNCTION cesar.fail_jobs(worker text, failures jsonb) RETURNS TABLE(id bigint, status text)
    LANGUAGE sql
    SET search_path TO ''
    AS $$
  with done as (
    update cesar.job_queue q
    set status = case
          when q.cancel_requested_at is not null then 'cancelled'
          when f.status = 'pending' and q.job_key is not null and s.id is not null then 'cancelled'
          else f.status end,
        run_at = coalesce(f.run_at, q.run_at),
        finished_at = case
          when f.status <> 'pending' or q.cancel_requested_at is not null or s.id is not null
          then now() end,
        last_error = case when s.id is null then f.error
          else f.error || ' (not retried: job ' || s.id || ' waits with its key)' end,
        errors = q.errors || cesar.job_error_entry(q.attempts, f.kind, f.error, q.locked_by, now()),
        locked_by = null, locked_until = null, updated_at = now()
    from jsonb_to_recordset(fail_jobs.failures)
      as f (id bigint, attempt integer, kind text, error text, status text, run_at timestamptz)
      -- A replace or debounce job to be retried while a newer job with its key waits: the
      -- waiting one has the latest payload (and one job per key may wait), so this one ends.
      left join lateral (
        select w.id from cesar.job_queue k
        join cesar.job_queue w on w.job_key = k.job_key and w.status = 'pending'
          and w.key_mode in ('replace', 'debounce') and w.id <> k.id
        where k.id = f.id and f.status = 'pending' and k.job_key is not null
          and k.key_mode in ('replace', 'debounce')
        limit 1) s on true
    where q.id = f.id and q.attempts = f.attempt and q.status = 'running'
      and q.locked_by = fail_jobs.worker
    returning q.id, q.status, q.job_type
  ), counted as (
    insert into cesar.job_totals as t (job_type, slot, failed)
    select d.job_type, cesar.job_totals_slot(), count(*)
    from done d where d.status = 'failed' group by d.job_type
    on conflict (job_type, slot) do update set failed = t.failed + excluded.failed
  )
  select d.id, d.status from done d
$$;

--
-- Name: finish_and_claim(text, jsonb, jsonb, integer, text[], integer, integer); Type: FUNCTION; Schema: cesar; Owner: -
--

CREATE FUNCTION cesar.finish_and_claim(worker text, completions jsonb, failures jsonb, batch_size integer, job_types text[] DEFAULT NULL::text[], default_lease_seconds integer DEFAULT 60, start_count integer DEFAULT NULL::integer) RETURNS jsonb
    LANGUAGE plpgsql
    SET search_path TO ''
    AS $$
declare
  completed integer := 0;
  failed integer := 0;
  retried integer := 0;
  cancelled integer := 0;
  jobs jsonb;
begin
  if jsonb_array_length(coalesce(finish_and_claim.completions, '[]')) > 0 then
    select count(*) into completed
    from cesar.complete_jobs(finish_and_claim.worker, finish_and_claim.completions);
  end if;
  if jsonb_array_length(coalesce(finish_and_claim.failures, '[]')) > 0 then
    select count(*) filter (where f.status = 'failed'), count(*) filter (where f.status = 'pending'),
           count(*) filter (where f.status = 'cancelled')
    into failed, retried, cancelled
    from cesar.fail_jobs(finish_and_claim.worker, finish_and_claim.failures) f;
  end if;
  -- Ids as text, as the drain keeps them (a bigint need not fit a JSON number).
  select coalesce(jsonb_agg(to_jsonb(c) || jsonb_build_object('id', c.id::text)), '[]') into jobs
  from cesar.claim_jobs(finish_and_claim.worker, finish_and_claim.batch_size,
                        finish_and_claim.job_types, finish_and_claim.default_lease_seconds,
                        finish_and_claim.start_count) c;
  if completed + failed + retried + cancelled > 0 then
    perform set_config('synchronous_commit', 'on', true);
  end if;
  return jsonb_build_object('completed', completed, 'failed', failed, 'retried', retried,
                            'cancelled', cancelled, 'jobs', jobs);
end
$$;

--
-- Name: follow_execution_status(); Type: FUNCTION; Schema: cesar; Owner: -
--

CREATE FUNCTION cesar.follow_execution_status() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path TO ''
    AS $$
declare
  summary record;
begin
  select count(*) as total,
         count(*) filter (where q.status = 'completed') as completed,
         count(*) filter (where q.status = 'failed') as failed,
         count(*) filter (where q.status = 'cancelled') as cancelled,
         count(*) filter (where q.status = 'running') as running,
         max(q.last_error) filter (where q.status = 'failed') as error
  into summary
  from cesar.job_queue q where q.execution_id = new.execution_id;
  update cesar.workflow_executions e
  set status = case
        when summary.failed > 0 then 'failed'
        when summary.cancelled > 0 then 'cancelled'
        when summary.completed = summary.total then 'completed'
        when summary.running > 0 or summary.completed > 0 then 'running'
        else 'pending' end,
      started_at = coalesce(e.started_at, case when new.status <> 'pending' then now() end),
      finished_at = case when summary.failed > 0 or summary.cancelled > 0 or summary.completed = summary.total
                         then coalesce(e.finished_at, now()) end,
      error = case when summary.failed > 0 then summary.error end,
      updated_at = now()
  where e.id = new.execution_id;
  return null;
end
$$;

--
-- Name: forget_expansion_statements(); Type: FUNCTION; Schema: cesar; Owner: -
--

CREATE FUNCTION cesar.forget_expansion_statements() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    AS $$
begin
  delete from cesar.expansion_statements;
  return null;
end
$$;

--
-- Name: http_duration_buckets(); Type: FUNCTION; Schema: cesar; Owner: -
--

CREATE FUNCTION cesar.http_duration_buckets() RETURNS double precision[]
    LANGUAGE sql IMMUTABLE
    RETURN ARRAY[(0.005)::double precision, (0.01)::double precision, (0.025)::double precision, (0.05)::double precision, (0.1)::double precision, (0.25)::double precision, (0.5)::double precision, (1)::double precision, (2.5)::double precision, (5)::double precision, (10)::double precision, (30)::double precision];

--
-- Name: job_attempts_left(integer, integer); Type: FUNCTION; Schema: cesar; Owner: -
--

CREATE FUNCTION cesar.job_attempts_left(attempts integer, max_attempts integer) RETURNS boolean
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN (attempts < max_attempts);

--
-- Name: job_error_entry(integer, text, text, text, timestamp with time zone); Type: FUNCTION; Schema: cesar; Owner: -
--

CREATE FUNCTION cesar.job_error_entry(attempt integer, kind text, message text, worker text, at timestamp with time zone) RETURNS jsonb
    LANGUAGE sql STABLE PARALLEL SAFE
    RETURN jsonb_build_object('attempt', attempt, 'at', at, 'kind', kind, 'error', message, 'worker', worker);

--
-- Name: job_totals_slot(); Type: FUNCTION; Schema: cesar; Owner: -
--

CREATE FUNCTION cesar.job_totals_slot() RETURNS smallint
    LANGUAGE sql
    SET search_path TO ''
    AS $$
  select (pg_backend_pid() % 64)::smallint
$$;

--
-- Name: jobs_due(text[], timestamp with time zone); Type: FUNCTION; Schema: cesar; Owner: -
--

CREATE FUNCTION cesar.jobs_due(job_types text[] DEFAULT NULL::text[], at timestamp with time zone DEFAULT now()) RETURNS boolean
    LANGUAGE sql STABLE
    SET search_path TO ''
    SET enable_seqscan TO 'off'
    SET enable_bitmapscan TO 'off'
    AS $$
  select exists (
           select from cesar.job_queue q
           where q.status = 'pending' and q.run_at <= jobs_due.at
             and (jobs_due.job_types is null or q.job_type = any (jobs_due.job_types)))
      or exists (
           select from cesar.job_queue q
           where q.status = 'running' and q.locked_until < jobs_due.at
             and (jobs_due.job_types is null or q.job_type = any (jobs_due.job_types)))
$$;

--
-- Name: keep_next_due_at(); Type: FUNCTION; Schema: cesar; Owner: -
--

CREATE FUNCTION cesar.keep_next_due_at() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path TO ''
    AS $$
declare
  template cesar.workflow_templates;
  f cesar.cron_schedule;
begin
  if tg_op = 'UPDATE' and new.next_due_at is not null and new.covered_until >= old.covered_until
     and new.covered_until < new.next_due_at then
    return new;
  end if;
  select * into template from cesar.workflow_templates t where t.id = new.template_id;
  if template.id is null or not template.enabled or template.trigger ->> 'type' <> 'schedule' then
    new.next_due_at := 'infinity';
    new.cron := null;
  else
    select * into f from cesar.cron_fields(template.trigger ->> 'cron');
    new.cron := f;
    new.next_due_at := cesar.cron_next_due(f, coalesce(template.trigger ->> 'timezone', 'UTC'),
                                           new.covered_until);
  end if;
  return new;
end
$$;

--
-- Name: least_loaded_agent(text, uuid, uuid); Type: FUNCTION; Schema: cesar; Owner: -
--

CREATE FUNCTION cesar.least_loaded_agent(capability text DEFAULT NULL::text, only_agent uuid DEFAULT NULL::uuid, except_agent uuid DEFAULT NULL::uuid) RETURNS uuid
    LANGUAGE sql STABLE
    SET search_path TO ''
    AS $$
  select a.id
  from public.agents a
  left join lateral (
    select count(*) as open_tasks, max(t.created_at) as newest_open_task
    from public.tasks t
    where t.agent_id = a.id and t.status in ('pending', 'in_progress')
  ) load on true
  where a.status = 'active'
    and (least_loaded_agent.capability is null or least_loaded_agent.capability = any (a.capabilities))
    and (least_loaded_agent.only_agent is null or a.id = least_loaded_agent.only_agent)
    and (least_loaded_agent.except_agent is null or a.id <> least_loaded_agent.except_agent)
  order by load.open_tasks, load.newest_open_task, a.name
  limit 1
$$;

--
-- Name: next_deferred_at(text[]); Type: FUNCTION; Schema: cesar; Owner: -
--

CREATE FUNCTION cesar.next_deferred_at(job_types text[] DEFAULT NULL::text[]) RETURNS timestamp with time zone
    LANGUAGE sql STABLE
    SET search_path TO ''
    SET enable_seqscan TO 'off'
    SET enable_bitmapscan TO 'off'
    AS $$
  select min(q.run_at)
  from cesar.job_types t
  join cesar.job_queue q on q.job_type = t.job_type and q.status = 'pending' and q.run_at > now()
  where (t.rate_limit is not null
         or (t.rate_key is not null and exists (
               select from cesar.job_rate_limits l where l.job_type = t.job_type)))
    and (next_deferred_at.job_types is null or t.job_type = any (next_deferred_at.job_types))
$$;

--
-- Name: recapture(regclass); Type: FUNCTION; Schema: cesar; Owner: -
--

CREATE FUNCTION cesar.recapture(target regclass) RETURNS text
    LANGUAGE plpgsql
    SET search_path TO ''
    AS $$
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

--
-- Name: recapture_mirrored_table(); Type: FUNCTION; Schema: cesar; Owner: -
--

CREATE FUNCTION cesar.recapture_mirrored_table() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path TO ''
    AS $$
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

--
-- Name: reconcile_workflow_schedule(); Type: FUNCTION; Schema: cesar; Owner: -
--

CREATE FUNCTION cesar.reconcile_workflow_schedule() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path TO ''
    AS $$
begin
  if tg_op = 'DELETE' then
    return null;
  end if;
  if new.trigger ->> 'type' <> 'schedule' then
    delete from cesar.workflow_schedules s where s.template_id = new.id;
  elsif tg_op = 'INSERT' or new.trigger is distinct from old.trigger
        or (new.enabled and not old.enabled) then
    if tg_op = 'INSERT' or coalesce(new.trigger ->> 'timezone', 'UTC')
                           is distinct from coalesce(old.trigger ->> 'timezone', 'UTC')
       or new.trigger ->> 'cron' is distinct from old.trigger ->> 'cron' then
      perform cesar.check_schedule_trigger(new.trigger);
    else
      perform cesar.check_schedule_trigger(new.trigger - 'timezone');
    end if;
    insert into cesar.workflow_schedules (template_id, covered_until) values (new.id, now())
    on conflict (template_id) do update
    set covered_until = excluded.covered_until, next_due_at = null;
  elsif old.enabled and not new.enabled then
    update cesar.workflow_schedules s set next_due_at = null where s.template_id = new.id;
  end if;
  return null;
end
$$;

--
-- Name: record_event_batch(bigint[], jsonb); Type: FUNCTION; Schema: cesar; Owner: -
--

CREATE FUNCTION cesar.record_event_batch(event_ids bigint[], plans jsonb) RETURNS TABLE(executions integer, jobs integer)
    LANGUAGE plpgsql
    SET search_path TO ''
    AS $$
declare
  made integer;
  made_jobs integer;
begin
  select count(*), coalesce(sum(c.job_count), 0) into made, made_jobs
  from cesar.create_executions(plans) c;
  update cesar.event_log e
  set status = case when e.id in (select (p ->> 'event_id')::bigint
                                  from jsonb_array_elements(plans) p)
                    then 'processed' else 'ignored' end,
      processed_at = now(), last_error = null
  where e.id = any (event_ids) and e.status = 'processing';
  return query select made, made_jobs;
end
$$;

--
-- Name: record_request(text, integer, double precision); Type: FUNCTION; Schema: cesar; Owner: -
--

CREATE FUNCTION cesar.record_request(function_name text, status integer, seconds double precision) RETURNS void
    LANGUAGE sql
    SET search_path TO ''
    AS $$
  insert into cesar.http_request_totals as t
    (function_name, status_class, requests, duration_seconds_sum, buckets)
  select record_request.function_name, (record_request.status / 100)::text || 'xx', 1,
         record_request.seconds,
         array(select (record_request.seconds <= b)::int::bigint
               from unnest(cesar.http_duration_buckets()) with ordinality as u (b, i) order by i)
  on conflict (function_name, status_class) do update
    set requests = t.requests + 1,
        duration_seconds_sum = t.duration_seconds_sum + excluded.duration_seconds_sum,
        buckets = array(select a + b from unnest(t.buckets, excluded.buckets) as u (a, b))
$$;

--
-- Name: record_requests(text, integer[], double precision[]); Type: FUNCTION; Schema: cesar; Owner: -
--

CREATE FUNCTION cesar.record_requests(function_name text, statuses integer[], durations double precision[]) RETURNS void
    LANGUAGE sql
    SET search_path TO ''
    AS $$
  with answer as (
    select (a.status / 100)::text || 'xx' as status_class, a.seconds
    from unnest(record_requests.statuses, record_requests.durations) as a (status, seconds)
    where a.status is not null and a.seconds is not null
  ), tally as (
    select a.status_class, count(*) as requests, sum(a.seconds) as seconds_sum,
           array(select count(*) filter (where b.seconds <= u.bound)
                 from unnest(cesar.http_duration_buckets()) with ordinality as u (bound, i)
                 cross join answer b
                 where b.status_class = a.status_class
                 group by u.i order by u.i) as buckets
    from answer a
    group by a.status_class
  )
  insert into cesar.http_request_totals as t
    (function_name, status_class, requests, duration_seconds_sum, buckets)
  select record_requests.function_name, tally.status_class, tally.requests, tally.seconds_sum,
         tally.buckets
  from tally
  -- One order for every instance's batch: two batches never wait on each other's rows.
  order by tally.status_class
  on conflict (function_name, status_class) do update
    set requests = t.requests + excluded.requests,
        duration_seconds_sum = t.duration_seconds_sum + excluded.duration_seconds_sum,
        buckets = array(select a + b from unnest(t.buckets, excluded.buckets) as u (a, b))
$$;

--
-- Name: redrive_jobs(text, timestamp with time zone); Type: FUNCTION; Schema: cesar; Owner: -
--

CREATE FUNCTION cesar.redrive_jobs(job_type text, since timestamp with time zone DEFAULT '-infinity'::timestamp with time zone) RETURNS SETOF bigint
    LANGUAGE sql
    SET search_path TO ''
    AS $$
  select cesar.retry_jobs(array(
    select q.id from cesar.job_queue q
    where q.job_type = redrive_jobs.job_type and q.status = 'failed' and q.finished_at >= redrive_jobs.since
    order by q.id))
$$;

--
-- Name: refresh_monitoring_views(); Type: FUNCTION; Schema: cesar; Owner: -
--

CREATE FUNCTION cesar.refresh_monitoring_views() RETURNS text[]
    LANGUAGE plpgsql
    SET search_path TO ''
    AS $$
begin
  -- One refresh of the set at a time, whoever calls (the job, an operator, a test).
  perform pg_advisory_xact_lock(hashtext('cesar.refresh_monitoring_views'));
  refresh materialized view concurrently cesar.mv_job_queue_backlog;
  refresh materialized view concurrently cesar.mv_sync_lag;
  refresh materialized view concurrently cesar.mv_ingestion_errors;
  return array['cesar.mv_job_queue_backlog', 'cesar.mv_sync_lag', 'cesar.mv_ingestion_errors'];
end
$$;

--
-- Name: refuse_truncate(); Type: FUNCTION; Schema: cesar; Owner: -
--

CREATE FUNCTION cesar.refuse_truncate() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path TO ''
    AS $$
begin
  raise exception 'TRUNCATE of %.% is refused: the table is captured (watched or mirrored), and a TRUNCATE makes no change anyone hears of; delete the rows, or unwatch and unmirror the table first',
    tg_table_schema, tg_table_name using errcode = '0A000';
end
$$;

--
-- Name: release_event_processor(text); Type: FUNCTION; Schema: cesar; Owner: -
--

CREATE FUNCTION cesar.release_event_processor(holder text) RETURNS void
    LANGUAGE sql
    SET search_path TO ''
    AS $$
  update cesar.event_processor p set holder = null, lease_until = '-infinity'
  where p.holder = release_event_processor.holder
$$;

--
-- Name: render_sql(text, jsonb); Type: FUNCTION; Schema: cesar; Owner: -
--

CREATE FUNCTION cesar.render_sql(template text, slots jsonb) RETURNS text
    LANGUAGE plpgsql IMMUTABLE
    SET search_path TO ''
    AS $$
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

--
-- Name: renew_leases(text, jsonb); Type: FUNCTION; Schema: cesar; Owner: -
--

CREATE FUNCTION cesar.renew_leases(worker text, leases jsonb) RETURNS TABLE(id bigint, held boolean, cancel_requested boolean)
    LANGUAGE sql
    SET search_path TO ''
    AS $$
  with asked as (
    select r.* from jsonb_to_recordset(renew_leases.leases)
      as r (id bigint, attempt integer, lease_seconds integer, force boolean, progress numeric,
            message text)
  ), held as (
    select q.id, q.cancel_requested_at is not null as cancel_requested, a.lease_seconds,
           a.progress, left(a.message, 500) as message,
           a.force or q.locked_until < now() + make_interval(secs => a.lease_seconds * 2 / 3.0) as renew
    from asked a
    join cesar.job_queue q on q.id = a.id and q.attempts = a.attempt and q.status = 'running'
      and q.locked_by = renew_leases.worker
  ), written as (
    -- Only rows with something to write: a drain asking every 2 s writes a job's row about
    -- every lease/3 seconds, plus its progress reports.
    update cesar.job_queue q
    set locked_until = case when h.renew then now() + make_interval(secs => h.lease_seconds)
                            else q.locked_until end,
        progress = coalesce(h.progress, q.progress),
        -- A report replaces both: a fraction without a message clears the old message.
        progress_message = case when h.progress is not null then h.message else q.progress_message end
    from held h
    where q.id = h.id and (h.renew or h.progress is not null)
      and q.status = 'running' and q.locked_by = renew_leases.worker
  )
  select a.id, h.id is not null, coalesce(h.cancel_requested, false)
  from asked a left join held h on h.id = a.id
$$;

--
-- Name: replay_events(bigint[]); Type: FUNCTION; Schema: cesar; Owner: -
--

CREATE FUNCTION cesar.replay_events(ids bigint[]) RETURNS integer
    LANGUAGE plpgsql
    SET search_path TO ''
    AS $$
declare
  replayed integer;
begin
  update cesar.event_log e
  set status = 'pending', last_error = null, processed_at = null
  where e.id = any (replay_events.ids) and e.status in ('processed', 'ignored', 'failed');
  get diagnostics replayed = row_count;
  perform cesar.retry_jobs(array(
    select q.id from cesar.job_queue q
    join cesar.workflow_executions x on x.id = q.execution_id
    where x.event_id = any (replay_events.ids) and q.status in ('failed', 'cancelled')));
  if replayed > 0 then
    perform cesar.ring_doorbell('webhook/drain');
  end if;
  return replayed;
end
$$;

--
-- Name: require_setting(text); Type: FUNCTION; Schema: cesar; Owner: -
--

CREATE FUNCTION cesar.require_setting(setting_name text) RETURNS text
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path TO ''
    AS $$
declare
  found text := cesar.setting(setting_name);
begin
  if found is null or found = '' then
    raise exception 'setting % is not configured', setting_name
      using hint = 'Add it to Supabase Vault (select vault.create_secret(value, name)) or, on the local stack, to cesar.local_settings.',
            errcode = 'P0002';
  end if;
  return found;
end
$$;

--
-- Name: retire_dropped_tables(); Type: FUNCTION; Schema: cesar; Owner: -
--

CREATE FUNCTION cesar.retire_dropped_tables() RETURNS event_trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    AS $$
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

--
-- Name: retry_jobs(bigint[]); Type: FUNCTION; Schema: cesar; Owner: -
--

CREATE FUNCTION cesar.retry_jobs(ids bigint[]) RETURNS SETOF bigint
    LANGUAGE plpgsql
    SET search_path TO ''
    AS $$
declare
  requeued bigint[];
begin
  with retried as (
    update cesar.job_queue q
    set status = 'pending', attempts = 0, run_at = now(), finished_at = null, updated_at = now()
    where q.id = any (retry_jobs.ids) and q.status in ('failed', 'cancelled')
      and (q.dedup_key is null or not exists (
        select from cesar.job_queue o
        where o.dedup_key = q.dedup_key and o.status in ('pending', 'running') and o.id <> q.id))
      and (q.job_key is null or q.key_mode not in ('replace', 'debounce') or not exists (
        select from cesar.job_queue o
        where o.job_key = q.job_key and o.status = 'pending'
          and o.key_mode in ('replace', 'debounce') and o.id <> q.id))
    returning q.id
  )
  select array_agg(r.id order by r.id) into requeued from retried r;
  if requeued is not null then
    perform cesar.ring_doorbell('job-drain');
  end if;
  return query select unnest(coalesce(requeued, '{}'::bigint[]));
end
$$;

--
-- Name: rewatch_altered_tables(); Type: FUNCTION; Schema: cesar; Owner: -
--

CREATE FUNCTION cesar.rewatch_altered_tables() RETURNS event_trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    AS $$
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

--
-- Name: ring_doorbell(text); Type: FUNCTION; Schema: cesar; Owner: -
--

CREATE FUNCTION cesar.ring_doorbell(target text) RETURNS boolean
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO ''
    AS $$
declare
  -- target: a function and optional path, e.g. 'job-drain' or 'webhook/drain'.
  flag text := 'cesar.doorbell.' || regexp_replace(target, '[^a-z0-9_]', '_', 'g');
  wake regclass;
begin
  if coalesce(current_setting(flag, true), '') = 'rung' then
    return false;
  end if;
  perform set_config(flag, 'rung', true);
  -- Held until this transaction ends: a drain letting go waits for it (doorbell_release).
  -- Only taken when free: should anyone else hold the key, this writer does not wait for
  -- them, and since no drain would wait for it either, it calls whatever the hold says.
  if pg_try_advisory_xact_lock_shared(cesar.doorbell_lock_key(target))
     and cesar.doorbell_held(target) then
    wake := cesar.doorbell_wake_sequence(target);
    if wake is not null
       and pg_try_advisory_xact_lock(cesar.doorbell_wake_class(target), pg_backend_pid()) then
      perform setval(wake,
                     ((pg_current_xact_id()::text::bigint & 1099511627775) << 23)
                     | pg_backend_pid());
    end if;
    return false;
  end if;
  if not cesar.doorbell_call(target) then
    return false;
  end if;
  -- Seen by other writers once this transaction commits (doorbell_held), when the call goes.
  if cesar.doorbell_sequence(target) is not null then
    insert into cesar.doorbell_calls (target) values (target);
  end if;
  return true;
end
$$;

--
-- Name: run_due_schedules(timestamp with time zone); Type: FUNCTION; Schema: cesar; Owner: -
--

CREATE FUNCTION cesar.run_due_schedules(as_of timestamp with time zone DEFAULT now()) RETURNS integer
    LANGUAGE plpgsql
    SET search_path TO ''
    AS $$
declare
  id uuid;
  taken timestamptz[];
  ids uuid[] := '{}';
  slots timestamptz[] := '{}';
  made integer := 0;
  due uuid[];
begin
  -- The schedules due, read once: should the batch fail, the same ones run one by one.
  select coalesce(array_agg(s.template_id order by s.template_id), '{}') into due
  from cesar.workflow_schedules s
  join cesar.workflow_templates t on t.id = s.template_id
  where s.next_due_at <= as_of and t.enabled and t.trigger ->> 'type' = 'schedule';
  begin
    foreach id in array due loop
      begin
        taken := cesar.take_schedule_slots(id, as_of);
        ids := ids || array_fill(id, array[cardinality(taken)]);
        slots := slots || taken;
      exception when others then
        raise warning 'schedule of workflow template % failed: %', id, sqlerrm;
      end;
    end loop;
    if cardinality(slots) > 0 then
      select count(*)::integer into made from cesar.create_executions((
        select jsonb_agg(jsonb_build_object(
                 'template_id', t.id, 'kind', 'schedule', 'slot', u.slot,
                 'actions', t.actions, 'retry_policy', t.retry_policy) order by u.n)
        from unnest(ids, slots) with ordinality u (id, slot, n)
        join cesar.workflow_templates t on t.id = u.id));
    end if;
  exception when others then
    raise warning 'schedules: making % executions at once failed (%), running them one schedule at a time',
      cardinality(slots), sqlerrm;
    made := 0;
    foreach id in array due loop
      begin
        made := made + cesar.run_schedule(id, as_of);
      exception when others then
        raise warning 'schedule of workflow template % failed: %', id, sqlerrm;
      end;
    end loop;
  end;
  return made;
end
$$;

--
-- Name: run_schedule(uuid, timestamp with time zone); Type: FUNCTION; Schema: cesar; Owner: -
--

CREATE FUNCTION cesar.run_schedule(template_id uuid, as_of timestamp with time zone DEFAULT now()) RETURNS integer
    LANGUAGE plpgsql
    SET search_path TO ''
    AS $$
declare
  slot timestamptz;
  made integer := 0;
begin
  foreach slot in array cesar.take_schedule_slots(run_schedule.template_id, as_of) loop
    if cesar.run_workflow(run_schedule.template_id, slot, 'schedule') is not null then
      made := made + 1;
    end if;
  end loop;
  return made;
end
$$;

--
-- Name: run_workflow(uuid, timestamp with time zone, text); Type: FUNCTION; Schema: cesar; Owner: -
--

CREATE FUNCTION cesar.run_workflow(template_id uuid, slot timestamp with time zone DEFAULT NULL::timestamp with time zone, kind text DEFAULT 'manual'::text) RETURNS bigint
    LANGUAGE plpgsql
    SET search_path TO ''
    AS $$
declare
  template cesar.workflow_templates;
  created bigint;
begin
  select * into template from cesar.workflow_templates t where t.id = run_workflow.template_id;
  if template.id is null then
    raise exception 'no workflow template %', run_workflow.template_id using errcode = 'P0002';
  end if;
  select e.execution_id into created
  from cesar.create_executions(jsonb_build_array(jsonb_build_object(
    'template_id', template.id, 'kind', run_workflow.kind, 'slot', run_workflow.slot,
    'actions', template.actions, 'retry_policy', template.retry_policy))) e;
  return created;
end
$$;

--
-- Name: schedule_day_slots(cesar.cron_schedule, text, date, timestamp without time zone, timestamp without time zone, timestamp with time zone, timestamp with time zone, integer, boolean); Type: FUNCTION; Schema: cesar; Owner: -
--

CREATE FUNCTION cesar.schedule_day_slots(f cesar.cron_schedule, timezone text, d date, local_from timestamp without time zone, local_to timestamp without time zone, after timestamp with time zone, upto timestamp with time zone, max_slots integer DEFAULT NULL::integer, latest boolean DEFAULT true) RETURNS timestamp with time zone[]
    LANGUAGE plpgsql STABLE
    SET search_path TO ''
    AS $$
declare
  day_start timestamptz := d::timestamp at time zone timezone;
  utc_offset interval;
  lo timestamp;
  hi timestamp;
  h_lo integer;
  h_hi integer;
begin
  if not (extract(month from d)::integer = any (f.months) and (
       case when f.any_day or f.any_weekday
            then extract(day from d)::integer = any (f.days)
                 and extract(dow from d)::integer = any (f.weekdays)
            else extract(day from d)::integer = any (f.days)
                 or extract(dow from d)::integer = any (f.weekdays) end)) then
    return '{}';
  end if;
  select case when min(z.shift) = max(z.shift) then min(z.shift) end into utc_offset
  from generate_series(day_start - interval '26 hours', day_start + interval '58 hours',
                       interval '12 hours') p,
       lateral (select (p at time zone timezone) - (p at time zone 'UTC') as shift) z;

  if utc_offset is not null then
    -- Local times whose slot (local time minus the offset) is in (after, upto], and in
    -- [local_from, local_to]; the hours are a superset, the row filter below is exact.
    lo := greatest(local_from, (after at time zone 'UTC') + utc_offset, d::timestamp);
    hi := least(local_to, (upto at time zone 'UTC') + utc_offset,
                d::timestamp + interval '1 day' - interval '1 microsecond');
    if lo > hi then
      return '{}';
    end if;
    h_lo := extract(hour from lo)::integer;
    h_hi := extract(hour from hi)::integer;
    if max_slots is not null and latest then
      h_lo := greatest(h_lo, (select h from unnest(f.hours) h where h < h_hi
                              order by h desc offset max_slots - 1 limit 1));
    elsif max_slots is not null then
      h_hi := least(h_hi, (select h from unnest(f.hours) h where h > h_lo
                           order by h offset max_slots - 1 limit 1));
    end if;
    return array(
      select x.instant from (
        select s.instant
        from unnest(f.hours) h, unnest(f.minutes) m,
             lateral (select d + make_interval(hours => h, mins => m) as local_time) l,
             lateral (select (l.local_time at time zone 'UTC') - utc_offset as instant) s
        where h between h_lo and h_hi
          and l.local_time between local_from and local_to
          and s.instant > after and s.instant <= upto
        order by case when latest then s.instant end desc, s.instant
        limit max_slots) x
      order by x.instant);
  end if;

  -- Around a clock change: 1300's computation, minute by minute (see its comments).
  return array(
    select y.instant from (
      select x.instant from (
        select distinct s.instant from (
          select l.local_time,
                 (l.local_time at time zone 'UTC') - o.offset_before as before_change,
                 (l.local_time at time zone 'UTC') - o.offset_after as after_change
          from unnest(f.hours) h, unnest(f.minutes) m,
               lateral (select d + make_interval(hours => h, mins => m) as local_time) l,
               lateral (select l.local_time at time zone timezone as t0) p,
               lateral (select ((p.t0 - interval '1 day') at time zone timezone)
                                 - ((p.t0 - interval '1 day') at time zone 'UTC') as offset_before,
                               ((p.t0 + interval '1 day') at time zone timezone)
                                 - ((p.t0 + interval '1 day') at time zone 'UTC') as offset_after) o
          where l.local_time between local_from and local_to
        ) c,
        lateral (
          select v.instant from (values (c.before_change), (c.after_change)) v (instant)
          where (v.instant at time zone timezone) = c.local_time
            and (f.wildcard or v.instant = least(
                   case when (c.before_change at time zone timezone) = c.local_time then c.before_change end,
                   case when (c.after_change at time zone timezone) = c.local_time then c.after_change end))
          union all
          select greatest(c.before_change, c.after_change)
          where not f.wildcard
            and (c.before_change at time zone timezone) <> c.local_time
            and (c.after_change at time zone timezone) <> c.local_time
        ) s (instant)
        where s.instant > after and s.instant <= upto
      ) x
      order by case when latest then x.instant end desc, x.instant
      limit max_slots) y
    order by y.instant);
end
$$;

--
-- Name: schedule_next_slot(text, text, timestamp with time zone, timestamp with time zone); Type: FUNCTION; Schema: cesar; Owner: -
--

CREATE FUNCTION cesar.schedule_next_slot(cron text, timezone text, after timestamp with time zone, upto timestamp with time zone) RETURNS timestamp with time zone
    LANGUAGE plpgsql STABLE
    SET search_path TO ''
    AS $$
declare
  f cesar.cron_schedule;
begin
  select * into f from cesar.cron_fields(cron);
  return cesar.cron_next_slot(f, timezone, after, upto);
end
$$;

--
-- Name: schedule_slots(text, text, timestamp with time zone, timestamp with time zone, integer); Type: FUNCTION; Schema: cesar; Owner: -
--

CREATE FUNCTION cesar.schedule_slots(cron text, timezone text, after timestamp with time zone, upto timestamp with time zone, max_slots integer DEFAULT NULL::integer) RETURNS SETOF timestamp with time zone
    LANGUAGE plpgsql STABLE
    SET search_path TO ''
    AS $$
declare
  f cesar.cron_schedule;
begin
  select * into f from cesar.cron_fields(cron);
  return query select cesar.cron_slots(f, timezone, after, upto, max_slots);
end
$$;

--
-- Name: setting(text); Type: FUNCTION; Schema: cesar; Owner: -
--

CREATE FUNCTION cesar.setting(setting_name text) RETURNS text
    LANGUAGE plpgsql STABLE SECURITY DEFINER
    SET search_path TO ''
    AS $_$
declare
  found text;
begin
  -- Vault's view is looked up at run time: the same function works with and without Vault.
  if to_regclass('vault.decrypted_secrets') is not null then
    execute 'select decrypted_secret from vault.decrypted_secrets where name = $1 limit 1'
      into found using setting_name;
    if found is not null then
      return found;
    end if;
  end if;
  select s.value into found from cesar.local_settings s where s.name = setting_name;
  return found;
end
$_$;

--
-- Name: FUNCTION setting(setting_name text); Type: COMMENT; Schema: cesar; Owner: -
--

COMMENT ON FUNCTION cesar.setting(setting_name text) IS 'Reads a secret or setting: Supabase Vault (vault.decrypted_secrets) first, then cesar.local_settings.';

--
-- Name: single_key_column(oid); Type: FUNCTION; Schema: cesar; Owner: -
--

CREATE FUNCTION cesar.single_key_column(target oid) RETURNS text
    LANGUAGE sql STABLE
    SET search_path TO ''
    AS $$
  select a.attname
  from pg_catalog.pg_index i
  join pg_catalog.pg_attribute a on a.attrelid = i.indrelid and a.attnum = i.indkey[0]
  where i.indrelid = target and i.indisprimary and i.indnatts = 1
$$;

--
-- Name: start_jobs(text, bigint[], integer[]); Type: FUNCTION; Schema: cesar; Owner: -
--

CREATE FUNCTION cesar.start_jobs(worker text, ids bigint[], lease_seconds integer[]) RETURNS TABLE(id bigint, attempts integer, locked_until timestamp with time zone, attempts_left boolean)
    LANGUAGE sql
    SET search_path TO ''
    AS $$
  update cesar.job_queue q
  set attempts = q.attempts + 1, started_at = now(), updated_at = now(),
      locked_until = now() + make_interval(secs => s.lease_seconds)
  from unnest(start_jobs.ids, start_jobs.lease_seconds) as s (id, lease_seconds)
  where q.id = s.id and q.status = 'running' and q.locked_by = start_jobs.worker
    and q.started_at is null
  returning q.id, q.attempts, q.locked_until, cesar.job_attempts_left(q.attempts, q.max_attempts)
$$;

--
-- Name: sync_backfill(text); Type: FUNCTION; Schema: cesar; Owner: -
--

CREATE FUNCTION cesar.sync_backfill(target text) RETURNS integer
    LANGUAGE plpgsql
    SET search_path TO ''
    AS $$
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

--
-- Name: sync_outbox_page(text, bigint, text, integer); Type: FUNCTION; Schema: cesar; Owner: -
--

CREATE FUNCTION cesar.sync_outbox_page(target text, after_change bigint, after_key text, page_size integer) RETURNS TABLE(row_key text, change_id bigint)
    LANGUAGE sql STABLE
    SET search_path TO ''
    SET enable_bitmapscan TO 'off'
    SET enable_sort TO 'off'
    AS $$
  select o.row_key, o.change_id from cesar.sync_outbox o
  where o.table_name = target and (o.change_id, o.row_key) > (after_change, after_key)
  order by o.table_name, o.change_id, o.row_key
  limit page_size
$$;

--
-- Name: system_table_reason(regclass); Type: FUNCTION; Schema: cesar; Owner: -
--

CREATE FUNCTION cesar.system_table_reason(target regclass) RETURNS text
    LANGUAGE sql STABLE
    SET search_path TO ''
    AS $$
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

--
-- Name: take_event_batch(text, integer, integer); Type: FUNCTION; Schema: cesar; Owner: -
--

CREATE FUNCTION cesar.take_event_batch(holder text, lease_seconds integer, batch_size integer) RETURNS jsonb
    LANGUAGE plpgsql
    SET search_path TO ''
    AS $$
declare
  claimed jsonb;
  templates jsonb;
begin
  if not coalesce(cesar.take_event_processor(holder, lease_seconds), false) then
    return jsonb_build_object('busy', true);
  end if;
  select coalesce(jsonb_agg(jsonb_build_object(
           'id', e.id::text, 'schema_name', e.schema_name, 'table_name', e.table_name,
           'op', e.op, 'record', e.record, 'old_record', e.old_record,
           'changed_columns', e.changed_columns, 'row_key', e.row_key,
           'occurred_at', e.occurred_at, 'origin', e.origin) order by e.id), '[]')
  into claimed
  from cesar.claim_events(batch_size) e;
  if jsonb_array_length(claimed) = 0 then
    return jsonb_build_object('busy', false, 'events', claimed);
  end if;
  -- A statement of its own: its snapshot is taken after the claim's.
  select coalesce(jsonb_agg(jsonb_build_object(
           'id', t.id, 'name', t.name, 'enabled', t.enabled, 'trigger', t.trigger,
           'actions', t.actions, 'retry_policy', t.retry_policy) order by t.name), '[]')
  into templates
  from cesar.workflow_templates t
  where t.enabled and t.trigger ->> 'type' = 'database_event';
  return jsonb_build_object('busy', false, 'events', claimed, 'templates', templates);
end
$$;

--
-- Name: take_event_processor(text, integer); Type: FUNCTION; Schema: cesar; Owner: -
--

CREATE FUNCTION cesar.take_event_processor(holder text, lease_seconds integer DEFAULT 30) RETURNS boolean
    LANGUAGE sql
    SET search_path TO ''
    AS $$
  update cesar.event_processor p
  set holder = take_event_processor.holder,
      lease_until = now() + make_interval(secs => take_event_processor.lease_seconds)
  where p.lease_until < now() or p.holder = take_event_processor.holder
  returning true
$$;

--
-- Name: take_schedule_slots(uuid, timestamp with time zone); Type: FUNCTION; Schema: cesar; Owner: -
--

CREATE FUNCTION cesar.take_schedule_slots(template_id uuid, as_of timestamp with time zone DEFAULT now()) RETURNS timestamp with time zone[]
    LANGUAGE plpgsql
    SET search_path TO ''
    AS $$
declare
  template cesar.workflow_templates;
  schedule cesar.workflow_schedules;
  f cesar.cron_schedule;
  zone text;
  policy text;
  due timestamptz[];
begin
  select * into template from cesar.workflow_templates t
  where t.id = take_schedule_slots.template_id;
  if template.id is null or not template.enabled or template.trigger ->> 'type' <> 'schedule' then
    return '{}';
  end if;
  -- One caller at a time per schedule (the tick, a test, an operator).
  select * into schedule from cesar.workflow_schedules s
  where s.template_id = template.id for update;
  if schedule.template_id is null or as_of <= schedule.covered_until then
    return '{}';
  end if;
  if as_of < schedule.next_due_at then
    update cesar.workflow_schedules s set covered_until = as_of where s.template_id = template.id;
    return '{}';
  end if;
  f := schedule.cron;
  if f is null then
    select * into f from cesar.cron_fields(template.trigger ->> 'cron');
  end if;
  zone := coalesce(template.trigger ->> 'timezone', 'UTC');
  policy := coalesce(template.trigger ->> 'catch_up', 'none');
  due := array(select cesar.cron_slots(
    f,
    zone,
    case when policy = 'none' then greatest(schedule.covered_until, as_of - interval '2 minutes')
         else schedule.covered_until end,
    as_of,
    case when policy = 'all' then coalesce((template.trigger ->> 'catch_up_max')::integer, 10)
         else 1 end));
  update cesar.workflow_schedules s
  set covered_until = as_of,
      next_due_at = cesar.cron_next_due(f, zone, as_of),
      last_slot = coalesce(due[cardinality(due)], s.last_slot),
      last_run_at = case when cardinality(due) > 0 then as_of else s.last_run_at end
  where s.template_id = template.id;
  return due;
end
$$;

--
-- Name: tick_schedule(); Type: FUNCTION; Schema: cesar; Owner: -
--

CREATE FUNCTION cesar.tick_schedule() RETURNS text
    LANGUAGE sql STABLE
    SET search_path TO ''
    AS $$
  -- extversion looks like '1.6' or, from Debian, '1.4-1'.
  select case when (regexp_match(extversion, '^(\d+)\.(\d+)'))::int[] >= array[1, 5]
              then '10 seconds' else '* * * * *' end
  from pg_extension where extname = 'pg_cron'
$$;

--
-- Name: touch_updated_at(); Type: FUNCTION; Schema: cesar; Owner: -
--

CREATE FUNCTION cesar.touch_updated_at() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path TO ''
    AS $$
begin
  if coalesce(current_setting('cesar.origin', true), '') not in ('mirror', 'restore') then
    new.updated_at := now();
  end if;
  return new;
end
$$;

--
-- Name: unkeyed_actions(jsonb); Type: FUNCTION; Schema: cesar; Owner: -
--

CREATE FUNCTION cesar.unkeyed_actions(actions jsonb) RETURNS jsonb
    LANGUAGE sql IMMUTABLE
    SET search_path TO ''
    AS $$
  select coalesce(jsonb_agg(a.action order by a.ordinality), '[]')
  from jsonb_array_elements(actions) with ordinality as a (action, ordinality)
  where not (a.action ? 'key' or a.action ? 'mode')
$$;

--
-- Name: unpushed_changes(text); Type: FUNCTION; Schema: cesar; Owner: -
--

CREATE FUNCTION cesar.unpushed_changes(target text) RETURNS TABLE(row_key text, op text, occurred_at timestamp with time zone)
    LANGUAGE sql STABLE
    AS $$
  select distinct on (c.row_key) c.row_key, c.op, c.occurred_at
  from (
    select o.row_key, o.op, o.occurred_at from cesar.sync_outbox o where o.table_name = target
    union all
    select c.row_key, c.op, c.occurred_at from cesar.captured_changes(target) c
  ) c
  order by c.row_key, c.occurred_at desc nulls last
$$;

--
-- Name: unwatch(regclass); Type: FUNCTION; Schema: cesar; Owner: -
--

CREATE FUNCTION cesar.unwatch(target regclass) RETURNS text
    LANGUAGE plpgsql
    SET search_path TO ''
    AS $$
begin
  delete from cesar.watched_tables
  where table_name = (select n.nspname || '.' || c.relname
                      from pg_class c join pg_namespace n on n.oid = c.relnamespace where c.oid = target);
  return cesar.recapture(target);
end
$$;

--
-- Name: watch(regclass); Type: FUNCTION; Schema: cesar; Owner: -
--

CREATE FUNCTION cesar.watch(target regclass) RETURNS text
    LANGUAGE plpgsql
    SET search_path TO ''
    AS $$
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

--
-- Name: capture_statement_seq; Type: SEQUENCE; Schema: cesar; Owner: -
--

CREATE SEQUENCE cesar.capture_statement_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

--
-- Name: capture_stores_id_seq; Type: SEQUENCE; Schema: cesar; Owner: -
--

ALTER TABLE cesar.capture_stores ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME cesar.capture_stores_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);

--
-- Name: captures; Type: TABLE; Schema: cesar; Owner: -
--

CREATE TABLE cesar.captures (
    statement_id bigint NOT NULL,
    chunk integer NOT NULL,
    store_id integer NOT NULL,
    op text NOT NULL,
    txid bigint NOT NULL,
    origin text,
    occurred_at timestamp with time zone DEFAULT now() NOT NULL,
    row_count integer NOT NULL,
    CONSTRAINT captures_op_check CHECK ((op = ANY (ARRAY['INSERT'::text, 'UPDATE'::text, 'DELETE'::text]))),
    CONSTRAINT captures_row_count_check CHECK ((row_count >= 0))
);

--
-- Name: TABLE captures; Type: COMMENT; Schema: cesar; Owner: -
--

COMMENT ON TABLE cesar.captures IS 'Arrays of captured rows not yet made into events, one per statement (more past 64 MB); the rows are in cesar.captured_<store_id>.';

--
-- Name: doorbell_calls; Type: TABLE; Schema: cesar; Owner: -
--

CREATE UNLOGGED TABLE cesar.doorbell_calls (
    target text NOT NULL,
    called_at timestamp with time zone DEFAULT clock_timestamp() NOT NULL
);

--
-- Name: doorbell_hold_job_drain; Type: SEQUENCE; Schema: cesar; Owner: -
--

CREATE SEQUENCE cesar.doorbell_hold_job_drain
    START WITH 0
    INCREMENT BY 1
    MINVALUE 0
    NO MAXVALUE
    CACHE 1;

--
-- Name: doorbell_hold_webhook_drain; Type: SEQUENCE; Schema: cesar; Owner: -
--

CREATE SEQUENCE cesar.doorbell_hold_webhook_drain
    START WITH 0
    INCREMENT BY 1
    MINVALUE 0
    NO MAXVALUE
    CACHE 1;

--
-- Name: doorbell_wake_job_drain; Type: SEQUENCE; Schema: cesar; Owner: -
--

CREATE SEQUENCE cesar.doorbell_wake_job_drain
    START WITH 0
    INCREMENT BY 1
    MINVALUE 0
    NO MAXVALUE
    CACHE 1;

--
-- Name: doorbell_wake_webhook_drain; Type: SEQUENCE; Schema: cesar; Owner: -
--

CREATE SEQUENCE cesar.doorbell_wake_webhook_drain
    START WITH 0
    INCREMENT BY 1
    MINVALUE 0
    NO MAXVALUE
    CACHE 1;

--
-- Name: event_log_id_seq; Type: SEQUENCE; Schema: cesar; Owner: -
--

ALTER TABLE cesar.event_log ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME cesar.event_log_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);

--
-- Name: event_processor; Type: TABLE; Schema: cesar; Owner: -
--

CREATE TABLE cesar.event_processor (
    id boolean DEFAULT true NOT NULL,
    holder text,
    lease_until timestamp with time zone DEFAULT '-infinity'::timestamp with time zone NOT NULL,
    CONSTRAINT event_processor_id_check CHECK (id)
);

--
-- Name: expansion_statements; Type: TABLE; Schema: cesar; Owner: -
--

CREATE UNLOGGED TABLE cesar.expansion_statements (
    stores_digest text NOT NULL,
    statement text NOT NULL
);

--
-- Name: TABLE expansion_statements; Type: COMMENT; Schema: cesar; Owner: -
--

COMMENT ON TABLE cesar.expansion_statements IS 'cesar.expand_captures''s statement per set of capture stores, under a digest of their rows; emptied when cesar.capture_stores changes, and by any migration that changes its rendering.';

--
-- Name: http_request_totals; Type: TABLE; Schema: cesar; Owner: -
--

CREATE TABLE cesar.http_request_totals (
    function_name text NOT NULL,
    status_class text NOT NULL,
    requests bigint DEFAULT 0 NOT NULL,
    duration_seconds_sum double precision DEFAULT 0 NOT NULL,
    buckets bigint[] NOT NULL
);

--
-- Name: ingestion_log; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.ingestion_log (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    source text NOT NULL,
    status text NOT NULL,
    record_count integer DEFAULT 0 NOT NULL,
    error_message text,
    details jsonb DEFAULT '{}'::jsonb NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT ingestion_log_record_count_check CHECK ((record_count >= 0)),
    CONSTRAINT ingestion_log_status_check CHECK ((status = ANY (ARRAY['ok'::text, 'error'::text])))
);

--
-- Name: ingestion_errors; Type: VIEW; Schema: cesar; Owner: -
--

CREATE VIEW cesar.ingestion_errors AS
 SELECT l.source,
    (count(*))::integer AS errors_7d,
    (count(*) FILTER (WHERE (l.created_at > (now() - '1 day'::interval))))::integer AS errors_1d,
    (count(*) FILTER (WHERE (l.created_at > (now() - '01:00:00'::interval))))::integer AS errors_1h,
    max(l.created_at) AS last_error_at,
    (array_agg(l.error_message ORDER BY l.created_at DESC))[1] AS last_error
   FROM public.ingestion_log l
  WHERE ((l.status = 'error'::text) AND (l.created_at > (now() - '7 days'::interval)))
  GROUP BY l.source;

--
-- Name: job_queue; Type: TABLE; Schema: cesar; Owner: -
--

CREATE TABLE cesar.job_queue (
    id bigint NOT NULL,
    job_type text NOT NULL,
    payload jsonb DEFAULT '{}'::jsonb NOT NULL,
    status text DEFAULT 'pending'::text NOT NULL,
    priority integer DEFAULT 0 NOT NULL,
    run_at timestamp with time zone DEFAULT now() NOT NULL,
    attempts integer DEFAULT 0 NOT NULL,
    max_attempts integer DEFAULT 5 NOT NULL,
    last_error text,
    errors jsonb DEFAULT '[]'::jsonb NOT NULL,
    result jsonb,
    dedup_key text,
    serial_key text,
    execution_id bigint,
    backoff_base_seconds numeric,
    backoff_cap_seconds numeric,
    locked_by text,
    locked_until timestamp with time zone,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    finished_at timestamp with time zone,
    started_at timestamp with time zone,
    job_key text,
    key_mode text,
    key_until timestamp with time zone,
    progress numeric,
    progress_message text,
    cancel_requested_at timestamp with time zone,
    CONSTRAINT job_queue_attempts_check CHECK ((attempts >= 0)),
    CONSTRAINT job_queue_backoff_base_seconds_check CHECK ((backoff_base_seconds > (0)::numeric)),
    CONSTRAINT job_queue_backoff_cap_seconds_check CHECK ((backoff_cap_seconds > (0)::numeric)),
    CONSTRAINT job_queue_check CHECK (((status = 'running'::text) = (locked_until IS NOT NULL))),
    CONSTRAINT job_queue_errors_check CHECK ((jsonb_typeof(errors) = 'array'::text)),
    CONSTRAINT job_queue_job_type_check CHECK ((job_type ~ '^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$'::text)),
    CONSTRAINT job_queue_key_check CHECK ((((job_key IS NULL) OR (key_mode = ANY (ARRAY['replace'::text, 'debounce'::text, 'unique_for'::text]))) AND ((key_until IS NULL) OR (key_mode = 'unique_for'::text)))),
    CONSTRAINT job_queue_key_mode_check CHECK ((key_mode = ANY (ARRAY['keep'::text, 'replace'::text, 'debounce'::text, 'unique_for'::text]))),
    CONSTRAINT job_queue_max_attempts_check CHECK (((max_attempts >= 1) AND (max_attempts <= 100))),
    CONSTRAINT job_queue_progress_check CHECK (((progress >= (0)::numeric) AND (progress <= (1)::numeric))),
    CONSTRAINT job_queue_progress_message_check CHECK ((length(progress_message) <= 500)),
    CONSTRAINT job_queue_status_check CHECK ((status = ANY (ARRAY['pending'::text, 'running'::text, 'completed'::text, 'failed'::text, 'cancelled'::text])))
);

--
-- Name: job_queue_id_seq; Type: SEQUENCE; Schema: cesar; Owner: -
--

ALTER TABLE cesar.job_queue ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME cesar.job_queue_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);

--
-- Name: job_rate_limits; Type: TABLE; Schema: cesar; Owner: -
--

CREATE TABLE cesar.job_rate_limits (
    job_type text NOT NULL,
    key_value text NOT NULL,
    rate_limit integer NOT NULL,
    rate_period_seconds numeric NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT job_rate_limits_key_value_check CHECK (((length(key_value) >= 1) AND (length(key_value) <= 200))),
    CONSTRAINT job_rate_limits_rate_limit_check CHECK ((rate_limit > 0)),
    CONSTRAINT job_rate_limits_rate_period_seconds_check CHECK (((rate_period_seconds > (0)::numeric) AND (rate_period_seconds <= (86400)::numeric)))
);

--
-- Name: job_rate_windows; Type: TABLE; Schema: cesar; Owner: -
--

CREATE TABLE cesar.job_rate_windows (
    job_type text NOT NULL,
    rate_key text NOT NULL,
    starts timestamp with time zone[] NOT NULL
);

--
-- Name: job_totals; Type: TABLE; Schema: cesar; Owner: -
--

CREATE TABLE cesar.job_totals (
    job_type text NOT NULL,
    completed bigint DEFAULT 0 NOT NULL,
    failed bigint DEFAULT 0 NOT NULL,
    slot smallint DEFAULT 0 NOT NULL
);

--
-- Name: TABLE job_totals; Type: COMMENT; Schema: cesar; Owner: -
--

COMMENT ON TABLE cesar.job_totals IS 'Jobs completed and failed for good, per type, in slots (add a type''s rows up): kept when the jobs are pruned.';

--
-- Name: job_types; Type: TABLE; Schema: cesar; Owner: -
--

CREATE TABLE cesar.job_types (
    job_type text NOT NULL,
    max_attempts integer DEFAULT 5 NOT NULL,
    backoff_base_seconds numeric DEFAULT 300 NOT NULL,
    backoff_cap_seconds numeric DEFAULT 3600 NOT NULL,
    concurrency integer,
    lease_seconds integer DEFAULT 60 NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    rate_limit integer,
    rate_period_seconds numeric,
    rate_key text,
    concurrency_key text,
    key_concurrency integer,
    CONSTRAINT job_types_backoff_base_seconds_check CHECK ((backoff_base_seconds > (0)::numeric)),
    CONSTRAINT job_types_backoff_cap_seconds_check CHECK ((backoff_cap_seconds > (0)::numeric)),
    CONSTRAINT job_types_concurrency_check CHECK ((concurrency > 0)),
    CONSTRAINT job_types_concurrency_key_check CHECK ((concurrency_key ~ '^payload(\.[A-Za-z0-9_-]+)+$'::text)),
    CONSTRAINT job_types_job_type_check CHECK ((job_type ~ '^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$'::text)),
    CONSTRAINT job_types_key_concurrency_check CHECK ((key_concurrency > 0)),
    CONSTRAINT job_types_key_settings_check CHECK (((concurrency_key IS NULL) = (key_concurrency IS NULL))),
    CONSTRAINT job_types_lease_seconds_check CHECK (((lease_seconds >= 1) AND (lease_seconds <= 3600))),
    CONSTRAINT job_types_max_attempts_check CHECK (((max_attempts >= 1) AND (max_attempts <= 100))),
    CONSTRAINT job_types_rate_key_check CHECK ((rate_key ~ '^payload(\.[A-Za-z0-9_-]+)+$'::text)),
    CONSTRAINT job_types_rate_limit_check CHECK ((rate_limit > 0)),
    CONSTRAINT job_types_rate_period_seconds_check CHECK (((rate_period_seconds > (0)::numeric) AND (rate_period_seconds <= (86400)::numeric))),
    CONSTRAINT job_types_rate_settings_check CHECK (((rate_limit IS NULL) = (rate_period_seconds IS NULL)))
);

--
-- Name: local_settings; Type: TABLE; Schema: cesar; Owner: -
--

CREATE TABLE cesar.local_settings (
    name text NOT NULL,
    value text NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT local_settings_name_check CHECK ((name ~ '^[a-z][a-z0-9_]*$'::text))
);

--
-- Name: TABLE local_settings; Type: COMMENT; Schema: cesar; Owner: -
--

COMMENT ON TABLE cesar.local_settings IS 'Settings for databases without Supabase Vault (the local stack). Vault wins where it exists.';

--
-- Name: mv_ingestion_errors; Type: MATERIALIZED VIEW; Schema: cesar; Owner: -
--

CREATE MATERIALIZED VIEW cesar.mv_ingestion_errors AS
 SELECT e.source,
    e.errors_7d,
    e.errors_1d,
    e.errors_1h,
    e.last_error_at,
    e.last_error,
    now() AS refreshed_at
   FROM cesar.ingestion_errors e
  WITH NO DATA;

--
-- Name: mv_job_queue_backlog; Type: MATERIALIZED VIEW; Schema: cesar; Owner: -
--

CREATE MATERIALIZED VIEW cesar.mv_job_queue_backlog AS
 SELECT job_queue.job_type,
    job_queue.status,
    count(*) AS jobs,
    min(
        CASE
            WHEN (job_queue.status = 'pending'::text) THEN job_queue.run_at
            ELSE job_queue.created_at
        END) AS oldest_at,
    (EXTRACT(epoch FROM (now() - min(
        CASE
            WHEN (job_queue.status = 'pending'::text) THEN job_queue.run_at
            ELSE job_queue.created_at
        END))))::bigint AS oldest_age_seconds,
    now() AS refreshed_at
   FROM cesar.job_queue
  WHERE (job_queue.status = ANY (ARRAY['pending'::text, 'running'::text, 'failed'::text]))
  GROUP BY job_queue.job_type, job_queue.status
  WITH NO DATA;

--
-- Name: sync_outbox; Type: TABLE; Schema: cesar; Owner: -
--

CREATE TABLE cesar.sync_outbox (
    table_name text NOT NULL,
    row_key text NOT NULL,
    op text NOT NULL,
    change_id bigint NOT NULL,
    txid bigint,
    occurred_at timestamp with time zone,
    CONSTRAINT sync_outbox_op_check CHECK ((op = ANY (ARRAY['INSERT'::text, 'UPDATE'::text, 'DELETE'::text])))
);

--
-- Name: sync_state; Type: TABLE; Schema: cesar; Owner: -
--

CREATE TABLE cesar.sync_state (
    table_name text NOT NULL,
    direction text NOT NULL,
    status text DEFAULT 'pending'::text NOT NULL,
    last_sync_at timestamp with time zone,
    records_synced bigint DEFAULT 0 NOT NULL,
    conflicts bigint DEFAULT 0 NOT NULL,
    error_message text,
    lease_holder text,
    lease_until timestamp with time zone DEFAULT '-infinity'::timestamp with time zone NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    watermark timestamp with time zone,
    watermark_key text,
    snapshot text,
    copied_at timestamp with time zone,
    bulk_loaded_from timestamp with time zone,
    CONSTRAINT sync_state_direction_check CHECK ((direction = ANY (ARRAY['up'::text, 'down'::text, 'restore'::text]))),
    CONSTRAINT sync_state_status_check CHECK ((status = ANY (ARRAY['pending'::text, 'in_progress'::text, 'completed'::text, 'failed'::text])))
);

--
-- Name: sync_tables; Type: TABLE; Schema: cesar; Owner: -
--

CREATE TABLE cesar.sync_tables (
    table_name text NOT NULL,
    enabled boolean DEFAULT true NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT sync_tables_table_name_check CHECK ((table_name ~ '^[a-z_][a-z0-9_]*\.[a-z_][a-z0-9_]*$'::text))
);

--
-- Name: sync_lag; Type: VIEW; Schema: cesar; Owner: -
--

CREATE VIEW cesar.sync_lag AS
 SELECT t.table_name,
    d.direction,
        CASE
            WHEN ((s.status = 'in_progress'::text) AND (s.lease_holder IS NOT NULL) AND (s.lease_until < now())) THEN 'failed'::text
            ELSE COALESCE(s.status, 'pending'::text)
        END AS status,
    s.last_sync_at,
    (EXTRACT(epoch FROM (now() - s.last_sync_at)))::bigint AS lag_seconds,
    COALESCE(s.records_synced, (0)::bigint) AS records_synced,
    COALESCE(s.conflicts, (0)::bigint) AS conflicts,
        CASE
            WHEN (d.direction = 'up'::text) THEN ( SELECT count(*) AS count
               FROM cesar.sync_outbox o
              WHERE (o.table_name = t.table_name))
            ELSE NULL::bigint
        END AS dirty_rows,
        CASE
            WHEN ((s.status = 'in_progress'::text) AND (s.lease_holder IS NOT NULL) AND (s.lease_until < now())) THEN (((('run '::text || s.lease_holder) || ' stopped without recording an outcome (lease expired '::text) || s.lease_until) || '); the next run takes over'::text)
            ELSE s.error_message
        END AS error_message
   FROM ((cesar.sync_tables t
     CROSS JOIN ( VALUES ('up'::text), ('down'::text)) d(direction))
     LEFT JOIN cesar.sync_state s ON (((s.table_name = t.table_name) AND (s.direction = d.direction))))
  WHERE t.enabled;

--
-- Name: mv_sync_lag; Type: MATERIALIZED VIEW; Schema: cesar; Owner: -
--

CREATE MATERIALIZED VIEW cesar.mv_sync_lag AS
 SELECT l.table_name,
    l.direction,
    l.status,
    l.last_sync_at,
    l.lag_seconds,
    l.records_synced,
    l.conflicts,
    l.dirty_rows,
    l.error_message,
    now() AS refreshed_at
   FROM cesar.sync_lag l
  WITH NO DATA;

--
-- Name: sync_change_seq; Type: SEQUENCE; Schema: cesar; Owner: -
--

CREATE SEQUENCE cesar.sync_change_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

--
-- Name: sync_conflicts; Type: TABLE; Schema: cesar; Owner: -
--

CREATE TABLE cesar.sync_conflicts (
    id bigint NOT NULL,
    table_name text NOT NULL,
    row_key text NOT NULL,
    direction text NOT NULL,
    winner text NOT NULL,
    losing_version jsonb,
    winner_updated_at timestamp with time zone,
    loser_updated_at timestamp with time zone,
    detected_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT sync_conflicts_direction_check CHECK ((direction = ANY (ARRAY['up'::text, 'down'::text]))),
    CONSTRAINT sync_conflicts_winner_check CHECK ((winner = ANY (ARRAY['primary'::text, 'mirror'::text])))
);

--
-- Name: TABLE sync_conflicts; Type: COMMENT; Schema: cesar; Owner: -
--

COMMENT ON TABLE cesar.sync_conflicts IS 'Each conflict between primary and mirror, with the version that lost.';

--
-- Name: sync_conflicts_id_seq; Type: SEQUENCE; Schema: cesar; Owner: -
--

ALTER TABLE cesar.sync_conflicts ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME cesar.sync_conflicts_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);

--
-- Name: watched_tables; Type: TABLE; Schema: cesar; Owner: -
--

CREATE TABLE cesar.watched_tables (
    table_name text NOT NULL,
    key_column text NOT NULL,
    watched_at timestamp with time zone DEFAULT now() NOT NULL
);

--
-- Name: webhook_deliveries; Type: TABLE; Schema: cesar; Owner: -
--

CREATE TABLE cesar.webhook_deliveries (
    id text NOT NULL,
    received_at timestamp with time zone DEFAULT now() NOT NULL,
    expires_at timestamp with time zone NOT NULL
);

--
-- Name: TABLE webhook_deliveries; Type: COMMENT; Schema: cesar; Owner: -
--

COMMENT ON TABLE cesar.webhook_deliveries IS 'The webhook-id of each signed delivery the webhook function took, kept past its replay window (expires_at).';

--
-- Name: workflow_executions; Type: TABLE; Schema: cesar; Owner: -
--

CREATE TABLE cesar.workflow_executions (
    id bigint NOT NULL,
    template_id uuid NOT NULL,
    trigger_kind text NOT NULL,
    event_id bigint,
    schedule_slot timestamp with time zone,
    status text DEFAULT 'pending'::text NOT NULL,
    job_count integer DEFAULT 0 NOT NULL,
    error text,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    started_at timestamp with time zone,
    finished_at timestamp with time zone,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT workflow_executions_status_check CHECK ((status = ANY (ARRAY['pending'::text, 'running'::text, 'completed'::text, 'failed'::text, 'cancelled'::text]))),
    CONSTRAINT workflow_executions_trigger_kind_check CHECK ((trigger_kind = ANY (ARRAY['database_event'::text, 'schedule'::text, 'manual'::text])))
);

--
-- Name: workflow_executions_id_seq; Type: SEQUENCE; Schema: cesar; Owner: -
--

ALTER TABLE cesar.workflow_executions ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME cesar.workflow_executions_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);

--
-- Name: workflow_schedules; Type: TABLE; Schema: cesar; Owner: -
--

CREATE TABLE cesar.workflow_schedules (
    template_id uuid NOT NULL,
    covered_until timestamp with time zone NOT NULL,
    last_slot timestamp with time zone,
    last_run_at timestamp with time zone,
    next_due_at timestamp with time zone NOT NULL,
    cron cesar.cron_schedule
);

--
-- Name: workflow_templates; Type: TABLE; Schema: cesar; Owner: -
--

CREATE TABLE cesar.workflow_templates (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    name text NOT NULL,
    description text,
    enabled boolean DEFAULT true NOT NULL,
    trigger jsonb NOT NULL,
    actions jsonb NOT NULL,
    retry_policy jsonb DEFAULT '{}'::jsonb NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT workflow_templates_actions_check CHECK (((jsonb_typeof(actions) = 'array'::text) AND (jsonb_array_length(actions) > 0))),
    CONSTRAINT workflow_templates_name_check CHECK (((length(name) >= 1) AND (length(name) <= 200))),
    CONSTRAINT workflow_templates_retry_policy_check CHECK ((jsonb_typeof(retry_policy) = 'object'::text)),
    CONSTRAINT workflow_templates_trigger_check CHECK (((trigger ->> 'type'::text) = ANY (ARRAY['database_event'::text, 'schedule'::text, 'manual'::text]))),
    CONSTRAINT workflow_templates_trigger_check1 CHECK ((((trigger ->> 'type'::text) <> 'schedule'::text) OR (COALESCE((trigger ->> 'cron'::text), ''::text) <> ''::text)))
);

--
-- Name: a2a_conversations; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.a2a_conversations (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    subject text,
    participant_ids uuid[] DEFAULT '{}'::uuid[] NOT NULL,
    status text DEFAULT 'open'::text NOT NULL,
    metadata jsonb DEFAULT '{}'::jsonb NOT NULL,
    last_message_at timestamp with time zone,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT a2a_conversations_status_check CHECK ((status = ANY (ARRAY['open'::text, 'closed'::text])))
);

--
-- Name: a2a_messages; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.a2a_messages (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    conversation_id uuid,
    sender_id uuid NOT NULL,
    receiver_id uuid,
    message_type text DEFAULT 'message'::text NOT NULL,
    content text NOT NULL,
    metadata jsonb DEFAULT '{}'::jsonb NOT NULL,
    status text DEFAULT 'pending'::text NOT NULL,
    routed_at timestamp with time zone,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT a2a_messages_status_check CHECK ((status = ANY (ARRAY['pending'::text, 'routed'::text, 'delivered'::text, 'read'::text, 'failed'::text])))
);

--
-- Name: agent_events; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.agent_events (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    agent_id uuid,
    event_type text NOT NULL,
    payload jsonb DEFAULT '{}'::jsonb NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL
);

--
-- Name: agent_sessions; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.agent_sessions (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    session_id uuid NOT NULL,
    agent_id uuid NOT NULL,
    role text DEFAULT 'participant'::text NOT NULL,
    joined_at timestamp with time zone DEFAULT now() NOT NULL,
    left_at timestamp with time zone,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL
);

--
-- Name: agents; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.agents (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    name text NOT NULL,
    type text NOT NULL,
    status text DEFAULT 'active'::text NOT NULL,
    capabilities text[] DEFAULT '{}'::text[] NOT NULL,
    metadata jsonb DEFAULT '{}'::jsonb NOT NULL,
    mob_alias text,
    last_seen_at timestamp with time zone,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT agents_name_check CHECK (((length(name) >= 1) AND (length(name) <= 200))),
    CONSTRAINT agents_status_check CHECK ((status = ANY (ARRAY['active'::text, 'idle'::text, 'busy'::text, 'offline'::text, 'error'::text, 'disabled'::text]))),
    CONSTRAINT agents_type_check CHECK ((type ~ '^[a-z][a-z0-9_]*$'::text))
);

--
-- Name: collaboration_sessions; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.collaboration_sessions (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    session_id uuid,
    initiator_agent_id uuid,
    topic text NOT NULL,
    participant_ids uuid[] DEFAULT '{}'::uuid[] NOT NULL,
    status text DEFAULT 'active'::text NOT NULL,
    outcome jsonb,
    metadata jsonb DEFAULT '{}'::jsonb NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT collaboration_sessions_status_check CHECK ((status = ANY (ARRAY['active'::text, 'completed'::text, 'cancelled'::text])))
);

--
-- Name: email_ingest_state; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.email_ingest_state (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    mailbox text NOT NULL,
    last_uid bigint DEFAULT 0 NOT NULL,
    last_synced_at timestamp with time zone,
    status text DEFAULT 'idle'::text NOT NULL,
    error_message text,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT email_ingest_state_status_check CHECK ((status = ANY (ARRAY['idle'::text, 'running'::text, 'failed'::text])))
);

--
-- Name: financial_daily_summaries; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.financial_daily_summaries (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    symbol text NOT NULL,
    day date NOT NULL,
    observations integer NOT NULL,
    open numeric(20,8) NOT NULL,
    high numeric(20,8) NOT NULL,
    low numeric(20,8) NOT NULL,
    close numeric(20,8) NOT NULL,
    volume numeric(28,4),
    change_pct numeric(12,4),
    vwap numeric(20,8),
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT financial_daily_summaries_observations_check CHECK ((observations > 0))
);

--
-- Name: financial_data; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.financial_data (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    symbol text NOT NULL,
    source text NOT NULL,
    price numeric(20,8) NOT NULL,
    volume numeric(24,4),
    observed_at timestamp with time zone NOT NULL,
    data jsonb DEFAULT '{}'::jsonb NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL
);

--
-- Name: knowledge_graph_edges; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.knowledge_graph_edges (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    source_agent_id uuid NOT NULL,
    target_agent_id uuid NOT NULL,
    messages integer NOT NULL,
    weight numeric(6,5) NOT NULL,
    last_interaction_at timestamp with time zone NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT knowledge_graph_edges_messages_check CHECK ((messages > 0)),
    CONSTRAINT knowledge_graph_edges_weight_check CHECK (((weight > (0)::numeric) AND (weight <= (1)::numeric)))
);

--
-- Name: llm_cache_metrics; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.llm_cache_metrics (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    model text NOT NULL,
    period_start timestamp with time zone NOT NULL,
    period_end timestamp with time zone NOT NULL,
    requests integer DEFAULT 0 NOT NULL,
    cache_hits integer DEFAULT 0 NOT NULL,
    hit_rate numeric(5,4),
    avg_latency_ms numeric(12,2),
    total_cost_usd numeric(14,6) DEFAULT 0 NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT llm_cache_metrics_check CHECK ((period_end > period_start))
);

--
-- Name: llm_collaborations; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.llm_collaborations (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    agent_id uuid,
    task_id uuid,
    prompt text NOT NULL,
    local_model text,
    cloud_model text,
    local_response text,
    cloud_response text,
    chosen text,
    local_quality numeric(4,3),
    cloud_quality numeric(4,3),
    local_latency_ms integer,
    cloud_latency_ms integer,
    cost_usd numeric(12,6) DEFAULT 0 NOT NULL,
    cache_hit boolean DEFAULT false NOT NULL,
    metadata jsonb DEFAULT '{}'::jsonb NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT llm_collaborations_chosen_check CHECK ((chosen = ANY (ARRAY['local'::text, 'cloud'::text]))),
    CONSTRAINT llm_collaborations_cloud_latency_ms_check CHECK ((cloud_latency_ms >= 0)),
    CONSTRAINT llm_collaborations_cloud_quality_check CHECK (((cloud_quality >= (0)::numeric) AND (cloud_quality <= (1)::numeric))),
    CONSTRAINT llm_collaborations_cost_usd_check CHECK ((cost_usd >= (0)::numeric)),
    CONSTRAINT llm_collaborations_local_latency_ms_check CHECK ((local_latency_ms >= 0)),
    CONSTRAINT llm_collaborations_local_quality_check CHECK (((local_quality >= (0)::numeric) AND (local_quality <= (1)::numeric)))
);

--
-- Name: local_llm_learning_examples; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.local_llm_learning_examples (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    collaboration_id uuid,
    batch_id uuid,
    input text NOT NULL,
    output text NOT NULL,
    quality numeric(4,3),
    metadata jsonb DEFAULT '{}'::jsonb NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT local_llm_learning_examples_quality_check CHECK (((quality >= (0)::numeric) AND (quality <= (1)::numeric)))
);

--
-- Name: local_llm_training_batches; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.local_llm_training_batches (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    model_name text NOT NULL,
    status text DEFAULT 'pending'::text NOT NULL,
    example_count integer DEFAULT 0 NOT NULL,
    metrics jsonb DEFAULT '{}'::jsonb NOT NULL,
    started_at timestamp with time zone,
    completed_at timestamp with time zone,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT local_llm_training_batches_example_count_check CHECK ((example_count >= 0)),
    CONSTRAINT local_llm_training_batches_status_check CHECK ((status = ANY (ARRAY['pending'::text, 'training'::text, 'completed'::text, 'failed'::text])))
);

--
-- Name: memory_episodic; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.memory_episodic (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    agent_id uuid NOT NULL,
    topic text NOT NULL,
    content text NOT NULL,
    importance numeric(4,3) DEFAULT 0.5 NOT NULL,
    metadata jsonb DEFAULT '{}'::jsonb NOT NULL,
    occurred_at timestamp with time zone DEFAULT now() NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT memory_episodic_importance_check CHECK (((importance >= (0)::numeric) AND (importance <= (1)::numeric)))
);

--
-- Name: memory_semantic; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.memory_semantic (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    agent_id uuid NOT NULL,
    topic text NOT NULL,
    summary text NOT NULL,
    source_count integer DEFAULT 0 NOT NULL,
    metadata jsonb DEFAULT '{}'::jsonb NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT memory_semantic_source_count_check CHECK ((source_count >= 0))
);

--
-- Name: sessions; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.sessions (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    name text NOT NULL,
    status text DEFAULT 'active'::text NOT NULL,
    metadata jsonb DEFAULT '{}'::jsonb NOT NULL,
    started_at timestamp with time zone DEFAULT now() NOT NULL,
    ended_at timestamp with time zone,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT sessions_status_check CHECK ((status = ANY (ARRAY['active'::text, 'paused'::text, 'closed'::text])))
);

--
-- Name: task_dependencies; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.task_dependencies (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    task_id uuid NOT NULL,
    depends_on_task_id uuid NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT task_dependencies_check CHECK ((task_id <> depends_on_task_id))
);

--
-- Name: tasks; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.tasks (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    agent_id uuid,
    title text NOT NULL,
    description text,
    status text DEFAULT 'pending'::text NOT NULL,
    priority integer DEFAULT 0 NOT NULL,
    required_capability text,
    payload jsonb DEFAULT '{}'::jsonb NOT NULL,
    result jsonb,
    error_message text,
    started_at timestamp with time zone,
    completed_at timestamp with time zone,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    source_job_id bigint,
    CONSTRAINT tasks_status_check CHECK ((status = ANY (ARRAY['pending'::text, 'in_progress'::text, 'completed'::text, 'failed'::text]))),
    CONSTRAINT tasks_title_check CHECK (((length(title) >= 1) AND (length(title) <= 500)))
);

--
-- Name: COLUMN tasks.source_job_id; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.tasks.source_job_id IS 'The cesar.job_queue job that created this task; unique, so a retried job creates one task.';

--
-- Name: capture_stores capture_stores_pkey; Type: CONSTRAINT; Schema: cesar; Owner: -
--

ALTER TABLE ONLY cesar.capture_stores
    ADD CONSTRAINT capture_stores_pkey PRIMARY KEY (id);

--
-- Name: captures captures_pkey; Type: CONSTRAINT; Schema: cesar; Owner: -
--

ALTER TABLE ONLY cesar.captures
    ADD CONSTRAINT captures_pkey PRIMARY KEY (statement_id, chunk);

--
-- Name: event_log event_log_pkey; Type: CONSTRAINT; Schema: cesar; Owner: -
--

ALTER TABLE ONLY cesar.event_log
    ADD CONSTRAINT event_log_pkey PRIMARY KEY (id);

--
-- Name: event_processor event_processor_pkey; Type: CONSTRAINT; Schema: cesar; Owner: -
--

ALTER TABLE ONLY cesar.event_processor
    ADD CONSTRAINT event_processor_pkey PRIMARY KEY (id);

--
-- Name: expansion_statements expansion_statements_pkey; Type: CONSTRAINT; Schema: cesar; Owner: -
--

ALTER TABLE ONLY cesar.expansion_statements
    ADD CONSTRAINT expansion_statements_pkey PRIMARY KEY (stores_digest);

--
-- Name: http_request_totals http_request_totals_pkey; Type: CONSTRAINT; Schema: cesar; Owner: -
--

ALTER TABLE ONLY cesar.http_request_totals
    ADD CONSTRAINT http_request_totals_pkey PRIMARY KEY (function_name, status_class);

--
-- Name: job_queue job_queue_pkey; Type: CONSTRAINT; Schema: cesar; Owner: -
--

ALTER TABLE ONLY cesar.job_queue
    ADD CONSTRAINT job_queue_pkey PRIMARY KEY (id);

--
-- Name: job_rate_limits job_rate_limits_pkey; Type: CONSTRAINT; Schema: cesar; Owner: -
--

ALTER TABLE ONLY cesar.job_rate_limits
    ADD CONSTRAINT job_rate_limits_pkey PRIMARY KEY (job_type, key_value);

--
-- Name: job_rate_windows job_rate_windows_pkey; Type: CONSTRAINT; Schema: cesar; Owner: -
--

ALTER TABLE ONLY cesar.job_rate_windows
    ADD CONSTRAINT job_rate_windows_pkey PRIMARY KEY (job_type, rate_key);

--
-- Name: job_totals job_totals_pkey; Type: CONSTRAINT; Schema: cesar; Owner: -
--

ALTER TABLE ONLY cesar.job_totals
    ADD CONSTRAINT job_totals_pkey PRIMARY KEY (job_type, slot);

--
-- Name: job_types job_types_pkey; Type: CONSTRAINT; Schema: cesar; Owner: -
--

ALTER TABLE ONLY cesar.job_types
    ADD CONSTRAINT job_types_pkey PRIMARY KEY (job_type);

--
-- Name: local_settings local_settings_pkey; Type: CONSTRAINT; Schema: cesar; Owner: -
--

ALTER TABLE ONLY cesar.local_settings
    ADD CONSTRAINT local_settings_pkey PRIMARY KEY (name);

--
-- Name: sync_conflicts sync_conflicts_pkey; Type: CONSTRAINT; Schema: cesar; Owner: -
--

ALTER TABLE ONLY cesar.sync_conflicts
    ADD CONSTRAINT sync_conflicts_pkey PRIMARY KEY (id);

--
-- Name: sync_outbox sync_outbox_pkey; Type: CONSTRAINT; Schema: cesar; Owner: -
--

ALTER TABLE ONLY cesar.sync_outbox
    ADD CONSTRAINT sync_outbox_pkey PRIMARY KEY (table_name, row_key);

--
-- Name: sync_state sync_state_pkey; Type: CONSTRAINT; Schema: cesar; Owner: -
--

ALTER TABLE ONLY cesar.sync_state
    ADD CONSTRAINT sync_state_pkey PRIMARY KEY (table_name, direction);

--
-- Name: sync_tables sync_tables_pkey; Type: CONSTRAINT; Schema: cesar; Owner: -
--

ALTER TABLE ONLY cesar.sync_tables
    ADD CONSTRAINT sync_tables_pkey PRIMARY KEY (table_name);

--
-- Name: watched_tables watched_tables_pkey; Type: CONSTRAINT; Schema: cesar; Owner: -
--

ALTER TABLE ONLY cesar.watched_tables
    ADD CONSTRAINT watched_tables_pkey PRIMARY KEY (table_name);

--
-- Name: webhook_deliveries webhook_deliveries_pkey; Type: CONSTRAINT; Schema: cesar; Owner: -
--

ALTER TABLE ONLY cesar.webhook_deliveries
    ADD CONSTRAINT webhook_deliveries_pkey PRIMARY KEY (id);

--
-- Name: workflow_executions workflow_executions_pkey; Type: CONSTRAINT; Schema: cesar; Owner: -
--

ALTER TABLE ONLY cesar.workflow_executions
    ADD CONSTRAINT workflow_executions_pkey PRIMARY KEY (id);

--
-- Name: workflow_schedules workflow_schedules_pkey; Type: CONSTRAINT; Schema: cesar; Owner: -
--

ALTER TABLE ONLY cesar.workflow_schedules
    ADD CONSTRAINT workflow_schedules_pkey PRIMARY KEY (template_id);

--
-- Name: workflow_templates workflow_templates_name_key; Type: CONSTRAINT; Schema: cesar; Owner: -
--

ALTER TABLE ONLY cesar.workflow_templates
    ADD CONSTRAINT workflow_templates_name_key UNIQUE (name);

--
-- Name: workflow_templates workflow_templates_pkey; Type: CONSTRAINT; Schema: cesar; Owner: -
--

ALTER TABLE ONLY cesar.workflow_templates
    ADD CONSTRAINT workflow_templates_pkey PRIMARY KEY (id);

--
-- Name: a2a_conversations a2a_conversations_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.a2a_conversations
    ADD CONSTRAINT a2a_conversations_pkey PRIMARY KEY (id);

--
-- Name: a2a_messages a2a_messages_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.a2a_messages
    ADD CONSTRAINT a2a_messages_pkey PRIMARY KEY (id);

--
-- Name: agent_events agent_events_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.agent_events
    ADD CONSTRAINT agent_events_pkey PRIMARY KEY (id);

--
-- Name: agent_sessions agent_sessions_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.agent_sessions
    ADD CONSTRAINT agent_sessions_pkey PRIMARY KEY (id);

--
-- Name: agent_sessions agent_sessions_session_id_agent_id_key; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.agent_sessions
    ADD CONSTRAINT agent_sessions_session_id_agent_id_key UNIQUE (session_id, agent_id);

--
-- Name: agents agents_mob_alias_key; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.agents
    ADD CONSTRAINT agents_mob_alias_key UNIQUE (mob_alias);

--
-- Name: agents agents_name_key; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.agents
    ADD CONSTRAINT agents_name_key UNIQUE (name);

--
-- Name: agents agents_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.agents
    ADD CONSTRAINT agents_pkey PRIMARY KEY (id);

--
-- Name: collaboration_sessions collaboration_sessions_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.collaboration_sessions
    ADD CONSTRAINT collaboration_sessions_pkey PRIMARY KEY (id);

--
-- Name: email_ingest_state email_ingest_state_mailbox_key; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.email_ingest_state
    ADD CONSTRAINT email_ingest_state_mailbox_key UNIQUE (mailbox);

--
-- Name: email_ingest_state email_ingest_state_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.email_ingest_state
    ADD CONSTRAINT email_ingest_state_pkey PRIMARY KEY (id);

--
-- Name: financial_daily_summaries financial_daily_summaries_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.financial_daily_summaries
    ADD CONSTRAINT financial_daily_summaries_pkey PRIMARY KEY (id);

--
-- Name: financial_daily_summaries financial_daily_summaries_symbol_day_key; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.financial_daily_summaries
    ADD CONSTRAINT financial_daily_summaries_symbol_day_key UNIQUE (symbol, day);

--
-- Name: financial_data financial_data_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.financial_data
    ADD CONSTRAINT financial_data_pkey PRIMARY KEY (id);

--
-- Name: financial_data financial_data_symbol_source_observed_at_key; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.financial_data
    ADD CONSTRAINT financial_data_symbol_source_observed_at_key UNIQUE (symbol, source, observed_at);

--
-- Name: ingestion_log ingestion_log_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.ingestion_log
    ADD CONSTRAINT ingestion_log_pkey PRIMARY KEY (id);

--
-- Name: knowledge_graph_edges knowledge_graph_edges_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.knowledge_graph_edges
    ADD CONSTRAINT knowledge_graph_edges_pkey PRIMARY KEY (id);

--
-- Name: knowledge_graph_edges knowledge_graph_edges_source_agent_id_target_agent_id_key; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.knowledge_graph_edges
    ADD CONSTRAINT knowledge_graph_edges_source_agent_id_target_agent_id_key UNIQUE (source_agent_id, target_agent_id);

--
-- Name: llm_cache_metrics llm_cache_metrics_model_period_start_key; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.llm_cache_metrics
    ADD CONSTRAINT llm_cache_metrics_model_period_start_key UNIQUE (model, period_start);

--
-- Name: llm_cache_metrics llm_cache_metrics_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.llm_cache_metrics
    ADD CONSTRAINT llm_cache_metrics_pkey PRIMARY KEY (id);

--
-- Name: llm_collaborations llm_collaborations_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.llm_collaborations
    ADD CONSTRAINT llm_collaborations_pkey PRIMARY KEY (id);

--
-- Name: local_llm_learning_examples local_llm_learning_examples_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.local_llm_learning_examples
    ADD CONSTRAINT local_llm_learning_examples_pkey PRIMARY KEY (id);

--
-- Name: local_llm_training_batches local_llm_training_batches_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.local_llm_training_batches
    ADD CONSTRAINT local_llm_training_batches_pkey PRIMARY KEY (id);

--
-- Name: memory_episodic memory_episodic_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.memory_episodic
    ADD CONSTRAINT memory_episodic_pkey PRIMARY KEY (id);

--
-- Name: memory_semantic memory_semantic_agent_id_topic_key; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.memory_semantic
    ADD CONSTRAINT memory_semantic_agent_id_topic_key UNIQUE (agent_id, topic);

--
-- Name: memory_semantic memory_semantic_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.memory_semantic
    ADD CONSTRAINT memory_semantic_pkey PRIMARY KEY (id);

--
-- Name: sessions sessions_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.sessions
    ADD CONSTRAINT sessions_pkey PRIMARY KEY (id);

--
-- Name: task_dependencies task_dependencies_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.task_dependencies
    ADD CONSTRAINT task_dependencies_pkey PRIMARY KEY (id);

--
-- Name: task_dependencies task_dependencies_task_id_depends_on_task_id_key; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.task_dependencies
    ADD CONSTRAINT task_dependencies_task_id_depends_on_task_id_key UNIQUE (task_id, depends_on_task_id);

--
-- Name: tasks tasks_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.tasks
    ADD CONSTRAINT tasks_pkey PRIMARY KEY (id);

--
-- Name: tasks tasks_source_job_id_key; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.tasks
    ADD CONSTRAINT tasks_source_job_id_key UNIQUE (source_job_id);

--
-- Name: capture_stores_active_idx; Type: INDEX; Schema: cesar; Owner: -
--

CREATE UNIQUE INDEX capture_stores_active_idx ON cesar.capture_stores USING btree (relid) WHERE (retired_at IS NULL);

--
-- Name: doorbell_calls_idx; Type: INDEX; Schema: cesar; Owner: -
--

CREATE INDEX doorbell_calls_idx ON cesar.doorbell_calls USING btree (target, called_at);

--
-- Name: event_log_dedup_idx; Type: INDEX; Schema: cesar; Owner: -
--

CREATE UNIQUE INDEX event_log_dedup_idx ON cesar.event_log USING btree (dedup_key) WHERE (dedup_key IS NOT NULL);

--
-- Name: event_log_pending_idx; Type: INDEX; Schema: cesar; Owner: -
--

CREATE INDEX event_log_pending_idx ON cesar.event_log USING btree (id) WHERE (status = ANY (ARRAY['pending'::text, 'processing'::text]));

--
-- Name: job_queue_claim_idx; Type: INDEX; Schema: cesar; Owner: -
--

CREATE INDEX job_queue_claim_idx ON cesar.job_queue USING btree (priority DESC, run_at, id) WHERE (status = 'pending'::text);

--
-- Name: job_queue_dedup_idx; Type: INDEX; Schema: cesar; Owner: -
--

CREATE UNIQUE INDEX job_queue_dedup_idx ON cesar.job_queue USING btree (dedup_key) WHERE ((dedup_key IS NOT NULL) AND (status = ANY (ARRAY['pending'::text, 'running'::text])));

--
-- Name: job_queue_execution_idx; Type: INDEX; Schema: cesar; Owner: -
--

CREATE INDEX job_queue_execution_idx ON cesar.job_queue USING btree (execution_id) WHERE (execution_id IS NOT NULL);

--
-- Name: job_queue_finished_idx; Type: INDEX; Schema: cesar; Owner: -
--

CREATE INDEX job_queue_finished_idx ON cesar.job_queue USING btree (status, finished_at) WHERE (finished_at IS NOT NULL);

--
-- Name: job_queue_key_waiting_idx; Type: INDEX; Schema: cesar; Owner: -
--

CREATE UNIQUE INDEX job_queue_key_waiting_idx ON cesar.job_queue USING btree (job_key) WHERE ((job_key IS NOT NULL) AND (status = 'pending'::text) AND (key_mode = ANY (ARRAY['replace'::text, 'debounce'::text])));

--
-- Name: job_queue_key_window_idx; Type: INDEX; Schema: cesar; Owner: -
--

CREATE UNIQUE INDEX job_queue_key_window_idx ON cesar.job_queue USING btree (job_key) WHERE (key_until IS NOT NULL);

--
-- Name: job_queue_lease_idx; Type: INDEX; Schema: cesar; Owner: -
--

CREATE INDEX job_queue_lease_idx ON cesar.job_queue USING btree (locked_until) WHERE (status = 'running'::text);

--
-- Name: job_queue_serial_idx; Type: INDEX; Schema: cesar; Owner: -
--

CREATE INDEX job_queue_serial_idx ON cesar.job_queue USING btree (serial_key, id) WHERE ((serial_key IS NOT NULL) AND (status = ANY (ARRAY['pending'::text, 'running'::text])));

--
-- Name: job_queue_type_status_idx; Type: INDEX; Schema: cesar; Owner: -
--

CREATE INDEX job_queue_type_status_idx ON cesar.job_queue USING btree (job_type, status) WHERE (status = ANY (ARRAY['pending'::text, 'running'::text]));

--
-- Name: mv_ingestion_errors_key; Type: INDEX; Schema: cesar; Owner: -
--

CREATE UNIQUE INDEX mv_ingestion_errors_key ON cesar.mv_ingestion_errors USING btree (source);

--
-- Name: mv_job_queue_backlog_key; Type: INDEX; Schema: cesar; Owner: -
--

CREATE UNIQUE INDEX mv_job_queue_backlog_key ON cesar.mv_job_queue_backlog USING btree (job_type, status);

--
-- Name: mv_sync_lag_key; Type: INDEX; Schema: cesar; Owner: -
--

CREATE UNIQUE INDEX mv_sync_lag_key ON cesar.mv_sync_lag USING btree (table_name, direction);

--
-- Name: sync_conflicts_table_idx; Type: INDEX; Schema: cesar; Owner: -
--

CREATE INDEX sync_conflicts_table_idx ON cesar.sync_conflicts USING btree (table_name, detected_at);

--
-- Name: sync_outbox_order_idx; Type: INDEX; Schema: cesar; Owner: -
--

CREATE INDEX sync_outbox_order_idx ON cesar.sync_outbox USING btree (table_name, change_id, row_key);

--
-- Name: workflow_executions_event_key; Type: INDEX; Schema: cesar; Owner: -
--

CREATE UNIQUE INDEX workflow_executions_event_key ON cesar.workflow_executions USING btree (event_id, template_id) WHERE (event_id IS NOT NULL);

--
-- Name: workflow_executions_slot_key; Type: INDEX; Schema: cesar; Owner: -
--

CREATE UNIQUE INDEX workflow_executions_slot_key ON cesar.workflow_executions USING btree (template_id, schedule_slot) WHERE (schedule_slot IS NOT NULL);

--
-- Name: workflow_executions_status_idx; Type: INDEX; Schema: cesar; Owner: -
--

CREATE INDEX workflow_executions_status_idx ON cesar.workflow_executions USING btree (status, created_at DESC);

--
-- Name: workflow_executions_template_idx; Type: INDEX; Schema: cesar; Owner: -
--

CREATE INDEX workflow_executions_template_idx ON cesar.workflow_executions USING btree (template_id, created_at DESC);

--
-- Name: workflow_schedules_next_due_at; Type: INDEX; Schema: cesar; Owner: -
--

CREATE INDEX workflow_schedules_next_due_at ON cesar.workflow_schedules USING btree (next_due_at);

--
-- Name: workflow_templates_event_idx; Type: INDEX; Schema: cesar; Owner: -
--

CREATE INDEX workflow_templates_event_idx ON cesar.workflow_templates USING btree (((trigger ->> 'table'::text))) WHERE (enabled AND ((trigger ->> 'type'::text) = 'database_event'::text));

--
-- Name: a2a_conversations_last_message_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX a2a_conversations_last_message_idx ON public.a2a_conversations USING btree (last_message_at DESC);

--
-- Name: a2a_conversations_participants_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX a2a_conversations_participants_idx ON public.a2a_conversations USING gin (participant_ids);

--
-- Name: a2a_messages_conversation_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX a2a_messages_conversation_idx ON public.a2a_messages USING btree (conversation_id, created_at);

--
-- Name: a2a_messages_pending_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX a2a_messages_pending_idx ON public.a2a_messages USING btree (created_at) WHERE (status = 'pending'::text);

--
-- Name: a2a_messages_receiver_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX a2a_messages_receiver_idx ON public.a2a_messages USING btree (receiver_id, created_at DESC);

--
-- Name: a2a_messages_sender_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX a2a_messages_sender_idx ON public.a2a_messages USING btree (sender_id, created_at DESC);

--
-- Name: agent_events_agent_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX agent_events_agent_idx ON public.agent_events USING btree (agent_id, created_at DESC);

--
-- Name: agent_events_created_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX agent_events_created_idx ON public.agent_events USING btree (created_at);

--
-- Name: agent_sessions_agent_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX agent_sessions_agent_idx ON public.agent_sessions USING btree (agent_id);

--
-- Name: agents_capabilities_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX agents_capabilities_idx ON public.agents USING gin (capabilities);

--
-- Name: agents_status_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX agents_status_idx ON public.agents USING btree (status);

--
-- Name: agents_type_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX agents_type_idx ON public.agents USING btree (type);

--
-- Name: collaboration_sessions_participants_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX collaboration_sessions_participants_idx ON public.collaboration_sessions USING gin (participant_ids);

--
-- Name: collaboration_sessions_session_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX collaboration_sessions_session_idx ON public.collaboration_sessions USING btree (session_id);

--
-- Name: financial_daily_summaries_day_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX financial_daily_summaries_day_idx ON public.financial_daily_summaries USING btree (day);

--
-- Name: financial_data_observed_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX financial_data_observed_idx ON public.financial_data USING btree (observed_at);

--
-- Name: ingestion_log_created_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ingestion_log_created_idx ON public.ingestion_log USING btree (created_at);

--
-- Name: ingestion_log_errors_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ingestion_log_errors_idx ON public.ingestion_log USING btree (source, created_at) WHERE (status = 'error'::text);

--
-- Name: knowledge_graph_edges_target_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX knowledge_graph_edges_target_idx ON public.knowledge_graph_edges USING btree (target_agent_id);

--
-- Name: llm_collaborations_agent_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX llm_collaborations_agent_idx ON public.llm_collaborations USING btree (agent_id, created_at);

--
-- Name: llm_collaborations_created_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX llm_collaborations_created_idx ON public.llm_collaborations USING btree (created_at);

--
-- Name: local_llm_learning_examples_unbatched_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX local_llm_learning_examples_unbatched_idx ON public.local_llm_learning_examples USING btree (created_at) WHERE (batch_id IS NULL);

--
-- Name: memory_episodic_agent_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX memory_episodic_agent_idx ON public.memory_episodic USING btree (agent_id, occurred_at);

--
-- Name: memory_episodic_occurred_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX memory_episodic_occurred_idx ON public.memory_episodic USING btree (occurred_at);

--
-- Name: sessions_status_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX sessions_status_idx ON public.sessions USING btree (status, started_at);

--
-- Name: task_dependencies_depends_on_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX task_dependencies_depends_on_idx ON public.task_dependencies USING btree (depends_on_task_id);

--
-- Name: tasks_agent_created_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX tasks_agent_created_idx ON public.tasks USING btree (agent_id, created_at);

--
-- Name: tasks_completed_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX tasks_completed_idx ON public.tasks USING btree (completed_at) WHERE (status = 'completed'::text);

--
-- Name: tasks_created_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX tasks_created_idx ON public.tasks USING btree (created_at);

--
-- Name: tasks_status_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX tasks_status_idx ON public.tasks USING btree (status, created_at);

--
-- Name: capture_stores forget_expansion_statements; Type: TRIGGER; Schema: cesar; Owner: -
--

CREATE TRIGGER forget_expansion_statements AFTER INSERT OR DELETE OR UPDATE OR TRUNCATE ON cesar.capture_stores FOR EACH STATEMENT EXECUTE FUNCTION cesar.forget_expansion_statements();

--
-- Name: job_queue job_queue_follow_execution; Type: TRIGGER; Schema: cesar; Owner: -
--

CREATE TRIGGER job_queue_follow_execution AFTER UPDATE OF status ON cesar.job_queue FOR EACH ROW WHEN (((new.execution_id IS NOT NULL) AND (old.status IS DISTINCT FROM new.status))) EXECUTE FUNCTION cesar.follow_execution_status();

--
-- Name: job_rate_limits job_rate_limits_touch; Type: TRIGGER; Schema: cesar; Owner: -
--

CREATE TRIGGER job_rate_limits_touch BEFORE UPDATE ON cesar.job_rate_limits FOR EACH ROW EXECUTE FUNCTION cesar.touch_updated_at();

--
-- Name: job_types job_types_touch; Type: TRIGGER; Schema: cesar; Owner: -
--

CREATE TRIGGER job_types_touch BEFORE UPDATE ON cesar.job_types FOR EACH ROW EXECUTE FUNCTION cesar.touch_updated_at();

--
-- Name: local_settings local_settings_touch; Type: TRIGGER; Schema: cesar; Owner: -
--

CREATE TRIGGER local_settings_touch BEFORE UPDATE ON cesar.local_settings FOR EACH ROW EXECUTE FUNCTION cesar.touch_updated_at();

--
-- Name: sync_tables recapture_mirrored_table; Type: TRIGGER; Schema: cesar; Owner: -
--

CREATE TRIGGER recapture_mirrored_table AFTER INSERT OR DELETE OR UPDATE ON cesar.sync_tables FOR EACH ROW EXECUTE FUNCTION cesar.recapture_mirrored_table();

--
-- Name: workflow_schedules workflow_schedules_next_due; Type: TRIGGER; Schema: cesar; Owner: -
--

CREATE TRIGGER workflow_schedules_next_due BEFORE INSERT OR UPDATE OF covered_until, next_due_at ON cesar.workflow_schedules FOR EACH ROW EXECUTE FUNCTION cesar.keep_next_due_at();

--
-- Name: workflow_templates workflow_templates_schedule; Type: TRIGGER; Schema: cesar; Owner: -
--

CREATE TRIGGER workflow_templates_schedule AFTER INSERT OR DELETE OR UPDATE ON cesar.workflow_templates FOR EACH ROW EXECUTE FUNCTION cesar.reconcile_workflow_schedule();

--
-- Name: workflow_templates workflow_templates_touch; Type: TRIGGER; Schema: cesar; Owner: -
--

CREATE TRIGGER workflow_templates_touch BEFORE UPDATE ON cesar.workflow_templates FOR EACH ROW EXECUTE FUNCTION cesar.touch_updated_at();

--
-- Name: a2a_conversations a2a_conversations_touch_updated_at; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER a2a_conversations_touch_updated_at BEFORE UPDATE ON public.a2a_conversations FOR EACH ROW EXECUTE FUNCTION cesar.touch_updated_at();

--
-- Name: a2a_messages a2a_messages_touch_updated_at; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER a2a_messages_touch_updated_at BEFORE UPDATE ON public.a2a_messages FOR EACH ROW EXECUTE FUNCTION cesar.touch_updated_at();

--
-- Name: agent_events agent_events_touch_updated_at; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER agent_events_touch_updated_at BEFORE UPDATE ON public.agent_events FOR EACH ROW EXECUTE FUNCTION cesar.touch_updated_at();

--
-- Name: agent_sessions agent_sessions_touch_updated_at; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER agent_sessions_touch_updated_at BEFORE UPDATE ON public.agent_sessions FOR EACH ROW EXECUTE FUNCTION cesar.touch_updated_at();

--
-- Name: agents agents_touch_updated_at; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER agents_touch_updated_at BEFORE UPDATE ON public.agents FOR EACH ROW EXECUTE FUNCTION cesar.touch_updated_at();

--
-- Name: a2a_conversations cesar_capture_delete; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER cesar_capture_delete AFTER DELETE ON public.a2a_conversations REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION cesar.capture_1();

--
-- Name: a2a_messages cesar_capture_delete; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER cesar_capture_delete AFTER DELETE ON public.a2a_messages REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION cesar.capture_2();

--
-- Name: agent_events cesar_capture_delete; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER cesar_capture_delete AFTER DELETE ON public.agent_events REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION cesar.capture_3();

--
-- Name: agent_sessions cesar_capture_delete; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER cesar_capture_delete AFTER DELETE ON public.agent_sessions REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION cesar.capture_4();

--
-- Name: agents cesar_capture_delete; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER cesar_capture_delete AFTER DELETE ON public.agents REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION cesar.capture_5();

--
-- Name: collaboration_sessions cesar_capture_delete; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER cesar_capture_delete AFTER DELETE ON public.collaboration_sessions REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION cesar.capture_6();

--
-- Name: email_ingest_state cesar_capture_delete; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER cesar_capture_delete AFTER DELETE ON public.email_ingest_state REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION cesar.capture_7();

--
-- Name: financial_daily_summaries cesar_capture_delete; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER cesar_capture_delete AFTER DELETE ON public.financial_daily_summaries REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION cesar.capture_8();

--
-- Name: financial_data cesar_capture_delete; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER cesar_capture_delete AFTER DELETE ON public.financial_data REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION cesar.capture_9();

--
-- Name: ingestion_log cesar_capture_delete; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER cesar_capture_delete AFTER DELETE ON public.ingestion_log REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION cesar.capture_10();

--
-- Name: knowledge_graph_edges cesar_capture_delete; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER cesar_capture_delete AFTER DELETE ON public.knowledge_graph_edges REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION cesar.capture_11();

--
-- Name: llm_cache_metrics cesar_capture_delete; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER cesar_capture_delete AFTER DELETE ON public.llm_cache_metrics REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION cesar.capture_12();

--
-- Name: llm_collaborations cesar_capture_delete; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER cesar_capture_delete AFTER DELETE ON public.llm_collaborations REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION cesar.capture_13();

--
-- Name: local_llm_learning_examples cesar_capture_delete; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER cesar_capture_delete AFTER DELETE ON public.local_llm_learning_examples REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION cesar.capture_14();

--
-- Name: local_llm_training_batches cesar_capture_delete; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER cesar_capture_delete AFTER DELETE ON public.local_llm_training_batches REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION cesar.capture_15();

--
-- Name: memory_episodic cesar_capture_delete; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER cesar_capture_delete AFTER DELETE ON public.memory_episodic REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION cesar.capture_16();

--
-- Name: memory_semantic cesar_capture_delete; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER cesar_capture_delete AFTER DELETE ON public.memory_semantic REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION cesar.capture_17();

--
-- Name: sessions cesar_capture_delete; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER cesar_capture_delete AFTER DELETE ON public.sessions REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION cesar.capture_18();

--
-- Name: task_dependencies cesar_capture_delete; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER cesar_capture_delete AFTER DELETE ON public.task_dependencies REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION cesar.capture_19();

--
-- Name: tasks cesar_capture_delete; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER cesar_capture_delete AFTER DELETE ON public.tasks REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION cesar.capture_20();

--
-- Name: a2a_conversations cesar_capture_insert; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER cesar_capture_insert AFTER INSERT ON public.a2a_conversations REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION cesar.capture_1();

--
-- Name: a2a_messages cesar_capture_insert; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER cesar_capture_insert AFTER INSERT ON public.a2a_messages REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION cesar.capture_2();

--
-- Name: agent_events cesar_capture_insert; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER cesar_capture_insert AFTER INSERT ON public.agent_events REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION cesar.capture_3();

--
-- Name: agent_sessions cesar_capture_insert; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER cesar_capture_insert AFTER INSERT ON public.agent_sessions REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION cesar.capture_4();

--
-- Name: agents cesar_capture_insert; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER cesar_capture_insert AFTER INSERT ON public.agents REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION cesar.capture_5();

--
-- Name: collaboration_sessions cesar_capture_insert; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER cesar_capture_insert AFTER INSERT ON public.collaboration_sessions REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION cesar.capture_6();

--
-- Name: email_ingest_state cesar_capture_insert; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER cesar_capture_insert AFTER INSERT ON public.email_ingest_state REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION cesar.capture_7();

--
-- Name: financial_daily_summaries cesar_capture_insert; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER cesar_capture_insert AFTER INSERT ON public.financial_daily_summaries REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION cesar.capture_8();

--
-- Name: financial_data cesar_capture_insert; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER cesar_capture_insert AFTER INSERT ON public.financial_data REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION cesar.capture_9();

--
-- Name: ingestion_log cesar_capture_insert; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER cesar_capture_insert AFTER INSERT ON public.ingestion_log REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION cesar.capture_10();

--
-- Name: knowledge_graph_edges cesar_capture_insert; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER cesar_capture_insert AFTER INSERT ON public.knowledge_graph_edges REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION cesar.capture_11();

--
-- Name: llm_cache_metrics cesar_capture_insert; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER cesar_capture_insert AFTER INSERT ON public.llm_cache_metrics REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION cesar.capture_12();

--
-- Name: llm_collaborations cesar_capture_insert; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER cesar_capture_insert AFTER INSERT ON public.llm_collaborations REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION cesar.capture_13();

--
-- Name: local_llm_learning_examples cesar_capture_insert; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER cesar_capture_insert AFTER INSERT ON public.local_llm_learning_examples REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION cesar.capture_14();

--
-- Name: local_llm_training_batches cesar_capture_insert; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER cesar_capture_insert AFTER INSERT ON public.local_llm_training_batches REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION cesar.capture_15();

--
-- Name: memory_episodic cesar_capture_insert; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER cesar_capture_insert AFTER INSERT ON public.memory_episodic REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION cesar.capture_16();

--
-- Name: memory_semantic cesar_capture_insert; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER cesar_capture_insert AFTER INSERT ON public.memory_semantic REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION cesar.capture_17();

--
-- Name: sessions cesar_capture_insert; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER cesar_capture_insert AFTER INSERT ON public.sessions REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION cesar.capture_18();

--
-- Name: task_dependencies cesar_capture_insert; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER cesar_capture_insert AFTER INSERT ON public.task_dependencies REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION cesar.capture_19();

--
-- Name: tasks cesar_capture_insert; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER cesar_capture_insert AFTER INSERT ON public.tasks REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION cesar.capture_20();

--
-- Name: a2a_conversations cesar_capture_update; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER cesar_capture_update AFTER UPDATE ON public.a2a_conversations REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION cesar.capture_1();

--
-- Name: a2a_messages cesar_capture_update; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER cesar_capture_update AFTER UPDATE ON public.a2a_messages REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION cesar.capture_2();

--
-- Name: agent_events cesar_capture_update; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER cesar_capture_update AFTER UPDATE ON public.agent_events REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION cesar.capture_3();

--
-- Name: agent_sessions cesar_capture_update; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER cesar_capture_update AFTER UPDATE ON public.agent_sessions REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION cesar.capture_4();

--
-- Name: agents cesar_capture_update; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER cesar_capture_update AFTER UPDATE ON public.agents REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION cesar.capture_5();

--
-- Name: collaboration_sessions cesar_capture_update; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER cesar_capture_update AFTER UPDATE ON public.collaboration_sessions REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION cesar.capture_6();

--
-- Name: email_ingest_state cesar_capture_update; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER cesar_capture_update AFTER UPDATE ON public.email_ingest_state REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION cesar.capture_7();

--
-- Name: financial_daily_summaries cesar_capture_update; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER cesar_capture_update AFTER UPDATE ON public.financial_daily_summaries REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION cesar.capture_8();

--
-- Name: financial_data cesar_capture_update; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER cesar_capture_update AFTER UPDATE ON public.financial_data REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION cesar.capture_9();

--
-- Name: ingestion_log cesar_capture_update; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER cesar_capture_update AFTER UPDATE ON public.ingestion_log REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION cesar.capture_10();

--
-- Name: knowledge_graph_edges cesar_capture_update; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER cesar_capture_update AFTER UPDATE ON public.knowledge_graph_edges REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION cesar.capture_11();

--
-- Name: llm_cache_metrics cesar_capture_update; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER cesar_capture_update AFTER UPDATE ON public.llm_cache_metrics REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION cesar.capture_12();

--
-- Name: llm_collaborations cesar_capture_update; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER cesar_capture_update AFTER UPDATE ON public.llm_collaborations REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION cesar.capture_13();

--
-- Name: local_llm_learning_examples cesar_capture_update; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER cesar_capture_update AFTER UPDATE ON public.local_llm_learning_examples REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION cesar.capture_14();

--
-- Name: local_llm_training_batches cesar_capture_update; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER cesar_capture_update AFTER UPDATE ON public.local_llm_training_batches REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION cesar.capture_15();

--
-- Name: memory_episodic cesar_capture_update; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER cesar_capture_update AFTER UPDATE ON public.memory_episodic REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION cesar.capture_16();

--
-- Name: memory_semantic cesar_capture_update; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER cesar_capture_update AFTER UPDATE ON public.memory_semantic REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION cesar.capture_17();

--
-- Name: sessions cesar_capture_update; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER cesar_capture_update AFTER UPDATE ON public.sessions REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION cesar.capture_18();

--
-- Name: task_dependencies cesar_capture_update; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER cesar_capture_update AFTER UPDATE ON public.task_dependencies REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION cesar.capture_19();

--
-- Name: tasks cesar_capture_update; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER cesar_capture_update AFTER UPDATE ON public.tasks REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION cesar.capture_20();

--
-- Name: a2a_conversations cesar_refuse_truncate; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER cesar_refuse_truncate BEFORE TRUNCATE ON public.a2a_conversations FOR EACH STATEMENT EXECUTE FUNCTION cesar.refuse_truncate();

--
-- Name: a2a_messages cesar_refuse_truncate; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER cesar_refuse_truncate BEFORE TRUNCATE ON public.a2a_messages FOR EACH STATEMENT EXECUTE FUNCTION cesar.refuse_truncate();

--
-- Name: agent_events cesar_refuse_truncate; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER cesar_refuse_truncate BEFORE TRUNCATE ON public.agent_events FOR EACH STATEMENT EXECUTE FUNCTION cesar.refuse_truncate();

--
-- Name: agent_sessions cesar_refuse_truncate; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER cesar_refuse_truncate BEFORE TRUNCATE ON public.agent_sessions FOR EACH STATEMENT EXECUTE FUNCTION cesar.refuse_truncate();

--
-- Name: agents cesar_refuse_truncate; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER cesar_refuse_truncate BEFORE TRUNCATE ON public.agents FOR EACH STATEMENT EXECUTE FUNCTION cesar.refuse_truncate();

--
-- Name: collaboration_sessions cesar_refuse_truncate; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER cesar_refuse_truncate BEFORE TRUNCATE ON public.collaboration_sessions FOR EACH STATEMENT EXECUTE FUNCTION cesar.refuse_truncate();

--
-- Name: email_ingest_state cesar_refuse_truncate; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER cesar_refuse_truncate BEFORE TRUNCATE ON public.email_ingest_state FOR EACH STATEMENT EXECUTE FUNCTION cesar.refuse_truncate();

--
-- Name: financial_daily_summaries cesar_refuse_truncate; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER cesar_refuse_truncate BEFORE TRUNCATE ON public.financial_daily_summaries FOR EACH STATEMENT EXECUTE FUNCTION cesar.refuse_truncate();

--
-- Name: financial_data cesar_refuse_truncate; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER cesar_refuse_truncate BEFORE TRUNCATE ON public.financial_data FOR EACH STATEMENT EXECUTE FUNCTION cesar.refuse_truncate();

--
-- Name: ingestion_log cesar_refuse_truncate; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER cesar_refuse_truncate BEFORE TRUNCATE ON public.ingestion_log FOR EACH STATEMENT EXECUTE FUNCTION cesar.refuse_truncate();

--
-- Name: knowledge_graph_edges cesar_refuse_truncate; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER cesar_refuse_truncate BEFORE TRUNCATE ON public.knowledge_graph_edges FOR EACH STATEMENT EXECUTE FUNCTION cesar.refuse_truncate();

--
-- Name: llm_cache_metrics cesar_refuse_truncate; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER cesar_refuse_truncate BEFORE TRUNCATE ON public.llm_cache_metrics FOR EACH STATEMENT EXECUTE FUNCTION cesar.refuse_truncate();

--
-- Name: llm_collaborations cesar_refuse_truncate; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER cesar_refuse_truncate BEFORE TRUNCATE ON public.llm_collaborations FOR EACH STATEMENT EXECUTE FUNCTION cesar.refuse_truncate();

--
-- Name: local_llm_learning_examples cesar_refuse_truncate; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER cesar_refuse_truncate BEFORE TRUNCATE ON public.local_llm_learning_examples FOR EACH STATEMENT EXECUTE FUNCTION cesar.refuse_truncate();

--
-- Name: local_llm_training_batches cesar_refuse_truncate; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER cesar_refuse_truncate BEFORE TRUNCATE ON public.local_llm_training_batches FOR EACH STATEMENT EXECUTE FUNCTION cesar.refuse_truncate();

--
-- Name: memory_episodic cesar_refuse_truncate; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER cesar_refuse_truncate BEFORE TRUNCATE ON public.memory_episodic FOR EACH STATEMENT EXECUTE FUNCTION cesar.refuse_truncate();

--
-- Name: memory_semantic cesar_refuse_truncate; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER cesar_refuse_truncate BEFORE TRUNCATE ON public.memory_semantic FOR EACH STATEMENT EXECUTE FUNCTION cesar.refuse_truncate();

--
-- Name: sessions cesar_refuse_truncate; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER cesar_refuse_truncate BEFORE TRUNCATE ON public.sessions FOR EACH STATEMENT EXECUTE FUNCTION cesar.refuse_truncate();

--
-- Name: task_dependencies cesar_refuse_truncate; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER cesar_refuse_truncate BEFORE TRUNCATE ON public.task_dependencies FOR EACH STATEMENT EXECUTE FUNCTION cesar.refuse_truncate();

--
-- Name: tasks cesar_refuse_truncate; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER cesar_refuse_truncate BEFORE TRUNCATE ON public.tasks FOR EACH STATEMENT EXECUTE FUNCTION cesar.refuse_truncate();

--
-- Name: collaboration_sessions collaboration_sessions_touch_updated_at; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER collaboration_sessions_touch_updated_at BEFORE UPDATE ON public.collaboration_sessions FOR EACH ROW EXECUTE FUNCTION cesar.touch_updated_at();

--
-- Name: email_ingest_state email_ingest_state_touch_updated_at; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER email_ingest_state_touch_updated_at BEFORE UPDATE ON public.email_ingest_state FOR EACH ROW EXECUTE FUNCTION cesar.touch_updated_at();

--
-- Name: financial_daily_summaries financial_daily_summaries_touch_updated_at; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER financial_daily_summaries_touch_updated_at BEFORE UPDATE ON public.financial_daily_summaries FOR EACH ROW EXECUTE FUNCTION cesar.touch_updated_at();

--
-- Name: financial_data financial_data_touch_updated_at; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER financial_data_touch_updated_at BEFORE UPDATE ON public.financial_data FOR EACH ROW EXECUTE FUNCTION cesar.touch_updated_at();

--
-- Name: ingestion_log ingestion_log_touch_updated_at; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER ingestion_log_touch_updated_at BEFORE UPDATE ON public.ingestion_log FOR EACH ROW EXECUTE FUNCTION cesar.touch_updated_at();

--
-- Name: knowledge_graph_edges knowledge_graph_edges_touch_updated_at; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER knowledge_graph_edges_touch_updated_at BEFORE UPDATE ON public.knowledge_graph_edges FOR EACH ROW EXECUTE FUNCTION cesar.touch_updated_at();

--
-- Name: llm_cache_metrics llm_cache_metrics_touch_updated_at; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER llm_cache_metrics_touch_updated_at BEFORE UPDATE ON public.llm_cache_metrics FOR EACH ROW EXECUTE FUNCTION cesar.touch_updated_at();

--
-- Name: llm_collaborations llm_collaborations_touch_updated_at; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER llm_collaborations_touch_updated_at BEFORE UPDATE ON public.llm_collaborations FOR EACH ROW EXECUTE FUNCTION cesar.touch_updated_at();

--
-- Name: local_llm_learning_examples local_llm_learning_examples_touch_updated_at; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER local_llm_learning_examples_touch_updated_at BEFORE UPDATE ON public.local_llm_learning_examples FOR EACH ROW EXECUTE FUNCTION cesar.touch_updated_at();

--
-- Name: local_llm_training_batches local_llm_training_batches_touch_updated_at; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER local_llm_training_batches_touch_updated_at BEFORE UPDATE ON public.local_llm_training_batches FOR EACH ROW EXECUTE FUNCTION cesar.touch_updated_at();

--
-- Name: memory_episodic memory_episodic_touch_updated_at; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER memory_episodic_touch_updated_at BEFORE UPDATE ON public.memory_episodic FOR EACH ROW EXECUTE FUNCTION cesar.touch_updated_at();

--
-- Name: memory_semantic memory_semantic_touch_updated_at; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER memory_semantic_touch_updated_at BEFORE UPDATE ON public.memory_semantic FOR EACH ROW EXECUTE FUNCTION cesar.touch_updated_at();

--
-- Name: sessions sessions_touch_updated_at; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER sessions_touch_updated_at BEFORE UPDATE ON public.sessions FOR EACH ROW EXECUTE FUNCTION cesar.touch_updated_at();

--
-- Name: task_dependencies task_dependencies_touch_updated_at; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER task_dependencies_touch_updated_at BEFORE UPDATE ON public.task_dependencies FOR EACH ROW EXECUTE FUNCTION cesar.touch_updated_at();

--
-- Name: tasks tasks_touch_updated_at; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER tasks_touch_updated_at BEFORE UPDATE ON public.tasks FOR EACH ROW EXECUTE FUNCTION cesar.touch_updated_at();

--
-- Name: job_queue job_queue_execution_fk; Type: FK CONSTRAINT; Schema: cesar; Owner: -
--

ALTER TABLE ONLY cesar.job_queue
    ADD CONSTRAINT job_queue_execution_fk FOREIGN KEY (execution_id) REFERENCES cesar.workflow_executions(id) ON DELETE SET NULL;

--
-- Name: job_rate_limits job_rate_limits_job_type_fkey; Type: FK CONSTRAINT; Schema: cesar; Owner: -
--

ALTER TABLE ONLY cesar.job_rate_limits
    ADD CONSTRAINT job_rate_limits_job_type_fkey FOREIGN KEY (job_type) REFERENCES cesar.job_types(job_type) ON DELETE CASCADE;

--
-- Name: workflow_executions workflow_executions_event_id_fkey; Type: FK CONSTRAINT; Schema: cesar; Owner: -
--

ALTER TABLE ONLY cesar.workflow_executions
    ADD CONSTRAINT workflow_executions_event_id_fkey FOREIGN KEY (event_id) REFERENCES cesar.event_log(id) ON DELETE SET NULL;

--
-- Name: workflow_executions workflow_executions_template_id_fkey; Type: FK CONSTRAINT; Schema: cesar; Owner: -
--

ALTER TABLE ONLY cesar.workflow_executions
    ADD CONSTRAINT workflow_executions_template_id_fkey FOREIGN KEY (template_id) REFERENCES cesar.workflow_templates(id) ON DELETE CASCADE;

--
-- Name: workflow_schedules workflow_schedules_template_id_fkey; Type: FK CONSTRAINT; Schema: cesar; Owner: -
--

ALTER TABLE ONLY cesar.workflow_schedules
    ADD CONSTRAINT workflow_schedules_template_id_fkey FOREIGN KEY (template_id) REFERENCES cesar.workflow_templates(id) ON DELETE CASCADE;

--
-- Name: a2a_messages a2a_messages_conversation_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.a2a_messages
    ADD CONSTRAINT a2a_messages_conversation_id_fkey FOREIGN KEY (conversation_id) REFERENCES public.a2a_conversations(id) ON DELETE CASCADE;

--
-- Name: a2a_messages a2a_messages_receiver_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.a2a_messages
    ADD CONSTRAINT a2a_messages_receiver_id_fkey FOREIGN KEY (receiver_id) REFERENCES public.agents(id) ON DELETE SET NULL;

--
-- Name: a2a_messages a2a_messages_sender_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.a2a_messages
    ADD CONSTRAINT a2a_messages_sender_id_fkey FOREIGN KEY (sender_id) REFERENCES public.agents(id) ON DELETE CASCADE;

--
-- Name: agent_events agent_events_agent_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.agent_events
    ADD CONSTRAINT agent_events_agent_id_fkey FOREIGN KEY (agent_id) REFERENCES public.agents(id) ON DELETE CASCADE;

--
-- Name: agent_sessions agent_sessions_agent_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.agent_sessions
    ADD CONSTRAINT agent_sessions_agent_id_fkey FOREIGN KEY (agent_id) REFERENCES public.agents(id) ON DELETE CASCADE;

--
-- Name: agent_sessions agent_sessions_session_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.agent_sessions
    ADD CONSTRAINT agent_sessions_session_id_fkey FOREIGN KEY (session_id) REFERENCES public.sessions(id) ON DELETE CASCADE;

--
-- Name: collaboration_sessions collaboration_sessions_initiator_agent_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.collaboration_sessions
    ADD CONSTRAINT collaboration_sessions_initiator_agent_id_fkey FOREIGN KEY (initiator_agent_id) REFERENCES public.agents(id) ON DELETE SET NULL;

--
-- Name: collaboration_sessions collaboration_sessions_session_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.collaboration_sessions
    ADD CONSTRAINT collaboration_sessions_session_id_fkey FOREIGN KEY (session_id) REFERENCES public.sessions(id) ON DELETE SET NULL;

--
-- Name: knowledge_graph_edges knowledge_graph_edges_source_agent_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.knowledge_graph_edges
    ADD CONSTRAINT knowledge_graph_edges_source_agent_id_fkey FOREIGN KEY (source_agent_id) REFERENCES public.agents(id) ON DELETE CASCADE;

--
-- Name: knowledge_graph_edges knowledge_graph_edges_target_agent_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.knowledge_graph_edges
    ADD CONSTRAINT knowledge_graph_edges_target_agent_id_fkey FOREIGN KEY (target_agent_id) REFERENCES public.agents(id) ON DELETE CASCADE;

--
-- Name: llm_collaborations llm_collaborations_agent_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.llm_collaborations
    ADD CONSTRAINT llm_collaborations_agent_id_fkey FOREIGN KEY (agent_id) REFERENCES public.agents(id) ON DELETE SET NULL;

--
-- Name: llm_collaborations llm_collaborations_task_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.llm_collaborations
    ADD CONSTRAINT llm_collaborations_task_id_fkey FOREIGN KEY (task_id) REFERENCES public.tasks(id) ON DELETE SET NULL;

--
-- Name: local_llm_learning_examples local_llm_learning_examples_batch_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.local_llm_learning_examples
    ADD CONSTRAINT local_llm_learning_examples_batch_id_fkey FOREIGN KEY (batch_id) REFERENCES public.local_llm_training_batches(id) ON DELETE SET NULL;

--
-- Name: local_llm_learning_examples local_llm_learning_examples_collaboration_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.local_llm_learning_examples
    ADD CONSTRAINT local_llm_learning_examples_collaboration_id_fkey FOREIGN KEY (collaboration_id) REFERENCES public.llm_collaborations(id) ON DELETE SET NULL;

--
-- Name: memory_episodic memory_episodic_agent_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.memory_episodic
    ADD CONSTRAINT memory_episodic_agent_id_fkey FOREIGN KEY (agent_id) REFERENCES public.agents(id) ON DELETE CASCADE;

--
-- Name: memory_semantic memory_semantic_agent_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.memory_semantic
    ADD CONSTRAINT memory_semantic_agent_id_fkey FOREIGN KEY (agent_id) REFERENCES public.agents(id) ON DELETE CASCADE;

--
-- Name: task_dependencies task_dependencies_depends_on_task_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.task_dependencies
    ADD CONSTRAINT task_dependencies_depends_on_task_id_fkey FOREIGN KEY (depends_on_task_id) REFERENCES public.tasks(id) ON DELETE CASCADE;

--
-- Name: task_dependencies task_dependencies_task_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.task_dependencies
    ADD CONSTRAINT task_dependencies_task_id_fkey FOREIGN KEY (task_id) REFERENCES public.tasks(id) ON DELETE CASCADE;

--
-- Name: tasks tasks_agent_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.tasks
    ADD CONSTRAINT tasks_agent_id_fkey FOREIGN KEY (agent_id) REFERENCES public.agents(id) ON DELETE SET NULL;

--
-- Name: a2a_conversations; Type: ROW SECURITY; Schema: public; Owner: -
--

ALTER TABLE public.a2a_conversations ENABLE ROW LEVEL SECURITY;

--
-- Name: a2a_messages; Type: ROW SECURITY; Schema: public; Owner: -
--

ALTER TABLE public.a2a_messages ENABLE ROW LEVEL SECURITY;

--
-- Name: agent_events; Type: ROW SECURITY; Schema: public; Owner: -
--

ALTER TABLE public.agent_events ENABLE ROW LEVEL SECURITY;

--
-- Name: agent_sessions; Type: ROW SECURITY; Schema: public; Owner: -
--

ALTER TABLE public.agent_sessions ENABLE ROW LEVEL SECURITY;

--
-- Name: agents; Type: ROW SECURITY; Schema: public; Owner: -
--

ALTER TABLE public.agents ENABLE ROW LEVEL SECURITY;

--
-- Name: collaboration_sessions; Type: ROW SECURITY; Schema: public; Owner: -
--

ALTER TABLE public.collaboration_sessions ENABLE ROW LEVEL SECURITY;

--
-- Name: email_ingest_state; Type: ROW SECURITY; Schema: public; Owner: -
--

ALTER TABLE public.email_ingest_state ENABLE ROW LEVEL SECURITY;

--
-- Name: financial_daily_summaries; Type: ROW SECURITY; Schema: public; Owner: -
--

ALTER TABLE public.financial_daily_summaries ENABLE ROW LEVEL SECURITY;

--
-- Name: financial_data; Type: ROW SECURITY; Schema: public; Owner: -
--

ALTER TABLE public.financial_data ENABLE ROW LEVEL SECURITY;

--
-- Name: ingestion_log; Type: ROW SECURITY; Schema: public; Owner: -
--

ALTER TABLE public.ingestion_log ENABLE ROW LEVEL SECURITY;

--
-- Name: knowledge_graph_edges; Type: ROW SECURITY; Schema: public; Owner: -
--

ALTER TABLE public.knowledge_graph_edges ENABLE ROW LEVEL SECURITY;

--
-- Name: llm_cache_metrics; Type: ROW SECURITY; Schema: public; Owner: -
--

ALTER TABLE public.llm_cache_metrics ENABLE ROW LEVEL SECURITY;

--
-- Name: llm_collaborations; Type: ROW SECURITY; Schema: public; Owner: -
--

ALTER TABLE public.llm_collaborations ENABLE ROW LEVEL SECURITY;

--
-- Name: local_llm_learning_examples; Type: ROW SECURITY; Schema: public; Owner: -
--

ALTER TABLE public.local_llm_learning_examples ENABLE ROW LEVEL SECURITY;

--
-- Name: local_llm_training_batches; Type: ROW SECURITY; Schema: public; Owner: -
--

ALTER TABLE public.local_llm_training_batches ENABLE ROW LEVEL SECURITY;

--
-- Name: memory_episodic; Type: ROW SECURITY; Schema: public; Owner: -
--

ALTER TABLE public.memory_episodic ENABLE ROW LEVEL SECURITY;

--
-- Name: memory_semantic; Type: ROW SECURITY; Schema: public; Owner: -
--

ALTER TABLE public.memory_semantic ENABLE ROW LEVEL SECURITY;

--
-- Name: sessions; Type: ROW SECURITY; Schema: public; Owner: -
--

ALTER TABLE public.sessions ENABLE ROW LEVEL SECURITY;

--
-- Name: task_dependencies; Type: ROW SECURITY; Schema: public; Owner: -
--

ALTER TABLE public.task_dependencies ENABLE ROW LEVEL SECURITY;

--
-- Name: tasks; Type: ROW SECURITY; Schema: public; Owner: -
--

ALTER TABLE public.tasks ENABLE ROW LEVEL SECURITY;

--
-- Name: SCHEMA cesar; Type: ACL; Schema: -; Owner: -
--

GRANT USAGE ON SCHEMA cesar TO service_role;

--
-- Name: SCHEMA public; Type: ACL; Schema: -; Owner: -
--

GRANT USAGE ON SCHEMA public TO anon;
GRANT USAGE ON SCHEMA public TO authenticated;
GRANT USAGE ON SCHEMA public TO service_role;

--
-- Name: FUNCTION action_jobs(actions jsonb); Type: ACL; Schema: cesar; Owner: -
--

REVOKE ALL ON FUNCTION cesar.action_jobs(actions jsonb) FROM PUBLIC;
GRANT ALL ON FUNCTION cesar.action_jobs(actions jsonb) TO service_role;

--
-- Name: PROCEDURE await_jobs(IN worker text, IN batch_size integer, IN job_types text[], IN default_lease_seconds integer, IN start_count integer, IN timeout_ms integer, INOUT step jsonb); Type: ACL; Schema: cesar; Owner: -
--

REVOKE ALL ON PROCEDURE cesar.await_jobs(IN worker text, IN batch_size integer, IN job_types text[], IN default_lease_seconds integer, IN start_count integer, IN timeout_ms integer, INOUT step jsonb) FROM PUBLIC;
GRANT ALL ON PROCEDURE cesar.await_jobs(IN worker text, IN batch_size integer, IN job_types text[], IN default_lease_seconds integer, IN start_count integer, IN timeout_ms integer, INOUT step jsonb) TO service_role;

--
-- Name: FUNCTION await_work(target text, timeout_ms integer, job_types text[]); Type: ACL; Schema: cesar; Owner: -
--

REVOKE ALL ON FUNCTION cesar.await_work(target text, timeout_ms integer, job_types text[]) FROM PUBLIC;
GRANT ALL ON FUNCTION cesar.await_work(target text, timeout_ms integer, job_types text[]) TO service_role;

--
-- Name: FUNCTION cancel_jobs(ids bigint[]); Type: ACL; Schema: cesar; Owner: -
--

REVOKE ALL ON FUNCTION cesar.cancel_jobs(ids bigint[]) FROM PUBLIC;
GRANT ALL ON FUNCTION cesar.cancel_jobs(ids bigint[]) TO service_role;

--
-- Name: FUNCTION capture_function_sql(store_id integer, key_column text); Type: ACL; Schema: cesar; Owner: -
--

REVOKE ALL ON FUNCTION cesar.capture_function_sql(store_id integer, key_column text) FROM PUBLIC;
GRANT ALL ON FUNCTION cesar.capture_function_sql(store_id integer, key_column text) TO service_role;

--
-- Name: FUNCTION captured_changes(target text); Type: ACL; Schema: cesar; Owner: -
--

REVOKE ALL ON FUNCTION cesar.captured_changes(target text) FROM PUBLIC;
GRANT ALL ON FUNCTION cesar.captured_changes(target text) TO service_role;

--
-- Name: FUNCTION changed_columns(new_image jsonb, old_image jsonb); Type: ACL; Schema: cesar; Owner: -
--

REVOKE ALL ON FUNCTION cesar.changed_columns(new_image jsonb, old_image jsonb) FROM PUBLIC;
GRANT ALL ON FUNCTION cesar.changed_columns(new_image jsonb, old_image jsonb) TO service_role;

--
-- Name: FUNCTION check_schedule_trigger(trigger jsonb); Type: ACL; Schema: cesar; Owner: -
--

REVOKE ALL ON FUNCTION cesar.check_schedule_trigger(trigger jsonb) FROM PUBLIC;
GRANT ALL ON FUNCTION cesar.check_schedule_trigger(trigger jsonb) TO service_role;

--
-- Name: TABLE event_log; Type: ACL; Schema: cesar; Owner: -
--

GRANT ALL ON TABLE cesar.event_log TO service_role;

--
-- Name: FUNCTION claim_events(batch_size integer); Type: ACL; Schema: cesar; Owner: -
--

REVOKE ALL ON FUNCTION cesar.claim_events(batch_size integer) FROM PUBLIC;
GRANT ALL ON FUNCTION cesar.claim_events(batch_size integer) TO service_role;

--
-- Name: FUNCTION claim_jobs(worker text, batch_size integer, job_types text[], default_lease_seconds integer, start_count integer); Type: ACL; Schema: cesar; Owner: -
--

REVOKE ALL ON FUNCTION cesar.claim_jobs(worker text, batch_size integer, job_types text[], default_lease_seconds integer, start_count integer) FROM PUBLIC;
GRANT ALL ON FUNCTION cesar.claim_jobs(worker text, batch_size integer, job_types text[], default_lease_seconds integer, start_count integer) TO service_role;

--
-- Name: FUNCTION clear_sync_outbox(target text, keys text[], change_ids bigint[]); Type: ACL; Schema: cesar; Owner: -
--

REVOKE ALL ON FUNCTION cesar.clear_sync_outbox(target text, keys text[], change_ids bigint[]) FROM PUBLIC;
GRANT ALL ON FUNCTION cesar.clear_sync_outbox(target text, keys text[], change_ids bigint[]) TO service_role;

--
-- Name: FUNCTION column_list(target oid); Type: ACL; Schema: cesar; Owner: -
--

REVOKE ALL ON FUNCTION cesar.column_list(target oid) FROM PUBLIC;
GRANT ALL ON FUNCTION cesar.column_list(target oid) TO service_role;

--
-- Name: FUNCTION complete_jobs(worker text, completions jsonb); Type: ACL; Schema: cesar; Owner: -
--

REVOKE ALL ON FUNCTION cesar.complete_jobs(worker text, completions jsonb) FROM PUBLIC;
GRANT ALL ON FUNCTION cesar.complete_jobs(worker text, completions jsonb) TO service_role;

--
-- Name: FUNCTION copy_field(value text); Type: ACL; Schema: cesar; Owner: -
--

REVOKE ALL ON FUNCTION cesar.copy_field(value text) FROM PUBLIC;
GRANT ALL ON FUNCTION cesar.copy_field(value text) TO service_role;

--
-- Name: FUNCTION create_capture_store(target regclass, schema_name text, table_name text, key_column text, columns text[], watched boolean, mirrored boolean); Type: ACL; Schema: cesar; Owner: -
--

REVOKE ALL ON FUNCTION cesar.create_capture_store(target regclass, schema_name text, table_name text, key_column text, columns text[], watched boolean, mirrored boolean) FROM PUBLIC;
GRANT ALL ON FUNCTION cesar.create_capture_store(target regclass, schema_name text, table_name text, key_column text, columns text[], watched boolean, mirrored boolean) TO service_role;

--
-- Name: FUNCTION create_executions(plans jsonb); Type: ACL; Schema: cesar; Owner: -
--

REVOKE ALL ON FUNCTION cesar.create_executions(plans jsonb) FROM PUBLIC;
GRANT ALL ON FUNCTION cesar.create_executions(plans jsonb) TO service_role;

--
-- Name: FUNCTION cron_field(field text, low integer, high integer, names text[]); Type: ACL; Schema: cesar; Owner: -
--

REVOKE ALL ON FUNCTION cesar.cron_field(field text, low integer, high integer, names text[]) FROM PUBLIC;
GRANT ALL ON FUNCTION cesar.cron_field(field text, low integer, high integer, names text[]) TO service_role;

--
-- Name: FUNCTION cron_fields(cron text, OUT minutes integer[], OUT hours integer[], OUT days integer[], OUT months integer[], OUT weekdays integer[], OUT any_day boolean, OUT any_weekday boolean, OUT wildcard boolean); Type: ACL; Schema: cesar; Owner: -
--

REVOKE ALL ON FUNCTION cesar.cron_fields(cron text, OUT minutes integer[], OUT hours integer[], OUT days integer[], OUT months integer[], OUT weekdays integer[], OUT any_day boolean, OUT any_weekday boolean, OUT wildcard boolean) FROM PUBLIC;
GRANT ALL ON FUNCTION cesar.cron_fields(cron text, OUT minutes integer[], OUT hours integer[], OUT days integer[], OUT months integer[], OUT weekdays integer[], OUT any_day boolean, OUT any_weekday boolean, OUT wildcard boolean) TO service_role;

--
-- Name: FUNCTION cron_next_slot(f cesar.cron_schedule, timezone text, after timestamp with time zone, upto timestamp with time zone); Type: ACL; Schema: cesar; Owner: -
--

REVOKE ALL ON FUNCTION cesar.cron_next_slot(f cesar.cron_schedule, timezone text, after timestamp with time zone, upto timestamp with time zone) FROM PUBLIC;
GRANT ALL ON FUNCTION cesar.cron_next_slot(f cesar.cron_schedule, timezone text, after timestamp with time zone, upto timestamp with time zone) TO service_role;

--
-- Name: FUNCTION cron_next_due(f cesar.cron_schedule, timezone text, after timestamp with time zone); Type: ACL; Schema: cesar; Owner: -
--

REVOKE ALL ON FUNCTION cesar.cron_next_due(f cesar.cron_schedule, timezone text, after timestamp with time zone) FROM PUBLIC;
GRANT ALL ON FUNCTION cesar.cron_next_due(f cesar.cron_schedule, timezone text, after timestamp with time zone) TO service_role;

--
-- Name: FUNCTION cron_slots(f cesar.cron_schedule, timezone text, after timestamp with time zone, upto timestamp with time zone, max_slots integer); Type: ACL; Schema: cesar; Owner: -
--

REVOKE ALL ON FUNCTION cesar.cron_slots(f cesar.cron_schedule, timezone text, after timestamp with time zone, upto timestamp with time zone, max_slots integer) FROM PUBLIC;
GRANT ALL ON FUNCTION cesar.cron_slots(f cesar.cron_schedule, timezone text, after timestamp with time zone, upto timestamp with time zone, max_slots integer) TO service_role;

--
-- Name: FUNCTION doorbell_await_writer(target text, writer bigint, timeout_ms integer); Type: ACL; Schema: cesar; Owner: -
--

REVOKE ALL ON FUNCTION cesar.doorbell_await_writer(target text, writer bigint, timeout_ms integer) FROM PUBLIC;
GRANT ALL ON FUNCTION cesar.doorbell_await_writer(target text, writer bigint, timeout_ms integer) TO service_role;

--
-- Name: FUNCTION doorbell_call(target text, linger_ms integer); Type: ACL; Schema: cesar; Owner: -
--

REVOKE ALL ON FUNCTION cesar.doorbell_call(target text, linger_ms integer) FROM PUBLIC;
GRANT ALL ON FUNCTION cesar.doorbell_call(target text, linger_ms integer) TO service_role;

--
-- Name: FUNCTION doorbell_hand_over(target text, grace_ms integer); Type: ACL; Schema: cesar; Owner: -
--

REVOKE ALL ON FUNCTION cesar.doorbell_hand_over(target text, grace_ms integer) FROM PUBLIC;
GRANT ALL ON FUNCTION cesar.doorbell_hand_over(target text, grace_ms integer) TO service_role;

--
-- Name: FUNCTION doorbell_held(target text); Type: ACL; Schema: cesar; Owner: -
--

REVOKE ALL ON FUNCTION cesar.doorbell_held(target text) FROM PUBLIC;
GRANT ALL ON FUNCTION cesar.doorbell_held(target text) TO service_role;

--
-- Name: FUNCTION doorbell_hold(target text, hold_ms integer); Type: ACL; Schema: cesar; Owner: -
--

REVOKE ALL ON FUNCTION cesar.doorbell_hold(target text, hold_ms integer) FROM PUBLIC;
GRANT ALL ON FUNCTION cesar.doorbell_hold(target text, hold_ms integer) TO service_role;

--
-- Name: FUNCTION doorbell_last_writer(target text); Type: ACL; Schema: cesar; Owner: -
--

REVOKE ALL ON FUNCTION cesar.doorbell_last_writer(target text) FROM PUBLIC;
GRANT ALL ON FUNCTION cesar.doorbell_last_writer(target text) TO service_role;

--
-- Name: FUNCTION doorbell_lock_key(target text); Type: ACL; Schema: cesar; Owner: -
--

REVOKE ALL ON FUNCTION cesar.doorbell_lock_key(target text) FROM PUBLIC;
GRANT ALL ON FUNCTION cesar.doorbell_lock_key(target text) TO service_role;

--
-- Name: FUNCTION doorbell_release(target text, wait_ms integer, held bigint); Type: ACL; Schema: cesar; Owner: -
--

REVOKE ALL ON FUNCTION cesar.doorbell_release(target text, wait_ms integer, held bigint) FROM PUBLIC;
GRANT ALL ON FUNCTION cesar.doorbell_release(target text, wait_ms integer, held bigint) TO service_role;

--
-- Name: FUNCTION doorbell_sequence(target text); Type: ACL; Schema: cesar; Owner: -
--

REVOKE ALL ON FUNCTION cesar.doorbell_sequence(target text) FROM PUBLIC;
GRANT ALL ON FUNCTION cesar.doorbell_sequence(target text) TO service_role;

--
-- Name: FUNCTION doorbell_wake_class(target text); Type: ACL; Schema: cesar; Owner: -
--

REVOKE ALL ON FUNCTION cesar.doorbell_wake_class(target text) FROM PUBLIC;
GRANT ALL ON FUNCTION cesar.doorbell_wake_class(target text) TO service_role;

--
-- Name: FUNCTION doorbell_wake_sequence(target text); Type: ACL; Schema: cesar; Owner: -
--

REVOKE ALL ON FUNCTION cesar.doorbell_wake_sequence(target text) FROM PUBLIC;
GRANT ALL ON FUNCTION cesar.doorbell_wake_sequence(target text) TO service_role;

--
-- Name: FUNCTION drop_retired_capture_stores(); Type: ACL; Schema: cesar; Owner: -
--

REVOKE ALL ON FUNCTION cesar.drop_retired_capture_stores() FROM PUBLIC;
GRANT ALL ON FUNCTION cesar.drop_retired_capture_stores() TO service_role;

--
-- Name: FUNCTION enqueue(job_type text, payload jsonb, run_at timestamp with time zone, priority integer, max_attempts integer, dedup_key text, key text, mode text, delay interval, period interval); Type: ACL; Schema: cesar; Owner: -
--

REVOKE ALL ON FUNCTION cesar.enqueue(job_type text, payload jsonb, run_at timestamp with time zone, priority integer, max_attempts integer, dedup_key text, key text, mode text, delay interval, period interval) FROM PUBLIC;
GRANT ALL ON FUNCTION cesar.enqueue(job_type text, payload jsonb, run_at timestamp with time zone, priority integer, max_attempts integer, dedup_key text, key text, mode text, delay interval, period interval) TO service_role;

--
-- Name: FUNCTION enqueue_keyed(job_type text, payload jsonb, run_at timestamp with time zone, priority integer, max_attempts integer, key text, mode text, delay interval, period interval, execution_id bigint, serial_key text, backoff_base_seconds numeric, backoff_cap_seconds numeric, OUT id bigint, OUT inserted boolean); Type: ACL; Schema: cesar; Owner: -
--

REVOKE ALL ON FUNCTION cesar.enqueue_keyed(job_type text, payload jsonb, run_at timestamp with time zone, priority integer, max_attempts integer, key text, mode text, delay interval, period interval, execution_id bigint, serial_key text, backoff_base_seconds numeric, backoff_cap_seconds numeric, OUT id bigint, OUT inserted boolean) FROM PUBLIC;
GRANT ALL ON FUNCTION cesar.enqueue_keyed(job_type text, payload jsonb, run_at timestamp with time zone, priority integer, max_attempts integer, key text, mode text, delay interval, period interval, execution_id bigint, serial_key text, backoff_base_seconds numeric, backoff_cap_seconds numeric, OUT id bigint, OUT inserted boolean) TO service_role;

--
-- Name: FUNCTION enqueue_many(jobs jsonb); Type: ACL; Schema: cesar; Owner: -
--

REVOKE ALL ON FUNCTION cesar.enqueue_many(jobs jsonb) FROM PUBLIC;
GRANT ALL ON FUNCTION cesar.enqueue_many(jobs jsonb) TO service_role;

--
-- Name: FUNCTION epoch_ms(); Type: ACL; Schema: cesar; Owner: -
--

REVOKE ALL ON FUNCTION cesar.epoch_ms() FROM PUBLIC;
GRANT ALL ON FUNCTION cesar.epoch_ms() TO service_role;

--
-- Name: FUNCTION event_backlog(OUT pending bigint, OUT oldest timestamp with time zone); Type: ACL; Schema: cesar; Owner: -
--

REVOKE ALL ON FUNCTION cesar.event_backlog(OUT pending bigint, OUT oldest timestamp with time zone) FROM PUBLIC;
GRANT ALL ON FUNCTION cesar.event_backlog(OUT pending bigint, OUT oldest timestamp with time zone) TO service_role;

--
-- Name: FUNCTION events_pending(); Type: ACL; Schema: cesar; Owner: -
--

REVOKE ALL ON FUNCTION cesar.events_pending() FROM PUBLIC;
GRANT ALL ON FUNCTION cesar.events_pending() TO service_role;

--
-- Name: FUNCTION expand_captures(max_rows integer); Type: ACL; Schema: cesar; Owner: -
--

REVOKE ALL ON FUNCTION cesar.expand_captures(max_rows integer) FROM PUBLIC;
GRANT ALL ON FUNCTION cesar.expand_captures(max_rows integer) TO service_role;

--
-- Name: TABLE capture_stores; Type: ACL; Schema: cesar; Owner: -
--

GRANT ALL ON TABLE cesar.capture_stores TO service_role;

--
-- Name: FUNCTION expansion_digest(stores cesar.capture_stores[]); Type: ACL; Schema: cesar; Owner: -
--

REVOKE ALL ON FUNCTION cesar.expansion_digest(stores cesar.capture_stores[]) FROM PUBLIC;
GRANT ALL ON FUNCTION cesar.expansion_digest(stores cesar.capture_stores[]) TO service_role;

--
-- Name: FUNCTION expansion_part_sql(store cesar.capture_stores); Type: ACL; Schema: cesar; Owner: -
--

REVOKE ALL ON FUNCTION cesar.expansion_part_sql(store cesar.capture_stores) FROM PUBLIC;
GRANT ALL ON FUNCTION cesar.expansion_part_sql(store cesar.capture_stores) TO service_role;

--
-- Name: FUNCTION fail_jobs(worker text, failures jsonb); Type: ACL; Schema: cesar; Owner: -
--

REVOKE ALL ON FUNCTION cesar.fail_jobs(worker text, failures jsonb) FROM PUBLIC;
GRANT ALL ON FUNCTION cesar.fail_jobs(worker text, failures jsonb) TO service_role;

--
-- Name: FUNCTION finish_and_claim(worker text, completions jsonb, failures jsonb, batch_size integer, job_types text[], default_lease_seconds integer, start_count integer); Type: ACL; Schema: cesar; Owner: -
--

REVOKE ALL ON FUNCTION cesar.finish_and_claim(worker text, completions jsonb, failures jsonb, batch_size integer, job_types text[], default_lease_seconds integer, start_count integer) FROM PUBLIC;
GRANT ALL ON FUNCTION cesar.finish_and_claim(worker text, completions jsonb, failures jsonb, batch_size integer, job_types text[], default_lease_seconds integer, start_count integer) TO service_role;

--
-- Name: FUNCTION follow_execution_status(); Type: ACL; Schema: cesar; Owner: -
--

REVOKE ALL ON FUNCTION cesar.follow_execution_status() FROM PUBLIC;
GRANT ALL ON FUNCTION cesar.follow_execution_status() TO service_role;

--
-- Name: FUNCTION forget_expansion_statements(); Type: ACL; Schema: cesar; Owner: -
--

REVOKE ALL ON FUNCTION cesar.forget_expansion_statements() FROM PUBLIC;
GRANT ALL ON FUNCTION cesar.forget_expansion_statements() TO service_role;

--
-- Name: FUNCTION http_duration_buckets(); Type: ACL; Schema: cesar; Owner: -
--

REVOKE ALL ON FUNCTION cesar.http_duration_buckets() FROM PUBLIC;
GRANT ALL ON FUNCTION cesar.http_duration_buckets() TO service_role;

--
-- Name: FUNCTION job_attempts_left(attempts integer, max_attempts integer); Type: ACL; Schema: cesar; Owner: -
--

REVOKE ALL ON FUNCTION cesar.job_attempts_left(attempts integer, max_attempts integer) FROM PUBLIC;
GRANT ALL ON FUNCTION cesar.job_attempts_left(attempts integer, max_attempts integer) TO service_role;

--
-- Name: FUNCTION job_error_entry(attempt integer, kind text, message text, worker text, at timestamp with time zone); Type: ACL; Schema: cesar; Owner: -
--

REVOKE ALL ON FUNCTION cesar.job_error_entry(attempt integer, kind text, message text, worker text, at timestamp with time zone) FROM PUBLIC;
GRANT ALL ON FUNCTION cesar.job_error_entry(attempt integer, kind text, message text, worker text, at timestamp with time zone) TO service_role;

--
-- Name: FUNCTION job_totals_slot(); Type: ACL; Schema: cesar; Owner: -
--

REVOKE ALL ON FUNCTION cesar.job_totals_slot() FROM PUBLIC;
GRANT ALL ON FUNCTION cesar.job_totals_slot() TO service_role;

--
-- Name: FUNCTION jobs_due(job_types text[], at timestamp with time zone); Type: ACL; Schema: cesar; Owner: -
--

REVOKE ALL ON FUNCTION cesar.jobs_due(job_types text[], at timestamp with time zone) FROM PUBLIC;
GRANT ALL ON FUNCTION cesar.jobs_due(job_types text[], at timestamp with time zone) TO service_role;

--
-- Name: FUNCTION keep_next_due_at(); Type: ACL; Schema: cesar; Owner: -
--

REVOKE ALL ON FUNCTION cesar.keep_next_due_at() FROM PUBLIC;
GRANT ALL ON FUNCTION cesar.keep_next_due_at() TO service_role;

--
-- Name: FUNCTION least_loaded_agent(capability text, only_agent uuid, except_agent uuid); Type: ACL; Schema: cesar; Owner: -
--

REVOKE ALL ON FUNCTION cesar.least_loaded_agent(capability text, only_agent uuid, except_agent uuid) FROM PUBLIC;
GRANT ALL ON FUNCTION cesar.least_loaded_agent(capability text, only_agent uuid, except_agent uuid) TO service_role;

--
-- Name: FUNCTION next_deferred_at(job_types text[]); Type: ACL; Schema: cesar; Owner: -
--

REVOKE ALL ON FUNCTION cesar.next_deferred_at(job_types text[]) FROM PUBLIC;
GRANT ALL ON FUNCTION cesar.next_deferred_at(job_types text[]) TO service_role;

--
-- Name: FUNCTION recapture(target regclass); Type: ACL; Schema: cesar; Owner: -
--

REVOKE ALL ON FUNCTION cesar.recapture(target regclass) FROM PUBLIC;
GRANT ALL ON FUNCTION cesar.recapture(target regclass) TO service_role;

--
-- Name: FUNCTION recapture_mirrored_table(); Type: ACL; Schema: cesar; Owner: -
--

REVOKE ALL ON FUNCTION cesar.recapture_mirrored_table() FROM PUBLIC;
GRANT ALL ON FUNCTION cesar.recapture_mirrored_table() TO service_role;

--
-- Name: FUNCTION reconcile_workflow_schedule(); Type: ACL; Schema: cesar; Owner: -
--

REVOKE ALL ON FUNCTION cesar.reconcile_workflow_schedule() FROM PUBLIC;
GRANT ALL ON FUNCTION cesar.reconcile_workflow_schedule() TO service_role;

--
-- Name: FUNCTION record_event_batch(event_ids bigint[], plans jsonb); Type: ACL; Schema: cesar; Owner: -
--

REVOKE ALL ON FUNCTION cesar.record_event_batch(event_ids bigint[], plans jsonb) FROM PUBLIC;
GRANT ALL ON FUNCTION cesar.record_event_batch(event_ids bigint[], plans jsonb) TO service_role;

--
-- Name: FUNCTION record_request(function_name text, status integer, seconds double precision); Type: ACL; Schema: cesar; Owner: -
--

REVOKE ALL ON FUNCTION cesar.record_request(function_name text, status integer, seconds double precision) FROM PUBLIC;
GRANT ALL ON FUNCTION cesar.record_request(function_name text, status integer, seconds double precision) TO service_role;

--
-- Name: FUNCTION record_requests(function_name text, statuses integer[], durations double precision[]); Type: ACL; Schema: cesar; Owner: -
--

REVOKE ALL ON FUNCTION cesar.record_requests(function_name text, statuses integer[], durations double precision[]) FROM PUBLIC;
GRANT ALL ON FUNCTION cesar.record_requests(function_name text, statuses integer[], durations double precision[]) TO service_role;

--
-- Name: FUNCTION redrive_jobs(job_type text, since timestamp with time zone); Type: ACL; Schema: cesar; Owner: -
--

REVOKE ALL ON FUNCTION cesar.redrive_jobs(job_type text, since timestamp with time zone) FROM PUBLIC;
GRANT ALL ON FUNCTION cesar.redrive_jobs(job_type text, since timestamp with time zone) TO service_role;

--
-- Name: FUNCTION refresh_monitoring_views(); Type: ACL; Schema: cesar; Owner: -
--

REVOKE ALL ON FUNCTION cesar.refresh_monitoring_views() FROM PUBLIC;
GRANT ALL ON FUNCTION cesar.refresh_monitoring_views() TO service_role;

--
-- Name: FUNCTION refuse_truncate(); Type: ACL; Schema: cesar; Owner: -
--

REVOKE ALL ON FUNCTION cesar.refuse_truncate() FROM PUBLIC;
GRANT ALL ON FUNCTION cesar.refuse_truncate() TO service_role;

--
-- Name: FUNCTION release_event_processor(holder text); Type: ACL; Schema: cesar; Owner: -
--

REVOKE ALL ON FUNCTION cesar.release_event_processor(holder text) FROM PUBLIC;
GRANT ALL ON FUNCTION cesar.release_event_processor(holder text) TO service_role;

--
-- Name: FUNCTION render_sql(template text, slots jsonb); Type: ACL; Schema: cesar; Owner: -
--

REVOKE ALL ON FUNCTION cesar.render_sql(template text, slots jsonb) FROM PUBLIC;
GRANT ALL ON FUNCTION cesar.render_sql(template text, slots jsonb) TO service_role;

--
-- Name: FUNCTION renew_leases(worker text, leases jsonb); Type: ACL; Schema: cesar; Owner: -
--

REVOKE ALL ON FUNCTION cesar.renew_leases(worker text, leases jsonb) FROM PUBLIC;
GRANT ALL ON FUNCTION cesar.renew_leases(worker text, leases jsonb) TO service_role;

--
-- Name: FUNCTION replay_events(ids bigint[]); Type: ACL; Schema: cesar; Owner: -
--

REVOKE ALL ON FUNCTION cesar.replay_events(ids bigint[]) FROM PUBLIC;
GRANT ALL ON FUNCTION cesar.replay_events(ids bigint[]) TO service_role;

--
-- Name: FUNCTION require_setting(setting_name text); Type: ACL; Schema: cesar; Owner: -
--

REVOKE ALL ON FUNCTION cesar.require_setting(setting_name text) FROM PUBLIC;
GRANT ALL ON FUNCTION cesar.require_setting(setting_name text) TO service_role;

--
-- Name: FUNCTION retire_dropped_tables(); Type: ACL; Schema: cesar; Owner: -
--

REVOKE ALL ON FUNCTION cesar.retire_dropped_tables() FROM PUBLIC;
GRANT ALL ON FUNCTION cesar.retire_dropped_tables() TO service_role;

--
-- Name: FUNCTION retry_jobs(ids bigint[]); Type: ACL; Schema: cesar; Owner: -
--

REVOKE ALL ON FUNCTION cesar.retry_jobs(ids bigint[]) FROM PUBLIC;
GRANT ALL ON FUNCTION cesar.retry_jobs(ids bigint[]) TO service_role;

--
-- Name: FUNCTION rewatch_altered_tables(); Type: ACL; Schema: cesar; Owner: -
--

REVOKE ALL ON FUNCTION cesar.rewatch_altered_tables() FROM PUBLIC;
GRANT ALL ON FUNCTION cesar.rewatch_altered_tables() TO service_role;

--
-- Name: FUNCTION ring_doorbell(target text); Type: ACL; Schema: cesar; Owner: -
--

REVOKE ALL ON FUNCTION cesar.ring_doorbell(target text) FROM PUBLIC;
GRANT ALL ON FUNCTION cesar.ring_doorbell(target text) TO service_role;

--
-- Name: FUNCTION run_due_schedules(as_of timestamp with time zone); Type: ACL; Schema: cesar; Owner: -
--

REVOKE ALL ON FUNCTION cesar.run_due_schedules(as_of timestamp with time zone) FROM PUBLIC;
GRANT ALL ON FUNCTION cesar.run_due_schedules(as_of timestamp with time zone) TO service_role;

--
-- Name: FUNCTION run_schedule(template_id uuid, as_of timestamp with time zone); Type: ACL; Schema: cesar; Owner: -
--

REVOKE ALL ON FUNCTION cesar.run_schedule(template_id uuid, as_of timestamp with time zone) FROM PUBLIC;
GRANT ALL ON FUNCTION cesar.run_schedule(template_id uuid, as_of timestamp with time zone) TO service_role;

--
-- Name: FUNCTION run_workflow(template_id uuid, slot timestamp with time zone, kind text); Type: ACL; Schema: cesar; Owner: -
--

REVOKE ALL ON FUNCTION cesar.run_workflow(template_id uuid, slot timestamp with time zone, kind text) FROM PUBLIC;
GRANT ALL ON FUNCTION cesar.run_workflow(template_id uuid, slot timestamp with time zone, kind text) TO service_role;

--
-- Name: FUNCTION schedule_day_slots(f cesar.cron_schedule, timezone text, d date, local_from timestamp without time zone, local_to timestamp without time zone, after timestamp with time zone, upto timestamp with time zone, max_slots integer, latest boolean); Type: ACL; Schema: cesar; Owner: -
--

REVOKE ALL ON FUNCTION cesar.schedule_day_slots(f cesar.cron_schedule, timezone text, d date, local_from timestamp without time zone, local_to timestamp without time zone, after timestamp with time zone, upto timestamp with time zone, max_slots integer, latest boolean) FROM PUBLIC;
GRANT ALL ON FUNCTION cesar.schedule_day_slots(f cesar.cron_schedule, timezone text, d date, local_from timestamp without time zone, local_to timestamp without time zone, after timestamp with time zone, upto timestamp with time zone, max_slots integer, latest boolean) TO service_role;

--
-- Name: FUNCTION schedule_next_slot(cron text, timezone text, after timestamp with time zone, upto timestamp with time zone); Type: ACL; Schema: cesar; Owner: -
--

REVOKE ALL ON FUNCTION cesar.schedule_next_slot(cron text, timezone text, after timestamp with time zone, upto timestamp with time zone) FROM PUBLIC;
GRANT ALL ON FUNCTION cesar.schedule_next_slot(cron text, timezone text, after timestamp with time zone, upto timestamp with time zone) TO service_role;

--
-- Name: FUNCTION schedule_slots(cron text, timezone text, after timestamp with time zone, upto timestamp with time zone, max_slots integer); Type: ACL; Schema: cesar; Owner: -
--

REVOKE ALL ON FUNCTION cesar.schedule_slots(cron text, timezone text, after timestamp with time zone, upto timestamp with time zone, max_slots integer) FROM PUBLIC;
GRANT ALL ON FUNCTION cesar.schedule_slots(cron text, timezone text, after timestamp with time zone, upto timestamp with time zone, max_slots integer) TO service_role;

--
-- Name: FUNCTION setting(setting_name text); Type: ACL; Schema: cesar; Owner: -
--

REVOKE ALL ON FUNCTION cesar.setting(setting_name text) FROM PUBLIC;
GRANT ALL ON FUNCTION cesar.setting(setting_name text) TO service_role;

--
-- Name: FUNCTION single_key_column(target oid); Type: ACL; Schema: cesar; Owner: -
--

REVOKE ALL ON FUNCTION cesar.single_key_column(target oid) FROM PUBLIC;
GRANT ALL ON FUNCTION cesar.single_key_column(target oid) TO service_role;

--
-- Name: FUNCTION start_jobs(worker text, ids bigint[], lease_seconds integer[]); Type: ACL; Schema: cesar; Owner: -
--

REVOKE ALL ON FUNCTION cesar.start_jobs(worker text, ids bigint[], lease_seconds integer[]) FROM PUBLIC;
GRANT ALL ON FUNCTION cesar.start_jobs(worker text, ids bigint[], lease_seconds integer[]) TO service_role;

--
-- Name: FUNCTION sync_backfill(target text); Type: ACL; Schema: cesar; Owner: -
--

REVOKE ALL ON FUNCTION cesar.sync_backfill(target text) FROM PUBLIC;
GRANT ALL ON FUNCTION cesar.sync_backfill(target text) TO service_role;

--
-- Name: FUNCTION sync_outbox_page(target text, after_change bigint, after_key text, page_size integer); Type: ACL; Schema: cesar; Owner: -
--

REVOKE ALL ON FUNCTION cesar.sync_outbox_page(target text, after_change bigint, after_key text, page_size integer) FROM PUBLIC;
GRANT ALL ON FUNCTION cesar.sync_outbox_page(target text, after_change bigint, after_key text, page_size integer) TO service_role;

--
-- Name: FUNCTION system_table_reason(target regclass); Type: ACL; Schema: cesar; Owner: -
--

REVOKE ALL ON FUNCTION cesar.system_table_reason(target regclass) FROM PUBLIC;
GRANT ALL ON FUNCTION cesar.system_table_reason(target regclass) TO service_role;

--
-- Name: FUNCTION take_event_batch(holder text, lease_seconds integer, batch_size integer); Type: ACL; Schema: cesar; Owner: -
--

REVOKE ALL ON FUNCTION cesar.take_event_batch(holder text, lease_seconds integer, batch_size integer) FROM PUBLIC;
GRANT ALL ON FUNCTION cesar.take_event_batch(holder text, lease_seconds integer, batch_size integer) TO service_role;

--
-- Name: FUNCTION take_event_processor(holder text, lease_seconds integer); Type: ACL; Schema: cesar; Owner: -
--

REVOKE ALL ON FUNCTION cesar.take_event_processor(holder text, lease_seconds integer) FROM PUBLIC;
GRANT ALL ON FUNCTION cesar.take_event_processor(holder text, lease_seconds integer) TO service_role;

--
-- Name: FUNCTION take_schedule_slots(template_id uuid, as_of timestamp with time zone); Type: ACL; Schema: cesar; Owner: -
--

REVOKE ALL ON FUNCTION cesar.take_schedule_slots(template_id uuid, as_of timestamp with time zone) FROM PUBLIC;
GRANT ALL ON FUNCTION cesar.take_schedule_slots(template_id uuid, as_of timestamp with time zone) TO service_role;

--
-- Name: FUNCTION tick_schedule(); Type: ACL; Schema: cesar; Owner: -
--

REVOKE ALL ON FUNCTION cesar.tick_schedule() FROM PUBLIC;
GRANT ALL ON FUNCTION cesar.tick_schedule() TO service_role;

--
-- Name: FUNCTION touch_updated_at(); Type: ACL; Schema: cesar; Owner: -
--

REVOKE ALL ON FUNCTION cesar.touch_updated_at() FROM PUBLIC;
GRANT ALL ON FUNCTION cesar.touch_updated_at() TO service_role;

--
-- Name: FUNCTION unkeyed_actions(actions jsonb); Type: ACL; Schema: cesar; Owner: -
--

REVOKE ALL ON FUNCTION cesar.unkeyed_actions(actions jsonb) FROM PUBLIC;
GRANT ALL ON FUNCTION cesar.unkeyed_actions(actions jsonb) TO service_role;

--
-- Name: FUNCTION unpushed_changes(target text); Type: ACL; Schema: cesar; Owner: -
--

REVOKE ALL ON FUNCTION cesar.unpushed_changes(target text) FROM PUBLIC;
GRANT ALL ON FUNCTION cesar.unpushed_changes(target text) TO service_role;

--
-- Name: FUNCTION unwatch(target regclass); Type: ACL; Schema: cesar; Owner: -
--

REVOKE ALL ON FUNCTION cesar.unwatch(target regclass) FROM PUBLIC;
GRANT ALL ON FUNCTION cesar.unwatch(target regclass) TO service_role;

--
-- Name: FUNCTION watch(target regclass); Type: ACL; Schema: cesar; Owner: -
--

REVOKE ALL ON FUNCTION cesar.watch(target regclass) FROM PUBLIC;
GRANT ALL ON FUNCTION cesar.watch(target regclass) TO service_role;

--
-- Name: SEQUENCE capture_statement_seq; Type: ACL; Schema: cesar; Owner: -
--

GRANT ALL ON SEQUENCE cesar.capture_statement_seq TO service_role;

--
-- Name: SEQUENCE capture_stores_id_seq; Type: ACL; Schema: cesar; Owner: -
--

GRANT ALL ON SEQUENCE cesar.capture_stores_id_seq TO service_role;

--
-- Name: TABLE captures; Type: ACL; Schema: cesar; Owner: -
--

GRANT ALL ON TABLE cesar.captures TO service_role;

--
-- Name: SEQUENCE event_log_id_seq; Type: ACL; Schema: cesar; Owner: -
--

GRANT ALL ON SEQUENCE cesar.event_log_id_seq TO service_role;

--
-- Name: TABLE event_processor; Type: ACL; Schema: cesar; Owner: -
--

GRANT ALL ON TABLE cesar.event_processor TO service_role;

--
-- Name: TABLE expansion_statements; Type: ACL; Schema: cesar; Owner: -
--

GRANT SELECT,INSERT,REFERENCES,DELETE,TRIGGER ON TABLE cesar.expansion_statements TO service_role;

--
-- Name: TABLE http_request_totals; Type: ACL; Schema: cesar; Owner: -
--

GRANT ALL ON TABLE cesar.http_request_totals TO service_role;

--
-- Name: TABLE ingestion_log; Type: ACL; Schema: public; Owner: -
--

GRANT SELECT,INSERT,DELETE,UPDATE ON TABLE public.ingestion_log TO anon;
GRANT SELECT,INSERT,DELETE,UPDATE ON TABLE public.ingestion_log TO authenticated;
GRANT ALL ON TABLE public.ingestion_log TO service_role;

--
-- Name: TABLE ingestion_errors; Type: ACL; Schema: cesar; Owner: -
--

GRANT ALL ON TABLE cesar.ingestion_errors TO service_role;

--
-- Name: TABLE job_queue; Type: ACL; Schema: cesar; Owner: -
--

GRANT ALL ON TABLE cesar.job_queue TO service_role;

--
-- Name: SEQUENCE job_queue_id_seq; Type: ACL; Schema: cesar; Owner: -
--

GRANT ALL ON SEQUENCE cesar.job_queue_id_seq TO service_role;

--
-- Name: TABLE job_rate_limits; Type: ACL; Schema: cesar; Owner: -
--

GRANT ALL ON TABLE cesar.job_rate_limits TO service_role;

--
-- Name: TABLE job_rate_windows; Type: ACL; Schema: cesar; Owner: -
--

GRANT ALL ON TABLE cesar.job_rate_windows TO service_role;

--
-- Name: TABLE job_totals; Type: ACL; Schema: cesar; Owner: -
--

GRANT ALL ON TABLE cesar.job_totals TO service_role;

--
-- Name: TABLE job_types; Type: ACL; Schema: cesar; Owner: -
--

GRANT ALL ON TABLE cesar.job_types TO service_role;

--
-- Name: TABLE local_settings; Type: ACL; Schema: cesar; Owner: -
--

GRANT ALL ON TABLE cesar.local_settings TO service_role;

--
-- Name: TABLE mv_ingestion_errors; Type: ACL; Schema: cesar; Owner: -
--

GRANT ALL ON TABLE cesar.mv_ingestion_errors TO service_role;

--
-- Name: TABLE mv_job_queue_backlog; Type: ACL; Schema: cesar; Owner: -
--

GRANT ALL ON TABLE cesar.mv_job_queue_backlog TO service_role;

--
-- Name: TABLE sync_outbox; Type: ACL; Schema: cesar; Owner: -
--

GRANT ALL ON TABLE cesar.sync_outbox TO service_role;

--
-- Name: TABLE sync_state; Type: ACL; Schema: cesar; Owner: -
--

GRANT ALL ON TABLE cesar.sync_state TO service_role;

--
-- Name: TABLE sync_tables; Type: ACL; Schema: cesar; Owner: -
--

GRANT ALL ON TABLE cesar.sync_tables TO service_role;

--
-- Name: TABLE sync_lag; Type: ACL; Schema: cesar; Owner: -
--

GRANT ALL ON TABLE cesar.sync_lag TO service_role;

--
-- Name: TABLE mv_sync_lag; Type: ACL; Schema: cesar; Owner: -
--

GRANT ALL ON TABLE cesar.mv_sync_lag TO service_role;

--
-- Name: SEQUENCE sync_change_seq; Type: ACL; Schema: cesar; Owner: -
--

GRANT ALL ON SEQUENCE cesar.sync_change_seq TO service_role;

--
-- Name: TABLE sync_conflicts; Type: ACL; Schema: cesar; Owner: -
--

GRANT ALL ON TABLE cesar.sync_conflicts TO service_role;

--
-- Name: SEQUENCE sync_conflicts_id_seq; Type: ACL; Schema: cesar; Owner: -
--

GRANT ALL ON SEQUENCE cesar.sync_conflicts_id_seq TO service_role;

--
-- Name: TABLE watched_tables; Type: ACL; Schema: cesar; Owner: -
--

GRANT ALL ON TABLE cesar.watched_tables TO service_role;

--
-- Name: TABLE webhook_deliveries; Type: ACL; Schema: cesar; Owner: -
--

GRANT ALL ON TABLE cesar.webhook_deliveries TO service_role;

--
-- Name: TABLE workflow_executions; Type: ACL; Schema: cesar; Owner: -
--

GRANT ALL ON TABLE cesar.workflow_executions TO service_role;

--
-- Name: SEQUENCE workflow_executions_id_seq; Type: ACL; Schema: cesar; Owner: -
--

GRANT ALL ON SEQUENCE cesar.workflow_executions_id_seq TO service_role;

--
-- Name: TABLE workflow_schedules; Type: ACL; Schema: cesar; Owner: -
--

GRANT ALL ON TABLE cesar.workflow_schedules TO service_role;

--
-- Name: TABLE workflow_templates; Type: ACL; Schema: cesar; Owner: -
--

GRANT ALL ON TABLE cesar.workflow_templates TO service_role;

--
-- Name: TABLE a2a_conversations; Type: ACL; Schema: public; Owner: -
--

GRANT SELECT,INSERT,DELETE,UPDATE ON TABLE public.a2a_conversations TO anon;
GRANT SELECT,INSERT,DELETE,UPDATE ON TABLE public.a2a_conversations TO authenticated;
GRANT ALL ON TABLE public.a2a_conversations TO service_role;

--
-- Name: TABLE a2a_messages; Type: ACL; Schema: public; Owner: -
--

GRANT SELECT,INSERT,DELETE,UPDATE ON TABLE public.a2a_messages TO anon;
GRANT SELECT,INSERT,DELETE,UPDATE ON TABLE public.a2a_messages TO authenticated;
GRANT ALL ON TABLE public.a2a_messages TO service_role;

--
-- Name: TABLE agent_events; Type: ACL; Schema: public; Owner: -
--

GRANT SELECT,INSERT,DELETE,UPDATE ON TABLE public.agent_events TO anon;
GRANT SELECT,INSERT,DELETE,UPDATE ON TABLE public.agent_events TO authenticated;
GRANT ALL ON TABLE public.agent_events TO service_role;

--
-- Name: TABLE agent_sessions; Type: ACL; Schema: public; Owner: -
--

GRANT SELECT,INSERT,DELETE,UPDATE ON TABLE public.agent_sessions TO anon;
GRANT SELECT,INSERT,DELETE,UPDATE ON TABLE public.agent_sessions TO authenticated;
GRANT ALL ON TABLE public.agent_sessions TO service_role;

--
-- Name: TABLE agents; Type: ACL; Schema: public; Owner: -
--

GRANT SELECT,INSERT,DELETE,UPDATE ON TABLE public.agents TO anon;
GRANT SELECT,INSERT,DELETE,UPDATE ON TABLE public.agents TO authenticated;
GRANT ALL ON TABLE public.agents TO service_role;

--
-- Name: TABLE collaboration_sessions; Type: ACL; Schema: public; Owner: -
--

GRANT SELECT,INSERT,DELETE,UPDATE ON TABLE public.collaboration_sessions TO anon;
GRANT SELECT,INSERT,DELETE,UPDATE ON TABLE public.collaboration_sessions TO authenticated;
GRANT ALL ON TABLE public.collaboration_sessions TO service_role;

--
-- Name: TABLE email_ingest_state; Type: ACL; Schema: public; Owner: -
--

GRANT SELECT,INSERT,DELETE,UPDATE ON TABLE public.email_ingest_state TO anon;
GRANT SELECT,INSERT,DELETE,UPDATE ON TABLE public.email_ingest_state TO authenticated;
GRANT ALL ON TABLE public.email_ingest_state TO service_role;

--
-- Name: TABLE financial_daily_summaries; Type: ACL; Schema: public; Owner: -
--

GRANT SELECT,INSERT,DELETE,UPDATE ON TABLE public.financial_daily_summaries TO anon;
GRANT SELECT,INSERT,DELETE,UPDATE ON TABLE public.financial_daily_summaries TO authenticated;
GRANT ALL ON TABLE public.financial_daily_summaries TO service_role;

--
-- Name: TABLE financial_data; Type: ACL; Schema: public; Owner: -
--

GRANT SELECT,INSERT,DELETE,UPDATE ON TABLE public.financial_data TO anon;
GRANT SELECT,INSERT,DELETE,UPDATE ON TABLE public.financial_data TO authenticated;
GRANT ALL ON TABLE public.financial_data TO service_role;

--
-- Name: TABLE knowledge_graph_edges; Type: ACL; Schema: public; Owner: -
--

GRANT SELECT,INSERT,DELETE,UPDATE ON TABLE public.knowledge_graph_edges TO anon;
GRANT SELECT,INSERT,DELETE,UPDATE ON TABLE public.knowledge_graph_edges TO authenticated;
GRANT ALL ON TABLE public.knowledge_graph_edges TO service_role;

--
-- Name: TABLE llm_cache_metrics; Type: ACL; Schema: public; Owner: -
--

GRANT SELECT,INSERT,DELETE,UPDATE ON TABLE public.llm_cache_metrics TO anon;
GRANT SELECT,INSERT,DELETE,UPDATE ON TABLE public.llm_cache_metrics TO authenticated;
GRANT ALL ON TABLE public.llm_cache_metrics TO service_role;

--
-- Name: TABLE llm_collaborations; Type: ACL; Schema: public; Owner: -
--

GRANT SELECT,INSERT,DELETE,UPDATE ON TABLE public.llm_collaborations TO anon;
GRANT SELECT,INSERT,DELETE,UPDATE ON TABLE public.llm_collaborations TO authenticated;
GRANT ALL ON TABLE public.llm_collaborations TO service_role;

--
-- Name: TABLE local_llm_learning_examples; Type: ACL; Schema: public; Owner: -
--

GRANT SELECT,INSERT,DELETE,UPDATE ON TABLE public.local_llm_learning_examples TO anon;
GRANT SELECT,INSERT,DELETE,UPDATE ON TABLE public.local_llm_learning_examples TO authenticated;
GRANT ALL ON TABLE public.local_llm_learning_examples TO service_role;

--
-- Name: TABLE local_llm_training_batches; Type: ACL; Schema: public; Owner: -
--

GRANT SELECT,INSERT,DELETE,UPDATE ON TABLE public.local_llm_training_batches TO anon;
GRANT SELECT,INSERT,DELETE,UPDATE ON TABLE public.local_llm_training_batches TO authenticated;
GRANT ALL ON TABLE public.local_llm_training_batches TO service_role;

--
-- Name: TABLE memory_episodic; Type: ACL; Schema: public; Owner: -
--

GRANT SELECT,INSERT,DELETE,UPDATE ON TABLE public.memory_episodic TO anon;
GRANT SELECT,INSERT,DELETE,UPDATE ON TABLE public.memory_episodic TO authenticated;
GRANT ALL ON TABLE public.memory_episodic TO service_role;

--
-- Name: TABLE memory_semantic; Type: ACL; Schema: public; Owner: -
--

GRANT SELECT,INSERT,DELETE,UPDATE ON TABLE public.memory_semantic TO anon;
GRANT SELECT,INSERT,DELETE,UPDATE ON TABLE public.memory_semantic TO authenticated;
GRANT ALL ON TABLE public.memory_semantic TO service_role;

--
-- Name: TABLE sessions; Type: ACL; Schema: public; Owner: -
--

GRANT SELECT,INSERT,DELETE,UPDATE ON TABLE public.sessions TO anon;
GRANT SELECT,INSERT,DELETE,UPDATE ON TABLE public.sessions TO authenticated;
GRANT ALL ON TABLE public.sessions TO service_role;

--
-- Name: TABLE task_dependencies; Type: ACL; Schema: public; Owner: -
--

GRANT SELECT,INSERT,DELETE,UPDATE ON TABLE public.task_dependencies TO anon;
GRANT SELECT,INSERT,DELETE,UPDATE ON TABLE public.task_dependencies TO authenticated;
GRANT ALL ON TABLE public.task_dependencies TO service_role;

--
-- Name: TABLE tasks; Type: ACL; Schema: public; Owner: -
--

GRANT SELECT,INSERT,DELETE,UPDATE ON TABLE public.tasks TO anon;
GRANT SELECT,INSERT,DELETE,UPDATE ON TABLE public.tasks TO authenticated;
GRANT ALL ON TABLE public.tasks TO service_role;

--
-- Name: DEFAULT PRIVILEGES FOR SEQUENCES; Type: DEFAULT ACL; Schema: cesar; Owner: -
--

ALTER DEFAULT PRIVILEGES FOR ROLE postgres IN SCHEMA cesar GRANT ALL ON SEQUENCES  TO service_role;

--
-- Name: DEFAULT PRIVILEGES FOR FUNCTIONS; Type: DEFAULT ACL; Schema: cesar; Owner: -
--

ALTER DEFAULT PRIVILEGES FOR ROLE postgres IN SCHEMA cesar GRANT ALL ON FUNCTIONS  TO service_role;

--
-- Name: DEFAULT PRIVILEGES FOR TABLES; Type: DEFAULT ACL; Schema: cesar; Owner: -
--

ALTER DEFAULT PRIVILEGES FOR ROLE postgres IN SCHEMA cesar GRANT ALL ON TABLES  TO service_role;

--
-- Name: DEFAULT PRIVILEGES FOR SEQUENCES; Type: DEFAULT ACL; Schema: public; Owner: -
--

ALTER DEFAULT PRIVILEGES FOR ROLE postgres IN SCHEMA public GRANT SELECT,USAGE ON SEQUENCES  TO anon;
ALTER DEFAULT PRIVILEGES FOR ROLE postgres IN SCHEMA public GRANT SELECT,USAGE ON SEQUENCES  TO authenticated;
ALTER DEFAULT PRIVILEGES FOR ROLE postgres IN SCHEMA public GRANT ALL ON SEQUENCES  TO service_role;

--
-- Name: DEFAULT PRIVILEGES FOR FUNCTIONS; Type: DEFAULT ACL; Schema: public; Owner: -
--

ALTER DEFAULT PRIVILEGES FOR ROLE postgres IN SCHEMA public GRANT ALL ON FUNCTIONS  TO anon;
ALTER DEFAULT PRIVILEGES FOR ROLE postgres IN SCHEMA public GRANT ALL ON FUNCTIONS  TO authenticated;
ALTER DEFAULT PRIVILEGES FOR ROLE postgres IN SCHEMA public GRANT ALL ON FUNCTIONS  TO service_role;

--
-- Name: DEFAULT PRIVILEGES FOR TABLES; Type: DEFAULT ACL; Schema: public; Owner: -
--

ALTER DEFAULT PRIVILEGES FOR ROLE postgres IN SCHEMA public GRANT SELECT,INSERT,DELETE,UPDATE ON TABLES  TO anon;
ALTER DEFAULT PRIVILEGES FOR ROLE postgres IN SCHEMA public GRANT SELECT,INSERT,DELETE,UPDATE ON TABLES  TO authenticated;
ALTER DEFAULT PRIVILEGES FOR ROLE postgres IN SCHEMA public GRANT ALL ON TABLES  TO service_role;

--
-- PostgreSQL database dump complete
--

