import type { Sql } from '../db.ts';
import {
  assignments,
  columnArrays,
  keyArray,
  keyIndex,
  rowsByKey,
  type TextRow,
  unnestRows,
  updatedAtIndex,
} from './rows.ts';
import { describeTable, ident, preflight, qualified, type TableShape } from './schema.ts';

// Push: primary -> mirror. Dirty rows come from cesar.sync_outbox (see its migration for why
// that cannot skip a late commit), a keyset page at a time. Each page is read from the
// primary and written to the mirror in one transaction: a guarded multi-row upsert that also
// records each row's agreed version (the origin marker the pull reads), and the deletions
// with their tombstones, retried on SQLSTATE 40001. Then, on the primary, the page's outbox
// entries are cleared, each only if no newer change arrived meanwhile, and the rows whose
// mirror version was newer are recorded as conflicts: that is the checkpoint, so a run cut
// off anywhere resumes exactly where it stopped.

/** PostgreSQL's and CockroachDB's limit on bind parameters in one statement. */
const PARAMETER_LIMIT = 65_534;

export interface SyncDeps {
  primary: Sql;
  mirror: Sql;
  random: () => number;
  sleep?: (ms: number) => Promise<void>;
}

export interface SyncOptions {
  batchSize: number;
  dryRun: boolean;
  budgetMs: number;
}

/** What a run applied (or, dry, would apply) to one table in one direction. */
export interface SyncResult {
  table: string;
  direction: 'up' | 'down';
  inserted: number;
  updated: number;
  deleted: number;
  /** Rows changed on both sides; last writer won and the loser is in cesar.sync_conflicts. */
  conflicts: number;
  batches: number;
  stopped: 'done' | 'budget';
}

/** A mirror transaction, retried with jittered backoff when CockroachDB asks (SQLSTATE 40001). */
export async function withRetry<T>(
  deps: SyncDeps,
  work: () => Promise<T>,
  attempts = 6,
): Promise<T> {
  for (let attempt = 1;; attempt++) {
    try {
      return await work();
    } catch (err) {
      if ((err as { code?: string }).code !== '40001' || attempt >= attempts) throw err;
      const ms = Math.round(Math.min(1000, 10 * 2 ** attempt) * (0.5 + deps.random() / 2));
      await (deps.sleep ?? ((t: number) => new Promise((r) => setTimeout(r, t))))(ms);
    }
  }
}

/** Rows per page: the requested size, within the parameter limit. */
export function pageSize(shape: TableShape, requested: number): number {
  return Math.max(1, Math.min(requested, Math.floor(PARAMETER_LIMIT / shape.columns.length)));
}

interface OutboxEntry {
  row_key: string;
  event_id: string;
}

async function hasBeenPushed(primary: Sql, table: string): Promise<boolean> {
  const [row] = await primary<Array<{ done: boolean }>>`
    select exists (select from cesar.sync_state
                   where table_name = ${table} and direction = 'up' and last_sync_at is not null) as done
  `;
  return row!.done;
}

async function outboxPage(primary: Sql, table: string, after: [string, string], limit: number) {
  return await primary<OutboxEntry[]>`
    select o.row_key, o.event_id::text as event_id from cesar.sync_outbox o
    where o.table_name = ${table} and (o.event_id, o.row_key) > (${after[0]}::bigint, ${after[1]})
    -- Qualified: the output column event_id is text, and must not be what sorts.
    order by o.event_id, o.row_key
    limit ${limit}
  `;
}

/** The mirror's updated_at of the rows it has, by key (null: the table has no updated_at). */
async function mirrorVersions(
  mirror: Sql,
  shape: TableShape,
  keys: string[],
): Promise<Map<string, string | null>> {
  const updatedAt = updatedAtIndex(shape) >= 0 ? 'CAST(updated_at AS TEXT)' : 'NULL';
  const rows = await mirror.unsafe<Array<{ key: string; updated_at: string | null }>>(
    `SELECT CAST(${ident(shape.key)} AS TEXT) AS key, ${updatedAt} AS updated_at ` +
      `FROM ${qualified(shape.table)} WHERE ${ident(shape.key)} = ANY (${keyArray(shape, 1)})`,
    [keys],
  );
  return new Map(rows.map((r) => [r.key, r.updated_at]));
}

/**
 * One statement: insert the rows, or update the mirror's where its updated_at is not newer
 * (equal times: the primary's version wins, so every run decides the same way), and record
 * each written row's version in cesar_sync_versions. Returns the keys it wrote.
 */
function upsertStatement(shape: TableShape): string {
  const table = qualified(shape.table);
  const key = ident(shape.key);
  const names = shape.columns.map((c) => ident(c.name)).join(', ');
  const upsert = `INSERT INTO ${table} (${names}) ${unnestRows(shape, 2)} ` +
    `ON CONFLICT (${key}) DO UPDATE SET ${assignments(shape)}`;
  if (updatedAtIndex(shape) < 0) return `${upsert} RETURNING CAST(${key} AS TEXT) AS row_key`;
  return `WITH written AS (${upsert} WHERE ${table}.updated_at <= excluded.updated_at ` +
    `RETURNING CAST(${key} AS TEXT) AS row_key, updated_at) ` +
    'INSERT INTO public.cesar_sync_versions (table_name, row_key, updated_at) ' +
    'SELECT $1, row_key, updated_at FROM written ' +
    'ON CONFLICT (table_name, row_key) DO UPDATE SET updated_at = excluded.updated_at ' +
    'RETURNING row_key';
}

