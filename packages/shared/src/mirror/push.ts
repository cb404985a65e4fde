import { expandCaptures } from '../capture/index.ts';
import type { Sql } from '../db.ts';
import { BULK_PAGE_ROWS, bulkLoad, mayBulkLoad, mirrorEmptyAfter } from './bulk.ts';
import {
  emptyResult,
  type MirrorDeps,
  pageSize,
  pipeline,
  stopCheck,
  type SyncOptions,
  type SyncResult,
  withRetry,
} from './common.ts';
import {
  mirrorDialect,
  type MirrorStatements,
  mirrorStatements,
  primaryStatements,
  run,
} from './dialect.ts';
import { keyIndex, updatedAtIndex } from './rows.ts';
import { describeTable, preflight, type TableShape } from './schema.ts';

// Push: primary -> mirror, a keyset page at a time. A table's first push copies it whole, in
// key order; after that, the rows to push come from cesar.sync_outbox (see its migration for
// why that cannot skip a late commit). A page is read from the primary with every column
// printed as one array literal, and written to the mirror in one transaction: a guarded
// multi-row upsert that also records each row's agreed version (the origin marker the pull
// reads), and the deletions with their tombstones, retried on SQLSTATE 40001. Then the
// primary records the checkpoint: the copy's last key, or the page's outbox entries cleared
// (each only if no newer change arrived meanwhile), with the rows whose mirror version was
// newer recorded as conflicts. A run cut off anywhere resumes exactly where it stopped. The
// next page is read while the current one is written. A first push into an empty mirror
// table is a bulk load instead (bulk.ts).

/** A page read from the primary: each column as one array literal, in key order. */
interface Page {
  rows: number;
  columns: string[];
  /** Outbox pages: keys whose row is gone from the primary (array literal), and how many. */
  gone: string | null;
  goneCount: number;
  /** Outbox pages: the entries read (array literals), cleared by the checkpoint. */
  entries: { count: number; keys: string | null; ids: string | null };
  /** Where the next page starts; null: this is the last one. */
  next: string[] | null;
}

interface UpState {
  copied_at: Date | null;
  watermark_key: string | null;
  snapshot: string | null;
}

async function upState(primary: Sql, table: string): Promise<UpState> {
  const [row] = await primary<UpState[]>`
    select copied_at, watermark_key, snapshot from cesar.sync_state
    where table_name = ${table} and direction = 'up'
  `;
  return row ?? { copied_at: null, watermark_key: null, snapshot: null };
}

/** The copy: the next rows of the table itself, in key order. */
async function readTablePage(
  primary: Sql,
  shape: TableShape,
  after: string | null,
  limit: number,
): Promise<Page> {
  const [row] = await run(primary, primaryStatements.tablePage(shape, after, limit));
  const rows = row!.rows as number;
  return {
    rows,
    columns: shape.columns.map((_, i) => row![`c${i}`] as string),
    gone: null,
    goneCount: 0,
    entries: { count: 0, keys: null, ids: null },
    next: rows < limit ? null : [row!.last as string],
  };
}

/** The outbox: the next dirty entries in (change_id, row_key) order, and their rows. */
async function readOutboxPage(
  primary: Sql,
  shape: TableShape,
  after: string[],
  limit: number,
): Promise<Page> {
  const [row] = await run(
    primary,
    primaryStatements.outboxPage(shape, [after[0]!, after[1]!], limit),
  );
  const entries = row!.entries as number;
  return {
    rows: row!.rows as number,
    columns: shape.columns.map((_, i) => row![`c${i}`] as string),
    gone: row!.gone as string | null,
    goneCount: row!.gone_count as number,
    entries: { count: entries, keys: row!.entry_keys as string, ids: row!.entry_ids as string },
    next: entries < limit ? null : row!.last as string[],
  };
}

