/** Time as a dependency, so policy and responses can be tested with a fixed clock. */
export interface Clock {
  now(): Date;
}

export const systemClock: Clock = { now: () => new Date() };

export function fixedClock(at: Date | string): Clock {
  const date = new Date(at);
  return { now: () => new Date(date) };
}

let wallOffset: number | undefined;

/**
 * Milliseconds since the epoch with sub-millisecond precision, on the system's wall clock, so
 * that two processes' readings compare (a latency measured from one process to another).
 * `performance.timeOrigin + performance.now()` does not: each runtime reads its origin once,
 * and Node's and Deno's were measured 1 to 2 ms apart. Aligned once per process on the edge
 * of a Date.now() tick (a wait of at most 1 ms).
 */
export function preciseNowMs(): number {
  if (wallOffset === undefined) {
    const start = Date.now();
    let tick = start;
    while (tick === start) tick = Date.now();
    wallOffset = tick - performance.now();
  }
  return wallOffset + performance.now();
}
