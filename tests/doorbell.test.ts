import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { untilDrainsIdle } from '../scripts/bench/doorbell.ts';
import { startTempStack, type TempStack } from '../scripts/lib/temp-stack.ts';

// Coalesced doorbells (migration 20261203001000, packages/shared/src/doorbell.ts) on a whole
// local stack of its own: the holds are database-wide, so these tests must not share a
// database with tests that count rings. The pg_cron ticks are paused throughout: whatever
// runs here was called by a doorbell, a drain's hand-over, or a drain that lingered.

let stack: TempStack;
let sql: postgres.Sql;
let other: postgres.Sql;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

beforeAll(async () => {
  stack = await startTempStack();
  sql = postgres(stack.settings.SUPABASE_DB_URL!, { max: 4, onnotice: () => {} });
  other = postgres(stack.settings.SUPABASE_DB_URL!, { max: 2, onnotice: () => {} });
  await sql`select cron.alter_job(jobid, active => false) from cron.job
            where jobname in ('cesar-job-drain-tick', 'cesar-webhook-sweep')`;
  await sql`create table public.doorbell_probe (id bigserial primary key, note text)`;
  await sql`select cesar.watch('public.doorbell_probe')`;
  const res = await fetch(`${stack.settings.CESAR_FUNCTIONS_URL}/api/workflows`, {
    method: 'POST',
    headers: {
      authorization: `Bearer ${stack.settings.CESAR_FUNCTION_SECRET}`,
      'content-type': 'application/json',
    },
    body: JSON.stringify({
      name: 'doorbell probe',
      trigger: { type: 'database_event', table: 'public.doorbell_probe', events: ['INSERT'] },
      actions: [{
        type: 'enqueue_job',
        job_type: 'system.noop',
        payload: { row: '{{record.id}}' },
      }],
    }),
  });
  expect(res.status).toBe(201);
  await untilIdle();
}, 180_000);

afterAll(async () => {
  await Promise.all([sql?.end({ timeout: 5 }), other?.end({ timeout: 5 })]);
  await stack?.destroy();
}, 60_000);

/** Requests pg_net was asked for so far (doorbells and hand-overs, every function). */
async function requestsMade(): Promise<number> {
  const [row] = await sql<
    [{ n: string }]
  >`select last_value as n from net.http_request_queue_id_seq`;
  return Number(row.n);
}

/** Until no drain holds a doorbell and every request made has been answered. */
const untilIdle = () => untilDrainsIdle(sql);

/** Until every probe row in `ids` has its job completed; fails after `timeoutMs`. */
async function untilRun(ids: string[], timeoutMs = 30_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const [row] = await sql<[{ done: number }]>`
      select count(*)::int as done from cesar.job_queue
      where job_type = 'system.noop' and status = 'completed' and payload ->> 'row' = any(${ids})`;
    if (row.done === ids.length) return;
    if (Date.now() > deadline) {
      throw new Error(`${row.done} of ${ids.length} jobs run within ${timeoutMs / 1000} s`);
    }
    await sleep(50);
  }
}

/** Calls job-drain as a doorbell would (`linger_ms` and the rest in `body`). */
function callJobDrain(body: Record<string, unknown>): Promise<Response> {
  return fetch(`${stack.settings.CESAR_FUNCTIONS_URL}/job-drain`, {
    method: 'POST',
    headers: {
      authorization: `Bearer ${stack.settings.CESAR_FUNCTION_SECRET}`,
      'content-type': 'application/json',
    },
    body: JSON.stringify(body),
  });
}

async function writeProbe(note: string): Promise<string> {
  const [row] = await sql<[{ id: string }]>`
    insert into public.doorbell_probe (note) values (${note}) returning id`;
  return row.id;
}

