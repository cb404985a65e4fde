import type { Sql } from '../db.ts';
import {
  emptyResult,
  pageSize,
  stopCheck,
  type SyncDeps,
  type SyncOptions,
  type SyncResult,
} from './common.ts';
import {
  assignments,
  columnArrays,
  keyIndex,
  textColumns,
  type TextRow,
  unnestRows,
  updatedAtIndex,
} from './rows.ts';
import { describeTable, ident, preflight, qualified, type TableShape } from './schema.ts';

// Pull: mirror -> primary. The mirror has no triggers, so its changes are found by
// updated_at: rows from the watermark (minus a look-back window, for transactions that
// committed after a later one) whose version is not the one both sides last agreed on
// (public.cesar_sync_versions: what the push wrote or the pull already applied; rows of the
// push's bulk load have none, and are older than the load's start). Each page
// is applied on the primary in one statement that decides last-writer-wins in SQL, keeps
// every loser in cesar.sync_conflicts, and is marked with the origin 'mirror' so that it is
// not pushed back. Deletions arrive as the mirror's tombstones that no sync wrote.

export interface PullOptions extends SyncOptions {
  /** How far before the watermark each pull looks again, for late commits on the mirror. */
  lookbackSeconds: number;
}

type Action = 'insert' | 'update' | 'same' | 'keep' | 'delete' | 'absent';

interface Decided {
  action: Action;
  rows: number;
  conflicts: number;
}

/**
 * Writes from the mirror carry the origin marker (not pushed back, updated_at kept); `origin`
 * 'restore' also runs no workflows.
 */
export async function markOrigin(tx: Sql, origin: 'mirror' | 'restore'): Promise<void> {
  await tx`select set_config('cesar.origin', ${origin}, true)`;
}

/** The pull's watermark, and when the push's bulk load began (both in the mirror's clock). */
async function marks(primary: Sql, table: string) {
  const [row] = await primary<Array<{ watermark: string | null; bulk: string | null }>>`
    select (select watermark::text from cesar.sync_state
            where table_name = ${table} and direction = 'down') as watermark,
           (select bulk_loaded_from::text from cesar.sync_state
            where table_name = ${table} and direction = 'up') as bulk
  `;
  return { watermark: row!.watermark, bulkLoadedFrom: row!.bulk };
}

/**
 * A timestamp parameter sent as text: postgres.js would send a timestamptz parameter through
 * a JavaScript Date, and lose its microseconds (a keyset cursor would then repeat its row).
 */
const timestamp = (parameter: number) => `CAST(CAST($${parameter} AS TEXT) AS TIMESTAMPTZ)`;

/** The mirror's changed rows after the cursor, in (updated_at, key) order. */
async function changedPage(
  mirror: Sql,
  shape: TableShape,
  from: string | null,
  cursor: [string, string] | null,
  limit: number,
  /** Rows older than this without a version came from the push's bulk load. */
  bulkLoadedFrom: string | null,
): Promise<TextRow[]> {
  const key = ident(shape.key);
  const keyType = shape.columns[keyIndex(shape)]!.type;
  const params: unknown[] = [shape.table];
  const where = [
    bulkLoadedFrom === null
      ? '(v.updated_at IS NULL OR v.updated_at <> t.updated_at)'
      : `(v.updated_at <> t.updated_at OR (v.updated_at IS NULL AND t.updated_at >= ${
        timestamp(params.push(bulkLoadedFrom))
      }))`,
  ];
  if (from !== null) {
    params.push(from);
    where.push(`t.updated_at >= ${timestamp(params.length)}`);
  }
  if (cursor !== null) {
    params.push(...cursor);
    where.push(
      `(t.updated_at, t.${key}) > (${
        timestamp(params.length - 1)
      }, CAST($${params.length} AS ${keyType}))`,
    );
  }
  return await mirror.unsafe(
    `SELECT ${textColumns(shape, 't')} FROM ${qualified(shape.table)} AS t ` +
      'LEFT JOIN public.cesar_sync_versions AS v ' +
      `ON v.table_name = $1 AND v.row_key = CAST(t.${key} AS TEXT) ` +
      `WHERE ${where.join(' AND ')} ORDER BY t.updated_at, t.${key} LIMIT ${limit}`,
    params as never,
  ).values() as unknown as TextRow[];
}

/**
 * One statement on the primary: each incoming row is inserted, updated (the mirror's is
 * newer), left (the same, or the primary's is newer or was deleted later: the row is marked
 * dirty so the push puts the primary's version back on the mirror). A conflict is a row
 * both sides changed since they last agreed: the loser goes to cesar.sync_conflicts.
 */
