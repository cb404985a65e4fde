import { execFile, spawn } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { untilDrainsIdle } from '../scripts/bench/doorbell.ts';
import { repoRoot } from '../scripts/lib/paths.ts';
import { startTempStack, type TempStack } from '../scripts/lib/temp-stack.ts';
import { functionNames } from '../scripts/local/functions.ts';
import {
  processAlive,
  stackMarker,
  type StackProcess,
  stackProcesses,
} from '../scripts/local/stack-processes.ts';

// The supervised local runtime, on a temporary stack of its own: parts killed with SIGKILL
// come back without a manual step, `npm start` after a dead runtime stops its leftovers
// first, `npm stop` leaves no process behind, and `cesar doctor` names a dead or duplicated
// part. The tests run in order on one stack; each leaves it healthy for the next.

let stack: TempStack;
let settings: Record<string, string>;
let localDir: string;
const names = functionNames();

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const parts = (): StackProcess[] => stackProcesses(localDir);
const pidsOf = (role: string) => parts().filter((p) => p.role === role).map((p) => p.pid);

async function waitFor<T>(what: string, probe: () => Promise<T> | T, timeoutMs: number) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await sleep(100);
  }
}

async function healthStatus(): Promise<number> {
  return await fetch(`${settings.CESAR_FUNCTIONS_URL}/api/health`, {
    headers: { authorization: `Bearer ${settings.CESAR_FUNCTION_SECRET}` },
    signal: AbortSignal.timeout(5000),
  }).then((r) => r.status, () => 0);
}

/** Exactly one supervisor, one runtime and one Deno process per function. */
function oneSet(): boolean {
  const all = parts();
  const count = (pred: (p: StackProcess) => boolean) => all.filter(pred).length;
  return count((p) => p.role === 'supervisor') === 1 &&
    count((p) => p.role === 'runtime') === 1 &&
    count((p) => p.role === 'function') === names.length &&
    names.every((n) => count((p) => p.fn === n) === 1);
}

/** Never more than one process per part, at any moment we look. */
function noDuplicates(): void {
  const all = parts();
  expect(all.filter((p) => p.role === 'runtime').length).toBeLessThanOrEqual(1);
  for (const n of names) expect(all.filter((p) => p.fn === n).length, n).toBeLessThanOrEqual(1);
}

async function healthyAgain(timeoutMs: number): Promise<void> {
  await waitFor(
    'api health 200 and one set of processes',
    async () => oneSet() && (await healthStatus()) === 200,
    timeoutMs,
  );
}

interface DoctorCheck {
  name: string;
  ok: boolean;
  detail: string;
  fix?: string;
}
function doctor(): Promise<DoctorCheck | undefined> {
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', path.join(repoRoot, 'scripts/cesar.ts'), 'doctor', '--json'],
      { cwd: repoRoot, env: stack.env },
      (_err, stdout) => {
        try {
          const checks = JSON.parse(stdout).checks as DoctorCheck[];
          resolve(checks.find((c) => c.name === 'local runtime'));
        } catch (err) {
          reject(new Error(`doctor printed no JSON: ${stdout} (${(err as Error).message})`));
        }
      },
    );
  });
}

beforeAll(async () => {
  stack = await startTempStack();
  settings = stack.settings;
  localDir = stack.env.CESAR_LOCAL_DIR!;
}, 180_000);

afterAll(() => stack?.destroy(), 60_000);

