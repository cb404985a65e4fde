import { spawn } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { fixedClock } from '../packages/shared/src/clock.ts';
import { type CpuBudget, processCpuMs } from '../packages/shared/src/cpu.ts';
import { createJobDrainApp } from '../packages/shared/src/queue/app.ts';
import type { HandlerRegistry } from '../packages/shared/src/queue/drain.ts';
import { PermanentJobError, RetryAfterError } from '../packages/shared/src/queue/errors.ts';
import { enqueueJob, enqueueJobs, ringIfJobsDue } from '../packages/shared/src/queue/queries.ts';
import { repoRoot } from '../scripts/lib/paths.ts';
import { functionSql, poolerUrl, testSql, withRollback } from './helpers/db.ts';
import { drain, jobById, jobsOf, uniqueJobType } from './helpers/queue.ts';

const sql = testSql(undefined, 12);
// The drains' own pool: through the transaction pooler, as the job-drain function has it.
const fnSql = functionSql(12, 'job-drain');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A CPU budget that is already spent. */
const spentCpu: CpuBudget = { limitMs: 0, spentMs: () => 1, exhausted: () => true };

/** Spends `ms` of this process's CPU time (a handler with real work to do). */
function burnCpu(ms: number) {
  const until = processCpuMs() + ms;
  while (processCpuMs() < until) { /* spinning */ }
}

