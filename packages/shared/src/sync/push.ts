import type { Sql } from '../db.ts';
import { describeTable, ident, preflight, qualified, type TableShape } from './schema.ts';

// Push: primary -> mirror. Dirty rows come from cesar.sync_outbox (see its migration for why
// that cannot skip a late commit), a keyset page at a time. Each page is read from the
// primary as text and written to the mirror in one transaction: a guarded multi-row upsert
// and the deletions with their tombstones, retried on SQLSTATE 40001. Then the page's outbox
// entries are cleared, each only if no newer change arrived meanwhile: that is the
// checkpoint, so a run cut off anywhere resumes exactly where it stopped.

/** PostgreSQL's and CockroachDB's limit on bind parameters in one statement. */
const PARAMETER_LIMIT = 65_534;

export interface PushDeps {
  primary: Sql;
  mirror: Sql;
  random: () => number;
  sleep?: (ms: number) => Promise<void>;
}

export interface PushOptions {
  batchSize: number;
  dryRun: boolean;
  budgetMs: number;
}

export interface PushResult {
  table: string;
  inserted: number;
  updated: number;
  deleted: number;
  /** Mirror rows newer than the primary's (left as they are). */
  conflicts: number;
  batches: number;
  stopped: 'done' | 'budget';
}

interface OutboxEntry {
  row_key: string;
  event_id: string;
}

async function hasBeenPushed(primary: Sql, table: string): Promise<boolean> {
  const [row] = await primary<Array<{ done: boolean }>>`
    select exists (select from cesar.sync_state
                   where table_name = ${table} and direction = 'up' and last_sync_at is not null) as done
  `;
  return row!.done;
}

async function outboxPage(primary: Sql, table: string, after: [string, string], limit: number) {
  return await primary<OutboxEntry[]>`
    select o.row_key, o.event_id::text as event_id from cesar.sync_outbox o
    where o.table_name = ${table} and (o.event_id, o.row_key) > (${after[0]}::bigint, ${after[1]})
    -- Qualified: the output column event_id is text, and must not be what sorts.
    order by o.event_id, o.row_key
    limit ${limit}
  `;
}

/** Keys travel as text and are compared in the key's own type, so the key's index is used. */
function keyArray(shape: TableShape, parameter: number): string {
  const type = shape.columns.find((c) => c.name === shape.key)!.type;
  return `$${parameter}::TEXT[]::${type}[]`;
}

/** The current rows for some keys, every column as text (the form both databases read). */
async function primaryRows(primary: Sql, shape: TableShape, keys: string[]): Promise<string[][]> {
  const columns = shape.columns.map((c) => `${ident(c.name)}::text`).join(', ');
  return await primary.unsafe(
    `select ${columns} from ${qualified(shape.table)} where ${ident(shape.key)} = any(${
      keyArray(shape, 1)
    })`,
    [keys],
  ).values() as unknown as string[][];
}

interface MirrorRow {
  key: string;
  updated_at: string | null;
}

async function mirrorRows(
  mirror: Sql,
  shape: TableShape,
  keys: string[],
): Promise<Map<string, MirrorRow>> {
  const hasUpdatedAt = shape.columns.some((c) => c.name === 'updated_at');
  const rows = await mirror.unsafe<MirrorRow[]>(
    `SELECT ${ident(shape.key)}::TEXT AS key, ${
      hasUpdatedAt ? 'updated_at::TEXT' : 'NULL'
    } AS updated_at ` +
      `FROM ${qualified(shape.table)} WHERE ${ident(shape.key)} = ANY (${keyArray(shape, 1)})`,
    [keys],
  );
  return new Map(rows.map((r) => [r.key, r]));
}

/**
 * One statement: insert the rows, or update the mirror's where its updated_at is not newer
 * (equal times: the primary's version wins, so every run decides the same way). The rows
 * travel as one text array per column, unnested and cast on the mirror: a page of 1,000
 * rows is as many parameters as the table has columns, far under the 65,534 limit, and
 * parsed once instead of once per value.
 */
