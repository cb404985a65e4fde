import { describe, expect, it } from 'vitest';
import { functionSql, testSql } from './helpers/db.ts';
import { apiApp, auth } from './helpers/workflows.ts';

// The operator's routes on the api function: jobs, sync now, /status.

const sql = testSql();
// The functions' own pool: through the transaction pooler, as CESAR_DB_URL gives it.
const fnSql = functionSql(4, 'api');
const app = apiApp(fnSql, ['ops.test']);
const tag = `ops${Date.now().toString(36)}`;
const get = (path: string, headers: Record<string, string> = auth) =>
  app.request(path, { headers });
const post = (path: string, body: unknown, headers: Record<string, string> = auth) =>
  app.request(path, { method: 'POST', headers, body: JSON.stringify(body) });

async function enqueueFailed(count: number): Promise<string[]> {
  const rows = await sql`
    insert into cesar.job_queue (job_type, payload, status, attempts, last_error, finished_at)
    select 'ops.test', jsonb_build_object('tag', ${tag}::text, 'i', i), 'failed', 5, 'boom', now()
    from generate_series(1, ${count}) i
    returning id::text
  `;
  return rows.map((r) => r.id as string);
}

describe('jobs', () => {
  it('lists jobs by status and type, newest first', async () => {
    const ids = await enqueueFailed(3);
    const res = await get('/api/jobs?status=failed&job_type=ops.test&limit=2');
    expect(res.status).toBe(200);
    const { jobs } = await res.json();
    expect(jobs.map((j: { id: string }) => j.id)).toEqual([ids[2], ids[1]]);
    expect(jobs[0]).toMatchObject({ job_type: 'ops.test', status: 'failed', last_error: 'boom' });
  });

  it('retries failed jobs by id and redrives a type, and cancels pending ones', async () => {
    const [a, b] = await enqueueFailed(2);
    const retried = await (await post('/api/jobs/retry', { ids: [a] })).json();
    expect(retried).toEqual({ retried: [a] });
    const redriven = await (await post('/api/jobs/retry', { job_type: 'ops.test' })).json();
    expect(redriven.retried).toContain(b);
    const cancelled = await (await post('/api/jobs/cancel', { ids: [a, b] })).json();
    expect(cancelled.cancelled.sort()).toEqual([a, b].sort());
    expect(
      await sql`select distinct status from cesar.job_queue where id = any(${[a!, b!]}::bigint[])`,
    )
      .toEqual([{ status: 'cancelled' }]);
  });

  it('refuses bad input with 4xx and changes nothing', async () => {
    const [a] = await enqueueFailed(1);
    const cases: Array<[Response, number, RegExp]> = [
      [await get('/api/jobs?status=lost'), 400, /status/],
      [await get('/api/jobs?limit=100000'), 400, /limit/],
      [await post('/api/jobs/retry', { ids: ['x'] }), 400, /ids/],
      [await post('/api/jobs/cancel', { ids: [] }), 400, /ids/],
      [
        await post('/api/jobs/retry', { job_type: 'ops.test', since: '0000-01-01T00:00:00Z' }),
        400,
        /between 1970 and 2999/,
      ],
      [await post('/api/jobs/cancel', { ids: [a] }, {}), 401, /bearer/],
    ];
    for (const [res, status, message] of cases) {
      expect(res.status).toBe(status);
      expect(JSON.stringify(await res.json())).toMatch(message);
    }
    expect(await sql`select status from cesar.job_queue where id = ${a!}`).toEqual([{
      status: 'failed',
    }]);
  });
});

describe('sync now', () => {
  it('enqueues one sync.table job per table, once however often it is asked', async () => {
    const first = await post('/api/sync', { tables: ['public.agents'], direction: 'up' });
    expect(first.status).toBe(202);
    const body = await first.json();
    expect(body).toMatchObject({
      direction: 'up',
      jobs: [{ table: 'public.agents', job_id: expect.any(String) }],
    });
    const again = await (await post('/api/sync', { tables: ['public.agents'], direction: 'up' }))
      .json();
    const [job] = await sql`select job_type, payload, status from cesar.job_queue where id = ${
      body.jobs[0].job_id
    }`;
    expect(job).toMatchObject({
      job_type: 'sync.table',
      payload: { table: 'public.agents', direction: 'up' },
    });
    if (job!.status === 'pending' || job!.status === 'running') {
      expect(again.jobs[0].job_id).toBe(body.jobs[0].job_id);
    }
    await sql`select cesar.cancel_jobs(${[body.jobs[0].job_id]}::bigint[])`;
  });

  it('refuses more than 100 table names, and makes one job for a name given twice', async () => {
    const many = await post('/api/sync', {
      tables: Array.from({ length: 20_000 }, () => 'public.agents'),
    });
    expect(many.status).toBe(400);
    const twice = await post('/api/sync', {
      tables: ['public.sessions', 'public.sessions'],
      direction: 'up',
    });
    expect(twice.status).toBe(202);
    const body = await twice.json();
    expect(body.jobs).toHaveLength(1);
    await sql`select cesar.cancel_jobs(${[body.jobs[0].job_id]}::bigint[])`;
  });

  it('refuses a table that is not mirrored', async () => {
    const res = await post('/api/sync', { tables: ['public.nope'] });
    expect(res.status).toBe(422);
    expect((await res.json()).error.message).toMatch(/not mirrored: public.nope/);
  });
});

describe('GET /api/status', () => {
  it('answers everything the dashboard shows in one JSON', async () => {
    await enqueueFailed(1);
    const res = await get('/api/status');
    expect(res.status).toBe(200);
    const status = await res.json();
    expect(status).toMatchObject({
      timestamp: expect.any(String),
      business: expect.any(Object),
      events: { pending: expect.any(Number) },
      sync: {
        tables: expect.arrayContaining([expect.objectContaining({ table_name: 'public.agents' })]),
      },
      workflows: { total: expect.any(Number), enabled: expect.any(Number) },
    });
    expect(status.queue).toEqual(
      expect.arrayContaining([expect.objectContaining({ job_type: 'ops.test', status: 'failed' })]),
    );
    expect((await get('/api/status', {})).status).toBe(401);
  });
});

describe('GET /api/financial', () => {
  it("shows each symbol's latest price and daily summary", async () => {
    const symbol = `T${Date.now().toString(36).toUpperCase()}`;
    await sql`insert into financial_data (symbol, source, price, volume, observed_at) values
                (${symbol}, 'test', 10, 100, now() - interval '1 hour'), (${symbol}, 'test', 12, 50, now())`;
    await sql`insert into financial_daily_summaries (symbol, day, observations, open, high, low, close, vwap, change_pct)
              values (${symbol}, current_date - 1, 2, 9, 11, 8, 10, 9.5, 5)`;
    const res = await get('/api/financial');
    expect(res.status).toBe(200);
    const { symbols } = await res.json();
    expect(symbols.find((s: { symbol: string }) => s.symbol === symbol)).toMatchObject({
      last_price: 12,
      close: 10,
      change_pct: 5,
      observations: 2,
    });
  });
});
