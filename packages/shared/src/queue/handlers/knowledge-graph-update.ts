import { z } from 'zod';
import { cancelOnAbort, type Sql } from '../../db.ts';
import type { JobHandler } from '../drain.ts';
import { parsePayload } from './payload.ts';

export const knowledgeGraphUpdatePayload = z.object({
  /** Messages older than this do not count. */
  window_days: z.number().int().min(1).max(3650).default(30),
});

/**
 * Rebuilds the agent graph from the messages of the window: an edge per (sender, receiver)
 * with the message count and its share of the sender's messages; edges with no message left
 * in the window are removed. One statement, so readers never see half a graph.
 */
async function rebuild(sql: Sql, windowDays: number, now: Date, signal: AbortSignal) {
  const [row] = await cancelOnAbort(
    signal,
    sql<Array<{ edges: number; removed: number }>>`
    with counts as (
      select sender_id, receiver_id, count(*)::int as messages, max(created_at) as last_at
      from public.a2a_messages
      where receiver_id is not null and receiver_id <> sender_id
        and created_at >= ${now}::timestamptz - make_interval(days => ${windowDays})
      group by sender_id, receiver_id
    ), weighted as (
      select *, messages::numeric / sum(messages) over (partition by sender_id) as weight from counts
    ), upserted as (
      insert into public.knowledge_graph_edges as e
        (source_agent_id, target_agent_id, messages, weight, last_interaction_at)
      select sender_id, receiver_id, messages, round(weight, 5), last_at from weighted
      on conflict (source_agent_id, target_agent_id) do update
        set messages = excluded.messages, weight = excluded.weight,
            last_interaction_at = excluded.last_interaction_at
      returning source_agent_id, target_agent_id
    ), removed as (
      delete from public.knowledge_graph_edges e
      where not exists (select from counts c where c.sender_id = e.source_agent_id and c.receiver_id = e.target_agent_id)
      returning 1
    )
    select (select count(*) from upserted)::int as edges, (select count(*) from removed)::int as removed
  `,
  );
  return row!;
}

/** `knowledge_graph.update`: recompute knowledge_graph_edges from a2a_messages. */
export const knowledgeGraphUpdate: JobHandler = async ({ job, sql, clock, signal }) => {
  const { window_days } = parsePayload(
    'knowledge_graph.update',
    knowledgeGraphUpdatePayload,
    job.payload,
  );
  return await rebuild(sql, window_days, clock.now(), signal);
};
