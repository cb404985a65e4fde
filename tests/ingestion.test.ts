import { describe, expect, it } from 'vitest';
import { runSync } from '../packages/shared/src/mirror/run.ts';
import { releaseEvents } from '../packages/shared/src/workflows/queries.ts';
import { testSql, withRollback } from './helpers/db.ts';
import { recordingMirror } from './helpers/mirror.ts';
import { apiApp, auth, webhookApp } from './helpers/workflows.ts';

// public.ingestion_log, written by the paths that ingest data (native webhook deliveries,
// event processing failures, sync pulls), and cesar.mv_ingestion_errors over it.

const sql = testSql();
const { mirror } = recordingMirror();
const webhook = webhookApp(sql);
const tag = `ing${Date.now().toString(36)}`;

const deliver = (body: unknown) =>
  webhook.request('/webhook', { method: 'POST', headers: auth, body: JSON.stringify(body) });

describe('ingestion_log', () => {
  it('records each native webhook delivery, and each refused one with its reason', async () => {
    // A table of this file's own that nothing watches: its deliveries become events.
    await sql`create schema if not exists ingestion_test`;
    await sql.unsafe(
      `create table if not exists ingestion_test.items_${tag} (id uuid primary key)`,
    );
    const id = crypto.randomUUID();
    const res = await deliver({
      type: 'INSERT',
      schema: 'ingestion_test',
      table: `items_${tag}`,
      record: { id, name: tag },
      old_record: null,
    });
    await sql.unsafe(`drop table ingestion_test.items_${tag}`);
    expect(res.status).toBe(201);
    const { event_id } = await res.json();
    expect(
      await sql`select status, record_count, details from public.ingestion_log
                where source = 'webhook' and details ->> 'event_id' = ${event_id}`,
    ).toEqual([{
      status: 'ok',
      record_count: 1,
      details: { table: `ingestion_test.items_${tag}`, op: 'INSERT', event_id, duplicate: false },
    }]);

    // A watched table's change is captured in the writer's transaction: its native delivery
    // is acknowledged and logged without a second event.
    const captured = await deliver({
      type: 'INSERT',
      schema: 'public',
      table: 'agents',
      record: { id: crypto.randomUUID(), name: tag, type: 'monitor' },
      old_record: null,
    });
    expect(captured.status).toBe(200);
    expect(await captured.json()).toMatchObject({ recorded: false, captured: true });
    const [acknowledged] = await sql`
      select status, record_count, details from public.ingestion_log
      where source = 'webhook' and details ->> 'table' = 'public.agents'
      order by created_at desc limit 1`;
    expect(acknowledged).toEqual({
      status: 'ok',
      record_count: 0,
      details: { table: 'public.agents', op: 'INSERT', captured: true },
    });
    expect(
      await sql`select 1 from cesar.event_log
                where table_name = 'agents' and record ->> 'name' = ${tag}`,
    ).toHaveLength(0);

    // A hook on the log itself would feed itself: its deliveries are acknowledged unlogged.
    const ofLogRows = () =>
      sql<Array<{ count: number }>>`select count(*)::int from public.ingestion_log
          where source = 'webhook' and details ->> 'table' = 'public.ingestion_log'`;
    const logged = (await ofLogRows())[0]!.count;
    const ofLog = await deliver({
      type: 'DELETE',
      schema: 'public',
      table: 'ingestion_log',
      record: null,
      old_record: { id: crypto.randomUUID(), source: tag },
    });
    expect(await ofLog.json()).toMatchObject({ recorded: false, captured: true });
    expect(await ofLogRows()).toEqual([{ count: logged }]);

    const refused = await deliver({ type: 'UPSERT', schema: 'public', table: tag });
    expect(refused.status).toBe(400);
    const [error] = await sql`select status, error_message, details from public.ingestion_log
                              where source = 'webhook' and status = 'error' order by created_at desc limit 1`;
    expect(error).toMatchObject({
      error_message: 'invalid request body',
      details: { status: 400 },
    });
    // No event for the refused delivery.
    expect(await sql`select 1 from cesar.event_log where table_name = ${tag}`).toHaveLength(0);
  });

  it('records events that could not be processed', async () => {
    const logged = await withRollback(sql, async (tx) => {
      const [event] = await tx`
        insert into cesar.event_log (schema_name, table_name, op, record, status, attempts)
        values ('public', ${tag}, 'INSERT', '{}', 'processing', 1) returning id::text`;
      await releaseEvents(tx, [event!.id], 'the template broke');
      const rows =
        await tx`select status, record_count, error_message, details from public.ingestion_log
                            where source = 'event_capture'
                              and details -> 'event_ids' @> jsonb_build_array(${
          event!.id
        }::bigint)`;
      return { id: Number(event!.id), rows };
    });
    expect(logged.rows).toEqual([{
      status: 'error',
      record_count: 1,
      error_message: 'the template broke',
      details: { event_ids: [logged.id], failed_for_good: 0 },
    }]);
  });

  it('records each sync pull that applied something, with what it applied', async () => {
    const pull = () =>
      runSync({ primary: sql, mirror, random: () => 0.5 }, {
        tables: ['public.ingestion_log'],
        direction: 'down',
        dryRun: false,
        batchSize: 1000,
        budgetMs: 30_000,
      });
    const pulls = () =>
      sql`select status, record_count, details from public.ingestion_log
          where source = 'sync_pull' and details ->> 'table' = 'public.ingestion_log'
          order by created_at`;
    expect(await pull()).toMatchObject([{ status: 'completed' }]); // creates the mirror's table
    const before = (await pulls()).length;
    await mirror`insert into public.ingestion_log (id, source, status, record_count, details, created_at, updated_at)
                 values (${crypto.randomUUID()}, ${`${tag} mirror`}, 'ok', 1, '{}', now(), now())`;
    expect(await pull()).toMatchObject([{ status: 'completed', inserted: 1 }]);
    const after = await pulls();
    expect(after).toHaveLength(before + 1);
    expect(after.at(-1)).toMatchObject({
      status: 'ok',
      record_count: 1,
      details: { table: 'public.ingestion_log', conflicts: 0 },
    });
    // A pull that finds nothing writes nothing.
    await pull();
    expect(await pulls()).toHaveLength(before + 1);
  });

  it('adds up failures by source in cesar.mv_ingestion_errors and in GET /api/status', async () => {
    await sql`select cesar.refresh_monitoring_views()`;
    const [webhookErrors] =
      await sql`select errors_7d, errors_1h, last_error from cesar.mv_ingestion_errors
                                      where source = 'webhook'`;
    expect(webhookErrors!.errors_1h).toBeGreaterThanOrEqual(1);
    expect(webhookErrors!.last_error).toEqual(expect.any(String));
    const status = await (await apiApp(sql).request('/api/status', { headers: auth })).json();
    expect(status.ingestion_errors).toEqual(
      expect.arrayContaining([expect.objectContaining({ source: 'webhook' })]),
    );
  });
});
