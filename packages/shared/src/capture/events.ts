import { z } from 'zod';

// What the capture makes: a change of a row, as the event log holds it, and Supabase's native
// Database Webhook payload, the other way a change arrives.

export const eventOp = z.enum(['INSERT', 'UPDATE', 'DELETE']);
export type EventOp = z.infer<typeof eventOp>;

export interface ChangeEvent {
  id: string;
  schema_name: string;
  table_name: string;
  op: EventOp;
  record: Record<string, unknown> | null;
  old_record: Record<string, unknown> | null;
  changed_columns: string[] | null;
  row_key: string | null;
  occurred_at: Date | string;
  /** 'mirror' when the mirror sync applied the change (see cesar.event_log.origin). */
  origin?: string | null;
}

/** A lower-case SQL identifier: a schema, table or column name as events and templates name them. */
export const identifier = /^[a-z_][a-z0-9_]*$/;

// Supabase's Database Webhook payload, exactly as it sends it: a discriminated union on type.
const webhookRow = z.record(z.string(), z.unknown());
const webhookBase = { table: z.string().regex(identifier), schema: z.string().regex(identifier) };
export const databaseWebhookPayload = z.discriminatedUnion('type', [
  z.object({ type: z.literal('INSERT'), ...webhookBase, record: webhookRow, old_record: z.null() }),
  z.object({
    type: z.literal('UPDATE'),
    ...webhookBase,
    record: webhookRow,
    old_record: webhookRow,
  }),
  z.object({ type: z.literal('DELETE'), ...webhookBase, record: z.null(), old_record: webhookRow }),
]);
export type DatabaseWebhookPayload = z.infer<typeof databaseWebhookPayload>;
