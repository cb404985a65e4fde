import type { Sql } from '../../packages/shared/src/db.ts';
import {
  type DrainDeps,
  type DrainOptions,
  drainQueue,
  type HandlerRegistry,
} from '../../packages/shared/src/queue/drain.ts';

let counter = 0;

/** A job type no other test uses, so tests sharing the database never take each other's jobs. */
export function uniqueJobType(label = 'job'): string {
  counter++;
  return `test_${process.pid}_${Date.now().toString(36)}_${counter}.${label}`;
}

/** One drain call; `deps` overrides the drain's dependencies (an outbound allow-list...). */
export function drain(
  sql: Sql,
  handlers: HandlerRegistry,
  options: Partial<DrainOptions> & { jobTypes: string[] },
  deps: Partial<DrainDeps> = {},
) {
  return drainQueue(
    { sql, handlers, clock: { now: () => new Date() }, random: () => 0.5, ...deps },
    {
      worker: `test-${crypto.randomUUID()}`,
      budgetMs: 20_000,
      concurrency: 10,
      batchSize: 50,
      ...options,
    },
  );
}

export interface JobRow {
  id: string;
  status: string;
  attempts: number;
  max_attempts: number;
  last_error: string | null;
  errors: Array<
    { attempt: number; at: string; kind: string; error: string; worker: string | null }
  >;
  result: unknown;
  run_at: Date;
  locked_by: string | null;
  finished_at: Date | null;
}

export async function jobsOf(sql: Sql, jobType: string): Promise<JobRow[]> {
  return await sql<JobRow[]>`select * from cesar.job_queue where job_type = ${jobType} order by id`;
}

export async function jobById(sql: Sql, id: string): Promise<JobRow> {
  const [row] = await sql<JobRow[]>`select * from cesar.job_queue where id = ${id}`;
  return row!;
}
