import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type OutboundPolicy, strictPolicy } from '../packages/shared/src/http/outbound.ts';
import { parseAllowList } from '../packages/shared/src/allow-list.ts';
import { cancelOnAbort } from '../packages/shared/src/db.ts';
import { builtInHandlers } from '../packages/shared/src/queue/handlers/index.ts';
import { enqueueJob } from '../packages/shared/src/queue/queries.ts';
import { freePort } from '../scripts/local/functions.ts';
import { functionSql, testSql } from './helpers/db.ts';
import { drain, jobById, uniqueJobType } from './helpers/queue.ts';

// Every built-in handler through the real drain path, its effect checked in the database.
const sql = testSql(undefined, 6);
// The functions' own pool: through the transaction pooler, as CESAR_DB_URL gives it.
const fnSql = functionSql(4, 'job-drain');
const tag = `h${Date.now().toString(36)}`;

async function run(
  jobType: string,
  payload: Record<string, unknown> = {},
  outbound: OutboundPolicy = strictPolicy,
) {
  const id = await enqueueJob(sql, jobType, payload);
  // Drain until the job has an outcome. One drain may not reach it: a job of the same type
  // enqueued by pg_cron (monitoring.refresh every 5 minutes) can take the type's only slot
  // first; and another file's drain may have taken ours: then wait for its outcome.
  for (let i = 0; i < 600; i++) {
    const job = await jobById(sql, id);
    if (job.status !== 'running' && job.attempts > 0) return job;
    if (job.status === 'pending') {
      await drain(fnSql, builtInHandlers, { jobTypes: [jobType] }, { outbound });
    } else await new Promise((r) => setTimeout(r, 25));
  }
  return await jobById(sql, id);
}

describe('agent.task', () => {
  const capability = `cap_${tag}`;
  let busy: string;
  let idle: string;

  beforeAll(async () => {
    const created = await sql<Array<{ id: string }>>`
      insert into agents (name, type, capabilities) values
        (${`${tag} busy`}, 'analyst', ${[capability]}), (${`${tag} idle`}, 'analyst', ${[
      capability,
    ]})
      returning id`;
    [busy, idle] = created.map((r) => r.id) as [string, string];
    await sql`insert into agents (name, type, status, capabilities) values (${`${tag} off`}, 'analyst', 'offline', ${[
      capability,
    ]})`;
    await sql`insert into tasks (agent_id, title, status) values (${busy}, 'open 1', 'pending'), (${busy}, 'open 2', 'in_progress')`;
  });

  it('creates a task for the least-loaded active agent with the capability and logs it', async () => {
    const job = await run('agent.task', {
      title: 'Analyse Q3',
      capability,
      priority: 3,
      payload: { quarter: 3 },
    });
    expect(job).toMatchObject({ status: 'completed', result: { agent_id: idle, created: true } });
    const [task] = await sql`select * from tasks where source_job_id = ${job.id}`;
    expect(task).toMatchObject({
      agent_id: idle,
      title: 'Analyse Q3',
      status: 'pending',
      priority: 3,
      required_capability: capability,
      payload: { quarter: 3 },
    });
    const events =
      await sql`select event_type, payload from agent_events where agent_id = ${idle} and payload ->> 'job_id' = ${job.id}`;
    expect(events).toEqual([{
      event_type: 'task.assigned',
      payload: { task_id: task!.id, job_id: Number(job.id), title: 'Analyse Q3' },
    }]);
  });

  it('creates one task however often the job runs', async () => {
    const id = await enqueueJob(sql, 'agent.task', { title: 'Once', capability });
    // This job itself (a claim could take another file's agent.task job first).
    const [job] = await sql`select * from cesar.job_queue where id = ${id}`;
    const ctx = {
      mirror: null,
      job: job as never,
      sql,
      clock: { now: () => new Date() },
      outbound: strictPolicy,
      signal: new AbortController().signal,
    };
    const first = await builtInHandlers['agent.task']!(ctx);
    const second = await builtInHandlers['agent.task']!(ctx);
    expect(second).toEqual({ ...(first as object), created: false });
    expect(await sql`select id from tasks where source_job_id = ${id}`).toHaveLength(1);
    await sql`select cesar.cancel_jobs(array[${id}]::bigint[])`;
  });

  it('fails permanently when no active agent has the capability', async () => {
    const job = await run('agent.task', { title: 'Nobody', capability: `${capability}_missing` });
    expect(job).toMatchObject({
      status: 'failed',
      attempts: 1,
      last_error: expect.stringContaining(
        `no active agent has the capability "${capability}_missing"`,
      ),
    });
  });

  it('fails permanently on a payload that does not fit', async () => {
    const job = await run('agent.task', { capability });
    expect(job).toMatchObject({
      status: 'failed',
      last_error: expect.stringMatching(/agent.task: invalid payload: title/),
    });
  });
});

