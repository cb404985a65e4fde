import { createApiApp } from '../../../packages/shared/src/api/index.ts';
import { jobTypeNames } from '../../../packages/shared/src/queue/index.ts';
import { createFunctionRuntime } from '../../../packages/shared/src/runtime.ts';

const runtime = createFunctionRuntime('api', Deno.env.toObject());

Deno.serve(createApiApp({ ...runtime, jobTypes: jobTypeNames }).fetch);
