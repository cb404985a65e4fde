import { spawn } from 'node:child_process';
import autocannon from 'autocannon';
import { bin, repoRoot } from '../lib/paths.ts';
import type { TempStack } from '../lib/temp-stack.ts';
import { freePort } from '../local/functions.ts';
import { fmt } from './stats.ts';

// The api function under load, with autocannon (20 connections, keep-alive): GET /api/agents
// through the local gateway against a bare Deno handler running the same SQL with the same pool
// (scripts/bench/bare-deno.ts), side by side in one run; and GET /api/health through the
// gateway. Each measurement is preceded by a short warm-up at the same load.

export interface ApiLoad {
  requestsPerSec: number;
  p50: number;
  p99: number;
  /** Answers other than 2xx, and connection errors and timeouts. */
  failures: number;
}

export interface ApiBenchResult {
  connections: number;
  seconds: number;
  agents: ApiLoad;
  bare: ApiLoad;
  health: ApiLoad;
}

async function load(
  url: string,
  headers: Record<string, string>,
  connections: number,
  seconds: number,
): Promise<ApiLoad> {
  const run = (duration: number) => autocannon({ url, headers, connections, duration });
  await run(Math.min(3, seconds));
  const r = await run(seconds);
  return {
    requestsPerSec: r.requests.average,
    p50: r.latency.p50,
    p99: r.latency.p99,
    failures: r.non2xx + r.errors + r.timeouts,
  };
}

/** Starts the bare Deno peer on a free port; resolves with its URL and a stop function. */
async function startBare(stack: TempStack) {
  const port = await freePort();
  const child = spawn(
    bin('deno'),
    [
      'run',
      '--allow-net',
      '--allow-env',
      '--allow-read',
      '--allow-sys',
      'scripts/bench/bare-deno.ts',
    ],
    {
      cwd: repoRoot,
      env: {
        ...process.env,
        ...stack.env,
        ...stack.settings,
        BARE_PORT: String(port),
        NO_COLOR: '1',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let output = '';
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`bare Deno did not start: ${output}`)), 30_000);
    child.stdout.on('data', (chunk) => {
      output += chunk;
      if (output.includes('listening')) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.stderr.on('data', (chunk) => (output += chunk));
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`bare Deno exited (${code}): ${output}`));
    });
  });
  return { url: `http://127.0.0.1:${port}/`, stop: () => child.kill('SIGTERM') };
}

export async function benchApi(
  stack: TempStack,
  options: { connections: number; seconds: number },
): Promise<ApiBenchResult> {
  const auth = { authorization: `Bearer ${stack.settings.CESAR_FUNCTION_SECRET}` };
  const base = stack.settings.CESAR_FUNCTIONS_URL!;
  const bare = await startBare(stack);
  try {
    return {
      ...options,
      agents: await load(`${base}/api/agents`, auth, options.connections, options.seconds),
      bare: await load(bare.url, {}, options.connections, options.seconds),
      health: await load(`${base}/api/health`, auth, options.connections, options.seconds),
    };
  } finally {
    bare.stop();
  }
}

export function reportApi(r: ApiBenchResult): string {
  const line = (name: string, x: ApiLoad) =>
    `| ${name} | ${fmt(x.requestsPerSec, 0)} | ${fmt(x.p50, 1)} | ${
      fmt(x.p99, 1)
    } | ${x.failures} |`;
  return [
    `### API under load: autocannon, ${r.connections} connections, ${r.seconds} s each`,
    '',
    '| endpoint | req/s | p50 (ms) | p99 (ms) | failures |',
    '| --- | ---: | ---: | ---: | ---: |',
    line('GET /api/agents (gateway, api function)', r.agents),
    line('the same SQL, bare Deno handler (no gateway)', r.bare),
    line('GET /api/health (gateway, api function)', r.health),
    '',
    `api / bare Deno: ${fmt(r.agents.requestsPerSec / r.bare.requestsPerSec, 2)}x`,
  ].join('\n');
}
