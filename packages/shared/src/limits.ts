// Hosted Supabase Edge Functions' limits (docs "Functions > Limits", the troubleshooting
// articles "Understanding Edge Function CPU limits", "546 - WORKER_RESOURCE_LIMIT Exceeded" and
// "Edge Function shutdown reasons explained", and edge-runtime's per-worker supervisor), in
// one place: the local runtime enforces them (scripts/local/limits-monitor.ts), and the
// functions plan their work to stay inside them.

export const HOSTED_LIMITS = {
  /** CPU time per request; async I/O is not counted. Past it the isolate is stopped: 546. */
  cpuMsPerRequest: 2_000,
  /**
   * An isolate that has used this much CPU in all retires: it takes no new request, finishes
   * those it has, then exits. Hosted: "once an isolate uses 50% of any resource, it will
   * finish the current request and then shut down" (the 546 troubleshooting article).
   */
  cpuSoftMsPerIsolate: 1_000,
  /** Memory of one isolate. Past it the isolate is stopped: 546. */
  memoryMb: 256,
  /** A request whose answer sends nothing for this long is answered 504. */
  requestIdleTimeoutMs: 150_000,
  /**
   * An isolate's wall clock (its lifetime): 150 s on the free plan, 400 s on paid plans. At
   * half of it the isolate retires (edge-runtime's per-worker supervisor); at all of it the
   * isolate is stopped and the requests it still holds are answered 546.
   */
  wallClockMs: { free: 150_000, paid: 400_000 },
} as const;

/**
 * The CPU time a function allows itself per invocation before it checkpoints and hands the
 * rest to a next invocation: well inside the limit, so the last batch started before the
 * check (and the answer) still fits.
 */
export const CPU_BUDGET_MS = 1_200;

/** The status hosted answers a request whose isolate was stopped for a resource limit. */
export const WORKER_LIMIT_STATUS = 546;

/**
 * Hosted's body for that answer. The code was `WORKER_LIMIT` until 2026 (supabase/supabase
 * #46051 renamed it in the docs); clients should accept both.
 */
export const WORKER_LIMIT_BODY = {
  code: 'WORKER_RESOURCE_LIMIT',
  message: 'Function failed due to not having enough compute resources (please check logs)',
} as const;

/** The shutdown reasons hosted logs for an isolate stopped by a limit. */
export type ShutdownReason = 'CPUTime' | 'Memory' | 'WallClockTime';

/** The limits one local runtime enforces (the hosted ones unless lowered for a test). */
export interface RuntimeLimits {
  /** CPU ms an isolate may use while a request is in flight, counted from its start. */
  cpuMs: number;
  /** CPU ms an isolate may use in all before it retires. */
  cpuSoftMs: number;
  /** Resident memory of an isolate's process, in MB. */
  memoryMb: number;
  /** Silence from a function, in ms, before the gateway answers 504. */
  idleTimeoutMs: number;
  /** An isolate's lifetime, in ms: retired at half, stopped at all of it. */
  wallClockMs: number;
}

export type Plan = keyof typeof HOSTED_LIMITS.wallClockMs;

/** The hosted limits of a plan. */
export function hostedLimits(plan: Plan = 'paid'): RuntimeLimits {
  return {
    cpuMs: HOSTED_LIMITS.cpuMsPerRequest,
    cpuSoftMs: HOSTED_LIMITS.cpuSoftMsPerIsolate,
    memoryMb: HOSTED_LIMITS.memoryMb,
    idleTimeoutMs: HOSTED_LIMITS.requestIdleTimeoutMs,
    wallClockMs: HOSTED_LIMITS.wallClockMs[plan],
  };
}

/**
 * The limits a local stack enforces, from its settings: `CESAR_PLAN=free|paid` (default
 * paid: 400 s of wall clock), `CESAR_WALL_CLOCK_SECONDS` (any whole number of seconds, e.g.
 * 150), `CESAR_LIMITS=off` to enforce none (null). Throws on a value it does not know, naming
 * the setting, rather than run with limits nobody asked for.
 */
export function runtimeLimits(env: Record<string, string | undefined>): RuntimeLimits | null {
  const enforce = (env.CESAR_LIMITS ?? 'on').toLowerCase();
  if (enforce === 'off') return null;
  if (enforce !== 'on') throw new Error(`CESAR_LIMITS must be on or off, not ${env.CESAR_LIMITS}`);
  const plan = (env.CESAR_PLAN ?? 'paid').toLowerCase();
  if (plan !== 'free' && plan !== 'paid') {
    throw new Error(`CESAR_PLAN must be free or paid, not ${env.CESAR_PLAN}`);
  }
  const limits = hostedLimits(plan);
  const seconds = env.CESAR_WALL_CLOCK_SECONDS;
  if (seconds !== undefined && seconds !== '') {
    if (!/^[1-9][0-9]{0,5}$/.test(seconds)) {
      throw new Error(`CESAR_WALL_CLOCK_SECONDS must be a whole number of seconds, not ${seconds}`);
    }
    limits.wallClockMs = Number(seconds) * 1000;
  }
  return limits;
}
