-- Why: the schedule tick's cost grew with the number of schedule templates, not with the
-- slots due. cesar.run_due_schedules (pg_cron, every minute) ran cesar.run_schedule for every
-- enabled schedule, and each worked its slots out afresh: a local day or two of the cron's
-- minutes within 3 hours of the window, each converted through the time zone about ten times.
-- `npm run bench -- schedules` on this project's 2-core machine: 3.0 to 5.5 s a tick with
-- nothing due at 5,000 templates (0.6 to 1.1 ms a template), 3.4 to 4.6 s at a minute with
-- the 500 every-minute ones due. After this file: under 1 ms with nothing due at 10 to 5,000
-- templates, 210 to 240 ms with 500 due (README, "Schedules in a time zone"). Now:
--   * cesar.workflow_schedules.next_due_at: no slot lies in (covered_until, next_due_at). It is
--     the first slot after covered_until, or covered_until + 1 day when none comes sooner, so
--     the tick looks at every schedule at least daily (a time zone database update reaches a
--     schedule within a day); 'infinity' while the template is disabled. A trigger keeps it
--     whenever covered_until is written (the tick, run_schedule, a template created, changed
--     or enabled, an operator's UPDATE).
--   * The tick takes, by an index on next_due_at, only the schedules whose next_due_at has
--     come; run_schedule before a schedule's next_due_at only moves covered_until.
--   * cesar.schedule_slots returns what it did, cheaper: a local day in which, from a day
--     before it to a day after it, the zone keeps one UTC offset (every day but the few around
--     a clock change) has its slots by arithmetic, local time minus that offset, and only the
--     hours that can hold a wanted slot are read; the other days go through the per-minute
--     conversions of 20261203001300_cron_timezones.sql, unchanged (cesar.schedule_day_slots).
--   * cesar.schedule_next_slot: the first slot in a window, walking local days forward.
--   * The tick makes the executions of all the slots it takes in one cesar.create_executions
--     (0.1 ms an execution, against 0.6 ms one run_workflow at a time), and reads no cron
--     expression: each row keeps its template's, read when next_due_at is worked out from
--     the template (workflow_schedules.cron; ~0.25 ms a reading).
-- What runs when is unchanged: the daylight-saving rules and catch-up policies of
-- 20261203001300 (tests/schedules.test.ts, unchanged, and tests comparing the slots with
-- 1300's schedule_slots around clock changes in six zones; once by hand, 81,732 windows in 14
-- zones, none differing). covered_until now moves when the tick looks at a schedule (its next
-- slot, or a day after it last looked), not every minute; "slots up to covered_until were run
-- or given up" holds as before.

-- cesar.cron_fields' result as a type, to hand a parsed expression to the per-day function.
create type cesar.cron_schedule as (
  minutes integer[],
  hours integer[],
  days integer[],
  months integer[],
  weekdays integer[],
  any_day boolean,
  any_weekday boolean,
  wildcard boolean
);

-- The slots of local day d (its minutes whose local time lies in [local_from, local_to]) in
-- (after, upto], ascending; with max_slots only the latest (`latest`) or earliest max_slots of
-- them. What 1300's schedule_slots computed per day, with a fast path:
--   The UTC offset is sampled every 12 hours from 26 hours before the day's start to 58
--   hours after it. All samples equal means one offset throughout: the per-minute candidates
--   of the slow path then all come out as local time minus that offset (the offsets a day
--   before and after agree, the candidate is valid, nothing is skipped or repeated), so the
--   fast path computes exactly that. The samples can only miss two changes less than 12 hours
--   apart that cancel out, which 1300 already assumes away (it reads the offsets a day either
--   side of each minute). With one offset, slot order is local-time order, so only the hour
--   the window starts (or ends) in and the next max_slots allowed hours can hold the wanted
--   slots: an allowed hour strictly inside the window holds at least one.
create function cesar.schedule_day_slots(f cesar.cron_schedule, timezone text, d date,
                                         local_from timestamp, local_to timestamp,
                                         after timestamptz, upto timestamptz,
                                         max_slots integer default null, latest boolean default true)
returns timestamptz[]
language plpgsql
stable
set search_path = ''
as $$
declare
  day_start timestamptz := d::timestamp at time zone timezone;
  utc_offset interval;
  lo timestamp;
  hi timestamp;
  h_lo integer;
  h_hi integer;
begin
  if not (extract(month from d)::integer = any (f.months) and (
       case when f.any_day or f.any_weekday
            then extract(day from d)::integer = any (f.days)
                 and extract(dow from d)::integer = any (f.weekdays)
            else extract(day from d)::integer = any (f.days)
                 or extract(dow from d)::integer = any (f.weekdays) end)) then
    return '{}';
  end if;
  select case when min(z.shift) = max(z.shift) then min(z.shift) end into utc_offset
  from generate_series(day_start - interval '26 hours', day_start + interval '58 hours',
                       interval '12 hours') p,
       lateral (select (p at time zone timezone) - (p at time zone 'UTC') as shift) z;

  if utc_offset is not null then
    -- Local times whose slot (local time minus the offset) is in (after, upto], and in
    -- [local_from, local_to]; the hours are a superset, the row filter below is exact.
    lo := greatest(local_from, (after at time zone 'UTC') + utc_offset, d::timestamp);
    hi := least(local_to, (upto at time zone 'UTC') + utc_offset,
                d::timestamp + interval '1 day' - interval '1 microsecond');
    if lo > hi then
      return '{}';
    end if;
    h_lo := extract(hour from lo)::integer;
    h_hi := extract(hour from hi)::integer;
    if max_slots is not null and latest then
      h_lo := greatest(h_lo, (select h from unnest(f.hours) h where h < h_hi
                              order by h desc offset max_slots - 1 limit 1));
    elsif max_slots is not null then
      h_hi := least(h_hi, (select h from unnest(f.hours) h where h > h_lo
                           order by h offset max_slots - 1 limit 1));
    end if;
    return array(
      select x.instant from (
        select s.instant
        from unnest(f.hours) h, unnest(f.minutes) m,
             lateral (select d + make_interval(hours => h, mins => m) as local_time) l,
             lateral (select (l.local_time at time zone 'UTC') - utc_offset as instant) s
        where h between h_lo and h_hi
          and l.local_time between local_from and local_to
          and s.instant > after and s.instant <= upto
        order by case when latest then s.instant end desc, s.instant
        limit max_slots) x
      order by x.instant);
  end if;

  -- Around a clock change: 1300's computation, minute by minute (see its comments).
  return array(
    select y.instant from (
      select x.instant from (
        select distinct s.instant from (
          select l.local_time,
                 (l.local_time at time zone 'UTC') - o.offset_before as before_change,
                 (l.local_time at time zone 'UTC') - o.offset_after as after_change
          from unnest(f.hours) h, unnest(f.minutes) m,
               lateral (select d + make_interval(hours => h, mins => m) as local_time) l,
               lateral (select l.local_time at time zone timezone as t0) p,
               lateral (select ((p.t0 - interval '1 day') at time zone timezone)
                                 - ((p.t0 - interval '1 day') at time zone 'UTC') as offset_before,
                               ((p.t0 + interval '1 day') at time zone timezone)
                                 - ((p.t0 + interval '1 day') at time zone 'UTC') as offset_after) o
          where l.local_time between local_from and local_to
        ) c,
        lateral (
          select v.instant from (values (c.before_change), (c.after_change)) v (instant)
          where (v.instant at time zone timezone) = c.local_time
            and (f.wildcard or v.instant = least(
                   case when (c.before_change at time zone timezone) = c.local_time then c.before_change end,
                   case when (c.after_change at time zone timezone) = c.local_time then c.after_change end))
          union all
          select greatest(c.before_change, c.after_change)
          where not f.wildcard
            and (c.before_change at time zone timezone) <> c.local_time
            and (c.after_change at time zone timezone) <> c.local_time
        ) s (instant)
        where s.instant > after and s.instant <= upto
      ) x
      order by case when latest then x.instant end desc, x.instant
      limit max_slots) y
    order by y.instant);
end
$$;

-- 1300's schedule_slots for an expression already read (cesar.cron_fields), day by day through
-- cesar.schedule_day_slots: the same walk backwards from upto, the same stop once max_slots
-- are collected, the same result. A day gives at most max_slots (its latest): the latest
-- max_slots overall are among them, and the stop comes on the same day.
create function cesar.cron_slots(f cesar.cron_schedule, timezone text, after timestamptz,
                                 upto timestamptz, max_slots integer default null)
returns setof timestamptz
language plpgsql
stable
set search_path = ''
as $$
declare
  local_from timestamp := (after at time zone timezone) - interval '3 hours';
  local_to timestamp := (upto at time zone timezone) + interval '3 hours';
  d date := local_to::date;
  collected timestamptz[] := '{}';
begin
  while d >= local_from::date and (max_slots is null or cardinality(collected) < max_slots) loop
    collected := collected || cesar.schedule_day_slots(f, timezone, d, local_from, local_to,
                                                      after, upto, max_slots, true);
    d := d - 1;
  end loop;
  return query
    select x.slot from (
      select distinct u.slot from unnest(collected) u (slot) order by u.slot desc
      limit max_slots) x
    order by x.slot;
end
$$;

-- The first slot in (after, upto], or null: min(cesar.cron_slots(f, timezone, after, upto)),
-- walking local days forward from after. Once a day has a slot, only the next day can hold
-- an earlier one (a clock change late in the day can put the day's last slots after the next
-- day's first: in a gap from 23:00 to 24:00, 23:30 runs at 00:30), and only when the slot is
-- less than 3 hours (the clock changes schedule_slots allows for) before the day ends.
create function cesar.cron_next_slot(f cesar.cron_schedule, timezone text, after timestamptz,
                                     upto timestamptz)
returns timestamptz
language plpgsql
stable
set search_path = ''
as $$
declare
  local_from timestamp := (after at time zone timezone) - interval '3 hours';
  local_to timestamp := (upto at time zone timezone) + interval '3 hours';
  d date := local_from::date;
  found_on date;
  slot timestamptz;
  earliest timestamptz;
begin
  while d <= local_to::date and (found_on is null or d = found_on + 1) loop
    slot := (cesar.schedule_day_slots(f, timezone, d, local_from, local_to, after, upto, 1,
                                      false))[1];
    earliest := least(earliest, slot);
    if found_on is null and slot is not null then
      exit when (slot at time zone timezone) < (d + 1)::timestamp - interval '3 hours';
      found_on := d;
    end if;
    d := d + 1;
  end loop;
  return earliest;
end
$$;

-- A schedule's next_due_at once its slots up to `after` are dealt with (see the top of this
-- file): its first slot after `after`, or `after` + 1 day when none comes sooner. A day
-- ahead at most: every schedule is looked at daily, and the walk is two local days.
create function cesar.cron_next_due(f cesar.cron_schedule, timezone text, after timestamptz)
returns timestamptz
language sql
stable
set search_path = ''
return coalesce(cesar.cron_next_slot(f, timezone, after, after + interval '1 day'),
                after + interval '1 day');

-- The same for a cron expression: the signatures of 1300, which tests and operators call.
create or replace function cesar.schedule_slots(cron text, timezone text, after timestamptz,
                                                upto timestamptz, max_slots integer default null)
returns setof timestamptz
language plpgsql
stable
set search_path = ''
as $$
declare
  f cesar.cron_schedule;
begin
  select * into f from cesar.cron_fields(cron);
  return query select cesar.cron_slots(f, timezone, after, upto, max_slots);
end
$$;

create function cesar.schedule_next_slot(cron text, timezone text, after timestamptz,
                                         upto timestamptz)
returns timestamptz
language plpgsql
stable
set search_path = ''
as $$
declare
  f cesar.cron_schedule;
begin
  select * into f from cesar.cron_fields(cron);
  return cesar.cron_next_slot(f, timezone, after, upto);
end
$$;

alter table cesar.workflow_schedules
  add column next_due_at timestamptz,
  -- The template's cron expression as cesar.cron_fields reads it, read again whenever
  -- next_due_at is worked out from the template: the tick reads none (~0.25 ms each).
  add column cron cesar.cron_schedule;

-- Keeps next_due_at (and cron) as a schedule row is written. Kept as written when the row
-- moves covered_until forward but not up to next_due_at (run_schedule before the slot, or
-- with the next_due_at it worked out itself): no slot lies in between. Worked out from the
-- template otherwise; a writer sets next_due_at to null to have both worked out again (the
-- template trigger does, when the template's trigger changes or it is enabled).
create function cesar.keep_next_due_at() returns trigger
language plpgsql
set search_path = ''
as $$
declare
  template cesar.workflow_templates;
  f cesar.cron_schedule;
begin
  if tg_op = 'UPDATE' and new.next_due_at is not null and new.covered_until >= old.covered_until
     and new.covered_until < new.next_due_at then
    return new;
  end if;
  select * into template from cesar.workflow_templates t where t.id = new.template_id;
  if template.id is null or not template.enabled or template.trigger ->> 'type' <> 'schedule' then
    new.next_due_at := 'infinity';
    new.cron := null;
  else
    select * into f from cesar.cron_fields(template.trigger ->> 'cron');
    new.cron := f;
    new.next_due_at := cesar.cron_next_due(f, coalesce(template.trigger ->> 'timezone', 'UTC'),
                                           new.covered_until);
  end if;
  return new;
end
$$;

create trigger workflow_schedules_next_due
before insert or update of covered_until, next_due_at on cesar.workflow_schedules
for each row execute function cesar.keep_next_due_at();

update cesar.workflow_schedules set next_due_at = null;
alter table cesar.workflow_schedules alter column next_due_at set not null;

-- The tick's lookup: the schedules whose next_due_at has come, a handful of 5,000.
create index workflow_schedules_next_due_at on cesar.workflow_schedules (next_due_at);

-- 1300's, and: disabling a template sets its schedule's next_due_at to 'infinity' (the
-- tick's index then never returns it), enabling or changing it has next_due_at worked out
-- again from the new covered_until.
create or replace function cesar.reconcile_workflow_schedule() returns trigger
language plpgsql
set search_path = ''
as $$
begin
  if tg_op = 'DELETE' then
    return null;
  end if;
  if new.trigger ->> 'type' <> 'schedule' then
    delete from cesar.workflow_schedules s where s.template_id = new.id;
  elsif tg_op = 'INSERT' or new.trigger is distinct from old.trigger
        or (new.enabled and not old.enabled) then
    if tg_op = 'INSERT' or coalesce(new.trigger ->> 'timezone', 'UTC')
                           is distinct from coalesce(old.trigger ->> 'timezone', 'UTC')
       or new.trigger ->> 'cron' is distinct from old.trigger ->> 'cron' then
      perform cesar.check_schedule_trigger(new.trigger);
    else
      perform cesar.check_schedule_trigger(new.trigger - 'timezone');
    end if;
    insert into cesar.workflow_schedules (template_id, covered_until) values (new.id, now())
    on conflict (template_id) do update
    set covered_until = excluded.covered_until, next_due_at = null;
  elsif old.enabled and not new.enabled then
    update cesar.workflow_schedules s set next_due_at = null where s.template_id = new.id;
  end if;
  return null;
end
$$;

-- What is due of one schedule as of `as_of`, taken: 1300's run_schedule but for making the
-- executions, which is the caller's, in the same transaction. Locks the schedule's row, works
-- out the slots by its policy, moves covered_until, next_due_at, last_slot and last_run_at on,
-- and returns the slots to run, oldest first. Before next_due_at no slot is due, and only
-- covered_until moves. The expression comes read (workflow_schedules.cron) and serves for
-- the slots due and for the next_due_at after them.
create function cesar.take_schedule_slots(template_id uuid, as_of timestamptz default now())
returns timestamptz[]
language plpgsql
volatile
set search_path = ''
as $$
declare
  template cesar.workflow_templates;
  schedule cesar.workflow_schedules;
  f cesar.cron_schedule;
  zone text;
  policy text;
  due timestamptz[];
begin
  select * into template from cesar.workflow_templates t
  where t.id = take_schedule_slots.template_id;
  if template.id is null or not template.enabled or template.trigger ->> 'type' <> 'schedule' then
    return '{}';
  end if;
  -- One caller at a time per schedule (the tick, a test, an operator).
  select * into schedule from cesar.workflow_schedules s
  where s.template_id = template.id for update;
  if schedule.template_id is null or as_of <= schedule.covered_until then
    return '{}';
  end if;
  if as_of < schedule.next_due_at then
    update cesar.workflow_schedules s set covered_until = as_of where s.template_id = template.id;
    return '{}';
  end if;
  f := schedule.cron;
  if f is null then
    select * into f from cesar.cron_fields(template.trigger ->> 'cron');
  end if;
  zone := coalesce(template.trigger ->> 'timezone', 'UTC');
  policy := coalesce(template.trigger ->> 'catch_up', 'none');
  due := array(select cesar.cron_slots(
    f,
    zone,
    case when policy = 'none' then greatest(schedule.covered_until, as_of - interval '2 minutes')
         else schedule.covered_until end,
    as_of,
    case when policy = 'all' then coalesce((template.trigger ->> 'catch_up_max')::integer, 10)
         else 1 end));
  update cesar.workflow_schedules s
  set covered_until = as_of,
      next_due_at = cesar.cron_next_due(f, zone, as_of),
      last_slot = coalesce(due[cardinality(due)], s.last_slot),
      last_run_at = case when cardinality(due) > 0 then as_of else s.last_run_at end
  where s.template_id = template.id;
  return due;
end
$$;

-- 1300's signature and result: the slots taken, each run through cesar.run_workflow; the
-- executions made.
create or replace function cesar.run_schedule(template_id uuid, as_of timestamptz default now())
returns integer
language plpgsql
volatile
set search_path = ''
as $$
declare
  slot timestamptz;
  made integer := 0;
begin
  foreach slot in array cesar.take_schedule_slots(run_schedule.template_id, as_of) loop
    if cesar.run_workflow(run_schedule.template_id, slot, 'schedule') is not null then
      made := made + 1;
    end if;
  end loop;
  return made;
end
$$;

-- The tick: the enabled schedules whose next_due_at has come (the index), in template order
-- as before; their slots taken one schedule at a time, then all their executions made by one
-- cesar.create_executions, with the plans cesar.run_workflow makes (0.1 ms an execution,
-- against 0.6 ms one run_workflow at a time, measured with 200 every-minute templates). A
-- schedule whose slots cannot be worked out (say, a zone a tzdata update removed) is a warning
-- in the log and holds the others up no more than in 1300: its row stays as it was, so the
-- next tick tries again. Should making the executions fail (an action create_executions
-- refuses), the batch is undone and the tick runs 1300's way, schedule by schedule through
-- cesar.run_schedule, each alone: the failing one a warning, the others run.
create or replace function cesar.run_due_schedules(as_of timestamptz default now())
returns integer
language plpgsql
volatile
set search_path = ''
as $$
declare
  id uuid;
  taken timestamptz[];
  ids uuid[] := '{}';
  slots timestamptz[] := '{}';
  made integer := 0;
  due uuid[];
begin
  -- The schedules due, read once: should the batch fail, the same ones run one by one.
  select coalesce(array_agg(s.template_id order by s.template_id), '{}') into due
  from cesar.workflow_schedules s
  join cesar.workflow_templates t on t.id = s.template_id
  where s.next_due_at <= as_of and t.enabled and t.trigger ->> 'type' = 'schedule';
  begin
    foreach id in array due loop
      begin
        taken := cesar.take_schedule_slots(id, as_of);
        ids := ids || array_fill(id, array[cardinality(taken)]);
        slots := slots || taken;
      exception when others then
        raise warning 'schedule of workflow template % failed: %', id, sqlerrm;
      end;
    end loop;
    if cardinality(slots) > 0 then
      select count(*)::integer into made from cesar.create_executions((
        select jsonb_agg(jsonb_build_object(
                 'template_id', t.id, 'kind', 'schedule', 'slot', u.slot,
                 'actions', t.actions, 'retry_policy', t.retry_policy) order by u.n)
        from unnest(ids, slots) with ordinality u (id, slot, n)
        join cesar.workflow_templates t on t.id = u.id));
    end if;
  exception when others then
    raise warning 'schedules: making % executions at once failed (%), running them one schedule at a time',
      cardinality(slots), sqlerrm;
    made := 0;
    foreach id in array due loop
      begin
        made := made + cesar.run_schedule(id, as_of);
      exception when others then
        raise warning 'schedule of workflow template % failed: %', id, sqlerrm;
      end;
    end loop;
  end;
  return made;
end
$$;

revoke execute on function
  cesar.schedule_day_slots(cesar.cron_schedule, text, date, timestamp, timestamp, timestamptz,
                           timestamptz, integer, boolean),
  cesar.cron_slots(cesar.cron_schedule, text, timestamptz, timestamptz, integer),
  cesar.cron_next_slot(cesar.cron_schedule, text, timestamptz, timestamptz),
  cesar.cron_next_due(cesar.cron_schedule, text, timestamptz),
  cesar.schedule_next_slot(text, text, timestamptz, timestamptz),
  cesar.take_schedule_slots(uuid, timestamptz)
  from public, anon, authenticated;
grant execute on function
  cesar.schedule_day_slots(cesar.cron_schedule, text, date, timestamp, timestamp, timestamptz,
                           timestamptz, integer, boolean),
  cesar.cron_slots(cesar.cron_schedule, text, timestamptz, timestamptz, integer),
  cesar.cron_next_slot(cesar.cron_schedule, text, timestamptz, timestamptz),
  cesar.cron_next_due(cesar.cron_schedule, text, timestamptz),
  cesar.schedule_next_slot(text, text, timestamptz, timestamptz),
  cesar.take_schedule_slots(uuid, timestamptz)
  to service_role;
