import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiApp } from '../packages/shared/src/api/app.ts';
import { loadConfig } from '../packages/shared/src/config.ts';
import {
  addressRefusal,
  type OutboundInit,
  type OutboundPolicy,
  outboundPolicy,
  OutboundRefusedError,
  outboundRequest,
  type ResolvedAddress,
  strictPolicy,
} from '../packages/shared/src/http/outbound.ts';
import { parseAllowList } from '../packages/shared/src/allow-list.ts';
import { httpRequest } from '../packages/shared/src/queue/handlers/http-request.ts';
import { builtInHandlers } from '../packages/shared/src/queue/handlers/index.ts';
import { enqueueJob } from '../packages/shared/src/queue/queries.ts';
import { bin, repoRoot } from '../scripts/lib/paths.ts';
import { run } from '../scripts/lib/run.ts';
import { DENO_PERMISSIONS } from '../scripts/local/functions.ts';
import { functionSql, testSql } from './helpers/db.ts';
import { drain, jobById, uniqueJobType } from './helpers/queue.ts';
import { call, SECRET } from './helpers/workflows.ts';

// The outbound guard (packages/shared/src/http/outbound.ts): every refusal is tried against a
// live listener where there can be one, so that without the guard the request would arrive.

const sql = testSql(undefined, 4);
// The functions' own pool: through the transaction pooler, as CESAR_DB_URL gives it.
const fnSql = functionSql(4, 'job-drain');
const tag = `o${Date.now().toString(36)}`;
const env = {
  SUPABASE_DB_URL: 'postgresql://postgres:postgres@127.0.0.1:54322/postgres',
  CESAR_FUNCTION_SECRET: 'a'.repeat(32),
};

interface Seen {
  port: number;
  method: string;
  path: string;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/**
 * A listener that records what reaches it. `/redirect/<status>?to=<url>` answers with that
 * redirect, `/chain/<n>` redirects n more times to itself, `/hang` never finishes its answer,
 * `/big` answers a megabyte, anything else answers 200.
 */
async function listener(host: string, seen: Seen[]) {
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (d) => (body += d));
    req.on('end', () => {
      const port = (server.address() as AddressInfo).port;
      seen.push({ port, method: req.method!, path: req.url!, headers: req.headers, body });
      const url = new URL(req.url!, 'http://x');
      const redirect = /^\/redirect\/(\d+)$/.exec(url.pathname);
      const chain = /^\/chain\/(\d+)$/.exec(url.pathname);
      if (url.pathname === '/hang') res.writeHead(200).write('partial');
      else if (url.pathname === '/big') res.writeHead(200).end('x'.repeat(1_000_000));
      else if (redirect) {
        res.writeHead(Number(redirect[1]), { location: url.searchParams.get('to')! }).end();
      } else if (chain && Number(chain[1]) > 0) {
        res.writeHead(302, { location: `/chain/${Number(chain[1]) - 1}` }).end();
      } else res.writeHead(200, { 'content-type': 'text/plain' }).end(`hello from ${port}`);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  afterAll(() =>
    new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    })
  );
  return (server.address() as AddressInfo).port;
}

const get: OutboundInit = { method: 'GET', headers: {} };

/** A resolver that knows only the names it is given. */
function resolver(names: Record<string, string[]>) {
  const asked: string[] = [];
  const resolve = (hostname: string): Promise<ResolvedAddress[]> => {
    asked.push(hostname);
    const addresses = names[hostname];
    if (!addresses) return Promise.reject(new Error(`getaddrinfo ENOTFOUND ${hostname}`));
    return Promise.resolve(
      addresses.map((address) => ({ address, family: address.includes(':') ? 6 : 4 })),
    );
  };
  return { resolve, asked };
}

async function refusal(policy: OutboundPolicy, url: string, init: OutboundInit = get) {
  // Without the guard a request to an address nobody answers would hang: cut it short.
  const signal = AbortSignal.timeout(3_000);
  const err = await outboundRequest(policy, url, { ...init, signal }).then(
    (answer) => new Error(`not refused: answered ${answer.status}`),
    (err: unknown) => err,
  );
  expect(err).toBeInstanceOf(OutboundRefusedError);
  return (err as Error).message;
}

