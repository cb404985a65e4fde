import { z } from 'zod';
import type { Clock } from '../clock.ts';
import type { Config } from '../config.ts';
import type { Sql } from '../db.ts';
import {
  ApiError,
  DEFAULT_TOLERANCE_SECONDS,
  functionApp,
  type FunctionAppConfig,
  readJsonBody,
  verifiedDelivery,
} from '../http/index.ts';
import { cpuBudget, cpuBudgetMsField } from '../cpu.ts';
import { CPU_BUDGET_MS } from '../limits.ts';
import { lingerMsField } from '../doorbell.ts';
import { processInvocation } from './process.ts';
import { logIngestion } from '../ingestion-log.ts';
import {
  databaseWebhookPayload,
  describeEventTable,
  recordDeliveryId,
  recordWebhookEvent,
} from '../capture/index.ts';

const drainRequest = z.object({
  reason: z.string().max(100).optional(),
  budget_ms: z.number().int().min(100).max(120_000).default(20_000),
  batch_size: z.number().int().min(1).max(5_000).default(500),
  /** CPU milliseconds this invocation may spend; lower than the default only (tests). */
  cpu_budget_ms: cpuBudgetMsField,
  /** See doorbell.ts. */
  linger_ms: lingerMsField,
}).strict();

export interface WebhookDeps {
  sql: Sql;
  config:
    & FunctionAppConfig
    & Partial<Pick<Config, 'webhookSigningSecrets' | 'webhookSignatureToleranceSeconds'>>;
  clock: Clock;
}

/** Canonical JSON (keys sorted), so one payload always has one digest. */
function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value && typeof value === 'object') {
    return `{${
      Object.keys(value).sort().map((k) =>
        `${JSON.stringify(k)}:${canonical((value as Record<string, unknown>)[k])}`
      ).join(',')
    }}`;
  }
  return JSON.stringify(value) ?? 'null';
}

/** A payload's digest: cesar.event_log.dedup_key of the event a native delivery records. */
export async function payloadDigest(value: unknown): Promise<string> {
  const bytes = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(canonical(value)));
  return Array.from(new Uint8Array(bytes), (b) => b.toString(16).padStart(2, '0')).join('');
}

/**
 * The `webhook` function: `POST /webhook` takes Supabase's native Database Webhook payload,
 * records it once (a re-delivery of the same payload is recognised by its digest) and
 * processes pending events; `POST /webhook/drain` (the doorbell and the pg_cron sweep)
 * processes pending events within a time budget. With CESAR_WEBHOOK_SIGNING_SECRET set,
 * `POST /webhook` also takes deliveries signed per Standard Webhooks instead of the function
 * secret (http/signing.ts); `/drain` never does. A signed delivery's `webhook-id` is recorded
 * with what it records (cesar.webhook_deliveries): one that comes again (a sender retrying
 * after a lost answer, or a replay within the signature's window) is acknowledged with a 200
 * saying it is a duplicate, records nothing and processes nothing.
 */
