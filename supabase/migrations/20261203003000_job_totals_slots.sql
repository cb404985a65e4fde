-- The totals of finished jobs (cesar.job_totals) in slots: a type's row was one row, and every
-- outcome recorded took its lock until the transaction's end, so that a drain's two claims in
-- flight (cesar.finish_and_claim records the last batch's outcomes, then claims) waited for
-- each other there, commit and WAL flush included. A transaction now counts in its backend's
-- slot (of 64), and readers add a type's slots up (api/metrics.ts). On a temporary stack,
-- 20,000 no-op jobs by one job-drain call, three each way in one run: 19,721 / 20,502 / 20,898
-- jobs/s with one row, 23,772 / 23,743 / 24,297 with slots, 20,816 / 20,585 / 20,429 with one
-- row again.
alter table cesar.job_totals add column slot smallint not null default 0;
alter table cesar.job_totals drop constraint job_totals_pkey;
alter table cesar.job_totals add primary key (job_type, slot);
comment on table cesar.job_totals is
  'Jobs completed and failed for good, per type, in slots (add a type''s rows up): kept when '
  'the jobs are pruned.';

-- The slot of this transaction's totals: its backend's, so that two transactions at once
-- rarely share one (never from the same backend).
create function cesar.job_totals_slot() returns smallint
language sql
volatile
set search_path = ''
as $$
  select (pg_backend_pid() % 64)::smallint
$$;
revoke execute on function cesar.job_totals_slot() from public, anon, authenticated;

-- As in 20261203001500_job_lifecycle.sql, counting in the transaction's slot.
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
    insert into cesar.job_totals as t (job_type, slot, completed)
    select d.job_type, cesar.job_totals_slot(), count(*)
    from done d where d.status = 'completed' group by d.job_type
    on conflict (job_type, slot) do update set completed = t.completed + excluded.completed
  )
  select d.id from done d where d.status = 'completed'
$$;

-- As in 20261203001500_job_lifecycle.sql, counting in the transaction's slot.
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
    insert into cesar.job_totals as t (job_type, slot, failed)
    select d.job_type, cesar.job_totals_slot(), count(*)
    from done d where d.status = 'failed' group by d.job_type
    on conflict (job_type, slot) do update set failed = t.failed + excluded.failed
  )
  select d.id, d.status from done d
$$;
