-- Why: the data model of the multi-agent system, as the source documents name it (agents,
-- tasks, sessions, agent-to-agent messages, LLM collaborations, memories, financial data and
-- their daily summaries, the agents' knowledge graph, activity and ingestion logs). Every
-- table has a UUID primary key (the mirror sync relies on it), created_at / updated_at kept by
-- trigger, and the indexes the dashboard queries use. Who may read and write them is in the
-- rls_and_grants migration.

create table public.agents (
  id uuid primary key default gen_random_uuid(),
  name text not null unique check (length(name) between 1 and 200),
  type text not null check (type ~ '^[a-z][a-z0-9_]*$'),
  status text not null default 'active'
    check (status in ('active', 'idle', 'busy', 'offline', 'error', 'disabled')),
  capabilities text[] not null default '{}',
  metadata jsonb not null default '{}',
  mob_alias text unique,
  last_seen_at timestamptz,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
create index agents_type_idx on public.agents (type);
create index agents_status_idx on public.agents (status);
-- "Least-loaded active agent with capability X" looks agents up by capability.
create index agents_capabilities_idx on public.agents using gin (capabilities);

create table public.tasks (
  id uuid primary key default gen_random_uuid(),
  agent_id uuid references public.agents (id) on delete set null,
  title text not null check (length(title) between 1 and 500),
  description text,
  status text not null default 'pending'
    check (status in ('pending', 'in_progress', 'completed', 'failed')),
  priority integer not null default 0,
  required_capability text,
  payload jsonb not null default '{}',
  result jsonb,
  error_message text,
  started_at timestamptz,
  completed_at timestamptz,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  source_job_id bigint unique
);
comment on column public.tasks.source_job_id is
  'The cesar.job_queue job that created this task; unique, so a retried job creates one task.';
-- Per-agent task counts and 7-day success rates (dashboard, /agents).
create index tasks_agent_created_idx on public.tasks (agent_id, created_at);
create index tasks_status_idx on public.tasks (status, created_at);
create index tasks_created_idx on public.tasks (created_at);
create index tasks_completed_idx on public.tasks (completed_at) where status = 'completed';

create table public.task_dependencies (
  id uuid primary key default gen_random_uuid(),
  task_id uuid not null references public.tasks (id) on delete cascade,
  depends_on_task_id uuid not null references public.tasks (id) on delete cascade,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  unique (task_id, depends_on_task_id),
  check (task_id <> depends_on_task_id)
);
create index task_dependencies_depends_on_idx on public.task_dependencies (depends_on_task_id);

create table public.sessions (
  id uuid primary key default gen_random_uuid(),
  name text not null,
  status text not null default 'active' check (status in ('active', 'paused', 'closed')),
  metadata jsonb not null default '{}',
  started_at timestamptz not null default now(),
  ended_at timestamptz,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
create index sessions_status_idx on public.sessions (status, started_at);

create table public.agent_sessions (
  id uuid primary key default gen_random_uuid(),
  session_id uuid not null references public.sessions (id) on delete cascade,
  agent_id uuid not null references public.agents (id) on delete cascade,
  role text not null default 'participant',
  joined_at timestamptz not null default now(),
  left_at timestamptz,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  unique (session_id, agent_id)
);
create index agent_sessions_agent_idx on public.agent_sessions (agent_id);

create table public.collaboration_sessions (
  id uuid primary key default gen_random_uuid(),
  session_id uuid references public.sessions (id) on delete set null,
  initiator_agent_id uuid references public.agents (id) on delete set null,
  topic text not null,
  participant_ids uuid[] not null default '{}',
  status text not null default 'active' check (status in ('active', 'completed', 'cancelled')),
  outcome jsonb,
  metadata jsonb not null default '{}',
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
create index collaboration_sessions_session_idx on public.collaboration_sessions (session_id);
create index collaboration_sessions_participants_idx
  on public.collaboration_sessions using gin (participant_ids);

create table public.a2a_conversations (
  id uuid primary key default gen_random_uuid(),
  subject text,
  participant_ids uuid[] not null default '{}',
  status text not null default 'open' check (status in ('open', 'closed')),
  metadata jsonb not null default '{}',
  last_message_at timestamptz,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
create index a2a_conversations_participants_idx
  on public.a2a_conversations using gin (participant_ids);
create index a2a_conversations_last_message_idx on public.a2a_conversations (last_message_at desc);

create table public.a2a_messages (
  id uuid primary key default gen_random_uuid(),
  conversation_id uuid references public.a2a_conversations (id) on delete cascade,
  sender_id uuid not null references public.agents (id) on delete cascade,
  receiver_id uuid references public.agents (id) on delete set null,
  message_type text not null default 'message',
  content text not null,
  metadata jsonb not null default '{}',
  status text not null default 'pending'
    check (status in ('pending', 'routed', 'delivered', 'read', 'failed')),
  routed_at timestamptz,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
-- Inbox and thread reads, newest first.
create index a2a_messages_receiver_idx on public.a2a_messages (receiver_id, created_at desc);
create index a2a_messages_sender_idx on public.a2a_messages (sender_id, created_at desc);
create index a2a_messages_conversation_idx on public.a2a_messages (conversation_id, created_at);
create index a2a_messages_pending_idx on public.a2a_messages (created_at) where status = 'pending';

create table public.llm_collaborations (
  id uuid primary key default gen_random_uuid(),
  agent_id uuid references public.agents (id) on delete set null,
  task_id uuid references public.tasks (id) on delete set null,
  prompt text not null,
  local_model text,
  cloud_model text,
  local_response text,
  cloud_response text,
  chosen text check (chosen in ('local', 'cloud')),
  local_quality numeric(4, 3) check (local_quality between 0 and 1),
  cloud_quality numeric(4, 3) check (cloud_quality between 0 and 1),
  local_latency_ms integer check (local_latency_ms >= 0),
  cloud_latency_ms integer check (cloud_latency_ms >= 0),
  cost_usd numeric(12, 6) not null default 0 check (cost_usd >= 0),
  cache_hit boolean not null default false,
  metadata jsonb not null default '{}',
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
create index llm_collaborations_created_idx on public.llm_collaborations (created_at);
create index llm_collaborations_agent_idx on public.llm_collaborations (agent_id, created_at);

create table public.local_llm_training_batches (
  id uuid primary key default gen_random_uuid(),
  model_name text not null,
  status text not null default 'pending'
    check (status in ('pending', 'training', 'completed', 'failed')),
  example_count integer not null default 0 check (example_count >= 0),
  metrics jsonb not null default '{}',
  started_at timestamptz,
  completed_at timestamptz,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);

create table public.local_llm_learning_examples (
  id uuid primary key default gen_random_uuid(),
  collaboration_id uuid references public.llm_collaborations (id) on delete set null,
  batch_id uuid references public.local_llm_training_batches (id) on delete set null,
  input text not null,
  output text not null,
  quality numeric(4, 3) check (quality between 0 and 1),
  metadata jsonb not null default '{}',
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
create index local_llm_learning_examples_unbatched_idx
  on public.local_llm_learning_examples (created_at) where batch_id is null;

create table public.llm_cache_metrics (
  id uuid primary key default gen_random_uuid(),
  model text not null,
  period_start timestamptz not null,
  period_end timestamptz not null,
  requests integer not null default 0,
  cache_hits integer not null default 0,
  hit_rate numeric(5, 4),
  avg_latency_ms numeric(12, 2),
  total_cost_usd numeric(14, 6) not null default 0,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  unique (model, period_start),
  check (period_end > period_start)
);

create table public.financial_data (
  id uuid primary key default gen_random_uuid(),
  symbol text not null,
  source text not null,
  price numeric(20, 8) not null,
  volume numeric(24, 4),
  observed_at timestamptz not null,
  data jsonb not null default '{}',
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  unique (symbol, source, observed_at)
);
create index financial_data_observed_idx on public.financial_data (observed_at);

create table public.agent_events (
  id uuid primary key default gen_random_uuid(),
  agent_id uuid references public.agents (id) on delete cascade,
  event_type text not null,
  payload jsonb not null default '{}',
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
create index agent_events_agent_idx on public.agent_events (agent_id, created_at desc);
-- Retention prunes by age.
create index agent_events_created_idx on public.agent_events (created_at);

create table public.memory_episodic (
  id uuid primary key default gen_random_uuid(),
  agent_id uuid not null references public.agents (id) on delete cascade,
  topic text not null,
  content text not null,
  importance numeric(4, 3) not null default 0.5 check (importance between 0 and 1),
  metadata jsonb not null default '{}',
  occurred_at timestamptz not null default now(),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
create index memory_episodic_agent_idx on public.memory_episodic (agent_id, occurred_at);
create index memory_episodic_occurred_idx on public.memory_episodic (occurred_at);

create table public.memory_semantic (
  id uuid primary key default gen_random_uuid(),
  agent_id uuid not null references public.agents (id) on delete cascade,
  topic text not null,
  summary text not null,
  source_count integer not null default 0 check (source_count >= 0),
  metadata jsonb not null default '{}',
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  unique (agent_id, topic)
);

create table public.ingestion_log (
  id uuid primary key default gen_random_uuid(),
  source text not null,
  status text not null check (status in ('ok', 'error')),
  record_count integer not null default 0 check (record_count >= 0),
  error_message text,
  details jsonb not null default '{}',
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
create index ingestion_log_errors_idx on public.ingestion_log (source, created_at) where status = 'error';
create index ingestion_log_created_idx on public.ingestion_log (created_at);

create table public.email_ingest_state (
  id uuid primary key default gen_random_uuid(),
  mailbox text not null unique,
  last_uid bigint not null default 0,
  last_synced_at timestamptz,
  status text not null default 'idle' check (status in ('idle', 'running', 'failed')),
  error_message text,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);

-- updated_at on every table above.

-- The financial.daily_analysis job's output: one row per symbol and day.
create table public.financial_daily_summaries (
  id uuid primary key default gen_random_uuid(),
  symbol text not null,
  day date not null,
  observations integer not null check (observations > 0),
  open numeric(20, 8) not null,
  high numeric(20, 8) not null,
  low numeric(20, 8) not null,
  close numeric(20, 8) not null,
  volume numeric(28, 4),
  change_pct numeric(12, 4),
  vwap numeric(20, 8),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  unique (symbol, day)
);
create index financial_daily_summaries_day_idx on public.financial_daily_summaries (day);

-- Who works with whom, from the messages agents exchange (the knowledge_graph.update job).
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

-- updated_at on every table above.
do $$
declare
  t text;
begin
  foreach t in array array[
    'agents', 'tasks', 'task_dependencies', 'sessions', 'agent_sessions',
    'collaboration_sessions', 'a2a_conversations', 'a2a_messages', 'llm_collaborations',
    'local_llm_training_batches', 'local_llm_learning_examples', 'llm_cache_metrics',
    'financial_data', 'agent_events', 'memory_episodic', 'memory_semantic', 'ingestion_log',
    'email_ingest_state', 'financial_daily_summaries', 'knowledge_graph_edges'
  ] loop
    execute format(
      'create trigger %I before update on public.%I for each row execute function cesar.touch_updated_at()',
      t || '_touch_updated_at', t);
  end loop;
end
$$;
