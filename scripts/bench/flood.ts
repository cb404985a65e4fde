import type { TempStack } from '../lib/temp-stack.ts';
import { fmt, percentile } from './stats.ts';

// Authenticated requests while a flood of tokenless ones runs. Refused requests are answered
// before any database work (their counts wait in memory for the next authenticated write),
// so the flood should cost the authenticated requests little more than the CPU they share.

export interface FloodBenchResult {
  requests: number;
  floodClients: number;
  quiet: { p50: number; p99: number };
  flooded: { p50: number; p99: number };
  refusedPerSecond: number;
  refusedStatuses: Record<string, number>;
}

/** Latencies (ms) of `count` authenticated GET /api/agents, one at a time. */
async function authenticatedLatencies(stack: TempStack, count: number): Promise<number[]> {
  const url = `${stack.settings.CESAR_FUNCTIONS_URL}/api/agents`;
  const headers = { authorization: `Bearer ${stack.settings.CESAR_FUNCTION_SECRET}` };
  const latencies: number[] = [];
  for (let i = 0; i < count; i++) {
    const started = performance.now();
    const res = await fetch(url, { headers });
    await res.arrayBuffer();
    if (res.status !== 200) throw new Error(`GET /api/agents answered ${res.status}`);
    latencies.push(performance.now() - started);
  }
  return latencies;
}

export async function benchFlood(
  stack: TempStack,
  options: { requests: number; floodClients: number },
): Promise<FloodBenchResult> {
  await authenticatedLatencies(stack, 50); // warm: the pool connected, the code compiled
  const quiet = await authenticatedLatencies(stack, options.requests);

  let flooding = true;
  let refused = 0;
  const statuses: Record<string, number> = {};
  const url = `${stack.settings.CESAR_FUNCTIONS_URL}/api/agents`;
  const floodStarted = performance.now();
  const clients = Array.from({ length: options.floodClients }, async () => {
    while (flooding) {
      const res = await fetch(url).catch(() => null);
      await res?.arrayBuffer();
      const status = String(res?.status ?? 'error');
      statuses[status] = (statuses[status] ?? 0) + 1;
      refused++;
    }
  });
  const flooded = await authenticatedLatencies(stack, options.requests);
  flooding = false;
  await Promise.all(clients);
  const floodSeconds = (performance.now() - floodStarted) / 1000;

  const summary = (xs: number[]) => ({ p50: percentile(xs, 50), p99: percentile(xs, 99) });
  return {
    requests: options.requests,
    floodClients: options.floodClients,
    quiet: summary(quiet),
    flooded: summary(flooded),
    refusedPerSecond: refused / floodSeconds,
    refusedStatuses: statuses,
  };
}

export function reportFlood(r: FloodBenchResult): string {
  return [
    `### Tokenless flood: ${r.requests} authenticated GET /api/agents, one at a time, alone and then while ${r.floodClients} clients send tokenless requests`,
    '',
    '| | p50 (ms) | p99 (ms) |',
    '| --- | ---: | ---: |',
    `| alone | ${fmt(r.quiet.p50, 2)} | ${fmt(r.quiet.p99, 2)} |`,
    `| during the flood | ${fmt(r.flooded.p50, 2)} | ${fmt(r.flooded.p99, 2)} |`,
    '',
    `flood: ${fmt(r.refusedPerSecond, 0)} tokenless requests/s answered (${
      Object.entries(r.refusedStatuses).map(([s, n]) => `${s}: ${n}`).join(', ')
    }); p99 during / alone: ${fmt(r.flooded.p99 / r.quiet.p99, 2)}x`,
  ].join('\n');
}
