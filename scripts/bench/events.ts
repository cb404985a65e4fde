import postgres from 'postgres';
import type { TempStack } from '../lib/temp-stack.ts';
import { functionCpuMeter } from './cpu.ts';
import { muteDoorbell, untilDrainsIdle } from './doorbell.ts';
import { fmt, paced, percentile, sleep, wallMs } from './stats.ts';

// Event capture and processing on the local stack:
//  - capture: the same bulk INSERT into a watched and an unwatched copy of one table (the
//    doorbell muted, so nothing else runs meanwhile); events/s and the overhead ratio;
//  - matching: the captured statements made into events, and these into executions and jobs,
//    by POSTs to /functions/v1/webhook/drain, with one template matching every row; events/s.
//    Each call stops at its CPU budget under the enforced hosted limits (the doorbell is muted,
//    so its continuation does not ring): the bench calls again until nothing is left, and
//    reads the webhook function's CPU time from /proc;
//  - latency: single-row INSERTs at a steady rate with the doorbell on, from the INSERT's
//    commit to its job's handler starting, p50/p99.

export interface EventsBenchOptions {
  rows: number;
  rounds: number;
  latencyRows: number;
  latencyPerSecond: number;
  sustainedRows: number;
  sustainedPerSecond: number;
}

export interface EventsBenchResult {
  watchedMs: number;
  unwatchedMs: number;
  tasksWatchedMs: number;
  tasksUnwatchedMs: number;
  capturePerSec: number;
  /** cesar.expand_captures() alone, INSERT and UPDATE statements of the copy of tasks. */
  expandInsertsPerSec: number;
  expandUpdatesPerSec: number;
  processed: number;
  processMs: number;
  processPerSec: number;
  /** Calls to webhook/drain it took, and the webhook function's CPU ms per 1,000 events. */
  processCalls: number;
  processCpuPer1000: number;
  latencyP50: number;
  latencyP99: number;
  /** Function invocations per 1,000 sustained write transactions, and their commit -> job. */
  sustainedInvocationsPer1000: number;
  sustainedP50: number;
  sustainedP99: number;
}

const COLUMNS =
  `id uuid primary key default gen_random_uuid(), name text not null, status text not null,
  score integer not null, payload jsonb not null default '{}', created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()`;

async function timedInsert(sql: postgres.Sql, table: string, rows: number): Promise<number> {
  const t0 = performance.now();
  await sql.unsafe(`insert into ${table} (name, status, score, payload)
                    select 'row ' || i, 'new', i % 100, jsonb_build_object('i', i) from generate_series(1, ${rows}) i`);
  return performance.now() - t0;
}

