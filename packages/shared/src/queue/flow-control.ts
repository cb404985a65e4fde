import { z } from 'zod';
import type { JobTypePolicy } from './job-types.ts';

// The settings of flow control a job type has in cesar.job_types (caps, rate limits, per-key
// caps: 20261203001600_flow_control.sql) and its keys' own rate limits in
// cesar.job_rate_limits (20261203002100_action_rate_limits.sql), as the api function accepts
// them: what the table's checks would refuse is refused here first, with a message.

/** A job type's name, as cesar.job_types checks it. */
export const jobTypeName = z.string().regex(
  /^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$/,
  'must look like agent.task',
);

/** The payload field a key is read from: 'payload.agent_id', nested 'payload.a.b'. */
export const payloadField = z.string().regex(
  /^payload(\.[A-Za-z0-9_-]+)+$/,
  'must name a payload field like payload.agent_id',
);

/** The longest rate period: a day (the table's check). */
export const MAX_RATE_PERIOD_SECONDS = 86_400;
const count = z.number().int().min(1).max(1_000_000);
const period = z.number().positive().max(MAX_RATE_PERIOD_SECONDS);

/**
 * What PATCH /job-types/:name may change: each field given replaces the stored one (null
 * clears it), the rest stay. The result must hold together (checkFlowSettings).
 */
export const jobTypePatch = z.object({
  /** Jobs of the type running at once across all drains. */
  concurrency: count.nullable(),
  /** Jobs of one rate key that may start in any window of rate_period_seconds. */
  rate_limit: count.nullable(),
  rate_period_seconds: period.nullable(),
  /** Null: one window for the type (its keys' own limits are then ignored: refused). */
  rate_key: payloadField.nullable(),
  /** Jobs of one value of concurrency_key running at once across all drains. */
  key_concurrency: count.nullable(),
  concurrency_key: payloadField.nullable(),
}).partial().strict().refine(
  (patch) => Object.keys(patch).length > 0,
  'give at least one field to change',
);
export type JobTypePatch = z.infer<typeof jobTypePatch>;

/** The flow settings of a type, stored or after a patch. */
export type FlowSettings = Pick<
  JobTypePolicy,
  | 'concurrency'
  | 'rate_limit'
  | 'rate_period_seconds'
  | 'rate_key'
  | 'key_concurrency'
  | 'concurrency_key'
>;

/**
 * The rules between the settings, as issues on the field at fault: a rate limit needs its
 * period, a per-key cap its key, and a type whose keys have their own limits keeps its
 * rate_key (`keyLimits`: how many it has).
 */
export function checkFlowSettings(
  settings: FlowSettings,
  keyLimits: number,
): Array<{ path: string; message: string }> {
  const issues: Array<{ path: string; message: string }> = [];
  if ((settings.rate_limit === null) !== (settings.rate_period_seconds === null)) {
    issues.push(
      settings.rate_limit === null
        ? { path: 'rate_limit', message: 'rate_period_seconds needs a rate_limit' }
        : { path: 'rate_period_seconds', message: 'rate_limit needs rate_period_seconds' },
    );
  }
  if ((settings.key_concurrency === null) !== (settings.concurrency_key === null)) {
    issues.push(
      settings.key_concurrency === null
        ? { path: 'key_concurrency', message: 'concurrency_key needs a key_concurrency' }
        : { path: 'concurrency_key', message: 'key_concurrency needs a concurrency_key' },
    );
  }
  if (settings.rate_key === null && keyLimits > 0) {
    issues.push({
      path: 'rate_key',
      message: `${keyLimits} key(s) have rate limits of their own: delete them first`,
    });
  }
  return issues;
}

/**
 * A value of a rate key, as a URL path segment names it: any text but control characters,
 * at most 200 characters (the table's check).
 */
export const rateKeyValue = z.string().regex(
  // deno-lint-ignore no-control-regex
  /^[^\u0000-\u001f\u007f]{1,200}$/,
  'must be 1 to 200 characters, none of them a control character',
);

/** PUT /job-types/:name/rate-limits/:key: that key's own limit. */
export const keyRateLimitInput = z.object({
  rate_limit: count,
  rate_period_seconds: period,
}).strict();

/**
 * The rate group of an http_request action and its http.request job: the key of
 * http.request's rate limits (payload.rate_group), e.g. one per partner API.
 */
export const rateGroup = z.string().regex(
  /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}$/,
  'must be a name like partner-x: up to 100 letters, digits and _ . : -',
);
