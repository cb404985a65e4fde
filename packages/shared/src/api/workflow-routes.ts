import type { Hono } from 'hono';
import { z } from 'zod';
import type { Sql } from '../db.ts';
import {
  ApiError,
  type OutboundPolicy,
  parseQuery,
  readJsonBody,
  timestamp,
  urlRefusal,
} from '../http/index.ts';
import {
  describeEventTable,
  listEvents,
  replayEventIds,
  selectEventsForReplay,
} from '../capture/index.ts';
import {
  deleteTemplate,
  getTemplate,
  insertTemplate,
  listExecutions,
  listTemplates,
  runTemplate,
  setTemplateEnabled,
  type TemplateInput,
  templateInput,
  templatePatch,
  updateTemplate,
} from '../workflows/index.ts';

export interface WorkflowRouteDeps {
  sql: Sql;
  /** Job types the job-drain function can run; an enqueue_job action must name one. */
  jobTypes: readonly string[];
  /** What the job-drain function's http.request may reach (the same configuration). */
  outbound: Pick<OutboundPolicy, 'allow' | 'refusedHosts'>;
}

const uuid = z.uuid();
const bigintId = z.string().regex(/^\d{1,18}$/);

function templateId(raw: string): string {
  if (!uuid.safeParse(raw).success) throw new ApiError(404, `no workflow template ${raw}`);
  return raw;
}

async function mustGetTemplate(sql: Sql, raw: string) {
  const template = await getTemplate(sql, templateId(raw));
  if (!template) throw new ApiError(404, `no workflow template ${raw}`);
  return template;
}

/**
 * What the outbound guard refuses in an http_request action's URL, as far as a save can tell:
 * the scheme, credentials, a loopback name, the gateway, an IP address that is not public.
 * There is no DNS here: a name's addresses can change before the job runs, and the job's own
 * check (every hop, resolved then) is the one that counts. A host filled from a placeholder
 * is only known then too.
 */
