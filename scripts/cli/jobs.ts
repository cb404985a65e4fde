import { type Parsed, single, UsageError } from './args.ts';
import { type Client, EXIT } from './client.ts';
import { columns } from './format.ts';
import type { JobTypeRow, KeyRateLimit } from '../../packages/shared/src/queue/queries.ts';
import type { CommandResult } from './sync.ts';

// `cesar jobs list | types [set] | rate-limit | retry | cancel`: the api function's job routes.

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
  if (action === 'types' && ids[0] === 'set') return await setJobType(client, parsed, ids.slice(1));
  if (action === 'types') {
    const { policies } = await client.call<{ policies: JobTypeRow[] }>('api', '/job-types');
    return { json: { policies }, human: policyTable(policies), exitCode: EXIT.ok };
  }
  if (action === 'rate-limit') return await rateLimit(client, parsed, ids);
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
  throw new UsageError(`jobs ${action}: use list, types, rate-limit, retry or cancel`);
}

/** A type's rate limits: its own (per rate_key, if any) and its keys' own. */
function rateText(p: JobTypeRow): string {
  const parts: string[] = [];
  if (p.rate_limit !== null) {
    parts.push(
      `${p.rate_limit}/${p.rate_period_seconds}s${p.rate_key ? ` per ${p.rate_key}` : ''}`,
    );
  }
  for (const l of p.key_rate_limits ?? []) {
    parts.push(`${p.rate_key}=${l.key}: ${l.rate_limit}/${l.rate_period_seconds}s`);
  }
  return parts.join('; ');
}

function policyTable(policies: JobTypeRow[]): string {
  return columns([
    ['type', 'attempts', 'lease', 'concurrency', 'rate', 'per key'],
    ...policies.map((p) => [
      p.job_type,
      String(p.max_attempts),
      `${p.lease_seconds}s`,
      p.concurrency === null ? '' : String(p.concurrency),
      rateText(p),
      p.key_concurrency === null ? '' : `${p.key_concurrency} per ${p.concurrency_key}`,
    ]),
  ]);
}

/** `--name N`, `--name none` (null: cleared) or absent (undefined: unchanged). */
function numberOption(parsed: Parsed, name: string): number | null | undefined {
  const value = single(parsed, name);
  if (value === undefined || value === 'none') return value === 'none' ? null : undefined;
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n)) {
    throw new UsageError(`--${name} must be a number or none`);
  }
  return n;
}

function textOption(parsed: Parsed, name: string): string | null | undefined {
  const value = single(parsed, name);
  return value === 'none' ? null : value;
}

/** The settings `jobs types set` takes, and the api's field each sets. */
const TYPE_SETTINGS = [
  ['concurrency', 'concurrency', numberOption],
  ['rate-limit', 'rate_limit', numberOption],
  ['rate-period', 'rate_period_seconds', numberOption],
  ['rate-key', 'rate_key', textOption],
  ['key-concurrency', 'key_concurrency', numberOption],
  ['concurrency-key', 'concurrency_key', textOption],
] as const;

/** `jobs types set <type> --rate-limit 10 --rate-period 60 ...`: PATCH /job-types/<type>. */
async function setJobType(client: Client, parsed: Parsed, rest: string[]): Promise<CommandResult> {
  const [type, ...extra] = rest;
  if (!type || extra.length > 0) {
    throw new UsageError(
      'jobs types set needs one job type, e.g. jobs types set agent.task --concurrency 5',
    );
  }
  const patch: Record<string, number | string | null> = {};
  for (const [option, field, read] of TYPE_SETTINGS) {
    const value = read(parsed, option);
    if (value !== undefined) patch[field] = value;
  }
  if (Object.keys(patch).length === 0) {
    throw new UsageError(
      `jobs types set ${type}: give a setting: ${TYPE_SETTINGS.map(([o]) => `--${o}`).join(', ')}`,
    );
  }
  const row = await client.call<JobTypeRow>(
    'api',
    `/job-types/${encodeURIComponent(type)}`,
    patch,
    'PATCH',
  );
  return { json: row, human: policyTable([row]), exitCode: EXIT.ok };
}

/**
 * `jobs rate-limit set <type> <key> --limit N --period S` and `jobs rate-limit delete <type>
 * <key>`: one key's own rate limit (e.g. an http_request action's rate_group).
 */
async function rateLimit(client: Client, parsed: Parsed, rest: string[]): Promise<CommandResult> {
  const [verb, type, key, ...extra] = rest;
  if ((verb !== 'set' && verb !== 'delete') || !type || key === undefined || extra.length > 0) {
    throw new UsageError(
      'jobs rate-limit set <type> <key> --limit N --period SECONDS | jobs rate-limit delete <type> <key>',
    );
  }
  const path = `/job-types/${encodeURIComponent(type)}/rate-limits/${encodeURIComponent(key)}`;
  if (verb === 'delete') {
    const deleted = await client.call<{ deleted: boolean }>('api', path, undefined, 'DELETE');
    return {
      json: deleted,
      human: `${type}: the key ${key} has no rate limit of its own now`,
      exitCode: EXIT.ok,
    };
  }
  const limit = numberOption(parsed, 'limit');
  const period = numberOption(parsed, 'period');
  if (limit == null || period == null) {
    throw new UsageError('jobs rate-limit set needs --limit N and --period SECONDS');
  }
  const saved = await client.call<KeyRateLimit & { job_type: string }>(
    'api',
    path,
    { rate_limit: limit, rate_period_seconds: period },
    'PUT',
  );
  return {
    json: saved,
    human:
      `${type}: at most ${saved.rate_limit} jobs of the key ${saved.key} start in any ${saved.rate_period_seconds}s`,
    exitCode: EXIT.ok,
  };
}
