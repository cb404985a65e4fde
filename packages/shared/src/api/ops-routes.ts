import type { Hono } from 'hono';
import { z } from 'zod';
import type { Sql } from '../db.ts';
import { ApiError, parseQuery, readJsonBody, timestamp } from '../http/index.ts';
import { checkKeyFields, enqueueJob, jobTypeName, keyFields } from '../queue/index.ts';
import { declaredTables, syncRunFields, syncStatus, tableList } from '../mirror/index.ts';
import type { ApiDeps } from './app.ts';
import { businessHealth } from './queries.ts';

// The operator's routes on the api function: the job queue (list, retry, cancel), "sync now"
// for one table or all, and /status, everything the dashboard shows in one answer.

/** The operator's routes need the api function's database and clock (ApiDeps). */
export type OpsRouteDeps = Pick<ApiDeps, 'sql' | 'clock' | 'jobTypes'>;

const jobStatus = z.enum(['pending', 'running', 'completed', 'failed', 'cancelled']);
const jobsQuery = z.object({
  status: jobStatus.optional(),
  job_type: z.string().regex(/^[a-z][a-z0-9_.]*$/, 'a job type').optional(),
  limit: z.coerce.number().int().min(1).max(500).default(50),
}).strict();

const jobIds = z.object({
  ids: z.array(z.string().regex(/^\d{1,18}$/, 'a job id')).min(1).max(1000),
}).strict();

const retryRequest = z.union([
  jobIds,
  z.object({
    job_type: z.string().regex(/^[a-z][a-z0-9_.]*$/, 'a job type'),
    since: timestamp.optional(),
  }).strict(),
]);

/** POST /jobs: one job, with an optional key and mode (cesar.enqueue, queue/key-modes.ts). */
export const enqueueRequest = z.object({
  job_type: jobTypeName,
  payload: z.record(z.string(), z.unknown()).default({}),
  run_at: timestamp.optional(),
  priority: z.number().int().min(-1_000_000).max(1_000_000).optional(),
  max_attempts: z.number().int().min(1).max(100).optional(),
  ...keyFields,
}).strict().superRefine(checkKeyFields);

const syncNowRequest = z.object({
  /** Absent: every mirrored table. */
  tables: tableList.optional(),
  ...syncRunFields,
}).strict();

export interface JobRow {
  id: string;
  job_type: string;
  status: string;
  attempts: number;
  max_attempts: number;
  run_at: Date;
  last_error: string | null;
  execution_id: string | null;
  /** The job's key and what a second enqueue with it does (keep for a dedup_key). */
  key: string | null;
  key_mode: string | null;
  created_at: Date;
  finished_at: Date | null;
  /** The running attempt's last reported progress, 0 to 1 (written with its lease renewal). */
  progress: number | null;
  progress_message: string | null;
  /** A cancel asked of a job whose handler runs: it ends cancelled within seconds. */
  cancel_requested_at: Date | null;
}

/** One job, with its payload, result and error history. */
export interface JobDetail extends JobRow {
  payload: unknown;
  result: unknown;
  errors: unknown[];
  priority: number;
  locked_by: string | null;
  locked_until: Date | null;
  started_at: Date | null;
  updated_at: Date;
}

/** A JobRow's columns (a dedup_key shows as the key of mode keep). */
const jobRowColumns = (sql: Sql) =>
  sql`id::text, job_type, status, attempts, max_attempts, run_at, last_error,
      execution_id::text, coalesce(job_key, dedup_key) as key,
      coalesce(key_mode, case when dedup_key is not null then 'keep' end) as key_mode,
      created_at, finished_at, progress::float8, progress_message, cancel_requested_at`;

export async function listJobs(
  sql: Sql,
  filter: { status?: string; jobType?: string; limit: number },
): Promise<JobRow[]> {
  return await sql<JobRow[]>`
    select ${jobRowColumns(sql)}
    from cesar.job_queue
    where (${filter.status ?? null}::text is null or status = ${filter.status ?? null})
      and (${filter.jobType ?? null}::text is null or job_type = ${filter.jobType ?? null})
    -- The table's id, not the output's text column of the same name ('99' > '100').
    order by job_queue.id desc
    limit ${filter.limit}
  `;
}

export async function getJob(sql: Sql, id: string): Promise<JobDetail | null> {
  const [row] = await sql<JobDetail[]>`
    select ${jobRowColumns(sql)}, payload, result, errors, priority, locked_by, locked_until,
           started_at, updated_at
    from cesar.job_queue where id = ${id}::bigint
  `;
  return row ?? null;
}

