import { z } from 'zod';
import type { Sql } from '../../db.ts';
import type { JobHandler } from '../drain.ts';
import { PermanentJobError } from '../errors.ts';
import { parsePayload } from './payload.ts';

export const agentTaskPayload = z.object({
  title: z.string().min(1).max(500),
  description: z.string().max(10_000).optional(),
  /** Pick the least-loaded active agent with this capability... */
  capability: z.string().min(1).optional(),
  /** ...or this agent, which must be active. */
  agent_id: z.uuid().optional(),
  priority: z.number().int().optional(),
  payload: z.record(z.string(), z.unknown()).optional(),
});

interface CreatedTask {
  task_id: string;
  agent_id: string;
  created: boolean;
}

async function existingTask(sql: Sql, jobId: string): Promise<CreatedTask | undefined> {
  const [row] = await sql<CreatedTask[]>`
    select id as task_id, agent_id, false as created from public.tasks where source_job_id = ${jobId}
  `;
  return row;
}

/**
 * The least-loaded active agent (fewest pending or in-progress tasks) that has the
 * capability, or the named agent if it is active. Ties go to the agent that has waited
 * longest for work, then by name, so the choice is deterministic.
 */
async function pickAgent(sql: Sql, capability: string | null, agentId: string | null) {
  const [row] = await sql<Array<{ id: string; name: string }>>`
    select a.id, a.name
    from public.agents a
    left join lateral (
      select count(*) as open_tasks, max(t.created_at) as last_assigned
      from public.tasks t
      where t.agent_id = a.id and t.status in ('pending', 'in_progress')
    ) load on true
    where a.status = 'active'
      and (${capability}::text is null or ${capability}::text = any (a.capabilities))
      and (${agentId}::uuid is null or a.id = ${agentId}::uuid)
    order by load.open_tasks, load.last_assigned nulls first, a.name
    limit 1
  `;
  return row;
}

async function insertTask(
  sql: Sql,
  jobId: string,
  agentId: string,
  input: z.infer<typeof agentTaskPayload>,
): Promise<CreatedTask | undefined> {
  const [row] = await sql<CreatedTask[]>`
    with task as (
      insert into public.tasks (agent_id, title, description, priority, required_capability, payload, source_job_id)
      values (${agentId}, ${input.title}, ${input.description ?? null}, ${input.priority ?? 0},
              ${input.capability ?? null}, ${sql.json((input.payload ?? {}) as never)}, ${jobId})
      on conflict (source_job_id) do nothing
      returning id, agent_id
    ), event as (
      insert into public.agent_events (agent_id, event_type, payload)
      select agent_id, 'task.assigned', jsonb_build_object('task_id', id, 'job_id', ${jobId}::bigint, 'title', ${input.title}::text)
      from task
    )
    select id as task_id, agent_id, true as created from task
  `;
  return row;
}

/** `agent.task`: creates a task for the least-loaded active agent with the capability, and logs it. */
export const agentTask: JobHandler = async ({ job, sql }) => {
  const input = parsePayload('agent.task', agentTaskPayload, job.payload);
  return await sql.begin(async (tx) => {
    const db = tx as unknown as Sql;
    // A retried job (its drain died after the commit) finds the task it already created.
    const existing = await existingTask(db, job.id);
    if (existing) return existing;
    const agent = await pickAgent(db, input.capability ?? null, input.agent_id ?? null);
    if (!agent) {
      throw new PermanentJobError(
        input.agent_id
          ? `agent ${input.agent_id} does not exist or is not active`
          : `no active agent has the capability "${input.capability ?? '(any)'}"`,
      );
    }
    return (await insertTask(db, job.id, agent.id, input)) ?? (await existingTask(db, job.id));
  });
};
