-- A lingering job-drain waits for work and takes it in one round trip: cesar.await_jobs waits
-- as cesar.await_work does, and once jobs are due, commits (so that the claim's now() comes
-- after the writer's commit: a claim in the waiting transaction would not see a job enqueued
-- after that transaction began as due) and claims them, started, as cesar.finish_and_claim
-- does. A procedure: a function cannot commit. It has no SET clause (a procedure with one
-- cannot commit), so it names every object by its schema, types included.
--
-- `step` answers null when no work came within `timeout_ms`, and otherwise the claim's step
-- (finish_and_claim's answer): its jobs are the drain's to run, none when the due work could
-- not be taken (a cap, a serial key), which the drain's pass then finds for itself.
create procedure cesar.await_jobs(worker text, batch_size integer, job_types text[],
                                  default_lease_seconds integer, start_count integer,
                                  timeout_ms integer, inout step jsonb default null)
language plpgsql
as $$
begin
  step := null;
  if cesar.await_work('job-drain', timeout_ms, job_types) then
    commit;
    step := cesar.finish_and_claim(worker, '[]'::pg_catalog.jsonb, '[]'::pg_catalog.jsonb,
                                   batch_size, job_types, default_lease_seconds, start_count);
  end if;
end
$$;

revoke all on procedure cesar.await_jobs(text, integer, text[], integer, integer, integer, jsonb)
  from public, anon, authenticated;
grant execute on procedure cesar.await_jobs(text, integer, text[], integer, integer, integer, jsonb)
  to service_role;
