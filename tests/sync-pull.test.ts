import { beforeAll, describe, expect, it } from 'vitest';
import type { Sql } from '../packages/shared/src/db.ts';
import { strictPolicy } from '../packages/shared/src/http/outbound.ts';
import { syncTable } from '../packages/shared/src/queue/handlers/sync-table.ts';
import { createSyncApp } from '../packages/shared/src/mirror/app.ts';
import { type Direction, runRestore, runSync } from '../packages/shared/src/mirror/run.ts';
import { verifyTable } from '../packages/shared/src/mirror/verify.ts';
import { functionSql, testSql } from './helpers/db.ts';
import { expectCockroachCompatible, recordingMirror } from './helpers/mirror.ts';
import { process } from './helpers/workflows.ts';

// Pull (mirror -> primary), both directions with last-writer-wins, tombstones both ways, and
// restore, on a table of its own (synctest.notes) so that no other file's writes interfere.

const sql = testSql(undefined, 8);
// The sync function's own pool: through the transaction pooler, as CESAR_DB_URL gives it.
const fnSql = functionSql(8, 'sync');
const { mirror, statements } = recordingMirror();
const TABLE = 'synctest.notes';

beforeAll(async () => {
  await sql.unsafe(`
    create schema if not exists synctest;
    create table if not exists synctest.notes (
      id uuid primary key default gen_random_uuid(),
      body text not null,
      n integer not null default 0,
      updated_at timestamptz not null default now()
    );
    create or replace trigger notes_touch before update on synctest.notes
      for each row execute function cesar.touch_updated_at();
    create table if not exists synctest.lonely (
      id uuid primary key default gen_random_uuid(),
      body text not null,
      updated_at timestamptz not null default now()
    );
    create table if not exists synctest.bulk (like synctest.notes including all);
    create or replace trigger bulk_touch before update on synctest.bulk
      for each row execute function cesar.touch_updated_at();
    insert into cesar.sync_tables (table_name)
      values ('synctest.notes'), ('synctest.lonely'), ('synctest.bulk')
      on conflict do nothing;
    select cesar.watch('synctest.notes'), cesar.watch('synctest.lonely'), cesar.watch('synctest.bulk');
  `);
  await mirror`create schema if not exists synctest`;
});

const deps = (target: Sql = mirror) => ({
  primary: fnSql,
  mirror: target,
  random: () => 0.5,
  sleep: () => Promise.resolve(),
});

async function sync(
  direction: Direction,
  options: Partial<{ dryRun: boolean; lookbackSeconds: number }> = {},
) {
  await settle();
  const outcomes = await runSync(deps(), {
    tables: [TABLE],
    direction,
    dryRun: options.dryRun ?? false,
    batchSize: 1000,
    budgetMs: 60_000,
    lookbackSeconds: options.lookbackSeconds,
  });
  for (const o of outcomes) expect(o.status, JSON.stringify(o)).toBe('completed');
  return outcomes as Array<Extract<(typeof outcomes)[number], { inserted: number }>>;
}

