import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parse } from 'smol-toml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { repoRoot } from '../scripts/lib/paths.ts';
import { functionSettings, readFunctionSettings } from '../scripts/local/config-toml.ts';
import { checkVerifyJwt, loadGatewayAuth } from '../scripts/local/gateway-auth.ts';
import { serverPort, startGateway } from '../scripts/local/gateway.ts';
import { signJwt } from '../scripts/local/jwt.ts';
import { localKeys } from '../scripts/local/keys.ts';

let upstream: http.Server;
let gateway: http.Server;
let base: string;

beforeAll(async () => {
  upstream = http.createServer((req, res) => {
    let body = '';
    req.on('data', (d) => (body += d));
    req.on('end', () => {
      res.writeHead(201, { 'content-type': 'application/json', 'x-upstream': '1' });
      res.end(
        JSON.stringify({ method: req.method, url: req.url, auth: req.headers.authorization, body }),
      );
    });
  });
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', () => r()));
  const upstreamPort = serverPort(upstream);
  gateway = await startGateway({
    port: 0,
    functionPort: (name) => (name === 'api' ? upstreamPort : undefined),
  });
  base = `http://127.0.0.1:${serverPort(gateway)}`;
});

afterAll(() => {
  gateway.closeAllConnections();
  gateway.close();
  upstream.closeAllConnections();
  upstream.close();
});

describe('local functions gateway', () => {
  it('routes /functions/v1/<name>/<rest> to the function as /<name>/<rest>, body and headers intact', async () => {
    const res = await fetch(`${base}/functions/v1/api/jobs/retry?x=1`, {
      method: 'POST',
      headers: { authorization: 'Bearer t' },
      body: '{"ids":[1]}',
    });
    expect(res.status).toBe(201);
    expect(res.headers.get('x-upstream')).toBe('1');
    expect(await res.json()).toEqual({
      method: 'POST',
      url: '/api/jobs/retry?x=1',
      auth: 'Bearer t',
      body: '{"ids":[1]}',
    });
  });

  it('lets the function finish a request whose client hung up after sending it all, and stops one sent in part', async () => {
    // A function that answers after 600 ms and says whether its answer went out whole.
    const finished = new Map<string, boolean>();
    const slow = http.createServer((req, res) => {
      req.resume();
      res.on('close', () => finished.set(req.url!, res.writableFinished));
      setTimeout(() => res.destroyed || res.end('done'), 600);
    });
    await new Promise<void>((r) => slow.listen(0, '127.0.0.1', () => r()));
    const gw = await startGateway({ port: 0, functionPort: () => serverPort(slow) });
    try {
      const requests = {
        get: 'GET /functions/v1/api/get HTTP/1.1\r\nHost: a\r\n\r\n',
        delete: 'DELETE /functions/v1/api/delete HTTP/1.1\r\nHost: a\r\n\r\n',
        post0: 'POST /functions/v1/api/post0 HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n',
        post2: 'POST /functions/v1/api/post2 HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\n{}',
        part: 'POST /functions/v1/api/part HTTP/1.1\r\nHost: a\r\nContent-Length: 9\r\n\r\n{}',
      };
      await Promise.all(
        Object.values(requests).map(async (text) => {
          const socket = net.connect(serverPort(gw), '127.0.0.1');
          socket.on('error', () => {});
          socket.write(text);
          await new Promise((r) => setTimeout(r, 200));
          socket.destroy();
        }),
      );
      await new Promise((r) => setTimeout(r, 1_000));
      expect(Object.fromEntries(finished)).toEqual({
        '/api/get': true,
        '/api/delete': true,
        '/api/post0': true,
        '/api/post2': true,
        '/api/part': false,
      });
    } finally {
      gw.closeAllConnections();
      gw.close();
      slow.closeAllConnections();
      slow.close();
    }
  });

  it('answers 404 in the error shape for unknown functions and paths', async () => {
    for (const path of ['/functions/v1/nope/health', '/elsewhere']) {
      const res = await fetch(base + path);
      expect(res.status).toBe(404);
      expect((await res.json()).error.message).toMatch(/not served here|no route/);
    }
  });

  it("serves the dashboard's files and answers 404 for any other name, prototype names included", async () => {
    expect((await fetch(`${base}/dashboard/app.js`)).status).toBe(200);
    for (
      const name of ['constructor', '__proto__', 'toString', 'hasOwnProperty', '..%2Fpackage.json']
    ) {
      const res = await fetch(`${base}/dashboard/${name}`);
      expect(res.status, name).toBe(404);
      const text = await res.text();
      expect(text, name).not.toContain(repoRoot);
      expect(JSON.parse(text).error.message).toMatch(/no dashboard file/);
    }
  });
});

