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
  type FinishAndClaim,
  finishAndClaim,
  type LeaseRenewal,
  renewLeases,
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
  /**
   * Aborted when the job is cancelled (cesar.cancel_jobs: within about 2 s, see drainQueue),
   * when its lease was lost to another drain, or at the drain's time limit. The handler should
   * stop at once: its job stays leased, and its drain open, until it has (see drainQueue).
   */
  signal: AbortSignal;
  /**
   * The invocation's CPU budget, shared with the drain: a long handler (sync.table) stops at
   * a checkpoint once it is spent and leaves the rest to a follow-up job. Absent: no limit.
   */
  cpu?: CpuBudget;
  /**
   * Renews the job's lease now; resolves once written, rejects when the renewal failed.
   * Seldom needed: the drain renews the leases of its running jobs on its own while their
   * handlers await (see drainQueue). Given by the drain; absent when a handler is called
   * directly (tests, scripts).
   */
  heartbeat?(): Promise<void>;
  /**
   * Reports progress: the share done (0 to 1) and what it means ("copied 40,000 rows"). Kept
   * in memory and written with the drain's next lease renewal, not per call (job_queue's
   * progress, progress_message). Given by the drain; absent when called directly.
   */
  progress?(fraction: number, message?: string): void;
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
  /**
   * Handlers still running this long after the drain started are aborted and their jobs
   * retried (a timeout): the drain must answer before the runtime stops it (the job-drain
   * function gives 135 s of hosted's 150 s wall clock). A handler that goes on regardless
   * keeps its job leased and the drain open until it stops. Default: budgetMs + 60 s.
   */
  timeLimitMs?: number;
  /**
   * A claim made for this drain before it began (job-drain's doorbell shift waits for work and
   * claims it in one round trip: awaitJobs, at most batchSize jobs): its jobs run first, and
   * it counts as the first claim.
   */
  taken?: FinishAndClaim | null;
}

export interface DrainResult {
  worker: string;
  claimed: number;
  completed: number;
  retried: number;
  failed: number;
  /** Jobs cancelled while their handler ran (cesar.cancel_jobs), stopped and recorded so. */
  cancelled: number;
  /** Outcomes refused because the job was cancelled or its lease taken over meanwhile. */
  superseded: number;
  /**
   * Handlers that were still running a second or more after the drain aborted their signal
   * (a cancel, the time limit, a lost lease): their jobs stayed leased until they stopped.
   */
  slow_to_stop: number;
  /** Claim statements sent (cesar.finish_and_claim), those that found nothing included. */
  claims: number;
  duration_ms: number;
  /** CPU milliseconds the process spent from the invocation's start to the answer. */
  cpu_ms: number;
  /** empty: nothing due was left to claim; budget: wall time spent; cpu: CPU time spent. */
  stopped: 'empty' | 'budget' | 'cpu';
}

