-- Why: a failed job's outcome was decided twice. The drain computed a retry time in TypeScript
-- and the statement recording it re-decided (`permanent or attempts >= max_attempts`, three
-- times over) whether to keep or discard it; the lease-takeover path in cesar.claim_jobs stated
-- the max_attempts rule a fourth and fifth time, and the error-history entry was built in
-- three places. Now:
--   * the max_attempts rule is stated once, cesar.job_attempts_left, used by the takeover
--     path here and handed to the drain with each started job (claim_jobs, start_jobs:
--     `attempts_left`), so the two paths cannot disagree about a job's last attempt;
--   * a handler's failure is decided in TypeScript (decideOutcome in
--     packages/shared/src/queue/outcome.ts: permanent, last attempt or a backoff time) and
--     the drain's statement only applies it, fenced by lease and attempt;
--   * a lease that expired with its handler started is decided here alone, at claim time;
--   * every error-history entry is built by cesar.job_error_entry.

-- Whether a job that has been charged `attempts` attempts may run again: the one statement of
-- the max_attempts rule. No SET clause, so that it is inlined into the claim's scan of
-- expired leases; it names no objects.
create function cesar.job_attempts_left(attempts integer, max_attempts integer) returns boolean
language sql
immutable
parallel safe
return attempts < max_attempts;

-- One entry of a job's `errors` history: {attempt, at, kind, error, worker}. kind is a
-- handler's failure kind (retry, permanent, timeout) or lease_expired; worker is the drain
-- that held the attempt. Stable, not immutable: `at` is rendered in the session's time zone.
create function cesar.job_error_entry(attempt integer, kind text, message text, worker text,
                                      at timestamptz) returns jsonb
language sql
stable
parallel safe
return pg_catalog.jsonb_build_object('attempt', attempt, 'at', at, 'kind', kind, 'error', message,
                                     'worker', worker);

-- claim_jobs and start_jobs now return `attempts_left` (cesar.job_attempts_left of the
-- started attempt): a new result column, so both are dropped and created again.
drop function cesar.claim_jobs(text, integer, text[], integer, integer);
drop function cesar.start_jobs(text, bigint[], integer[]);