/** What the dashboard shows, in one query per part. */
export async function operationsStatus(sql: Sql, now: Date) {
  const [queue, events, sync, conflicts, workflows, ingestion, business] = await Promise.all([
    sql`
      select job_type, status, count(*)::int as jobs,
             extract(epoch from ${now}::timestamptz - min(created_at))::int as oldest_seconds
      from cesar.job_queue
      where status in ('pending', 'running', 'failed')
      group by job_type, status order by job_type, status
    `,
    sql`
      select pending::int, extract(epoch from ${now}::timestamptz - oldest)::int as oldest_seconds
      from cesar.event_backlog()
    `,
    syncStatus(sql),
    sql`select count(*)::int as total,
               count(*) filter (where detected_at > ${now}::timestamptz - interval '1 day')::int as last_day
        from cesar.sync_conflicts`,
    sql`select count(*)::int as total, count(*) filter (where enabled)::int as enabled
        from cesar.workflow_templates`,
    sql`select * from cesar.ingestion_errors order by source`,
    businessHealth(sql, now),
  ]);
  return {
    timestamp: now.toISOString(),
    business,
    queue,
    events: events[0],
    sync: { tables: sync, conflicts: conflicts[0] },
    workflows: workflows[0],
    ingestion_errors: ingestion,
  };
}

/** Per symbol: the latest price and observation, and the latest daily summary. */
export async function financialMetrics(sql: Sql) {
  return await sql`
    select s.symbol, d.price::float8 as last_price, d.observed_at as last_observed_at,
           f.day as summary_day, f.open::float8 as open, f.high::float8 as high,
           f.low::float8 as low, f.close::float8 as close, f.vwap::float8 as vwap,
           f.change_pct::float8 as change_pct, f.observations
    from (select distinct symbol from public.financial_data
          union select distinct symbol from public.financial_daily_summaries) s
    left join lateral (
      select price, observed_at from public.financial_data x
      where x.symbol = s.symbol order by observed_at desc limit 1) d on true
    left join lateral (
      select * from public.financial_daily_summaries y
      where y.symbol = s.symbol order by day desc limit 1) f on true
    order by s.symbol
  `;
}

export function registerOpsRoutes(app: Hono, deps: OpsRouteDeps) {
  const { sql } = deps;

  app.get('/financial', async (c) => c.json({ symbols: await financialMetrics(sql) }));

  app.get('/status', async (c) => c.json(await operationsStatus(sql, deps.clock.now())));

  app.get('/jobs', async (c) => {
    const q = parseQuery(c, jobsQuery);
    return c.json({
      jobs: await listJobs(sql, { status: q.status, jobType: q.job_type, limit: q.limit }),
    });
  });

  app.post('/jobs', async (c) => {
    const body = await readJsonBody(c, enqueueRequest);
    if (!deps.jobTypes.includes(body.job_type)) {
      throw new ApiError(400, 'invalid request', [{
        path: 'job_type',
        message: `unknown job type "${body.job_type}"; known: ${
          [...deps.jobTypes].sort().join(', ')
        }`,
      }]);
    }
    const id = await enqueueJob(sql, body.job_type, body.payload, {
      runAt: body.run_at === undefined ? undefined : new Date(body.run_at),
      priority: body.priority,
      maxAttempts: body.max_attempts,
      key: body.key,
      mode: body.mode,
      delaySeconds: body.delay_seconds,
      periodSeconds: body.period_seconds,
    });
    return c.json({
      id,
      job_type: body.job_type,
      key: body.key ?? null,
      mode: body.key === undefined ? null : body.mode ?? 'keep',
    }, 202);
  });

  app.get('/jobs/:id', async (c) => {
    const id = c.req.param('id');
    const job = /^\d{1,18}$/.test(id) ? await getJob(sql, id) : null;
    if (!job) throw new ApiError(404, `no job ${id.slice(0, 40)}`);
    return c.json(job);
  });

  app.post('/jobs/retry', async (c) => {
    const body = await readJsonBody(c, retryRequest);
    const rows = 'ids' in body
      ? await sql`select cesar.retry_jobs(${body.ids}::bigint[])::text as id`
      : await sql`select cesar.redrive_jobs(${body.job_type}, ${
        body.since ?? '-infinity'
      }::text::timestamptz)::text as id`;
    return c.json({ retried: rows.map((r) => r.id as string) });
  });

  app.post('/jobs/cancel', async (c) => {
    const body = await readJsonBody(c, jobIds);
    const rows = await sql`select cesar.cancel_jobs(${body.ids}::bigint[])::text as id`;
    return c.json({ cancelled: rows.map((r) => r.id as string) });
  });

  // "Sync now": a sync.table job per table, deduplicated, so that a second click while one
  // waits adds nothing; the job-drain function runs it within milliseconds (the doorbell).
  app.post('/sync', async (c) => {
    const body = await readJsonBody(c, syncNowRequest);
    const mirrored = await declaredTables(sql);
    const unknown = (body.tables ?? []).filter((t) => !mirrored.includes(t));
    if (unknown.length > 0) throw new ApiError(422, `not mirrored: ${unknown.join(', ')}`);
    const { tables, ...run } = body;
    const jobs = [];
    for (const table of tables ?? mirrored) {
      const jobId = await enqueueJob(sql, 'sync.table', { table, ...run }, {
        dedupKey: `sync-now:${table}:${body.direction}`,
      });
      jobs.push({ table, job_id: jobId });
    }
    return c.json({ direction: body.direction, jobs }, 202);
  });
}
