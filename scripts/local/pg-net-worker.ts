import postgres from 'postgres';

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
}

export interface PgNetWorker {
  /** Requests performed since start. */
  readonly performed: number;
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
    max: 4,
    onnotice: () => {},
    connection: { application_name: 'cesar-edge/pg-net-worker' },
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
      const response = await fetch(request.url, {
        method: request.method,
        headers: request.headers,
        body: request.body ? new Uint8Array(request.body) : undefined,
        signal: AbortSignal.timeout(request.timeout_milliseconds),
      });
      const content = await response.text();
      row = {
        status_code: response.status,
        content_type: response.headers.get('content-type'),
        headers: Object.fromEntries(response.headers.entries()),
        content,
        timed_out: false,
        error_msg: null,
      };
    } catch (err) {
      const timedOut = err instanceof Error &&
        (err.name === 'TimeoutError' || err.name === 'AbortError');
      row = {
        status_code: null,
        content_type: null,
        headers: null,
        content: null,
        timed_out: timedOut,
        error_msg: timedOut
          ? `Timeout of ${request.timeout_milliseconds} ms reached`
          : err instanceof Error
          ? (err.cause instanceof Error ? err.cause.message : err.message)
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

  async function drain(): Promise<void> {
    do {
      again = false;
      while (!stopped && inFlight < concurrency) {
        const batch = await sql<QueuedRequest[]>`
          delete from net.http_request_queue
          where id in (
            select id from net.http_request_queue order by id
            limit ${concurrency - inFlight} for update skip locked
          )
          returning id, method, url, headers, body, timeout_milliseconds
        `;
        if (batch.length === 0) break;
        for (const request of batch) {
          inFlight++;
          const task = perform(request).finally(() => {
            inFlight--;
            running.delete(task);
            if (!stopped) kick();
          });
          running.add(task);
        }
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

  const listener = await sql.listen('cesar_pg_net', () => kick());
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
    async stop() {
      stopped = true;
      clearInterval(poll);
      clearInterval(prune);
      await listener.unlisten().catch(() => {});
      await draining;
      await Promise.allSettled([...running]);
      await sql.end({ timeout: 5 });
    },
  };
}
