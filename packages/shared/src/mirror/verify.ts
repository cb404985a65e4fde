import type { Sql } from '../db.ts';
import {
  mirrorDialect,
  type MirrorStatements,
  mirrorStatements,
  POSTGRESQL,
  run,
} from './dialect.ts';
import { describeTable, type TableShape } from './schema.ts';

// Verify: primary and mirror compared with hashes computed in SQL on both sides, per range of
// primary keys (16 ranges by the key's first character), drilling down to the rows of the
// ranges that differ. The row hash (dialect.ts) is spelled so that PostgreSQL and CockroachDB
// render it the same.

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

async function bucketHashes(
  db: Sql,
  m: MirrorStatements,
  shape: TableShape,
): Promise<Map<string, { rows: number; hash: string }>> {
  const rows = await run<Array<{ bucket: string; rows: number; hash: string }>>(
    db,
    m.bucketHashes(shape),
  );
  return new Map(rows.map((r) => [r.bucket, { rows: Number(r.rows), hash: r.hash }]));
}

async function rowHashes(
  db: Sql,
  m: MirrorStatements,
  shape: TableShape,
  buckets: string[],
): Promise<Map<string, string>> {
  const rows = await run<Array<{ key: string; hash: string }>>(db, m.rowHashes(shape, buckets));
  return new Map(rows.map((r) => [r.key, r.hash]));
}

export async function verifyTable(primary: Sql, mirror: Sql, table: string): Promise<VerifyResult> {
  const shape = await describeTable(primary, table);
  // The same statements on both sides: the hashes must be spelled the same to compare.
  const here = mirrorStatements(POSTGRESQL);
  const there = mirrorStatements(await mirrorDialect(mirror));
  const [ours, theirs] = await Promise.all([
    bucketHashes(primary, here, shape),
    bucketHashes(mirror, there, shape),
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
      rowHashes(primary, here, shape, differing),
      rowHashes(mirror, there, shape, differing),
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
