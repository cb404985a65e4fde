import type { MiddlewareHandler } from 'hono';
import type { Sql } from '../db.ts';
import { isAuthenticated } from './auth.ts';

/** Answers held in memory between writes; past this (a hung write, a flood) none is counted. */
const MAX_PENDING = 10_000;

/**
 * Counts every answer of a function (status and duration) for the Prometheus metrics, which
 * must add up across the short-lived instances of an Edge Function: in memory first, then
 * added to cesar.http_request_totals a batch at a time (cesar.record_requests), with at most
 * one write in flight per instance. Only an answer to an authenticated request starts a
 * write; the others (refused, or a browser's preflight) ride along with the next, so a flood
 * of requests without the secret costs the database nothing. A failure to count never fails
 * the request; its batch is kept for the next write.
 */
export function countRequests(sql: Sql, functionName: string): MiddlewareHandler {
  let statuses: number[] = [];
  let durations: number[] = [];
  let writing = false;
  let again = false;

  async function write(): Promise<void> {
    if (writing) {
      again = true;
      return;
    }
    writing = true;
    try {
      do {
        again = false;
        const batch = { statuses, durations };
        statuses = [];
        durations = [];
        try {
          await sql`select cesar.record_requests(${functionName}, ${batch.statuses}::int[],
                                                 ${batch.durations}::float8[])`;
        } catch {
          // Kept for the next write (within the bound).
          statuses = [...batch.statuses, ...statuses].slice(-MAX_PENDING);
          durations = [...batch.durations, ...durations].slice(-MAX_PENDING);
          return;
        }
      } while (again && statuses.length > 0);
    } finally {
      writing = false;
    }
  }

  return async (c, next) => {
    const started = performance.now();
    await next();
    const accepted = isAuthenticated(c.req.raw);
    if (statuses.length >= MAX_PENDING) return; // the database is away, or a flood: bounded
    statuses.push(c.res.status);
    durations.push((performance.now() - started) / 1000);
    if (accepted) void write();
  };
}
