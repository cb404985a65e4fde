-- Coalesced doorbells: a write rings a function only when no drain of that kind is at work.
--
-- Before this, every write transaction on a watched table rang the webhook function, and
-- every transaction that made due jobs rang job-drain: about two invocations per write. Now a
-- drain at work holds its doorbell (cesar.doorbell_hold, renewed every second while it works
-- and while it lingers for more), and a writer that finds it held does not ring: the drain
-- takes what the writer committed. A drain that has found nothing for a while lets go
-- (cesar.doorbell_release) and then looks once more; a drain that stops at a budget with work
-- left hands the doorbell to the next invocation (cesar.doorbell_hand_over). A drain that
-- dies stops renewing: its hold lapses within seconds and the next write, or the tick, rings.
--
-- Why nothing is left behind when a drain lets go: a writer takes a shared advisory lock
-- (per doorbell, until its transaction ends) before it reads the hold. The release clears the
-- hold, then waits until it can take that lock exclusively, that is until every writer that
-- may have read the hold before it was cleared has committed or rolled back; only then does
-- the drain look once more. A writer that reads the hold after it was cleared rings. A
-- transaction that stays open past the wait (1 s) keeps its work for the next write or tick.
--
-- The hold is a sequence's value (a deadline in epoch milliseconds), not a row: sequences are
-- not transactional, so a hold is seen by every session the moment it is set, whatever its
-- snapshot (a REPEATABLE READ writer's snapshot may be older than the release), and renewing
-- it takes no row lock and leaves no dead tuple.

create sequence cesar.doorbell_hold_webhook_drain minvalue 0 start 0;
create sequence cesar.doorbell_hold_job_drain minvalue 0 start 0;
revoke all on sequence cesar.doorbell_hold_webhook_drain, cesar.doorbell_hold_job_drain
  from public, anon, authenticated, service_role;

-- Calls on their way: a transaction that called a drain records it here, so that the writes
-- after it commits do not each call one more while that drain starts (the drain then holds
-- the doorbell itself). A row, not the sequence: a call rolled back with its transaction
-- (a savepoint's included) leaves nothing that would silence the writers after it. Unlogged:
-- a row is worth 2 s.
create unlogged table cesar.doorbell_calls (
  target text not null,
  called_at timestamptz not null default clock_timestamp()
);
create index doorbell_calls_idx on cesar.doorbell_calls (target, called_at);
revoke all on cesar.doorbell_calls from public, anon, authenticated, service_role;

-- The doorbells there are. Another target has no hold (it always rings).
create function cesar.doorbell_sequence(target text) returns regclass
language sql
immutable
set search_path = ''
as $$
  select case target
    when 'webhook/drain' then 'cesar.doorbell_hold_webhook_drain'::regclass
    when 'job-drain' then 'cesar.doorbell_hold_job_drain'::regclass
  end
$$;

-- The advisory lock writers share while their transaction may still need a drain.
create function cesar.doorbell_lock_key(target text) returns bigint
language sql
immutable
set search_path = ''
as $$
  select hashtextextended('cesar.doorbell:' || target, 0)
$$;

create function cesar.epoch_ms() returns bigint
language sql
volatile
set search_path = ''
as $$
  select (extract(epoch from clock_timestamp()) * 1000)::bigint
$$;

-- Whether a drain holds the doorbell now, or a call to one committed in the last 2 s.
create function cesar.doorbell_held(target text) returns boolean
language sql
volatile
security definer
set search_path = ''
as $$
  select coalesce(pg_sequence_last_value(cesar.doorbell_sequence(target)) > cesar.epoch_ms(),
                  false)
      or exists (select from cesar.doorbell_calls c
                 where c.target = doorbell_held.target
                   and c.called_at > clock_timestamp() - interval '2 seconds')
$$;

-- A drain at work holds its doorbell for `hold_ms` from now; it renews the hold while it
-- works and lingers.
create function cesar.doorbell_hold(target text, hold_ms integer default 3000) returns void
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  seq regclass := cesar.doorbell_sequence(target);
begin
  if seq is null then
    raise exception 'no doorbell %', target using errcode = '22023';
  end if;
  perform setval(seq, cesar.epoch_ms() + greatest(hold_ms, 0));
end
$$;

-- A drain lets go of its doorbell, then waits until no writer that may have seen it held is
-- still in its transaction (at most `wait_ms`). True: the drain's next look for work sees
-- everything such a writer wrote. False: writers kept the lock all that time (a busy stream
-- of writes, or a long transaction); the drain should hold again and carry on. The wait takes
-- the lock only when free (a queued exclusive request would stall every new writer).
create function cesar.doorbell_release(target text, wait_ms integer default 1000)
returns boolean
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  seq regclass := cesar.doorbell_sequence(target);
  give_up timestamptz := clock_timestamp() + make_interval(secs => wait_ms / 1000.0);
begin
  if seq is null then
    raise exception 'no doorbell %', target using errcode = '22023';
  end if;
  perform setval(seq, 0);
  delete from cesar.doorbell_calls c
  where c.target = doorbell_release.target and c.called_at < clock_timestamp() - interval '1 minute';
  loop
    if pg_try_advisory_xact_lock(cesar.doorbell_lock_key(target)) then
      return true;
    end if;
    exit when clock_timestamp() >= give_up;
    perform pg_sleep(0.002);
  end loop;
  return false;
end
$$;

-- Calls the function behind a doorbell through pg_net, whether or not a drain holds it.
-- `linger_ms` asks the drain to wait that long for more work before it answers. Without
-- pg_net, or without the URL and secret (cesar.setting: Vault in production), it calls
-- nothing and the tick does the work.
create function cesar.doorbell_call(target text, linger_ms integer default 2000)
returns boolean
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  base_url text;
  secret text;
begin
  if to_regprocedure('net.http_post(text,jsonb,jsonb,jsonb,integer)') is null then
    return false;
  end if;
  base_url := cesar.setting('cesar_functions_url');
  secret := cesar.setting('cesar_function_secret');
  if base_url is null or secret is null then
    return false;
  end if;
  perform net.http_post(
    rtrim(base_url, '/') || '/' || target,
    jsonb_build_object('reason', 'doorbell', 'linger_ms', linger_ms),
    '{}'::jsonb,
    jsonb_build_object('Content-Type', 'application/json', 'Authorization', 'Bearer ' || secret),
    -- A drain answers once its queue is empty or its budget is spent: give it that long.
    60000
  );
  return true;
end
$$;

-- Doorbell: asks a function to run now instead of at the next pg_cron tick, unless a drain of
-- that kind holds the doorbell (it takes this transaction's work) or a call is on its way.
-- At most one check and one call per transaction and function, however many rows the
-- transaction writes. Purely for latency: pg_net delivery is never relied on.
create or replace function cesar.ring_doorbell(target text) returns boolean
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  -- target: a function and optional path, e.g. 'job-drain' or 'webhook/drain'.
  flag text := 'cesar.doorbell.' || regexp_replace(target, '[^a-z0-9_]', '_', 'g');
begin
  if coalesce(current_setting(flag, true), '') = 'rung' then
    return false;
  end if;
  perform set_config(flag, 'rung', true);
  -- Held until this transaction ends: a drain letting go waits for it (doorbell_release).
  -- Only taken when free: should anyone else hold the key, this writer does not wait for
  -- them, and since no drain would wait for it either, it calls whatever the hold says.
  if pg_try_advisory_xact_lock_shared(cesar.doorbell_lock_key(target))
     and cesar.doorbell_held(target) then
    return false;
  end if;
  if not cesar.doorbell_call(target) then
    return false;
  end if;
  -- Seen by other writers once this transaction commits (doorbell_held), when the call goes.
  if cesar.doorbell_sequence(target) is not null then
    insert into cesar.doorbell_calls (target) values (target);
  end if;
  return true;
end
$$;

-- A drain stopped with work left calls the next invocation now; the doorbell stays held (for
-- `grace_ms`, until that invocation holds it itself) when the call could be made.
create function cesar.doorbell_hand_over(target text, grace_ms integer default 5000)
returns boolean
language plpgsql
volatile
security definer
set search_path = ''
as $$
begin
  if not cesar.doorbell_call(target) then
    return false;
  end if;
  perform cesar.doorbell_hold(target, grace_ms);
  return true;
end
$$;

-- Due jobs (of these types; all types when null) at `at`: what job-drain's doorbell, tick and
-- wait look for. A claim may still find fewer (caps, serial keys): this is the cheap test.
-- A lingering drain asks every few milliseconds, mostly when nothing is due: each source is
-- looked up in its own partial index, never by a sequential scan (with statistics taken in
-- the middle of a burst, the planner reckoned one would find a due job at once; with none
-- due it read the whole queue, finished jobs included, every time: see claim_jobs).
create function cesar.jobs_due(job_types text[] default null, at timestamptz default now())
returns boolean
language sql
stable
set search_path = ''
set enable_seqscan = off
set enable_bitmapscan = off
as $$
  select exists (
           select from cesar.job_queue q
           where q.status = 'pending' and q.run_at <= jobs_due.at
             and (jobs_due.job_types is null or q.job_type = any (jobs_due.job_types)))
      or exists (
           select from cesar.job_queue q
           where q.status = 'running' and q.locked_until < jobs_due.at
             and (jobs_due.job_types is null or q.job_type = any (jobs_due.job_types)))
$$;

-- Events or captures waiting for the webhook drain (0400's, unchanged but for the planner
-- settings): asked as often as cesar.jobs_due, and for the same reason never by a sequential
-- scan of an event log that keeps every event for its retention.
create or replace function cesar.events_pending() returns boolean
language sql
stable
set search_path = ''
set enable_seqscan = off
set enable_bitmapscan = off
as $$
  select exists (select from cesar.event_log where status in ('pending', 'processing'))
      or exists (select from cesar.captures)
$$;

-- Waits, in the database, until the drain behind `target` has work (pending events for
-- 'webhook/drain', due jobs of `job_types` for 'job-drain') or `timeout_ms` has passed; true
-- when work is there. A lingering drain calls it in a loop instead of polling from the
-- function: each look costs the database a few index probes and the function nothing.
create function cesar.await_work(target text, timeout_ms integer, job_types text[] default null)
returns boolean
language plpgsql
volatile
set search_path = ''
as $$
declare
  give_up timestamptz := clock_timestamp() + make_interval(secs => least(timeout_ms, 5000) / 1000.0);
begin
  if cesar.doorbell_sequence(target) is null then
    raise exception 'no doorbell %', target using errcode = '22023';
  end if;
  loop
    -- Each look is a statement of its own, with a fresh snapshot.
    if (target = 'webhook/drain' and cesar.events_pending())
       -- clock_timestamp(): now() stays at this statement's start, before the jobs awaited.
       or (target = 'job-drain' and cesar.jobs_due(await_work.job_types, clock_timestamp())) then
      return true;
    end if;
    exit when clock_timestamp() >= give_up;
    perform pg_sleep(0.003);
  end loop;
  return false;
end
$$;

revoke execute on function cesar.doorbell_sequence(text), cesar.doorbell_lock_key(text),
  cesar.epoch_ms(), cesar.doorbell_held(text), cesar.doorbell_hold(text, integer),
  cesar.doorbell_release(text, integer), cesar.doorbell_call(text, integer),
  cesar.doorbell_hand_over(text, integer), cesar.jobs_due(text[], timestamptz),
  cesar.await_work(text, integer, text[])
  from public, anon, authenticated;

-- The queue's tick asks job-drain to run only when jobs are due (it rang every 10 s, work or
-- not: 8,640 invocations a day of an idle project).
select cron.alter_job(
  (select jobid from cron.job where jobname = 'cesar-job-drain-tick'),
  command => 'select cesar.ring_doorbell(''job-drain'') where cesar.jobs_due()');
