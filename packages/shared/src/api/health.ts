import type { Sql } from '../db.ts';
import type { Clock } from '../clock.ts';
import { isConnectionError } from '../peer-errors.ts';
import { poolUsage, serverVersion } from './queries.ts';
import { dialectFromVersion } from '../mirror/index.ts';

export type ComponentStatus = 'up' | 'down' | 'not_configured';

export interface DatabaseHealth {
  status: ComponentStatus;
  kind: 'postgresql';
  ping_ms: number | null;
  /**
   * This instance's pool: `via` 'pooler' when it connects through a transaction pooler, where
   * `size` counts the server connections it uses at the moment and `free` is unknown (null).
   */
  pool: { size: number; free: number | null; max: number; via: 'pooler' | 'direct' } | null;
  error?: string;
}

export interface MirrorHealth {
  status: ComponentStatus;
  kind: 'cockroachdb' | 'postgresql' | null;
  ping_ms: number | null;
  error?: string;
}

export interface Health {
  status: 'healthy' | 'degraded' | 'unhealthy';
  timestamp: string;
  version: string;
  components: { database: DatabaseHealth; mirror: MirrorHealth };
}

export interface HealthDeps {
  sql: Sql;
  mirror: Sql | null;
  applicationName: string;
  poolMax: number;
  /** The pool connects through a transaction pooler (CESAR_DB_URL). */
  pooled?: boolean;
  clock: Clock;
  version: string;
  /** A component that has not answered within this many milliseconds is down. */
  timeoutMs?: number;
}

/**
 * Pings the primary and the mirror in parallel. The primary down makes the system
 * unhealthy (503); the mirror down only degrades it, since the primary keeps working and
 * the sync catches up later.
 */
export async function checkHealth(deps: HealthDeps): Promise<Health> {
  const timeoutMs = deps.timeoutMs ?? 2000;
  const [database, mirror] = await Promise.all([
    timed(() => pingOnce(deps.sql), timeoutMs).then(async (ping): Promise<DatabaseHealth> => {
      if (!ping.ok) {
        return { status: 'down', kind: 'postgresql', ping_ms: null, pool: null, error: ping.error };
      }
      const pooled = deps.pooled ?? false;
      const usage = await poolUsage(deps.sql, deps.applicationName, pooled);
      return {
        status: 'up',
        kind: 'postgresql',
        ping_ms: ping.ms,
        pool: { ...usage, max: deps.poolMax, via: pooled ? 'pooler' : 'direct' },
      };
    }).catch((err): DatabaseHealth => ({
      status: 'down',
      kind: 'postgresql',
      ping_ms: null,
      pool: null,
      error: describe(err),
    })),
    deps.mirror === null
      ? Promise.resolve<MirrorHealth>({ status: 'not_configured', kind: null, ping_ms: null })
      : timed(() => serverVersion(deps.mirror!), timeoutMs).then((ping): MirrorHealth =>
        ping.ok
          ? {
            status: 'up',
            kind: dialectFromVersion(ping.value).name,
            ping_ms: ping.ms,
          }
          : { status: 'down', kind: null, ping_ms: null, error: ping.error }
      ),
  ]);
  const status = database.status !== 'up'
    ? 'unhealthy'
    : mirror.status === 'down'
    ? 'degraded'
    : 'healthy';
  return {
    status,
    timestamp: deps.clock.now().toISOString(),
    version: deps.version,
    components: { database, mirror },
  };
}

/**
 * One ping that a stale connection error does not fail: postgres.js replays the error of a
 * connection that failed while it was connecting onto that connection's next query
 * (porsager/postgres#1223), so a minute after an outage the first ping on it could answer
 * "database down" (PgBouncer's "server login has been failing") though the database is up.
 * A connection error is asked again once, on a fresh connection.
 */
async function pingOnce(sql: Sql): Promise<void> {
  try {
    await serverVersion(sql);
  } catch (err) {
    if (!isConnectionError(err)) throw err;
    await serverVersion(sql);
  }
}

/**
 * How long one instance reuses a health check: GET /api/health answers from the last check if
 * it started less than a second ago (its `timestamp` says when, the Age header how many whole
 * seconds ago). A check is two round trips to the primary and one to the mirror; under load
 * (thousands of requests a second, or a monitor per dashboard tab) the answer would be about
 * the checks themselves. A second late is nothing to a health answer: an outage shows within
 * a second, as a recovery does.
 */
export const HEALTH_CACHE_MS = 1_000;

/**
 * `check`, run at most once per `ttlMs` (counted from its start, on a monotonic clock): the
 * callers in between share its answer, and callers during a slow check (a database down: up
 * to timeoutMs) wait for that one instead of each starting their own.
 */
export function cachedHealth(
  check: () => Promise<Health>,
  ttlMs: number = HEALTH_CACHE_MS,
  now: () => number = () => performance.now(),
): () => Promise<{ health: Health; ageMs: number }> {
  let last: { startedAt: number; health: Promise<Health> } | null = null;
  return async () => {
    if (last === null || now() - last.startedAt >= ttlMs) {
      last = { startedAt: now(), health: check() };
    }
    const { startedAt, health } = last;
    return { health: await health, ageMs: Math.max(0, now() - startedAt) };
  };
}

type Timed<T> = { ok: true; ms: number; value: T } | { ok: false; error: string };

async function timed<T>(work: () => Promise<T>, timeoutMs: number): Promise<Timed<T>> {
  const started = performance.now();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
  });
  try {
    const value = await Promise.race([work(), timeout]);
    return { ok: true, ms: Math.round((performance.now() - started) * 100) / 100, value };
  } catch (err) {
    return { ok: false, error: describe(err) };
  } finally {
    clearTimeout(timer);
  }
}

function describe(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as { code?: string }).code;
    return code ? `${code}: ${err.message}` : err.message;
  }
  return String(err);
}
