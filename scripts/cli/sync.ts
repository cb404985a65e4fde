import type { VerifyResult } from '../../packages/shared/src/mirror/index.ts';
import { type Parsed, single, UsageError } from './args.ts';
import { type Client, EXIT } from './client.ts';
import { columns } from './format.ts';
import { Progress } from './progress.ts';

// `cesar sync`, `cesar verify`, `cesar restore`: the sync function, one table at a time (so
// the progress bar moves), each call time-boxed by the function and continued until done.

export interface CommandResult {
  json: unknown;
  human: string;
  exitCode: number;
}

interface Outcome {
  table: string;
  direction: string;
  status: 'completed' | 'in_progress' | 'failed' | 'busy';
  inserted?: number;
  updated?: number;
  deleted?: number;
  conflicts?: number;
  error?: string;
}

const BUSY_RETRIES = 30;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function tablesOf(client: Client, parsed: Parsed): Promise<string[]> {
  const named = parsed.options.get('table');
  if (named) return named;
  const status = await client.call<{ tables: Array<{ table_name: string }> }>('sync', '/status');
  return [...new Set(status.tables.map((t) => t.table_name))];
}

/** Calls until the table is done: the function answers in_progress when its budget ran out. */
async function untilDone<T extends { status: string }>(
  call: () => Promise<T[]>,
  once: boolean,
  merge: (into: T | undefined, next: T) => T,
): Promise<T[]> {
  const merged = new Map<number, T>();
  for (let busy = 0;;) {
    const outcomes = await call();
    outcomes.forEach((o, i) => merged.set(i, merge(merged.get(i), o)));
    if (outcomes.some((o) => o.status === 'busy') && busy++ < BUSY_RETRIES) {
      await sleep(1000);
      continue;
    }
    if (once || !outcomes.some((o) => o.status === 'in_progress')) return [...merged.values()];
  }
}

const add = (a = 0, b = 0) => a + b;

export async function syncCommand(client: Client, parsed: Parsed): Promise<CommandResult> {
  const direction = single(parsed, 'direction') ?? 'up';
  if (!['up', 'down', 'both'].includes(direction)) {
    throw new UsageError(`--direction must be up, down or both, not ${direction}`);
  }
  const dryRun = parsed.flags.has('dry-run');
  const tables = await tablesOf(client, parsed);
  const progress = new Progress(tables.length);
  const results: Outcome[] = [];
  for (const [i, table] of tables.entries()) {
    progress.update(i, `${table} ${direction}`);
    results.push(
      ...await untilDone(
        async () =>
          (await client.call<{ tables: Outcome[] }>('sync', '', {
            tables: [table],
            direction,
            dry_run: dryRun,
          })).tables,
        // A dry run keeps no checkpoint: calling again would count the same rows again.
        dryRun,
        (into, next) => ({
          ...next,
          inserted: add(into?.inserted, next.inserted),
          updated: add(into?.updated, next.updated),
          deleted: add(into?.deleted, next.deleted),
          conflicts: add(into?.conflicts, next.conflicts),
        }),
      ),
    );
  }
  progress.update(tables.length, 'done');
  progress.end();
  const ok = results.every((r) => r.status === 'completed');
  const human = [
    dryRun ? 'Dry run: nothing was written.' : null,
    columns([
      ['table', 'direction', 'status', 'inserted', 'updated', 'deleted', 'conflicts'],
      ...results.map((r) => [
        r.table,
        r.direction,
        r.status,
        r.inserted ?? 0,
        r.updated ?? 0,
        r.deleted ?? 0,
        r.conflicts ?? 0,
      ]),
    ]),
    ...results.filter((r) => r.error).map((r) => `${r.table} ${r.direction}: ${r.error}`),
  ].filter((line) => line !== null).join('\n');
  return {
    json: { ok, direction, dry_run: dryRun, tables: results },
    human,
    exitCode: ok ? EXIT.ok : EXIT.failed,
  };
}

/** POST /sync/verify answers one of these per table. */
type Verified = VerifyResult;

export async function verifyCommand(client: Client, parsed: Parsed): Promise<CommandResult> {
  const tables = await tablesOf(client, parsed);
  const progress = new Progress(tables.length);
  const results: Verified[] = [];
  for (const [i, table] of tables.entries()) {
    progress.update(i, table);
    results.push(
      ...(await client.call<{ tables: Verified[] }>('sync', '/verify', { tables: [table] })).tables,
    );
  }
  progress.update(tables.length, 'done');
  progress.end();
  const equal = results.every((r) => r.equal);
  const human = [
    columns([
      ['table', 'equal', 'primary rows', 'mirror rows', 'missing', 'extra', 'changed'],
      ...results.map((r) => [
        r.table,
        r.equal ? 'yes' : 'NO',
        r.rows_primary,
        r.rows_mirror,
        r.missing.length,
        r.extra.length,
        r.changed.length,
      ]),
    ]),
    ...results.filter((r) => !r.equal).flatMap((r) => [
      ...r.missing.map((k) => `${r.table} ${k}: on the primary, not on the mirror`),
      ...r.extra.map((k) => `${r.table} ${k}: on the mirror, not on the primary`),
      ...r.changed.map((k) => `${r.table} ${k}: different`),
    ]),
  ].join('\n');
  return { json: { equal, tables: results }, human, exitCode: equal ? EXIT.ok : EXIT.failed };
}

interface Restored {
  table: string;
  status: 'completed' | 'in_progress' | 'failed' | 'busy';
  inserted?: number;
  updated?: number;
  deleted?: number;
  kept?: number;
  error?: string;
}

export async function restoreCommand(client: Client, parsed: Parsed): Promise<CommandResult> {
  const tables = await tablesOf(client, parsed);
  const progress = new Progress(tables.length);
  const results: Restored[] = [];
  for (const [i, table] of tables.entries()) {
    progress.update(i, table);
    results.push(
      ...await untilDone(
        async () =>
          (await client.call<{ tables: Restored[] }>('sync', '/restore', { tables: [table] }))
            .tables,
        false,
        (into, next) => ({
          ...next,
          inserted: add(into?.inserted, next.inserted),
          updated: add(into?.updated, next.updated),
          deleted: add(into?.deleted, next.deleted),
          kept: add(into?.kept, next.kept),
        }),
      ),
    );
  }
  progress.update(tables.length, 'done');
  progress.end();
  const ok = results.every((r) => r.status === 'completed');
  const human = [
    columns([
      ['table', 'status', 'inserted', 'updated', 'deleted', 'kept (unpushed)'],
      ...results.map((r) => [
        r.table,
        r.status,
        r.inserted ?? 0,
        r.updated ?? 0,
        r.deleted ?? 0,
        r.kept ?? 0,
      ]),
    ]),
    ...results.filter((r) => r.error).map((r) => `${r.table}: ${r.error}`),
  ].join('\n');
  return { json: { ok, tables: results }, human, exitCode: ok ? EXIT.ok : EXIT.failed };
}
