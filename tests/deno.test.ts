import { type ChildProcess, spawn } from 'node:child_process';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { bin, repoRoot } from '../scripts/lib/paths.ts';
import { run } from '../scripts/lib/run.ts';
import {
  DENO_PERMISSIONS,
  freePort,
  functionNames,
  FUNCTIONS_DIR,
  waitForPort,
} from '../scripts/local/functions.ts';
import { databaseUrl, mirrorUrl, poolerUrl } from './helpers/db.ts';

// vitest runs the core under Node; these prove the Deno entry points, which vitest cannot
// see: every index.ts type-checks under Deno and boots with the same flags the local stack
// uses, resolving its imports through deno.json.

const SECRET = 'deno-smoke-secret-0123456789abcdef';
const children: ChildProcess[] = [];

// One real request per function, answered through the database.
const SMOKE: Record<
  string,
  { method: string; path: string; body?: string; expect: Record<string, unknown> }
> = {
  // Its pool reaches the database through the pooler (CESAR_DB_URL), as on hosted.
  api: {
    method: 'GET',
    path: '/health',
    expect: { status: 'healthy', components: { database: { pool: { via: 'pooler' } } } },
  },
  'job-drain': {
    method: 'POST',
    path: '',
    body: JSON.stringify({ job_types: ['deno_smoke.none'], budget_ms: 500 }),
    expect: { claimed: 0, stopped: 'empty' },
  },
  sync: { method: 'GET', path: '/status', expect: { tables: expect.any(Array) } },
  webhook: {
    method: 'POST',
    path: '/drain',
    body: JSON.stringify({ budget_ms: 200, batch_size: 1 }),
    expect: { failed_batches: 0 },
  },
};
afterAll(() => children.forEach((c) => c.kill('SIGKILL')));

describe('Edge Functions under Deno', () => {
  it('has at least the api function', () => {
    expect(functionNames()).toContain('api');
  });

  it('type-checks every index.ts', async () => {
    const entries = functionNames().map((name) => path.join(FUNCTIONS_DIR, name, 'index.ts'));
    const result = await run(bin('deno'), ['check', ...entries], {
      cwd: repoRoot,
      allowFailure: true,
    });
    expect(result.stderr + result.stdout).not.toMatch(/error/i);
    expect(result.code).toBe(0);
  }, 120_000);

  it.each(functionNames())(
    'boots %s and answers under /<name> with the secret, 401 without',
    async (name) => {
      const port = await freePort();
      let output = '';
      const child = spawn(bin('deno'), [
        'run',
        ...DENO_PERMISSIONS,
        '--no-prompt',
        path.join(FUNCTIONS_DIR, name, 'index.ts'),
      ], {
        cwd: repoRoot,
        env: {
          ...process.env,
          DENO_SERVE_ADDRESS: `tcp:127.0.0.1:${port}`,
          CESAR_DB_URL: poolerUrl(),
          SUPABASE_DB_URL: databaseUrl(),
          COCKROACH_DB_URL: mirrorUrl(),
          CESAR_FUNCTION_SECRET: SECRET,
          NO_COLOR: '1',
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      children.push(child);
      child.stdout!.on('data', (d) => (output += d));
      child.stderr!.on('data', (d) => (output += d));
      try {
        await waitForPort(port, 60_000);
      } catch (err) {
        throw new Error(`${(err as Error).message}\n${output}`);
      }
      const smoke = SMOKE[name];
      expect(smoke, `add a smoke request for ${name} to tests/deno.test.ts`).toBeDefined();
      const url = `http://127.0.0.1:${port}/${name}${smoke!.path}`;
      const init = { method: smoke!.method, body: smoke!.body };
      expect((await fetch(url, init)).status).toBe(401);
      const res = await fetch(url, { ...init, headers: { authorization: `Bearer ${SECRET}` } });
      expect(res.status, output).toBe(200);
      expect(await res.json()).toMatchObject(smoke!.expect);
      child.kill('SIGTERM');
    },
    90_000,
  );

  it('keeps an instance alive through a stray connection error, and only that', async () => {
    const runFixture = (kind: string) =>
      run(bin('deno'), ['run', '--no-prompt', 'tests/fixtures/stray-error.ts', kind], {
        cwd: repoRoot,
        allowFailure: true,
        env: { ...process.env, NO_COLOR: '1' },
      });
    for (const kind of ['postgres-throw', 'postgres-reject']) {
      const survived = await runFixture(kind);
      expect(survived.stdout).toMatch(/from a database connection, instance kept/);
      expect(survived.stdout).toMatch(/alive/);
      expect(survived.code).toBe(0);
    }
    const crashed = await runFixture('own-bug');
    expect(crashed.stderr).toMatch(/a bug of our own/);
    expect(crashed.stdout).not.toMatch(/alive/);
    expect(crashed.code).not.toBe(0);
  }, 60_000);
});
