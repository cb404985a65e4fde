import { z } from 'zod';
import { cancelOnAbort, type Sql } from '../../db.ts';
import type { JobHandler } from '../drain.ts';
import { parsePayload } from './payload.ts';

export const maintenancePrunePayload = z.object({
  completed_jobs_days: z.number().int().min(0).default(7),
  /** Dead letters are kept longer, for inspection and redrive. */
  failed_jobs_days: z.number().int().min(0).default(30),
  agent_events_days: z.number().int().min(0).default(30),
  cron_history_days: z.number().int().min(0).default(7),
  processed_events_days: z.number().int().min(0).default(7),
  ingestion_log_days: z.number().int().min(0).default(30),
  /** Rows per delete statement: short statements, short locks. */
  batch_size: z.number().int().min(1).max(50_000).default(5_000),
});

type Input = z.infer<typeof maintenancePrunePayload>;

/** What to prune, and when a row is old enough. Identifiers come only from this list. */
interface Target {
  name: string;
  schema: string;
  table: string;
  key: string;
  /** The row's age is measured by this column. */
  time: string;
  /** Only rows in these states, when the table has a status column to say so. */
  statuses?: string[];
  /**
   * Oldest first by the time column, or by the key where keys grow with time (cheaper), or
   * where the order does not matter (cesar.webhook_deliveries: nearly every row is past its
   * time at the nightly run, and the key walks the primary key).
   */
  oldestBy: 'key' | 'time';
  days: (input: Input) => number;
}

const TARGETS: Target[] = [
  {
    name: 'completed_jobs',
    schema: 'cesar',
    table: 'job_queue',
    key: 'id',
    time: 'finished_at',
    statuses: ['completed', 'cancelled'],
    oldestBy: 'key',
    days: (i) => i.completed_jobs_days,
  },
  {
    name: 'failed_jobs',
    schema: 'cesar',
    table: 'job_queue',
    key: 'id',
    time: 'finished_at',
    statuses: ['failed'],
    oldestBy: 'key',
    days: (i) => i.failed_jobs_days,
  },
  {
    name: 'agent_events',
    schema: 'public',
    table: 'agent_events',
    key: 'id',
    time: 'created_at',
    oldestBy: 'time',
    days: (i) => i.agent_events_days,
  },
  {
    name: 'ingestion_log',
    schema: 'public',
    table: 'ingestion_log',
    key: 'id',
    time: 'created_at',
    oldestBy: 'time',
    days: (i) => i.ingestion_log_days,
  },
  {
    name: 'cron_history',
    schema: 'cron',
    table: 'job_run_details',
    key: 'runid',
    time: 'end_time',
    oldestBy: 'key',
    days: (i) => i.cron_history_days,
  },
  {
    name: 'processed_events',
    schema: 'cesar',
    table: 'event_log',
    key: 'id',
    time: 'occurred_at',
    statuses: ['processed', 'ignored'],
    oldestBy: 'key',
    days: (i) => i.processed_events_days,
  },
  {
    // Signed deliveries' ids, once their replay window is over: the webhook function sets
    // expires_at (webhook-timestamp + its tolerance), so the cutoff is now (0 days).
    name: 'webhook_deliveries',
    schema: 'cesar',
    table: 'webhook_deliveries',
    key: 'id',
    time: 'expires_at',
    oldestBy: 'key',
    days: () => 0,
  },
];

/** Deletes at most `limit` rows of the target older than `cutoff`, oldest first; returns how many. */
async function deleteBatch(
  sql: Sql,
  target: Target,
  cutoff: Date,
  limit: number,
  signal: AbortSignal,
): Promise<number> {
  const table = sql([target.schema, target.table].join('.'));
  const key = sql(target.key);
  const time = sql(target.time);
  const status = target.statuses ? sql`and status = any(${target.statuses}::text[])` : sql``;
  const [row] = await cancelOnAbort(
    signal,
    sql<Array<{ n: number }>>`
    with doomed as (
      select ${key} as key from ${table}
      where ${time} < ${cutoff} ${status}
      order by ${target.oldestBy === 'key' ? key : time} limit ${limit}
    ), gone as (
      delete from ${table} t using doomed where t.${key} = doomed.key returning 1
    )
    select count(*)::int as n from gone
  `,
  );
  return row!.n;
}

async function tableExists(sql: Sql, table: string): Promise<boolean> {
  const [row] = await sql<Array<{ ok: boolean }>>`select to_regclass(${table}) is not null as ok`;
  return row!.ok;
}

/**
 * `maintenance.prune`: retention for finished jobs, agent_events, pg_cron's run history,
 * processed events and signed deliveries' ids past their replay window, in bounded batches;
 * then the capture stores left empty by an unwatch or a reshaped table, and rate-limit windows
 * no start counts in any more. Stops between batches when the job is aborted and reports what
 * is left; the next daily run continues. A batch under way when the signal aborts is cancelled
 * (its rows stay).
 */
export const maintenancePrune: JobHandler = async ({ job, sql, clock, signal }) => {
  const input = parsePayload('maintenance.prune', maintenancePrunePayload, job.payload);
  const now = clock.now();
  const deleted: Record<string, number> = {};
  let complete = true;
  for (const target of TARGETS) {
    if (!(await tableExists(sql, `${target.schema}.${target.table}`))) continue;
    const cutoff = new Date(now.getTime() - target.days(input) * 86_400_000);
    let removed = 0;
    for (;;) {
      if (signal.aborted) {
        complete = false;
        break;
      }
      const n = await deleteBatch(sql, target, cutoff, input.batch_size, signal);
      removed += n;
      if (n < input.batch_size) break;
    }
    deleted[target.name] = removed;
  }
  // Capture stores of tables unwatched or reshaped, once their statements are events.
  const [stores] = await sql<Array<{ n: number }>>`select cesar.drop_retired_capture_stores() as n`;
  deleted.capture_stores = stores!.n;
  // Rate-limit windows (cesar.job_rate_windows, one row per key ever seen) whose every start
  // has left its key's window (the key's own limit, cesar.job_rate_limits, else its type's),
  // or whose key has no rate limit now: as good as no row. A claim that records a start
  // meanwhile makes its row recent again (the delete re-reads it), and a claim that read a
  // row deleted here writes it back whole (its upsert).
  const [windows] = await sql<Array<{ n: number }>>`
    with gone as (
      delete from cesar.job_rate_windows w
      where not exists (
        select from cesar.job_types t
        left join cesar.job_rate_limits l
          on t.rate_key is not null and l.job_type = t.job_type and l.key_value = w.rate_key
        where t.job_type = w.job_type and coalesce(l.rate_limit, t.rate_limit) is not null
          and (select max(s) from unnest(w.starts) s)
              > now() - make_interval(secs => coalesce(l.rate_period_seconds, t.rate_period_seconds)))
      returning 1)
    select count(*)::int as n from gone`;
  deleted.rate_windows = windows!.n;
  return { deleted, complete };
};
