import { OtherPoolFailure, type Sql, unwrapOtherPool } from '../db.ts';
import { type MirrorDeps, pipeline, type Stopped, type SyncResult, withRetry } from './common.ts';
import { type CopyFormat, type MirrorStatements, primaryStatements, run } from './dialect.ts';
import type { TableShape } from './schema.ts';

// The bulk form of a table's first push, for a mirror table with nothing past the copy's
// cursor: keyset pages streamed from COPY TO STDOUT on the primary into COPY FROM STDIN on
// the mirror, in COPY's binary format (text where the mirror refuses binary).

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
  /** The rows after the previous page's last key (null: from the start), up to `last`. */
  after: string | null;
  rows: number;
  last: string | null;
  /** The page's last key; null: the table ends with this page. */
  next: string | null;
}

/** A page's bounds on the primary: its rows and its last key (from the key's index alone). */
async function readBulkBounds(
  primary: Sql,
  shape: TableShape,
  after: string | null,
  limit: number,
): Promise<BulkPage> {
  const [page] = await run(primary, primaryStatements.bulkBounds(shape, after, limit));
  const rows = page!.rows as number;
  const last = page!.last as string | null;
  return { after, rows, last, next: rows < limit ? null : last };
}

/** The part of a postgres.js COPY stream that the pump uses (no node:* in the core). */
interface CopySource {
  on(event: 'data', listener: (chunk: Uint8Array) => void): unknown;
  on(event: 'end', listener: () => void): unknown;
  on(event: 'error', listener: (err: Error) => void): unknown;
}
interface CopyTarget {
  write(chunk: Uint8Array, callback?: (err?: Error | null) => void): boolean;
  end(callback?: () => void): unknown;
  on(event: 'finish', listener: () => void): unknown;
  on(event: 'error', listener: (err: Error) => void): unknown;
  destroy(err?: Error): unknown;
  readonly destroyed: boolean;
  readonly errored: Error | null;
}

/**
 * Bytes gathered before they are written to the mirror: PostgreSQL sends COPY's output a row
 * per message, and a write per row (a message and a socket write each, as a plain pipe makes
 * them) costs the function more CPU than the rows' bytes. COPY FROM STDIN takes its data in
 * chunks of any size.
 */
const COPY_CHUNK_BYTES = 256 * 1024;

/**
 * How long the mirror has to confirm a page's COPY after its end was sent. postgres.js 3.4.9
 * reports nothing of a COPY FROM STDIN that the server refuses after the end (it forgets the
 * stream when it sends CopyDone): a refusal of the last rows (a row the mirror got meanwhile,
 * a check of its own) would leave the page waiting for good. A page that is not confirmed in
 * time fails, and the table is pushed by the upsert path from then on in this instance
 * (mayBulkLoad), which reports what the mirror refuses.
 */
const COPY_CONFIRM_MS = 20_000;

/** Tables whose bulk load the mirror did not confirm in this instance (COPY_CONFIRM_MS). */
const unconfirmed = new Set<string>();

/** Whether a first push of `table` may be a bulk load (not after an unconfirmed COPY). */
export function mayBulkLoad(table: string): boolean {
  return !unconfirmed.has(table);
}

class UnconfirmedCopy extends Error {}

/**
 * Streams COPY's output into a COPY FROM STDIN, in chunks. The source is never paused:
 * postgres.js pauses its socket when a paused stream's buffer fills, and resumes it only when
 * the stream is read again, which an ended stream never is, so the transaction's COMMIT that
 * follows would never be answered (a hang seen in tests). What the mirror has not taken yet
 * waits in the writable instead: a page at most (BULK_PAGE_ROWS). When the mirror fails, the
 * source is still read to its end before the pump rejects (with OtherPoolFailure: the mirror's
 * failure inside the primary's transaction): until then the primary's connection takes no
 * other statement, the transaction's ROLLBACK among them.
 */
