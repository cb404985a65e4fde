import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { builtInHandlers } from '../packages/shared/src/queue/handlers/index.ts';
import { claimJobs, completeJobs } from '../packages/shared/src/queue/queries.ts';
import { templateInput } from '../packages/shared/src/workflows/schema.ts';
import { databaseUrl, functionSql, testSql } from './helpers/db.ts';
import { drain, uniqueJobType } from './helpers/queue.ts';
import { apiApp, auth, call, process, processOnce, webhookApp } from './helpers/workflows.ts';

const sql = testSql(undefined, 10);
// The functions' own pool: through the transaction pooler, as CESAR_DB_URL gives it.
const fnSql = functionSql(10, 'webhook');
const tag = `w${Date.now().toString(36)}`;
// A table of this file's own, so other test files' writes never meet these workflows.
const table = `wf_test.items_${tag}`;
const jobType = uniqueJobType('wf');
const orderedJobType = uniqueJobType('ordered');
const api = apiApp(fnSql, [jobType, orderedJobType]);

beforeAll(async () => {
  await sql`create schema if not exists wf_test`;
  await sql.unsafe(
    `create table ${table} (id uuid primary key default gen_random_uuid(), name text not null,
                    status text not null default 'new', n integer not null default 0, updated_at timestamptz not null default now())`,
  );
});
afterAll(async () => {
  await sql`delete from cesar.workflow_templates where name like ${`${tag}%`}`;
  await sql.unsafe(`drop table if exists ${table}`);
});

async function createTemplate(
  name: string,
  trigger: Record<string, unknown>,
  actions?: unknown[],
  extra: Record<string, unknown> = {},
) {
  const res = await call(api, 'POST', '/api/workflows', {
    name: `${tag} ${name}`,
    trigger,
    actions: actions ??
      [{
        type: 'enqueue_job',
        job_type: jobType,
        payload: { item: '{{record.id}}', name: '{{record.name}}' },
      }],
    ...extra,
  });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return res.body as { id: string; name: string };
}

async function insertItems(names: string[], status = 'new') {
  const rows = await sql.unsafe(
    `insert into ${table} (name, status) select unnest($1::text[]), $2 returning id`,
    [names, status],
  );
  return rows.map((r) => r.id as string);
}

async function executionsFor(templateId: string) {
  return await sql<
    Array<{ id: string; event_id: string; status: string; job_count: number; error: string | null }>
  >`
    select id, event_id, status, job_count, error from cesar.workflow_executions where template_id = ${templateId} order by id`;
}

