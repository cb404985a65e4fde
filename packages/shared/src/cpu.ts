import process from 'node:process';
import { CPU_BUDGET_MS } from './limits.ts';

// Hosted Edge Functions stop a request past 2 s of CPU time (546) and do not count time spent
// waiting on I/O. The drains and the sync measure the CPU they spend and stop starting new
// work past a budget (CPU_BUDGET_MS), leaving the rest to a next invocation.
//
// The clock is the process's CPU time (user + system, node:process cpuUsage(), which Deno
// implements too), read from the start of the invocation. It is process-wide: requests served
// at once by one isolate count each other's CPU against their budget, and so do garbage
// collection and the database driver's parsing. That is conservative: an invocation stops
// early rather than late, which is the safe side of a limit that kills the isolate.

/** This process's CPU time (user + system) in milliseconds. */
export function processCpuMs(): number {
  const usage = process.cpuUsage();
  return (usage.user + usage.system) / 1_000;
}

/** The CPU time an invocation may spend before it stops starting work. */
export interface CpuBudget {
  readonly limitMs: number;
  /** CPU milliseconds spent (by the whole process) since the invocation started. */
  spentMs(): number;
  /** The budget is spent: finish what was started, start nothing new. */
  exhausted(): boolean;
}

/** A budget of `limitMs` of CPU time from now; `read` is the clock (tests may pass their own). */
export function cpuBudget(
  limitMs: number = CPU_BUDGET_MS,
  read: () => number = processCpuMs,
): CpuBudget {
  const start = read();
  const spentMs = () => read() - start;
  return { limitMs, spentMs, exhausted: () => spentMs() >= limitMs };
}

/** The same budget (same start) with a lower limit: a request asked for less (tests). */
export function lowerCpuBudget(budget: CpuBudget, limitMs: number): CpuBudget {
  if (limitMs >= budget.limitMs) return budget;
  return { limitMs, spentMs: budget.spentMs, exhausted: () => budget.spentMs() >= limitMs };
}
