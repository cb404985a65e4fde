import { describe, expect, it } from 'vitest';
import {
  backoffDelayMs,
  nextRunAt,
  parseRetryAfter,
} from '../packages/shared/src/queue/backoff.ts';
import {
  classifyFailure,
  PermanentJobError,
  RetryAfterError,
} from '../packages/shared/src/queue/errors.ts';

const inventory = { baseSeconds: 300, capSeconds: 3600 };

describe('backoff', () => {
  it('doubles per attempt within [window/2, window], from the inventory base of 5 minutes', () => {
    const low = (attempt: number) => backoffDelayMs(attempt, inventory, () => 0) / 1000;
    const high = (attempt: number) => backoffDelayMs(attempt, inventory, () => 1) / 1000;
    expect([1, 2, 3, 4].map(low)).toEqual([150, 300, 600, 1200]);
    expect([1, 2, 3, 4].map(high)).toEqual([300, 600, 1200, 2400]);
  });

  it('never exceeds the cap, however many attempts', () => {
    for (const attempt of [5, 6, 10, 50, 1000]) {
      expect(backoffDelayMs(attempt, inventory, () => 1)).toBe(3_600_000);
      expect(backoffDelayMs(attempt, inventory, () => 0)).toBe(1_800_000);
    }
  });

  it('spreads a burst of failures with jitter', () => {
    let seed = 42;
    const random = () => ((seed = (seed * 16807) % 2147483647) / 2147483647);
    const delays = new Set(Array.from({ length: 50 }, () => backoffDelayMs(3, inventory, random)));
    expect(delays.size).toBeGreaterThan(45);
  });

  it('computes the next run from the injected clock', () => {
    const now = new Date('2026-01-01T00:00:00Z');
    expect(nextRunAt(2, now, () => 0.5, { baseSeconds: 10, capSeconds: 100 }).toISOString()).toBe(
      '2026-01-01T00:00:15.000Z',
    );
  });

  it('parses Retry-After as seconds or an HTTP date', () => {
    const now = new Date('2026-01-01T00:00:00Z');
    expect(parseRetryAfter('120', now)?.toISOString()).toBe('2026-01-01T00:02:00.000Z');
    expect(parseRetryAfter('Thu, 01 Jan 2026 00:05:00 GMT', now)?.toISOString()).toBe(
      '2026-01-01T00:05:00.000Z',
    );
    expect(parseRetryAfter('Wed, 31 Dec 2025 00:00:00 GMT', now)?.toISOString()).toBe(
      now.toISOString(),
    );
    expect(parseRetryAfter('soon', now)).toBeNull();
    expect(parseRetryAfter(null, now)).toBeNull();
  });
});

describe('classifyFailure', () => {
  it('names permanent, retry-after and ordinary failures', () => {
    expect(classifyFailure(new PermanentJobError('bad'))).toEqual({
      kind: 'permanent',
      message: 'bad',
    });
    const at = new Date('2026-01-01T00:00:00Z');
    expect(classifyFailure(new RetryAfterError('slow down', at))).toEqual({
      kind: 'retry',
      message: 'slow down',
      retryAt: at,
    });
    expect(classifyFailure(new Error('flaky'))).toEqual({ kind: 'retry', message: 'flaky' });
  });

  it('classifies PostgreSQL errors by SQLSTATE', () => {
    const pg = (code: string) => Object.assign(new Error('x'), { code });
    expect(classifyFailure(pg('23505')).kind).toBe('permanent'); // unique violation
    expect(classifyFailure(pg('22P02')).kind).toBe('permanent'); // bad input
    expect(classifyFailure(pg('40001')).kind).toBe('retry'); // serialization failure
    expect(classifyFailure(pg('40P01')).kind).toBe('retry'); // deadlock
    expect(classifyFailure(pg('08006')).kind).toBe('retry'); // connection failure
    expect(classifyFailure(Object.assign(new Error('x'), { code: 'ECONNREFUSED' })).kind).toBe(
      'retry',
    );
  });
});
