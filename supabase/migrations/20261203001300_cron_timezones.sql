-- Why: schedule templates in a time zone, with catch-up. pg_cron 1.x schedules in UTC and
-- forgets what it missed while the database was down, so a "0 9 * * *" cannot mean 09:00 in
-- Europe/Berlin, nor run the 09:00 missed during an outage. pg_cron stays the clock: one job,
-- cesar-workflow-schedules, ticks every minute (on pg_cron 1.4 and 1.6 alike) and asks
-- cesar.run_due_schedules which local-time slots are due; the per-template pg_cron jobs
-- (cesar-workflow-<id>) are gone. A template's trigger may now carry
--   timezone      an IANA zone name, default 'UTC' (the old behaviour)
--   catch_up      'none' (default, the old behaviour), 'latest' or 'all'
--   catch_up_max  with 'all': at most this many missed slots run, the latest ones (default 10)
-- cesar.workflow_schedules records, per schedule, up to when its slots were dealt with and
-- the last slot that ran, which is what catch-up reads. Every function here takes the time
-- (`as_of`) as a parameter, so tests walk through both daylight-saving changes in seconds.
--
-- Daylight saving, as Vixie cron and cronie do it:
--   * A fixed-time schedule (neither its minute nor its hour field starts with '*', e.g.
--     "0 9 * * *", "30 2 * * *") runs once per matching local time. A local time the
--     spring-forward gap skips (02:30 on 2026-03-29 in Europe/Berlin) runs once, shifted by
--     the gap (03:30 CEST); a local time the fall-back hour repeats (02:30 on 2026-10-25)
--     runs once, at its first occurrence (02:30 CEST).
--   * A wildcard schedule (minute or hour field starting with '*', e.g. "*/15 * * * *",
--     "0 * * * *") follows the wall clock: it runs at every instant whose local time matches,
--     so in both occurrences of the repeated hour and not at all in the skipped one (an hourly
--     job runs every real hour, 23 times or 25 times that day).
-- Slots are minutes; the exactly-once key of cesar.workflow_executions (template, slot)
-- holds as before, so ticks, retries and catch-up race harmlessly.

