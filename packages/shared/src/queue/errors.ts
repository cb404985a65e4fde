/** A failure that retrying cannot fix: the job is failed at once, whatever attempts remain. */
export class PermanentJobError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'PermanentJobError';
  }
}

/** A failure that says when to try again (HTTP 429 / 503 with Retry-After, a rate limit). */
export class RetryAfterError extends Error {
  constructor(message: string, readonly retryAt: Date, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'RetryAfterError';
  }
}

/** `cancelled`: the job was cancelled while its handler ran (cesar.cancel_jobs). */
export type FailureKind = 'retry' | 'permanent' | 'timeout' | 'cancelled';

export interface ClassifiedFailure {
  kind: FailureKind;
  message: string;
  /** Set when the failure itself says when to retry. */
  retryAt?: Date;
}

// PostgreSQL errors by SQLSTATE class: bad data and broken constraints stay broken on retry;
// serialization failures, deadlocks, lost connections and shutdowns are worth another try.
const PERMANENT_SQLSTATE_CLASSES = new Set(['22', '23', '42', '44']);

/** Names the outcome of a handler's error. */
export function classifyFailure(err: unknown): ClassifiedFailure {
  if (err instanceof RetryAfterError) {
    return { kind: 'retry', message: err.message, retryAt: err.retryAt };
  }
  if (err instanceof PermanentJobError) return { kind: 'permanent', message: err.message };
  const message = describeError(err);
  const code = (err as { code?: unknown })?.code;
  if (
    typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) &&
    PERMANENT_SQLSTATE_CLASSES.has(code.slice(0, 2))
  ) {
    return { kind: 'permanent', message: `${code}: ${message}` };
  }
  return { kind: 'retry', message };
}

export function describeError(err: unknown): string {
  if (err instanceof Error) return err.message || err.name;
  return typeof err === 'string' ? err : JSON.stringify(err);
}