function savedUrlRefusal(raw: string, outbound: WorkflowRouteDeps['outbound']): string | null {
  const authority = /^[^:]*:\/\/([^/?#]*)/.exec(raw)?.[1] ?? '';
  if (authority.includes('{{')) {
    return authority.includes('@') ? 'credentials in the URL are not allowed' : null;
  }
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return 'must be a valid URL';
  }
  return urlRefusal(url, outbound);
}

/**
 * Checks what the schema cannot: known job types, URLs the outbound guard refuses, an existing
 * table with a single-column key.
 */
async function checkReferences(sql: Sql, input: TemplateInput, deps: WorkflowRouteDeps) {
  input.actions.forEach((action, i) => {
    if (action.type === 'enqueue_job' && !deps.jobTypes.includes(action.job_type)) {
      throw new ApiError(400, 'invalid request body', [{
        path: `actions.${i}.job_type`,
        message: `unknown job type "${action.job_type}"; known: ${
          [...deps.jobTypes].sort().join(', ')
        }`,
      }]);
    }
    const refusal = action.type === 'http_request'
      ? savedUrlRefusal(action.url, deps.outbound)
      : null;
    if (refusal) {
      throw new ApiError(400, 'invalid request body', [{
        path: `actions.${i}.url`,
        message: refusal,
      }]);
    }
  });
  if (input.trigger.type === 'database_event') {
    const table = await describeEventTable(sql, input.trigger.table);
    if (table === undefined) throw new ApiError(422, `unknown table ${input.trigger.table}`);
    if (table.refused) {
      throw new ApiError(422, `cannot watch ${input.trigger.table}: ${table.refused}`);
    }
    if (table.key === null) {
      throw new ApiError(
        422,
        `table ${input.trigger.table} needs a single-column primary key to be watched`,
      );
    }
  }
}

/** Saves a template in one transaction with what it needs: its table watched. */
async function saveTemplate(sql: Sql, input: TemplateInput, id: string | null) {
  try {
    return await sql.begin(async (tx) => {
      const db = tx as unknown as Sql;
      if (input.trigger.type === 'database_event') {
        await db`select cesar.watch(${input.trigger.table}::regclass)`;
      }
      return id === null ? await insertTemplate(db, input) : await updateTemplate(db, id, input);
    });
  } catch (err) {
    const e = err as { code?: string; message?: string };
    if (e.code === '23505') {
      throw new ApiError(409, `a workflow template named "${input.name}" exists`);
    }
    // What cesar.check_schedule_trigger refuses that the schema let through (a zone the
    // database's time zone data does not have).
    if (e.code === '22023' && /^invalid schedule/.test(e.message ?? '')) {
      throw new ApiError(400, 'invalid request body', [{
        path: 'trigger.cron',
        message: e.message!,
      }]);
    }
    if (e.code === '22023' && /^invalid time zone/.test(e.message ?? '')) {
      throw new ApiError(400, 'invalid request body', [{
        path: 'trigger.timezone',
        message: `${e.message!}: not in the database's time zone data`,
      }]);
    }
    throw err;
  }
}

const executionsQuery = z.object({
  template_id: z.uuid().optional(),
  event_id: bigintId.optional(),
  status: z.enum(['pending', 'running', 'completed', 'failed', 'cancelled']).optional(),
  limit: z.coerce.number().int().min(1).max(500).default(50),
}).strict();

const eventsQuery = z.object({
  table: z.string().optional(),
  status: z.enum(['pending', 'processing', 'processed', 'ignored', 'failed']).optional(),
  limit: z.coerce.number().int().min(1).max(500).default(50),
}).strict();

const replayRequest = z.object({
  template_id: z.uuid().optional(),
  table: z.string().regex(/^[a-z_][a-z0-9_]*\.[a-z_][a-z0-9_]*$/).optional(),
  from: timestamp,
  to: timestamp.optional(),
  statuses: z.array(z.enum(['processed', 'ignored', 'failed'])).min(1).default([
    'processed',
    'ignored',
    'failed',
  ]),
  limit: z.number().int().min(1).max(100_000).default(10_000),
}).strict();

/** Workflows, executions and events on the api function. */
export function registerWorkflowRoutes(app: Hono, deps: WorkflowRouteDeps) {
  const { sql } = deps;

  app.get('/workflows', async (c) => c.json({ workflows: await listTemplates(sql) }));

  app.post('/workflows', async (c) => {
    const input = await readJsonBody(c, templateInput);
    await checkReferences(sql, input, deps);
    return c.json(await saveTemplate(sql, input, null), 201);
  });

  app.get('/workflows/:id', async (c) => c.json(await mustGetTemplate(sql, c.req.param('id'))));

  app.patch('/workflows/:id', async (c) => {
    const existing = await mustGetTemplate(sql, c.req.param('id'));
    const patch = await readJsonBody(c, templatePatch);
    const merged = templateInput.safeParse({
      name: existing.name,
      ...(existing.description === null ? {} : { description: existing.description }),
      enabled: existing.enabled,
      trigger: existing.trigger,
      actions: existing.actions,
      retry_policy: existing.retry_policy,
      ...patch,
    });
    if (!merged.success) {
      throw new ApiError(
        400,
        'invalid request body',
        merged.error.issues.map((i) => ({ path: i.path.join('.'), message: i.message })),
      );
    }
    await checkReferences(sql, merged.data, deps);
    return c.json(await saveTemplate(sql, merged.data, existing.id));
  });

  for (const [path, enabled] of [['enable', true], ['disable', false]] as const) {
    app.post(`/workflows/:id/${path}`, async (c) => {
      const template = await setTemplateEnabled(sql, templateId(c.req.param('id')), enabled);
      if (!template) throw new ApiError(404, `no workflow template ${c.req.param('id')}`);
      return c.json(template);
    });
  }

  app.delete('/workflows/:id', async (c) => {
    if (!(await deleteTemplate(sql, templateId(c.req.param('id'))))) {
      throw new ApiError(404, `no workflow template ${c.req.param('id')}`);
    }
    return c.json({ deleted: true });
  });

  app.post('/workflows/:id/run', async (c) => {
    const template = await mustGetTemplate(sql, c.req.param('id'));
    if (template.trigger.type === 'database_event') {
      throw new ApiError(
        422,
        `workflow "${template.name}" runs on database events; replay events to run it again`,
      );
    }
    return c.json({ execution_id: await runTemplate(sql, template.id) }, 202);
  });

  app.get('/executions', async (c) => {
    const q = parseQuery(c, executionsQuery);
    return c.json({
      executions: await listExecutions(sql, {
        templateId: q.template_id,
        status: q.status,
        eventId: q.event_id,
        limit: q.limit,
      }),
    });
  });

  app.get('/events', async (c) => {
    const q = parseQuery(c, eventsQuery);
    return c.json({ events: await listEvents(sql, q) });
  });

  app.post('/events/replay', async (c) => {
    const body = await readJsonBody(c, replayRequest);
    let table = body.table ?? null;
    if (body.template_id) {
      const template = await mustGetTemplate(sql, body.template_id);
      if (template.trigger.type !== 'database_event') {
        throw new ApiError(422, `workflow "${template.name}" does not run on database events`);
      }
      table = template.trigger.table;
    }
    const ids = await selectEventsForReplay(sql, {
      table,
      from: new Date(body.from),
      to: body.to ? new Date(body.to) : new Date('9999-12-31T00:00:00Z'),
      statuses: body.statuses,
      limit: body.limit,
    });
    return c.json({ replayed: ids.length === 0 ? 0 : await replayEventIds(sql, ids) });
  });

  app.post('/events/:id/redeliver', async (c) => {
    const id = c.req.param('id');
    if (!bigintId.safeParse(id).success) throw new ApiError(404, `no event ${id}`);
    const [event] = await sql<
      Array<{ status: string }>
    >`select status from cesar.event_log where id = ${id}`;
    if (!event) throw new ApiError(404, `no event ${id}`);
    if (event.status === 'pending' || event.status === 'processing') {
      throw new ApiError(409, `event ${id} is ${event.status} already`);
    }
    return c.json({ redelivered: (await replayEventIds(sql, [id])) === 1 });
  });
}
