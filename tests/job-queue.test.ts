import { describe, expect, it } from 'vitest';
import type { FailureKind } from '../packages/shared/src/queue/errors.ts';
import { decideOutcome } from '../packages/shared/src/queue/outcome.ts';
import {
  type ClaimedJob,
  claimJobs,
  completeJobs,
  enqueueJob,
  enqueueJobs,
  failJobs,
  type Failure,
  finishAndClaim,
  startJobs,
} from '../packages/shared/src/queue/queries.ts';
import { testSql, withRollback } from './helpers/db.ts';
import { jobById, jobsOf, uniqueJobType } from './helpers/queue.ts';

const sql = testSql(undefined, 12);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A handler's failure of the attempt `job` started, decided as the drain decides it. */
function failure(job: ClaimedJob, kind: FailureKind, error: string, retryAt?: Date): Failure {
  return {
    id: job.id,
    attempt: job.attempts,
    kind,
    error,
    ...decideOutcome(job, { kind, retryAt }, new Date(), () => 0.5),
  };
}

async function defineType(
  jobType: string,
  policy: { concurrency?: number; lease_seconds?: number; max_attempts?: number },
) {
  await sql`
    insert into cesar.job_types (job_type, concurrency, lease_seconds, max_attempts)
    values (${jobType}, ${policy.concurrency ?? null}, ${policy.lease_seconds ?? 60}, ${
    policy.max_attempts ?? 5
  })`;
}

describe('enqueue', () => {
  it('returns the new id, and the unfinished holder of a dedup key instead of a second job', async () => {
    const type = uniqueJobType();
    const key = `${type}:key`;
    const first = await enqueueJob(sql, type, { n: 1 }, { dedupKey: key });
    const second = await enqueueJob(sql, type, { n: 2 }, { dedupKey: key });
    expect(second).toBe(first);
    expect(await jobsOf(sql, type)).toHaveLength(1);
    // Once finished, the key is free again.
    const [claimed] = await claimJobs(sql, { worker: 'w', batchSize: 1, jobTypes: [type] });
    await completeJobs(sql, 'w', [{ id: claimed!.id, attempt: 1, result: null }]);
    const third = await enqueueJob(sql, type, { n: 3 }, { dedupKey: key });
    expect(third).not.toBe(first);
  });

  it('takes max_attempts from the job type, else the inventory default of 5', async () => {
    const typed = uniqueJobType();
    await defineType(typed, { max_attempts: 2 });
    const untyped = uniqueJobType();
    expect((await jobById(sql, await enqueueJob(sql, typed))).max_attempts).toBe(2);
    expect((await jobById(sql, await enqueueJob(sql, untyped))).max_attempts).toBe(5);
    expect(
      (await jobById(sql, await enqueueJob(sql, untyped, {}, { maxAttempts: 9 }))).max_attempts,
    ).toBe(9);
  });

  it('enqueues many in one statement, honouring dedup within the batch and against the queue', async () => {
    const type = uniqueJobType();
    await enqueueJob(sql, type, {}, { dedupKey: `${type}:a` });
    const inserted = await enqueueJobs(sql, [
      { job_type: type, dedup_key: `${type}:a` },
      { job_type: type, dedup_key: `${type}:b`, payload: { x: 1 } },
      { job_type: type, dedup_key: `${type}:b` },
      { job_type: type, priority: 5 },
      ...Array.from({ length: 1000 }, (_, i) => ({ job_type: type, payload: { i } })),
    ]);
    expect(inserted).toBe(1002);
    expect(await jobsOf(sql, type)).toHaveLength(1003);
  });

  it('rejects a bulk enqueue that is not an array', async () => {
    await expect(sql`select cesar.enqueue_many('{"job_type":"x"}')`).rejects.toThrow(
      /expects a JSON array/,
    );
    await expect(enqueueJobs(sql, [{ job_type: 'Not A Type' }])).rejects.toThrow(
      /check constraint/,
    );
  });

  it('rings the job-drain doorbell once per transaction, and not for future jobs', async () => {
    await withRollback(sql, async (tx) => {
      await tx`insert into cesar.local_settings (name, value) values
                 ('cesar_functions_url', 'http://127.0.0.1:1/functions/v1'), ('cesar_function_secret', 's3cret-value-for-test')
               on conflict (name) do update set value = excluded.value`;
      const [before] = await tx`select coalesce(max(id), 0) as id from net.http_request_queue`;
      const type = uniqueJobType();
      await tx`select cesar.enqueue(${type}, run_at => now() + interval '1 hour')`;
      const [none] = await tx`select count(*)::int as n from net.http_request_queue where id > ${
        before!.id
      }`;
      expect(none!.n).toBe(0);
      await tx`select cesar.enqueue(${type})`;
      await tx`select cesar.enqueue(${type})`;
      await tx`select cesar.enqueue_many(${
        tx.json([{ job_type: type }, { job_type: type }] as never)
      })`;
      const rung = await tx`select url, headers from net.http_request_queue where id > ${
        before!.id
      }`;
      expect(rung).toEqual([{
        url: 'http://127.0.0.1:1/functions/v1/job-drain',
        headers: {
          'Content-Type': 'application/json',
          Authorization: 'Bearer s3cret-value-for-test',
        },
      }]);
    });
  });
});