describe('workflow templates through the api', () => {
  it('creates an event template and watches its table', async () => {
    const t = await createTemplate('api create', {
      type: 'database_event',
      table,
      events: ['INSERT'],
    });
    const [{ watched }] =
      await sql`select exists (select from cesar.watched_tables where table_name = ${table}) as watched` as unknown as [
        { watched: boolean },
      ];
    expect(watched).toBe(true);
    expect((await call(api, 'GET', `/api/workflows/${t.id}`)).body).toMatchObject({
      id: t.id,
      enabled: true,
      trigger: { table, ordered: false },
    });
    expect(
      (await call(api, 'GET', '/api/workflows')).body.workflows.map((w: { id: string }) => w.id),
    ).toContain(t.id);
    await call(api, 'DELETE', `/api/workflows/${t.id}`);
  });

  it('refuses bad templates with 4xx and saves nothing', async () => {
    // This test's names only: other files create and delete templates meanwhile.
    const mine = async () =>
      (await sql`select count(*)::int as n from cesar.workflow_templates
                 where name like ${`${tag} %`}`)[0]!.n;
    const before = await mine();
    const bad = async (body: Record<string, unknown>) =>
      await call(api, 'POST', '/api/workflows', { name: `${tag} bad`, ...body });
    const ok = {
      trigger: { type: 'database_event', table, events: ['INSERT'] },
      actions: [{ type: 'enqueue_job', job_type: jobType }],
    };
    let r = await bad({
      ...ok,
      trigger: { ...ok.trigger, filter: { field: 'record.n', op: 'gt' } },
    });
    expect(r.status).toBe(400);
    expect(r.body.error.issues[0].path).toMatch(/^trigger\.filter/);
    r = await bad({ ...ok, actions: [{ type: 'enqueue_job', job_type: 'no.such_type' }] });
    expect(r).toMatchObject({
      status: 400,
      body: { error: { issues: [{ path: 'actions.0.job_type' }] } },
    });
    r = await bad({ ...ok, trigger: { ...ok.trigger, table: 'public.no_such_table' } });
    expect(r).toMatchObject({
      status: 422,
      body: { error: { message: 'unknown table public.no_such_table' } },
    });
    // The system's, Supabase's and this project's own tables are not for templates: a
    // template on net.http_request_queue would feed itself.
    for (
      const [table, reason] of [
        ['net.http_request_queue', /net schema belongs to the system or to Supabase/],
        ['cesar.job_queue', /cesar schema is machinery/],
        ['pg_catalog.pg_authid', /pg_catalog schema belongs/],
        ['cron.job', /cron schema belongs/],
        ['information_schema.tables', /information_schema schema belongs|not a table/],
      ] as const
    ) {
      r = await bad({ ...ok, trigger: { ...ok.trigger, table } });
      expect(r.status, table).toBe(422);
      expect(r.body.error.message, table).toMatch(reason);
    }
    // In a schema of its own: public's default grants would show in tests/privileges.test.ts.
    await sql`create schema if not exists bad_input`;
    await sql`create or replace view bad_input.a_view as select 1 as id`;
    try {
      r = await bad({ ...ok, trigger: { ...ok.trigger, table: 'bad_input.a_view' } });
      expect(r).toMatchObject({
        status: 422,
        body: { error: { message: 'cannot watch bad_input.a_view: it is not a table' } },
      });
    } finally {
      await sql`drop schema bad_input cascade`;
    }
    r = await bad({ ...ok, trigger: { type: 'schedule', cron: '99 * * * *' } });
    expect(r).toMatchObject({
      status: 400,
      body: { error: { issues: [{ path: 'trigger.cron' }] } },
    });
    const res = await api.request('/api/workflows', {
      method: 'POST',
      headers: auth,
      body: '{"name": ',
    });
    expect(res.status).toBe(400);
    const unauth = await api.request('/api/workflows', {
      method: 'POST',
      body: JSON.stringify({ name: `${tag} x`, ...ok }),
    });
    expect(unauth.status).toBe(401);
    expect(await mine()).toBe(before);
  });

  it('rejects a duplicate name with 409, unknown ids with 404, and patches, enables, disables and deletes', async () => {
    const t = await createTemplate('lifecycle', { type: 'manual' });
    expect(
      (await call(api, 'POST', '/api/workflows', {
        name: t.name,
        trigger: { type: 'manual' },
        actions: [{ type: 'enqueue_job', job_type: jobType }],
      })).status,
    ).toBe(409);
    for (const id of ['00000000-0000-4000-8000-000000000000', 'not-a-uuid']) {
      expect((await call(api, 'GET', `/api/workflows/${id}`)).status).toBe(404);
      expect((await call(api, 'POST', `/api/workflows/${id}/disable`)).status).toBe(404);
    }
    expect((await call(api, 'PATCH', `/api/workflows/${t.id}`, { description: 'changed' })).body)
      .toMatchObject({ description: 'changed' });
    expect((await call(api, 'PATCH', `/api/workflows/${t.id}`, { actions: [] })).status).toBe(400);
    expect((await call(api, 'PATCH', `/api/workflows/${t.id}`, {})).status).toBe(400);
    expect(
      (await call(api, 'PATCH', `/api/workflows/${t.id}`, { retry_policy: { max_attempts: 7 } }))
        .status,
    ).toBe(200);
    expect((await call(api, 'POST', `/api/workflows/${t.id}/disable`)).body.enabled).toBe(false);
    // A PATCH changes what it names and nothing else: still disabled, retry policy kept.
    expect((await call(api, 'PATCH', `/api/workflows/${t.id}`, { description: 'again' })).body)
      .toMatchObject({
        description: 'again',
        enabled: false,
        retry_policy: { max_attempts: 7 },
      });
    expect((await call(api, 'POST', `/api/workflows/${t.id}/enable`)).body.enabled).toBe(true);
    expect((await call(api, 'DELETE', `/api/workflows/${t.id}`)).body).toEqual({ deleted: true });
    expect((await call(api, 'DELETE', `/api/workflows/${t.id}`)).status).toBe(404);
  });
});

