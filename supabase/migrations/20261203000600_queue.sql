-- Why: every workflow, schedule and sync runs as a job. This is the queue: a table with
-- leases (never a boolean lock), per-type policy, a per-attempt error history, dedup keys,
-- and the SQL functions that triggers, pg_cron and clients use to enqueue and manage jobs
-- (workflow runs included: cesar.create_executions). Claiming, starting and recording
-- outcomes are done by the job-drain function (packages/shared/src/queue) through the
-- functions here.
--
-- An attempt means that a handler started. A drain claims a batch into its local queue and
-- starts `concurrency` of them at once; when the rest waited there already charged, a drain
-- killed mid-batch cost attempts to jobs that never ran (256 of 500 jobs needed a second
-- attempt after three kills; five kills failed a job that never ran). So a claim charges only
-- the jobs it starts at once; a drain charges the others when it starts them
-- (cesar.start_jobs), and a lease that expires on a job that never started takes no attempt.
--
-- A failed job's outcome is decided once:
--   * the max_attempts rule is stated once, cesar.job_attempts_left, used by the takeover
--     path in cesar.claim_jobs and handed to the drain with each started job (claim_jobs,
--     start_jobs: `attempts_left`), so the two paths cannot disagree about a job's last
--     attempt;
--   * a handler's failure is decided in TypeScript (decideOutcome in
--     packages/shared/src/queue/outcome.ts: permanent, last attempt or a backoff time) and
--     the drain's statement only applies it, fenced by lease and attempt;
--   * a lease that expired with its handler started is decided here alone, at claim time;
--   * every error-history entry is built by cesar.job_error_entry.
--
-- The job handlers' own SQL is here too: the least-loaded agent (one rule for agent.task,
-- task.assign and a2a.route) and the job types' policy.

