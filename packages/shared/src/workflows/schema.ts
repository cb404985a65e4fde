import { z } from 'zod';
import {
  outboundSecretName,
  refuseForbiddenHeaders,
  refuseSignatureHeaders,
} from '../http/index.ts';
import { type ActionShorthand, checkKeyFields, keyFields, rateGroup } from '../queue/index.ts';
import { eventOp, identifier } from '../capture/index.ts';
import { compileSafeRegex } from './regex.ts';

// The shapes of workflow templates. Every write through the api function is parsed here; a
// template that does not parse is not saved.

/** `schema.table`; a bare table name means `public.table`. */
export const tableName = z
  .string()
  .regex(/^([a-z_][a-z0-9_]*\.)?[a-z_][a-z0-9_]*$/, 'must be a table name like public.tasks')
  .transform((name) => (name.includes('.') ? name : `public.${name}`));

/** A path into the event: `record.status`, `old_record.metadata.priority`. */
export const fieldPath = z
  .string()
  .regex(
    /^(record|old_record)(\.[A-Za-z_][A-Za-z0-9_]*)+$/,
    'must start with record. or old_record.',
  );

export const comparisonOps = [
  'eq',
  'ne',
  'gt',
  'gte',
  'lt',
  'lte',
  'in',
  'contains',
  'matches',
] as const;
export const presenceOps = ['exists', 'not_exists', 'changed'] as const;

export type Filter =
  | { all: Filter[] }
  | { any: Filter[] }
  | { not: Filter }
  | { field: string; op: (typeof comparisonOps)[number]; value: unknown }
  | { field: string; op: (typeof presenceOps)[number] };

const comparison = z
  .object({ field: fieldPath, op: z.enum(comparisonOps), value: z.unknown() })
  .strict()
  .superRefine((f, ctx) => {
    if (f.value === undefined) {
      ctx.addIssue({ code: 'custom', path: ['value'], message: `op ${f.op} needs a value` });
    }
    if (f.op === 'in' && !Array.isArray(f.value)) {
      ctx.addIssue({ code: 'custom', path: ['value'], message: 'op in needs an array' });
    }
    if (f.op === 'matches') {
      if (typeof f.value !== 'string') {
        ctx.addIssue({
          code: 'custom',
          path: ['value'],
          message: 'op matches needs a regular expression string',
        });
      } else {
        try {
          compileSafeRegex(f.value);
        } catch (err) {
          ctx.addIssue({
            code: 'custom',
            path: ['value'],
            message: `invalid or unsupported regular expression: ${(err as Error).message}`,
          });
        }
      }
    }
    if (
      ['gt', 'gte', 'lt', 'lte'].includes(f.op) && typeof f.value !== 'number' &&
      typeof f.value !== 'string'
    ) {
      ctx.addIssue({
        code: 'custom',
        path: ['value'],
        message: `op ${f.op} needs a number or a string`,
      });
    }
  });

/** Field tests in one template's filter, and `matches` among them (each event runs them all). */
const MAX_FILTER_LEAVES = 50;
const MAX_FILTER_PATTERNS = 5;

function countFilter(filter: Filter | undefined): { leaves: number; patterns: number } {
  const count = { leaves: 0, patterns: 0 };
  const stack = filter ? [filter] : [];
  while (stack.length > 0) {
    const f = stack.pop()!;
    if ('all' in f) stack.push(...f.all);
    else if ('any' in f) stack.push(...f.any);
    else if ('not' in f) stack.push(f.not);
    else {
      count.leaves++;
      if (f.op === 'matches') count.patterns++;
    }
  }
  return count;
}

export const filterSchema: z.ZodType<Filter> = z.lazy(() =>
  z.union([
    z.object({ all: z.array(filterSchema).min(1) }).strict(),
    z.object({ any: z.array(filterSchema).min(1) }).strict(),
    z.object({ not: filterSchema }).strict(),
    z.object({ field: fieldPath, op: z.enum(presenceOps) }).strict(),
    comparison,
  ])
) as z.ZodType<Filter>;

