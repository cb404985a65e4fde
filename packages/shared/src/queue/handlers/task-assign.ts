import { z } from 'zod';
import { cancelOnAbort, type Sql } from '../../db.ts';
import type { JobHandler } from '../drain.ts';
import { PermanentJobError } from '../errors.ts';
import { parsePayload } from './payload.ts';

export const taskAssignPayload = z.object({ task_id: z.uuid() });

/**
 * Gives an unassigned task to the least-loaded agent that fits (cesar.least_loaded_agent), in
 * one statement that only touches a task still unassigned (a second job for the same task
 * waits on its row lock, then finds it assigned), and logs `task.assigned`.
 */
async function assign(sql: Sql, taskId: string, jobId: string, signal: AbortSignal) {
  const [row] = await cancelOnAbort(
    signal,
    sql<Array<{ agent_id: string }>>`
    with task as (
      select id, cesar.least_loaded_agent(required_capability) as agent_id from public.tasks
      where id = ${taskId} and agent_id is null
      for update
    ), assigned as (
      update public.tasks t set agent_id = task.agent_id from task
      where t.id = task.id and task.agent_id is not null
      returning t.id, t.agent_id, t.title
    ), event as (
      insert into public.agent_events (agent_id, event_type, payload)
      select agent_id, 'task.assigned', jsonb_build_object('task_id', id, 'job_id', ${jobId}::bigint, 'title', title)
      from assigned
    )
    select agent_id from assigned
  `,
  );
  return row;
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
export const taskAssign: JobHandler = async ({ job, sql, signal }) => {
  const { task_id } = parsePayload('task.assign', taskAssignPayload, job.payload);
  const assigned = await assign(sql, task_id, job.id, signal);
  if (assigned) return { task_id, agent_id: assigned.agent_id, assigned: true };
  const task = await taskState(sql, task_id);
  if (!task) throw new PermanentJobError(`task ${task_id} does not exist`);
  if (task.agent_id) return { task_id, agent_id: task.agent_id, assigned: false };
  throw new PermanentJobError(
    `no active agent has the capability "${task.required_capability}" that task ${task_id} needs`,
  );
};
