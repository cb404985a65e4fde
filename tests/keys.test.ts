import { describe, expect, it } from 'vitest';
import { loadConfig } from '../packages/shared/src/config.ts';
import { functionApp } from '../packages/shared/src/http/function-app.ts';
import { signJwt, verifyJwt } from '../scripts/local/jwt.ts';
import { localKeys, newApiKey } from '../scripts/local/keys.ts';
import { databaseUrl, testSql } from './helpers/db.ts';

// The keys a local stack makes (scripts/local/keys.ts, written to .env.local by `npm start`)
// and what the functions let each of them do.

const YEAR = 365 * 24 * 3600;
const named = (json: string) => Object.values(JSON.parse(json)) as string[];

describe('the local stack keys', () => {
  it('are a JWT secret, anon and service_role JWTs signed with it, and one new key of each kind', () => {
    const now = Date.UTC(2026, 11, 2);
    const keys = localKeys({}, now);
    expect(keys.SUPABASE_JWT_SECRET).toMatch(/^[0-9a-f]{64}$/);
    for (const role of ['anon', 'service_role'] as const) {
      const key = role === 'anon' ? keys.SUPABASE_ANON_KEY : keys.SUPABASE_SERVICE_ROLE_KEY;
      const check = verifyJwt(key, keys.SUPABASE_JWT_SECRET, now / 1000);
      expect(check).toEqual({
        ok: true,
        claims: { iss: 'supabase-demo', role, iat: now / 1000, exp: now / 1000 + 10 * YEAR },
      });
      expect(JSON.parse(Buffer.from(key.split('.')[0]!, 'base64url').toString())).toEqual({
        alg: 'HS256',
        typ: 'JWT',
      });
    }
    expect(named(keys.SUPABASE_PUBLISHABLE_KEYS)).toEqual([
      expect.stringMatching(/^sb_publishable_[A-Za-z0-9_-]{22}_[A-Za-z0-9_-]{8}$/),
    ]);
    expect(named(keys.SUPABASE_SECRET_KEYS)).toEqual([
      expect.stringMatching(/^sb_secret_[A-Za-z0-9_-]{22}_[A-Za-z0-9_-]{8}$/),
    ]);
    expect(Object.keys(JSON.parse(keys.SUPABASE_SECRET_KEYS))).toEqual(['default']);
  });

  it('differ per stack, and stay what they are across restarts', () => {
    const first = localKeys({});
    const second = localKeys({});
    for (const name of Object.keys(first) as Array<keyof typeof first>) {
      expect(second[name], name).not.toBe(first[name]);
    }
    expect(localKeys({ ...first, CESAR_FUNCTION_SECRET: 'kept' })).toEqual(first);
    expect(newApiKey('secret')).not.toBe(newApiKey('secret'));
  });

  it('upgrade a stack from before them: the hex service_role key becomes a JWT', () => {
    const saved = {
      CESAR_FUNCTION_SECRET: 'a'.repeat(64),
      SUPABASE_SERVICE_ROLE_KEY: 'b'.repeat(64),
    };
    const keys = localKeys(saved);
    expect(keys.SUPABASE_SERVICE_ROLE_KEY).not.toBe(saved.SUPABASE_SERVICE_ROLE_KEY);
    expect(verifyJwt(keys.SUPABASE_SERVICE_ROLE_KEY, keys.SUPABASE_JWT_SECRET)).toMatchObject({
      ok: true,
      claims: { role: 'service_role' },
    });
  });

  it('are remade when they no longer fit: another secret, a wrong role, a malformed key set', () => {
    const first = localKeys({});
    const resigned = localKeys({ ...first, SUPABASE_JWT_SECRET: 'c'.repeat(64) });
    expect(resigned.SUPABASE_JWT_SECRET).toBe('c'.repeat(64));
    expect(resigned.SUPABASE_ANON_KEY).not.toBe(first.SUPABASE_ANON_KEY);
    expect(resigned.SUPABASE_SERVICE_ROLE_KEY).not.toBe(first.SUPABASE_SERVICE_ROLE_KEY);
    // The anon key saved as the service_role key would hand out the wrong role.
    const swapped = localKeys({ ...first, SUPABASE_SERVICE_ROLE_KEY: first.SUPABASE_ANON_KEY });
    expect(verifyJwt(swapped.SUPABASE_SERVICE_ROLE_KEY, first.SUPABASE_JWT_SECRET))
      .toMatchObject({ ok: true, claims: { role: 'service_role' } });
    // A secret too short for Supabase Auth is replaced.
    expect(localKeys({ SUPABASE_JWT_SECRET: 'short' }).SUPABASE_JWT_SECRET).toHaveLength(64);
    for (const bad of ['', '[]', '{}', '{"default":"sb_publishable_x"}', 'not json']) {
      const keys = localKeys({ ...first, SUPABASE_SECRET_KEYS: bad });
      expect(named(keys.SUPABASE_SECRET_KEYS)[0], bad).toMatch(/^sb_secret_/);
    }
  });
});