describe('processing events', () => {
  it('runs one execution per (event, template) that matches, and ignores the rest', async () => {
    const t = await createTemplate('filtered', {
      type: 'database_event',
      table,
      events: ['INSERT'],
      filter: { field: 'record.name', op: 'matches', value: '^keep' },
    });
    const ids = await insertItems(['keep 1', 'drop 1', 'keep 2']);
    await process(fnSql);
    const executions = await executionsFor(t.id);
    expect(executions).toHaveLength(2);
    const jobs = await sql`select payload from cesar.job_queue where execution_id = any(${
      executions.map((e) => e.id)
    }::bigint[]) order by id`;
    expect(jobs.map((j) => j.payload)).toEqual([{ item: ids[0], name: 'keep 1' }, {
      item: ids[2],
      name: 'keep 2',
    }]);
    const statuses =
      await sql`select row_key, status from cesar.event_log where row_key = any(${ids}) order by id`;
    expect(statuses.map((s) => s.status)).toEqual(['processed', 'ignored', 'processed']);
    await call(api, 'POST', `/api/workflows/${t.id}/disable`);
  });

  it('loses nothing while the function is down, and doubles nothing when the doorbell, the sweep and replays race', async () => {
    const t = await createTemplate('race', {
      type: 'database_event',
      table,
      events: ['INSERT', 'UPDATE'],
    });
    // The function is "down": rows are written and nothing processes them.
    const ids = await insertItems(Array.from({ length: 300 }, (_, i) => `race ${i}`));
    await sql.unsafe(`update ${table} set n = n + 1 where name like 'race %'`);
    // Back up: three drains at once (doorbell, sweep, another doorbell).
    await Promise.all([process(fnSql), process(fnSql), process(fnSql)]);
    let executions = await executionsFor(t.id);
    expect(executions).toHaveLength(600);
    expect(new Set(executions.map((e) => e.event_id)).size).toBe(600);
    // Replay them all and process again, twice at once: still one execution each.
    // Replay runs the template on every event of its table, older ones included, and still
    // makes one execution per (event, template), whatever races.
    const replay = await call(api, 'POST', '/api/events/replay', {
      template_id: t.id,
      from: '2000-01-01T00:00:00Z',
    });
    expect(replay.body.replayed).toBeGreaterThanOrEqual(600);
    await Promise.all([process(fnSql), process(fnSql)]);
    executions = await executionsFor(t.id);
    const [{ events }] = await sql`select count(*)::int as events from cesar.event_log
                                   where schema_name || '.' || table_name = ${table} and op in ('INSERT', 'UPDATE')` as unknown as [
      { events: number },
    ];
    expect(executions).toHaveLength(events);
    expect(new Set(executions.map((e) => e.event_id)).size).toBe(events);
    expect(ids).toHaveLength(300);
    await call(api, 'POST', `/api/workflows/${t.id}/disable`);
  });

  it("keeps one row's jobs in event order for an ordered workflow", async () => {
    const t = await createTemplate('ordered', {
      type: 'database_event',
      table,
      events: ['INSERT', 'UPDATE'],
      ordered: true,
    }, [{ type: 'enqueue_job', job_type: orderedJobType, payload: { n: '{{record.n}}' } }]);
    const [id] = await insertItems(['ordered row']);
    for (let n = 1; n <= 3; n++) {
      await sql.unsafe(`update ${table} set n = ${n} where id = $1`, [id!]);
    }
    await process(fnSql);
    const jobs = await sql`select id, payload, serial_key from cesar.job_queue
                           where execution_id in (select id from cesar.workflow_executions where template_id = ${t.id}) order by id`;
    expect(jobs).toHaveLength(4);
    expect(new Set(jobs.map((j) => j.serial_key)).size).toBe(1);
    // Only the first can be claimed; each completion lets the next one go.
    const order: string[] = [];
    for (let i = 0; i < 4; i++) {
      const claimed = await claimJobs(sql, {
        worker: 'w',
        batchSize: 10,
        jobTypes: [orderedJobType],
      });
      const mine = claimed.filter((j) => jobs.some((x) => x.id === j.id));
      expect(mine).toHaveLength(1);
      order.push(mine[0]!.id);
      await completeJobs(
        sql,
        'w',
        claimed.map((j) => ({ id: j.id, attempt: j.attempts, result: null })),
      );
    }
    expect(order).toEqual(jobs.map((j) => j.id));
    expect(jobs.map((j) => j.payload.n)).toEqual([0, 1, 2, 3]);
    await call(api, 'POST', `/api/workflows/${t.id}/disable`);
  });

  it("lets an execution's status follow its jobs", async () => {
    const t = await createTemplate('status', {
      type: 'database_event',
      table,
      events: ['INSERT'],
      filter: { field: 'record.name', op: 'contains', value: 'status' },
    }, [{ type: 'enqueue_job', job_type: jobType, payload: { fail: '{{record.status}}' } }, {
      type: 'enqueue_job',
      job_type: jobType,
      payload: {},
    }]);
    await insertItems(['status ok'], 'fine');
    await insertItems(['status bad'], 'fail');
    await process(fnSql);
    let executions = await executionsFor(t.id);
    expect(executions.map((e) => [e.status, e.job_count])).toEqual([['pending', 2], [
      'pending',
      2,
    ]]);
    await drain(sql, {
      [jobType]: ({ job }) =>
        job.payload.fail === 'fail'
          ? Promise.reject(new Error('the item is broken'))
          : Promise.resolve('done'),
    }, { jobTypes: [jobType] });
    await sql`update cesar.job_queue set max_attempts = attempts where execution_id = any(${
      executions.map((e) => e.id)
    }::bigint[]) and status = 'pending'`;
    await sql`update cesar.job_queue set run_at = now() where execution_id = any(${
      executions.map((e) => e.id)
    }::bigint[]) and status = 'pending'`;
    // Attempts exhausted: the failing job fails for good on its next run.
    await sql`update cesar.job_queue set max_attempts = 2 where execution_id = any(${
      executions.map((e) => e.id)
    }::bigint[]) and status = 'pending'`;
    await drain(sql, { [jobType]: () => Promise.reject(new Error('the item is broken')) }, {
      jobTypes: [jobType],
    });
    executions = await executionsFor(t.id);
    expect(executions.map((e) => e.status)).toEqual(['completed', 'failed']);
    expect(executions[1]!.error).toBe('the item is broken');
    await call(api, 'POST', `/api/workflows/${t.id}/disable`);
  });
});