describe('memory.consolidate', () => {
  it('folds old episodic memories into semantic memory and removes them', async () => {
    const [agent] =
      await sql`select id from agents where metadata ->> 'seeded' = 'true' order by name limit 1`;
    const topic = `topic ${tag}`;
    await sql`
      insert into memory_episodic (agent_id, topic, content, importance, occurred_at) values
        (${agent!.id}, ${topic}, 'met the trading desk', 0.4, now() - interval '10 days'),
        (${agent!.id}, ${topic}, 'learned the risk limits', 0.8, now() - interval '9 days'),
        (${agent!.id}, ${topic}, 'still fresh', 0.5, now() - interval '1 day')`;
    const job = await run('memory.consolidate', { older_than_days: 7, agent_id: agent!.id });
    expect(job).toMatchObject({
      status: 'completed',
      result: { folded: 2, topics: 1, follow_up_job: null },
    });
    const [semantic] = await sql`select * from memory_semantic where agent_id = ${
      agent!.id
    } and topic = ${topic}`;
    expect(semantic!.source_count).toBe(2);
    expect(semantic!.summary).toMatch(/: met the trading desk\n.*: learned the risk limits$/);
    expect(Number(semantic!.metadata.avg_importance)).toBeCloseTo(0.6);
    const left = await sql`select content from memory_episodic where agent_id = ${
      agent!.id
    } and topic = ${topic}`;
    expect(left).toEqual([{ content: 'still fresh' }]);

    await sql`update memory_episodic set occurred_at = now() - interval '8 days' where agent_id = ${
      agent!.id
    } and topic = ${topic}`;
    const again = await run('memory.consolidate', { older_than_days: 7, agent_id: agent!.id });
    expect(again.result).toMatchObject({ folded: 1 });
    const [merged] = await sql`select * from memory_semantic where agent_id = ${
      agent!.id
    } and topic = ${topic}`;
    expect(merged!.source_count).toBe(3);
    expect(merged!.summary).toMatch(/risk limits\n.*: still fresh$/);
  });
  it('reports progress at its start and its end (ctx.progress)', async () => {
    const reports: Array<[number, string | undefined]> = [];
    // An agent with no memories: nothing is folded, nothing else is touched.
    const payload = { agent_id: crypto.randomUUID(), max_rows: 1_000 };
    const result = await builtInHandlers['memory.consolidate']!({
      mirror: null,
      job: { id: '0', payload, lease_seconds: 60 } as never,
      sql,
      clock: { now: () => new Date() },
      outbound: strictPolicy,
      signal: new AbortController().signal,
      progress: (fraction, message) => void reports.push([fraction, message]),
    });
    expect(result).toMatchObject({ folded: 0 });
    expect(reports).toEqual([
      [0, 'folding up to 1,000 episodic memories'],
      [1, 'folded 0 episodic memories into 0 topics'],
    ]);
  });
});

