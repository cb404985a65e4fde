import { describe, expect, it } from 'vitest';
import { describeEventTable } from '../packages/shared/src/capture/queries.ts';
import { testSql, withRollback } from './helpers/db.ts';

// The database owns the change pipeline: captured statements become events (watched tables)
// and outbox marks (mirrored tables) in SQL, in the statement that expands them.

const sql = testSql();

describe('the change pipeline', () => {
  it('makes events for watched tables and outbox marks for mirrored ones, in one expansion', async () => {
    await withRollback(sql, async (tx) => {
      for (const name of ['pipe_watched', 'pipe_mirrored', 'pipe_both']) {
        await tx.unsafe(`create table public.${name} (id int primary key, v text,
                         updated_at timestamptz not null default now())`);
      }
      await tx`select cesar.watch('public.pipe_watched'), cesar.watch('public.pipe_both')`;
      await tx`insert into cesar.sync_tables (table_name) values ('public.pipe_mirrored'), ('public.pipe_both')`;
      for (const name of ['pipe_watched', 'pipe_mirrored', 'pipe_both']) {
        await tx.unsafe(`insert into public.${name} values (1, 'a'), (2, 'b')`);
        await tx.unsafe(`update public.${name} set v = 'c' where id = 1`);
        // A touch of updated_at alone is no change: no event, no mark of its own.
        await tx.unsafe(
          `update public.${name} set updated_at = now() + interval '1 s' where id = 2`,
        );
      }
      // A change the sync applied from the mirror has an origin: an event, never a mark.
      await tx`set local cesar.origin = 'pull'`;
      await tx`insert into public.pipe_both values (3, 'from the mirror')`;
      await tx`reset cesar.origin`;
      await tx`select cesar.expand_captures()`;

      const events = await tx<Array<{ table_name: string; op: string; row_key: string }>>`
        select table_name, op, row_key from cesar.event_log
        where table_name like 'pipe\\_%' order by id`;
      expect(events).toEqual([
        { table_name: 'pipe_watched', op: 'INSERT', row_key: '1' },
        { table_name: 'pipe_watched', op: 'INSERT', row_key: '2' },
        { table_name: 'pipe_watched', op: 'UPDATE', row_key: '1' },
        { table_name: 'pipe_both', op: 'INSERT', row_key: '1' },
        { table_name: 'pipe_both', op: 'INSERT', row_key: '2' },
        { table_name: 'pipe_both', op: 'UPDATE', row_key: '1' },
        { table_name: 'pipe_both', op: 'INSERT', row_key: '3' },
      ]);
      const marks = await tx<Array<{ table_name: string; row_key: string; op: string }>>`
        select table_name, row_key, op from cesar.sync_outbox
        where table_name like 'public.pipe\\_%' order by table_name, row_key`;
      // One mark per row, its latest change.
      expect(marks).toEqual([
        { table_name: 'public.pipe_both', row_key: '1', op: 'UPDATE' },
        { table_name: 'public.pipe_both', row_key: '2', op: 'INSERT' },
        { table_name: 'public.pipe_mirrored', row_key: '1', op: 'UPDATE' },
        { table_name: 'public.pipe_mirrored', row_key: '2', op: 'INSERT' },
      ]);
      // Each mark carries its change: the transaction and the time, for the sync alone.
      const [change] = await tx<Array<{ txid: string; current: string; occurred_at: Date }>>`
        select txid::text, pg_current_xact_id()::text as current, occurred_at
        from cesar.sync_outbox where table_name = 'public.pipe_mirrored' and row_key = '1'`;
      expect(change!.txid).toBe(change!.current);
      expect(change!.occurred_at).toBeInstanceOf(Date);
    });
  });

  it("gives a later change a larger change id, and expands a store as it was captured though the table's purpose changed since", async () => {
    await withRollback(sql, async (tx) => {
      await tx`create table public.pipe_purpose (id int primary key, v text)`;
      await tx`select cesar.watch('public.pipe_purpose')`;
      await tx`insert into cesar.sync_tables (table_name) values ('public.pipe_purpose')`;
      await tx`insert into public.pipe_purpose values (1, 'a')`;
      await tx`select cesar.expand_captures()`;
      const changeId = async () =>
        BigInt(
          (await tx<Array<{ change_id: string }>>`
          select change_id::text from cesar.sync_outbox where table_name = 'public.pipe_purpose'`)[
            0
          ]!
            .change_id,
        );
      const first = await changeId();
      // Unwatched while a change waits: that change was captured watched, so it is an event;
      // the next one is not.
      await tx`update public.pipe_purpose set v = 'b' where id = 1`;
      await tx`select cesar.unwatch('public.pipe_purpose')`;
      await tx`update public.pipe_purpose set v = 'c' where id = 1`;
      const stores = await tx<Array<{ watched: boolean; mirrored: boolean; retired: boolean }>>`
        select watched, mirrored, retired_at is not null as retired from cesar.capture_stores
        where table_name = 'pipe_purpose' order by id`;
      expect(stores).toEqual([
        { watched: true, mirrored: false, retired: true },
        { watched: true, mirrored: true, retired: true },
        { watched: false, mirrored: true, retired: false },
      ]);
      await tx`select cesar.expand_captures()`;
      expect(await changeId()).toBeGreaterThan(first);
      expect(
        await tx`select op, record ->> 'v' as v from cesar.event_log where table_name = 'pipe_purpose' order by id`,
      ).toEqual([{ op: 'INSERT', v: 'a' }, { op: 'UPDATE', v: 'b' }]);
      // Neither watched nor mirrored: not captured at all.
      await tx`delete from cesar.sync_tables where table_name = 'public.pipe_purpose'`;
      expect(
        await tx`select tgname from pg_trigger where tgrelid = 'public.pipe_purpose'::regclass`,
      ).toEqual([]);
    });
  });

  it("marks the old key deleted when an update changes a mirrored row's key; its event is the new row's", async () => {
    await withRollback(sql, async (tx) => {
      await tx`create table public.pipe_rekey (id int primary key, v text)`;
      await tx`select cesar.watch('public.pipe_rekey')`;
      await tx`insert into cesar.sync_tables (table_name) values ('public.pipe_rekey')`;
      await tx`insert into public.pipe_rekey values (1, 'a')`;
      await tx`select cesar.expand_captures()`;
      await tx`update public.pipe_rekey set id = 2 where id = 1`;
      await tx`select cesar.expand_captures()`;
      expect(
        await tx`select row_key, op from cesar.sync_outbox
                 where table_name = 'public.pipe_rekey' order by row_key`,
      ).toEqual([{ row_key: '1', op: 'DELETE' }, { row_key: '2', op: 'UPDATE' }]);
      expect(
        await tx`select op, row_key, old_record from cesar.event_log
                 where table_name = 'pipe_rekey' order by id`,
      ).toEqual([
        { op: 'INSERT', row_key: '1', old_record: null },
        { op: 'UPDATE', row_key: '2', old_record: null },
      ]);
    });
  });

  it("renders a set of stores' expansion once, and never uses it for stores whose rows changed", async () => {
    await withRollback(sql, async (tx) => {
      // No other file's write is expanded with this test's (it would change the set of stores).
      await tx`lock table cesar.captures in share row exclusive mode`;
      await tx`create table public.pipe_cached (id int primary key, v text)`;
      await tx`select cesar.watch('public.pipe_cached')`;
      const expand = async (id: number) => {
        await tx`insert into public.pipe_cached values (${id}, 'a')`;
        await tx`select cesar.expand_captures()`;
      };
      const kept = async () =>
        (await tx<Array<{ n: number }>>`
          select count(*)::int as n from cesar.expansion_statements
          where statement like '%pipe\_cached%'`)[0]!.n;
      await expand(1);
      expect(await kept()).toBe(1);
      // The kept statement is the one run: spoilt, the next expansion fails with it.
      await tx`update cesar.expansion_statements set statement = 'select 1 / 0'
               where statement like '%pipe\_cached%'`;
      await tx`savepoint spoilt`;
      await expect(expand(2)).rejects.toMatchObject({ code: '22012' });
      await tx`rollback to savepoint spoilt`;
      // A store's row changed, with the cache left as it was (its trigger off): the digest
      // differs, and the statement is rendered again from the row as it is (mirrored now).
      await tx`alter table cesar.capture_stores disable trigger forget_expansion_statements`;
      await tx`update cesar.capture_stores set mirrored = true where table_name = 'pipe_cached'`;
      await expand(3);
      await tx`alter table cesar.capture_stores enable trigger forget_expansion_statements`;
      expect(
        await tx`select row_key from cesar.event_log where table_name = 'pipe_cached' order by id`,
      ).toEqual([{ row_key: '1' }, { row_key: '3' }]);
      expect(
        await tx`select row_key from cesar.sync_outbox where table_name = 'public.pipe_cached'`,
      ).toEqual([{ row_key: '3' }]);
      // The store's next change empties the cache.
      await tx`select cesar.unwatch('public.pipe_cached')`;
      expect(await tx`select stores_digest from cesar.expansion_statements`).toEqual([]);
    });
  });

  it('refuses to mirror a table that does not exist or cannot be captured', async () => {
    await withRollback(sql, async (tx) => {
      await expect(tx`insert into cesar.sync_tables (table_name) values ('public.pipe_absent')`)
        .rejects.toThrow(/cannot mirror public.pipe_absent: no such table/);
    });
    await withRollback(sql, async (tx) => {
      await tx`create table public.pipe_nokey (a int, b int)`;
      await expect(tx`insert into cesar.sync_tables (table_name) values ('public.pipe_nokey')`)
        .rejects.toThrow(/needs a single-column primary key/);
    });
  });

  it('decides which columns an update changed by one rule, for captures and native deliveries alike', async () => {
    const cases: Array<[Record<string, unknown>, Record<string, unknown>, string[] | null]> = [
      [{ id: 1, a: 1, updated_at: 'x' }, { id: 1, a: 1, updated_at: 'y' }, null],
      [{ id: 1, a: { x: [1, 2] } }, { id: 1, a: { x: [1, 2] } }, null],
      [{ id: 1, a: 2, b: null }, { id: 1, a: 1, b: null }, ['a']],
      // The new image's columns are the row's: one the old image lacks changed, one only the
      // old image has is not compared.
      [{ id: 1, a: 1, b: 1 }, { id: 1, b: 1 }, ['a']],
      [{ id: 1, b: 1 }, { id: 1, a: 1, b: 1 }, null],
      [{ id: 1, z: 1, a: 1 }, { id: 1, z: 2, a: 2 }, ['a', 'z']],
    ];
    for (const [record, old, expected] of cases) {
      const [row] = await sql<Array<{ changed: string[] | null }>>`
        select changed from cesar.changed_columns(${sql.json(record as never)}, ${
        sql.json(old as never)
      })`;
      expect(row!.changed, JSON.stringify([record, old])).toEqual(expected);
      const described = await describeEventTable(sql, 'public.agents', {
        record,
        old_record: old,
      });
      expect(described!.changed).toEqual(expected ?? []);
    }
  });
});

