import type { Sql } from '../db.ts';
import { ident, qualified, type TableShape } from './schema.ts';

// How rows travel between the two databases: every column read as text (the form both
// PostgreSQL and CockroachDB print and parse the same way), a page sent back as one text
// array per column, unnested and cast on the other side. A page of 1,000 rows is then as
// many bind parameters as the table has columns, far under the 65,534 limit, and each array
// is parsed once instead of once per value.

/** A row as text, in the order of TableShape.columns; null stays null. */
export type TextRow = Array<string | null>;

export function keyIndex(shape: TableShape): number {
  return shape.columns.findIndex((c) => c.name === shape.key);
}

export function updatedAtIndex(shape: TableShape): number {
  return shape.columns.findIndex((c) => c.name === 'updated_at');
}

/** The columns of a select that reads rows as text. */
export function textColumns(shape: TableShape, alias = ''): string {
  const prefix = alias ? `${alias}.` : '';
  return shape.columns.map((c) => `CAST(${prefix}${ident(c.name)} AS TEXT)`).join(', ');
}

/** Keys travel as text and are compared in the key's own type, so the key's index is used. */
export function keyArray(shape: TableShape, parameter: number): string {
  const type = shape.columns.find((c) => c.name === shape.key)!.type;
  return `CAST(CAST($${parameter} AS TEXT[]) AS ${type}[])`;
}

/**
 * `SELECT <typed columns> FROM unnest(<text arrays>)`: the rows of a page, typed and named as
 * the table's columns, from parameters $first.. (one text array per column).
 */
export function unnestRows(shape: TableShape, first: number): string {
  const casts = shape.columns.map((c, i) => `CAST(u.c${i} AS ${c.type}) AS ${ident(c.name)}`);
  const arrays = shape.columns.map((_, i) => `CAST($${first + i} AS TEXT[])`);
  const aliases = shape.columns.map((_, i) => `c${i}`);
  return `SELECT ${casts.join(', ')} FROM unnest(${arrays.join(', ')}) AS u (${
    aliases.join(', ')
  })`;
}

/** A page's rows turned into one array per column, the parameters of unnestRows. */
export function columnArrays(shape: TableShape, rows: TextRow[]): TextRow[] {
  return shape.columns.map((_, i) => rows.map((row) => row[i] ?? null));
}

/** `col = excluded.col` for every column but the key. */
export function assignments(shape: TableShape): string {
  return shape.columns.filter((c) => c.name !== shape.key)
    .map((c) => `${ident(c.name)} = excluded.${ident(c.name)}`).join(', ');
}

/** The current rows for some keys, as text. */
export async function rowsByKey(db: Sql, shape: TableShape, keys: string[]): Promise<TextRow[]> {
  return await db.unsafe(
    `SELECT ${textColumns(shape)} FROM ${qualified(shape.table)} WHERE ${ident(shape.key)} = ANY (${
      keyArray(shape, 1)
    })`,
    [keys],
  ).values() as unknown as TextRow[];
}
