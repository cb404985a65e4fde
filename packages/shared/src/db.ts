import net from 'node:net';
import postgres from 'postgres';

export type Sql = postgres.Sql;

export interface DbOptions {
  /** Shown in pg_stat_activity; health uses it to count this instance's connections. */
  applicationName: string;
  max: number;
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
 * A function's pool. Supabase's transaction pooler (port 6543) cannot keep prepared statements
 * across transactions, so they are turned off there and on everywhere else.
 */
export function createSql(url: string, options: DbOptions): Sql {
  return postgres(url, {
    ...healingPoolOptions,
    max: options.max,
    prepare: !/:6543\//.test(url),
    idle_timeout: 30,
    connection: { application_name: options.applicationName },
    onnotice: () => {},
  });
}

/** A per-instance application name, so one instance's pool can be told from another's. */
export function instanceApplicationName(functionName: string): string {
  return `cesar-edge/${functionName}/${crypto.randomUUID().slice(0, 8)}`;
}