export const cronExpression = z
  .string()
  .trim()
  .regex(/^(\S+\s+){4}\S+$/, 'must be a five-field cron expression, e.g. */15 * * * *')
  .refine(
    (cron) => cron.split(/\s+/).every((f) => /^[\d*,\-/A-Za-z]+$/.test(f)),
    'has an invalid field',
  );

export const databaseEventTrigger = z
  .object({
    type: z.literal('database_event'),
    table: tableName,
    events: z.array(eventOp).min(1).refine(
      (e) => new Set(e).size === e.length,
      'lists an event twice',
    ),
    /** UPDATE only runs when one of these columns changed. */
    columns: z.array(z.string().regex(identifier)).min(1).optional(),
    filter: filterSchema.optional().superRefine((filter, ctx) => {
      const { leaves, patterns } = countFilter(filter);
      if (leaves > MAX_FILTER_LEAVES) {
        ctx.addIssue({
          code: 'custom',
          message: `a filter may test at most ${MAX_FILTER_LEAVES} fields (this one: ${leaves})`,
        });
      }
      if (patterns > MAX_FILTER_PATTERNS) {
        ctx.addIssue({
          code: 'custom',
          message:
            `a filter may hold at most ${MAX_FILTER_PATTERNS} matches (this one: ${patterns})`,
        });
      }
    }),
    /** Run this workflow's jobs for one row one at a time, in the order of its events. */
    ordered: z.boolean().default(false),
  })
  .strict();

/**
 * An IANA time zone name (Europe/Berlin, UTC), as the Intl API and the database both know
 * it. Offsets and POSIX strings ('+01:00', 'EST5') are refused: their clocks do not change.
 */
export const timeZone = z
  .string()
  .regex(
    /^[A-Za-z][A-Za-z0-9_+-]*(\/[A-Za-z0-9_+-]+)*$/,
    { message: 'must be an IANA time zone like Europe/Berlin', abort: true },
  )
  .refine((zone) => {
    try {
      new Intl.DateTimeFormat('en', { timeZone: zone });
      return true;
    } catch {
      return false;
    }
  }, 'is not a known IANA time zone');

export const catchUpPolicies = ['none', 'latest', 'all'] as const;

/**
 * A cron schedule in a time zone (default UTC) with a catch-up policy for slots missed while
 * the database was down: none (default), the latest one, or all of them up to catch_up_max
 * (the latest ones). cesar.schedule_slots says how daylight-saving changes are handled.
 */
export const scheduleTrigger = z
  .object({
    type: z.literal('schedule'),
    cron: cronExpression,
    timezone: timeZone.default('UTC'),
    catch_up: z.enum(catchUpPolicies).default('none'),
    catch_up_max: z.number().int().min(1).max(1000).optional(),
  })
  .strict()
  .superRefine((t, ctx) => {
    if (t.catch_up_max !== undefined && t.catch_up !== 'all') {
      ctx.addIssue({
        code: 'custom',
        path: ['catch_up_max'],
        message: 'only with catch_up all',
      });
    }
  });

export const triggerSchema = z.discriminatedUnion('type', [
  databaseEventTrigger,
  scheduleTrigger,
  z.object({ type: z.literal('manual') }).strict(),
]);
export type Trigger = z.infer<typeof triggerSchema>;

const jobType = z.string().regex(
  /^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$/,
  'must look like agent.task',
);
/** A header value, or the name of an outbound_* setting read when the job runs. */
const headerValue = z.union([
  z.string(),
  z.object({ secret: outboundSecretName, prefix: z.string().optional() }).strict(),
]);

/**
 * An action that names its job type. Which types exist the api checks when a template is saved.
 * With a key (placeholders allowed: `"reindex:{{record.agent_id}}"`) and a mode, its job is
 * enqueued as cesar.enqueue_keyed says (queue/key-modes.ts).
 */
const enqueueJobAction = z.object({
  type: z.literal('enqueue_job'),
  job_type: jobType,
  payload: z.record(z.string(), z.unknown()).default({}),
  ...keyFields,
}).strict().superRefine(checkKeyFields);

