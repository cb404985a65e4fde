import type { CpuBudget } from '../cpu.ts';
import type { Sql } from '../db.ts';
import { pullTable } from './pull.ts';
import {
  DEFAULT_LOOKBACK_SECONDS,
  emptyResult,
  type Lease,
  type MirrorDeps,
  type Stopped,
  type SyncResult,
} from './common.ts';
import { expandWaitingCaptures, pushTable } from './push.ts';
import { logIngestion } from '../ingestion-log.ts';
import { type RestoreResult, restoreTable } from './restore.ts';

// A sync run: per table and direction, take the (table, direction) lease so two runs never
// overlap, run, and record the outcome in cesar.sync_state. `both` pulls first, then pushes:
// the pull settles conflicts by last-writer-wins, the push then sends the primary's winners.
// A mirror that is down fails the run cleanly, with the error recorded; the primary keeps
// working, and the outbox and the watermark keep the work for the next run.

export type Direction = 'up' | 'down' | 'both';

export interface SyncRequest {
  tables: string[] | null;
  direction: Direction;
  dryRun: boolean;
  batchSize: number;
  budgetMs: number;
  /** How far before its watermark a pull looks again (late commits on the mirror). */
  lookbackSeconds?: number;
  /**
   * The invocation's CPU budget: a run stops at its next page once it is spent, and tables
   * not started yet are left for the next call (in_progress, stopped 'cpu'). Absent: no limit.
   */
  cpu?: CpuBudget;
  /**
   * The caller's stop (a sync.table job's signal, aborted when the job is cancelled): the
   * table being run stops at its next page, keeping its checkpoint, and is recorded failed
   * with the reason; the tables after it are not started (runSync throws the reason).
   */
  signal?: AbortSignal;
  /**
   * Progress after each page and each (table, direction): the share of the run's tables and
   * directions done, and what the current one has moved ("public.agents up: 5,000 rows").
   */
  onProgress?: (fraction: number, message: string) => void;
}

type Failed = { table: string; status: 'failed'; error: string };
type Busy = { table: string; status: 'busy' };

export type TableOutcome =
  | (SyncResult & { status: 'completed' | 'in_progress' })
  | (Failed & { direction: 'up' | 'down' })
  | (Busy & { direction: 'up' | 'down' });

export type RestoreOutcome =
  | (RestoreResult & { status: 'completed' | 'in_progress' })
  | Failed
  | Busy;

// A run holds its lease for 30 s and renews it every 10 s while it works, so a run whose
// process died (a mirror crash, a killed instance) blocks its table for at most 30 s, not for
// a long fixed lease. The heartbeat stops at the run's budget plus HEARTBEAT_GRACE_MS: a run
// stuck past that loses its lease like a dead one.
export const LEASE: Lease = { seconds: 30, heartbeatMs: 10_000 };
const HEARTBEAT_GRACE_MS = 60_000;

export async function declaredTables(primary: Sql): Promise<string[]> {
  const rows = await primary<Array<{ table_name: string }>>`
    select table_name from cesar.sync_tables where enabled order by table_name
  `;
  return rows.map((r) => r.table_name);
}

type Lane = 'up' | 'down' | 'restore';

/**
 * Takes the (table, lane) lease if it is free or expired. Taking over from a run that died
 * says so in error_message until this run records its own outcome.
 */
async function takeLease(
  primary: Sql,
  table: string,
  lane: Lane,
  holder: string,
  lease: Lease,
) {
  const rows = await primary`
    insert into cesar.sync_state as s (table_name, direction, status, lease_holder, lease_until)
    values (${table}, ${lane}, 'in_progress', ${holder}, now() + make_interval(secs => ${lease.seconds}))
    on conflict (table_name, direction) do update
      set lease_holder = excluded.lease_holder, lease_until = excluded.lease_until,
          status = 'in_progress', updated_at = now(),
          error_message = case when s.status = 'in_progress' and s.lease_holder is not null
            then 'run ' || s.lease_holder || ' stopped without recording an outcome (lease expired '
                 || s.lease_until || '); taken over by ' || excluded.lease_holder
            else s.error_message end
      where s.lease_until < now() or s.lease_holder = excluded.lease_holder
    returning 1
  `;
  return rows.length === 1;
}

