import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import path from 'node:path';
import { bin, repoRoot } from '../lib/paths.ts';
import { type RestartPolicy, restartPolicy } from './restart.ts';
import { STACK_DIR_VAR, stackMarker } from './stack-processes.ts';

// Serves every function under supabase/functions with Deno, from the same index.ts that
// `supabase functions deploy --use-api` ships. Each function is its own Deno process on a
// private port (DENO_SERVE_ADDRESS sets where Deno.serve listens), restarted with backoff
// (restart.ts) if it exits. In the local stack each carries the stack's marker
// (stack-processes.ts), so a runtime that dies cannot leave them running unnoticed.

export const FUNCTIONS_DIR = path.join(repoRoot, 'supabase', 'functions');

export function functionNames(): string[] {
  return readdirSync(FUNCTIONS_DIR, { withFileTypes: true })
    .filter((d) =>
      d.isDirectory() && !d.name.startsWith('_') &&
      existsSync(path.join(FUNCTIONS_DIR, d.name, 'index.ts'))
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

export interface ServedFunction {
  name: string;
  port: number;
  child: ChildProcess;
}

export interface FunctionHost {
  port(name: string): number | undefined;
  stop(): Promise<void>;
}

/** Starts one Deno process per function and waits until each listens. */
export async function serveFunctions(
  env: Record<string, string>,
  log: (line: string) => void,
): Promise<FunctionHost> {
  const served = new Map<string, ServedFunction>();
  const restarts = new Map<string, RestartPolicy>();
  let stopping = false;
  const stackDir = process.env[STACK_DIR_VAR];

  async function launch(name: string): Promise<void> {
    if (stopping) return;
    const policy = restarts.get(name) ?? restartPolicy();
    restarts.set(name, policy);
    policy.started();
    const port = await freePort();
    const child = spawn(
      bin('deno'),
      ['run', ...DENO_PERMISSIONS, '--no-prompt', path.join(FUNCTIONS_DIR, name, 'index.ts')],
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
    const prefix = (chunk: Buffer) =>
      chunk.toString().split('\n').filter(Boolean).forEach((line) => log(`[${name}] ${line}`));
    child.stdout!.on('data', prefix);
    child.stderr!.on('data', prefix);
    child.on('exit', (code, signal) => {
      if (stopping || served.get(name)?.child !== child) return;
      const delay = policy.nextDelayMs();
      log(`[${name}] exited (${signal ?? `code ${code}`}); restarting in ${delay} ms`);
      setTimeout(
        () => void launch(name).catch((err) => log(`[${name}] restart failed: ${err.message}`)),
        delay,
      );
    });
    child.on('error', (err) => log(`[${name}] ${err.message}`));
    served.set(name, { name, port, child });
    await waitForPort(port, 60_000, child);
  }

  await Promise.all(functionNames().map(launch));
  return {
    port: (name) => served.get(name)?.port,
    async stop() {
      stopping = true;
      await Promise.all([...served.values()].map(({ child }) =>
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