create table cesar.job_types (
  job_type text primary key check (job_type ~ '^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$'),
  -- Attempts before a job is failed for good (the inventory's default: 5).
  max_attempts integer not null default 5 check (max_attempts between 1 and 100),
  -- Exponential backoff: base * 2^(attempt-1), capped, with jitter (queue/backoff.ts).
  -- The inventory's base is 5 minutes.
  backoff_base_seconds numeric not null default 300 check (backoff_base_seconds > 0),
  backoff_cap_seconds numeric not null default 3600 check (backoff_cap_seconds > 0),
  -- Jobs of this type running at once across all drains; null: no cap.
  concurrency integer check (concurrency > 0),
  -- How long a claim holds a job. The handler is aborted a little before; a drain that dies
  -- loses the lease when it runs out and the job becomes claimable again.
  lease_seconds integer not null default 60 check (lease_seconds between 1 and 3600),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
create trigger job_types_touch before update on cesar.job_types
  for each row execute function cesar.touch_updated_at();

create table cesar.job_queue (
  id bigint generated always as identity primary key,
  job_type text not null check (job_type ~ '^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$'),
  payload jsonb not null default '{}',
  status text not null default 'pending'
    check (status in ('pending', 'running', 'completed', 'failed', 'cancelled')),
  -- Higher runs first.
  priority integer not null default 0,
  run_at timestamptz not null default now(),
  -- Incremented when a job is claimed: the attempt number is also the fencing token that an
  -- outcome must present.
  attempts integer not null default 0 check (attempts >= 0),
  max_attempts integer not null default 5 check (max_attempts between 1 and 100),
  last_error text,
  -- One entry per failed attempt: {attempt, at, kind, error, worker}.
  errors jsonb not null default '[]' check (jsonb_typeof(errors) = 'array'),
  result jsonb,
  dedup_key text,
  -- Jobs sharing a serial key run one at a time, in id order (per-row ordering of workflows).
  serial_key text,
  -- The workflow execution that made this job, if any (see the workflows migration).
  execution_id bigint constraint job_queue_execution_fk
    references cesar.workflow_executions (id) on delete set null,
  -- Overrides of the job type's backoff, from a workflow's retry policy.
  backoff_base_seconds numeric check (backoff_base_seconds > 0),
  backoff_cap_seconds numeric check (backoff_cap_seconds > 0),
  locked_by text,
  locked_until timestamptz,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  finished_at timestamptz,
  -- When the current attempt's handler started; null while the job waits, claimed, in a
  -- drain's local queue.
  started_at timestamptz,
  check ((status = 'running') = (locked_until is not null))
);

-- The claim path: due pending jobs in priority order, and running jobs whose lease ran out.
create index job_queue_claim_idx on cesar.job_queue (priority desc, run_at, id) where status = 'pending';
create index job_queue_lease_idx on cesar.job_queue (locked_until) where status = 'running';
-- A dedup key is unique among unfinished jobs; a finished job frees it.
create unique index job_queue_dedup_idx on cesar.job_queue (dedup_key)
  where dedup_key is not null and status in ('pending', 'running');
-- Retention and "failed in the last 15 minutes".
create index job_queue_finished_idx on cesar.job_queue (status, finished_at) where finished_at is not null;
create index job_queue_type_status_idx on cesar.job_queue (job_type, status);
create index job_queue_serial_idx on cesar.job_queue (serial_key, id)
  where serial_key is not null and status in ('pending', 'running');
create index job_queue_execution_idx on cesar.job_queue (execution_id) where execution_id is not null;

-- Executions follow their jobs' status (cesar.follow_execution_status, in the workflows
-- migration).
create trigger job_queue_follow_execution after update of status on cesar.job_queue
  for each row when (new.execution_id is not null and old.status is distinct from new.status)
  execute function cesar.follow_execution_status();

-- Enqueues one job; returns its id, or the id of the unfinished job holding the same
-- dedup key. Rings the job-drain doorbell when the job is due now.
create function cesar.enqueue(
  job_type text,
  payload jsonb default '{}',
  run_at timestamptz default null,
  priority integer default 0,
  max_attempts integer default null,
  dedup_key text default null
) returns bigint
language plpgsql
volatile
set search_path = ''
as $$
#variable_conflict use_column
declare
  new_id bigint;
  due timestamptz := coalesce(enqueue.run_at, now());
begin
  insert into cesar.job_queue (job_type, payload, run_at, priority, max_attempts, dedup_key)
  values (
    enqueue.job_type, coalesce(enqueue.payload, '{}'), due, coalesce(enqueue.priority, 0),
    coalesce(enqueue.max_attempts,
             (select t.max_attempts from cesar.job_types t where t.job_type = enqueue.job_type), 5),
    enqueue.dedup_key)
  on conflict (dedup_key) where dedup_key is not null and status in ('pending', 'running')
  do nothing
  returning id into new_id;
  if new_id is null then
    select q.id into new_id from cesar.job_queue q
    where q.dedup_key = enqueue.dedup_key and q.status in ('pending', 'running');
    return new_id;
  end if;
  if due <= now() then
    perform cesar.ring_doorbell('job-drain');
  end if;
  return new_id;
end
$$;

-- Enqueues many jobs in one statement. `jobs` is a JSON array of objects with job_type and
-- optionally payload, run_at, priority, max_attempts, dedup_key. Jobs whose dedup key is
-- held by an unfinished job (or by an earlier job in the same array) are skipped.
-- Returns the number of jobs inserted.
create function cesar.enqueue_many(jobs jsonb) returns integer
language plpgsql
volatile
set search_path = ''
as $$
#variable_conflict use_column
declare
  inserted integer;
  any_due boolean;
begin
  if jsonb_typeof(jobs) is distinct from 'array' then
    raise exception 'enqueue_many expects a JSON array of jobs' using errcode = '22023';
  end if;
  with input as (
    select j.job_type, coalesce(j.payload, '{}') as payload, coalesce(j.run_at, now()) as run_at,
           coalesce(j.priority, 0) as priority, j.max_attempts, j.dedup_key, j.ordinality
    from rows from (jsonb_to_recordset(jobs)
      as (job_type text, payload jsonb, run_at timestamptz, priority integer,
          max_attempts integer, dedup_key text)) with ordinality
      as j (job_type, payload, run_at, priority, max_attempts, dedup_key, ordinality)
  ), ins as (
    insert into cesar.job_queue (job_type, payload, run_at, priority, max_attempts, dedup_key)
    select i.job_type, i.payload, i.run_at, i.priority,
           coalesce(i.max_attempts, t.max_attempts, 5), i.dedup_key
    from input i left join cesar.job_types t on t.job_type = i.job_type
    order by i.ordinality
    on conflict (dedup_key) where dedup_key is not null and status in ('pending', 'running')
    do nothing
    returning run_at
  )
  select count(*), coalesce(bool_or(run_at <= now()), false) into inserted, any_due from ins;
  if any_due then
    perform cesar.ring_doorbell('job-drain');
  end if;
  return inserted;
end
$$;

-- Creates executions and their jobs from plans, in plan order: one place for event runs
-- (the webhook function passes a batch, actions already filled from each event) and for
-- scheduled and manual runs. A plan is {template_id, kind, event_id?, slot?, actions,
-- retry_policy?, serial_key?}. A plan whose (event, template) or (slot, template) already has
-- an execution is skipped: that is what makes re-deliveries and double ticks harmless.
-- Returns the executions created with their job counts; rings job-drain once.
create function cesar.create_executions(plans jsonb)
returns table (execution_id bigint, event_id bigint, job_count integer)
language sql
volatile
set search_path = ''
as $$
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
  select c.id, c.event_id, c.job_count from created c, (select count(*) from doorbell) d
$$;

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

-- Failed or cancelled jobs back to pending with a fresh set of attempts; their error history
-- stays. Jobs whose dedup key is now held by another unfinished job are left as they are.
-- Returns the ids that were requeued. Retrying from the dashboard or the CLI runs the job at
-- once: requeued jobs ring the job-drain doorbell (once per transaction) instead of waiting
-- for the next tick.
create function cesar.retry_jobs(ids bigint[]) returns setof bigint
language plpgsql
volatile
set search_path = ''
as $$
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
    returning q.id
  )
  select array_agg(r.id order by r.id) into requeued from retried r;
  if requeued is not null then
    perform cesar.ring_doorbell('job-drain');
  end if;
  return query select unnest(coalesce(requeued, '{}'::bigint[]));
