-- Why: the job-drain function drained 20,000 no-op jobs at 1,200-3,500 jobs/s, a quarter of
-- graphile-worker's rate on the same database (issue 15). Profiling found, besides the
-- function's own CPU:
--   * the claim's per-type-cap probe hashed every due job of the queue on every claim once
--     its plan went generic (10-16 ms of a claim of 100 with 18,000 jobs queued, EXPLAIN
--     ANALYZE): a claim's cost grew with the queue. Each capped type is probed on its own now;
--   * a batch cost two round trips through the transaction pooler (record outcomes, then
--     claim), each its own transaction: cesar.finish_and_claim records a batch's outcomes and
--     claims the next batch in one statement.
--   * on a queue table never analyzed, the claim sorted every pending job of the drain's
--     types for each batch instead of walking job_queue_claim_idx in order (see claim_jobs);
--   * on one analyzed in the middle of a burst, each capped type's probe read the whole table
--     (see claim_jobs): the claim plans no sequential or bitmap scan now;
--   * every outcome wrote an entry into job_queue_type_status_idx, which indexed finished jobs
--     too though only unfinished ones are looked up by type and status (the claim's probes,
--     the lease scans): it is partial now, and completing 1,000 jobs writes 4,100 WAL records
--     instead of 5,100.
-- Recording outcomes moves into SQL (cesar.complete_jobs, cesar.fail_jobs, the statements
-- packages/shared/src/queue/queries.ts ran until now, unchanged), so that the drain's two
-- paths, outcomes alone and outcomes with a claim, share one statement of each.

-- Jobs by type among the unfinished (per-type caps, expired leases). Finished jobs are found
-- by job_queue_finished_idx; the dashboard's and the metrics' counts by type and status
-- scan the table as they did.
drop index cesar.job_queue_type_status_idx;
create index job_queue_type_status_idx on cesar.job_queue (job_type, status)
  where status in ('pending', 'running');

-- The claim's changes listed above (the cap probe per type, the type filter as an array
-- containment, no sequential or bitmap scan) are in cesar.claim_jobs as
-- 20261203001600_flow_control.sql defines it, which lands with this migration: one copy of
-- the claim rather than three. cesar.finish_and_claim below calls it.

-- Marks jobs completed: `completions` is a JSON array of {id, attempt, result}. Only the
-- holder of the attempt may (locked_by and the attempt number are the fencing token); returns
-- the ids it still held. Counts them in cesar.job_totals.
create function cesar.complete_jobs(worker text, completions jsonb)
returns table (id bigint)
language sql
volatile
set search_path = ''
as $$
  with done as (
    update cesar.job_queue q
    set status = 'completed', result = c.result, finished_at = now(), updated_at = now(),
        locked_by = null, locked_until = null
    from jsonb_to_recordset(complete_jobs.completions) as c (id bigint, attempt integer, result jsonb)
    where q.id = c.id and q.attempts = c.attempt and q.status = 'running'
      and q.locked_by = complete_jobs.worker
    returning q.id, q.job_type
  ), counted as (
    insert into cesar.job_totals as t (job_type, completed)
    select d.job_type, count(*) from done d group by d.job_type
    on conflict (job_type) do update set completed = t.completed + excluded.completed
  )
  select d.id from done d
$$;

-- Records failed attempts as the drain decided them (decideOutcome, outcome.ts): `failures`
-- is a JSON array of {id, attempt, kind, error, status, run_at}; status is pending (retry at
-- run_at) or failed (for good). Applied only by the holder of the attempt; each failure is
-- appended to the job's error history. Returns what became of each job the worker still held;
-- failed-for-good jobs are counted in cesar.job_totals.
create function cesar.fail_jobs(worker text, failures jsonb)
returns table (id bigint, status text)
language sql
volatile
set search_path = ''
as $$
  with done as (
    update cesar.job_queue q
    set status = f.status,
        run_at = coalesce(f.run_at, q.run_at),
        finished_at = case when f.status = 'failed' then now() end,
        last_error = f.error,
        errors = q.errors || cesar.job_error_entry(q.attempts, f.kind, f.error, q.locked_by, now()),
        locked_by = null, locked_until = null, updated_at = now()
    from jsonb_to_recordset(fail_jobs.failures)
      as f (id bigint, attempt integer, kind text, error text, status text, run_at timestamptz)
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

-- A drain's step: records the outcomes of the jobs it finished (cesar.complete_jobs,
-- cesar.fail_jobs) and claims its next batch (cesar.claim_jobs), in one statement and one
-- transaction: one round trip through the pooler per batch instead of two. Answers one JSON
-- document, {completed, failed, retried, jobs}: how many outcomes were recorded (the rest
-- were superseded: cancelled or taken over), and the claimed jobs, as claim_jobs returns them
-- (one JSON document parses in a fraction of the time of as many rows of 14 columns).
--
-- Outcomes first: a capped type's slot freed by an outcome here is free for the claim, whose
-- statements see this transaction's updates. The claim's asynchronous commit (see claim_jobs)
-- is for claims alone: a transaction that records outcomes commits synchronously, as the
-- outcomes did on their own, so a database crash never loses a recorded outcome.
create function cesar.finish_and_claim(
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
  jobs jsonb;
begin
  if jsonb_array_length(coalesce(finish_and_claim.completions, '[]')) > 0 then
    select count(*) into completed
    from cesar.complete_jobs(finish_and_claim.worker, finish_and_claim.completions);
  end if;
  if jsonb_array_length(coalesce(finish_and_claim.failures, '[]')) > 0 then
    select count(*) filter (where f.status = 'failed'), count(*) filter (where f.status = 'pending')
    into failed, retried
    from cesar.fail_jobs(finish_and_claim.worker, finish_and_claim.failures) f;
  end if;
  -- Ids as text, as the drain keeps them (a bigint need not fit a JSON number).
  select coalesce(jsonb_agg(to_jsonb(c) || jsonb_build_object('id', c.id::text)), '[]') into jobs
  from cesar.claim_jobs(finish_and_claim.worker, finish_and_claim.batch_size,
                        finish_and_claim.job_types, finish_and_claim.default_lease_seconds,
                        finish_and_claim.start_count) c;
  if completed + failed + retried > 0 then
    perform set_config('synchronous_commit', 'on', true);
  end if;
  return jsonb_build_object('completed', completed, 'failed', failed, 'retried', retried,
                            'jobs', jobs);
end
$$;

revoke execute on function cesar.complete_jobs(text, jsonb), cesar.fail_jobs(text, jsonb),
  cesar.finish_and_claim(text, jsonb, jsonb, integer, text[], integer, integer)
  from public, anon, authenticated;
grant execute on function cesar.complete_jobs(text, jsonb), cesar.fail_jobs(text, jsonb),
  cesar.finish_and_claim(text, jsonb, jsonb, integer, text[], integer, integer)
  to service_role;
