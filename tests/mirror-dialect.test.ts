import { afterAll, describe, expect, it } from 'vitest';
import type { Sql } from '../packages/shared/src/db.ts';
import {
  COCKROACH_REJECTS,
  COCKROACHDB,
  type Dialect,
  dialectFromVersion,
  ident,
  mirrorDialect,
  mirrorStatements,
  POSTGRESQL,
  primaryStatements,
  qualified,
  run,
  type Statement,
} from '../packages/shared/src/mirror/dialect.ts';
import type { TableShape } from '../packages/shared/src/mirror/schema.ts';
import { testSql, withRollback } from './helpers/db.ts';
import { recordingMirror } from './helpers/mirror.ts';

// The mirror's dialect (sync/dialect.ts): every builder rendered for both dialects with
// awkward identifiers, CockroachDB's statements checked against the constructs it rejects,
// each statement run on a PostgreSQL table that has those names, and the dialect detected
// once per pool.

const sql = testSql();
const { mirror } = recordingMirror();
afterAll(() => sql.end({ timeout: 5 }));

const LONG = 'l'.repeat(63);
const TABLE = `select.order_${'x'.repeat(57)}`; // a reserved word; a 63-byte name
const shape: TableShape = {
  table: TABLE,
  key: 'key "quoted"',
  columns: [
    { name: 'key "quoted"', type: 'bigint', notNull: true },
    { name: 'two words', type: 'text', notNull: false },
    { name: 'order', type: 'boolean', notNull: false },
    { name: LONG, type: 'text[]', notNull: false },
    { name: 'we.ird', type: 'numeric(20,8)', notNull: false },
    { name: 'updated_at', type: 'timestamp with time zone', notNull: true },
  ],
};
/** A table without updated_at: the builders that branch on it take the other spelling. */
const plain: TableShape = { ...shape, table: 'select.from', columns: shape.columns.slice(0, 5) };

const ROW = ['1', 'a "b"', 'true', '{x,"y z"}', '1.5', '2026-01-01 00:00:00+00'];
/** ROW's columns as array literals, as the primary prints a page. */
const LITERALS = [
  '{1}',
  '{"a \\"b\\""}',
  '{t}',
  '{"{x,\\"y z\\"}"}',
  '{1.5}',
  '{"2026-01-01 00:00:00+00"}',
];

/** Every builder of the mirror's, with each spelling it has. */
function renderMirror(d: Dialect): Record<string, Array<Statement | null>> {
  const m = mirrorStatements(d);
  return {
    columns: [m.columns(TABLE)],
    createTombstones: [m.createTombstones()],
    addTombstonesOrigin: [m.addTombstonesOrigin()],
    createVersions: [m.createVersions()],
    createTable: [m.createTable(shape), m.createTable(plain)],
    createUpdatedIndex: [m.createUpdatedIndex(shape), m.createUpdatedIndex(plain)],
    pageOnMirror: [
      m.pageOnMirror(shape, LITERALS[0]!, LITERALS[5]!),
      m.pageOnMirror(plain, LITERALS[0]!, null),
    ],
    countKeys: [m.countKeys(shape, LITERALS[0]!)],
    upsertPage: [m.upsertPage(shape, LITERALS), m.upsertPage(plain, LITERALS.slice(0, 5))],
    deleteKeys: [m.deleteKeys(shape, '{2}')],
    recordTombstones: [m.recordTombstones(TABLE, '{2}')],
    forgetVersions: [m.forgetVersions(TABLE, '{2}')],
    clock: [m.clock()],
    changedRows: [
      m.changedRows(shape, null, null, 10, null),
      m.changedRows(shape, ROW[5]!, [ROW[5]!, '0'], 10, ROW[5]!),
    ],
    recordVersions: [m.recordVersions(TABLE, ['1'], [ROW[5]!])],
    tombstonesPage: [
      m.tombstonesPage(TABLE, null, 10),
      m.tombstonesPage(TABLE, [ROW[5]!, '0'], 10),
    ],
    markPulled: [m.markPulled(TABLE, ['2'])],
    anyRowAfter: [m.anyRowAfter(shape, null), m.anyRowAfter(shape, '0')],
    copyIn: [m.copyIn(shape, 'text'), m.copyIn(shape, 'binary')],
    countRows: [m.countRows(shape)],
    snapshotTimestamp: [m.snapshotTimestamp()],
    restorePage: [
      m.restorePage(shape, null, 10, null),
      m.restorePage(shape, '0', 10, d.asOfSystemTime ? '1767225600000000000.0000000000' : null),
    ],
    bucketHashes: [m.bucketHashes(shape)],
    rowHashes: [m.rowHashes(shape, ['1'])],
  };
}