describe('claim', () => {
  it('never gives the same job to two concurrent claimers (SKIP LOCKED)', async () => {
    const type = uniqueJobType();
    await enqueueJobs(
      sql,
      Array.from({ length: 300 }, (_, i) => ({ job_type: type, payload: { i } })),
    );
    const claims = await Promise.all(
      Array.from(
        { length: 8 },
        (_, w) => claimJobs(sql, { worker: `w${w}`, batchSize: 50, jobTypes: [type] }),
      ),
    );
    const ids = claims.flat().map((j) => j.id);
    expect(new Set(ids).size).toBe(ids.length);
    // A claimer skips rows another one holds at that instant; a later claim takes what is left.
    for (;;) {
      const rest = await claimJobs(sql, { worker: 'sweeper', batchSize: 100, jobTypes: [type] });
      if (rest.length === 0) break;
      ids.push(...rest.map((j) => j.id));
    }
    expect(new Set(ids).size).toBe(300);
    expect(ids.length).toBe(300);
    const rows = await jobsOf(sql, type);
    expect(rows.every((r) => r.status === 'running' && r.attempts === 1)).toBe(true);
  });

  it('takes higher priority first, then older, and leaves future jobs', async () => {
    const type = uniqueJobType();
    const low = await enqueueJob(sql, type, {}, { priority: 0 });
    const high = await enqueueJob(sql, type, {}, { priority: 10 });
    await enqueueJob(sql, type, {}, { priority: 99, runAt: new Date(Date.now() + 3_600_000) });
    const claimed = await claimJobs(sql, { worker: 'w', batchSize: 10, jobTypes: [type] });
    expect(claimed.map((j) => j.id)).toEqual([high, low]);
  });

  it('holds a per-type concurrency cap across concurrent claimers', async () => {
    const type = uniqueJobType();
    await defineType(type, { concurrency: 2 });
    await enqueueJobs(sql, Array.from({ length: 20 }, () => ({ job_type: type })));
    const claims = await Promise.all(
      Array.from(
        { length: 6 },
        (_, w) => claimJobs(sql, { worker: `w${w}`, batchSize: 5, jobTypes: [type] }),
      ),
    );
    expect(claims.flat()).toHaveLength(2);
    // Finishing one frees one slot.
    const done = claims.flat()[0]!;
    const holder = (await jobById(sql, done.id)).locked_by!;
    expect(await completeJobs(sql, holder, [{ id: done.id, attempt: 1, result: null }])).toEqual([
      done.id,
    ]);
    const next = await claimJobs(sql, { worker: 'x', batchSize: 5, jobTypes: [type] });
    expect(next).toHaveLength(1);
  });
});