const shorthand = <A extends ActionShorthand, S extends z.ZodRawShape>(type: A, fields: S) =>
  z.object({ type: z.literal(type), ...fields }).strict();

/**
 * The actions that make one job type from their own fields (queue/job-types.ts says which
 * type each makes; cesar.action_jobs turns them into jobs). Looser than the job's payload
 * where a placeholder may fill a field: `agent_id: "{{record.agent_id}}"`.
 */
const shorthandActions = {
  agent_task: shorthand('agent_task', {
    title: z.string().min(1).max(500),
    capability: z.string().min(1).optional(),
    agent_id: z.string().min(1).optional(),
    description: z.string().max(10_000).optional(),
    priority: z.number().int().optional(),
    payload: z.record(z.string(), z.unknown()).optional(),
  }),
  sync_table: shorthand('sync_table', {
    /** Absent: every mirrored table. */
    table: tableName.optional(),
    direction: z.enum(['up', 'down', 'both']).default('up'),
  }),
  http_request: shorthand('http_request', {
    url: z.string().regex(/^https?:\/\/\S+$/, 'must be an http(s) URL'),
    method: z.enum(['GET', 'POST', 'PUT', 'PATCH', 'DELETE']).default('POST'),
    headers: z.record(z.string(), headerValue).superRefine(refuseForbiddenHeaders).default({}),
    body: z.unknown().optional(),
    /** An outbound_* setting holding the whsec_ secret(s) the job signs with (Standard Webhooks). */
    sign_with: outboundSecretName.optional(),
    /**
     * The rate limit this request counts against (`partner-x`), shared by every action and
     * job that names it: http.request's limit for that key (cesar.job_rate_limits). A name, no
     * placeholders; none, or a group without a limit: not limited.
     */
    rate_group: rateGroup.optional(),
  }).superRefine(refuseSignatureHeaders),
} satisfies { [A in ActionShorthand]: z.ZodObject<{ type: z.ZodLiteral<A> }> };

export const actionSchema = z.discriminatedUnion('type', [
  enqueueJobAction,
  ...Object.values(shorthandActions),
]);
export type Action = z.infer<typeof actionSchema>;

export const retryPolicySchema = z
  .object({
    max_attempts: z.number().int().min(1).max(100).optional(),
    backoff_base_seconds: z.number().positive().max(86_400).optional(),
    backoff_cap_seconds: z.number().positive().max(7 * 86_400).optional(),
  })
  .strict();

/** A template's fields as given, without defaults: what a PATCH may change. */
const templateFields = {
  name: z.string().trim().min(1).max(200),
  description: z.string().max(2_000).optional(),
  enabled: z.boolean(),
  trigger: triggerSchema,
  actions: z.array(actionSchema).min(1).max(20),
  retry_policy: retryPolicySchema,
};

export const templateInput = z
  .object({
    ...templateFields,
    enabled: templateFields.enabled.default(true),
    retry_policy: templateFields.retry_policy.default({}),
  })
  .strict();
export type TemplateInput = z.infer<typeof templateInput>;

/**
 * A partial update: whatever is given replaces the stored value, and nothing else changes (no
 * defaults fill in what was not given). An empty patch is refused.
 */
export const templatePatch = z.object(templateFields).partial().strict().refine(
  (patch) => Object.keys(patch).length > 0,
  'give at least one field to change',
);

export interface Template {
  id: string;
  name: string;
  description: string | null;
  enabled: boolean;
  trigger: Trigger;
  actions: Action[];
  retry_policy: z.infer<typeof retryPolicySchema>;
  created_at: Date;
  updated_at: Date;
  /** A schedule template's state (cesar.workflow_schedules), on reads; null otherwise. */
  schedule?: { last_slot: string | null; covered_until: string } | null;
}

/** What matching an event reads of a template. */
export type EventTemplate = Pick<
  Template,
  'id' | 'name' | 'enabled' | 'trigger' | 'actions' | 'retry_policy'
>;
