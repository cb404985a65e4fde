import type { TableShape } from './schema.ts';

// Where a table's key and updated_at are among its columns, and a row as it travels between
// the two databases (every column as text: see dialect.ts).

/** A row as text, in the order of TableShape.columns; null stays null. */
export type TextRow = Array<string | null>;

export function keyIndex(shape: TableShape): number {
  return shape.columns.findIndex((c) => c.name === shape.key);
}

export function updatedAtIndex(shape: TableShape): number {
  return shape.columns.findIndex((c) => c.name === 'updated_at');
}
