// An Edge Function instance serves many requests; an error that escapes every await ends the
// instance and all of them. postgres.js can raise one from a socket callback after the peer
// went away: "Cannot read properties of null (reading 'write')" was seen when the mirror was
// SIGKILLed mid-COPY, after the COPY itself had already failed with CONNECTION_CLOSED (and the
// sync run had recorded that). Such errors are logged and the instance keeps serving; any
// other stray error still ends it, as it should.

/** Error codes postgres.js and the socket layer give a connection that failed or went away. */
const CONNECTION_CODES = new Set([
  'CONNECTION_CLOSED',
  'CONNECTION_DESTROYED',
  'CONNECTION_ENDED',
  'CONNECT_TIMEOUT',
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
]);

/**
 * SQLSTATEs of a server that is going away, not there yet or taking no more connections: the
 * connection exceptions of class 08 (not 08P01, a protocol violation, which is a bug),
 * 57P01-57P03 (admin_shutdown, crash_shutdown, cannot_connect_now: "starting up") and 53300
 * (too_many_connections: every connection slot taken, as in the rush of reconnects after a
 * restart; a pooler passes the server's refusal of its login on to the client that waited).
 */
const UNAVAILABLE_STATE = /^(0800[0-46]|57P0[123]|53300)$/;

/**
 * A transaction pooler's own answers when it cannot give a client a server connection.
 * PgBouncer sends every error of its own as 08P01 (so the code alone would read as a bug):
 * "server login has been failing, try again later (server_login_retry)" to a client that
 * connects while the database is away, "query_wait_timeout" to one that waited too long in
 * the queue, "pgbouncer cannot connect to server", "no more connections allowed
 * (max_client_conn)", "server conn crashed?" to a client whose query's server connection died
 * (the database restarted under it). Supavisor answers "Max client connections reached" at
 * its limit.
 */
const POOLER_UNAVAILABLE =
  /server login has been failing|query_wait_timeout|cannot connect to server|no more connections allowed|server conn crashed|max client connections reached/i;

/** Is the database (or mirror) away: a connection that failed, or a server going or not up? */
export function isConnectionError(err: unknown): boolean {
  const e = err as { code?: unknown; message?: unknown } | null;
  const code = e?.code;
  if (typeof code !== 'string') return false;
  if (CONNECTION_CODES.has(code) || UNAVAILABLE_STATE.test(code)) return true;
  return code === '08P01' && typeof e?.message === 'string' && POOLER_UNAVAILABLE.test(e.message);
}

/**
 * postgres.js's own code, wherever the runtime keeps the package (node_modules/postgres/src,
 * or a versioned npm cache directory as the Edge Runtime has).
 */
const POSTGRES_JS_FRAME = /[\\/]postgres[\\/](?:\d[^\\/]*[\\/])?src[\\/]/;

/**
 * A stray error from a database connection: a connection error, or a bug-like throw whose top
 * frame is postgres.js's connection code (not a server's answer to a query, a PostgresError;
 * not our own callback that postgres.js called, whose frame would be on top).
 */
export function isStrayConnectionError(err: unknown): boolean {
  if (isConnectionError(err)) return true;
  const e = err as { name?: unknown; stack?: unknown } | null;
  if (typeof e?.stack !== 'string' || e.name === 'PostgresError') return false;
  const top = e.stack.split('\n').find((line) => /^\s+at /.test(line));
  return top !== undefined && POSTGRES_JS_FRAME.test(top);
}

interface ErrorEventLike {
  error?: unknown;
  reason?: unknown;
  preventDefault(): void;
}

/**
 * Keeps the instance alive through stray connection errors (uncaught exceptions and
 * unhandled rejections). Uses the web platform's global events, which Deno (and the Supabase
 * Edge Runtime) dispatch; elsewhere it does nothing.
 */
export function surviveConnectionErrors(log: (line: string) => void = console.error): void {
  const target = globalThis as unknown as {
    addEventListener?: (type: string, listener: (event: ErrorEventLike) => void) => void;
  };
  if (typeof target.addEventListener !== 'function') return;
  const handle = (kind: string, err: unknown, event: ErrorEventLike) => {
    if (!isStrayConnectionError(err)) return;
    event.preventDefault();
    log(`${kind} from a database connection, instance kept: ${(err as Error).stack ?? err}`);
  };
  target.addEventListener('error', (event) => handle('uncaught error', event.error, event));
  target.addEventListener(
    'unhandledrejection',
    (event) => handle('unhandled rejection', event.reason, event),
  );
}
