import parsePrometheusTextFormat, { type ParsedFamily } from 'parse-prometheus-text-format';
import { describe, expect, it } from 'vitest';
import { renderFamilies } from '../packages/shared/src/api/metrics.ts';
import { decideOutcome } from '../packages/shared/src/queue/outcome.ts';
import { claimJobs, completeJobs, failJobs } from '../packages/shared/src/queue/queries.ts';
import { functionSql, testSql } from './helpers/db.ts';
import { Hono } from 'hono';
import { functionApp } from '../packages/shared/src/http/function-app.ts';
import { requireSecret } from '../packages/shared/src/http/auth.ts';
import { countRequests, flushRequestCounts } from '../packages/shared/src/http/metrics.ts';
import { apiApp, auth, SECRET } from './helpers/workflows.ts';

// GET /api/metrics, read back with a Prometheus text-format parser from npm.

const sql = testSql();
// The functions' own pool: through the transaction pooler, as CESAR_DB_URL gives it.
const fnSql = functionSql(4, 'api');
const app = apiApp(fnSql);
const jobType = `metrics.t${Date.now().toString(36)}`;
// Four pools of one connection: four backends.
const oneBackendEach = Array.from({ length: 4 }, () => testSql(undefined, 1));

async function scrape(): Promise<Map<string, ParsedFamily>> {
  const res = await app.request('/api/metrics', { headers: auth });
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8');
  return new Map(parsePrometheusTextFormat(await res.text()).map((f) => [f.name, f]));
}

const valueOf = (family: ParsedFamily | undefined, labels: Record<string, string>) =>
  Number(
    family?.metrics.find((m) => Object.entries(labels).every(([k, v]) => m.labels?.[k] === v))
      ?.value ?? NaN,
  );

