import { describe, expect, it } from 'vitest';
import { testSql, withRollback } from './helpers/db.ts';

const sql = testSql();

interface EventRow {
  op: string;
  record: Record<string, unknown> | null;
  old_record: Record<string, unknown> | null;
  changed_columns: string[] | null;
  row_key: string;
  txid: string;
  status: string;
}

describe('event capture', () => {
  it("records INSERT, UPDATE and DELETE in the writer's transaction, with images, key and changed columns", async () => {
    await withRollback(sql, async (tx) => {
      const [{ id }] =
        await tx`insert into agents (name, type) values ('capture-1', 'monitor') returning id` as unknown as [
          { id: string },
        ];
      await tx`update agents set status = 'idle', metadata = '{"a": 1}' where id = ${id}`;
      await tx`delete from agents where id = ${id}`;
      const [{ txid }] = await tx`select pg_current_xact_id()::text as txid` as unknown as [
        { txid: string },
      ];
      const events = await tx<
        EventRow[]
      >`select * from cesar.event_log where row_key = ${id} order by id`;
      expect(events.map((e) => e.op)).toEqual(['INSERT', 'UPDATE', 'DELETE']);
      expect(events.every((e) => e.txid === txid && e.status === 'pending')).toBe(true);
      const [insert, update, del] = events;
      expect(insert).toMatchObject({
        record: { id, name: 'capture-1', status: 'active' },
        old_record: null,
        changed_columns: null,
      });
      expect(update).toMatchObject({
        record: { status: 'idle', metadata: { a: 1 } },
        old_record: { status: 'active' },
        changed_columns: ['metadata', 'status'],
      });
      expect(del).toMatchObject({ record: null, old_record: { id, status: 'idle' } });
    });
  });

  it('leaves no event when the transaction rolls back', async () => {
    const name = `capture-rollback-${Date.now()}`;
    await sql.begin(async (tx) => {
      await tx`insert into agents (name, type) values (${name}, 'monitor')`;
      throw new Error('roll back');
    }).catch(() => {});
    expect(await sql`select 1 from cesar.event_log where record ->> 'name' = ${name}`).toHaveLength(
      0,
    );
  });

  it('makes no event for an update that changes nothing (updated_at aside)', async () => {
    await withRollback(sql, async (tx) => {
      const [{ id }] =
        await tx`insert into agents (name, type) values ('capture-2', 'monitor') returning id` as unknown as [
          { id: string },
        ];
      await tx`update agents set status = status where id = ${id}`;
      await tx`update agents set updated_at = now() - interval '1 day' where id = ${id}`;
      const ops = await tx`select op from cesar.event_log where row_key = ${id}`;
      expect(ops.map((e) => e.op)).toEqual(['INSERT']);
    });
  });

  it('captures a 10,000-row insert as 10,000 events with one doorbell', async () => {
    await withRollback(sql, async (tx) => {
      await tx`insert into cesar.local_settings (name, value) values
                 ('cesar_functions_url', 'http://127.0.0.1:1/functions/v1'), ('cesar_function_secret', 'bulk-secret-value')
               on conflict (name) do update set value = excluded.value`;
      const [before] = await tx`select coalesce(max(id), 0) as id from net.http_request_queue`;
      const [{ first }] =
        await tx`select coalesce(max(id), 0) as first from cesar.event_log` as unknown as [
          { first: string },
        ];
      await tx`insert into tasks (title, status) select 'bulk ' || i, 'completed' from generate_series(1, 10000) i`;
      const [{ n }] =
        await tx`select count(*)::int as n from cesar.event_log where id > ${first} and table_name = 'tasks' and record ->> 'title' like 'bulk %'` as unknown as [
          { n: number },
        ];
      expect(n).toBe(10_000);
      const rings = await tx`select url from net.http_request_queue where id > ${
        before!.id
      } and url like '%/webhook/drain'`;
      expect(rings).toEqual([{ url: 'http://127.0.0.1:1/functions/v1/webhook/drain' }]);
    });
  });

  it('watches and unwatches any table with a single-column key, and refuses others', async () => {
    await withRollback(sql, async (tx) => {
      await tx`create table public.capture_probe (code text primary key, v int)`;
      await tx`insert into public.capture_probe values ('a', 1)`;
      expect(await tx`select 1 from cesar.event_log where table_name = 'capture_probe'`)
        .toHaveLength(0);
      expect((await tx`select cesar.watch('public.capture_probe') as t`)[0]!.t).toBe(
        'public.capture_probe',
      );
      await tx`insert into public.capture_probe values ('b', 2)`;
      await tx`update public.capture_probe set v = 3 where code = 'a'`;
      const events =
        await tx`select op, row_key from cesar.event_log where table_name = 'capture_probe' order by id`;
      expect(events).toEqual([{ op: 'INSERT', row_key: 'b' }, { op: 'UPDATE', row_key: 'a' }]);
      expect(
        await tx`select key_column from cesar.watched_tables where table_name = 'public.capture_probe'`,
      ).toEqual([{ key_column: 'code' }]);
      await tx`select cesar.unwatch('public.capture_probe')`;
      await tx`insert into public.capture_probe values ('c', 4)`;
      expect(await tx`select 1 from cesar.event_log where table_name = 'capture_probe'`)
        .toHaveLength(2);
    });
    await expect(withRollback(sql, async (tx) => {
      await tx`create table public.capture_nokey (v int)`;
      await tx`select cesar.watch('public.capture_nokey')`;
    })).rejects.toThrow(/needs a single-column primary key/);
  });

  it("watches the inventory's tables by default", async () => {
    const rows = await sql`select table_name from cesar.watched_tables order by 1`;
    expect(rows.map((r) => r.table_name)).toEqual(expect.arrayContaining([
      'public.a2a_conversations',
      'public.a2a_messages',
      'public.agents',
      'public.llm_collaborations',
      'public.local_llm_learning_examples',
      'public.sessions',
      'public.tasks',
    ]));
  });
});
