-- Why: issue 16, items 4 and 5, follow-up. A handler that ignores its AbortSignal kept running
-- after its drain had ended its job (cancelled, or failed for a retry at the drain's time
-- limit): a retried job could then run in a second drain while the first copy still ran, the
-- same job twice at once. Now the drain keeps such a job leased until its handler has actually
-- stopped (drain.ts), and only then records the outcome it decided. For that the drain's
-- renewal must also renew a job whose cancel was requested: cesar.renew_leases as in
-- 20261203001500_job_lifecycle.sql, without the `cancel_requested_at is null` condition on
-- the renewal. Only a drain whose handler of the job is still running asks for it (it stops
-- asking once the handler has settled), so a renewed cancelled job is one whose handler has
-- not stopped yet. A drain that dies meanwhile (the runtime's wall clock) stops renewing; the
-- lease runs out and the claim ends the job cancelled, as before.

create or replace function cesar.renew_leases(worker text, leases jsonb)
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
