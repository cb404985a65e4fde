import { type Parsed, single, UsageError } from './args.ts';
import { type Client, EXIT } from './client.ts';
import { columns } from './format.ts';
import type { CommandResult } from './sync.ts';

// `cesar workflows ...` and `cesar events ...`: the api function's routes.

interface Workflow {
  id: string;
  name: string;
  enabled: boolean;
  trigger: {
    type: string;
    table?: string;
    events?: string[];
    cron?: string;
    timezone?: string;
    catch_up?: string;
    catch_up_max?: number;
  };
}

/** `cron 0 9 * * * Europe/Berlin, catch-up all (max 5)`; a zone is UTC unless given. */
export function describeTrigger(t: Workflow['trigger']): string {
  if (t.type === 'database_event') return `${t.events?.join('/')} on ${t.table}`;
  if (t.type === 'schedule') {
    const catchUp = t.catch_up && t.catch_up !== 'none'
      ? `, catch-up ${t.catch_up}${t.catch_up === 'all' ? ` (max ${t.catch_up_max ?? 10})` : ''}`
      : '';
    return `cron ${t.cron} ${t.timezone ?? 'UTC'}${catchUp}`;
  }
  return t.type;
}

async function workflowByIdOrName(client: Client, ref: string | undefined): Promise<Workflow> {
  if (!ref) throw new UsageError('name the workflow: its id or its name');
  const { workflows } = await client.call<{ workflows: Workflow[] }>('api', '/workflows');
  const found = workflows.find((w) => w.id === ref || w.name === ref);
  if (!found) throw new UsageError(`no workflow ${ref}`);
  return found;
}

export async function workflowsCommand(client: Client, parsed: Parsed): Promise<CommandResult> {
  const [, action = 'list', ref] = parsed.positionals;
  if (action === 'list') {
    const { workflows } = await client.call<{ workflows: Workflow[] }>('api', '/workflows');
    return {
      json: { workflows },
      human: columns([
        ['id', 'name', 'enabled', 'trigger'],
        ...workflows.map((
          w,
        ) => [w.id, w.name, w.enabled ? 'yes' : 'no', describeTrigger(w.trigger)]),
      ]),
      exitCode: EXIT.ok,
    };
  }
  if (action === 'enable' || action === 'disable') {
    const workflow = await workflowByIdOrName(client, ref);
    const saved = await client.call<Workflow>('api', `/workflows/${workflow.id}/${action}`, {});
    return {
      json: saved,
      human: `${saved.name}: ${saved.enabled ? 'enabled' : 'disabled'}`,
      exitCode: EXIT.ok,
    };
  }
  if (action === 'run') {
    const workflow = await workflowByIdOrName(client, ref);
    const run = await client.call<{ execution_id: string }>(
      'api',
      `/workflows/${workflow.id}/run`,
      {},
    );
    return {
      json: run,
      human: `${workflow.name}: execution ${run.execution_id}`,
      exitCode: EXIT.ok,
    };
  }
  throw new UsageError(`workflows ${action}: use list, enable, disable or run`);
}

interface EventRow {
  id: string;
  table_name: string;
  schema_name: string;
  op: string;
  status: string;
  occurred_at: string;
  last_error: string | null;
}

export async function eventsCommand(client: Client, parsed: Parsed): Promise<CommandResult> {
  const [, action = 'list', id] = parsed.positionals;
  if (action === 'list') {
    const query = new URLSearchParams();
    for (const name of ['table', 'status', 'limit']) {
      const value = single(parsed, name);
      if (value !== undefined) query.set(name, value);
    }
    const { events } = await client.call<{ events: EventRow[] }>('api', `/events?${query}`);
    return {
      json: { events },
      human: columns([
        ['id', 'table', 'op', 'status', 'occurred at', 'error'],
        ...events.map((e) => [
          e.id,
          `${e.schema_name}.${e.table_name}`,
          e.op,
          e.status,
          String(e.occurred_at),
          e.last_error ?? '',
        ]),
      ]),
      exitCode: EXIT.ok,
    };
  }
  if (action === 'replay') {
    const from = single(parsed, 'from');
    if (!from) throw new UsageError('events replay needs --from <ISO time>');
    const body: Record<string, unknown> = { from };
    const to = single(parsed, 'to');
    if (to) body.to = to;
    const table = single(parsed, 'table');
    if (table) body.table = table;
    const workflow = single(parsed, 'workflow');
    if (workflow) body.template_id = (await workflowByIdOrName(client, workflow)).id;
    const statuses = parsed.options.get('status');
    if (statuses) body.statuses = statuses;
    const { replayed } = await client.call<{ replayed: number }>('api', '/events/replay', body);
    return { json: { replayed }, human: `${replayed} event(s) replayed`, exitCode: EXIT.ok };
  }
  if (action === 'redeliver') {
    if (!id) throw new UsageError('events redeliver needs an event id');
    const result = await client.call<{ redelivered: boolean }>(
      'api',
      `/events/${id}/redeliver`,
      {},
    );
    return { json: result, human: `event ${id} redelivered`, exitCode: EXIT.ok };
  }
  throw new UsageError(`events ${action}: use list, replay or redeliver`);
}
