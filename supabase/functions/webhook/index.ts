import { createFunctionRuntime } from '../../../packages/shared/src/runtime.ts';
import { createWebhookApp } from '../../../packages/shared/src/workflows/index.ts';

const runtime = createFunctionRuntime('webhook', Deno.env.toObject());

Deno.serve(createWebhookApp(runtime).fetch);
