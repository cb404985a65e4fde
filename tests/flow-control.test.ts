import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiApp } from '../packages/shared/src/api/app.ts';
import { parseAllowList } from '../packages/shared/src/allow-list.ts';
import { fixedClock } from '../packages/shared/src/clock.ts';
import { builtInHandlers } from '../packages/shared/src/queue/handlers/index.ts';
import {
  claimJobs,
  completeJobs,
  enqueueJobs,
  type JobTypeRow,
} from '../packages/shared/src/queue/queries.ts';
import { actionSchema } from '../packages/shared/src/workflows/schema.ts';
import { jobsCommand } from '../scripts/cli/jobs.ts';
import { functionSql, testSql, withRollback } from './helpers/db.ts';
import { drain, uniqueJobType } from './helpers/queue.ts';

// Flow control (supabase/migrations/20261203001600_flow_control.sql): rate limits per job type
// and key, and a cap per key within a type, both held by the claim across concurrent drains;
// the rate limits of single keys, as an http_request action's rate_group names one
// (20261203002100_action_rate_limits.sql), and the api's and the CLI's setters.
const sql = testSql(undefined, 12);
// The drains' own pool: through the transaction pooler, as the job-drain function has it.
const fnSql = functionSql(12, 'job-drain');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface FlowPolicy {
  rate_limit?: number;
  rate_period_seconds?: number;
  rate_key?: string;
  concurrency_key?: string;
  key_concurrency?: number;
}

async function defineType(jobType: string, policy: FlowPolicy) {
  await sql`
    insert into cesar.job_types (job_type, rate_limit, rate_period_seconds, rate_key,
                                 concurrency_key, key_concurrency)
    values (${jobType}, ${policy.rate_limit ?? null}, ${policy.rate_period_seconds ?? null},
            ${policy.rate_key ?? null}, ${policy.concurrency_key ?? null},
            ${policy.key_concurrency ?? null})`;
}

describe('rate limits (cesar.job_types.rate_limit)', () => {
  it('start at most rate_limit jobs of a key in any window of the period, across two concurrent claimers, and start the waiting ones later', async () => {
    const type = uniqueJobType('rated');
    // 3 jobs per agent per second.
    await defineType(type, { rate_limit: 3, rate_period_seconds: 1, rate_key: 'payload.agent_id' });
    await enqueueJobs(sql, [
      ...Array.from({ length: 10 }, (_, i) => ({ job_type: type, payload: { agent_id: 'a', i } })),
      ...Array.from({ length: 10 }, (_, i) => ({ job_type: type, payload: { agent_id: 'b', i } })),
    ]);

    // The first claim takes each key's 3 and moves the other 14 to when their window frees a
    // slot: pending, no attempt charged, and not due (no drain spins on them).
    const first = await claimJobs(sql, { worker: 'first', batchSize: 50, jobTypes: [type] });
    expect(first).toHaveLength(6);
    const [waiting] = await sql<Array<{ n: number; due: boolean; charged: number }>>`
      select count(*)::int as n, bool_or(run_at <= now()) as due, sum(attempts)::int as charged
      from cesar.job_queue where job_type = ${type} and status = 'pending'`;
    expect(waiting).toEqual({ n: 14, due: false, charged: 0 });
    const [{ due }] = await sql<[{ due: boolean }]>`select cesar.jobs_due(${[type]}) as due`;
    expect(due).toBe(false);
    // Spread over the windows to come, 3 a window per agent (7 each: 3, 3 and 1), so that
    // they do not all fall due again at once.
    const spread = await sql<Array<{ agent: string; n: number }>>`
      select payload ->> 'agent_id' as agent, count(*)::int as n
      from cesar.job_queue where job_type = ${type} and status = 'pending'
      group by payload ->> 'agent_id', run_at order by 1, 2 desc`;
    expect(spread).toEqual([
      { agent: 'a', n: 3 },
      { agent: 'a', n: 3 },
      { agent: 'a', n: 1 },
      { agent: 'b', n: 3 },
      { agent: 'b', n: 3 },
      { agent: 'b', n: 1 },
    ]);
    await completeJobs(sql, 'first', first.map((j) => ({ id: j.id, attempt: 1, result: null })));

    // Two claimers, each claiming as fast as it can and finishing at once, until every job
    // has run.
    const claimer = async (worker: string) => {
      const until = Date.now() + 15_000;
      while (Date.now() < until) {
        const jobs = await claimJobs(sql, { worker, batchSize: 50, jobTypes: [type] });
        if (jobs.length) {
          await completeJobs(
            sql,
            worker,
            jobs.map((j) => ({ id: j.id, attempt: 1, result: null })),
          );
        }
        const [{ left }] = await sql<[{ left: number }]>`
          select count(*)::int as left from cesar.job_queue
          where job_type = ${type} and status <> 'completed'`;
        if (left === 0) return;
        await sleep(10);
      }
    };
    await Promise.all([claimer('w1'), claimer('w2')]);

    const rows = await sql<
      Array<{ agent: string; started: string; attempts: number; status: string }>
    >`
      select payload ->> 'agent_id' as agent, (extract(epoch from started_at) * 1e6)::bigint::text as started,
             attempts, status
      from cesar.job_queue where job_type = ${type} order by started_at`;
    expect(rows.every((r) => r.status === 'completed' && r.attempts === 1)).toBe(true);
    for (const agent of ['a', 'b']) {
      const starts = rows.filter((r) => r.agent === agent).map((r) => BigInt(r.started));
      expect(starts).toHaveLength(10);
      // Sliding window: the 4th start after any start is at least a period (1 s) later.
      for (let i = 0; i + 3 < starts.length; i++) {
        expect(starts[i + 3]! - starts[i]!).toBeGreaterThanOrEqual(1_000_000n);
      }
      // And the waiting ones started as soon as the window let them: 10 jobs at 3 a second
      // take 3 windows after the first, not much more.
      expect(Number(starts.at(-1)! - starts[0]!) / 1e6).toBeLessThan(4.5);
    }
  });
});

