import { afterEach, describe, expect, it } from 'vitest';
import {
  claimJobs,
  completeJobs,
  enqueueJob,
  enqueueJobs,
} from '../packages/shared/src/queue/queries.ts';
import { testSql } from './helpers/db.ts';
import { jobById, type JobRow, uniqueJobType as newJobType } from './helpers/queue.ts';
import { apiApp, call } from './helpers/workflows.ts';

// Keyed enqueues (issue 16, item 2; migration 20261203001200_enqueue_modes.sql): keep,
// replace, debounce and unique_for, from SQL, enqueue_many, templates and POST /api/jobs,
// and concurrent enqueues of one key on real Postgres.

const sql = testSql(undefined, 24);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const keyOf = (type: string) => `${type}:key`;

// Jobs left due would be walked by other files' claims on the shared database (job-queue's
// "reads no more than it claims" counts them): each test deletes its own.
const madeTypes: string[] = [];
function uniqueJobType(): string {
  const type = newJobType();
  madeTypes.push(type);
  return type;
}
afterEach(async () => {
  const types = madeTypes.splice(0);
  await sql`delete from cesar.job_queue where job_type like any (${
    types.map((t) => `${t}%`)
  }::text[])`;
});

type KeyedJob = JobRow & { payload: Record<string, unknown>; execution_id: string | null };

async function jobsOf(jobType: string): Promise<KeyedJob[]> {
  return await sql<KeyedJob[]>`
    select *, execution_id::text from cesar.job_queue where job_type = ${jobType} order by id`;
}

async function claimAll(type: string, worker = 'w') {
  return await claimJobs(sql, { worker, batchSize: 10, jobTypes: [type] });
}

/** Seconds from the database's now() to the job's run_at. */
async function dueIn(id: string): Promise<number> {
  const [row] = await sql<Array<{ s: number }>>`
    select extract(epoch from run_at - now())::float8 as s from cesar.job_queue where id = ${id}`;
  return row!.s;
}

describe('enqueue with a key: keep', () => {
  it('returns the unfinished holder, like dedup_key; old positional and named calls still work', async () => {
    const type = uniqueJobType();
    const key = keyOf(type);
    const first = await enqueueJob(sql, type, { n: 1 }, { key });
    expect(await enqueueJob(sql, type, { n: 2 }, { key, mode: 'keep' })).toBe(first);
    // The key is dedup_key: the two spellings meet.
    const [legacy] = await sql`select cesar.enqueue(${type}, '{}', null, 0, null, ${key}) as id`;
    expect(String(legacy!.id)).toBe(first);
    const [named] = await sql`select cesar.enqueue(${type}, dedup_key => ${key}) as id`;
    expect(String(named!.id)).toBe(first);
    const jobs = await jobsOf(type);
    expect(jobs).toHaveLength(1);
    expect(jobs[0]!.payload).toEqual({ n: 1 });
    // Finished, the key is free again.
    const [claimed] = await claimAll(type);
    await completeJobs(sql, 'w', [{ id: claimed!.id, attempt: 1, result: null }]);
    expect(await enqueueJob(sql, type, {}, { key })).not.toBe(first);
  });

  it('leaves plain enqueues alone: no key, no mode, a job each', async () => {
    const type = uniqueJobType();
    const a = await enqueueJob(sql, type, { n: 1 });
    const b = await enqueueJob(sql, type, { n: 1 });
    expect(a).not.toBe(b);
    const [row] =
      await sql`select job_key, key_mode, key_until from cesar.job_queue where id = ${a}`;
    expect(row).toEqual({ job_key: null, key_mode: null, key_until: null });
  });
});

