import { patternMatches } from './regex.ts';
import type { ChangeEvent } from '../capture/index.ts';
import type { Action, EventTemplate, Filter } from './schema.ts';

// Pure: which templates an event runs, and their actions filled from the event.

function lookup(event: ChangeEvent, path: string): unknown {
  const [root, ...keys] = path.split('.');
  let value: unknown = root === 'record'
    ? event.record
    : root === 'old_record'
    ? event.old_record
    : undefined;
  for (const key of keys) {
    if (value === null || typeof value !== 'object') return undefined;
    value = (value as Record<string, unknown>)[key];
  }
  return value;
}

function equal(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a === 'number' && typeof b === 'string') return a === Number(b) && b.trim() !== '';
  if (typeof a === 'string' && typeof b === 'number') return equal(b, a);
  return JSON.stringify(a) === JSON.stringify(b);
}

/** Numbers compare as numbers; strings (ISO timestamps among them) compare as strings. */
function compare(a: unknown, b: unknown): number | null {
  if (typeof a === 'number' && typeof b === 'number') return a - b;
  if (
    typeof a === 'string' && typeof b === 'number' && a.trim() !== '' && !Number.isNaN(Number(a))
  ) return Number(a) - b;
  if (typeof a === 'string' && typeof b === 'string') return a < b ? -1 : a > b ? 1 : 0;
  return null;
}

/**
 * Evaluates a filter against an event. A missing field is null; comparisons with null are
 * false. A `matches` that cannot be decided (a value past the matcher's length, a pattern it
 * refuses) is unknown, and an unknown filter does not match: `not` cannot turn it into a yes.
 */
export function evaluateFilter(filter: Filter, event: ChangeEvent): boolean {
  return evaluate(filter, event) === true;
}

/** Three-valued: true, false, or null for unknown (Kleene's logic, as SQL's). */
function evaluate(filter: Filter, event: ChangeEvent): boolean | null {
  if ('all' in filter) {
    const values = filter.all.map((f) => evaluate(f, event));
    return values.includes(false) ? false : values.includes(null) ? null : true;
  }
  if ('any' in filter) {
    const values = filter.any.map((f) => evaluate(f, event));
    return values.includes(true) ? true : values.includes(null) ? null : false;
  }
  if ('not' in filter) {
    const value = evaluate(filter.not, event);
    return value === null ? null : !value;
  }
  const actual = lookup(event, filter.field);
  switch (filter.op) {
    case 'exists':
      return actual !== undefined && actual !== null;
    case 'not_exists':
      return actual === undefined || actual === null;
    case 'changed': {
      const other = filter.field.startsWith('record.')
        ? `old_record.${filter.field.slice('record.'.length)}`
        : `record.${filter.field.slice('old_record.'.length)}`;
      return event.op === 'UPDATE' && !equal(actual ?? null, lookup(event, other) ?? null);
    }
    case 'eq':
      return equal(actual ?? null, filter.value);
    case 'ne':
      return !equal(actual ?? null, filter.value);
    case 'in':
      return Array.isArray(filter.value) && filter.value.some((v) => equal(actual ?? null, v));
    case 'contains':
      if (typeof actual === 'string') {
        return typeof filter.value === 'string' && actual.includes(filter.value);
      }
      if (Array.isArray(actual)) return actual.some((v) => equal(v, filter.value));
      return false;
    case 'matches':
      return typeof actual === 'string' && patternMatches(filter.value as string, actual);
    case 'gt':
    case 'gte':
    case 'lt':
    case 'lte': {
      const c = compare(actual, filter.value);
      if (c === null) return false;
      return filter.op === 'gt'
        ? c > 0
        : filter.op === 'gte'
        ? c >= 0
        : filter.op === 'lt'
        ? c < 0
        : c <= 0;
    }
  }
}

/** The enabled database-event templates that this event runs, in name order. */
export function matchTemplates<T extends EventTemplate>(
  event: ChangeEvent,
  templates: readonly T[],
): T[] {
  const table = `${event.schema_name}.${event.table_name}`;
  return templates
    .filter((t) => {
      const trigger = t.trigger;
      if (!t.enabled || trigger.type !== 'database_event') return false;
      if (trigger.table !== table || !trigger.events.includes(event.op)) return false;
      if (event.op === 'UPDATE' && trigger.columns) {
        const changed = new Set(event.changed_columns ?? []);
        if (!trigger.columns.some((c) => changed.has(c))) return false;
      }
      return trigger.filter ? evaluateFilter(trigger.filter, event) : true;
    })
    .sort((a, b) => a.name.localeCompare(b.name));
}

const PLACEHOLDER = /\{\{\s*([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)\s*\}\}/g;

/**
 * Fills `{{record.id}}`-style placeholders from the event: a string that is exactly one
 * placeholder takes the value with its type; placeholders inside longer strings are
 * replaced by the value's text (empty when missing). Paths: record.*, old_record.*,
 * event.id, event.table, event.schema, event.op, event.occurred_at.
 */
export function renderActions(actions: readonly Action[], event: ChangeEvent): Action[] {
  const context = (path: string): unknown => {
    if (path.startsWith('record.') || path.startsWith('old_record.')) return lookup(event, path);
    const eventFields: Record<string, unknown> = {
      'event.id': Number(event.id),
      'event.table': event.table_name,
      'event.schema': event.schema_name,
      'event.op': event.op,
      'event.occurred_at': event.occurred_at instanceof Date
        ? event.occurred_at.toISOString()
        : event.occurred_at,
    };
    return eventFields[path];
  };
  const render = (value: unknown): unknown => {
    if (typeof value === 'string') {
      const whole = /^\{\{\s*([^}]+?)\s*\}\}$/.exec(value);
      if (whole) return context(whole[1]!) ?? null;
      return value.replace(PLACEHOLDER, (_, path: string) => {
        const v = context(path);
        return v === undefined || v === null
          ? ''
          : typeof v === 'object'
          ? JSON.stringify(v)
          : String(v);
      });
    }
    if (Array.isArray(value)) return value.map(render);
    if (value && typeof value === 'object') {
      return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, render(v)]));
    }
    return value;
  };
  return actions.map((action) => render(action) as Action);
}
