-- cesar.jobs_due, which a lingering drain asks every few milliseconds, looked for running jobs
-- whose lease ran out with `status = 'running' and locked_until < at`: the same choice the
-- claim's expired source had (20261203002500_claim_lease_scan.sql), served by walking
-- job_queue_type_status_idx over every running job and testing each lease (306 rows a call
-- beside 305 running jobs of other drains) whenever the statistics were taken while nothing
-- ran. It now selects by the lease alone, as the claim does: a job has a lease exactly while it
-- runs (job_queue_check), and only job_queue_lease_idx (over `locked_until is not null`) serves
-- `locked_until < at`. Otherwise 20261203001000_coalesced_doorbells.sql's.
create or replace function cesar.jobs_due(job_types text[] default null, at timestamptz default now())
returns boolean
language sql
stable
set search_path = ''
set enable_seqscan = off
set enable_bitmapscan = off
as $$
  select exists (
           select from cesar.job_queue q
           where q.status = 'pending' and q.run_at <= jobs_due.at
             and (jobs_due.job_types is null or q.job_type = any (jobs_due.job_types)))
      or exists (
           select from cesar.job_queue q
           where q.locked_until < jobs_due.at
             and (jobs_due.job_types is null or q.job_type = any (jobs_due.job_types)))
$$;
