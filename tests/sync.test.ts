import { beforeAll, describe, expect, it } from 'vitest';
import type { CpuBudget } from '../packages/shared/src/cpu.ts';
import { strictPolicy } from '../packages/shared/src/http/outbound.ts';
import { syncTable } from '../packages/shared/src/queue/handlers/sync-table.ts';
import { enqueueJob } from '../packages/shared/src/queue/queries.ts';
import { createSql, type Sql } from '../packages/shared/src/db.ts';
import { createSyncApp } from '../packages/shared/src/mirror/app.ts';
import { pipeline, withRetry } from '../packages/shared/src/mirror/common.ts';
import { runRestore, runSync, type TableOutcome } from '../packages/shared/src/mirror/run.ts';
import {
  describeTable,
  preflight,
  SchemaDriftError,
} from '../packages/shared/src/mirror/schema.ts';
import { verifyTable } from '../packages/shared/src/mirror/verify.ts';
import { functionSql, testSql } from './helpers/db.ts';
import { drain, uniqueJobType } from './helpers/queue.ts';
import { expectCockroachCompatible, recordingMirror } from './helpers/mirror.ts';
import { process } from './helpers/workflows.ts';

// Push to the mirror (a second database standing in for CockroachDB). Every statement sent to
// the mirror is recorded and checked against constructs CockroachDB rejects.

const sql = testSql(undefined, 8);
// The sync function's own pool: through the transaction pooler, as CESAR_DB_URL gives it.
const fnSql = functionSql(8, 'sync');
// A job drain's pool, for sync.table jobs run by drainQueue.
const drainSql = functionSql(2, 'job-drain');
const { mirror, statements } = recordingMirror();
const tag = `s${Date.now().toString(36)}`;

/** A CPU budget that is already spent. */
const spentCpu: CpuBudget = { limitMs: 0, spentMs: () => 1, exhausted: () => true };

const push = (
  tables: string[],
  options: Partial<{ dryRun: boolean; batchSize: number; budgetMs: number; cpu: CpuBudget }> = {},
  target: Sql = mirror,
) =>
  runSync({ primary: fnSql, mirror: target, random: () => 0.5, sleep: () => Promise.resolve() }, {
    tables,
    direction: 'up',
    dryRun: options.dryRun ?? false,
    batchSize: options.batchSize ?? 1000,
    budgetMs: options.budgetMs ?? 60_000,
    cpu: options.cpu,
  });

/** A push whose lease lasts 1 s, renewed every 200 ms. */
const pushWithShortLease = (tables: string[]) =>
  runSync({
    primary: fnSql,
    mirror,
    random: () => 0.5,
    lease: { seconds: 1, heartbeatMs: 200 },
  }, { tables, direction: 'up', dryRun: false, batchSize: 1000, budgetMs: 60_000 });

/** Locks the sync outbox until `released` settles; resolves once it is locked. */
async function stallOnOutbox(released: Promise<unknown>): Promise<{ holding: Promise<unknown> }> {
  let locked = () => {};
  const isLocked = new Promise<void>((resolve) => (locked = resolve));
  const holding = sql.begin(async (tx) => {
    await tx`lock table cesar.sync_outbox in access exclusive mode`;
    locked();
    await released;
  });
  await isLocked;
  return { holding };
}

const ok = (outcome: TableOutcome | undefined) => {
  expect(outcome?.status, JSON.stringify(outcome)).toBe('completed');
  return outcome as Extract<TableOutcome, { inserted: number }>;
};

