import { z } from 'zod';
import { cancelOnAbort, type Sql } from '../../db.ts';
import type { JobHandler } from '../drain.ts';
import { enqueueJob } from '../queries.ts';
import { parsePayload } from './payload.ts';

export const memoryConsolidatePayload = z.object({
  /** Episodic memories older than this are folded into semantic memory. */
  older_than_days: z.number().int().min(0).max(3650).default(7),
  /** Rows folded per run; a follow-up job takes the rest. */
  max_rows: z.number().int().min(1).max(50_000).default(5_000),
  agent_id: z.uuid().optional(),
});

// A semantic memory keeps its newest 8,000 characters: older lines give way to newer ones.
const SUMMARY_LIMIT = 8_000;

/**
 * Folds the oldest episodic memories into one semantic memory per (agent, topic) and deletes
 * them, in one statement: either both happen or neither.
 */
async function foldOldMemories(
  sql: Sql,
  input: z.infer<typeof memoryConsolidatePayload>,
  now: Date,
  signal: AbortSignal,
) {
  const [row] = await cancelOnAbort(
    signal,
    sql<Array<{ folded: number; topics: number }>>`
    with old as (
      select e.id, e.agent_id, e.topic, e.content, e.importance, e.occurred_at
      from public.memory_episodic e
      where e.occurred_at < ${now}::timestamptz - make_interval(days => ${input.older_than_days})
        and (${input.agent_id ?? null}::uuid is null or e.agent_id = ${
      input.agent_id ?? null
    }::uuid)
      order by e.occurred_at, e.id
      limit ${input.max_rows}
      for update skip locked
    ), grouped as (
      select agent_id, topic, count(*)::int as n,
             string_agg(to_char(occurred_at at time zone 'UTC', 'YYYY-MM-DD') || ': ' || content, E'\n'
                        order by occurred_at, id) as lines,
             min(occurred_at) as first_at, max(occurred_at) as last_at,
             round(avg(importance), 3) as avg_importance
      from old group by agent_id, topic
    ), upserted as (
      insert into public.memory_semantic as m (agent_id, topic, summary, source_count, metadata)
      select agent_id, topic, right(lines, ${SUMMARY_LIMIT}), n,
             jsonb_build_object('first_occurred_at', first_at, 'last_occurred_at', last_at,
                                'avg_importance', avg_importance, 'consolidated_at', ${now}::timestamptz)
      from grouped
      on conflict (agent_id, topic) do update
        set summary = right(m.summary || E'\n' || excluded.summary, ${SUMMARY_LIMIT}),
            source_count = m.source_count + excluded.source_count,
            metadata = m.metadata || jsonb_build_object(
              'last_occurred_at', excluded.metadata -> 'last_occurred_at',
              'consolidated_at', excluded.metadata -> 'consolidated_at',
              'avg_importance', round(((coalesce((m.metadata ->> 'avg_importance')::numeric, 0) * m.source_count
                                 + (excluded.metadata ->> 'avg_importance')::numeric * excluded.source_count)
                                 / (m.source_count + excluded.source_count)), 3))
      returning 1
    ), deleted as (
      delete from public.memory_episodic e using old where e.id = old.id returning 1
    )
    select (select count(*) from deleted)::int as folded, (select count(*) from upserted)::int as topics
  `,
  );
  return row!;
}

/** `memory.consolidate`: episodic memories older than N days become semantic memory. */
export const memoryConsolidate: JobHandler = async ({ job, sql, clock, signal, progress }) => {
  const input = parsePayload('memory.consolidate', memoryConsolidatePayload, job.payload);
  // One statement does the work, so progress is its start and its end (written only if the
  // job runs long enough for a lease renewal, see drainQueue).
  progress?.(0, `folding up to ${input.max_rows.toLocaleString('en-US')} episodic memories`);
  const { folded, topics } = await foldOldMemories(sql, input, clock.now(), signal);
  progress?.(
    1,
    `folded ${folded.toLocaleString('en-US')} episodic memories into ${topics} topics`,
  );
  let followUp: string | null = null;
  if (folded === input.max_rows) {
    followUp = await enqueueJob(sql, 'memory.consolidate', job.payload, {
      dedupKey: `memory.consolidate:follow-up:${input.agent_id ?? 'all'}`,
    });
  }
  return { folded, topics, follow_up_job: followUp };
};