describe('llm_cache.refresh', () => {
  it('recomputes hourly metrics per model from llm_collaborations, idempotently', async () => {
    const model = `model-${tag}`;
    await sql`
      insert into llm_collaborations (prompt, local_model, cloud_model, chosen, local_latency_ms, cloud_latency_ms, cost_usd, cache_hit, created_at) values
        ('a', ${model}, 'gpt', 'local', 100, 900, 0.001, true, date_trunc('hour', now()) + interval '1 minute'),
        ('b', ${model}, 'gpt', 'local', 300, 800, 0.003, false, date_trunc('hour', now()) + interval '2 minutes'),
        ('c', ${model}, 'gpt', 'local', 200, 700, 0.002, true, date_trunc('hour', now()) - interval '30 minutes')`;
    const check = async () => {
      const rows =
        await sql`select requests, cache_hits, hit_rate::float8, avg_latency_ms::float8, total_cost_usd::float8, period_end - period_start as span
                             from llm_cache_metrics where model = ${model} order by period_start`;
      expect(rows.map(({ span: _span, ...r }) => r)).toEqual([
        { requests: 1, cache_hits: 1, hit_rate: 1, avg_latency_ms: 200, total_cost_usd: 0.002 },
        { requests: 2, cache_hits: 1, hit_rate: 0.5, avg_latency_ms: 200, total_cost_usd: 0.004 },
      ]);
    };
    expect((await run('llm_cache.refresh', { hours: 2 })).status).toBe('completed');
    await check();
    await run('llm_cache.refresh', { hours: 2 });
    await check();
  });
});

describe('financial.daily_analysis', () => {
  it('summarises a day per symbol', async () => {
    const symbol = `SYM${tag}`.toUpperCase();
    await sql`
      insert into financial_data (symbol, source, price, volume, observed_at) values
        (${symbol}, 'feed', 100, 10, '2026-11-19T09:00:00Z'),
        (${symbol}, 'feed', 120, 30, '2026-11-19T12:00:00Z'),
        (${symbol}, 'feed', 90, 10, '2026-11-19T15:00:00Z'),
        (${symbol}, 'feed', 110, 50, '2026-11-19T20:00:00Z'),
        (${symbol}, 'feed', 500, 1, '2026-11-20T00:00:00Z')`;
    const job = await run('financial.daily_analysis', { day: '2026-11-19' });
    expect(job.status).toBe('completed');
    expect(job.result).toMatchObject({ day: '2026-11-19' });
    const [row] = await sql`
      select observations, open::float8, high::float8, low::float8, close::float8, volume::float8, change_pct::float8, vwap::float8
      from financial_daily_summaries where symbol = ${symbol} and day = '2026-11-19'`;
    expect(row).toEqual({
      observations: 4,
      open: 100,
      high: 120,
      low: 90,
      close: 110,
      volume: 100,
      change_pct: 10,
      vwap: 110,
    });
  });

  it('rejects a day that is not a date', async () => {
    expect((await run('financial.daily_analysis', { day: 'yesterday' })).status).toBe('failed');
  });
});

describe('monitoring.refresh', () => {
  it('refreshes the job queue backlog view', async () => {
    const type = `test_${tag}.backlog`;
    await enqueueJob(sql, type, {}, { runAt: new Date(Date.now() - 60_000) });
    await enqueueJob(sql, type);
    const job = await run('monitoring.refresh');
    expect(job).toMatchObject({
      status: 'completed',
      result: {
        refreshed: ['cesar.mv_job_queue_backlog', 'cesar.mv_sync_lag', 'cesar.mv_ingestion_errors'],
      },
    });
    const [row] =
      await sql`select jobs::int, oldest_age_seconds::int from cesar.mv_job_queue_backlog where job_type = ${type} and status = 'pending'`;
    expect(row!.jobs).toBe(2);
    expect(row!.oldest_age_seconds).toBeGreaterThanOrEqual(59);
  });
});