function applyRowsStatement(shape: TableShape): string {
  const table = qualified(shape.table);
  const key = ident(shape.key);
  const names = shape.columns.map((c) => ident(c.name)).join(', ');
  return `
    with incoming as (${unnestRows(shape, 2)}),
    -- The primary's changes the mirror has not had yet.
    pending as (
      select u.row_key, u.op, u.occurred_at from cesar.unpushed_changes($1) u
      where u.row_key in (select i.${key}::text from incoming i)
    ),
    decided as (
      select i.${key}::text as row_key, to_jsonb(i.*) as theirs, i.updated_at as their_at,
             case when t.${key} is null then null else to_jsonb(t.*) end as ours,
             t.updated_at as our_at, p.op as pending_op,
             case
               when t.${key} is null and p.op = 'DELETE' and p.occurred_at >= i.updated_at then 'keep'
               when t.${key} is null then 'insert'
               when to_jsonb(t.*) = to_jsonb(i.*) then 'same'
               when i.updated_at > t.updated_at then 'update'
               else 'keep'
             end as action
      from incoming i
      left join ${table} t on t.${key} = i.${key}
      left join pending p on p.row_key = i.${key}::text
    ),
    judged as (
      select d.*, d.action = 'keep' or (d.action in ('insert', 'update') and d.pending_op is not null)
             as conflict
      from decided d
    ),
    written as (
      insert into ${table} (${names})
      select i.* from incoming i join judged j on j.row_key = i.${key}::text
      where j.action in ('insert', 'update')
      on conflict (${key}) do update set ${assignments(shape)}
      where ${table}.updated_at < excluded.updated_at
      returning 1
    ),
    lost as (
      insert into cesar.sync_conflicts
        (table_name, row_key, direction, winner, losing_version, winner_updated_at, loser_updated_at)
      select $1, j.row_key, 'down',
             case when j.action = 'keep' then 'primary' else 'mirror' end,
             case when j.action = 'keep' then j.theirs else j.ours end,
             case when j.action = 'keep' then j.our_at else j.their_at end,
             case when j.action = 'keep' then j.their_at else j.our_at end
      from judged j where j.conflict
      returning 1
    ),
    redirty as (
      insert into cesar.sync_outbox (table_name, row_key, op, change_id)
      select $1, j.row_key, 'UPDATE', 0 from judged j where j.action = 'keep' and j.ours is not null
      on conflict (table_name, row_key) do nothing
      returning 1
    )
    select action, count(*)::int as rows, count(*) filter (where conflict)::int as conflicts
    from judged group by action
  `;
}

/**
 * The mirror's deletions on the primary: a row is deleted unless the primary changed it after
 * the deletion (then it stays, and is pushed back); a row the primary had changed since the
 * last sync and that the deletion removes is a conflict too.
 */
function applyTombstonesStatement(shape: TableShape): string {
  const table = qualified(shape.table);
  const key = ident(shape.key);
  const keyType = shape.columns[keyIndex(shape)]!.type;
  return `
    with incoming as (
      select u.k::${keyType} as key, u.d::timestamptz as deleted_at
      from unnest($2::text[], $3::text[]) as u (k, d)
    ),
    judged as (
      select i.key::text as row_key, i.deleted_at,
             case when t.${key} is null then null else to_jsonb(t.*) end as ours, t.updated_at as our_at,
             case when t.${key} is null then 'absent'
                  when t.updated_at <= i.deleted_at then 'delete' else 'keep' end as action,
             t.${key} is not null and (t.updated_at > i.deleted_at or o.row_key is not null) as conflict
      from incoming i
      left join ${table} t on t.${key} = i.key
      left join cesar.unpushed_changes($1) o on o.row_key = i.key::text
    ),
    removed as (
      delete from ${table} t using judged j
      where j.action = 'delete' and t.${key} = j.row_key::${keyType} and t.updated_at <= j.deleted_at
      returning 1
    ),
    lost as (
      insert into cesar.sync_conflicts
        (table_name, row_key, direction, winner, losing_version, winner_updated_at, loser_updated_at)
      select $1, j.row_key, 'down',
             case when j.action = 'keep' then 'primary' else 'mirror' end,
             case when j.action = 'keep' then null else j.ours end,
             case when j.action = 'keep' then j.our_at else j.deleted_at end,
             case when j.action = 'keep' then j.deleted_at else j.our_at end
      from judged j where j.conflict
      returning 1
    ),
    redirty as (
      insert into cesar.sync_outbox (table_name, row_key, op, change_id)
      select $1, j.row_key, 'UPDATE', 0 from judged j where j.action = 'keep'
      on conflict (table_name, row_key) do nothing
      returning 1
    )
    select action, count(*)::int as rows, count(*) filter (where conflict)::int as conflicts
    from judged group by action
  `;
}

class DryRun extends Error {
  constructor(readonly decided: Decided[]) {
    super('dry run');
  }
}