// verify_jwt as hosted applies it (scripts/local/gateway-auth.ts says what and why), on a
// gateway pointed at a config.toml of the test's own.
describe('verify_jwt at the gateway', () => {
  const keys = localKeys({});
  const secret = keys.SUPABASE_JWT_SECRET;
  const [publishable] = Object.values(JSON.parse(keys.SUPABASE_PUBLISHABLE_KEYS)) as string[];
  const [secretKey] = Object.values(JSON.parse(keys.SUPABASE_SECRET_KEYS)) as string[];
  const now = Math.floor(Date.now() / 1000);
  const user = signJwt({ role: 'authenticated', sub: 'u1', iat: now, exp: now + 3600 }, secret);
  let hits: string[] = [];
  let echo: http.Server;
  let guarded: http.Server;
  let failClosed: http.Server;
  let url: string;
  let closedUrl: string;

  beforeAll(async () => {
    const config = path.join(tmpdir(), `cesar-gateway-${process.pid}-${Date.now()}.toml`);
    await writeFile(
      config,
      [
        '[functions.open]',
        'verify_jwt = false',
        '',
        '[functions."guarded"] # quoted, as the CLI writes some names',
        'verify_jwt = true',
        '# [functions.plain] has no entry: verify_jwt is on by default',
      ].join('\n'),
    );
    echo = http.createServer((req, res) => {
      hits.push(`${req.method} ${req.url}`);
      req.resume();
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ reached: true, auth: req.headers.authorization ?? null }));
    });
    await new Promise<void>((r) => echo.listen(0, '127.0.0.1', () => r()));
    const functionPort = () => serverPort(echo);
    guarded = await startGateway({
      port: 0,
      functionPort,
      auth: loadGatewayAuth({ configPath: config, env: { ...keys } }),
    });
    // The same gateway without the project's JWT secret: no JWT can be valid.
    failClosed = await startGateway({
      port: 0,
      functionPort,
      auth: loadGatewayAuth({ configPath: config, env: {} }),
    });
    await rm(config);
    url = `http://127.0.0.1:${serverPort(guarded)}/functions/v1`;
    closedUrl = `http://127.0.0.1:${serverPort(failClosed)}/functions/v1`;
  });

  afterAll(() => {
    for (const server of [guarded, failClosed, echo]) {
      server.closeAllConnections();
      server.close();
    }
  });

  async function call(fn: string, headers: Record<string, string>, method = 'GET', base = url) {
    hits = [];
    const res = await fetch(`${base}/${fn}/hello`, { method, headers });
    return { status: res.status, code: res.headers.get('sb-error-code'), body: await res.json() };
  }
  const passes = { status: 200, code: null, body: expect.objectContaining({ reached: true }) };
  const refused = (message: string, code: string) => ({
    status: 401,
    code,
    body: { code: 401, message },
  });

  it('lets a valid JWT signed with the project secret through, Authorization intact', async () => {
    const res = await call('guarded', { authorization: `Bearer ${user}` });
    expect(res).toEqual(passes);
    expect(res.body.auth).toBe(`Bearer ${user}`);
    for (const key of [keys.SUPABASE_ANON_KEY, keys.SUPABASE_SERVICE_ROLE_KEY]) {
      expect(await call('guarded', { authorization: `Bearer ${key}` })).toEqual(passes);
    }
  });

  it('refuses with 401 and hosted body: missing, expired, bad signature, other secret', async () => {
    const expired = signJwt({ role: 'authenticated', iat: now - 7200, exp: now - 3600 }, secret);
    const [h, p, sig] = user.split('.') as [string, string, string];
    const forged = Buffer.from(JSON.stringify({ role: 'service_role', exp: now + 3600 }))
      .toString('base64url');
    const notYet = signJwt({ role: 'authenticated', nbf: now + 600, exp: now + 3600 }, secret);
    const otherProject = signJwt({ role: 'authenticated' }, 'another-project-secret-0123456789');
    const legacy = 'UNAUTHORIZED_LEGACY_JWT';
    const format = 'UNAUTHORIZED_INVALID_JWT_FORMAT';
    const cases: Array<[Record<string, string>, string, string]> = [
      [{}, 'Missing authorization header', 'UNAUTHORIZED_NO_AUTH_HEADER'],
      [{ authorization: `Bearer ${expired}` }, 'Invalid JWT', legacy],
      [{ authorization: `Bearer ${h}.${forged}.${sig}` }, 'Invalid JWT', legacy],
      [{ authorization: `Bearer ${h}.${p}.${sig.slice(1)}` }, 'Invalid JWT', legacy],
      [{ authorization: `Bearer ${otherProject}` }, 'Invalid JWT', legacy],
      [{ authorization: `Bearer ${notYet}` }, 'Invalid JWT', legacy],
      [
        { authorization: `Bearer ${jwtWithHeader({ alg: 'none' }, 'c2ln')}` },
        'Invalid JWT',
        'UNAUTHORIZED_UNSUPPORTED_TOKEN_ALGORITHM',
      ],
      [
        { authorization: `Bearer ${jwtWithHeader({ alg: 'ES256', kid: 'k' }, 'c2ln')}` },
        'Invalid JWT',
        'UNAUTHORIZED_ASYMMETRIC_JWT',
      ],
      [{ authorization: `Basic ${btoa('u:p')}` }, 'Invalid JWT', format],
      [{ authorization: 'Bearer' }, 'Invalid JWT', format],
      [{ authorization: 'Bearer not-a-jwt' }, 'Invalid JWT', format],
      [{ authorization: 'Bearer a.b.c' }, 'Invalid JWT', format],
    ];
    for (const [headers, message, code] of cases) {
      const res = await call('guarded', headers);
      expect(res, JSON.stringify(headers)).toEqual(refused(message, code));
      // Refused before the function: it never saw the request.
      expect(hits).toEqual([]);
    }
  });

  it("accepts the project's API keys on apikey or Authorization, as hosted does", async () => {
    for (
      const headers of [
        { apikey: publishable! },
        { apikey: secretKey! },
        { authorization: `Bearer ${secretKey}` },
        { authorization: `Bearer ${publishable}` },
        // The legacy keys are JWTs; on apikey they count as API keys.
        { apikey: keys.SUPABASE_ANON_KEY },
        { apikey: keys.SUPABASE_SERVICE_ROLE_KEY },
        // What supabase-js sends for a signed-in user.
        { apikey: publishable!, authorization: `Bearer ${user}` },
      ] as Array<Record<string, string>>
    ) {
      expect(await call('guarded', headers), JSON.stringify(headers)).toEqual(passes);
    }
  });

  it('refuses a key of no project of ours, a user JWT on apikey, a bad Authorization beside a good apikey', async () => {
    const expired = signJwt({ role: 'anon', exp: now - 1 }, secret);
    for (
      const headers of [
        { apikey: `sb_secret_${'x'.repeat(22)}_abcdefgh` },
        { apikey: user },
        { apikey: secretKey!, authorization: `Bearer ${expired}` },
      ] as Array<Record<string, string>>
    ) {
      const res = await call('guarded', headers);
      expect(res.status, JSON.stringify(headers)).toBe(401);
      expect(res.body).toEqual({ code: 401, message: 'Invalid JWT' });
      expect(hits).toEqual([]);
    }
  });

  it('checks a function config.toml does not name; lets anything reach a verify_jwt = false one', async () => {
    expect(await call('plain', {})).toEqual(
      refused('Missing authorization header', 'UNAUTHORIZED_NO_AUTH_HEADER'),
    );
    expect(await call('plain', { authorization: `Bearer ${user}` })).toEqual(passes);
    expect(await call('open', {})).toEqual(passes);
    expect(await call('open', { authorization: 'Bearer anything-at-all' })).toEqual(passes);
  });

  it('passes a preflight without credentials to the function, which answers CORS itself', async () => {
    const preflight = {
      origin: 'https://ops.example.com',
      'access-control-request-method': 'POST',
    };
    expect(await call('guarded', preflight, 'OPTIONS')).toEqual(passes);
    expect(hits).toEqual(['OPTIONS /guarded/hello']);
  });

  it('fails closed without the project secret: no JWT is valid, no API key known', async () => {
    const viaClosed = (fn: string, headers: Record<string, string>) =>
      call(fn, headers, 'GET', closedUrl);
    expect((await viaClosed('guarded', { authorization: `Bearer ${user}` })).status).toBe(401);
    expect((await viaClosed('guarded', { apikey: secretKey! })).status).toBe(401);
    expect((await viaClosed('open', {})).status).toBe(200);
  });
});

