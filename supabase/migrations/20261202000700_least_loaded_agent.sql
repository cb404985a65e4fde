-- Why: "the least-loaded active agent" was chosen in three statements with three rules: agent.task
-- broke ties by the agent waiting longest, task.assign and a2a.route by name, and a2a.route
-- counted an agent's undelivered messages as its load where the other two counted its open
-- tasks. One function now makes the choice for all three handlers (through
-- packages/shared/src/queue/handlers/least-loaded-agent.ts); tests/least-loaded-agent.test.ts
-- pins the rule.

-- The active agent with the fewest open tasks (pending or in progress), among those with the
-- capability (any, when null), only `only_agent` when given (a job that names its agent),
-- never `except_agent` (a message's sender). Load is open tasks for every caller, a2a.route's
-- capability fallback included: it is the work an agent has been given, which two of the
-- three callers counted already.
-- Ties (agent.task's rule, the only one of the three that was not alphabetical alone):
--   1. the agent whose newest open task is oldest: of equally loaded agents, the one that has
--      waited longest since it was last given work it still has (by name alone, "a..." took
--      every tie and "z..." none until its load grew);
--   2. name, which is unique: the choice is deterministic (agents without open tasks have no
--      newest one, and go by name).
-- No agent row is locked: two picks at once may choose the same agent, a brief imbalance and
-- never a double assignment (the callers lock the task or message they assign, as before).
create function cesar.least_loaded_agent(capability text default null, only_agent uuid default null,
                                         except_agent uuid default null)
returns uuid
language sql
stable
set search_path = ''
as $$
  select a.id
  from public.agents a
  left join lateral (
    select count(*) as open_tasks, max(t.created_at) as newest_open_task
    from public.tasks t
    where t.agent_id = a.id and t.status in ('pending', 'in_progress')
  ) load on true
  where a.status = 'active'
    and (least_loaded_agent.capability is null or least_loaded_agent.capability = any (a.capabilities))
    and (least_loaded_agent.only_agent is null or a.id = least_loaded_agent.only_agent)
    and (least_loaded_agent.except_agent is null or a.id <> least_loaded_agent.except_agent)
  order by load.open_tasks, load.newest_open_task, a.name
  limit 1
$$;

revoke execute on function cesar.least_loaded_agent(text, uuid, uuid) from public, anon, authenticated;