-- One field of a five-field cron expression as the sorted values it allows: '*', 'n', 'a-b',
-- any of them '/step', comma lists; names (jan, mon) where `names` gives them. What pg_cron
-- accepted before is accepted here (Vixie's syntax); anything else raises 'invalid schedule'.
create function cesar.cron_field(field text, low integer, high integer, names text[] default null)
returns integer[]
language plpgsql
immutable
set search_path = ''
as $$
declare
  spec text := lower(field);
  part text;
  m text[];
  lo integer;
  hi integer;
  step integer;
  allowed integer[] := '{}';
begin
  for i in 1 .. coalesce(array_length(names, 1), 0) loop
    spec := replace(spec, names[i], (low + i - 1)::text);
  end loop;
  foreach part in array string_to_array(spec, ',') loop
    m := regexp_match(part, '^(?:(\*)|(\d{1,2})(?:-(\d{1,2}))?)(?:/(\d{1,2}))?$');
    if m is null then
      raise exception 'invalid schedule: cannot read "%"', field using errcode = '22023';
    end if;
    lo := coalesce(m[2]::integer, low);
    hi := coalesce(m[3]::integer, case when m[1] is null and m[4] is null then lo else high end);
    step := coalesce(m[4]::integer, 1);
    if lo < low or hi > high or lo > hi or step < 1 then
      raise exception 'invalid schedule: "%" is outside %-%', field, low, high using errcode = '22023';
    end if;
    allowed := allowed || array(select generate_series(lo, hi, step));
  end loop;
  return array(select distinct v from unnest(allowed) v order by v);
end
$$;

-- A cron expression read once: the values of its fields; whether day of month and day of week
-- were restricted (both restricted: either may match, as in Vixie cron); whether it is a
-- wildcard schedule for daylight saving (see the top of this file).
create function cesar.cron_fields(cron text,
  out minutes integer[], out hours integer[], out days integer[], out months integer[],
  out weekdays integer[], out any_day boolean, out any_weekday boolean, out wildcard boolean)
language plpgsql
immutable
set search_path = ''
as $$
declare
  f text[] := regexp_split_to_array(btrim(cron), '\s+');
begin
  if cardinality(f) <> 5 then
    raise exception 'invalid schedule: "%" is not five fields', cron using errcode = '22023';
  end if;
  minutes := cesar.cron_field(f[1], 0, 59);
  hours := cesar.cron_field(f[2], 0, 23);
  days := cesar.cron_field(f[3], 1, 31);
  months := cesar.cron_field(f[4], 1, 12,
    array['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec']);
  -- 0-7, both 0 and 7 Sunday.
  weekdays := array(select distinct d % 7 from unnest(cesar.cron_field(f[5], 0, 7,
    array['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'])) d order by 1);
  any_day := f[3] like '*%';
  any_weekday := f[5] like '*%';
  wildcard := f[1] like '*%' or f[2] like '*%';
end
$$;

-- The slots of a schedule in (after, upto], as instants, oldest first; with max_slots only the
-- latest max_slots of them. Local days are read backwards from upto, so the latest slots cost
-- a day's work however long the outage was. A local time L maps to the instants whose local
-- time is L in `timezone`: the offsets in force a day before and a day after L give the
-- candidates (both, around a change); a gap has no valid candidate and takes the later one
-- (L shifted by the gap), a repeated time has two and a fixed-time schedule takes the first.
-- Daylight-saving changes move clocks by at most 2 hours (historic double summer time), so
-- local minutes more than 3 hours outside the window are never looked at.
create function cesar.schedule_slots(cron text, timezone text, after timestamptz, upto timestamptz,
                                     max_slots integer default null)
returns setof timestamptz
language plpgsql
stable
set search_path = ''
as $$
declare
  f record;
  local_from timestamp := (after at time zone timezone) - interval '3 hours';
  local_to timestamp := (upto at time zone timezone) + interval '3 hours';
  d date := local_to::date;
  collected timestamptz[] := '{}';
begin
  select * into f from cesar.cron_fields(cron);
  while d >= local_from::date and (max_slots is null or cardinality(collected) < max_slots) loop
    if extract(month from d)::integer = any (f.months) and (
         case when f.any_day or f.any_weekday
              then extract(day from d)::integer = any (f.days)
                   and extract(dow from d)::integer = any (f.weekdays)
              else extract(day from d)::integer = any (f.days)
                   or extract(dow from d)::integer = any (f.weekdays) end) then
      collected := collected || array(
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
          -- In a gap: no candidate is valid; a fixed-time schedule runs shifted by the gap.
          select greatest(c.before_change, c.after_change)
          where not f.wildcard
            and (c.before_change at time zone timezone) <> c.local_time
            and (c.after_change at time zone timezone) <> c.local_time
        ) s (instant)
        where s.instant > after and s.instant <= upto
        order by s.instant desc);
    end if;
    d := d - 1;
  end loop;
  return query
    select x.slot from (
      select distinct u.slot from unnest(collected) u (slot) order by u.slot desc
      limit max_slots) x
    order by x.slot;
end
$$;

-- Per schedule template: slots at or before covered_until were run or given up; last_slot is
-- the last that ran. Made, and covered_until set to the moment, when the template is created,
-- its trigger changes or it is enabled: slots from before that are not "missed".
create table cesar.workflow_schedules (
  template_id uuid primary key references cesar.workflow_templates (id) on delete cascade,
  covered_until timestamptz not null,
  last_slot timestamptz,
  last_run_at timestamptz
);

-- A schedule trigger's settings, checked: the cron expression (cesar.cron_fields), the time
-- zone (in the time zone database: Postgres would also take POSIX strings like 'Foo5', which
-- the api refuses too; pg_timezone_names costs ~100 ms, paid when a zone is saved), catch_up.
create function cesar.check_schedule_trigger(trigger jsonb) returns void
language plpgsql
stable
set search_path = ''
as $$
declare
  zone text := coalesce(trigger ->> 'timezone', 'UTC');
begin
  perform cesar.cron_fields(trigger ->> 'cron');
  if zone <> 'UTC' and not exists (select from pg_catalog.pg_timezone_names n where n.name = zone) then
    raise exception 'invalid time zone "%"', zone using errcode = '22023';
  end if;
  if coalesce(trigger ->> 'catch_up', 'none') not in ('none', 'latest', 'all') then
    raise exception 'invalid catch_up "%": none, latest or all', trigger ->> 'catch_up'
      using errcode = '22023';
  end if;
  if trigger ? 'catch_up_max' and (jsonb_typeof(trigger -> 'catch_up_max') <> 'number'
      or (trigger ->> 'catch_up_max')::numeric not between 1 and 1000
      or (trigger ->> 'catch_up_max')::numeric % 1 <> 0) then
    raise exception 'invalid catch_up_max: an integer from 1 to 1000' using errcode = '22023';
  end if;