export async function benchEvents(
  stack: TempStack,
  options: EventsBenchOptions,
): Promise<EventsBenchResult> {
  const sql = postgres(stack.settings.SUPABASE_DB_URL!, { max: 2, onnotice: () => {} });
  const headers = {
    authorization: `Bearer ${stack.settings.CESAR_FUNCTION_SECRET}`,
    'content-type': 'application/json',
  };
  try {
    await sql`create schema if not exists bench`;
    await sql.unsafe(
      `create table bench.watched (${COLUMNS}); create table bench.unwatched (${COLUMNS})`,
    );
    await sql`select cesar.watch('bench.watched')`;
    const unmute = await muteDoorbell(sql);

    // Capture: alternate the two tables, several rounds, median of each.
    const watched: number[] = [];
    const unwatched: number[] = [];
    await timedInsert(sql, 'bench.unwatched', 1000); // warm-up
    for (let round = 0; round < options.rounds; round++) {
      unwatched.push(await timedInsert(sql, 'bench.unwatched', options.rows));
      watched.push(await timedInsert(sql, 'bench.watched', options.rows));
    }

    // The same on copies of public.tasks (its indexes, checks and defaults): a real table.
    await sql`create table bench.tasks_watched (like public.tasks including all)`;
    await sql`create table bench.tasks_unwatched (like public.tasks including all)`;
    await sql`select cesar.watch('bench.tasks_watched')`;
    const tasksInsert = async (table: string) => {
      const t0 = performance.now();
      await sql.unsafe(`insert into ${table} (title, status, priority, payload)
                        select 'task ' || i, 'pending', i % 10, jsonb_build_object('i', i)
                        from generate_series(1, ${options.rows}) i`);
      return performance.now() - t0;
    };
    const tasksWatched: number[] = [];
    const tasksUnwatched: number[] = [];
    for (let round = 0; round < options.rounds; round++) {
      tasksUnwatched.push(await tasksInsert('bench.tasks_unwatched'));
      tasksWatched.push(await tasksInsert('bench.tasks_watched'));
    }
    await sql`select cesar.unwatch('bench.tasks_watched')`;
    // Its captured statements made into events, which are dropped: not part of matching.
    await sql`select cesar.expand_captures()`;
    await sql`delete from cesar.event_log where table_name = 'tasks_watched'`;
    const capture = {
      watchedMs: percentile(watched, 50),
      unwatchedMs: percentile(unwatched, 50),
      tasksWatchedMs: percentile(tasksWatched, 50),
      tasksUnwatchedMs: percentile(tasksUnwatched, 50),
    };

    // Matching: every captured event (rounds x rows) through one drain call.
    const res = await fetch(`${stack.settings.CESAR_FUNCTIONS_URL}/api/workflows`, {
      method: 'POST',
      headers,
      body: JSON.stringify({
        name: 'bench: every watched row',
        trigger: {
          type: 'database_event',
          table: 'bench.watched',
          events: ['INSERT'],
          filter: { field: 'record.status', op: 'eq', value: 'new' },
        },
        actions: [{
          type: 'enqueue_job',
          job_type: 'system.noop',
          payload: { row: '{{record.id}}', score: '{{record.score}}' },
        }],
      }),
    });
    if (res.status !== 201) {
      throw new Error(`creating the bench template failed: ${res.status} ${await res.text()}`);
    }
    const meter = functionCpuMeter(stack.env.CESAR_LOCAL_DIR!, 'webhook');
    const [{ since }] = await sql<[{ since: Date }]>`select clock_timestamp() as since`;
    const p0 = performance.now();
    const processed = { calls: 0 };
    for (;;) {
      const drained = await fetch(`${stack.settings.CESAR_FUNCTIONS_URL}/webhook/drain`, {
        method: 'POST',
        headers,
        body: JSON.stringify({ budget_ms: 120_000, batch_size: 1000, reason: 'bench' }),
      });
      const answer = await drained.json();
      if (drained.status !== 200 || answer.failed_batches) {
        throw new Error(`drain failed: ${JSON.stringify(answer)}`);
      }
      processed.calls++;
      if (answer.stopped === 'busy') await sleep(50);
      else if (answer.stopped !== 'cpu' && answer.stopped !== 'budget') break;
    }
    const processMs = performance.now() - p0;
    const processCpu = meter.stop();
    // Counted in the database: between two calls the pg_cron sweep's drain may take a turn,
    // and what it processes is not in the calls' answers (the CPU meter counts it: same
    // function).
    const [{ events }] = await sql<[{ events: number }]>`
      select count(*)::int as events from cesar.event_log
      where processed_at >= ${since} and status in ('processed', 'ignored')`;

    // Latency: single-row inserts with the doorbell on, on an empty queue (the matching
    // phase's jobs are dropped, so draining them does not load the machine meanwhile).
    await sql`delete from cesar.job_queue where job_type = 'system.noop'`;
    await unmute();
    const single = await pacedWrites(sql, 'latency', options.latencyRows, options.latencyPerSecond);
    const latencies = single.latencies;
    // Sustained single-row write transactions on the watched table, the template matching
    // each: the function invocations they cost (every call a doorbell or a sweep made, all
    // functions, counted by pg_net's responses) and commit -> job at that rate.
    const sustained = await pacedWrites(
      sql,
      'sustained',
      options.sustainedRows,
      options.sustainedPerSecond,
    );

    // Last, as it leaves much to vacuum: making events from captured statements, alone, on a
    // fresh copy of tasks with the doorbell muted: one INSERT of rounds x rows rows, then one
    // UPDATE of all of them (old and new images paired, changed columns found).
    const unmuteAgain = await muteDoorbell(sql);
    await sql`create table bench.tasks_expand (like public.tasks including all)`;
    await sql`select cesar.watch('bench.tasks_expand')`;
    const timedExpand = async () => {
      const t0 = performance.now();
      const [row] = await sql<Array<{ n: number }>>`select cesar.expand_captures() as n`;
      return { events: row!.n, ms: performance.now() - t0 };
    };
    await timedExpand(); // whatever else is captured by now
    await sql.unsafe(`insert into bench.tasks_expand (title, status, priority, payload)
                      select 'task ' || i, 'pending', i % 10, jsonb_build_object('i', i)
                      from generate_series(1, ${options.rows * options.rounds}) i`);
    const expandInserts = await timedExpand();
    await sql`update bench.tasks_expand set priority = priority + 1`;
    const expandUpdates = await timedExpand();
    // Nothing of this left for the phases after: its events dropped, the doorbell back.
    await sql`select cesar.unwatch('bench.tasks_expand')`;
    // The matching phase made 90,000 executions moments ago, before autovacuum could count
    // them: the foreign key's ON DELETE SET NULL then ran as a sequential scan of them per
    // deleted event (9 minutes of CPU for these 180,000). Counted, it takes the index.
    await sql`analyze cesar.workflow_executions`;
    await sql`delete from cesar.event_log where table_name = 'tasks_expand'`;
    await unmuteAgain();
    return {
      ...capture,
      expandInsertsPerSec: expandInserts.events / (expandInserts.ms / 1000),
      expandUpdatesPerSec: expandUpdates.events / (expandUpdates.ms / 1000),
      capturePerSec: options.rows / (capture.watchedMs / 1000),
      processed: events,
      processMs,
      processPerSec: events / (processMs / 1000),
      processCalls: processed.calls,
      processCpuPer1000: (processCpu.cpuMs / events) * 1000,
      latencyP50: percentile(latencies, 50),
      latencyP99: percentile(latencies, 99),
      sustainedInvocationsPer1000: (sustained.invocations / options.sustainedRows) * 1000,
      sustainedP50: percentile(sustained.latencies, 50),
      sustainedP99: percentile(sustained.latencies, 99),
    };
  } finally {
    await sql.end();
  }
}

