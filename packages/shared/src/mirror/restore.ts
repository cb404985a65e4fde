import { otherPool, type Sql, unwrapOtherPool } from '../db.ts';
import { markOrigin } from './pull.ts';
import type { CpuBudget } from '../cpu.ts';
import { type MirrorDeps, pageSize, stopCheck, type Stopped } from './common.ts';
import { mirrorDialect, mirrorStatements, POSTGRESQL, primaryStatements, run } from './dialect.ts';
import { keyIndex, type TextRow } from './rows.ts';
import { describeTable, preflight } from './schema.ts';
import { type VerifyResult, verifyTable } from './verify.ts';

// Restore (disaster recovery): the primary's copy of a table rebuilt from the mirror, read in
// key order at one snapshot: `AS OF SYSTEM TIME` on CockroachDB (the same snapshot for every
// call of a resumed restore), one repeatable-read transaction per call on the PostgreSQL
// stand-in. Each page is written in one primary transaction with its checkpoint (the last
// key restored): rows missing or different are written, rows of the page's key range that
// the mirror does not have are deleted. Rows the primary changed since its last push (still
// in the outbox) are newer than the mirror's and are kept. Writes carry the origin
// 'restore': captured, not pushed back, and no workflow runs for them. The table is verified
// against the mirror before the restore reports success.

export interface RestoreOptions {
  batchSize: number;
  budgetMs: number;
  /** The invocation's CPU budget: past it the restore stops at its next page (checkpointed). */
  cpu?: CpuBudget;
  /** Aborted when the run lost its lease: it stops at its next page. */
  signal?: AbortSignal;
}

export interface RestoreResult {
  table: string;
  inserted: number;
  updated: number;
  deleted: number;
  /** Rows left as the primary has them: changed since the last push. */
  kept: number;
  batches: number;
  stopped: Stopped;
  /** At one snapshot of the mirror: its CockroachDB timestamp, or null (one transaction). */
  snapshot: string | null;
  verify?: VerifyResult;
}

export class RestoreRefused extends Error {}

interface RestoreState {
  status: string;
  snapshot: string | null;
  watermark_key: string | null;
}

async function restoreState(primary: Sql, table: string): Promise<RestoreState | undefined> {
  const [row] = await primary<RestoreState[]>`
    select status, snapshot, watermark_key from cesar.sync_state
    where table_name = ${table} and direction = 'restore'
  `;
  return row;
}

async function checkpoint(primary: Sql, table: string, fields: Partial<RestoreState>) {
  await primary`
    update cesar.sync_state set ${primary(fields as Record<string, unknown>)}, updated_at = now()
    where table_name = ${table} and direction = 'restore'
  `;
}

/** Rebuilds one table from the mirror; the caller holds the (table, 'restore') lease. */
export async function restoreTable(
  deps: MirrorDeps,
  table: string,
  options: RestoreOptions,
): Promise<RestoreResult> {
  let pages = 0;
  const outOfTime = stopCheck(options, () => pages);
  const shape = await describeTable(deps.primary, table);
  await preflight(deps.mirror, shape);
  const dialect = await mirrorDialect(deps.mirror);
  const m = mirrorStatements(dialect);
  const state = await restoreState(deps.primary, table);
  const resuming = state?.watermark_key != null;
  let after = resuming ? state!.watermark_key : null;
  let snapshot = resuming ? state!.snapshot : null;
  if (!resuming) {
    const [counts] = await run(deps.mirror, m.countRows(shape));
    const [ours] = await run(deps.primary, mirrorStatements(POSTGRESQL).countRows(shape));
    if (Number(counts!.n) === 0 && Number(ours!.n) > 0) {
      throw new RestoreRefused(
        `the mirror's ${table} is empty: restoring it would empty the primary's (push first)`,
      );
    }
    const at = m.snapshotTimestamp();
    if (at) {
      const [row] = await run<Array<{ ts: string }>>(deps.mirror, at);
      snapshot = row!.ts;
    }
    await checkpoint(deps.primary, table, { snapshot, watermark_key: null });
  }
  const result: RestoreResult = {
    table,
    inserted: 0,
    updated: 0,
    deleted: 0,
    kept: 0,
    batches: 0,
    stopped: 'done',
    snapshot,
  };
  const size = pageSize(shape, options.batchSize);
  const readPage = (reader: Sql, from: string | null) =>
    run(reader, m.restorePage(shape, from, size, snapshot)).values() as unknown as Promise<
      TextRow[]
    >;

  const copy = async (reader: Sql) => {
    for (;;) {
      const stop = outOfTime();
      if (stop) {
        result.stopped = stop;
        return;
      }
      const rows = await readPage(reader, after);
      const last = rows.length < size ? null : rows.at(-1)![keyIndex(shape)]!;
      const [counts] = await otherPool(() =>
        deps.primary.begin(async (tx) => {
          await markOrigin(tx as unknown as Sql, 'restore');
          const counts = await run<
            Array<{ inserted: number; updated: number; deleted: number; kept: number }>
          >(tx, primaryStatements.applyRestorePage(shape, after, last, rows));
          await tx`
            update cesar.sync_state set watermark_key = ${last}, updated_at = now()
            where table_name = ${table} and direction = 'restore'
          `;
          return counts;
        })
      );
      result.inserted += counts!.inserted;
      result.updated += counts!.updated;
      result.deleted += counts!.deleted;
      result.kept += counts!.kept;
      result.batches++;
      pages++;
      after = last;
      if (last === null) return;
    }
  };
  // AS OF SYSTEM TIME reads one snapshot across calls; else one transaction per call, the
  // primary's pages another pool's work inside it (otherPool).
  try {
    if (dialect.asOfSystemTime) await copy(deps.mirror);
    else {
      await deps.mirror.begin('isolation level repeatable read read only', async (tx) => {
        await copy(tx as unknown as Sql);
      });
    }
  } catch (err) {
    throw unwrapOtherPool(err);
  }
  if (result.stopped !== 'done') return result;

  result.verify = await verifyTable(deps.primary, deps.mirror, table);
  const dirty = new Set(
    (await deps.primary<Array<{ row_key: string }>>`
      select row_key from cesar.unpushed_changes(${table})
    `).map((r) => r.row_key),
  );
  const unexplained = [...result.verify.missing, ...result.verify.extra, ...result.verify.changed]
    .filter((k) => !dirty.has(k));
  if (unexplained.length > 0) {
    throw new Error(
      `restored ${table}, but verify found ${unexplained.length} rows that differ from the mirror: ${
        unexplained.slice(0, 5).join(', ')
      }`,
    );
  }
  await checkpoint(deps.primary, table, { snapshot: null, watermark_key: null });
  return result;
}