export function createWebhookApp(deps: WebhookDeps) {
  const app = functionApp('webhook', deps, {
    signed: {
      path: '/',
      deliveries: {
        secrets: deps.config.webhookSigningSecrets ?? [],
        toleranceSeconds: deps.config.webhookSignatureToleranceSeconds ??
          DEFAULT_TOLERANCE_SECONDS,
      },
      clock: deps.clock,
    },
  });

  // Within the invocation's CPU budget (counted from the start of the oldest request in
  // flight, as the runtime counts); stopped at a budget with events left, the next invocation
  // is rung at once (processInvocation).
  const process = (budgetMs: number, batchSize: number, cpuMs = CPU_BUDGET_MS, lingerMs = 0) =>
    processInvocation({ sql: deps.sql, clock: deps.clock, log: console.error }, {
      budgetMs,
      batchSize,
      cpu: cpuBudget(cpuMs),
      lingerMs,
    });

  const repeatedReason = (id: string) =>
    `webhook-id ${id} was taken before: this delivery is acknowledged, not recorded again`;

  // Every delivery, taken or refused, is in public.ingestion_log (source webhook).
  app.post('/', async (c) => {
    // A signed delivery's id; undefined for a delivery with the bearer secret (native ones).
    const delivery = verifiedDelivery(c.req.raw);
    try {
      const payload = await readJsonBody(c, databaseWebhookPayload);
      const table = `${payload.schema}.${payload.table}`;
      const described = await describeEventTable(
        deps.sql,
        table,
        payload.type === 'UPDATE' ? payload : undefined,
      );
      if (described === undefined) throw new ApiError(422, `unknown table ${table}`);
      if (described.refused) {
        throw new ApiError(422, `events of ${table} are refused: ${described.refused}`);
      }
      const keyColumn = described.key;
      const changed = described.changed;
      if (changed !== null && changed.length === 0) {
        return c.json({ recorded: false, reason: 'the update changed nothing' });
      }
      const row = payload.record ?? payload.old_record;
      const rowKey = keyColumn && row?.[keyColumn] != null ? String(row[keyColumn]) : null;
      // A table both watched and hooked natively: every change is captured in the writer's
      // transaction, so a delivery makes no second event; it only rings the processor, as the
      // capture's doorbell does. (A change committed just before cesar.watch() whose delivery
      // comes after it is not recorded: native deliveries are best effort, like pg_net.)
      if (described.watched) {
        // Nothing recorded but the id: one statement more, on this path only.
        const repeated = delivery !== undefined && !(await recordDeliveryId(deps.sql, delivery));
        // Not logged for the log itself: a hook on public.ingestion_log would feed itself.
        if (table !== 'public.ingestion_log') {
          await logIngestion(deps.sql, {
            source: 'webhook',
            status: 'ok',
            records: 0,
            details: {
              table,
              op: payload.type,
              captured: true,
              ...(delivery && { webhook_id: delivery.id, duplicate: repeated }),
            },
          });
        }
        if (repeated) {
          return c.json({
            recorded: false,
            captured: true,
            duplicate: true,
            reason: repeatedReason(delivery!.id),
          });
        }
        return c.json({
          recorded: false,
          captured: true,
          reason: `${table} is watched: this change was captured in the writer's transaction ` +
            'and is processed from there, so the native delivery is acknowledged, not recorded',
          processed: await process(5_000, 500),
        });
      }
      const event = await recordWebhookEvent(
        deps.sql,
        payload,
        changed,
        rowKey,
        await payloadDigest(payload),
        delivery,
      );
      await logIngestion(deps.sql, {
        source: 'webhook',
        status: 'ok',
        records: event.created ? 1 : 0,
        details: {
          table,
          op: payload.type,
          event_id: event.id,
          duplicate: !event.created,
          ...(delivery && { webhook_id: delivery.id }),
        },
      });
      // The first delivery of this id processed what it recorded (or the sweep will).
      if (event.repeated) {
        return c.json({
          recorded: event.id !== null,
          event_id: event.id,
          duplicate: true,
          reason: repeatedReason(delivery!.id),
        });
      }
      const processed = await process(5_000, 500);
      return c.json(
        { recorded: true, event_id: event.id, duplicate: !event.created, processed },
        event.created ? 201 : 200,
      );
    } catch (err) {
      if (err instanceof ApiError && err.status < 500 && err.status !== 401) {
        await logIngestion(deps.sql, {
          source: 'webhook',
          status: 'error',
          records: 0,
          error: err.message,
          details: { status: err.status, issues: err.issues ?? [] },
        });
      }
      throw err;
    }
  });

  app.post('/drain', async (c) => {
    const body = await readJsonBody(c, drainRequest);
    return c.json(
      await process(body.budget_ms, body.batch_size, body.cpu_budget_ms, body.linger_ms),
    );
  });

  return app;
}
