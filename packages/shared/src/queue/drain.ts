import type { Clock } from '../clock.ts';
import { type CpuBudget, cpuBudget } from '../cpu.ts';
import type { Sql } from '../db.ts';
import { type OutboundPolicy, strictPolicy } from '../http/index.ts';
import { classifyFailure, describeError, PermanentJobError } from './errors.ts';
import { decideOutcome } from './outcome.ts';
import {
  type ClaimedJob,
  completeJobs,
  type Completion,
  failJobs,
  type Failure,
  finishAndClaim,
  startJobs,
} from './queries.ts';

/**
 * What a handler gets: its job, the database, the clock, the rules for outbound requests, and
 * an abort signal.
 */
export interface JobContext {
  job: ClaimedJob;
  sql: Sql;
  /** The CockroachDB mirror, where one is configured. */
  mirror: Sql | null;
  clock: Clock;
  /** What outboundRequest may reach (CESAR_HTTP_ALLOW, the gateway refused). */
  outbound: OutboundPolicy;
  /** Aborted shortly before the job's lease runs out. */
  signal: AbortSignal;
  /**
   * The invocation's CPU budget, shared with the drain: a long handler (sync.table) stops at
   * a checkpoint once it is spent and leaves the rest to a follow-up job. Absent: no limit.
   */
  cpu?: CpuBudget;
}

/** Does the job's work; its return value (JSON) is stored as the job's result. */
export type JobHandler = (ctx: JobContext) => Promise<unknown>;
export type HandlerRegistry = Readonly<Record<string, JobHandler>>;

export interface DrainDeps {
  sql: Sql;
  mirror?: Sql | null;
  handlers: HandlerRegistry;
  clock: Clock;
  random: () => number;
  /** Absent: public addresses only, nothing allowed beyond them. */
  outbound?: OutboundPolicy;
}

export interface DrainOptions {
  /** Names this drain's leases; unique per call. */
  worker: string;
  /** Stop claiming after this long; jobs already running are finished. */
  budgetMs: number;
  /**
   * Stop claiming once this CPU budget is spent (the invocation's, counted from its start);
   * none: no CPU limit (the function always gives one; scripts and tests need not).
   */
  cpu?: CpuBudget;
  /** Handlers running at once in this call. */
  concurrency: number;
  /** Most jobs taken by one claim. */
  batchSize: number;
  /** Only these job types, when given. */
  jobTypes?: string[] | null;
}

export interface DrainResult {
  worker: string;
  claimed: number;
  completed: number;
  retried: number;
  failed: number;
  /** Outcomes refused because the job was cancelled or its lease taken over meanwhile. */
  superseded: number;
  duration_ms: number;
  /** CPU milliseconds the process spent from the invocation's start to the answer. */
  cpu_ms: number;
  /** empty: nothing due was left to claim; budget: wall time spent; cpu: CPU time spent. */
  stopped: 'empty' | 'budget' | 'cpu';
}

// A handler is aborted this long before its lease ends, so its failure is recorded while the
// lease is still ours.
const LEASE_MARGIN_MS = 2_000;

/**
 * The job-drain function's defaults (POST /job-drain's batch_size and concurrency), its
 * fastest settings on the bench (npm run bench -- queue, 20,000 no-op jobs): batches of 500
 * with room for two batches' handlers, so that a second claim can be out while the first
 * batch runs. See drainQueue for the measurements.
 */
export const DRAIN_DEFAULTS = { batchSize: 500, concurrency: 1_000 } as const;

// Claims out at once: a second goes out while the first is away (see claimNext).
const CLAIMS_IN_FLIGHT = 2;

// Outcomes waiting longer than this are recorded even while no claim is due, so that slow
// handlers' results reach the database promptly.
const FLUSH_INTERVAL_MS = 100;

/**
 * Claims and runs jobs until the queue has nothing due or a budget is spent: wall time, or
 * CPU time (hosted stops a request at 2 s of CPU; the function's caller rings a continuation
 * when due work is left, see app.ts). Either way the jobs already claimed are finished.
 *
 * Claims fill a local queue a batch at a time and handlers take jobs from it, `concurrency`
 * at once. Finished jobs' outcomes are recorded in the statement that claims the next batch
 * (cesar.finish_and_claim: one round trip through the pooler per batch), or on their own
 * at least every 100 ms while no claim is due. A claim does not wait for its answer: the
 * drain goes on running jobs, and sends a second claim while the first is away when the
 * slots not spoken for take a whole batch, so that the database works on one batch (on its
 * own pooled connection) while this side runs the other. With the defaults (batches of 500,
 * concurrency 1,000) and no-op jobs that is two claims in flight at all times. Measured on
 * the local stack through the gateway and PgBouncer (20,000 no-op jobs): 3,470 jobs/s and
 * 68 CPU ms per 1,000 jobs before (batches of 100, two statements each, one at a time),
 * 12,000-16,000 jobs/s and 13-22 CPU ms per 1,000 after, one invocation for all 20,000; on
 * a queue table that was never analyzed, about 6,500 jobs/s. The price is that jobs wait,
 * leased, in the local queue (at most `batchSize` a claim), and the drain stops claiming once
 * its budget is spent, well before their leases run out. Two drains can overlap safely:
 * claims skip each other's rows, and outcomes are fenced by lease.
 *
 * An attempt is charged when its handler starts, before it starts: the claim charges the jobs
 * that fill the free slots, and jobs taken from the local queue later are charged a group of
 * free slots at a time (cesar.start_jobs, one more statement per group, which also renews
 * their lease). A drain that dies leaves its unstarted jobs to expire uncharged; a job whose
 * handler started (and perhaps killed the drain) is charged, so it cannot run for ever. (The
 * claim commits without waiting for the WAL flush: a database crash may lose its charge, and
 * then the job simply runs again. A claim that records outcomes waits for it: a recorded
 * outcome is never lost.)
 */
