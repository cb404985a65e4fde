import type { Sql } from '../db.ts';
import type { FailureKind } from './errors.ts';
import { checkFlowSettings, type FlowSettings, type JobTypePatch } from './flow-control.ts';
import type { KeyMode } from './key-modes.ts';
import type { JobTypePolicy } from './job-types.ts';
import type { JobOutcome } from './outcome.ts';

// The queue's runtime statements, one function each. Claiming lives in SQL
// (cesar.claim_jobs, see its migration for the locking argument); outcomes are recorded here
// a batch at a time, and only by the holder of the attempt that ran: the worker (locked_by,
// unique per drain call) and the attempt number together are the fencing token, so a drain
// whose lease expired cannot overwrite the drain that took over.
//
// Where outcomes are decided: a handler's failure in decideOutcome (outcome.ts), which these
// statements only apply; a lease that expired with its handler started, by the claim alone
// (SQL). Both take "attempts left" from cesar.job_attempts_left.

export interface ClaimedJob {
  id: string;
  job_type: string;
  payload: Record<string, unknown>;
  attempts: number;
  max_attempts: number;
  priority: number;
  run_at: Date;
  created_at: Date;
  locked_until: Date;
  backoff_base_seconds: number;
  backoff_cap_seconds: number;
  lease_seconds: number;
  /** Charged and started by the claim; false: leased only, to be started with startJobs. */
  started: boolean;
  /**
   * Whether a failure of the started attempt may retry (cesar.job_attempts_left, the one
   * statement of the max_attempts rule); meaningful once started.
   */
  attempts_left: boolean;
}

export async function claimJobs(
  sql: Sql,
  options: {
    worker: string;
    batchSize: number;
    jobTypes?: string[] | null;
    defaultLeaseSeconds?: number;
    /** How many of the claimed jobs start now (all when not given). */
    start?: number;
  },
): Promise<ClaimedJob[]> {
  const rows = await sql<ClaimedJob[]>`
    select * from cesar.claim_jobs(${options.worker}, ${options.batchSize},
                                   ${options.jobTypes ?? null}::text[], ${
    options.defaultLeaseSeconds ?? 60
  }, ${options.start ?? null}::int)
  `;
  return rows.map((row) => ({
    ...row,
    backoff_base_seconds: Number(row.backoff_base_seconds),
    backoff_cap_seconds: Number(row.backoff_cap_seconds),
  }));
}

/**
 * Starts jobs this worker claimed without starting: charges their attempt and renews their
 * lease. Returns them with their new attempt number and lease; a job cancelled or taken over
 * meanwhile is left out.
 */
export async function startJobs(
  sql: Sql,
  worker: string,
  jobs: ClaimedJob[],
): Promise<ClaimedJob[]> {
  if (jobs.length === 0) return [];
  const rows = await sql<
    Array<{ id: string; attempts: number; locked_until: Date; attempts_left: boolean }>
  >`
    select * from cesar.start_jobs(${worker}, ${jobs.map((j) => j.id)}::bigint[],
                                   ${jobs.map((j) => j.lease_seconds)}::int[])
  `;
  const byId = new Map(rows.map((r) => [r.id, r]));
  return jobs.flatMap((job) => {
    const row = byId.get(job.id);
    return row
      ? [{
        ...job,
        attempts: row.attempts,
        locked_until: row.locked_until,
        attempts_left: row.attempts_left,
        started: true,
      }]
      : [];
  });
}

export interface Completion {
  id: string;
  attempt: number;
  result: unknown;
}

/** Marks jobs completed (cesar.complete_jobs); returns the ids whose lease was still this worker's. */
export async function completeJobs(
  sql: Sql,
  worker: string,
  completions: Completion[],
): Promise<string[]> {
  if (completions.length === 0) return [];
  const rows = await sql<Array<{ id: string }>>`
    select id from cesar.complete_jobs(${worker}, ${sql.json(completionRows(completions) as never)})
  `;
  return rows.map((r) => r.id);
}

/**
 * A failed attempt and its decided outcome (decideOutcome, outcome.ts), or a job the drain
 * stopped because it was cancelled while running.
 */
export type Failure = {
  id: string;
  attempt: number;
  kind: FailureKind;
  error: string;
} & (JobOutcome | { status: 'cancelled' });

/** What the drain says of a running job when it renews its lease (cesar.renew_leases). */
export interface LeaseRenewal {
  id: string;
  attempt: number;
  lease_seconds: number;
  /** Renew whatever is left of the lease (ctx.heartbeat()). */
  force: boolean;
  /** Progress reported since the last renewal; null: none. */
  progress: number | null;
  message: string | null;
}

