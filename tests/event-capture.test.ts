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
      await tx`select cesar.expand_captures()`;
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

  it("captures a writer's change whatever its role: the store is written with the capture's rights", async () => {
    await withRollback(sql, async (tx) => {
      await tx`create table public.capture_roles (id int primary key)`;
      await tx`select cesar.watch('public.capture_roles')`;
      await tx`create role capture_writer`;
      await tx`grant usage on schema public to capture_writer`;
      await tx`grant insert on public.capture_roles to capture_writer`;
      expect(await tx`select has_schema_privilege('capture_writer', 'cesar', 'usage') as cesar`)
        .toEqual([{ cesar: false }]);
      await tx`set local role capture_writer`;
      await tx`insert into public.capture_roles values (7)`;
      await tx`reset role`;
      await tx`select cesar.expand_captures()`;
      expect(await tx`select op, row_key from cesar.event_log where table_name = 'capture_roles'`)
        .toEqual([{ op: 'INSERT', row_key: '7' }]);
    });
  });

  it('leaves no event when the transaction rolls back', async () => {
    const name = `capture-rollback-${Date.now()}`;
    await sql.begin(async (tx) => {
      await tx`insert into agents (name, type) values (${name}, 'monitor')`;
      throw new Error('roll back');
    }).catch(() => {});
    await sql`select cesar.expand_captures()`;
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
      await tx`select cesar.expand_captures()`;
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
      await tx`select cesar.expand_captures()`;
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
      await tx`select cesar.expand_captures()`;
      const events =
        await tx`select op, row_key from cesar.event_log where table_name = 'capture_probe' order by id`;
      expect(events).toEqual([{ op: 'INSERT', row_key: 'b' }, { op: 'UPDATE', row_key: 'a' }]);
      expect(
        await tx`select key_column from cesar.watched_tables where table_name = 'public.capture_probe'`,
      ).toEqual([{ key_column: 'code' }]);
      await tx`select cesar.unwatch('public.capture_probe')`;
      await tx`insert into public.capture_probe values ('c', 4)`;
      await tx`select cesar.expand_captures()`;
      expect(await tx`select 1 from cesar.event_log where table_name = 'capture_probe'`)
        .toHaveLength(2);
    });
    await expect(withRollback(sql, async (tx) => {
      await tx`create table public.capture_nokey (v int)`;
      await tx`select cesar.watch('public.capture_nokey')`;
    })).rejects.toThrow(/needs a single-column primary key/);
    await expect(withRollback(sql, async (tx) => {
      await tx`create schema if not exists auth`;
      await tx`create table if not exists auth.users (id uuid primary key, encrypted_password text)`;
      await tx`select cesar.watch('auth.users')`;
    })).rejects.toThrow(/Supabase Auth's tables hold password hashes/);
    for (const table of ['net.http_request_queue', 'cron.job', 'cesar.job_queue']) {
      await expect(sql`select cesar.watch(${table}::regclass)`, table).rejects.toThrow(
        /cannot watch .*: the (net|cron|cesar) schema/,
      );
    }
  });

  it('keeps a statement as one array, or past 64 MB as arrays made into events one at a time; pairs an UPDATE by key', async () => {
    await withRollback(sql, async (tx) => {
      await tx`create table public.capture_bulk (id int primary key, status text, n int)`;
      await tx`select cesar.watch('public.capture_bulk')`;
      await tx`insert into public.capture_bulk select i, 'new', i from generate_series(1, 2500) i`;
      // The one-array limit lowered (64 MB by default) to see a larger statement's arrays.
      await tx`set local cesar.capture_one_array_bytes = 10000`;
      await tx`insert into public.capture_bulk select i, 'new', i from generate_series(2501, 5000) i`;
      await tx`update public.capture_bulk set status = 'done' where id % 2 = 0`;
      const [store] = await tx<Array<{ id: number }>>`
        select id from cesar.capture_stores where table_name = 'capture_bulk' and retired_at is null`;
      const arrays = `cesar.captured_${
        store!.id
      } d join cesar.captures h using (statement_id, chunk)`;
      const statements = await tx.unsafe(
        `select h.op, count(*)::int as arrays, sum(h.row_count)::int as row_count,
                sum(cardinality(d.new_rows))::int as new, sum(cardinality(d.old_rows))::int as old,
                max(greatest(cardinality(d.new_rows), cardinality(d.old_rows))) as largest
         from ${arrays} group by h.statement_id, h.op order by h.statement_id`,
      );
      expect(statements).toEqual([
        { op: 'INSERT', arrays: 1, row_count: 2500, new: 2500, old: null, largest: 2500 },
        // Past the limit, in order, at most 1,024 rows an array.
        {
          op: 'INSERT',
          arrays: 3,
          row_count: 2500,
          new: 2500,
          old: null,
          largest: expect.any(Number),
        },
        // An UPDATE's arrays by a hash of the key (512 rows each on average).
        {
          op: 'UPDATE',
          arrays: 5,
          row_count: 2500,
          new: 2500,
          old: 2500,
          largest: expect.any(Number),
        },
      ]);
      expect(statements[1]!.largest > 1000 && statements[1]!.largest <= 1024).toBe(true);
      // Each UPDATE array holds both images of its rows.
      expect(
        await tx.unsafe(
          `select bool_and((select array_agg((r).id order by (r).id) from unnest(d.new_rows) r)
                       = (select array_agg((r).id order by (r).id) from unnest(d.old_rows) r)) as aligned
         from ${arrays} where h.op = 'UPDATE'`,
        ),
      ).toEqual([{ aligned: true }]);
      expect(await tx`select pending >= 7500 as ok from cesar.event_backlog()`).toEqual([{
        ok: true,
      }]);
      // A call takes whole arrays: other files' statements aside, the first INSERT whole, then
      // the second one array at a time.
      const made: number[] = [];
      for (let call = 0; call < 200 && made.length < 9; call++) {
        const before =
          await tx`select count(*)::int as n from cesar.event_log where table_name = 'capture_bulk'`;
        await tx`select cesar.expand_captures(1)`;
        const after =
          await tx`select count(*)::int as n from cesar.event_log where table_name = 'capture_bulk'`;
        if (after[0]!.n > before[0]!.n) made.push(after[0]!.n - before[0]!.n);
      }
      const sum = (ns: number[]) => ns.reduce((a, b) => a + b, 0);
      expect(made).toHaveLength(1 + 3 + 5);
      expect(made[0]).toBe(2500);
      expect(sum(made.slice(1, 4))).toBe(2500);
      expect(made.slice(1, 4).every((n) => n <= 1024)).toBe(true);
      expect(sum(made.slice(4))).toBe(2500);
      const [summary] = await tx`
        select count(*) filter (where op = 'INSERT')::int as inserts,
               count(*) filter (where op = 'UPDATE')::int as updates,
               count(*) filter (where op = 'UPDATE' and changed_columns = '{status}'
                                and old_record ->> 'status' = 'new' and record ->> 'status' = 'done'
                                and record ->> 'id' = row_key and old_record ->> 'id' = row_key)::int as paired,
               bool_and(op <> 'UPDATE' or (record ->> 'n')::int % 2 = 0) as evens
        from cesar.event_log where table_name = 'capture_bulk'`;
      expect(summary).toEqual({ inserts: 5000, updates: 2500, paired: 2500, evens: true });
      // Ids follow statement order: every INSERT before every UPDATE.
      const [order] = await tx`
        select max(id) filter (where op = 'INSERT') < min(id) filter (where op = 'UPDATE') as ok
        from cesar.event_log where table_name = 'capture_bulk'`;
      expect(order!.ok).toBe(true);
      expect(await tx.unsafe(`select 1 from cesar.captured_${store!.id}`)).toHaveLength(0);
    });
  });

  it('bounds an array by size too: 16 MB, however few rows', async () => {
    await withRollback(sql, async (tx) => {
      await tx`create table public.capture_wide (id int primary key, body text)`;
      await tx`select cesar.watch('public.capture_wide')`;
      await tx`set local cesar.capture_one_array_bytes = 4000000`;
      // 20 rows of 1 MB of hex (lz4 finds little to compress): 15 to an array of 16 MB.
      await tx`insert into public.capture_wide select i, (
                 select string_agg(md5(random()::text || g || i), '') from generate_series(1, 32768) g)
               from generate_series(1, 20) i`;
      // Then all of them made small: three arrays (about 8 MB each) by key.
      await tx`update public.capture_wide set body = 'small'`;
      const [store] = await tx<Array<{ id: number }>>`
        select id from cesar.capture_stores where table_name = 'capture_wide' and retired_at is null`;
      const arrays = await tx.unsafe(
        `select h.op, cardinality(d.new_rows) as new, cardinality(d.old_rows) as old
         from cesar.captured_${store!.id} d join cesar.captures h using (statement_id, chunk)
         order by d.statement_id, d.chunk`,
      );
      expect(arrays.filter((a) => a.op === 'INSERT')).toEqual([
        { op: 'INSERT', new: 15, old: null },
        { op: 'INSERT', new: 5, old: null },
      ]);
      const updates = arrays.filter((a) => a.op === 'UPDATE');
      expect(updates).toHaveLength(3);
      expect(updates.every((a) => a.new === a.old)).toBe(true);
      await tx`select cesar.expand_captures()`;
      const [events] = await tx`
        select count(*) filter (where op = 'INSERT' and length(record ->> 'body') = 1048576)::int as inserts,
               count(*) filter (where op = 'UPDATE' and record ->> 'body' = 'small'
                                and length(old_record ->> 'body') = 1048576 and changed_columns = '{body}')::int as updates
        from cesar.event_log where table_name = 'capture_wide'`;
      expect(events).toEqual({ inserts: 20, updates: 20 });
    });
  });

  it('makes events a whole statement at a time, oldest first, up to the rows asked for', async () => {
    await withRollback(sql, async (tx) => {
      await tx`create table public.capture_steps (id int primary key, v int)`;
      await tx`select cesar.watch('public.capture_steps')`;
      await tx`select cesar.expand_captures()`;
      await tx`insert into public.capture_steps select i, 0 from generate_series(1, 3) i`;
      await tx`insert into public.capture_steps values (4, 0), (5, 0)`;
      // Other files' statements may come first: each call takes one statement, whole.
      const seen: number[] = [];
      for (let call = 0; call < 100 && seen.at(-1) !== 5; call++) {
        await tx`select cesar.expand_captures(1)`;
        const [{ n }] = await tx`select count(*)::int as n from cesar.event_log
                                 where table_name = 'capture_steps'` as unknown as [{ n: number }];
        if (n !== (seen.at(-1) ?? 0)) seen.push(n);
      }
      expect(seen).toEqual([3, 5]);
      const keys =
        await tx`select row_key from cesar.event_log where table_name = 'capture_steps' order by id`;
      expect(keys.map((k) => k.row_key)).toEqual(['1', '2', '3', '4', '5']);
    });
  });

  it('follows a watched table through ALTER TABLE: a new store for the new shape, the old one drained then dropped', async () => {
    await withRollback(sql, async (tx) => {
      await tx`create table public.capture_shape (id int primary key, v int)`;
      await tx`select cesar.watch('public.capture_shape')`;
      await tx`insert into public.capture_shape values (1, 10)`;
      await tx`alter table public.capture_shape add column note text default 'n/a'`;
      await tx`insert into public.capture_shape (id, v, note) values (2, 20, 'second')`;
      await tx`alter table public.capture_shape alter column v type bigint`;
      await tx`alter table public.capture_shape rename column note to remark`;
      await tx`update public.capture_shape set v = 21, remark = 'renamed' where id = 2`;
      await tx`alter table public.capture_shape drop column remark, add column at timestamptz default now()`;
      await tx`delete from public.capture_shape where id = 1`;
      const stores = await tx`
        select columns, retired_at is null as active from cesar.capture_stores
        where table_name = 'capture_shape' order by id`;
      expect(stores.map((s) => s.active)).toEqual([false, false, false, false, true]);
      expect(stores[4]!.columns).toEqual(['id integer', 'v bigint', 'at timestamp with time zone']);
      await tx`select cesar.expand_captures()`;
      const events = await tx`
        select op, record, old_record, changed_columns from cesar.event_log
        where table_name = 'capture_shape' order by id`;
      expect(events).toEqual([
        { op: 'INSERT', record: { id: 1, v: 10 }, old_record: null, changed_columns: null },
        {
          op: 'INSERT',
          record: { id: 2, v: 20, note: 'second' },
          old_record: null,
          changed_columns: null,
        },
        {
          op: 'UPDATE',
          record: { id: 2, v: 21, remark: 'renamed' },
          old_record: { id: 2, v: 20, remark: 'second' },
          changed_columns: ['remark', 'v'],
        },
        {
          op: 'DELETE',
          record: null,
          old_record: expect.objectContaining({ id: 1, v: 10 }),
          changed_columns: null,
        },
      ]);
      expect((await tx`select cesar.drop_retired_capture_stores() as n`)[0]!.n)
        .toBeGreaterThanOrEqual(4);
      expect(
        await tx`select count(*)::int as n from cesar.capture_stores where table_name = 'capture_shape'`,
      )
        .toEqual([{ n: 1 }]);
      // (Other files' statements may be made into events by the same calls: count this table's.)
      const made = async () => {
        await tx`select cesar.expand_captures()`;
        return (await tx`select op from cesar.event_log where table_name = 'capture_shape' order by id`)
          .slice(4).map((e) => e.op);
      };
      await tx`insert into public.capture_shape (id, v) values (3, 30)`;
      expect(await made()).toEqual(['INSERT']);
      // Replacing the key: the ALTER goes through, capture goes on.
      await tx`alter table public.capture_shape drop constraint capture_shape_pkey`;
      await tx`update public.capture_shape set v = 31 where id = 3`;
      await tx`alter table public.capture_shape add primary key (id)`;
      expect(await made()).toEqual(['INSERT', 'UPDATE']);
    });
  });

  it('keeps what a dropped table captured: its events are made, then its store is dropped', async () => {
    await withRollback(sql, async (tx) => {
      await tx`create table public.capture_gone (id int primary key)`;
      await tx`select cesar.watch('public.capture_gone')`;
      await tx`insert into public.capture_gone values (1), (2)`;
      await tx`drop table public.capture_gone`;
      expect(await tx`select 1 from cesar.watched_tables where table_name = 'public.capture_gone'`)
        .toHaveLength(0);
      expect(
        await tx`select retired_at is not null as retired from cesar.capture_stores
                      where table_name = 'capture_gone'`,
      ).toEqual([{ retired: true }]);
      await tx`select cesar.expand_captures()`;
      expect(
        await tx`select row_key from cesar.event_log where table_name = 'capture_gone' order by id`,
      )
        .toEqual([{ row_key: '1' }, { row_key: '2' }]);
      await tx`select cesar.drop_retired_capture_stores()`;
      expect(await tx`select 1 from cesar.capture_stores where table_name = 'capture_gone'`)
        .toHaveLength(0);
    });
  });

  it("counts captured statements as the primary's unpushed changes and as pending events", async () => {
    await withRollback(sql, async (tx) => {
      await tx`select cesar.expand_captures()`;
      const [{ id }] =
        await tx`insert into agents (name, type) values ('capture-unpushed', 'monitor') returning id` as unknown as [
          { id: string },
        ];
      expect(await tx`select op from cesar.unpushed_changes('public.agents') where row_key = ${id}`)
        .toEqual([{ op: 'INSERT' }]);
      expect(await tx`select cesar.events_pending() as p`).toEqual([{ p: true }]);
      await tx`select cesar.expand_captures()`;
      expect(await tx`select op from cesar.unpushed_changes('public.agents') where row_key = ${id}`)
        .toEqual([{ op: 'INSERT' }]);
    });
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
