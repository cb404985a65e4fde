-- Why: issue 16, item 2: debounce and unique windows. A job may be enqueued with a key and a
-- mode saying what a second enqueue with the same key does:
--   keep        the first unfinished job stays and the second returns its id (dedup_key, as
--               before: `key => k` is `dedup_key => k`);
--   replace     the waiting (pending) job with the key takes the new payload and run_at; with
--               none waiting (none, or one already running or finished) a new job is made;
--   debounce    as replace, with run_at = now() + delay at every enqueue: the job runs once,
--               `delay` after the last enqueue, with the last payload;
--   unique_for  at most one job per key per `period`, finished ones included: an enqueue within
--               the period of an earlier job with the key returns that job's id.
-- From SQL (cesar.enqueue's new named parameters key, mode, delay, period; cesar.enqueue_many's
-- key, mode, delay_seconds, period_seconds), from templates' enqueue_job action and from
-- POST /api/jobs.
--
-- Concurrency: every mode is decided by a unique index and INSERT ... ON CONFLICT, never by
-- a look followed by an insert, so concurrent enqueues of one key cannot both insert, at any
-- isolation level (under REPEATABLE READ a conflict with a job committed after the snapshot
-- is a serialization failure, 40001, which the caller retries):
--   * replace and debounce: one pending job per key (job_queue_key_waiting_idx); ON CONFLICT
--     DO UPDATE takes the row lock, so a claim in progress (SKIP LOCKED) passes it by, and a
--     job claimed meanwhile no longer conflicts: the enqueue then inserts a new one;
--   * unique_for: a job holds its key's window while key_until is set
--     (job_queue_key_window_idx). An enqueue first gives back an expired window (key_until
--     set to null: an UPDATE, so two enqueues after the same expiry serialize on the row),
--     then inserts ON CONFLICT DO NOTHING.
-- A key belongs to one mode: keep keys live in dedup_key, the others in job_key, and
-- replace/debounce and unique_for use separate indexes.
--
-- Hot paths: a plain enqueue (no key) takes the unchanged statement; the claim is unchanged.
-- The three columns are null on plain jobs (no table rewrite), and the two indexes are
-- partial, so a plain job never enters them.

alter table cesar.job_queue
  add column job_key text,
  add column key_mode text check (key_mode in ('keep', 'replace', 'debounce', 'unique_for')),
  -- unique_for: the end of the job's window; null once the window was given back.
  add column key_until timestamptz,
  add constraint job_queue_key_check check (
    (job_key is null or key_mode in ('replace', 'debounce', 'unique_for'))
    and (key_until is null or key_mode = 'unique_for'));

create unique index job_queue_key_waiting_idx on cesar.job_queue (job_key)
  where job_key is not null and status = 'pending' and key_mode in ('replace', 'debounce');
create unique index job_queue_key_window_idx on cesar.job_queue (job_key)
  where key_until is not null;

-- One keyed enqueue (see above for the modes). `inserted` says whether a job was made; false:
-- `id` is the job that took the enqueue (kept, replaced, debounced or within its window).
-- Also used by cesar.create_executions for templates' keyed actions (execution_id, serial_key
-- and the backoff overrides come from there). Rings the job-drain doorbell when the job it
-- made or changed is due now.
create function cesar.enqueue_keyed(
  job_type text,
  payload jsonb,
  run_at timestamptz,
  priority integer,
  max_attempts integer,
  key text,
  mode text,
  delay interval,
  period interval,
  execution_id bigint default null,
  serial_key text default null,
  backoff_base_seconds numeric default null,
  backoff_cap_seconds numeric default null,
  out id bigint,
  out inserted boolean
)
language plpgsql
volatile
set search_path = ''
as $$
#variable_conflict use_variable
declare
  due timestamptz;
  attempts_max integer;
  tries integer := 0;
