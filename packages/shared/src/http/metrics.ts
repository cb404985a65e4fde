import type { MiddlewareHandler } from 'hono';
import type { Sql } from '../db.ts';
import { onShutdown } from '../shutdown.ts';
import { isAuthenticated } from './auth.ts';

/** Answers held in memory between writes; past this (a hung write, a flood) none is counted. */
const MAX_PENDING = 10_000;

/**
 * The least time between two writes of one instance's counts. Writing after every answer (one
 * write in flight, the next at once) was a write, a WAL record and a commit per few answers
 * under load: at 20 connections on GET /api/agents a stream of upserts on the same few rows.
 * One write per 100 ms carries whatever came in meanwhile (a few hundred answers at 3,000
 * req/s) and puts a count in the table at most 100 ms after its answer; an idle instance's
 * first answer is still written at once.
 */
export const FLUSH_INTERVAL_MS = 100;

/** Every counter of this process, for flushRequestCounts(). */
const counters = new Set<() => Promise<void>>();

/**
 * Writes what every counter of this instance holds, now: called as the instance goes away
 * (a shutdown hook, shutdown.ts: hosted's `beforeunload`, the local runtime's SIGTERM), so
 * the counts of its last 100 ms are not lost with it.
 */
export async function flushRequestCounts(): Promise<void> {
  await Promise.all([...counters].map((flush) => flush()));
}
onShutdown(flushRequestCounts);

/**
 * Counts every answer of a function (status and duration) for the Prometheus metrics, which
 * must add up across the short-lived instances of an Edge Function: in memory first, then
 * added to cesar.http_request_totals a batch at a time (cesar.record_requests), with at most
 * one write in flight per instance and at most one every FLUSH_INTERVAL_MS. Only an answer to
 * an authenticated request starts a write; the others (refused, or a browser's preflight) ride
 * along with the next, so a flood of requests without the secret costs the database nothing.
 * A failure to count never fails the request; its batch is kept for the next write.
 */
export function countRequests(
  sql: Sql,
  functionName: string,
  options: { intervalMs?: number; now?: () => number } = {},
): MiddlewareHandler {
  const intervalMs = options.intervalMs ?? FLUSH_INTERVAL_MS;
  const now = options.now ?? (() => performance.now());
  let statuses: number[] = [];
  let durations: number[] = [];
  let writing: Promise<void> | null = null;
  let lastWrite = -Infinity;
  let timer: ReturnType<typeof setTimeout> | undefined;

  async function writeBatch(): Promise<boolean> {
    const batch = { statuses, durations };
    statuses = [];
    durations = [];
    lastWrite = now();
    try {
      await sql`select cesar.record_requests(${functionName}, ${batch.statuses}::int[],
                                             ${batch.durations}::float8[])`;
      return true;
    } catch {
      // Kept for the next write (within the bound).
      statuses = [...batch.statuses, ...statuses].slice(-MAX_PENDING);
      durations = [...batch.durations, ...durations].slice(-MAX_PENDING);
      return false;
    }
  }

  /**
   * Writes now, unless a write is in flight (what comes in meanwhile is scheduled when it
   * ends); `drain`: until nothing is left (shutdown). After a failure the next answer retries.
   */
  function write(drain = false): Promise<void> {
    clearTimeout(timer);
    timer = undefined;
    if (writing) return writing;
    writing = (async () => {
      let ok = true;
      try {
        do ok = await writeBatch(); while (ok && drain && statuses.length > 0);
      } finally {
        writing = null;
      }
      if (ok && !drain && statuses.length > 0) schedule();
    })();
    return writing;
  }

  /** A write as soon as the interval since the last one allows. */
  function schedule(): void {
    if (writing || timer !== undefined) return;
    const wait = lastWrite + intervalMs - now();
    if (wait <= 0) void write();
    else timer = setTimeout(() => void write(), wait);
  }

  counters.add(async () => {
    if (writing) await writing;
    if (statuses.length > 0) await write(true);
  });

  return async (c, next) => {
    const started = performance.now();
    await next();
    const accepted = isAuthenticated(c.req.raw);
    if (statuses.length >= MAX_PENDING) return; // the database is away, or a flood: bounded
    statuses.push(c.res.status);
    durations.push((performance.now() - started) / 1000);
    if (accepted) schedule();
  };
}