describe('generated SQL', () => {
  const render = async (template: string, slots: Record<string, unknown>) =>
    (await sql<Array<{ text: string }>>`
      select cesar.render_sql(${template}, ${sql.json(slots as never)}) as text`)[0]!.text;

  it('fills each named slot once, quoting as the slot says, and refuses a slot missing or unused', async () => {
    expect(
      await render('select {col:ident} from {t:ident} where x = {v:literal} {rest}', {
        col: 'select',
        t: 'a "b"',
        v: "it's {t}",
        rest: 'limit 1',
      }),
    ).toBe(`select "select" from "a ""b""" where x = 'it''s {t}' limit 1`);
    // A value is never searched for slots: a table called "{rest}" stays itself.
    expect(await render('{a:ident}.{b}', { a: '{b}', b: 'x' })).toBe('"{b}".x');
    await expect(render('select {missing}', {})).rejects.toThrow(/slot \{missing\} has no value/);
    await expect(render('select 1', { extra: 'x' })).rejects.toThrow(/not in the template: extra/);
    await expect(render('select {a}', { a: null })).rejects.toThrow(/slot \{a\} is null/);
  });

  it('makes a working store whose key column holds a dollar tag (the body is a literal)', async () => {
    await withRollback(sql, async (tx) => {
      const key = 'k$body$; select 1; $body$';
      await tx`set local check_function_bodies = off`;
      await tx`create table public.pipe_dollar (${tx(key)} int primary key, v text)`;
      await tx`select cesar.watch('public.pipe_dollar')`;
      await tx`insert into public.pipe_dollar values (7, 'x')`;
      await tx`select cesar.expand_captures()`;
      expect(
        await tx`select op, row_key from cesar.event_log where table_name = 'pipe_dollar'`,
      ).toEqual([{ op: 'INSERT', row_key: '7' }]);
    });
  });

  it('makes a working store for a table with awkward names', async () => {
    const schema = 'pipe "odd" schema';
    const table = `${'t'.repeat(30)} select "x" ${'y'.repeat(21)}`; // 63 bytes
    const column = `order ${'c'.repeat(57)}`; // 63 bytes
    expect(Buffer.byteLength(table)).toBe(63);
    expect(Buffer.byteLength(column)).toBe(63);
    await withRollback(sql, async (tx) => {
      await tx`create schema ${tx(schema)}`;
      await tx`create table ${tx(schema)}.${tx(table)} (
                 ${tx(column)} text primary key, "from" int, "{store}" text)`;
      const relid = (await tx<Array<{ relid: string }>>`
        select c.oid::text as relid from pg_class c join pg_namespace n on n.oid = c.relnamespace
        where n.nspname = ${schema} and c.relname = ${table}`)[0]!.relid;
      await tx`select cesar.watch(${relid}::oid::regclass)`;
      await tx`insert into ${tx(schema)}.${tx(table)} values ('k''1', 1, '{x}'), ('k 2', 2, null)`;
      await tx`update ${tx(schema)}.${tx(table)} set "from" = 3 where "from" = 1`;
      await tx`delete from ${tx(schema)}.${tx(table)} where "from" = 2`;
      await tx`select cesar.expand_captures()`;
      const events = await tx<
        Array<{ op: string; row_key: string; record: unknown; changed_columns: string[] | null }>
      >`
        select op, row_key, record, changed_columns from cesar.event_log
        where schema_name = ${schema} and table_name = ${table} order by id`;
      expect(events).toEqual([
        {
          op: 'INSERT',
          row_key: "k'1",
          record: { [column]: "k'1", from: 1, '{store}': '{x}' },
          changed_columns: null,
        },
        {
          op: 'INSERT',
          row_key: 'k 2',
          record: { [column]: 'k 2', from: 2, '{store}': null },
          changed_columns: null,
        },
        {
          op: 'UPDATE',
          row_key: "k'1",
          record: { [column]: "k'1", from: 3, '{store}': '{x}' },
          changed_columns: ['from'],
        },
        { op: 'DELETE', row_key: 'k 2', record: null, changed_columns: null },
      ]);
    });
  });
});
