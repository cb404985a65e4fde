import type { Sql } from './db.ts';

/**
 * Text PostgreSQL can store: NUL characters (which a refused delivery's error may quote) are
 * written as the two characters \0.
 */
const withoutNul = (text: string) => text.replaceAll('\0', '\\0');

/** One ingestion (or a failed one) in public.ingestion_log. */
export async function logIngestion(
  sql: Sql,
  entry: {
    source: string;
    status: 'ok' | 'error';
    records: number;
    error?: string | null;
    details?: Record<string, unknown>;
  },
): Promise<void> {
  const details = JSON.parse(
    JSON.stringify(
      entry.details ?? {},
      (_key, value) => typeof value === 'string' ? withoutNul(value) : value,
    ),
  );
  await sql`
    insert into public.ingestion_log (source, status, record_count, error_message, details)
    values (${entry.source}, ${entry.status}, ${entry.records},
            ${entry.error == null ? null : withoutNul(entry.error)}, ${sql.json(details)})
  `;
}
