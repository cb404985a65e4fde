import { type Clock, systemClock } from './clock.ts';
import { type Config, loadConfig } from './config.ts';
import { createSql, instanceApplicationName, type Sql } from './db.ts';
import { surviveConnectionErrors } from './peer-errors.ts';

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