begin
  if key is null or key = '' then
    raise exception 'enqueue: key must be a non-empty text' using errcode = '22023';
  end if;
  if mode is null or mode not in ('keep', 'replace', 'debounce', 'unique_for') then
    raise exception 'enqueue: mode must be keep, replace, debounce or unique_for, not %',
      coalesce(mode, 'null') using errcode = '22023';
  end if;
  if mode = 'debounce' then
    if delay is null or delay <= interval '0' then
      raise exception 'enqueue: mode debounce needs a positive delay' using errcode = '22023';
    end if;
    if run_at is not null then
      raise exception 'enqueue: mode debounce sets run_at itself (now() + delay); give no run_at'
        using errcode = '22023';
    end if;
  elsif delay is not null then
    raise exception 'enqueue: delay is for mode debounce only' using errcode = '22023';
  end if;
  if mode = 'unique_for' then
    if period is null or period <= interval '0' then
      raise exception 'enqueue: mode unique_for needs a positive period' using errcode = '22023';
    end if;
  elsif period is not null then
    raise exception 'enqueue: period is for mode unique_for only' using errcode = '22023';
  end if;

  due := case when mode = 'debounce' then now() + delay else coalesce(run_at, now()) end;
  attempts_max := coalesce(max_attempts,
    (select t.max_attempts from cesar.job_types t where t.job_type = enqueue_keyed.job_type), 5);

  if mode = 'keep' then
    -- Retried when the holder we conflicted with finished before we could read it (an id of
    -- null would lose the enqueue).
    loop
      insert into cesar.job_queue as q (job_type, payload, run_at, priority, max_attempts,
                                        dedup_key, key_mode, execution_id, serial_key,
                                        backoff_base_seconds, backoff_cap_seconds)
      values (job_type, coalesce(payload, '{}'), due, coalesce(priority, 0), attempts_max, key,
              'keep', execution_id, serial_key, backoff_base_seconds, backoff_cap_seconds)
      on conflict (dedup_key) where dedup_key is not null and status in ('pending', 'running')
      do nothing
      returning q.id into id;
      inserted := id is not null;
      exit when inserted;
      select q.id into id from cesar.job_queue q
      where q.dedup_key = key and q.status in ('pending', 'running');
      if id is not null then
        return;
      end if;
      tries := tries + 1;
      if tries >= 3 then
        raise exception 'enqueue: the holder of key % kept changing', key using errcode = '40001';
      end if;
    end loop;
  elsif mode in ('replace', 'debounce') then
    -- xmax is 0 on a row this statement inserted, and our transaction id on one it updated.
    insert into cesar.job_queue as q (job_type, payload, run_at, priority, max_attempts, job_key,
                                      key_mode, execution_id, serial_key, backoff_base_seconds,
                                      backoff_cap_seconds)
    values (job_type, coalesce(payload, '{}'), due, coalesce(priority, 0), attempts_max, key,
            mode, execution_id, serial_key, backoff_base_seconds, backoff_cap_seconds)
    on conflict (job_key) where job_key is not null and status = 'pending'
                                and key_mode in ('replace', 'debounce')
    do update set payload = excluded.payload, run_at = excluded.run_at,
                  key_mode = excluded.key_mode, updated_at = now()
    returning q.id, q.xmax = 0 into id, inserted;
  else
    -- unique_for. Retried when the window we conflicted with was given back before we could
    -- read it (its period ended in between): the next pass takes the window.
    loop
      update cesar.job_queue q set key_until = null
      where q.job_key = key and q.key_until <= now();
      insert into cesar.job_queue as q (job_type, payload, run_at, priority, max_attempts, job_key,
                                        key_mode, key_until, execution_id, serial_key,
                                        backoff_base_seconds, backoff_cap_seconds)
      values (job_type, coalesce(payload, '{}'), due, coalesce(priority, 0), attempts_max, key,
              'unique_for', now() + period, execution_id, serial_key, backoff_base_seconds,
              backoff_cap_seconds)
      on conflict (job_key) where key_until is not null
      do nothing
      returning q.id into id;
      inserted := id is not null;
      if not inserted then
        select q.id into id from cesar.job_queue q
        where q.job_key = key and q.key_until is not null;
        if id is not null then
          return;
        end if;
      end if;
      exit when inserted;
      tries := tries + 1;
      if tries >= 3 then
        raise exception 'enqueue: the window of key % kept changing', key using errcode = '40001';
      end if;
    end loop;
  end if;
  if due <= now() then
    perform cesar.ring_doorbell('job-drain');
  end if;