describe('maintenance.prune', () => {
  it('deletes what is past retention, in batches, and keeps the rest', async () => {
    const type = `test_${tag}.prune`;
    const ids = await sql<Array<{ id: string; label: string }>>`
      insert into cesar.job_queue (job_type, status, finished_at, payload)
      select ${type}, s, now() - (d || ' days')::interval, jsonb_build_object('label', s || '-' || d)
      from (values ('completed', 10), ('completed', 10), ('completed', 10), ('completed', 1), ('failed', 10), ('failed', 40), ('cancelled', 9))
        as v (s, d)
      returning id, payload ->> 'label' as label`;
    const [agent] =
      await sql`select id from agents where metadata ->> 'seeded' = 'true' order by name limit 1`;
    await sql`insert into agent_events (agent_id, event_type, created_at) values
                (${agent!.id}, ${`${tag}.old`}, now() - interval '40 days'), (${
      agent!.id
    }, ${`${tag}.new`}, now())`;
    await sql`insert into public.ingestion_log (source, status, created_at) values
                (${`${tag}.old`}, 'ok', now() - interval '40 days'), (${`${tag}.new`}, 'ok', now())`;
    await sql`insert into cron.job_run_details (jobid, runid, job_pid, database, username, command, status, return_message, start_time, end_time)
              values (0, nextval('cron.runid_seq'), 0, 'postgres', 'postgres', ${`select '${tag}'`}, 'succeeded', '', now() - interval '30 days', now() - interval '30 days')`;

    const job = await run('maintenance.prune', { batch_size: 2 });
    expect(job.status).toBe('completed');
    expect(job.result).toMatchObject({
      complete: true,
      deleted: { completed_jobs: expect.any(Number), cron_history: expect.any(Number) },
    });
    const left =
      await sql`select payload ->> 'label' as label from cesar.job_queue where job_type = ${type} order by 1`;
    expect(left.map((r) => r.label)).toEqual(['completed-1', 'failed-10']);
    expect(ids).toHaveLength(7);
    const events =
      await sql`select event_type from agent_events where event_type like ${`${tag}.%`} order by 1`;
    expect(events.map((e) => e.event_type)).toEqual([`${tag}.new`]);
    const logged =
      await sql`select source from public.ingestion_log where source like ${`${tag}.%`} order by 1`;
    expect(logged.map((l) => l.source)).toEqual([`${tag}.new`]);
    expect(await sql`select 1 from cron.job_run_details where command = ${`select '${tag}'`}`)
      .toHaveLength(0);
  });

  it('deletes the rate-limit windows no start counts in any more, and keeps the rest', async () => {
    const type = `test_${tag}.prune_rate`;
    await sql`insert into cesar.job_types (job_type, rate_limit, rate_period_seconds, rate_key)
              values (${type}, 2, 60, 'payload.agent_id')`;
    // Limits of single keys only (as http.request's rate groups): 'partner' 3 per 10 minutes.
    await sql`insert into cesar.job_types (job_type, rate_key)
              values (${`${type}_keyed`}, 'payload.rate_group')`;
    await sql`insert into cesar.job_rate_limits (job_type, key_value, rate_limit, rate_period_seconds)
              values (${`${type}_keyed`}, 'partner', 3, 600)`;
    try {
      await sql`insert into cesar.job_rate_windows (job_type, rate_key, starts) values
        (${type}, 'stale', array[now() - interval '3 minutes', now() - interval '2 minutes']),
        (${type}, 'recent', array[now() - interval '3 minutes', now() - interval '10 seconds']),
        (${`${type}_gone`}, 'no type', array[now()]),
        (${`${type}_keyed`}, 'partner', array[now() - interval '5 minutes']),
        (${`${type}_keyed`}, 'unlimited', array[now()])`;
      const job = await run('maintenance.prune', {});
      expect(job.status).toBe('completed');
      const left = await sql`select job_type, rate_key from cesar.job_rate_windows
                             where job_type like ${`${type}%`} order by 1, 2`;
      // The key's own period (10 minutes) counts, not the type's (none).
      expect(left.map((r) => r.rate_key)).toEqual(['recent', 'partner']);
    } finally {
      await sql`delete from cesar.job_types where job_type = ${`${type}_keyed`}`;
      await sql`delete from cesar.job_rate_windows where job_type like ${`${type}%`}`;
      await sql`delete from cesar.job_types where job_type = ${type}`;
    }
  });
});

