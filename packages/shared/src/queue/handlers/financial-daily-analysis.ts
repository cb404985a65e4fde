import { z } from 'zod';
import { cancelOnAbort, type Sql } from '../../db.ts';
import type { JobHandler } from '../drain.ts';
import { parsePayload } from './payload.ts';

export const financialDailyAnalysisPayload = z.object({
  /** The UTC day to summarise; by default the day before the job runs. */
  day: z.iso.date().optional(),
});

/**
 * One summary row per symbol for the day: open/close by observation time, high, low,
 * volume, volume-weighted average price, change in percent. Re-running replaces the rows.
 */
async function summariseDay(sql: Sql, day: string, signal: AbortSignal) {
  const [row] = await cancelOnAbort(
    signal,
    sql<Array<{ symbols: number; observations: number }>>`
    with day_data as (
      select symbol, price, volume, observed_at
      from public.financial_data
      where observed_at >= ${day}::date and observed_at < ${day}::date + 1
    ), summary as (
      select symbol, count(*)::int as observations,
             (array_agg(price order by observed_at, price))[1] as open,
             max(price) as high, min(price) as low,
             (array_agg(price order by observed_at desc, price desc))[1] as close,
             sum(volume) as volume,
             sum(price * volume) / nullif(sum(volume), 0) as vwap
      from day_data group by symbol
    ), upserted as (
      insert into public.financial_daily_summaries as s
        (symbol, day, observations, open, high, low, close, volume, change_pct, vwap)
      select symbol, ${day}::date, observations, open, high, low, close, volume,
             round((close - open) / nullif(open, 0) * 100, 4), round(vwap, 8)
      from summary
      on conflict (symbol, day) do update
        set observations = excluded.observations, open = excluded.open, high = excluded.high,
            low = excluded.low, close = excluded.close, volume = excluded.volume,
            change_pct = excluded.change_pct, vwap = excluded.vwap
      returning observations
    )
    select count(*)::int as symbols, coalesce(sum(observations), 0)::int as observations from upserted
  `,
  );
  return row!;
}

/** `financial.daily_analysis`: aggregate a day's financial_data into financial_daily_summaries. */
export const financialDailyAnalysis: JobHandler = async ({ job, sql, clock, signal }) => {
  const input = parsePayload(
    'financial.daily_analysis',
    financialDailyAnalysisPayload,
    job.payload,
  );
  const day = input.day ?? new Date(clock.now().getTime() - 86_400_000).toISOString().slice(0, 10);
  return { day, ...(await summariseDay(sql, day, signal)) };
};
