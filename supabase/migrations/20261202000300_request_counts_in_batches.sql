-- Why: every answer of a function was one write to a shared counter row, refused requests
-- included, so a flood of tokenless requests made as many writes and slowed everyone's
-- requests. Functions now count their answers in memory and add them here a batch at a time
-- (at most one write in flight per instance); refused requests ride along with the next
-- batch of authenticated ones and never cause a write of their own.

-- A batch of answers: one status and duration in seconds per answer, added to the totals.
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
