import { z } from 'zod';
import { cancelOnAbort, type Sql } from '../../db.ts';
import type { JobHandler } from '../drain.ts';
import { parsePayload } from './payload.ts';

export const llmCacheRefreshPayload = z.object({
  /** Hours of history to recompute, counted back from the current hour. */
  hours: z.number().int().min(1).max(24 * 90).default(24),
});

/**
 * Recomputes the hourly per-model metrics from llm_collaborations, replacing what was there
 * for those hours (so a re-run gives the same rows). The model is the one whose answer was
 * chosen; latency and cost are that side's.
 */
async function recomputeMetrics(sql: Sql, hours: number, now: Date, signal: AbortSignal) {
  const [row] = await cancelOnAbort(
    signal,
    sql<Array<{ periods: number; requests: number }>>`
    with source as (
      select coalesce(case when c.chosen = 'cloud' then c.cloud_model else c.local_model end,
                      c.cloud_model, c.local_model, 'unknown') as model,
             date_trunc('hour', c.created_at) as period_start,
             c.cache_hit,
             case when c.chosen = 'cloud' then c.cloud_latency_ms else coalesce(c.local_latency_ms, c.cloud_latency_ms) end as latency_ms,
             c.cost_usd
      from public.llm_collaborations c
      where c.created_at >= date_trunc('hour', ${now}::timestamptz) - make_interval(hours => ${hours} - 1)
    ), upserted as (
      insert into public.llm_cache_metrics as m
        (model, period_start, period_end, requests, cache_hits, hit_rate, avg_latency_ms, total_cost_usd)
      select model, period_start, period_start + interval '1 hour', count(*), count(*) filter (where cache_hit),
             round(count(*) filter (where cache_hit)::numeric / count(*), 4), round(avg(latency_ms), 2), sum(cost_usd)
      from source
      group by model, period_start
      on conflict (model, period_start) do update
        set requests = excluded.requests, cache_hits = excluded.cache_hits, hit_rate = excluded.hit_rate,
            avg_latency_ms = excluded.avg_latency_ms, total_cost_usd = excluded.total_cost_usd,
            period_end = excluded.period_end
      returning requests
    )
    select count(*)::int as periods, coalesce(sum(requests), 0)::int as requests from upserted
  `,
  );
  return row!;
}

/** `llm_cache.refresh`: recompute llm_cache_metrics from llm_collaborations. */
export const llmCacheRefresh: JobHandler = async ({ job, sql, clock, signal }) => {
  const { hours } = parsePayload('llm_cache.refresh', llmCacheRefreshPayload, job.payload);
  return await recomputeMetrics(sql, hours, clock.now(), signal);
};
