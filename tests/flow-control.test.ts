import { describe, expect, it } from 'vitest';
import { createApiApp } from '../packages/shared/src/api/app.ts';
import { fixedClock } from '../packages/shared/src/clock.ts';
import { builtInHandlers } from '../packages/shared/src/queue/handlers/index.ts';
import {
  claimJobs,
  completeJobs,
  enqueueJobs,
  type JobTypeRow,
} from '../packages/shared/src/queue/queries.ts';
import { jobsCommand } from '../scripts/cli/jobs.ts';
import { functionSql, testSql } from './helpers/db.ts';
import { drain, uniqueJobType } from './helpers/queue.ts';

// Flow control (supabase/migrations/20261203001600_flow_control.sql): rate limits per job type
// and key, and a cap per key within a type, both held by the claim across concurrent drains.
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
