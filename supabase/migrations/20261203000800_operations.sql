-- Why: what operators watch and what keeps time. Prometheus counters must only grow, so the
-- totals they need are kept here rather than counted from rows that retention deletes: jobs
-- completed and failed for good per type (bumped by the statements that finish jobs), and
-- requests per Edge Function and status class with their durations (added by each function
-- a batch at a time). The live figures (queue depth, event backlog, sync lag) are queried as
-- gauges; the monitoring views materialize them for alerting, refreshed by the
-- monitoring.refresh job. pg_cron keeps time: the queue's and the webhook's ticks, the
-- monitoring refresh and the nightly maintenance.prune (retention; it also drops retired
-- capture stores). Each schedule is made once, here.

create table cesar.job_totals (
  job_type text primary key,
  completed bigint not null default 0,
  failed bigint not null default 0
);

create table cesar.http_request_totals (
  function_name text not null,
  -- 2xx, 4xx, 5xx...
  status_class text not null,
  requests bigint not null default 0,
  duration_seconds_sum double precision not null default 0,
  -- Cumulative counts for the histogram's upper bounds (cesar.http_duration_buckets()).
  buckets bigint[] not null,
  primary key (function_name, status_class)
);

-- The histogram's upper bounds in seconds (+Inf is `requests`).
create function cesar.http_duration_buckets() returns double precision[]
language sql
immutable
return array[0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30]::double precision[];

-- One request, counted: called by the functions after each answer.
create function cesar.record_request(function_name text, status integer, seconds double precision)
returns void
language sql
volatile
set search_path = ''
as $$
  insert into cesar.http_request_totals as t
    (function_name, status_class, requests, duration_seconds_sum, buckets)
  select record_request.function_name, (record_request.status / 100)::text || 'xx', 1,
         record_request.seconds,
         array(select (record_request.seconds <= b)::int::bigint
               from unnest(cesar.http_duration_buckets()) with ordinality as u (b, i) order by i)
  on conflict (function_name, status_class) do update
    set requests = t.requests + 1,
        duration_seconds_sum = t.duration_seconds_sum + excluded.duration_seconds_sum,
        buckets = array(select a + b from unnest(t.buckets, excluded.buckets) as u (a, b))
$$;

revoke execute on function cesar.record_request(text, integer, double precision)
  from public, anon, authenticated;

-- A batch of answers: one status and duration in seconds per answer, added to the totals.
-- Every answer of a function used to be one write to a shared counter row, refused requests
-- included, so a flood of tokenless requests made as many writes and slowed everyone's
-- requests. Functions count their answers in memory and add them here a batch at a time (at
-- most one write in flight per instance); refused requests ride along with the next batch of
-- authenticated ones and never cause a write of their own.
create function cesar.record_requests(
  function_name text,
  statuses integer[],
  durations double precision[]
) returns void
language sql
volatile
set search_path = ''
as $$
  with answer as (
    select (a.status / 100)::text || 'xx' as status_class, a.seconds
    from unnest(record_requests.statuses, record_requests.durations) as a (status, seconds)
    where a.status is not null and a.seconds is not null
  ), tally as (
    select a.status_class, count(*) as requests, sum(a.seconds) as seconds_sum,
           array(select count(*) filter (where b.seconds <= u.bound)
                 from unnest(cesar.http_duration_buckets()) with ordinality as u (bound, i)
                 cross join answer b
                 where b.status_class = a.status_class
                 group by u.i order by u.i) as buckets
    from answer a
    group by a.status_class
  )
  insert into cesar.http_request_totals as t
    (function_name, status_class, requests, duration_seconds_sum, buckets)
  select record_requests.function_name, tally.status_class, tally.requests, tally.seconds_sum,
         tally.buckets
  from tally
  -- One order for every instance's batch: two batches never wait on each other's rows.
  order by tally.status_class
  on conflict (function_name, status_class) do update
    set requests = t.requests + excluded.requests,
        duration_seconds_sum = t.duration_seconds_sum + excluded.duration_seconds_sum,
        buckets = array(select a + b from unnest(t.buckets, excluded.buckets) as u (a, b))
$$;

revoke execute on function cesar.record_requests(text, integer[], double precision[])
  from public, anon, authenticated;
grant execute on function cesar.record_requests(text, integer[], double precision[])
  to service_role;

-- Ingestion failures by source, from public.ingestion_log (written by the paths that ingest
-- data: native webhook deliveries, event processing failures, sync pulls): live for
-- GET /api/status, materialized for monitoring, refreshed with the other views.
create view cesar.ingestion_errors as
select l.source,
       count(*)::int as errors_7d,
       count(*) filter (where l.created_at > now() - interval '1 day')::int as errors_1d,
       count(*) filter (where l.created_at > now() - interval '1 hour')::int as errors_1h,
       max(l.created_at) as last_error_at,
       (array_agg(l.error_message order by l.created_at desc))[1] as last_error
from public.ingestion_log l
where l.status = 'error' and l.created_at > now() - interval '7 days'
group by l.source;

create materialized view cesar.mv_ingestion_errors as
select e.*, now() as refreshed_at from cesar.ingestion_errors e;
create unique index mv_ingestion_errors_key on cesar.mv_ingestion_errors (source);

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

-- Sync lag (cesar.sync_lag, in the mirror migration), materialized.
create materialized view cesar.mv_sync_lag as
select l.*, now() as refreshed_at from cesar.sync_lag l;
create unique index mv_sync_lag_key on cesar.mv_sync_lag (table_name, direction);

-- One place that refreshes every monitoring view.
create function cesar.refresh_monitoring_views() returns text[]
language plpgsql
volatile
set search_path = ''
as $$
begin
  -- One refresh of the set at a time, whoever calls (the job, an operator, a test).
  perform pg_advisory_xact_lock(hashtext('cesar.refresh_monitoring_views'));
  refresh materialized view concurrently cesar.mv_job_queue_backlog;
  refresh materialized view concurrently cesar.mv_sync_lag;
  refresh materialized view concurrently cesar.mv_ingestion_errors;
  return array['cesar.mv_job_queue_backlog', 'cesar.mv_sync_lag', 'cesar.mv_ingestion_errors'];
end
$$;

revoke execute on function cesar.refresh_monitoring_views() from public, anon, authenticated;

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

-- The queue's tick: job-drain is asked to run even when no doorbell rang.
select cron.schedule('cesar-job-drain-tick', cesar.tick_schedule(), 'select cesar.ring_doorbell(''job-drain'')');
-- The sweep: every tick, the webhook function is asked to process what is pending (events and
-- captured statements), in case a doorbell was lost (the function was down, pg_net dropped
-- it).
select cron.schedule('cesar-webhook-sweep', cesar.tick_schedule(),
  $cmd$select cesar.ring_doorbell('webhook/drain') where cesar.events_pending()$cmd$);
select cron.schedule('cesar-monitoring-refresh', '*/5 * * * *',
  $cmd$select cesar.enqueue('monitoring.refresh', dedup_key => 'monitoring.refresh')$cmd$);
select cron.schedule('cesar-maintenance-prune', '17 3 * * *',
  $cmd$select cesar.enqueue('maintenance.prune', dedup_key => 'maintenance.prune')$cmd$);