describe('leases and outcomes', () => {
  it('lets only the current lease holder record an outcome', async () => {
    const type = uniqueJobType();
    await defineType(type, { lease_seconds: 1 });
    const id = await enqueueJob(sql, type);
    const [first] = await claimJobs(sql, { worker: 'stale', batchSize: 1, jobTypes: [type] });
    expect(first!.id).toBe(id);
    await sleep(1_100);
    // The stale drain's lease ran out: another drain takes the job over as attempt 2.
    const [second] = await claimJobs(sql, { worker: 'fresh', batchSize: 1, jobTypes: [type] });
    expect(second).toMatchObject({ id, attempts: 2 });
    expect(await completeJobs(sql, 'stale', [{ id, attempt: 1, result: { from: 'stale' } }]))
      .toEqual([]);
    expect(
      await failJobs(sql, 'stale', [{
        id,
        attempt: 1,
        kind: 'retry',
        error: 'late',
        status: 'pending',
        runAt: new Date(),
      }]),
    ).toEqual([]);
    let row = await jobById(sql, id);
    expect(row).toMatchObject({ status: 'running', locked_by: 'fresh', attempts: 2 });
    expect(row.errors).toEqual([
      expect.objectContaining({ attempt: 1, kind: 'lease_expired', error: 'lease expired' }),
    ]);
    expect(await completeJobs(sql, 'fresh', [{ id, attempt: 2, result: { from: 'fresh' } }]))
      .toEqual([id]);
    row = await jobById(sql, id);
    expect(row).toMatchObject({ status: 'completed', result: { from: 'fresh' }, locked_by: null });
  });

  it('fails a job for good when the lease of its last attempt runs out', async () => {
    const type = uniqueJobType();
    await defineType(type, { lease_seconds: 1, max_attempts: 1 });
    const id = await enqueueJob(sql, type);
    await claimJobs(sql, { worker: 'dies', batchSize: 1, jobTypes: [type] });
    await sleep(1_100);
    expect(await claimJobs(sql, { worker: 'next', batchSize: 1, jobTypes: [type] })).toEqual([]);
    expect(await jobById(sql, id)).toMatchObject({
      status: 'failed',
      last_error: expect.stringMatching(/lease expired/),
      errors: [expect.objectContaining({ attempt: 1, kind: 'lease_expired' })],
    });
  });

  it('retries until max_attempts, keeping every error, then fails out of the claim path', async () => {
    const type = uniqueJobType();
    await defineType(type, { max_attempts: 3 });
    const id = await enqueueJob(sql, type);
    for (let attempt = 1; attempt <= 3; attempt++) {
      const [job] = await claimJobs(sql, { worker: 'w', batchSize: 1, jobTypes: [type] });
      expect(job).toMatchObject({ id, attempts: attempt, attempts_left: attempt < 3 });
      const [row] = await failJobs(sql, 'w', [
        failure(job!, 'retry', `boom ${attempt}`, new Date(0)),
      ]);
      expect(row!.status).toBe(attempt < 3 ? 'pending' : 'failed');
    }
    expect(await claimJobs(sql, { worker: 'w', batchSize: 1, jobTypes: [type] })).toEqual([]);
    const row = await jobById(sql, id);
    expect(row).toMatchObject({
      status: 'failed',
      last_error: 'boom 3',
      finished_at: expect.any(Date),
    });
    expect(row.errors.map((e) => e.error)).toEqual(['boom 1', 'boom 2', 'boom 3']);
  });

  it('fails a permanent error at once and schedules a retry at the given time', async () => {
    const type = uniqueJobType();
    const [a, b] = [await enqueueJob(sql, type), await enqueueJob(sql, type)];
    const [jobA, jobB] = await claimJobs(sql, { worker: 'w', batchSize: 2, jobTypes: [type] });
    const later = new Date(Date.now() + 3_600_000);
    await failJobs(sql, 'w', [
      failure(jobA!, 'permanent', 'no such agent'),
      failure(jobB!, 'retry', '429', later),
    ]);
    expect(await jobById(sql, a)).toMatchObject({ status: 'failed', attempts: 1 });
    const retried = await jobById(sql, b);
    expect(retried.status).toBe('pending');
    expect(retried.run_at.getTime()).toBe(later.getTime());
  });
});

