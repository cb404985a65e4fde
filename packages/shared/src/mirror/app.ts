import { z } from 'zod';
import { type CpuBudget, cpuBudget, cpuBudgetMsField, lowerCpuBudget } from '../cpu.ts';
import type { Sql } from '../db.ts';
import { ApiError, functionApp, type FunctionAppConfig, readJsonBody } from '../http/index.ts';
import { CPU_BUDGET_MS } from '../limits.ts';
import { syncRunFields, tableList } from './common.ts';
import { declaredTables, runRestore, runSync, syncStatus } from './run.ts';
import { verifyTable } from './verify.ts';

export const syncRequest = z.object({
  tables: tableList.optional(),
  ...syncRunFields,
  dry_run: z.boolean().default(false),
  budget_ms: z.number().int().min(100).max(120_000).default(25_000),
  cpu_budget_ms: cpuBudgetMsField,
}).strict();

const verifyRequest = z.object({
  tables: tableList.optional(),
  cpu_budget_ms: cpuBudgetMsField,
}).strict();

const restoreRequest = z.object({
  tables: tableList.optional(),
  batch_size: z.number().int().min(1).max(10_000).default(1_000),
  budget_ms: z.number().int().min(100).max(120_000).default(25_000),
  cpu_budget_ms: cpuBudgetMsField,
}).strict();

/**
 * Each call bounds its CPU time (hosted stops a request at 2 s): runs stop at a checkpoint
 * and answer in_progress, tables not reached are listed for the next call. The CLI calls
 * until done; scheduled syncs run as sync.table jobs, which enqueue their own continuation.
 */
const invocationCpu = (clock?: () => number): CpuBudget => cpuBudget(CPU_BUDGET_MS, clock);

export interface SyncAppDeps {
  sql: Sql;
  mirror: Sql | null;
  config: FunctionAppConfig;
  random?: () => number;
  /** The CPU clock in ms (the process's CPU time by default; tests give their own). */
  cpuClock?: () => number;
}

/**
 * The `sync` function: POST /sync runs a sync (up: primary -> mirror, down: mirror ->
 * primary, both), POST /sync/verify compares the two, POST /sync/restore rebuilds the
 * primary's tables from the mirror, GET /sync/status reports.
 */
export function createSyncApp(deps: SyncAppDeps) {
  const app = functionApp('sync', deps);

  /** The tables a request names (all mirrored ones when none), or 422 naming the strangers. */
  const mirroredTables = async (tables: string[] | undefined) => {
    const declared = await declaredTables(deps.sql);
    const unknown = (tables ?? []).filter((t) => !declared.includes(t));
    if (unknown.length > 0) {
      throw new ApiError(
        422,
        `not mirrored: ${unknown.join(', ')}; mirrored: ${declared.join(', ')}`,
      );
    }
    if (!deps.mirror) throw new ApiError(503, 'no mirror configured: set COCKROACH_DB_URL');
    return { tables: tables ?? declared, mirror: deps.mirror };
  };
  const syncDeps = (mirror: Sql) => ({
    primary: deps.sql,
    mirror,
    random: deps.random ?? Math.random,
  });

  app.post('/', async (c) => {
    const cpu = invocationCpu(deps.cpuClock);
    const body = await readJsonBody(c, syncRequest);
    const { tables, mirror } = await mirroredTables(body.tables);
    const outcomes = await runSync(syncDeps(mirror), {
      tables,
      direction: body.direction,
      dryRun: body.dry_run,
      batchSize: body.batch_size,
      budgetMs: body.budget_ms,
      lookbackSeconds: body.lookback_seconds,
      cpu: lowerCpuBudget(cpu, body.cpu_budget_ms),
    });
    return c.json({
      direction: body.direction,
      dry_run: body.dry_run,
      tables: outcomes,
      cpu_ms: Math.round(cpu.spentMs()),
    });
  });

  app.get('/status', async (c) => c.json({ tables: await syncStatus(deps.sql) }));

  // Verified a table at a time; past the CPU budget the tables left are listed in
  // `remaining` for the next call, and `equal` is only true once every table was compared.
  app.post('/verify', async (c) => {
    const invocation = invocationCpu(deps.cpuClock);
    const body = await readJsonBody(c, verifyRequest);
    const cpu = lowerCpuBudget(invocation, body.cpu_budget_ms);
    const { tables, mirror } = await mirroredTables(body.tables);
    const results = [];
    const remaining: string[] = [];
    for (const table of tables) {
      if (results.length > 0 && cpu.exhausted()) remaining.push(table);
      else results.push(await verifyTable(deps.sql, mirror, table));
    }
    return c.json({
      equal: remaining.length === 0 && results.every((t) => t.equal),
      tables: results,
      remaining,
      cpu_ms: Math.round(invocation.spentMs()),
    });
  });

  app.post('/restore', async (c) => {
    const cpu = invocationCpu(deps.cpuClock);
    const body = await readJsonBody(c, restoreRequest);
    const { tables, mirror } = await mirroredTables(body.tables);
    const outcomes = await runRestore(syncDeps(mirror), {
      tables,
      batchSize: body.batch_size,
      budgetMs: body.budget_ms,
      cpu: lowerCpuBudget(cpu, body.cpu_budget_ms),
    });
    return c.json({ tables: outcomes, cpu_ms: Math.round(cpu.spentMs()) });
  });

  return app;
}
