-- A lingering drain wakes at the commit of a writer that saw its doorbell held, instead of at
-- its next look (cesar.await_work looked every 3 ms: on a trickle of single-job writes, half
-- of that on average between a job's commit and its drain seeing it).
--
-- Such a writer holds a transaction-scoped advisory lock keyed by its backend (only when free:
-- a writer never waits for it), and publishes which in a sequence, which every session sees at
-- once (not transactional), before its commit. The waiting drain reads the sequence every
-- millisecond; when a new writer is there it asks for that lock, which it is granted the moment
-- the writer's transaction ends, and looks for work then. The periodic look stays (every
-- 3 ms), for writers the wake missed: one published over by another, a writer whose lock was
-- taken, work that comes due by time.

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

-- The last writer published: its transaction id shifted left 23 bits, its backend's pid in the
-- low 23 (Linux pids stay below 2^22), so that each transaction's value differs.
create function cesar.doorbell_last_writer(target text) returns bigint
language sql
volatile
security definer
set search_path = ''
as $$
  select pg_sequence_last_value(cesar.doorbell_wake_sequence(target))
$$;

-- Waits until the writer `writer` (a value of doorbell_last_writer) has ended its transaction,
-- at most lock_timeout: a long transaction is not waited for (the periodic look finds its
-- work). The lock is let go at once; a session-level one, so that it never piles up in the
-- caller's transaction.
create function cesar.doorbell_await_writer(target text, writer bigint) returns void
language plpgsql
volatile
set search_path = ''
set lock_timeout = '20ms'
as $$
declare
  pid integer := (writer & 8388607)::integer;
begin
  perform pg_advisory_lock_shared(cesar.doorbell_wake_class(target), pid);
  perform pg_advisory_unlock_shared(cesar.doorbell_wake_class(target), pid);
exception when lock_not_available then
  null;
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
    if cesar.doorbell_wake_sequence(target) is not null
       and pg_try_advisory_xact_lock(cesar.doorbell_wake_class(target), pg_backend_pid()) then
      perform setval(cesar.doorbell_wake_sequence(target),
                     (pg_current_xact_id()::text::bigint << 23) | pg_backend_pid());
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
  seen bigint;
  writer bigint;
  -- Milliseconds since the last look; a look every 3.
  idle integer := 0;
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
    idle := 0;
    loop
      exit when clock_timestamp() >= give_up;
      writer := cesar.doorbell_last_writer(target);
      if writer is distinct from seen then
        seen := writer;
        perform cesar.doorbell_await_writer(target, writer);
        exit;
      end if;
      exit when idle >= 3;
      perform pg_sleep(0.001);
      idle := idle + 1;
    end loop;
    exit when clock_timestamp() >= give_up;
  end loop;
  return false;
end
$$;

revoke execute on function cesar.doorbell_wake_sequence(text), cesar.doorbell_wake_class(text),
  cesar.doorbell_last_writer(text), cesar.doorbell_await_writer(text, bigint)
  from public, anon, authenticated;
