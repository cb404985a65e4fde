import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Sql } from '../packages/shared/src/db.ts';
import { describeTrigger } from '../scripts/cli/workflows.ts';
import { repoRoot } from '../scripts/lib/paths.ts';
import { functionSql, testSql, withRollback } from './helpers/db.ts';
import { uniqueJobType } from './helpers/queue.ts';
import { apiApp, call } from './helpers/workflows.ts';

// Schedule templates in a time zone, with catch-up (20261203001300_cron_timezones.sql). The
// clock is a parameter (as_of), so a test walks through a daylight-saving weekend minute by
// minute in one statement. Templates written here are rolled back: the real tick
// (cesar-workflow-schedules) never sees them.

const sql = testSql(undefined, 4);
const api = apiApp(functionSql(2, 'api'));
const tag = `sch${Date.now().toString(36)}`;
const jobType = uniqueJobType('sched');

interface Schedule {
  cron: string;
  timezone?: string;
  catch_up?: string;
  catch_up_max?: number;
}

/** A schedule template, its slots covered up to `coveredUntil` (as if made then). */
async function scheduleTemplate(tx: Sql, name: string, schedule: Schedule, coveredUntil: string) {
  const [t] = await tx<Array<{ id: string }>>`
    insert into cesar.workflow_templates (name, trigger, actions)
    values (${`${tag} ${name}`}, ${tx.json({ type: 'schedule', ...schedule } as never)},
            ${tx.json([{ type: 'enqueue_job', job_type: jobType, payload: {} }] as never)})
    returning id`;
  await tx`update cesar.workflow_schedules set covered_until = ${coveredUntil}
           where template_id = ${t!.id}`;
  return t!.id;
}

/** The tick, every `step` from `from` to `to` (as pg_cron calls it), in one statement. */
async function tick(tx: Sql, id: string, from: string, to: string, step = '1 minute') {
  const [r] = await tx<Array<{ made: number }>>`
    select coalesce(sum(cesar.run_schedule(${id}::uuid, t)), 0)::int as made
    from generate_series(${from}::timestamptz, ${to}::timestamptz, ${step}::interval) t`;
  return r!.made;
}

/** The slots that ran, in UTC and in local time. */
async function slotsRun(tx: Sql, id: string, zone = 'Europe/Berlin') {
  return await tx<Array<{ utc: string; local: string }>>`
    select to_char(schedule_slot at time zone 'UTC', 'YYYY-MM-DD HH24:MI') as utc,
           to_char(schedule_slot at time zone ${zone}, 'YYYY-MM-DD HH24:MI') as local
    from cesar.workflow_executions where template_id = ${id} and trigger_kind = 'schedule'
    order by schedule_slot`;
}

