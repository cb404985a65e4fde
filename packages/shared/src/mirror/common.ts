import { z } from 'zod';
import type { CpuBudget } from '../cpu.ts';
import type { Sql } from '../db.ts';
import type { TableShape } from './schema.ts';

// What the push, the pull and the restore share: their dependencies, options and results,
// the retry CockroachDB asks for, and page sizes.

/** PostgreSQL's and CockroachDB's limit on bind parameters in one statement. */
const PARAMETER_LIMIT = 65_534;

export interface MirrorDeps {
  primary: Sql;
  mirror: Sql;
  random: () => number;
  sleep?: (ms: number) => Promise<void>;
  /** A run's lease on its table (run.ts's LEASE by default; tests shorten it). */
  lease?: Lease;
  /** How long a bulk page waits for the mirror to confirm its COPY (bulk.ts; tests shorten it). */
  copyConfirmMs?: number;
}

/** A run holds its lease for `seconds` and renews it every `heartbeatMs` while it works. */
export interface Lease {
  seconds: number;
  heartbeatMs: number;
}

export interface SyncOptions {
  batchSize: number;
  dryRun: boolean;
  budgetMs: number;
  /**
   * The invocation's CPU budget: once it is spent the run stops at its next page, with its
   * checkpoint, for a next invocation to continue. Absent: no CPU limit.
   */
  cpu?: CpuBudget;
  /** Aborted when the run lost its lease: it stops at its next page. */
  signal?: AbortSignal;
  /** Called after each page applied, with the run's totals so far (a job's progress). */
  onPage?: (totals: SyncResult) => void;
}

/** How a run ended: done, or stopped at a checkpoint when its wall or CPU budget ran out. */
export type Stopped = 'done' | 'budget' | 'cpu';

/**
 * A run's check before each page: 'budget' once its wall time is spent, 'cpu' once the
 * invocation's CPU budget is, null to go on; it throws when the run lost its lease. The CPU
 * budget counts only once the run has done a page (`pages`), so that every call makes
 * progress even when other work on the isolate spent the CPU.
 */
export function stopCheck(
  options: Pick<SyncOptions, 'budgetMs' | 'cpu' | 'signal'>,
  pages: () => number,
): () => 'budget' | 'cpu' | null {
  const started = performance.now();
  return () => {
    options.signal?.throwIfAborted();
    if (performance.now() - started >= options.budgetMs) return 'budget';
    if (pages() > 0 && options.cpu?.exhausted()) return 'cpu';
    return null;
  };
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
  stopped: Stopped;
}

/** A run's result before its first page. */
export function emptyResult(table: string, direction: 'up' | 'down'): SyncResult {
  return {
    table,
    direction,
    inserted: 0,
    updated: 0,
    deleted: 0,
    conflicts: 0,
    batches: 0,
    stopped: 'done',
  };
}

/** A mirror transaction, retried with jittered backoff when CockroachDB asks (SQLSTATE 40001). */
export async function withRetry<T>(
  deps: MirrorDeps,
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

/** Pages written to the mirror at once: the mirror's work per page is most of a push. */
const WRITES_IN_FLIGHT = 2;

/**
 * Reads pages with `read` and hands each to `write`, reading the next page while earlier
 * ones are written (up to `writesInFlight` at once: their keys are disjoint). The checkpoint
 * each write returns runs in page order, so that a checkpoint never covers a page that is
 * not on the mirror yet. Stops after the last page, or when time is up (a page read ahead and
 * not written is dropped: reading has no effect); pages being written then are finished and
 * checkpointed. When anything fails (a page, a read, a lost lease), no checkpoint runs after
 * it: the pages being written are let finish, so that none holds a connection or writes
 * after the run has answered, and the error is thrown; the next run starts from the last
 * checkpoint.
 */
export async function pipeline<Cursor, Page extends { next: Cursor | null }>(
  read: (cursor: Cursor | null) => Promise<Page>,
  first: Cursor | null,
  write: (page: Page) => Promise<() => Promise<void>>,
  outOfTime: () => 'budget' | 'cpu' | null,
  writesInFlight = WRITES_IN_FLIGHT,
): Promise<Stopped> {
  const settle = <T>(p: Promise<T>) => (p.catch(() => {}), p);
  let ahead: Promise<Page> | null = settle(read(first));
  let checkpoints: Promise<void> = Promise.resolve();
  const writes: Array<Promise<unknown>> = [];
  const inFlight: Array<Promise<void>> = [];
  let failed = false;
  let stopped: Stopped = 'done';
  try {
    while (ahead) {
      const stop = outOfTime();
      if (stop) {
        stopped = stop;
        break;
      }
      const page: Page = await ahead;
      ahead = page.next === null ? null : settle(read(page.next));
      const written = settle(write(page));
      writes.push(written);
      checkpoints = settle(checkpoints.then(async () => {
        const checkpoint = await written;
        if (!failed) await checkpoint();
      }));
      inFlight.push(checkpoints);
      if (inFlight.length >= writesInFlight) await inFlight.shift();
    }
    await checkpoints;
    return stopped;
  } catch (err) {
    failed = true;
    await Promise.allSettled([...writes, checkpoints]);
    throw err;
  }
}

/** Rows per page: the requested size, within the parameter limit. */
export function pageSize(shape: TableShape, requested: number): number {
  return Math.max(1, Math.min(requested, Math.floor(PARAMETER_LIMIT / shape.columns.length)));
}

/** Tables a request may name at once (README, "Bad input"). */
export const MAX_TABLES_PER_REQUEST = 100;

/** A mirrored table's name, schema-qualified (cesar.sync_tables holds no other). */
export const mirroredTableName = z.string().regex(
  /^[a-z_][a-z0-9_]*\.[a-z_][a-z0-9_]*$/,
  'must be schema.table',
);

/**
 * The tables a sync, verify, restore or "sync now" request names: schema-qualified, at most
 * MAX_TABLES_PER_REQUEST, each once (a repeated name is run once).
 */
export const tableList = z.array(mirroredTableName).min(1).max(MAX_TABLES_PER_REQUEST)
  .transform((tables) => [...new Set(tables)]);

export const DEFAULT_LOOKBACK_SECONDS = 300;

/**
 * What a sync run is asked, with its defaults: one definition for a call of the sync function
 * (POST /sync), "Sync now" (POST /api/sync) and sync.table jobs, so that the same request
 * runs the same way on each path.
 */
export const syncRunFields = {
  direction: z.enum(['up', 'down', 'both']).default('up'),
  /**
   * Rows per page. 5,000: a push of 100,000 changed rows took 12.8 s in pages of 1,000 and
   * its function spent 17 ms of CPU per 1,000 rows (mostly per-statement work and garbage
   * collection), against 7 ms in pages of 10,000; pages of an 11-column table stop at 5,957
   * anyway (pageSize). A page is one mirror transaction, retried whole on 40001.
   */
  batch_size: z.number().int().min(1).max(10_000).default(5_000),
  /** How far before its watermark a pull looks again (late commits on the mirror). */
  lookback_seconds: z.number().int().min(0).max(86_400).default(DEFAULT_LOOKBACK_SECONDS),
};
