import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTempStack, type TempStack } from '../scripts/lib/temp-stack.ts';
import { runtimeLog } from './helpers/stack.ts';

// Hostile and careless requests against every route of the four functions, through the local
// gateway to the real function processes (what `npm start` runs). Each must get a 4xx that
// says what is wrong; afterwards nothing was written, no function process was replaced, and
// every function still answers.

let stack: TempStack;
let sql: postgres.Sql;
let base: string;
let secret: string;

beforeAll(async () => {
  stack = await startTempStack();
  base = stack.settings.CESAR_FUNCTIONS_URL!;
  secret = stack.settings.CESAR_FUNCTION_SECRET!;
  sql = postgres(stack.settings.SUPABASE_DB_URL!, { max: 2, onnotice: () => {} });
  // Nothing else writes while the suite runs: pg_cron's schedules are paused.
  await sql`update cron.job set active = false`;
}, 180_000);

afterAll(async () => {
  await sql?.end({ timeout: 1 });
  await stack?.destroy();
}, 60_000);

/**
 * What the hostile requests could touch, as one fingerprint per table. A refused webhook
 * delivery is recorded in public.ingestion_log by design, and that table is watched and
 * mirrored: its events and outbox entries are left out.
 */
async function fingerprint(): Promise<Record<string, string>> {
  const tables: Record<string, string> = {
    'cesar.workflow_templates': 'true',
    'cesar.workflow_executions': 'true',
    'cesar.job_queue': 'true',
    'cesar.job_types': 'true',
    'cesar.job_rate_limits': 'true',
    'cesar.event_log': "t.table_name <> 'ingestion_log'",
    'cesar.captures':
      "t.store_id not in (select id from cesar.capture_stores where table_name = 'ingestion_log')",
    'cesar.sync_state': 'true',
    'cesar.sync_tables': 'true',
    'cesar.sync_outbox': "t.table_name <> 'public.ingestion_log'",
    'public.agents': 'true',
    'public.tasks': 'true',
  };
  const prints: Record<string, string> = {};
  for (const [table, where] of Object.entries(tables)) {
    const [row] = await sql.unsafe(
      `select count(*)::text || ':' || coalesce(md5(string_agg(t::text, '|' order by t::text)), '')
         as print from ${table} t where ${where}`,
    );
    prints[table] = row!.print;
  }
  return prints;
}

interface Case {
  what: string;
  method: string;
  path: string;
  body?: string;
  token?: string | null;
  contentType?: string;
}

const deep = (n: number) => `{"a":${'['.repeat(n)}${']'.repeat(n)}}`;
const big = `{"x":"${'x'.repeat(1_100_000)}"}`;

/** Bodies no route accepts. */
const badBodies: Array<[string, string]> = [
  ['malformed JSON', '{"a":'],
  ['a JSON array', '[1,2,3]'],
  ['a JSON string', '"hello"'],
  ['JSON null', 'null'],
  ['nested 10,000 deep', deep(10_000)],
  ['nested 40 deep', deep(40)],
  ['a NUL in a string', '{"name":"a\\u0000b"}'],
  ['a NUL in a key', '{"a\\u0000":1}'],
  ['over 1 MiB', big],
  ['unknown fields', '{"surprise":true,"__proto__":{"polluted":1}}'],
  ['prototype keys', '{"constructor":{"prototype":{"x":1}}}'],
  ['numbers out of range', '{"budget_ms":1e308,"limit":-1,"batch_size":0}'],
  ['wrong types', '{"tables":"public.agents","ids":{},"from":12}'],
  ['a 20,000-item list', `{"tables":[${Array(20_000).fill('"public.agents"').join(',')}]}`],
  ['binary garbage', '\u0000\u0001\u00ff\ufffd'],
  ['a form body', 'a=1&b=2'],
  ['a lone surrogate', '{"name":"\\ud800","payload":{"a":"\\udfff"}}'],
  ['trailing garbage', '{"a":1} xyz'],
];

const postRoutes = [
  '/api/workflows',
  '/api/events/replay',
  '/api/jobs',
  '/api/jobs/retry',
  '/api/jobs/cancel',
  '/api/sync',
  '/job-drain',
  '/webhook',
  '/webhook/drain',
  '/sync',
  '/sync/verify',
  '/sync/restore',
];

/** Routes that take a body with another method: a type's settings, a key's rate limit. */
const bodyRoutes: Array<[string, string]> = [
  ['PATCH', '/api/job-types/system.noop'],
  ['PUT', '/api/job-types/http.request/rate-limits/partner-x'],
];