describe('http.request', () => {
  // The listener is on the loopback: the outbound guard refuses it unless it is allowed
  // (tests/outbound.test.ts checks the refusals).
  const local = { allow: parseAllowList('127.0.0.1') };
  const send = (payload: Record<string, unknown>) => run('http.request', payload, local);
  const seen: Array<{ path: string; headers: http.IncomingHttpHeaders; body: string }> = [];
  let server: http.Server;
  let base: string;
  let heldClosedAt = 0;

  beforeAll(async () => {
    server = http.createServer((req, res) => {
      let body = '';
      req.on('data', (d) => (body += d));
      req.on('end', () => {
        seen.push({ path: req.url!, headers: req.headers, body });
        if (req.url === '/hold') {
          // Never answered: held open until the client goes away.
          res.on('close', () => (heldClosedAt = Date.now()));
          return;
        }
        const status = Number(/\/status\/(\d+)/.exec(req.url!)?.[1] ?? 200);
        const headers: Record<string, string> = { 'content-type': 'text/plain' };
        if (req.url!.includes('retry-after')) headers['retry-after'] = '120';
        res.writeHead(status, headers);
        res.end(`answer ${status}`);
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    await sql`insert into cesar.local_settings (name, value) values (${`outbound_${tag}`}, 'tok-123')`;
  });
  afterAll(async () => {
    server.closeAllConnections();
    server.close();
    await sql`delete from cesar.local_settings where name = ${`outbound_${tag}`}`;
  });

  it('sends the request with an Idempotency-Key and secret headers, and completes on 2xx', async () => {
    const job = await send({
      url: `${base}/status/201`,
      body: { hello: 'world' },
      headers: {
        Authorization: { secret: `outbound_${tag}`, prefix: 'Bearer ' },
        'X-Plain': 'yes',
      },
    });
    expect(job).toMatchObject({ status: 'completed', result: { status: 201, body: 'answer 201' } });
    const request = seen.find((s) => s.path === '/status/201')!;
    expect(request.headers).toMatchObject({
      'idempotency-key': `cesar-job-${job.id}`,
      authorization: 'Bearer tok-123',
      'x-plain': 'yes',
      'content-type': 'application/json',
    });
    expect(JSON.parse(request.body)).toEqual({ hello: 'world' });
  });

  it('retries 429/5xx (at Retry-After when given) and fails other 4xx at once', async () => {
    const before = Date.now();
    const limited = await send({ url: `${base}/status/429/retry-after` });
    expect(limited).toMatchObject({
      status: 'pending',
      last_error: expect.stringMatching(/answered 429; retry after/),
    });
    expect(limited.run_at.getTime() - before).toBeGreaterThanOrEqual(119_000);
    expect(limited.run_at.getTime() - before).toBeLessThanOrEqual(125_000);
    expect(await send({ url: `${base}/status/503` })).toMatchObject({
      status: 'pending',
      attempts: 1,
    });
    expect(await send({ url: `${base}/status/404` })).toMatchObject({
      status: 'failed',
      attempts: 1,
      last_error: expect.stringMatching(/answered 404/),
    });
  });

  it('retries network errors and fails permanently on a missing secret', async () => {
    const port = await freePort();
    expect(await send({ url: `http://127.0.0.1:${port}/` })).toMatchObject({
      status: 'pending',
      last_error: expect.any(String),
    });
    expect(
      await send({
        url: `${base}/status/200`,
        headers: { Authorization: { secret: 'outbound_no_such_secret' } },
      }),
    )
      .toMatchObject({
        status: 'failed',
        last_error: 'header Authorization: secret "outbound_no_such_secret" is not configured',
      });
  });

  it('keeps the same Idempotency-Key across retries of a job', async () => {
    const id = await enqueueJob(sql, 'http.request', { url: `${base}/status/500/idem` });
    await drain(fnSql, builtInHandlers, { jobTypes: ['http.request'] }, { outbound: local });
    await sql`update cesar.job_queue set run_at = now() where id = ${id}`;
    await drain(fnSql, builtInHandlers, { jobTypes: ['http.request'] }, { outbound: local });
    const keys = seen.filter((s) => s.path === '/status/500/idem').map((s) =>
      s.headers['idempotency-key']
    );
    expect(keys).toEqual([`cesar-job-${id}`, `cesar-job-${id}`]);
  });

  it('a cancel aborts the request in flight; the job ends cancelled, not retried', async () => {
    const id = await enqueueJob(sql, 'http.request', { url: `${base}/hold`, timeout_ms: 60_000 });
    const drained = drain(fnSql, builtInHandlers, { jobTypes: ['http.request'] }, {
      outbound: local,
    });
    const deadline = Date.now() + 10_000;
    while (!seen.some((s) => s.path === '/hold')) {
      if (Date.now() > deadline) throw new Error('the request never arrived');
      await new Promise((r) => setTimeout(r, 50));
    }
    const cancelledAt = Date.now();
    await sql`select cesar.cancel_jobs(array[${id}]::bigint[])`;
    expect(await drained).toMatchObject({ cancelled: 1, retried: 0, failed: 0 });
    // The drain hears of the cancel at its next lease renewal (every 2 s): the held request's
    // connection was closed by the client, long before its 60 s timeout.
    expect(heldClosedAt).toBeGreaterThan(0);
    expect(heldClosedAt - cancelledAt).toBeLessThan(5_000);
    const job = await jobById(sql, id);
    expect(job).toMatchObject({ status: 'cancelled', attempts: 1 });
    expect(job.errors).toEqual([expect.objectContaining({ kind: 'cancelled' })]);
  });
});

describe('sync.table, system.noop', () => {
  it('sync.table fails permanently without a mirror, saying so (tests/sync.test.ts pushes for real)', async () => {
    expect(await run('sync.table', { table: 'public.agents' })).toMatchObject({
      status: 'failed',
      attempts: 1,
      last_error: 'sync.table: no mirror configured (COCKROACH_DB_URL)',
    });
  });

  it('system.noop completes with its start time', async () => {
    const before = Date.now();
    const job = await run('system.noop');
    expect(job.status).toBe('completed');
    expect((job.result as { started_at_ms: number }).started_at_ms).toBeGreaterThanOrEqual(before);
  });
});

describe('statements stop when the job is stopped (cancelOnAbort)', () => {
  it('cancels a running statement through the pooler and rejects with the reason; sends none when already aborted', async () => {
    const controller = new AbortController();
    const label = `sleep_${tag}`;
    const startedAt = Date.now();
    setTimeout(() => controller.abort(new Error('job cancelled')), 300);
    await expect(
      cancelOnAbort(controller.signal, fnSql`select pg_sleep(30) as ${fnSql(label)}`),
    ).rejects.toThrow('job cancelled');
    expect(Date.now() - startedAt).toBeLessThan(3_000);
    // The server stopped it (it would sleep 30 s), and the pool goes on.
    expect(
      await sql`select count(*)::int as n from pg_stat_activity
                where state = 'active' and query like ${`%${label}%`} and pid <> pg_backend_pid()`,
    ).toEqual([{ n: 0 }]);
    expect(await fnSql`select 1 as one`).toEqual([{ one: 1 }]);
    const aborted = AbortSignal.abort(new Error('too late'));
    await expect(cancelOnAbort(aborted, fnSql`select 1`)).rejects.toThrow('too late');
  });

  it('task.assign waiting for its task row stops at a cancel: its statement cancelled, not left to wait', async () => {
    const type = uniqueJobType('assign');
    const [task] = await sql<Array<{ id: string }>>`
      insert into tasks (title) values (${`${tag} locked`}) returning id`;
    // Another transaction holds the task's row: the handler's statement waits for it.
    const holder = await sql.reserve();
    await holder`begin`;
    await holder`select id from tasks where id = ${task!.id} for update`;
    try {
      const id = await enqueueJob(sql, type, { task_id: task!.id });
      const drained = drain(fnSql, { [type]: builtInHandlers['task.assign']! }, {
        jobTypes: [type],
      });
      const waiting = () =>
        sql<Array<{ n: number }>>`
          select count(*)::int as n from pg_stat_activity
          where wait_event_type = 'Lock' and query like '%least_loaded_agent(required_capability)%'`;
      const deadline = Date.now() + 10_000;
      while ((await waiting())[0]!.n === 0) {
        if (Date.now() > deadline) throw new Error('the statement never waited');
        await new Promise((r) => setTimeout(r, 50));
      }
      const cancelledAt = Date.now();
      await sql`select cesar.cancel_jobs(array[${id}]::bigint[])`;
      // The row is still held: the drain answers because the statement was cancelled.
      const result = await Promise.race([
        drained,
        new Promise((r) => setTimeout(() => r('still waiting'), 8_000)),
      ]);
      expect(result).toMatchObject({ claimed: 1, cancelled: 1, slow_to_stop: 0 });
      expect(Date.now() - cancelledAt).toBeLessThan(5_000);
      expect((await waiting())[0]!.n).toBe(0);
      expect(await jobById(sql, id)).toMatchObject({ status: 'cancelled', attempts: 1 });
    } finally {
      await holder`rollback`;
      holder.release();
    }
    expect(await sql`select agent_id from tasks where id = ${task!.id}`).toEqual([
      { agent_id: null },
    ]);
  });
});
