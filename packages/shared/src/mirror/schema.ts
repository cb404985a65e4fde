import type { Sql } from '../db.ts';
import { mirrorDialect, mirrorStatements, run } from './dialect.ts';

// A table's shape as the primary describes it, and a preflight that creates the mirror's side
// of it (dialect.ts's DDL) and refuses to sync when the two drifted.

export interface Column {
  name: string;
  /** format_type() on the primary: uuid, text, jsonb, timestamp with time zone, numeric(20,8), text[]... */
  type: string;
  notNull: boolean;
}

export interface TableShape {
  /** schema.table, from cesar.sync_tables. */
  table: string;
  key: string;
  columns: Column[];
}

export class SchemaDriftError extends Error {
  constructor(readonly table: string, readonly differences: string[]) {
    super(`the mirror's ${table} differs from the primary's: ${differences.join('; ')}`);
    this.name = 'SchemaDriftError';
  }
}

/**
 * A table's columns and its single-column primary key, the key as cesar.single_key_column
 * (the rule the capture and the workflows use) names it; a table with a composite key or none
 * is refused.
 */
export async function describeTable(primary: Sql, table: string): Promise<TableShape> {
  const columns = await primary<
    Array<{ name: string; type: string; not_null: boolean; key: boolean }>
  >`
    select a.attname as name, format_type(a.atttypid, a.atttypmod) as type, a.attnotnull as not_null,
           coalesce(a.attname = k.key, false) as key
    from pg_attribute a, (select cesar.single_key_column(to_regclass(${table})) as key) k
    where a.attrelid = to_regclass(${table}) and a.attnum > 0 and not a.attisdropped
    order by a.attnum
  `;
  const key = columns.find((c) => c.key)?.name;
  if (!key) throw new Error(`${table} has no single-column primary key`);
  return {
    table,
    key,
    columns: columns.map(({ name, type, not_null }) => ({ name, type, notNull: not_null })),
  };
}

interface MirrorColumn {
  name: string;
  type: string;
  precision: number | null;
  scale: number | null;
  nullable: string;
}

/**
 * Creates what is missing on the mirror (its bookkeeping, the table and its index; DDL only
 * then: it takes locks, and on CockroachDB it is a schema change), then compares column
 * names, types and nullability with the primary's. `index: 'later'`: a table made now gets
 * its updated_at index from the caller, once it is loaded (a first push: see pushTable).
 */
export async function preflight(
  mirror: Sql,
  shape: TableShape,
  options: { index: 'now' | 'later' } = { index: 'now' },
): Promise<void> {
  const m = mirrorStatements(await mirrorDialect(mirror));
  const columns = (table: string) => run<MirrorColumn[]>(mirror, m.columns(table));
  const tombstones = await columns('public.cesar_sync_tombstones');
  const versions = await columns('public.cesar_sync_versions');
  if (tombstones.length === 0) await run(mirror, m.createTombstones());
  else if (!tombstones.some((c) => c.name === 'origin')) {
    await run(mirror, m.addTombstonesOrigin());
  }
  if (versions.length === 0) await run(mirror, m.createVersions());
  let found = await columns(shape.table);
  if (found.length === 0) {
    await run(mirror, m.createTable(shape));
    const index = m.createUpdatedIndex(shape);
    if (index && options.index === 'now') await run(mirror, index);
    found = await columns(shape.table);
  }
  const byName = new Map(found.map((c) => [c.name, c]));
  const differences: string[] = [];
  for (const column of shape.columns) {
    const other = byName.get(column.name);
    if (!other) {
      differences.push(`column ${column.name} is missing`);
      continue;
    }
    byName.delete(column.name);
    const expected = normaliseType(column.type);
    const actual = normaliseType(other.type, other.precision, other.scale);
    if (expected !== actual) {
      differences.push(`column ${column.name} is ${actual}, not ${expected}`);
    }
    if (column.notNull !== (other.nullable === 'NO')) {
      differences.push(`column ${column.name} nullability differs`);
    }
  }
  for (const extra of byName.keys()) differences.push(`column ${extra} is not on the primary`);
  if (differences.length > 0) throw new SchemaDriftError(shape.table, differences);
}

/** One spelling for a type, from format_type() or from information_schema on either side. */
function normaliseType(type: string, precision?: number | null, scale?: number | null): string {
  const t = type.toLowerCase();
  if (t === 'numeric' && precision != null) return `numeric(${precision},${scale ?? 0})`;
  if (t.startsWith('numeric(')) return t.replace(/\s+/g, '');
  if (t === 'array' || t.endsWith('[]')) return 'array';
  if (t === 'int4' || t === 'integer') return 'integer';
  if (t === 'int8' || t === 'bigint') return 'bigint';
  if (t === 'string' || t === 'text') return 'text';
  if (t === 'timestamptz') return 'timestamp with time zone';
  return t;
}