interface MirrorView {
  /** Rows of the page the mirror has already. */
  existing: number;
  /** Rows the mirror has newer than the page's (keys and the mirror's updated_at). */
  newer: Array<{ row_key: string; mirror_updated_at: string }>;
  /** Rows gone from the primary that the mirror still has. */
  toDelete: number;
}

/** What the mirror has of a page, before writing it: for the counts and the conflicts. */
async function mirrorView(
  mirror: Sql,
  m: MirrorStatements,
  shape: TableShape,
  page: Page,
): Promise<MirrorView> {
  const updatedAt = updatedAtIndex(shape);
  const view: MirrorView = { existing: 0, newer: [], toDelete: 0 };
  if (page.rows > 0) {
    const keys = page.columns[keyIndex(shape)]!;
    const [row] = await run(
      mirror,
      m.pageOnMirror(shape, keys, updatedAt < 0 ? null : page.columns[updatedAt]!),
    );
    view.existing = Number(row!.existing);
    const newerKeys = (row!.newer_keys ?? []) as string[];
    const newerAt = (row!.newer_at ?? []) as string[];
    view.newer = newerKeys.map((k, i) => ({ row_key: k, mirror_updated_at: newerAt[i]! }));
  }
  if (page.goneCount > 0) {
    const [row] = await run(mirror, m.countKeys(shape, page.gone!));
    view.toDelete = Number(row!.n);
  }
  return view;
}

/** Writes a page to the mirror in one transaction; returns how many rows the upsert wrote. */
async function writePage(
  deps: MirrorDeps,
  m: MirrorStatements,
  shape: TableShape,
  page: Page,
): Promise<number> {
  return await withRetry(deps, () =>
    deps.mirror.begin(async (tx) => {
      const mirror = tx as unknown as Sql;
      let written = 0;
      if (page.rows > 0) {
        const [row] = await run(mirror, m.upsertPage(shape, page.columns));
        written = Number(row!.written);
      }
      if (page.goneCount > 0) {
        await run(mirror, m.deleteKeys(shape, page.gone!));
        await run(mirror, m.recordTombstones(shape.table, page.gone!));
        await run(mirror, m.forgetVersions(shape.table, page.gone!));
      }
      return written;
    }));
}

/**
 * A page's checkpoint on the primary, in one transaction: the copy's last key, or the outbox
 * entries cleared (each only if no newer change arrived meanwhile); and the rows the mirror
 * had newer recorded as conflicts the mirror won (the primary keeps its version until a pull).
 */
async function checkpoint(
  primary: Sql,
  shape: TableShape,
  page: Page,
  copiedUpTo: string | null | undefined,
  lost: MirrorView['newer'],
) {
  await primary.begin(async (tx) => {
    if (copiedUpTo !== undefined) {
      await tx`
        update cesar.sync_state set watermark_key = ${copiedUpTo}
        where table_name = ${shape.table} and direction = 'up'
      `;
    } else if (page.entries.count > 0) {
      await tx`
        select cesar.clear_sync_outbox(
          ${shape.table}, ${page.entries.keys}::text::text[], ${page.entries.ids}::text::bigint[])
      `;
    }
    if (lost.length === 0) return;
    await run(tx as unknown as Sql, primaryStatements.recordPushConflicts(shape, lost));
  });
}

// Captured rows expanded per statement before a push: each statement stays short.
const EXPAND_ROWS = 10_000;

/**
 * Expands what is captured, a statement of EXPAND_ROWS rows at a time, until nothing waits or
 * `until` (performance.now()) has passed: the rest waits for the next run. Expanding is
 * database-wide, so a run does it once for all its pushes.
 */
export async function expandWaitingCaptures(primary: Sql, until: number): Promise<void> {
  while (performance.now() < until && await expandCaptures(primary, EXPAND_ROWS) > 0);
}