describe('one home for outcomes', () => {
  it('ends a job after the same attempt whether a handler failed or its lease ran out', async () => {
    // The drain decides a failure (decideOutcome) from attempts_left; the claim decides a
    // lost lease alone. Both read cesar.job_attempts_left.
    const type = uniqueJobType();
    await defineType(type, { lease_seconds: 1, max_attempts: 2 });
    const [failing, losing] = [await enqueueJob(sql, type), await enqueueJob(sql, type)];
    // Claimed without starting, then started: start_jobs says what the claim would.
    const leased = await claimJobs(sql, { worker: 'w1', batchSize: 2, jobTypes: [type], start: 0 });
    expect(leased.map((j) => j.started)).toEqual([false, false]);
    const first = await startJobs(sql, 'w1', leased);
    expect(first.map((j) => [j.id, j.attempts, j.attempts_left])).toEqual([
      [failing, 1, true],
      [losing, 1, true],
    ]);
    expect(await failJobs(sql, 'w1', [failure(first[0]!, 'retry', 'boom', new Date(0))]))
      .toEqual([{ id: failing, status: 'pending' }]);
    await sleep(1_100);
    // Attempt 2 of both: the retry, and the takeover of the lost lease.
    const second = await claimJobs(sql, { worker: 'w2', batchSize: 2, jobTypes: [type] });
    expect(second.map((j) => [j.id, j.attempts, j.attempts_left]).sort()).toEqual(
      [[failing, 2, false], [losing, 2, false]].sort(),
    );
    const failingJob = second.find((j) => j.id === failing)!;
    expect(await failJobs(sql, 'w2', [failure(failingJob, 'retry', 'boom', new Date(0))]))
      .toEqual([{ id: failing, status: 'failed' }]);
    await sleep(1_100);
    expect(await claimJobs(sql, { worker: 'w3', batchSize: 2, jobTypes: [type] })).toEqual([]);
    expect((await jobsOf(sql, type)).map((j) => [j.status, j.attempts])).toEqual([
      ['failed', 2],
      ['failed', 2],
    ]);
  });

  // {attempt, at, kind, error, worker}, built by cesar.job_error_entry on every path.
  const entry = (attempt: number, kind: string, error: string, worker: string) => ({
    attempt,
    at: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?[+-]\d\d:\d\d$/),
    kind,
    error,
    worker,
  });

  it('appends the same error entry for a failed attempt, a permanent failure and a lost lease', async () => {
    const type = uniqueJobType();
    await defineType(type, { lease_seconds: 1, max_attempts: 2 });
    const [retried, permanent, lost] = [
      await enqueueJob(sql, type),
      await enqueueJob(sql, type),
      await enqueueJob(sql, type),
    ];
    const before = Date.now();
    const jobs = await claimJobs(sql, { worker: 'w1', batchSize: 3, jobTypes: [type] });
    const byId = new Map(jobs.map((j) => [j.id, j]));
    await failJobs(sql, 'w1', [
      failure(byId.get(retried)!, 'retry', 'connection reset', new Date(Date.now() + 60_000)),
      failure(byId.get(permanent)!, 'permanent', 'agent 42 does not exist'),
    ]);
    await sleep(1_100);
    // The lease of attempt 1 is lost mid-handler: taken over (attempt 2), then lost again on
    // the last attempt: failed for good by the next claim.
    expect(await claimJobs(sql, { worker: 'w2', batchSize: 3, jobTypes: [type] })).toHaveLength(1);
    await sleep(1_100);
    await claimJobs(sql, { worker: 'w3', batchSize: 3, jobTypes: [type] });

    expect((await jobById(sql, retried)).errors).toEqual([
      entry(1, 'retry', 'connection reset', 'w1'),
    ]);
    expect((await jobById(sql, permanent)).errors).toEqual([
      entry(1, 'permanent', 'agent 42 does not exist', 'w1'),
    ]);
    const lostRow = await jobById(sql, lost);
    expect(lostRow.status).toBe('failed');
    expect(lostRow.errors).toEqual([
      entry(1, 'lease_expired', 'lease expired', 'w1'),
      entry(2, 'lease_expired', 'lease expired', 'w2'),
    ]);
    for (const row of [await jobById(sql, retried), lostRow]) {
      for (const e of row.errors) {
        expect(Date.parse(e.at)).toBeGreaterThanOrEqual(before - 1_000);
      }
    }
  });
});