/** Processes events until none of these rows' events is left pending (another file's drain may hold the lease). */
async function settle(ids: string[]) {
  for (let i = 0; i < 200; i++) {
    await process(sql);
    const [{ n }] = await sql`select count(*)::int as n from cesar.event_log
                              where row_key = any(${ids}) and status in ('pending', 'processing')` as unknown as [
      { n: number },
    ];
    if (n === 0) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error('events were not processed');
}

async function mirrored(id: string) {
  const [row] = await mirror`select name, status, updated_at from public.agents where id = ${id}`;
  return row;
}

describe('push to the mirror', () => {
  it('copies a table on its first push, then only what changed', async () => {
    const first = ok((await push(['public.agents']))[0]);
    expect(first.inserted).toBeGreaterThanOrEqual(48);
    const [{ primaryCount }] =
      await sql`select count(*)::int as "primaryCount" from agents` as unknown as [
        { primaryCount: number },
      ];
    const [{ mirrorCount }] =
      await mirror`select count(*)::int as "mirrorCount" from public.agents` as unknown as [
        { mirrorCount: number },
      ];
    expect(mirrorCount).toBeGreaterThanOrEqual(48);
    expect(Math.abs(mirrorCount - primaryCount)).toBeLessThan(20); // other files write agents meanwhile
    const [state] =
      await sql`select status, last_sync_at, records_synced from cesar.sync_state where table_name = 'public.agents' and direction = 'up'`;
    expect(state).toMatchObject({ status: 'completed', last_sync_at: expect.any(Date) });
  });

  it('propagates inserts, updates and deletes, with a tombstone for the delete', async () => {
    const [a] =
      await sql`insert into agents (name, type) values (${`${tag} a`}, 'monitor') returning id`;
    const [b] =
      await sql`insert into agents (name, type) values (${`${tag} b`}, 'monitor') returning id`;
    await settle([a!.id, b!.id]);
    await push(['public.agents']);
    expect(await mirrored(a!.id)).toMatchObject({ name: `${tag} a`, status: 'active' });
    await sql`update agents set status = 'idle' where id = ${a!.id}`;
    await sql`delete from agents where id = ${b!.id}`;
    await settle([a!.id, b!.id]);
    await push(['public.agents']);
    expect(await mirrored(a!.id)).toMatchObject({ status: 'idle' });
    expect(await mirrored(b!.id)).toBeUndefined();
    expect(
      await mirror`select 1 from public.cesar_sync_tombstones where table_name = 'public.agents' and row_key = ${
        b!.id
      }`,
    ).toHaveLength(1);
  });

  it('pushes a mirrored table no template watches without the webhook function: key changes, deletes, a pause', async () => {
    const table = `public.solo_${tag}`;
    await sql.unsafe(`create table ${table} (id int primary key, v text,
                      updated_at timestamptz not null default now())`);
    try {
      await sql`insert into cesar.sync_tables (table_name) values (${table})`;
      const onMirror = async () =>
        (await mirror.unsafe(`select id, v from ${table} order by id`)).map((r) => [r.id, r.v]);
      await sql.unsafe(`insert into ${table} (id, v) values (1, 'a'), (2, 'b')`);
      ok((await push([table]))[0]);
      expect(await onMirror()).toEqual([[1, 'a'], [2, 'b']]);
      // The key changes: the old key's row goes from the mirror too.
      await sql.unsafe(`update ${table} set id = 101, updated_at = now() where id = 1`);
      await sql.unsafe(`delete from ${table} where id = 2`);
      ok((await push([table]))[0]);
      expect(await onMirror()).toEqual([[101, 'a']]);
      // Not one event: the table is mirrored, not watched; nothing waited for a drain.
      expect(await sql`select 1 from cesar.event_log where table_name = ${`solo_${tag}`}`)
        .toEqual([]);
      // A pause in mirroring: what changed meanwhile was not captured, so the table is copied
      // whole again once it is mirrored again.
      await sql`update cesar.sync_tables set enabled = false where table_name = ${table}`;
      await sql.unsafe(`insert into ${table} (id, v) values (3, 'while paused')`);
      await sql`update cesar.sync_tables set enabled = true where table_name = ${table}`;
      ok((await push([table]))[0]);
      expect(await onMirror()).toEqual([[3, 'while paused'], [101, 'a']]);
    } finally {
      await sql`delete from cesar.sync_tables where table_name = ${table}`;
      await sql`delete from cesar.sync_state where table_name = ${table}`;
      await sql.unsafe(`drop table ${table}`);
      await mirror.unsafe(`drop table if exists ${table}`);
    }
  });

  it('never skips a row whose transaction committed after a later one', async () => {
    const t1 = await sql.reserve();
    try {
      await t1`begin`;
      const [late] =
        await t1`insert into agents (name, type) values (${`${tag} late`}, 'monitor') returning id`;
      const [early] =
        await sql`insert into agents (name, type) values (${`${tag} early`}, 'monitor') returning id`;
      await settle([early!.id]);
      await push(['public.agents']);
      expect(await mirrored(early!.id)).toBeDefined();
      expect(await mirrored(late!.id)).toBeUndefined();
      await t1`commit`;
      await settle([late!.id]);
      await push(['public.agents']);
      expect(await mirrored(late!.id)).toMatchObject({ name: `${tag} late` });
    } finally {
      t1.release();
    }
  });

  it('reports exactly what a dry run would do and moves nothing', async () => {
    const [a] =
      await sql`insert into agents (name, type) values (${`${tag} dry`}, 'monitor') returning id`;
    await settle([a!.id]);
    await push(['public.agents']);
    await sql`update agents set status = 'busy' where id = ${a!.id}`;
    const [c] =
      await sql`insert into agents (name, type) values (${`${tag} dry new`}, 'monitor') returning id`;
    await settle([a!.id, c!.id]);
    const [dry] = await push(['public.agents'], { dryRun: true });
    expect(ok(dry)).toMatchObject({ inserted: expect.any(Number), updated: expect.any(Number) });
    expect((dry as { inserted: number }).inserted).toBeGreaterThanOrEqual(1);
    expect((dry as { updated: number }).updated).toBeGreaterThanOrEqual(1);
    expect(await mirrored(a!.id)).toMatchObject({ status: 'active' });
    expect(await mirrored(c!.id)).toBeUndefined();
    expect(
      await sql`select 1 from cesar.sync_outbox where table_name = 'public.agents' and row_key = any(${[
        a!.id,
        c!.id,
      ]})`,
    ).toHaveLength(2);
    await push(['public.agents']);
    expect(await mirrored(a!.id)).toMatchObject({ status: 'busy' });
    expect(await mirrored(c!.id)).toBeDefined();
  });

  it('resumes where a run stopped, doubling nothing', async () => {
    const names = Array.from({ length: 30 }, (_, i) => `${tag} resume ${i}`);
    const inserted =
      await sql`insert into agents (name, type) select unnest(${names}::text[]), 'monitor' returning id`;
    await settle(inserted.map((r) => r.id));
    // A run whose budget runs out after one page of 10 (as if cut off): the rest stays dirty.
    const [cut] = await push(['public.agents'], { batchSize: 10, budgetMs: 1 });
    expect(cut).toMatchObject({ status: 'in_progress' });
    await push(['public.agents'], { batchSize: 10 });
    const rows = await mirror`select name from public.agents where name like ${`${tag} resume %`}`;
    expect(rows).toHaveLength(30);
  });

  it('stops at a checkpoint once the CPU budget is spent; further calls finish, doubling nothing', async () => {
    // Copied already (else its first push would be one bulk page): rows go through the outbox.
    ok((await push(['public.agents']))[0]);
    const names = Array.from({ length: 45 }, (_, i) => `${tag} cpu ${i}`);
    const inserted =
      await sql`insert into agents (name, type) select unnest(${names}::text[]), 'monitor' returning id`;
    await settle(inserted.map((r) => r.id));
    // Every call does at least a page (progress), then stops at the spent CPU budget.
    const outcomes = [];
    for (let call = 0; call < 20; call++) {
      const [outcome] = await push(['public.agents'], { batchSize: 10, cpu: spentCpu });
      outcomes.push(outcome!);
      if (outcome!.status !== 'in_progress') break;
    }
    expect(outcomes[0]).toMatchObject({ status: 'in_progress', stopped: 'cpu' });
    expect(outcomes.at(-1)).toMatchObject({ status: 'completed', stopped: 'done' });
    expect(outcomes.length).toBeGreaterThanOrEqual(3);
    // Other rows of the table may have been dirty too: at least these were pushed, each once.
    const moved = outcomes.reduce((n, o) => n + ('inserted' in o ? o.inserted + o.updated : 0), 0);
    expect(moved).toBeGreaterThanOrEqual(45);
    const rows = await mirror`select name from public.agents where name like ${`${tag} cpu %`}`;
    expect(rows.map((r) => r.name).sort()).toEqual([...names].sort());
    const [state] = await sql`select status, lease_holder from cesar.sync_state
                              where table_name = 'public.agents' and direction = 'up'`;
    expect(state).toEqual({ status: 'completed', lease_holder: null });
  });

  it('leaves the tables it has not started for the next call once the CPU budget is spent', async () => {
    const [before] = await sql`select updated_at from cesar.sync_state
                               where table_name = 'public.sessions' and direction = 'up'`;
    const outcomes = await push(['public.agents', 'public.sessions'], { cpu: spentCpu });
    expect(outcomes[0]).toMatchObject({ table: 'public.agents', status: 'completed' });
    expect(outcomes[1]).toEqual({
      table: 'public.sessions',
      direction: 'up',
      inserted: 0,
      updated: 0,
      deleted: 0,
      conflicts: 0,
      batches: 0,
      stopped: 'cpu',
      status: 'in_progress',
    });
    // Not started: no lease taken, nothing recorded.
    const [after] = await sql`select updated_at from cesar.sync_state
                              where table_name = 'public.sessions' and direction = 'up'`;
    expect(after).toEqual(before);
  });

  it('sync.table enqueues its continuation when the CPU budget stopped it', async () => {
    // One table, pages of one row, two changes waiting: the spent budget stops the run after
    // its first page. (Every mirrored table of the shared test database, which other files
    // fill, would take the unlimited second run past the test's timeout on a loaded machine.)
    const payload = { direction: 'up', table: 'public.agents', batch_size: 1 };
    const job = { id: '0', payload, lease_seconds: 120 };
    const rows = await sql`insert into agents (name, type)
      values (${`${tag} continued 1`}, 'monitor'), (${`${tag} continued 2`}, 'monitor')
      returning id`;
    await settle(rows.map((r) => r.id as string));
    const context = {
      sql,
      mirror,
      clock: { now: () => new Date() },
      outbound: strictPolicy,
      signal: new AbortController().signal,
    };
    const first = await syncTable({ ...context, job: job as never, cpu: spentCpu }) as {
      tables: TableOutcome[];
      continued_by: string | null;
    };
    expect(first.tables.some((t) => t.status === 'in_progress')).toBe(true);
    expect(first.continued_by).not.toBeNull();
    const [next] = await sql`select job_type, payload, status from cesar.job_queue
                             where id = ${first.continued_by}`;
    try {
      expect(next).toEqual({
        job_type: 'sync.table',
        payload,
        status: 'pending',
      });
      // The continuation, run as the next invocation would (without a CPU limit here).
      const second = await syncTable({
        ...context,
        job: { ...job, id: first.continued_by } as never,
      });
      expect(second).toMatchObject({ continued_by: null });
    } finally {
      await sql`select cesar.cancel_jobs(array[${first.continued_by}]::bigint[])`;
    }
  });

  it('sync.table reports progress per page and per table and direction (ctx.progress)', async () => {
    const rows = await sql`insert into agents (name, type)
      values (${`${tag} progress 1`}, 'monitor'), (${`${tag} progress 2`}, 'monitor')
      returning id`;
    await settle(rows.map((r) => r.id as string));
    const reports: Array<[number, string | undefined]> = [];
    await syncTable({
      job: {
        id: '0',
        payload: { direction: 'up', table: 'public.agents', batch_size: 1 },
        lease_seconds: 120,
      } as never,
      sql,
      mirror,
      clock: { now: () => new Date() },
      outbound: strictPolicy,
      signal: new AbortController().signal,
      progress: (fraction, message) => void reports.push([fraction, message]),
    });
    // Pages of one row: a report per page (other files' changes may add pages), then the end.
    // A report per page applied (how many depends on what other files left waiting), then
    // the table's end; the page reports count the rows moved so far.
    const pages = reports.slice(0, -1);
    expect(pages.length).toBeGreaterThanOrEqual(1);
    for (const [fraction, message] of pages) {
      expect(fraction).toBe(0);
      expect(message).toMatch(/^public\.agents up: [\d,]+ rows$/);
    }
    const moved = pages.at(-1)![1]!.match(/: ([\d,]+) rows$/)![1];
    expect(reports.at(-1)).toEqual([1, `public.agents up completed: ${moved} rows`]);
  });

  it('a cancelled sync.table starts no further table', async () => {
    const cancel = new AbortController();
    const reports: string[] = [];
    // Every mirrored table, pushed (a pull would change the down state later tests expect).
    const run = syncTable({
      job: { id: '0', payload: { direction: 'up' }, lease_seconds: 120 } as never,
      sql,
      mirror,
      clock: { now: () => new Date() },
      outbound: strictPolicy,
      signal: cancel.signal,
      // Cancelled once the first table is done: no other may start.
      progress: (_fraction, message) => {
        reports.push(message!);
        if (/ up completed: /.test(message!)) cancel.abort(new Error('job cancelled'));
      },
    });
    await expect(run).rejects.toThrow('job cancelled');
    const tables = new Set(reports.map((r) => r.split(' ')[0]));
    expect(tables.size).toBe(1);
    expect(reports.at(-1)).toMatch(/ up completed: /);
  });

  it("sync.table's progress reaches the job's row through the drain's lease renewal", async () => {
    const type = uniqueJobType('sync');
    const rows = await sql`insert into agents (name, type)
      values (${`${tag} progress 3`}, 'monitor') returning id`;
    await settle(rows.map((r) => r.id as string));
    const id = await enqueueJob(sql, type, {
      direction: 'up',
      table: 'public.agents',
      batch_size: 1,
    });
    type Progress = { status: string; progress: number | null; progress_message: string | null };
    const progressOf = async () =>
      (await sql<Progress[]>`select status, progress::float8, progress_message
                             from cesar.job_queue where id = ${id}`)[0]!;
    let shown: Progress | null = null;
    const result = await drain(
      drainSql,
      {
        // The real handler; the job then stays running until its progress is on its row (a
        // renewal comes once a handler has run for 2 s).
        [type]: async (ctx) => {
          const value = await syncTable(ctx);
          const end = Date.now() + 10_000;
          while (Date.now() < end) {
            const row = await progressOf();
            if (row.progress === 1) {
              shown = row;
              break;
            }
            await new Promise((r) => setTimeout(r, 100));
          }
          return value;
        },
      },
      { jobTypes: [type] },
      { mirror },
    );
    expect(result).toMatchObject({ claimed: 1, completed: 1 });
    expect(shown).toEqual({
      status: 'running',
      progress: 1,
      progress_message: expect.stringMatching(/^public\.agents up completed: [\d,]+ rows$/),
    });
  });

  it('loses nothing and doubles nothing when the mirror goes away in the middle of a run', async () => {
    const names = Array.from({ length: 30 }, (_, i) => `${tag} midway ${i}`);
    const inserted =
      await sql`insert into agents (name, type) select unnest(${names}::text[]), 'monitor' returning id`;
    const ids = inserted.map((r) => r.id as string);
    await settle(ids);
    // The connection drops at the second page's write (pages of 10).
    let writes = 0;
    const dropping = new Proxy(mirror, {
      get(target, prop, receiver) {
        if (prop === 'begin') {
          return (...args: unknown[]) =>
            ++writes === 2
              ? Promise.reject(Object.assign(new Error('connection reset'), { code: 'ECONNRESET' }))
              : (target.begin as (...a: unknown[]) => unknown)(...args);
        }
        return Reflect.get(target, prop, receiver);
      },
    }) as Sql;
    const [cut] = await push(['public.agents'], { batchSize: 10 }, dropping);
    expect(cut).toMatchObject({ status: 'failed', error: expect.stringMatching(/ECONNRESET/) });
    const onMirror = async () =>
      (await mirror`select count(*)::int as n from public.agents where id = any(${ids})`)[0]!.n;
    expect(await onMirror()).toBeLessThan(30);
    // The primary keeps working meanwhile, and the next run catches up.
    await sql`update agents set status = 'idle' where id = ${ids[0]!}`;
    await settle([ids[0]!]);
    ok((await push(['public.agents'], { batchSize: 10 }))[0]);
    expect(await onMirror()).toBe(30);
    expect(await mirrored(ids[0]!)).toMatchObject({ status: 'idle' });
    expect(
      await sql`select 1 from cesar.sync_outbox where table_name = 'public.agents' and row_key = any(${ids})`,
    ).toHaveLength(0);
  });

  it('retries a mirror transaction that CockroachDB aborts with 40001', async () => {
    let failures = 0;
    const flaky = new Proxy(mirror, {
      get(target, prop, receiver) {
        if (prop === 'begin') {
          return (...args: unknown[]) => {
            if (failures < 2) {
              failures++;
              return Promise.reject(
                Object.assign(new Error('restart transaction'), { code: '40001' }),
              );
            }
            return (target.begin as (...a: unknown[]) => unknown)(...args);
          };
        }
        return Reflect.get(target, prop, receiver);
      },
    }) as Sql;
    const [a] =
      await sql`insert into agents (name, type) values (${`${tag} retry`}, 'monitor') returning id`;
    await settle([a!.id]);
    ok((await push(['public.agents'], {}, flaky))[0]);
    expect(failures).toBe(2);
    expect(await mirrored(a!.id)).toBeDefined();
    await expect(
      withRetry(
        {
          primary: fnSql,
          mirror,
          random: () => 0,
          sleep: () => Promise.resolve(),
        },
        () => Promise.reject(Object.assign(new Error('always'), { code: '40001' })),
        3,
      ),
    ).rejects.toThrow('always');
  });

  it('fails cleanly when the mirror is down, keeps the work, and catches up later', async () => {
    const down = createSql('postgresql://postgres:postgres@127.0.0.1:9/none', {
      applicationName: 'down',
      max: 1,
    });
    const [a] =
      await sql`insert into agents (name, type) values (${`${tag} outage`}, 'monitor') returning id`;
    await settle([a!.id]);
    const [failed] = await push(['public.agents'], {}, down);
    expect(failed).toMatchObject({
      status: 'failed',
      error: expect.stringMatching(/ECONNREFUSED/),
    });
    const [state] =
      await sql`select status, error_message from cesar.sync_state where table_name = 'public.agents' and direction = 'up'`;
    expect(state).toMatchObject({
      status: 'failed',
      error_message: expect.stringMatching(/ECONNREFUSED/),
    });
    expect(await sql`select 1 from cesar.sync_outbox where row_key = ${a!.id}`).toHaveLength(1);
    await down.end();
    ok((await push(['public.agents']))[0]);
    expect(await mirrored(a!.id)).toBeDefined();
  });

  it("refuses to run when the mirror's table drifted from the primary's", async () => {
    const shape = await describeTable(sql, 'public.sessions');
    await preflight(mirror, shape);
    await mirror`alter table public.sessions add column surprise text`;
    try {
      await expect(preflight(mirror, shape)).rejects.toThrow(SchemaDriftError);
      const [outcome] = await push(['public.sessions']);
      expect(outcome).toMatchObject({
        status: 'failed',
        error: expect.stringMatching(/column surprise is not on the primary/),
      });
    } finally {
      await mirror`alter table public.sessions drop column surprise`;
    }
  });

  it('refuses a table with a composite key or none, by the rule the capture uses (cesar.single_key_column)', async () => {
    const composite = `public.${tag}_composite`;
    const keyless = `public.${tag}_keyless`;
    await sql.unsafe(`
      create table ${composite} (a int, b int, updated_at timestamptz not null default now(),
                                 primary key (a, b));
      create table ${keyless} (a int, updated_at timestamptz not null default now())
    `);
    try {
      for (const table of [composite, keyless]) {
        const [rule] = await sql`select cesar.single_key_column(to_regclass(${table})) as key`;
        expect(rule!.key).toBeNull();
        const refused = { status: 'failed', error: `${table} has no single-column primary key` };
        for (const direction of ['up', 'down'] as const) {
          const [outcome] = await runSync(
            { primary: fnSql, mirror, random: () => 0.5 },
            { tables: [table], direction, dryRun: false, batchSize: 100, budgetMs: 60_000 },
          );
          expect(outcome).toMatchObject(refused);
        }
        const [restored] = await runRestore({ primary: fnSql, mirror, random: () => 0.5 }, {
          tables: [table],
          batchSize: 100,
          budgetMs: 60_000,
        });
        expect(restored).toMatchObject(refused);
      }
    } finally {
      await sql`delete from cesar.sync_state where table_name in (${composite}, ${keyless})`;
      await sql.unsafe(`drop table ${composite}, ${keyless}`);
    }
  });

  it('lets only one run push a table at a time', async () => {
    await sql`update cesar.sync_state set lease_holder = 'someone', lease_until = now() + interval '1 minute'
              where table_name = 'public.agents' and direction = 'up'`;
    try {
      expect((await push(['public.agents']))[0]).toEqual({
        table: 'public.agents',
        direction: 'up',
        status: 'busy',
      });
    } finally {
      await sql`update cesar.sync_state set lease_holder = null, lease_until = '-infinity'
                where table_name = 'public.agents' and direction = 'up'`;
    }
  });

  it('reports a run that died as failed once its lease lapsed, and the next run takes over', async () => {
    await sql`update cesar.sync_state
              set status = 'in_progress', lease_holder = 'sync:dead', error_message = null,
                  lease_until = now() - interval '1 second'
              where table_name = 'public.agents' and direction = 'up'`;
    const [live] = await sql`select status, error_message from cesar.sync_lag
                             where table_name = 'public.agents' and direction = 'up'`;
    expect(live).toMatchObject({
      status: 'failed',
      error_message: expect.stringMatching(/^run sync:dead stopped without recording an outcome/),
    });
    ok((await push(['public.agents']))[0]);
    const [state] = await sql`select status, lease_holder, error_message from cesar.sync_state
                              where table_name = 'public.agents' and direction = 'up'`;
    expect(state).toEqual({ status: 'completed', lease_holder: null, error_message: null });
  });

  it('shows a run that stopped at its budget as in progress, not failed', async () => {
    // What a run that spent its budget records: to be continued, no lease held.
    await sql`update cesar.sync_state
              set status = 'in_progress', lease_holder = null, lease_until = '-infinity',
                  error_message = null
              where table_name = 'public.agents' and direction = 'up'`;
    try {
      const [live] = await sql`select status, error_message from cesar.sync_lag
                               where table_name = 'public.agents' and direction = 'up'`;
      expect(live).toEqual({ status: 'in_progress', error_message: null });
    } finally {
      ok((await push(['public.agents']))[0]);
    }
  });

  it('renews its lease while it works, so a long run keeps its table', async () => {
    // The run waits on the outbox, locked here for three lease periods.
    const { holding } = await stallOnOutbox(new Promise((r) => setTimeout(r, 3_000)));
    const run = pushWithShortLease(['public.agents']);
    const seen: boolean[] = [];
    for (let i = 0; i < 12; i++) {
      await new Promise((r) => setTimeout(r, 200));
      const [row] = await sql`select lease_holder is not null and lease_until > now() as held
                              from cesar.sync_state
                              where table_name = 'public.agents' and direction = 'up'`;
      seen.push(row!.held);
    }
    await holding;
    ok((await run)[0]);
    expect(seen.every(Boolean), JSON.stringify(seen)).toBe(true);
  });

  it('stops a run that lost its lease, and leaves the table to the run that took over', async () => {
    const [a] =
      await sql`insert into agents (name, type) values (${`${tag} stalled`}, 'monitor') returning id`;
    await settle([a!.id]);
    let stealing = () => {};
    const stolen = new Promise<void>((resolve) => (stealing = resolve));
    // The run stalls on the outbox; meanwhile another run takes its table over.
    const { holding } = await stallOnOutbox(
      stolen.then(() => new Promise((r) => setTimeout(r, 600))),
    );
    const run = pushWithShortLease(['public.agents']);
    await new Promise((r) => setTimeout(r, 300));
    await sql`update cesar.sync_state set lease_holder = 'sync:other', lease_until = now() + interval '1 minute'
              where table_name = 'public.agents' and direction = 'up'`;
    stealing();
    await holding;
    try {
      expect((await run)[0]).toMatchObject({
        status: 'failed',
        error: expect.stringMatching(
          /lost its lease on public\.agents \(up\): another run took over/,
        ),
      });
      const [state] = await sql`select lease_holder from cesar.sync_state
                                where table_name = 'public.agents' and direction = 'up'`;
      expect(state).toEqual({ lease_holder: 'sync:other' });
    } finally {
      await sql`update cesar.sync_state set lease_holder = null, lease_until = '-infinity'
                where table_name = 'public.agents' and direction = 'up'`;
      ok((await push(['public.agents']))[0]);
    }
  });

  it('verifies: equal after a push, then finds a changed, a missing and an extra row', async () => {
    ok((await push(['public.sessions']))[0]);
    expect(await verifyTable(sql, mirror, 'public.sessions')).toMatchObject({
      equal: true,
      missing: [],
      extra: [],
      changed: [],
    });
    const [one, two] = await sql`select id from sessions order by id limit 2`;
    const extra = crypto.randomUUID();
    await mirror`update public.sessions set name = 'tampered' where id = ${one!.id}`;
    await mirror`delete from public.sessions where id = ${two!.id}`;
    await mirror`insert into public.sessions (id, name, status, metadata, started_at, created_at, updated_at)
                 values (${extra}, 'stray', 'active', '{}', now(), now(), now())`;
    try {
      expect(await verifyTable(sql, mirror, 'public.sessions')).toMatchObject({
        equal: false,
        changed: [one!.id],
        missing: [two!.id],
        extra: [extra],
      });
    } finally {
      await mirror`delete from public.sessions where id = ${extra}`;
      await sql`select cesar.sync_backfill('public.sessions')`;
      await push(['public.sessions']);
    }
    expect((await verifyTable(sql, mirror, 'public.sessions')).equal).toBe(true);
  });

  it("shows each table's lag in cesar.mv_sync_lag once refreshed", async () => {
    await push(['public.agents']);
    await sql`select cesar.refresh_monitoring_views()`;
    const [row] = await sql`select status, lag_seconds, dirty_rows from cesar.mv_sync_lag
                            where table_name = 'public.agents' and direction = 'up'`;
    expect(row).toMatchObject({ status: 'completed' });
    expect(Number(row!.lag_seconds)).toBeLessThan(60);
    const [down] =
      await sql`select status from cesar.mv_sync_lag where table_name = 'public.agents' and direction = 'down'`;
    expect(down).toEqual({ status: 'pending' });
  });

  it('sends the mirror nothing CockroachDB rejects', () => {
    expectCockroachCompatible(statements);
  });
});

describe('the page pipeline of a push', () => {
  /** Pages 1..`pages`, each written in `writeMs`; what happened, in order. */
  function pages(count: number, writeMs: (page: number) => number) {
    const log: string[] = [];
    const read = (cursor: number | null) =>
      Promise.resolve({ n: cursor ?? 1, next: (cursor ?? 1) < count ? (cursor ?? 1) + 1 : null });
    const write = async (page: { n: number }) => {
      log.push(`write ${page.n}`);
      await new Promise((r) => setTimeout(r, writeMs(page.n)));
      log.push(`written ${page.n}`);
      return () => {
        log.push(`checkpoint ${page.n}`);
        return Promise.resolve();
      };
    };
    return { log, read, write };
  }

  it('writes two pages at once and checkpoints them in page order', async () => {
    const { log, read, write } = pages(3, (n) => (n === 1 ? 60 : 10));
    expect(await pipeline(read, null, write, () => null)).toBe('done');
    expect(log.filter((l) => l.startsWith('checkpoint'))).toEqual([
      'checkpoint 1',
      'checkpoint 2',
      'checkpoint 3',
    ]);
    expect(log.indexOf('write 2')).toBeLessThan(log.indexOf('written 1'));
  });

  it('after a failure, lets the pages being written finish and checkpoints none of them', async () => {
    const { log, read, write } = pages(5, (n) => (n === 3 ? 80 : 10));
    let checks = 0;
    // The lease is lost at the fourth look, with page 3 being written.
    const lost = () => {
      if (++checks === 4) throw new Error('the run lost its lease');
      return null;
    };
    await expect(pipeline(read, null, write, lost)).rejects.toThrow(/lost its lease/);
    // Answered only once page 3 was written; not checkpointed after the failure.
    expect(log).toEqual([
      'write 1',
      'write 2',
      'written 1',
      'checkpoint 1',
      'write 3',
      'written 2',
      'checkpoint 2',
      'written 3',
    ]);
    expect(log).not.toContain('write 4');
  });
});

describe('the bulk load of a first push', () => {
  // A table of its own, bigger than a bulk page (10,000 rows), with values COPY must escape.
  const TABLE = 'bulktest.items';

  /**
   * The mirror, with its COPY FROM STDIN statements answered by `onCopy` instead: a rejection
   * refuses that COPY, as a mirror would answer it; undefined lets it through.
   */
  const copyFaults = (onCopy: (text: string) => Promise<never> | undefined) => {
    const faulty = (db: Sql): Sql =>
      new Proxy(db, {
        get(target, prop, receiver) {
          if (prop === 'unsafe') {
            return (text: string, ...rest: unknown[]) => {
              const fault = /^COPY .* FROM STDIN/.test(text) ? onCopy(text) : undefined;
              if (fault) return { writable: () => fault };
              return (target.unsafe as (...a: unknown[]) => unknown)(text, ...rest);
            };
          }
          if (prop === 'begin') {
            return (fn: (tx: Sql) => unknown) =>
              target.begin((tx) => fn(faulty(tx as unknown as Sql)));
          }
          const value = Reflect.get(target, prop, receiver);
          return typeof value === 'function' ? value.bind(target) : value;
        },
      });
    return faulty(mirror);
  };
  const sqlError = (code: string, message: string) => Object.assign(new Error(message), { code });
  const hashes = async (db: Sql, table: string) =>
    await db.unsafe(`select md5(string_agg(t::text, '|' order by id)) as h, count(*)::int as n
                     from ${table} t`);

  it('streams COPY pages into the empty mirror table byte for byte, resuming after a CPU stop', {
    timeout: 90_000,
  }, async () => {
    await sql.unsafe(`
      create schema if not exists bulktest;
      create table bulktest.items (
        id integer primary key,
        body text,
        tags text[] not null,
        doc jsonb,
        updated_at timestamptz not null default now()
      );
      insert into bulktest.items (id, body, tags, doc)
      select i,
             case when i % 7 = 0 then null
                  else E'line one\nline two\ttabbed \\ back' || chr(13) || ' ' || i end,
             array['a b', 'q"uote', E'x\ny'], case when i % 5 = 0 then null else jsonb_build_object('i', i) end
      from generate_series(1, 25003) i;
      insert into cesar.sync_tables (table_name) values ('bulktest.items');
    `);
    await mirror`create schema if not exists bulktest`;
    // The first call is cut after its first page (the CPU budget is spent from the start).
    const [cut] = await push([TABLE], { cpu: spentCpu });
    expect(cut).toMatchObject({ status: 'in_progress', inserted: 10_000 });
    // The pull's updated_at index is built once the table is loaded, not kept up during COPY.
    const indexes = async () =>
      (await mirror<Array<{ indexdef: string }>>`
        select indexdef from pg_indexes where schemaname = 'bulktest' and tablename = 'items'
        order by indexname`).map((r) => r.indexdef.replace(/^.* USING /, ''));
    expect(await indexes()).toEqual(['btree (id)']);
    const [rest] = await push([TABLE]);
    expect(ok(rest).inserted).toBe(15_003);
    expect(await indexes()).toEqual(['btree (updated_at, id)', 'btree (id)']);
    expect(await hashes(mirror, TABLE)).toEqual(await hashes(sql, TABLE));
    const [{ n }] = await mirror`select count(*)::int as n from public.cesar_sync_versions
                                 where table_name = ${TABLE}` as unknown as [{ n: number }];
    expect(n).toBe(0); // bulk-loaded rows carry no version: bulk_loaded_from tells them apart
    // In COPY's binary format: no value printed on the primary or parsed on the mirror.
    expect(statements.filter((s) => s.startsWith('COPY "bulktest"."items"'))).toEqual(
      Array(3).fill(
        'COPY "bulktest"."items" ("id", "body", "tags", "doc", "updated_at") FROM STDIN WITH BINARY',
      ),
    );
  });

  it('loads in text where the mirror refuses the binary format, and says so once', {
    timeout: 60_000,
  }, async () => {
    await sql.unsafe(`
      create table bulktest.texts (id integer primary key, body text, updated_at timestamptz not null default now());
      insert into bulktest.texts (id, body) select i, E'a\tb\\c ' || i from generate_series(1, 25000) i;
      insert into cesar.sync_tables (table_name) values ('bulktest.texts');
    `);
    // Binary refused as a mirror without it would.
    const refused: string[] = [];
    const refusing = copyFaults((text) => {
      if (!text.endsWith('WITH BINARY')) return undefined;
      refused.push(text);
      return Promise.reject(sqlError('0A000', 'unimplemented: binary format for COPY'));
    });
    const logged: string[] = [];
    const error = console.error;
    console.error = (...args: unknown[]) => logged.push(args.join(' '));
    try {
      const [done] = await push(['bulktest.texts'], {}, refusing);
      expect(ok(done).inserted).toBe(25_000);
    } finally {
      console.error = error;
    }
    // The first page was refused and loaded in text; the pages after went in text at once.
    expect(refused).toHaveLength(1);
    expect(logged.filter((l) => /refused COPY's binary format/.test(l))).toEqual([
      expect.stringMatching(/bulktest\.texts: the mirror refused COPY's binary format \(0A000/),
    ]);
    expect(await hashes(mirror, 'bulktest.texts')).toEqual(await hashes(sql, 'bulktest.texts'));
  });

  it('fails a page the mirror refuses after its end, and pushes the table by upserts after that', {
    timeout: 60_000,
  }, async () => {
    await sql.unsafe(`
      create schema if not exists bulktest;
      create table bulktest.checked (id integer primary key, body text, updated_at timestamptz not null default now());
      insert into bulktest.checked (id, body) select i, 'row ' || i from generate_series(1, 50) i;
      insert into cesar.sync_tables (table_name) values ('bulktest.checked');
    `);
    await mirror`create schema if not exists bulktest`;
    // A check of the mirror's own refuses the last row: one chunk, refused after the COPY's end,
    // which postgres.js 3.4.9 does not report (the page waited for good).
    await mirror.unsafe(`create table bulktest.checked (id integer primary key, body text,
                         updated_at timestamptz not null default now(), check (id < 50))`);
    const started = performance.now();
    const [failed] = await runSync({
      primary: fnSql,
      mirror,
      random: () => 0.5,
      sleep: () => Promise.resolve(),
      copyConfirmMs: 1_000,
    }, {
      tables: ['bulktest.checked'],
      direction: 'up',
      dryRun: false,
      batchSize: 1000,
      budgetMs: 30_000,
    });
    expect(failed).toMatchObject({
      status: 'failed',
      error: expect.stringMatching(/did not confirm the COPY/),
    });
    expect(performance.now() - started).toBeLessThan(15_000);
    const [{ n }] = await mirror<[{ n: number }]>`select count(*)::int as n from bulktest.checked`;
    expect(n).toBe(0);
    // The next push takes the upsert path, which says what the mirror refuses.
    const [again] = await push(['bulktest.checked']);
    expect(again).toMatchObject({ status: 'failed', error: expect.stringMatching(/check/) });
  });

  it('after a failed page, loads the rest in bulk from its checkpoint', {
    timeout: 60_000,
  }, async () => {
    await sql.unsafe(`
      create table bulktest.halted (id integer primary key, body text, updated_at timestamptz not null default now());
      insert into bulktest.halted (id, body) select i, 'row ' || i from generate_series(1, 25000) i;
      insert into cesar.sync_tables (table_name) values ('bulktest.halted');
    `);
    // The second page's COPY fails (the mirror cancelled it).
    let copies = 0;
    const failing = copyFaults(() =>
      ++copies === 2
        ? Promise.reject(sqlError('57014', 'canceling statement due to user request'))
        : undefined
    );
    const [failed] = await push(['bulktest.halted'], {}, failing);
    expect(failed).toMatchObject({ status: 'failed', error: expect.stringMatching(/canceling/) });
    expect(copies).toBe(2);
    // The first page is on the mirror and checkpointed, nothing after it: the next run loads
    // the rest in bulk from there.
    const [{ n }] = await mirror`select count(*)::int as n from bulktest.halted` as unknown as [
      { n: number },
    ];
    expect(n).toBe(10_000);
    const before = statements.length;
    const [done] = await push(['bulktest.halted']);
    expect(ok(done).inserted).toBe(15_000);
    expect(statements.slice(before).filter((t) => t.startsWith('COPY "bulktest"."halted"')))
      .toHaveLength(2);
    expect(await hashes(mirror, 'bulktest.halted')).toEqual(await hashes(sql, 'bulktest.halted'));
  });
});

describe('pull and restore under a CPU budget', () => {
  // A table of its own (schema cputest), so that the restore touches nothing another test uses.
  const TABLE = 'cputest.notes';
  beforeAll(async () => {
    await sql.unsafe(`
      create schema if not exists cputest;
      create table if not exists cputest.notes (
        id uuid primary key default gen_random_uuid(),
        body text not null,
        updated_at timestamptz not null default now()
      );
      insert into cesar.sync_tables (table_name) values ('cputest.notes') on conflict do nothing;
      select cesar.watch('cputest.notes');
    `);
    await mirror`create schema if not exists cputest`;
    // The first push creates the mirror's table.
    ok((await push([TABLE]))[0]);
  });

  /** Calls `run` until its table is no longer in progress; returns every outcome. */
  async function untilDone<T extends { status: string }>(run: () => Promise<T[]>) {
    const outcomes: T[] = [];
    for (let call = 0; call < 30; call++) {
      const [outcome] = await run();
      outcomes.push(outcome!);
      if (outcome!.status !== 'in_progress') break;
    }
    return outcomes;
  }

  it('pulls and restores a page per call once the CPU budget is spent, losing and doubling nothing', async () => {
    await mirror`insert into cputest.notes (id, body, updated_at)
                 select gen_random_uuid(), 'from the mirror ' || i, now()
                 from generate_series(1, 25) i`;
    const pulls = await untilDone(() =>
      runSync({ primary: fnSql, mirror, random: () => 0.5 }, {
        tables: [TABLE],
        direction: 'down',
        dryRun: false,
        batchSize: 10,
        budgetMs: 60_000,
        cpu: spentCpu,
      })
    );
    expect(pulls[0]).toMatchObject({ status: 'in_progress', stopped: 'cpu', inserted: 10 });
    expect(pulls.at(-1)).toMatchObject({ status: 'completed', stopped: 'done' });
    expect(pulls.reduce((n, o) => n + ('inserted' in o ? o.inserted : 0), 0)).toBe(25);
    expect((await verifyTable(sql, mirror, TABLE)).equal).toBe(true);
    await settleTable('cputest');

    // The mirror changes behind the sync's back; a restore puts its version on the primary.
    await mirror`update cputest.notes set body = body || ' (restored)'`;
    const restores = await untilDone(() =>
      runRestore({ primary: fnSql, mirror, random: () => 0.5 }, {
        tables: [TABLE],
        batchSize: 10,
        budgetMs: 60_000,
        cpu: spentCpu,
      })
    );
    expect(restores[0]).toMatchObject({ status: 'in_progress', stopped: 'cpu', updated: 10 });
    expect(restores.at(-1)).toMatchObject({ status: 'completed', stopped: 'done' });
    expect(restores.length).toBeGreaterThanOrEqual(3);
    expect(restores.reduce((n, o) => n + ('updated' in o ? o.updated : 0), 0)).toBe(25);
    const rows = await sql`select body from cputest.notes where body like '% (restored)'`;
    expect(rows).toHaveLength(25);
    expect((await verifyTable(sql, mirror, TABLE)).equal).toBe(true);
  });
});

/** Processes events until none of the schema's tables' is left pending. */
async function settleTable(schema: string) {
  for (let i = 0; i < 200; i++) {
    await process(sql);
    const [row] = await sql`select count(*)::int as n from cesar.event_log
                            where schema_name = ${schema} and status in ('pending', 'processing')`;
    if (row!.n === 0) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error('events were not processed');
}

describe('POST /sync', () => {
  const SECRET = 'sync-test-secret-0123456789';
  const app = createSyncApp({
    sql: fnSql,
    mirror,
    config: { functionSecret: SECRET, serviceRoleKey: null },
    random: () => 0.5,
  });
  const post = (body: unknown, token = SECRET) =>
    app.request('/sync', {
      method: 'POST',
      headers: { authorization: `Bearer ${token}` },
      body: JSON.stringify(body),
    });

  it('pushes and reports, and GET /sync/status shows every mirrored table', async () => {
    const res = await post({ tables: ['public.sessions'], direction: 'up' });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({
      direction: 'up',
      dry_run: false,
      tables: [{ table: 'public.sessions', status: 'completed' }],
    });
    const status =
      await (await app.request('/sync/status', { headers: { authorization: `Bearer ${SECRET}` } }))
        .json();
    expect(status.tables.map((t: { table_name: string }) => t.table_name)).toEqual(
      expect.arrayContaining(['public.agents', 'public.sessions']),
    );
  });

  it('runs a table named twice once', async () => {
    const res = await post({ tables: ['public.sessions', 'public.sessions'], dry_run: true });
    expect(res.status).toBe(200);
    expect((await res.json()).tables).toHaveLength(1);
    const verify = await app.request('/sync/verify', {
      method: 'POST',
      headers: { authorization: `Bearer ${SECRET}` },
      body: JSON.stringify({ tables: Array.from({ length: 100 }, () => 'public.sessions') }),
    });
    expect(verify.status).toBe(200);
    expect((await verify.json()).tables).toHaveLength(1);
  });

  it('reports its CPU time, and verifies what fits in the CPU budget, listing the rest', async () => {
    // A CPU clock that advances 100 ms at every reading: spent after the first table.
    let cpuNow = 0;
    const slowApp = createSyncApp({
      sql: fnSql,
      mirror,
      config: { functionSecret: SECRET, serviceRoleKey: null },
      random: () => 0.5,
      cpuClock: () => (cpuNow += 100),
    });
    const call = (path: string, body: unknown) =>
      slowApp.request(path, {
        method: 'POST',
        headers: { authorization: `Bearer ${SECRET}` },
        body: JSON.stringify(body),
      });
    const tables = ['public.sessions', 'public.agents', 'public.tasks'];
    const verified = await (await call('/sync/verify', { tables, cpu_budget_ms: 50 })).json();
    expect(verified.tables.map((t: { table: string }) => t.table)).toEqual(['public.sessions']);
    expect(verified.remaining).toEqual(['public.agents', 'public.tasks']);
    expect(verified.equal).toBe(false);
    expect(verified.cpu_ms).toBeGreaterThanOrEqual(100);
    const synced = await (await call('/sync', { tables, cpu_budget_ms: 50 })).json();
    expect(synced.tables.map((t: { status: string }) => t.status)).toEqual([
      'completed',
      'in_progress',
      'in_progress',
    ]);
    expect(synced.cpu_ms).toBeGreaterThanOrEqual(100);
    const real = await (await post({ tables: ['public.sessions'] })).json();
    expect(real.cpu_ms).toEqual(expect.any(Number));
  });

  it('refuses bad requests with 4xx and touches nothing', async () => {
    const cases: Array<[Response, number, RegExp]> = [
      [await post({ direction: 'sideways' }), 400, /invalid request body/],
      [await post({ cpu_budget_ms: 0 }), 400, /cpu_budget_ms/],
      [await post({ cpu_budget_ms: 5_000 }), 400, /cpu_budget_ms/],
      [await post({ tables: ['public.nope'] }), 422, /not mirrored: public.nope/],
      [await post({ direction: 'down', dry_run: 'yes' }), 400, /dry_run/],
      [await post({}, 'wrong-secret-0000000000'), 401, /invalid bearer token/],
      [
        await post({ tables: Array.from({ length: 20_000 }, () => 'public.agents') }),
        400,
        /too_big|at most 100|<=100/i,
      ],
    ];
    for (const [res, status, message] of cases) {
      expect(res.status).toBe(status);
      expect(JSON.stringify((await res.json()).error)).toMatch(message);
    }
  });
});