describe('doorbells', () => {
  it('are not rung while a drain holds them, once per transaction otherwise', async () => {
    await untilIdle();
    const before = await requestsMade();
    await sql.begin(async (tx) => {
      await tx`select cesar.doorbell_hold('job-drain', 60000)`;
      await tx`select cesar.enqueue('system.noop', ${tx.json({ held: true })})`;
    });
    expect(await requestsMade()).toBe(before);
    await sql`select cesar.doorbell_hold('job-drain', 0)`;
    await sql.begin(async (tx) => {
      await tx`select cesar.enqueue('system.noop', ${tx.json({ free: 1 })})`;
      await tx`select cesar.enqueue('system.noop', ${tx.json({ free: 2 })})`;
    });
    // One call; the drain it started also takes the job enqueued while the doorbell was held.
    expect(await requestsMade()).toBe(before + 1);
    // A call on its way holds the doorbell until its drain holds it: no second call.
    await sql`select cesar.enqueue('system.noop', ${sql.json({ free: 3 })})`;
    expect(await requestsMade()).toBe(before + 1);
    await untilIdle();
    const [left] = await sql<[{ n: number }]>`
      select count(*)::int as n from cesar.job_queue
      where (payload ? 'held' or payload ? 'free') and status <> 'completed'`;
    expect(left.n).toBe(0);
  });

  it("see a hold at once, whatever the writer's snapshot", async () => {
    await untilIdle();
    await other.begin('isolation level repeatable read', async (tx) => {
      // The snapshot is taken here, before the hold.
      await tx`select count(*) from cesar.job_queue`;
      await sql`select cesar.doorbell_hold('job-drain', 60000)`;
      const [row] = await tx<[{ held: boolean }]>`select cesar.doorbell_held('job-drain') as held`;
      expect(row.held).toBe(true);
    });
    await sql`select cesar.doorbell_hold('job-drain', 0)`;
  });

  it('let go only once the writers that saw them held have finished', async () => {
    await untilIdle();
    await sql`select cesar.doorbell_hold('webhook/drain', 60000)`;
    let finish!: () => void;
    const finished = new Promise<void>((r) => (finish = r));
    let written!: () => void;
    const wrote = new Promise<void>((r) => (written = r));
    // A writer that rings while the doorbell is held, and stays in its transaction.
    const writer = other.begin(async (tx) => {
      await tx`insert into public.doorbell_probe (note) values ('slow writer')`;
      written();
      await finished;
    });
    await wrote;
    const [held] = await sql<[{ released: boolean }]>`
      select cesar.doorbell_release('webhook/drain', 300) as released`;
    expect(held.released).toBe(false);
    // Cleared all the same: a writer from now on rings.
    const [cleared] = await sql<[{ held: boolean }]>`
      select cesar.doorbell_held('webhook/drain') as held`;
    expect(cleared.held).toBe(false);
    finish();
    await writer;
    const [free] = await sql<[{ released: boolean }]>`
      select cesar.doorbell_release('webhook/drain', 300) as released`;
    expect(free.released).toBe(true);
    // Nobody rang for the slow writer (a drain letting go would have looked after it): the
    // next write's drain takes its row too.
    const id = await writeProbe('after the slow writer');
    const [slow] = await sql<[{ id: string }]>`
      select id from public.doorbell_probe where note = 'slow writer'`;
    await untilRun([slow.id, id]);
  });

  it('are not let go while a writer that saw them held is still in its transaction', async () => {
    await untilIdle();
    const jobDone = async (key: string) => {
      const [row] = await sql<[{ done: boolean }]>`
        select exists (select from cesar.job_queue where payload ? ${key}
                       and status = 'completed') as done`;
      return row.done;
    };
    // A drain at work, lingering for more once it has run this job.
    await sql`select cesar.enqueue('system.noop', ${sql.json({ before_long_writer: true })})`;
    while (!(await jobDone('before_long_writer'))) await sleep(20);
    // A writer that sees the hold (it does not ring) and stays in its transaction for longer
    // than the drain lingers and waits for writers when it lets go, twice (2 s, 1 s, 1 s).
    const before = await requestsMade();
    await other.begin(async (tx) => {
      await tx`select cesar.enqueue('system.noop', ${tx.json({ long_writer: true })})`;
      await sleep(7_000);
    });
    expect(await requestsMade()).toBe(before);
    // The ticks are paused: only the drain that held the doorbell (or its hand-over) runs it.
    const deadline = Date.now() + 15_000;
    while (!(await jobDone('long_writer'))) {
      if (Date.now() > deadline) throw new Error("the long writer's job did not run");
      await sleep(50);
    }
  });

  it('wait, when another drain holds the work, instead of calling drain after drain', async () => {
    await untilIdle();
    // Another processor holds the webhook's lease for 2 s (a drain at work, as far as the
    // called one can tell): the drain the write calls finds it busy.
    const [taken] = await sql<[{ taken: boolean }]>`
      select coalesce(cesar.take_event_processor('doorbell-test', 2), false) as taken`;
    expect(taken.taken).toBe(true);
    const before = await requestsMade();
    const id = await writeProbe('while another drain holds the work');
    await untilRun([id]);
    await untilIdle();
    // The webhook call and the job's: no hand-over from a busy drain to the next, and so on
    // while the lease lasted.
    expect((await requestsMade()) - before).toBeLessThanOrEqual(3);
  });

  it('lapse when the drain holding them stops renewing (it died): the next write rings', async () => {
    await untilIdle();
    await sql`select cesar.doorbell_hold('webhook/drain', 1500)`;
    const before = await requestsMade();
    const first = await writeProbe('while a dead drain holds the doorbell');
    expect(await requestsMade()).toBe(before);
    await sleep(1600);
    const second = await writeProbe('after its hold lapsed');
    expect(await requestsMade()).toBeGreaterThan(before);
    await untilRun([first, second]);
  });

  it(
    'cost a few invocations for hundreds of writes, and leave nothing behind when drains let go',
    async () => {
      await untilIdle();
      const before = await requestsMade();
      const ids: string[] = [];
      // A steady stream: 300 single-row transactions at about 100 a second.
      for (let i = 0; i < 300; i++) {
        ids.push(await writeProbe(`stream ${i}`));
        await sleep(10);
      }
      // Then writes spaced around the drains' linger (2 s), so that some land while a drain
      // lets go: each must still run, with the ticks paused.
      for (const gapMs of [1800, 1950, 2000, 2050, 2100, 2200, 2400]) {
        await sleep(gapMs);
        ids.push(await writeProbe(`spaced ${gapMs}`));
        ids.push(await writeProbe(`spaced ${gapMs} again`));
      }
      await untilRun(ids);
      await untilIdle();
      const invocations = (await requestsMade()) - before;
      // Without coalescing: about two per write (webhook and job-drain), 628 here.
      expect(invocations).toBeLessThanOrEqual(30);
      const [pending] = await sql<[{ events: boolean; jobs: boolean }]>`
      select cesar.events_pending() as events, cesar.jobs_due() as jobs`;
      expect(pending).toEqual({ events: false, jobs: false });
    },
    90_000,
  );

  it('are not held by a call rolled back with its transaction', async () => {
    await untilIdle();
    await sql.begin(async (tx) => {
      const [rang] = await tx<[{ rang: boolean }]>`select cesar.ring_doorbell('job-drain') as rang`;
      expect(rang.rang).toBe(true);
      // Held for the writes after it once it commits, not before.
      const [seen] = await other<
        [{ held: boolean }]
      >`select cesar.doorbell_held('job-drain') as held`;
      expect(seen.held).toBe(false);
      throw new Error('roll back');
    }).catch((err) => expect((err as Error).message).toBe('roll back'));
    const [after] = await sql<[{ held: boolean }]>`select cesar.doorbell_held('job-drain') as held`;
    expect(after.held).toBe(false);
  });

  it('do not keep job-drain busy with a due job it cannot take', async () => {
    await untilIdle();
    // The second job waits for the first, which is retried in an hour: due, but not claimable.
    await sql`insert into cesar.job_queue (job_type, serial_key, run_at, payload)
              values ('system.noop', 'doorbell-blocked', now() + interval '1 hour', '{"blocked": 1}'),
                     ('system.noop', 'doorbell-blocked', now(), '{"blocked": 2}')`;
    try {
      const res = await callJobDrain({ reason: 'doorbell', linger_ms: 2000, budget_ms: 8000 });
      const answer = await res.json();
      expect(res.status).toBe(200);
      // It let go and ended: no pass after pass until its budget, no hand-over to another.
      expect(answer).toMatchObject({ claimed: 0, continued: false });
      expect(answer.passes).toBeLessThanOrEqual(2);
    } finally {
      await sql`delete from cesar.job_queue where serial_key = 'doorbell-blocked'`;
    }
  });

  it('publish a writer that saw them held, for the drain to wake at its commit, and never make it wait', async () => {
    await untilIdle();
    const writer = postgres(stack.settings.SUPABASE_DB_URL!, { max: 1, onnotice: () => {} });
    const lastWriter = async () => {
      const [row] = await sql<[{ last: string }]>`
        select cesar.doorbell_last_writer('job-drain')::text as last`;
      return BigInt(row.last);
    };
    await sql`select cesar.doorbell_hold('job-drain', 60000)`;
    try {
      const [{ pid }] = await writer<[{ pid: number }]>`select pg_backend_pid() as pid`;
      await writer.begin(async (tx) => {
        await tx`select cesar.enqueue('system.noop', ${tx.json({ wake_probe: 1 })})`;
        // Published before its commit: its backend in the low 23 bits.
        expect(Number((await lastWriter()) & 8388607n)).toBe(pid);
        // A look waits for an open writer only briefly (lock_timeout), then looks on: it
        // answers at its own time-out, its job not committed yet.
        const [look] = await sql<[{ work: boolean }]>`
          select cesar.await_work('job-drain', 300) as work`;
        expect(look.work).toBe(false);
      });
      const [after] = await sql<
        [{ work: boolean }]
      >`select cesar.await_work('job-drain', 0) as work`;
      expect(after.work).toBe(true);
      // A session holding that writer's lock (a drain waiting for it) makes no writer wait:
      // the writer is just not published.
      const published = await lastWriter();
      await other.begin(async (tx) => {
        const key = sql`cesar.doorbell_wake_class('job-drain'), ${pid}::int`;
        await tx`select pg_advisory_lock_shared(${key})`;
        await writer`select cesar.enqueue('system.noop', ${writer.json({ wake_probe: 2 })})`;
        expect(await lastWriter()).toBe(published);
        await tx`select pg_advisory_unlock_shared(${key})`;
      });
    } finally {
      await sql`select cesar.doorbell_release('job-drain', 0)`;
      await sql`delete from cesar.job_queue where payload ? 'wake_probe'`;
      await writer.end();
    }
  });

  it("let job-drain's wait claim what it waited for, a job enqueued after the wait began", async () => {
    await untilIdle();
    await sql`select cesar.doorbell_hold('job-drain', 60000)`;
    try {
      const waiting = sql<[{ step: { jobs: Array<Record<string, unknown>> } | null }]>`
        call cesar.await_jobs('doorbell-test', 10, null, 60, 10, 5000, null)`.execute();
      await sleep(200);
      await other`select cesar.enqueue('system.noop', ${other.json({ awaited: true })})`;
      const [{ step }] = await waiting;
      // Claimed and started: its run_at is after the wait's transaction began, and the claim
      // saw it due (a claim in that transaction would not have).
      expect(step?.jobs).toEqual([
        expect.objectContaining({ payload: { awaited: true }, started: true, attempts: 1 }),
      ]);
      const [row] = await sql<[{ status: string; locked_by: string }]>`
        select status, locked_by from cesar.job_queue where payload ? 'awaited'`;
      expect(row).toEqual({ status: 'running', locked_by: 'doorbell-test' });
      // Nothing due: no claim, after the time-out.
      const [none] = await sql<[{ step: unknown }]>`
        call cesar.await_jobs('doorbell-test', 10, null, 60, 10, 100, null)`;
      expect(none.step).toBeNull();
    } finally {
      await sql`select cesar.doorbell_release('job-drain', 0)`;
      await sql`delete from cesar.job_queue where payload ? 'awaited'`;
    }
  });

  it("are let go by a drain only while the hold is its own, not another drain's", async () => {
    await untilIdle();
    const held = async () =>
      (await sql<[{ held: boolean }]>`select cesar.doorbell_held('job-drain') as held`)[0].held;
    const [{ mine }] = await sql<[{ mine: string }]>`
      select cesar.doorbell_hold('job-drain', 60000)::text as mine`;
    // Another drain renews after it: the hold is that drain's now.
    const [{ theirs }] = await sql<[{ theirs: string }]>`
      select cesar.doorbell_hold('job-drain', 50000)::text as theirs`;
    try {
      await sql`select cesar.doorbell_release('job-drain', 0, ${mine}::bigint)`;
      expect(await held()).toBe(true);
      await sql`select cesar.doorbell_release('job-drain', 0, ${theirs}::bigint)`;
      expect(await held()).toBe(false);
    } finally {
      await sql`select cesar.doorbell_release('job-drain', 0)`;
    }
  });

  it('ring for a write after a called drain let go, however recent the call', async () => {
    await untilIdle();
    // A call on its way silences the writers until its drain holds the doorbell (a row of
    // cesar.doorbell_calls, for 2 s). Here one that lasts: the drain that answers it finds
    // nothing and lets go at once, and must take the silence with it.
    await sql`insert into cesar.doorbell_calls (target, called_at)
              values ('job-drain', clock_timestamp() + interval '1 minute')`;
    try {
      const res = await callJobDrain({ reason: 'doorbell', linger_ms: 2000 });
      expect(await res.json()).toMatchObject({ claimed: 0, continued: false });
      const before = await requestsMade();
      const id = await writeProbe('after a called drain let go');
      // The webhook's ring; the job's when the workflow enqueues it.
      await untilRun([id], 10_000);
      expect(await requestsMade()).toBeGreaterThanOrEqual(before + 2);
    } finally {
      await sql`delete from cesar.doorbell_calls where called_at > clock_timestamp()`;
    }
  });

  it('are handed over by a last pass that stops at its budget', async () => {
    await untilIdle();
    // A drain's hand-over called this one while the writer it waited for was still in its
    // transaction (the writer saw the hold, so it calls nobody): the call finds nothing, and
    // the jobs come while it lets go. Its last pass stops at its CPU budget with most of
    // them left; it must call the next drain, as the ticks are paused.
    const JOBS = 30_000;
    await sql`select cesar.doorbell_hold('job-drain', 60000)`;
    let commit!: () => void;
    const committing = new Promise<void>((r) => (commit = r));
    let written!: () => void;
    const wrote = new Promise<void>((r) => (written = r));
    const before = await requestsMade();
    const writer = other.begin(async (tx) => {
      await tx`select cesar.enqueue('system.noop', jsonb_build_object('late_writer', i))
               from generate_series(1, ${JOBS}) i`;
      written();
      await committing;
    });
    await wrote;
    expect(await requestsMade()).toBe(before);
    const drain = callJobDrain({ reason: 'doorbell', linger_ms: 2000, cpu_budget_ms: 100 });
    // Committed while the drain waits, letting go, for the writers that saw its hold.
    await sleep(400);
    commit();
    await writer;
    const res = await drain;
    const answer = await res.json();
    expect(res.status, JSON.stringify(answer)).toBe(200);
    expect(answer, JSON.stringify(answer)).toMatchObject({ stopped: 'cpu', continued: true });
    const deadline = Date.now() + 60_000;
    for (;;) {
      const [row] = await sql<[{ left: number }]>`
        select count(*)::int as left from cesar.job_queue
        where payload ? 'late_writer' and status <> 'completed'`;
      if (row.left === 0) break;
      if (Date.now() > deadline) throw new Error(`${row.left} of ${JOBS} jobs not run`);
      await sleep(100);
    }
    await untilIdle();
  });

  it("do not keep job-drain busy with a job waiting for its key's slot", async () => {
    await untilIdle();
    await sql`update cesar.job_types set concurrency_key = 'payload.tenant', key_concurrency = 1
              where job_type = 'system.noop'`;
    try {
      // Tenant k's one slot is taken by a job another drain runs: the second is due, but not
      // claimable until that one ends.
      await sql`insert into cesar.job_queue (job_type, payload, status, attempts, started_at,
                                             locked_by, locked_until)
                values ('system.noop', '{"tenant": "k", "keyed": 1}', 'running', 1, now(),
                        'elsewhere', now() + interval '1 hour')`;
      await sql`insert into cesar.job_queue (job_type, payload)
                values ('system.noop', '{"tenant": "k", "keyed": 2}')`;
      const res = await callJobDrain({ reason: 'doorbell', linger_ms: 2000, budget_ms: 8000 });
      const answer = await res.json();
      expect(res.status).toBe(200);
      expect(answer).toMatchObject({ claimed: 0, continued: false });
      expect(answer.passes).toBeLessThanOrEqual(2);
    } finally {
      await sql`update cesar.job_types set concurrency_key = null, key_concurrency = null
                where job_type = 'system.noop'`;
      await sql`delete from cesar.job_queue where payload ? 'keyed'`;
    }
  });

  it('start the jobs a rate limit held back once their window frees, without a tick', async () => {
    await untilIdle();
    // One system.noop a 3 s window (tests/flow-control.test.ts has the limit itself).
    await sql`update cesar.job_types set rate_limit = 1, rate_period_seconds = 3
              where job_type = 'system.noop'`;
    try {
      // Rings the doorbell: a drain starts the first and the claim holds the other two back
      // (run_at moved to when the window frees). The drain waits for them, holding the
      // doorbell; before, it lingered 2 s, let go, and they waited for the tick (paused here).
      await sql`select cesar.enqueue_many(${
        sql.json([1, 2, 3].map((n) => ({ job_type: 'system.noop', payload: { rated: n } })))
      })`;
      const until = Date.now() + 20_000;
      let rows: Array<{ started_ms: number; status: string }> = [];
      while (Date.now() < until) {
        rows = await sql<Array<{ started_ms: number; status: string }>>`
          select (extract(epoch from started_at) * 1000)::float8 as started_ms, status
          from cesar.job_queue where payload ? 'rated' order by started_at`;
        if (rows.length === 3 && rows.every((r) => r.status === 'completed')) break;
        await sleep(200);
      }
      expect(rows.map((r) => r.status)).toEqual(['completed', 'completed', 'completed']);
      expect(rows[1]!.started_ms - rows[0]!.started_ms).toBeGreaterThanOrEqual(3_000);
      expect(rows[2]!.started_ms - rows[1]!.started_ms).toBeGreaterThanOrEqual(3_000);
      // Started when the window let them, not much later.
      expect(rows[2]!.started_ms - rows[0]!.started_ms).toBeLessThan(9_000);
    } finally {
      await sql`update cesar.job_types set rate_limit = null, rate_period_seconds = null
                where job_type = 'system.noop'`;
      await sql`delete from cesar.job_queue where payload ? 'rated'`;
      await sql`delete from cesar.job_rate_windows where job_type = 'system.noop'`;
    }
  });

  it("start a lone write's job on an idle stack without waiting for a tick", async () => {
    await untilIdle();
    const id = await writeProbe('lone');
    await untilRun([id], 10_000);
  });
});