describe('fair concurrency per key (cesar.job_types.key_concurrency)', () => {
  it('lets a key with 10 waiting jobs run beside one with 10,000, each at most 2 at once, across three concurrent drains', async () => {
    const type = uniqueJobType('keyed');
    await defineType(type, { concurrency_key: 'payload.tenant_id', key_concurrency: 2 });
    // The big tenant's jobs first: in plain queue order all 10,000 come before the small's.
    await enqueueJobs(
      sql,
      Array.from(
        { length: 10_000 },
        (_, i) => ({ job_type: type, payload: { tenant_id: 'big', i } }),
      ),
    );
    await enqueueJobs(
      sql,
      Array.from(
        { length: 10 },
        (_, i) => ({ job_type: type, payload: { tenant_id: 'small', i } }),
      ),
    );

    const running: Record<string, number> = { big: 0, small: 0 };
    const most: Record<string, number> = { big: 0, small: 0 };
    const done: Record<string, number> = { big: 0, small: 0 };
    let bigDoneWhenSmallDone = -1;
    const handlers = {
      [type]: async ({ job }: { job: { payload: Record<string, unknown> } }) => {
        const tenant = job.payload.tenant_id as string;
        running[tenant]!++;
        most[tenant] = Math.max(most[tenant] ?? 0, running[tenant] ?? 0);
        await sleep(20);
        running[tenant]!--;
        done[tenant]!++;
        if (tenant === 'small' && done.small === 10) bigDoneWhenSmallDone = done.big ?? 0;
        return null;
      },
    };
    await Promise.all(
      [1, 2, 3].map(() =>
        drain(fnSql, handlers, {
          jobTypes: [type],
          budgetMs: 4_000,
          concurrency: 10,
          batchSize: 20,
        })
      ),
    );

    // The small tenant's 10 ran while the big one had run a handful of its 10,000.
    expect(done.small).toBe(10);
    expect(bigDoneWhenSmallDone).toBeGreaterThanOrEqual(0);
    expect(bigDoneWhenSmallDone).toBeLessThan(40);
    // Held across the drains: never more than 2 of a tenant at once (counted in the handlers,
    // which start after the claim and end before the outcome is recorded).
    expect(most).toEqual({ big: 2, small: 2 });
    const [left] = await sql<[{ n: number }]>`
      select count(*)::int as n from cesar.job_queue where job_type = ${type} and status = 'pending'`;
    expect(left!.n).toBeGreaterThan(9_000);
    // Stop here: the rest of the big tenant's jobs are not this test's.
    await sql`delete from cesar.job_queue where job_type = ${type}`;
  });

  it('counts a missing key field as one key, and holds a type with both a rate and a key cap', async () => {
    const type = uniqueJobType('both');
    await defineType(type, {
      concurrency_key: 'payload.tenant.id',
      key_concurrency: 1,
      rate_limit: 5,
      rate_period_seconds: 60,
    });
    await enqueueJobs(sql, [
      ...Array.from({ length: 3 }, () => ({ job_type: type, payload: { tenant: { id: 't1' } } })),
      ...Array.from({ length: 3 }, () => ({ job_type: type, payload: { tenant: { id: 't2' } } })),
      ...Array.from({ length: 3 }, () => ({ job_type: type, payload: {} })),
    ]);
    const claim = (worker: string) => claimJobs(sql, { worker, batchSize: 50, jobTypes: [type] });
    const first = await claim('x');
    // One per key: t1, t2 and the key-less group.
    const tenantOf = (j: { payload: Record<string, unknown> }) =>
      (j.payload.tenant as { id: string } | undefined)?.id ?? 'none';
    expect(first.map(tenantOf).sort()).toEqual(['none', 't1', 't2']);
    expect(await claim('y')).toHaveLength(0);
    await completeJobs(sql, 'x', first.map((j) => ({ id: j.id, attempt: 1, result: null })));
    // 3 started of the type's 5 a minute (no rate_key: one window for the type): 2 more.
    const second = await claim('y');
    expect(second).toHaveLength(2);
    await completeJobs(sql, 'y', second.map((j) => ({ id: j.id, attempt: 1, result: null })));
    expect(await claim('z')).toHaveLength(0);
    const [{ pending, due }] = await sql<[{ pending: number; due: boolean }]>`
      select count(*)::int as pending, bool_or(run_at <= now()) as due
      from cesar.job_queue where job_type = ${type} and status = 'pending'`;
    expect({ pending, due }).toEqual({ pending: 4, due: false });
    await sql`delete from cesar.job_queue where job_type = ${type}`;
  });
});