/**
 * Renews this worker's leases of running jobs, writes the progress their handlers reported,
 * and answers, per job, whether the worker still holds it and whether its cancel was
 * requested (cesar.renew_leases; one statement for all of a drain's long-running jobs).
 */
export async function renewLeases(
  sql: Sql,
  worker: string,
  leases: LeaseRenewal[],
): Promise<Array<{ id: string; held: boolean; cancel_requested: boolean }>> {
  if (leases.length === 0) return [];
  return await sql<Array<{ id: string; held: boolean; cancel_requested: boolean }>>`
    select id::text, held, cancel_requested
    from cesar.renew_leases(${worker}, ${sql.json(leases as never)})
  `;
}

/**
 * Records failed attempts as decided (cesar.fail_jobs): back to pending at runAt, or failed
 * for good, out of the claim path. Nothing is decided here; the statement applies each outcome
 * to the job only if this worker still holds the attempt (a job whose cancel was requested
 * ends cancelled whatever the drain decided), and appends the failure to the
 * job's error history (cesar.job_error_entry). Returns what became of each job this worker
 * still held.
 */
export async function failJobs(
  sql: Sql,
  worker: string,
  failures: Failure[],
): Promise<Array<{ id: string; status: 'pending' | 'failed' | 'cancelled' }>> {
  if (failures.length === 0) return [];
  return await sql<Array<{ id: string; status: 'pending' | 'failed' | 'cancelled' }>>`
    select id, status from cesar.fail_jobs(${worker}, ${sql.json(failureRows(failures) as never)})
  `;
}

const completionRows = (completions: Completion[]) =>
  completions.map((c) => ({ id: c.id, attempt: c.attempt, result: c.result ?? null }));

const failureRows = (failures: Failure[]) =>
  failures.map((f) => ({
    id: f.id,
    attempt: f.attempt,
    kind: f.kind,
    error: f.error,
    status: f.status,
    run_at: f.status === 'pending' ? f.runAt.toISOString() : null,
  }));

/** What finishAndClaim recorded and claimed. */
export interface FinishAndClaim {
  /** Outcomes recorded; the others were superseded (cancelled or taken over meanwhile). */
  completed: number;
  failed: number;
  retried: number;
  /** Jobs stopped because they were cancelled, recorded so. */
  cancelled: number;
  jobs: ClaimedJob[];
}

/**
 * Records finished jobs' outcomes and claims the next batch in one statement
 * (cesar.finish_and_claim): one round trip per batch. The claim's options are claimJobs's.
 */
export async function finishAndClaim(
  sql: Sql,
  options: {
    worker: string;
    completions: Completion[];
    failures: Failure[];
    batchSize: number;
    jobTypes?: string[] | null;
    defaultLeaseSeconds?: number;
    start?: number;
  },
): Promise<FinishAndClaim> {
  const [row] = await sql<Array<{ step: RawStep }>>`
    select cesar.finish_and_claim(${options.worker},
      ${sql.json(completionRows(options.completions) as never)},
      ${sql.json(failureRows(options.failures) as never)},
      ${options.batchSize}, ${options.jobTypes ?? null}::text[],
      ${options.defaultLeaseSeconds ?? 60}, ${options.start ?? null}::int) as step
  `;
  return fromRawStep(row!.step);
}

/**
 * Waits up to `timeoutMs` for due jobs and claims them in the same round trip
 * (cesar.await_jobs): null when none came; otherwise the claim, which may hold no job when
 * the due work could not be taken (a cap, a serial key). The claim's options are claimJobs's.
 */
export async function awaitJobs(
  sql: Sql,
  options: {
    worker: string;
    batchSize: number;
    jobTypes?: string[] | null;
    defaultLeaseSeconds?: number;
    start: number;
    timeoutMs: number;
  },
): Promise<FinishAndClaim | null> {
  const jobTypes = options.jobTypes ?? null;
  const leaseSeconds = options.defaultLeaseSeconds ?? 60;
  const timeoutMs = Math.max(0, Math.round(options.timeoutMs));
  const [row] = await sql<Array<{ step: RawStep | null }>>`
    call cesar.await_jobs(${options.worker}, ${options.batchSize}, ${jobTypes}::text[],
                          ${leaseSeconds}, ${options.start}, ${timeoutMs}, null)`;
  return row!.step && fromRawStep(row!.step);
}

// cesar.finish_and_claim's answer as JSON: its jobs are RawJobs.
type RawStep = Omit<FinishAndClaim, 'jobs'> & { jobs: RawJob[] };

function fromRawStep(step: RawStep): FinishAndClaim {
  return { ...step, jobs: step.jobs.map(fromJson) };
}

// A claimed job as JSON (a claim_jobs row, its id as text): timestamps are strings there;
// made into what claimJobs returns.
type RawJob = Omit<ClaimedJob, 'run_at' | 'created_at' | 'locked_until'> & {
  run_at: string;
  created_at: string;
  locked_until: string;
};

