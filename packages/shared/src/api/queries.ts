import type { Sql } from '../db.ts';

// One exported function per statement. Windows are computed from the caller's clock, so
// responses are reproducible in tests.

const DAY_MS = 24 * 60 * 60 * 1000;

export interface AgentSummary {
  id: string;
  name: string;
  type: string;
  status: string;
  capabilities: string[];
  mob_alias: string | null;
  task_count: number;
  tasks_7d: number;
  completed_7d: number;
  /** completed / all tasks created in the last 7 days; null when there were none. */
  success_rate: number | null;
  updated_at: Date;
}

/**
 * Every agent with its task counts. One grouped pass over public.tasks joined by hash, not a
 * lateral count per agent: both read every task (task_count counts them all), but 48 index
 * scans cost the planner and the executor more than one scan and a hash: 1.0 ms against 1.5 ms
 * of database time per call on the seed (pgbench, one client, 2026-12-02), the larger part of
 * GET /api/agents' cost under load.
 */
export async function listAgentSummaries(sql: Sql, now: Date): Promise<AgentSummary[]> {
  const since = new Date(now.getTime() - 7 * DAY_MS);
  return await sql<AgentSummary[]>`
    select a.id, a.name, a.type, a.status, a.capabilities, a.mob_alias, a.updated_at,
           coalesce(t.task_count, 0)::int as task_count,
           coalesce(t.tasks_7d, 0)::int as tasks_7d,
           coalesce(t.completed_7d, 0)::int as completed_7d,
           case when coalesce(t.tasks_7d, 0) = 0 then null
                else round(t.completed_7d::numeric / t.tasks_7d, 4)::float8 end as success_rate
    from public.agents a
    left join (
      select agent_id,
             count(*) as task_count,
             count(*) filter (where created_at >= ${since}) as tasks_7d,
             count(*) filter (where created_at >= ${since} and status = 'completed') as completed_7d
      from public.tasks
      group by agent_id
    ) t on t.agent_id = a.id
    order by a.name
  `;
}

export interface BusinessHealth {
  active_agents: number;
  total_agents: number;
  /** active / all agents; null when there are no agents. */
  active_ratio: number | null;
  tasks_completed_today: number;
  tasks_7d: number;
  completed_7d: number;
  success_rate_7d: number | null;
}

export async function businessHealth(sql: Sql, now: Date): Promise<BusinessHealth> {
  const since = new Date(now.getTime() - 7 * DAY_MS);
  const startOfDay = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate()));
  const [row] = await sql<BusinessHealth[]>`
    with a as (
      select count(*) filter (where status = 'active') as active, count(*) as total
      from public.agents
    ), t as (
      select count(*) filter (where status = 'completed' and completed_at >= ${startOfDay}
                                and completed_at <= ${now}) as completed_today,
             count(*) filter (where created_at >= ${since}) as tasks_7d,
             count(*) filter (where created_at >= ${since} and status = 'completed') as completed_7d
      from public.tasks
      where created_at >= ${since} or completed_at >= ${startOfDay}
    )
    select a.active::int as active_agents, a.total::int as total_agents,
           case when a.total = 0 then null else round(a.active::numeric / a.total, 4)::float8 end
             as active_ratio,
           t.completed_today::int as tasks_completed_today,
           t.tasks_7d::int as tasks_7d, t.completed_7d::int as completed_7d,
           case when t.tasks_7d = 0 then null
                else round(t.completed_7d::numeric / t.tasks_7d, 4)::float8 end as success_rate_7d
    from a, t
  `;
  return row!;
}

export interface PoolUsage {
  size: number;
  /** Null behind a transaction pooler: idle client connections are the pooler's to see. */
  free: number | null;
}

/**
 * This instance's connections, found by their application_name in pg_stat_activity. Direct,
 * they are the pool's connections, idle or not. Behind a transaction pooler (PgBouncer 1.18,
 * which sets a client's application_name on the server connection it lends for a transaction)
 * an idle server connection still carries the name of whichever client used it last, so only
 * those at work count: the server connections this instance is using now, this query's one
 * included.
 */
export async function poolUsage(
  sql: Sql,
  applicationName: string,
  pooled = false,
): Promise<PoolUsage> {
  const [row] = await sql<Array<{ size: number; free: number }>>`
    select count(*) filter (where ${!pooled} or state <> 'idle')::int as size,
           count(*) filter (where state = 'idle')::int as free
    from pg_stat_activity
    where application_name = ${applicationName}
  `;
  return { size: row!.size, free: pooled ? null : row!.free };
}

export async function serverVersion(sql: Sql): Promise<string> {
  const [row] = await sql<Array<{ version: string }>>`select version() as version`;
  return row!.version;
}