function pump(source: CopySource, target: CopyTarget, confirmMs: number): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    let parts: Uint8Array[] = [];
    let size = 0;
    let failed: OtherPoolFailure | null = null;
    let ended = false;
    let unconfirmedTimer: ReturnType<typeof setTimeout> | undefined;
    const failTarget = (err: Error) => {
      if (failed) return;
      clearTimeout(unconfirmedTimer);
      failed = new OtherPoolFailure(err);
      target.destroy(err);
      if (ended) reject(failed);
    };
    const flush = () => {
      if (size === 0) return;
      const chunk = parts.length === 1 ? parts[0]! : concat(parts, size);
      parts = [];
      size = 0;
      target.write(chunk);
    };
    source.on('error', (err) => {
      ended = true;
      if (!failed) target.destroy(err);
      reject(err);
    });
    target.on('error', failTarget);
    // The mirror may have failed before the pump began (while the primary's side started).
    if (target.destroyed) failTarget(target.errored ?? new Error('the COPY into the mirror ended'));
    source.on('data', (chunk) => {
      if (failed) return;
      parts.push(chunk);
      size += chunk.length;
      if (size >= COPY_CHUNK_BYTES) flush();
    });
    source.on('end', () => {
      ended = true;
      if (failed) return reject(failed);
      flush();
      target.on('finish', () => {
        clearTimeout(unconfirmedTimer);
        resolve();
      });
      target.end();
      // Not destroyed then: its end is sent, and a CopyFail after CopyDone is a protocol
      // violation. The mirror's transaction rolls back.
      unconfirmedTimer = setTimeout(() => {
        failed = new OtherPoolFailure(
          new UnconfirmedCopy(
            `the mirror did not confirm the COPY within ${confirmMs} ms of its end (a refusal after the end is not reported)`,
          ),
        );
        reject(failed);
      }, confirmMs);
    });
  });
}

function concat(parts: Uint8Array[], size: number): Uint8Array {
  const out = new Uint8Array(size);
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

/**
 * Loads a page into the mirror in one transaction: COPY TO STDOUT on the primary streamed
 * into COPY FROM STDIN on the mirror, the bytes passed through as PostgreSQL sends them (as
 * `COPY ... TO STDOUT | COPY ... FROM STDIN` would). Returns the page's rows as its bounds
 * counted them (rows written on the primary meanwhile may make the COPY's differ: they reach
 * the outbox). No statement follows the COPY on the mirror's connection but the COMMIT.
 */
async function loadBulkPage(
  deps: MirrorDeps,
  m: MirrorStatements,
  shape: TableShape,
  page: BulkPage,
  format: CopyFormat,
): Promise<number> {
  if (page.rows === 0) return 0;
  await withRetry(deps, () =>
    deps.mirror.begin(async (tx) => {
      const target = await run(tx as unknown as Sql, m.copyIn(shape, format)).writable();
      // Until the pump listens: an error meanwhile is the pump's to find (target.errored).
      target.on('error', () => {});
      try {
        await deps.primary.begin(async (ptx) => {
          const primary = ptx as unknown as Sql;
          await run(primary, primaryStatements.copyBounds(page.after, page.last!));
          const source = await run(
            primary,
            primaryStatements.copyOut(shape, page.after !== null, format),
          ).readable();
          await pump(
            source as unknown as CopySource,
            target as unknown as CopyTarget,
            deps.copyConfirmMs ?? COPY_CONFIRM_MS,
          );
        });
      } catch (err) {
        // The mirror's failure (the pump's OtherPoolFailure) is this transaction's own; the
        // primary's goes on wrapped, and is unwrapped once this transaction has ended.
        throw err instanceof OtherPoolFailure ? err.reason : new OtherPoolFailure(err);
      }
    }).catch((err) => {
      throw unwrapOtherPool(err);
    }));
  return page.rows;
}

/**
 * Tables whose mirror refused COPY's binary format in this instance: loaded in text from then
 * on, without trying binary on every call.
 */
const textOnly = new Set<string>();

/**
 * Whether a binary load's error may be the mirror not taking binary as the primary sends it
 * (an unsupported format or type, a value it decodes otherwise: PostgreSQL and CockroachDB use
 * several codes for these), so that the page is loaded again in text. Not for errors text
 * would meet alike (a key already there, a conflict to retry, a cancel, resources, the
 * connection), nor for one without a SQLSTATE (not the database's).
 */
function mayLoadInText(err: unknown): boolean {
  const code = (err as { code?: unknown }).code;
  return typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) &&
    !/^(23|40|53|57|08(?!P01))/.test(code);
}