describe('the event processor lease', () => {
  it('lets one drain process at a time; a second answers busy', async () => {
    await sql`select cesar.take_event_processor('someone-else', 30)`;
    try {
      expect((await processOnce(fnSql)).stopped).toBe('busy');
    } finally {
      await sql`select cesar.release_event_processor('someone-else')`;
    }
    expect((await process(fnSql)).stopped).toBe('empty');
  });

  it('takes over from a drain that died: its lease runs out and its events are processed', async () => {
    const t = await createTemplate('takeover', {
      type: 'database_event',
      table,
      events: ['INSERT'],
      filter: { field: 'record.name', op: 'eq', value: 'orphan' },
    });
    await insertItems(['orphan']);
    // A drain claims, then dies holding a lease that is about to run out.
    await sql`select cesar.take_event_processor('dead-drain', 1)`;
    await sql`select * from cesar.claim_events(1000)`;
    expect((await processOnce(fnSql)).stopped).toBe('busy');
    await new Promise((r) => setTimeout(r, 1_100));
    const result = await process(fnSql);
    expect(result.stopped).toBe('empty');
    expect(await executionsFor(t.id)).toHaveLength(1);
    await call(api, 'POST', `/api/workflows/${t.id}/disable`);
  });

  it('isolates an event that cannot be processed: it fails alone, the rest go on, and it can be redelivered', async () => {
    // A template written around the api's validation, with an action no job can come from.
    const [bad] = await sql`insert into cesar.workflow_templates (name, trigger, actions)
      values (${`${tag} broken`}, ${
      sql.json({
        type: 'database_event',
        table,
        events: ['INSERT'],
        filter: { field: 'record.name', op: 'eq', value: 'doomed' },
      })
    }, '[{"type": "bogus"}]')
      returning id`;
    const [id] = await insertItems(['doomed']);
    const [fine] = await insertItems(['bystander']);
    // Only the doomed event fails, alone, until its attempts run out; the others go on.
    // Another file's drain may be the one that meets it: wait for the outcome either way.
    const state = async (key: string) =>
      (await sql<Array<{ status: string; last_error: string | null; attempts: number }>>`
        select status, last_error, attempts from cesar.event_log where row_key = ${key}`)[0];
    for (let i = 0; i < 200 && (await state(id!))?.status !== 'failed'; i++) {
      await process(fnSql);
      await new Promise((r) => setTimeout(r, 10));
    }
    expect(await state(id!)).toMatchObject({
      status: 'failed',
      attempts: 10,
      last_error: expect.stringMatching(/null value in column "job_type"/),
    });
    expect((await state(fine!))?.status).toMatch(/^(processed|ignored)$/);
    await sql`delete from cesar.workflow_templates where id = ${bad!.id}`;
    const [event] = await sql`select id from cesar.event_log where row_key = ${id!}`;
    expect((await call(api, 'POST', `/api/events/${event!.id}/redeliver`)).body).toEqual({
      redelivered: true,
    });
    await process(fnSql);
    expect((await state(id!))?.status).toBe('ignored');
  });
});

