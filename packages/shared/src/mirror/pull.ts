import type { Sql } from '../db.ts';
import {
  emptyResult,
  type MirrorDeps,
  pageSize,
  stopCheck,
  type SyncOptions,
  type SyncResult,
} from './common.ts';
import { mirrorDialect, mirrorStatements, primaryStatements, run } from './dialect.ts';
import { keyIndex, type TextRow, updatedAtIndex } from './rows.ts';
import { describeTable, preflight } from './schema.ts';

// Pull: mirror -> primary. The mirror has no triggers, so its changes are found by
// updated_at: rows from the watermark (minus a look-back window, for transactions that
// committed after a later one) whose version is not the one both sides last agreed on
// (public.cesar_sync_versions: what the push wrote or the pull already applied; rows of the
// push's bulk load have none, and are older than the load's start). Each page
// is applied on the primary in one statement that decides last-writer-wins in SQL, keeps
// every loser in cesar.sync_conflicts, and is marked with the origin 'mirror' so that it is
// not pushed back. Deletions arrive as the mirror's tombstones that no sync wrote.

export interface PullOptions extends SyncOptions {
  /** How far before the watermark each pull looks again, for late commits on the mirror. */
  lookbackSeconds: number;
}

type Action = 'insert' | 'update' | 'same' | 'keep' | 'delete' | 'absent';

interface Decided {
  action: Action;
  rows: number;
  conflicts: number;
}

/**
 * Writes from the mirror carry the origin marker (not pushed back, updated_at kept); `origin`
 * 'restore' also runs no workflows.
 */
export async function markOrigin(tx: Sql, origin: 'mirror' | 'restore'): Promise<void> {
  await tx`select set_config('cesar.origin', ${origin}, true)`;
}

/** The pull's watermark, and when the push's bulk load began (both in the mirror's clock). */
async function marks(primary: Sql, table: string) {
  const [row] = await primary<Array<{ watermark: string | null; bulk: string | null }>>`
    select (select watermark::text from cesar.sync_state
            where table_name = ${table} and direction = 'down') as watermark,
           (select bulk_loaded_from::text from cesar.sync_state
            where table_name = ${table} and direction = 'up') as bulk
  `;
  return { watermark: row!.watermark, bulkLoadedFrom: row!.bulk };
}

class DryRun extends Error {
  constructor(readonly decided: Decided[]) {
    super('dry run');
  }
}

/** Applies a page on the primary in one transaction (rolled back when dry). */
async function applyOnPrimary(
  primary: Sql,
  dryRun: boolean,
  work: (tx: Sql) => Promise<Decided[]>,
): Promise<Decided[]> {
  try {
    return await primary.begin(async (tx) => {
      await markOrigin(tx as unknown as Sql, 'mirror');
      const decided = await work(tx as unknown as Sql);
      if (dryRun) throw new DryRun(decided);
      return decided;
    });
  } catch (err) {
    if (err instanceof DryRun) return err.decided;
    throw err;
  }
}

function tally(result: SyncResult, decided: Decided[]) {
  for (const d of decided) {
    if (d.action === 'insert') result.inserted += d.rows;
    if (d.action === 'update') result.updated += d.rows;
    if (d.action === 'delete') result.deleted += d.rows;
    result.conflicts += d.conflicts;
  }
}

export async function pullTable(
  deps: MirrorDeps,
  table: string,
  options: PullOptions,
): Promise<SyncResult> {
  const result = emptyResult(table, 'down');
  const outOfTime = stopCheck(options, () => result.batches);
  const shape = await describeTable(deps.primary, table);
  if (updatedAtIndex(shape) < 0) {
    throw new Error(`${table} has no updated_at column: the pull needs it for last-writer-wins`);
  }
  await preflight(deps.mirror, shape);
  const m = mirrorStatements(await mirrorDialect(deps.mirror));
  const size = pageSize(shape, options.batchSize);
  const key = keyIndex(shape);
  const updatedAt = updatedAtIndex(shape);
  const { watermark: mark, bulkLoadedFrom } = await marks(deps.primary, table);
  // The watermark never passes the mirror's clock at the start: a row written with a future
  // updated_at (a skewed clock) must not make the next pull skip the rows written until then.
  const [clock] = await run<Array<{ now: string }>>(deps.mirror, m.clock());
  const from = mark === null
    ? null
    : new Date(new Date(mark).getTime() - options.lookbackSeconds * 1000).toISOString();
  let cursor: [string, string] | null = null;
  for (;;) {
    const stop = outOfTime();
    if (stop) {
      result.stopped = stop;
      return result;
    }
    const rows = await run(deps.mirror, m.changedRows(shape, from, cursor, size, bulkLoadedFrom))
      .values() as unknown as TextRow[];
    if (rows.length === 0) break;
    const last = rows.at(-1)!;
    cursor = [last[updatedAt]!, last[key]!];
    const decided = await applyOnPrimary(deps.primary, options.dryRun, async (tx) => {
      const counts = await run<Decided[]>(tx, primaryStatements.applyPulledRows(shape, rows));
      await tx`
        update cesar.sync_state
        set watermark = greatest(watermark,
                                 least(${last[updatedAt]!}::text::timestamptz, ${
        clock!.now
      }::text::timestamptz))
        where table_name = ${table} and direction = 'down'
      `;
      return counts;
    });
    tally(result, decided);
    if (!options.dryRun) {
      // Both sides now agree on these versions (or the push will put the primary's back).
      await run(
        deps.mirror,
        m.recordVersions(table, rows.map((r) => r[key]!), rows.map((r) => r[updatedAt]!)),
      );
    }
    result.batches++;
    options.onPage?.(result);
  }
  let after: [string, string] | null = null;
  for (;;) {
    const stop = outOfTime();
    if (stop) {
      result.stopped = stop;
      return result;
    }
    const tombstones: Array<{ row_key: string; deleted_at: string }> = await run(
      deps.mirror,
      m.tombstonesPage(table, after, size),
    );
    if (tombstones.length === 0) break;
    after = [tombstones.at(-1)!.deleted_at, tombstones.at(-1)!.row_key];
    const keys = tombstones.map((t) => t.row_key);
    const decided = await applyOnPrimary(
      deps.primary,
      options.dryRun,
      async (tx) =>
        await run<Decided[]>(
          tx,
          primaryStatements.applyTombstones(shape, keys, tombstones.map((t) => t.deleted_at)),
        ),
    );
    tally(result, decided);
    if (!options.dryRun) {
      await run(deps.mirror, m.markPulled(table, keys));
    }
    result.batches++;
    options.onPage?.(result);
  }
  return result;
}
