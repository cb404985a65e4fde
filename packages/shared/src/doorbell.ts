import { z } from 'zod';
import type { Sql } from './db.ts';

// A drain's shift: what an invocation rung by a doorbell does so that writes do not each cost
// an invocation (the migration 20261203001000_coalesced_doorbells.sql has the database side).
// While it works, and while it lingers for more, the drain holds its doorbell: writers find
// it held and do not ring, and it takes what they commit. It lingers by waiting in the
// database (cesar.await_work, woken at such a writer's commit; job-drain's wait also claims:
// ShiftOptions.awaitWork) for up to `lingerMs` after the last work it found; then it lets go
// of the doorbell (which waits for writers that may have seen it held) and looks once more.
// Stopped at a budget with work left, it hands the doorbell to the next invocation.

export type DoorbellTarget = 'webhook/drain' | 'job-drain';

/**
 * A drain request's `linger_ms`: how long to wait for more work once none is left, holding
 * the doorbell. The doorbell asks for it; 0 answers as soon as nothing is left.
 */
export const lingerMsField = z.number().int().min(0).max(10_000).default(0);

/** How a pass of the drain ended. */
export type PassEnd =
  /** Nothing was left to do (after doing some). */
  | 'empty'
  /** Nothing was found to do: what a look for work sees, this drain could not take. */
  | 'idle'
  /** A budget (wall or CPU) was spent; work may be left. */
  | 'budget'
  /** Another drain holds the work (the webhook's processor lease): this one waits for it. */
  | 'busy'
  /** The pass failed (the database away, say): the hold lapses, the tick carries on. */
  | 'error';

export interface ShiftOptions {
  target: DoorbellTarget;
  /**
   * performance.now() past which no wait begins and no pass starts, but the one that runs what
   * a wait took (awaitWork); no wait lasts past it.
   */
  deadline: number;
  /** How long to wait for more work after the last that was found; 0 for one pass only. */
  lingerMs: number;
  /** The invocation's CPU budget is spent: no further pass. */
  tired: () => boolean;
  /** job-drain: the job types drained (all when null or absent). */
  jobTypes?: string[] | null;
  /**
   * One pass (lingerMs 0) stopped at a budget: rings the next invocation when work is left
   * (the doorbell, which a drain's hold may answer), returning whether it rang.
   */
  ringContinuation: () => Promise<boolean>;
  /**
   * Waits up to `timeoutMs` for work of the shift's kind, in place of cesar.await_work, and
   * takes it: true when work came, and the next pass runs what was taken, whatever the time
   * (job-drain claims in the same round trip, see queue/app.ts).
   */
  awaitWork?: (timeoutMs: number) => Promise<boolean>;
}

export interface ShiftEnd {
  passes: number;
  /** The last pass's end. */
  ended: PassEnd;
  /** The next invocation was called to carry on. */
  continued: boolean;
}

/** Two passes' answers as one: the numbers at `keys` added, the rest the latter's. */
export function addCounts<T>(a: T, b: T, keys: ReadonlyArray<keyof T>): T {
  const sum = { ...b };
  for (const key of keys) (sum[key] as number) = (a[key] as number) + (b[key] as number);
  return sum;
}

/** How long a hold lasts unless renewed, and how often a drain at work renews it. */
const HOLD_MS = 3_000;
const RENEW_MS = 1_000;
/** One wait in the database: short, so the shift sees its deadline and holds a connection briefly. */
const WAIT_SLICE_MS = 500;
/** How long letting go may wait for writers still in their transaction. */
const RELEASE_WAIT_MS = 1_000;
/** How far past a held-back job's due time a drain waits for it, and how much time it needs left. */
const DEFERRED_MARGIN_MS = 1_000;
/** How often a drain that found the work held by another tries again. */
const BUSY_RETRY_MS = 250;

/**
 * Runs `pass` (one drain, within what is left of the budget) as a doorbell's shift: holding
 * the doorbell from the start, lingering `lingerMs` for more work after a pass that found
 * nothing, waiting while another drain holds the work (busy), and ending in one of three
 * ways: let go with nothing left, handed over to the next invocation (budget spent, work
 * left), or stepped aside (error). With `lingerMs` 0 it
 * holds nothing and runs one pass: callers that are not doorbells (the CLI, tests, a native
 * webhook delivery) answer at once, and ring their continuation (`ringContinuation`) when
 * the pass stopped at a budget.
 */
