import { makeWorkerUtils, run as runGraphile } from 'graphile-worker';
import postgres from 'postgres';
import type { TempStack } from '../lib/temp-stack.ts';
import { DRAIN_DEFAULTS } from '../../packages/shared/src/queue/drain.ts';
import { functionCpuMeter } from './cpu.ts';
import { muteDoorbell, untilDrainsIdle } from './doorbell.ts';
import { fmt, paced, percentile, sleep, wallMs } from './stats.ts';

// The job queue against graphile-worker, in one run on one database:
//  - drain rate: N no-op jobs enqueued beforehand, then drained (ours: one POST to the
//    job-drain function over HTTP; graphile-worker: its runner with the documented batching
//    settings), from the start of the drain until every job is finished in the database;
//  - trickle: jobs enqueued one at a time at a fixed rate, latency from the enqueue's commit
//    to the handler's start (ours: through the doorbell, pg_net and the function);
//  - ours only: the CPU time the job-drain function's processes spent on the drain (/proc),
//    per 1,000 jobs, under the hosted limits the stack enforces (each invocation stops at
//    its CPU budget and rings its continuation, so the drain takes several).

export interface QueueBenchOptions {
  jobs: number;
  trickleJobs: number;
  tricklePerSecond: number;
}

export interface QueueBenchResult {
  ours: {
    drainJobsPerSec: number;
    drainMs: number;
    enqueueMs: number;
    /** CPU ms of the job-drain function's processes per 1,000 jobs drained. */
    cpuMsPer1000: number;
    /** Its processes (isolates) that took part. */
    isolates: number;
    /** Invocations that answered the bench or a doorbell (pg_net's responses). */
    invocations: number;
    /**
     * What each invocation answered, the bench's first: jobs completed, its CPU ms (its own
     * count, cpu.ts) and why it stopped. One invocation must complete >= 10,000 jobs.
     */
    perInvocation: Array<{ completed: number; cpu_ms: number; stopped: string }>;
    trickleP50: number;
    trickleP99: number;
  };
  graphile: {
    drainJobsPerSec: number;
    drainMs: number;
    enqueueMs: number;
    trickleP50: number;
    trickleP99: number;
  };
  /** graphile-worker configured for throughput: the drain only. */
  graphileThroughput: { drainJobsPerSec: number; drainMs: number; enqueueMs: number };
}

const GRAPHILE_CONCURRENCY = 10;
/**
 * graphile-worker's configurations: its documented starting point (a local queue of
 * concurrency + 1) and the one its docs give for throughput (a local queue of 500, so one
 * fetch serves many jobs); both with completions and failures batched every 250 ms.
 */
const GRAPHILE_CONFIGS = {
  documented: { localQueue: GRAPHILE_CONCURRENCY + 1 },
  throughput: { localQueue: 500 },
} as const;
type GraphileConfig = keyof typeof GRAPHILE_CONFIGS;
const graphilePreset = (config: GraphileConfig) => ({
  worker: {
    concurrentJobs: GRAPHILE_CONCURRENCY,
    localQueue: { size: GRAPHILE_CONFIGS[config].localQueue },
    completeJobBatchDelay: 250,
    failJobBatchDelay: 250,
  },
});

async function drainOurs(stack: TempStack, sql: postgres.Sql, n: number) {
  // Mute the doorbell while enqueueing, and let the drains a doorbell called earlier finish
  // lingering, so the drain measured is the one this bench calls, alone.
  const unmute = await muteDoorbell(sql);
  await untilDrainsIdle(sql);
  const jobs = Array.from({ length: n }, (_, i) => ({ job_type: 'system.noop', payload: { i } }));
  const e0 = performance.now();
  await sql`select cesar.enqueue_many(${sql.json(jobs as never)})`;
  const enqueueMs = performance.now() - e0;
  await unmute();
  // Both queues are analyzed after their enqueue, outside the timed drain, as autovacuum does
  // within a minute for a table that grew by this much: a drain is measured on a queue the
  // planner knows, not on a fresh table's guesses (graphileDrain does the same).
  await sql`analyze cesar.job_queue`;

  const [responses] = await sql`select coalesce(max(id), 0) as id from net._http_response`;
  const meter = functionCpuMeter(stack.env.CESAR_LOCAL_DIR!, 'job-drain');
  const t0 = performance.now();
  const res = await fetch(`${stack.settings.CESAR_FUNCTIONS_URL}/job-drain`, {
    method: 'POST',
    headers: {
      authorization: `Bearer ${stack.settings.CESAR_FUNCTION_SECRET}`,
      'content-type': 'application/json',
    },
    body: JSON.stringify({ job_types: ['system.noop'], budget_ms: 120_000, reason: 'bench' }),
  });
  const body = await res.json();
  if (res.status !== 200) {
    throw new Error(`job-drain answered ${res.status} ${JSON.stringify(body)}`);
  }
  // A doorbell or tick may have started a second drain meanwhile; the drain is over when
  // every job is finished, whichever drain ran it.
  for (;;) {
    const [left] =
      await sql`select count(*)::int as n from cesar.job_queue where job_type = 'system.noop' and status <> 'completed'`;
    if (left!.n === 0) break;
    await sleep(5);
  }
  const drainMs = performance.now() - t0;
  const cpu = meter.stop();
  // The continuations (and any doorbell) answered pg_net: their answers are its responses.
  const rung = await sql<Array<{ content: string }>>`
    select content from net._http_response
    where id > ${responses!.id} and content like '{"worker":"job-drain:%' order by id`;
  const answers = [body, ...rung.map((r) => JSON.parse(r.content))] as Array<
    { completed: number; cpu_ms: number; stopped: string }
  >;
  return {
    enqueueMs,
    drainMs,
    cpuMsPer1000: (cpu.cpuMs / n) * 1000,
    isolates: cpu.processes,
    invocations: answers.length,
    perInvocation: answers.map(({ completed, cpu_ms, stopped }) => ({
      completed,
      cpu_ms,
      stopped,
    })),
  };
}