/** Writes a page to the mirror in one transaction; returns the keys whose upsert applied. */
async function writePage(
  deps: SyncDeps,
  shape: TableShape,
  rows: TextRow[],
  gone: string[],
): Promise<Set<string>> {
  return await withRetry(deps, () =>
    deps.mirror.begin(async (tx) => {
      const written = rows.length === 0 ? [] : await tx.unsafe<Array<{ row_key: string }>>(
        upsertStatement(shape),
        [shape.table, ...columnArrays(shape, rows)] as never,
      );
      if (gone.length > 0) {
        await tx.unsafe(
          `DELETE FROM ${qualified(shape.table)} WHERE ${ident(shape.key)} = ANY (${
            keyArray(shape, 1)
          })`,
          [gone],
        );
        await tx.unsafe(
          'INSERT INTO public.cesar_sync_tombstones (table_name, row_key, deleted_at, origin) ' +
            "SELECT $1, k, now(), 'primary' FROM unnest(CAST($2 AS TEXT[])) AS k " +
            'ON CONFLICT (table_name, row_key) DO UPDATE ' +
            'SET deleted_at = excluded.deleted_at, origin = excluded.origin',
          [shape.table, gone],
        );
        await tx.unsafe(
          'DELETE FROM public.cesar_sync_versions WHERE table_name = $1 AND row_key = ANY (CAST($2 AS TEXT[]))',
          [shape.table, gone],
        );
      }
      return new Set(written.map((r) => r.row_key));
    }));
}

/**
 * The page's checkpoint on the primary, in one transaction: its outbox entries cleared (each
 * only if no newer change arrived meanwhile), and the rows the mirror had newer recorded as
 * conflicts the mirror won (the primary keeps its version until a pull).
 */
async function checkpoint(
  primary: Sql,
  shape: TableShape,
  page: OutboxEntry[],
  lost: Array<{ row_key: string; mirror_updated_at: string | null }>,
) {
  await primary.begin(async (tx) => {
    await tx`
      delete from cesar.sync_outbox o
      using jsonb_to_recordset(${tx.json(page as never)}) as p (row_key text, event_id bigint)
      where o.table_name = ${shape.table} and o.row_key = p.row_key and o.event_id = p.event_id
    `;
    if (lost.length === 0) return;
    await tx.unsafe(
      `insert into cesar.sync_conflicts
         (table_name, row_key, direction, winner, losing_version, winner_updated_at, loser_updated_at)
       select $1, l.row_key, 'up', 'mirror', to_jsonb(t.*), l.mirror_updated_at, t.updated_at
       from jsonb_to_recordset($2::jsonb) as l (row_key text, mirror_updated_at timestamptz)
       join ${qualified(shape.table)} t on t.${ident(shape.key)} = CAST(l.row_key AS ${
        shape.columns[keyIndex(shape)]!.type
      })`,
      [shape.table, lost] as never,
    );
  });
}

export async function pushTable(
  deps: SyncDeps,
  table: string,
  options: SyncOptions,
): Promise<SyncResult> {
  const started = performance.now();
  const shape = await describeTable(deps.primary, table);
  await preflight(deps.mirror, shape);
  if (!(await hasBeenPushed(deps.primary, table))) {
    await deps.primary`select cesar.sync_backfill(${table})`;
  }
  const result: SyncResult = {
    table,
    direction: 'up',
    inserted: 0,
    updated: 0,
    deleted: 0,
    conflicts: 0,
    batches: 0,
    stopped: 'done',
  };
  const size = pageSize(shape, options.batchSize);
  const key = keyIndex(shape);
  const updatedAt = updatedAtIndex(shape);
  let after: [string, string] = ['-1', ''];
  for (;;) {
    if (performance.now() - started >= options.budgetMs) {
      result.stopped = 'budget';
      break;
    }
    const page = await outboxPage(deps.primary, table, after, size);
    if (page.length === 0) break;
    after = [page.at(-1)!.event_id, page.at(-1)!.row_key];
    const keys = page.map((e) => e.row_key);
    const [rows, existing] = await Promise.all([
      rowsByKey(deps.primary, shape, keys),
      mirrorVersions(deps.mirror, shape, keys),
    ]);
    const present = new Set(rows.map((r) => r[key]!));
    const gone = keys.filter((k) => !present.has(k));
    const deleted = gone.filter((k) => existing.has(k)).length;
    // Dry: what the guarded upsert would do, from the mirror's versions read just now.
    const newer = (row: TextRow) => {
      const theirs = existing.get(row[key]!);
      return updatedAt >= 0 && theirs != null && new Date(theirs) > new Date(row[updatedAt]!);
    };
    const applied = options.dryRun
      ? new Set(rows.filter((r) => !newer(r)).map((r) => r[key]!))
      : await writePage(deps, shape, rows, gone);
    const lost = rows.filter((r) => !applied.has(r[key]!)).map((r) => ({
      row_key: r[key]!,
      mirror_updated_at: existing.get(r[key]!) ?? null,
    }));
    for (const k of applied) existing.has(k) ? result.updated++ : result.inserted++;
    result.deleted += deleted;
    result.conflicts += lost.length;
    if (!options.dryRun) await checkpoint(deps.primary, shape, page, lost);
    result.batches++;
  }
  return result;
}
