import { preciseNowMs } from '../../clock.ts';
import type { JobHandler } from '../drain.ts';

/**
 * `system.noop`: does nothing and reports when it started (milliseconds since the epoch on
 * the wall clock, sub-millisecond precision). Checks the queue end to end; the benchmark measures with it.
 */
export const noop: JobHandler = () => Promise.resolve({ started_at_ms: preciseNowMs() });
