import { describe, expect, it, vi } from 'vitest';
import { decideOutcome, type FailedAttempt } from '../packages/shared/src/queue/outcome.ts';

// decideOutcome is the one place a handler's failure is decided; pure, so no database here.
// (That SQL applies it, and that a lost lease ends a job after the same attempt, is pinned in
// tests/job-queue.test.ts.)

const now = new Date('2026-01-01T00:00:00Z');
const job = (over: Partial<FailedAttempt> = {}): FailedAttempt => ({
  attempts: 2,
  attempts_left: true,
  backoff_base_seconds: 10,
  backoff_cap_seconds: 100,
  ...over,
});

describe('decideOutcome', () => {
  it('retries with attempts left after the backoff of the attempt that failed', () => {
    // Attempt 2, base 10 s: a window of 20 s, random 0.5 puts it at 15 s.
    expect(decideOutcome(job(), { kind: 'retry' }, now, () => 0.5)).toEqual({
      status: 'pending',
      runAt: new Date('2026-01-01T00:00:15Z'),
    });
    expect(decideOutcome(job(), { kind: 'timeout' }, now, () => 1)).toEqual({
      status: 'pending',
      runAt: new Date('2026-01-01T00:00:20Z'),
    });
  });

  it('retries at the time the failure names, not after the backoff', () => {
    const retryAt = new Date('2026-01-01T01:00:00Z');
    expect(decideOutcome(job(), { kind: 'retry', retryAt }, now, () => 0.5)).toEqual({
      status: 'pending',
      runAt: retryAt,
    });
  });

  it('fails for good on a permanent failure, whatever attempts are left', () => {
    expect(decideOutcome(job({ attempts: 1 }), { kind: 'permanent' }, now, () => 0.5))
      .toEqual({ status: 'failed' });
  });

  it('fails for good when no attempt is left, even a failure that names a retry time', () => {
    const retryAt = new Date('2026-01-01T01:00:00Z');
    for (const kind of ['retry', 'timeout'] as const) {
      expect(decideOutcome(job({ attempts_left: false }), { kind, retryAt }, now, () => 0.5))
        .toEqual({ status: 'failed' });
    }
  });

  it('draws no jitter for a job it fails: no retry time is computed to be thrown away', () => {
    const random = vi.fn(() => 0.5);
    decideOutcome(job({ attempts_left: false }), { kind: 'retry' }, now, random);
    decideOutcome(job(), { kind: 'permanent' }, now, random);
    expect(random).not.toHaveBeenCalled();
    decideOutcome(job(), { kind: 'retry' }, now, random);
    expect(random).toHaveBeenCalledTimes(1);
  });
});
