// api: the operator's function (health, status, metrics, agents, workflows, events, jobs, sync
// now). The top of the graph: it reads every other folder.
export { createApiApp } from './app.ts';
