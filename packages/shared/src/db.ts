import net from 'node:net';
import postgres from 'postgres';
import { isConnectionError } from './peer-errors.ts';

export type Sql = postgres.Sql;

export interface DbOptions {
  /**
   * Shown in pg_stat_activity, and in a pooler's SHOW CLIENTS; health uses it to count this
   * instance's connections. PgBouncer (1.18) also sets it on each server connection it lends
   * the client, for the transaction, so pg_stat_activity shows it on the one in use.
   */
  applicationName: string;
  max: number;
  /**
   * The URL is a transaction-mode pooler (CESAR_DB_URL, by contract): no prepared statements,
   * since the next transaction may run on another server connection that never saw them.
   */
  pooled?: boolean;
}

/**
 * Supavisor's transaction port on hosted Supabase. A URL on it is pooled whatever variable it
 * came in (a heuristic, kept as a safety net for a pooler URL given as SUPABASE_DB_URL).
 */
const TRANSACTION_POOLER_PORT = /^postgres(?:ql)?:\/\/[^/?#]*:6543(?:[/?#]|$)/;

/** Is this pool's URL a transaction pooler: declared so, or on Supavisor's port 6543? */
export function isPooled(url: string, declared = false): boolean {
  return declared || TRANSACTION_POOLER_PORT.test(url);
}

/**
 * A TCP connection with Nagle's algorithm off. postgres.js leaves it on, in Node and in Deno
 * alike, and a COPY's closing CopyDone, a few bytes written after a large CopyData, then waits
 * for the server's delayed ACK: measured 44 ms per COPY under Deno, 3 ms with this socket; a
 * 100,000-row first push under Node spent 5.4 s of its time there, 1.0 s without. node:net is
 * one of the few Node APIs the core uses (with node:http(s) and node:dns for outbound requests,
 * http/outbound.ts): postgres.js is built on it, and Deno provides it.
 *
 * The socket is returned while it is still connecting, as postgres.js's own socket is: its
 * 'error' and 'close' then reach postgres.js, which frees the connection and fails the query.
 * A factory that waits for 'connect' and rejects instead leaves postgres.js 3.4 a connection
 * it never closes: after `max` refused connects every later query of the pool hung, for good.
 */
export function noDelaySocket(options: { host: string[]; port: number[] }): net.Socket {
  const socket = net.connect({ host: options.host[0], port: options.port[0] ?? 5432 });
  socket.setNoDelay(true);
  return socket;
}

/**
 * Seconds a connection waits before its next connect after a failed one. postgres.js's own
 * backoff grows to 20 s after eight failures in a row, so a pool that saw an outage made every
 * request wait that long before even trying; this one never waits more than a second.
 */
export function reconnectDelaySeconds(failures: number, random = Math.random): number {
  return Math.min(0.05 * 2 ** failures, 1) * (0.5 + random() / 2);
}

/**
 * The options that make a postgres.js pool heal: a refused or dropped connection fails its
 * query at once (within `connect_timeout` at worst) and the next query connects afresh, with
 * TCP_NODELAY. Every long-lived pool of the project uses them.
 */
export const healingPoolOptions = {
  // A documented option that postgres.js's types leave out.
  ...({ socket: noDelaySocket } as object),
  connect_timeout: 5,
  backoff: reconnectDelaySeconds,
};

/**
 * A function's pool. A transaction pooler (PgBouncer 1.18 locally, Supavisor on hosted) cannot
 * keep prepared statements across transactions, so they are off on a pooled URL (isPooled)
 * and on for a direct one. Nothing else the functions do needs a session (the README lists
 * the audit): transaction-scoped advisory locks and set_config(..., true) only.
 */
export function createSql(url: string, options: DbOptions): Sql {
  const pooled = isPooled(url, options.pooled);
  const sql = postgres(url, {
    ...healingPoolOptions,
    max: options.max,
    prepare: !pooled,
    // postgres.js writes a query onto a connection whose last one is still running when all
    // are busy (up to 100 deep). A transaction pooler gives the server connection back at the
    // first query's end, and the replies of those written behind it are lost: through
    // PgBouncer 6 concurrent API requests left 3 hanging for good, even at 1 deep (Supavisor
    // the same: porsager/postgres#970, supabase/supabase#50358). 0: never.
    ...(pooled ? { max_pipeline: 0 } : {}),
    idle_timeout: 30,
    connection: { application_name: options.applicationName },
    onnotice: () => {},
  });
  return pooled ? Object.assign(sql, { begin: beginOnReserved(sql) }) : sql;
}

/**
 * `sql.begin` for a pool with max_pipeline 0: postgres.js's own never marks its connection as
 * the transaction's there (porsager/postgres#1211, open), and every BEGIN fails with
 * UNSAFE_TRANSACTION. The same on a reserved connection, which postgres.js does mark:
 * BEGIN, the callback's queries, COMMIT; ROLLBACK if the callback throws.
 *
 * A reserved connection that closed must be neither written to nor released. postgres.js 3.4.9
 * writes a query for a closed connection onto its nulled socket (a TypeError thrown from a
 * timer, "Cannot read properties of null (reading 'write')"), and that query never settles;
 * release() puts the closed connection among the open ones, where every later query of the
 * pool it is given to hangs the same way. Its own sql.begin watches the connection's close;
 * a reserved connection has no such hook, so the error tells: a connection error (the
 * connection went away, or the server said it is going) ends the transaction without a
 * ROLLBACK, and the connection is left to the pool, which has moved it among the closed ones
 * (to connect afresh) or will when the socket closes. A callback must therefore not let a
 * connection error of another pool out as its own (OtherPoolFailure, for a transaction
 * inside another's). One gap is left: a callback that throws an error of its own
 * after its connection closed unnoticed (idle in the transaction) gets a ROLLBACK written to
 * the closed connection; it does not settle, and after ROLLBACK_WAIT_MS the transaction
 * answers the callback's error, the connection lost to the pool (postgres.js has parked it
 * among its full ones) rather than handed to the next query.
 */
function beginOnReserved(sql: Sql): Sql['begin'] {
  return (async (...args: unknown[]) => {
    const fn = args.pop() as (tx: Sql) => unknown;
    const mode = typeof args[0] === 'string' ? args[0].replace(/[^a-z ]/gi, '') : '';
    const tx = await sql.reserve();
    let usable = true;
    try {
      await tx.unsafe(`begin ${mode}`);
      const work = fn(tx as unknown as Sql);
      const result = await (Array.isArray(work) ? Promise.all(work) : work);
      await tx`commit`;
      return result;
    } catch (err) {
      usable = !isConnectionError(err) && await rolledBack(tx);
      throw err;
    } finally {
      if (usable) tx.release();
    }
  }) as Sql['begin'];
}

/**
 * The failure of another pool's work inside a transaction's callback (the bulk load's primary
 * COPY inside the mirror's transaction and the mirror's COPY inside the primary's, a restore's
 * primary pages inside the mirror's snapshot): carried out of the callback wrapped, so that
 * the transaction does not take the other connection's loss for its own (beginOnReserved),
 * and unwrapped (unwrapOtherPool) once that transaction has ended.
 */
export class OtherPoolFailure extends Error {
  constructor(readonly reason: unknown) {
    super(`another pool's work failed: ${(reason as Error)?.message ?? reason}`);
  }
}

/** Runs another pool's `work` inside a transaction's callback; see OtherPoolFailure. */
export async function otherPool<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (err) {
    throw err instanceof OtherPoolFailure ? err : new OtherPoolFailure(err);
  }
}

