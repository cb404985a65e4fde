import { z } from 'zod';

// Keyed enqueues (cesar.enqueue_keyed): what a second enqueue with the same key does. The
// fields and their rules, for every writer that takes them as JSON: POST /api/jobs and
// templates' enqueue_job action. A mode's own field is required with it and refused
// without it, so a misplaced field is a 400, never silently ignored.

export const KEY_MODES = ['keep', 'replace', 'debounce', 'unique_for'] as const;
export type KeyMode = (typeof KEY_MODES)[number];

export const keyFields = {
  key: z.string().min(1).max(500).optional(),
  /** keep when a key is given without one. */
  mode: z.enum(KEY_MODES).optional(),
  /** debounce: the job runs this long after the last enqueue (at most a day). */
  delay_seconds: z.number().positive().max(86_400).optional(),
  /** unique_for: at most one job per key in this long (at most a year). */
  period_seconds: z.number().positive().max(366 * 86_400).optional(),
};

interface KeyedInput {
  key?: string;
  mode?: KeyMode;
  delay_seconds?: number;
  period_seconds?: number;
  run_at?: string;
}

/** The rules between the key fields, as issues on the field at fault. */
export function checkKeyFields(input: KeyedInput, ctx: z.RefinementCtx) {
  const issue = (path: string, message: string) =>
    ctx.addIssue({ code: 'custom', path: [path], message });
  if (input.mode !== undefined && input.key === undefined) {
    issue('key', `mode ${input.mode} needs a key`);
  }
  if (input.mode === 'debounce' && input.delay_seconds === undefined) {
    issue('delay_seconds', 'mode debounce needs delay_seconds');
  }
  if (input.mode === 'debounce' && input.run_at !== undefined) {
    issue('run_at', 'mode debounce sets run_at itself (now + delay_seconds)');
  }
  if (input.delay_seconds !== undefined && input.mode !== 'debounce') {
    issue('delay_seconds', 'delay_seconds is for mode debounce only');
  }
  if (input.mode === 'unique_for' && input.period_seconds === undefined) {
    issue('period_seconds', 'mode unique_for needs period_seconds');
  }
  if (input.period_seconds !== undefined && input.mode !== 'unique_for') {
    issue('period_seconds', 'period_seconds is for mode unique_for only');
  }
}