// Leases, cancels and progress (cesar.renew_leases): while handlers have run for a while, the
// drain sends one statement for all of them every RENEW_EVERY_MS (a third of the shortest
// lease among them when that is shorter), which renews the leases that are a third through,
// writes the progress reported since, and answers which jobs were cancelled: a cancel reaches
// its handler within about 2 s. A handler that has run for less than that interval is not
// asked about: no-op jobs (the hot path, 15,000 jobs/s) never cause a renewal, and the drain
// sends no statement per job or per batch for it. The timer that looks (every TICK_MS) only
// compares a few numbers per wave of started jobs.
const RENEW_EVERY_MS = 2_000;
const TICK_MS = 250;
// How long after a claim that found nothing a drain whose handlers still run claims again,
// for work written meanwhile (see claimAgainAfter in drainQueue): 20 ms, doubled after each
// claim that finds nothing again, up to 250 ms; back to 20 once a claim finds jobs or a job
// finishes.
const RECLAIM_WHILE_RUNNING_MS = 20;
const RECLAIM_WHILE_RUNNING_MAX_MS = 250;
// The default time limit past the claiming budget (DrainOptions.timeLimitMs).
const DEFAULT_TIME_LIMIT_EXTRA_MS = 60_000;
// A handler still running this long after its signal was aborted is slow to stop (counted in
// DrainResult.slow_to_stop, logged, and said in the job's error). One that honours its signal
// stops within milliseconds: an aborted request closes its socket, a cancelled statement
// (cancelOnAbort, db.ts) costs one round trip through the pooler.
const SLOW_TO_STOP_MS = 1_000;

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
 *
 * A job never has two live attempts. When the drain stops a handler (its job was cancelled,
 * the time limit came, or its lease was lost) it aborts the handler's signal and waits for the
 * handler to settle: until then the job stays `running`, leased to this drain (its lease renewed
 * with the others'), so no other drain can claim it and cesar.retry_jobs cannot requeue it,
 * and the handler keeps its slot. Only then is the outcome the drain decided recorded
 * (cancelled, or failed for a retry after the type's backoff, counted from then), whatever the
 * handler returned or threw meanwhile. A handler that honours its signal settles at once; one
 * that ignores it holds the job and the drain until it ends, or until the runtime's wall clock
 * ends the invocation, after which the lease runs out and the claim ends the job cancelled or
 * takes it over as after any dead drain (its handler went with the process).
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
  const timeLimitAt = started +
    (options.timeLimitMs ?? options.budgetMs + DEFAULT_TIME_LIMIT_EXTRA_MS);
  const result: DrainResult = {
    worker: options.worker,
    claimed: 0,
    completed: 0,
    retried: 0,
    failed: 0,
    cancelled: 0,
    superseded: 0,
    slow_to_stop: 0,
    claims: 0,
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
    result.cancelled += recorded.cancelled;
    result.superseded += sent.done - recorded.completed + sent.failed - recorded.failed -
      recorded.retried - recorded.cancelled;
  }

  function takeOutcomes(): [Completion[], Failure[]] {
    const taken: [Completion[], Failure[]] = [completions, failures];
    completions = [];
    failures = [];
    lastFlush = performance.now();
    return taken;
  }

  /**
   * Outcomes taken for a statement that failed, put back ahead of the newer ones for a later
   * flush (each statement applies only to jobs this drain still holds).
   */
  function putBack(done: Completion[], failed: Failure[]): void {
    completions.unshift(...done);
    failures.unshift(...failed);
  }

  /** Records the finished jobs' outcomes, with no claim. */
  async function flush(): Promise<void> {
    const [done, failed] = takeOutcomes();
    if (done.length === 0 && failed.length === 0) return;
    const [completedIds, failedRows] = await Promise.all([
      completeJobs(deps.sql, options.worker, done),
      failJobs(deps.sql, options.worker, failed),
    ]).catch((err) => {
      putBack(done, failed);
      throw err;
    });
    tally({ done: done.length, failed: failed.length }, {
      completed: completedIds.length,
      failed: failedRows.filter((r) => r.status === 'failed').length,
      retried: failedRows.filter((r) => r.status === 'pending').length,
      cancelled: failedRows.filter((r) => r.status === 'cancelled').length,
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

  // Jobs started together (by one claim or one startJobs): the renewal timer looks at waves,
  // not at every job, so that a job costs it nothing until its wave has run for a while.
  const waves = new Set<Wave>();
  const runtime: DrainRuntime = { heartbeat: (run) => heartbeat(run), sql: deps.sql, deps, cpu };

  /** Runs jobs started together. */
  function startWave(jobs: ClaimedJob[]): void {
    if (jobs.length === 0) return;
    const wave: Wave = {
      startedAt: performance.now(),
      runs: [],
      pending: jobs.length,
      leaseMs: Infinity,
    };
    waves.add(wave);
    for (const job of jobs) {
      const run = new JobRun(runtime, job);
      wave.runs.push(run);
      if (job.lease_seconds * 1000 < wave.leaseMs) wave.leaseMs = job.lease_seconds * 1000;
      running++;
      runJob(deps, run).then((outcome) => {
        if (--wave.pending === 0) waves.delete(wave);
        run.settled = true;
        running--;
        settledRuns++;
        if (run.stop) recordStopped(run, outcome);
        else if (outcome.ok) {
          completions.push({ id: job.id, attempt: job.attempts, result: outcome.result });
        } else failures.push(outcome.failure);
        wake();
      });
    }
  }

  // Handlers the drain stopped that have not settled yet.
  const stopping = new Set<JobRun>();

  /**
   * Stops a running handler: aborts its signal. Its job stays leased (renewed with the others)
   * and its slot taken until the handler settles; then recordStopped records what `kind` says.
   */
  function stopRun(run: JobRun, kind: Stop['kind'], reason: Error): void {
    if (run.settled || run.stop) return;
    run.stop = { kind, at: performance.now(), reason, warned: false };
    stopping.add(run);
    run.abort(reason);
  }

  /**
   * The outcome of a stopped handler that has now settled, as the drain decided it: its own
   * error is not recorded (a cancelled job stays cancelled, a timed-out one is retried), nor
   * the result of a cancelled one; a timed-out handler that returned after all completes its
   * job. A handler slow to stop is counted and said in the job's error.
   */
  function recordStopped(run: JobRun, outcome: Outcome): void {
    const stop = run.stop!;
    stopping.delete(run);
    const lateMs = performance.now() - stop.at;
    const slow = lateMs >= SLOW_TO_STOP_MS;
    if (slow) result.slow_to_stop++;
    if (stop.kind === 'lost') {
      // The outcome would be refused: the job is no longer this drain's.
      result.superseded++;
      return;
    }
    if (stop.kind === 'timeout' && outcome.ok) {
      // Its work got done after all, while the job was still this drain's: completed, not
      // retried (a retry would do it again: a second request to a partner, say).
      completions.push({ id: run.job.id, attempt: run.job.attempts, result: outcome.result });
      return;
    }
    const late = slow
      ? `; its handler stopped ${Math.round(lateMs)} ms after its signal was aborted`
      : '';
    const job = run.job;
    failures.push(
      stop.kind === 'cancelled'
        ? {
          id: job.id,
          attempt: job.attempts,
          kind: 'cancelled',
          error: `cancelled while running${late}`,
          status: 'cancelled',
        }
        : {
          id: job.id,
          attempt: job.attempts,
          kind: 'timeout',
          error: `${stop.reason.message}${late}`,
          ...decideOutcome(job, { kind: 'timeout' }, deps.clock.now(), deps.random),
        },
    );
  }

  let renewing: Promise<void> | null = null;
  let lastRenewal = started;
  // Handlers waiting for their heartbeat to be written: served by the next renewal to start.
  let heartbeats: Array<{ written: () => void; failed: (err: unknown) => void }> = [];
  let draining = true;

  function heartbeat(run: JobRun): Promise<void> {
    if (run.settled || !draining) return Promise.resolve();
    run.forced = true;
    const written = new Promise<void>((resolve, reject) =>
      heartbeats.push({ written: resolve, failed: reject })
    );
    if (!renewing) renew(performance.now());
    // A handler that does not await its heartbeat must not take the isolate down with an
    // unhandled rejection; one that awaits it sees the failure.
    written.catch(() => {});
    return written;
  }

  /**
   * The timer: the time limit, handlers slow to stop, outcomes waiting to be recorded, and a
   * renewal when one is due (stopped handlers' leases included).
   */
  function tick(): void {
    const now = performance.now();
    if (now >= timeLimitAt) {
      const why = `still running at the drain's time limit (${
        Math.round(timeLimitAt - started)
      } ms)`;
      for (const wave of waves) {
        for (const run of wave.runs) {
          if (!run.settled && !run.stop) stopRun(run, 'timeout', new Error(why));
        }
      }
    }
    for (const run of stopping) {
      if (run.stop!.warned || now - run.stop!.at < SLOW_TO_STOP_MS) continue;
      run.stop!.warned = true;
      console.warn(
        `${options.worker}: job ${run.job.id} (${run.job.job_type}) still running ${SLOW_TO_STOP_MS} ms after its signal was aborted (${
          run.stop!.reason.message
        }); kept leased until its handler stops`,
      );
    }
    // Outcomes of handlers that settled while others still run (a stopped one that goes on,
    // say) are recorded within the flush interval, not when the next handler settles.
    if (completions.length + failures.length > 0 && now - lastFlush >= FLUSH_INTERVAL_MS) wake();
    if (renewing) return;
    let every = RENEW_EVERY_MS;
    let due = false;
    for (const wave of waves) {
      const waveEvery = Math.min(RENEW_EVERY_MS, wave.leaseMs / 3);
      if (now - wave.startedAt >= waveEvery) {
        due = true;
        every = Math.min(every, waveEvery);
      }
    }
    if (due && now - lastRenewal >= every) renew(now);
  }

  /**
   * One statement for every job whose wave has run for a renewal interval, and for those
   * whose handler asked for a heartbeat: renews, writes progress, hears of cancels.
   */
  function renew(now: number): void {
    const asked = new Map<string, JobRun>();
    const leases: LeaseRenewal[] = [];
    for (const wave of waves) {
      const long = now - wave.startedAt >= Math.min(RENEW_EVERY_MS, wave.leaseMs / 3);
      for (const run of wave.runs) {
        // A stopped handler still running keeps its lease, unless the lease was lost.
        if (run.settled || run.stop?.kind === 'lost' || !(long || run.forced)) continue;
        asked.set(run.job.id, run);
        leases.push(run.takeReport());
      }
    }
    const served = heartbeats;
    heartbeats = [];
    lastRenewal = now;
    if (leases.length === 0) {
      for (const waiting of served) waiting.written();
      return;
    }
    renewing = renewLeases(deps.sql, options.worker, leases).then((rows) => {
      for (const row of rows) {
        const run = asked.get(row.id);
        if (!run || run.settled) continue;
        if (!row.held) {
          const lost = new Error('lease lost: the job was cancelled or taken over');
          if (run.stop) run.stop.kind = 'lost';
          else stopRun(run, 'lost', lost);
        } else if (row.cancel_requested) stopRun(run, 'cancelled', new Error('job cancelled'));
      }
      for (const waiting of served) waiting.written();
    }, (err) => {
      // Tried again at the next interval, with the reports taken for this one (a lease lost
      // meanwhile only means the outcome is refused, fenced by lease, and the job runs
      // again); a handler's heartbeat fails with the reason.
      console.error(`${options.worker}: leases not renewed: ${describeError(err)}`);
      leases.forEach((lease) => asked.get(lease.id)?.putBack(lease));
      for (const waiting of served) waiting.failed(err);
    }).finally(() => {
      lastRenewal = performance.now();
      renewing = null;
      if (heartbeats.length > 0) renew(performance.now());
    });
  }

  let claiming = true;
  // An empty claim while jobs still run: the drain claims again once one of its jobs has
  // finished (a per-type cap may have held the rest back, and the outcome recorded with the
  // claim frees the slot), that is once `settledRuns` has passed `claimAgainAfter`, or
  // RECLAIM_WHILE_RUNNING_MS (backing off) after the empty claim, for work written meanwhile
  // (writers do not ring a doorbell this drain holds). Claiming again at every wake-up
  // instead (a claim's own answer is one) sent an empty claim every millisecond or so while
  // any handler ran, and two in flight kept each other going: 1,417 claims for 200 single-job passes, 0.5 ms
  // of the database's time each; 29,973 in one test's 25 s budget around a 300 ms handler.
  let claimAgainAfter: number | null = null;
  let settledRuns = 0;
  // Whether the last claim answered took a whole batch: only then does a second go out
  // beside one, as more is likely due. A pass begins with one claim: a drain woken for a
  // trickled job sent two, one of which found nothing (1,745 claims for 600 jobs at 100/s).
  let lastClaimFull = false;
  let reclaimTimer: ReturnType<typeof setTimeout> | undefined;
  let reclaimMs = RECLAIM_WHILE_RUNNING_MS;
  // settledRuns at the last claim that found nothing; null after one that found jobs.
  let emptyAt: number | null = null;
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
      reserved -= start;
      inFlight--;
      took(step.jobs);
    }, (err) => {
      claimError ??= err;
      // The outcomes it carried were not recorded (one statement).
      putBack(done, failed);
      reserved -= start;
      inFlight--;
    }).finally(() => wake());
  }

  /** Starts what a claim took, and decides when to claim again. */
  function took(jobs: ClaimedJob[]): void {
    lastClaimFull = jobs.length >= options.batchSize;
    result.claimed += jobs.length;
    const startNow: ClaimedJob[] = [];
    for (const job of jobs) job.started ? startNow.push(job) : local.push(job);
    startWave(startNow);
    // A job that finished while the claim ran may have freed a capped slot the claim saw
    // taken: record it and claim again (each pass needs a job to have finished).
    if (jobs.length === 0 && completions.length + failures.length === 0) {
      claiming = false;
      // Nothing found again, and nothing finished since the last time: wait longer.
      reclaimMs = emptyAt === settledRuns
        ? Math.min(reclaimMs * 2, RECLAIM_WHILE_RUNNING_MAX_MS)
        : RECLAIM_WHILE_RUNNING_MS;
      emptyAt = settledRuns;
      claimAgainAfter = running > 0 ? settledRuns : null;
      clearTimeout(reclaimTimer);
      if (running > 0) reclaimTimer = setTimeout(reclaim, reclaimMs);
    } else if (jobs.length > 0) {
      // More may be due than this batch (a claim sent beside it may have found none first).
      claiming = true;
      emptyAt = null;
    }
  }

  /** The wait after an empty claim while jobs run is over: claim again (see claimAgainAfter). */
  function reclaim(): void {
    if (claimAgainAfter === null) return;
    claimAgainAfter = null;
    claiming = true;
    wake();
  }

  const ticker = setInterval(tick, TICK_MS);
  try {
    if (options.taken) {
      claims++;
      tally({ done: 0, failed: 0 }, options.taken);
      // None taken: the due work it saw could not be taken (a cap, a serial key), and the pass
      // ends at once, as after a claim of its own that found nothing.
      took(options.taken.jobs);
      // As after a claim of the pass's own: the handlers that finish at once have their
      // outcome in before the next claim goes out, which records it (else one more claim a
      // trickled job).
      await new Promise((r) => setTimeout(r, 0));
    }
    for (;;) {
      if (claimError) {
        // The database failed a claim, a start or an outcome: no more claims or starts (the
        // jobs claimed and not started go back when their claim's lease lapses). The handlers
        // running go on, their leases renewed, until they settle or the time limit stops
        // them, so that no other drain takes their jobs meanwhile while the database answers
        // the renewals; then the error is thrown.
        claiming = false;
        claimAgainAfter = null;
        local.length = 0;
      }
      // A group may come back smaller (jobs cancelled or taken over meanwhile): fill again.
      while (running < options.concurrency && local.length > 0) {
        await startFromLocal().catch((err) => {
          claimError ??= err;
          local.length = 0;
        });
      }
      // Claim the next batch once the local queue can no longer fill every slot, recording the
      // finished jobs' outcomes in the same statement; a second claim goes out while the first
      // is away when the slots not spoken for can take a whole batch. (The budgets are read
      // only here: reading the CPU clock is a system call.)
      while (
        claiming && local.length === 0 && inFlight < CLAIMS_IN_FLIGHT &&
        running + reserved < options.concurrency &&
        (inFlight === 0 ||
          lastClaimFull && options.concurrency - running - reserved >= options.batchSize)
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
      // (A budget spent meanwhile stops it at the claim, which says so in `stopped`.)
      if (claimAgainAfter !== null && settledRuns > claimAgainAfter) {
        claimAgainAfter = null;
        claiming = true;
      }
      if (inFlight === 0 && performance.now() - lastFlush >= FLUSH_INTERVAL_MS) {
        await flush().catch((err) => void (claimError ??= err));
      }
    }
  } finally {
    clearInterval(ticker);
    clearTimeout(reclaimTimer);
    draining = false;
    for (const waiting of heartbeats) waiting.written();
  }
  // The outcomes of the jobs that ran: recorded even after an error, if the database answers.
  await flush().catch((err) => void (claimError ??= err));
  if (claimError) throw claimError;
  result.claims = claims;
  result.duration_ms = Math.round(performance.now() - started);
  result.cpu_ms = Math.round(cpu.spentMs());
  return result;
}

type Recorded = { completed: number; failed: number; retried: number; cancelled: number };

/** Why and when the drain stopped a handler (aborted its signal). */
interface Stop {
  /** What is recorded once it settles; lost: nothing (its lease is another's now). */
  kind: 'cancelled' | 'timeout' | 'lost';
  /** performance.now() when its signal was aborted. */
  at: number;
  reason: Error;
  /** Logged as slow to stop. */
  warned: boolean;
}

interface Wave {
  startedAt: number;
  runs: JobRun[];
  /** Handlers of the wave not settled yet; the wave leaves the set at none. */
  pending: number;
  /** The shortest lease among its jobs. */
  leaseMs: number;
}

interface DrainRuntime {
  heartbeat(run: JobRun): Promise<void>;
  sql: Sql;
  deps: DrainDeps;
  cpu: CpuBudget;
}

/**
 * A running job: the handler's context. Its abort controller is made only when the handler
 * reads `signal` (a no-op handler never does), and what it reports waits here for the next
 * renewal.
 */
class JobRun implements JobContext {
  readonly job: ClaimedJob;
  readonly sql: Sql;
  readonly mirror: Sql | null;
  readonly clock: Clock;
  readonly outbound: OutboundPolicy;
  readonly cpu: CpuBudget;
  /** Its handler returned or threw. */
  settled = false;
  /** Set when the drain aborted its signal; what is recorded once it settles. */
  stop: Stop | null = null;
  /** Renew its lease at the next renewal whatever is left of it (ctx.heartbeat()). */
  forced = false;
  #runtime: DrainRuntime;
  #controller: AbortController | null = null;
  #abortReason: Error | null = null;
  #progress: number | null = null;
  #message: string | null = null;

  constructor(runtime: DrainRuntime, job: ClaimedJob) {
    this.#runtime = runtime;
    this.job = job;
    this.sql = runtime.sql;
    this.mirror = runtime.deps.mirror ?? null;
    this.clock = runtime.deps.clock;
    this.outbound = runtime.deps.outbound ?? strictPolicy;
    this.cpu = runtime.cpu;
  }

  get signal(): AbortSignal {
    if (!this.#controller) {
      this.#controller = new AbortController();
      if (this.#abortReason) this.#controller.abort(this.#abortReason);
    }
    return this.#controller.signal;
  }

  abort(reason: Error): void {
    this.#abortReason ??= reason;
    this.#controller?.abort(reason);
  }

  // Bound (arrow functions): handlers destructure their context, `({ job, progress }) =>`.
  readonly heartbeat = (): Promise<void> => this.#runtime.heartbeat(this);

  readonly progress = (fraction: number, message?: string): void => {
    if (!Number.isFinite(fraction) || fraction < 0 || fraction > 1) {
      throw new RangeError(`progress: ${fraction} is not between 0 and 1`);
    }
    this.#progress = fraction;
    this.#message = message === undefined ? null : message.slice(0, 500);
  };

  /** What the next renewal says about this job; the report is handed over once. */
  takeReport(): LeaseRenewal {
    const lease: LeaseRenewal = {
      id: this.job.id,
      attempt: this.job.attempts,
      lease_seconds: this.job.lease_seconds,
      force: this.forced,
      progress: this.#progress,
      message: this.#message,
    };
    this.forced = false;
    this.#progress = null;
    this.#message = null;
    return lease;
  }

  /** A report whose renewal failed, kept for the next one unless a newer report came. */
  putBack(lease: LeaseRenewal): void {
    this.forced ||= lease.force;
    if (this.#progress === null && this.#message === null) {
      this.#progress = lease.progress;
      this.#message = lease.message;
    }
  }
}

type Outcome = { ok: true; result: unknown } | { ok: false; failure: Failure };

async function runJob(deps: DrainDeps, run: JobRun): Promise<Outcome> {
  const job = run.job;
  const handler = deps.handlers[job.job_type];
  try {
    if (!handler) {
      throw new PermanentJobError(
        `no handler for job type "${job.job_type}"; known types: ${
          Object.keys(deps.handlers).sort().join(', ')
        }`,
      );
    }
    const value = await handler(run);
    return { ok: true, result: value ?? null };
  } catch (err) {
    const failure = classifyFailure(err);
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
  }
}
