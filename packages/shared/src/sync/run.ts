import type { Sql } from '../db.ts';
import { type PushDeps, type PushResult, pushTable } from './push.ts';

// A sync run: per table, take the (table, direction) lease so two runs never overlap, push,
// and record the outcome in cesar.sync_state. A mirror that is down fails the run cleanly,
// with the error recorded; the primary keeps working and the outbox keeps the work.

export interface SyncRequest {
  tables: string[] | null;
  dryRun: boolean;
  batchSize: number;
  budgetMs: number;
}

export type TableOutcome =
  | (PushResult & { status: 'completed' | 'in_progress' })
  | { table: string; status: 'failed'; error: string }
  | { table: string; status: 'busy' };

const LEASE_SECONDS = 300;

export async function declaredTables(primary: Sql): Promise<string[]> {
  const rows = await primary<Array<{ table_name: string }>>`
    select table_name from cesar.sync_tables where enabled order by table_name
  `;
  return rows.map((r) => r.table_name);
}

async function takeLease(primary: Sql, table: string, holder: string): Promise<boolean> {
  const rows = await primary`
    insert into cesar.sync_state as s (table_name, direction, status, lease_holder, lease_until)
    values (${table}, 'up', 'in_progress', ${holder}, now() + make_interval(secs => ${LEASE_SECONDS}))
    on conflict (table_name, direction) do update
      set lease_holder = excluded.lease_holder, lease_until = excluded.lease_until,
          status = 'in_progress', updated_at = now()
      where s.lease_until < now() or s.lease_holder = excluded.lease_holder
    returning 1
  `;
  return rows.length === 1;
}

async function finish(
  primary: Sql,
  table: string,
  holder: string,
  outcome: TableOutcome,
  dryRun: boolean,
) {
  const done = outcome.status === 'completed';
  const pushed = 'inserted' in outcome ? outcome.inserted + outcome.updated + outcome.deleted : 0;
  const conflicts = 'conflicts' in outcome ? outcome.conflicts : 0;
  await primary`
    update cesar.sync_state
    set status = ${dryRun ? 'completed' : outcome.status},
        last_sync_at = case when ${done && !dryRun} then now() else last_sync_at end,
        records_synced = records_synced + ${dryRun ? 0 : pushed},
        conflicts = conflicts + ${dryRun ? 0 : conflicts},
        error_message = ${outcome.status === 'failed' ? outcome.error : null},
        lease_holder = null, lease_until = '-infinity', updated_at = now()
    where table_name = ${table} and direction = 'up' and lease_holder = ${holder}
  `;
}

export async function runPush(deps: PushDeps, request: SyncRequest): Promise<TableOutcome[]> {
  const started = performance.now();
  const holder = `sync:${crypto.randomUUID()}`;
  const tables = request.tables ?? (await declaredTables(deps.primary));
  const outcomes: TableOutcome[] = [];
  for (const table of tables) {
    if (!(await takeLease(deps.primary, table, holder))) {
      outcomes.push({ table, status: 'busy' });
      continue;
    }
    let outcome: TableOutcome;
    try {
      const remaining = Math.max(0, request.budgetMs - (performance.now() - started));
      const pushed = await pushTable(deps, table, {
        batchSize: request.batchSize,
        dryRun: request.dryRun,
        budgetMs: remaining,
      });
      outcome = { ...pushed, status: pushed.stopped === 'done' ? 'completed' : 'in_progress' };
    } catch (err) {
      const e = err as { code?: string; message?: string };
      outcome = {
        table,
        status: 'failed',
        error: e.code ? `${e.code}: ${e.message}` : String(e.message ?? err),
      };
    }
    await finish(deps.primary, table, holder, outcome, request.dryRun);
    outcomes.push(outcome);
  }
  return outcomes;
}

/** Every mirrored table and direction, live (cesar.sync_lag). */
export async function syncStatus(primary: Sql) {
  return await primary`select * from cesar.sync_lag order by table_name, direction`;
}