describe('native Database Webhook deliveries', () => {
  const hook = webhookApp(fnSql);
  const deliver = async (payload: unknown, headers: Record<string, string> = auth) => {
    const res = await hook.request('/webhook', {
      method: 'POST',
      headers,
      body: JSON.stringify(payload),
    });
    return { status: res.status, body: await res.json() };
  };

  it('acknowledges a delivery of a watched table without a second event: workflows run once', async () => {
    // The template watches its table: the change is captured in the writer's transaction, so
    // the native delivery of it (however often it comes) records nothing more.
    // (tests/native-webhooks.test.ts: re-deliveries of an unwatched table, and Studio's hooks.)
    const t = await createTemplate('native', {
      type: 'database_event',
      table,
      events: ['INSERT', 'UPDATE'],
      filter: { field: 'record.name', op: 'eq', value: 'native' },
    });
    const [schema, name] = table.split('.');
    const [id] = await insertItems(['native']);
    const payload = {
      type: 'INSERT',
      schema,
      table: name,
      record: { id, name: 'native' },
      old_record: null,
    };
    const deliveries = await Promise.all([deliver(payload), deliver(payload)]);
    expect(deliveries.map((d) => [d.status, d.body.recorded, d.body.captured])).toEqual([
      [200, false, true],
      [200, false, true],
    ]);
    // A delivery processes at once unless another file's drain holds the processor lease
    // (it then answers busy, and the event waits for that drain): wait that out.
    await process(fnSql);
    expect(await executionsFor(t.id)).toHaveLength(1);
    const unchanged = await deliver({
      ...payload,
      type: 'UPDATE',
      old_record: { ...payload.record, updated_at: 'x' },
      record: { ...payload.record, updated_at: 'y' },
    });
    expect(unchanged.body).toEqual({ recorded: false, reason: 'the update changed nothing' });
    await call(api, 'POST', `/api/workflows/${t.id}/disable`);
  });

  it('answers bad deliveries with 4xx and writes nothing', async () => {
    const [{ before }] =
      await sql`select count(*)::int as before from cesar.event_log where source = 'webhook'` as unknown as [
        { before: number },
      ];
    expect(
      (await deliver({
        type: 'INSERT',
        schema: 'public',
        table: 'no_such_table',
        record: { id: 1 },
        old_record: null,
      })).status,
    ).toBe(422);
    const system = await deliver({
      type: 'INSERT',
      schema: 'net',
      table: 'http_request_queue',
      record: { id: 1 },
      old_record: null,
    });
    expect(system.status).toBe(422);
    expect(system.body.error.message).toMatch(/events of net.http_request_queue are refused/);
    const badShape = await deliver({
      type: 'INSERT',
      schema: 'public',
      table: 'tasks',
      record: null,
      old_record: null,
    });
    expect(badShape.status).toBe(400);
    expect(badShape.body.error.issues[0].path).toBe('record');
    expect(
      (await deliver({
        type: 'INSERT',
        schema: 'public',
        table: 'tasks',
        record: { id: 1 },
        old_record: null,
      }, { authorization: 'Bearer nope-nope-nope-nope' })).status,
    ).toBe(401);
    const big = await hook.request('/webhook', {
      method: 'POST',
      headers: auth,
      body: JSON.stringify({
        type: 'INSERT',
        schema: 'public',
        table: 'tasks',
        record: { pad: 'x'.repeat(1_100_000) },
        old_record: null,
      }),
    });
    expect(big.status).toBe(413);
    expect(
      (await hook.request('/webhook', { method: 'POST', headers: auth, body: '{"type":' })).status,
    ).toBe(400);
    const [{ after }] =
      await sql`select count(*)::int as after from cesar.event_log where source = 'webhook'` as unknown as [
        { after: number },
      ];
    expect(after).toBe(before);
  });

  it('drains on POST /webhook/drain and validates its body', async () => {
    expect(
      (await hook.request('/webhook/drain', {
        method: 'POST',
        headers: auth,
        body: '{"budget_ms": 5}',
      })).status,
    ).toBe(400);
    const res = await hook.request('/webhook/drain', {
      method: 'POST',
      headers: auth,
      body: '{"reason": "test"}',
    });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ failed_batches: 0 });
  });
});

