import type http from 'node:http';
import { runtimeLimits } from '../../packages/shared/src/limits.ts';
import { type FunctionHost, serveFunctions } from './functions.ts';
import { startGateway } from './gateway.ts';
import { type PgNetWorker, startPgNetWorker } from './pg-net-worker.ts';
import { restartPolicy } from './restart.ts';

// The local stack's long-running part, run by the supervisor (supervisor.ts): the functions
// behind a gateway on CESAR_FUNCTIONS_PORT, and the pg_net stand-in's worker. It reads the
// same environment the functions get; SIGTERM stops it and everything it started. Each part
// is restarted with backoff (restart.ts) when it fails: a function process that exits, a
// gateway whose server fails or closes, a pg_net worker that loses its LISTEN connection or
// cannot start. A throw nothing catches stops the runtime with code 1, and the supervisor
// starts it again. The gateway binds its port first, so a port taken by something else stops
// it before any function is spawned.

const log = (line: string) => console.log(`${new Date().toISOString()} ${line}`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const required = (name: string): string => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};

const functionEnv: Record<string, string> = {};
for (
  const name of [
    'SUPABASE_URL',
    // The pooler (the functions' pool uses it) and the direct connection hosted also sets.
    'CESAR_DB_URL',
    'SUPABASE_DB_URL',
    'CESAR_DB_POOL_MAX',
    'COCKROACH_DB_URL',
    'CESAR_FUNCTION_SECRET',
    'SUPABASE_SERVICE_ROLE_KEY',
    // The keys hosted sets in every function besides the service_role key. The JWT secret is
    // the gateway's (verify_jwt), not the functions': hosted does not hand it to them.
    'SUPABASE_ANON_KEY',
    'SUPABASE_PUBLISHABLE_KEYS',
    'SUPABASE_SECRET_KEYS',
    // `CESAR_HTTP_ALLOW=127.0.0.1:8080 npm start` lets http.request reach a local service.
    'CESAR_HTTP_ALLOW',
    // `CESAR_ALLOWED_ORIGINS=http://localhost:5173 npm start` for a dashboard served elsewhere.
    'CESAR_ALLOWED_ORIGINS',
    // Signed deliveries to the webhook function (Standard Webhooks), as `npm start` is given them.
    'CESAR_WEBHOOK_SIGNING_SECRET',
    'CESAR_WEBHOOK_SIGNATURE_TOLERANCE_SECONDS',
  ]
) {
  if (process.env[name]) functionEnv[name] = process.env[name]!;
}

const port = Number(required('CESAR_FUNCTIONS_PORT'));
// Direct, not the pooler: the pg_net worker LISTENs, which needs a session of its own.
const databaseUrl = required('SUPABASE_DB_URL');
// Hosted's limits, enforced on every function (limits.ts): CESAR_PLAN=free|paid (wall clock
// 150 s or 400 s, paid by default), CESAR_WALL_CLOCK_SECONDS, CESAR_LIMITS=off for none.
const limits = runtimeLimits(process.env);
let functions: FunctionHost | null = null;
let worker: PgNetWorker | null = null;
let gateway: http.Server | null = null;
let stopping = false;

const gatewayRestarts = restartPolicy();
async function openGateway(): Promise<void> {
  const server = await startGateway({
    port,
    functionPort: (name) => functions?.port(name),
    // Late-bound: the gateway is up before the functions are.
    functions: {
      limits,
      has: (name) => functions?.has(name) ?? false,
      acquire: (name) => functions ? functions.acquire(name) : Promise.resolve(undefined),
    },
  });
  gatewayRestarts.started();
  gateway = server;
  server.on('error', (err) => {
    log(`gateway: ${err.message}`);
    server.close();
    server.closeAllConnections();
  });
  server.once('close', () => {
    if (!stopping && gateway === server) reopenGateway('closed unexpectedly');
  });
}
function reopenGateway(reason: string): void {
  gateway = null;
  const delay = gatewayRestarts.nextDelayMs();
  log(`gateway ${reason}; reopening in ${delay} ms`);
  setTimeout(() => {
    if (stopping) return;
    openGateway().then(
      () => log('gateway reopened'),
      (err) => reopenGateway(`could not open: ${err.message}`),
    );
  }, delay);
}

const workerRestarts = restartPolicy();
async function superviseWorker(): Promise<void> {
  while (!stopping) {
    try {
      worker = await startPgNetWorker({ databaseUrl, log });
      workerRestarts.started();
      log('pg_net worker running');
      const err = await worker.failed;
      if (stopping) return;
      log(`pg_net worker failed: ${err.message}`);
      await worker.stop().catch((e) => log(`pg_net worker: stopping it: ${e.message}`));
    } catch (err) {
      log(`pg_net worker could not start: ${(err as Error).message}`);
    }
    worker = null;
    if (stopping) return;
    const delay = workerRestarts.nextDelayMs();
    log(`pg_net worker restarting in ${delay} ms`);
    await sleep(delay);
  }
}

async function shutdown(reason: string, code: number) {
  if (stopping) return;
  stopping = true;
  log(`${reason}: stopping`);
  if (gateway) {
    const closed = new Promise<void>((resolve) => gateway!.close(() => resolve()));
    gateway.closeAllConnections();
    await closed;
  }
  await Promise.allSettled([functions?.stop(), worker?.stop()]);
  log('stopped');
  process.exit(code);
}
process.on('SIGTERM', () => void shutdown('SIGTERM', 0));
process.on('SIGINT', () => void shutdown('SIGINT', 0));
process.on('uncaughtException', (err) => void shutdown(`uncaught ${err.stack ?? err}`, 1));

try {
  await openGateway();
  functions = await serveFunctions(functionEnv, log, { limits });
  void superviseWorker();
  log(
    `runtime ready: functions on :${port}; ${
      limits
        ? `hosted limits enforced (CPU ${limits.cpuMs} ms per request, ${limits.memoryMb} MB, ` +
          `idle ${limits.idleTimeoutMs / 1000} s, wall clock ${limits.wallClockMs / 1000} s)`
        : 'no limits enforced (CESAR_LIMITS=off)'
    }`,
  );
} catch (err) {
  await shutdown(`start failed: ${(err as Error).message}`, 1);
}
