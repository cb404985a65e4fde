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

/**
 * The mirror's bookkeeping, two tables that CockroachDB's own writers can use too:
 * - tombstones: deletions, so that a later sync or a restore never brings a row back. An
 *   application that deletes on the mirror records its deletion here (origin null) for the
 *   pull to apply; the push writes origin 'primary', and the pull marks what it applied
 *   'pulled'.
 * - versions: per row, the updated_at of the version both sides last agreed on (written by
 *   the push and the pull). This is the origin marker: a mirror row whose updated_at is its
 *   agreed version came from the primary or was already pulled, and is not pulled (back).
 */
export const MIRROR_BOOKKEEPING_DDL = {
  tombstones: 'CREATE TABLE IF NOT EXISTS public.cesar_sync_tombstones (' +
    'table_name TEXT NOT NULL, row_key TEXT NOT NULL, deleted_at TIMESTAMPTZ NOT NULL, origin TEXT, ' +
    'PRIMARY KEY (table_name, row_key))',
  // Mirrors made before the origin column.
  tombstonesOrigin: 'ALTER TABLE public.cesar_sync_tombstones ADD COLUMN IF NOT EXISTS origin TEXT',
  versions: 'CREATE TABLE IF NOT EXISTS public.cesar_sync_versions (' +
    'table_name TEXT NOT NULL, row_key TEXT NOT NULL, updated_at TIMESTAMPTZ NOT NULL, ' +
    'PRIMARY KEY (table_name, row_key))',
};

/** The pull reads a mirror table in updated_at order, from its watermark. */
export function mirrorIndexDdl(shape: TableShape): string | null {
  if (!shape.columns.some((c) => c.name === 'updated_at')) return null;
  const name = `cesar_${shape.table.replace('.', '_')}_updated_idx`;
  return `CREATE INDEX IF NOT EXISTS ${ident(name)} ON ${qualified(shape.table)} (updated_at, ${
    ident(shape.key)
  })`;
}

interface MirrorColumn {
  name: string;
  type: string;
  precision: number | null;
  scale: number | null;
  nullable: string;
}

async function mirrorColumns(mirror: Sql, table: string): Promise<MirrorColumn[]> {
  const [schema, name] = table.split('.') as [string, string];
  return await mirror<MirrorColumn[]>`
    select column_name as name, data_type as type, numeric_precision as precision, numeric_scale as scale,
           is_nullable as nullable
    from information_schema.columns
    where table_schema = ${schema} and table_name = ${name}
  `;
}

/**
 * Creates what is missing on the mirror (its bookkeeping, the table and its index; DDL only
 * then: it takes locks, and on CockroachDB it is a schema change), then compares column
 * names, types and nullability with the primary's.
 */
export async function preflight(mirror: Sql, shape: TableShape): Promise<void> {
  const tombstones = await mirrorColumns(mirror, 'public.cesar_sync_tombstones');
  const versions = await mirrorColumns(mirror, 'public.cesar_sync_versions');
  if (tombstones.length === 0) await mirror.unsafe(MIRROR_BOOKKEEPING_DDL.tombstones);
  else if (!tombstones.some((c) => c.name === 'origin')) {
    await mirror.unsafe(MIRROR_BOOKKEEPING_DDL.tombstonesOrigin);
  }
  if (versions.length === 0) await mirror.unsafe(MIRROR_BOOKKEEPING_DDL.versions);
  let found = await mirrorColumns(mirror, shape.table);
  if (found.length === 0) {
    await mirror.unsafe(mirrorDdl(shape));
    const index = mirrorIndexDdl(shape);
    if (index) await mirror.unsafe(index);
    found = await mirrorColumns(mirror, shape.table);
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
