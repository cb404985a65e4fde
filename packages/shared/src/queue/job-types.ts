// The job types: the one list. The handler map (handlers/index.ts) is typed by it, so a type
// without a handler, or a handler without a type, does not compile; the template actions
// that name a job type by shorthand (workflows/schema.ts) come from it. The database keeps
// two copies it cannot import: the rows the migrations seed into cesar.job_types (the policy
// below) and cesar.action_jobs (the shorthands); tests/job-types.test.ts fails when either
// differs from this list. A new type: add it here, seed its row in a new migration, write
// its handler.

/** A job type's row in cesar.job_types (see the job queue's migration for each column). */
export interface JobTypePolicy {
  max_attempts: number;
  backoff_base_seconds: number;
  backoff_cap_seconds: number;
  /** Jobs of this type running at once across all drains; null: no cap. 1: a singleton. */
  concurrency: number | null;
  lease_seconds: number;
  /**
   * Jobs of one key (rate_key) that may start in any window of rate_period_seconds (a
   * sliding window, across all drains); null: no rate limit. Jobs over it wait, pending.
   */
  rate_limit: number | null;
  rate_period_seconds: number | null;
  /**
   * The payload field keying the rate limit ('payload.agent_id'); null: one for the type. A
   * key may have a limit of its own (cesar.job_rate_limits); with a rate_key and no
   * rate_limit, only such keys are limited.
   */
  rate_key: string | null;
  /** The payload field keying key_concurrency ('payload.tenant_id'). */
  concurrency_key: string | null;
  /** Jobs of one concurrency_key running at once across all drains; null: no per-key cap. */
  key_concurrency: number | null;
}

export interface JobTypeSpec {
  policy: JobTypePolicy;
  /**
   * The template action that makes a job of this type from its own fields (an `agent_task`
   * action is an `agent.task` job); every type can be made by `enqueue_job`.
   */
  action?: string;
}

const policy = (
  max_attempts: number,
  backoff_base_seconds: number,
  backoff_cap_seconds: number,
  concurrency: number | null,
  lease_seconds: number,
): JobTypePolicy => ({
  max_attempts,
  backoff_base_seconds,
  backoff_cap_seconds,
  concurrency,
  lease_seconds,
  // No built-in type is rate-limited or capped per key (see the flow control migration);
  // http.request has a rate_key (below).
  rate_limit: null,
  rate_period_seconds: null,
  rate_key: null,
  concurrency_key: null,
  key_concurrency: null,
});

export const jobTypes = {
  'a2a.route': { policy: policy(5, 10, 600, null, 30) },
  'agent.task': { policy: policy(5, 30, 1800, null, 30), action: 'agent_task' },
  'financial.daily_analysis': { policy: policy(5, 300, 3600, 1, 120) },
  'http.request': {
    // Keyed by the action's rate_group, with no limit of its own: only the groups given a
    // limit (cesar.job_rate_limits, 20261203002100_action_rate_limits.sql) are limited.
    policy: { ...policy(5, 30, 3600, null, 60), rate_key: 'payload.rate_group' },
    action: 'http_request',
  },
  'knowledge_graph.update': { policy: policy(5, 300, 3600, 1, 120) },
  'llm_cache.refresh': { policy: policy(5, 300, 3600, 1, 120) },
  'maintenance.prune': { policy: policy(5, 300, 3600, 1, 120) },
  'memory.consolidate': { policy: policy(5, 300, 3600, 1, 120) },
  'monitoring.refresh': { policy: policy(3, 30, 300, 1, 60) },
  'sync.table': { policy: policy(5, 60, 1800, null, 120), action: 'sync_table' },
  'system.noop': { policy: policy(5, 1, 60, null, 30) },
  'task.assign': { policy: policy(5, 30, 1800, null, 30) },
} as const satisfies Record<string, JobTypeSpec>;

export type JobTypeName = keyof typeof jobTypes;
export const jobTypeNames = Object.keys(jobTypes) as JobTypeName[];

type ActionOf<T extends JobTypeName> = (typeof jobTypes)[T] extends { action: infer A } ? A
  : never;
/** The shorthand actions: `agent_task`, `sync_table`, `http_request`. */
export type ActionShorthand = { [T in JobTypeName]: ActionOf<T> }[JobTypeName];

/** Each shorthand action and the job type it makes. */
export const actionJobTypes = Object.fromEntries(
  Object.entries(jobTypes).flatMap(([name, spec]) => 'action' in spec ? [[spec.action, name]] : []),
) as Record<ActionShorthand, JobTypeName>;
