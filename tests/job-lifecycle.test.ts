import { spawn } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { createApiApp } from '../packages/shared/src/api/app.ts';
import { fixedClock } from '../packages/shared/src/clock.ts';
import { enqueueJob } from '../packages/shared/src/queue/queries.ts';
import { repoRoot } from '../scripts/lib/paths.ts';
import { functionSql, poolerUrl, testSql } from './helpers/db.ts';
import { drain, jobById, uniqueJobType } from './helpers/queue.ts';

// Issue 16, items 4 and 5: cancelling running jobs, heartbeats and progress. The drain hears
// of cancels and renews leases through one statement (cesar.renew_leases) while handlers run.

const sql = testSql(undefined, 6);
const fnSql = functionSql(6, 'job-drain');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until<T>(
  what: string,
  probe: () => Promise<T | null | undefined | false>,
  ms = 10_000,
) {
  const end = Date.now() + ms;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

describe('cancelling a running job', () => {
  it('aborts its handler within seconds; the job ends cancelled, not retried', async () => {
    const type = uniqueJobType();
    const id = await enqueueJob(sql, type);
    let ticks = 0;
    let abortedAt = 0;
    const drained = drain(fnSql, {
      // Works (a tick every 50 ms) until its signal aborts.
      [type]: ({ signal }) =>
        new Promise((_, reject) => {
          const timer = setInterval(() => ticks++, 50);
          signal.addEventListener('abort', () => {
            abortedAt = Date.now();
            clearInterval(timer);
            reject(signal.reason);
          });
        }),
    }, { jobTypes: [type] });
    await until('the handler to start', () => Promise.resolve(ticks > 0));
    const cancelledAt = Date.now();
    expect(await sql`select cesar.cancel_jobs(array[${id}]::bigint[])::text as id`)
      .toEqual([{ id }]);
    // Marked, still running (its handler has not stopped yet).
    expect(await jobById(sql, id)).toMatchObject({ status: 'running' });
    const result = await drained;
    expect(abortedAt).toBeGreaterThan(0);
    expect(abortedAt - cancelledAt).toBeLessThan(5_000);
    expect(result).toMatchObject({ claimed: 1, cancelled: 1, retried: 0, failed: 0 });
    const ticksAtEnd = ticks;
    await sleep(200);
    expect(ticks).toBe(ticksAtEnd); // its effect stopped
    const row = await jobById(sql, id);
    expect(row).toMatchObject({ status: 'cancelled', attempts: 1, locked_by: null });
    expect(row.finished_at).not.toBeNull();
    expect(row.errors).toEqual([expect.objectContaining({ kind: 'cancelled' })]);
  });

  it('reaches the handlers of concurrent drains: each stops its own, none is retried', async () => {
    const type = uniqueJobType();
    const ids = [];
    for (let i = 0; i < 4; i++) ids.push(await enqueueJob(sql, type, { i }));
    let started = 0;
    let aborted = 0;
    const handlers = {
      [type]: ({ signal }: { signal: AbortSignal }) =>
        new Promise((_, reject) => {
          started++;
          signal.addEventListener('abort', () => {
            aborted++;
            reject(signal.reason);
          });
        }),
    };
    // Two drains of two slots each: each takes two of the four jobs.
    const drains = [1, 2].map(() =>
      drain(fnSql, handlers, { jobTypes: [type], concurrency: 2, batchSize: 2 })
    );
    await until('four handlers to start', () => Promise.resolve(started === 4));
    await sql`select cesar.cancel_jobs(${ids}::bigint[])`;
    const results = await Promise.all(drains);
    expect(results.map((r) => r.claimed)).toEqual([2, 2]);
    expect(results.reduce((n, r) => n + r.cancelled, 0)).toBe(4);
    expect(aborted).toBe(4);
    const rows = await Promise.all(ids.map((id) => jobById(sql, id)));
    expect(rows.map((r) => [r.status, r.attempts])).toEqual(Array(4).fill(['cancelled', 1]));
  });

  it('ends cancelled when its drain died: the expired lease is not retried', async () => {
    const type = uniqueJobType();
    await sql`insert into cesar.job_types (job_type, lease_seconds) values (${type}, 2)`;
    const id = await enqueueJob(sql, type);
    const child = spawn(process.execPath, [
      '--import',
      'tsx',
      path.join(repoRoot, 'tests/fixtures/hanging-drain.ts'),
      poolerUrl(),
      type,
      '1',
      '1',
    ], { cwd: repoRoot, stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise<void>((resolve) => child.stdout!.once('data', () => resolve()));
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    expect(await jobById(sql, id)).toMatchObject({ status: 'running', attempts: 1 });
    await sql`select cesar.cancel_jobs(array[${id}]::bigint[])`;
    await sleep(2_100);
    let ran = false;
    const result = await drain(fnSql, {
      [type]: () => {
        ran = true;
        return Promise.resolve();
      },
    }, { jobTypes: [type] });
    expect(ran).toBe(false);
    expect(result.claimed).toBe(0);
    const row = await jobById(sql, id);
    expect(row).toMatchObject({ status: 'cancelled', attempts: 1, locked_by: null });
    expect(row.errors).toEqual([
      expect.objectContaining({ kind: 'cancelled', worker: 'doomed-drain' }),
    ]);
  });

  it('a handler that fails after its cancel was requested ends cancelled (cesar.fail_jobs)', async () => {
    const type = uniqueJobType();
    const id = await enqueueJob(sql, type);
    const result = await drain(fnSql, {
      [type]: async () => {
        await sql`select cesar.cancel_jobs(array[${id}]::bigint[])`;
        throw new Error('gave up');
      },
    }, { jobTypes: [type] });
    expect(result).toMatchObject({ cancelled: 1, retried: 0, failed: 0 });
    expect(await jobById(sql, id)).toMatchObject({ status: 'cancelled', last_error: 'gave up' });
  });

  it('a handler that finishes after its cancel was requested ends cancelled (cesar.complete_jobs)', async () => {
    const type = uniqueJobType();
    const id = await enqueueJob(sql, type);
    const result = await drain(fnSql, {
      [type]: async () => {
        await sql`select cesar.cancel_jobs(array[${id}]::bigint[])`;
        return 'done anyway';
      },
    }, { jobTypes: [type] });
    // The drain counts the refused completion as superseded; the job keeps its result.
    expect(result).toMatchObject({ completed: 0, superseded: 1 });
    expect(await jobById(sql, id)).toMatchObject({ status: 'cancelled', result: 'done anyway' });
  });
});

describe('a handler that ignores its signal', () => {
  // The drain aborts its signal and keeps its job leased, renewed, until it has stopped: no
  // second attempt runs beside it. Then the outcome the drain decided is recorded, not the
  // handler's own.

  /** Other drains keep trying for `ms` (more than two 2 s lease lengths); how many they took. */
  async function othersClaim(type: string, ms: number, also: () => Promise<void> = async () => {}) {
    let claimed = 0;
    const end = Date.now() + ms;
    while (Date.now() < end) {
      claimed += (await drain(fnSql, { [type]: () => Promise.resolve('other') }, {
        jobTypes: [type],
      })).claimed;
      await also();
      await sleep(250);
    }
    return claimed;
  }

  it('after a cancel: its job stays running, unclaimable and not requeueable, until it stops; then cancelled, its late result dropped', async () => {
    const type = uniqueJobType();
    await sql`insert into cesar.job_types (job_type, lease_seconds) values (${type}, 2)`;
    const stubborn = await enqueueJob(sql, type, { honours: false });
    const honouring = await enqueueJob(sql, type, { honours: true });
    let started = 0;
    let release = () => {};
    const released = new Promise<void>((r) => release = r);
    const drained = drain(fnSql, {
      [type]: ({ job, signal }) => {
        started++;
        if (!job.payload.honours) return released.then(() => 'done late');
        return new Promise((_, reject) =>
          signal.addEventListener('abort', () => reject(signal.reason))
        );
      },
    }, { jobTypes: [type] });
    await until('both handlers to start', () => Promise.resolve(started === 2));
    const cancelledAt = Date.now();
    await sql`select cesar.cancel_jobs(${[stubborn, honouring]}::bigint[])`;
    // The handler that honours its signal stops as before: its job ends cancelled within
    // seconds, while the other still runs.
    await until(
      'the honouring job to end cancelled',
      async () => (await jobById(sql, honouring)).status === 'cancelled',
      5_000,
    );
    expect(Date.now() - cancelledAt).toBeLessThan(5_000);
    // The other job stays running, leased (2 s leases, renewed): no drain claims it and
    // cesar.retry_jobs (which requeues cancelled jobs) finds nothing to requeue.
    const requeued: unknown[] = [];
    const others = await othersClaim(type, 5_000, async () => {
      requeued.push(...await sql`select cesar.retry_jobs(array[${stubborn}]::bigint[])`);
    });
    expect(others).toBe(0);
    expect(requeued).toEqual([]);
    const [running] = await sql`
      select status, attempts, locked_until > now() as leased, cancel_requested_at is not null as marked
      from cesar.job_queue where id = ${stubborn}`;
    expect(running).toEqual({ status: 'running', attempts: 1, leased: true, marked: true });
    release();
    const result = await drained;
    expect(result).toMatchObject({
      claimed: 2,
      cancelled: 2,
      completed: 0,
      superseded: 0,
      slow_to_stop: 1,
    });
    const row = await jobById(sql, stubborn);
    expect(row).toMatchObject({ status: 'cancelled', attempts: 1, result: null, locked_by: null });
    expect(row.errors).toEqual([
      expect.objectContaining({
        kind: 'cancelled',
        error: expect.stringMatching(
          /^cancelled while running; its handler stopped \d+ ms after its signal was aborted$/,
        ),
      }),
    ]);
    expect((await jobById(sql, honouring)).errors).toEqual([
      expect.objectContaining({ kind: 'cancelled', error: 'cancelled while running' }),
    ]);
  });

  it('past the time limit: its job stays leased until it stops, then is retried, never two attempts at once', async () => {
    const type = uniqueJobType();
    await sql`insert into cesar.job_types (job_type, lease_seconds, backoff_base_seconds) values (${type}, 2, 1)`;
    const id = await enqueueJob(sql, type);
    let runs = 0;
    let live = 0;
    let most = 0;
    let release = () => {};
    const released = new Promise<void>((r) => release = r);
    const handlers = {
      [type]: async () => {
        runs++;
        most = Math.max(most, ++live);
        try {
          // The first attempt ignores its signal and then fails on its own.
          if (runs === 1) {
            await released;
            throw new Error('gave up late');
          }
          return 'second attempt';
        } finally {
          live--;
        }
      },
    };
    const drained = drain(fnSql, handlers, { jobTypes: [type], timeLimitMs: 1_000 });
    await until('the handler to start', () => Promise.resolve(runs > 0));
    // Past the 1 s limit and the 0.75 s backoff its retry had before, other drains find nothing.
    const others = await othersClaim(type, 5_000);
    expect(others).toBe(0);
    expect(await jobById(sql, id)).toMatchObject({ status: 'running', attempts: 1 });
    const releasedAt = Date.now();
    release();
    expect(await drained).toMatchObject({ claimed: 1, retried: 1, slow_to_stop: 1 });
    const retried = await jobById(sql, id);
    // The drain's decision (a timeout, retried), not the handler's late error.
    expect(retried).toMatchObject({ status: 'pending', attempts: 1, locked_by: null });
    expect(retried.last_error).toMatch(
      /^still running at the drain's time limit \(1000 ms\); its handler stopped \d+ ms after its signal was aborted$/,
    );
    expect(retried.errors).toEqual([expect.objectContaining({ kind: 'timeout' })]);
    // Its backoff (0.75 s: attempt 1, base 1 s, random 0.5) counts from when it stopped.
    expect(retried.run_at.getTime()).toBeGreaterThanOrEqual(releasedAt + 700);
    await sql`update cesar.job_queue set run_at = now() where id = ${id}`;
    expect(await drain(fnSql, handlers, { jobTypes: [type] })).toMatchObject({
      claimed: 1,
      completed: 1,
      slow_to_stop: 0,
    });
    expect(await jobById(sql, id)).toMatchObject({
      status: 'completed',
      attempts: 2,
      result: 'second attempt',
    });
    expect(runs).toBe(2);
    expect(most).toBe(1);
  });
});

describe('a handler that returns after its time limit', () => {
  it('completes its job (held meanwhile), not retried: its work is done', async () => {
    const type = uniqueJobType();
    await sql`insert into cesar.job_types (job_type, lease_seconds) values (${type}, 2)`;
    const id = await enqueueJob(sql, type);
    let runs = 0;
    const result = await drain(fnSql, {
      [type]: async () => {
        runs++;
        await sleep(2_500); // ignores its signal, past the 1 s limit and a 2 s lease
        return 'late but done';
      },
    }, { jobTypes: [type], timeLimitMs: 1_000 });
    expect(result).toMatchObject({ claimed: 1, completed: 1, retried: 0, slow_to_stop: 1 });
    expect(await jobById(sql, id)).toMatchObject({
      status: 'completed',
      attempts: 1,
      result: 'late but done',
    });
    expect(runs).toBe(1);
  });
});

describe('a drain whose claim fails', () => {
  it('keeps its running handlers leased until they settle, records their outcomes, then answers the error', async () => {
    const type = uniqueJobType();
    await sql`insert into cesar.job_types (job_type, lease_seconds) values (${type}, 2)`;
    const long = await enqueueJob(sql, type, { ms: 4_500 });
    const short = await enqueueJob(sql, type, { ms: 0 });
    // The drain's own claims fail from a moment on (as with 53300 from the pooler); its other
    // statements (lease renewals, outcomes), and every other drain's, do not.
    let failClaims = false;
    const failing = new Proxy(fnSql, {
      apply(target, self, args) {
        const text = Array.isArray(args[0]) ? (args[0] as string[]).join('') : '';
        if (failClaims && text.includes('finish_and_claim')) {
          return Promise.reject(
            Object.assign(new Error('sorry, too many clients already'), { code: '53300' }),
          );
        }
        return Reflect.apply(target, self, args);
      },
    });
    let started = 0;
    let endShort = () => {};
    const shortMayEnd = new Promise<void>((r) => endShort = r);
    const drained = drain(failing, {
      [type]: async ({ job }) => {
        started++;
        if (job.payload.ms === 0) {
          await shortMayEnd;
          return 'short';
        }
        await sleep(job.payload.ms as number);
        return 'long';
      },
    }, { jobTypes: [type], concurrency: 2, batchSize: 2 }).then((r) => ({ r }), (e) => ({ e }));
    await until('both handlers to start', () => Promise.resolve(started === 2));
    failClaims = true;
    // The short job's end makes the drain claim again, with its outcome: that claim fails.
    endShort();
    // Other drains keep trying past a lease length: the long job's lease is still renewed.
    let others = 0;
    const end = Date.now() + 3_500;
    while (Date.now() < end) {
      others += (await drain(fnSql, { [type]: () => Promise.resolve('other') }, {
        jobTypes: [type],
      })).claimed;
      await sleep(250);
    }
    expect(others).toBe(0);
    expect(await drained).toEqual({ e: expect.objectContaining({ code: '53300' }) });
    expect(await jobById(sql, long)).toMatchObject({
      status: 'completed',
      attempts: 1,
      result: 'long',
    });
    expect(await jobById(sql, short)).toMatchObject({
      status: 'completed',
      attempts: 1,
      result: 'short',
    });
  });
});

describe('leases renewed while handlers run', () => {
  it('keeps the lease of a handler running past lease_seconds: no other drain takes it', async () => {
    const type = uniqueJobType();
    await sql`insert into cesar.job_types (job_type, lease_seconds) values (${type}, 2)`;
    const id = await enqueueJob(sql, type);
    let runs = 0;
    let heartbeat: Promise<void> | undefined;
    const first = drain(fnSql, {
      [type]: async (ctx) => {
        runs++;
        await sleep(500);
        heartbeat = ctx.heartbeat!();
        await sleep(4_500); // 5 s in all, with a 2 s lease
        return 'done';
      },
    }, { jobTypes: [type] });
    await until('the handler to start', () => Promise.resolve(runs > 0));
    // Other drains keep trying while the first handler runs, past two lease lengths.
    let others = 0;
    const end = Date.now() + 4_000;
    while (Date.now() < end) {
      others += (await drain(fnSql, { [type]: () => Promise.resolve() }, { jobTypes: [type] }))
        .claimed;
      await sleep(250);
    }
    await heartbeat;
    expect(others).toBe(0);
    expect(await first).toMatchObject({ claimed: 1, completed: 1 });
    expect(runs).toBe(1);
    expect(await jobById(sql, id)).toMatchObject({
      status: 'completed',
      attempts: 1,
      errors: [],
      result: 'done',
    });
  });

  it('ctx.heartbeat() renews the lease at once, whatever is left of it', async () => {
    const type = uniqueJobType();
    await sql`insert into cesar.job_types (job_type, lease_seconds) values (${type}, 60)`;
    const id = await enqueueJob(sql, type);
    const leaseOf = async () =>
      (await sql`select locked_until from cesar.job_queue where id = ${id}`)[0]!
        .locked_until as Date;
    let before: Date | undefined;
    let after: Date | undefined;
    await drain(fnSql, {
      [type]: async (ctx) => {
        before = await leaseOf();
        await sleep(300);
        await ctx.heartbeat!();
        after = await leaseOf();
      },
    }, { jobTypes: [type] });
    // Renewed 300 ms later, for 60 s from then (not a third through: a renewal would wait).
    expect(after!.getTime() - before!.getTime()).toBeGreaterThanOrEqual(250);
  });
});

describe('progress', () => {
  const SECRET = 'test-function-secret-0123456789';
  const api = createApiApp({
    sql: fnSql,
    mirror: null,
    config: {
      functionSecret: SECRET,
      serviceRoleKey: 'test-service-role-key-0123456789',
      dbPoolMax: 4,
      databasePooled: true,
    },
    clock: fixedClock('2026-11-20T12:00:00Z'),
    applicationName: 'cesar-edge/api/test',
    jobTypes: [],
  });
  const get = async (url: string) => {
    const res = await api.request(url, { headers: { authorization: `Bearer ${SECRET}` } });
    expect(res.status).toBe(200);
    return await res.json();
  };

  it('is written with the lease renewal and shown by the API (list and detail)', async () => {
    const type = uniqueJobType();
    const id = await enqueueJob(sql, type);
    let release = () => {};
    const released = new Promise<void>((r) => release = r);
    const drained = drain(fnSql, {
      [type]: async (ctx) => {
        ctx.progress!(0.1, 'starting');
        ctx.progress!(0.4, 'copied 40,000 rows');
        await released;
        return null;
      },
    }, { jobTypes: [type] });
    const shown = await until('progress in the job list', async () => {
      const { jobs } = await get(`/api/jobs?job_type=${type}`);
      return jobs[0]?.progress === 0.4 ? jobs[0] : null;
    });
    expect(shown).toMatchObject({ id, status: 'running', progress_message: 'copied 40,000 rows' });
    expect(await get(`/api/jobs/${id}`)).toMatchObject({
      id,
      status: 'running',
      progress: 0.4,
      progress_message: 'copied 40,000 rows',
      errors: [],
    });
    release();
    expect(await drained).toMatchObject({ completed: 1 });
    const missing = await api.request('/api/jobs/999999999999', {
      headers: { authorization: `Bearer ${SECRET}` },
    });
    expect(missing.status).toBe(404);
  });

  it('costs a short handler no statement: what it reports is never written', async () => {
    const type = uniqueJobType();
    const id = await enqueueJob(sql, type);
    const result = await drain(fnSql, {
      [type]: (ctx) => {
        ctx.progress!(0.5, 'halfway');
        return Promise.resolve('quick');
      },
    }, { jobTypes: [type] });
    expect(result).toMatchObject({ completed: 1 });
    // No lease renewal was sent for it (a handler is asked about after 2 s of running).
    expect(
      await sql`select status, progress, progress_message from cesar.job_queue where id = ${id}`,
    ).toEqual([{ status: 'completed', progress: null, progress_message: null }]);
  });
});