describe('the local runtime', () => {
  it('runs one supervisor, one runtime and one Deno process per function, all marked', () => {
    expect(names).toEqual(expect.arrayContaining(['api', 'job-drain', 'sync', 'webhook']));
    expect(oneSet()).toBe(true);
  });

  it('answers a raw `GET // HTTP/1.1` with 400 in the error shape, and keeps serving', async () => {
    const answer = await new Promise<string>((resolve, reject) => {
      const socket = net.connect(Number(stack.env.CESAR_FUNCTIONS_PORT), '127.0.0.1', () => {
        socket.write('GET // HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n');
      });
      let data = '';
      socket.on('data', (d) => (data += d));
      socket.on('end', () => resolve(data));
      socket.on('error', reject);
    });
    expect(answer).toMatch(/^HTTP\/1\.1 400 /);
    const body = JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4));
    expect(body.error.message).toMatch(/invalid request target/);
    expect(await healthStatus()).toBe(200);
    expect(oneSet()).toBe(true);
  });

  it('doctor: the local runtime is ok when every part runs once', async () => {
    expect(await doctor()).toMatchObject({ ok: true });
  });

  it('restarts a function process killed with SIGKILL', async () => {
    const [api] = parts().filter((p) => p.fn === 'api');
    const started = Date.now();
    process.kill(api!.pid, 'SIGKILL');
    await waitFor('api process replaced', () => {
      const now = parts().filter((p) => p.fn === 'api');
      return now.length === 1 && now[0]!.pid !== api!.pid;
    }, 20_000);
    await healthyAgain(20_000);
    console.log(`function killed -> api health 200 in ${Date.now() - started} ms`);
    noDuplicates();
  });

  it('restarts a runtime killed with SIGKILL; a doorbell queued meanwhile runs its job', async () => {
    const [runtime] = pidsOf('runtime');
    const oldFunctions = pidsOf('function');
    const sql = postgres(settings.SUPABASE_DB_URL!, { max: 1, onnotice: () => {} });
    try {
      // No drain holding a doorbell (README, "Coalesced doorbells": the writes of the 3 s after
      // a drain died wait for the next tick); this is about a call queued while it is down.
      await untilDrainsIdle(sql);
      const started = Date.now();
      process.kill(runtime!, 'SIGKILL');
      const [{ id }] = await sql`select cesar.enqueue('system.noop', '{}') as id` as unknown as [
        { id: string },
      ];
      const [{ queued }] = await sql`
        select count(*)::int as queued from net.http_request_queue` as unknown as [
        { queued: number },
      ];
      expect(queued).toBeGreaterThanOrEqual(1);
      await waitFor('job completed', async () => {
        noDuplicates();
        const [row] = await sql`select status from cesar.job_queue where id = ${id}`;
        return row?.status === 'completed';
      }, 30_000);
      console.log(`runtime killed -> queued job completed in ${Date.now() - started} ms`);
    } finally {
      await sql.end();
    }
    await healthyAgain(20_000);
    // The dead runtime's Deno processes were stopped, not left beside the new ones.
    expect(oldFunctions.filter(processAlive)).toEqual([]);
    expect(pidsOf('runtime')).not.toContain(runtime);
  });

  it('doctor names a duplicated part', async () => {
    // A stray process with the marker of a Deno process for api, as a dead runtime leaves one.
    const stray = spawn('sleep', ['60'], {
      env: { ...process.env, ...stackMarker(localDir, 'function', 'api') },
      stdio: 'ignore',
    });
    try {
      await waitFor('stray listed', () => parts().some((p) => p.pid === stray.pid), 5000);
      const check = await doctor();
      expect(check).toMatchObject({ ok: false, fix: expect.stringContaining('npm stop') });
      expect(check!.detail).toContain('function api: 2 Deno processes');
      expect(check!.detail).toContain(
        `${names.length + 1} Deno function processes for ${names.length} functions`,
      );
    } finally {
      stray.kill('SIGKILL');
    }
    await waitFor('stray gone', () => !processAlive(stray.pid!), 5000);
  });

  it(
    'doctor names a dead supervisor; `npm start` after the whole runtime was killed stops its leftovers first',
    async () => {
      const [supervisor] = pidsOf('supervisor');
      const [runtime] = pidsOf('runtime');
      const oldFunctions = pidsOf('function');
      process.kill(supervisor!, 'SIGKILL');
      await waitFor('supervisor gone', () => !processAlive(supervisor!), 5000);
      const check = await doctor();
      expect(check).toMatchObject({ ok: false, detail: 'supervisor not running' });

      process.kill(runtime!, 'SIGKILL');
      await waitFor('runtime gone', () => !processAlive(runtime!), 5000);
      // The orphaned functions keep running: this is what `npm start` has to clean up.
      expect(oldFunctions.filter(processAlive)).toEqual(oldFunctions);
      expect((await doctor())!.detail).toBe('supervisor not running; runtime not running');

      const started = await stack.run('start');
      expect(started.code, started.output).toBe(0);
      expect(started.output).toMatch(
        new RegExp(`leftovers\\s+stopped ${oldFunctions.length} process\\(es\\)`),
      );
      expect(oldFunctions.filter(processAlive)).toEqual([]);
      await healthyAgain(20_000);
      expect(await doctor()).toMatchObject({ ok: true });
    },
    120_000,
  );

  it('`npm stop` leaves no process carrying the marker', async () => {
    // One supervisor, one runtime, each function's isolate (and perhaps a standby).
    const running = parts();
    expect(running.filter((p) => p.role !== 'function').length).toBe(2);
    expect(new Set(running.filter((p) => p.role === 'function').map((p) => p.fn)).size)
      .toBe(names.length);
    const stopped = await stack.run('stop');
    expect(stopped.code, stopped.output).toBe(0);
    expect(stopped.output).toMatch(/functions\s+stopped/);
    expect(parts()).toEqual([]);
    expect(await doctor()).toBeUndefined();
  }, 60_000);
});
