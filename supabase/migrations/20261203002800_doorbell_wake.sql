-- A lingering drain wakes at the commit of a writer that saw its doorbell held, instead of at
-- its next look (cesar.await_work looked every 3 ms: on a trickle of single-job writes, half
-- of that on average between a job's commit and its drain seeing it).
--
-- Such a writer holds a transaction-scoped advisory lock keyed by its backend (only when free:
-- a writer never waits for it), and publishes which in a sequence, which every session sees at
-- once (not transactional), before its commit. The waiting drain reads the sequence every
-- millisecond; when a new writer is there it asks for that lock, which it is granted the moment
-- the writer's transaction ends, and looks for work then. It waits until its next look is due
-- (every 3 ms, as before), and then waits again after that look: the periodic look stays for
-- what the wake misses (one writer published over by another, a writer whose lock was taken,
-- work that comes due by time), and a writer whose commit waits for its WAL flush is woken for
-- all the same.

create sequence cesar.doorbell_wake_webhook_drain minvalue 0 start 0;
create sequence cesar.doorbell_wake_job_drain minvalue 0 start 0;
revoke all on sequence cesar.doorbell_wake_webhook_drain, cesar.doorbell_wake_job_drain
  from public, anon, authenticated, service_role;

-- The wake of a doorbell: its sequence and the class of its writers' locks.
create function cesar.doorbell_wake_sequence(target text) returns regclass
language sql
immutable
set search_path = ''
as $$
  select case target
    when 'webhook/drain' then 'cesar.doorbell_wake_webhook_drain'::regclass
    when 'job-drain' then 'cesar.doorbell_wake_job_drain'::regclass
  end
$$;

create function cesar.doorbell_wake_class(target text) returns integer
language sql
immutable
set search_path = ''
as $$
  select hashtext('cesar.doorbell_wake:' || target)
$$;

-- The last writer published: the low 40 bits of its transaction id shifted left 23 bits (never
-- negative), its backend's pid in the low 23 (Linux pids stay below 2^22), so that each
-- transaction's value differs.
create function cesar.doorbell_last_writer(target text) returns bigint
language sql
volatile
security definer
set search_path = ''
as $$
  select pg_sequence_last_value(cesar.doorbell_wake_sequence(target))
$$;

-- Waits up to `timeout_ms` until the writer `writer` (a value of doorbell_last_writer) has ended
-- its transaction; whether it has. The lock is let go at once; a session-level one, so that it
-- never piles up in the caller's transaction and the writer's next transaction can take it
-- again. A cancel that lands once it is granted lets it go too: a pooled server connection
-- keeps session locks, and one left would keep that writer's backend from being published.
create function cesar.doorbell_await_writer(target text, writer bigint, timeout_ms integer)
returns boolean
language plpgsql
volatile
set search_path = ''
-- The SET clause keeps the set_config below to this function.
set lock_timeout = '3ms'
as $$
declare
  pid integer := (writer & 8388607)::integer;
begin
  perform set_config('lock_timeout', greatest(timeout_ms, 1) || 'ms', true);
  perform pg_advisory_lock_shared(cesar.doorbell_wake_class(target), pid);
  perform pg_advisory_unlock_shared(cesar.doorbell_wake_class(target), pid);
  return true;
exception
  when lock_not_available then
    return false;
  when query_canceled then
    -- Not held when the cancel came during the wait: the unlock then only warns.
    perform pg_advisory_unlock_shared(cesar.doorbell_wake_class(target), pid);
    raise;
end
$$;

-- 1000's, and a writer that saw the doorbell held publishes itself for the drain to wake at
-- its commit.
create or replace function cesar.ring_doorbell(target text) returns boolean
language plpgsql
volatile
security definer
set search_path = ''
as $$
declare
  -- target: a function and optional path, e.g. 'job-drain' or 'webhook/drain'.
  flag text := 'cesar.doorbell.' || regexp_replace(target, '[^a-z0-9_]', '_', 'g');
  wake regclass;
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
    wake := cesar.doorbell_wake_sequence(target);
    if wake is not null
       and pg_try_advisory_xact_lock(cesar.doorbell_wake_class(target), pg_backend_pid()) then
      perform setval(wake,
                     ((pg_current_xact_id()::text::bigint & 1099511627775) << 23)
                     | pg_backend_pid());
    end if;
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

-- 1000's, waking at a published writer's commit (above) between its looks.
create or replace function cesar.await_work(target text, timeout_ms integer,
                                            job_types text[] default null)
returns boolean
language plpgsql
volatile
set search_path = ''
as $$
declare
  give_up timestamptz := clock_timestamp() + make_interval(secs => least(timeout_ms, 5000) / 1000.0);
  next_look timestamptz;
  seen bigint;
  writer bigint;
  -- A writer published and not yet ended.
  pending bigint;
begin
  if cesar.doorbell_sequence(target) is null then
    raise exception 'no doorbell %', target using errcode = '22023';
  end if;
  seen := cesar.doorbell_last_writer(target);
  loop
    -- Each look is a statement of its own, with a fresh snapshot.
    if (target = 'webhook/drain' and cesar.events_pending())
       -- clock_timestamp(): now() stays at this statement's start, before the jobs awaited.
       or (target = 'job-drain' and cesar.jobs_due(await_work.job_types, clock_timestamp())) then
      return true;
    end if;
    next_look := least(give_up, clock_timestamp() + interval '3 milliseconds');
    loop
      exit when clock_timestamp() >= next_look;
      writer := cesar.doorbell_last_writer(target);
      if writer is distinct from seen then
        seen := writer;
        pending := writer;
      end if;
      if pending is null then
        perform pg_sleep(0.001);
      elsif cesar.doorbell_await_writer(
              target, pending,
              ceil(extract(epoch from next_look - clock_timestamp()) * 1000)::integer) then
        -- It has ended: look now.
        pending := null;
        exit;
      end if;
    end loop;
    exit when clock_timestamp() >= give_up;
  end loop;
  return false;
end
$$;

revoke execute on function cesar.doorbell_wake_sequence(text), cesar.doorbell_wake_class(text),
  cesar.doorbell_last_writer(text), cesar.doorbell_await_writer(text, bigint, integer)
  from public, anon, authenticated;
