import { createHmac } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseAllowList } from '../packages/shared/src/allow-list.ts';
import { ConfigError, loadConfig } from '../packages/shared/src/config.ts';
import type { OutboundPolicy } from '../packages/shared/src/http/outbound.ts';
import {
  signature,
  signatureHeaders,
  verifySignature,
} from '../packages/shared/src/http/signing.ts';
import { httpRequest } from '../packages/shared/src/queue/handlers/http-request.ts';
import { maintenancePrune } from '../packages/shared/src/queue/handlers/maintenance-prune.ts';
import { enqueueJob } from '../packages/shared/src/queue/queries.ts';
import { actionSchema } from '../packages/shared/src/workflows/schema.ts';
import { createWebhookApp, payloadDigest } from '../packages/shared/src/workflows/webhook-app.ts';
import { functionSql, testSql, withRollback } from './helpers/db.ts';
import { drain, jobById, uniqueJobType } from './helpers/queue.ts';
import { apiApp, auth, call, process, SECRET } from './helpers/workflows.ts';

// Signed deliveries per Standard Webhooks (packages/shared/src/http/signing.ts): the published
// test vector, http.request jobs that sign what they send, and the webhook function verifying
// what external systems send it.

const sql = testSql(undefined, 4);
const fnSql = functionSql(4, 'job-drain');
const tag = `sd${Date.now().toString(36)}`;

// 24 random bytes each, as the specification suggests; made here, never configured anywhere.
const secretOf = (seed: string) =>
  `whsec_${Buffer.from(createHmac('sha256', seed).digest().subarray(0, 24)).toString('base64')}`;
const SECRET_A = secretOf(`${tag}-a`);
const SECRET_B = secretOf(`${tag}-b`);
const now = () => Math.floor(Date.now() / 1000);

/** The receiver's side written without our code: node:crypto, as the specification says. */
function independentSignature(secret: string, id: string, timestamp: string, body: string) {
  const key = Buffer.from(secret.slice('whsec_'.length), 'base64');
  return `v1,${createHmac('sha256', key).update(`${id}.${timestamp}.${body}`).digest('base64')}`;
}

