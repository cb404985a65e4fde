import type { JobHandler } from '../drain.ts';
import type { JobTypeName } from '../job-types.ts';
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

/**
 * The handler of every job type in queue/job-types.ts, and of nothing else: a type missing
 * here, or one here that the registry does not name, does not compile.
 */
export const builtInHandlers: Readonly<Record<JobTypeName, JobHandler>> = {
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
