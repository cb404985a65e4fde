import { serveFunctions } from './functions.ts';
import { startGateway } from './gateway.ts';
import { startPgNetWorker } from './pg-net-worker.ts';

// The local stack's long-running part, started in the background by `npm start`: the
// functions behind a gateway on CESAR_FUNCTIONS_PORT, and the pg_net stand-in's worker.
// It reads the same environment the functions get; SIGTERM stops it cleanly.

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

const functions = await serveFunctions(functionEnv, log);
const gateway = await startGateway({
  port: Number(required('CESAR_FUNCTIONS_PORT')),
  functionPort: (name) => functions.port(name),
});
const worker = await startPgNetWorker({ databaseUrl: required('SUPABASE_DB_URL'), log });
log(`runtime ready: functions on :${required('CESAR_FUNCTIONS_PORT')}, pg_net worker running`);

let stopping = false;
async function shutdown(signal: string) {
  if (stopping) return;
  stopping = true;
  log(`${signal}: stopping`);
  const closed = new Promise<void>((resolve) => gateway.close(() => resolve()));
  gateway.closeAllConnections();
  await closed;
  await Promise.allSettled([functions.stop(), worker.stop()]);
  log('stopped');
  process.exit(0);
}
process.on('SIGTERM', () => void shutdown('SIGTERM'));
process.on('SIGINT', () => void shutdown('SIGINT'));
