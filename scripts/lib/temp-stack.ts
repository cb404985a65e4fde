import { spawn } from 'node:child_process';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { freePort } from '../local/functions.ts';
import { readEnvFile } from './env-file.ts';
import { repoRoot } from './paths.ts';

// A whole local stack (what `npm start` runs) on free ports in a temporary folder, for the
// end-to-end tests and the benchmarks: it neither needs nor disturbs the developer's stack.

export interface TempStack {
  /** The settings `npm start` wrote (.env.local). */
  settings: Record<string, string>;
  env: NodeJS.ProcessEnv;
  run(command: 'start' | 'stop' | 'status'): Promise<{ code: number; output: string }>;
  /** Stops the stack and removes its folder. */
  destroy(): Promise<void>;
}

/** `extraEnv`: settings for the stack's processes, e.g. CESAR_ALLOWED_ORIGINS. */
export async function startTempStack(extraEnv: Record<string, string> = {}): Promise<TempStack> {
  const dir = await mkdtemp(path.join(tmpdir(), 'cesar-stack-'));
  await chmod(dir, 0o755);
  const { COCKROACH_DB_URL: _external, ...inherited } = process.env;
  const env: NodeJS.ProcessEnv = {
    ...inherited,
    CESAR_LOCAL_DIR: path.join(dir, 'local'),
    CESAR_ENV_FILE: path.join(dir, '.env.local'),
    CESAR_FUNCTIONS_PORT: String(await freePort()),
    CESAR_DB_PORT: String(await freePort()),
    CESAR_MIRROR_PORT: String(await freePort()),
    CESAR_POOLER_PORT: String(await freePort()),
    ...extraEnv,
  };
  const run = (command: string) =>
    new Promise<{ code: number; output: string }>((resolve, reject) => {
      const child = spawn(process.execPath, [
        '--import',
        'tsx',
        path.join(repoRoot, 'scripts/stack.ts'),
        command,
      ], {
        cwd: repoRoot,
        env,
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let output = '';
      child.stdout.on('data', (d) => (output += d));
      child.stderr.on('data', (d) => (output += d));
      child.on('error', reject);
      child.on('close', (code) => resolve({ code: code ?? 1, output }));
    });
  const started = await run('start');
  if (started.code !== 0) {
    await run('stop');
    await rm(dir, { recursive: true, force: true });
    throw new Error(`npm start failed:\n${started.output}`);
  }
  return {
    settings: await readEnvFile(env.CESAR_ENV_FILE!),
    env,
    run,
    async destroy() {
      await run('stop');
      await rm(dir, { recursive: true, force: true });
    },
  };
}