end
$$;

-- cesar.enqueue with key, mode, delay and period (named, optional: every existing call keeps
-- its meaning). A plain enqueue takes the statement it always took, with no extra work.
drop function cesar.enqueue(text, jsonb, timestamptz, integer, integer, text);
create function cesar.enqueue(
  job_type text,
  payload jsonb default '{}',
  run_at timestamptz default null,
  priority integer default 0,
  max_attempts integer default null,
  dedup_key text default null,
  key text default null,
  mode text default null,
  delay interval default null,
  period interval default null
) returns bigint
language plpgsql
volatile
set search_path = ''
as $$
#variable_conflict use_column
declare
  new_id bigint;
  due timestamptz := coalesce(enqueue.run_at, now());
  tries integer := 0;
begin
  if enqueue.key is not null or enqueue.mode is not null then
    if enqueue.dedup_key is not null then
      raise exception 'enqueue: give key or dedup_key, not both' using errcode = '22023';
    end if;
    if enqueue.key is null then
      raise exception 'enqueue: mode % needs a key', enqueue.mode using errcode = '22023';
    end if;
    select k.id into new_id
    from cesar.enqueue_keyed(enqueue.job_type, enqueue.payload, enqueue.run_at, enqueue.priority,
                             enqueue.max_attempts, enqueue.key, coalesce(enqueue.mode, 'keep'),
                             enqueue.delay, enqueue.period) k;
    return new_id;
  end if;
  if enqueue.delay is not null or enqueue.period is not null then
    raise exception 'enqueue: delay and period need a key and a mode' using errcode = '22023';
  end if;
  loop
    insert into cesar.job_queue (job_type, payload, run_at, priority, max_attempts, dedup_key)
    values (
      enqueue.job_type, coalesce(enqueue.payload, '{}'), due, coalesce(enqueue.priority, 0),
      coalesce(enqueue.max_attempts,
               (select t.max_attempts from cesar.job_types t where t.job_type = enqueue.job_type),
               5),
      enqueue.dedup_key)
    on conflict (dedup_key) where dedup_key is not null and status in ('pending', 'running')
    do nothing
    returning id into new_id;
    exit when new_id is not null;
    -- A dedup_key's holder: retried when it finished before we could read it.
    select q.id into new_id from cesar.job_queue q
    where q.dedup_key = enqueue.dedup_key and q.status in ('pending', 'running');
    if new_id is not null then
      return new_id;
    end if;
    tries := tries + 1;
    if tries >= 3 then
      raise exception 'enqueue: the holder of dedup_key % kept changing', enqueue.dedup_key
        using errcode = '40001';
    end if;
  end loop;
  if due <= now() then
    perform cesar.ring_doorbell('job-drain');
  end if;
  return new_id;
end
$$;

