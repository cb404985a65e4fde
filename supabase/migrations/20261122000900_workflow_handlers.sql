-- Why: the inventory's example workflows and scheduled workflows need three more job types:
-- assigning a new task to an agent, routing a new agent-to-agent message, and rebuilding the
-- knowledge graph of who works with whom (from the messages agents exchange).

create table public.knowledge_graph_edges (
  id uuid primary key default gen_random_uuid(),
  source_agent_id uuid not null references public.agents (id) on delete cascade,
  target_agent_id uuid not null references public.agents (id) on delete cascade,
  -- Messages from source to target.
  messages integer not null check (messages > 0),
  -- Share of the source's messages that went to this target.
  weight numeric(6, 5) not null check (weight > 0 and weight <= 1),
  last_interaction_at timestamptz not null,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  unique (source_agent_id, target_agent_id)
);
create index knowledge_graph_edges_target_idx on public.knowledge_graph_edges (target_agent_id);
create trigger knowledge_graph_edges_touch_updated_at before update on public.knowledge_graph_edges
  for each row execute function cesar.touch_updated_at();
alter table public.knowledge_graph_edges enable row level security;
grant all on public.knowledge_graph_edges to anon, authenticated, service_role;

insert into cesar.job_types (job_type, max_attempts, backoff_base_seconds, backoff_cap_seconds, concurrency, lease_seconds)
values
  ('task.assign',            5, 30, 1800, null, 30),
  ('a2a.route',              5, 10,  600, null, 30),
  ('knowledge_graph.update', 5, 300, 3600,   1, 120)
on conflict (job_type) do nothing;