describe('schedules', () => {
  const scheduleOf = async (id: string) =>
    (await sql`select covered_until from cesar.workflow_schedules where template_id = ${id}`)[0];

  // The clock is one pg_cron job for all of them (tests/schedules.test.ts); a template's
  // schedule is its row in cesar.workflow_schedules, whose covered_until restarts when the
  // schedule changes or is enabled (slots before that are not missed).
  it('follow the template: made, restarted on change and enable, gone with the template', async () => {
    const t = await createTemplate('scheduled', { type: 'schedule', cron: '*/5 * * * *' });
    const made = (await scheduleOf(t.id))!.covered_until as Date;
    expect(made).toBeInstanceOf(Date);
    await call(api, 'PATCH', `/api/workflows/${t.id}`, {
      trigger: { type: 'schedule', cron: '0 3 * * *' },
    });
    const changed = (await scheduleOf(t.id))!.covered_until as Date;
    expect(changed.getTime()).toBeGreaterThan(made.getTime());
    await call(api, 'POST', `/api/workflows/${t.id}/disable`);
    await call(api, 'POST', `/api/workflows/${t.id}/enable`);
    expect(((await scheduleOf(t.id))!.covered_until as Date).getTime()).toBeGreaterThan(
      changed.getTime(),
    );
    await call(api, 'PATCH', `/api/workflows/${t.id}`, { trigger: { type: 'manual' } });
    expect(await scheduleOf(t.id)).toBeUndefined();
    await call(api, 'PATCH', `/api/workflows/${t.id}`, {
      trigger: { type: 'schedule', cron: '0 4 * * *' },
    });
    expect(await scheduleOf(t.id)).toBeDefined();
    await call(api, 'DELETE', `/api/workflows/${t.id}`);
    expect(await scheduleOf(t.id)).toBeUndefined();
  });

  it('runs a slot once however often the tick fires, and manual runs on demand', async () => {
    const t = await createTemplate('slots', { type: 'schedule', cron: '0 0 1 1 *' });
    const slot = new Date('2026-11-20T10:15:00Z');
    const runs = await Promise.all(
      [1, 2, 3].map(() => sql`select cesar.run_workflow(${t.id}::uuid, ${slot}, 'schedule') as id`),
    );
    expect(runs.map((r) => r[0]!.id).filter((id) => id !== null)).toHaveLength(1);
    const run = await call(api, 'POST', `/api/workflows/${t.id}/run`);
    expect(run.status).toBe(202);
    const executions = await call(api, 'GET', `/api/executions?template_id=${t.id}`);
    expect(executions.body.executions).toHaveLength(2);
    expect(executions.body.executions[0]).toMatchObject({
      trigger_kind: 'manual',
      job_count: 1,
      jobs: [{ job_type: jobType, status: 'pending' }],
    });
    const eventTemplate = await createTemplate('not runnable', {
      type: 'database_event',
      table,
      events: ['DELETE'],
    });
    expect((await call(api, 'POST', `/api/workflows/${eventTemplate.id}/run`)).status).toBe(422);
    expect((await call(api, 'GET', '/api/executions?status=bogus')).status).toBe(400);
    await call(api, 'DELETE', `/api/workflows/${t.id}`);
    await call(api, 'DELETE', `/api/workflows/${eventTemplate.id}`);
  });
});