/**
 * Single-row INSERTs into bench.watched at a fixed rate with the doorbell on: each row's commit
 * -> its job's start (ms), and the function invocations made from the first write until every
 * job the rows made has run and the drains have answered (pg_net's requests: doorbells,
 * hand-overs and the ticks, all functions).
 */
export async function pacedWrites(
  sql: postgres.Sql,
  label: string,
  count: number,
  perSecond: number,
) {
  const requestsMade = async () => {
    const [row] = await sql<[{ n: string }]>`
      select last_value as n from net.http_request_queue_id_seq`;
    return Number(row.n);
  };
  const requestsBefore = await requestsMade();
  const committedAt = new Map<string, number>();
  await paced(count, perSecond, async (i) => {
    const [row] =
      await sql`insert into bench.watched (name, status, score) values (${`${label} ${i}`}, 'new', 1) returning id`;
    committedAt.set(row!.id, wallMs());
  });
  const ids = [...committedAt.keys()];
  let started: Array<{ row: string; at: number | null }> = [];
  for (let tries = 0; tries < 1200; tries++) {
    started = await sql<Array<{ row: string; at: number | null }>>`
      select payload ->> 'row' as row, (result ->> 'started_at_ms')::float8 as at
      from cesar.job_queue where job_type = 'system.noop' and payload ->> 'row' = any(${ids})`;
    if (started.length === ids.length && started.every((e) => e.at !== null)) break;
    await sleep(50);
  }
  if (started.length !== ids.length || !started.every((e) => e.at !== null)) {
    throw new Error(`${label}: ${ids.length} rows, ${started.length} jobs, not all run`);
  }
  // The drains linger for more before they answer (and may hand over meanwhile).
  await untilDrainsIdle(sql);
  return {
    latencies: started.map((e) => e.at! - committedAt.get(e.row)!),
    invocations: (await requestsMade()) - requestsBefore,
  };
}

export function reportEvents(r: EventsBenchResult, o: EventsBenchOptions): string {
  const rows = o.rows.toLocaleString('en-US');
  const ratio = (a: number, b: number) => `${fmt(a / b, 2)}x`;
  return [
    `### Database events: ${rows}-row INSERTs (median of ${o.rounds}); ` +
    `${o.latencyRows} single-row INSERTs at ${o.latencyPerSecond}/s`,
    '',
    '| measure | value |',
    '| --- | ---: |',
    `| narrow table (7 columns, primary key): INSERT unwatched / watched (ms) | ` +
    `${fmt(r.unwatchedMs, 0)} / ${fmt(r.watchedMs, 0)} |`,
    `| narrow table: capture overhead (target <= 1.5x) | ${ratio(r.watchedMs, r.unwatchedMs)} |`,
    `| copy of public.tasks (16 columns, 5 indexes): INSERT unwatched / watched (ms) | ` +
    `${fmt(r.tasksUnwatchedMs, 0)} / ${fmt(r.tasksWatchedMs, 0)} |`,
    `| copy of public.tasks: capture overhead (target <= 1.5x) | ${
      ratio(r.tasksWatchedMs, r.tasksUnwatchedMs)
    } |`,
    `| events captured per second (narrow table) | ${fmt(r.capturePerSec, 0)} |`,
    `| captured rows made into events per second (one ${
      (o.rows * o.rounds).toLocaleString('en-US')
    }-row statement, copy of tasks): INSERT / UPDATE | ${fmt(r.expandInsertsPerSec, 0)} / ${
      fmt(r.expandUpdatesPerSec, 0)
    } |`,
    `| events matched into executions and jobs per second, ${
      r.processed.toLocaleString('en-US')
    } events ` +
    `(target >= 5,000) | ${fmt(r.processPerSec, 0)} |`,
    `| webhook function CPU ms per 1,000 events matched (${r.processCalls} calls, each within ` +
    `its CPU budget) | ${fmt(r.processCpuPer1000, 1)} |`,
    `| INSERT commit -> job started, p50 / p99 ms (targets 25 / 100) | ` +
    `${fmt(r.latencyP50, 1)} / ${fmt(r.latencyP99, 1)} |`,
    `| ${
      o.sustainedRows.toLocaleString('en-US')
    } single-row INSERTs at ${o.sustainedPerSecond}/s: ` +
    `function invocations per 1,000 (target <= 20) | ${fmt(r.sustainedInvocationsPer1000, 0)} |`,
    `| the same: commit -> job started, p50 / p99 ms (targets 25 / 100) | ` +
    `${fmt(r.sustainedP50, 1)} / ${fmt(r.sustainedP99, 1)} |`,
  ].join('\n');
}
