import type { Sql } from '../db.ts';

// GET /api/metrics: Prometheus' text exposition format (version 0.0.4). Gauges are queried
// live; counters come from totals that only grow (cesar.job_totals,
// cesar.http_request_totals, and conflicts, which are never deleted).

type Labels = Record<string, string>;

interface Family {
  name: string;
  help: string;
  type: 'gauge' | 'counter' | 'histogram';
  samples: Array<{ suffix?: string; labels: Labels; value: number }>;
}

function escapeLabel(value: string): string {
  return value.replaceAll('\\', '\\\\').replaceAll('"', '\\"').replaceAll('\n', '\\n');
}

function formatValue(value: number): string {
  if (Number.isNaN(value)) return 'NaN';
  if (value === Infinity) return '+Inf';
  if (value === -Infinity) return '-Inf';
  return String(value);
}

export function renderFamilies(families: Family[]): string {
  const lines: string[] = [];
  for (const family of families) {
    lines.push(`# HELP ${family.name} ${family.help}`, `# TYPE ${family.name} ${family.type}`);
    for (const sample of family.samples) {
      const labels = Object.entries(sample.labels)
        .map(([k, v]) => `${k}="${escapeLabel(v)}"`).join(',');
      lines.push(
        `${family.name}${sample.suffix ?? ''}${labels ? `{${labels}}` : ''} ${
          formatValue(sample.value)
        }`,
      );
    }
  }
  return `${lines.join('\n')}\n`;
}

export async function collectMetrics(sql: Sql): Promise<string> {
  const [queue, oldest, totals, events, lag, conflicts, requests, bounds] = await Promise.all([
    sql<Array<{ job_type: string; status: string; jobs: number }>>`
      select job_type, status, count(*)::int as jobs from cesar.job_queue group by 1, 2 order by 1, 2
    `,
    sql<Array<{ job_type: string; seconds: number }>>`
      select job_type, extract(epoch from now() - min(run_at))::float8 as seconds
      from cesar.job_queue where status = 'pending' and run_at <= now() group by 1 order by 1
    `,
    sql<Array<{ job_type: string; completed: string; failed: string }>>`
      select job_type, sum(completed)::text as completed, sum(failed)::text as failed
      from cesar.job_totals group by 1 order by 1
    `,
    sql<Array<{ pending: number; seconds: number | null }>>`
      select pending::int, extract(epoch from now() - oldest)::float8 as seconds
      from cesar.event_backlog()
    `,
    sql<
      Array<
        {
          table_name: string;
          direction: string;
          lag_seconds: string | null;
          dirty_rows: string | null;
        }
      >
    >`select table_name, direction, lag_seconds::text, dirty_rows::text from cesar.sync_lag order by 1, 2`,
    sql<Array<{ table_name: string; conflicts: string }>>`
      select t.table_name, count(c.id)::text as conflicts
      from cesar.sync_tables t left join cesar.sync_conflicts c on c.table_name = t.table_name
      group by 1 order by 1
    `,
    sql<
      Array<
        {
          function_name: string;
          status_class: string;
          requests: string;
          duration_seconds_sum: number;
          buckets: string[];
        }
      >
    >`
      select function_name, status_class, requests::text, duration_seconds_sum, buckets::text[]
      from cesar.http_request_totals order by 1, 2
    `,
    sql<Array<{ bounds: number[] }>>`select cesar.http_duration_buckets() as bounds`,
  ]);

  // The histogram per function: its status classes added up.
  const perFunction = new Map<string, { count: number; sum: number; buckets: number[] }>();
  for (const r of requests) {
    const f = perFunction.get(r.function_name) ??
      { count: 0, sum: 0, buckets: bounds[0]!.bounds.map(() => 0) };
    f.count += Number(r.requests);
    f.sum += r.duration_seconds_sum;
    r.buckets.forEach((b, i) => (f.buckets[i]! += Number(b)));
    perFunction.set(r.function_name, f);
  }

  return renderFamilies([
    {
      name: 'cesar_job_queue_jobs',
      help: 'Jobs in the queue by type and status.',
      type: 'gauge',
      samples: queue.map((q) => ({
        labels: { job_type: q.job_type, status: q.status },
        value: q.jobs,
      })),
    },
    {
      name: 'cesar_job_queue_oldest_pending_seconds',
      help: 'Age of the oldest due pending job by type.',
      type: 'gauge',
      samples: oldest.map((o) => ({
        labels: { job_type: o.job_type },
        value: Math.max(0, o.seconds),
      })),
    },
    {
      name: 'cesar_jobs_completed_total',
      help: 'Jobs completed, by type.',
      type: 'counter',
      samples: totals.map((t) => ({
        labels: { job_type: t.job_type },
        value: Number(t.completed),
      })),
    },
    {
      name: 'cesar_jobs_failed_total',
      help: 'Jobs failed for good (permanent failure or attempts spent), by type.',
      type: 'counter',
      samples: totals.map((t) => ({ labels: { job_type: t.job_type }, value: Number(t.failed) })),
    },
    {
      name: 'cesar_events_pending',
      help: 'Captured events not processed yet.',
      type: 'gauge',
      samples: [{ labels: {}, value: events[0]!.pending }],
    },
    {
      name: 'cesar_events_oldest_pending_seconds',
      help: 'Age of the oldest event not processed yet (0 when none).',
      type: 'gauge',
      samples: [{ labels: {}, value: Math.max(0, events[0]!.seconds ?? 0) }],
    },
    {
      name: 'cesar_sync_lag_seconds',
      help: 'Seconds since the last completed sync of a mirrored table, by direction.',
      type: 'gauge',
      samples: lag.filter((l) => l.lag_seconds !== null).map((l) => ({
        labels: { table: l.table_name, direction: l.direction },
        value: Number(l.lag_seconds),
      })),
    },
    {
      name: 'cesar_sync_dirty_rows',
      help: 'Rows changed on the primary and not pushed to the mirror yet.',
      type: 'gauge',
      samples: lag.filter((l) => l.direction === 'up').map((l) => ({
        labels: { table: l.table_name },
        value: Number(l.dirty_rows ?? 0),
      })),
    },
    {
      name: 'cesar_sync_conflicts_total',
      help: 'Conflicts between primary and mirror decided by last writer wins.',
      type: 'counter',
      samples: conflicts.map((c) => ({
        labels: { table: c.table_name },
        value: Number(c.conflicts),
      })),
    },
    {
      name: 'cesar_http_requests_total',
      help: 'Requests answered by each Edge Function, by status class.',
      type: 'counter',
      samples: requests.map((r) => ({
        labels: { function: r.function_name, status_class: r.status_class },
        value: Number(r.requests),
      })),
    },
    {
      name: 'cesar_http_request_duration_seconds',
      help: 'Time each Edge Function took to answer.',
      type: 'histogram',
      samples: [...perFunction].flatMap(([name, f]) => [
        ...bounds[0]!.bounds.map((le, i) => ({
          suffix: '_bucket',
          labels: { function: name, le: String(le) },
          value: f.buckets[i]!,
        })),
        { suffix: '_bucket', labels: { function: name, le: '+Inf' }, value: f.count },
        { suffix: '_sum', labels: { function: name }, value: f.sum },
        { suffix: '_count', labels: { function: name }, value: f.count },
      ]),
    },
  ]);
}
