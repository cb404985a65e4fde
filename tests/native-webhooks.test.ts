import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { installPgNetStandIn, installSupabaseFunctionsStandIn } from '../scripts/lib/database.ts';
import { type PgNetWorker, startPgNetWorker } from '../scripts/local/pg-net-worker.ts';
import { databaseUrl, testSql, withRollback } from './helpers/db.ts';
import { uniqueJobType } from './helpers/queue.ts';
import { apiApp, auth, call, process, SECRET, webhookApp } from './helpers/workflows.ts';

// Database Webhooks made the way Studio makes them (its CREATE TRIGGER statement, calling
// supabase_functions.http_request), fired by writes as service_role and as authenticated,
// delivered by the pg_net stand-in's worker over HTTP to the webhook function, and processed.

const sql = testSql(undefined, 6);
const tag = `nwh${Date.now().toString(36)}`;
// Two tables of this file's own, shaped like the inventory's (tests/schema.test.ts checks
// every public table): one only hooked, one hooked and watched by a template.
const plain = `${tag}_plain`;
const both = `${tag}_both`;
const jobType = uniqueJobType('native');
const api = apiApp(sql, [jobType]);
let server: http.Server;
let hookUrl: string;
let worker: PgNetWorker;

/** The statement Studio runs for a webhook to an Edge Function (Database > Webhooks). */
const studioHook = (name: string, table: string) =>
  `CREATE TRIGGER "${name}" AFTER INSERT OR UPDATE OR DELETE ON "public"."${table}" ` +
  `FOR EACH ROW EXECUTE FUNCTION "supabase_functions"."http_request"('${hookUrl}', 'POST', ` +
  `'{"Content-type":"application/json","Authorization":"Bearer ${SECRET}"}', '{}', '5000')`;

/** The webhook function over HTTP at /functions/v1/webhook, as the gateway serves it. */
function serveWebhook(): Promise<http.Server> {
  const app = webhookApp(sql);
  const server = http.createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const path = (req.url ?? '/').replace(/^\/functions\/v1/, '');
    const response = await app.request(path, {
      method: req.method,
      headers: req.headers as Record<string, string>,
      body: chunks.length ? Buffer.concat(chunks) : undefined,
    });
    res.writeHead(response.status, Object.fromEntries(response.headers));
    res.end(Buffer.from(await response.arrayBuffer()));
  });
  return new Promise((r) => server.listen(0, '127.0.0.1', () => r(server)));
}

async function createTable(name: string) {
  await sql.begin(async (tx) => {
    await tx.unsafe(`
      create table public.${name} (
        id uuid primary key default gen_random_uuid(),
        title text not null,
        created_at timestamptz not null default now(),
        updated_at timestamptz not null default now()
      );
      alter table public.${name} enable row level security;
      create policy own_rows on public.${name} for all to authenticated
        using (true) with check (true);
      create trigger touch_updated_at before update on public.${name}
        for each row execute function cesar.touch_updated_at();
    `);
  });
}

