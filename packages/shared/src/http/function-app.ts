import { Hono, type MiddlewareHandler } from 'hono';
import { cors } from 'hono/cors';
import type { Clock } from '../clock.ts';
import type { Config } from '../config.ts';
import { requestStarted } from '../cpu.ts';
import type { Sql } from '../db.ts';
import { requireSecret } from './auth.ts';
import { errorResponse, notFound, onError } from './errors.ts';
import { countRequests } from './metrics.ts';
import { acceptSignedDeliveries, type SignedDeliveries } from './signing.ts';

/** What every function app reads of the configuration (tests give the first two only). */
export type FunctionAppConfig =
  & Pick<Config, 'functionSecret' | 'serviceRoleKey'>
  & Partial<Pick<Config, 'allowedOrigins' | 'secretKeys' | 'publishableKeys'>>;

/**
 * A NUL character in the path or the query string (`%00`) is refused: PostgreSQL text cannot
 * hold one, and no name or value here needs it.
 */
const refuseNul: MiddlewareHandler = async (c, next) => {
  let decoded: string;
  try {
    decoded = decodeURIComponent(new URL(c.req.url).pathname);
  } catch {
    return errorResponse(c, 400, 'the request path is not valid percent-encoding');
  }
  const query = Object.entries(c.req.queries()).flatMap(([k, v]) => [k, ...v]);
  if (decoded.includes('\0') || query.some((s) => s.includes('\0'))) {
    return errorResponse(c, 400, 'NUL characters are not allowed in the path or query');
  }
  await next();
};

/** A POST route that also takes Standard Webhooks signed deliveries (http/signing.ts). */
export interface SignedRoute {
  path: string;
  deliveries: SignedDeliveries;
  clock: Clock;
}

/**
 * An Edge Function's app, served at /<name>: errors in the one shape, every answer counted
 * for the metrics, and the function secret (or the service role key) required, or on a
 * signed route a valid signature.
 */
export function functionApp(
  name: string,
  deps: {
    sql: Sql;
    config: FunctionAppConfig;
  },
  options: { signed?: SignedRoute } = {},
) {
  const app = new Hono().basePath(`/${name}`);
  app.onError(onError);
  app.notFound(notFound);
  // First: CPU budgets count from the oldest request in flight, as the runtime does (cpu.ts).
  app.use('*', async (_, next) => {
    const over = requestStarted();
    try {
      await next();
    } finally {
      over();
    }
  });
  // Before authentication: a browser's preflight carries no credentials. Only the origins
  // configured get the headers; any other origin's browser is left to refuse the call.
  const origins = deps.config.allowedOrigins ?? [];
  if (origins.length > 0) {
    app.use(
      '*',
      cors({
        origin: (origin) => (origins.includes(origin) ? origin : null),
        allowMethods: ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'],
        allowHeaders: ['authorization', 'apikey', 'content-type', 'x-client-info'],
        maxAge: 600,
      }),
    );
  }
  app.use('*', countRequests(deps.sql, name));
  const { config } = deps;
  const { signed } = options;
  // Without a signing secret the route takes the bearer rules alone: no middleware per POST.
  if (signed && signed.deliveries.secrets.length > 0) {
    app.post(signed.path, acceptSignedDeliveries(signed.deliveries, signed.clock));
  }
  app.use(
    '*',
    requireSecret({
      secrets: [config.functionSecret, config.serviceRoleKey, ...(config.secretKeys ?? [])],
      publishable: config.publishableKeys,
    }),
  );
  app.use('*', refuseNul);
  return app;
}
