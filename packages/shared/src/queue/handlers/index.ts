import type { HandlerRegistry } from '../drain.ts';
import { a2aRoute } from './a2a-route.ts';
import { agentTask } from './agent-task.ts';
import { financialDailyAnalysis } from './financial-daily-analysis.ts';
import { httpRequest } from './http-request.ts';
import { knowledgeGraphUpdate } from './knowledge-graph-update.ts';
import { llmCacheRefresh } from './llm-cache-refresh.ts';
import { maintenancePrune } from './maintenance-prune.ts';
import { memoryConsolidate } from './memory-consolidate.ts';
import { monitoringRefresh } from './monitoring-refresh.ts';
import { noop } from './noop.ts';
import { syncTable } from './sync-table.ts';
import { taskAssign } from './task-assign.ts';

/** Every job type the job-drain function runs. */
export const builtInHandlers: HandlerRegistry = {
  'a2a.route': a2aRoute,
  'agent.task': agentTask,
  'financial.daily_analysis': financialDailyAnalysis,
  'http.request': httpRequest,
  'knowledge_graph.update': knowledgeGraphUpdate,
  'llm_cache.refresh': llmCacheRefresh,
  'maintenance.prune': maintenancePrune,
  'memory.consolidate': memoryConsolidate,
  'monitoring.refresh': monitoringRefresh,
  'sync.table': syncTable,
  'system.noop': noop,
  'task.assign': taskAssign,
};
