import type { Clock } from '../clock.ts';
import { type CpuBudget, cpuBudget } from '../cpu.ts';
import type { Sql } from '../db.ts';
import { addCounts, workShift } from '../doorbell.ts';
import { classifyFailure } from '../queue/index.ts';
import type { ChangeEvent } from '../capture/index.ts';
import { matchTemplates, renderActions } from './match.ts';
import {
  type PlannedExecution,
  recordBatch,
  releaseEventProcessor,
  releaseEvents,
  takeEventBatch,
} from './queries.ts';
import type { EventTemplate } from './schema.ts';

export interface ProcessResult {
  claimed: number;
  processed: number;
  ignored: number;
  executions: number;
  jobs: number;
  failed_batches: number;
  duration_ms: number;
  /** CPU milliseconds the process spent from the invocation's start to the answer. */
  cpu_ms: number;
  /**
   * budget: wall time spent; cpu: CPU time spent (the caller rings a continuation);
   * busy: another drain holds the processor lease and will process what is pending;
   * error: a batch failed and was given back for a later drain.
   */
  stopped: 'empty' | 'budget' | 'cpu' | 'busy' | 'error';
}

// The processor lease outlives a batch comfortably; it is renewed before every batch.
const LEASE_SECONDS = 30;

/**
 * What one event runs: an execution per matching template, actions filled from the event. A
 * row rebuilt by a restore from the mirror runs nothing: it is recovered state, not news.
 */
export function planExecutions(
  events: readonly ChangeEvent[],
  templates: readonly EventTemplate[],
): PlannedExecution[] {
  return events.filter((event) => event.origin !== 'restore').flatMap((event) =>
    matchTemplates(event, templates).map((template) => ({
      event_id: event.id,
      template_id: template.id,
      actions: renderActions(template.actions, event),
      retry_policy: template.retry_policy ?? {},
      // Ordered workflows run one row's jobs one at a time, in event order.
      serial_key: template.trigger.type === 'database_event' && template.trigger.ordered &&
          event.row_key !== null
        ? `workflow:${template.id}:${event.schema_name}.${event.table_name}:${event.row_key}`
        : null,
    }))
  );
}

/**
 * Turns pending events into executions and jobs, a batch at a time in event order, until
 * none is pending or the budget is spent. One drain processes at a time (it holds the
 * processor lease); another answers `busy` at once. After giving the lease back, a drain
 * looks once more for pending events, so an event whose doorbell met a busy drain is not
 * left for the sweep. Templates are read for every batch, after its claim. Past the
 * invocation's CPU budget (`cpu`, checked from the second batch on so that every call makes
 * progress) it stops as it does at its wall budget: the batch in hand is recorded first.
 */
export async function processEvents(
  deps: { sql: Sql; clock: Clock; log?: (line: string) => void },
  options: { budgetMs: number; batchSize: number; cpu?: CpuBudget },
): Promise<ProcessResult> {
  const started = performance.now();
  const cpu = options.cpu ?? cpuBudget(Infinity);
  const holder = `webhook:${crypto.randomUUID()}`;
  const result: ProcessResult = {
    claimed: 0,
    processed: 0,
    ignored: 0,
    executions: 0,
    jobs: 0,
    failed_batches: 0,
    duration_ms: 0,
    cpu_ms: 0,
    stopped: 'empty',
  };
  const overBudget = () => performance.now() - started >= options.budgetMs;

  for (;;) {
    let pending = false;
    try {
      for (;;) {
        if (overBudget()) {
          result.stopped = 'budget';
          break;
        }
        if (result.claimed > 0 && cpu.exhausted()) {
          result.stopped = 'cpu';
          break;
        }
        // The lease is taken before the first batch and renewed with every other; the
        // templates are read after each claim: a template created before an event was written
        // must apply to it, however long this drain has been running.
        const batch = await takeEventBatch(deps.sql, holder, LEASE_SECONDS, options.batchSize);
        if (batch.busy) {
          result.stopped = 'busy';
          break;
        }
        const { events, templates = [] } = batch;
        if (events.length === 0) break;
        result.claimed += events.length;
        // A batch that failed is left for the next drain rather than retried at once.
        if (!(await processBatch(deps, events, templates, result))) {
          result.stopped = 'error';
          break;
        }
        // Fewer than asked for: every event pending at the take is done. Whether more came
        // meanwhile is asked as the lease is given back, not by a take that finds none.
        if (events.length < options.batchSize) break;
      }
    } finally {
      pending = await releaseEventProcessor(deps.sql, holder);
    }
    if (result.stopped !== 'empty' || !pending) break;
  }
  result.duration_ms = Math.round(performance.now() - started);
  result.cpu_ms = Math.round(cpu.spentMs());
  return result;
}

