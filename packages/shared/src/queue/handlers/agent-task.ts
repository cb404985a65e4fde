import { z } from 'zod';
import { cancelOnAbort, type Sql } from '../../db.ts';
import type { JobHandler } from '../drain.ts';
import { PermanentJobError } from '../errors.ts';
import { leastLoadedAgent } from './least-loaded-agent.ts';
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

async function insertTask(
  sql: Sql,
  jobId: string,
  agentId: string,
  input: z.infer<typeof agentTaskPayload>,
  signal: AbortSignal,
): Promise<CreatedTask | undefined> {
  // Waits when another attempt's transaction inserted the same source_job_id and is still open.
  const [row] = await cancelOnAbort(
    signal,
    sql<CreatedTask[]>`
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
  `,
  );
  return row;
}

/** `agent.task`: creates a task for the least-loaded active agent with the capability, and logs it. */
export const agentTask: JobHandler = async ({ job, sql, signal }) => {
  const input = parsePayload('agent.task', agentTaskPayload, job.payload);
  return await sql.begin(async (tx) => {
    const db = tx as unknown as Sql;
    // A retried job (its drain died after the commit) finds the task it already created.
    const existing = await existingTask(db, job.id);
    if (existing) return existing;
    const agentId = await leastLoadedAgent(db, {
      capability: input.capability,
      onlyAgent: input.agent_id,
    });
    if (!agentId) {
      throw new PermanentJobError(
        input.agent_id
          ? `agent ${input.agent_id} does not exist or is not active`
          : `no active agent has the capability "${input.capability ?? '(any)'}"`,
      );
    }
    return (await insertTask(db, job.id, agentId, input, signal)) ??
      (await existingTask(db, job.id));
  });
};