describe('daylight saving in Europe/Berlin (2026-03-29 spring forward, 2026-10-25 fall back)', () => {
  it('a daily 09:00 runs once per local day at 09:00 local, through both changes', async () => {
    await withRollback(sql, async (tx) => {
      const id = await scheduleTemplate(tx, 'daily nine', {
        cron: '0 9 * * *',
        timezone: 'Europe/Berlin',
      }, '2026-03-27T12:00:00Z');
      // Every minute from Friday noon to Tuesday noon, as pg_cron ticks.
      expect(await tick(tx, id, '2026-03-27T12:00:00Z', '2026-03-31T12:00:00Z')).toBe(4);
      await tx`update cesar.workflow_schedules set covered_until = '2026-10-23T12:00:00Z'
               where template_id = ${id}`;
      expect(await tick(tx, id, '2026-10-23T12:00:00Z', '2026-10-27T12:00:00Z')).toBe(4);
      expect(await slotsRun(tx, id)).toEqual([
        { utc: '2026-03-28 08:00', local: '2026-03-28 09:00' }, // CET, +01
        { utc: '2026-03-29 07:00', local: '2026-03-29 09:00' }, // CEST, +02
        { utc: '2026-03-30 07:00', local: '2026-03-30 09:00' },
        { utc: '2026-03-31 07:00', local: '2026-03-31 09:00' },
        { utc: '2026-10-24 07:00', local: '2026-10-24 09:00' }, // CEST
        { utc: '2026-10-25 08:00', local: '2026-10-25 09:00' }, // CET
        { utc: '2026-10-26 08:00', local: '2026-10-26 09:00' },
        { utc: '2026-10-27 08:00', local: '2026-10-27 09:00' },
      ]);
      const [state] = await tx`select last_slot from cesar.workflow_schedules
                               where template_id = ${id}`;
      expect(state!.last_slot).toEqual(new Date('2026-10-27T08:00:00Z'));
    });
  });

  it('02:30, skipped in spring, runs once at 03:30; repeated in autumn, runs once, at its first occurrence', async () => {
    await withRollback(sql, async (tx) => {
      const id = await scheduleTemplate(tx, 'half past two', {
        cron: '30 2 * * *',
        timezone: 'Europe/Berlin',
      }, '2026-03-28T12:00:00Z');
      expect(await tick(tx, id, '2026-03-28T12:00:00Z', '2026-03-30T12:00:00Z')).toBe(2);
      await tx`update cesar.workflow_schedules set covered_until = '2026-10-24T12:00:00Z'
               where template_id = ${id}`;
      expect(await tick(tx, id, '2026-10-24T12:00:00Z', '2026-10-26T12:00:00Z')).toBe(2);
      expect(await slotsRun(tx, id)).toEqual([
        { utc: '2026-03-29 01:30', local: '2026-03-29 03:30' }, // 02:30 does not exist
        { utc: '2026-03-30 00:30', local: '2026-03-30 02:30' },
        { utc: '2026-10-25 00:30', local: '2026-10-25 02:30' }, // 02:30 CEST; not 02:30 CET
        { utc: '2026-10-26 01:30', local: '2026-10-26 02:30' },
      ]);
    });
  });

  it('an hourly schedule follows the wall clock: 23 runs on the short day, 25 on the long one', async () => {
    const [counts] = await sql`
      select
        (select count(*) from cesar.schedule_slots('0 * * * *', 'Europe/Berlin',
           '2026-03-28T23:00:00Z', '2026-03-29T22:00:00Z'))::int as spring,
        (select count(*) from cesar.schedule_slots('0 * * * *', 'Europe/Berlin',
           '2026-10-24T22:00:00Z', '2026-10-25T23:00:00Z'))::int as autumn,
        (select count(*) from cesar.schedule_slots('*/15 * * * *', 'Europe/Berlin',
           '2026-03-28T23:00:00Z', '2026-03-29T22:00:00Z'))::int as quarter_spring`;
    // Local days: 2026-03-29 00:00 (23:00Z the day before) to 24:00 (22:00Z).
    expect(counts).toEqual({ spring: 23, autumn: 25, quarter_spring: 92 });
  });

  it('UTC, the default, is the old behaviour: 09:00 UTC every day, whatever Berlin does', async () => {
    await withRollback(sql, async (tx) => {
      const id = await scheduleTemplate(
        tx,
        'utc nine',
        { cron: '0 9 * * *' },
        '2026-03-28T12:00:00Z',
      );
      expect(await tick(tx, id, '2026-03-28T12:00:00Z', '2026-03-30T12:00:00Z')).toBe(2);
      expect((await slotsRun(tx, id, 'UTC')).map((s) => s.utc)).toEqual([
        '2026-03-29 09:00',
        '2026-03-30 09:00',
      ]);
    });
  });
});