async function processBatch(
  deps: { sql: Sql; log?: (line: string) => void },
  events: ChangeEvent[],
  templates: EventTemplate[],
  result: ProcessResult,
): Promise<boolean> {
  const plans = planExecutions(events, templates);
  const ids = events.map((e) => e.id);
  try {
    const made = await recordBatch(deps.sql, ids, plans);
    const matched = new Set(plans.map((p) => p.event_id)).size;
    result.processed += matched;
    result.ignored += events.length - matched;
    result.executions += made.executions;
    result.jobs += made.jobs;
    return true;
  } catch (err) {
    const message = (err as Error).message;
    // A transient failure (connection lost, serialization): the batch waits for the next
    // doorbell or sweep, attempts uncounted beyond this one.
    if (classifyFailure(err).kind !== 'permanent') {
      result.failed_batches++;
      deps.log?.(`processing events ${ids[0]}..${ids.at(-1)} failed: ${message}`);
      await releaseEvents(deps.sql, ids, message);
      return false;
    }
    // Bad data: one event that cannot be processed must not hold up the others. The batch is
    // processed again one event at a time; the culprit goes back to pending with its error,
    // and is failed for good after ten attempts (redeliver it once the cause is gone).
    if (events.length > 1) {
      for (const event of events) await processBatch(deps, [event], templates, result);
      return true;
    }
    result.failed_batches++;
    deps.log?.(`processing event ${ids[0]} failed: ${message}`);
    await releaseEvents(deps.sql, ids, message);
    return true;
  }
}

/**
 * The continuation of processing that stopped at a budget: rings the webhook drain's doorbell
 * when events are still pending, so that the next invocation starts now rather than at the
 * next sweep. One call rings at most once and a call that found nothing rings nothing: the
 * chain never fans out and ends with the work. Returns whether the doorbell rang.
 */
export async function ringIfEventsPending(sql: Sql): Promise<boolean> {
  const [row] = await sql<Array<{ rang: boolean }>>`
    select coalesce((select cesar.ring_doorbell('webhook/drain') where cesar.events_pending()),
                    false) as rang
  `;
  return row!.rang;
}

/**
 * One invocation's processing: processEvents within the invocation's budgets. Rung by the
 * doorbell (`lingerMs` > 0), as a shift (doorbell.ts): it holds the doorbell, lingers for more
 * events and hands over at a budget. Otherwise one pass and, when it stopped at a budget, its
 * continuation (`ring`, ringIfEventsPending by default).
 */
export async function processInvocation(
  deps: {
    sql: Sql;
    clock: Clock;
    log?: (line: string) => void;
    ring?: (sql: Sql) => Promise<boolean>;
  },
  options: { budgetMs: number; batchSize: number; cpu: CpuBudget; lingerMs?: number },
): Promise<ProcessResult & { passes: number; continued: boolean }> {
  const started = performance.now();
  const deadline = started + options.budgetMs;
  let result: ProcessResult | undefined;
  const shift = await workShift(deps.sql, {
    target: 'webhook/drain',
    deadline,
    lingerMs: options.lingerMs ?? 0,
    tired: options.cpu.exhausted,
    ringContinuation: () => (deps.ring ?? ringIfEventsPending)(deps.sql),
  }, async () => {
    const pass = await processEvents(deps, {
      ...options,
      budgetMs: Math.max(0, deadline - performance.now()),
    });
    result = result ? addCounts(result, pass, PROCESS_COUNTS) : pass;
    if (pass.stopped === 'cpu') return 'budget';
    return pass.stopped === 'empty' && pass.claimed === 0 ? 'idle' : pass.stopped;
  });
  result!.duration_ms = Math.round(performance.now() - started);
  return { ...result!, passes: shift.passes, continued: shift.continued };
}

const PROCESS_COUNTS = [
  'claimed',
  'processed',
  'ignored',
  'executions',
  'jobs',
  'failed_batches',
] as const;
