import type { Sql } from '../db.ts';
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

/** Records a native Database Webhook delivery once; returns its event id and whether it was new. */
export async function recordWebhookEvent(
  sql: Sql,
  payload: DatabaseWebhookPayload,
  changedColumns: string[] | null,
  rowKey: string | null,
  dedupKey: string,
): Promise<{ id: string; created: boolean }> {
  const [inserted] = await sql<Array<{ id: string }>>`
    insert into cesar.event_log
      (schema_name, table_name, op, record, old_record, changed_columns, row_key, source, dedup_key)
    values (${payload.schema}, ${payload.table}, ${payload.type}, ${
    payload.record ? sql.json(payload.record as never) : null
  },
            ${
    payload.old_record ? sql.json(payload.old_record as never) : null
  }, ${changedColumns}, ${rowKey},
            'webhook', ${dedupKey})
    on conflict (dedup_key) where dedup_key is not null do nothing
    returning id
  `;
  if (inserted) return { id: inserted.id, created: true };
  const [existing] = await sql<
    Array<{ id: string }>
  >`select id from cesar.event_log where dedup_key = ${dedupKey}`;
  return { id: existing!.id, created: false };
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