beforeAll(async () => {
  server = await serveWebhook();
  hookUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/functions/v1/webhook`;
  worker = await startPgNetWorker({ databaseUrl: databaseUrl(), pollIntervalMs: 200 });
  await createTable(plain);
  await createTable(both);
  await sql.unsafe(studioHook(`${tag}_plain_hook`, plain));
  await sql.unsafe(studioHook(`${tag}_both_hook`, both));
});

afterAll(async () => {
  await sql`delete from cesar.workflow_templates where name like ${`${tag}%`}`;
  await sql.unsafe(`drop table if exists public.${plain}, public.${both}`);
  await worker.stop();
  server.closeAllConnections();
  server.close();
});

/** Three changes to one row: INSERT as service_role, UPDATE as authenticated, DELETE. */
async function threeChanges(table: string): Promise<string> {
  const as = (role: string, statement: string, params: string[] = []) =>
    sql.begin(async (tx) => {
      await tx.unsafe(`set local role ${role}`);
      return await tx.unsafe(statement, params);
    });
  const [row] = await as(
    'service_role',
    `insert into public.${table} (title) values ('one') returning id`,
  );
  const id = row!.id as string;
  await as('authenticated', `update public.${table} set title = 'two' where id = $1`, [id]);
  await as('authenticated', `delete from public.${table} where id = $1`, [id]);
  return id;
}

interface Delivery {
  hook_name: string;
  status_code: number | null;
  error_msg: string | null;
  content: string | null;
}

/** The hooks audit rows of a table with the responses pg_net recorded, once all are in. */
async function deliveries(table: string, count: number): Promise<Delivery[]> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const rows = await sql<Delivery[]>`
      select h.hook_name, r.status_code, r.error_msg, r.content
      from supabase_functions.hooks h
      left join net._http_response r on r.id = h.request_id
      where h.hook_table_id = ${`public.${table}`}::regclass::oid
      order by h.id`;
    if (rows.length >= count && rows.every((r) => r.status_code !== null || r.error_msg)) {
      return rows;
    }
    if (Date.now() > deadline) throw new Error(`deliveries of ${table}: ${JSON.stringify(rows)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('Database Webhooks made as Studio makes them', () => {
  it(
    'deliver each change to the webhook function, written as service_role or authenticated',
    async () => {
      const id = await threeChanges(plain);
      const rows = await deliveries(plain, 3);
      expect(rows).toHaveLength(3);
      for (const row of rows) {
        expect(row).toMatchObject({ hook_name: `${tag}_plain_hook`, status_code: 201 });
        expect(JSON.parse(row.content!)).toMatchObject({ recorded: true, duplicate: false });
      }
      await process(sql);
      const events = await sql`
      select op, source, row_key, record ->> 'title' as title, old_record ->> 'title' as old_title,
             status
      from cesar.event_log where schema_name = 'public' and table_name = ${plain} order by id`;
      // No template watches this table: the events are recorded, then processed as ignored.
      // In the order they arrived, which need not be the order of the commits (see below).
      expect(events).toHaveLength(3);
      expect(events).toEqual(expect.arrayContaining([
        {
          op: 'INSERT',
          source: 'webhook',
          row_key: id,
          title: 'one',
          old_title: null,
          status: 'ignored',
        },
        {
          op: 'UPDATE',
          source: 'webhook',
          row_key: id,
          title: 'two',
          old_title: 'one',
          status: 'ignored',
        },
        {
          op: 'DELETE',
          source: 'webhook',
          row_key: id,
          title: null,
          old_title: 'two',
          status: 'ignored',
        },
      ]));
    },
  );

  it('process a change once on a table that a template also watches', async () => {
    const created = await call(api, 'POST', '/api/workflows', {
      name: `${tag} both`,
      trigger: {
        type: 'database_event',
        table: `public.${both}`,
        events: ['INSERT', 'UPDATE', 'DELETE'],
      },
      actions: [{ type: 'enqueue_job', job_type: jobType, payload: { id: '{{record.id}}' } }],
    });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    const id = await threeChanges(both);
    const rows = await deliveries(both, 3);
    for (const row of rows) {
      expect(row).toMatchObject({ hook_name: `${tag}_both_hook`, status_code: 200 });
      expect(JSON.parse(row.content!)).toMatchObject({
        recorded: false,
        captured: true,
        reason: expect.stringMatching(/is watched: this change was captured/),
      });
    }
    await process(sql);
    const events = await sql`
      select op, source, status from cesar.event_log
      where schema_name = 'public' and table_name = ${both} and row_key = ${id} order by id`;
    expect(events).toEqual([
      { op: 'INSERT', source: 'trigger', status: 'processed' },
      { op: 'UPDATE', source: 'trigger', status: 'processed' },
      { op: 'DELETE', source: 'trigger', status: 'processed' },
    ]);
    const [{ n }] = await sql`
      select count(*)::int as n from cesar.workflow_executions
      where template_id = ${created.body.id}
    ` as unknown as [{ n: number }];
    expect(n).toBe(3);
    const logged = await sql`
      select count(*)::int as n from public.ingestion_log
      where source = 'webhook' and details ->> 'table' = ${`public.${both}`}
        and details -> 'captured' = 'true' and record_count = 0`;
    expect(logged).toEqual([{ n: 3 }]);
  });

  it('records a delivery of an unwatched table once, however often it comes', async () => {
    const hook = webhookApp(sql);
    const payload = {
      type: 'INSERT',
      schema: 'public',
      table: plain,
      record: { id: crypto.randomUUID(), title: 'twice' },
      old_record: null,
    };
    const deliver = async () => {
      const res = await hook.request('/webhook', {
        method: 'POST',
        headers: auth,
        body: JSON.stringify(payload),
      });
      return { status: res.status, body: await res.json() };
    };
    const first = await deliver();
    expect(first).toMatchObject({ status: 201, body: { recorded: true, duplicate: false } });
    const again = await Promise.all([deliver(), deliver()]);
    expect(again.map((r) => [r.status, r.body.event_id, r.body.duplicate])).toEqual([
      [200, first.body.event_id, true],
      [200, first.body.event_id, true],
    ]);
  });

  it('number native deliveries in arrival order, not commit order', async () => {
    // pg_net sends queued requests concurrently and in no promised order: two updates of one
    // row, committed first then second, may arrive second then first. Each becomes an event
    // when it arrives, so its id follows arrival.
    const id = crypto.randomUUID();
    const update = (from: string, to: string) => ({
      type: 'UPDATE',
      schema: 'public',
      table: plain,
      record: { id, title: to },
      old_record: { id, title: from },
    });
    const hook = webhookApp(sql);
    const deliver = async (payload: unknown) =>
      (await (await hook.request('/webhook', {
        method: 'POST',
        headers: auth,
        body: JSON.stringify(payload),
      })).json()).event_id as string;
    const second = await deliver(update('b', 'c')); // committed second, arrived first
    const first = await deliver(update('a', 'b'));
    expect(BigInt(second)).toBeLessThan(BigInt(first));
  });

  it("are refused with the reason when Studio's arguments are wrong, with the write", async () => {
    const attempt = (args: string) =>
      withRollback(sql, async (tx) => {
        await tx.unsafe(`create trigger bad_hook after insert on public.${plain} for each row
                         execute function supabase_functions.http_request(${args})`);
        await tx.unsafe(`insert into public.${plain} (title) values ('x')`);
      });
    await expect(attempt(`'${hookUrl}', 'PUT', '{}', '{}', '1000'`)).rejects.toThrow(
      'method argument PUT is invalid',
    );
    await expect(attempt(`'${hookUrl}', 'POST', 'not json', '{}', '1000'`)).rejects.toThrow(
      /webhook bad_hook on public\..*: headers and params must be JSON/,
    );
    await expect(attempt(`'${hookUrl}', 'POST', '{}', '{}', 'soon'`)).rejects.toThrow(
      /timeout_ms an integer/,
    );
    await expect(attempt('')).rejects.toThrow('url argument is missing');
    await expect(attempt(`'${hookUrl}', 'POST', '{"Content-Type":"text/plain"}'`)).rejects.toThrow(
      'Content-Type header must be "application/json"',
    );
  });

  it('send GET requests with params and the default headers, and audit each call', async () => {
    const queued = await withRollback(sql, async (tx) => {
      await tx.unsafe(`create trigger get_hook after insert on public.${plain} for each row
                       execute function supabase_functions.http_request(
                         '${hookUrl}', 'GET', 'null', '{"a":"1"}')`);
      await tx`set local role authenticated`;
      await tx.unsafe(`insert into public.${plain} (title) values ('get')`);
      await tx`reset role`;
      return await tx`
        select q.method, q.url, q.headers, q.timeout_milliseconds, h.hook_name
        from supabase_functions.hooks h join net.http_request_queue q on q.id = h.request_id
        where h.hook_name = 'get_hook'`;
    });
    expect(queued).toEqual([{
      method: 'GET',
      url: `${hookUrl}?a=1`,
      headers: { 'Content-Type': 'application/json' },
      timeout_milliseconds: 1000,
      hook_name: 'get_hook',
    }]);
  });

  it('are owned and granted as on Supabase', async () => {
    const [fn] = await sql`
      select p.prosecdef as security_definer, pg_get_userbyid(p.proowner) as owner, p.proconfig,
             has_function_privilege('anon', p.oid, 'EXECUTE') as anon,
             has_function_privilege('authenticated', p.oid, 'EXECUTE') as authenticated,
             has_function_privilege('service_role', p.oid, 'EXECUTE') as service_role
      from pg_proc p where p.oid = 'supabase_functions.http_request()'::regprocedure`;
    expect(fn).toEqual({
      security_definer: true,
      owner: 'supabase_functions_admin',
      proconfig: ['search_path=supabase_functions'],
      anon: true,
      authenticated: true,
      service_role: true,
    });
    const [net] = await sql`
      select bool_and(not p.prosecdef) as invoker,
             bool_and(has_function_privilege('anon', p.oid, 'EXECUTE')) as callable,
             has_table_privilege('authenticated', 'net.http_request_queue', 'INSERT') as queue,
             has_schema_privilege('anon', 'net', 'USAGE') as schema
      from pg_proc p
      where p.oid in ('net.http_get(text,jsonb,jsonb,integer)'::regprocedure,
                      'net.http_post(text,jsonb,jsonb,jsonb,integer)'::regprocedure,
                      'net.http_delete(text,jsonb,jsonb,integer)'::regprocedure)`;
    expect(net).toEqual({ invoker: true, callable: true, queue: true, schema: true });
  });

  it('are installed again without harm, and never over the real schema', async () => {
    // A database of its own on the test cluster: the installers work on a whole database.
    const name = `${tag}_install`;
    await sql.unsafe(`create database ${name}`);
    const url = new URL(databaseUrl());
    url.pathname = `/${name}`;
    const other = testSql(url.toString(), 1);
    try {
      await other`create schema supabase_functions`; // as `supabase start` would have it
      expect(await installSupabaseFunctionsStandIn(url.toString())).toBe('real');
      expect(await other`select to_regprocedure('supabase_functions.http_request()') as fn`)
        .toEqual([{ fn: null }]);
      await other`drop schema supabase_functions`;
      expect(await installPgNetStandIn(url.toString())).toBe('stand-in');
      await other`create table items (id int primary key)`;
      await other.unsafe(
        studioHook('items_hook', 'items').replace(hookUrl, 'http://127.0.0.1:1/x'),
      );
      await other`insert into items values (1)`;
      expect(await installPgNetStandIn(url.toString())).toBe('stand-in');
      expect(await installSupabaseFunctionsStandIn(url.toString())).toBe('stand-in');
      await other`insert into items values (2)`;
      expect(await other`select hook_name from supabase_functions.hooks order by id`).toEqual([
        { hook_name: 'items_hook' },
        { hook_name: 'items_hook' },
      ]);
    } finally {
      await other.end();
      await sql.unsafe(`drop database ${name}`);
    }
  });
});