function fromJson(raw: RawJob): ClaimedJob {
  return {
    id: raw.id,
    job_type: raw.job_type,
    payload: raw.payload,
    attempts: raw.attempts,
    max_attempts: raw.max_attempts,
    priority: raw.priority,
    run_at: new Date(raw.run_at),
    created_at: new Date(raw.created_at),
    locked_until: new Date(raw.locked_until),
    backoff_base_seconds: Number(raw.backoff_base_seconds),
    backoff_cap_seconds: Number(raw.backoff_cap_seconds),
    lease_seconds: raw.lease_seconds,
    started: raw.started,
    attempts_left: raw.attempts_left,
  };
}

export interface EnqueueOptions {
  runAt?: Date;
  priority?: number;
  maxAttempts?: number;
  dedupKey?: string;
  /** A key with a mode (keep when not given); not with dedupKey. */
  key?: string;
  mode?: KeyMode;
  /** debounce: the job runs this long after the last enqueue (with a key and its mode only). */
  delaySeconds?: number;
  /** unique_for: at most one job per key in this long (with a key and its mode only). */
  periodSeconds?: number;
}

/**
 * Enqueues one job; returns its id, or the id of the job that took the enqueue: the
 * unfinished job with the same dedup key (keep), or the job the key's mode kept, replaced,
 * debounced or found within its window.
 */
export async function enqueueJob(
  sql: Sql,
  jobType: string,
  payload: Record<string, unknown> = {},
  options: EnqueueOptions = {},
): Promise<string> {
  const [row] = await sql<Array<{ id: string }>>`
    select cesar.enqueue(${jobType}, ${sql.json(payload as never)}, ${options.runAt ?? null},
                         ${options.priority ?? 0}, ${options.maxAttempts ?? null}, ${
    options.dedupKey ?? null
  }, key => ${options.key ?? null}, mode => ${options.mode ?? null},
                         delay => ${options.delaySeconds ?? null}::float8 * interval '1 second',
                         period => ${
    options.periodSeconds ?? null
  }::float8 * interval '1 second') as id
  `;
  return row!.id;
}

export interface NewJob {
  job_type: string;
  payload?: Record<string, unknown>;
  run_at?: string;
  priority?: number;
  max_attempts?: number;
  dedup_key?: string;
  key?: string;
  mode?: KeyMode;
  delay_seconds?: number;
  period_seconds?: number;
}

/** Enqueues many jobs in one statement; returns how many were inserted (dedup skips the rest). */
export async function enqueueJobs(sql: Sql, jobs: NewJob[]): Promise<number> {
  const [row] = await sql<Array<{ inserted: number }>>`
    select cesar.enqueue_many(${sql.json(jobs as never)}) as inserted
  `;
  return row!.inserted;
}

/**
 * The continuation of a drain that stopped at a budget: rings the job-drain doorbell when
 * due jobs are left (pending and due, or leased by a drain whose lease ran out), so that the
 * next invocation starts now rather than at the next tick. One drain rings at most once, and
 * a drain that finds nothing rings nothing: a chain of continuations never fans out and ends
 * with the work. Returns whether the doorbell rang (not without its URL or pg_net: then the
 * tick carries on).
 */
export async function ringIfJobsDue(sql: Sql, jobTypes: string[] | null): Promise<boolean> {
  const [row] = await sql<Array<{ rang: boolean }>>`
    select coalesce((select cesar.ring_doorbell('job-drain') where exists (
      select from cesar.job_queue q
      where ((q.status = 'pending' and q.run_at <= now())
             or (q.status = 'running' and q.locked_until < now()))
        and (${jobTypes}::text[] is null or q.job_type = any (${jobTypes}::text[]))
    )), false) as rang
  `;
  return row!.rang;
}

/** A key's own rate limit (cesar.job_rate_limits), in place of its type's. */
export interface KeyRateLimit {
  /** The value of the type's rate_key: 'partner-x' of payload.rate_group. */
  key: string;
  rate_limit: number;
  rate_period_seconds: number;
}

/**
 * A job type's row in cesar.job_types: its policy (job-types.ts seeds the built-in ones), and
 * its keys' own rate limits.
 */
export type JobTypeRow = { job_type: string } & JobTypePolicy & {
  key_rate_limits: KeyRateLimit[];
};

/**
 * Every job type's policy as the database holds it (GET /api/job-types, `cesar jobs types`):
 * caps, rate limits, per-key caps and per-key rate limits. One type's with `jobType`.
 */