describe('enqueue with a key: replace', () => {
  it('gives the waiting job the new payload and run_at; with the job running, makes a new one', async () => {
    const type = uniqueJobType();
    const key = keyOf(type);
    const later = new Date(Date.now() + 3_600_000);
    const first = await enqueueJob(sql, type, { n: 1 }, { key, mode: 'replace', runAt: later });
    const second = await enqueueJob(sql, type, { n: 2 }, { key, mode: 'replace' });
    expect(second).toBe(first);
    let jobs = await jobsOf(type);
    expect(jobs).toHaveLength(1);
    expect(jobs[0]!.payload).toEqual({ n: 2 });
    expect(await dueIn(first)).toBeLessThan(1); // run_at: now, not an hour on
    // Running jobs are not waiting: an enqueue now makes a second job, which waits.
    const [claimed] = await claimAll(type);
    expect(claimed!.id).toBe(first);
    const third = await enqueueJob(sql, type, { n: 3 }, { key, mode: 'replace', runAt: later });
    expect(third).not.toBe(first);
    const fourth = await enqueueJob(sql, type, { n: 4 }, { key, mode: 'replace', runAt: later });
    expect(fourth).toBe(third);
    jobs = await jobsOf(type);
    expect(jobs.map((j) => [j.status, j.payload])).toEqual([
      ['running', { n: 2 }],
      ['pending', { n: 4 }],
    ]);
  });

  it('ends a failed attempt instead of retrying it while a newer job with its key waits', async () => {
    const type = uniqueJobType();
    const key = keyOf(type);
    const first = await enqueueJob(sql, type, { n: 1 }, { key, mode: 'replace' });
    const [claimed] = await claimAll(type);
    expect(claimed!.id).toBe(first);
    const waiting = await enqueueJob(sql, type, { n: 2 }, {
      key,
      mode: 'debounce',
      delaySeconds: 3600,
    });
    expect(waiting).not.toBe(first);
    // The running one fails and would be retried: two would wait with one key (a unique
    // violation that failed the drain's whole batch). It ends, naming the one that waits.
    const [outcome] = await sql<Array<{ id: string; status: string }>>`
      select id::text, status from cesar.fail_jobs('w', ${
      sql.json([{
        id: first,
        attempt: claimed!.attempts,
        kind: 'error',
        error: 'boom',
        status: 'pending',
        run_at: new Date().toISOString(),
      }])
    })`;
    expect(outcome).toEqual({ id: first, status: 'cancelled' });
    const failed = await jobById(sql, first);
    expect(failed).toMatchObject({ status: 'cancelled' });
    expect(failed!.last_error).toContain(`job ${waiting} waits with its key`);
    // Nor does a retry by hand requeue it while the other waits.
    const [retried] = await sql<Array<{ n: number }>>`
      select count(*)::int as n from cesar.retry_jobs(array[${first}]::bigint[])`;
    expect(retried!.n).toBe(0);
    expect((await jobsOf(type)).map((j) => j.status)).toEqual(['cancelled', 'pending']);
  });
});

describe('enqueue with a key: debounce', () => {
  it('runs once, delay after the last enqueue, with the last payload', async () => {
    const type = uniqueJobType();
    const key = keyOf(type);
    const first = await enqueueJob(sql, type, { n: 1 }, {
      key,
      mode: 'debounce',
      delaySeconds: 0.6,
    });
    expect(await dueIn(first)).toBeGreaterThan(0.4);
    await sleep(400);
    // Not due yet; each enqueue pushes run_at to now() + delay again.
    expect(await claimAll(type)).toHaveLength(0);
    const second = await enqueueJob(sql, type, { n: 2 }, {
      key,
      mode: 'debounce',
      delaySeconds: 0.6,
    });
    expect(second).toBe(first);
    expect(await dueIn(first)).toBeGreaterThan(0.4);
    await sleep(400); // 0.8 s after the first enqueue: due without the push, not due with it
    expect(await claimAll(type)).toHaveLength(0);
    await sleep(400);
    const claimed = await claimAll(type);
    expect(claimed.map((j) => [j.id, j.payload])).toEqual([[first, { n: 2 }]]);
    // While it runs, an enqueue debounces a new job.
    const next = await enqueueJob(sql, type, { n: 3 }, { key, mode: 'debounce', delaySeconds: 60 });
    expect(next).not.toBe(first);
    expect(await jobsOf(type)).toHaveLength(2);
  });
});