describe('job types without flow control', () => {
  it('refuses half a setting', async () => {
    const type = uniqueJobType('bad');
    await expect(defineType(type, { rate_limit: 3 })).rejects.toThrow(
      /job_types_rate_settings_check/,
    );
    await expect(defineType(type, { key_concurrency: 3 })).rejects.toThrow(
      /job_types_key_settings_check/,
    );
    await expect(
      defineType(type, { rate_limit: 1, rate_period_seconds: 1, rate_key: 'agent_id' }),
    ).rejects.toThrow(/rate_key_check/);
  });

  it('takes a rate_key without a rate_limit (only its keys with a limit of their own are limited), and refuses a key limit of nothing or of an unknown type', async () => {
    const type = uniqueJobType('keyonly');
    await defineType(type, { rate_key: 'payload.rate_group' });
    try {
      await expect(sql`insert into cesar.job_rate_limits (job_type, key_value, rate_limit,
                                                          rate_period_seconds)
                       values (${type}, 'g', 0, 60)`).rejects.toThrow(/rate_limit_check/);
      await expect(sql`insert into cesar.job_rate_limits (job_type, key_value, rate_limit,
                                                          rate_period_seconds)
                       values (${type}, 'g', 1, 86401)`).rejects.toThrow(/period_seconds_check/);
      await expect(sql`insert into cesar.job_rate_limits (job_type, key_value, rate_limit,
                                                          rate_period_seconds)
                       values (${`${type}_none`}, 'g', 1, 60)`).rejects.toThrow(/foreign key/);
    } finally {
      await sql`delete from cesar.job_types where job_type = ${type}`;
    }
  });
});

