-- A drain letting go of its doorbell also forgets the calls on their way (cesar.doorbell_calls).
-- A call's row silenced the writers for 2 s, meant for the time its drain takes to start and
-- hold the doorbell itself; but a drain that found nothing let go within that time, and a
-- writer after it saw the row, did not ring, and committed once the drain had looked a last
-- time: its job waited for the tick (10 s). The rows go in the release's own transaction, the
-- one that takes the writers' lock: a writer that saw a row holds the lock, and the release
-- waits for it as for one that saw the hold. A call whose drain has not started yet loses its
-- silence too: the writers until it holds ring (one more invocation), never none.
create or replace function cesar.doorbell_release(target text, wait_ms integer default 1000)
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