// What a function does with each key, the gateway's verify_jwt aside (the four functions run
// with it off and authenticate every call themselves).
describe('the functions, given the keys of a local stack', () => {
  const keys = localKeys({});
  const secret = keys.SUPABASE_JWT_SECRET;
  const [publishable] = named(keys.SUPABASE_PUBLISHABLE_KEYS);
  const [secretKey] = named(keys.SUPABASE_SECRET_KEYS);
  const config = loadConfig({
    SUPABASE_DB_URL: databaseUrl(),
    CESAR_FUNCTION_SECRET: 'f'.repeat(64),
    ...keys,
  });
  const name = `keys-${Date.now().toString(36)}`;
  const app = functionApp(name, { sql: testSql(), config });
  app.get('/hello', (c) => c.json({ hello: 'world' }));
  const hello = async (headers: Record<string, string>) => {
    const res = await app.request(`/${name}/hello`, { headers });
    return { status: res.status, body: await res.json() };
  };
  const now = Math.floor(Date.now() / 1000);

  it('run operations for the function secret, the service_role JWT and a secret key', async () => {
    for (
      const headers of [
        { authorization: `Bearer ${'f'.repeat(64)}` },
        { authorization: `Bearer ${keys.SUPABASE_SERVICE_ROLE_KEY}` },
        { apikey: keys.SUPABASE_SERVICE_ROLE_KEY },
        { authorization: `Bearer ${secretKey}` },
        { apikey: secretKey! },
      ] as Array<Record<string, string>>
    ) {
      expect(await hello(headers), JSON.stringify(headers)).toEqual({
        status: 200,
        body: { hello: 'world' },
      });
    }
  });

  it("refuse a user's JWT signed with the project secret with 401, whatever its role claims", async () => {
    for (const role of ['authenticated', 'anon', 'admin']) {
      const jwt = signJwt({ role, sub: 'user-1', iat: now, exp: now + 3600 }, secret);
      // It is valid: the gateway's verify_jwt would let it through.
      expect(verifyJwt(jwt, secret).ok).toBe(true);
      const res = await hello({ authorization: `Bearer ${jwt}` });
      expect(res.status, role).toBe(401);
      expect(res.body.error.message).toMatch(/JWT other than the service_role key/);
    }
    // With a secret key beside it on apikey, the bearer still decides.
    const jwt = signJwt({ role: 'authenticated', exp: now + 3600 }, secret);
    expect((await hello({ authorization: `Bearer ${jwt}`, apikey: secretKey! })).status)
      .toBe(401);
  });

  it('refuse the publishable key and the anon key with 403, on either header', async () => {
    for (const key of [publishable!, keys.SUPABASE_ANON_KEY]) {
      const both: Array<Record<string, string>> = [{ apikey: key }, {
        authorization: `Bearer ${key}`,
      }];
      for (const headers of both) {
        const res = await hello(headers);
        expect(res.status, JSON.stringify(headers)).toBe(403);
        expect(res.body.error.message).toMatch(/publishable key cannot run operations/);
      }
    }
  });
});