// An api app on the test database, as the api function builds it, and a call through it.
const SECRET = 'test-function-secret-0123456789';
const api = createApiApp({
  sql: fnSql,
  mirror: null,
  config: {
    functionSecret: SECRET,
    serviceRoleKey: 'test-service-role-key-0123456789',
    dbPoolMax: 4,
  },
  clock: fixedClock(new Date()),
  applicationName: 'cesar-edge/api/test',
  jobTypes: Object.keys(builtInHandlers),
});
async function call(method: string, path: string, body?: unknown) {
  const res = await api.request(path, {
    method,
    headers: { authorization: `Bearer ${SECRET}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  });
  return { status: res.status, body: await res.json() as Record<string, unknown> };
}

/** A job's start, in microseconds since the epoch (exact, for the window arithmetic). */
const startsOf = (rows: Array<{ started: string }>) => rows.map((r) => BigInt(r.started));

describe("rate limits of single keys (cesar.job_rate_limits): an http_request action's rate_group", () => {
  // A partner API on the loopback, which counts the requests it gets per rate group (the
  // first segment of the path).
  const local = { allow: parseAllowList('127.0.0.1') };
  const got: Record<string, number> = {};
  let server: http.Server;
  let base = '';
  beforeAll(async () => {
    server = http.createServer((req, res) => {
      const group = req.url!.split('/')[1]!;
      got[group] = (got[group] ?? 0) + 1;
      res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  /** http_request actions as a template holds them, parsed as the api parses them. */
  const actions = (group: string | null, n: number) =>
    Array.from({ length: n }, (_, i) =>
      actionSchema.parse({
        type: 'http_request',
        url: `${base}/${group ?? 'none'}/${i}`,
        method: 'GET',
        ...(group === null ? {} : { rate_group: group }),
      }));

  it("start at most the group's limit in any window across three concurrent drains; requests without a group or of a group without a limit are not held", async () => {
    // http.request's settings (its rate_key, no limit of its own) on a type of this test's
    // own, so that no other file's drain takes these jobs; the jobs are what the actions make
    // (cesar.action_jobs), run by the http.request handler.
    const type = uniqueJobType('partner');
    await defineType(type, { rate_key: 'payload.rate_group' });
    const group = `partner-x-${type.split('.')[0]!.slice(-6)}`;
    const other = `partner-y-${type.split('.')[0]!.slice(-6)}`;
    // 3 requests a second for partner-x, set as an operator sets it.
    expect(
      await call('PUT', `/api/job-types/${type}/rate-limits/${group}`, {
        rate_limit: 3,
        rate_period_seconds: 1,
      }),
    ).toMatchObject({ status: 200, body: { key: group, rate_limit: 3, rate_period_seconds: 1 } });
    await sql`
      insert into cesar.job_queue (job_type, payload)
      select ${type}, a.payload
      from cesar.action_jobs(${
      sql.json([...actions(group, 10), ...actions(other, 10), ...actions(null, 10)] as never)
    }) a`;
    const [made] = await sql<[{ groups: string[] }]>`
      select array_agg(distinct coalesce(payload ->> 'rate_group', '-')) as groups
      from cesar.job_queue where job_type = ${type}`;
    expect(made!.groups.sort()).toEqual(['-', group, other].sort());

    // Three drains, each calling again as soon as its call ends, until every job has run.
    const handlers = { [type]: builtInHandlers['http.request'] };
    const drainer = async () => {
      const until = Date.now() + 15_000;
      while (Date.now() < until) {
        await drain(fnSql, handlers, {
          jobTypes: [type],
          budgetMs: 1_000,
          concurrency: 5,
          batchSize: 20,
        }, { outbound: local });
        const [{ left }] = await sql<[{ left: number }]>`
          select count(*)::int as left from cesar.job_queue
          where job_type = ${type} and status <> 'completed'`;
        if (left === 0) return;
        await sleep(10);
      }
    };
    await Promise.all([drainer(), drainer(), drainer()]);

    const rows = await sql<
      Array<{ grp: string; started: string; attempts: number; status: string }>
    >`
      select coalesce(payload ->> 'rate_group', '-') as grp, attempts, status,
             (extract(epoch from started_at) * 1e6)::bigint::text as started
      from cesar.job_queue where job_type = ${type} order by started_at`;
    expect(rows).toHaveLength(30);
    expect(rows.every((r) => r.status === 'completed' && r.attempts === 1)).toBe(true);
    expect({ x: got[group], y: got[other] }).toEqual({ x: 10, y: 10 });
    const limited = startsOf(rows.filter((r) => r.grp === group));
    // Sliding window: the 4th start after any start of partner-x is at least a period later.
    for (let i = 0; i + 3 < limited.length; i++) {
      expect(limited[i + 3]! - limited[i]!).toBeGreaterThanOrEqual(1_000_000n);
    }
    // The waiting ones started as soon as the window let them: 10 at 3 a second take 3
    // windows after the first.
    expect(Number(limited.at(-1)! - limited[0]!) / 1e6).toBeLessThan(4.5);
    // The others did not wait for partner-x's windows: all 20 started within its first one.
    const first = startsOf(rows)[0]!;
    const free = startsOf(rows.filter((r) => r.grp !== group));
    expect(free).toHaveLength(20);
    expect(Number(free.at(-1)! - first) / 1e6).toBeLessThan(1);
    await sql`delete from cesar.job_types where job_type = ${type}`;
    await sql`delete from cesar.job_queue where job_type = ${type}`;
  });

  it("hold jobs over the limit pending, not charged, not due, and start them once the window frees; a key's own limit replaces its type's", async () => {
    const type = uniqueJobType('override');
    // 5 a minute per agent; agent "slow" 2 a second of its own.
    await defineType(type, {
      rate_limit: 5,
      rate_period_seconds: 60,
      rate_key: 'payload.agent_id',
    });
    await sql`insert into cesar.job_rate_limits (job_type, key_value, rate_limit, rate_period_seconds)
              values (${type}, 'slow', 2, 1)`;
    await enqueueJobs(sql, [
      ...Array.from(
        { length: 5 },
        (_, i) => ({ job_type: type, payload: { agent_id: 'slow', i } }),
      ),
      ...Array.from(
        { length: 7 },
        (_, i) => ({ job_type: type, payload: { agent_id: 'fast', i } }),
      ),
    ]);
    const claim = (worker: string) => claimJobs(sql, { worker, batchSize: 50, jobTypes: [type] });
    const agents = (jobs: Array<{ payload: Record<string, unknown> }>) =>
      jobs.map((j) => j.payload.agent_id).sort();
    const first = await claim('a');
    expect(agents(first)).toEqual(['fast', 'fast', 'fast', 'fast', 'fast', 'slow', 'slow']);
    const [held] = await sql<Array<{ n: number; due: boolean; charged: number }>>`
      select count(*)::int as n, bool_or(run_at <= now()) as due, sum(attempts)::int as charged
      from cesar.job_queue where job_type = ${type} and status = 'pending'`;
    expect(held).toEqual({ n: 5, due: false, charged: 0 });
    const [{ next }] = await sql<[{ next: Date | null }]>`
      select cesar.next_deferred_at(${[type]}) as next`;
    expect(next!.getTime() - Date.now()).toBeLessThan(1_500);
    await completeJobs(sql, 'a', first.map((j) => ({ id: j.id, attempt: 1, result: null })));
    // Nothing more now; a second on, slow's window has room for 2 again (fast's, a minute
    // long, none).
    expect(await claim('b')).toHaveLength(0);
    await sleep(Math.max(0, next!.getTime() - Date.now()) + 50);
    const second = await claim('c');
    expect(agents(second)).toEqual(['slow', 'slow']);
    await sql`delete from cesar.job_types where job_type = ${type}`;
    await sql`delete from cesar.job_queue where job_type = ${type}`;
  });

  it('leave the jobs a limit held back where they are when the limit is removed', async () => {
    const type = uniqueJobType('removed');
    await defineType(type, { rate_key: 'payload.rate_group' });
    await call('PUT', `/api/job-types/${type}/rate-limits/g`, {
      rate_limit: 1,
      rate_period_seconds: 60,
    });
    await enqueueJobs(
      sql,
      [1, 2, 3].map((i) => ({ job_type: type, payload: { rate_group: 'g', i } })),
    );
    const claim = (worker: string) => claimJobs(sql, { worker, batchSize: 50, jobTypes: [type] });
    expect(await claim('a')).toHaveLength(1);
    expect((await call('DELETE', `/api/job-types/${type}/rate-limits/g`)).status).toBe(200);
    // Unlimited now, but their run_at (a minute and two on) stays: not due, not claimed.
    expect(await claim('b')).toHaveLength(0);
    const held = await sql<Array<{ wait: number }>>`
      select round(extract(epoch from run_at - now()) / 60)::int as wait
      from cesar.job_queue where job_type = ${type} and status = 'pending' order by run_at`;
    expect(held).toEqual([{ wait: 1 }, { wait: 2 }]);
    await sql`delete from cesar.job_types where job_type = ${type}`;
    await sql`delete from cesar.job_queue where job_type = ${type}`;
  });

  it('on http.request itself: no limit and the claim it always had until a group has one, then that group held and the rest not', async () => {
    const [policy] = await sql`select rate_key, rate_limit from cesar.job_types
                               where job_type = 'http.request'`;
    expect(policy).toEqual({ rate_key: 'payload.rate_group', rate_limit: null });
    const group = `partner-${Date.now().toString(36)}`;
    // In a transaction rolled back, so that no other file's drain sees these jobs; first in
    // the queue (priority) ahead of any of theirs.
    const enqueue = (tx: typeof sql) =>
      tx<Array<{ id: string }>>`
        insert into cesar.job_queue (job_type, payload, priority)
        select a.job_type, a.payload, 1000000
        from cesar.action_jobs(${sql.json([...actions(group, 5), ...actions(null, 3)] as never)}) a
        returning id::text`;
    const claimMine = async (tx: typeof sql, ids: string[], start: number) => {
      const rows = await tx<Array<{ id: string; grp: string | null; started: boolean }>>`
        select c.id::text, c.payload ->> 'rate_group' as grp, c.started
        from cesar.claim_jobs('rollback-test', 8, array['http.request'], 60, ${start}) c`;
      return rows.filter((r) => ids.includes(r.id));
    };
    // No group has a limit: the plain claim, which leases a batch and starts `start` of it.
    const plain = await withRollback(
      sql,
      async (tx) => claimMine(tx, (await enqueue(tx)).map((r) => r.id), 1),
    );
    expect(plain).toHaveLength(8);
    expect(plain.filter((r) => r.started)).toHaveLength(1);
    // partner-x 2 a minute: 2 of its 5 and the 3 without a group start; 3 wait for the window.
    // Now a rate-limited type: a claim starts only its free slots and leases no more.
    const held = await withRollback(sql, async (tx) => {
      await tx`insert into cesar.job_rate_limits (job_type, key_value, rate_limit, rate_period_seconds)
               values ('http.request', ${group}, 2, 60)`;
      const ids = (await enqueue(tx)).map((r) => r.id);
      const first = await claimMine(tx, ids, 2);
      const second = await claimMine(tx, ids, 8);
      const [waiting] = await tx<[{ n: number; due: boolean }]>`
        select count(*)::int as n, bool_or(run_at <= now()) as due
        from cesar.job_queue where id = any (${ids}::bigint[]) and status = 'pending'`;
      return { first, claimed: [...first, ...second], waiting };
    });
    expect(held.first).toHaveLength(2);
    expect(held.claimed.every((r) => r.started)).toBe(true);
    expect(held.claimed.map((r) => r.grp ?? '-').sort()).toEqual(['-', '-', '-', group, group]);
    expect(held.waiting).toEqual({ n: 3, due: false });
  });
});

describe("http_request actions' rate_group", () => {
  it("is a name: kept in the job's payload, and refused with a message when it is not one (nothing saved)", async () => {
    const action = (rate_group: unknown) => ({
      type: 'http_request',
      url: 'https://partner.example/hook',
      rate_group,
    });
    expect(actionSchema.parse(action('partner-x'))).toMatchObject({ rate_group: 'partner-x' });
    for (const bad of ['', 'partner x', '{{record.agent_id}}', 'x'.repeat(101), 7]) {
      expect(actionSchema.safeParse(action(bad)).success, String(bad)).toBe(false);
    }
    const [{ n: before }] = await sql<[{ n: number }]>`
      select count(*)::int as n from cesar.workflow_templates`;
    const refused = await call('POST', '/api/workflows', {
      name: `rate group ${Date.now()}`,
      trigger: { type: 'manual' },
      actions: [action('partner x')],
    });
    expect(refused.status).toBe(400);
    expect(refused.body).toMatchObject({
      error: {
        issues: [{
          path: 'actions.0.rate_group',
          message: expect.stringMatching(/like partner-x/),
        }],
      },
    });
    const [{ n: after }] = await sql<[{ n: number }]>`
      select count(*)::int as n from cesar.workflow_templates`;
    expect(after).toBe(before);
    const [job] = await sql`select job_type, payload from cesar.action_jobs(${
      sql.json([action('partner-x')] as never)
    })`;
    expect(job).toEqual({
      job_type: 'http.request',
      payload: { url: 'https://partner.example/hook', rate_group: 'partner-x' },
    });
  });
});

describe('the settings, shown', () => {
  it('by GET /api/job-types (policies) and `cesar jobs types`', async () => {
    const type = uniqueJobType('shown');
    await defineType(type, {
      rate_limit: 10,
      rate_period_seconds: 60,
      rate_key: 'payload.agent_id',
      concurrency_key: 'payload.tenant_id',
      key_concurrency: 2,
    });
    const secret = 'test-function-secret-0123456789';
    const api = createApiApp({
      sql,
      mirror: null,
      config: {
        functionSecret: secret,
        serviceRoleKey: 'test-service-role-key-0123456789',
        dbPoolMax: 4,
      },
      clock: fixedClock(new Date()),
      applicationName: 'cesar-edge/api/test',
      jobTypes: Object.keys(builtInHandlers),
    });
    const res = await api.request('/api/job-types', {
      headers: { authorization: `Bearer ${secret}` },
    });
    expect(res.status).toBe(200);
    const { policies } = await res.json() as { policies: JobTypeRow[] };
    expect(policies.find((p) => p.job_type === type)).toMatchObject({
      rate_limit: 10,
      rate_period_seconds: 60,
      rate_key: 'payload.agent_id',
      concurrency_key: 'payload.tenant_id',
      key_concurrency: 2,
      concurrency: null,
    });
    expect(policies.find((p) => p.job_type === 'system.noop')).toMatchObject({
      rate_limit: null,
      key_concurrency: null,
    });

    const client = {
      call: async <T>(fn: string, path: string) => {
        const r = await api.request(`/${fn}${path}`, {
          headers: { authorization: `Bearer ${secret}` },
        });
        return await r.json() as T;
      },
    };
    const out = await jobsCommand(client, {
      positionals: ['jobs', 'types'],
      options: new Map(),
      flags: new Set(),
    });
    expect(out.human).toMatch(
      new RegExp(
        `${type.replace(/[.]/g, '\\.')}.*10/60s per payload\\.agent_id.*2 per payload\\.tenant_id`,
      ),
    );
    await sql`delete from cesar.job_types where job_type = ${type}`;
  });
});

describe('the settings, set', () => {
  const stored = async (type: string) => {
    const [row] = await sql`
      select concurrency, rate_limit, rate_period_seconds::float8 as rate_period_seconds,
             rate_key, key_concurrency, concurrency_key,
             (select count(*)::int from cesar.job_rate_limits l where l.job_type = t.job_type)
               as key_limits
      from cesar.job_types t where job_type = ${type}`;
    return row;
  };

  it('by PATCH /api/job-types/:name and PUT/DELETE /api/job-types/:name/rate-limits/:key, shown by GET /api/job-types', async () => {
    const type = uniqueJobType('set');
    await defineType(type, {});
    try {
      const patched = await call('PATCH', `/api/job-types/${type}`, {
        concurrency: 4,
        rate_limit: 10,
        rate_period_seconds: 60,
        rate_key: 'payload.agent_id',
        concurrency_key: 'payload.tenant_id',
        key_concurrency: 2,
      });
      expect(patched).toMatchObject({
        status: 200,
        body: {
          job_type: type,
          concurrency: 4,
          rate_limit: 10,
          rate_period_seconds: 60,
          rate_key: 'payload.agent_id',
          key_concurrency: 2,
          concurrency_key: 'payload.tenant_id',
          key_rate_limits: [],
        },
      });
      // A field not given is kept; null clears one (here the type's own limit, keeping its key).
      expect(
        (await call('PATCH', `/api/job-types/${type}`, {
          rate_limit: null,
          rate_period_seconds: null,
        }))
          .body,
      ).toMatchObject({ concurrency: 4, rate_limit: null, rate_key: 'payload.agent_id' });
      expect(
        await call('PUT', `/api/job-types/${type}/rate-limits/agent%207`, {
          rate_limit: 1,
          rate_period_seconds: 0.5,
        }),
      ).toEqual({
        status: 200,
        body: { job_type: type, key: 'agent 7', rate_limit: 1, rate_period_seconds: 0.5 },
      });
      // PUT again replaces it.
      await call('PUT', `/api/job-types/${type}/rate-limits/agent%207`, {
        rate_limit: 3,
        rate_period_seconds: 60,
      });
      await call('PUT', `/api/job-types/${type}/rate-limits/agent-1`, {
        rate_limit: 5,
        rate_period_seconds: 1,
      });
      const shown = (await call('GET', '/api/job-types')).body.policies as JobTypeRow[];
      expect(shown.find((p) => p.job_type === type)?.key_rate_limits).toEqual([
        { key: 'agent 7', rate_limit: 3, rate_period_seconds: 60 },
        { key: 'agent-1', rate_limit: 5, rate_period_seconds: 1 },
      ]);
      // The rate key cannot go while keys have limits of their own.
      const keep = await call('PATCH', `/api/job-types/${type}`, { rate_key: null });
      expect(keep.status).toBe(400);
      expect(keep.body).toMatchObject({
        error: { issues: [{ path: 'rate_key', message: expect.stringMatching(/2 key\(s\)/) }] },
      });
      expect(await call('DELETE', `/api/job-types/${type}/rate-limits/agent%207`, undefined))
        .toEqual({ status: 200, body: { deleted: true, job_type: type, key: 'agent 7' } });
      expect((await call('DELETE', `/api/job-types/${type}/rate-limits/agent%207`)).status)
        .toBe(404);
      await call('DELETE', `/api/job-types/${type}/rate-limits/agent-1`);
      expect((await call('PATCH', `/api/job-types/${type}`, { rate_key: null })).body)
        .toMatchObject({ rate_key: null, rate_limit: null });
      expect(await stored(type)).toEqual({
        concurrency: 4,
        rate_limit: null,
        rate_period_seconds: null,
        rate_key: null,
        key_concurrency: 2,
        concurrency_key: 'payload.tenant_id',
        key_limits: 0,
      });
    } finally {
      await sql`delete from cesar.job_types where job_type = ${type}`;
    }
  });

  it('refuses bad input with a 4xx that says what is wrong, and writes nothing', async () => {
    const type = uniqueJobType('refuse');
    await defineType(type, { rate_limit: 3, rate_period_seconds: 1 });
    try {
      const before = await stored(type);
      const refusals: Array<[string, string, unknown, number, RegExp]> = [
        ['PATCH', type, {}, 400, /give at least one field/],
        ['PATCH', type, { rate_limit: 0 }, 400, /rate_limit/],
        ['PATCH', type, { rate_limit: 2.5 }, 400, /rate_limit/],
        ['PATCH', type, { rate_limit: '10' }, 400, /rate_limit/],
        ['PATCH', type, { rate_period_seconds: 86_401 }, 400, /rate_period_seconds/],
        ['PATCH', type, { rate_period_seconds: null }, 400, /rate_limit needs rate_period_seconds/],
        ['PATCH', type, { rate_key: 'agent_id' }, 400, /payload field like payload\.agent_id/],
        ['PATCH', type, { key_concurrency: 2 }, 400, /key_concurrency needs a concurrency_key/],
        ['PATCH', type, { concurrency: -1 }, 400, /concurrency/],
        ['PATCH', type, { max_attempts: 3 }, 400, /max_attempts/],
        ['PATCH', type, '{"rate_limit":', 400, /not valid JSON/],
        ['PATCH', 'no.such_type', { concurrency: 1 }, 404, /no job type no\.such_type/],
        ['PATCH', 'Not%20A%20Type', { concurrency: 1 }, 404, /no job type/],
        // A key needs a type with a rate_key (this one's limit is one for the whole type).
        [
          'PUT',
          `${type}/rate-limits/k`,
          { rate_limit: 1, rate_period_seconds: 1 },
          409,
          /no rate_key/,
        ],
        [
          'PUT',
          `no.such_type/rate-limits/k`,
          { rate_limit: 1, rate_period_seconds: 1 },
          404,
          /no job type/,
        ],
        ['PUT', `${type}/rate-limits/k`, { rate_limit: 1 }, 400, /rate_period_seconds/],
        [
          'PUT',
          `${type}/rate-limits/k`,
          { rate_limit: 1, rate_period_seconds: 0 },
          400,
          /rate_period_seconds/,
        ],
        [
          'PUT',
          `${type}/rate-limits/k%01`,
          { rate_limit: 1, rate_period_seconds: 1 },
          400,
          /control character/,
        ],
        ['PUT', `${type}/rate-limits/k%00`, { rate_limit: 1, rate_period_seconds: 1 }, 400, /NUL/],
        [
          'PUT',
          `${type}/rate-limits/${'k'.repeat(201)}`,
          { rate_limit: 1, rate_period_seconds: 1 },
          400,
          /1 to 200/,
        ],
        ['DELETE', `${type}/rate-limits/k`, undefined, 404, /no rate limit for the key k/],
      ];
      for (const [method, path, body, status, message] of refusals) {
        const answer = await call(method, `/api/job-types/${path}`, body);
        const label = `${method} ${path} ${JSON.stringify(body)}: ${JSON.stringify(answer.body)}`;
        expect(answer.status, label).toBe(status);
        expect(JSON.stringify(answer.body.error), label).toMatch(message);
      }
      expect(await stored(type)).toEqual(before);
      expect(await sql`select 1 from cesar.job_types where job_type = 'no.such_type'`)
        .toHaveLength(0);
    } finally {
      await sql`delete from cesar.job_types where job_type = ${type}`;
    }
  });

  it('gives a type the handlers know its row on the first PATCH', async () => {
    // A type with a handler and no row yet (a deployment's own): the api knows it by name.
    const type = uniqueJobType('unseeded');
    const app = createApiApp({
      sql: fnSql,
      mirror: null,
      config: { functionSecret: SECRET, serviceRoleKey: null, dbPoolMax: 4 },
      clock: fixedClock(new Date()),
      applicationName: 'cesar-edge/api/test',
      jobTypes: [type],
    });
    try {
      const res = await app.request(`/api/job-types/${type}`, {
        method: 'PATCH',
        headers: { authorization: `Bearer ${SECRET}`, 'content-type': 'application/json' },
        body: JSON.stringify({ rate_key: 'payload.rate_group' }),
      });
      expect(res.status).toBe(200);
      expect(await res.json()).toMatchObject({
        job_type: type,
        max_attempts: 5,
        lease_seconds: 60,
        rate_key: 'payload.rate_group',
        rate_limit: null,
      });
    } finally {
      await sql`delete from cesar.job_types where job_type = ${type}`;
    }
  });

  it('by `cesar jobs types set` and `cesar jobs rate-limit set|delete`, shown by `cesar jobs types`', async () => {
    const type = uniqueJobType('cli');
    await defineType(type, {});
    const client = {
      call: async <T>(fn: string, path: string, body?: unknown, method?: string) => {
        const r = await call(
          method ?? (body === undefined ? 'GET' : 'POST'),
          `/${fn}${path}`,
          body,
        );
        if (r.status >= 400) throw new Error(`${r.status} ${JSON.stringify(r.body)}`);
        return r.body as T;
      },
    };
    const cli = (words: string[], options: Record<string, string> = {}) =>
      jobsCommand(client, {
        positionals: ['jobs', ...words],
        options: new Map(Object.entries(options).map(([k, v]) => [k, [v]])),
        flags: new Set(),
      });
    const row = (human: string) => human.split('\n').find((l) => l.startsWith(type)) ?? '';
    try {
      const set = await cli(['types', 'set', type], {
        'rate-key': 'payload.rate_group',
        'concurrency': '8',
      });
      expect(row(set.human)).toMatch(/^\S+\s+5\s+60s\s+8\s*$/);
      const limited = await cli(['rate-limit', 'set', type, 'partner-x'], {
        limit: '10',
        period: '60',
      });
      expect(limited.human).toBe(
        `${type}: at most 10 jobs of the key partner-x start in any 60s`,
      );
      const types = await cli(['types']);
      expect(row(types.human)).toMatch(/8\s+payload\.rate_group=partner-x: 10\/60s\s*$/);
      await cli(['types', 'set', type], { 'rate-limit': '100', 'rate-period': '1' });
      expect(row((await cli(['types'])).human)).toMatch(
        /100\/1s per payload\.rate_group; payload\.rate_group=partner-x: 10\/60s/,
      );
      await cli(['rate-limit', 'delete', type, 'partner-x']);
      const cleared = await cli(['types', 'set', type], {
        'rate-limit': 'none',
        'rate-period': 'none',
        'rate-key': 'none',
        concurrency: 'none',
      });
      expect(cleared.json).toMatchObject({ rate_key: null, rate_limit: null, concurrency: null });
      // Usage errors before any call, and the api's refusal passed on.
      await expect(cli(['types', 'set', type])).rejects.toThrow(/give a setting/);
      await expect(cli(['types', 'set', type], { 'rate-limit': 'ten' })).rejects.toThrow(
        /--rate-limit must be a number or none/,
      );
      await expect(cli(['rate-limit', 'set', type, 'k'], { limit: '1' })).rejects.toThrow(
        /needs --limit N and --period/,
      );
      await expect(cli(['types', 'set', type], { 'key-concurrency': '2' })).rejects.toThrow(
        /400.*key_concurrency needs a concurrency_key/,
      );
    } finally {
      await sql`delete from cesar.job_types where job_type = ${type}`;
    }
  });
});
