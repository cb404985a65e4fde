import { createApiApp } from '../../../packages/shared/src/api/app.ts';
import { jobTypeNames } from '../../../packages/shared/src/queue/job-types.ts';
import { createFunctionRuntime } from '../../../packages/shared/src/runtime.ts';

const runtime = createFunctionRuntime('api', Deno.env.toObject());

Deno.serve(createApiApp({ ...runtime, jobTypes: jobTypeNames }).fetch);
