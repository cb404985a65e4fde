import { preciseNowMs } from '../../packages/shared/src/clock.ts';
/** Percentile by nearest rank over a sorted copy. */
export function percentile(values: number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank]!;
}

export const fmt = (n: number, digits = 1) =>
  n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Wall-clock milliseconds with sub-millisecond precision, comparable across processes. */
/** The wall clock, comparable with the functions' (see preciseNowMs). */
export const wallMs = preciseNowMs;

/** Calls `fn(i)` `count` times at `perSecond`, each at its scheduled time (no drift). */
export async function paced(
  count: number,
  perSecond: number,
  fn: (i: number) => Promise<void>,
): Promise<void> {
  const start = performance.now();
  for (let i = 0; i < count; i++) {
    const wait = start + (i * 1000) / perSecond - performance.now();
    if (wait > 0) await sleep(wait);
    await fn(i);
  }
}
