import { spawn } from 'node:child_process';
import autocannon from 'autocannon';
import { bin, repoRoot } from '../lib/paths.ts';
import type { TempStack } from '../lib/temp-stack.ts';
import { freePort } from '../local/functions.ts';
import { fmt } from './stats.ts';

// The api function under load, with autocannon (20 connections, keep-alive): GET /api/agents
// through the local gateway against a bare Deno handler running the same SQL with the same pool
// (scripts/bench/bare-deno.ts), side by side in one run; and GET /api/health through the
// gateway. The api function and its bare peer are measured in alternating rounds
// (loadInTurns), each after a short warm-up at the same load.

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

async function run(
  url: string,
  headers: Record<string, string>,
  connections: number,
  seconds: number,
): Promise<ApiLoad & { total: number }> {
  const r = await autocannon({ url, headers, connections, duration: seconds });
  return {
    requestsPerSec: r.requests.average,
    p50: r.latency.p50,
    p99: r.latency.p99,
    failures: r.non2xx + r.errors + r.timeouts,
    total: r.requests.total,
  };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/**
 * Several targets measured in turns of ROUND_SECONDS, `seconds` each in all, after a warm-up
 * of each: on a machine shared with other work, a load that comes and goes then weighs on
 * every target alike, and the ratio between them holds (measured one after the other, 10 s
 * each, the same build read 0.27x and 1.07x within an hour). req/s: all requests over all the
 * time; p50 and p99: the median round's.
 */
async function loadInTurns(
  targets: Array<{ url: string; headers: Record<string, string> }>,
  connections: number,
  seconds: number,
): Promise<ApiLoad[]> {
  for (const t of targets) await run(t.url, t.headers, connections, Math.min(3, seconds));
  const rounds = Math.max(1, Math.round(seconds / ROUND_SECONDS));
  const results = targets.map(() => [] as Array<ApiLoad & { total: number }>);
  for (let round = 0; round < rounds; round++) {
    for (const [i, t] of targets.entries()) {
      results[i]!.push(await run(t.url, t.headers, connections, seconds / rounds));
    }
  }
  return results.map((rs) => ({
    requestsPerSec: rs.reduce((n, r) => n + r.total, 0) / seconds,
    p50: median(rs.map((r) => r.p50)),
    p99: median(rs.map((r) => r.p99)),
    failures: rs.reduce((n, r) => n + r.failures, 0),
  }));
}

const ROUND_SECONDS = 2;

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
    const [agents, bareLoad] = await loadInTurns(
      [{ url: `${base}/api/agents`, headers: auth }, { url: bare.url, headers: {} }],
      options.connections,
      options.seconds,
    );
    const [health] = await loadInTurns(
      [{ url: `${base}/api/health`, headers: auth }],
      options.connections,
      options.seconds,
    );
    return { ...options, agents: agents!, bare: bareLoad!, health: health! };
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
    `### API under load: autocannon, ${r.connections} connections, ${r.seconds} s each (agents and bare Deno in alternating 2 s rounds)`,
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
