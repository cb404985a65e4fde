import type { Sql } from '../db.ts';

// The capture's runtime statements. Captured statements wait in their stores until expanded
// (cesar.expand_captures): into events for watched tables and outbox marks for mirrored ones.

/** Expands captured statements, oldest first, about `maxRows` rows; returns the changes made. */
export async function expandCaptures(sql: Sql, maxRows: number): Promise<number> {
  const [row] = await sql<Array<{ n: number }>>`select cesar.expand_captures(${maxRows}) as n`;
  return row!.n;
}
