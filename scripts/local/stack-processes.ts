import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

// Every process the local stack starts (supervisor, runtime, one Deno process per function)
// carries CESAR_STACK_DIR=<its .local folder> in its environment, and its role. Reading
// /proc/<pid>/environ (Linux; readable for our own processes) finds them all even when the
// process that started them is gone: `npm start` stops what a dead runtime left, `npm stop`
// leaves nothing, and `cesar doctor` counts the parts. Pids are never trusted on their own:
// a pid file can outlive its process and the pid can be reused.

export const STACK_DIR_VAR = 'CESAR_STACK_DIR';
export const ROLE_VAR = 'CESAR_STACK_ROLE';
export const FUNCTION_VAR = 'CESAR_STACK_FUNCTION';

export type Role = 'supervisor' | 'runtime' | 'function';

export interface StackProcess {
  pid: number;
  /** 'helper': a child of a part with the same role (tsx's esbuild service, say). */
  role: Role | 'helper' | 'unknown';
  /** The function a Deno process serves. */
  fn?: string;
  /** Its parent's pid. */
  ppid: number;
}

/** The environment that marks a process as this stack's. */
export function stackMarker(
  localDir: string,
  role: Role,
  fn?: string,
): Record<string, string> {
  return {
    [STACK_DIR_VAR]: path.resolve(localDir),
    [ROLE_VAR]: role,
    ...(fn ? { [FUNCTION_VAR]: fn } : {}),
  };
}

/** This stack's live processes (none where there is no /proc). */
export function stackProcesses(localDir: string): StackProcess[] {
  const marker = `${STACK_DIR_VAR}=${path.resolve(localDir)}`;
  let entries: string[];
  try {
    entries = readdirSync('/proc').filter((e) => /^\d+$/.test(e));
  } catch {
    return [];
  }
  const found: StackProcess[] = [];
  for (const entry of entries) {
    let vars: string[];
    try {
      // A zombie's environ reads empty: it is dead for our purposes.
      vars = readFileSync(`/proc/${entry}/environ`, 'utf8').split('\0');
    } catch {
      continue;
    }
    if (!vars.includes(marker)) continue;
    const get = (name: string) =>
      vars.find((v) => v.startsWith(`${name}=`))?.slice(name.length + 1);
    const role = get(ROLE_VAR);
    found.push({
      pid: Number(entry),
      role: role === 'supervisor' || role === 'runtime' || role === 'function' ? role : 'unknown',
      fn: get(FUNCTION_VAR),
      ppid: parentPid(entry),
    });
  }
  // A child inherits its parent's marker: only the process started with a role holds it.
  const byPid = new Map(found.map((p) => [p.pid, p]));
  return found.map((p) => {
    const parent = byPid.get(p.ppid);
    return parent && parent.role === p.role && parent.fn === p.fn ? { ...p, role: 'helper' } : p;
  });
}

function parentPid(pid: string): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
  } catch {
    return 0;
  }
}

/** Alive and not a zombie (a killed orphan stays a zombie until something reaps it). */
export function processAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !/^Z/.test(stat.slice(stat.lastIndexOf(')') + 2));
  } catch {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // Gone already.
  }
}

/** SIGTERM, then SIGKILL what is still alive after graceMs; resolves when all are gone. */
export async function stopProcesses(pids: number[], graceMs: number): Promise<void> {
  pids.forEach((pid) => signal(pid, 'SIGTERM'));
  const deadline = Date.now() + graceMs;
  while (pids.some(processAlive) && Date.now() < deadline) await sleep(50);
  pids.filter(processAlive).forEach((pid) => signal(pid, 'SIGKILL'));
  while (pids.some(processAlive)) await sleep(20);
}

/**
 * Stops every process of this stack: the supervisors first (each stops its runtime and the
 * runtime its functions, cleanly), then whatever is left, such as a dead runtime's orphans.
 * Returns how many processes there were.
 */
export async function stopStack(localDir: string, graceMs = 15_000): Promise<number> {
  const all = stackProcesses(localDir);
  await stopProcesses(all.filter((p) => p.role === 'supervisor').map((p) => p.pid), graceMs);
  await stopProcesses(stackProcesses(localDir).map((p) => p.pid), 5000);
  return all.length;
}
