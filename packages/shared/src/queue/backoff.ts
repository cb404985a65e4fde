/** A job type's retry policy, from cesar.job_types (defaults there: base 5 min, cap 1 h). */
export interface BackoffPolicy {
  baseSeconds: number;
  capSeconds: number;
}

/**
 * The delay before attempt `attempt + 1`, after attempt `attempt` (1-based) failed:
 * exponential (base * 2^(attempt-1)), capped, with "equal jitter": a random point in the
 * upper half of the window. The floor of half the window keeps retries spread out as
 * attempts grow; the jitter keeps a burst of failures from retrying in lockstep.
 * With the inventory's base of 5 minutes: 2.5-5 min, 5-10 min, 10-20 min, 20-40 min.
 */
export function backoffDelayMs(
  attempt: number,
  policy: BackoffPolicy,
  random: () => number,
): number {
  const exponent = Math.max(0, Math.min(attempt - 1, 30));
  const windowMs = Math.min(policy.capSeconds, policy.baseSeconds * 2 ** exponent) * 1000;
  return Math.round(windowMs / 2 + random() * (windowMs / 2));
}

/** When a job that failed its `attempt`th attempt at `now` runs again. Pure: clock and randomness are arguments. */
export function nextRunAt(
  attempt: number,
  now: Date,
  random: () => number,
  policy: BackoffPolicy,
): Date {
  return new Date(now.getTime() + backoffDelayMs(attempt, policy, random));
}

/**
 * Parses a Retry-After header (seconds, or an HTTP date) into an absolute time; null when
 * absent or unreadable. Negative or past values mean "now".
 */
export function parseRetryAfter(value: string | null | undefined, now: Date): Date | null {
  if (!value) return null;
  const trimmed = value.trim();
  if (/^\d+(\.\d+)?$/.test(trimmed)) return new Date(now.getTime() + Number(trimmed) * 1000);
  const date = Date.parse(trimmed);
  if (Number.isNaN(date)) return null;
  return new Date(Math.max(date, now.getTime()));
}
