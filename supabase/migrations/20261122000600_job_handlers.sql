-- Why: the job handlers (packages/shared/src/queue/handlers) need a few things in the
-- database: a task's link to the job that created it (so a re-run creates no second task),
-- the daily financial summary table, the job queue's monitoring view, the job types' policy,
-- and the pg_cron schedules that drain the queue and keep house.

alter table public.tasks add column source_job_id bigint unique;
comment on column public.tasks.source_job_id is
  'The cesar.job_queue job that created this task; unique, so a retried job creates one task.';

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
create trigger financial_daily_summaries_touch_updated_at before update on public.financial_daily_summaries
  for each row execute function cesar.touch_updated_at();
alter table public.financial_daily_summaries enable row level security;
grant all on public.financial_daily_summaries to anon, authenticated, service_role;

-- Backlog by type and status: how many, and how old the oldest is. Refreshed by the
-- monitoring.refresh job; the unique index lets it refresh concurrently.
create materialized view cesar.mv_job_queue_backlog as
select job_type, status, count(*)::bigint as jobs,
       min(case when status = 'pending' then run_at else created_at end) as oldest_at,
       extract(epoch from now() - min(case when status = 'pending' then run_at else created_at end))::bigint
         as oldest_age_seconds,
       now() as refreshed_at
from cesar.job_queue
where status in ('pending', 'running', 'failed')
group by job_type, status;
create unique index mv_job_queue_backlog_key on cesar.mv_job_queue_backlog (job_type, status);

-- One place that refreshes every monitoring view; later migrations replace it as they add views.
create function cesar.refresh_monitoring_views() returns text[]
language plpgsql
volatile
set search_path = ''
as $$
begin
  refresh materialized view concurrently cesar.mv_job_queue_backlog;
  return array['cesar.mv_job_queue_backlog'];
end
$$;
revoke execute on function cesar.refresh_monitoring_views() from public, anon, authenticated;

-- Policy per job type. Singletons (concurrency 1) are jobs that must not overlap themselves.
insert into cesar.job_types (job_type, max_attempts, backoff_base_seconds, backoff_cap_seconds, concurrency, lease_seconds)
values
  ('system.noop',              5,  1,   60, null, 30),
  ('agent.task',               5, 30, 1800, null, 30),
  ('memory.consolidate',       5, 300, 3600,   1, 120),
  ('llm_cache.refresh',        5, 300, 3600,   1, 120),
  ('financial.daily_analysis', 5, 300, 3600,   1, 120),
  ('monitoring.refresh',       3, 30,  300,    1, 60),
  ('maintenance.prune',        5, 300, 3600,   1, 120),
  ('http.request',             5, 30, 3600, null, 60),
  ('sync.table',               5, 60, 1800, null, 120)
on conflict (job_type) do nothing;

-- pg_cron: Supabase runs pg_cron 1.6, which takes second schedules; Debian's 1.4 does minutes
-- only. Ticks are every 10 seconds where they can be and every minute otherwise; doorbells
-- make due work start within milliseconds either way.
create function cesar.tick_schedule() returns text
language sql
stable
set search_path = ''
as $$
  -- extversion looks like '1.6' or, from Debian, '1.4-1'.
  select case when (regexp_match(extversion, '^(\d+)\.(\d+)'))::int[] >= array[1, 5]
              then '10 seconds' else '* * * * *' end
  from pg_extension where extname = 'pg_cron'
$$;

select cron.schedule('cesar-job-drain-tick', cesar.tick_schedule(), 'select cesar.ring_doorbell(''job-drain'')');
select cron.schedule('cesar-monitoring-refresh', '*/5 * * * *',
  $cmd$select cesar.enqueue('monitoring.refresh', dedup_key => 'monitoring.refresh')$cmd$);
select cron.schedule('cesar-maintenance-prune', '17 3 * * *',
  $cmd$select cesar.enqueue('maintenance.prune', dedup_key => 'maintenance.prune')$cmd$);
