import { type ChildProcess, spawn } from 'node:child_process';
import path from 'node:path';
import { repoRoot } from '../lib/paths.ts';
import { restartPolicy } from './restart.ts';
import { STACK_DIR_VAR, stackMarker, stackProcesses, stopProcesses } from './stack-processes.ts';

// What `npm start` leaves running in the background (its pid is in .local/supervisor.pid):
// it runs runtime.ts (gateway, functions, pg_net worker) and starts it again whenever it
// exits, with backoff (restart.ts), logging why. A runtime that was killed leaves its Deno
// processes running, so before every start the supervisor stops whatever carries this
// stack's marker other than itself. SIGTERM stops the runtime, then the supervisor.

const log = (line: string) => console.log(`${new Date().toISOString()} supervisor: ${line}`);

const localDir = process.env[STACK_DIR_VAR];
if (!localDir) throw new Error(`${STACK_DIR_VAR} is not set`);

const restarts = restartPolicy();
let runtime: ChildProcess | null = null;
let restartTimer: NodeJS.Timeout | null = null;
let stopping = false;

async function stopLeftovers(): Promise<void> {
  // Not this supervisor, nor its own helpers (tsx's esbuild service carries its marker too).
  const left = stackProcesses(localDir!).filter((p) =>
    p.role !== 'supervisor' && !(p.role === 'helper' && p.ppid === process.pid)
  );
  if (left.length === 0) return;
  log(
    `stopping what the last runtime left: ${
      left.map((p) => `${p.fn ?? p.role} ${p.pid}`).join(', ')
    }`,
  );
  await stopProcesses(left.map((p) => p.pid), 2000);
}

async function startRuntime(): Promise<void> {
  await stopLeftovers();
  if (stopping) return;
  restarts.started();
  const child = spawn(process.execPath, [
    '--import',
    'tsx',
    path.join(repoRoot, 'scripts/local/runtime.ts'),
  ], {
    cwd: repoRoot,
    stdio: 'inherit',
    env: { ...process.env, ...stackMarker(localDir!, 'runtime') },
  });
  runtime = child;
  log(`runtime started (pid ${child.pid})`);
  let ended = false;
  const onEnd = (why: string) => {
    if (ended) return;
    ended = true;
    runtime = null;
    if (stopping) return;
    const delay = restarts.nextDelayMs();
    log(`runtime ${why}; restarting in ${delay} ms`);
    restartTimer = setTimeout(() => void startRuntime().catch(startFailed), delay);
  };
  child.on('exit', (code, signal) => onEnd(`exited (${signal ?? `code ${code}`})`));
  child.on('error', (err) => onEnd(`failed: ${err.message}`));
}

function startFailed(err: Error): void {
  const delay = restarts.nextDelayMs();
  log(`could not start the runtime: ${err.message}; trying again in ${delay} ms`);
  restartTimer = setTimeout(() => void startRuntime().catch(startFailed), delay);
}

async function shutdown(signal: string): Promise<void> {
  if (stopping) return;
  stopping = true;
  log(`${signal}: stopping`);
  if (restartTimer) clearTimeout(restartTimer);
  // The runtime stops its functions on SIGTERM; whatever is left after 15 s is killed.
  if (runtime?.pid) await stopProcesses([runtime.pid], 15_000);
  await stopLeftovers();
  log('stopped');
  process.exit(0);
}
process.on('SIGTERM', () => void shutdown('SIGTERM'));
process.on('SIGINT', () => void shutdown('SIGINT'));

await startRuntime().catch(startFailed);
