import { describe, expect, it } from 'vitest';
import { type ChangeEvent, databaseWebhookPayload } from '../packages/shared/src/capture/events.ts';
import {
  evaluateFilter,
  matchTemplates,
  renderActions,
} from '../packages/shared/src/workflows/match.ts';
import {
  type Filter,
  type Template,
  templateInput,
} from '../packages/shared/src/workflows/schema.ts';

const event = (over: Partial<ChangeEvent> = {}): ChangeEvent => ({
  id: '42',
  schema_name: 'public',
  table_name: 'tasks',
  op: 'UPDATE',
  record: {
    id: 't1',
    status: 'completed',
    priority: 5,
    title: 'Ship it',
    tags: ['a', 'b'],
    meta: { tier: 'gold' },
    agent_id: null,
  },
  old_record: {
    id: 't1',
    status: 'in_progress',
    priority: 5,
    title: 'Ship it',
    tags: ['a'],
    meta: { tier: 'silver' },
    agent_id: null,
  },
  changed_columns: ['meta', 'status', 'tags'],
  row_key: 't1',
  occurred_at: '2026-11-20T10:00:00.000Z',
  ...over,
});

const template = (name: string, trigger: Record<string, unknown>, enabled = true): Template => ({
  id: `id-${name}`,
  name,
  description: null,
  enabled,
  trigger: templateInput.shape.trigger.parse(trigger),
  actions: [{ type: 'enqueue_job', job_type: 'system.noop', payload: {} }],
  retry_policy: {},
  created_at: new Date(),
  updated_at: new Date(),
});

describe('filters', () => {
  const cases: Array<[string, Filter, boolean]> = [
    ['eq', { field: 'record.status', op: 'eq', value: 'completed' }, true],
    ['eq on a nested field', { field: 'record.meta.tier', op: 'eq', value: 'gold' }, true],
    ['eq with a number given as text', { field: 'record.priority', op: 'eq', value: '5' }, true],
    ['ne', { field: 'record.status', op: 'ne', value: 'completed' }, false],
    ['gt', { field: 'record.priority', op: 'gt', value: 4 }, true],
    ['gte', { field: 'record.priority', op: 'gte', value: 5 }, true],
    ['lt', { field: 'record.priority', op: 'lt', value: 5 }, false],
    ['lte on strings', { field: 'record.title', op: 'lte', value: 'Zzz' }, true],
    ['in', { field: 'record.status', op: 'in', value: ['failed', 'completed'] }, true],
    ['contains in a string', { field: 'record.title', op: 'contains', value: 'hip' }, true],
    ['contains in an array', { field: 'record.tags', op: 'contains', value: 'b' }, true],
    ['matches', { field: 'record.title', op: 'matches', value: '^Ship\\b' }, true],
    ['exists', { field: 'record.meta.tier', op: 'exists' }, true],
    ['exists on null', { field: 'record.agent_id', op: 'exists' }, false],
    ['not_exists on null', { field: 'record.agent_id', op: 'not_exists' }, true],
    ['not_exists on a missing field', { field: 'record.nope.deeper', op: 'not_exists' }, true],
    ['changed', { field: 'record.status', op: 'changed' }, true],
    ['changed, unchanged field', { field: 'record.priority', op: 'changed' }, false],
    ['old_record', { field: 'old_record.status', op: 'eq', value: 'in_progress' }, true],
    ['comparison with a missing field', { field: 'record.missing', op: 'gt', value: 1 }, false],
    ['all', {
      all: [{ field: 'record.status', op: 'eq', value: 'completed' }, {
        field: 'record.priority',
        op: 'gt',
        value: 9,
      }],
    }, false],
    ['any', {
      any: [{ field: 'record.status', op: 'eq', value: 'x' }, {
        field: 'record.priority',
        op: 'gt',
        value: 1,
      }],
    }, true],
    ['not', { not: { field: 'record.status', op: 'eq', value: 'completed' } }, false],
  ];
  it.each(cases)('%s', (_name, filter, expected) => {
    expect(evaluateFilter(filter, event())).toBe(expected);
  });

  it('runs a pattern that makes a backtracking engine blow up without blocking', () => {
    // JavaScript's RegExp needs about 2^60 steps for this one: the test would never finish.
    const hostile = event({ record: { ...event().record, title: `${'a'.repeat(60)}!` } });
    expect(evaluateFilter({ field: 'record.title', op: 'matches', value: '^(a+)+$' }, hostile))
      .toBe(false);
    expect(evaluateFilter({ field: 'record.title', op: 'matches', value: '^(a+)+!$' }, hostile))
      .toBe(true);
  });

  it('does not match when a pattern cannot be decided, not even under not', () => {
    const long = event({ record: { ...event().record, title: 'a'.repeat(10_001) } });
    const pattern = { field: 'record.title', op: 'matches', value: '^b' } as const;
    expect(evaluateFilter(pattern, long)).toBe(false);
    expect(evaluateFilter({ not: pattern }, long)).toBe(false);
    expect(evaluateFilter({ any: [pattern, { field: 'record.id', op: 'eq', value: 't1' }] }, long))
      .toBe(true);
    // A pattern saved before the matcher refused it (a backreference).
    const refused = { field: 'record.title', op: 'matches', value: '(a)\\1' } as const;
    expect(evaluateFilter({ not: refused }, event())).toBe(false);
    expect(
      evaluateFilter({ all: [refused, { field: 'record.id', op: 'eq', value: 'x' }] }, event()),
    )
      .toBe(false);
  });

  it('treats changed as false outside updates', () => {
    expect(
      evaluateFilter(
        { field: 'record.status', op: 'changed' },
        event({ op: 'INSERT', old_record: null }),
      ),
    ).toBe(false);
  });
});

