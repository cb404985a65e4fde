import { z } from 'zod';
import type { Sql } from '../../db.ts';
import type { JobHandler } from '../drain.ts';
import { PermanentJobError } from '../errors.ts';
import { leastLoadedAgent } from './least-loaded-agent.ts';
import { parsePayload } from './payload.ts';

export const taskAssignPayload = z.object({ task_id: z.uuid() });

/**
 * The task, locked until the transaction ends, if it is still unassigned: a second job for
 * the same task waits here, then finds it assigned.
 */
async function lockUnassignedTask(sql: Sql, taskId: string) {
  const [row] = await sql<Array<{ required_capability: string | null }>>`
    select required_capability from public.tasks
    where id = ${taskId} and agent_id is null
    for update
  `;
  return row;
}

/** Gives the (locked) task to the agent and logs `task.assigned`. */
async function assignTask(sql: Sql, taskId: string, agentId: string, jobId: string) {
  await sql`
    with assigned as (
      update public.tasks set agent_id = ${agentId}
      where id = ${taskId}
      returning id, agent_id, title
    )
    insert into public.agent_events (agent_id, event_type, payload)
    select agent_id, 'task.assigned', jsonb_build_object('task_id', id, 'job_id', ${jobId}::bigint, 'title', title)
    from assigned
  `;
}

async function taskState(sql: Sql, taskId: string) {
  const [row] = await sql<Array<{ agent_id: string | null; required_capability: string | null }>>`
    select agent_id, required_capability from public.tasks where id = ${taskId}
  `;
  return row;
}

/**
 * `task.assign`: a new task without an agent gets the least-loaded active agent that has its
 * required capability (any active agent when it names none).
 */
export const taskAssign: JobHandler = async ({ job, sql }) => {
  const { task_id } = parsePayload('task.assign', taskAssignPayload, job.payload);
  const assigned = await sql.begin(async (tx) => {
    const db = tx as unknown as Sql;
    const task = await lockUnassignedTask(db, task_id);
    if (!task) return null;
    const agentId = await leastLoadedAgent(db, { capability: task.required_capability });
    if (agentId) await assignTask(db, task_id, agentId, job.id);
    return agentId;
  });
  if (assigned) return { task_id, agent_id: assigned, assigned: true };
  const task = await taskState(sql, task_id);
  if (!task) throw new PermanentJobError(`task ${task_id} does not exist`);
  if (task.agent_id) return { task_id, agent_id: task.agent_id, assigned: false };
  throw new PermanentJobError(
    `no active agent has the capability "${task.required_capability}" that task ${task_id} needs`,
  );
};