describe('signing (pure)', () => {
  it("reproduces the Standard Webhooks specification's published test vector", async () => {
    // From the specification's reference libraries (standard-webhooks, svix).
    expect(
      await signature(
        'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw',
        'msg_p5jXN8AQM9LWM0D4loKWxJek',
        1614265330,
        '{"test": 2432232314}',
      ),
    ).toBe('v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=');
    expect(
      await verifySignature(
        ['whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw'],
        {
          id: 'msg_p5jXN8AQM9LWM0D4loKWxJek',
          timestamp: '1614265330',
          signature: 'v1,bm9wZQ== v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=',
        },
        '{"test": 2432232314}',
        1614265330 + 10,
      ),
    ).toEqual({ ok: true, id: 'msg_p5jXN8AQM9LWM0D4loKWxJek', timestamp: 1614265330 });
  });

  it('round-trips, and refuses a tampered body, id or timestamp, an old or future timestamp', async () => {
    const t = now();
    const body = '{"type":"INSERT","n":1}';
    const headers = await signatureHeaders([SECRET_A], 'msg_1', t, body);
    const given = {
      id: headers['webhook-id'],
      timestamp: headers['webhook-timestamp'],
      signature: headers['webhook-signature'],
    };
    expect(headers['webhook-signature']).toBe(
      independentSignature(SECRET_A, 'msg_1', String(t), body),
    );
    expect(await verifySignature([SECRET_A], given, body, t)).toMatchObject({ ok: true });
    const refused = async (
      changed: Partial<typeof given>,
      b = body,
      at = t,
      tolerance = 300,
    ) => {
      const verdict = await verifySignature([SECRET_A], { ...given, ...changed }, b, at, tolerance);
      expect(verdict.ok).toBe(false);
      return (verdict as { reason: string }).reason;
    };
    expect(await refused({}, '{"type":"INSERT","n":2}')).toMatch(/no signature .* matches/);
    expect(await refused({ id: 'msg_2' })).toMatch(/no signature .* matches/);
    expect(await refused({ timestamp: String(t + 1) })).toMatch(/no signature .* matches/);
    expect(await refused({}, body, t + 301)).toBe(
      'webhook-timestamp is more than 300 s old (a replay is refused)',
    );
    expect(await refused({}, body, t - 301)).toBe(
      'webhook-timestamp is more than 300 s in the future',
    );
    expect(await refused({}, body, t + 61, 60)).toMatch(/more than 60 s old/);
    expect(await refused({ signature: undefined })).toBe('missing header webhook-signature');
    expect(await refused({ timestamp: '1.5e9' })).toMatch(/unix seconds/);
    expect(await refused({ signature: 'v2,abc' })).toMatch(/no v1/);
    // The wrong secret, and a rotation: the receiver holds the old and the new one.
    expect((await verifySignature([SECRET_B], given, body, t)).ok).toBe(false);
    expect((await verifySignature([SECRET_B, SECRET_A], given, body, t)).ok).toBe(true);
    const both = await signatureHeaders([SECRET_B, SECRET_A], 'msg_1', t, body);
    expect(both['webhook-signature'].split(' ')).toHaveLength(2);
    expect(
      (await verifySignature(
        [SECRET_A],
        { ...given, signature: both['webhook-signature'] },
        body,
        t,
      ))
        .ok,
    ).toBe(true);
  });

  it('configuration names a malformed secret without repeating it', () => {
    const env = { SUPABASE_DB_URL: 'postgres://x/y', CESAR_FUNCTION_SECRET: SECRET };
    expect(loadConfig({ ...env, CESAR_WEBHOOK_SIGNING_SECRET: `${SECRET_A} ${SECRET_B}` }))
      .toMatchObject({
        webhookSigningSecrets: [SECRET_A, SECRET_B],
        webhookSignatureToleranceSeconds: 300,
      });
    expect(loadConfig(env).webhookSigningSecrets).toEqual([]);
    let error: unknown;
    try {
      loadConfig({ ...env, CESAR_WEBHOOK_SIGNING_SECRET: 'plain-secret-text' });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as Error).message).toContain(
      'CESAR_WEBHOOK_SIGNING_SECRET: secret 1: must be written whsec_<base64>',
    );
    expect((error as Error).message).not.toContain('plain-secret-text');
  });

  it('a workflow http_request action takes sign_with and refuses signature headers beside it', () => {
    const action = {
      type: 'http_request',
      url: 'https://hooks.example.com/in',
      sign_with: 'outbound_partner_signing',
    };
    expect(actionSchema.parse(action)).toMatchObject({ sign_with: 'outbound_partner_signing' });
    expect(actionSchema.safeParse({ ...action, sign_with: 'cesar_function_secret' }).success)
      .toBe(false);
    const clash = actionSchema.safeParse({ ...action, headers: { 'Webhook-Signature': 'v1,x' } });
    expect(clash.error?.issues).toEqual([expect.objectContaining({
      path: ['headers', 'Webhook-Signature'],
      message: 'header Webhook-Signature is set by the signature (sign_with) and may not be given',
    })]);
  });
});