export async function drainQueue(deps: DrainDeps, options: DrainOptions): Promise<DrainResult> {
  const started = performance.now();
  const deadline = started + options.budgetMs;
  const cpu = options.cpu ?? cpuBudget(Infinity);
  let claims = 0;
  // Why claiming must stop now, if it must. The CPU budget is checked from the second claim
  // on: every invocation takes at least one batch, so a chain of continuations always makes
  // progress, even on an isolate whose other requests spent the CPU.
  const spent = () =>
    performance.now() >= deadline ? 'budget' : claims > 0 && cpu.exhausted() ? 'cpu' : null;
  const result: DrainResult = {
    worker: options.worker,
    claimed: 0,
    completed: 0,
    retried: 0,
    failed: 0,
    superseded: 0,
    duration_ms: 0,
    cpu_ms: 0,
    stopped: 'empty',
  };
  const local: ClaimedJob[] = [];
  let running = 0;
  // Resolved when a job finishes: the loop waits on it instead of racing every running job's
  // promise (Promise.race over the running set attached a handler per running job per wakeup).
  let wake: () => void = () => {};
  let finished = Promise.resolve();
  const rearm = () => finished = new Promise<void>((resolve) => wake = resolve);
  rearm();
  let completions: Completion[] = [];
  let failures: Failure[] = [];
  let lastFlush = performance.now();

  function tally(sent: { done: number; failed: number }, recorded: Recorded): void {
    result.completed += recorded.completed;
    result.failed += recorded.failed;
    result.retried += recorded.retried;
    result.superseded += sent.done - recorded.completed + sent.failed - recorded.failed -
      recorded.retried;
  }

  function takeOutcomes(): [Completion[], Failure[]] {
    const taken: [Completion[], Failure[]] = [completions, failures];
    completions = [];
    failures = [];
    lastFlush = performance.now();
    return taken;
  }

  /** Records the finished jobs' outcomes, with no claim. */
  async function flush(): Promise<void> {
    const [done, failed] = takeOutcomes();
    if (done.length === 0 && failed.length === 0) return;
    const [completedIds, failedRows] = await Promise.all([
      completeJobs(deps.sql, options.worker, done),
      failJobs(deps.sql, options.worker, failed),
    ]);
    tally({ done: done.length, failed: failed.length }, {
      completed: completedIds.length,
      failed: failedRows.filter((r) => r.status === 'failed').length,
      retried: failedRows.filter((r) => r.status === 'pending').length,
    });
  }

  /** Starts as many jobs from the local queue as there are free slots. */
  async function startFromLocal(): Promise<void> {
    const wave = local.splice(0, options.concurrency - running);
    const started = await startJobs(deps.sql, options.worker, wave);
    // Cancelled or taken over while waiting here.
    result.superseded += wave.length - started.length;
    startWave(started);
  }

  /**
   * Runs jobs started together. Jobs of a wave with the same lease share one abort timer:
   * they started at the same moment, so their handlers are due to stop at the same moment
   * (one timer and one AbortController per lease length instead of one per job).
   */
  function startWave(jobs: ClaimedJob[]): void {
    const watches = new Map<number, LeaseWatch>();
    for (const job of jobs) {
      let watch = watches.get(job.lease_seconds);
      if (!watch) watches.set(job.lease_seconds, watch = leaseWatch(job.lease_seconds));
      watch.add();
      running++;
      runJob(deps, job, cpu, watch).then((outcome) => {
        if (outcome.ok) {
          completions.push({ id: job.id, attempt: job.attempts, result: outcome.result });
        } else failures.push(outcome.failure);
        running--;
        wake();
      });
    }
  }

  let claiming = true;
  // An empty claim while jobs still run may only mean a per-type cap held the rest back:
  // then the drain claims once more after one of its jobs finishes (and its outcome is
  // recorded, which frees the slot).
  let claimAgainAfterFinish = false;
  // Claims in flight, and the slots they may start jobs in (reserved until they answer).
  let inFlight = 0;
  let reserved = 0;
  let claimError: unknown = null;

  /**
   * Records the finished jobs' outcomes and claims the next batch (one statement), without
   * waiting for the answer: the loop goes on running jobs meanwhile, and may send a second
   * claim while the first is out, so that the database works on one batch while this side
   * runs the other (each on its own pooled connection; the claims skip each other's rows).
   */
  function claimNext(): void {
    claims++;
    inFlight++;
    const start = Math.min(options.batchSize, options.concurrency - running - reserved);
    reserved += start;
    const [done, failed] = takeOutcomes();
    finishAndClaim(deps.sql, {
      worker: options.worker,
      completions: done,
      failures: failed,
      batchSize: options.batchSize,
      jobTypes: options.jobTypes,
      start,
    }).then((step) => {
      tally({ done: done.length, failed: failed.length }, step);
      const jobs = step.jobs;
      result.claimed += jobs.length;
      const startNow: ClaimedJob[] = [];
      for (const job of jobs) job.started ? startNow.push(job) : local.push(job);
      reserved -= start;
      inFlight--;
      startWave(startNow);
      // A job that finished while the claim ran may have freed a capped slot the claim saw
      // taken: record it and claim again (each pass needs a job to have finished).
      if (jobs.length === 0 && completions.length + failures.length === 0) {
        claiming = false;
        claimAgainAfterFinish = running > 0 || inFlight > 0;
      }
    }, (err) => {
      claimError ??= err;
      reserved -= start;
      inFlight--;
    }).finally(() => wake());
  }

  for (;;) {
    if (claimError) throw claimError;
    // A group may come back smaller (jobs cancelled or taken over meanwhile): fill again.
    while (running < options.concurrency && local.length > 0) await startFromLocal();
    // Claim the next batch once the local queue can no longer fill every slot, recording the
    // finished jobs' outcomes in the same statement; a second claim goes out while the first
    // is away when the slots not spoken for can take a whole batch. (The budgets are read
    // only here: reading the CPU clock is a system call.)
    while (
      claiming && local.length === 0 && inFlight < CLAIMS_IN_FLIGHT &&
      running + reserved < options.concurrency &&
      (inFlight === 0 || options.concurrency - running - reserved >= options.batchSize)
    ) {
      const stop = spent();
      if (stop) {
        claiming = false;
        result.stopped = stop;
      } else claimNext();
    }
    if (running === 0 && local.length === 0 && inFlight === 0) break;
    await finished;
    rearm();
    if (claimAgainAfterFinish && spent() === null) {
      claimAgainAfterFinish = false;
      claiming = true;
    }
    if (inFlight === 0 && performance.now() - lastFlush >= FLUSH_INTERVAL_MS) await flush();
  }
  if (claimError) throw claimError;
  await flush();
  result.duration_ms = Math.round(performance.now() - started);
  result.cpu_ms = Math.round(cpu.spentMs());
  return result;
}

