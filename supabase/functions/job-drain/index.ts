import { builtInHandlers, createJobDrainApp } from '../../../packages/shared/src/queue/index.ts';
import { createFunctionRuntime } from '../../../packages/shared/src/runtime.ts';

const runtime = createFunctionRuntime('job-drain', Deno.env.toObject());

Deno.serve(createJobDrainApp({ ...runtime, handlers: builtInHandlers }).fetch);