function renderPrimary(): Record<string, Statement[]> {
  const p = primaryStatements;
  return {
    tablePage: [p.tablePage(shape, null, 10), p.tablePage(shape, '0', 10)],
    outboxPage: [p.outboxPage(shape, ['-1', ''], 10)],
    recordPushConflicts: [
      p.recordPushConflicts(shape, [{ row_key: '1', mirror_updated_at: ROW[5]! }]),
    ],
    bulkBounds: [p.bulkBounds(shape, null, 10), p.bulkBounds(shape, '0', 10)],
    copyBounds: [p.copyBounds(null, '9'), p.copyBounds('0', '9')],
    copyOut: [
      p.copyOut(shape, false, 'text'),
      p.copyOut(shape, true, 'text'),
      p.copyOut(shape, true, 'binary'),
    ],
    applyPulledRows: [p.applyPulledRows(shape, [ROW])],
    applyTombstones: [p.applyTombstones(shape, ['1'], [ROW[5]!])],
    applyRestorePage: [p.applyRestorePage(shape, null, null, [ROW])],
  };
}

/** The text left once every quoted identifier is taken out. */
const unquoted = (text: string) => text.replace(/"(?:[^"]|"")*"/g, '""');

describe('the mirror dialect', () => {
  it('quotes an identifier in one way: doubled quotes, each part of schema.table', () => {
    expect(ident('a "b" c')).toBe('"a ""b"" c"');
    expect(qualified('select.order')).toBe('"select"."order"');
  });

  for (const d of [POSTGRESQL, COCKROACHDB]) {
    it(`${d.name}: renders every builder, every identifier quoted`, () => {
      const rendered = renderMirror(d);
      // A builder added without a rendering here fails this test.
      expect(Object.keys(rendered).sort()).toEqual(Object.keys(mirrorStatements(d)).sort());
      for (const [name, statements] of Object.entries(rendered)) {
        for (const s of statements) {
          if (s === null) continue;
          const rest = unquoted(s.text);
          // A balanced text: no identifier's quote left open.
          expect((s.text.match(/"/g) ?? []).length % 2, name).toBe(0);
          for (const awkward of ['two words', 'quoted', LONG, 'we.ird', 'order_x']) {
            expect(rest, `${name}: ${awkward} unquoted`).not.toContain(awkward);
          }
          expect(Array.isArray(s.params), name).toBe(true);
        }
      }
    });
  }

  it('cockroachdb: sends nothing CockroachDB rejects', () => {
    const texts = Object.values(renderMirror(COCKROACHDB)).flat()
      .filter((s): s is Statement => s !== null).map((s) => s.text);
    expect(texts.length).toBeGreaterThan(25);
    for (const text of texts) {
      for (const pattern of COCKROACH_REJECTS) expect(text, text).not.toMatch(pattern);
    }
  });

  it('reads a restore at its snapshot on CockroachDB only', () => {
    const snapshot = '1767225600000000000.0000000000';
    expect(mirrorStatements(POSTGRESQL).snapshotTimestamp()).toBeNull();
    expect(mirrorStatements(COCKROACHDB).snapshotTimestamp()?.text).toMatch(
      /cluster_logical_timestamp\(\)/,
    );
    expect(mirrorStatements(COCKROACHDB).restorePage(shape, null, 10, snapshot).text)
      .toContain(`AS OF SYSTEM TIME '${snapshot}'`);
    // Anything but digits and the dot is dropped from the snapshot: it is spliced in.
    expect(mirrorStatements(COCKROACHDB).restorePage(shape, null, 10, "1'; drop table x; --").text)
      .toContain(`AS OF SYSTEM TIME '1'`);
    expect(mirrorStatements(POSTGRESQL).restorePage(shape, null, 10, null).text)
      .not.toMatch(/AS OF SYSTEM TIME/);
    expect(() => mirrorStatements(POSTGRESQL).restorePage(shape, null, 10, snapshot))
      .toThrow(/postgresql mirror cannot read at snapshot/);
  });

  it("runs every mirror statement on a PostgreSQL mirror's table with these names", async () => {
    const m = mirrorStatements(POSTGRESQL);
    await withRollback(mirror, async (tx) => {
      await tx`create schema "select"`;
      for (const [name, statements] of Object.entries(renderMirror(POSTGRESQL))) {
        for (const s of statements) {
          if (s === null) continue;
          if (name === 'copyIn') {
            // A row in text, then the same row again in binary as PostgreSQL prints it, key 8.
            const binary = s.text.endsWith('WITH BINARY');
            let data: Uint8Array | string = '7\tx\tf\t{a}\t2\t2026-01-01 00:00:00+00\n';
            if (binary) {
              const others = shape.columns.slice(1).map((c) => ident(c.name)).join(', ');
              const out = await run(tx, {
                text: `COPY (SELECT CAST(8 AS BIGINT), ${others} FROM ${qualified(TABLE)} ` +
                  `WHERE ${ident(shape.key)} = 7) TO STDOUT WITH (FORMAT binary)`,
                params: [],
              }).readable();
              const parts: Uint8Array[] = [];
              for await (const part of out) parts.push(part as Uint8Array);
              data = Buffer.concat(parts);
            }
            const copy = await run(tx, s).writable();
            await new Promise<void>((resolve, reject) => {
              copy.on('error', reject);
              copy.on('finish', resolve);
              copy.end(data);
            });
          } else await run(tx, s);
        }
      }
      const rows = await run(tx, m.restorePage(shape, null, 10, null)).values();
      expect(rows).toEqual([
        ['1', 'a "b"', 'true', '{x,"y z"}', '1.50000000', expect.any(String)],
        ['7', 'x', 'false', '{a}', '2.00000000', expect.any(String)],
        ['8', 'x', 'false', '{a}', '2.00000000', expect.any(String)],
      ]);
    });
  });

  it('runs every primary statement on a PostgreSQL table with these names', async () => {
    const p = primaryStatements;
    const rendered = renderPrimary();
    expect(Object.keys(rendered).sort()).toEqual(Object.keys(primaryStatements).sort());
    await withRollback(sql, async (tx) => {
      await tx`create schema "select"`;
      await run(tx, mirrorStatements(POSTGRESQL).createTable(shape));
      await run(tx, mirrorStatements(POSTGRESQL).createTable(plain));
      for (const [name, statements] of Object.entries(rendered)) {
        for (const s of statements) {
          if (name !== 'copyOut') {
            await run(tx, s);
            continue;
          }
          await run(tx, p.copyBounds('0', '9'));
          const copy = await run(tx, s).readable();
          for await (const _ of copy) { /* read to its end */ }
        }
      }
      const [row] = await run(tx, mirrorStatements(POSTGRESQL).countRows(shape));
      expect(Number(row!.n)).toBe(1);
    });
  });
});

describe('the dialect is detected once per mirror pool', () => {
  const COCKROACH =
    'CockroachDB CCL v23.1.11 (x86_64-pc-linux-gnu, built 2023/09/27 01:53:43, go1.19.10)';
  const POSTGRES =
    'PostgreSQL 15.8 (Debian 15.8-1.pgdg120+1) on x86_64-pc-linux-gnu, compiled by gcc (Debian 12.2.0-14) 12.2.0, 64-bit';

  /** A pool that answers `SELECT version()` with `version`, counting what it is asked. */
  function fakePool(version: string, failFirst = false) {
    const asked: string[] = [];
    const pool = {
      unsafe: (text: string) => {
        asked.push(text);
        if (failFirst && asked.length === 1) return Promise.reject(new Error('connection refused'));
        return Promise.resolve([{ version }]);
      },
    } as unknown as Sql;
    return { pool, asked };
  }

  it('names CockroachDB and PostgreSQL from their version strings', () => {
    expect(dialectFromVersion(COCKROACH)).toBe(COCKROACHDB);
    expect(dialectFromVersion(POSTGRES)).toBe(POSTGRESQL);
  });

  for (const [version, dialect] of [[COCKROACH, COCKROACHDB], [POSTGRES, POSTGRESQL]] as const) {
    it(`asks a ${dialect.name} pool once, however often it is needed`, async () => {
      const { pool, asked } = fakePool(version);
      const answers = await Promise.all([mirrorDialect(pool), mirrorDialect(pool)]);
      expect(await mirrorDialect(pool)).toBe(dialect);
      expect(answers).toEqual([dialect, dialect]);
      expect(asked).toEqual(['SELECT version() AS version']);
      // Another pool is asked for itself.
      const other = fakePool(version);
      await mirrorDialect(other.pool);
      expect(other.asked).toHaveLength(1);
    });
  }

  it('asks again after a failed question: a mirror that was down is not taken for PostgreSQL', async () => {
    const { pool, asked } = fakePool(COCKROACH, true);
    await expect(mirrorDialect(pool)).rejects.toThrow('connection refused');
    expect(await mirrorDialect(pool)).toBe(COCKROACHDB);
    expect(await mirrorDialect(pool)).toBe(COCKROACHDB);
    expect(asked).toHaveLength(2);
  });

  it("finds the local mirror's PostgreSQL", async () => {
    expect(await mirrorDialect(mirror)).toBe(POSTGRESQL);
  });
});