describe('catch-up after the database was down (2026-06-01 06:00Z to 2026-06-05 12:00Z)', () => {
  // 09:00 Berlin (07:00Z) was missed on five days; the first tick after the outage decides.
  const runAfterOutage = async (schedule: Omit<Schedule, 'cron' | 'timezone'>) =>
    await withRollback(sql, async (tx) => {
      const id = await scheduleTemplate(tx, `catch up ${JSON.stringify(schedule)}`, {
        cron: '0 9 * * *',
        timezone: 'Europe/Berlin',
        ...schedule,
      }, '2026-06-01T06:00:00Z');
      const first = await tick(tx, id, '2026-06-05T12:00:00Z', '2026-06-05T12:00:00Z');
      // The next ticks find nothing more to do.
      const later = await tick(tx, id, '2026-06-05T12:01:00Z', '2026-06-05T12:30:00Z');
      const [state] = await tx`select last_slot, covered_until from cesar.workflow_schedules
                               where template_id = ${id}`;
      return { first, later, slots: (await slotsRun(tx, id)).map((s) => s.utc), state };
    });

  it('none: missed slots are given up; the schedule goes on', async () => {
    const r = await runAfterOutage({ catch_up: 'none' });
    expect(r).toMatchObject({ first: 0, later: 0, slots: [] });
    expect(r.state!.covered_until).toEqual(new Date('2026-06-05T12:30:00Z'));
  });

  it('latest: the latest missed slot runs, once', async () => {
    const r = await runAfterOutage({ catch_up: 'latest' });
    expect(r).toMatchObject({ first: 1, later: 0, slots: ['2026-06-05 07:00'] });
    expect(r.state!.last_slot).toEqual(new Date('2026-06-05T07:00:00Z'));
  });

  it('all, bounded by catch_up_max: the latest catch_up_max missed slots, oldest first', async () => {
    expect(await runAfterOutage({ catch_up: 'all', catch_up_max: 3 })).toMatchObject({
      first: 3,
      later: 0,
      slots: ['2026-06-03 07:00', '2026-06-04 07:00', '2026-06-05 07:00'],
    });
    expect(await runAfterOutage({ catch_up: 'all' })).toMatchObject({
      first: 5,
      slots: [
        '2026-06-01 07:00',
        '2026-06-02 07:00',
        '2026-06-03 07:00',
        '2026-06-04 07:00',
        '2026-06-05 07:00',
      ],
    });
  });

  it('none still runs a slot its tick reached late (up to 2 minutes), once', async () => {
    await withRollback(sql, async (tx) => {
      const id = await scheduleTemplate(tx, 'late tick', {
        cron: '0 9 * * *',
        timezone: 'Europe/Berlin',
      }, '2026-06-05T06:58:30Z');
      expect(await tick(tx, id, '2026-06-05T07:01:40Z', '2026-06-05T07:01:40Z')).toBe(1);
      expect(await tick(tx, id, '2026-06-05T07:01:41Z', '2026-06-05T07:05:00Z', '1 second'))
        .toBe(0);
    });
  });

  it('slots from before a template was made, or while it was disabled, are not missed', async () => {
    await withRollback(sql, async (tx) => {
      const id = await scheduleTemplate(tx, 'disabled a while', {
        cron: '0 9 * * *',
        timezone: 'Europe/Berlin',
        catch_up: 'all',
      }, '2026-06-01T06:00:00Z');
      await tx`update cesar.workflow_templates set enabled = false where id = ${id}`;
      await tx`update cesar.workflow_templates set enabled = true where id = ${id}`;
      const [state] = await tx`select covered_until, now() as now from cesar.workflow_schedules
                               where template_id = ${id}`;
      expect(state!.covered_until).toEqual(state!.now);
    });
  });
});

