import type { Sql } from '../db.ts';
import {
  keysetPage,
  keyType,
  type Stopped,
  type SyncDeps,
  type SyncResult,
  withRetry,
} from './common.ts';
import { ident, qualified, type TableShape } from './schema.ts';

// The bulk form of a table's first push, for a mirror table with nothing past the copy's
// cursor: pages printed by the primary in COPY's text format, loaded with COPY FROM STDIN.

/** The mirror has no row of the table after this key (or none at all). */
export async function mirrorEmptyAfter(mirror: Sql, shape: TableShape, after: string | null) {
  const key = ident(shape.key);
  const rows = await mirror.unsafe(
    `SELECT 1 FROM ${qualified(shape.table)}` +
      (after === null ? '' : ` WHERE ${key} > CAST($1 AS ${keyType(shape)})`) + ' LIMIT 1',
    (after === null ? [] : [after]) as never,
  );
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
  const key = ident(shape.key);
  const fields = shape.columns.map((c) => `cesar.copy_field(p.${ident(c.name)}::text)`);
  const [page] = await primary.unsafe(
    keysetPage(
      shape,
      after,
      limit,
      `string_agg(concat_ws(E'\\t', ${fields.join(', ')}), E'\\n' order by p.${key}) as data`,
    ),
    (after === null ? [] : [after]) as never,
  );
  const rows = page!.rows as number;
  return {
    rows,
    data: rows === 0 ? '' : `${page!.data}\n`,
    next: rows < limit ? null : page!.last as string,
  };
}

/** Loads a page into the mirror with COPY FROM STDIN, in one transaction. */
async function loadBulkPage(deps: SyncDeps, shape: TableShape, page: BulkPage) {
  if (page.rows === 0) return;
  const names = shape.columns.map((c) => ident(c.name)).join(', ');
  await withRetry(deps, () =>
    deps.mirror.begin(async (tx) => {
      const copy = await tx.unsafe(`COPY ${qualified(shape.table)} (${names}) FROM STDIN`)
        .writable();
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
  deps: SyncDeps,
  shape: TableShape,
  after: string | null,
  limit: number,
  outOfTime: () => 'budget' | 'cpu' | null,
  result: SyncResult,
): Promise<Stopped> {
  if (after === null) {
    const [clock] = await deps.mirror.unsafe<Array<{ now: string }>>(
      'SELECT CAST(now() AS TEXT) AS now',
    );
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
    await loadBulkPage(deps, shape, page);
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
