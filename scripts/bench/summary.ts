import type { ApiBenchResult } from './api.ts';
import type { EventsBenchResult } from './events.ts';
import type { QueueBenchResult } from './queue.ts';
import type { SchedulesBenchResult } from './schedules.ts';
import { fmt } from './stats.ts';
import type { SyncBenchResult } from './sync.ts';

// The one table `npm run bench` ends with: each target the issues set for the sections that
// ran, the anchor measured in the same run, the figure, and whether it is met. Targets no
// section measures yet are listed as such, never as met.

interface Row {
  target: string;
  anchor: string;
  figure: string;
  /** null: reported, no target to meet; undefined: not measured. */
  met?: boolean | null;
}

const ratio = (x: number) => `${fmt(x, 2)}x`;

function queueRows(q: QueueBenchResult, jobs: number): Row[] {
  const fast = q.ours.drainJobsPerSec / q.graphileThroughput.drainJobsPerSec;
  const documented = q.ours.drainJobsPerSec / q.graphile.drainJobsPerSec;
  const perInvocation = Math.max(...q.ours.perInvocation.map((i) => i.completed));
  return [
    {
      target: 'drain >= 1.25x graphile-worker for throughput (concurrency 10, localQueue 500)',
      anchor: `${fmt(q.graphileThroughput.drainJobsPerSec, 0)} jobs/s`,
      figure: `${fmt(q.ours.drainJobsPerSec, 0)} jobs/s (${ratio(fast)})`,
      met: fast >= 1.25,
    },
    {
      target: 'drain >= 2x graphile-worker at its documented start (localQueue 11)',
      anchor: `${fmt(q.graphile.drainJobsPerSec, 0)} jobs/s`,
      figure: `${fmt(q.ours.drainJobsPerSec, 0)} jobs/s (${ratio(documented)})`,
      met: documented >= 2,
    },
    {
      target: 'trickle enqueue -> start p50 <= 2x graphile-worker (localQueue 11)',
      anchor: `${fmt(q.graphile.trickleP50, 2)} ms`,
      figure: `${fmt(q.ours.trickleP50, 2)} ms (${
        ratio(q.ours.trickleP50 / q.graphile.trickleP50)
      })`,
      met: q.ours.trickleP50 <= 2 * q.graphile.trickleP50,
    },
    {
      target: 'trickle enqueue -> start p99 < 100 ms',
      anchor: `graphile-worker ${fmt(q.graphile.trickleP99, 2)} ms`,
      figure: `${fmt(q.ours.trickleP99, 2)} ms`,
      met: q.ours.trickleP99 < 100,
    },
    {
      target: 'one job-drain invocation completes >= 10,000 no-op jobs within the 2 s CPU limit',
      anchor: '',
      figure: `${fmt(perInvocation, 0)} jobs in one invocation (${q.ours.invocations} for ${
        jobs.toLocaleString('en-US')
      })`,
      met: perInvocation >= 10_000,
    },
    {
      target: 'job-drain CPU ms per 1,000 jobs (reported)',
      anchor: '',
      figure: fmt(q.ours.cpuMsPer1000, 1),
      met: null,
    },
  ];
}

function eventsRows(e: EventsBenchResult): Row[] {
  const narrow = e.watchedMs / e.unwatchedMs;
  const tasks = e.tasksWatchedMs / e.tasksUnwatchedMs;
  return [
    {
      target: 'capture overhead <= 1.5x (narrow table; copy of public.tasks)',
      anchor: `unwatched ${fmt(e.unwatchedMs, 0)} / ${fmt(e.tasksUnwatchedMs, 0)} ms`,
      figure: `${ratio(narrow)}; ${ratio(tasks)}`,
      met: narrow <= 1.5 && tasks <= 1.5,
    },
    {
      target: 'events matched into executions and jobs >= 5,000/s',
      anchor: '',
      figure: `${fmt(e.processPerSec, 0)}/s`,
      met: e.processPerSec >= 5_000,
    },
    {
      target: 'INSERT commit -> job started p50 <= 25 ms, p99 <= 100 ms (50 writes/s)',
      anchor: '',
      figure: `${fmt(e.latencyP50, 1)} / ${fmt(e.latencyP99, 1)} ms`,
      met: e.latencyP50 <= 25 && e.latencyP99 <= 100,
    },
    {
      target: '<= 20 function invocations per 1,000 write transactions at 200/s, ' +
        'commit -> job p50 <= 25 ms, p99 <= 100 ms',
      anchor: 'Supabase Database Webhooks: 1,000 (one per row)',
      figure: `${fmt(e.sustainedInvocationsPer1000, 0)}; ${fmt(e.sustainedP50, 1)} / ${
        fmt(e.sustainedP99, 1)
      } ms`,
      met: e.sustainedInvocationsPer1000 <= 20 && e.sustainedP50 <= 25 && e.sustainedP99 <= 100,
    },
  ];
}

