import type { MiddlewareHandler } from 'hono';
import type { Sql } from '../db.ts';

/**
 * Counts every answer of a function (status class and duration) in cesar.http_request_totals,
 * after the answer: for the Prometheus metrics, which must add up across the short-lived
 * instances of an Edge Function. A failure to count never fails the request.
 */
export function countRequests(sql: Sql, functionName: string): MiddlewareHandler {
  return async (c, next) => {
    const started = performance.now();
    await next();
    const seconds = (performance.now() - started) / 1000;
    sql`select cesar.record_request(${functionName}, ${c.res.status}, ${seconds})`
      .catch(() => {});
  };
}
