-- Why: issue 16, items 4 and 5. A cancel reached only jobs that had not started: a running
-- handler went on to the end and its outcome was refused, and a handler that ran longer than
-- its type's fixed lease_seconds was aborted (or taken over by another drain). Now:
--   * cesar.cancel_jobs on a job whose handler runs records the request (cancel_requested_at)
--     and leaves the job running, leased, until the handler has stopped: the drain hears of
--     it through its lease renewal (below), aborts the handler's signal, and records the job
--     `cancelled` (never retried, never failed: cesar.fail_jobs). A job whose drain died ends
--     cancelled when its lease runs out (cesar.claim_jobs, in 20261203001600), not retried;
--   * cesar.renew_leases renews the leases of a drain's running jobs, writes the progress
--     their handlers reported, and answers which of them were cancelled or taken over: ONE
--     statement per drain per interval, only while handlers run long (see drain.ts). The
--     claim path is unchanged in cost: no new statement, the cancel check rides on the
--     existing expired-lease scan;
--   * progress and progress_message hold the last progress a handler reported
--     (ctx.progress), as of the last renewal.

alter table cesar.job_queue
  -- The share of its work the running attempt reported done, 0 to 1; null: none reported.
  add column progress numeric check (progress between 0 and 1),
  -- What the handler said with it ("copied 40,000 rows").
  add column progress_message text check (length(progress_message) <= 500),
  -- Set by cesar.cancel_jobs on a job whose handler runs; the job ends cancelled.
  add column cancel_requested_at timestamptz;

-- Cancels jobs. A pending job, or a running one whose handler has not started (it waits in a
-- drain's local queue: cesar.start_jobs leaves it out), is cancelled at once. A job whose
-- handler runs is marked: its drain aborts the handler within seconds (cesar.renew_leases)
-- and records it cancelled; if that drain died, the claim does when the lease runs out.
-- Returns the ids cancelled or marked (a job already marked is returned again).
create or replace function cesar.cancel_jobs(ids bigint[]) returns setof bigint
language sql
volatile
set search_path = ''
as $$
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

-- A drain's renewal of its running jobs (drain.ts): `leases` is a JSON array of
-- {id, attempt, lease_seconds, force, progress, message}. For each job this worker still holds
-- at that attempt:
--   * the lease is renewed to now + lease_seconds once a third of it has passed since the last
--     renewal (or at once with `force`: ctx.heartbeat()), so a job is written about every
--     lease/3 seconds though the drain asks more often (it asks every 2 s to hear of cancels);
--     a job whose cancel was requested is not renewed: its drain stops it now, or the lease
--     runs out and the claim ends it cancelled;
--   * the progress reported since the last renewal is written (progress null: none reported;
--     a report replaces the message too).
-- Answers one row per job asked about: whether this worker still holds it (false: cancelled
-- before its handler started, or taken over after an expired lease; the drain aborts it and
-- its outcome would be refused anyway), and whether its cancel was requested.
create function cesar.renew_leases(worker text, leases jsonb)
returns table (id bigint, held boolean, cancel_requested boolean)
language sql
volatile
set search_path = ''
as $$
  with asked as (
    select r.* from jsonb_to_recordset(renew_leases.leases)
      as r (id bigint, attempt integer, lease_seconds integer, force boolean, progress numeric,
            message text)
  ), held as (
    select q.id, q.cancel_requested_at is not null as cancel_requested, a.lease_seconds,
           a.progress, left(a.message, 500) as message,
           q.cancel_requested_at is null
             and (a.force or q.locked_until < now() + make_interval(secs => a.lease_seconds * 2 / 3.0)) as renew
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

-- The claim's two changes (the takeover path leaves a cancel-requested job to the `dead`
-- step, which ends it cancelled; a claimed job's progress and cancel request start empty)
-- are in cesar.claim_jobs as 20261203001600_flow_control.sql defines it, which lands with
-- this migration: one copy of the claim rather than two.

-- Marks jobs completed: `completions` is a JSON array of {id, attempt, result}. Only the
-- holder of the attempt may (locked_by and the attempt number are the fencing token). As in
-- 20261203001100_drain_speed.sql, but a job whose cancel was requested ends cancelled (its
-- result kept) even when its handler finished before the drain heard of the cancel. Returns
-- the ids it completed (not those that ended cancelled); counts them in cesar.job_totals.
create or replace function cesar.complete_jobs(worker text, completions jsonb)
returns table (id bigint)
language sql
volatile
set search_path = ''
as $$
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
    insert into cesar.job_totals as t (job_type, completed)
    select d.job_type, count(*) from done d where d.status = 'completed' group by d.job_type
    on conflict (job_type) do update set completed = t.completed + excluded.completed
  )
  select d.id from done d where d.status = 'completed'
$$;

-- Records failed attempts as the drain decided them (decideOutcome, outcome.ts): `failures`
-- is a JSON array of {id, attempt, kind, error, status, run_at}; status is pending (retry at
-- run_at), failed (for good) or cancelled (the drain stopped the handler of a cancelled job).
-- A job whose cancel was requested ends cancelled whatever the drain decided: a handler that
-- failed after the request (its signal aborted it, or it failed on its own before the drain
-- heard of the request) is not retried. Applied only by the holder of the attempt; each failure is
-- appended to the job's error history. Returns what became of each job the worker still held;
-- failed-for-good jobs are counted in cesar.job_totals.
create or replace function cesar.fail_jobs(worker text, failures jsonb)
returns table (id bigint, status text)
language sql
volatile
set search_path = ''
as $$
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
    insert into cesar.job_totals as t (job_type, failed)
    select d.job_type, count(*) from done d where d.status = 'failed' group by d.job_type
    on conflict (job_type) do update set failed = t.failed + excluded.failed
  )
  select d.id, d.status from done d
$$;

-- As in 20261203001100_drain_speed.sql, and counts the jobs that ended cancelled.
create or replace function cesar.finish_and_claim(
  worker text,
  completions jsonb,
  failures jsonb,
  batch_size integer,
  job_types text[] default null,
  default_lease_seconds integer default 60,
  start_count integer default null
) returns jsonb
language plpgsql
volatile
set search_path = ''
as $$
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


revoke execute on function cesar.renew_leases(text, jsonb) from public, anon, authenticated;
grant execute on function cesar.renew_leases(text, jsonb) to service_role;