describe('enqueue with a key: unique_for', () => {
  it('makes at most one job per key per period, whatever the earlier job became', async () => {
    const type = uniqueJobType();
    const key = keyOf(type);
    const enqueue = (n: number) =>
      enqueueJob(sql, type, { n }, { key, mode: 'unique_for', periodSeconds: 1.5 });
    const first = await enqueue(1);
    expect(await enqueue(2)).toBe(first);
    const [claimed] = await claimAll(type);
    await completeJobs(sql, 'w', [{ id: claimed!.id, attempt: 1, result: null }]);
    expect((await jobById(sql, first)).status).toBe('completed');
    expect(await enqueue(3)).toBe(first); // finished, still within the period
    await sql`update cesar.job_queue set status = 'failed' where id = ${first}`;
    expect(await enqueue(4)).toBe(first);
    await sleep(1_600);
    const second = await enqueue(5);
    expect(second).not.toBe(first);
    expect(await enqueue(6)).toBe(second);
    const jobs = await jobsOf(type);
    expect(jobs.map((j) => j.payload)).toEqual([{ n: 1 }, { n: 5 }]);
  });
});

describe('enqueue with a key: bad arguments', () => {
  it('refuses a mode without key, a missing or misplaced delay or period, key with dedup_key', async () => {
    const type = uniqueJobType();
    const bad = [
      sql`select cesar.enqueue(${type}, mode => 'replace')`,
      sql`select cesar.enqueue(${type}, key => 'k', mode => 'debounce')`,
      sql`select cesar.enqueue(${type}, key => 'k', mode => 'debounce', delay => '1 s',
                               run_at => now())`,
      sql`select cesar.enqueue(${type}, key => 'k', mode => 'unique_for')`,
      sql`select cesar.enqueue(${type}, key => 'k', mode => 'replace', period => '1 s')`,
      sql`select cesar.enqueue(${type}, key => 'k', delay => '1 s')`,
      sql`select cesar.enqueue(${type}, delay => '1 s')`,
      sql`select cesar.enqueue(${type}, key => 'k', mode => 'sometimes')`,
      sql`select cesar.enqueue(${type}, key => 'k', dedup_key => 'k')`,
      // enqueue_many the same: a delay or period without a key is refused, not ignored.
      sql`select cesar.enqueue_many(${sql.json([{ job_type: type, delay_seconds: 5 }])})`,
      sql`select cesar.enqueue_many(${sql.json([{ job_type: type, period_seconds: 5 }])})`,
    ];
    for (const statement of bad) {
      await expect(statement).rejects.toMatchObject({ code: '22023' });
    }
    expect(await jobsOf(type)).toHaveLength(0);
  });
});

describe('enqueue_many with keys', () => {
  it("applies each element's mode in array order, plain elements as before", async () => {
    const type = uniqueJobType();
    const inserted = await enqueueJobs(sql, [
      { job_type: type, payload: { plain: 1 } },
      { job_type: type, key: `${type}:r`, mode: 'replace', payload: { n: 1 } },
      { job_type: type, key: `${type}:r`, mode: 'replace', payload: { n: 2 } },
      { job_type: type, key: `${type}:d`, mode: 'debounce', delay_seconds: 60, payload: { d: 1 } },
      { job_type: type, key: `${type}:d`, mode: 'debounce', delay_seconds: 60, payload: { d: 2 } },
      { job_type: type, key: `${type}:u`, mode: 'unique_for', period_seconds: 60 },
      { job_type: type, key: `${type}:u`, mode: 'unique_for', period_seconds: 60 },
      { job_type: type, key: `${type}:k` },
      { job_type: type, key: `${type}:k` },
    ]);
    expect(inserted).toBe(5);
    const jobs = await jobsOf(type);
    expect(jobs.map((j) => j.payload)).toEqual([{ plain: 1 }, { n: 2 }, { d: 2 }, {}, {}]);
  });
});