describe('GET /api/metrics', () => {
  it('is Prometheus text a parser reads, with the queue, events, sync and requests', async () => {
    // Three jobs of a type of our own: one completed, one failed for good, one left pending.
    await sql`insert into cesar.job_queue (job_type, max_attempts) select ${jobType}, 1 from generate_series(1, 3)`;
    const worker = 'metrics-test';
    const claimed = await claimJobs(sql, { worker, batchSize: 2, jobTypes: [jobType] });
    expect(claimed).toHaveLength(2);
    await completeJobs(sql, worker, [{
      id: claimed[0]!.id,
      attempt: claimed[0]!.attempts,
      result: null,
    }]);
    await failJobs(sql, worker, [{
      id: claimed[1]!.id,
      attempt: claimed[1]!.attempts,
      kind: 'retry',
      error: 'no',
      // Its last attempt (max_attempts 1): failed for good.
      ...decideOutcome(claimed[1]!, { kind: 'retry' }, new Date(), () => 0.5),
    }]);
    await app.request('/api/health/business', {}); // a 401, counted with the next write
    await app.request('/api/health/business', { headers: auth });
    await new Promise((r) => setTimeout(r, 200)); // requests are counted after the answer

    const metrics = await scrape();
    expect(metrics.get('cesar_job_queue_jobs')?.type).toBe('GAUGE');
    expect(valueOf(metrics.get('cesar_job_queue_jobs'), { job_type: jobType, status: 'pending' }))
      .toBe(1);
    expect(valueOf(metrics.get('cesar_job_queue_oldest_pending_seconds'), { job_type: jobType }))
      .toBeGreaterThanOrEqual(0);
    expect(metrics.get('cesar_jobs_completed_total')?.type).toBe('COUNTER');
    expect(valueOf(metrics.get('cesar_jobs_completed_total'), { job_type: jobType })).toBe(1);
    expect(valueOf(metrics.get('cesar_jobs_failed_total'), { job_type: jobType })).toBe(1);
    expect(valueOf(metrics.get('cesar_events_pending'), {})).toBeGreaterThanOrEqual(0);
    expect(valueOf(metrics.get('cesar_sync_dirty_rows'), { table: 'public.agents' }))
      .toBeGreaterThanOrEqual(0);
    expect(valueOf(metrics.get('cesar_sync_conflicts_total'), { table: 'public.agents' }))
      .toBeGreaterThanOrEqual(0);
    expect(
      valueOf(metrics.get('cesar_http_requests_total'), { function: 'api', status_class: '2xx' }),
    )
      .toBeGreaterThanOrEqual(1);
    expect(
      valueOf(metrics.get('cesar_http_requests_total'), { function: 'api', status_class: '4xx' }),
    )
      .toBeGreaterThanOrEqual(1);
    // The histogram: the parser reads it (and its type), but folds labelled histograms into
    // one, so its samples are checked from the text itself.
    expect(metrics.get('cesar_http_request_duration_seconds')?.type).toBe('HISTOGRAM');
    const text = await (await app.request('/api/metrics', { headers: auth })).text();
    const sample = (suffix: string, le?: string) =>
      Number(
        new RegExp(
          `^cesar_http_request_duration_seconds_${suffix}\\{function="api"${
            le ? `,le="${le.replace('+', '\\+')}"` : ''
          }\\} (\\S+)$`,
          'm',
        ).exec(text)?.[1],
      );
    expect(sample('count')).toBeGreaterThanOrEqual(2);
    expect(sample('bucket', '+Inf')).toBe(sample('count'));
    expect(sample('sum')).toBeGreaterThan(0);
    const buckets = [...text.matchAll(
      /^cesar_http_request_duration_seconds_bucket\{function="api",le="([^"]+)"\} (\d+)$/gm,
    )].map((m) => Number(m[2]));
    expect(buckets.length).toBe(13);
    expect(buckets).toEqual([...buckets].sort((a, b) => a - b)); // cumulative
  });

  it('counters only grow: a later scrape counts the completed job again, plus new ones', async () => {
    const before = valueOf((await scrape()).get('cesar_jobs_completed_total'), {
      job_type: jobType,
    });
    const [claimed] = await claimJobs(sql, {
      worker: 'metrics-test',
      batchSize: 1,
      jobTypes: [jobType],
    });
    await completeJobs(sql, 'metrics-test', [{
      id: claimed!.id,
      attempt: claimed!.attempts,
      result: null,
    }]);
    await sql`delete from cesar.job_queue where job_type = ${jobType}`; // retention
    expect(valueOf((await scrape()).get('cesar_jobs_completed_total'), { job_type: jobType })).toBe(
      before + 1,
    );
  });

  it("adds up a type's totals counted by several backends (a slot each)", async () => {
    const type = `${jobType}.slots`;
    const before = valueOf((await scrape()).get('cesar_jobs_completed_total'), { job_type: type });
    expect(before).toBeNaN();
    // Backends whose slots (pid % 64) differ, each completing one job.
    const pids = await Promise.all(
      oneBackendEach.map(async (s) =>
        (await s<[{ pid: number }]>`select pg_backend_pid() as pid`)[0].pid
      ),
    );
    const slots = new Set(pids.map((pid) => pid % 64));
    await sql`insert into cesar.job_queue (job_type) select ${type} from generate_series(1, 4)`;
    for (const [i, other] of oneBackendEach.entries()) {
      const [claimed] = await claimJobs(other, {
        worker: `slots-${i}`,
        batchSize: 1,
        jobTypes: [type],
      });
      await completeJobs(other, `slots-${i}`, [{
        id: claimed!.id,
        attempt: claimed!.attempts,
        result: null,
      }]);
    }
    const [rows] = await sql<[{ n: number }]>`
      select count(*)::int as n from cesar.job_totals where job_type = ${type}`;
    expect(rows.n).toBe(slots.size);
    expect(valueOf((await scrape()).get('cesar_jobs_completed_total'), { job_type: type })).toBe(4);
    await sql`delete from cesar.job_queue where job_type = ${type}`;
    await sql`delete from cesar.job_totals where job_type = ${type}`;
  });

  it('escapes label values', () => {
    const text = renderFamilies([{
      name: 'x',
      help: 'h',
      type: 'gauge',
      samples: [{ labels: { table: 'a"b\\c\nd' }, value: 1 }],
    }]);
    expect(parsePrometheusTextFormat(text)[0]!.metrics[0]!.labels).toEqual({ table: 'a"b\\c\nd' });
  });

  it('needs the secret', async () => {
    expect((await app.request('/api/metrics')).status).toBe(401);
  });
});

