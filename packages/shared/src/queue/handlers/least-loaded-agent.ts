import type { Sql } from '../../db.ts';

export interface AgentChoice {
  /** Only agents with this capability; null or absent: any. */
  capability?: string | null;
  /** Only this agent (it must still be active and capable). */
  onlyAgent?: string | null;
  /** Never this agent (a message's sender). */
  exceptAgent?: string | null;
}

/**
 * The id of the least-loaded active agent that fits, or null: the rule (load, ties) is
 * cesar.least_loaded_agent's, in the migration that made it. agent.task chooses through
 * this; task.assign and a2a.route call the SQL function inside their one statement.
 */
export async function leastLoadedAgent(sql: Sql, choice: AgentChoice): Promise<string | null> {
  const capability = choice.capability ?? null;
  const only = choice.onlyAgent ?? null;
  const except = choice.exceptAgent ?? null;
  const [row] = await sql<Array<{ id: string | null }>>`
    select cesar.least_loaded_agent(${capability}::text, ${only}::uuid, ${except}::uuid) as id
  `;
  return row?.id ?? null;
}
