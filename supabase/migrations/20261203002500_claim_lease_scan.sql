-- Why: the claim could read every running job of the queue, twice, to find the few whose lease
-- ran out. Its `expired` source (running jobs whose drain died, taken over) and its `dead`
-- update (those on their last attempt or cancelled, ended) selected `status = 'running' and
-- locked_until < now()`, which two indexes can serve: job_queue_lease_idx (locked_until) where
-- status = 'running', as a range, and job_queue_type_status_idx (job_type, status), walked
-- whole and filtered on its second column. The planner chose between them on statistics, and
-- statistics of a queue where nothing ran (an ANALYZE that saw only finished jobs: a fresh
-- project, an idle queue before a burst) make both look like one row; the type index, its
-- leading column one value and so "perfectly correlated", then wins on heap cost (estimated
-- 6.5 against 8.2). Its scan fetches every running job to test the lease: 305 running jobs of
-- other drains made a claim of 1 read 616 rows, and tests/job-queue.test.ts "probes each
-- capped type on its own" (under 100) failed when run beside flow-control, doorbell and
-- enqueue-modes, whose running jobs it read. Every claim ran that plan until the statistics
-- changed.
--
-- Now both read the lease alone, `locked_until < now()`: a job has a lease exactly while it
-- runs (job_queue_check: (status = 'running') = (locked_until is not null)), so they select
-- the same rows, and the type index, whose predicate needs a status, cannot serve them. So
-- that the lease index can, it is made again over `locked_until is not null`, the same rows
-- by that check: a partial index serves only a query that implies its predicate, and
-- `locked_until < now()` implies `locked_until is not null`, not `status = 'running'`. No other
-- index's predicate is implied and the claim plans no sequential scan, so this is the plan
-- whatever the statistics. Its other readers (the probe of capped types, the caps' counts of
-- running jobs, cesar.jobs_due) compare locked_until too, so it serves them as before.
--
-- EXPLAIN ANALYZE (generic plan; the failing run's test cluster and statistics, 305 running
-- jobs of another drain with leases an hour ahead, a capped type's job and 5,000 others due):
--   before: expired: Sort <- Index Scan using job_queue_type_status_idx, Index Cond: (status =
--           'running'), Rows Removed by Filter: 305, 25 buffers, 0.20 ms; dead: the same scan,
--           23 buffers, 0.10 ms. The claim read 616 rows, the next 308.
--   after:  both: Index Scan using job_queue_lease_idx, Index Cond: (locked_until < now()),
--           1 buffer, 0.008 and 0.006 ms. The claim read 6 rows, the next 2.
-- Timed, 100 claims of 100 (each its own transaction, its batch then completed) of 20,000 due
-- no-op jobs with 300 running jobs of another type, before and after alternating in one
-- session, 21 rounds: with statistics of an idle queue, 500 rows read per claim before and
-- 200 after, median 313 ms before and 283 ms after (after faster in 17 of 21 rounds); with
-- statistics of the queued jobs, the same plans and 201 rows either way, 251 and 240 ms
-- (after faster in 10 of 21): a shared two-core machine, noise of about 20 ms either way.
-- Results are the same: claims of a capped, a plain and a rate-limited type, with expired
-- leases started and not, on their last attempt and cancelled, gave the same rows and left the
-- same jobs, before and after.
-- Cost: the index is built again, writes to the queue waiting for it (150 ms for a million
-- jobs, locally).
-- Not fixed here, found on the way, the same statistics misleading other scans of the claim:
-- its `pending` source can walk job_queue_type_status_idx on `status = 'pending'` and sort
-- every pending job (the same test failed so beside the same files, 6,345 rows, before this
-- change and after it, 1 run in 6), and the caps' counts of running jobs (`r.job_type =
-- c.job_type and r.status = 'running' and r.locked_until >= now()`) can walk
-- job_queue_lease_idx over every unexpired lease instead of the type index (305 rows); and
-- cesar.jobs_due, which a lingering drain calls every few milliseconds, still selects
-- `status = 'running' and locked_until < at` and reads every running job the same way (306
-- rows a call); with this index it too can select by the lease alone.

-- Running jobs by lease: the rows of `status = 'running'` (job_queue_check), indexed under a
-- predicate that `locked_until < now()` implies.
drop index cesar.job_queue_lease_idx;
create index job_queue_lease_idx on cesar.job_queue (locked_until) where locked_until is not null;

-- The claim: 20261203002100_action_rate_limits.sql's, with its expired and dead sources
-- reading the lease alone (both statements).
create or replace function cesar.claim_jobs(
  worker text,
  batch_size integer,
  job_types text[] default null,
  default_lease_seconds integer default 60,
  start_count integer default null
) returns table (
  id bigint,
  job_type text,
  payload jsonb,
  attempts integer,
  max_attempts integer,
  priority integer,
  run_at timestamptz,
  created_at timestamptz,
  locked_until timestamptz,
  backoff_base_seconds numeric,
  backoff_cap_seconds numeric,
  lease_seconds integer,
  started boolean,
  attempts_left boolean
)
language plpgsql
volatile
set search_path = ''
set enable_seqscan = off
set enable_bitmapscan = off
set jit = off
as $$
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
    -- The lease alone, not `status = 'running'` with it: a job has a lease exactly while it
    -- runs (job_queue_check), and only job_queue_lease_idx serves `locked_until < now()`
    -- (see 20261203002500_claim_lease_scan.sql).
    where q.locked_until < now() and cesar.job_attempts_left(q.attempts, q.max_attempts)
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
    -- could stop the handler and record it. Same scan of job_queue_lease_idx as expired's.
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
      where d.locked_until < now()
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
    -- The lease alone, not `status = 'running'` with it: a job has a lease exactly while it
    -- runs (job_queue_check), and only job_queue_lease_idx serves `locked_until < now()`
    -- (see 20261203002500_claim_lease_scan.sql).
    where q.locked_until < now() and cesar.job_attempts_left(q.attempts, q.max_attempts)
      and q.cancel_requested_at is null
      and (claim_jobs.job_types is null or q.job_type = any (claim_jobs.job_types))
    order by q.locked_until
    limit claim_jobs.batch_size
    for update skip locked
  ), dead as (
    -- A job whose lease expired on its last attempt is failed for good, not retried; one
    -- whose cancel was requested (cesar.cancel_jobs) ends cancelled: its drain died before it
    -- could stop the handler and record it. Same scan of job_queue_lease_idx as expired's.
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
      where d.locked_until < now()
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