/** Applies a page on the primary in one transaction (rolled back when dry). */
async function applyOnPrimary(
  primary: Sql,
  dryRun: boolean,
  work: (tx: Sql) => Promise<Decided[]>,
): Promise<Decided[]> {
  try {
    return await primary.begin(async (tx) => {
      await markOrigin(tx as unknown as Sql, 'mirror');
      const decided = await work(tx as unknown as Sql);
      if (dryRun) throw new DryRun(decided);
      return decided;
    });
  } catch (err) {
    if (err instanceof DryRun) return err.decided;
    throw err;
  }
}

function tally(result: SyncResult, decided: Decided[]) {
  for (const d of decided) {
    if (d.action === 'insert') result.inserted += d.rows;
    if (d.action === 'update') result.updated += d.rows;
    if (d.action === 'delete') result.deleted += d.rows;
    result.conflicts += d.conflicts;
  }
}

export async function pullTable(
  deps: SyncDeps,
  table: string,
  options: PullOptions,
): Promise<SyncResult> {
  const result = emptyResult(table, 'down');
  const outOfTime = stopCheck(options, () => result.batches);
  const shape = await describeTable(deps.primary, table);
  if (updatedAtIndex(shape) < 0) {
    throw new Error(`${table} has no updated_at column: the pull needs it for last-writer-wins`);
  }
  await preflight(deps.mirror, shape);
  const size = pageSize(shape, options.batchSize);
  const key = keyIndex(shape);
  const updatedAt = updatedAtIndex(shape);
  const { watermark: mark, bulkLoadedFrom } = await marks(deps.primary, table);
  // The watermark never passes the mirror's clock at the start: a row written with a future
  // updated_at (a skewed clock) must not make the next pull skip the rows written until then.
  const [clock] = await deps.mirror.unsafe<Array<{ now: string }>>(
    'SELECT CAST(now() AS TEXT) AS now',
  );
  const from = mark === null
    ? null
    : new Date(new Date(mark).getTime() - options.lookbackSeconds * 1000).toISOString();
  let cursor: [string, string] | null = null;
  for (;;) {
    const stop = outOfTime();
    if (stop) {
      result.stopped = stop;
      return result;
    }
    const rows = await changedPage(deps.mirror, shape, from, cursor, size, bulkLoadedFrom);
    if (rows.length === 0) break;
    const last = rows.at(-1)!;
    cursor = [last[updatedAt]!, last[key]!];
    const decided = await applyOnPrimary(deps.primary, options.dryRun, async (tx) => {
      const counts = await tx.unsafe<Decided[]>(
        applyRowsStatement(shape),
        [table, ...columnArrays(shape, rows)] as never,
      );
      await tx`
        update cesar.sync_state
        set watermark = greatest(watermark,
                                 least(${last[updatedAt]!}::text::timestamptz, ${
        clock!.now
      }::text::timestamptz))
        where table_name = ${table} and direction = 'down'
      `;
      return counts;
    });
    tally(result, decided);
    if (!options.dryRun) {
      // Both sides now agree on these versions (or the push will put the primary's back).
      await deps.mirror.unsafe(
        'INSERT INTO public.cesar_sync_versions (table_name, row_key, updated_at) ' +
          'SELECT $1, k, CAST(u AS TIMESTAMPTZ) FROM unnest(CAST($2 AS TEXT[]), CAST($3 AS TEXT[])) AS x (k, u) ' +
          'ON CONFLICT (table_name, row_key) DO UPDATE SET updated_at = excluded.updated_at',
        [table, rows.map((r) => r[key]!), rows.map((r) => r[updatedAt]!)],
      );
    }
    result.batches++;
  }
  let after: [string, string] | null = null;
  for (;;) {
    const stop = outOfTime();
    if (stop) {
      result.stopped = stop;
      return result;
    }
    const tombstones: Array<{ row_key: string; deleted_at: string }> = await deps.mirror.unsafe(
      'SELECT row_key, CAST(deleted_at AS TEXT) AS deleted_at FROM public.cesar_sync_tombstones ' +
        'WHERE table_name = $1 AND origin IS NULL' +
        (after ? ` AND (deleted_at, row_key) > (${timestamp(2)}, $3)` : '') +
        ` ORDER BY deleted_at, row_key LIMIT ${size}`,
      (after ? [table, ...after] : [table]) as never,
    );
    if (tombstones.length === 0) break;
    after = [tombstones.at(-1)!.deleted_at, tombstones.at(-1)!.row_key];
    const keys = tombstones.map((t) => t.row_key);
    const decided = await applyOnPrimary(
      deps.primary,
      options.dryRun,
      async (tx) =>
        await tx.unsafe<Decided[]>(
          applyTombstonesStatement(shape),
          [table, keys, tombstones.map((t) => t.deleted_at)],
        ),
    );
    tally(result, decided);
    if (!options.dryRun) {
      await deps.mirror.unsafe(
        "UPDATE public.cesar_sync_tombstones SET origin = 'pulled' " +
          'WHERE table_name = $1 AND row_key = ANY (CAST($2 AS TEXT[])) AND origin IS NULL',
        [table, keys],
      );
    }
    result.batches++;
  }
  return result;
}
