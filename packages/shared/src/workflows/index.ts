// workflows: templates (their schema and the pure matching and rendering) and the webhook
// function, which claims events, matches them and records executions and their jobs. Depends
// on capture (the events) and queue (failure classes).
export {
  deleteTemplate,
  getTemplate,
  insertTemplate,
  listExecutions,
  listTemplates,
  runTemplate,
  setTemplateEnabled,
  updateTemplate,
} from './queries.ts';
export { type TemplateInput, templateInput, templatePatch } from './schema.ts';
export { createWebhookApp } from './webhook-app.ts';
