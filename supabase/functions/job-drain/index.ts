import { createJobDrainApp } from '../../../packages/shared/src/queue/app.ts';
import { builtInHandlers } from '../../../packages/shared/src/queue/handlers/index.ts';
import { createFunctionRuntime } from '../../../packages/shared/src/runtime.ts';

const runtime = createFunctionRuntime('job-drain', Deno.env.toObject());

Deno.serve(createJobDrainApp({ ...runtime, handlers: builtInHandlers }).fetch);
