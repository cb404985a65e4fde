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
 * the one Node API the core uses: postgres.js is built on it, and Deno provides it.
 */
export function noDelaySocket(options: { host: string[]; port: number[] }): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: options.host[0], port: options.port[0] ?? 5432 });
    socket.setNoDelay(true);
    socket.once('connect', () => {
      socket.off('error', reject);
      resolve(socket);
    });
    socket.once('error', reject);
  });
}

/**
 * A postgres.js pool. Supabase's transaction pooler (port 6543) cannot keep prepared
 * statements across transactions, so they are turned off there and on everywhere else.
 */
export function createSql(url: string, options: DbOptions): Sql {
  return postgres(url, {
    // A documented option that postgres.js's types leave out.
    ...({ socket: noDelaySocket } as object),
    max: options.max,
    prepare: !/:6543\//.test(url),
    idle_timeout: 30,
    connect_timeout: 5,
    connection: { application_name: options.applicationName },
    onnotice: () => {},
  });
}

/** A per-instance application name, so one instance's pool can be told from another's. */
export function instanceApplicationName(functionName: string): string {
  return `cesar-edge/${functionName}/${crypto.randomUUID().slice(0, 8)}`;
}