describe('matchTemplates', () => {
  const templates = [
    template('b on update', { type: 'database_event', table: 'public.tasks', events: ['UPDATE'] }),
    template('a on tasks any', {
      type: 'database_event',
      table: 'tasks',
      events: ['INSERT', 'UPDATE', 'DELETE'],
    }),
    template('on priority change', {
      type: 'database_event',
      table: 'public.tasks',
      events: ['UPDATE'],
      columns: ['priority'],
    }),
    template('on status change', {
      type: 'database_event',
      table: 'public.tasks',
      events: ['UPDATE'],
      columns: ['status', 'title'],
    }),
    template('filtered out', {
      type: 'database_event',
      table: 'public.tasks',
      events: ['UPDATE'],
      filter: { field: 'record.status', op: 'eq', value: 'failed' },
    }),
    template(
      'disabled',
      { type: 'database_event', table: 'public.tasks', events: ['UPDATE'] },
      false,
    ),
    template('other table', { type: 'database_event', table: 'public.agents', events: ['UPDATE'] }),
    template('schedule', { type: 'schedule', cron: '* * * * *' }),
  ];

  it('matches table, event, changed columns and filter, in name order', () => {
    expect(matchTemplates(event(), templates).map((t) => t.name)).toEqual([
      'a on tasks any',
      'b on update',
      'on status change',
    ]);
  });

  it('ignores the columns condition for inserts', () => {
    const insert = event({ op: 'INSERT', old_record: null, changed_columns: null });
    expect(matchTemplates(insert, templates).map((t) => t.name)).toEqual(['a on tasks any']);
  });
});

describe('renderActions', () => {
  it('fills placeholders from the event, typed when a value is a whole placeholder', () => {
    const [action] = renderActions([{
      type: 'enqueue_job',
      job_type: 'x.y',
      payload: {
        id: '{{record.id}}',
        priority: '{{ record.priority }}',
        tags: '{{record.tags}}',
        text: 'Task {{record.title}} was {{old_record.status}}; missing: [{{record.nope}}]',
        event: {
          id: '{{event.id}}',
          table: '{{event.schema}}.{{event.table}}',
          op: '{{event.op}}',
          at: '{{event.occurred_at}}',
        },
        nothing: '{{record.nope}}',
      },
    }], event());
    expect(action).toEqual({
      type: 'enqueue_job',
      job_type: 'x.y',
      payload: {
        id: 't1',
        priority: 5,
        tags: ['a', 'b'],
        text: 'Task Ship it was in_progress; missing: []',
        event: { id: 42, table: 'public.tasks', op: 'UPDATE', at: '2026-11-20T10:00:00.000Z' },
        nothing: null,
      },
    });
  });
});

