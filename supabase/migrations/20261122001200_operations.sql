-- Why: operators scrape metrics. Prometheus counters must only grow, so the totals they need
-- are kept here rather than counted from rows that retention deletes: jobs completed and
-- failed for good per type (bumped by the statements that finish jobs), and requests per
-- Edge Function and status class with their durations (bumped by each function's
-- middleware). The live figures (queue depth, event backlog, sync lag) are queried as gauges.

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

create or replace function cesar.refresh_monitoring_views() returns text[]
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

-- Retrying from the dashboard or the CLI runs the job at once: requeued jobs ring the
-- job-drain doorbell (once per transaction) instead of waiting for the next tick.
create or replace function cesar.retry_jobs(ids bigint[]) returns setof bigint
language plpgsql
volatile
set search_path = ''
as $$
declare
  requeued bigint[];
begin
  with retried as (
    update cesar.job_queue q
    set status = 'pending', attempts = 0, run_at = now(), finished_at = null, updated_at = now()
    where q.id = any (retry_jobs.ids) and q.status in ('failed', 'cancelled')
      and (q.dedup_key is null or not exists (
        select from cesar.job_queue o
        where o.dedup_key = q.dedup_key and o.status in ('pending', 'running') and o.id <> q.id))
    returning q.id
  )
  select array_agg(r.id order by r.id) into requeued from retried r;
  if requeued is not null then
    perform cesar.ring_doorbell('job-drain');
  end if;
  return query select unnest(coalesce(requeued, '{}'::bigint[]));
end
$$;