describe('schedule templates through the api', () => {
  const post = (trigger: Record<string, unknown>, name = 'api') =>
    call(api, 'POST', '/api/workflows', {
      name: `${tag} ${name}`,
      trigger: { type: 'schedule', cron: '0 0 1 1 *', ...trigger },
      actions: [{ type: 'agent_task', title: 'never due in a test run' }],
    });
  const count = async () =>
    (await sql`select count(*)::int as n from cesar.workflow_templates where name like ${`${tag}%`}`)[
      0
    ]!.n;

  it('refuses a bad time zone or catch-up with 400 naming the field, and writes nothing', async () => {
    const before = await count();
    for (const timezone of ['Europe/Nowhere', '+01:00', 'EST5', '', 'Mars/Olympus']) {
      const r = await post({ timezone });
      expect(r.status, timezone).toBe(400);
      expect(r.body.error.issues.map((i: { path: string }) => i.path), timezone).toEqual([
        'trigger.timezone',
      ]);
    }
    let r = await post({ catch_up: 'some' });
    expect(r.body.error.issues[0].path).toBe('trigger.catch_up');
    r = await post({ catch_up: 'latest', catch_up_max: 3 });
    expect(r).toMatchObject({
      status: 400,
      body: { error: { issues: [{ path: 'trigger.catch_up_max' }] } },
    });
    r = await post({ catch_up: 'all', catch_up_max: 0 });
    expect(r.body.error.issues[0].path).toBe('trigger.catch_up_max');
    expect(await count()).toBe(before);
    // SQL writers meet the same checks in the database.
    await expect(
      withRollback(
        sql,
        (tx) =>
          tx`insert into cesar.workflow_templates (name, trigger, actions) values (${`${tag} sql`},
           '{"type": "schedule", "cron": "0 9 * * *", "timezone": "Mars/Olympus"}',
           '[{"type": "agent_task", "title": "x"}]')`,
      ),
    ).rejects.toThrow(/invalid time zone "Mars\/Olympus"/);
  });

  it('saves a zone and a policy, shows them with the schedule state, and PATCH keeps them', async () => {
    const r = await post({ timezone: 'Europe/Berlin', catch_up: 'all', catch_up_max: 5 }, 'ok');
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    try {
      const got = await call(api, 'GET', `/api/workflows/${r.body.id}`);
      expect(got.body).toMatchObject({
        trigger: { cron: '0 0 1 1 *', timezone: 'Europe/Berlin', catch_up: 'all', catch_up_max: 5 },
        schedule: { last_slot: null, covered_until: expect.any(String) },
      });
      expect(describeTrigger(got.body.trigger)).toBe(
        'cron 0 0 1 1 * Europe/Berlin, catch-up all (max 5)',
      );
      const patched = await call(api, 'PATCH', `/api/workflows/${r.body.id}`, {
        trigger: { type: 'schedule', cron: '0 0 1 1 *', timezone: 'America/New_York' },
      });
      expect(patched.body.trigger).toEqual({
        type: 'schedule',
        cron: '0 0 1 1 *',
        timezone: 'America/New_York',
        catch_up: 'none',
      });
      const bad = await call(api, 'PATCH', `/api/workflows/${r.body.id}`, {
        trigger: { type: 'schedule', cron: '0 0 1 1 *', timezone: 'America/Nowhere' },
      });
      expect(bad.status).toBe(400);
      expect((await call(api, 'GET', `/api/workflows/${r.body.id}`)).body.trigger.timezone)
        .toBe('America/New_York');
    } finally {
      await call(api, 'DELETE', `/api/workflows/${r.body.id}`);
    }
    expect(describeTrigger({ type: 'schedule', cron: '0 9 * * *' })).toBe('cron 0 9 * * * UTC');
  });
});

describe('the clock', () => {
  it('is one pg_cron job a minute; templates have no pg_cron jobs of their own', async () => {
    const jobs = await sql`select jobname, schedule, command from cron.job
                           where jobname like 'cesar-workflow%' order by jobname`;
    expect(jobs).toEqual([{
      jobname: 'cesar-workflow-schedules',
      schedule: '* * * * *',
      command: 'select cesar.run_due_schedules()',
    }]);
  });
});

