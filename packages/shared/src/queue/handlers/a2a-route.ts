import { z } from 'zod';
import type { Sql } from '../../db.ts';
import type { JobHandler } from '../drain.ts';
import { PermanentJobError } from '../errors.ts';
import { leastLoadedAgent } from './least-loaded-agent.ts';
import { parsePayload } from './payload.ts';

export const a2aRoutePayload = z.object({ message_id: z.uuid() });

interface PendingMessage {
  sender_id: string;
  receiver_id: string | null;
  conversation_id: string | null;
  capability: string | null;
}

/**
 * The message, locked until the transaction ends, if it is still pending: a second job for
 * the same message waits here, then finds it routed.
 */
async function lockPendingMessage(sql: Sql, messageId: string) {
  const [row] = await sql<PendingMessage[]>`
    select sender_id, receiver_id, conversation_id, metadata ->> 'capability' as capability
    from public.a2a_messages
    where id = ${messageId} and status = 'pending'
    for update
  `;
  return row;
}

/** Another active participant of the message's conversation (the first by name), if any. */
async function conversationPeer(sql: Sql, message: PendingMessage) {
  const [row] = await sql<Array<{ id: string }>>`
    select a.id
    from public.a2a_conversations c
    cross join lateral unnest(c.participant_ids) as p (agent_id)
    join public.agents a on a.id = p.agent_id and a.status = 'active'
    where c.id = ${message.conversation_id} and p.agent_id <> ${message.sender_id}
    order by a.name limit 1
  `;
  return row?.id ?? null;
}

/** Marks the (locked) message routed to the receiver and gives it `message.received`. */
async function markRouted(sql: Sql, messageId: string, receiverId: string, jobId: string) {
  await sql`
    with routed as (
      update public.a2a_messages
      set receiver_id = ${receiverId}, status = 'routed', routed_at = now()
      where id = ${messageId}
      returning id, receiver_id, sender_id
    )
    insert into public.agent_events (agent_id, event_type, payload)
    select receiver_id, 'message.received',
           jsonb_build_object('message_id', id, 'sender_id', sender_id, 'job_id', ${jobId}::bigint)
    from routed
  `;
}

async function messageStatus(sql: Sql, messageId: string) {
  const [row] = await sql<Array<{ status: string; receiver_id: string | null }>>`
    select status, receiver_id from public.a2a_messages where id = ${messageId}
  `;
  return row;
}

/**
 * `a2a.route`: delivers a pending agent-to-agent message. One without a receiver goes to
 * another participant of its conversation, or else to the least-loaded active agent with the
 * capability its metadata asks for (`metadata.capability`), never back to its sender. The
 * message becomes `routed` and the receiver gets a `message.received` event.
 */
export const a2aRoute: JobHandler = async ({ job, sql }) => {
  const { message_id } = parsePayload('a2a.route', a2aRoutePayload, job.payload);
  const routed = await sql.begin(async (tx) => {
    const db = tx as unknown as Sql;
    const message = await lockPendingMessage(db, message_id);
    if (!message) return null;
    const receiver = message.receiver_id ??
      (message.conversation_id ? await conversationPeer(db, message) : null) ??
      (await leastLoadedAgent(db, {
        capability: message.capability,
        exceptAgent: message.sender_id,
      }));
    if (receiver) await markRouted(db, message_id, receiver, job.id);
    return receiver;
  });
  if (routed) return { message_id, receiver_id: routed, routed: true };
  const message = await messageStatus(sql, message_id);
  if (!message) throw new PermanentJobError(`message ${message_id} does not exist`);
  if (message.status !== 'pending') {
    return { message_id, receiver_id: message.receiver_id, routed: false };
  }
  throw new PermanentJobError(`no active agent can receive message ${message_id}`);
};