describe('request counts', () => {
  const name = `counted-${Date.now().toString(36)}`;
  const counted = functionApp(name, {
    sql,
    config: { functionSecret: SECRET, serviceRoleKey: null },
  });
  counted.get('/hello', (c) => c.json({ hello: 'world' }));
  const totals = async () =>
    Object.fromEntries(
      (await sql<Array<{ status_class: string; requests: string; buckets: string[] }>>`
        select status_class, requests, buckets from cesar.http_request_totals
        where function_name = ${name}`).map((r) => [r.status_class, r]),
    );
  const settle = () => new Promise((r) => setTimeout(r, 200));

  it('costs the database no write for refused requests; the next answer brings them along', async () => {
    const refused = await Promise.all(
      Array.from({ length: 50 }, () => counted.request(`/${name}/hello`)),
    );
    expect(refused.every((res) => res.status === 401)).toBe(true);
    await settle();
    expect(await totals()).toEqual({});

    const ok = await Promise.all(
      Array.from({ length: 20 }, () => counted.request(`/${name}/hello`, { headers: auth })),
    );
    expect(ok.every((res) => res.status === 200)).toBe(true);
    await settle();
    const after = await totals();
    expect(Number(after['4xx']!.requests)).toBe(50);
    expect(Number(after['2xx']!.requests)).toBe(20);
    // Cumulative buckets: the last (30 s) holds every answer.
    expect(Number(after['2xx']!.buckets.at(-1))).toBe(20);
    expect(after['2xx']!.buckets.map(Number)).toEqual(
      [...after['2xx']!.buckets.map(Number)].sort((a, b) => a - b),
    );
  });

  it('refuses a NUL character in the path or query with 400', async () => {
    for (const path of [`/${name}/hello%00`, `/${name}/hello?x=a%00b`, `/${name}/hello?a%00=1`]) {
      const res = await counted.request(path, { headers: auth });
      expect(res.status, path).toBe(400);
      expect((await res.json()).error.message).toMatch(/NUL/);
    }
  });
});

describe('browsers from other origins (CESAR_ALLOWED_ORIGINS)', () => {
  const name = `cors-${Date.now().toString(36)}`;
  const allowed = 'https://ops.example.com';
  const app = functionApp(name, {
    sql,
    config: { functionSecret: SECRET, serviceRoleKey: null, allowedOrigins: [allowed] },
  });
  app.get('/hello', (c) => c.json({ hello: 'world' }));
  const preflight = (origin: string) =>
    app.request(`/${name}/hello`, {
      method: 'OPTIONS',
      headers: {
        origin,
        'access-control-request-method': 'GET',
        'access-control-request-headers': 'authorization, content-type',
      },
    });

  it("answers an allowed origin's preflight before authentication, and costs no write", async () => {
    const res = await preflight(allowed);
    expect(res.status).toBe(204);
    expect(res.headers.get('access-control-allow-origin')).toBe(allowed);
    expect(res.headers.get('access-control-allow-headers')).toMatch(/authorization/);
    expect(res.headers.get('access-control-allow-methods')).toMatch(/PATCH/);
    await new Promise((r) => setTimeout(r, 200));
    expect(
      await sql`select 1 from cesar.http_request_totals where function_name = ${name}`,
    ).toHaveLength(0);
  });

  it('gives another origin no CORS headers, and answers with them only to an allowed one', async () => {
    expect((await preflight('https://evil.example')).headers.get('access-control-allow-origin'))
      .toBeNull();
    const ok = await app.request(`/${name}/hello`, { headers: { ...auth, origin: allowed } });
    expect(ok.status).toBe(200);
    expect(ok.headers.get('access-control-allow-origin')).toBe(allowed);
    const refused = await app.request(`/${name}/hello`, { headers: { origin: allowed } });
    expect(refused.status).toBe(401);
    expect(refused.headers.get('access-control-allow-origin')).toBe(allowed);
  });

  it('is off unless configured: a preflight then needs the secret like any request', async () => {
    const closed = functionApp(`${name}-closed`, {
      sql,
      config: { functionSecret: SECRET, serviceRoleKey: null },
    });
    closed.get('/hello', (c) => c.json({}));
    const res = await closed.request(`/${name}-closed/hello`, {
      method: 'OPTIONS',
      headers: { origin: allowed, 'access-control-request-method': 'GET' },
    });
    expect(res.status).toBe(401);
    expect(res.headers.get('access-control-allow-origin')).toBeNull();
  });
});