-- cesar.enqueue_many: an element may also give key, mode, delay_seconds, period_seconds. The
-- plain elements go in the one statement as before; keyed ones, if any, one by one after it
-- (cesar.enqueue_keyed), in array order. Returns the number of jobs inserted (a keyed element
-- that replaced, debounced or met its key's holder inserts none).
create or replace function cesar.enqueue_many(jobs jsonb) returns integer
language plpgsql
volatile
set search_path = ''
as $$
#variable_conflict use_column
declare
  inserted integer;
  any_due boolean;
  any_keyed boolean;
  keyed record;
begin
  if jsonb_typeof(jobs) is distinct from 'array' then
    raise exception 'enqueue_many expects a JSON array of jobs' using errcode = '22023';
  end if;
  with input as (
    select j.job_type, coalesce(j.payload, '{}') as payload, coalesce(j.run_at, now()) as run_at,
           coalesce(j.priority, 0) as priority, j.max_attempts, j.dedup_key, j.ordinality,
           -- A delay or period without a key is refused below, not ignored.
           j.key is not null or j.mode is not null or j.delay_seconds is not null
             or j.period_seconds is not null as keyed
    from rows from (jsonb_to_recordset(jobs)
      as (job_type text, payload jsonb, run_at timestamptz, priority integer,
          max_attempts integer, dedup_key text, key text, mode text, delay_seconds float8,
          period_seconds float8)) with ordinality
      as j (job_type, payload, run_at, priority, max_attempts, dedup_key, key, mode,
            delay_seconds, period_seconds, ordinality)
  ), ins as (
    insert into cesar.job_queue (job_type, payload, run_at, priority, max_attempts, dedup_key)
    select i.job_type, i.payload, i.run_at, i.priority,
           coalesce(i.max_attempts, t.max_attempts, 5), i.dedup_key
    from input i left join cesar.job_types t on t.job_type = i.job_type
    where not i.keyed
    order by i.ordinality
    on conflict (dedup_key) where dedup_key is not null and status in ('pending', 'running')
    do nothing
    returning run_at
  )
  select count(*), coalesce(bool_or(run_at <= now()), false),
         (select bool_or(i.keyed) from input i)
  into inserted, any_due, any_keyed from ins;
  if any_due then
    perform cesar.ring_doorbell('job-drain');
  end if;
  if any_keyed then
    for keyed in
      select j.* from rows from (jsonb_to_recordset(jobs)
        as (job_type text, payload jsonb, run_at timestamptz, priority integer,
            max_attempts integer, dedup_key text, key text, mode text, delay_seconds float8,
            period_seconds float8)) with ordinality
        as j (job_type, payload, run_at, priority, max_attempts, dedup_key, key, mode,
              delay_seconds, period_seconds, ordinality)
      where j.key is not null or j.mode is not null or j.delay_seconds is not null
        or j.period_seconds is not null
      order by j.ordinality
    loop
      if keyed.dedup_key is not null then
        raise exception 'enqueue_many: give key or dedup_key, not both' using errcode = '22023';
      end if;
      if keyed.key is null then
        raise exception 'enqueue_many: mode, delay_seconds and period_seconds need a key'
          using errcode = '22023';
      end if;
      inserted := inserted + (
        select k.inserted::int
        from cesar.enqueue_keyed(keyed.job_type, keyed.payload, keyed.run_at, keyed.priority,
                                 keyed.max_attempts, keyed.key, coalesce(keyed.mode, 'keep'),
                                 keyed.delay_seconds * interval '1 second',
                                 keyed.period_seconds * interval '1 second') k);
    end loop;
  end if;
  return inserted;
end
$$;

-- Templates: an enqueue_job action may give key, mode, delay_seconds and period_seconds (the
-- api function validates them; placeholders in the key are filled from the event like any
-- other field). Plans without a keyed action take the statement they always took. With one,
-- the plain actions go in that same statement and the keyed ones through
-- cesar.enqueue_keyed after it. An execution counts the jobs it made (job_count): a keyed
-- action that replaced, debounced or met its key's holder made none, the work is the other
-- job's; an execution that made no job at all is completed at once.
create or replace function cesar.create_executions(plans jsonb)
returns table (execution_id bigint, event_id bigint, job_count integer)
language plpgsql
volatile
set search_path = ''
as $$
#variable_conflict use_column
declare
  made jsonb;
  execution jsonb;
  action jsonb;
  jobs_made integer;
begin
  -- A keyed action names a key or a mode. One whose key rendered to null (a missing value
  -- in the event) goes to enqueue_keyed too, which refuses it: made a plain job, it would
  -- have lost its dedup or debounce without a word.
  if not jsonb_path_exists(plans, '$[*].actions[*] ? (exists(@.key) || exists(@.mode))') then
    return query
    with plan as (
      select p.*, e.ordinality
      from jsonb_array_elements(plans) with ordinality as e (doc, ordinality)
      cross join lateral jsonb_to_record(e.doc)
        as p (template_id uuid, kind text, event_id bigint, slot timestamptz, actions jsonb,
              retry_policy jsonb, serial_key text)
    ), created as (
      insert into cesar.workflow_executions (template_id, trigger_kind, event_id, schedule_slot, job_count)
      select template_id, kind, event_id, slot, jsonb_array_length(actions) from plan order by ordinality
      on conflict do nothing
      returning id, template_id, event_id, schedule_slot, job_count
    ), jobs as (
      insert into cesar.job_queue (job_type, payload, max_attempts, execution_id, serial_key,
                                   backoff_base_seconds, backoff_cap_seconds)
      select j.job_type, j.payload,
             coalesce((p.retry_policy ->> 'max_attempts')::int, t.max_attempts, 5),
             c.id, p.serial_key,
             (p.retry_policy ->> 'backoff_base_seconds')::numeric,
             (p.retry_policy ->> 'backoff_cap_seconds')::numeric
      from created c
      -- Equalities on coalesced keys, not IS NOT DISTINCT FROM: those can be hash-joined, which
      -- matters for a batch of 1,000 plans (a nested loop halved the events processed per second).
      join plan p on p.template_id = c.template_id
        and coalesce(p.event_id, -1) = coalesce(c.event_id, -1)
        and coalesce(p.slot, '-infinity') = coalesce(c.schedule_slot, '-infinity')
      cross join lateral cesar.action_jobs(p.actions) with ordinality as j (job_type, payload, n)
      left join cesar.job_types t on t.job_type = j.job_type
      order by p.ordinality, j.n
      returning 1
    ), doorbell as (
      select cesar.ring_doorbell('job-drain') where (select count(*) from jobs) > 0
    )
    select c.id, c.event_id, c.job_count from created c, (select count(*) from doorbell) d;
    return;
  end if;

  with plan as (
    select p.*, e.ordinality, cesar.unkeyed_actions(p.actions) as plain_actions
    from jsonb_array_elements(plans) with ordinality as e (doc, ordinality)
    cross join lateral jsonb_to_record(e.doc)
      as p (template_id uuid, kind text, event_id bigint, slot timestamptz, actions jsonb,
            retry_policy jsonb, serial_key text)
  ), created as (
    insert into cesar.workflow_executions (template_id, trigger_kind, event_id, schedule_slot, job_count)
    select template_id, kind, event_id, slot, jsonb_array_length(actions) from plan order by ordinality
    on conflict do nothing
    returning id, template_id, event_id, schedule_slot
  ), matched as (
    select c.id, c.event_id, p.ordinality, p.actions, p.plain_actions, p.retry_policy, p.serial_key
    from created c
    join plan p on p.template_id = c.template_id
      and coalesce(p.event_id, -1) = coalesce(c.event_id, -1)
      and coalesce(p.slot, '-infinity') = coalesce(c.schedule_slot, '-infinity')
  ), jobs as (
    insert into cesar.job_queue (job_type, payload, max_attempts, execution_id, serial_key,
                                 backoff_base_seconds, backoff_cap_seconds)
    select j.job_type, j.payload,
           coalesce((m.retry_policy ->> 'max_attempts')::int, t.max_attempts, 5),
           m.id, m.serial_key,
           (m.retry_policy ->> 'backoff_base_seconds')::numeric,
           (m.retry_policy ->> 'backoff_cap_seconds')::numeric
    from matched m
    cross join lateral cesar.action_jobs(m.plain_actions) with ordinality as j (job_type, payload, n)
    left join cesar.job_types t on t.job_type = j.job_type
    order by m.ordinality, j.n
    returning execution_id
  ), doorbell as (
    select cesar.ring_doorbell('job-drain') where (select count(*) from jobs) > 0
  )
  select coalesce(jsonb_agg(jsonb_build_object(
           'id', m.id, 'event_id', m.event_id, 'actions', m.actions,
           'retry_policy', m.retry_policy, 'serial_key', m.serial_key,
           'plain', (select count(*) from jobs j where j.execution_id = m.id)) order by m.ordinality), '[]')
  into made
  from matched m, (select count(*) from doorbell) d;

  for execution in select e.value from jsonb_array_elements(made) e loop
    jobs_made := (execution ->> 'plain')::int;
    for action in
      select a.value from jsonb_array_elements(execution -> 'actions') with ordinality a
      where a.value ? 'key' or a.value ? 'mode' order by a.ordinality
    loop
      jobs_made := jobs_made + (
        select k.inserted::int
        from cesar.enqueue_keyed(
          action ->> 'job_type', coalesce(action -> 'payload', '{}'), null, 0,
          (execution -> 'retry_policy' ->> 'max_attempts')::int, action ->> 'key',
          coalesce(action ->> 'mode', 'keep'),
          (action ->> 'delay_seconds')::float8 * interval '1 second',
          (action ->> 'period_seconds')::float8 * interval '1 second',
          (execution ->> 'id')::bigint, execution ->> 'serial_key',
          (execution -> 'retry_policy' ->> 'backoff_base_seconds')::numeric,
          (execution -> 'retry_policy' ->> 'backoff_cap_seconds')::numeric) k);
    end loop;
    update cesar.workflow_executions x
    set job_count = jobs_made,
        status = case when jobs_made = 0 then 'completed' else x.status end,
        started_at = case when jobs_made = 0 then now() else x.started_at end,
        finished_at = case when jobs_made = 0 then now() else x.finished_at end,
        updated_at = now()
    where x.id = (execution ->> 'id')::bigint;
    execution_id := (execution ->> 'id')::bigint;
    event_id := (execution ->> 'event_id')::bigint;
    job_count := jobs_made;
    return next;
  end loop;
end
$$;

-- cesar.retry_jobs as in 20261203000600_queue.sql, and a replace or debounce job is not
-- requeued while another job with its key waits (one waiting job per key: that one has the
-- latest payload), as a job is not while another holds its dedup_key.
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
      and (q.job_key is null or q.key_mode not in ('replace', 'debounce') or not exists (
        select from cesar.job_queue o
        where o.job_key = q.job_key and o.status = 'pending'
          and o.key_mode in ('replace', 'debounce') and o.id <> q.id))
    returning q.id
  )
  select array_agg(r.id order by r.id) into requeued from retried r;
  if requeued is not null then
    perform cesar.ring_doorbell('job-drain');
  end if;
  return query select unnest(coalesce(requeued, '{}'::bigint[]));
end
$$;

-- The actions of a list that make plain jobs (neither key nor mode), in order.
create function cesar.unkeyed_actions(actions jsonb) returns jsonb
language sql
immutable
set search_path = ''
as $$
  select coalesce(jsonb_agg(a.action order by a.ordinality), '[]')
  from jsonb_array_elements(actions) with ordinality as a (action, ordinality)
  where not (a.action ? 'key' or a.action ? 'mode')
$$;

revoke execute on function
  cesar.enqueue(text, jsonb, timestamptz, integer, integer, text, text, text, interval, interval),
  cesar.enqueue_keyed(text, jsonb, timestamptz, integer, integer, text, text, interval, interval,
                      bigint, text, numeric, numeric),
  cesar.unkeyed_actions(jsonb)
  from public, anon, authenticated;
grant execute on function
  cesar.enqueue(text, jsonb, timestamptz, integer, integer, text, text, text, interval, interval),
  cesar.enqueue_keyed(text, jsonb, timestamptz, integer, integer, text, text, interval, interval,
                      bigint, text, numeric, numeric)
  to service_role;
