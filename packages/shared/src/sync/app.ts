import { Hono } from 'hono';
import { z } from 'zod';
import type { Config } from '../config.ts';
import type { Sql } from '../db.ts';
import { requireBearer } from '../http/auth.ts';
import { readJsonBody } from '../http/body.ts';
import { ApiError, notFound, onError } from '../http/errors.ts';
import { declaredTables, runPush, syncStatus } from './run.ts';
import { verifyTable } from './verify.ts';

export const syncRequest = z.object({
  tables: z.array(z.string().regex(/^[a-z_][a-z0-9_]*\.[a-z_][a-z0-9_]*$/, 'must be schema.table'))
    .min(1).optional(),
  direction: z.enum(['up', 'down', 'both']).default('up'),
  dry_run: z.boolean().default(false),
  batch_size: z.number().int().min(1).max(10_000).default(1_000),
  budget_ms: z.number().int().min(100).max(120_000).default(25_000),
}).strict();

const verifyRequest = z.object({
  tables: z.array(z.string().regex(/^[a-z_][a-z0-9_]*\.[a-z_][a-z0-9_]*$/, 'must be schema.table'))
    .min(1).optional(),
}).strict();

export interface SyncDeps {
  sql: Sql;
  mirror: Sql | null;
  config: Pick<Config, 'functionSecret' | 'serviceRoleKey'>;
  random?: () => number;
}

/**
 * The `sync` function: POST /sync runs a push (primary -> mirror), POST /sync/verify compares
 * the two, GET /sync/status reports.
 */
export function createSyncApp(deps: SyncDeps) {
  const app = new Hono().basePath('/sync');
  app.onError(onError);
  app.notFound(notFound);
  app.use('*', requireBearer([deps.config.functionSecret, deps.config.serviceRoleKey]));

  app.post('/', async (c) => {
    const body = await readJsonBody(c, syncRequest);
    if (body.direction !== 'up') {
      throw new ApiError(
        422,
        `direction ${body.direction} needs the pull from the mirror, which is not built yet; use up`,
      );
    }
    const declared = await declaredTables(deps.sql);
    const unknown = (body.tables ?? []).filter((t) => !declared.includes(t));
    if (unknown.length > 0) {
      throw new ApiError(
        422,
        `not mirrored: ${unknown.join(', ')}; mirrored: ${declared.join(', ')}`,
      );
    }
    if (!deps.mirror) throw new ApiError(503, 'no mirror configured: set COCKROACH_DB_URL');
    const tables = await runPush(
      { primary: deps.sql, mirror: deps.mirror, random: deps.random ?? Math.random },
      {
        tables: body.tables ?? null,
        dryRun: body.dry_run,
        batchSize: body.batch_size,
        budgetMs: body.budget_ms,
      },
    );
    return c.json({ direction: 'up', dry_run: body.dry_run, tables });
  });

  app.get('/status', async (c) => c.json({ tables: await syncStatus(deps.sql) }));

  app.post('/verify', async (c) => {
    const body = await readJsonBody(c, verifyRequest);
    const declared = await declaredTables(deps.sql);
    const unknown = (body.tables ?? []).filter((t) => !declared.includes(t));
    if (unknown.length > 0) throw new ApiError(422, `not mirrored: ${unknown.join(', ')}`);
    if (!deps.mirror) throw new ApiError(503, 'no mirror configured: set COCKROACH_DB_URL');
    const tables = [];
    for (const table of body.tables ?? declared) {
      tables.push(await verifyTable(deps.sql, deps.mirror, table));
    }
    return c.json({ equal: tables.every((t) => t.equal), tables });
  });

  return app;
}
