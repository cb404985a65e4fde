-- The webhook drain's batch in two statements instead of seven: taking the processor lease,
-- claiming the events and reading the templates is one call (cesar.take_event_batch), and
-- recording the executions, jobs and event statuses is another (cesar.record_event_batch).
-- Every statement is a round trip through the pooler; a drain at work makes one batch after
-- another, so each saved trip shortens the time from a write's commit to its job.

-- Takes (or renews) the processor lease for `holder`; when it is ours, claims the next batch
-- (cesar.claim_events) and reads the enabled event templates after the claim, so that a
-- template created before an event was written applies to it. Returns {busy: true} when
-- another drain holds the lease, else {busy: false, events: [...], templates: [...]}
-- (templates only with events). Event ids are text, as bigint is elsewhere in the API.
create function cesar.take_event_batch(holder text, lease_seconds integer, batch_size integer)
returns jsonb
language plpgsql
volatile
set search_path = ''
as $$
declare
  claimed jsonb;
  templates jsonb;
begin
  if not coalesce(cesar.take_event_processor(holder, lease_seconds), false) then
    return jsonb_build_object('busy', true);
  end if;
  select coalesce(jsonb_agg(jsonb_build_object(
           'id', e.id::text, 'schema_name', e.schema_name, 'table_name', e.table_name,
           'op', e.op, 'record', e.record, 'old_record', e.old_record,
           'changed_columns', e.changed_columns, 'row_key', e.row_key,
           'occurred_at', e.occurred_at, 'origin', e.origin) order by e.id), '[]')
  into claimed
  from cesar.claim_events(batch_size) e;
  if jsonb_array_length(claimed) = 0 then
    return jsonb_build_object('busy', false, 'events', claimed);
  end if;
  -- A statement of its own: its snapshot is taken after the claim's.
  select coalesce(jsonb_agg(jsonb_build_object(
           'id', t.id, 'name', t.name, 'enabled', t.enabled, 'trigger', t.trigger,
           'actions', t.actions, 'retry_policy', t.retry_policy) order by t.name), '[]')
  into templates
  from cesar.workflow_templates t
  where t.enabled and t.trigger ->> 'type' = 'database_event';
  return jsonb_build_object('busy', false, 'events', claimed, 'templates', templates);
end
$$;

-- Writes what a batch of events runs (cesar.create_executions: one execution per (event,
-- template) that has none yet, with its jobs, in plan order), then marks the batch's events
-- processed (a plan names them) or ignored. One transaction, one round trip.
create function cesar.record_event_batch(event_ids bigint[], plans jsonb)
returns table (executions integer, jobs integer)
language plpgsql
volatile
set search_path = ''
as $$
declare
  made integer;
  made_jobs integer;
begin
  select count(*), coalesce(sum(c.job_count), 0) into made, made_jobs
  from cesar.create_executions(plans) c;
  update cesar.event_log e
  set status = case when e.id in (select (p ->> 'event_id')::bigint
                                  from jsonb_array_elements(plans) p)
                    then 'processed' else 'ignored' end,
      processed_at = now(), last_error = null
  where e.id = any (event_ids) and e.status = 'processing';
  return query select made, made_jobs;
end
$$;