-- Claims up to `batch_size` due jobs for `worker` in one statement and returns them with
-- their type's policy. Due means pending with run_at <= now(), or running with an expired
-- lease (its drain died): such a job is taken over, and if its handler had started, the lost
-- attempt is recorded. The first `start_count` jobs (all when null), in priority order, are
-- started: their attempt is charged and `started` is true. The others are only leased: the
-- drain starts them with cesar.start_jobs when it has room.
--
-- Outcomes: a job whose lease expired is decided here, and only here: with attempts left
-- (cesar.job_attempts_left) it is taken over and runs again at once, without backoff; on its
-- last attempt it is failed for good. A handler's failure is decided by the drain
-- (decideOutcome, outcome.ts), from `attempts_left` returned here and by start_jobs: the same
-- rule, so a job fails for good after the same attempt either way.
--
-- Locking: the candidates are picked with FOR UPDATE SKIP LOCKED, so concurrent drains never
-- wait on each other and never take the same job; the lease (locked_until) replaces any lock
-- once the statement commits.
--
-- Per-type concurrency caps hold across concurrent drains: a claimer first takes a
-- transaction-scoped advisory lock per capped type that has due jobs (sorted, so claimers
-- cannot deadlock), and the claim statement that follows counts the running jobs in a fresh
-- snapshot, after every earlier claimer of that type has committed. Types without a cap take
-- no lock. A job leased but not yet started counts against its type's cap: its drain may
-- start it at any moment.
--
-- Fencing: an outcome is recorded only by the worker that holds the job (locked_by, unique
-- per drain call) with the attempt number it started; a takeover changes locked_by.
create function cesar.claim_jobs(
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
as $$
#variable_conflict use_column
declare
  capped_count integer;
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
  -- 0.74 ms.
  perform set_config('synchronous_commit', 'off', true);

  -- Per-type caps: lock every capped type that has due jobs, in one sorted pass.
  perform pg_advisory_xact_lock(hashtext('cesar.job_queue'), hashtext(capped.job_type))
  from (
    select t.job_type from cesar.job_types t
    where t.concurrency is not null
      and (claim_jobs.job_types is null or t.job_type = any (claim_jobs.job_types))
      and exists (
        select from cesar.job_queue q
        where q.job_type = t.job_type
          and ((q.status = 'pending' and q.run_at <= now()) or (q.status = 'running' and q.locked_until < now())))
    order by t.job_type
  ) capped;
  get diagnostics capped_count = row_count;
  if capped_count > 0 then
    spare := claim_jobs.batch_size;
  end if;

  -- The claim must walk the pending index in order and stop at the batch: an ordered index
  -- scan also marks the entries of finished jobs dead as it passes them, so the next claim
  -- skips them. With stale statistics after a burst the planner would rather take a bitmap
  -- scan and sort every pending entry, dead ones included: after draining 20,000 jobs that
  -- made a 0.14 ms claim take 1.2 ms, every time, until vacuum. (Set for the rest of this
  -- claim's transaction only.)
  perform set_config('enable_bitmapscan', 'off', true);

  return query
  -- Two sources, each read in its own index order: due pending jobs, and running jobs whose
  -- lease ran out. When capped types are due, look at twice the batch so that capped types
  -- with no room do not starve it; the extra rows stay locked only until this statement ends.
  with pending as (
    select q.id, q.job_type, q.priority, q.run_at, q.backoff_base_seconds, q.backoff_cap_seconds
    from cesar.job_queue q
    where q.status = 'pending' and q.run_at <= now()
      and (claim_jobs.job_types is null or q.job_type = any (claim_jobs.job_types))
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
      and (claim_jobs.job_types is null or q.job_type = any (claim_jobs.job_types))
    order by q.locked_until
    limit claim_jobs.batch_size
    for update skip locked
  ), dead as (
    -- A job whose lease expired on its last attempt is failed for good, not retried.
    update cesar.job_queue q
    set status = 'failed', finished_at = now(), updated_at = now(),
        last_error = 'lease expired: the drain running attempt ' || q.attempts || ' stopped before recording an outcome',
        errors = q.errors || cesar.job_error_entry(q.attempts, 'lease_expired', 'lease expired', q.locked_by, now()),
        locked_by = null, locked_until = null
    where q.id in (
      select d.id from cesar.job_queue d
      where d.status = 'running' and d.locked_until < now() and not cesar.job_attempts_left(d.attempts, d.max_attempts)
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

-- Starts jobs a drain claimed without starting (see cesar.claim_jobs): charges their attempt
-- and renews their lease from now, for the ones this worker still holds (a cancelled job, or
-- one taken over after its lease ran out, is left out). Returns the started jobs' attempt
-- numbers, the token their outcomes must present, and whether a failure may retry. One
-- statement per group of free slots.
create function cesar.start_jobs(worker text, ids bigint[], lease_seconds integer[])
returns table (id bigint, attempts integer, locked_until timestamptz, attempts_left boolean)
language sql
volatile
set search_path = ''
as $$
  update cesar.job_queue q
  set attempts = q.attempts + 1, started_at = now(), updated_at = now(),
      locked_until = now() + make_interval(secs => s.lease_seconds)
  from unnest(start_jobs.ids, start_jobs.lease_seconds) as s (id, lease_seconds)
  where q.id = s.id and q.status = 'running' and q.locked_by = start_jobs.worker
    and q.started_at is null
  returning q.id, q.attempts, q.locked_until, cesar.job_attempts_left(q.attempts, q.max_attempts)
$$;

revoke execute on function cesar.claim_jobs(text, integer, text[], integer, integer),
  cesar.start_jobs(text, bigint[], integer[]), cesar.job_attempts_left(integer, integer),
  cesar.job_error_entry(integer, text, text, text, timestamptz)
  from public, anon, authenticated;
grant execute on function cesar.claim_jobs(text, integer, text[], integer, integer),
  cesar.start_jobs(text, bigint[], integer[]), cesar.job_attempts_left(integer, integer),
  cesar.job_error_entry(integer, text, text, text, timestamptz)
  to service_role;