describe('retry, redrive, cancel', () => {
  it('requeues failed jobs with fresh attempts and keeps their history', async () => {
    const type = uniqueJobType();
    const id = await enqueueJob(sql, type);
    await claimJobs(sql, { worker: 'w', batchSize: 1, jobTypes: [type] });
    await failJobs(sql, 'w', [{
      id,
      attempt: 1,
      kind: 'permanent',
      error: 'bad',
      status: 'failed',
    }]);
    expect(await sql`select cesar.retry_jobs(array[${id}]::bigint[]) as id`).toEqual([{ id }]);
    expect(await jobById(sql, id)).toMatchObject({
      status: 'pending',
      attempts: 0,
      finished_at: null,
      errors: [expect.objectContaining({ error: 'bad' })],
    });
  });

  it('redrives the dead letters of a type since a time', async () => {
    const type = uniqueJobType();
    const ids = [await enqueueJob(sql, type), await enqueueJob(sql, type)];
    await claimJobs(sql, { worker: 'w', batchSize: 2, jobTypes: [type] });
    await failJobs(
      sql,
      'w',
      ids.map((id) => ({
        id,
        attempt: 1,
        kind: 'permanent' as const,
        error: 'x',
        status: 'failed' as const,
      })),
    );
    const redriven =
      await sql`select cesar.redrive_jobs(${type}, now() - interval '1 minute') as id`;
    expect(redriven.map((r) => r.id).sort()).toEqual([...ids].sort());
    expect((await jobsOf(sql, type)).every((j) => j.status === 'pending')).toBe(true);
  });

  it('does not requeue a failed job whose dedup key another unfinished job holds', async () => {
    const type = uniqueJobType();
    const key = `${type}:k`;
    const old = await enqueueJob(sql, type, {}, { dedupKey: key });
    await claimJobs(sql, { worker: 'w', batchSize: 1, jobTypes: [type] });
    await failJobs(sql, 'w', [{
      id: old,
      attempt: 1,
      kind: 'permanent',
      error: 'x',
      status: 'failed',
    }]);
    await enqueueJob(sql, type, {}, { dedupKey: key });
    expect(await sql`select cesar.retry_jobs(array[${old}]::bigint[])`).toEqual([]);
  });

  it("cancels pending and running jobs; a cancelled job refuses its drain's outcome", async () => {
    const type = uniqueJobType();
    const [running, pending] = [
      await enqueueJob(sql, type),
      await enqueueJob(sql, type, {}, { runAt: new Date(Date.now() + 60_000) }),
    ];
    await claimJobs(sql, { worker: 'w', batchSize: 1, jobTypes: [type] });
    const cancelled =
      await sql`select cesar.cancel_jobs(array[${running}, ${pending}]::bigint[]) as id`;
    expect(cancelled).toHaveLength(2);
    expect(await completeJobs(sql, 'w', [{ id: running, attempt: 1, result: null }])).toEqual([]);
    expect((await jobsOf(sql, type)).map((j) => j.status)).toEqual(['cancelled', 'cancelled']);
  });
});

