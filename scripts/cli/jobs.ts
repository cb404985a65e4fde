import { type Parsed, single, UsageError } from './args.ts';
import { type Client, EXIT } from './client.ts';
import { columns } from './format.ts';
import type { JobTypeRow } from '../../packages/shared/src/queue/queries.ts';
import type { CommandResult } from './sync.ts';

// `cesar jobs list | types | retry | cancel`: the api function's job routes.

interface Job {
  id: string;
  job_type: string;
  status: string;
  attempts: number;
  max_attempts: number;
  last_error: string | null;
  key: string | null;
  key_mode: string | null;
  created_at: string;
  progress: number | null;
  progress_message: string | null;
}

export async function jobsCommand(client: Client, parsed: Parsed): Promise<CommandResult> {
  const [, action = 'list', ...ids] = parsed.positionals;
  if (action === 'list') {
    const query = new URLSearchParams();
    const status = single(parsed, 'status');
    if (status) query.set('status', status);
    const type = single(parsed, 'type');
    if (type) query.set('job_type', type);
    const limit = single(parsed, 'limit');
    if (limit) query.set('limit', limit);
    const { jobs } = await client.call<{ jobs: Job[] }>('api', `/jobs?${query}`);
    return {
      json: { jobs },
      human: columns([
        ['id', 'type', 'status', 'key', 'attempts', 'progress', 'created', 'last error'],
        ...jobs.map((j) => [
          j.id,
          j.job_type,
          j.status,
          j.key === null ? '' : `${j.key} (${j.key_mode})`,
          `${j.attempts}/${j.max_attempts}`,
          j.progress === null
            ? ''
            : `${Math.round(j.progress * 100)}% ${j.progress_message ?? ''}`.trim().slice(0, 40),
          String(j.created_at),
          (j.last_error ?? '').slice(0, 80),
        ]),
      ]),
      exitCode: EXIT.ok,
    };
  }
  if (action === 'types') {
    const { policies } = await client.call<{ policies: JobTypeRow[] }>('api', '/job-types');
    return {
      json: { policies },
      human: columns([
        ['type', 'attempts', 'lease', 'concurrency', 'rate', 'per key'],
        ...policies.map((p) => [
          p.job_type,
          String(p.max_attempts),
          `${p.lease_seconds}s`,
          p.concurrency === null ? '' : String(p.concurrency),
          p.rate_limit === null
            ? ''
            : `${p.rate_limit}/${p.rate_period_seconds}s${p.rate_key ? ` per ${p.rate_key}` : ''}`,
          p.key_concurrency === null ? '' : `${p.key_concurrency} per ${p.concurrency_key}`,
        ]),
      ]),
      exitCode: EXIT.ok,
    };
  }
  if (action === 'retry') {
    const type = single(parsed, 'type');
    if (ids.length === 0 && !type) throw new UsageError('jobs retry needs job ids, or --type T');
    const since = single(parsed, 'since');
    const body = ids.length > 0 ? { ids } : { job_type: type, ...(since ? { since } : {}) };
    const { retried } = await client.call<{ retried: string[] }>('api', '/jobs/retry', body);
    return { json: { retried }, human: `${retried.length} job(s) requeued`, exitCode: EXIT.ok };
  }
  if (action === 'cancel') {
    if (ids.length === 0) throw new UsageError('jobs cancel needs job ids');
    const { cancelled } = await client.call<{ cancelled: string[] }>('api', '/jobs/cancel', {
      ids,
    });
    return {
      json: { cancelled },
      human: `${cancelled.length} job(s) cancelled`,
      exitCode: cancelled.length === ids.length ? EXIT.ok : EXIT.failed,
    };
  }
  throw new UsageError(`jobs ${action}: use list, types, retry or cancel`);
}