end
$$;

-- Requeues every failed job of a type that failed since a time (a dead-letter redrive).
create function cesar.redrive_jobs(job_type text, since timestamptz default '-infinity')
returns setof bigint
language sql
volatile
set search_path = ''
as $$
  select cesar.retry_jobs(array(
    select q.id from cesar.job_queue q
    where q.job_type = redrive_jobs.job_type and q.status = 'failed' and q.finished_at >= redrive_jobs.since
    order by q.id))
$$;

-- Cancels pending or running jobs. A running job's drain finds its outcome refused.
create function cesar.cancel_jobs(ids bigint[]) returns setof bigint
language sql
volatile
set search_path = ''
as $$
  update cesar.job_queue q
  set status = 'cancelled', finished_at = now(), updated_at = now(), locked_by = null, locked_until = null
  where q.id = any (cancel_jobs.ids) and q.status in ('pending', 'running')
  returning q.id
$$;

-- The active agent with the fewest open tasks (pending or in progress), among those with the
-- capability (any, when null), only `only_agent` when given (a job that names its agent),
-- never `except_agent` (a message's sender). Load is open tasks for every caller, a2a.route's
-- capability fallback included: it is the work an agent has been given, which two of the
-- three callers counted already.
-- Ties (agent.task's rule, the only one of the three that was not alphabetical alone):
--   1. the agent whose newest open task is oldest: of equally loaded agents, the one that has
--      waited longest since it was last given work it still has (by name alone, "a..." took
--      every tie and "z..." none until its load grew);
--   2. name, which is unique: the choice is deterministic (agents without open tasks have no
--      newest one, and go by name).
-- No agent row is locked: two picks at once may choose the same agent, a brief imbalance and
-- never a double assignment (the callers lock the task or message they assign, as before).
create function cesar.least_loaded_agent(capability text default null, only_agent uuid default null,
                                         except_agent uuid default null)
returns uuid
language sql
stable
set search_path = ''
as $$
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

revoke execute on function cesar.least_loaded_agent(text, uuid, uuid) from public, anon, authenticated;

-- Policy per job type. Singletons (concurrency 1) are jobs that must not overlap themselves.
-- packages/shared/src/queue/job-types.ts lists the same rows; tests/job-types.test.ts fails
-- when the two differ.
insert into cesar.job_types (job_type, max_attempts, backoff_base_seconds, backoff_cap_seconds, concurrency, lease_seconds)
values
  ('system.noop',              5,  1,   60, null, 30),
  ('agent.task',               5, 30, 1800, null, 30),
  ('memory.consolidate',       5, 300, 3600,   1, 120),
  ('llm_cache.refresh',        5, 300, 3600,   1, 120),
  ('financial.daily_analysis', 5, 300, 3600,   1, 120),
  ('monitoring.refresh',       3, 30,  300,    1, 60),
  ('maintenance.prune',        5, 300, 3600,   1, 120),
  ('http.request',             5, 30, 3600, null, 60),
  ('sync.table',               5, 60, 1800, null, 120),
  ('task.assign',              5, 30, 1800, null, 30),
  ('a2a.route',                5, 10,  600, null, 30),
  ('knowledge_graph.update',   5, 300, 3600,   1, 120);

revoke execute on function cesar.enqueue(text, jsonb, timestamptz, integer, integer, text),
  cesar.enqueue_many(jsonb), cesar.create_executions(jsonb),
  cesar.claim_jobs(text, integer, text[], integer, integer), cesar.start_jobs(text, bigint[], integer[]),
  cesar.job_attempts_left(integer, integer), cesar.job_error_entry(integer, text, text, text, timestamptz),
  cesar.retry_jobs(bigint[]), cesar.redrive_jobs(text, timestamptz), cesar.cancel_jobs(bigint[])
  from public, anon, authenticated;
grant execute on function cesar.enqueue(text, jsonb, timestamptz, integer, integer, text),
  cesar.enqueue_many(jsonb), cesar.claim_jobs(text, integer, text[], integer, integer),
  cesar.start_jobs(text, bigint[], integer[]), cesar.job_attempts_left(integer, integer),
  cesar.job_error_entry(integer, text, text, text, timestamptz),
  cesar.retry_jobs(bigint[]), cesar.redrive_jobs(text, timestamptz), cesar.cancel_jobs(bigint[])
  to service_role;