function upsertStatement(shape: TableShape, rows: string[][]): [string, string[][]] {
  const columns = shape.columns.map((_, i) => rows.map((row) => row[i]!));
  const names = shape.columns.map((c) => ident(c.name));
  const aliases = shape.columns.map((_, i) => `c${i}`);
  const casts = shape.columns.map((c, i) => `u.c${i}::${c.type}`);
  const arrays = shape.columns.map((_, i) => `$${i + 1}::TEXT[]`);
  const updates = shape.columns.filter((c) => c.name !== shape.key).map((c) =>
    `${ident(c.name)} = excluded.${ident(c.name)}`
  );
  const guard = shape.columns.some((c) => c.name === 'updated_at')
    ? ` WHERE ${qualified(shape.table)}.updated_at <= excluded.updated_at`
    : '';
  return [
    `INSERT INTO ${qualified(shape.table)} (${names.join(', ')}) ` +
    `SELECT ${casts.join(', ')} FROM unnest(${arrays.join(', ')}) AS u (${aliases.join(', ')}) ` +
    `ON CONFLICT (${ident(shape.key)}) DO UPDATE SET ${updates.join(', ')}${guard}`,
    columns,
  ];
}

/** A mirror transaction, retried with jittered backoff when CockroachDB asks (SQLSTATE 40001). */
export async function withRetry<T>(
  deps: PushDeps,
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

export async function pushTable(
  deps: PushDeps,
  table: string,
  options: PushOptions,
): Promise<PushResult> {
  const started = performance.now();
  const shape = await describeTable(deps.primary, table);
  await preflight(deps.mirror, shape);
  if (!(await hasBeenPushed(deps.primary, table))) {
    await deps.primary`select cesar.sync_backfill(${table})`;
  }
  const result: PushResult = {
    table,
    inserted: 0,
    updated: 0,
    deleted: 0,
    conflicts: 0,
    batches: 0,
    stopped: 'done',
  };
  const pageSize = Math.max(
    1,
    Math.min(options.batchSize, Math.floor(PARAMETER_LIMIT / shape.columns.length)),
  );
  let after: [string, string] = ['-1', ''];
  for (;;) {
    if (performance.now() - started >= options.budgetMs) {
      result.stopped = 'budget';
      break;
    }
    const page = await outboxPage(deps.primary, table, after, pageSize);
    if (page.length === 0) break;
    after = [page.at(-1)!.event_id, page.at(-1)!.row_key];
    const keys = page.map((e) => e.row_key);
    const keyIndex = shape.columns.findIndex((c) => c.name === shape.key);
    const updatedIndex = shape.columns.findIndex((c) => c.name === 'updated_at');
    const rows = await primaryRows(deps.primary, shape, keys);
    const present = new Set(rows.map((r) => r[keyIndex]!));
    const gone = keys.filter((k) => !present.has(k));

    await withRetry(deps, async () => {
      const existing = await mirrorRows(deps.mirror, shape, keys);
      const counts = { inserted: 0, updated: 0, deleted: 0, conflicts: 0 };
      for (const row of rows) {
        const there = existing.get(row[keyIndex]!);
        if (!there) counts.inserted++;
        else if (
          updatedIndex >= 0 && there.updated_at !== null &&
          new Date(there.updated_at) > new Date(row[updatedIndex]!)
        ) {
          counts.conflicts++;
        } else counts.updated++;
      }
      counts.deleted = gone.filter((k) => existing.has(k)).length;
      if (!options.dryRun) {
        await deps.mirror.begin(async (tx) => {
          if (rows.length > 0) {
            const [text, params] = upsertStatement(shape, rows);
            await tx.unsafe(text, params as never);
          }
          if (gone.length > 0) {
            await tx.unsafe(
              `DELETE FROM ${qualified(shape.table)} WHERE ${ident(shape.key)} = ANY (${
                keyArray(shape, 1)
              })`,
              [gone],
            );
            await tx.unsafe(
              'INSERT INTO public.cesar_sync_tombstones (table_name, row_key, deleted_at) ' +
                'SELECT $1, k, now() FROM unnest($2::TEXT[]) AS k ' +
                'ON CONFLICT (table_name, row_key) DO UPDATE SET deleted_at = excluded.deleted_at',
              [table, gone],
            );
          }
        });
      }
      result.inserted += counts.inserted;
      result.updated += counts.updated;
      result.deleted += counts.deleted;
      result.conflicts += counts.conflicts;
    });
    if (!options.dryRun) {
      await deps.primary`
        delete from cesar.sync_outbox o
        using jsonb_to_recordset(${
        deps.primary.json(page as never)
      }) as p (row_key text, event_id bigint)
        where o.table_name = ${table} and o.row_key = p.row_key and o.event_id = p.event_id
      `;
    }
    result.batches++;
  }
  return result;
}