function syncRows(s: SyncBenchResult): Row[] {
  const copyRate = s.rows / s.copyMs;
  const first = s.rows / s.push.ms / copyRate;
  const changed = s.rows / s.changed.ms / copyRate;
  return [
    {
      target: 'first push >= 1x COPY between the same databases',
      anchor: `COPY ${fmt(s.copyMs, 0)} ms`,
      figure: `${fmt(s.push.ms, 0)} ms (${ratio(first)})`,
      met: first >= 1,
    },
    {
      target: 'push of changed rows >= 0.5x COPY',
      anchor: `COPY ${fmt(s.copyMs, 0)} ms; the mirror's bare UPDATE of every row ${
        fmt(s.updateMs, 0)
      } ms (${ratio(s.copyMs / s.updateMs)})`,
      figure: `${fmt(s.changed.ms, 0)} ms (${ratio(changed)})`,
      met: changed >= 0.5,
    },
  ];
}

function apiRows(a: ApiBenchResult): Row[] {
  const vsBare = a.agents.requestsPerSec / a.bare.requestsPerSec;
  return [
    {
      target: 'GET /api/agents >= 3,000 req/s, p99 <= 50 ms (20 connections)',
      anchor: '',
      figure: `${fmt(a.agents.requestsPerSec, 0)} req/s, p99 ${fmt(a.agents.p99, 1)} ms`,
      met: a.agents.requestsPerSec >= 3_000 && a.agents.p99 <= 50 && a.agents.failures === 0,
    },
    {
      target: 'GET /api/agents >= 0.8x a bare Deno handler running the same SQL',
      anchor: `bare Deno ${fmt(a.bare.requestsPerSec, 0)} req/s`,
      figure: `${fmt(a.agents.requestsPerSec, 0)} req/s (${ratio(vsBare)})`,
      met: vsBare >= 0.8,
    },
    {
      target: 'GET /api/health >= 5,000 req/s',
      anchor: '',
      figure: `${fmt(a.health.requestsPerSec, 0)} req/s, p99 ${fmt(a.health.p99, 1)} ms`,
      met: a.health.requestsPerSec >= 5_000 && a.health.failures === 0,
    },
  ];
}

function schedulesRows(s: SchedulesBenchResult): Row[] {
  const largest = s.ticks[s.ticks.length - 1];
  if (!largest) return [];
  const templates = largest.templates.toLocaleString('en-US');
  const per100 = (largest.idleMs / largest.templates) * 100;
  return [
    {
      target: `schedule tick with nothing due < 1 ms per 100 templates (${templates} templates)`,
      anchor: `${fmt(s.ticks[0]!.idleMs, 2)} ms at ${s.ticks[0]!.templates} templates`,
      figure: `${fmt(largest.idleMs, 2)} ms (${fmt(per100, 3)} ms per 100)`,
      met: per100 < 1,
    },
    {
      target: `schedule tick, ms per due schedule (${templates} templates; reported)`,
      anchor: '',
      figure: `${fmt(largest.minuteMs / largest.minuteDue, 2)} (${largest.minuteDue} due); ${
        fmt(largest.hourMs / largest.hourDue, 2)
      } (${largest.hourDue} due)`,
      met: null,
    },
  ];
}

/** The API's targets when `npm run bench` ran without its api section. */
const NOT_MEASURED: Row[] = [
  {
    target: 'GET /api/agents >= 3,000 req/s, p99 <= 50 ms, >= 0.8x bare Deno',
    anchor: '',
    figure: '',
  },
  { target: 'GET /api/health >= 5,000 req/s', anchor: '', figure: '' },
];

export function reportSummary(results: {
  queue?: { result: QueueBenchResult; jobs: number };
  events?: EventsBenchResult;
  sync?: SyncBenchResult;
  api?: ApiBenchResult;
  schedules?: SchedulesBenchResult;
}): string {
  const rows = [
    ...(results.queue ? queueRows(results.queue.result, results.queue.jobs) : []),
    ...(results.events ? eventsRows(results.events) : []),
    ...(results.sync ? syncRows(results.sync) : []),
    ...(results.api ? apiRows(results.api) : NOT_MEASURED),
    ...(results.schedules ? schedulesRows(results.schedules) : []),
  ];
  const verdict = (met: boolean | null | undefined) =>
    met === undefined ? 'not measured yet' : met === null ? 'reported' : met ? 'met' : 'NOT met';
  return [
    '### Summary: targets, anchors measured in this run, figures',
    '',
    '| target | anchor (this run) | figure | |',
    '| --- | --- | --- | --- |',
    ...rows.map((r) => `| ${r.target} | ${r.anchor} | ${r.figure} | ${verdict(r.met)} |`),
  ].join('\n');
}
