import http from 'node:http';
import https from 'node:https';
import postgres from 'postgres';
import { healingPoolOptions } from '../../packages/shared/src/db.ts';

// The worker behind the local pg_net stand-in (pg-net-standin.sql): it takes committed
// requests from net.http_request_queue, performs them, and writes net._http_response,
// as pg_net's background worker does. It wakes on NOTIFY (sent at commit) for latency and
// polls every second as a safety net. Like pg_net it deletes a request when it takes it:
// pg_net is never trusted for delivery, callers keep their own durable state.

export interface PgNetWorkerOptions {
  databaseUrl: string;
  /** Requests in flight at once. */
  concurrency?: number;
  pollIntervalMs?: number;
  /** Responses older than this are deleted, like pg_net's ttl (6 hours by default). */
  responseTtlSeconds?: number;
  log?: (line: string) => void;
  /** How often the worker checks its LISTEN connection by notifying itself. */
  heartbeatMs?: number;
}

export interface PgNetWorker {
  /** Requests performed since start. */
  readonly performed: number;
  /** Resolves when the worker finds itself broken (its LISTEN connection lost); stop it and start another. */
  readonly failed: Promise<Error>;
  stop(): Promise<void>;
}

interface QueuedRequest {
  id: string;
  method: string;
  url: string;
  headers: Record<string, string>;
  body: Buffer | null;
  timeout_milliseconds: number;
}

export async function startPgNetWorker(options: PgNetWorkerOptions): Promise<PgNetWorker> {
  const concurrency = options.concurrency ?? 32;
  const log = options.log ?? (() => {});
  const sql = postgres(options.databaseUrl, {
    ...healingPoolOptions,
    max: 4,
    onnotice: () => {},
    // Its writes are to unlogged tables, as pg_net's are: nothing to wait for at commit.
    connection: { application_name: 'cesar-edge/pg-net-worker', synchronous_commit: 'off' },
  });
  let inFlight = 0;
  let performed = 0;
  let stopped = false;
  let draining: Promise<void> | null = null;
  let again = false;
  const running = new Set<Promise<void>>();

  async function perform(request: QueuedRequest): Promise<void> {
    let row: Record<string, unknown>;
    try {
      const response = await send(request);
      row = {
        status_code: response.status,
        content_type: response.headers['content-type'] ?? null,
        headers: response.headers,
        content: response.body,
        timed_out: false,
        error_msg: null,
      };
    } catch (err) {
      const timedOut = err instanceof TimeoutError;
      row = {
        status_code: null,
        content_type: null,
        headers: null,
        content: null,
        timed_out: timedOut,
        error_msg: timedOut
          ? `Timeout of ${request.timeout_milliseconds} ms reached`
          : err instanceof Error
          ? err.message
          : String(err),
      };
    }
    performed++;
    await sql`
      insert into net._http_response (id, status_code, content_type, headers, content, timed_out, error_msg)
      values (${request.id}, ${row.status_code as number | null}, ${row.content_type as
      | string
      | null},
              ${row.headers === null ? null : sql.json(row.headers as Record<string, string>)},
              ${row.content as string | null}, ${row.timed_out as boolean}, ${row.error_msg as
      | string
      | null})
    `.catch((err) => log(`pg_net worker: could not record response ${request.id}: ${err.message}`));
  }

  /** Takes one notified request by its id: a primary-key lookup, the quickest way in. */
  async function takeNotified(id: string): Promise<void> {
    if (stopped || inFlight >= concurrency) return kick();
    const [request] = await sql<QueuedRequest[]>`
      delete from net.http_request_queue where id = ${id}
      returning id, method, url, headers, body, timeout_milliseconds
    `;
    if (request) start(request);
  }

  function start(request: QueuedRequest): void {
    inFlight++;
    const saturated = inFlight >= concurrency;
    const task = perform(request).finally(() => {
      inFlight--;
      running.delete(task);
      // A full worker may have left requests queued: look for them now.
      if (saturated && !stopped) kick();
    });
    running.add(task);
  }

  async function drain(): Promise<void> {
    do {
      again = false;
      while (!stopped && inFlight < concurrency) {
        const batch = await sql<QueuedRequest[]>`
          delete from net.http_request_queue
          where id in (
            select id from net.http_request_queue
            order by id
            limit ${concurrency - inFlight} for update skip locked
          )
          returning id, method, url, headers, body, timeout_milliseconds
        `;
        if (batch.length === 0) break;
        batch.forEach(start);
      }
    } while (again && !stopped);
  }

  function kick(): void {
    if (draining) {
      again = true;
      return;
    }
    draining = drain()
      .catch((err) => log(`pg_net worker: ${err.message}`))
      .finally(() => {
        draining = null;
        if (again && !stopped) kick();
      });
  }

  // The notification carries the request's id; anything it misses, the poll finds.
  let heard = Date.now();
  const listener = await sql.listen('cesar_pg_net', (id) => {
    if (id === HEARTBEAT) heard = Date.now();
    else takeNotified(id).catch((err) => log(`pg_net worker: ${err.message}`));
  });
  // postgres.js listens again when its LISTEN connection drops, but gives up without a word
  // if the database is not back at that moment; the worker would then only poll. So it
  // notifies itself every heartbeatMs (5 s) and counts itself broken when none of its own
  // notifications arrived for three periods.
  const heartbeatMs = options.heartbeatMs ?? 5000;
  let fail: (err: Error) => void = () => {};
  const failed = new Promise<Error>((resolve) => (fail = resolve));
  const heartbeat = setInterval(() => {
    if (Date.now() - heard > 3 * heartbeatMs) {
      fail(
        new Error(`no notification for ${Date.now() - heard} ms: its LISTEN connection is lost`),
      );
    }
    sql`select pg_notify('cesar_pg_net', ${HEARTBEAT})`.catch(() => {});
  }, heartbeatMs);
  const poll = setInterval(kick, options.pollIntervalMs ?? 1000);
  const ttl = options.responseTtlSeconds ?? 6 * 3600;
  const prune = setInterval(() => {
    sql`delete from net._http_response where created < now() - make_interval(secs => ${ttl})`
      .catch((err) => log(`pg_net worker: prune failed: ${err.message}`));
  }, 60_000);
  kick();

  return {
    get performed() {
      return performed;
    },
    failed,
    async stop() {
      stopped = true;
      clearInterval(heartbeat);
      clearInterval(poll);
      clearInterval(prune);
      await listener.unlisten().catch(() => {});
      await draining;
      await Promise.allSettled([...running]);
      await sql.end({ timeout: 5 });
    },
  };
}