export async function workShift(
  sql: Sql,
  options: ShiftOptions,
  pass: () => Promise<PassEnd>,
): Promise<ShiftEnd> {
  if (options.lingerMs <= 0) {
    const ended = await pass();
    const continued = ended === 'budget' &&
      await options.ringContinuation().catch((err) => {
        console.error(`${options.target}: continuation not rung: ${(err as Error).message}`);
        return false;
      });
    return { passes: 1, ended, continued };
  }
  const { target } = options;
  const hold = holdDoorbell(sql, target, options.deadline);
  const look = () => awaitWork(sql, target, 0, options.jobTypes);
  const over = () => performance.now() >= options.deadline || options.tired();
  let passes = 0;
  let ended: PassEnd = 'empty';
  let inPass = false;
  // Whether the pass about to run was called for work a look saw (the doorbell's call is one).
  let called = true;
  try {
    for (;;) {
      passes++;
      inPass = true;
      ended = await pass();
      inPass = false;
      if (ended === 'error') {
        // The database away, or a batch given back: let go at once, so that writers call
        // again, and leave the rest to them and to the tick.
        await hold.stop();
        await releaseDoorbell(sql, hold, target, 0).catch(() => false);
        return { passes, ended, continued: false };
      }
      // Another drain holds the work (the webhook's processor lease): wait for it, holding the
      // doorbell, and take the work once it is free. Its holder looks for work after it lets
      // go, so nothing is stranded meanwhile. Letting go and handing over here instead called
      // drain after drain, each busy in turn: 836 calls in 30 s of 200 writes a second.
      if (ended === 'busy') {
        if (over()) break;
        await new Promise((r) => setTimeout(r, BUSY_RETRY_MS));
        if (over()) break;
        continue;
      }
      // The budget is spent: let go, and call the next invocation when work is left.
      if (ended === 'budget') break;
      // Work a look saw that a pass cannot take (a job behind its serial key's retry, a type
      // at its cap): lingering would find it again at once. Let go, and end.
      const blocked: boolean = ended === 'idle' && called;
      let more: boolean = !blocked &&
        await awaitWorkUntil(sql, options, performance.now() + options.lingerMs, over);
      // Jobs a rate limit held back (cesar.claim_jobs moved their run_at to when their window
      // frees a slot) are not due yet, so the looks above do not see them: when the first is
      // due before the deadline, wait for it, holding the doorbell, rather than leave it to
      // the tick (every minute where pg_cron is older than 1.5). Not while due work this
      // drain cannot take is left (a look would see it at once, pass after pass): a pass
      // that only held jobs back leaves none.
      if (!more && !over() && target === 'job-drain' && !(blocked && await look())) {
        more = await awaitDeferred(sql, options, over);
      }
      // Work taken by the wait is run before the shift ends.
      if (over() && !(more && options.awaitWork)) break;
      called = more;
      if (more) continue;
      // Idle: let go, then look once more for what the writers that saw the hold committed.
      await hold.stop();
      const released = await releaseDoorbell(sql, hold, target, RELEASE_WAIT_MS);
      if (released && !(await look())) return { passes, ended, continued: false };
      if (blocked && released) {
        // The look sees the blocked work again, or what a writer committed while this drain
        // let go (a hand-over's call can come before the writer's commit): one last pass takes
        // whatever came, and the writers from here on call for themselves. A pass stopped at
        // a budget hands over as any other: that writer called nobody.
        passes++;
        inPass = true;
        ended = await pass();
        inPass = false;
        const left = ended === 'budget' && await look();
        return { passes, ended, continued: left ? await handOver(sql, target) : false };
      }
      // Work came, or writers that may have seen the hold are still in their transactions
      // (they did not call, so this drain must not leave): carry on holding. The latter is no
      // call for work: a pass that then finds nothing lingers again, and lets go once they
      // have finished (or hands over at the deadline).
      hold.start();
      called = released;
    }
    // Let go first, then look: a writer that saw the hold has committed by the look.
    await hold.stop();
    const released = await releaseDoorbell(sql, hold, target, RELEASE_WAIT_MS);
    const left = !released || await look();
    return { passes, ended, continued: left ? await handOver(sql, target) : false };
  } catch (err) {
    // A pass's own failure is the caller's to answer, as without a shift; the hold goes first.
    await hold.stop();
    await releaseDoorbell(sql, hold, target, 0).catch(() => false);
    if (inPass) throw err;
    // The database went away while lingering or letting go: the next write or the tick calls
    // a drain. What the passes did is recorded.
    console.error(`${target}: shift ended: ${(err as Error).message}`);
    return { passes, ended: 'error', continued: false };
  } finally {
    await hold.stop();
  }
}