export async function listJobTypePolicies(sql: Sql, jobType?: string): Promise<JobTypeRow[]> {
  return await sql<JobTypeRow[]>`
    select job_type, max_attempts, backoff_base_seconds::float8 as backoff_base_seconds,
           backoff_cap_seconds::float8 as backoff_cap_seconds, concurrency, lease_seconds,
           rate_limit, rate_period_seconds::float8 as rate_period_seconds, rate_key,
           concurrency_key, key_concurrency,
           coalesce((select json_agg(json_build_object(
                              'key', l.key_value, 'rate_limit', l.rate_limit,
                              'rate_period_seconds', l.rate_period_seconds::float8)
                            order by l.key_value)
                     from cesar.job_rate_limits l where l.job_type = t.job_type),
                    '[]') as key_rate_limits
    from cesar.job_types t
    where ${jobType ?? null}::text is null or job_type = ${jobType ?? null}
    order by job_type`;
}

const NO_FLOW: FlowSettings = {
  concurrency: null,
  rate_limit: null,
  rate_period_seconds: null,
  rate_key: null,
  key_concurrency: null,
  concurrency_key: null,
};

/**
 * Changes a type's flow settings (PATCH /api/job-types/:name): the fields given, the others
 * kept. A type without a row gets one (with the table's defaults) when `create`, else the
 * answer is 'unknown'. Settings that do not hold together (checkFlowSettings) write nothing
 * and come back as issues. The row is locked meanwhile, so that a key's limit is not added
 * (putKeyRateLimit) while its rate_key is cleared.
 */
export async function updateJobTypeFlow(
  sql: Sql,
  jobType: string,
  patch: JobTypePatch,
  create: boolean,
): Promise<
  | { row: JobTypeRow }
  | { issues: Array<{ path: string; message: string }> }
  | 'unknown'
> {
  return await sql.begin(async (tx) => {
    const [current] = await tx<FlowSettings[]>`
      select concurrency, rate_limit, rate_period_seconds::float8 as rate_period_seconds,
             rate_key, key_concurrency, concurrency_key
      from cesar.job_types where job_type = ${jobType} for update`;
    if (!current && !create) return 'unknown' as const;
    const [{ n: keyLimits }] = await tx<[{ n: number }]>`
      select count(*)::int as n from cesar.job_rate_limits where job_type = ${jobType}`;
    const next: FlowSettings = { ...(current ?? NO_FLOW), ...patch };
    const issues = checkFlowSettings(next, keyLimits);
    if (issues.length > 0) return { issues };
    await tx`
      insert into cesar.job_types (job_type, concurrency, rate_limit, rate_period_seconds,
                                   rate_key, key_concurrency, concurrency_key)
      values (${jobType}, ${next.concurrency}, ${next.rate_limit}, ${next.rate_period_seconds},
              ${next.rate_key}, ${next.key_concurrency}, ${next.concurrency_key})
      on conflict (job_type) do update
      set concurrency = excluded.concurrency, rate_limit = excluded.rate_limit,
          rate_period_seconds = excluded.rate_period_seconds, rate_key = excluded.rate_key,
          key_concurrency = excluded.key_concurrency, concurrency_key = excluded.concurrency_key`;
    const [row] = await listJobTypePolicies(tx as unknown as Sql, jobType);
    return { row: row! };
  });
}

/**
 * Sets one key's own rate limit (PUT /api/job-types/:name/rate-limits/:key). 'unknown': no
 * such type; 'no rate key': the type has no rate_key, so no job of it has a key.
 */
export async function putKeyRateLimit(
  sql: Sql,
  jobType: string,
  limit: KeyRateLimit,
): Promise<KeyRateLimit | 'unknown' | 'no rate key'> {
  return await sql.begin(async (tx) => {
    // Shared: a concurrent PATCH (for update) that would clear the rate_key waits.
    const [type] = await tx<Array<{ rate_key: string | null }>>`
      select rate_key from cesar.job_types where job_type = ${jobType} for share`;
    if (!type) return 'unknown' as const;
    if (type.rate_key === null) return 'no rate key' as const;
    const [row] = await tx<KeyRateLimit[]>`
      insert into cesar.job_rate_limits (job_type, key_value, rate_limit, rate_period_seconds)
      values (${jobType}, ${limit.key}, ${limit.rate_limit}, ${limit.rate_period_seconds})
      on conflict (job_type, key_value) do update
      set rate_limit = excluded.rate_limit, rate_period_seconds = excluded.rate_period_seconds
      returning key_value as key, rate_limit, rate_period_seconds::float8 as rate_period_seconds`;
    return row!;
  });
}

/** Removes one key's own rate limit; false when it had none. */
export async function deleteKeyRateLimit(sql: Sql, jobType: string, key: string): Promise<boolean> {
  const rows = await sql`
    delete from cesar.job_rate_limits where job_type = ${jobType} and key_value = ${key}
    returning 1`;
  return rows.length > 0;
}
