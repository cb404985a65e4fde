import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import path from 'node:path';
import type { RuntimeLimits, ShutdownReason } from '../../packages/shared/src/limits.ts';
import { bin, repoRoot } from '../lib/paths.ts';
import {
  IDLE_SAMPLE_MS,
  nearRetirement,
  readCpuMs,
  readProc,
  REASON_TEXT,
  SAMPLE_MS,
  verdict,
} from './limits-monitor.ts';
import { type RestartPolicy, restartPolicy } from './restart.ts';
import { STACK_DIR_VAR, stackMarker } from './stack-processes.ts';

// Serves every function under supabase/functions with Deno, from the same index.ts that
// `supabase functions deploy --use-api` ships. Each Deno process is one "isolate" on a private
// port (DENO_SERVE_ADDRESS sets where Deno.serve listens). The gateway asks acquire() for an
// isolate per request, so this module knows every request in flight and can hold the
// isolates to the hosted limits (limits-monitor.ts):
//
// - past a hard limit (CPU per request, memory, wall clock) the isolate is killed, every
//   request in flight on it is answered 546 by the gateway, the shutdown reason is logged
//   ("[job-drain] stopped: CPU time limit (2000 ms; 2013 ms used) [CPUTime] ...") and a fresh
//   isolate starts at once: a limit is not a crash, so no backoff;
// - past a soft limit (the isolate's CPU in all, half its wall clock) it retires: a fresh
//   isolate takes the new requests, the old one finishes its requests and exits.
//
// A fresh isolate is booted ahead of need (a standby) once the serving one has used half of
// its CPU soft limit, so retiring hands over at once. Hosted starts a worker from its deployed
// bundle in milliseconds; a local Deno process resolves and compiles its imports for 0.3-0.5 s
// of CPU and up to 1.5 s of wall clock on a loaded 2-core machine, and under load (an isolate
// of the api function retires every second or two at a few hundred requests a second)
// requests that waited for it made the tail: p99 407 ms at 20 connections. The standby
// serves nothing and is not sampled until it takes over; its wall clock and CPU count from
// then, as hosted's count from a worker's start.
//
// A process that exits on its own is restarted with backoff (restart.ts). In the local stack
// each carries the stack's marker (stack-processes.ts), so a runtime that dies cannot leave
// them running unnoticed.

export const FUNCTIONS_DIR = path.join(repoRoot, 'supabase', 'functions');

export function functionNames(dir = FUNCTIONS_DIR): string[] {
  return readdirSync(dir, { withFileTypes: true })
    .filter((d) =>
      d.isDirectory() && !d.name.startsWith('_') &&
      existsSync(path.join(dir, d.name, 'index.ts'))
    )
    .map((d) => d.name)
    .sort();
}

export const DENO_PERMISSIONS = ['--allow-net', '--allow-env', '--allow-read', '--allow-sys'];