type Recorded = { completed: number; failed: number; retried: number };

/** One abort timer for the handlers of a wave that share a lease length. */
interface LeaseWatch {
  signal: AbortSignal;
  timeoutMs: number;
  /** Rejects when the handlers' time is up. */
  timedOut: Promise<never>;
  add(): void;
  /** A handler of the wave finished; the last one clears the timer. */
  done(): void;
}

function leaseWatch(leaseSeconds: number): LeaseWatch {
  const timeoutMs = Math.max(1_000, leaseSeconds * 1000 - LEASE_MARGIN_MS);
  const controller = new AbortController();
  let pending = 0;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timedOut = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const error = new Error(`timed out after ${timeoutMs} ms`);
      controller.abort(error);
      reject(error);
    }, timeoutMs);
  });
  // Never unhandled: each handler races it, and it may reject after they all finished.
  timedOut.catch(() => {});
  return {
    signal: controller.signal,
    timeoutMs,
    timedOut,
    add: () => void pending++,
    done: () => {
      if (--pending === 0) clearTimeout(timer);
    },
  };
}

type Outcome = { ok: true; result: unknown } | { ok: false; failure: Failure };

async function runJob(
  deps: DrainDeps,
  job: ClaimedJob,
  cpu: CpuBudget,
  watch: LeaseWatch,
): Promise<Outcome> {
  const handler = deps.handlers[job.job_type];
  try {
    if (!handler) {
      throw new PermanentJobError(
        `no handler for job type "${job.job_type}"; known types: ${
          Object.keys(deps.handlers).sort().join(', ')
        }`,
      );
    }
    const value = await Promise.race([
      handler({
        job,
        sql: deps.sql,
        mirror: deps.mirror ?? null,
        clock: deps.clock,
        outbound: deps.outbound ?? strictPolicy,
        signal: watch.signal,
        cpu,
      }),
      watch.timedOut,
    ]);
    return { ok: true, result: value ?? null };
  } catch (err) {
    const failure = watch.signal.aborted
      ? { kind: 'timeout' as const, message: describeError(watch.signal.reason) }
      : classifyFailure(err);
    return {
      ok: false,
      failure: {
        id: job.id,
        attempt: job.attempts,
        kind: failure.kind,
        error: failure.message,
        ...decideOutcome(job, failure, deps.clock.now(), deps.random),
      },
    };
  } finally {
    watch.done();
  }
}