const getRoutes = [
  '/api/health',
  '/api/health/business',
  '/api/agents',
  '/api/job-types',
  '/api/metrics',
  '/api/workflows',
  '/api/executions',
  '/api/events',
  '/api/financial',
  '/api/status',
  '/api/jobs',
  '/sync/status',
];

const badIds = [
  '..%2F..%2Fetc%2Fpasswd',
  '%00',
  'a'.repeat(2_000),
  '-1',
  '99999999999999999999999',
  "1'%20or%20'1'='1",
  '%E0%A4%A',
  'constructor',
];

function cases(): Case[] {
  const list: Case[] = [];
  for (const path of postRoutes) {
    for (const [what, body] of badBodies) list.push({ what, method: 'POST', path, body });
    list.push({ what: 'no token', method: 'POST', path, body: '{}', token: null });
    list.push({ what: 'a wrong token', method: 'POST', path, body: '{}', token: 'x'.repeat(40) });
    list.push({ what: 'a Basic scheme', method: 'POST', path, body: '{}', token: 'basic' });
  }
  for (const [method, path] of bodyRoutes) {
    for (const [what, body] of badBodies) list.push({ what, method, path, body });
    list.push({ what: 'no token', method, path, body: '{}', token: null });
  }
  // Settings that do not hold together, and a key limit for a type without a rate key.
  for (
    const [what, method, path, body] of [
      ['no field', 'PATCH', '/api/job-types/system.noop', '{}'],
      ['a rate without a period', 'PATCH', '/api/job-types/system.noop', '{"rate_limit":5}'],
      ['a cap without a key', 'PATCH', '/api/job-types/system.noop', '{"key_concurrency":2}'],
      ['a key that is no field', 'PATCH', '/api/job-types/http.request', '{"rate_key":"x"}'],
      ['a fraction', 'PATCH', '/api/job-types/system.noop', '{"concurrency":1.5}'],
      [
        'a type without a rate key',
        'PUT',
        '/api/job-types/system.noop/rate-limits/k',
        '{"rate_limit":1,"rate_period_seconds":1}',
      ],
    ] as const
  ) {
    list.push({ what: `job type settings with ${what}`, method, path, body });
  }
  for (const path of getRoutes) {
    list.push({ what: 'no token', method: 'GET', path, token: null });
    list.push({ what: 'a NUL in the query', method: 'GET', path: `${path}?x=%00` });
    list.push({ what: 'a wrong method', method: 'PUT', path, body: '{}' });
  }
  for (
    const [path, query] of [
      ['/api/jobs', 'limit=-1'],
      ['/api/jobs', 'limit=100000000000'],
      ['/api/jobs', 'status=%3Cscript%3E'],
      ['/api/jobs', 'surprise=1'],
      ['/api/events', 'limit=abc'],
      ['/api/events', 'status=lost'],
      ['/api/executions', 'template_id=not-a-uuid'],
      ['/api/executions', `template_id=${'f'.repeat(5_000)}`],
    ] as Array<[string, string]>
  ) {
    list.push({ what: `query ${query.slice(0, 40)}`, method: 'GET', path: `${path}?${query}` });
  }
  for (const id of badIds) {
    list.push({
      what: `workflow id ${id.slice(0, 20)}`,
      method: 'GET',
      path: `/api/workflows/${id}`,
    });
    list.push({
      what: `patch id ${id.slice(0, 20)}`,
      method: 'PATCH',
      path: `/api/workflows/${id}`,
      body: '{"description":"x"}',
    });
    list.push({
      what: `delete id ${id.slice(0, 20)}`,
      method: 'DELETE',
      path: `/api/workflows/${id}`,
    });
    list.push({ what: `job id ${id.slice(0, 20)}`, method: 'GET', path: `/api/jobs/${id}` });
    list.push({
      what: `job type ${id.slice(0, 20)}`,
      method: 'PATCH',
      path: `/api/job-types/${id}`,
      body: '{"concurrency":1}',
    });
    // system.noop has no rate key: a well-formed key gets a 409, nothing is stored.
    list.push({
      what: `rate key ${id.slice(0, 20)}`,
      method: 'PUT',
      path: `/api/job-types/system.noop/rate-limits/${id}`,
      body: '{"rate_limit":1,"rate_period_seconds":1}',
    });
    list.push({
      what: `rate key ${id.slice(0, 20)}`,
      method: 'DELETE',
      path: `/api/job-types/http.request/rate-limits/${id}`,
    });
    list.push({
      what: `redeliver id ${id.slice(0, 20)}`,
      method: 'POST',
      path: `/api/events/${id}/redeliver`,
    });
  }
  // Templates that must not be saved.
  const template = (
    trigger: unknown,
    actions: unknown = [{ type: 'enqueue_job', job_type: 'system.noop' }],
  ) => JSON.stringify({ name: `hostile ${Math.random()}`, trigger, actions });
  for (
    const [what, body] of [
      [
        'a self-feeding table',
        template({ type: 'database_event', table: 'net.http_request_queue' }),
      ],
      ['a catalog table', template({ type: 'database_event', table: 'pg_catalog.pg_authid' })],
      ['the machinery', template({ type: 'database_event', table: 'cesar.job_queue' })],
      ['an unknown table', template({ type: 'database_event', table: 'public.nope' })],
      [
        'a backreference',
        template({
          type: 'database_event',
          table: 'public.tasks',
          filter: { field: 'record.title', op: 'matches', value: '^(a+)\\1$' },
        }),
      ],
      [
        'an unknown job type',
        template({ type: 'manual' }, [{ type: 'enqueue_job', job_type: 'x.y' }]),
      ],
      ['a bad schedule', template({ type: 'schedule', cron: '99 * * * *' })],
      ['no actions', template({ type: 'manual' }, [])],
    ] as const
  ) {
    list.push({ what: `template with ${what}`, method: 'POST', path: '/api/workflows', body });
  }
  return list;
}