export async function freePort(): Promise<number> {
  return await new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** Waits until something listens on the port (and gives up early if `child` exits). */
export async function waitForPort(
  port: number,
  timeoutMs: number,
  child?: ChildProcess,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child && (child.exitCode !== null || child.signalCode !== null)) {
      throw new Error(`exited (${child.signalCode ?? `code ${child.exitCode}`}) before listening`);
    }
    const ok = await new Promise<boolean>((resolve) => {
      const socket = connect({ host: '127.0.0.1', port }, () => {
        socket.end();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) {
      throw new Error(`nothing listens on 127.0.0.1:${port} after ${timeoutMs} ms`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** One request's hold on an isolate, from acquire() until release(). */
export interface Lease {
  port: number;
  /**
   * Called (once) when the isolate is stopped for a limit while this request is in flight:
   * the gateway answers 546. Set by the gateway right after acquire().
   */
  onStop?: (reason: ShutdownReason) => void;
  /**
   * Resolves when the isolate's process has exited: with the limit that stopped it, or null
   * (a crash, a restart). The gateway waits on it before it blames a cut answer on a crash.
   */
  gone: Promise<ShutdownReason | null>;
  /** The request is over (answered, failed or abandoned). Idempotent. */
  release(): void;
}

/** A function's isolate stopped by a limit, for tests and benchmarks. */
export interface LimitStop {
  name: string;
  reason: ShutdownReason;
  detail: string;
  requests: number;
  at: number;
}

export interface FunctionHost {
  /** Whether the function is served here. */
  has(name: string): boolean;
  /** Where the function's current isolate listens (undefined while none is up). */
  port(name: string): number | undefined;
  /**
   * An isolate to serve one request, waiting (up to bootTimeoutMs) for one to be up; undefined
   * for a function not served here. Throws when none comes up in time.
   */
  acquire(name: string): Promise<Lease | undefined>;
  /** The limits enforced (null: none). */
  limits: RuntimeLimits | null;
  /** Every isolate stopped for a limit so far. */
  stops(): LimitStop[];
  stop(): Promise<void>;
}

export interface ServeOptions {
  /** The folder of functions (<name>/index.ts); supabase/functions by default. */
  dir?: string;
  /** The limits to enforce; null enforces none. Hosted's (limits.ts) when the stack sets them. */
  limits?: RuntimeLimits | null;
  /** How long a request waits for an isolate to come up before it is refused. */
  bootTimeoutMs?: number;
}

type State = 'booting' | 'standby' | 'serving' | 'retired' | 'stopped' | 'exited';

interface Isolate {
  name: string;
  port: number;
  child: ChildProcess;
  state: State;
  readyAt: number;
  readyCpuMs: number;
  /** The process's CPU ms at each in-flight request's start. */
  inFlight: Map<Lease, number>;
  lastSample: number;
  /** The process's CPU ms read last (by the sampler or a request's start), and when. */
  cpuMs: number;
  cpuReadAt: number;
  stopReason: ShutdownReason | null;
  outOfMemory: boolean;
  resolveGone: (reason: ShutdownReason | null) => void;
  gone: Promise<ShutdownReason | null>;
}

interface Served {
  current: Isolate | null;
  /** Booted ahead of need, to take over from `current` when it retires or stops. */
  standby: Isolate | null;
  /** No isolate serves and the standby is still booting: it serves as soon as it is up. */
  promoteWhenUp: boolean;
  all: Set<Isolate>;
  restarts: RestartPolicy;
  restartPending: boolean;
  /** Requests waiting for an isolate to be up. */
  waiters: Set<() => void>;
}

/** Starts one Deno process per function and waits until each listens. */
export async function serveFunctions(
  env: Record<string, string>,
  log: (line: string) => void,
  options: ServeOptions = {},
): Promise<FunctionHost> {
  const dir = options.dir ?? FUNCTIONS_DIR;
  const limits = options.limits ?? null;
  const bootTimeoutMs = options.bootTimeoutMs ?? 30_000;
  const functions = new Map<string, Served>();
  const stops: LimitStop[] = [];
  let stopping = false;
  const stackDir = process.env[STACK_DIR_VAR];

  const wake = (fn: Served) => {
    for (const waiter of fn.waiters) waiter();
  };

  function spawnIsolate(name: string, port: number): Isolate {
    const fn = functions.get(name)!;
    const child = spawn(
      bin('deno'),
      [
        'run',
        ...DENO_PERMISSIONS,
        '--no-prompt',
        // V8's heap cap is a backstop above the limit the monitor enforces on resident memory:
        // an allocation too fast for the sampler still ends as a memory stop, not a hang.
        ...(limits ? [`--v8-flags=--max-old-space-size=${limits.memoryMb * 2}`] : []),
        path.join(dir, name, 'index.ts'),
      ],
      {
        cwd: repoRoot,
        env: {
          ...process.env,
          ...env,
          ...(stackDir ? stackMarker(stackDir, 'function', name) : {}),
          DENO_SERVE_ADDRESS: `tcp:127.0.0.1:${port}`,
          NO_COLOR: '1',
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let resolveGone!: (reason: ShutdownReason | null) => void;
    const isolate: Isolate = {
      name,
      port,
      child,
      state: 'booting',
      readyAt: 0,
      readyCpuMs: 0,
      inFlight: new Map(),
      lastSample: 0,
      cpuMs: 0,
      cpuReadAt: -Infinity,
      stopReason: null,
      outOfMemory: false,
      resolveGone: (reason) => resolveGone(reason),
      gone: new Promise((resolve) => (resolveGone = resolve)),
    };
    const prefix = (chunk: Buffer) => {
      const text = chunk.toString();
      // V8 reports its heap cap on stderr as it aborts: the monitor missed an allocation burst.
      if (/out of memory/i.test(text)) isolate.outOfMemory = true;
      text.split('\n').filter(Boolean).forEach((line) => log(`[${name}] ${line}`));
    };
    child.stdout!.on('data', prefix);
    child.stderr!.on('data', prefix);
    child.on('error', (err) => log(`[${name}] ${err.message}`));
    child.on('exit', (code, signal) => onExit(isolate, code, signal));
    fn.all.add(isolate);
    return isolate;
  }

  async function launch(name: string): Promise<void> {
    if (stopping) return;
    const fn = functions.get(name)!;
    fn.restarts.started();
    const isolate = spawnIsolate(name, await freePort());
    fn.current = isolate;
    try {
      await waitForPort(isolate.port, 60_000, isolate.child);
    } catch (err) {
      // Exited, or never listened: either way this one is done; the caller restarts.
      if (fn.current === isolate) fn.current = null;
      if (isolate.state === 'booting') {
        isolate.state = 'stopped';
        isolate.child.kill('SIGKILL');
      }
      throw err;
    }
    if (isolate.state !== 'booting') return;
    serve(fn, isolate);
  }

  function serve(fn: Served, isolate: Isolate): void {
    fn.current = isolate;
    isolate.state = 'serving';
    isolate.readyAt = Date.now();
    // Boot is not charged: a local Deno process resolves and compiles its imports at start,
    // which hosted does once at deploy time (the eszip bundle).
    isolate.readyCpuMs = readCpuMs(isolate.child.pid!) ?? 0;
    wake(fn);
  }

  /** Boots a standby for `name` unless it has one. */
  async function prepareStandby(name: string): Promise<void> {
    const fn = functions.get(name)!;
    if (stopping || fn.standby) return;
    const isolate = spawnIsolate(name, await freePort());
    fn.standby = isolate;
    try {
      await waitForPort(isolate.port, 60_000, isolate.child);
    } catch (err) {
      if (fn.standby === isolate) fn.standby = null;
      if (isolate.state === 'booting') {
        isolate.state = 'stopped';
        isolate.child.kill('SIGKILL');
      }
      log(`[${name}] a standby isolate did not start: ${(err as Error).message}`);
      if (fn.promoteWhenUp) {
        fn.promoteWhenUp = false;
        replace(name, 'a failed standby');
      }
      return;
    }
    if (isolate.state !== 'booting') return;
    isolate.state = 'standby';
    log(`[${name}] standby isolate up (pid ${isolate.child.pid}), to take over at retirement`);
    if (fn.promoteWhenUp) promoteStandby(fn);
  }

  /** The standby serves from now on; false when there is none up. */
  function promoteStandby(fn: Served): boolean {
    const standby = fn.standby;
    if (!standby || stopping) return false;
    if (standby.state === 'booting') {
      fn.promoteWhenUp = true;
      return true;
    }
    fn.standby = null;
    fn.promoteWhenUp = false;
    if (standby.state !== 'standby') return false;
    serve(fn, standby);
    return true;
  }

  /** A fresh isolate for `name` in place of the current one; no backoff (not a crash). */
  function replace(name: string, why: string): void {
    const fn = functions.get(name)!;
    fn.current = null;
    if (promoteStandby(fn)) return;
    launch(name).catch((err) => {
      log(`[${name}] a fresh isolate (after ${why}) did not start: ${err.message}`);
      scheduleRestart(name);
    });
  }

  function scheduleRestart(name: string): void {
    const fn = functions.get(name)!;
    if (fn.restartPending || stopping) return;
    fn.restartPending = true;
    const delay = fn.restarts.nextDelayMs();
    log(`[${name}] restarting in ${delay} ms`);
    setTimeout(() => {
      fn.restartPending = false;
      if (stopping || fn.current) return;
      launch(name).catch((err) => {
        log(`[${name}] restart failed: ${err.message}`);
        scheduleRestart(name);
      });
    }, delay);
  }

  function onExit(isolate: Isolate, code: number | null, signal: NodeJS.Signals | null): void {
    const fn = functions.get(isolate.name)!;
    fn.all.delete(isolate);
    if (fn.standby === isolate) {
      // Never served: nothing to answer, nothing to restart; the next one is booted on need.
      fn.standby = null;
      if (!stopping && isolate.state === 'standby') {
        log(`[${isolate.name}] standby isolate exited (${signal ?? `code ${code}`})`);
      }
      isolate.state = 'exited';
      isolate.resolveGone(null);
      if (fn.promoteWhenUp) {
        fn.promoteWhenUp = false;
        if (!stopping) replace(isolate.name, 'a failed standby');
      }
      return;
    }
    const expected = isolate.state === 'stopped' || isolate.state === 'retired';
    if (!expected && isolate.outOfMemory && isolate.inFlight.size > 0) {
      // V8 hit its heap cap before the sampler saw the memory: still hosted's memory stop.
      isolate.stopReason = 'Memory';
      report(isolate, 'Memory', `${limits?.memoryMb} MB; V8 heap exhausted`);
    }
    if (isolate.state === 'retired' && isolate.inFlight.size > 0) {
      log(
        `[${isolate.name}] retired isolate exited (${signal ?? `code ${code}`}) with ` +
          `${isolate.inFlight.size} request(s) in flight`,
      );
    }
    isolate.state = 'exited';
    isolate.resolveGone(isolate.stopReason);
    if (stopping || expected || fn.current !== isolate) return;
    log(`[${isolate.name}] exited (${signal ?? `code ${code}`})`);
    fn.current = null;
    if (isolate.stopReason) replace(isolate.name, REASON_TEXT[isolate.stopReason]);
    else scheduleRestart(isolate.name);
  }

  function report(isolate: Isolate, reason: ShutdownReason, detail: string): void {
    const requests = isolate.inFlight.size;
    stops.push({ name: isolate.name, reason, detail, requests, at: Date.now() });
    log(
      `[${isolate.name}] stopped: ${REASON_TEXT[reason]} (${detail}) [${reason}]; ` +
        `${requests} request(s) in flight answered 546`,
    );
    for (const lease of isolate.inFlight.keys()) lease.onStop?.(reason);
    isolate.inFlight.clear();
  }

  /** Past a hard limit: kill it, answer its requests 546, start a fresh one at once. */
  function stopIsolate(isolate: Isolate, reason: ShutdownReason, detail: string): void {
    const wasCurrent = functions.get(isolate.name)!.current === isolate;
    isolate.state = 'stopped';
    isolate.stopReason = reason;
    const requests = isolate.inFlight.size;
    report(isolate, reason, detail);
    isolate.child.kill('SIGKILL');
    if (!wasCurrent || stopping) return;
    // A request drove it past the limit: a fresh isolate at once. None did (a process that
    // is over the memory limit by itself): with backoff, or it would restart in a loop.
    if (requests > 0) replace(isolate.name, REASON_TEXT[reason]);
    else {
      functions.get(isolate.name)!.current = null;
      scheduleRestart(isolate.name);
    }
  }

  /** Past a soft limit: no new requests; it exits once those it has are answered. */
  function retire(isolate: Isolate, detail: string): void {
    isolate.state = 'retired';
    log(
      `[${isolate.name}] retired: ${detail}; new requests go to a fresh isolate, ` +
        `${isolate.inFlight.size} in flight finish here`,
    );
    if (!stopping) replace(isolate.name, 'retirement');
    if (isolate.inFlight.size === 0) endRetired(isolate);
  }

  function endRetired(isolate: Isolate): void {
    isolate.child.kill('SIGTERM');
    setTimeout(() => isolate.child.kill('SIGKILL'), 5000).unref();
  }

  function sample(now: number): void {
    for (const fn of functions.values()) {
      for (const isolate of fn.all) {
        if (isolate.state !== 'serving' && isolate.state !== 'retired') continue;
        const busy = isolate.inFlight.size > 0;
        if (!busy && now - isolate.lastSample < IDLE_SAMPLE_MS) continue;
        isolate.lastSample = now;
        const proc = readProc(isolate.child.pid!);
        if (!proc) continue;
        isolate.cpuMs = proc.cpuMs;
        isolate.cpuReadAt = now;
        const next = verdict(
          proc,
          {
            readyAt: isolate.readyAt,
            readyCpuMs: isolate.readyCpuMs,
            retired: isolate.state === 'retired',
            requestStartsCpuMs: [...isolate.inFlight.values()],
          },
          limits!,
          now,
        );
        // A memory or wall clock stop of an idle isolate answers nobody: it only ends.
        if (next.action === 'stop') stopIsolate(isolate, next.reason, next.detail);
        else if (next.action === 'retire') retire(isolate, next.detail);
        else if (
          isolate === fn.current && !fn.standby &&
          nearRetirement(proc.cpuMs - isolate.readyCpuMs, limits!)
        ) void prepareStandby(isolate.name);
      }
    }
  }
  if (limits && !readProc(process.pid)) {
    log('hosted limits cannot be measured here (no /proc): CPU and memory go unchecked');
  }
  const sampler = limits ? setInterval(() => sample(Date.now()), SAMPLE_MS) : null;
  sampler?.unref();

  async function acquire(name: string): Promise<Lease | undefined> {
    const fn = functions.get(name);
    if (!fn) return undefined;
    const deadline = Date.now() + bootTimeoutMs;
    for (;;) {
      if (stopping) throw new Error('the runtime is stopping');
      const isolate = fn.current;
      if (isolate?.state === 'serving') return lease(isolate);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no isolate came up within ${bootTimeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const done = () => {
          fn.waiters.delete(done);
          clearTimeout(timer);
          resolve();
        };
        const timer = setTimeout(done, Math.min(left, 1000));
        fn.waiters.add(done);
      });
    }
  }

  function lease(isolate: Isolate): Lease {
    const held: Lease = {
      port: isolate.port,
      gone: isolate.gone,
      release() {
        if (!isolate.inFlight.delete(held)) return;
        if (isolate.state === 'retired' && isolate.inFlight.size === 0) endRetired(isolate);
      },
    };
    isolate.inFlight.set(held, limits ? cpuNow(isolate) : 0);
    return held;
  }

  /**
   * The isolate's CPU ms at a request's start: the last reading when it is at most SAMPLE_MS
   * old (the sampler reads a busy isolate that often), else a fresh one. Reading /proc for
   * every request was a third of the gateway's own CPU per request under load; a reading up
   * to 25 ms old (2.5 of /proc's 10 ms ticks) charges the request at most that much CPU of
   * the requests before it, which the per-request check already counts (requests in flight
   * together are each charged the isolate's CPU since their start).
   */
  function cpuNow(isolate: Isolate): number {
    const now = Date.now();
    if (now - isolate.cpuReadAt > SAMPLE_MS) {
      isolate.cpuMs = readCpuMs(isolate.child.pid!) ?? isolate.cpuMs;
      isolate.cpuReadAt = now;
    }
    return isolate.cpuMs;
  }

  for (const name of functionNames(dir)) {
    functions.set(name, {
      current: null,
      standby: null,
      promoteWhenUp: false,
      all: new Set(),
      restarts: restartPolicy(),
      restartPending: false,
      waiters: new Set(),
    });
  }
  await Promise.all([...functions.keys()].map(launch));
  return {
    limits,
    has: (name) => functions.has(name),
    port: (name) => {
      const current = functions.get(name)?.current;
      return current?.state === 'serving' ? current.port : undefined;
    },
    acquire,
    stops: () => [...stops],
    async stop() {
      stopping = true;
      if (sampler) clearInterval(sampler);
      const all = [...functions.values()].flatMap((fn) => [...fn.all]);
      for (const fn of functions.values()) wake(fn);
      await Promise.all(all.map(({ child }) =>
        new Promise<void>((resolve) => {
          if (child.exitCode !== null || child.signalCode !== null) return resolve();
          child.once('exit', () => resolve());
          child.kill('SIGTERM');
          setTimeout(() => child.kill('SIGKILL'), 5000).unref();
        })
      ));
    },
  };
}
