import type { Clock } from '../clock.ts';
import type { Config } from '../config.ts';
import type { Sql } from '../db.ts';
import { VERSION } from '../version.ts';
import { functionApp, type FunctionAppConfig, outboundPolicy } from '../http/index.ts';
import { cachedHealth, checkHealth } from './health.ts';
import { collectMetrics } from './metrics.ts';
import { businessHealth, listAgentSummaries } from './queries.ts';
import { registerJobTypeRoutes } from './job-type-routes.ts';
import { registerOpsRoutes } from './ops-routes.ts';
import { registerWorkflowRoutes } from './workflow-routes.ts';

export interface ApiDeps {
  sql: Sql;
  mirror: Sql | null;
  config:
    & FunctionAppConfig
    & Pick<Config, 'dbPoolMax'>
    & Partial<Pick<Config, 'httpAllow' | 'supabaseUrl' | 'databasePooled'>>;
  clock: Clock;
  /** The application_name of `sql`'s connections, for the pool figures in /health. */
  applicationName: string;
  /** Job types the job-drain function runs (workflow actions must name one). */
  jobTypes: readonly string[];
}

/**
 * The `api` function: health, agents, business health, workflows, executions, events, jobs,
 * "sync now" and /status.
 */
export function createApiApp(deps: ApiDeps) {
  const app = functionApp('api', deps);

  const health = cachedHealth(() =>
    checkHealth({
      sql: deps.sql,
      mirror: deps.mirror,
      applicationName: deps.applicationName,
      poolMax: deps.config.dbPoolMax,
      pooled: deps.config.databasePooled ?? false,
      clock: deps.clock,
      version: VERSION,
    })
  );
  app.get('/health', async (c) => {
    const { health: answer, ageMs } = await health();
    c.header('age', String(Math.floor(ageMs / 1000)));
    return c.json(answer, answer.status === 'unhealthy' ? 503 : 200);
  });

  app.get('/health/business', async (c) => {
    const now = deps.clock.now();
    return c.json({ timestamp: now.toISOString(), ...(await businessHealth(deps.sql, now)) });
  });

  app.get('/agents', async (c) => {
    const agents = await listAgentSummaries(deps.sql, deps.clock.now());
    return c.json({ agents, count: agents.length });
  });

  registerWorkflowRoutes(app, {
    sql: deps.sql,
    jobTypes: deps.jobTypes,
    outbound: outboundPolicy(deps.config),
  });
  registerOpsRoutes(app, { sql: deps.sql, clock: deps.clock, jobTypes: deps.jobTypes });

  registerJobTypeRoutes(app, { sql: deps.sql, jobTypes: deps.jobTypes });

  app.get('/metrics', async (c) =>
    c.body(await collectMetrics(deps.sql), 200, {
      'content-type': 'text/plain; version=0.0.4; charset=utf-8',
    }));

  return app;
}
