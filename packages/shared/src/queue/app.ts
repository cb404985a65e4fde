import { z } from 'zod';
import type { Clock } from '../clock.ts';
import type { Config } from '../config.ts';
import { cpuBudget, cpuBudgetMsField } from '../cpu.ts';
import { HOSTED_LIMITS } from '../limits.ts';
import type { Sql } from '../db.ts';
import {
  functionApp,
  type FunctionAppConfig,
  outboundPolicy,
  readJsonBody,
} from '../http/index.ts';
import { addCounts, lingerMsField, workShift } from '../doorbell.ts';
import { DRAIN_DEFAULTS, drainQueue, type DrainResult, type HandlerRegistry } from './drain.ts';
import { awaitJobs, type FinishAndClaim, ringIfJobsDue } from './queries.ts';

// Supabase stops a function at 150 s of wall clock on the free plan (400 s on paid plans).
// A drain claims for at most 25 s by default, so it answers well inside that even when its
// last jobs run for a while, and the next doorbell or tick carries on. Its CPU time is
// bounded too (CPU_BUDGET_MS of the hosted 2 s per request, see limits.ts): whichever budget
// runs out first, the drain finishes what it claimed, answers, and rings its continuation.
const DEFAULT_BUDGET_MS = 25_000;
// Handlers still running this long into the invocation are aborted and retried, so that the
// drain records them and answers before hosted's wall clock (150 s on the free plan) stops it:
// leases are renewed while handlers run, so the lease no longer bounds a handler's time. A
// handler that ignores its signal holds its job (leased) and the answer until it stops, or
// until the wall clock ends the invocation and the job's lease runs out (see drainQueue).
const HANDLER_TIME_LIMIT_MS = HOSTED_LIMITS.wallClockMs.free - 15_000;

export const drainRequest = z.object({
  /** Why the drain was called: `doorbell`, `tick`, `cli`... (informational). */
  reason: z.string().max(100).optional(),
  budget_ms: z.number().int().min(100).max(120_000).default(DEFAULT_BUDGET_MS),
  /** CPU milliseconds this invocation may spend; lower than the default only (tests). */
  cpu_budget_ms: cpuBudgetMsField,
  concurrency: z.number().int().min(1).max(2_000).default(DRAIN_DEFAULTS.concurrency),
  batch_size: z.number().int().min(1).max(1_000).default(DRAIN_DEFAULTS.batchSize),
  job_types: z.array(z.string().min(1)).min(1).max(100).optional(),
  /** See doorbell.ts. A drain of some job types only never lingers: it would hold the
   * doorbell for the others. */
  linger_ms: lingerMsField,
}).strict();

export interface JobDrainDeps {
  sql: Sql;
  mirror?: Sql | null;
  config: FunctionAppConfig & Partial<Pick<Config, 'httpAllow' | 'supabaseUrl'>>;
  clock: Clock;
  handlers: HandlerRegistry;
  random?: () => number;
  /**
   * Rings the next invocation when due jobs are left (ringIfJobsDue by default); returns
   * whether it rang.
   */
  ringContinuation?: (sql: Sql, jobTypes: string[] | null) => Promise<boolean>;
}

/** The `job-drain` function: POST /job-drain claims and runs due jobs, answering with counts. */
export function createJobDrainApp(deps: JobDrainDeps) {
  const app = functionApp('job-drain', deps);
  const outbound = outboundPolicy(deps.config);

  app.post('/', async (c) => {
    const body = await readJsonBody(c, drainRequest);
    const started = performance.now();
    // Counted from the start of the oldest request in flight, as the runtime counts.
    const cpu = cpuBudget(body.cpu_budget_ms);
    const drainDeps = {
      sql: deps.sql,
      mirror: deps.mirror ?? null,
      handlers: deps.handlers,
      clock: deps.clock,
      random: deps.random ?? Math.random,
      outbound,
    };
    const worker = `job-drain:${crypto.randomUUID()}`;
    let result: DrainResult | undefined;
    // What the shift's wait claimed, for the next pass to run.
    let taken: FinishAndClaim | null = null;
    const shift = await workShift(deps.sql, {
      target: 'job-drain',
      deadline: started + body.budget_ms,
      lingerMs: body.job_types ? 0 : body.linger_ms,
      tired: cpu.exhausted,
      // One pass stopped by a budget with work left: the next invocation follows at once. A
      // doorbell that cannot ring leaves the work to the tick; the jobs run are recorded.
      ringContinuation: () =>
        (deps.ringContinuation ?? ringIfJobsDue)(deps.sql, body.job_types ?? null),
      // Waiting for work, claim it in the same round trip (a trickled job started one round
      // trip through the pooler sooner).
      awaitWork: async (timeoutMs) => {
        taken = await awaitJobs(deps.sql, {
          worker,
          batchSize: body.batch_size,
          jobTypes: body.job_types ?? null,
          start: Math.min(body.batch_size, body.concurrency),
          timeoutMs,
        });
        return taken !== null;
      },
    }, async () => {
      const claim = taken;
      taken = null;
      const pass = await drainQueue(drainDeps, {
        worker,
        budgetMs: Math.max(0, started + body.budget_ms - performance.now()),
        cpu,
        concurrency: body.concurrency,
        batchSize: body.batch_size,
        jobTypes: body.job_types ?? null,
        timeLimitMs: Math.max(0, started + HANDLER_TIME_LIMIT_MS - performance.now()),
        taken: claim,
      });
      result = result ? addCounts(result, pass, DRAIN_COUNTS) : pass;
      if (pass.stopped !== 'empty') return 'budget';
      return pass.claimed === 0 ? 'idle' : 'empty';
    });
    result!.duration_ms = Math.round(performance.now() - started);
    return c.json({ ...result!, passes: shift.passes, continued: shift.continued });
  });

  return app;
}

const DRAIN_COUNTS = [
  'claimed',
  'completed',
  'retried',
  'failed',
  'cancelled',
  'superseded',
  'slow_to_stop',
  'claims',
] as const;
