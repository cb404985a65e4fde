import process from 'node:process';
import { z } from 'zod';
import { CPU_BUDGET_MS } from './limits.ts';

// Hosted Edge Functions stop a request past 2 s of CPU time (546) and do not count time spent
// waiting on I/O. The drains and the sync measure the CPU they spend and stop starting new
// work past a budget (CPU_BUDGET_MS), leaving the rest to a next invocation.
//
// The clock is the process's CPU time (user + system, node:process cpuUsage(), which Deno
// implements too), read from the start of the oldest request in flight. It is process-wide: requests served
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

// The process's CPU time when each request in flight began (functionApp registers them). The
// runtime stops an isolate once the CPU it used since the start of its oldest request in flight
// passes the limit, whichever request spent it; a budget counts from there too, or two drains
// started apart on one isolate could each keep within their own budget and together pass it.
const requestsInFlight = new Map<symbol, number>();

/** Marks a request in flight from now; call the function returned when it is over. */
export function requestStarted(): () => void {
  const id = Symbol();
  requestsInFlight.set(id, processCpuMs());
  return () => void requestsInFlight.delete(id);
}

function oldestRequestStart(fallback: number): number {
  let oldest = fallback;
  for (const start of requestsInFlight.values()) oldest = Math.min(oldest, start);
  return oldest;
}

/**
 * A budget of `limitMs` of CPU time, counted from the start of the oldest request in flight
 * (or from now); `read` is the clock (tests may pass their own, which counts from now).
 */
export function cpuBudget(
  limitMs: number = CPU_BUDGET_MS,
  read: () => number = processCpuMs,
): CpuBudget {
  const now = read();
  const start = read === processCpuMs ? oldestRequestStart(now) : now;
  const spentMs = () => read() - start;
  return { limitMs, spentMs, exhausted: () => spentMs() >= limitMs };
}

/** The same budget (same start) with a lower limit: a request asked for less (tests). */
export function lowerCpuBudget(budget: CpuBudget, limitMs: number): CpuBudget {
  if (limitMs >= budget.limitMs) return budget;
  return { limitMs, spentMs: budget.spentMs, exhausted: () => budget.spentMs() >= limitMs };
}

/** A request's `cpu_budget_ms`: the CPU milliseconds its invocation may spend; lower only. */
export const cpuBudgetMsField = z.number().int().min(1).max(CPU_BUDGET_MS).default(CPU_BUDGET_MS);
