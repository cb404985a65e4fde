import type { Clock } from '../clock.ts';
import type { Sql } from '../db.ts';
import { matchTemplates, renderActions, type WorkflowEvent } from './match.ts';
import {
  claimEvents,
  loadEventTemplates,
  type PlannedExecution,
  recordBatch,
  releaseEvents,
} from './queries.ts';
import type { Template } from './schema.ts';

export interface ProcessResult {
  claimed: number;
  processed: number;
  ignored: number;
  executions: number;
  jobs: number;
  failed_batches: number;
  duration_ms: number;
  stopped: 'empty' | 'budget';
}

/** What one event runs: an execution per matching template, actions filled from the event. */
export function planExecutions(
  events: readonly WorkflowEvent[],
  templates: readonly Template[],
): PlannedExecution[] {
  return events.flatMap((event) =>
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
 * Claims pending events a batch at a time and turns them into executions and jobs, until
 * none is pending or the budget is spent. Templates are read once per call: a template
 * changed meanwhile applies from the next call.
 */
export async function processEvents(
  deps: { sql: Sql; clock: Clock; log?: (line: string) => void },
  options: { budgetMs: number; batchSize: number },
): Promise<ProcessResult> {
  const started = performance.now();
  const result: ProcessResult = {
    claimed: 0,
    processed: 0,
    ignored: 0,
    executions: 0,
    jobs: 0,
    failed_batches: 0,
    duration_ms: 0,
    stopped: 'empty',
  };
  let templates: Template[] | null = null;
  for (;;) {
    if (performance.now() - started >= options.budgetMs) {
      result.stopped = 'budget';
      break;
    }
    const events = await claimEvents(deps.sql, options.batchSize);
    if (events.length === 0) break;
    result.claimed += events.length;
    templates ??= await loadEventTemplates(deps.sql);
    const plans = planExecutions(events, templates);
    const ids = events.map((e) => e.id);
    try {
      const made = await recordBatch(deps.sql, ids, plans);
      const matched = new Set(plans.map((p) => p.event_id)).size;
      result.processed += matched;
      result.ignored += events.length - matched;
      result.executions += made.executions;
      result.jobs += made.jobs;
    } catch (err) {
      // The events go back to pending (failed after ten attempts) with the error; the next
      // drain tries again.
      result.failed_batches++;
      deps.log?.(`processing events ${ids[0]}..${ids.at(-1)} failed: ${(err as Error).message}`);
      await releaseEvents(deps.sql, ids, (err as Error).message);
    }
  }
  result.duration_ms = Math.round(performance.now() - started);
  return result;
}
