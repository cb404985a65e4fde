import { z } from 'zod';
import type { Sql } from './db.ts';

// A drain's shift: what an invocation rung by a doorbell does so that writes do not each cost
// an invocation (the migration 20261203001000_coalesced_doorbells.sql has the database side).
// While it works, and while it lingers for more, the drain holds its doorbell: writers find
// it held and do not ring, and it takes what they commit. It lingers by waiting in the
// database (cesar.await_work) for up to `lingerMs` after the last work it found; then it lets
// go of the doorbell (which waits for writers that may have seen it held) and looks once more.
// Stopped at a budget with work left, it hands the doorbell to the next invocation.

export type DoorbellTarget = 'webhook/drain' | 'job-drain';

/**
 * A drain request's `linger_ms`: how long to wait for more work once none is left, holding
 * the doorbell. The doorbell asks for it; 0 answers as soon as nothing is left.
 */
export const lingerMsField = z.number().int().min(0).max(10_000).default(0);

/** How a pass of the drain ended. */
export type PassEnd =
  /** Nothing was left to do. */
  | 'empty'
  /** A budget (wall or CPU) was spent; work may be left. */
  | 'budget'
  /** Another drain holds the work (the webhook's processor lease): this one steps aside. */
  | 'busy'
  /** The pass failed (the database away, say): the hold lapses, the tick carries on. */
  | 'error';

export interface ShiftOptions {
  target: DoorbellTarget;
  /** performance.now() past which no pass starts and no wait begins. */
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

/**
 * Runs `pass` (one drain, within what is left of the budget) as a doorbell's shift: holding
 * the doorbell from the start, lingering `lingerMs` for more work after a pass that found
 * nothing, and ending in one of three ways: let go with nothing left, handed over to the next
 * invocation (budget spent, work left), or stepped aside (busy, error). With `lingerMs` 0 it
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
  let passes = 0;
  let ended: PassEnd = 'empty';
  const over = () => performance.now() >= options.deadline || options.tired();
  let inPass = false;
  try {
    for (;;) {
      passes++;
      inPass = true;
      ended = await pass();
      inPass = false;
      if (ended === 'busy' || ended === 'error') {
        // Not ours to let go: another drain holds it (busy), or it lapses (error).
        await hold.stop();
        return { passes, ended, continued: false };
      }
      if (ended === 'budget') break;
      // Nothing left: linger for more.
      const idleUntil = performance.now() + options.lingerMs;
      let more = false;
      while (!more && !over() && performance.now() < idleUntil) {
        const sliceMs = Math.min(WAIT_SLICE_MS, idleUntil - performance.now());
        more = await awaitWork(sql, target, sliceMs, options.jobTypes);
      }
      if (more && !over()) continue;
      if (over()) break;
      // Idle for lingerMs: let go, then look once more.
      await hold.stop();
      const released = await releaseDoorbell(sql, target);
      if (released && !(await awaitWork(sql, target, 0, options.jobTypes))) {
        return { passes, ended, continued: false };
      }
      hold.start();
    }
    // The budget is spent: the next invocation carries on, if there is work.
    await hold.stop();
    if (await awaitWork(sql, target, 0, options.jobTypes)) {
      return { passes, ended, continued: await handOver(sql, target) };
    }
    const released = await releaseDoorbell(sql, target);
    // Writers kept the lock all the while: some may have seen the hold. Carry on next time.
    return { passes, ended, continued: released ? false : await handOver(sql, target) };
  } catch (err) {
    // A pass's own failure is the caller's to answer, as without a shift.
    if (inPass) throw err;
    // The database went away while lingering or letting go: the hold lapses within seconds,
    // and the next write or the tick calls a drain. What the passes did is recorded.
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
}

function holdDoorbell(sql: Sql, target: DoorbellTarget, deadline: number): Hold {
  let timer: ReturnType<typeof setInterval> | undefined;
  let landing: Promise<unknown> = Promise.resolve();
  const renew = () => {
    // Past the deadline the drain only finishes what it took: the hold lapses, so that
    // writers and the tick can call another drain for what arrives meanwhile.
    if (performance.now() >= deadline) return void clearInterval(timer);
    landing = sql`select cesar.doorbell_hold(${target}, ${HOLD_MS})`.catch((err) =>
      // The database away: the hold lapses, which is the safe side.
      console.error(`${target}: doorbell hold not renewed: ${(err as Error).message}`)
    );
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
      await landing;
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

async function releaseDoorbell(sql: Sql, target: DoorbellTarget): Promise<boolean> {
  const [row] = await sql<Array<{ released: boolean }>>`
    select cesar.doorbell_release(${target}, ${RELEASE_WAIT_MS}) as released`;
  return row!.released;
}

async function handOver(sql: Sql, target: DoorbellTarget): Promise<boolean> {
  const [row] = await sql<Array<{ called: boolean }>>`
    select cesar.doorbell_hand_over(${target}) as called`;
  return row!.called;
}