/**
 * Renews the lease every heartbeatMs until stopped or until `untilMs` (performance.now()).
 * A run that no longer holds its lease (taken over after a stall, or not renewed before it ran
 * out) is aborted through `lost`: it stops at its next page rather than work on beside the
 * run that took over.
 */
function heartbeat(
  primary: Sql,
  table: string,
  lane: Lane,
  holder: string,
  lease: Lease,
  untilMs: number,
) {
  const lost = new AbortController();
  let heldUntil = performance.now() + lease.seconds * 1000;
  const timer = setInterval(async () => {
    if (performance.now() > untilMs) {
      clearInterval(timer);
      return lost.abort(new Error(`ran a minute past its budget on ${table} (${lane})`));
    }
    try {
      const renewed = await primary`
        update cesar.sync_state set lease_until = now() + make_interval(secs => ${lease.seconds})
        where table_name = ${table} and direction = ${lane} and lease_holder = ${holder}
        returning 1
      `;
      if (renewed.length === 1) heldUntil = performance.now() + lease.seconds * 1000;
      else lost.abort(new Error(`lost its lease on ${table} (${lane}): another run took over`));
    } catch (err) {
      console.error(`sync ${table} (${lane}): lease not renewed: ${describeError(err)}`);
      if (performance.now() > heldUntil) {
        lost.abort(new Error(`lost its lease on ${table} (${lane}): not renewed in time`));
      }
    }
  }, lease.heartbeatMs);
  return { signal: lost.signal, stop: () => clearInterval(timer) };
}

interface Finished {
  status: 'completed' | 'in_progress' | 'failed';
  moved: number;
  conflicts: number;
  error: string | null;
}

async function releaseLease(
  primary: Sql,
  table: string,
  lane: Lane,
  holder: string,
  done: Finished,
) {
  await primary`
    update cesar.sync_state
    set status = ${done.status},
        last_sync_at = case when ${done.status === 'completed'} then now() else last_sync_at end,
        records_synced = records_synced + ${done.moved},
        conflicts = conflicts + ${done.conflicts},
        error_message = ${done.error},
        lease_holder = null, lease_until = '-infinity', updated_at = now()
    where table_name = ${table} and direction = ${lane} and lease_holder = ${holder}
  `;
}

function describeError(err: unknown): string {
  const e = err as { code?: string; message?: string };
  return e.code ? `${e.code}: ${e.message}` : String(e.message ?? err);
}

/** Runs `work` under the (table, lane) lease and records how it ended. */
async function leased<T extends { stopped: Stopped }>(
  deps: MirrorDeps,
  table: string,
  lane: Lane,
  run: {
    work: (signal: AbortSignal) => Promise<T>;
    /** The caller's stop, besides a lost lease. */
    signal?: AbortSignal;
    tally: (result: T) => { moved: number; conflicts: number };
    dryRun: boolean;
    budgetMs: number;
  },
): Promise<(T & { status: 'completed' | 'in_progress' }) | Failed | Busy> {
  const { primary, lease = LEASE } = deps;
  const { work, tally, dryRun } = run;
  const holder = `sync:${crypto.randomUUID()}`;
  if (!(await takeLease(primary, table, lane, holder, lease))) return { table, status: 'busy' };
  const beat = heartbeat(
    primary,
    table,
    lane,
    holder,
    lease,
    performance.now() + run.budgetMs + HEARTBEAT_GRACE_MS,
  );
  try {
    const result = await work(
      run.signal ? AbortSignal.any([beat.signal, run.signal]) : beat.signal,
    );
    // Finished, but perhaps after another run took over: that run's outcome stands.
    beat.signal.throwIfAborted();
    const status = result.stopped === 'done' ? 'completed' : 'in_progress';
    // A dry run moved nothing: the state shows the last real run.
    const counts = dryRun ? { moved: 0, conflicts: 0 } : tally(result);
    await releaseLease(primary, table, lane, holder, {
      status: dryRun ? 'completed' : status,
      ...counts,
      error: null,
    });
    return { ...result, status };
  } catch (err) {
    const error = describeError(err);
    await releaseLease(primary, table, lane, holder, {
      status: 'failed',
      moved: 0,
      conflicts: 0,
      error,
    });
    return { table, status: 'failed', error };
  } finally {
    beat.stop();
  }
}