async function trickleOurs(sql: postgres.Sql, count: number, perSecond: number) {
  const enqueuedAt = new Map<string, number>();
  await paced(count, perSecond, async (i) => {
    const [row] = await sql`select cesar.enqueue('system.noop', ${sql.json({ trickle: i })}) as id`;
    enqueuedAt.set(row!.id, wallMs());
  });
  const ids = [...enqueuedAt.keys()];
  for (let tries = 0; tries < 600; tries++) {
    const [row] =
      await sql`select count(*)::int as n from cesar.job_queue where id = any(${ids}::bigint[]) and status <> 'completed'`;
    if (row!.n === 0) break;
    await sleep(50);
  }
  const rows = await sql<Array<{ id: string; started: number }>>`
    select id, (result ->> 'started_at_ms')::float8 as started from cesar.job_queue where id = any(${ids}::bigint[])`;
  if (rows.some((r) => r.started == null)) throw new Error('some trickle jobs did not run');
  return rows.map((r) => r.started - enqueuedAt.get(r.id)!);
}

async function graphileDrain(url: string, n: number, config: GraphileConfig) {
  const utils = await makeWorkerUtils({ connectionString: url });
  await utils.migrate();
  const e0 = performance.now();
  await utils.addJobs(
    Array.from({ length: n }, (_, i) => ({ identifier: 'noop', payload: { i } })),
  );
  const enqueueMs = performance.now() - e0;
  const sql = postgres(url, { max: 1 });
  await sql`analyze graphile_worker._private_jobs`;
  const t0 = performance.now();
  const runner = await runGraphile({
    connectionString: url,
    concurrency: GRAPHILE_CONCURRENCY,
    noHandleSignals: true,
    pollInterval: 2000,
    preset: graphilePreset(config),
    taskList: { noop: async () => {} },
    logger: quietLogger,
  });
  for (;;) {
    const [row] = await sql`select count(*)::int as n from graphile_worker._private_jobs`;
    if (row!.n === 0) break;
    await sleep(5);
  }
  const drainMs = performance.now() - t0;
  await runner.stop();
  await sql.end();
  await utils.release();
  return { enqueueMs, drainMs };
}

async function graphileTrickle(url: string, count: number, perSecond: number) {
  const started = new Map<string, number>();
  const runner = await runGraphile({
    connectionString: url,
    concurrency: GRAPHILE_CONCURRENCY,
    noHandleSignals: true,
    pollInterval: 2000,
    preset: graphilePreset('documented'),
    taskList: {
      noop: (_payload, helpers) => {
        started.set(String(helpers.job.id), wallMs());
        return Promise.resolve();
      },
    },
    logger: quietLogger,
  });
  const utils = await makeWorkerUtils({ connectionString: url });
  const enqueuedAt = new Map<string, number>();
  await paced(count, perSecond, async (i) => {
    const job = await utils.addJob('noop', { trickle: i });
    enqueuedAt.set(String(job.id), wallMs());
  });
  for (let tries = 0; tries < 600 && started.size < count; tries++) await sleep(50);
  await runner.stop();
  await utils.release();
  if (started.size < count) {
    throw new Error(`graphile-worker ran ${started.size} of ${count} trickle jobs`);
  }
  return [...enqueuedAt].map(([id, at]) => started.get(id)! - at);
}