describe("Supabase's new API keys", () => {
  const name = `keys-${Date.now().toString(36)}`;
  const secretKey = `sb_secret_${'s'.repeat(32)}`;
  const publishableKey = `sb_publishable_${'p'.repeat(32)}`;
  const app = functionApp(name, {
    sql,
    config: {
      functionSecret: SECRET,
      serviceRoleKey: null,
      secretKeys: [secretKey],
      publishableKeys: [publishableKey],
    },
  });
  app.get('/hello', (c) => c.json({ hello: 'world' }));
  const hello = (headers: Record<string, string>) => app.request(`/${name}/hello`, { headers });

  it('accepts a secret key as a bearer token or an apikey header', async () => {
    expect((await hello({ authorization: `Bearer ${secretKey}` })).status).toBe(200);
    expect((await hello({ apikey: secretKey })).status).toBe(200);
    expect((await hello({ apikey: SECRET })).status).toBe(200);
  });

  it('refuses a publishable key with 403 and anything else with 401', async () => {
    for (
      const headers of [
        { apikey: publishableKey },
        { authorization: `Bearer ${publishableKey}` },
      ] as Array<Record<string, string>>
    ) {
      const res = await hello(headers);
      expect(res.status).toBe(403);
      expect((await res.json()).error.message).toMatch(/publishable key cannot run operations/);
    }
    expect((await hello({ apikey: `sb_secret_${'x'.repeat(32)}` })).status).toBe(401);
    expect((await hello({})).status).toBe(401);
  });

  it('writes at most once per interval; a flush (the instance going away) writes the rest', async () => {
    const settle = () => new Promise((r) => setTimeout(r, 200));
    const throttled = `throttled-${Date.now().toString(36)}`;
    const app = new Hono();
    app.use('*', countRequests(sql, throttled, { intervalMs: 60_000 }));
    app.use('*', requireSecret({ secrets: [SECRET] }));
    app.get('/hello', (c) => c.json({ hello: 'world' }));
    const count = async () => {
      const [row] = await sql<[{ n: number }?]>`
        select requests::int as n from cesar.http_request_totals
        where function_name = ${throttled} and status_class = '2xx'`;
      return row?.n ?? 0;
    };
    const first = await app.request('/hello', { headers: auth });
    expect(first.status).toBe(200);
    // An idle instance's first answer: written at once (within moments on a busy machine).
    for (let tries = 0; (await count()) === 0 && tries < 50; tries++) await settle();
    expect(await count()).toBe(1);
    await Promise.all(Array.from({ length: 20 }, () => app.request('/hello', { headers: auth })));
    await settle();
    expect(await count()).toBe(1); // the rest wait for the interval
    await flushRequestCounts();
    expect(await count()).toBe(21);
  });
});