describe('concurrent enqueues of one key', () => {
  /**
   * `n` enqueues at once, each in its own transaction on its own connection, which holds its
   * locks 100 ms after the enqueue: without the unique indexes they would all insert.
   */
  async function race(n: number, enqueue: (tx: typeof sql, i: number) => Promise<unknown>) {
    const start = Date.now() + 200;
    return await Promise.allSettled(Array.from({ length: n }, (_, i) =>
      sql.begin(async (tx) => {
        await sleep(start - Date.now());
        const [row] = await enqueue(tx as unknown as typeof sql, i) as Array<{ id: string }>;
        await tx`select pg_sleep(0.1)`;
        return String(row!.id);
      })));
  }

  for (const mode of ['keep', 'replace', 'debounce', 'unique_for'] as const) {
    it(`${mode}: 20 at once make one job, and every enqueue answers its id`, async () => {
      const type = uniqueJobType();
      const key = keyOf(type);
      const results = await race(
        20,
        (tx, i) =>
          tx`select cesar.enqueue(${type}, ${tx.json({ i })}, key => ${key}, mode => ${mode},
                                delay => ${mode === 'debounce' ? '1 hour' : null}::interval,
                                period => ${mode === 'unique_for' ? '1 hour' : null}::interval)
           as id`,
      );
      expect(results.filter((r) => r.status === 'rejected')).toEqual([]);
      const jobs = await jobsOf(type);
      expect(jobs).toHaveLength(1);
      const ids = new Set(results.map((r) => (r as PromiseFulfilledResult<string>).value));
      expect([...ids]).toEqual([jobs[0]!.id]);
    });
  }

  it('unique_for under REPEATABLE READ: one job; a loser sees the holder or a serialization failure', async () => {
    const type = uniqueJobType();
    const key = keyOf(type);
    const start = Date.now() + 200;
    const results = await Promise.allSettled(
      Array.from({ length: 10 }, () =>
        sql.begin('isolation level repeatable read', async (tx) => {
          await tx`select 1`; // the snapshot is taken here, before any enqueue commits
          await sleep(start - Date.now());
          await tx`select cesar.enqueue(${type}, key => ${key}, mode => 'unique_for',
                                      period => '1 hour')`;
          await tx`select pg_sleep(0.1)`;
        })),
    );
    expect(await jobsOf(type)).toHaveLength(1);
    for (const r of results) {
      if (r.status === 'rejected') expect((r.reason as { code?: string }).code).toBe('40001');
    }
  });

  it('unique_for after the window ran out: concurrent enqueues take the new window once', async () => {
    const type = uniqueJobType();
    const key = keyOf(type);
    const first = await enqueueJob(sql, type, {}, { key, mode: 'unique_for', periodSeconds: 0.2 });
    await sleep(300);
    const results = await race(
      20,
      (tx) =>
        tx`select cesar.enqueue(${type}, key => ${key}, mode => 'unique_for', period => '1 hour')
         as id`,
    );
    expect(results.filter((r) => r.status === 'rejected')).toEqual([]);
    const jobs = await jobsOf(type);
    expect(jobs.map((j) => j.id)).toEqual([first, jobs[1]!.id]);
    expect(jobs).toHaveLength(2);
  });

  it('replace racing a claim: the job is either replaced while it waits or a new one waits', async () => {
    const type = uniqueJobType();
    const key = keyOf(type);
    for (let round = 0; round < 5; round++) {
      await enqueueJob(sql, type, { round, n: 0 }, { key, mode: 'replace' });
      await Promise.all([
        claimAll(type, `w${round}`),
        enqueueJob(sql, type, { round, n: 1 }, { key, mode: 'replace' }),
      ]);
      const waiting = (await jobsOf(type)).filter((j) => j.status === 'pending');
      expect(waiting.length).toBeLessThanOrEqual(1);
      // Either way the last payload is in a job: the waiting one, or the one claimed.
      const all = await jobsOf(type);
      expect(all.some((j) =>
        (j.payload as { round: number; n: number }).round === round &&
        (j.payload as { n: number }).n === 1
      )).toBe(true);
      await claimAll(type, `drain${round}`);
    }
  });
});

