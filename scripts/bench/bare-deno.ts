import { listAgentSummaries } from '../../packages/shared/src/api/queries.ts';
import { createFunctionRuntime } from '../../packages/shared/src/runtime.ts';

// The peer of GET /api/agents in `npm run bench -- api`: a bare Deno handler that runs the same
// SQL (listAgentSummaries) with postgres.js through the same pool (createFunctionRuntime: the
// pooler, the pool size), with no gateway, no framework, no auth, no request counting. Run with
// Deno by scripts/bench/api.ts; it prints "listening" once it serves.

declare const Deno: {
  env: { toObject(): Record<string, string> };
  serve(
    options: { hostname: string; port: number; onListen?: () => void },
    handler: () => Promise<Response>,
  ): unknown;
};

const env = Deno.env.toObject();
const runtime = createFunctionRuntime('bench-bare', env);
Deno.serve(
  { hostname: '127.0.0.1', port: Number(env.BARE_PORT), onListen: () => console.log('listening') },
  async () => Response.json({ agents: await listAgentSummaries(runtime.sql, new Date()) }),
);