/**
 * Waits until nothing is left to process: every captured change made into events and every
 * event processed (a drain the doorbell started may still be at work, or have answered busy).
 */
async function quiet() {
  const auth = { authorization: `Bearer ${secret}`, 'content-type': 'application/json' };
  for (let i = 0; i < 100; i++) {
    const [left] = await sql<[{ n: number }]>`
      select (select count(*) from cesar.captures)::int
           + (select count(*) from cesar.event_log where status in ('pending', 'processing'))::int
        as n`;
    if (left.n === 0) return;
    const res = await fetch(`${base}/webhook/drain`, { method: 'POST', headers: auth, body: '{}' });
    await res.body?.cancel();
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('events still pending after 100 drains');
}

/** One well-formed call to each function (which also opens its pool), each a 200. */
async function everyFunctionAnswers(when: string) {
  const auth = { authorization: `Bearer ${secret}`, 'content-type': 'application/json' };
  for (
    const [method, path] of [
      ['GET', '/api/health'],
      ['POST', '/job-drain'],
      ['GET', '/sync/status'],
      ['POST', '/webhook/drain'],
    ]
  ) {
    const res = await fetch(`${base}${path}`, {
      method,
      headers: auth,
      body: method === 'POST' ? '{}' : undefined,
    });
    expect(res.status, `${method} ${path} ${when}`).toBe(200);
    await res.body?.cancel();
  }
}

describe('hostile input against every route', () => {
  it(
    'gets a 4xx with a message for every request; nothing is written and every function lives on',
    async () => {
      await everyFunctionAnswers('before');
      await quiet();
      const before = await fingerprint();
      const log = runtimeLog(stack.env.CESAR_LOCAL_DIR!);
      const mark = await log.mark();

      const all = cases();
      expect(all.length).toBeGreaterThanOrEqual(300);
      const answers: string[] = [];
      for (const c of all) {
        const headers: Record<string, string> = {
          'content-type': c.contentType ?? 'application/json',
        };
        if (c.token === 'basic') headers.authorization = `Basic ${btoa(`u:${secret}`)}`;
        else if (c.token !== null) headers.authorization = `Bearer ${c.token ?? secret}`;
        const res = await fetch(`${base}${c.path}`, {
          method: c.method,
          headers,
          body: c.body,
          signal: AbortSignal.timeout(30_000),
        }).catch((err) => {
          throw new Error(`${c.method} ${c.path.slice(0, 60)} with ${c.what}: ${err}`);
        });
        const text = await res.text();
        const label = `${c.method} ${c.path.slice(0, 60)} with ${c.what}: ${res.status} ${
          text.slice(0, 200)
        }`;
        answers.push(label);
        expect(res.status, label).toBeGreaterThanOrEqual(400);
        expect(res.status, label).toBeLessThan(500);
        // Every refusal says what is wrong, in the one error shape (the gateway's own 404 too).
        const message = JSON.parse(text).error?.message;
        expect(typeof message === 'string' && message.length > 0, label).toBe(true);
        expect(text, label).not.toContain(stack.env.CESAR_LOCAL_DIR!);
      }

      expect(await fingerprint()).toEqual(before);
      // No function process died or was stopped.
      expect(await log.ends(mark)).toEqual([]);
      await everyFunctionAnswers('afterwards');
    },
    300_000,
  );
});
