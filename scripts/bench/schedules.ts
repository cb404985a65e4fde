import { connect } from '../lib/database.ts';
import { startScratchDatabase } from '../lib/scratch-database.ts';
import { fmt, percentile } from './stats.ts';

// The schedule tick, cesar.run_due_schedules(as_of) (pg_cron's cesar-workflow-schedules job
// calls it every minute), against the number of schedule templates. A PostgreSQL 15 of its
// own (fsync on, as the stack's), the migrations applied, pg_cron's jobs removed so that the
// only ticks are the bench's; each tick is one statement in its own transaction, timed from
// the client, as_of a parameter (the clock of 20261203001300_cron_timezones.sql).
//
// Templates, in a rotation of ten: every minute (UTC); hourly (UTC, and Asia/Kolkata, whose
// half-hour offset makes it :30 UTC); daily 09:00 in eight zones; weekly, Monday 09:00, in the
// same zones; catch-up none, none, latest, all in turn. Sizes are reached by adding templates
// (10, then 90 more, ...); before each size every schedule is covered up to T0 (a Monday,
// 06:50 UTC, a week later per size) and the ticks are:
//   nothing due   T0 + 10 s ... + 50 s, five ticks in the minute no slot falls in: the median;
//   a minute      06:51 ... 06:59 UTC, the every-minute templates due: the median;
//   07:00 UTC     every minute, UTC hourly, and 09:00 in Europe/Berlin and Africa/Johannesburg
//                 (daily and, a Monday, weekly) due.
// Each due slot is an execution and a job, as on a real tick.

const ZONES = [
  'Europe/Berlin',
  'America/New_York',
  'Asia/Tokyo',
  'Australia/Sydney',
  'Asia/Kolkata',
  'UTC',
  'Africa/Johannesburg',
  'America/Sao_Paulo',
];
const CATCH_UP = ['none', 'none', 'latest', 'all'];

/** The i-th template's schedule trigger. */
export function benchSchedule(i: number): Record<string, unknown> {
  const zone = ZONES[Math.floor(i / 10) % ZONES.length]!;
  const kind = i % 10;
  const [cron, timezone] = kind === 0
    ? ['* * * * *', 'UTC']
    : kind === 1
    ? ['0 * * * *', 'UTC']
    : kind === 2
    ? ['0 * * * *', 'Asia/Kolkata']
    : kind <= 7
    ? ['0 9 * * *', ZONES[(Math.floor(i / 10) + kind) % ZONES.length]!]
    : ['0 9 * * 1', zone];
  const catchUp = CATCH_UP[Math.floor(i / 10) % CATCH_UP.length]!;
  return { type: 'schedule', cron, timezone, catch_up: catchUp };
}

export interface TickFigures {
  templates: number;
  /** Median of five ticks with no slot due. */
  idleMs: number;
  /** Median of nine ticks at 06:51 ... 06:59 UTC (the every-minute templates due). */
  minuteMs: number;
  minuteDue: number;
  /** The tick at 07:00 UTC. */
  hourMs: number;
  hourDue: number;
}

export interface SchedulesBenchResult {
  ticks: TickFigures[];
}

const MINUTE = 60_000;

export async function benchSchedules(
  options: { sizes: number[] },
): Promise<SchedulesBenchResult> {
  const db = await startScratchDatabase('bench schedules', { durable: true });
  const sql = connect(db.url);
  try {
    await sql`select cron.unschedule(jobid) from cron.job`;
    const ticks: TickFigures[] = [];
    let made = 0;
    for (const [k, size] of options.sizes.entries()) {
      await addTemplates(sql, made, size);
      made = size;
      const t0 = Date.parse('2026-06-01T06:50:00Z') + k * 7 * 24 * 60 * MINUTE;
      await sql`update cesar.workflow_schedules set covered_until = ${new Date(t0)}`;
      await sql`vacuum analyze cesar.workflow_schedules`;
      await sql`vacuum analyze cesar.workflow_templates`;
      const tick = async (at: number) => {
        const start = performance.now();
        const [r] = await sql<[{ made: number }]>`
          select cesar.run_due_schedules(${new Date(at)}) as made`;
        return { ms: performance.now() - start, due: r.made };
      };
      const idle = [];
      for (let s = 10; s <= 50; s += 10) idle.push(await tick(t0 + s * 1000));
      const minute = [];
      for (let m = 1; m <= 9; m++) minute.push(await tick(t0 + m * MINUTE));
      const hour = await tick(t0 + 10 * MINUTE);
      ticks.push({
        templates: size,
        idleMs: percentile(idle.map((t) => t.ms), 50),
        minuteMs: percentile(minute.map((t) => t.ms), 50),
        minuteDue: percentile(minute.map((t) => t.due), 50),
        hourMs: hour.ms,
        hourDue: hour.due,
      });
    }
    return { ticks };
  } finally {
    await sql.end();
    await db.remove();
  }
}

/**
 * Templates `from` .. `to` - 1 of the rotation. The template trigger's zone check reads the
 * time zone database (pg_timezone_names, ~35 ms a template): 5,000 would take minutes, so the
 * templates are written with triggers off and their schedule rows inserted after, as the
 * trigger writes them (covered from now on).
 */
async function addTemplates(sql: ReturnType<typeof connect>, from: number, to: number) {
  const triggers = Array.from({ length: to - from }, (_, i) => benchSchedule(from + i));
  await sql.begin(async (tx) => {
    await tx`set local session_replication_role = replica`;
    await tx`
      insert into cesar.workflow_templates (name, trigger, actions)
      select 'bench schedule ' || (${from}::int + n - 1), t,
             '[{"type": "enqueue_job", "job_type": "bench.schedule", "payload": {}}]'
      from jsonb_array_elements(${tx.json(triggers as never)}::jsonb) with ordinality x (t, n)`;
  });
  await sql`
    insert into cesar.workflow_schedules (template_id, covered_until)
    select t.id, now() from cesar.workflow_templates t
    where t.trigger ->> 'type' = 'schedule'
    on conflict (template_id) do nothing`;
}

export function reportSchedules(result: SchedulesBenchResult): string {
  const rows = result.ticks.map((t) =>
    `| ${t.templates.toLocaleString('en-US')} | ${fmt(t.idleMs, 2)} | ${
      fmt((t.idleMs / t.templates) * 100, 2)
    } | ${fmt(t.minuteMs, 2)} (${t.minuteDue}) | ${fmt(t.hourMs, 2)} (${t.hourDue}) |`
  );
  return [
    '### Schedule tick (cesar.run_due_schedules) against the number of schedule templates',
    '',
    '| templates | nothing due, ms | per 100 templates, ms | a minute, ms (due) | 07:00 UTC, ms (due) |',
    '| ---: | ---: | ---: | ---: | ---: |',
    ...rows,
  ].join('\n');
}