describe('templates: the enqueue_job action with a key', () => {
  it('debounces a manual workflow run twice into one job; the second execution made none', async () => {
    const type = uniqueJobType();
    const api = apiApp(sql, [type]);
    const name = `${type} debounced`;
    const created = await call(api, 'POST', '/api/workflows', {
      name,
      trigger: { type: 'manual' },
      actions: [
        {
          type: 'enqueue_job',
          job_type: type,
          payload: { n: 1 },
          key: keyOf(type),
          mode: 'debounce',
          delay_seconds: 60,
        },
        { type: 'enqueue_job', job_type: type, payload: { plain: true } },
      ],
    });
    try {
      expect(created.status, JSON.stringify(created.body)).toBe(201);
      const first = await call(api, 'POST', `/api/workflows/${created.body.id}/run`);
      const second = await call(api, 'POST', `/api/workflows/${created.body.id}/run`);
      expect([first.status, second.status]).toEqual([202, 202]);
      const jobs = await jobsOf(type);
      // One debounced job (the first run's) and each run's plain job.
      expect(jobs.map((j) => [j.payload, j.execution_id])).toEqual([
        [{ plain: true }, first.body.execution_id],
        [{ n: 1 }, first.body.execution_id],
        [{ plain: true }, second.body.execution_id],
      ]);
      const executions = await sql`
        select id::text, job_count from cesar.workflow_executions
        where template_id = ${created.body.id} order by id`;
      expect(executions.map((x) => x.job_count)).toEqual([2, 1]);
    } finally {
      await sql`delete from cesar.workflow_templates where name = ${name}`;
    }
  });

  it('takes the latest payload into the waiting job; an execution whose jobs all merged is completed', async () => {
    const type = uniqueJobType();
    const [template] = await sql`
      insert into cesar.workflow_templates (name, trigger, actions)
      values (${`${type} replace`}, '{"type": "manual"}',
              ${sql.json([{ type: 'enqueue_job', job_type: type, payload: {} }])})
      returning id`;
    try {
      const plan = (n: number) => ({
        template_id: template!.id,
        kind: 'manual',
        actions: [{
          type: 'enqueue_job',
          job_type: type,
          payload: { n },
          key: `${type}:same`,
          mode: 'replace',
        }],
      });
      // One plan a call: plans of one batch are told apart by event or slot.
      const made = [];
      for (const n of [1, 2]) {
        made.push(
          ...await sql`select execution_id::text, job_count
                       from cesar.create_executions(${sql.json([plan(n)])})`,
        );
      }
      expect(made.map((m) => m.job_count)).toEqual([1, 0]);
      const jobs = await jobsOf(type);
      expect(jobs.map((j) => [j.payload, j.execution_id])).toEqual([[
        { n: 2 },
        made[0]!.execution_id,
      ]]);
      const [merged] = await sql`
        select status, finished_at is not null as finished from cesar.workflow_executions
        where id = ${made[1]!.execution_id}`;
      expect(merged).toEqual({ status: 'completed', finished: true });
    } finally {
      await sql`delete from cesar.workflow_templates where id = ${template!.id}`;
    }
  });

  it('refuses a keyed action whose key rendered to null instead of making a plain job', async () => {
    const type = uniqueJobType();
    const [template] = await sql`
      insert into cesar.workflow_templates (name, trigger, actions)
      values (${`${type} null key`}, '{"type": "manual"}',
              ${sql.json([{ type: 'enqueue_job', job_type: type, payload: {} }])})
      returning id`;
    try {
      // What renderActions makes of key "{{record.missing}}": the field, null.
      const plan = {
        template_id: template!.id,
        kind: 'manual',
        actions: [{
          type: 'enqueue_job',
          job_type: type,
          payload: {},
          key: null,
          mode: 'debounce',
          delay_seconds: 60,
        }],
      };
      await expect(sql`select * from cesar.create_executions(${sql.json([plan])})`)
        .rejects.toThrow(/key must be a non-empty text/);
      expect(await jobsOf(type)).toEqual([]);
    } finally {
      await sql`delete from cesar.workflow_templates where id = ${template!.id}`;
    }
  });

  it('refuses a template whose keyed action is inconsistent, naming the field', async () => {
    const type = uniqueJobType();
    const api = apiApp(sql, [type]);
    const res = await call(api, 'POST', '/api/workflows', {
      name: `${type} bad`,
      trigger: { type: 'manual' },
      actions: [{ type: 'enqueue_job', job_type: type, key: 'k', mode: 'debounce' }],
    });
    expect(res.status).toBe(400);
    expect(JSON.stringify(res.body.error.issues)).toContain('delay_seconds');
    const [row] = await sql`
      select count(*)::int as n from cesar.workflow_templates where name = ${`${type} bad`}`;
    expect(row!.n).toBe(0);
  });
});

