import type { Sql } from '../db.ts';

// The mirror's side of a table: DDL that CockroachDB accepts (the primary's column types,
// NOT NULL and the primary key; no defaults, foreign keys, checks or triggers: rows arrive
// complete, in any order) and a preflight that refuses to sync when the two drifted.

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

/** Quotes an identifier that comes from the catalog of a declared table. */
export function ident(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

export function qualified(table: string): string {
  return table.split('.').map(ident).join('.');
}

export async function describeTable(primary: Sql, table: string): Promise<TableShape> {
  const columns = await primary<
    Array<{ name: string; type: string; not_null: boolean; key: boolean }>
  >`
    select a.attname as name, format_type(a.atttypid, a.atttypmod) as type, a.attnotnull as not_null,
           exists (select from pg_index i where i.indrelid = a.attrelid and i.indisprimary
                     and i.indnatts = 1 and i.indkey[0] = a.attnum) as key
    from pg_attribute a
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

export function mirrorDdl(shape: TableShape): string {
  const columns = shape.columns.map((c) =>
    `${ident(c.name)} ${c.type}${c.notNull ? ' NOT NULL' : ''}`
  );
  return `CREATE TABLE IF NOT EXISTS ${qualified(shape.table)} (${
    columns.join(', ')
  }, PRIMARY KEY (${ident(shape.key)}))`;
}

/** Where the mirror keeps deletions, so that a later sync or restore never brings a row back. */
export const TOMBSTONES_DDL = 'CREATE TABLE IF NOT EXISTS public.cesar_sync_tombstones (' +
  'table_name TEXT NOT NULL, row_key TEXT NOT NULL, deleted_at TIMESTAMPTZ NOT NULL, ' +
  'PRIMARY KEY (table_name, row_key))';

/** Creates the mirror's table when missing, then compares column names, types and nullability. */
export async function preflight(mirror: Sql, shape: TableShape): Promise<void> {
  await mirror.unsafe(TOMBSTONES_DDL);
  await mirror.unsafe(mirrorDdl(shape));
  const [schema, name] = shape.table.split('.') as [string, string];
  const found = await mirror<
    Array<
      {
        name: string;
        type: string;
        precision: number | null;
        scale: number | null;
        nullable: string;
      }
    >
  >`
    select column_name as name, data_type as type, numeric_precision as precision, numeric_scale as scale,
           is_nullable as nullable
    from information_schema.columns
    where table_schema = ${schema} and table_name = ${name}
  `;
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
