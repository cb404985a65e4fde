import type { Sql } from '../db.ts';
import type { VerifiedDelivery } from '../http/index.ts';
import type { ChangeEvent, DatabaseWebhookPayload } from './events.ts';

// The capture's runtime statements. Captured statements wait in their stores until expanded
// (cesar.expand_captures): into events for watched tables and outbox marks for mirrored ones.
// Native Database Webhook deliveries are recorded as events here too; the event log is listed
// and replayed from here.

/** Expands captured statements, oldest first, about `maxRows` rows; returns the rows taken. */
export async function expandCaptures(sql: Sql, maxRows: number): Promise<number> {
  const [row] = await sql<Array<{ n: number }>>`select cesar.expand_captures(${maxRows}) as n`;
  return row!.n;
}

/**
 * What the functions need to know of a table an event or template names: whether it exists,
 * its single-column key (null when it has none), why it may not be watched (null when it may:
 * cesar.system_table_reason), and whether it is watched (cesar.watch: its captured changes
 * become events, so a native Database Webhook delivery for it is a second copy of one).
 * Given an UPDATE's two images, also the columns it changed (cesar.changed_columns, the
 * capture's rule; empty when none did); null for other changes.
 */
export async function describeEventTable(
  sql: Sql,
  table: string,
  update?: { record: Record<string, unknown>; old_record: Record<string, unknown> },
): Promise<
  | { key: string | null; refused: string | null; watched: boolean; changed: string[] | null }
  | undefined
> {
  const [row] = await sql<
    Array<{
      exists: boolean;
      key: string | null;
      refused: string | null;
      watched: boolean;
      changed: string[] | null;
    }>
  >`
    select to_regclass(${table}) is not null as exists,
           cesar.single_key_column(to_regclass(${table})) as key,
           cesar.system_table_reason(to_regclass(${table})) as refused,
           exists (select from cesar.watched_tables where table_name = ${table}) as watched,
           case when ${update !== undefined}::boolean
                then coalesce((select c.changed from cesar.changed_columns(${
    sql.json((update?.record ?? null) as never)
  }, ${sql.json((update?.old_record ?? null) as never)}) c), '{}')
           end as changed
  `;
  return row!.exists
    ? { key: row!.key, refused: row!.refused, watched: row!.watched, changed: row!.changed }
    : undefined;
}

/**
 * Records a Database Webhook payload as an event once; returns its event id (null when the
 * id was repeated with a payload never recorded), whether it was new, and whether the
 * delivery's id was taken before.
 *
 * Once: a payload already recorded (the same digest, `dedupKey`) is not recorded again; a
 * signed delivery whose id was taken before (`repeated`) records nothing, whatever its
 * payload. The id is recorded by the same statement, as the gate of the event's insert (the
 * event is inserted only when the id's row is): a statement that fails records neither. Of
 * two deliveries of one id at once, the second waits on the primary key until the first ends,
 * then records nothing (ON CONFLICT DO NOTHING) or, the first rolled back, both.
 * A payload or id already there costs a second statement, to name the event: the first one's
 * snapshot, taken before it waited, cannot see a row committed meanwhile. Cost: measured
 * through the pooler, 300 statements x 6 rounds, twice, the median per statement was 1.16 and
 * 0.77 ms for the insert alone (before), 1.27 and 1.17 ms unsigned, 1.41 and 0.81 ms signed:
 * within the noise of the shared 2-core machine.
 */
export async function recordWebhookEvent(
  sql: Sql,
  payload: DatabaseWebhookPayload,
  changedColumns: string[] | null,
  rowKey: string | null,
  dedupKey: string,
  delivery?: VerifiedDelivery,
): Promise<{ id: string | null; created: boolean; repeated: boolean }> {
  const deliveryId = delivery?.id ?? null;
  const [row] = await sql<Array<{ id: string | null; repeated: boolean }>>`
    with delivery as (
      insert into cesar.webhook_deliveries (id, expires_at)
      select ${deliveryId}::text, ${delivery?.expiresAt ?? null}::timestamptz
      where ${deliveryId}::text is not null
      on conflict (id) do nothing
      returning id
    ), inserted as (
      insert into cesar.event_log
        (schema_name, table_name, op, record, old_record, changed_columns, row_key, source, dedup_key)
      select ${payload.schema}, ${payload.table}, ${payload.type}, ${
    payload.record ? sql.json(payload.record as never) : null
  }::jsonb,
             ${
    payload.old_record ? sql.json(payload.old_record as never) : null
  }::jsonb, ${changedColumns}::text[], ${rowKey}::text,
             'webhook', ${dedupKey}
      where ${deliveryId}::text is null or exists (select from delivery)
      on conflict (dedup_key) where dedup_key is not null do nothing
      returning id
    )
    select (select id from inserted) as id,
           ${deliveryId}::text is not null and not exists (select from delivery) as repeated
  `;
  if (row!.id !== null) return { id: row!.id, created: true, repeated: false };
  const [existing] = await sql<
    Array<{ id: string }>
  >`select id from cesar.event_log where dedup_key = ${dedupKey}`;
  return { id: existing?.id ?? null, created: false, repeated: row!.repeated };
}

/**
 * Records a signed delivery's id alone (a delivery that records no event: of a watched
 * table); false when it was recorded before.
 */
export async function recordDeliveryId(sql: Sql, delivery: VerifiedDelivery): Promise<boolean> {
  const [row] = await sql<Array<{ id: string }>>`
    insert into cesar.webhook_deliveries (id, expires_at)
    values (${delivery.id}, ${delivery.expiresAt})
    on conflict (id) do nothing
    returning id`;
  return row !== undefined;
}

// Templates, for the api function.

export interface EventRow extends ChangeEvent {
  status: string;
  source: string;
  attempts: number;
  last_error: string | null;
  processed_at: Date | null;
}

export async function listEvents(
  sql: Sql,
  filter: { table?: string; status?: string; limit: number },
): Promise<EventRow[]> {
  return await sql<EventRow[]>`
    select id, schema_name, table_name, op, record, old_record, changed_columns, row_key, occurred_at,
           status, source, attempts, last_error, processed_at
    from cesar.event_log
    where (${filter.table ?? null}::text is null or schema_name || '.' || table_name = ${
    filter.table ?? null
  }::text)
      and (${filter.status ?? null}::text is null or status = ${filter.status ?? null}::text)
    order by id desc
    limit ${filter.limit}
  `;
}

export async function replayEventIds(sql: Sql, ids: string[]): Promise<number> {
  const [row] = await sql<Array<{ n: number }>>`select cesar.replay_events(${ids}::bigint[]) as n`;
  return row!.n;
}

/** Events to replay: of a table (or a template's table), in a time range, in given statuses. */
export async function selectEventsForReplay(
  sql: Sql,
  filter: { table: string | null; from: Date; to: Date; statuses: string[]; limit: number },
): Promise<string[]> {
  const rows = await sql<Array<{ id: string }>>`
    select id from cesar.event_log
    where (${filter.table}::text is null or schema_name || '.' || table_name = ${filter.table}::text)
      and occurred_at >= ${filter.from} and occurred_at < ${filter.to}
      and status = any(${filter.statuses}::text[])
    order by id
    limit ${filter.limit}
  `;
  return rows.map((r) => r.id);
}
