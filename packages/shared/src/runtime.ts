import { type Clock, systemClock } from './clock.ts';
import { type Config, loadConfig } from './config.ts';
import { createSql, instanceApplicationName, type Sql } from './db.ts';
import { surviveConnectionErrors } from './peer-errors.ts';
import { runShutdownHooks } from './shutdown.ts';
import process from 'node:process';

/** What every function needs, built once from the environment at start-up. */
export interface FunctionRuntime {
  config: Config;
  sql: Sql;
  mirror: Sql | null;
  clock: Clock;
  applicationName: string;
}

export function createFunctionRuntime(
  functionName: string,
  env: Record<string, string | undefined>,
): FunctionRuntime {
  const config = loadConfig(env);
  surviveConnectionErrors();
  runHooksOnShutdown();
  const applicationName = instanceApplicationName(functionName);
  return {
    config,
    applicationName,
    sql: createSql(config.databaseUrl, {
      applicationName,
      max: config.dbPoolMax,
      pooled: config.databasePooled,
    }),
    mirror: config.mirrorUrl ? createSql(config.mirrorUrl, { applicationName, max: 2 }) : null,
    clock: systemClock,
  };
}

/** How long a going instance may spend on its shutdown hooks. */
const SHUTDOWN_FLUSH_MS = 2_000;

/**
 * An instance that goes away runs its shutdown hooks first (shutdown.ts: the request counts
 * it holds, http/metrics.ts). Hosted announces it with a `beforeunload` event (a retired or
 * timed-out isolate); the local runtime ends a retired isolate with SIGTERM once its requests
 * are answered (scripts/local/functions.ts), which here runs them and then exits.
 */
function runHooksOnShutdown(): void {
  const target = globalThis as unknown as {
    addEventListener?: (type: string, listener: () => void) => void;
  };
  target.addEventListener?.('beforeunload', () => void runShutdownHooks());
  let exiting = false;
  try {
    process.on('SIGTERM', () => {
      if (exiting) return;
      exiting = true;
      const deadline = new Promise((resolve) => setTimeout(resolve, SHUTDOWN_FLUSH_MS));
      void Promise.race([runShutdownHooks(), deadline])
        .finally(() => process.exit(0));
    });
  } catch {
    // A runtime without signal listeners (Supabase's edge-runtime has been one,
    // supabase/edge-runtime#297): `beforeunload` above is its shutdown notice.
  }
}
