-- Why: user-defined workflows. A template says when it runs (a database event with optional
-- filters, a cron schedule, or by hand) and what it does (actions that become jobs). Each
-- run is a workflow execution whose status follows its jobs. Job creation is exactly once
-- per (event, template) and per (schedule slot, template), by unique keys, so the doorbell,
-- the sweep and native webhook deliveries can race harmlessly. Events are processed by one
-- drain at a time (the event processor's lease), which claims them here; the executions and
-- their jobs are made by cesar.create_executions, with the queue (the next migration).

create table cesar.workflow_templates (
  id uuid primary key default gen_random_uuid(),
  name text not null unique check (length(name) between 1 and 200),
  description text,
  enabled boolean not null default true,
  -- {type: 'database_event', table, events, columns?, filter?, ordered?} | {type: 'schedule', cron}
  -- | {type: 'manual'}; validated by packages/shared/src/workflows/schema.ts when written
  -- through the api function.
  trigger jsonb not null check (trigger ->> 'type' in ('database_event', 'schedule', 'manual')),
  -- [{type: 'enqueue_job' | 'agent_task' | 'sync_table' | 'http_request', ...}]
  actions jsonb not null check (jsonb_typeof(actions) = 'array' and jsonb_array_length(actions) > 0),
  -- {max_attempts?, backoff_base_seconds?, backoff_cap_seconds?} for the jobs it creates.
  retry_policy jsonb not null default '{}' check (jsonb_typeof(retry_policy) = 'object'),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  check (trigger ->> 'type' <> 'schedule' or coalesce(trigger ->> 'cron', '') <> '')
);
create trigger workflow_templates_touch before update on cesar.workflow_templates
  for each row execute function cesar.touch_updated_at();
create index workflow_templates_event_idx on cesar.workflow_templates ((trigger ->> 'table'))
  where enabled and trigger ->> 'type' = 'database_event';

create table cesar.workflow_executions (
  id bigint generated always as identity primary key,
  template_id uuid not null references cesar.workflow_templates (id) on delete cascade,
  trigger_kind text not null check (trigger_kind in ('database_event', 'schedule', 'manual')),
  event_id bigint references cesar.event_log (id) on delete set null,
  schedule_slot timestamptz,
  status text not null default 'pending'
    check (status in ('pending', 'running', 'completed', 'failed', 'cancelled')),
  job_count integer not null default 0,
  error text,
  created_at timestamptz not null default now(),
  started_at timestamptz,
  finished_at timestamptz,
  updated_at timestamptz not null default now()
);
-- Exactly once per (event, template) and per (slot, template).
create unique index workflow_executions_event_key on cesar.workflow_executions (event_id, template_id)
  where event_id is not null;
create unique index workflow_executions_slot_key on cesar.workflow_executions (template_id, schedule_slot)
  where schedule_slot is not null;
create index workflow_executions_template_idx on cesar.workflow_executions (template_id, created_at desc);
create index workflow_executions_status_idx on cesar.workflow_executions (status, created_at desc);

-- The jobs an action list makes: one place maps actions to job types and payloads, for
-- event-triggered runs (whose actions the webhook function has filled from the event) and
-- for scheduled and manual runs alike.
create function cesar.action_jobs(actions jsonb) returns table (job_type text, payload jsonb)
language sql
immutable
set search_path = ''
as $$
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

-- Runs a template's actions now: one execution and its jobs. With a slot (pg_cron passes
-- the minute it fired for), a slot runs once however often it is asked; returns null then.
create function cesar.run_workflow(template_id uuid, slot timestamptz default null,
                                   kind text default 'manual')
returns bigint
language plpgsql
volatile
set search_path = ''
as $$
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

-- An execution's status follows its jobs: running once one runs, failed once one failed for
-- good, cancelled once one was cancelled, completed when all completed (its trigger on
-- cesar.job_queue is made with the queue).
create function cesar.follow_execution_status() returns trigger
language plpgsql
set search_path = ''
as $$
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

-- A schedule template is a pg_cron job, scheduled, rescheduled and unscheduled with the
-- template: whatever writes the template (the api function, SQL, the seed), the schedule
-- follows. The command only names the template: no URL or secret.
create function cesar.reconcile_workflow_schedule() returns trigger
language plpgsql
set search_path = ''
as $$
declare
  job_name text := 'cesar-workflow-' || coalesce(new.id, old.id);
begin
  if tg_op <> 'DELETE' and new.enabled and new.trigger ->> 'type' = 'schedule' then
    perform cron.schedule(job_name, new.trigger ->> 'cron',
      format('select cesar.run_workflow(%L::uuid, date_trunc(''minute'', now()), ''schedule'')', new.id));
  elsif exists (select from cron.job where jobname = job_name) then
    perform cron.unschedule(job_name);
  end if;
  return null;
end
$$;
create trigger workflow_templates_schedule after insert or update or delete on cesar.workflow_templates
  for each row execute function cesar.reconcile_workflow_schedule();

-- The event processor's lease: taken when free or expired (or already ours), renewed with
-- every batch, given back at the end.
create function cesar.take_event_processor(holder text, lease_seconds integer default 30) returns boolean
language sql
volatile
set search_path = ''
as $$
  update cesar.event_processor p
  set holder = take_event_processor.holder,
      lease_until = now() + make_interval(secs => take_event_processor.lease_seconds)
  where p.lease_until < now() or p.holder = take_event_processor.holder
  returning true
$$;

create function cesar.release_event_processor(holder text) returns void
language sql
volatile
set search_path = ''
as $$
  update cesar.event_processor p set holder = null, lease_until = '-infinity'
  where p.holder = release_event_processor.holder
$$;

-- Claims the next batch of events in id order. Only the processor lease holder calls it, so
-- Claims the next batch of events in id order, after making the events of the next captured
-- arrays (a batch's worth, cesar.expand_captures). Only the processor lease holder calls it,
-- so an event still marked processing was left by a drain that died: it is taken again. An
-- ordered scan of the pending index, as for job claims (see cesar.claim_jobs).
create function cesar.claim_events(batch_size integer) returns setof cesar.event_log
language plpgsql
volatile
set search_path = ''
set enable_bitmapscan = off
as $$
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

-- Redelivery and replay: events back to pending. Processing then creates executions for the
-- (event, template) pairs that have none yet, and requeues the failed jobs of executions
-- that failed.
create function cesar.replay_events(ids bigint[]) returns integer
language plpgsql
volatile
set search_path = ''
as $$
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

revoke execute on function cesar.action_jobs(jsonb), cesar.run_workflow(uuid, timestamptz, text),
  cesar.claim_events(integer),
  cesar.take_event_processor(text, integer), cesar.release_event_processor(text),
  cesar.replay_events(bigint[]) from public, anon, authenticated;