function jwtWithHeader(header: Record<string, unknown>, signature: string): string {
  const part = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
  return `${part(header)}.${part({ role: 'service_role' })}.${signature}`;
}

describe("this project's supabase/config.toml", () => {
  it('sets verify_jwt = false for each of the four functions', async () => {
    const settings = readFunctionSettings();
    const names = (await readdir(path.join(repoRoot, 'supabase/functions'), {
      withFileTypes: true,
    }))
      .filter((d) => d.isDirectory() && !d.name.startsWith('_'))
      .map((d) => d.name)
      .sort();
    expect(names).toEqual(['api', 'job-drain', 'sync', 'webhook']);
    for (const name of names) expect(settings(name), name).toEqual({ verifyJwt: false });
  });

  it('must: pg_cron, pg_net and the CLI call with the function secret, which is no JWT', () => {
    // The functions authenticate every call themselves (function secret, service_role or
    // secret key; packages/shared/src/http/auth.ts). With verify_jwt on, the platform would
    // refuse the function secret before the function saw it: every doorbell would fail.
    const auth = loadGatewayAuth({ env: { ...localKeys({}) } });
    const doorbell = { authorization: `Bearer ${'f'.repeat(64)}` };
    for (const name of ['api', 'job-drain', 'sync', 'webhook']) {
      expect(checkVerifyJwt(name, 'POST', doorbell, auth), name).toBeNull();
      expect(checkVerifyJwt(name, 'POST', doorbell, { ...auth, verifyJwt: () => true }), name)
        .toMatchObject({ status: 401, message: 'Invalid JWT' });
    }
  });
});

describe('the config.toml reader', () => {
  it('takes verify_jwt per function, true when absent, and refuses what is not a boolean', () => {
    const settings = functionSettings(parse(`
[functions.api]
verify_jwt = false
[functions.job-drain]
import_map = "./import_map.json"
[functions.inline]
verify_jwt = true
`));
    expect(['api', 'job-drain', 'inline', 'other'].map((n) => settings(n).verifyJwt))
      .toEqual([false, true, true, true]);
    expect(() => functionSettings(parse('[functions.api]\nverify_jwt = "false"'))).toThrow(
      'functions.api.verify_jwt must be true or false',
    );
    expect(() => functionSettings(parse('functions = 1'))).toThrow('functions must be a table');
  });

  it('refuses a broken file, naming the file and the line', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'cesar-toml-'));
    const file = path.join(dir, 'config.toml');
    await writeFile(file, '[functions.api]\nverify_jwt = false\nverify_jwt = true\n');
    expect(() => readFunctionSettings(file)).toThrow(`${file}: line 3:`);
    await rm(dir, { recursive: true });
  });
});