interface Hold {
  /** Holds now and renews every second until stopped (or the deadline passes). */
  start(): void;
  /** Stops renewing, once a renewal under way has landed (so none lands after a release). */
  stop(): Promise<void>;
  /**
   * The deadline this drain last set (cesar.doorbell_hold's answer): letting go clears the
   * hold only while it is still this one, not another drain's (null: none set).
   */
  readonly held: string | null;
}

function holdDoorbell(sql: Sql, target: DoorbellTarget, deadline: number): Hold {
  let timer: ReturnType<typeof setInterval> | undefined;
  // One renewal at a time, so that stop() can wait for the last: none lands after a release.
  let renewing: Promise<unknown> | null = null;
  let held: string | null = null;
  const renew = () => {
    // Past the deadline the drain only finishes what it took: the hold lapses, so that
    // writers and the tick can call another drain for what arrives meanwhile.
    if (performance.now() >= deadline) return void clearInterval(timer);
    if (renewing) return;
    renewing = sql<Array<{ held: string }>>`
      select cesar.doorbell_hold(${target}, ${HOLD_MS})::text as held`
      .then(([row]) => (held = row!.held))
      // The database away: the hold lapses, which is the safe side. Whether the renewal was
      // set is unknown (its answer may be what was lost): letting go then clears any hold.
      .catch((err) => {
        held = null;
        console.error(`${target}: doorbell hold not renewed: ${(err as Error).message}`);
      })
      .finally(() => (renewing = null));
  };
  const hold: Hold = {
    start() {
      clearInterval(timer);
      renew();
      timer = setInterval(renew, RENEW_MS);
    },
    async stop() {
      clearInterval(timer);
      timer = undefined;
      await renewing;
    },
    get held() {
      return held;
    },
  };
  hold.start();
  return hold;
}

/** Waits in the database up to `timeoutMs` for work; 0 looks once. */
async function awaitWork(
  sql: Sql,
  target: DoorbellTarget,
  timeoutMs: number,
  jobTypes: string[] | null | undefined,
): Promise<boolean> {
  const [row] = await sql<Array<{ work: boolean }>>`
    select cesar.await_work(${target}, ${Math.max(0, Math.round(timeoutMs))},
                            ${jobTypes ?? null}::text[]) as work`;
  return row!.work;
}

/**
 * job-drain: waits, in slices, until the first rate-limited job held back is due, when that
 * is before the deadline; true when work came (that job, or another write's).
 */
async function awaitDeferred(
  sql: Sql,
  options: ShiftOptions,
  over: () => boolean,
): Promise<boolean> {
  const [row] = await sql<Array<{ ms: number | null }>>`
    select (extract(epoch from cesar.next_deferred_at(${options.jobTypes ?? null}::text[]) - now())
            * 1000)::float8 as ms`;
  if (row?.ms == null) return false;
  const dueAt = performance.now() + row.ms;
  // Only when the wait ends with time left to run the job.
  if (dueAt >= options.deadline - DEFERRED_MARGIN_MS) return false;
  return await awaitWorkUntil(sql, options, dueAt + DEFERRED_MARGIN_MS, over);
}

/**
 * Waits in the database for work of the shift's kind, a slice at a time, until `until`
 * (performance.now()) or the shift is over; whether work came.
 */
async function awaitWorkUntil(
  sql: Sql,
  options: ShiftOptions,
  until: number,
  over: () => boolean,
): Promise<boolean> {
  const wait = options.awaitWork ??
    ((ms: number) => awaitWork(sql, options.target, ms, options.jobTypes));
  // Never past the deadline: a wait that takes work (awaitWork) commits the shift to a pass.
  const end = Math.min(until, options.deadline);
  let more = false;
  while (!more && !over() && performance.now() < until) {
    more = await wait(Math.min(WAIT_SLICE_MS, end - performance.now()));
  }
  return more;
}

async function releaseDoorbell(
  sql: Sql,
  hold: Hold,
  target: DoorbellTarget,
  waitMs: number,
): Promise<boolean> {
  const [row] = await sql<Array<{ released: boolean }>>`
    select cesar.doorbell_release(${target}, ${waitMs}, ${hold.held}::bigint) as released`;
  return row!.released;
}

async function handOver(sql: Sql, target: DoorbellTarget): Promise<boolean> {
  const [row] = await sql<Array<{ called: boolean }>>`
    select cesar.doorbell_hand_over(${target}) as called`;
  return row!.called;
}
