import { createFunctionRuntime } from '../../../packages/shared/src/runtime.ts';
import { createSyncApp } from '../../../packages/shared/src/mirror/index.ts';

const runtime = createFunctionRuntime('sync', Deno.env.toObject());

Deno.serve(createSyncApp(runtime).fetch);
