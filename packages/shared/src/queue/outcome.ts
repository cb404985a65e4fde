import { nextRunAt } from './backoff.ts';
import type { ClassifiedFailure } from './errors.ts';

/** What becomes of a job whose handler failed: retried at runAt, or failed for good. */
export type JobOutcome = { status: 'pending'; runAt: Date } | { status: 'failed' };

/** What decideOutcome needs of the job: the started attempt and its type's retry policy. */
export interface FailedAttempt {
  attempts: number;
  /** cesar.job_attempts_left for this attempt, from the claim or start_jobs. */
  attempts_left: boolean;
  backoff_base_seconds: number;
  backoff_cap_seconds: number;
}

/**
 * Decides a handler's failure: a permanent failure, or one on the job's last attempt, fails
 * the job for good; any other runs again at the time the failure names (Retry-After) or after
 * the type's backoff (nextRunAt). Pure: clock and randomness are arguments. The drain's
 * statement (failJobs) only applies the decision, fenced by lease and attempt.
 *
 * Whether attempts are left is not re-stated here: it comes from SQL (cesar.job_attempts_left,
 * the rule the claim applies to a job whose lease expired), so a failure and a lost lease end
 * a job after the same attempt.
 */
export function decideOutcome(
  job: FailedAttempt,
  failure: Pick<ClassifiedFailure, 'kind' | 'retryAt'>,
  now: Date,
  random: () => number,
): JobOutcome {
  if (failure.kind === 'permanent' || !job.attempts_left) return { status: 'failed' };
  return {
    status: 'pending',
    runAt: failure.retryAt ??
      nextRunAt(job.attempts, now, random, {
        baseSeconds: job.backoff_base_seconds,
        capSeconds: job.backoff_cap_seconds,
      }),
  };
}
