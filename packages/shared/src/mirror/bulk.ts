import type { Sql } from '../db.ts';
import { type MirrorDeps, type Stopped, type SyncResult, withRetry } from './common.ts';
import { type MirrorStatements, primaryStatements, run } from './dialect.ts';
import type { TableShape } from './schema.ts';

// The bulk form of a table's first push, for a mirror table with nothing past the copy's
// cursor: pages printed by the primary in COPY's text format, loaded with COPY FROM STDIN.

/** The mirror has no row of the table after this key (or none at all). */
export async function mirrorEmptyAfter(
  mirror: Sql,
  m: MirrorStatements,
  shape: TableShape,
  after: string | null,
) {
  const rows = await run(mirror, m.anyRowAfter(shape, after));
  return rows.length === 0;
}

interface BulkPage {
  rows: number;
  /** The page in COPY's text format. */
  data: string;
  /** The page's last key; null: the table ends with this page. */
  next: string | null;
}

/** A page of the table, printed by the primary in COPY's text format. */
async function readBulkPage(
  primary: Sql,
  shape: TableShape,
  after: string | null,
  limit: number,
): Promise<BulkPage> {
  const [page] = await run(primary, primaryStatements.bulkPage(shape, after, limit));
  const rows = page!.rows as number;
  return {
    rows,
    data: rows === 0 ? '' : `${page!.data}\n`,
    next: rows < limit ? null : page!.last as string,
  };
}

/** Loads a page into the mirror with COPY FROM STDIN, in one transaction. */
async function loadBulkPage(
  deps: MirrorDeps,
  m: MirrorStatements,
  shape: TableShape,
  page: BulkPage,
) {
  if (page.rows === 0) return;
  await withRetry(deps, () =>
    deps.mirror.begin(async (tx) => {
      const copy = await run(tx as unknown as Sql, m.copyIn(shape)).writable();
      await new Promise<void>((resolve, reject) => {
        copy.on('error', reject);
        copy.on('finish', resolve);
        copy.end(page.data);
      });
    }));
}

/**
 * The bulk form of a first copy, for a mirror table that has nothing past the cursor (as
 * MOLT Fetch loads an empty table): pages printed by the primary in COPY's text format and
 * loaded with COPY FROM STDIN, the next page read while one loads, each load followed by its
 * checkpoint. The rows need no recorded version: they keep the primary's updated_at, older
 * than the mirror's clock when the load began (sync_state.bulk_loaded_from), which is how the
 * pull tells them from the mirror's own changes. A row that appears on the mirror meanwhile
 * breaks the COPY (unique key), and the next run takes the upsert path from the checkpoint.
 */
export async function bulkLoad(
  deps: MirrorDeps,
  m: MirrorStatements,
  shape: TableShape,
  after: string | null,
  limit: number,
  outOfTime: () => 'budget' | 'cpu' | null,
  result: SyncResult,
): Promise<Stopped> {
  if (after === null) {
    const [clock] = await run<Array<{ now: string }>>(deps.mirror, m.clock());
    await deps.primary`
      update cesar.sync_state set bulk_loaded_from = ${clock!.now}::text::timestamptz
      where table_name = ${shape.table} and direction = 'up'
    `;
  }
  const settle = <T>(p: Promise<T>) => (p.catch(() => {}), p);
  let ahead: Promise<BulkPage> | null = settle(readBulkPage(deps.primary, shape, after, limit));
  while (ahead) {
    const stop = outOfTime();
    if (stop) return stop;
    const page: BulkPage = await ahead;
    ahead = page.next === null ? null : settle(readBulkPage(deps.primary, shape, page.next, limit));
    await loadBulkPage(deps, m, shape, page);
    result.inserted += page.rows;
    result.batches++;
    await deps.primary`
      update cesar.sync_state set watermark_key = ${page.next}
      where table_name = ${shape.table} and direction = 'up'
    `;
  }
  return 'done';
}

/** Rows per page of a bulk load (COPY has no parameter limit, and each page is a commit). */
export const BULK_PAGE_ROWS = 10_000;