// graphile-worker logs every job at info level; keep errors only.
import { Logger } from 'graphile-worker';
const quietLogger = new Logger(() => (level: string, message: string) => {
  if (level === 'error') console.error(message);
});

export async function benchQueue(
  stack: TempStack,
  options: QueueBenchOptions,
): Promise<QueueBenchResult> {
  const url = stack.settings.SUPABASE_DB_URL!;
  const sql = postgres(url, { max: 2, onnotice: () => {} });
  try {
    // Warm up both paths (connections, JIT, graphile's schema) before measuring.
    await drainOurs(stack, sql, 200);
    await graphileDrain(url, 200, 'documented');

    const ours = await drainOurs(stack, sql, options.jobs);
    const theirs = await graphileDrain(url, options.jobs, 'documented');
    const theirsFast = await graphileDrain(url, options.jobs, 'throughput');
    const oursTrickle = await trickleOurs(sql, options.trickleJobs, options.tricklePerSecond);
    const theirsTrickle = await graphileTrickle(url, options.trickleJobs, options.tricklePerSecond);
    return {
      ours: {
        ...ours,
        drainJobsPerSec: options.jobs / (ours.drainMs / 1000),
        trickleP50: percentile(oursTrickle, 50),
        trickleP99: percentile(oursTrickle, 99),
      },
      graphile: {
        ...theirs,
        drainJobsPerSec: options.jobs / (theirs.drainMs / 1000),
        trickleP50: percentile(theirsTrickle, 50),
        trickleP99: percentile(theirsTrickle, 99),
      },
      graphileThroughput: {
        ...theirsFast,
        drainJobsPerSec: options.jobs / (theirsFast.drainMs / 1000),
      },
    };
  } finally {
    await sql.end();
  }
}

export function reportQueue(r: QueueBenchResult, options: QueueBenchOptions): string {
  const line = (name: string, x: QueueBenchResult['graphile']) =>
    `| ${name} | ${fmt(x.enqueueMs, 0)} | ${fmt(x.drainMs, 0)} | ${fmt(x.drainJobsPerSec, 0)} | ${
      fmt(x.trickleP50, 2)
    } | ${fmt(x.trickleP99, 2)} |`;
  return [
    `### Job queue: ${
      options.jobs.toLocaleString('en-US')
    } no-op jobs; trickle of ${options.trickleJobs} at ${options.tricklePerSecond}/s`,
    '',
    '| system | enqueue (ms) | drain (ms) | drain jobs/s | trickle p50 (ms) | trickle p99 (ms) |',
    '| --- | ---: | ---: | ---: | ---: | ---: |',
    line(
      `CESAR Edge (job-drain over HTTP, its defaults: batch_size ${DRAIN_DEFAULTS.batchSize}, ` +
        `concurrency ${DRAIN_DEFAULTS.concurrency})`,
      r.ours,
    ),
    line('graphile-worker 0.17 (concurrency 10, localQueue 11, batch delays 250 ms)', r.graphile),
    `| graphile-worker 0.17 (concurrency 10, localQueue 500, batch delays 250 ms) | ${
      fmt(r.graphileThroughput.enqueueMs, 0)
    } | ${fmt(r.graphileThroughput.drainMs, 0)} | ${
      fmt(r.graphileThroughput.drainJobsPerSec, 0)
    } | | |`,
    '',
    `job-drain CPU under the enforced hosted limits: ${
      fmt(r.ours.cpuMsPer1000, 1)
    } ms per 1,000 jobs (${r.ours.invocations} invocations, ${r.ours.isolates} isolates)`,
    `job-drain invocations (jobs completed / own CPU ms / stopped): ${
      r.ours.perInvocation.map((i) => `${i.completed} / ${i.cpu_ms} / ${i.stopped}`).join('; ')
    }; most in one invocation: ${
      Math.max(...r.ours.perInvocation.map((i) => i.completed))
    } (target >= 10,000)`,
    `drain rate ratio (CESAR / graphile-worker at localQueue 11 / at localQueue 500): ${
      fmt(r.ours.drainJobsPerSec / r.graphile.drainJobsPerSec, 2)
    }x / ${fmt(r.ours.drainJobsPerSec / r.graphileThroughput.drainJobsPerSec, 2)}x`,
    `trickle p50 ratio (CESAR / graphile-worker): ${
      fmt(r.ours.trickleP50 / r.graphile.trickleP50, 2)
    }x (target <= 2x); CESAR p99 ${fmt(r.ours.trickleP99, 1)} ms (target < 100 ms)`,
  ].join('\n');
}