describe('addressRefusal', () => {
  it.each([
    ['127.0.0.1', /^loopback \(127\.0\.0\.0\/8\)$/],
    ['127.255.0.9', /^loopback/],
    ['0.0.0.0', /^unspecified/],
    ['10.0.0.1', /^private \(10\.0\.0\.0\/8\)$/],
    ['172.16.0.1', /^private \(172\.16\.0\.0\/12\)$/],
    ['172.31.255.255', /^private \(172\.16/],
    ['192.168.1.1', /^private \(192\.168/],
    ['169.254.169.254', /^link-local, the cloud metadata service/],
    ['100.64.0.1', /^carrier-grade NAT/],
    ['224.0.0.1', /^multicast/],
    ['255.255.255.255', /^reserved or broadcast/],
    ['::', /^unspecified \(::\)$/],
    ['::1', /^loopback \(::1\)$/],
    ['[::1]', /^loopback \(::1\)$/],
    ['0:0:0:0:0:0:0:1', /^loopback \(::1\)$/],
    ['::ffff:127.0.0.1', /^IPv4-mapped loopback/],
    ['::ffff:7f00:1', /^IPv4-mapped loopback/],
    ['::ffff:a9fe:a9fe', /^IPv4-mapped link-local/],
    ['::ffff:0:a00:1', /^IPv4-translated private/],
    ['64:ff9b::a9fe:a9fe', /^NAT64 link-local/],
    ['2002:7f00:1::', /^6to4 loopback/],
    ['::7f00:1', /^IPv4-compatible/],
    ['fc00::1', /^unique local/],
    ['fd12:3456::1', /^unique local/],
    ['fe80::1', /^link-local \(fe80/],
    ['fe80::1%eth0', /^link-local \(fe80/],
    ['ff02::1', /^multicast/],
    ['192.0.2.10', /^reserved for documentation/],
    ['198.51.100.7', /^reserved for documentation/],
    ['203.0.113.1', /^reserved for documentation/],
    ['198.19.255.1', /^reserved for benchmarking/],
    ['192.0.0.8', /^reserved for protocol assignments/],
    ['64:ff9b:1::a00:1', /^local-use NAT64/],
    ['100::1', /^discard-only/],
    ['2001:0:4136:e378:8000:63bf:3fff:fdd2', /^a Teredo tunnel/],
    ['2001:db8::1', /^reserved for documentation/],
    ['not-an-address', /^not an IP address$/],
  ])('refuses %s', (address, reason) => {
    expect(addressRefusal(address)).toMatch(reason);
  });

  it.each([
    '93.184.216.34',
    '8.8.8.8',
    '172.32.0.1',
    '100.128.0.1',
    '169.255.0.1',
    '2606:4700:4700::1111',
    '::ffff:8.8.8.8',
    '64:ff9b::808:808',
    '2002:808:808::1',
    '198.20.0.1',
    '2001:4860:4860::8888',
  ])('lets the public address %s through', (address) => {
    expect(addressRefusal(address)).toBeNull();
  });
});

describe('CESAR_HTTP_ALLOW', () => {
  it('reads host and host:port entries, as the URL parser writes hosts', () => {
    expect(parseAllowList(' Hooks.Internal , 10.0.0.5:8080,[FD00::1]:443,2130706433,, ')).toEqual([
      { host: 'hooks.internal' },
      { host: '10.0.0.5', port: 8080 },
      { host: '[fd00::1]', port: 443 },
      { host: '127.0.0.1' },
    ]);
    expect(parseAllowList('')).toEqual([]);
  });

  it('names a malformed entry, at start-up', () => {
    for (
      const bad of ['http://a.example', 'a.example/path', 'a.example:0', 'a.example:70000', '*']
    ) {
      expect(() => parseAllowList(`ok.example,${bad}`)).toThrow(
        `"${bad}" is not host or host:port`,
      );
    }
    expect(() => loadConfig({ ...env, CESAR_HTTP_ALLOW: 'a.example:x' })).toThrow(
      /CESAR_HTTP_ALLOW: "a\.example:x" is not host or host:port/,
    );
    expect(loadConfig({ ...env, CESAR_HTTP_ALLOW: '127.0.0.1:54321' }).httpAllow).toEqual([
      { host: '127.0.0.1', port: 54321 },
    ]);
    expect(loadConfig(env).httpAllow).toEqual([]);
  });
});

describe('outboundRequest', () => {
  const seen: Seen[] = [];
  let port: number;
  let other: number;
  let port6: number;
  const reached = () => seen.length;

  beforeAll(async () => {
    port = await listener('127.0.0.1', seen);
    other = await listener('127.0.0.1', seen);
    port6 = await listener('::1', seen);
  });

  it.each([
    ['127.0.0.1', (p: number) => `http://127.0.0.1:${p}/`, '127.0.0.1 is loopback (127.0.0.0/8)'],
    ['localhost', (p: number) => `http://localhost:${p}/`, 'localhost is a loopback name'],
    ['localhost.', (p: number) => `http://LOCALHOST.:${p}/`, 'localhost. is a loopback name'],
    ['a.localhost', (p: number) => `http://a.localhost:${p}/`, 'a.localhost is a loopback name'],
    ['0.0.0.0', (p: number) => `http://0.0.0.0:${p}/`, '0.0.0.0 is unspecified'],
    ['2130706433', (p: number) => `http://2130706433:${p}/`, '127.0.0.1 is loopback'],
    ['0x7f000001', (p: number) => `http://0x7f000001:${p}/`, '127.0.0.1 is loopback'],
    ['0x7f.1', (p: number) => `http://0x7f.1:${p}/`, '127.0.0.1 is loopback'],
    ['0177.0.0.1', (p: number) => `http://0177.0.0.1:${p}/`, '127.0.0.1 is loopback'],
    [
      '[::ffff:127.0.0.1]',
      (p: number) => `http://[::ffff:127.0.0.1]:${p}/`,
      '[::ffff:7f00:1] is IPv4-mapped loopback',
    ],
  ])('refuses %s on a live listener, which hears nothing', async (_, url, reason) => {
    const before = reached();
    expect(await refusal(strictPolicy, url(port))).toContain(reason);
    expect(reached()).toBe(before);
  });

  it('refuses [::1] on a live listener', async () => {
    const before = reached();
    expect(await refusal(strictPolicy, `http://[::1]:${port6}/`)).toBe(
      `refused http://[::1]:${port6}/: [::1] is loopback (::1)`,
    );
    expect(reached()).toBe(before);
  });

  it('refuses the metadata service and private addresses', async () => {
    expect(await refusal(strictPolicy, 'http://169.254.169.254/latest/meta-data/')).toBe(
      'refused http://169.254.169.254/latest/meta-data/: 169.254.169.254 is link-local, ' +
        'the cloud metadata service among them (169.254.0.0/16)',
    );
    expect(await refusal(strictPolicy, 'http://10.0.0.1/')).toContain(
      '10.0.0.1 is private (10.0.0.0/8)',
    );
    expect(await refusal(strictPolicy, 'https://[fd00::1]/')).toContain('unique local');
  });

  it('refuses credentials in the URL even on an allowed host, without repeating them', async () => {
    const before = reached();
    const allowed = { allow: parseAllowList(`127.0.0.1:${port}`) };
    const message = await refusal(allowed, `http://user:hunter2@127.0.0.1:${port}/`);
    expect(message).toBe(
      `refused http://127.0.0.1:${port}/: credentials in the URL are not allowed ` +
        '(send them in a header from an outbound_ setting)',
    );
    expect(await refusal(allowed, `http://token@127.0.0.1:${port}/`)).toMatch(/credentials/);
    expect(reached()).toBe(before);
  });

  it('refuses schemes other than http and https', async () => {
    expect(await refusal(strictPolicy, 'file:///etc/passwd')).toBe(
      'refused file:///etc/passwd: scheme file: is not allowed, only http: and https:',
    );
    expect(await refusal(strictPolicy, 'ftp://ftp.example.com/x')).toMatch(/scheme ftp:/);
  });

  it('refuses a public-looking name that resolves to a refused address, any one of them', async () => {
    const before = reached();
    const { resolve } = resolver({
      'public.example': ['127.0.0.1'],
      'mixed.example': ['93.184.216.34', '10.1.2.3'],
      'v6.example': ['::ffff:169.254.169.254'],
    });
    expect(await refusal({ allow: [], resolve }, `http://public.example:${port}/`)).toBe(
      `refused http://public.example:${port}/: public.example resolves to 127.0.0.1, ` +
        'loopback (127.0.0.0/8)',
    );
    expect(await refusal({ allow: [], resolve }, 'https://mixed.example/')).toContain(
      'mixed.example resolves to 10.1.2.3, private (10.0.0.0/8)',
    );
    expect(await refusal({ allow: [], resolve }, 'https://v6.example/')).toContain(
      'IPv4-mapped link-local',
    );
    expect(reached()).toBe(before);
  });

  it("refuses the project's own gateway by name", async () => {
    const policy = outboundPolicy({ httpAllow: [], supabaseUrl: 'https://abc.supabase.co' });
    expect(await refusal(policy, 'https://ABC.supabase.co/rest/v1/secrets')).toContain(
      "abc.supabase.co is this project's own gateway (SUPABASE_URL)",
    );
    // The fully qualified spelling is the same host.
    expect(await refusal(policy, 'https://abc.supabase.co./rest/v1/secrets')).toContain(
      "this project's own gateway",
    );
  });

  it('reaches an allowed host, connected to the address it checked', async () => {
    // pinned.invalid resolves nowhere but here: an answer proves the connection went to the
    // checked address, and the resolver is asked once.
    const { resolve, asked } = resolver({ 'pinned.invalid': ['127.0.0.1'] });
    const policy = { allow: parseAllowList(`pinned.invalid:${port}`), resolve };
    const answer = await outboundRequest(policy, `http://pinned.invalid:${port}/x`, get);
    expect(answer).toMatchObject({ status: 200, text: `hello from ${port}` });
    expect(seen.at(-1)).toMatchObject({ path: '/x', headers: { host: `pinned.invalid:${port}` } });
    expect(asked).toEqual(['pinned.invalid']);
    // The entry names a port: another is refused.
    expect(await refusal(policy, `http://pinned.invalid:${other}/`)).toMatch(/loopback/);
  });

  it('pins the connection under Deno too', async () => {
    const result = await run(bin('deno'), [
      'run',
      ...DENO_PERMISSIONS,
      '--no-prompt',
      path.join(repoRoot, 'tests/fixtures/outbound-pinning.ts'),
    ], { cwd: repoRoot, env: { ...process.env, NO_COLOR: '1' } });
    const outcome = JSON.parse(result.stdout.trim().split('\n').at(-1)!);
    expect(outcome).toMatchObject({
      status: 200,
      host: expect.stringMatching(/^pinned\.invalid:\d+$/),
      resolved: ['pinned.invalid', 'public.invalid'],
      refused: expect.stringMatching(/public\.invalid resolves to 127\.0\.0\.1, loopback/),
    });
  }, 120_000);

  it("gives up when its signal says so, with the signal's reason, and keeps 64 KiB", async () => {
    const allowed = { allow: parseAllowList(`127.0.0.1:${port}`) };
    const hung = outboundRequest(allowed, `http://127.0.0.1:${port}/hang`, {
      ...get,
      signal: AbortSignal.timeout(300),
    });
    await expect(hung).rejects.toThrow(expect.objectContaining({ name: 'TimeoutError' }));
    const big = await outboundRequest(allowed, `http://127.0.0.1:${port}/big`, get);
    expect(big.text).toBe('x'.repeat(64 * 1024));
  });

  it('gives up on a name whose lookup never answers when its signal says so', async () => {
    const policy = { allow: [], resolve: () => new Promise<ResolvedAddress[]>(() => {}) };
    const stuck = outboundRequest(policy, 'https://slow-dns.invalid/', {
      ...get,
      signal: AbortSignal.timeout(200),
    });
    await expect(stuck).rejects.toThrow(expect.objectContaining({ name: 'TimeoutError' }));
  });

  describe('redirects', () => {
    const allowed = () => ({ allow: parseAllowList(`127.0.0.1:${port}`) });
    const from = (status: number, to: string) =>
      `http://127.0.0.1:${port}/redirect/${status}?to=${encodeURIComponent(to)}`;

    it('checks every hop: a redirect from an allowed listener to a refused one is refused', async () => {
      const before = seen.filter((s) => s.port === other).length;
      expect(await refusal(allowed(), from(302, `http://127.0.0.1:${other}/`))).toBe(
        `refused http://127.0.0.1:${other}/: 127.0.0.1 is loopback (127.0.0.0/8)`,
      );
      expect(seen.filter((s) => s.port === other)).toHaveLength(before);
      expect(await refusal(allowed(), from(307, 'http://169.254.169.254/'))).toMatch(
        /cloud metadata/,
      );
      // Allowed by address, not by name.
      expect(await refusal(allowed(), from(301, `http://localhost:${port}/`))).toMatch(
        /loopback name/,
      );
      expect(await refusal(allowed(), from(308, 'file:///etc/passwd'))).toMatch(/scheme file:/);
      expect(await refusal(allowed(), from(302, `http://u:p@127.0.0.1:${port}/`))).toMatch(
        /credentials/,
      );
    });

    it(`follows at most 5`, async () => {
      const five = await outboundRequest(allowed(), `http://127.0.0.1:${port}/chain/5`, get);
      expect(five).toMatchObject({ status: 200, url: `http://127.0.0.1:${port}/chain/0` });
      expect(await refusal(allowed(), `http://127.0.0.1:${port}/chain/6`)).toBe(
        `refused http://127.0.0.1:${port}/chain/1: more than 5 redirects`,
      );
    });

    it('keeps secrets to their origin and turns a POST into a GET on 303', async () => {
      const both = { allow: parseAllowList(`127.0.0.1:${port},127.0.0.1:${other}`) };
      const init = {
        method: 'POST',
        headers: {
          Authorization: 'Bearer a',
          'X-Api-Key': 'k',
          'X-Plain': 'p',
          'Content-Type': 'text/plain',
        },
        body: 'payload',
        sensitiveHeaders: ['X-Api-Key'],
      };
      await outboundRequest(both, from(307, `http://127.0.0.1:${port}/same`), init);
      expect(seen.at(-1)).toMatchObject({
        method: 'POST',
        path: '/same',
        body: 'payload',
        headers: { authorization: 'Bearer a', 'x-api-key': 'k', 'x-plain': 'p' },
      });
      await outboundRequest(both, from(307, `http://127.0.0.1:${other}/elsewhere`), init);
      const elsewhere = seen.at(-1)!;
      expect(elsewhere).toMatchObject({ method: 'POST', path: '/elsewhere', body: 'payload' });
      expect(elsewhere.headers).toMatchObject({ 'x-plain': 'p' });
      expect(elsewhere.headers.authorization).toBeUndefined();
      expect(elsewhere.headers['x-api-key']).toBeUndefined();
      await outboundRequest(both, from(303, `http://127.0.0.1:${port}/see-other`), init);
      expect(seen.at(-1)).toMatchObject({ method: 'GET', path: '/see-other', body: '' });
      expect(seen.at(-1)!.headers['content-type']).toBeUndefined();
    });
  });
});

describe('http.request jobs', () => {
  // A job type of this file's own runs the real handler, so no other file's drain takes these
  // jobs (and judges them by another allow-list).
  const jobType = uniqueJobType('outbound');
  const seen: Seen[] = [];
  let port: number;
  let allowed: OutboundPolicy;

  beforeAll(async () => {
    port = await listener('127.0.0.1', seen);
    allowed = { allow: parseAllowList(`127.0.0.1:${port}`) };
    await sql`
      insert into cesar.local_settings (name, value)
      values (${`outbound_${tag}`}, 'meant-for-hooks'), (${`leak_${tag}`}, 'never-sent')`;
  });
  afterAll(async () => {
    await sql`delete from cesar.local_settings where name in (${`outbound_${tag}`}, ${`leak_${tag}`})`;
  });

  async function runJob(payload: Record<string, unknown>, outbound: OutboundPolicy) {
    const id = await enqueueJob(sql, jobType, payload);
    await drain(fnSql, { [jobType]: httpRequest }, { jobTypes: [jobType] }, { outbound });
    return await jobById(sql, id);
  }

  it('an allowed target works end to end, with an outbound_ secret', async () => {
    const job = await runJob({
      url: `http://127.0.0.1:${port}/hook`,
      headers: { Authorization: { secret: `outbound_${tag}`, prefix: 'Bearer ' } },
      body: { hello: 'world' },
    }, allowed);
    expect(job).toMatchObject({
      status: 'completed',
      result: { status: 200, body: `hello from ${port}` },
    });
    expect(seen.at(-1)).toMatchObject({
      path: '/hook',
      headers: {
        authorization: 'Bearer meant-for-hooks',
        'idempotency-key': `cesar-job-${job.id}`,
      },
      body: '{"hello":"world"}',
    });
  });

  it('a refused target fails the job at once, naming the reason', async () => {
    const before = seen.length;
    const job = await runJob({ url: `http://127.0.0.1:${port}/hook` }, strictPolicy);
    expect(job).toMatchObject({
      status: 'failed',
      attempts: 1,
      last_error: `http.request: refused http://127.0.0.1:${port}/hook: ` +
        '127.0.0.1 is loopback (127.0.0.0/8)',
    });
    expect(job.errors).toEqual([expect.objectContaining({ kind: 'permanent' })]);
    expect(seen.length).toBe(before);
  });

  it('a redirect to a refused target fails the job at once', async () => {
    const to = encodeURIComponent('http://169.254.169.254/latest/meta-data/');
    const job = await runJob({ url: `http://127.0.0.1:${port}/redirect/302?to=${to}` }, allowed);
    expect(job).toMatchObject({
      status: 'failed',
      attempts: 1,
      last_error: expect.stringMatching(
        /^http\.request: refused http:\/\/169\.254\.169\.254\/latest\/meta-data\/: .*metadata/,
      ),
    });
  });

  it('credentials in the URL fail the job at once and are not written to its errors', async () => {
    const job = await runJob({ url: `http://admin:hunter2@127.0.0.1:${port}/` }, allowed);
    expect(job).toMatchObject({ status: 'failed', attempts: 1 });
    expect(job.last_error).toMatch(/credentials in the URL are not allowed/);
    expect(JSON.stringify(job.errors)).not.toContain('hunter2');
  });

  it('a header naming a setting that is not outbound_* fails the job at once', async () => {
    const before = seen.length;
    for (const secret of [`leak_${tag}`, 'cesar_function_secret', 'service_role_key']) {
      const job = await runJob({
        url: `http://127.0.0.1:${port}/hook`,
        headers: { Authorization: { secret, prefix: 'Bearer ' } },
      }, allowed);
      expect(job).toMatchObject({
        status: 'failed',
        attempts: 1,
        last_error: `http.request: invalid payload: headers.Authorization.secret: "${secret}" ` +
          'may not be sent: only settings named outbound_<name> (lower case) are read for ' +
          'outbound headers',
      });
    }
    expect(seen.length).toBe(before);
  });
});

describe('template saves', () => {
  const api = createApiApp({
    sql: fnSql,
    mirror: null,
    config: {
      functionSecret: SECRET,
      serviceRoleKey: null,
      dbPoolMax: 4,
      httpAllow: parseAllowList('10.9.8.7:8080'),
      supabaseUrl: 'https://abc.supabase.co',
    },
    clock: { now: () => new Date() },
    applicationName: 'test',
    jobTypes: Object.keys(builtInHandlers),
  });
  afterAll(async () => {
    await sql`delete from cesar.workflow_templates where name like ${`${tag}%`}`;
  });

  const save = (name: string, action: Record<string, unknown>) =>
    call(api, 'POST', '/api/workflows', {
      name: `${tag} ${name}`,
      trigger: { type: 'manual' },
      actions: [{ type: 'http_request', url: 'https://hooks.example.com/ok' }, {
        type: 'http_request',
        ...action,
      }],
    });

  it.each([
    ['http://127.0.0.1:8080/', /127\.0\.0\.1 is loopback/],
    ['http://localhost/', /localhost is a loopback name/],
    ['http://[::1]/', /\[::1\] is loopback/],
    ['http://0.0.0.0/', /0\.0\.0\.0 is unspecified/],
    ['http://2130706433/', /127\.0\.0\.1 is loopback/],
    ['http://0x7f000001/', /127\.0\.0\.1 is loopback/],
    ['http://169.254.169.254/latest/meta-data/', /cloud metadata/],
    ['http://10.0.0.1/', /private/],
    ['http://10.9.8.7/', /private/],
    ['http://[::ffff:127.0.0.1]/', /IPv4-mapped loopback/],
    ['http://user:pass@hooks.example.com/', /credentials in the URL/],
    ['https://{{record.user}}@hooks.example.com/', /credentials in the URL/],
    ['https://abc.supabase.co/functions/v1/api', /own gateway/],
    ['https://abc.supabase.co./functions/v1/api', /own gateway/],
    ['http://[zz/', /must be a valid URL/],
  ])('refuses %s with a 400 naming actions.1.url', async (url, reason) => {
    const res = await save(`refused ${url}`, { url });
    expect(res.status).toBe(400);
    expect(res.body.error.issues).toEqual([
      { path: 'actions.1.url', message: expect.stringMatching(reason) },
    ]);
  });

  it('refuses a header naming a setting that is not outbound_*', async () => {
    const res = await save('leaky', {
      url: 'https://hooks.example.com/',
      headers: { Authorization: { secret: 'cesar_function_secret', prefix: 'Bearer ' } },
    });
    expect(res.status).toBe(400);
    expect(res.body.error.issues).toEqual([{
      path: 'actions.1.headers.Authorization.secret',
      message: expect.stringMatching(/"cesar_function_secret" may not be sent/),
    }]);
  });

  it('refuses headers that would redirect or reframe the request (Host, Content-Length...)', async () => {
    for (
      const name of [
        'Host',
        'content-length',
        'Transfer-Encoding',
        'Connection',
        'Proxy-Authorization',
      ]
    ) {
      const res = await save(`framed ${name}`, {
        url: 'https://hooks.example.com/',
        headers: { [name]: 'abc.supabase.co' },
      });
      expect(res.status, name).toBe(400);
      expect(JSON.stringify(res.body.error.issues), name).toMatch(/is set by the request itself/);
    }
  });

  it('accepts public names (no DNS at save time), placeholders in the host, allowed hosts', async () => {
    for (
      const [i, url] of [
        'https://does-not-resolve.invalid/hook',
        'https://{{record.host}}/hook',
        'https://hooks.example.com/{{record.id}}',
        'http://10.9.8.7:8080/hook',
      ].entries()
    ) {
      const res = await save(`accepted ${i}`, {
        url,
        headers: { Authorization: { secret: 'outbound_hook_token', prefix: 'Bearer ' } },
      });
      expect({ url, status: res.status }).toEqual({ url, status: 201 });
    }
  });
});
