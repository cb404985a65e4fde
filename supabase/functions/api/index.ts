import { createApiApp } from '../../../packages/shared/src/api/app.ts';
import { builtInHandlers } from '../../../packages/shared/src/queue/handlers/index.ts';
import { createFunctionRuntime } from '../../../packages/shared/src/runtime.ts';

const runtime = createFunctionRuntime('api', Deno.env.toObject());

Deno.serve(createApiApp({ ...runtime, jobTypes: Object.keys(builtInHandlers) }).fetch);