export async function pushTable(
  deps: MirrorDeps,
  table: string,
  options: SyncOptions & { expandWaiting: () => Promise<void> },
): Promise<SyncResult> {
  const result = emptyResult(table, 'up');
  const outOfTime = stopCheck(options, () => result.batches);
  const shape = await describeTable(deps.primary, table);
  const state = await upState(deps.primary, table);
  // A table the first push makes gets its updated_at index (the pull's) once it is loaded:
  // built then, it costs a fifth of the load less than kept up row by row during COPY (100,000
  // agents-shaped rows piped by psql: 870 to 940 ms against 1,100 to 1,170; COPY into the
  // table with its primary key alone 710 to 740).
  await preflight(deps.mirror, shape, { index: state.copied_at === null ? 'later' : 'now' });
  const m = mirrorStatements(await mirrorDialect(deps.mirror));
  const size = pageSize(shape, options.batchSize);

  /** Writes a page to the mirror; returns its checkpoint, for the pipeline to run in order. */
  const push = async (page: Page, copiedUpTo?: string | null) => {
    const nothing = async () => {};
    if (page.rows === 0 && page.entries.count === 0) return nothing;
    const view = await mirrorView(deps.mirror, m, shape, page);
    const written = options.dryRun
      ? page.rows - view.newer.length
      : await writePage(deps, m, shape, page);
    const inserted = page.rows - view.existing;
    result.inserted += inserted;
    result.updated += Math.max(0, written - inserted);
    result.conflicts += page.rows - written;
    result.deleted += view.toDelete;
    result.batches++;
    options.onPage?.(result);
    if (options.dryRun) return nothing;
    return () => checkpoint(deps.primary, shape, page, copiedUpTo, view.newer);
  };

  if (state.copied_at === null) {
    // The first push: the table copied whole. Changes made meanwhile reach the outbox.
    let snapshot = state.snapshot;
    if (snapshot === null && !options.dryRun) {
      const [row] = await deps.primary<Array<{ snapshot: string }>>`
        update cesar.sync_state set snapshot = pg_current_snapshot()::text, watermark_key = null
        where table_name = ${table} and direction = 'up'
        returning snapshot
      `;
      snapshot = row?.snapshot ?? null;
    }
    if (
      !options.dryRun && mayBulkLoad(table) &&
      await mirrorEmptyAfter(deps.mirror, m, shape, state.watermark_key)
    ) {
      result.stopped = await bulkLoad(
        deps,
        m,
        shape,
        state.watermark_key,
        Math.max(BULK_PAGE_ROWS, options.batchSize),
        outOfTime,
        result,
        options.onPage,
      );
    } else {
      result.stopped = await pipeline(
        (cursor) => readTablePage(deps.primary, shape, cursor?.[0] ?? null, size),
        state.watermark_key === null ? null : [state.watermark_key],
        (page) => push(page, page.next?.[0] ?? null),
        outOfTime,
      );
    }
    if (result.stopped !== 'done' || options.dryRun) return result;
    const index = m.createUpdatedIndex(shape);
    if (index) await run(deps.mirror, index);
    // The outbox entries of changes the copy saw (committed before it began) are done.
    await deps.primary`
      with copied as (
        delete from cesar.sync_outbox o
        where o.table_name = ${table} and o.txid is not null
          and pg_visible_in_snapshot(o.txid::text::xid8, ${snapshot}::text::pg_snapshot)
        returning 1
      )
      update cesar.sync_state set copied_at = now(), snapshot = null, watermark_key = null
      where table_name = ${table} and direction = 'up'
    `;
  }
  // Statements captured and not yet expanded reach the outbox first: the push never waits for
  // the webhook function to have run (once a run: runSync).
  if (!options.dryRun) await options.expandWaiting();
  result.stopped = await pipeline<string[], Page>(
    (cursor) => readOutboxPage(deps.primary, shape, cursor ?? ['-1', ''], size),
    null,
    (page) => push(page),
    outOfTime,
  );
  return result;
}
