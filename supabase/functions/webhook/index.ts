import { createFunctionRuntime } from '../../../packages/shared/src/runtime.ts';
import { createWebhookApp } from '../../../packages/shared/src/workflows/webhook-app.ts';

const runtime = createFunctionRuntime('webhook', Deno.env.toObject());

Deno.serve(createWebhookApp(runtime).fetch);