end
$$;

-- Replaces the baseline's: a schedule template is a row in cesar.workflow_schedules, not a
-- pg_cron job of its own. Whatever writes the template (the api function, SQL, the seed), the
-- schedule follows, and a template with a bad schedule is not written.
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
    on conflict (template_id) do update set covered_until = excluded.covered_until;
  end if;
  return null;
end
$$;

-- Runs what is due of one schedule as of `as_of`: the slots after covered_until, by its
-- policy. 'none' runs the latest slot only when it is at most 2 minutes old (its own tick,
-- or the next one when pg_cron ran late) and gives up older ones; 'latest' runs the latest
-- slot however old; 'all' runs the latest catch_up_max slots, oldest first. Then
-- covered_until moves to as_of. Returns the executions made. A disabled or non-schedule
-- template runs nothing.
create function cesar.run_schedule(template_id uuid, as_of timestamptz default now())
returns integer
language plpgsql
volatile
set search_path = ''
as $$
declare
  template cesar.workflow_templates;
  schedule cesar.workflow_schedules;
  policy text;
  due timestamptz[];
  slot timestamptz;
  made integer := 0;
begin
  select * into template from cesar.workflow_templates t where t.id = run_schedule.template_id;
  if template.id is null or not template.enabled or template.trigger ->> 'type' <> 'schedule' then
    return 0;
  end if;
  -- One caller at a time per schedule (the tick, a test, an operator).
  select * into schedule from cesar.workflow_schedules s
  where s.template_id = template.id for update;
  if schedule.template_id is null or as_of <= schedule.covered_until then
    return 0;
  end if;
  policy := coalesce(template.trigger ->> 'catch_up', 'none');
  due := array(select cesar.schedule_slots(
    template.trigger ->> 'cron',
    coalesce(template.trigger ->> 'timezone', 'UTC'),
    case when policy = 'none' then greatest(schedule.covered_until, as_of - interval '2 minutes')
         else schedule.covered_until end,
    as_of,
    case when policy = 'all' then coalesce((template.trigger ->> 'catch_up_max')::integer, 10)
         else 1 end));
  foreach slot in array due loop
    if cesar.run_workflow(template.id, slot, 'schedule') is not null then
      made := made + 1;
    end if;
  end loop;
  update cesar.workflow_schedules s
  set covered_until = as_of,
      last_slot = coalesce(due[cardinality(due)], s.last_slot),
      last_run_at = case when cardinality(due) > 0 then as_of else s.last_run_at end
  where s.template_id = template.id;
  return made;
end
$$;

-- The tick: every enabled schedule. One template's failure (say, a zone a tzdata update
-- removed) is a warning in the log and does not hold the others up.
create function cesar.run_due_schedules(as_of timestamptz default now()) returns integer
language plpgsql
volatile
set search_path = ''
as $$
declare
  id uuid;
  made integer := 0;
begin
  for id in
    select t.id from cesar.workflow_templates t
    where t.enabled and t.trigger ->> 'type' = 'schedule' order by t.id
  loop
    begin
      made := made + cesar.run_schedule(id, as_of);
    exception when others then
      raise warning 'schedule of workflow template % failed: %', id, sqlerrm;
    end;
  end loop;
  return made;
end
$$;

revoke execute on function cesar.cron_field(text, integer, integer, text[]),
  cesar.cron_fields(text), cesar.schedule_slots(text, text, timestamptz, timestamptz, integer),
  cesar.check_schedule_trigger(jsonb), cesar.run_schedule(uuid, timestamptz),
  cesar.run_due_schedules(timestamptz)
  from public, anon, authenticated;
grant execute on function cesar.cron_field(text, integer, integer, text[]),
  cesar.cron_fields(text), cesar.schedule_slots(text, text, timestamptz, timestamptz, integer),
  cesar.check_schedule_trigger(jsonb), cesar.run_schedule(uuid, timestamptz),
  cesar.run_due_schedules(timestamptz)
  to service_role;

-- The templates there are: their state from now on, their old pg_cron jobs gone.
insert into cesar.workflow_schedules (template_id, covered_until)
select t.id, now() from cesar.workflow_templates t where t.trigger ->> 'type' = 'schedule';
select cron.unschedule(j.jobid) from cron.job j where j.jobname like 'cesar-workflow-%';

select cron.schedule('cesar-workflow-schedules', '* * * * *', 'select cesar.run_due_schedules()');