/** The failure an OtherPoolFailure carried; any other error as it is. */
export function unwrapOtherPool(err: unknown): unknown {
  return err instanceof OtherPoolFailure ? err.reason : err;
}

/** How long a ROLLBACK may take before its connection is taken for closed. */
const ROLLBACK_WAIT_MS = 5_000;

/** Rolls back; false if the connection failed meanwhile or did not answer in time. */
async function rolledBack(tx: postgres.ReservedSql): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<'late'>((resolve) => {
    timer = setTimeout(() => resolve('late'), ROLLBACK_WAIT_MS);
  });
  try {
    return await Promise.race([tx`rollback`.then(() => true as const), late]) === true;
  } catch (err) {
    // The server's refusal (a statement error) leaves the connection usable.
    return !isConnectionError(err);
  } finally {
    clearTimeout(timer);
  }
}

/** A per-instance application name, so one instance's pool can be told from another's. */
export function instanceApplicationName(functionName: string): string {
  return `cesar-edge/${functionName}/${crypto.randomUUID().slice(0, 8)}`;
}

/**
 * Runs a statement that stops when `signal` aborts: the server is asked to cancel it
 * (postgres.js's query.cancel(), a CancelRequest on a connection of its own, which PgBouncer
 * and Supavisor pass on to the server connection running it) and the call rejects with the
 * signal's reason once the statement has stopped (SQLSTATE 57014 from the server). Not sent
 * when the signal aborted already. A job handler's long statements go through it, so that a
 * cancelled or timed-out job stops within a round trip instead of holding its job, leased,
 * until the statement ends (see drainQueue). The request is sent only while the statement
 * runs; one that crosses its statement's end on the wire may reach the pooler after the
 * server connection went to another client, whose statement is then cancelled (57014, a
 * retryable failure): a window of a round trip, once per aborted handler.
 */
export async function cancelOnAbort<T extends readonly postgres.MaybeRow[]>(
  signal: AbortSignal,
  query: postgres.PendingQuery<T>,
): Promise<postgres.RowList<T>> {
  signal.throwIfAborted();
  const cancel = () => {
    // Its answer is the statement's failure; a cancel that cannot connect changes nothing.
    Promise.resolve(query.cancel() as unknown).catch(() => {});
  };
  signal.addEventListener('abort', cancel, { once: true });
  try {
    return await query;
  } catch (err) {
    // A connection lost meanwhile is said as such: inside a pooled transaction it tells
    // beginOnReserved not to write to the connection again (see there).
    throw signal.aborted && !isConnectionError(err) ? signal.reason : err;
  } finally {
    signal.removeEventListener('abort', cancel);
  }
}
