import { Hono } from 'hono';
import type { Config } from '../config.ts';
import type { Sql } from '../db.ts';
import { requireBearer } from './auth.ts';
import { notFound, onError } from './errors.ts';
import { countRequests } from './metrics.ts';

/**
 * An Edge Function's app, served at /<name>: errors in the one shape, every answer counted
 * for the metrics, and the function secret (or the service role key) required.
 */
export function functionApp(
  name: string,
  deps: { sql: Sql; config: Pick<Config, 'functionSecret' | 'serviceRoleKey'> },
) {
  const app = new Hono().basePath(`/${name}`);
  app.onError(onError);
  app.notFound(notFound);
  app.use('*', countRequests(deps.sql, name));
  app.use('*', requireBearer([deps.config.functionSecret, deps.config.serviceRoleKey]));
  return app;
}
