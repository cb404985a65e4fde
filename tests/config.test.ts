import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../packages/shared/src/config.ts';

const base = {
  SUPABASE_DB_URL: 'postgresql://postgres:postgres@127.0.0.1:54322/postgres',
  CESAR_FUNCTION_SECRET: 'a'.repeat(32),
};

describe('loadConfig', () => {
  it('reads the production variable names and fills defaults', () => {
    const config = loadConfig({
      ...base,
      COCKROACH_DB_URL: 'postgresql://root@db:26257/defaultdb?sslmode=verify-full',
    });
    expect(config).toEqual({
      databaseUrl: base.SUPABASE_DB_URL,
      databasePooled: false,
      directDatabaseUrl: base.SUPABASE_DB_URL,
      mirrorUrl: 'postgresql://root@db:26257/defaultdb?sslmode=verify-full',
      functionSecret: base.CESAR_FUNCTION_SECRET,
      serviceRoleKey: null,
      supabaseUrl: null,
      dbPoolMax: 4,
      httpAllow: [],
      allowedOrigins: [],
      secretKeys: [],
      publishableKeys: [],
      webhookSigningSecrets: [],
      webhookSignatureToleranceSeconds: 300,
    });
  });

  it('treats empty strings as unset', () => {
    const config = loadConfig({
      ...base,
      COCKROACH_DB_URL: '',
      SUPABASE_SERVICE_ROLE_KEY: '',
      CESAR_DB_POOL_MAX: '',
    });
    expect(config.mirrorUrl).toBeNull();
    expect(config.serviceRoleKey).toBeNull();
    expect(config.dbPoolMax).toBe(4);
  });

  it('connects through the pooler of CESAR_DB_URL, keeping SUPABASE_DB_URL as the direct one', () => {
    const pooler =
      'postgres://postgres.ref:pw@aws-0-eu-central-1.pooler.supabase.com:6543/postgres';
    const config = loadConfig({ ...base, CESAR_DB_URL: pooler });
    expect(config).toMatchObject({
      databaseUrl: pooler,
      databasePooled: true,
      directDatabaseUrl: base.SUPABASE_DB_URL,
    });
    // Either is enough; an empty CESAR_DB_URL (an unset secret) falls back to the direct one.
    const { SUPABASE_DB_URL: _, ...noDirect } = base;
    expect(loadConfig({ ...noDirect, CESAR_DB_URL: pooler })).toMatchObject({
      databaseUrl: pooler,
      databasePooled: true,
      directDatabaseUrl: null,
    });
    expect(loadConfig({ ...base, CESAR_DB_URL: '' })).toMatchObject({
      databaseUrl: base.SUPABASE_DB_URL,
      databasePooled: false,
    });
    expect(() => loadConfig({ ...base, CESAR_DB_URL: 'http://pooler:6543' })).toThrow(
      /CESAR_DB_URL: must be a postgres/,
    );
  });

  it('names every missing or malformed key at once', () => {
    let error: unknown;
    try {
      loadConfig({
        COCKROACH_DB_URL: 'mysql://x',
        CESAR_FUNCTION_SECRET: 'short',
        CESAR_DB_POOL_MAX: '0',
        CESAR_ALLOWED_ORIGINS: 'https://ok.example, https://x.example/path',
      });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const problems = (error as ConfigError).problems.join('\n');
    expect(problems).toMatch(/^SUPABASE_DB_URL:/m);
    expect(problems).toMatch(/^COCKROACH_DB_URL: must be a postgres/m);
    expect(problems).toMatch(/^CESAR_FUNCTION_SECRET: must be at least 16/m);
    expect(problems).toMatch(/^CESAR_DB_POOL_MAX:/m);
    expect(problems).toMatch(
      /^CESAR_ALLOWED_ORIGINS: "https:\/\/x.example\/path" is not an origin/m,
    );
  });

  it("reads Supabase's named keys, and names a malformed set", () => {
    const config = loadConfig({
      ...base,
      SUPABASE_SECRET_KEYS: JSON.stringify({ default: `sb_secret_${'a'.repeat(20)}` }),
      SUPABASE_SECRET_KEY: `sb_secret_${'b'.repeat(20)}`,
      SUPABASE_PUBLISHABLE_KEYS: JSON.stringify({ web: `sb_publishable_${'c'.repeat(20)}` }),
      // The legacy anon key is a publishable key too: refused with a 403 like the new ones.
      SUPABASE_ANON_KEY: 'eyJhbGciOiJIUzI1NiJ9.eyJyb2xlIjoiYW5vbiJ9.c2ln',
    });
    expect(config.secretKeys).toEqual([
      `sb_secret_${'a'.repeat(20)}`,
      `sb_secret_${'b'.repeat(20)}`,
    ]);
    expect(config.publishableKeys).toEqual([
      `sb_publishable_${'c'.repeat(20)}`,
      'eyJhbGciOiJIUzI1NiJ9.eyJyb2xlIjoiYW5vbiJ9.c2ln',
    ]);
    expect(() => loadConfig({ ...base, SUPABASE_SECRET_KEYS: '["x"]' })).toThrow(
      /SUPABASE_SECRET_KEYS: must be a JSON object of keys/,
    );
  });

  it('reads the allowed origins', () => {
    expect(
      loadConfig({
        ...base,
        CESAR_ALLOWED_ORIGINS: 'https://ops.example.com, http://localhost:5173',
      })
        .allowedOrigins,
    ).toEqual(['https://ops.example.com', 'http://localhost:5173']);
  });
});
