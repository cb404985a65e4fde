import { describe, expect, it } from 'vitest';
import type { Sql } from '../packages/shared/src/db.ts';
import { describeTrigger } from '../scripts/cli/workflows.ts';
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
