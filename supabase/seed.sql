-- Demo data for the local stack: 48 agents of 12 types with their capabilities, a few
-- sessions and tasks. Idempotent: loading it twice changes nothing.

with agent_types (type, capabilities, ordinal) as (
  values
    ('orchestrator',   array['orchestration', 'planning', 'delegation'], 1),
    ('task_scheduler', array['scheduling', 'planning'], 2),
    ('optimization',   array['optimization', 'analysis'], 3),
    ('trading_agent',  array['trading', 'market_analysis', 'risk'], 4),
    ('generator',      array['generation', 'writing'], 5),
    ('researcher',     array['research', 'web_search', 'summarization'], 6),
    ('analyst',        array['analysis', 'reporting', 'financial_analysis'], 7),
    ('memory_manager', array['memory', 'consolidation', 'knowledge_graph'], 8),
    ('communicator',   array['messaging', 'routing', 'onboarding'], 9),
    ('monitor',        array['monitoring', 'alerting'], 10),
    ('data_ingestor',  array['ingestion', 'sync'], 11),
    ('llm_router',     array['llm', 'caching', 'evaluation'], 12)
)
insert into public.agents (name, type, status, capabilities, metadata, mob_alias)
select
  initcap(replace(t.type, '_', ' ')) || ' ' || n,
  t.type,
  -- Every sixth agent is idle and every eleventh offline, so business health is not 100%.
  case when (t.ordinal * 4 + n) % 11 = 0 then 'offline'
       when (t.ordinal * 4 + n) % 6 = 0 then 'idle'
       else 'active' end,
  t.capabilities,
  jsonb_build_object('model', case when n % 2 = 0 then 'local' else 'cloud' end, 'seeded', true),
  'mob-' || t.type || '-' || n
from agent_types t cross join generate_series(1, 4) as n
on conflict (name) do nothing;

insert into public.sessions (name, status, metadata)
select v.name, v.status, '{"seeded": true}'
from (values
  ('Morning market review', 'active'),
  ('Knowledge graph rebuild', 'paused'),
  ('Onboarding cohort 1', 'closed')) as v (name, status)
where not exists (select from public.sessions s where s.name = v.name);

insert into public.agent_sessions (session_id, agent_id, role)
select s.id, a.id, case when a.type = 'orchestrator' then 'lead' else 'participant' end
from public.sessions s
join public.agents a on a.type in ('orchestrator', 'trading_agent', 'analyst')
  and a.metadata ->> 'seeded' = 'true'
where s.name = 'Morning market review'
on conflict (session_id, agent_id) do nothing;

-- Twelve tasks over the last week, one per agent type, in every status.
insert into public.tasks (agent_id, title, status, required_capability, payload, created_at,
                          started_at, completed_at)
select
  a.id,
  'Seed task for ' || a.name,
  (array['completed', 'completed', 'in_progress', 'pending', 'failed'])[1 + (row_number() over (order by a.name))::int % 5],
  a.capabilities[1],
  '{"seeded": true}',
  now() - ((row_number() over (order by a.name)) || ' hours')::interval * 11,
  null,
  null
from public.agents a
where a.name like '% 1' and a.metadata ->> 'seeded' = 'true'
  and not exists (select from public.tasks t where t.title = 'Seed task for ' || a.name);

update public.tasks
set started_at = created_at + interval '1 minute',
    completed_at = case when status in ('completed', 'failed') then created_at + interval '5 minutes' end
where payload ->> 'seeded' = 'true' and started_at is null and status <> 'pending';

-- Workflows: the source documents' examples, on database events, and their five scheduled
-- workflows. (Writing a schedule template schedules its pg_cron job.)
insert into cesar.workflow_templates (name, description, trigger, actions)
values
  ('Onboard new agent', 'A new agent gets an onboarding task from an agent that onboards.',
   '{"type": "database_event", "table": "public.agents", "events": ["INSERT"]}',
   '[{"type": "agent_task", "title": "Onboard {{record.name}}", "capability": "onboarding",
      "payload": {"agent_id": "{{record.id}}", "agent_type": "{{record.type}}"}}]'),
  ('Assign new task', 'A new task without an agent is given to the least-loaded capable agent.',
   '{"type": "database_event", "table": "public.tasks", "events": ["INSERT"],
     "filter": {"field": "record.agent_id", "op": "not_exists"}}',
   '[{"type": "enqueue_job", "job_type": "task.assign", "payload": {"task_id": "{{record.id}}"}}]'),
  ('Route new A2A message', 'A new pending agent-to-agent message is routed to its receiver.',
   '{"type": "database_event", "table": "public.a2a_messages", "events": ["INSERT"],
     "filter": {"field": "record.status", "op": "eq", "value": "pending"}}',
   '[{"type": "enqueue_job", "job_type": "a2a.route", "payload": {"message_id": "{{record.id}}"}}]'),
  ('Review LLM collaboration', 'A collaboration where the local model scored under 0.7 gets an evaluation task.',
   '{"type": "database_event", "table": "public.llm_collaborations", "events": ["INSERT"],
     "filter": {"field": "record.local_quality", "op": "lt", "value": 0.7}}',
   '[{"type": "agent_task", "title": "Review LLM collaboration {{record.id}}", "capability": "evaluation",
      "payload": {"collaboration_id": "{{record.id}}", "local_quality": "{{record.local_quality}}",
                  "cloud_quality": "{{record.cloud_quality}}"}}]'),
  ('Mirror sync', 'Every 15 minutes: sync every mirrored table with CockroachDB.',
   '{"type": "schedule", "cron": "*/15 * * * *"}',
   '[{"type": "sync_table", "direction": "both"}]'),
  ('Daily financial analysis', 'At 09:00 UTC: summarise yesterday''s financial data.',
   '{"type": "schedule", "cron": "0 9 * * *"}',
   '[{"type": "enqueue_job", "job_type": "financial.daily_analysis", "payload": {}}]'),
  ('LLM cache refresh', 'Every 4 hours: recompute the LLM cache metrics.',
   '{"type": "schedule", "cron": "0 */4 * * *"}',
   '[{"type": "enqueue_job", "job_type": "llm_cache.refresh", "payload": {"hours": 4}}]'),
  ('Knowledge graph update', 'Every 30 minutes: rebuild the agent graph from their messages.',
   '{"type": "schedule", "cron": "*/30 * * * *"}',
   '[{"type": "enqueue_job", "job_type": "knowledge_graph.update", "payload": {}}]'),
  ('Memory consolidation', 'At 02:00 UTC: fold week-old episodic memories into semantic memory.',
   '{"type": "schedule", "cron": "0 2 * * *"}',
   '[{"type": "enqueue_job", "job_type": "memory.consolidate", "payload": {"older_than_days": 7}}]')
on conflict (name) do nothing;

-- The demo rows above are not news: their captured events run no workflow.
update cesar.event_log set status = 'ignored', processed_at = now()
where status = 'pending' and txid = pg_current_xact_id()::text::bigint;