/** Runs a drain whose handlers never finish in its own process, and SIGKILLs it mid-batch. */
async function killHangingDrain(type: string, concurrency = 50, batchSize = 50) {
  const child = spawn(process.execPath, [
    '--import',
    'tsx',
    path.join(repoRoot, 'tests/fixtures/hanging-drain.ts'),
    poolerUrl(),
    type,
    String(concurrency),
    String(batchSize),
  ], {
    cwd: repoRoot,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  await new Promise<void>((resolve) => child.stdout!.once('data', () => resolve()));
  await sleep(100);
  child.kill('SIGKILL');
  await new Promise((r) => child.once('exit', r));
}

describe('drainQueue', () => {
  it('runs every due job once and stores its result', async () => {
    const type = uniqueJobType();
    await enqueueJobs(
      sql,
      Array.from({ length: 120 }, (_, i) => ({ job_type: type, payload: { i } })),
    );
    const result = await drain(fnSql, {
      [type]: ({ job }) => Promise.resolve({ doubled: (job.payload.i as number) * 2 }),
    }, { jobTypes: [type] });
    expect(result).toMatchObject({
      claimed: 120,
      completed: 120,
      retried: 0,
      failed: 0,
      superseded: 0,
      stopped: 'empty',
    });
    const rows = await jobsOf(sql, type);
    expect(rows.every((r) => r.status === 'completed')).toBe(true);
    expect(rows.map((r) => (r.result as { doubled: number }).doubled).sort((a, b) => a - b))
      .toEqual(
        Array.from({ length: 120 }, (_, i) => i * 2),
      );
  });

  it('goes on when jobs waiting in its local queue were cancelled meanwhile', async () => {
    const type = uniqueJobType();
    await enqueueJobs(
      sql,
      Array.from({ length: 6 }, (_, i) => ({ job_type: type, payload: { i } })),
    );
    // The first two start at once; while they run, the four leased behind them are cancelled:
    // a group of free slots that comes back empty must not leave the drain waiting for ever.
    const result = await drain(fnSql, {
      [type]: async ({ job }) => {
        if (job.payload.i === 0) {
          await sql`select cesar.cancel_jobs(array(
                      select id from cesar.job_queue
                      where job_type = ${type} and (payload->>'i')::int >= 2))`;
        }
        await sleep(20);
        return null;
      },
    }, { jobTypes: [type], concurrency: 2, batchSize: 6, budgetMs: 5_000 });
    expect(result).toMatchObject({ claimed: 6, completed: 2, superseded: 4 });
    const rows = await jobsOf(sql, type);
    expect(rows.map((r) => r.status).sort()).toEqual([
      'cancelled',
      'cancelled',
      'cancelled',
      'cancelled',
      'completed',
      'completed',
    ]);
  });

  it('runs every job of a type capped at one at a time in one call, one after another', async () => {
    const type = uniqueJobType();
    await sql`insert into cesar.job_types (job_type, concurrency) values (${type}, 1)`;
    await enqueueJobs(
      sql,
      Array.from({ length: 3 }, (_, i) => ({ job_type: type, payload: { i } })),
    );
    let running = 0;
    let most = 0;
    const result = await drain(fnSql, {
      [type]: async () => {
        most = Math.max(most, ++running);
        await sleep(20);
        running--;
        return null;
      },
    }, { jobTypes: [type] });
    expect(result).toMatchObject({ claimed: 3, completed: 3, stopped: 'empty' });
    expect(most).toBe(1);
  });

  it('claims again while its only job runs at 20 ms and backing off, not at every wake-up', async () => {
    // Claiming at every wake-up while a job ran sent an empty claim every millisecond or so
    // (29,973 in this test's budget). Work written meanwhile is still taken (see the test
    // after the next).
    for (const capped of [false, true]) {
      const type = uniqueJobType();
      if (capped) {
        await sql`insert into cesar.job_types (job_type, concurrency) values (${type}, 1)`;
      }
      await enqueueJobs(
        sql,
        Array.from({ length: capped ? 2 : 1 }, (_, i) => ({ job_type: type, payload: { i } })),
      );
      const result = await drain(fnSql, {
        [type]: async () => {
          await sleep(300);
          return null;
        },
      }, { jobTypes: [type], concurrency: 10, batchSize: capped ? 10 : 1 });
      const what = capped ? 'capped at one' : 'uncapped';
      expect(result, what).toMatchObject(
        capped ? { claimed: 2, completed: 2 } : { claimed: 1, completed: 1 },
      );
      // Per 300 ms handler: the few around its start and end, and the looks for work written
      // meanwhile after 20, 40, 80, 160 ms (one claim at a time).
      expect(result.claims, what).toBeLessThanOrEqual((capped ? 2 : 1) * 14);
    }
  });

  it('claims again when a capped job finished while its next claim was running', async () => {
    const type = uniqueJobType();
    await sql`insert into cesar.job_types (job_type, concurrency) values (${type}, 1)`;
    await enqueueJobs(
      sql,
      Array.from({ length: 3 }, (_, i) => ({ job_type: type, payload: { i } })),
    );
    // The second job holds the claim's per-type lock and lets it go only after it has
    // finished: the claim that follows its start then runs while it finishes.
    const locker = await sql.reserve();
    try {
      const result = await drain(fnSql, {
        [type]: async ({ job }) => {
          if (job.payload.i === 1) {
            await locker`select pg_advisory_lock(hashtext('cesar.job_queue'), hashtext(${type}))`;
            setTimeout(() => {
              locker`select pg_advisory_unlock(hashtext('cesar.job_queue'), hashtext(${type}))`
                .execute();
            }, 100);
          }
          return null;
        },
      }, { jobTypes: [type] });
      expect(result).toMatchObject({ claimed: 3, completed: 3, stopped: 'empty' });
    } finally {
      locker.release();
    }
  });

  it('takes work written while a long handler runs, without waiting for the handler', async () => {
    const slow = uniqueJobType();
    const quick = `${slow}_quick`;
    await enqueueJob(sql, slow);
    let slowStarted = 0;
    let slowEnded = 0;
    let quickStarted = 0;
    const drained = drain(fnSql, {
      [slow]: async () => {
        slowStarted = Date.now();
        await new Promise((r) => setTimeout(r, 3_000));
        slowEnded = Date.now();
      },
      [quick]: () => {
        quickStarted = Date.now();
        return Promise.resolve();
      },
    }, { jobTypes: [slow, quick] });
    while (!slowStarted) await new Promise((r) => setTimeout(r, 20));
    // The drain's last claim found nothing; a writer that found its doorbell held rang none.
    await new Promise((r) => setTimeout(r, 300));
    await enqueueJob(sql, quick);
    const result = await drained;
    expect(result).toMatchObject({ claimed: 2, completed: 2 });
    expect(quickStarted).toBeGreaterThan(0);
    expect(quickStarted).toBeLessThan(slowEnded);
  });

  it('never runs a job twice when two drains overlap', async () => {
    const type = uniqueJobType();
    await enqueueJobs(
      sql,
      Array.from({ length: 400 }, (_, i) => ({ job_type: type, payload: { i } })),
    );
    const runs = new Map<string, number>();
    const handlers: HandlerRegistry = {
      [type]: async ({ job }) => {
        runs.set(job.id, (runs.get(job.id) ?? 0) + 1);
        await sleep(Math.random() * 3);
      },
    };
    const [a, b] = await Promise.all([
      drain(fnSql, handlers, { jobTypes: [type], concurrency: 8, batchSize: 8 }),
      drain(fnSql, handlers, { jobTypes: [type], concurrency: 8, batchSize: 8 }),
    ]);
    expect(a.claimed + b.claimed).toBe(400);
    expect(a.claimed).toBeGreaterThan(0);
    expect(b.claimed).toBeGreaterThan(0);
    expect(runs.size).toBe(400);
    expect([...runs.values()].every((n) => n === 1)).toBe(true);
    expect((await jobsOf(sql, type)).every((r) => r.status === 'completed')).toBe(true);
  });

  it('retries an error with backoff, fails a permanent error, honours retry-after, names unknown types', async () => {
    const type = uniqueJobType();
    await sql`insert into cesar.job_types (job_type, backoff_base_seconds, backoff_cap_seconds) values (${type}, 10, 100)`;
    const flaky = await enqueueJob(sql, type, { mode: 'flaky' });
    const broken = await enqueueJob(sql, type, { mode: 'broken' });
    const limited = await enqueueJob(sql, type, { mode: 'limited' });
    const unknownType = uniqueJobType('unknown');
    const unknown = await enqueueJob(sql, unknownType);
    const retryAt = new Date(Date.now() + 90_000);
    const before = Date.now();
    const result = await drain(fnSql, {
      [type]: ({ job }) => {
        if (job.payload.mode === 'flaky') throw new Error('connection reset');
        if (job.payload.mode === 'broken') throw new PermanentJobError('agent 42 does not exist');
        throw new RetryAfterError('429 from upstream', retryAt);
      },
    }, { jobTypes: [type, unknownType] });
    expect(result).toMatchObject({ claimed: 4, completed: 0, retried: 2, failed: 2 });

    const flakyRow = await jobById(sql, flaky);
    expect(flakyRow).toMatchObject({
      status: 'pending',
      attempts: 1,
      last_error: 'connection reset',
    });
    // Attempt 1 with base 10 s and random 0.5: 7.5 s later.
    expect(flakyRow.run_at.getTime() - before).toBeGreaterThanOrEqual(7_000);
    expect(flakyRow.run_at.getTime() - Date.now()).toBeLessThanOrEqual(7_500);
    expect(await jobById(sql, broken)).toMatchObject({
      status: 'failed',
      attempts: 1,
      last_error: 'agent 42 does not exist',
    });
    expect((await jobById(sql, limited)).run_at.getTime()).toBe(retryAt.getTime());
    expect(await jobById(sql, unknown)).toMatchObject({
      status: 'failed',
      last_error: expect.stringContaining(`no handler for job type "${unknownType}"`),
    });
  });

  it('aborts a handler still running at its time limit and retries it', async () => {
    const type = uniqueJobType();
    await sql`insert into cesar.job_types (job_type, lease_seconds, backoff_base_seconds) values (${type}, 3, 1)`;
    const id = await enqueueJob(sql, type);
    let aborted = false;
    const result = await drain(fnSql, {
      [type]: ({ signal }) =>
        new Promise((_, reject) =>
          signal.addEventListener('abort', () => {
            aborted = true;
            reject(signal.reason);
          })
        ),
    }, { jobTypes: [type], timeLimitMs: 1_000 });
    expect(aborted).toBe(true);
    expect(result).toMatchObject({ claimed: 1, retried: 1 });
    expect(await jobById(sql, id)).toMatchObject({
      status: 'pending',
      errors: [
        expect.objectContaining({
          kind: 'timeout',
          error: "still running at the drain's time limit (1000 ms)",
        }),
      ],
    });
  });

  it('stops claiming when its budget is spent and leaves the rest pending', async () => {
    const type = uniqueJobType();
    await enqueueJobs(sql, Array.from({ length: 50 }, () => ({ job_type: type })));
    const result = await drain(fnSql, { [type]: () => sleep(50) }, {
      jobTypes: [type],
      budgetMs: 120,
      concurrency: 2,
      batchSize: 2,
    });
    expect(result.stopped).toBe('budget');
    expect(result.completed).toBe(result.claimed);
    expect(result.claimed).toBeLessThan(50);
    const pending = (await jobsOf(sql, type)).filter((r) => r.status === 'pending');
    expect(pending).toHaveLength(50 - result.claimed);
  });

  it('stops claiming once its CPU budget is spent, after one batch, and finishes that batch', async () => {
    const type = uniqueJobType();
    await enqueueJobs(sql, Array.from({ length: 30 }, () => ({ job_type: type })));
    const ran: string[] = [];
    const result = await drain(fnSql, {
      [type]: ({ job }) => {
        ran.push(job.id);
        return Promise.resolve(null);
      },
    }, { jobTypes: [type], concurrency: 10, batchSize: 10, cpu: spentCpu });
    // The first claim always happens (every invocation makes progress); then the spent CPU
    // budget stops claiming, and the claimed batch is finished.
    expect(result).toMatchObject({ claimed: 10, completed: 10, stopped: 'cpu' });
    expect(ran).toHaveLength(10);
    const rows = await jobsOf(sql, type);
    expect(rows.filter((r) => r.status === 'completed')).toHaveLength(10);
    expect(rows.filter((r) => r.status === 'pending' && r.attempts === 0)).toHaveLength(20);
  });

  it('loses nothing when a drain is killed mid-batch: the jobs run once its leases expire', async () => {
    const type = uniqueJobType();
    await sql`insert into cesar.job_types (job_type, lease_seconds) values (${type}, 2)`;
    await enqueueJobs(
      sql,
      Array.from({ length: 30 }, (_, i) => ({ job_type: type, payload: { i } })),
    );
    await killHangingDrain(type);
    const held = await jobsOf(sql, type);
    expect(held.filter((r) => r.status === 'running' && r.locked_by === 'doomed-drain'))
      .toHaveLength(30);

    // Before the leases run out, nobody may take them.
    expect((await drain(fnSql, { [type]: () => Promise.resolve() }, { jobTypes: [type] })).claimed)
      .toBe(0);
    await sleep(2_100);
    const runs = new Map<number, number>();
    const result = await drain(fnSql, {
      [type]: ({ job }) => {
        runs.set(job.payload.i as number, (runs.get(job.payload.i as number) ?? 0) + 1);
        return Promise.resolve();
      },
    }, { jobTypes: [type] });
    expect(result).toMatchObject({ claimed: 30, completed: 30 });
    expect(runs.size).toBe(30);
    const rows = await jobsOf(sql, type);
    expect(rows.every((r) => r.status === 'completed' && r.attempts === 2)).toBe(true);
    expect(rows[0]!.errors).toEqual([
      expect.objectContaining({ kind: 'lease_expired', worker: 'doomed-drain' }),
    ]);
  });

  it('charges no attempt to the jobs a killed drain had claimed but not started', async () => {
    const type = uniqueJobType();
    await sql`insert into cesar.job_types (job_type, lease_seconds, max_attempts) values (${type}, 2, 2)`;
    await enqueueJobs(
      sql,
      Array.from({ length: 30 }, (_, i) => ({ job_type: type, payload: { i } })),
    );
    // Five slots, a batch of thirty: five handlers start, twenty-five jobs wait in its queue.
    await killHangingDrain(type, 5, 30);
    const held = await jobsOf(sql, type);
    expect(held.filter((r) => r.status === 'running' && r.locked_by === 'doomed-drain'))
      .toHaveLength(30);
    expect(held.filter((r) => r.attempts === 1)).toHaveLength(5);
    expect(held.filter((r) => r.attempts === 0)).toHaveLength(25);

    // Killed twice more, each time with the same jobs waiting: still not charged.
    for (let kill = 0; kill < 2; kill++) {
      await sleep(2_100);
      await killHangingDrain(type, 5, 30);
    }
    await sleep(2_100);
    await drain(fnSql, { [type]: () => Promise.resolve() }, { jobTypes: [type] });
    const rows = await jobsOf(sql, type);
    const kinds = (r: (typeof rows)[number]) => r.errors.map((e) => e.kind);
    // Each claim starts the first five by id. The first five started under two killed drains:
    // two lost attempts, failed for good (max_attempts 2) by the third drain's claim, which then
    // started the next five; those lost one attempt and ran on their second.
    for (const r of rows.slice(0, 5)) {
      expect(r).toMatchObject({ status: 'failed', attempts: 2 });
      expect(kinds(r)).toEqual(['lease_expired', 'lease_expired']);
    }
    for (const r of rows.slice(5, 10)) {
      expect(r).toMatchObject({ status: 'completed', attempts: 2 });
      expect(kinds(r)).toEqual(['lease_expired']);
    }
    // Twenty jobs sat claimed in three killed drains and never started: one attempt, theirs.
    for (const r of rows.slice(10)) {
      expect(r).toMatchObject({ status: 'completed', attempts: 1, errors: [] });
    }
  });
});

describe('POST /job-drain', () => {
  const SECRET = 'job-drain-test-secret-000000';
  const app = (handlers: HandlerRegistry = {}) =>
    createJobDrainApp({
      sql: fnSql,
      config: { functionSecret: SECRET, serviceRoleKey: null },
      clock: fixedClock('2026-11-20T00:00:00Z'),
      handlers,
    });
  const post = (body: string, token = SECRET, headers: Record<string, string> = {}) =>
    app().request('/job-drain', {
      method: 'POST',
      body,
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', ...headers },
    });

  it('answers with counts', async () => {
    const type = uniqueJobType();
    await enqueueJobs(sql, Array.from({ length: 5 }, () => ({ job_type: type })));
    const res = await app({ [type]: () => Promise.resolve('ok') }).request('/job-drain', {
      method: 'POST',
      body: JSON.stringify({ job_types: [type], reason: 'test' }),
      headers: { authorization: `Bearer ${SECRET}` },
    });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({
      claimed: 5,
      completed: 5,
      retried: 0,
      failed: 0,
      cancelled: 0,
      superseded: 0,
      slow_to_stop: 0,
      stopped: 'empty',
    });
  });

  it('stops at its CPU budget, rings its continuation, and invocations finish every job once', async () => {
    const type = uniqueJobType();
    await enqueueJobs(
      sql,
      Array.from({ length: 300 }, (_, i) => ({ job_type: type, payload: { i } })),
    );
    const runs = new Map<string, number>();
    const rings: Array<string[] | null> = [];
    const drainApp = createJobDrainApp({
      sql: fnSql,
      config: { functionSecret: SECRET, serviceRoleKey: null },
      clock: fixedClock('2026-11-20T00:00:00Z'),
      handlers: {
        // 2 ms of CPU each: a batch of 50 spends far more than the 5 ms budget below.
        [type]: ({ job }) => {
          burnCpu(2);
          runs.set(job.id, (runs.get(job.id) ?? 0) + 1);
          return Promise.resolve(null);
        },
      },
      // The doorbell, recorded: the test makes the call it would make.
      ringContinuation: (_sql, jobTypes) => {
        rings.push(jobTypes);
        return Promise.resolve(true);
      },
    });
    const answers = [];
    for (let call = 0; call < 50; call++) {
      const res = await drainApp.request('/job-drain', {
        method: 'POST',
        body: JSON.stringify({
          job_types: [type],
          cpu_budget_ms: 5,
          batch_size: 50,
          concurrency: 50,
          reason: call === 0 ? 'test' : 'doorbell',
        }),
        headers: { authorization: `Bearer ${SECRET}` },
      });
      expect(res.status).toBe(200);
      const answer = await res.json();
      answers.push(answer);
      if (!answer.continued) break;
    }
    expect(answers[0]).toMatchObject({
      claimed: 50,
      completed: 50,
      stopped: 'cpu',
      continued: true,
    });
    expect(answers[0].cpu_ms).toBeGreaterThanOrEqual(5);
    expect(answers.at(-1)).toMatchObject({ stopped: 'empty', continued: false });
    // 300 jobs, at most one batch of 50 per invocation: six that stopped at the CPU budget.
    expect(answers.length).toBeGreaterThanOrEqual(6);
    expect(rings).toEqual(answers.filter((a) => a.continued).map(() => [type]));
    expect(answers.reduce((n, a) => n + a.completed, 0)).toBe(300);
    const rows = await jobsOf(sql, type);
    expect(rows.every((r) => r.status === 'completed' && r.attempts === 1)).toBe(true);
    expect(runs.size).toBe(300);
    expect([...runs.values()].every((n) => n === 1)).toBe(true);
  });

  it('rings the job-drain doorbell as a continuation only while due jobs are left', async () => {
    await withRollback(sql, async (tx) => {
      await tx`insert into cesar.local_settings (name, value) values
                 ('cesar_functions_url', 'http://127.0.0.1:1/functions/v1'),
                 ('cesar_function_secret', 'continuation-secret-value')
               on conflict (name) do update set value = excluded.value`;
      const [before] = await tx`select coalesce(max(id), 0) as id from net.http_request_queue`;
      const rung = async () =>
        await tx`select url, convert_from(body, 'utf8')::jsonb as body
                 from net.http_request_queue where id > ${before!.id}`;
      const type = uniqueJobType();
      // Nothing of this type due (a job for later only): no doorbell.
      await tx`insert into cesar.job_queue (job_type, run_at)
               values (${type}, now() + interval '1 hour')`;
      expect(await ringIfJobsDue(tx, [type])).toBe(false);
      expect(await rung()).toEqual([]);
      await tx`insert into cesar.job_queue (job_type) values (${type})`;
      expect(await ringIfJobsDue(tx, [type])).toBe(true);
      expect(await rung()).toEqual([{
        url: 'http://127.0.0.1:1/functions/v1/job-drain',
        body: { reason: 'doorbell', linger_ms: 2000 },
      }]);
    });
  });

  it('refuses a wrong secret, bad JSON, unknown fields, out-of-range values and big bodies, claiming nothing', async () => {
    const type = uniqueJobType();
    const id = await enqueueJob(sql, type);
    const cases: Array<[Response, number, RegExp]> = [
      [
        await post(JSON.stringify({ job_types: [type] }), 'wrong-secret-0000000000'),
        401,
        /invalid bearer token/,
      ],
      [await post('{"job_types": [', SECRET), 400, /not valid JSON/],
      [
        await post(JSON.stringify({ job_types: [type], batchsize: 5 }), SECRET),
        400,
        /invalid request body/,
      ],
      [
        await post(JSON.stringify({ job_types: [type], concurrency: 0 }), SECRET),
        400,
        /invalid request body/,
      ],
      [
        await post(JSON.stringify({ job_types: [type], pad: 'x'.repeat(1_100_000) }), SECRET),
        413,
        /larger than/,
      ],
    ];
    for (const [res, status, message] of cases) {
      expect(res.status).toBe(status);
      expect((await res.json()).error.message).toMatch(message);
    }
    const bad = await post(JSON.stringify({ job_types: [type], batchsize: 5 }), SECRET);
    expect((await bad.json()).error.issues).toEqual([
      expect.objectContaining({ message: expect.stringMatching(/batchsize/) }),
    ]);
    expect(await jobById(sql, id)).toMatchObject({ status: 'pending', attempts: 0 });
  });
});
