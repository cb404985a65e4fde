-- Letting go of a doorbell (cesar.doorbell_release), two changes.
--
-- A drain lets go of its own hold only. The hold is one deadline in a sequence, set by the
-- last drain that held or renewed it; a drain that found nothing and let go cleared it while
-- another drain still held it and was taking the writers' work, and the writers after it each
-- called a drain that found nothing and cleared it in turn: at 200 writes a second, chains of
-- such calls, 14 to 18 invocations per 1,000 writes where 2 or 3 had been. cesar.doorbell_hold
-- now answers the deadline it set, and the release clears the hold only while it is still that
-- one (the drain renewed last); otherwise the other drain's hold stays. A release without it
-- (null) clears whatever is held, as before.
--
-- It also forgets the calls on their way (cesar.doorbell_calls). A call's row silenced the
-- writers for 2 s, meant for the time its drain takes to start and hold the doorbell itself;
-- but a drain that found nothing let go within that time, and a writer after it saw the row,
-- did not ring, and committed once the drain had looked a last time: its job waited for the
-- tick (10 s). The rows go in the release's own transaction, the one that takes the writers'
-- lock: a writer that saw a row holds the lock, and the release waits for it as for one that
-- saw the hold. A call whose drain has not started yet loses its silence too: the writers
-- until it holds ring (one more invocation), never none.

drop function cesar.doorbell_hold(text, integer);
create function cesar.doorbell_hold(target text, hold_ms integer default 3000) returns bigint
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
  return setval(seq, cesar.epoch_ms() + greatest(hold_ms, 0));
end
$$;

drop function cesar.doorbell_release(text, integer);
create function cesar.doorbell_release(target text, wait_ms integer default 1000,
                                       held bigint default null)
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
  if held is null or pg_sequence_last_value(seq) = held then
    perform setval(seq, 0);
  end if;
  delete from cesar.doorbell_calls c where c.target = doorbell_release.target;
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

revoke execute on function cesar.doorbell_hold(text, integer),
  cesar.doorbell_release(text, integer, bigint)
  from public, anon, authenticated;