/** Processes events until none of the test table's is pending (another file may hold the lease). */
async function settle() {
  for (let i = 0; i < 200; i++) {
    await process(sql);
    const [row] = await sql`select count(*)::int as n from cesar.event_log
                            where schema_name = 'synctest' and status in ('pending', 'processing')`;
    if (row!.n === 0) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error('events were not processed');
}

async function insertHere(...bodies: string[]): Promise<string[]> {
  const rows =
    await sql`insert into synctest.notes (body) select unnest(${bodies}::text[]) returning id`;
  return rows.map((r) => r.id as string);
}

async function insertThere(body: string, updatedAt = 'now()'): Promise<string> {
  const id = crypto.randomUUID();
  await mirror.unsafe(
    `insert into synctest.notes (id, body, n, updated_at) values ($1, $2, 0, ${updatedAt})`,
    [id, body],
  );
  return id;
}

async function here(id: string) {
  const [row] =
    await sql`select body, updated_at::text as updated_at from synctest.notes where id = ${id}`;
  return row;
}

async function there(id: string) {
  const [row] =
    await mirror`select body, updated_at::text as updated_at from synctest.notes where id = ${id}`;
  return row;
}

async function deleteThere(id: string, deletedAt = 'now()') {
  await mirror.begin(async (tx) => {
    await tx`delete from synctest.notes where id = ${id}`;
    await tx.unsafe(
      `insert into public.cesar_sync_tombstones (table_name, row_key, deleted_at) values ($1, $2, ${deletedAt})`,
      [TABLE, id],
    );
  });
}

const conflictsOf = (id: string) =>
  sql`select direction, winner, losing_version from cesar.sync_conflicts
      where table_name = ${TABLE} and row_key = ${id} order by id`;

describe('pull from the mirror', () => {
  it('applies rows inserted and updated on the mirror, and does not push them back', async () => {
    const [a] = await insertHere('a');
    await sync('up');
    await mirror`update synctest.notes set body = 'a from the mirror', updated_at = now() where id = ${a!}`;
    const b = await insertThere('b');

    const [pulled] = await sync('down');
    expect(pulled).toMatchObject({ direction: 'down', inserted: 1, updated: 1, conflicts: 0 });
    expect(await here(a!)).toEqual(await there(a!));
    expect(await here(b)).toEqual(await there(b));
    expect((await here(a!))!.body).toBe('a from the mirror');

    await settle();
    const events = await sql`select origin from cesar.event_log where row_key = any(${[
      a!,
      b,
    ]}) and origin = 'mirror'`;
    expect(events).toHaveLength(2);
    expect(await sql`select 1 from cesar.sync_outbox where row_key = any(${[a!, b]})`).toHaveLength(
      0,
    );
    expect(await sync('down')).toMatchObject([{ inserted: 0, updated: 0, conflicts: 0 }]);
    expect(await sync('up')).toMatchObject([{ inserted: 0, updated: 0 }]);
    expect((await verifyTable(sql, mirror, TABLE)).equal).toBe(true);
  });

  it('decides conflicts by last writer wins and keeps each losing version', async () => {
    const [c, d] = await insertHere('c', 'd');
    await sync('up');
    await sql`update synctest.notes set body = 'c here' where id = ${c!}`;
    await sql`update synctest.notes set body = 'd here' where id = ${d!}`;
    await mirror`update synctest.notes set body = 'c there', updated_at = now() + interval '1 hour' where id = ${c!}`;
    await mirror`update synctest.notes set body = 'd there', updated_at = now() - interval '30 seconds' where id = ${d!}`;

    const [down, up] = await sync('both');
    expect(down).toMatchObject({ direction: 'down', updated: 1, conflicts: 2 });
    expect(up).toMatchObject({ direction: 'up', conflicts: 0 });
    expect((await here(c!))!.body).toBe('c there');
    expect((await there(c!))!.body).toBe('c there');
    expect((await here(d!))!.body).toBe('d here');
    expect((await there(d!))!.body).toBe('d here');
    expect(await conflictsOf(c!)).toMatchObject([
      { direction: 'down', winner: 'mirror', losing_version: { body: 'c here' } },
    ]);
    expect(await conflictsOf(d!)).toMatchObject([
      { direction: 'down', winner: 'primary', losing_version: { body: 'd there' } },
    ]);
    expect((await verifyTable(sql, mirror, TABLE)).equal).toBe(true);
  });

  it('records a conflict when a push finds a newer row on the mirror', async () => {
    const [e] = await insertHere('e');
    await sync('up');
    await sql`update synctest.notes set body = 'e here' where id = ${e!}`;
    await mirror`update synctest.notes set body = 'e there', updated_at = now() + interval '1 hour' where id = ${e!}`;
    expect(await sync('up')).toMatchObject([{ updated: 0, conflicts: 1 }]);
    expect((await there(e!))!.body).toBe('e there');
    expect(await conflictsOf(e!)).toMatchObject([
      { direction: 'up', winner: 'mirror', losing_version: { body: 'e here' } },
    ]);
    await sync('down');
    expect((await here(e!))!.body).toBe('e there');
  });

  it('propagates deletes through tombstones both ways and never brings a deleted row back', async () => {
    const [f, g, h] = await insertHere('f', 'g', 'h');
    await sync('up');
    await deleteThere(f!);
    await sql`delete from synctest.notes where id = ${g!}`;
    const [down, up] = await sync('both');
    expect(down).toMatchObject({ deleted: 1, conflicts: 0 });
    expect(up).toMatchObject({ deleted: 1 });
    expect(await here(f!)).toBeUndefined();
    expect(await here(g!)).toBeUndefined();
    expect(await there(g!)).toBeUndefined();
    const tombstones = await mirror`select row_key, origin from public.cesar_sync_tombstones
                                    where row_key = any(${[f!, g!]}) order by origin`;
    expect(tombstones).toEqual([{ row_key: g!, origin: 'primary' }, {
      row_key: f!,
      origin: 'pulled',
    }]);
    expect(await sync('both')).toMatchObject([{ deleted: 0, inserted: 0 }, { inserted: 0 }]);

    // An update after a deletion wins over it: the row stays, and goes back to the mirror.
    await sql`update synctest.notes set body = 'h kept' where id = ${h!}`;
    await deleteThere(h!, "now() - interval '1 hour'");
    const [down2] = await sync('both');
    expect(down2).toMatchObject({ deleted: 0, conflicts: 1 });
    expect((await here(h!))!.body).toBe('h kept');
    expect((await there(h!))!.body).toBe('h kept');
    expect(await conflictsOf(h!)).toMatchObject([{ winner: 'primary', losing_version: null }]);
  });

  it('finds a row whose mirror transaction committed after a later one', async () => {
    const t1 = await mirror.reserve();
    try {
      await t1`begin`;
      const late = crypto.randomUUID();
      await t1`insert into synctest.notes (id, body, n, updated_at) values (${late}, 'late', 0, now())`;
      await new Promise((r) => setTimeout(r, 20));
      const early = await insertThere('early');
      await sync('down');
      expect(await here(early)).toBeDefined();
      expect(await here(late)).toBeUndefined();
      await t1`commit`;
      // Without a look-back window the watermark has passed it...
      await sync('down', { lookbackSeconds: 0 });
      expect(await here(late)).toBeUndefined();
      // ...the default window finds it.
      expect(await sync('down')).toMatchObject([{ inserted: 1 }]);
      expect((await here(late))!.body).toBe('late');
    } finally {
      await t1`rollback`.catch(() => {});
      t1.release();
    }
  });

  it('reports exactly what a dry run would do and moves nothing', async () => {
    const [k] = await insertHere('k');
    await sync('up');
    await mirror`update synctest.notes set body = 'k there', updated_at = now() where id = ${k!}`;
    const l = await insertThere('l');
    const [mark] =
      await sql`select watermark from cesar.sync_state where table_name = ${TABLE} and direction = 'down'`;
    const [dry] = await sync('down', { dryRun: true });
    expect(dry).toMatchObject({ inserted: 1, updated: 1, conflicts: 0 });
    expect((await here(k!))!.body).toBe('k');
    expect(await here(l)).toBeUndefined();
    const [after] =
      await sql`select watermark from cesar.sync_state where table_name = ${TABLE} and direction = 'down'`;
    expect(after).toEqual(mark);
    expect(await sync('down')).toMatchObject([{ inserted: 1, updated: 1 }]);
  });
});

describe('the first push of a table into an empty mirror table', () => {
  it("loads it with COPY, and the pull knows the loaded rows for the primary's", async () => {
    const rows =
      await sql`insert into synctest.bulk (body) select 'bulk ' || i from generate_series(1, 25) i returning id`;
    const ids = rows.map((r) => r.id as string);
    await settle();
    const run = (direction: Direction, batchSize = 10) =>
      runSync(deps(), {
        tables: ['synctest.bulk'],
        direction,
        dryRun: false,
        batchSize,
        budgetMs: 60_000,
      });
    expect(await run('up')).toMatchObject([{ status: 'completed', inserted: 25, updated: 0 }]);
    expect(await mirror`select count(*)::int as n from synctest.bulk`).toEqual([{ n: 25 }]);
    // Loaded without per-row versions: the load's start tells them apart.
    expect(
      await mirror`select 1 from public.cesar_sync_versions where table_name = 'synctest.bulk'`,
    ).toHaveLength(0);
    const [state] = await sql`select copied_at, bulk_loaded_from from cesar.sync_state
                              where table_name = 'synctest.bulk' and direction = 'up'`;
    expect(state).toMatchObject({
      copied_at: expect.any(Date),
      bulk_loaded_from: expect.any(Date),
    });

    // A row the primary changes afterwards is not a conflict for the pull: the mirror's copy
    // of it is the primary's own older version.
    await sql`update synctest.bulk set body = 'changed here' where id = ${ids[0]!}`;
    await settle();
    expect(await run('down')).toMatchObject([{
      status: 'completed',
      inserted: 0,
      updated: 0,
      conflicts: 0,
    }]);
    expect(await run('up')).toMatchObject([{ status: 'completed', updated: 1, conflicts: 0 }]);
    expect((await verifyTable(sql, mirror, 'synctest.bulk')).equal).toBe(true);
  });
});

describe('restore from the mirror', () => {
  it('rebuilds damaged rows from the mirror, resumes after a crash, keeps unpushed changes, and verifies', async () => {
    const ids = await insertHere(...Array.from({ length: 12 }, (_, i) => `r${i}`));
    await sync('both');
    // Damage the primary without it being a change to push (as a broken disk or a bad
    // migration would), and make one real, unpushed deletion.
    const stray = crypto.randomUUID();
    await sql.begin(async (tx) => {
      await tx`select set_config('cesar.origin', 'restore', true)`;
      await tx`delete from synctest.notes where id = ${ids[0]!}`;
      await tx`update synctest.notes set body = 'corrupt' where id = ${ids[1]!}`;
      await tx`insert into synctest.notes (id, body) values (${stray}, 'stray')`;
    });
    await sql`delete from synctest.notes where id = ${ids[2]!}`;
    await settle();

    // The mirror connection dies at the third page read.
    let reads = 0;
    const dying = new Proxy(mirror, {
      get(target, prop, receiver) {
        if (prop === 'begin') {
          return (mode: string, fn: (tx: Sql) => Promise<unknown>) =>
            target.begin(mode, (tx) =>
              fn(
                new Proxy(tx as unknown as Sql, {
                  get(t, p, r) {
                    if (p !== 'unsafe') return Reflect.get(t, p, r);
                    return (text: string, params: unknown[]) => {
                      if (/ORDER BY/.test(text) && ++reads === 3) {
                        throw new Error('connection lost');
                      }
                      return (t.unsafe as (a: string, b: unknown[]) => unknown)(text, params);
                    };
                  },
                }),
              ));
        }
        return Reflect.get(target, prop, receiver);
      },
    }) as Sql;
    const [crashed] = await runRestore(deps(dying), {
      tables: [TABLE],
      batchSize: 3,
      budgetMs: 60_000,
    });
    expect(crashed).toMatchObject({ status: 'failed', error: 'connection lost' });
    const [state] =
      await sql`select watermark_key from cesar.sync_state where table_name = ${TABLE} and direction = 'restore'`;
    expect(state!.watermark_key).not.toBeNull();

    const [restored] = await runRestore(deps(), {
      tables: [TABLE],
      batchSize: 3,
      budgetMs: 60_000,
    });
    // The one difference verify finds is the unpushed deletion.
    expect(restored).toMatchObject({
      status: 'completed',
      verify: { equal: false, missing: [], changed: [], extra: [ids[2]] },
    });
    expect((await here(ids[0]!))!.body).toBe('r0');
    expect((await here(ids[1]!))!.body).toBe('r1');
    expect(await here(stray)).toBeUndefined();
    expect(await here(ids[2]!)).toBeUndefined();
    await settle();
    // Restored rows are not changes: nothing to push but the real deletion, no workflow ran.
    expect(
      await sql`select row_key from cesar.sync_outbox where table_name = ${TABLE} and row_key = any(${ids})`,
    ).toEqual([{ row_key: ids[2] }]);
    await sync('up');
    expect((await verifyTable(sql, mirror, TABLE)).equal).toBe(true);
  });
});

describe('the sync function and the job handler', () => {
  const SECRET = 'sync-pull-test-secret-0123456789';
  const app = createSyncApp({
    sql: fnSql,
    mirror,
    config: { functionSecret: SECRET, serviceRoleKey: null },
    random: () => 0.5,
  });
  const post = (path: string, body: unknown, token = SECRET) =>
    app.request(path, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}` },
      body: JSON.stringify(body),
    });

  it('runs both directions and restores through POST /sync and POST /sync/restore', async () => {
    const m = await insertThere('m');
    await settle();
    const res = await post('/sync', { tables: [TABLE], direction: 'both' });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({
      direction: 'both',
      tables: [
        { table: TABLE, direction: 'down', status: 'completed', inserted: 1 },
        { table: TABLE, direction: 'up', status: 'completed' },
      ],
    });
    expect(await here(m)).toBeDefined();
    const restore = await post('/sync/restore', { tables: [TABLE] });
    expect(restore.status).toBe(200);
    expect(await restore.json()).toMatchObject({
      tables: [{ table: TABLE, status: 'completed', verify: { equal: true } }],
    });
  });

  it('refuses to empty a table from an empty mirror', async () => {
    await sql`insert into synctest.lonely (body) values ('only here')`;
    const res = await post('/sync/restore', { tables: ['synctest.lonely'] });
    expect(await res.json()).toMatchObject({
      tables: [{
        status: 'failed',
        error: expect.stringMatching(/mirror's synctest.lonely is empty/),
      }],
    });
    expect(await sql`select 1 from synctest.lonely`).toHaveLength(1);
  });

  it('refuses bad requests with 4xx and touches nothing', async () => {
    const cases: Array<[Response, number, RegExp]> = [
      [await post('/sync/restore', { tables: ['public.nope'] }), 422, /not mirrored: public.nope/],
      [await post('/sync/restore', { batch_size: 0 }), 400, /batch_size/],
      [await post('/sync/restore', {}, 'wrong-secret-0000000000'), 401, /invalid bearer token/],
      [await post('/sync', { direction: 'both', lookback_seconds: -1 }), 400, /lookback_seconds/],
    ];
    for (const [res, status, message] of cases) {
      expect(res.status).toBe(status);
      expect(JSON.stringify((await res.json()).error)).toMatch(message);
    }
  });

  it('sync.table runs the direction it is given', async () => {
    const o = await insertThere('o');
    const result = await syncTable({
      job: { payload: { table: TABLE, direction: 'both' }, lease_seconds: 60 } as never,
      sql,
      mirror,
      clock: { now: () => new Date() },
      outbound: strictPolicy,
      signal: new AbortController().signal,
    });
    expect(result).toMatchObject({
      tables: [{ direction: 'down', inserted: 1 }, { direction: 'up' }],
      continued_by: null,
    });
    expect(await here(o)).toBeDefined();
  });

  it('sends the mirror nothing CockroachDB rejects', () => {
    expectCockroachCompatible(statements);
  });
});
