import { createApiApp } from '../../packages/shared/src/api/app.ts';
import { fixedClock } from '../../packages/shared/src/clock.ts';
import type { Sql } from '../../packages/shared/src/db.ts';
import { builtInHandlers } from '../../packages/shared/src/queue/handlers/index.ts';
import { processEvents } from '../../packages/shared/src/workflows/process.ts';
import { createWebhookApp } from '../../packages/shared/src/workflows/webhook-app.ts';

export const SECRET = 'workflow-test-secret-0123456789';
export const auth = { authorization: `Bearer ${SECRET}`, 'content-type': 'application/json' };
const config = { functionSecret: SECRET, serviceRoleKey: null, dbPoolMax: 4 };

export function apiApp(sql: Sql, jobTypes: string[] = []) {
  return createApiApp({
    sql,
    mirror: null,
    config,
    clock: fixedClock('2026-11-20T12:00:00Z'),
    applicationName: 'test',
    jobTypes: [...Object.keys(builtInHandlers), ...jobTypes],
  });
}

export function webhookApp(sql: Sql) {
  return createWebhookApp({ sql, config, clock: { now: () => new Date() } });
}

/** One drain call, as the doorbell makes it (it may answer busy). */
export function processOnce(sql: Sql) {
  return processEvents({ sql, clock: { now: () => new Date() } }, {
    budgetMs: 20_000,
    batchSize: 500,
  });
}

/**
 * Processes pending events. Other test files process too: while one of them holds the
 * processor lease this waits and asks again, so what was pending is processed on return.
 */
export async function process(sql: Sql) {
  for (let i = 0;; i++) {
    const result = await processEvents({ sql, clock: { now: () => new Date() } }, {
      budgetMs: 20_000,
      batchSize: 500,
    });
    if (result.stopped !== 'busy' || i >= 400) return result;
    await new Promise((r) => setTimeout(r, 25));
  }
}

export async function call(
  app: { request: (path: string, init?: RequestInit) => Response | Promise<Response> },
  method: string,
  path: string,
  body?: unknown,
) {
  const res = await app.request(path, {
    method,
    headers: auth,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null };
}
