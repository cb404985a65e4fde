import { z } from 'zod';
import { mirroredTableName, runSync, syncRunFields } from '../../mirror/index.ts';
import type { JobHandler } from '../drain.ts';
import { PermanentJobError } from '../errors.ts';
import { enqueueJob } from '../queries.ts';
import { parsePayload } from './payload.ts';

export const syncTablePayload = z.object({
  /** Absent: every mirrored table. */
  table: mirroredTableName.optional(),
  ...syncRunFields,
});

/**
 * `sync.table`: a sync run with the CockroachDB mirror (see packages/shared/src/mirror). A table
 * that failed (the mirror is down) fails the job, which retries with backoff; a run that
 * spent its budget before finishing enqueues its continuation, which starts from the
 * checkpoints. It reports progress per page and per table and direction (ctx.progress), and a
 * cancel (its signal) stops it at its next page.
 */
export const syncTable: JobHandler = async ({ job, sql, mirror, signal, cpu, progress }) => {
  const input = parsePayload('sync.table', syncTablePayload, job.payload);
  if (!mirror) throw new PermanentJobError('sync.table: no mirror configured (COCKROACH_DB_URL)');
  const budgetMs = Math.max(1_000, job.lease_seconds * 1000 - 5_000);
  const outcomes = await runSync(
    { primary: sql, mirror, random: Math.random },
    {
      tables: input.table ? [input.table] : null,
      direction: input.direction,
      dryRun: false,
      batchSize: input.batch_size,
      lookbackSeconds: input.lookback_seconds,
      budgetMs,
      // The drain's CPU budget: past it the run checkpoints, and the follow-up job below
      // (its enqueue rings the job-drain doorbell) continues in a next invocation.
      cpu,
      signal,
      onProgress: progress,
    },
  );
  if (signal.aborted) throw new Error('sync.table: aborted');
  const failed = outcomes.filter((o) => o.status === 'failed');
  if (failed.length > 0) {
    throw new Error(
      `sync.table: ${
        failed.map((o) => `${o.table} ${o.direction}: ${'error' in o ? o.error : ''}`).join('; ')
      }`,
    );
  }
  // The budget ran out before the end: a new job continues from the checkpoints.
  const unfinished = outcomes.some((o) => o.status === 'in_progress');
  const continuedBy = unfinished ? await enqueueJob(sql, 'sync.table', job.payload) : null;
  return { tables: outcomes, continued_by: continuedBy };
};