const HEARTBEAT = 'heartbeat';

class TimeoutError extends Error {}

// Keep-alive connections, as pg_net's libcurl keeps them: the doorbell's latency is mostly
// connection set-up otherwise.
const agents = {
  'http:': new http.Agent({ keepAlive: true, maxSockets: 64 }),
  'https:': new https.Agent({ keepAlive: true, maxSockets: 64 }),
};

interface Answer {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/** One request with node's http client (lighter than fetch on this hot path). */
function send(request: QueuedRequest): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const url = new URL(request.url);
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      return reject(new Error(`unsupported protocol ${url.protocol}`));
    }
    const body = request.body ? Buffer.from(request.body) : undefined;
    const client = url.protocol === 'https:' ? https : http;
    const req = client.request(url, {
      method: request.method,
      headers: { ...request.headers, ...(body ? { 'content-length': String(body.length) } : {}) },
      agent: agents[url.protocol],
    }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => {
        clearTimeout(timer);
        const headers: Record<string, string> = {};
        for (const [name, value] of Object.entries(res.headers)) {
          if (value !== undefined) headers[name] = Array.isArray(value) ? value.join(', ') : value;
        }
        resolve({
          status: res.statusCode ?? 0,
          headers,
          body: Buffer.concat(chunks).toString('utf8'),
        });
      });
      res.on('error', reject);
    });
    const timer = setTimeout(() => req.destroy(new TimeoutError()), request.timeout_milliseconds);
    req.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    req.end(body);
  });
}