describe('POST /api/jobs', () => {
  it('enqueues a job, with a key and a mode, and lists them', async () => {
    const type = uniqueJobType();
    const api = apiApp(sql, [type]);
    const body = {
      job_type: type,
      payload: { n: 1 },
      key: keyOf(type),
      mode: 'unique_for',
      period_seconds: 3600,
    };
    const first = await call(api, 'POST', '/api/jobs', body);
    expect(first.status, JSON.stringify(first.body)).toBe(202);
    expect(first.body).toMatchObject({ job_type: type, key: keyOf(type), mode: 'unique_for' });
    const again = await call(api, 'POST', '/api/jobs', { ...body, payload: { n: 2 } });
    expect(again.body.id).toBe(first.body.id);
    const plain = await call(api, 'POST', '/api/jobs', { job_type: type });
    expect(plain.status).toBe(202);
    expect(plain.body).toMatchObject({ key: null, mode: null });
    const listed = await call(api, 'GET', `/api/jobs?job_type=${type}`);
    expect(listed.body.jobs.map((j: { key: string; key_mode: string }) => [j.key, j.key_mode]))
      .toEqual([[null, null], [keyOf(type), 'unique_for']]);
  });

  it('answers bad input with a 400 naming the field, and writes nothing', async () => {
    const type = uniqueJobType();
    const api = apiApp(sql, [type]);
    const cases: Array<[Record<string, unknown>, string]> = [
      [{ job_type: type, mode: 'replace' }, 'key'],
      [{ job_type: type, key: 'k', mode: 'debounce' }, 'delay_seconds'],
      [{
        job_type: type,
        key: 'k',
        mode: 'debounce',
        delay_seconds: 5,
        run_at: new Date().toISOString(),
      }, 'run_at'],
      [{ job_type: type, key: 'k', mode: 'unique_for' }, 'period_seconds'],
      [{ job_type: type, key: 'k', mode: 'replace', period_seconds: 5 }, 'period_seconds'],
      [{ job_type: type, key: 'k', delay_seconds: 5 }, 'delay_seconds'],
      [{ job_type: type, key: 'k', mode: 'sometimes' }, 'mode'],
      [{ job_type: type, key: '' }, 'key'],
      [{ job_type: type, key: 'k', mode: 'debounce', delay_seconds: -1 }, 'delay_seconds'],
      [{ job_type: type, key: 'k', mode: 'debounce', delay_seconds: '5' }, 'delay_seconds'],
      [{ job_type: type, surprise: 1 }, 'surprise'],
      [{ job_type: 'Not A Type' }, 'job_type'],
      [{ job_type: `${type}.unknown` }, 'job_type'],
      [{ payload: {} }, 'job_type'],
      [{ job_type: type, payload: [] }, 'payload'],
      [{ job_type: type, run_at: 'tomorrow' }, 'run_at'],
    ];
    for (const [body, field] of cases) {
      const res = await call(api, 'POST', '/api/jobs', body);
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(JSON.stringify(res.body.error), JSON.stringify(body)).toContain(field);
    }
    const [row] = await sql`
      select count(*)::int as n from cesar.job_queue where job_type like ${`${type}%`}`;
    expect(row!.n).toBe(0);
  });
});