describe('the tick costs what is due, not what exists (20261203002200_schedule_next_due.sql)', () => {
  // 1300's schedule_slots, from its migration, as cesar.schedule_slots_1300 in the caller's
  // transaction (rolled back): what the cheaper slots must equal.
  async function loadSlots1300(tx: Sql) {
    const file = path.join(repoRoot, 'supabase/migrations/20261203001300_cron_timezones.sql');
    const text = await readFile(file, 'utf8');
    const start = text.indexOf('create function cesar.schedule_slots(');
    const body = text.slice(start, text.indexOf('$$;', start) + 3);
    await tx.unsafe(body.replace('cesar.schedule_slots(', 'cesar.schedule_slots_1300('));
  }

  /** Windows around each 2026 clock change of zones with 1-hour, 30-minute (Lord Howe),
   * 2-hour (Troll) and midnight (Santiago, Havana) changes. */
  const windows = (tx: Sql) =>
    tx`
    create temp table windows on commit drop as
    with zones (z) as (values ('Europe/Berlin'), ('America/New_York'), ('Australia/Lord_Howe'),
                              ('Antarctica/Troll'), ('America/Santiago'), ('America/Havana')),
    changes as (
      select z, t from zones, generate_series('2026-01-01'::timestamptz, '2027-01-01', '1 hour') t
      where (t at time zone z) - (t at time zone 'UTC')
         <> ((t - interval '1 hour') at time zone z) - ((t - interval '1 hour') at time zone 'UTC'))
    select c.z, c.t + o as after, c.t + o + l as upto
    from changes c,
      unnest('{-26 hours,-61 minutes,-1 minute,0,29 minutes,2 hours}'::interval[]) o,
      unnest('{2 minutes,61 minutes,1 day}'::interval[]) l`;
  const CRONS = [
    '* * * * *',
    '*/15 * * * *',
    '0 * * * *',
    '30 2 * * *',
    '0 9 * * *',
    '30 23 * * *',
    '15,45 0-3 * * *',
    '0 0 * * 0',
  ];

  it('schedule_slots returns what 1300 did, around the clock changes of six zones', async () => {
    await withRollback(sql, async (tx) => {
      await loadSlots1300(tx);
      await windows(tx);
      const [r] = await tx`
        select count(*)::int as compared,
               count(*) filter (where got is distinct from want)::int as differ,
               count(*) filter (where got is not null)::int as slots
        from (
          select (select array_agg(s) from cesar.schedule_slots(c, w.z, w.after, w.upto, n) s) as got,
                 (select array_agg(s) from cesar.schedule_slots_1300(c, w.z, w.after, w.upto, n) s)
                   as want
          from windows w, unnest(${CRONS}::text[]) c, unnest('{null,1}'::int[]) n
          -- Every minute for a day: 1300 takes seconds for each; the hour windows cover it.
          where c <> '* * * * *' or w.upto - w.after < interval '1 day') x`;
      expect(r).toMatchObject({ compared: 3312, differ: 0 });
      expect(r!.slots).toBeGreaterThan(1000);
    });
  }, 90_000);

  it('schedule_next_slot is the first of 1300 slots', async () => {
    await withRollback(sql, async (tx) => {
      await loadSlots1300(tx);
      await windows(tx);
      const [r] = await tx`
        select count(*)::int as compared,
               count(*) filter (where got is distinct from want)::int as differ
        from (
          select cesar.schedule_next_slot(c, w.z, w.after, w.upto) as got,
                 (select min(s) from cesar.schedule_slots_1300(c, w.z, w.after, w.upto) s) as want
          from windows w, unnest(${CRONS}::text[]) c
          where c <> '* * * * *' or w.upto - w.after < interval '1 day') x`;
      expect(r).toEqual({ compared: 1656, differ: 0 });
    });
  }, 60_000);

  it('a tick looks only at the schedules whose next slot has come, however many there are', async () => {
    await withRollback(sql, async (tx) => {
      // Calls of functions in this transaction: pg_stat_xact_user_functions.
      await tx`set local track_functions = 'all'`;
      const calls = async () =>
        Object.fromEntries(
          (await tx<Array<{ name: string; calls: number }>>`
            select funcname as name, calls::int from pg_stat_xact_user_functions
            where schemaname = 'cesar' and funcname in ('take_schedule_slots', 'cron_slots')`)
            .map((r) => [r.name, r.calls]),
        );
      // 500 schedules, UTC (a zone's check reads the time zone database, 35 ms a template):
      // 20 every minute, 30 hourly, 50 daily at 07:00 UTC, 200 daily at 09:00, 200 weekly.
      const crons = [
        ...Array(20).fill('* * * * *'),
        ...Array(30).fill('0 * * * *'),
        ...Array(50).fill('0 7 * * *'),
        ...Array(200).fill('0 9 * * *'),
        ...Array(200).fill('0 9 * * 1'),
      ];
      await tx`
        insert into cesar.workflow_templates (name, trigger, actions)
        select ${`${tag} many `} || n, jsonb_build_object('type', 'schedule', 'cron', c),
               ${tx.json([{ type: 'enqueue_job', job_type: jobType, payload: {} }] as never)}
        from unnest(${crons}::text[]) with ordinality u (c, n)`;
      await tx`update cesar.workflow_schedules s set covered_until = '2026-06-02T06:50:00Z'
               from cesar.workflow_templates t
               where t.id = s.template_id and t.name like ${`${tag} many %`}`;
      // The tick's lookup can use the index on next_due_at (seq scans off: on a small table
      // the planner may rightly prefer one; the calls below are what pins the cost).
      await tx`set local enable_seqscan = off`;
      const [plan] = await tx`
        explain (format json)
        select s.template_id from cesar.workflow_schedules s
        where s.next_due_at <= '2026-06-02T06:50:30Z'`;
      expect(JSON.stringify(plan)).toContain('workflow_schedules_next_due_at');
      await tx`set local enable_seqscan = on`;

      const before = await calls();
      // Mid-minute: no slot. No schedule is looked at.
      const [idle] = await tx`select cesar.run_due_schedules('2026-06-02T06:50:30Z') as made`;
      expect(idle!.made).toBe(0);
      expect(await calls()).toEqual(before);

      // 06:51: the 20 every-minute schedules, each once.
      const [minute] = await tx`select cesar.run_due_schedules('2026-06-02T06:51:00Z') as made`;
      expect(minute!.made).toBe(20);
      const afterMinute = await calls();
      expect(afterMinute.take_schedule_slots! - (before.take_schedule_slots ?? 0)).toBe(20);
      expect(afterMinute.cron_slots! - (before.cron_slots ?? 0)).toBe(20);

      // 07:00 UTC: every minute, hourly and daily 07:00; not the 400 others.
      for (let m = 2; m <= 9; m++) {
        await tx`select cesar.run_due_schedules(${`2026-06-02T06:5${m}:00Z`})`;
      }
      const beforeHour = await calls();
      const [hour] = await tx`select cesar.run_due_schedules('2026-06-02T07:00:00Z') as made`;
      expect(hour!.made).toBe(100);
      expect((await calls()).take_schedule_slots! - beforeHour.take_schedule_slots!).toBe(100);
    });
  });

  it('the tick, minute by minute through both Berlin changes, runs the slots of 1300', async () => {
    await withRollback(sql, async (tx) => {
      await loadSlots1300(tx);
      const schedules: Record<string, Schedule> = {
        daily: { cron: '0 9 * * *', timezone: 'Europe/Berlin' },
        'half past two': { cron: '30 2 * * *', timezone: 'Europe/Berlin' },
        hourly: { cron: '0 * * * *', timezone: 'Europe/Berlin' },
        'quarter, catch-up all': {
          cron: '*/15 * * * *',
          timezone: 'Europe/Berlin',
          catch_up: 'all',
        },
      };
      for (
        const [from, to] of [
          ['2026-03-28T12:00:00Z', '2026-03-30T12:00:00Z'],
          ['2026-10-24T12:00:00Z', '2026-10-26T12:00:00Z'],
        ] as const
      ) {
        const ids: Record<string, string> = {};
        for (const [name, schedule] of Object.entries(schedules)) {
          ids[name] = await scheduleTemplate(tx, `${name} ${from}`, schedule, from);
        }
        const [made] = await tx`
          select sum(cesar.run_due_schedules(t))::int as n
          from generate_series(${from}::timestamptz + interval '1 minute', ${to}::timestamptz,
                               '1 minute') t`;
        let total = 0;
        for (const [name, schedule] of Object.entries(schedules)) {
          const want = await tx<Array<{ s: Date }>>`
            select s from cesar.schedule_slots_1300(${schedule.cron}, ${schedule.timezone!},
                                                    ${from}, ${to}) s`;
          const got = await tx<Array<{ s: Date }>>`
            select schedule_slot as s from cesar.workflow_executions
            where template_id = ${ids[name]!} order by schedule_slot`;
          expect(got.map((r) => r.s), `${name} ${from}`).toEqual(want.map((r) => r.s));
          total += want.length;
        }
        expect(made!.n).toBe(total);
        // Off for the next weekend's ticks.
        await tx`update cesar.workflow_templates set enabled = false
                 where id in ${tx(Object.values(ids))}`;
      }
    });
  }, 60_000);

  it('after an outage, the first tick catches up as run_schedule does', async () => {
    await withRollback(sql, async (tx) => {
      const latest = await scheduleTemplate(tx, 'outage latest', {
        cron: '0 9 * * *',
        timezone: 'Europe/Berlin',
        catch_up: 'latest',
      }, '2026-06-01T06:00:00Z');
      const all = await scheduleTemplate(tx, 'outage all', {
        cron: '0 9 * * *',
        timezone: 'Europe/Berlin',
        catch_up: 'all',
        catch_up_max: 3,
      }, '2026-06-01T06:00:00Z');
      const none = await scheduleTemplate(tx, 'outage none', {
        cron: '0 9 * * *',
        timezone: 'Europe/Berlin',
      }, '2026-06-01T06:00:00Z');
      const [first] = await tx`select cesar.run_due_schedules('2026-06-05T12:00:00Z') as made`;
      expect(first!.made).toBe(4);
      expect((await slotsRun(tx, latest)).map((s) => s.utc)).toEqual(['2026-06-05 07:00']);
      expect((await slotsRun(tx, all)).map((s) => s.utc)).toEqual([
        '2026-06-03 07:00',
        '2026-06-04 07:00',
        '2026-06-05 07:00',
      ]);
      expect(await slotsRun(tx, none)).toEqual([]);
      // Each is next due at tomorrow's 09:00 Berlin.
      const next = await tx`select next_due_at from cesar.workflow_schedules
                            where template_id in (${latest}, ${all}, ${none})`;
      expect(next.map((r) => r.next_due_at)).toEqual(
        Array(3).fill(new Date('2026-06-06T07:00:00Z')),
      );
    });
  });

  it('one template whose executions cannot be made holds the others up no more than before', async () => {
    await withRollback(sql, async (tx) => {
      const good = await scheduleTemplate(
        tx,
        'good',
        { cron: '* * * * *' },
        '2026-06-01T06:50:00Z',
      );
      // A keyed action create_executions refuses: made one at a time, as 1300 did, it fails
      // alone; made in the tick's batch, it fails the batch, which is then made one at a time.
      const [bad] = await tx<Array<{ id: string }>>`
        insert into cesar.workflow_templates (name, trigger, actions)
        values (${`${tag} bad`}, '{"type": "schedule", "cron": "* * * * *"}',
                ${
        tx.json([{ type: 'enqueue_job', job_type: jobType, payload: {}, mode: 'bogus' }] as never)
      })
        returning id`;
      await tx`update cesar.workflow_schedules set covered_until = '2026-06-01T06:50:00Z'
               where template_id = ${bad!.id}`;
      for (const minute of ['06:51', '06:52']) {
        const [r] = await tx`select cesar.run_due_schedules(${`2026-06-01T${minute}:00Z`}) as made`;
        expect(r!.made, minute).toBe(1);
      }
      expect((await slotsRun(tx, good, 'UTC')).map((s) => s.utc)).toEqual([
        '2026-06-01 06:51',
        '2026-06-01 06:52',
      ]);
      // The failing schedule is as it was: the next tick tries it again.
      const [state] = await tx`select covered_until, next_due_at from cesar.workflow_schedules
                               where template_id = ${bad!.id}`;
      expect(state).toEqual({
        covered_until: new Date('2026-06-01T06:50:00Z'),
        next_due_at: new Date('2026-06-01T06:51:00Z'),
      });
    });
  });

  it('next_due_at: worked out when a schedule is made, moved back or changed; infinity while disabled', async () => {
    await withRollback(sql, async (tx) => {
      const id = await scheduleTemplate(tx, 'next due', {
        cron: '0 9 * * 1',
        timezone: 'Europe/Berlin',
      }, '2026-06-01T08:00:00Z');
      const nextDue = async () =>
        (await tx`select next_due_at from cesar.workflow_schedules where template_id = ${id}`)[0]!
          .next_due_at;
      // Monday 2026-06-01 10:00 Berlin: the next Monday is 7 days off; looked at a day later.
      expect(await nextDue()).toEqual(new Date('2026-06-02T08:00:00Z'));
      await tx`update cesar.workflow_schedules set covered_until = '2026-06-07T08:00:00Z'
               where template_id = ${id}`;
      expect(await nextDue()).toEqual(new Date('2026-06-08T07:00:00Z'));
      // Ticks before it only move covered_until.
      expect(await tick(tx, id, '2026-06-07T08:01:00Z', '2026-06-07T09:00:00Z')).toBe(0);
      expect(await nextDue()).toEqual(new Date('2026-06-08T07:00:00Z'));
      await tx`update cesar.workflow_templates set enabled = false where id = ${id}`;
      const [disabled] = await tx`select next_due_at = 'infinity' as never_due
                                  from cesar.workflow_schedules where template_id = ${id}`;
      expect(disabled!.never_due).toBe(true);
      await tx`update cesar.workflow_templates set enabled = true where id = ${id}`;
      const [now] = await tx`select now() as now`;
      expect((await nextDue()).getTime()).toBeGreaterThan(now!.now.getTime());
      await tx`update cesar.workflow_templates
               set trigger = trigger || '{"cron": "* * * * *"}' where id = ${id}`;
      await tx`update cesar.workflow_schedules set covered_until = '2026-06-07T08:00:30Z'
               where template_id = ${id}`;
      expect(await nextDue()).toEqual(new Date('2026-06-07T08:01:00Z'));
    });
  });
});