describe('events through the api', () => {
  it('lists events, redelivers one, and refuses what cannot be redelivered', async () => {
    const [id] = await insertItems(['redeliver me']);
    // A GET writes nothing (it used to expand captured statements): it answers on a
    // read-only connection. The change is listed once the drain expanded it.
    const readOnly = testSql(databaseUrl(), 1, { default_transaction_read_only: 'on' });
    const before = await call(apiApp(readOnly), 'GET', `/api/events?table=${table}&limit=500`);
    expect(before.status, JSON.stringify(before.body)).toBe(200);
    await process(fnSql);
    const listed = await call(api, 'GET', `/api/events?table=${table}&limit=500`);
    const event = listed.body.events.find((e: { row_key: string }) => e.row_key === id);
    expect(event).toMatchObject({ op: 'INSERT', status: expect.any(String) });
    expect((await call(api, 'POST', `/api/events/${event.id}/redeliver`)).body).toEqual({
      redelivered: true,
    });
    expect((await call(api, 'POST', `/api/events/${event.id}/redeliver`)).status).toBe(409);
    expect((await call(api, 'POST', '/api/events/999999999999/redeliver')).status).toBe(404);
    expect((await call(api, 'POST', '/api/events/replay', { from: 'yesterday' })).status).toBe(400);
    for (const from of ['0000-01-01T00:00:00Z', '9999-12-31T23:00:00-05:00']) {
      const res = await call(api, 'POST', '/api/events/replay', { from });
      expect(res.status, from).toBe(400);
      expect(JSON.stringify(res.body.error), from).toMatch(/between 1970 and 2999/);
    }
  });
});