describe('template validation', () => {
  const base = {
    name: 'x',
    trigger: { type: 'database_event', table: 'public.tasks', events: ['INSERT'] },
    actions: [{ type: 'enqueue_job', job_type: 'system.noop' }],
  };
  const issues = (input: unknown) => {
    const r = templateInput.safeParse(input);
    return r.success ? [] : r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
  };

  it('accepts a valid template and fills defaults', () => {
    expect(templateInput.parse(base)).toMatchObject({
      enabled: true,
      retry_policy: {},
      trigger: { ordered: false },
    });
  });

  it('bounds what a filter costs each event: 50 field tests, 5 patterns', () => {
    const leaf = (i: number) => ({ field: 'record.title', op: 'eq', value: i });
    const pattern = { field: 'record.title', op: 'matches', value: '^a' };
    const withFilter = (filter: unknown) => ({ ...base, trigger: { ...base.trigger, filter } });
    expect(issues(withFilter({ any: Array.from({ length: 50 }, (_, i) => leaf(i)) }))).toEqual([]);
    expect(issues(withFilter({ any: Array.from({ length: 51 }, (_, i) => leaf(i)) })).join())
      .toMatch(/at most 50 fields \(this one: 51\)/);
    expect(issues(withFilter({ all: Array.from({ length: 6 }, () => pattern) })).join())
      .toMatch(/at most 5 matches/);
  });

  it('names what is wrong', () => {
    expect(issues({ ...base, trigger: { ...base.trigger, events: ['UPSERT'] } })[0]).toMatch(
      /^trigger\.events\.0/,
    );
    expect(
      issues({
        ...base,
        trigger: { ...base.trigger, filter: { field: 'status', op: 'eq', value: 1 } },
      }).join(),
    ).toMatch(/trigger\.filter/);
    expect(
      issues({
        ...base,
        trigger: { ...base.trigger, filter: { field: 'record.a', op: 'matches', value: '(' } },
      }).join(),
    ).toMatch(/invalid or unsupported regular expression/);
    expect(
      issues({
        ...base,
        trigger: {
          ...base.trigger,
          filter: { field: 'record.a', op: 'matches', value: '^(a+)\\1$' },
        },
      }).join(),
    ).toMatch(/backreferences are not supported/);
    expect(
      issues({
        ...base,
        trigger: { ...base.trigger, filter: { field: 'record.a', op: 'in', value: 3 } },
      }).join(),
    ).toMatch(/needs an array/);
    expect(issues({ ...base, trigger: { type: 'schedule', cron: 'every day' } })[0]).toMatch(
      /^trigger\.cron: must be a five-field cron/,
    );
    expect(issues({ ...base, actions: [] })[0]).toMatch(/^actions/);
    expect(issues({ ...base, actions: [{ type: 'http_request', url: 'ftp://x' }] })[0]).toMatch(
      /^actions\.0\.url/,
    );
    expect(issues({ ...base, surprise: 1 })[0]).toMatch(/surprise/);
  });
});

describe('native Database Webhook payload', () => {
  it('is a discriminated union on type, as Supabase sends it', () => {
    const ok = [
      { type: 'INSERT', table: 'tasks', schema: 'public', record: { id: 1 }, old_record: null },
      {
        type: 'UPDATE',
        table: 'tasks',
        schema: 'public',
        record: { id: 1 },
        old_record: { id: 1 },
      },
      { type: 'DELETE', table: 'tasks', schema: 'public', record: null, old_record: { id: 1 } },
    ];
    for (const p of ok) expect(databaseWebhookPayload.safeParse(p).success).toBe(true);
    expect(
      databaseWebhookPayload.safeParse({
        type: 'INSERT',
        table: 'tasks',
        schema: 'public',
        record: null,
        old_record: null,
      }).success,
    ).toBe(false);
    expect(
      databaseWebhookPayload.safeParse({ type: 'TRUNCATE', table: 'tasks', schema: 'public' })
        .success,
    ).toBe(false);
  });
});
