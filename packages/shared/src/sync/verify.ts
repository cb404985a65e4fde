import type { Sql } from '../db.ts';
import { describeTable, ident, qualified, type TableShape } from './schema.ts';

// Verify: primary and mirror compared with hashes computed in SQL on both sides, per range of
// primary keys (16 ranges by the key's first character), drilling down to the rows of the
// ranges that differ. The row hash is spelled so that PostgreSQL and CockroachDB render it
// the same: booleans as 0/1, timestamps as epoch microseconds, arrays joined, NULL marked.

export interface VerifyResult {
  table: string;
  equal: boolean;
  rows_primary: number;
  rows_mirror: number;
  /** On the primary, not on the mirror. */
  missing: string[];
  /** On the mirror, not on the primary. */
  extra: string[];
  /** On both, different. */
  changed: string[];
}

const LISTED = 100;

function columnText(name: string, type: string): string {
  const c = ident(name);
  const value = type === 'boolean'
    ? `CASE WHEN ${c} THEN '1' ELSE '0' END`
    : type.startsWith('timestamp')
    ? `CAST(CAST(extract(epoch FROM ${c}) * 1000000 AS BIGINT) AS TEXT)`
    : type.endsWith('[]')
    ? `array_to_string(${c}, chr(30))`
    : `CAST(${c} AS TEXT)`;
  return `CASE WHEN ${c} IS NULL THEN 'N' ELSE 'V' || ${value} END`;
}

function rowHash(shape: TableShape): string {
  return `md5(${shape.columns.map((c) => columnText(c.name, c.type)).join(` || chr(31) || `)})`;
}

function bucket(shape: TableShape): string {
  return `substr(CAST(${ident(shape.key)} AS TEXT), 1, 1)`;
}

async function bucketHashes(
  db: Sql,
  shape: TableShape,
): Promise<Map<string, { rows: number; hash: string }>> {
  const rows = await db.unsafe<Array<{ bucket: string; rows: number; hash: string }>>(
    `SELECT ${bucket(shape)} AS bucket, CAST(count(*) AS INT) AS rows, ` +
      `md5(string_agg(${rowHash(shape)}, ',' ORDER BY ${ident(shape.key)})) AS hash ` +
      `FROM ${qualified(shape.table)} GROUP BY 1`,
  );
  return new Map(rows.map((r) => [r.bucket, { rows: Number(r.rows), hash: r.hash }]));
}

async function rowHashes(
  db: Sql,
  shape: TableShape,
  buckets: string[],
): Promise<Map<string, string>> {
  const rows = await db.unsafe<Array<{ key: string; hash: string }>>(
    `SELECT CAST(${ident(shape.key)} AS TEXT) AS key, ${rowHash(shape)} AS hash FROM ${
      qualified(shape.table)
    } ` +
      `WHERE ${bucket(shape)} = ANY ($1::TEXT[])`,
    [buckets],
  );
  return new Map(rows.map((r) => [r.key, r.hash]));
}

export async function verifyTable(primary: Sql, mirror: Sql, table: string): Promise<VerifyResult> {
  const shape = await describeTable(primary, table);
  const [ours, theirs] = await Promise.all([
    bucketHashes(primary, shape),
    bucketHashes(mirror, shape),
  ]);
  const differing = [...new Set([...ours.keys(), ...theirs.keys()])]
    .filter((b) => ours.get(b)?.hash !== theirs.get(b)?.hash);
  const count = (m: Map<string, { rows: number }>) =>
    [...m.values()].reduce((n, b) => n + b.rows, 0);
  const result: VerifyResult = {
    table,
    equal: differing.length === 0,
    rows_primary: count(ours),
    rows_mirror: count(theirs),
    missing: [],
    extra: [],
    changed: [],
  };
  if (differing.length > 0) {
    const [a, b] = await Promise.all([
      rowHashes(primary, shape, differing),
      rowHashes(mirror, shape, differing),
    ]);
    for (const [key, hash] of a) {
      if (!b.has(key)) result.missing.push(key);
      else if (b.get(key) !== hash) result.changed.push(key);
    }
    for (const key of b.keys()) if (!a.has(key)) result.extra.push(key);
    for (const list of [result.missing, result.extra, result.changed]) list.sort().splice(LISTED);
  }
  return result;
}