/** Loads a page in binary; where the mirror refuses that, in text from then on. */
async function loadBulkPageAs(
  deps: MirrorDeps,
  m: MirrorStatements,
  shape: TableShape,
  page: BulkPage,
): Promise<number> {
  const format: CopyFormat = textOnly.has(shape.table) ? 'text' : 'binary';
  try {
    return await loadBulkPage(deps, m, shape, page, format);
  } catch (err) {
    if (err instanceof UnconfirmedCopy) unconfirmed.add(shape.table);
    if (format === 'text' || !mayLoadInText(err)) throw err;
    textOnly.add(shape.table);
    console.error(
      `sync: ${shape.table}: the mirror refused COPY's binary format (${
        (err as { code: string }).code
      }: ${(err as Error).message}); loading in text`,
    );
    return await loadBulkPage(deps, m, shape, page, 'text');
  }
}

/**
 * The bulk form of a first copy, for a mirror table that has nothing past the cursor (as
 * MOLT Fetch loads an empty table): keyset pages of the primary's COPY TO STDOUT streamed
 * into the mirror's COPY FROM STDIN, in binary (text where the mirror refuses it), the next
 * page's bounds read while one loads, each load followed by its checkpoint.
 * The rows need no recorded version: they keep the primary's updated_at, older than the
 * mirror's clock when the load began (sync_state.bulk_loaded_from), which is how the pull
 * tells them from the mirror's own changes. A row that appears on the mirror meanwhile
 * breaks the COPY (unique key), and the next run takes the upsert path from the checkpoint,
 * as it does for a page committed whose checkpoint was not written (the primary or the
 * function gone in between).
 */
export async function bulkLoad(
  deps: MirrorDeps,
  m: MirrorStatements,
  shape: TableShape,
  after: string | null,
  limit: number,
  outOfTime: () => 'budget' | 'cpu' | null,
  result: SyncResult,
  onPage?: (totals: SyncResult) => void,
): Promise<Stopped> {
  if (after === null) {
    const [clock] = await run<Array<{ now: string }>>(deps.mirror, m.clock());
    await deps.primary`
      update cesar.sync_state set bulk_loaded_from = ${clock!.now}::text::timestamptz
      where table_name = ${shape.table} and direction = 'up'
    `;
  }
  return await pipeline(
    (cursor) => readBulkBounds(deps.primary, shape, cursor, limit),
    after,
    async (page) => {
      result.inserted += await loadBulkPageAs(deps, m, shape, page);
      result.batches++;
      onPage?.(result);
      return async () => {
        await deps.primary`
          update cesar.sync_state set watermark_key = ${page.next}
          where table_name = ${shape.table} and direction = 'up'
        `;
      };
    },
    outOfTime,
    // One page at a time: with two COPYs on the mirror's two connections when the mirror
    // stopped (a fast shutdown), postgres.js 3.4.9 left its pool failing every call with
    // CONNECT_TIMEOUT ("undefined:undefined") for as long as three calls after the mirror was
    // back, in 3 tries of 3; with one COPY at a time the next call after its 57P01 completed
    // it, 5 tries of 5 (tests/self-healing.test.ts, "the mirror stopped in the middle of a
    // first push").
    1,
  );
}

/** Rows per page of a bulk load (COPY has no parameter limit, and each page is a commit). */
export const BULK_PAGE_ROWS = 10_000;
