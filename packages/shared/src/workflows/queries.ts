import type { Sql } from '../db.ts';
import type { ChangeEvent } from '../capture/index.ts';
import type { Action, EventTemplate, Template, TemplateInput } from './schema.ts';

// The workflow machinery's runtime statements, one function each.

/** A batch for the drain holding the processor lease, or `busy` when another drain holds it. */
export type EventBatch =
  | { busy: true }
  | { busy: false; events: ChangeEvent[]; templates?: EventTemplate[] };

/**
 * Takes (or renews) the event processor's lease for `holder` and, when it is ours, claims
 * the next batch of events in id order and reads the enabled event templates after the claim
 * (cesar.take_event_batch, one round trip).
 */
export async function takeEventBatch(
  sql: Sql,
  holder: string,
  leaseSeconds: number,
  batchSize: number,
): Promise<EventBatch> {
  const [row] = await sql<Array<{ batch: EventBatch }>>`
    select cesar.take_event_batch(${holder}, ${leaseSeconds}, ${batchSize}) as batch`;
  return row!.batch;
}

/**
 * Gives the processor lease back and looks for pending events in the same statement (one round
 * trip): whether some are pending, committed before the lease was given back included.
 */
export async function releaseEventProcessor(sql: Sql, holder: string): Promise<boolean> {
  const [row] = await sql<Array<{ pending: boolean }>>`
    select cesar.release_event_processor(${holder}), cesar.events_pending() as pending`;
  return row!.pending;
}

export interface PlannedExecution {
  event_id: string;
  template_id: string;
  actions: Action[];
  retry_policy: Record<string, unknown>;
  serial_key: string | null;
}

/**
 * Writes what a batch of events runs, in one statement (cesar.record_event_batch): one
 * execution per (event, template) that has none yet, with its jobs, in event order; then the
 * events marked processed (something ran) or ignored. Re-delivered events find their
 * executions already there and make nothing twice.
 */
export async function recordBatch(
  sql: Sql,
  eventIds: string[],
  plans: PlannedExecution[],
): Promise<{ executions: number; jobs: number }> {
  const [made] = await sql<Array<{ executions: number; jobs: number }>>`
    select executions, jobs from cesar.record_event_batch(${eventIds}::bigint[], ${
    sql.json(plans.map((p) => ({ ...p, kind: 'database_event' })) as never)
  })`;
  return made!;
}

/**
 * Gives events that could not be processed back (failed for good after ten attempts), and
 * records the failure in public.ingestion_log (source event_capture) for the operators.
 */
export async function releaseEvents(sql: Sql, eventIds: string[], error: string): Promise<void> {
  await sql`
    with released as (
      update cesar.event_log
      set status = case when attempts >= 10 then 'failed' else 'pending' end,
          last_error = ${error}
      where id = any(${eventIds}::bigint[]) and status = 'processing'
      returning id, status
    )
    insert into public.ingestion_log (source, status, record_count, error_message, details)
    select 'event_capture', 'error', count(*), ${error},
           jsonb_build_object('event_ids', jsonb_agg(id order by id),
                              'failed_for_good', count(*) filter (where status = 'failed'))
    from released
    having count(*) > 0
  `;
}

/** A schedule template's state: slots up to covered_until were run or given up. */
const scheduleState = (sql: Sql) =>
  sql`(select jsonb_build_object('last_slot', s.last_slot, 'covered_until', s.covered_until)
       from cesar.workflow_schedules s where s.template_id = t.id) as schedule`;

export async function listTemplates(sql: Sql): Promise<Template[]> {
  return await sql<Template[]>`
    select t.*, ${scheduleState(sql)} from cesar.workflow_templates t order by t.name`;
}

export async function getTemplate(sql: Sql, id: string): Promise<Template | undefined> {
  const [row] = await sql<Template[]>`
    select t.*, ${scheduleState(sql)} from cesar.workflow_templates t where t.id = ${id}`;
  return row;
}

export async function insertTemplate(sql: Sql, input: TemplateInput): Promise<Template> {
  const [row] = await sql<Template[]>`
    insert into cesar.workflow_templates (name, description, enabled, trigger, actions, retry_policy)
    values (${input.name}, ${input.description ?? null}, ${input.enabled}, ${
    sql.json(input.trigger as never)
  },
            ${sql.json(input.actions as never)}, ${sql.json(input.retry_policy as never)})
    returning *
  `;
  return row!;
}

export async function updateTemplate(
  sql: Sql,
  id: string,
  input: TemplateInput,
): Promise<Template | undefined> {
  const [row] = await sql<Template[]>`
    update cesar.workflow_templates
    set name = ${input.name}, description = ${
    input.description ?? null
  }, enabled = ${input.enabled},
        trigger = ${sql.json(input.trigger as never)}, actions = ${
    sql.json(input.actions as never)
  },
        retry_policy = ${sql.json(input.retry_policy as never)}
    where id = ${id}
    returning *
  `;
  return row;
}

export async function setTemplateEnabled(
  sql: Sql,
  id: string,
  enabled: boolean,
): Promise<Template | undefined> {
  const [row] = await sql<Template[]>`
    update cesar.workflow_templates set enabled = ${enabled} where id = ${id} returning *
  `;
  return row;
}

export async function deleteTemplate(sql: Sql, id: string): Promise<boolean> {
  const rows = await sql`delete from cesar.workflow_templates where id = ${id} returning id`;
  return rows.length > 0;
}

export async function runTemplate(sql: Sql, id: string): Promise<string> {
  const [row] = await sql<
    Array<{ id: string }>
  >`select cesar.run_workflow(${id}::uuid, null, 'manual') as id`;
  return row!.id;
}

export interface Execution {
  id: string;
  template_id: string;
  template_name: string;
  trigger_kind: string;
  event_id: string | null;
  schedule_slot: Date | null;
  status: string;
  job_count: number;
  error: string | null;
  created_at: Date;
  started_at: Date | null;
  finished_at: Date | null;
  jobs: Array<
    { id: string; job_type: string; status: string; attempts: number; last_error: string | null }
  >;
}

export async function listExecutions(
  sql: Sql,
  filter: { templateId?: string; status?: string; eventId?: string; limit: number },
): Promise<Execution[]> {
  return await sql<Execution[]>`
    select x.id, x.template_id, t.name as template_name, x.trigger_kind, x.event_id, x.schedule_slot,
           x.status, x.job_count, x.error, x.created_at, x.started_at, x.finished_at,
           coalesce((select jsonb_agg(jsonb_build_object('id', q.id::text, 'job_type', q.job_type, 'status', q.status,
                                                         'attempts', q.attempts, 'last_error', q.last_error) order by q.id)
                     from cesar.job_queue q where q.execution_id = x.id), '[]') as jobs
    from cesar.workflow_executions x
    join cesar.workflow_templates t on t.id = x.template_id
    where (${filter.templateId ?? null}::uuid is null or x.template_id = ${
    filter.templateId ?? null
  }::uuid)
      and (${filter.status ?? null}::text is null or x.status = ${filter.status ?? null}::text)
      and (${filter.eventId ?? null}::bigint is null or x.event_id = ${
    filter.eventId ?? null
  }::bigint)
    order by x.id desc
    limit ${filter.limit}
  `;
}