export async function runSync(deps: MirrorDeps, request: SyncRequest): Promise<TableOutcome[]> {
  const started = performance.now();
  const tables = request.tables ?? (await declaredTables(deps.primary));
  const directions: Array<'up' | 'down'> = request.direction === 'both'
    ? ['down', 'up']
    : [request.direction];
  const outcomes: TableOutcome[] = [];
  // Before its first push a run expands what is captured, once for all its tables, in at most
  // half its time (another table's backlog must not leave no time to push). A failure is the
  // failure of each push that waits for it.
  let expansion: Promise<void> | null = null;
  const expandWaiting = () =>
    expansion ??= expandWaitingCaptures(deps.primary, started + request.budgetMs / 2);
  const units = tables.length * directions.length;
  const report = (what: string, rows: number) =>
    request.onProgress?.(outcomes.length / units, `${what}: ${rows.toLocaleString('en-US')} rows`);
  for (const table of tables) {
    for (const direction of directions) {
      request.signal?.throwIfAborted();
      // CPU spent: what is not started waits for the next call, untouched (no lease taken).
      if (outcomes.length > 0 && request.cpu?.exhausted()) {
        outcomes.push({
          ...emptyResult(table, direction),
          stopped: 'cpu',
          status: 'in_progress',
        });
        continue;
      }
      const options = {
        cpu: request.cpu,
        batchSize: request.batchSize,
        dryRun: request.dryRun,
        budgetMs: Math.max(0, request.budgetMs - (performance.now() - started)),
        lookbackSeconds: request.lookbackSeconds ?? DEFAULT_LOOKBACK_SECONDS,
        onPage: (totals: SyncResult) =>
          report(`${table} ${direction}`, totals.inserted + totals.updated + totals.deleted),
      };
      const outcome = await leased(deps, table, direction, {
        work: (signal) =>
          direction === 'up'
            ? pushTable(deps, table, { ...options, signal, expandWaiting })
            : pullTable(deps, table, { ...options, signal }),
        tally: (r) => ({ moved: r.inserted + r.updated + r.deleted, conflicts: r.conflicts }),
        dryRun: request.dryRun,
        budgetMs: options.budgetMs,
        signal: request.signal,
      });
      outcomes.push('direction' in outcome ? outcome : { ...outcome, direction });
      const moved = 'inserted' in outcome
        ? outcome.inserted + outcome.updated + outcome.deleted
        : 0;
      report(`${table} ${direction} ${outcome.status}`, moved);
      // Pulls ingest data: each one that applied something, or failed, is in
      // public.ingestion_log (a pull that found nothing is not news).
      if (direction === 'down' && !request.dryRun && (outcome.status === 'failed' || moved > 0)) {
        await logIngestion(deps.primary, {
          source: 'sync_pull',
          status: outcome.status === 'failed' ? 'error' : 'ok',
          records: moved,
          error: 'error' in outcome ? outcome.error : null,
          details: { table, conflicts: 'conflicts' in outcome ? outcome.conflicts : 0 },
        });
      }
    }
  }
  return outcomes;
}

export async function runRestore(
  deps: MirrorDeps,
  request: { tables: string[] | null; batchSize: number; budgetMs: number; cpu?: CpuBudget },
): Promise<RestoreOutcome[]> {
  const started = performance.now();
  const tables = request.tables ?? (await declaredTables(deps.primary));
  const outcomes: RestoreOutcome[] = [];
  for (const table of tables) {
    // CPU spent: tables not started wait for the next call (the CLI calls until done).
    if (outcomes.length > 0 && request.cpu?.exhausted()) {
      outcomes.push({
        table,
        ...{ inserted: 0, updated: 0, deleted: 0, kept: 0, batches: 0, snapshot: null },
        stopped: 'cpu',
        status: 'in_progress',
      });
      continue;
    }
    const budgetMs = Math.max(0, request.budgetMs - (performance.now() - started));
    outcomes.push(
      await leased(deps, table, 'restore', {
        work: (signal) =>
          restoreTable(deps, table, {
            batchSize: request.batchSize,
            budgetMs,
            cpu: request.cpu,
            signal,
          }),
        tally: (r) => ({ moved: r.inserted + r.updated + r.deleted, conflicts: 0 }),
        dryRun: false,
        budgetMs,
      }),
    );
  }
  return outcomes;
}

/** Every mirrored table and direction, live (cesar.sync_lag). */
export async function syncStatus(primary: Sql) {
  return await primary`select * from cesar.sync_lag order by table_name, direction`;
}
