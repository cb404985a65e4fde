import { createFunctionRuntime } from '../../../packages/shared/src/runtime.ts';
import { createSyncApp } from '../../../packages/shared/src/sync/app.ts';

const runtime = createFunctionRuntime('sync', Deno.env.toObject());

Deno.serve(createSyncApp(runtime).fetch);
