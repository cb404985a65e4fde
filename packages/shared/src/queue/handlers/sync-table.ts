import { z } from 'zod';
import { runPush } from '../../sync/run.ts';
import type { JobHandler } from '../drain.ts';
import { PermanentJobError } from '../errors.ts';
import { parsePayload } from './payload.ts';

export const syncTablePayload = z.object({
  /** Absent: every mirrored table. */
  table: z.string().regex(/^[a-z_][a-z0-9_]*\.[a-z_][a-z0-9_]*$/).optional(),
  direction: z.enum(['up', 'down', 'both']).default('up'),
});

/**
 * `sync.table`: pushes dirty rows to the CockroachDB mirror (see packages/shared/src/sync).
 * A table that failed (the mirror is down) fails the job, which retries with backoff; the
 * pull from the mirror (direction down) is not built yet, so down and both fail permanently
 * after pushing, saying so.
 */
export const syncTable: JobHandler = async ({ job, sql, mirror, signal }) => {
  const input = parsePayload('sync.table', syncTablePayload, job.payload);
  if (!mirror) throw new PermanentJobError('sync.table: no mirror configured (COCKROACH_DB_URL)');
  const budgetMs = Math.max(1_000, job.lease_seconds * 1000 - 5_000);
  const outcomes = await runPush(
    { primary: sql, mirror, random: Math.random },
    { tables: input.table ? [input.table] : null, dryRun: false, batchSize: 1_000, budgetMs },
  );
  if (signal.aborted) throw new Error('sync.table: aborted');
  const failed = outcomes.filter((o) => o.status === 'failed');
  if (failed.length > 0) {
    throw new Error(
      `sync.table: ${failed.map((o) => `${o.table}: ${'error' in o ? o.error : ''}`).join('; ')}`,
    );
  }
  if (input.direction !== 'up') {
    throw new PermanentJobError(
      `sync.table: pushed ${outcomes.length} table(s); pulling from the mirror (direction ${input.direction}) is not built yet`,
    );
  }
  return { tables: outcomes };
};