describe("the seed's workflows", () => {
  it('are valid templates, and the five scheduled ones are scheduled', async () => {
    const rows =
      await sql`select id, name, trigger, actions, retry_policy from cesar.workflow_templates
                           where name in ('Onboard new agent', 'Assign new task', 'Route new A2A message', 'Review LLM collaboration',
                                          'Mirror sync', 'Daily financial analysis', 'LLM cache refresh', 'Knowledge graph update', 'Memory consolidation')`;
    expect(rows).toHaveLength(9);
    for (const row of rows) {
      const parsed = templateInput.safeParse({
        name: row.name,
        trigger: row.trigger,
        actions: row.actions,
        retry_policy: row.retry_policy,
      });
      expect(parsed.success, `${row.name}: ${JSON.stringify(parsed.error?.issues)}`).toBe(true);
    }
    const schedules = await sql`select t.name, t.trigger ->> 'cron' as schedule
                                from cesar.workflow_templates t
                                join cesar.workflow_schedules s on s.template_id = t.id
                                where t.name not like ${`${tag}%`} order by t.name`;
    expect(schedules).toEqual([
      { name: 'Daily financial analysis', schedule: '0 9 * * *' },
      { name: 'Knowledge graph update', schedule: '*/30 * * * *' },
      { name: 'LLM cache refresh', schedule: '0 */4 * * *' },
      { name: 'Memory consolidation', schedule: '0 2 * * *' },
      { name: 'Mirror sync', schedule: '*/15 * * * *' },
    ]);
  });

  it('work end to end: row written, event processed, job run, effect in the database', async () => {
    const jobTypes = ['agent.task', 'task.assign', 'a2a.route'];
    // New agent -> onboarding task.
    const [agent] =
      await sql`insert into agents (name, type, capabilities) values (${`${tag} newcomer`}, 'analyst', '{analysis}') returning id`;
    // New task without an agent -> assigned.
    const [task] =
      await sql`insert into tasks (title, required_capability) values (${`${tag} unassigned`}, 'trading') returning id`;
    // New pending message in a conversation -> routed to the other participant.
    const [sender, receiver] =
      await sql`select id from agents where metadata ->> 'seeded' = 'true' and status = 'active' order by name limit 2`;
    const [conversation] =
      await sql`insert into a2a_conversations (subject, participant_ids) values (${tag}, ${[
        sender!.id,
        receiver!.id,
      ]}) returning id`;
    const [message] =
      await sql`insert into a2a_messages (conversation_id, sender_id, content) values (${
        conversation!.id
      }, ${sender!.id}, 'hello') returning id`;
    // New LLM collaboration with a weak local answer -> evaluation task.
    const [collab] =
      await sql`insert into llm_collaborations (prompt, local_quality, cloud_quality) values (${tag}, 0.4, 0.9) returning id`;

    await process(fnSql);
    for (let i = 0; i < 3; i++) await drain(sql, builtInHandlers, { jobTypes });

    const [onboarding] =
      await sql`select t.required_capability, a.capabilities from tasks t join agents a on a.id = t.agent_id
                                   where t.payload ->> 'agent_id' = ${agent!.id}`;
    expect(onboarding).toMatchObject({
      required_capability: 'onboarding',
      capabilities: expect.arrayContaining(['onboarding']),
    });
    const [assigned] =
      await sql`select a.capabilities from tasks t join agents a on a.id = t.agent_id where t.id = ${
        task!.id
      }`;
    expect(assigned!.capabilities).toContain('trading');
    const [routed] = await sql`select status, receiver_id from a2a_messages where id = ${
      message!.id
    }`;
    expect(routed).toEqual({ status: 'routed', receiver_id: receiver!.id });
    const [review] =
      await sql`select t.title, a.capabilities from tasks t join agents a on a.id = t.agent_id
                               where t.payload ->> 'collaboration_id' = ${collab!.id}`;
    expect(review!.title).toBe(`Review LLM collaboration ${collab!.id}`);
    expect(review!.capabilities).toContain('evaluation');
  });
});
