import { ident, type TableShape } from './schema.ts';

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

/**
 * A page's keys, from one array literal parameter, typed as the key. In a scalar subquery, so
 * that the literal is parsed once: as a bare expression, a filter would parse it again for
 * every row it looks at.
 */
export function keyList(shape: TableShape, parameter: number): string {
  const type = shape.columns[keyIndex(shape)]!.type;
  // The outer cast keeps `= ANY (...)` an array comparison, not a subquery's.
  return `CAST((SELECT CAST(CAST($${parameter} AS TEXT) AS ${type}[])) AS ${type}[])`;
}

/**
 * `SELECT <typed columns> FROM unnest(<text arrays>)`: the rows of a page, typed and named as
 * the table's columns, from parameters $first.. (one text array per column): JavaScript
 * arrays, or `literals`: each column's array already printed as one '{...}' string, which
 * goes from one database to the other without being taken apart in between.
 */
export function unnestRows(shape: TableShape, first: number, literals = false): string {
  const casts = shape.columns.map((c, i) => `CAST(u.c${i} AS ${c.type}) AS ${ident(c.name)}`);
  const arrays = shape.columns.map((_, i) =>
    literals ? `CAST(CAST($${first + i} AS TEXT) AS TEXT[])` : `CAST($${first + i} AS TEXT[])`
  );
  const aliases = shape.columns.map((_, i) => `c${i}`);
  return `SELECT ${casts.join(', ')} FROM unnest(${arrays.join(', ')}) AS u (${
    aliases.join(', ')
  })`;
}

/**
 * Aggregates of a page (alias `p`) that print each column as one array literal (c0, c1...),
 * in key order: the parameters of unnestRows(shape, n, true).
 */
export function literalColumns(shape: TableShape): string {
  return shape.columns.map((c, i) =>
    `CAST(array_agg(CAST(p.${ident(c.name)} AS TEXT) ORDER BY p.${
      ident(shape.key)
    }) AS TEXT) AS c${i}`
  ).join(', ');
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
