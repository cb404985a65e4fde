import { spawn, type SpawnOptions } from 'node:child_process';

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a command to completion; rejects with its output when it exits non-zero. */
export async function run(
  command: string,
  args: string[],
  options: SpawnOptions & { allowFailure?: boolean } = {},
): Promise<RunResult> {
  const { allowFailure, ...spawnOptions } = options;
  const child = spawn(command, args, { ...spawnOptions, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const code = await new Promise<number>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (c) => resolve(c ?? 1));
  });
  if (code !== 0 && !allowFailure) {
    throw new Error(
      `${command} ${args.join(' ')} exited with ${code}\n${stdout}${stderr}`.trimEnd(),
    );
  }
  return { code, stdout, stderr };
}

export function isRoot(): boolean {
  return typeof process.getuid === 'function' && process.getuid() === 0;
}