describe('finish and claim in one statement (cesar.finish_and_claim)', () => {
  it('records outcomes fenced by lease, then claims: a capped slot freed by an outcome is free for the claim', async () => {
    const type = uniqueJobType();
    await defineType(type, { concurrency: 1 });
    await enqueueJobs(sql, [{ job_type: type }, { job_type: type }, { job_type: type }]);
    const first = await finishAndClaim(sql, {
      worker: 'a',
      completions: [],
      failures: [],
      batchSize: 10,
      jobTypes: [type],
    });
    // The cap holds: one job, started, with what claimJobs gives.
    expect(first.jobs).toHaveLength(1);
    const [job] = first.jobs;
    expect(job).toMatchObject({ job_type: type, attempts: 1, started: true, attempts_left: true });
    expect(job!.id).toMatch(/^[0-9]+$/);
    expect(job!.locked_until).toBeInstanceOf(Date);
    expect(job!.run_at).toBeInstanceOf(Date);
    expect(job!.backoff_base_seconds).toBe(300);
    // A stale worker's outcome is refused, the holder's recorded; the slot it frees is taken
    // by the claim of the same statement.
    const stale = await finishAndClaim(sql, {
      worker: 'b',
      completions: [{ id: job!.id, attempt: 1, result: { from: 'b' } }],
      failures: [],
      batchSize: 10,
      jobTypes: [type],
    });
    expect(stale).toMatchObject({ completed: 0, failed: 0, retried: 0, jobs: [] });
    const second = await finishAndClaim(sql, {
      worker: 'a',
      completions: [{ id: job!.id, attempt: 1, result: { from: 'a' } }],
      failures: [],
      batchSize: 10,
      jobTypes: [type],
    });
    expect(second.completed).toBe(1);
    expect(second.jobs).toHaveLength(1);
    expect(second.jobs[0]!.id).not.toBe(job!.id);
    expect(await jobById(sql, job!.id)).toMatchObject({
      status: 'completed',
      result: { from: 'a' },
    });
    // A failure with attempts left goes back to pending, counted as retried.
    const third = await finishAndClaim(sql, {
      worker: 'a',
      completions: [],
      failures: [failure(second.jobs[0]!, 'retry', 'boom', new Date(Date.now() + 3_600_000))],
      batchSize: 10,
      jobTypes: [type],
    });
    expect(third).toMatchObject({ completed: 0, failed: 0, retried: 1 });
    expect(third.jobs).toHaveLength(1);
    expect((await jobById(sql, second.jobs[0]!.id))!.status).toBe('pending');
  });

  it('commits a claim asynchronously, and synchronously once it records an outcome', async () => {
    const type = uniqueJobType();
    await enqueueJobs(sql, [{ job_type: type }, { job_type: type }]);
    await withRollback(sql, async (tx) => {
      const claimed = await finishAndClaim(tx, {
        worker: 'w',
        completions: [],
        failures: [],
        batchSize: 1,
        jobTypes: [type],
      });
      const [off] = await tx`select current_setting('synchronous_commit') as value`;
      expect(off!.value).toBe('off');
      const job = claimed.jobs[0]!;
      await finishAndClaim(tx, {
        worker: 'w',
        completions: [{ id: job.id, attempt: job.attempts, result: null }],
        failures: [],
        batchSize: 1,
        jobTypes: [type],
      });
      const [on] = await tx`select current_setting('synchronous_commit') as value`;
      expect(on!.value).toBe('on');
    });
  });

  it("probes each capped type on its own: a claim does not read the queue's other due jobs", async () => {
    const capped = uniqueJobType('capped');
    const other = uniqueJobType('other');
    await defineType(capped, { concurrency: 1 });
    await withRollback(sql, async (tx) => {
      // First in claim order (the shared database may hold other tests' due jobs).
      await tx`select cesar.enqueue(${capped}, priority => 1000)`;
      await tx`select cesar.enqueue_many(${
        tx.json(Array.from({ length: 5_000 }, () => ({ job_type: other, priority: 1000 })) as never)
      })`;
      // The plan a long-lived pooled connection ends up with: generic (as after five calls).
      await tx`set local plan_cache_mode = force_generic_plan`;
      const fetched = async () => {
        const [row] = await tx<Array<{ n: number }>>`
          select (coalesce(idx_tup_fetch, 0) + seq_tup_read)::int as n
          from pg_stat_xact_user_tables where relid = 'cesar.job_queue'::regclass`;
        return row!.n;
      };
      // Claims in scope of the capped type, and out of it; before, each read every due job of
      // the queue (5,000 here), on every claim.
      for (const jobTypes of [[capped, other], [other]]) {
        const before = await fetched();
        expect(await claimJobs(tx, { worker: 'w', batchSize: 1, jobTypes })).toHaveLength(1);
        expect(await fetched() - before).toBeLessThan(100);
      }
    });
  });

  it('reads a fraction of the queue on a queue analyzed in the middle of a burst', async () => {
    const capped = uniqueJobType('capped');
    const other = uniqueJobType('burst');
    await defineType(capped, { concurrency: 1 });
    await withRollback(sql, async (tx) => {
      // Statistics that say a type has tens of thousands of due jobs: the planner then reckoned
      // a capped type's one-row probe would find its row at once in a sequential scan, and
      // with no job of the capped type due each probe read the whole table, on every claim.
      // First in claim order (the shared database may hold other tests' due jobs).
      await tx`select cesar.enqueue_many(${
        tx.json(
          Array.from({ length: 60_000 }, () => ({ job_type: other, priority: 1000 })) as never,
        )
      })`;
      await tx`analyze cesar.job_queue`;
      await tx`set local plan_cache_mode = force_generic_plan`;
      const [row] = await tx<Array<{ n: number }>>`
        select (coalesce(idx_tup_fetch, 0) + seq_tup_read)::int as n
        from pg_stat_xact_user_tables where relid = 'cesar.job_queue'::regclass`;
      const claimed = await claimJobs(tx, {
        worker: 'w',
        batchSize: 10,
        jobTypes: [capped, other],
      });
      expect(claimed).toHaveLength(10);
      const [after] = await tx<Array<{ n: number; seqscan: string; bitmapscan: string }>>`
        select (coalesce(idx_tup_fetch, 0) + seq_tup_read)::int as n,
               current_setting('enable_seqscan') as seqscan,
               current_setting('enable_bitmapscan') as bitmapscan
        from pg_stat_xact_user_tables where relid = 'cesar.job_queue'::regclass`;
      // A sequential scan reads all 60,000 and more; the index walk reads what lies before
      // the batch in claim order (other files' due jobs may).
      expect(after!.n - row!.n).toBeLessThan(10_000);
      // The claim gives the planner settings back.
      expect(after).toMatchObject({ seqscan: 'on', bitmapscan: 'on' });

      // Then the burst is done (statistics still say it is due): a lingering drain's look for
      // due jobs, every few milliseconds, reads none of the finished jobs either.
      await tx`update cesar.job_queue set status = 'completed', finished_at = now(), locked_until = null
               where job_type = ${other}`;
      const [done] = await tx<Array<{ n: number }>>`
        select (coalesce(idx_tup_fetch, 0) + seq_tup_read)::int as n
        from pg_stat_xact_user_tables where relid = 'cesar.job_queue'::regclass`;
      await tx`select cesar.jobs_due()`;
      const [looked] = await tx<Array<{ n: number }>>`
        select (coalesce(idx_tup_fetch, 0) + seq_tup_read)::int as n
        from pg_stat_xact_user_tables where relid = 'cesar.job_queue'::regclass`;
      expect(looked!.n - done!.n).toBeLessThan(10_000);
    });
  });
});