describe('http.request jobs with sign_with', () => {
  // A job type of this file's own runs the real handler, so no other file's drain takes these
  // jobs (and judges them by another allow-list).
  const jobType = uniqueJobType('signed');
  const seen: Array<{ path: string; headers: http.IncomingHttpHeaders; body: string }> = [];
  const answers = new Map<string, number[]>();
  let server: http.Server;
  let other: http.Server;
  let base: string;
  let otherBase: string;
  let allowed: OutboundPolicy;

  beforeAll(async () => {
    // The receiver verifies with node:crypto and answers 401 to anything not signed with A.
    server = http.createServer((req, res) => {
      let body = '';
      req.on('data', (d) => (body += d));
      req.on('end', () => {
        seen.push({ path: req.url!, headers: req.headers, body });
        const given = String(req.headers['webhook-signature'] ?? '').split(' ');
        const expected = independentSignature(
          SECRET_A,
          String(req.headers['webhook-id']),
          String(req.headers['webhook-timestamp']),
          body,
        );
        const valid = given.includes(expected) &&
          Math.abs(Number(req.headers['webhook-timestamp']) - now()) <= 300;
        if (req.url === '/elsewhere') {
          res.writeHead(307, { location: `${otherBase}/landed` }).end();
          return;
        }
        const status = valid ? (answers.get(req.url!)?.shift() ?? 200) : 401;
        res.writeHead(status, { 'content-type': 'text/plain' }).end(valid ? 'ok' : 'bad signature');
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const port = (server.address() as AddressInfo).port;
    base = `http://127.0.0.1:${port}`;
    // Another origin (another port), where /elsewhere redirects.
    other = http.createServer((req, res) => {
      seen.push({ path: `other:${req.url}`, headers: req.headers, body: '' });
      req.resume();
      req.on('end', () => res.writeHead(200).end('landed'));
    });
    await new Promise<void>((r) => other.listen(0, '127.0.0.1', () => r()));
    const otherPort = (other.address() as AddressInfo).port;
    otherBase = `http://127.0.0.1:${otherPort}`;
    // The listeners are on the loopback: allowed, as CESAR_HTTP_ALLOW would.
    allowed = { allow: parseAllowList(`127.0.0.1:${port},127.0.0.1:${otherPort}`) };
    await sql`insert into cesar.local_settings (name, value) values
      (${`outbound_${tag}`}, ${SECRET_A}), (${`outbound_${tag}_rotating`}, ${`${SECRET_B} ${SECRET_A}`}),
      (${`outbound_${tag}_bad`}, 'not-a-whsec-secret')`;
  });
  afterAll(async () => {
    server.close();
    other.close();
    await sql`delete from cesar.local_settings where name like ${`outbound_${tag}%`}`;
  });

  async function runJob(payload: Record<string, unknown>, clockOffsetMs = 0) {
    const id = await enqueueJob(sql, jobType, payload);
    await drain(fnSql, { [jobType]: httpRequest }, { jobTypes: [jobType] }, {
      outbound: allowed,
      clock: { now: () => new Date(Date.now() + clockOffsetMs) },
    });
    return await jobById(sql, id);
  }

  it('signs the body as sent; the receiver verifies it (unsigned, the same receiver refuses)', async () => {
    const job = await runJob({
      url: `${base}/signed`,
      body: { hello: 'world' },
      sign_with: `outbound_${tag}`,
    });
    expect(job).toMatchObject({ status: 'completed', result: { status: 200, body: 'ok' } });
    const request = seen.at(-1)!;
    expect(request.headers).toMatchObject({
      'webhook-id': `cesar-job-${job.id}`,
      'idempotency-key': `cesar-job-${job.id}`,
      'content-type': 'application/json',
    });
    expect(Math.abs(Number(request.headers['webhook-timestamp']) - now())).toBeLessThan(30);
    expect(request.body).toBe('{"hello":"world"}');
    // Without sign_with (the code before this feature) the receiver answers 401.
    expect(await runJob({ url: `${base}/unsigned`, body: { hello: 'world' } })).toMatchObject({
      status: 'failed',
      last_error: `POST ${base}/unsigned answered 401: bad signature`,
    });
  });

  it('signs with every secret of a rotating setting; a missing or malformed one fails at once, unnamed', async () => {
    expect(
      await runJob({ url: `${base}/rotating`, body: 'raw', sign_with: `outbound_${tag}_rotating` }),
    ).toMatchObject({ status: 'completed' });
    expect(String(seen.at(-1)!.headers['webhook-signature']).split(' ')).toHaveLength(2);
    const before = seen.length;
    expect(await runJob({ url: `${base}/x`, sign_with: `outbound_${tag}_none` })).toMatchObject({
      status: 'failed',
      attempts: 1,
      last_error: `sign_with: secret "outbound_${tag}_none" is not configured`,
    });
    const bad = await runJob({ url: `${base}/x`, sign_with: `outbound_${tag}_bad` });
    expect(bad).toMatchObject({
      status: 'failed',
      last_error:
        `sign_with: secret "outbound_${tag}_bad": signing secret: must be written whsec_<base64>`,
    });
    expect(JSON.stringify(bad)).not.toContain('not-a-whsec-secret');
    expect(seen.length).toBe(before);
    expect(
      await runJob({ url: `${base}/x`, sign_with: 'cesar_function_secret' }),
    ).toMatchObject({ status: 'failed', last_error: expect.stringMatching(/sign_with/) });
  });

  it("keeps webhook-id across a retry; the timestamp and signature are the attempt's own", async () => {
    answers.set('/retry', [503]);
    const id = await enqueueJob(sql, jobType, {
      url: `${base}/retry`,
      body: { n: 1 },
      sign_with: `outbound_${tag}`,
    });
    await drain(fnSql, { [jobType]: httpRequest }, { jobTypes: [jobType] }, { outbound: allowed });
    expect(await jobById(sql, id)).toMatchObject({ status: 'pending', attempts: 1 });
    await sql`update cesar.job_queue set run_at = now() where id = ${id}`;
    // The retry comes 2 minutes later (a clock moved on), still inside the receiver's window.
    await drain(fnSql, { [jobType]: httpRequest }, { jobTypes: [jobType] }, {
      outbound: allowed,
      clock: { now: () => new Date(Date.now() + 120_000) },
    });
    expect(await jobById(sql, id)).toMatchObject({ status: 'completed', attempts: 2 });
    const attempts = seen.filter((s) => s.path === '/retry').map((s) => s.headers);
    expect(attempts.map((h) => h['webhook-id'])).toEqual([`cesar-job-${id}`, `cesar-job-${id}`]);
    const [first, second] = attempts.map((h) => Number(h['webhook-timestamp']));
    expect(second! - first!).toBeGreaterThanOrEqual(115);
    expect(attempts[0]!['webhook-signature']).not.toBe(attempts[1]!['webhook-signature']);
  });

  it('does not send the signature on to another origin a redirect names', async () => {
    const job = await runJob({ url: `${base}/elsewhere`, body: 'x', sign_with: `outbound_${tag}` });
    expect(job).toMatchObject({ status: 'completed', result: { body: 'landed' } });
    const landed = seen.find((s) => s.path === 'other:/landed')!;
    expect(landed.headers['webhook-signature']).toBeUndefined();
    expect(seen.find((s) => s.path === '/elsewhere')!.headers['webhook-signature']).toMatch(/^v1,/);
  });

  it('cesar.action_jobs carries sign_with from a workflow action into the job', async () => {
    const [job] = await sql<Array<{ job_type: string; payload: Record<string, unknown> }>>`
      select * from cesar.action_jobs(${
      sql.json([{ type: 'http_request', url: `${base}/a`, sign_with: `outbound_${tag}` }])
    })`;
    expect(job).toEqual({
      job_type: 'http.request',
      payload: { url: `${base}/a`, sign_with: `outbound_${tag}` },
    });
  });
});

describe('the webhook function with CESAR_WEBHOOK_SIGNING_SECRET', () => {
  const table = `${tag}_hooked`;
  const config = { functionSecret: SECRET, serviceRoleKey: null };
  const clock = { now: () => new Date() };
  const signed = createWebhookApp({
    sql: fnSql,
    config: { ...config, webhookSigningSecrets: [SECRET_B, SECRET_A] },
    clock,
  });
  const unsigned = createWebhookApp({ sql: fnSql, config, clock });
  let n = 0;
  const payload = () => ({
    type: 'INSERT',
    schema: 'public',
    table,
    record: { id: crypto.randomUUID(), title: `t${++n}` },
    old_record: null,
  });

  async function deliver(
    app: typeof signed,
    body: string,
    headers: Record<string, string>,
  ) {
    const res = await app.request('/webhook', { method: 'POST', headers, body });
    return { status: res.status, body: await res.json() };
  }

  async function signedHeaders(body: string, secret = SECRET_A, at = now(), id = `msg_${++n}`) {
    return {
      'content-type': 'application/json',
      ...(await signatureHeaders([secret], id, at, body)),
    };
  }

  /** What a delivery to this file's table wrote: events and ingestion log rows. */
  async function written() {
    const [row] = await sql<Array<{ events: number; logged: number }>>`
      select (select count(*)::int from cesar.event_log
              where schema_name = 'public' and table_name = ${table}) as events,
             (select count(*)::int from public.ingestion_log
              where details ->> 'table' = ${`public.${table}`}) as logged`;
    return row!;
  }

  beforeAll(async () => {
    // A table of this file's own, hooked but not watched, shaped like the inventory's.
    await sql.unsafe(`
      create table public.${table} (
        id uuid primary key default gen_random_uuid(),
        title text not null,
        created_at timestamptz not null default now(),
        updated_at timestamptz not null default now()
      );
      alter table public.${table} enable row level security;`);
  });
  afterAll(async () => {
    await sql.unsafe(`drop table if exists public.${table}`);
  });

  it('records a signed delivery without the function secret (401 without the feature)', async () => {
    const body = JSON.stringify(payload());
    const answer = await deliver(signed, body, await signedHeaders(body));
    expect(answer).toMatchObject({ status: 201, body: { recorded: true, duplicate: false } });
    // Rotation: a delivery signed with the other configured secret is taken too.
    const other = JSON.stringify(payload());
    expect((await deliver(signed, other, await signedHeaders(other, SECRET_B))).status).toBe(201);
    // The same signed delivery to a function without signing secrets: the bearer rules apply.
    expect(await deliver(unsigned, body, await signedHeaders(body))).toMatchObject({
      status: 401,
      body: { error: { message: expect.stringMatching(/missing bearer token/) } },
    });
  });

  it('refuses bad, old and unsigned deliveries with 401 saying why, and writes nothing', async () => {
    const before = await written();
    const body = JSON.stringify(payload());
    const refusals: Array<[Record<string, string>, string, RegExp]> = [
      [
        { 'content-type': 'application/json' },
        body,
        /^unsigned delivery: sign it \(Standard Webhooks/,
      ],
      [await signedHeaders(body), body.replace('INSERT', 'DELETE'), /no signature .* matches/],
      [await signedHeaders(body, secretOf('stranger')), body, /no signature .* matches/],
      [await signedHeaders(body, SECRET_A, now() - 301), body, /more than 300 s old/],
      // 305, not 301: 301 s ahead is within the window again once a second begins between
      // signing and delivering (it did, 1 run in 5 here).
      [await signedHeaders(body, SECRET_A, now() + 305), body, /in the future/],
      [
        { ...(await signedHeaders(body)), 'webhook-timestamp': String(now() + 1) },
        body,
        /no signature .* matches/,
      ],
      [
        { 'content-type': 'application/json', 'webhook-id': 'msg_x' },
        body,
        /missing header webhook-timestamp, webhook-signature/,
      ],
      // A valid bearer does not excuse a bad signature.
      [
        { ...auth, ...(await signedHeaders(body)), 'webhook-signature': 'v1,AAAA' },
        body,
        /matches/,
      ],
    ];
    for (const [headers, sent, message] of refusals) {
      const answer = await deliver(signed, sent, headers);
      expect(answer.status, JSON.stringify(answer.body)).toBe(401);
      expect(answer.body.error.message).toMatch(message);
    }
    expect(await written()).toEqual(before);
  });

  it('keeps taking native Database Webhook deliveries with the bearer secret', async () => {
    const answer = await deliver(signed, JSON.stringify(payload()), auth);
    expect(answer).toMatchObject({ status: 201, body: { recorded: true } });
    // /drain is never signed: a signature alone does not open it.
    const res = await signed.request('/webhook/drain', {
      method: 'POST',
      headers: await signedHeaders('{}'),
      body: '{}',
    });
    expect(res.status).toBe(401);
  });

  it('a configured tolerance narrows the replay window', async () => {
    const narrow = createWebhookApp({
      sql: fnSql,
      config: { ...config, webhookSigningSecrets: [SECRET_A], webhookSignatureToleranceSeconds: 5 },
      clock,
    });
    const body = JSON.stringify(payload());
    expect((await deliver(narrow, body, await signedHeaders(body, SECRET_A, now() - 60))).body)
      .toEqual({
        error: {
          message:
            'invalid signed delivery: webhook-timestamp is more than 5 s old (a replay is refused)',
        },
      });
  });
});

describe("the webhook function records each signed delivery's webhook-id", () => {
  const table = `${tag}_ids`;
  const watched = `${tag}_watched`;
  const templated = `${tag}_templated`;
  const later = `${tag}_later`;
  const jobType = uniqueJobType('signedids');
  const api = apiApp(sql, [jobType]);
  const clock = { now: () => new Date() };
  const app = createWebhookApp({
    sql: fnSql,
    config: { functionSecret: SECRET, serviceRoleKey: null, webhookSigningSecrets: [SECRET_A] },
    clock,
  });
  let n = 0;
  const payload = (on = table) => ({
    type: 'INSERT' as const,
    schema: 'public',
    table: on,
    record: { id: crypto.randomUUID(), title: `t${++n}` },
    old_record: null,
  });
  const duplicateReason = (id: string) =>
    `webhook-id ${id} was taken before: this delivery is acknowledged, not recorded again`;

  async function deliver(body: string, headers: Record<string, string>) {
    const res = await app.request('/webhook', { method: 'POST', headers, body });
    return { status: res.status, body: await res.json() };
  }

  async function signedAs(id: string, body: string, at = now()) {
    return {
      'content-type': 'application/json',
      ...(await signatureHeaders([SECRET_A], id, at, body)),
    };
  }

  /** The events a delivery to `on` made, from any source. */
  async function eventsOf(on = table) {
    const [row] = await sql<Array<{ n: number }>>`
      select count(*)::int as n from cesar.event_log
      where schema_name = 'public' and table_name = ${on}`;
    return row!.n;
  }

  async function recorded(id: string) {
    return (await sql`select 1 from cesar.webhook_deliveries where id = ${id}`).length === 1;
  }

  const createTable = (name: string) =>
    sql.unsafe(`
      create table public.${name} (
        id uuid primary key default gen_random_uuid(),
        title text not null,
        created_at timestamptz not null default now(),
        updated_at timestamptz not null default now()
      );
      alter table public.${name} enable row level security;`);

  beforeAll(async () => {
    for (const name of [table, watched, templated]) await createTable(name);
    await sql`select cesar.watch(${`public.${watched}`}::regclass)`;
  });
  afterAll(async () => {
    await sql`delete from cesar.workflow_templates where name like ${`${tag}%`}`;
    await sql`delete from cesar.job_queue where job_type = ${jobType}`;
    await sql`delete from cesar.webhook_deliveries where id like ${`${tag}%`}`;
    await sql.unsafe(
      `drop table if exists public.${table}, public.${watched}, public.${templated}, public.${later}`,
    );
  });

  it('takes a delivery once: its replay or retry is a 200 duplicate that records nothing', async () => {
    const change = payload();
    const body = JSON.stringify(change);
    const id = `${tag}_twice`;
    const at = now();
    const headers = await signedAs(id, body, at);
    const first = await deliver(body, headers);
    expect(first).toMatchObject({ status: 201, body: { recorded: true, duplicate: false } });
    expect(await eventsOf()).toBe(1);
    // The same attempt posted again (a replay within the window), and the sender's retry after
    // a lost answer: the same id, its own timestamp and signature.
    const replay = await deliver(body, headers);
    const retry = await deliver(body, await signedAs(id, body, at + 30));
    for (const answer of [replay, retry]) {
      expect(answer).toEqual({
        status: 200,
        body: {
          recorded: true,
          event_id: first.body.event_id,
          duplicate: true,
          reason: duplicateReason(id),
        },
      });
    }
    // What the payload digest alone missed: a sender that signs another body under the id.
    const other = JSON.stringify({ ...change, record: { ...change.record, title: 'other' } });
    expect(await deliver(other, await signedAs(id, other, at))).toEqual({
      status: 200,
      body: { recorded: false, event_id: null, duplicate: true, reason: duplicateReason(id) },
    });
    expect(await eventsOf()).toBe(1);
    // Each is in the ingestion log, the repeats as duplicates of no record.
    const logged = await sql<Array<{ record_count: number; duplicate: boolean }>>`
      select record_count, (details ->> 'duplicate')::boolean as duplicate
      from public.ingestion_log where details ->> 'webhook_id' = ${id} order by created_at`;
    expect(logged).toEqual([
      { record_count: 1, duplicate: false },
      { record_count: 0, duplicate: true },
      { record_count: 0, duplicate: true },
      { record_count: 0, duplicate: true },
    ]);
    // Kept until the first attempt could no longer verify: its timestamp + the tolerance.
    const [kept] = await sql<Array<{ expires: number }>>`
      select extract(epoch from expires_at)::int as expires
      from cesar.webhook_deliveries where id = ${id}`;
    expect(kept!.expires).toBe(at + 300);
  });

  it('takes one of 10 concurrent deliveries of one id, with one body or ten', async () => {
    for (const bodies of ['same', 'different']) {
      const id = `${tag}_ten_${bodies}`;
      const before = await eventsOf();
      const one = JSON.stringify(payload());
      const posts = await Promise.all(
        Array.from({ length: 10 }, async () => {
          const body = bodies === 'same' ? one : JSON.stringify(payload());
          return { body, headers: await signedAs(id, body) };
        }),
      );
      const answers = await Promise.all(posts.map((p) => deliver(p.body, p.headers)));
      expect(answers.map((a) => a.status).sort(), bodies).toEqual([...Array(9).fill(200), 201]);
      expect(answers.filter((a) => a.body.duplicate)).toHaveLength(9);
      expect(await eventsOf(), bodies).toBe(before + 1);
    }
  });

  it('takes two ids with one body; the payload digest makes the second a duplicate of its event', async () => {
    const body = JSON.stringify(payload());
    const first = await deliver(body, await signedAs(`${tag}_body_1`, body));
    const second = await deliver(body, await signedAs(`${tag}_body_2`, body));
    expect(first).toMatchObject({ status: 201, body: { duplicate: false } });
    // As a native delivery of the same payload is: no second event, no webhook-id reason.
    expect(second).toEqual({
      status: 200,
      body: {
        recorded: true,
        event_id: first.body.event_id,
        duplicate: true,
        processed: expect.any(Object),
      },
    });
    expect([await recorded(`${tag}_body_1`), await recorded(`${tag}_body_2`)]).toEqual([
      true,
      true,
    ]);
  });

  it('leaves the id of a delivery whose ingestion failed free: its retry is taken', async () => {
    // Failed in the recording statement: it inserts the id, then waits on the payload's
    // digest, held by an uncommitted event, and is cancelled there.
    const change = payload();
    const body = JSON.stringify(change);
    const id = `${tag}_cancelled`;
    const headers = await signedAs(id, body);
    const failed = await withRollback(sql, async (tx) => {
      await tx`insert into cesar.event_log (schema_name, table_name, op, source, dedup_key)
               values ('public', ${table}, 'INSERT', 'webhook', ${await payloadDigest(change)})`;
      const answer = deliver(body, headers);
      for (let i = 0;; i++) {
        const [waiting] = await sql<Array<{ pid: number }>>`
          select pid from pg_stat_activity
          where pid <> pg_backend_pid() and wait_event_type = 'Lock'
            and query like '%insert into cesar.webhook_deliveries%'`;
        if (waiting) {
          await sql`select pg_cancel_backend(${waiting.pid})`;
          break;
        }
        if (i > 500) throw new Error('the delivery never waited on the digest');
        await new Promise((r) => setTimeout(r, 10));
      }
      return await answer;
    });
    expect(failed.status).toBe(500);
    expect(await recorded(id)).toBe(false);
    expect(await deliver(body, headers)).toMatchObject({
      status: 201,
      body: { recorded: true, duplicate: false },
    });
    expect(await recorded(id)).toBe(true);

    // Refused before the statement: a table that does not exist yet (422), then does.
    const early = JSON.stringify(payload(later));
    const earlyHeaders = await signedAs(`${tag}_early`, early);
    expect(await deliver(early, earlyHeaders)).toMatchObject({
      status: 422,
      body: { error: { message: `unknown table public.${later}` } },
    });
    expect(await recorded(`${tag}_early`)).toBe(false);
    await createTable(later);
    expect(await deliver(early, earlyHeaders)).toMatchObject({ status: 201 });
    expect(await eventsOf(later)).toBe(1);
  });

  it("records the id of a watched table's delivery, which records no event", async () => {
    const body = JSON.stringify(payload(watched));
    const headers = await signedAs(`${tag}_watched`, body);
    expect(await deliver(body, headers)).toMatchObject({
      status: 200,
      body: { recorded: false, captured: true },
    });
    expect(await deliver(body, headers)).toEqual({
      status: 200,
      body: {
        recorded: false,
        captured: true,
        duplicate: true,
        reason: duplicateReason(`${tag}_watched`),
      },
    });
    expect(await eventsOf(watched)).toBe(0);
  });

  it('deletes ids past their replay window in the nightly prune; a repeat is then judged by its payload', async () => {
    const body = JSON.stringify(payload());
    const headers = await signedAs(`${tag}_pruned`, body);
    const first = await deliver(body, headers);
    await sql`update cesar.webhook_deliveries set expires_at = now() - interval '1 second'
              where id = ${`${tag}_pruned`}`;
    await sql`insert into cesar.webhook_deliveries (id, expires_at)
              values (${`${tag}_live`}, now() + interval '5 minutes')`;
    const pruneType = uniqueJobType('prune');
    const job = await enqueueJob(sql, pruneType, {});
    await drain(fnSql, { [pruneType]: maintenancePrune }, { jobTypes: [pruneType] });
    expect(await jobById(sql, job)).toMatchObject({
      status: 'completed',
      result: { complete: true, deleted: { webhook_deliveries: expect.any(Number) } },
    });
    expect([await recorded(`${tag}_pruned`), await recorded(`${tag}_live`)]).toEqual([
      false,
      true,
    ]);
    // Its id forgotten, the delivery is taken again: the event it made is found by digest.
    expect(await deliver(body, headers)).toMatchObject({
      status: 200,
      body: { recorded: true, event_id: first.body.event_id, duplicate: true },
    });
    expect(await recorded(`${tag}_pruned`)).toBe(true);
  });

  it('lets a signing secret record events of unwatched tables only, which start their templates and write no table', async () => {
    // A template watches its table; unwatched afterwards, it matches deliveries' events.
    const created = await call(api, 'POST', '/api/workflows', {
      name: `${tag} templated`,
      trigger: { type: 'database_event', table: `public.${templated}`, events: ['INSERT'] },
      actions: [{ type: 'enqueue_job', job_type: jobType, payload: { id: '{{record.id}}' } }],
    });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    // Watched (by the template): acknowledged, nothing recorded, nothing started.
    const ignored = payload(templated);
    const ignoredBody = JSON.stringify(ignored);
    expect(await deliver(ignoredBody, await signedAs(`${tag}_tpl_1`, ignoredBody)))
      .toMatchObject({ status: 200, body: { recorded: false, captured: true } });
    await sql`select cesar.unwatch(${`public.${templated}`}::regclass)`;
    const change = payload(templated);
    const body = JSON.stringify(change);
    expect(await deliver(body, await signedAs(`${tag}_tpl_2`, body))).toMatchObject({
      status: 201,
      body: { recorded: true },
    });
    await process(sql);
    const jobs = await sql`select payload from cesar.job_queue where job_type = ${jobType}`;
    expect(jobs.map((j) => j.payload)).toEqual([{ id: change.record.id }]);
    // The row it describes was never written: an event is all a delivery makes.
    expect(await sql.unsafe(`select 1 from public.${templated}`)).toHaveLength(0);
    // The machinery's tables and the system's are refused.
    for (const [schema, name] of [['cesar', 'job_queue'], ['cron', 'job']]) {
      const refused = JSON.stringify({ ...payload(), schema, table: name });
      const answer = await deliver(refused, await signedAs(`${tag}_${name}`, refused));
      expect(answer.status, JSON.stringify(answer.body)).toBe(422);
      expect(answer.body.error.message).toMatch(`events of ${schema}.${name} are refused: `);
    }
  });
});
