import { z } from 'zod';
import { cancelOnAbort, type Sql } from '../../db.ts';
import type { JobHandler } from '../drain.ts';
import { PermanentJobError } from '../errors.ts';
import { parsePayload } from './payload.ts';

export const a2aRoutePayload = z.object({ message_id: z.uuid() });

/**
 * Routes a pending agent-to-agent message in one statement that only touches a message still
 * pending (a second job for it waits on its row lock, then finds it routed): one without a
 * receiver goes to another active participant of its conversation (the first by name), or
 * else to the least-loaded agent with the capability its metadata asks for
 * (`metadata.capability`; cesar.least_loaded_agent), never back to its sender. The message
 * becomes `routed` and the receiver gets a `message.received` event.
 */
async function route(sql: Sql, messageId: string, jobId: string, signal: AbortSignal) {
  const [row] = await cancelOnAbort(
    signal,
    sql<Array<{ receiver_id: string }>>`
    with message as (
      select m.id, m.sender_id, m.receiver_id, m.conversation_id, m.metadata ->> 'capability' as capability
      from public.a2a_messages m
      where m.id = ${messageId} and m.status = 'pending'
      for update
    ), receiver as (
      select coalesce(
        (select message.receiver_id from message),
        (select p.agent_id
         from message
         join public.a2a_conversations c on c.id = message.conversation_id
         cross join lateral unnest(c.participant_ids) as p (agent_id)
         join public.agents a on a.id = p.agent_id and a.status = 'active'
         where p.agent_id <> message.sender_id
         order by a.name limit 1),
        (select cesar.least_loaded_agent(message.capability, null, message.sender_id) from message)
      ) as id
    ), routed as (
      update public.a2a_messages m
      set receiver_id = receiver.id, status = 'routed', routed_at = now()
      from receiver, message
      where m.id = message.id and receiver.id is not null
      returning m.id, m.receiver_id, m.sender_id
    ), event as (
      insert into public.agent_events (agent_id, event_type, payload)
      select receiver_id, 'message.received',
             jsonb_build_object('message_id', id, 'sender_id', sender_id, 'job_id', ${jobId}::bigint)
      from routed
    )
    select receiver_id from routed
  `,
  );
  return row;
}

async function messageStatus(sql: Sql, messageId: string) {
  const [row] = await sql<Array<{ status: string; receiver_id: string | null }>>`
    select status, receiver_id from public.a2a_messages where id = ${messageId}
  `;
  return row;
}

/** `a2a.route`: delivers a pending agent-to-agent message to its receiver (route, above). */
export const a2aRoute: JobHandler = async ({ job, sql, signal }) => {
  const { message_id } = parsePayload('a2a.route', a2aRoutePayload, job.payload);
  const routed = await route(sql, message_id, job.id, signal);
  if (routed) return { message_id, receiver_id: routed.receiver_id, routed: true };
  const message = await messageStatus(sql, message_id);
  if (!message) throw new PermanentJobError(`message ${message_id} does not exist`);
  if (message.status !== 'pending') {
    return { message_id, receiver_id: message.receiver_id, routed: false };
  }
  throw new PermanentJobError(`no active agent can receive message ${message_id}`);
};
