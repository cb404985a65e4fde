import { z } from 'zod';
import type { Sql } from '../../db.ts';
import type { JobHandler } from '../drain.ts';
import { parsePayload } from './payload.ts';

export const maintenancePrunePayload = z.object({
  completed_jobs_days: z.number().int().min(0).default(7),
  /** Dead letters are kept longer, for inspection and redrive. */
  failed_jobs_days: z.number().int().min(0).default(30),
  agent_events_days: z.number().int().min(0).default(30),
  cron_history_days: z.number().int().min(0).default(7),
  processed_events_days: z.number().int().min(0).default(7),
  /** Rows per delete statement: short statements, short locks. */
  batch_size: z.number().int().min(1).max(50_000).default(5_000),
});

type Input = z.infer<typeof maintenancePrunePayload>;

interface Target {
  name: string;
  /** The table must exist (cron.job_run_details without pg_cron, the event log before its migration). */
  table: string;
  /** Deletes at most `limit` rows older than `cutoff`; returns how many. */
  deleteBatch: (sql: Sql, cutoff: Date, limit: number) => Promise<number>;
  days: (input: Input) => number;
}

const count = async (rows: Promise<Array<{ n: number }>>) => (await rows)[0]!.n;

// Each target is a fixed statement: no identifier comes from the payload.
const TARGETS: Target[] = [
  {
    name: 'completed_jobs',
    table: 'cesar.job_queue',
    days: (i) => i.completed_jobs_days,
    deleteBatch: (sql, cutoff, limit) =>
      count(sql`
      with doomed as (
        select id from cesar.job_queue
        where status in ('completed', 'cancelled') and finished_at < ${cutoff}
        order by finished_at limit ${limit}
      ), gone as (delete from cesar.job_queue q using doomed where q.id = doomed.id returning 1)
      select count(*)::int as n from gone`),
  },
  {
    name: 'failed_jobs',
    table: 'cesar.job_queue',
    days: (i) => i.failed_jobs_days,
    deleteBatch: (sql, cutoff, limit) =>
      count(sql`
      with doomed as (
        select id from cesar.job_queue
        where status = 'failed' and finished_at < ${cutoff}
        order by finished_at limit ${limit}
      ), gone as (delete from cesar.job_queue q using doomed where q.id = doomed.id returning 1)
      select count(*)::int as n from gone`),
  },
  {
    name: 'agent_events',
    table: 'public.agent_events',
    days: (i) => i.agent_events_days,
    deleteBatch: (sql, cutoff, limit) =>
      count(sql`
      with doomed as (
        select id from public.agent_events where created_at < ${cutoff} order by created_at limit ${limit}
      ), gone as (delete from public.agent_events e using doomed where e.id = doomed.id returning 1)
      select count(*)::int as n from gone`),
  },
  {
    name: 'cron_history',
    table: 'cron.job_run_details',
    days: (i) => i.cron_history_days,
    deleteBatch: (sql, cutoff, limit) =>
      count(sql`
      with doomed as (
        select runid from cron.job_run_details
        where coalesce(end_time, start_time) < ${cutoff} order by runid limit ${limit}
      ), gone as (delete from cron.job_run_details d using doomed where d.runid = doomed.runid returning 1)
      select count(*)::int as n from gone`),
  },
  {
    name: 'processed_events',
    table: 'cesar.event_log',
    days: (i) => i.processed_events_days,
    deleteBatch: (sql, cutoff, limit) =>
      count(sql`
      with doomed as (
        select id from cesar.event_log
        where status in ('processed', 'ignored') and occurred_at < ${cutoff}
        order by id limit ${limit}
      ), gone as (delete from cesar.event_log e using doomed where e.id = doomed.id returning 1)
      select count(*)::int as n from gone`),
  },
];

async function tableExists(sql: Sql, table: string): Promise<boolean> {
  const [row] = await sql<Array<{ ok: boolean }>>`select to_regclass(${table}) is not null as ok`;
  return row!.ok;
}

/**
 * `maintenance.prune`: retention for finished jobs, agent_events, pg_cron's run history and
 * processed events, in bounded batches. Stops between batches when the job is aborted and
 * reports what is left; the next daily run continues.
 */
export const maintenancePrune: JobHandler = async ({ job, sql, clock, signal }) => {
  const input = parsePayload('maintenance.prune', maintenancePrunePayload, job.payload);
  const now = clock.now();
  const deleted: Record<string, number> = {};
  let complete = true;
  for (const target of TARGETS) {
    if (!(await tableExists(sql, target.table))) continue;
    const cutoff = new Date(now.getTime() - target.days(input) * 86_400_000);
    let removed = 0;
    for (;;) {
      if (signal.aborted) {
        complete = false;
        break;
      }
      const n = await target.deleteBatch(sql, cutoff, input.batch_size);
      removed += n;
      if (n < input.batch_size) break;
    }
    deleted[target.name] = removed;
  }
  return { deleted, complete };
};
