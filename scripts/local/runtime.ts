import { type FunctionHost, serveFunctions } from './functions.ts';
import { startGateway } from './gateway.ts';
import { type PgNetWorker, startPgNetWorker } from './pg-net-worker.ts';

// The local stack's long-running part, started in the background by `npm start`: the
// functions behind a gateway on CESAR_FUNCTIONS_PORT, and the pg_net stand-in's worker.
// It reads the same environment the functions get; SIGTERM stops it and everything it
// started. The gateway binds its port first, so a port taken by something else stops it
// before any function is spawned, and a failure while starting stops what had started.

const log = (line: string) => console.log(`${new Date().toISOString()} ${line}`);

const required = (name: string): string => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};

const functionEnv: Record<string, string> = {};
for (
  const name of [
    'SUPABASE_URL',
    'SUPABASE_DB_URL',
    'COCKROACH_DB_URL',
    'CESAR_FUNCTION_SECRET',
    'SUPABASE_SERVICE_ROLE_KEY',
  ]
) {
  if (process.env[name]) functionEnv[name] = process.env[name]!;
}

let functions: FunctionHost | null = null;
let worker: PgNetWorker | null = null;
const gateway = await startGateway({
  port: Number(required('CESAR_FUNCTIONS_PORT')),
  functionPort: (name) => functions?.port(name),
});

let stopping = false;
async function shutdown(reason: string, code: number) {
  if (stopping) return;
  stopping = true;
  log(`${reason}: stopping`);
  const closed = new Promise<void>((resolve) => gateway.close(() => resolve()));
  gateway.closeAllConnections();
  await closed;
  await Promise.allSettled([functions?.stop(), worker?.stop()]);
  log('stopped');
  process.exit(code);
}
process.on('SIGTERM', () => void shutdown('SIGTERM', 0));
process.on('SIGINT', () => void shutdown('SIGINT', 0));
process.on('uncaughtException', (err) => void shutdown(`uncaught ${err.stack ?? err}`, 1));

try {
  functions = await serveFunctions(functionEnv, log);
  worker = await startPgNetWorker({ databaseUrl: required('SUPABASE_DB_URL'), log });
  log(`runtime ready: functions on :${required('CESAR_FUNCTIONS_PORT')}, pg_net worker running`);
} catch (err) {
  await shutdown(`start failed: ${(err as Error).message}`, 1);
}
