import type { Sql } from '../db.ts';
import { keyIndex, type TextRow, updatedAtIndex } from './rows.ts';
import type { TableShape } from './schema.ts';

// Every statement the sync assembles at run time, and the one place identifiers are quoted.
// The mirror is CockroachDB in production and a second PostgreSQL locally: its statements are
// written in what both accept, and where they differ the difference is a capability flag of
// the mirror's dialect, detected once per pool from `SELECT version()`. The primary's own
// statements (always PostgreSQL) are here too, as primaryStatements: they share the same
// fragments and quoting. Callers run what a builder returns with run(); none writes SQL text.
//
// How rows travel between the two databases: every column read as text (the form both
// PostgreSQL and CockroachDB print and parse the same way), a page sent back as one text
// array per column, unnested and cast on the other side. A page of 1,000 rows is then as
// many bind parameters as the table has columns, far under the 65,534 limit, and each array
// is parsed once instead of once per value.

/** What the sync's statements branch on. */
export interface Dialect {
  name: 'cockroachdb' | 'postgresql';
  /**
   * A read at a past timestamp with `AS OF SYSTEM TIME` (CockroachDB), the same snapshot for
   * every call of a resumed restore; without it, a restore reads in one repeatable-read
   * transaction per call.
   */
  asOfSystemTime: boolean;
}

export const POSTGRESQL: Dialect = { name: 'postgresql', asOfSystemTime: false };
export const COCKROACHDB: Dialect = { name: 'cockroachdb', asOfSystemTime: true };

/** The dialect a `SELECT version()` string names. */
export function dialectFromVersion(version: string): Dialect {
  return /cockroach/i.test(version) ? COCKROACHDB : POSTGRESQL;
}

const detected = new WeakMap<Sql, Promise<Dialect>>();

/**
 * The mirror's dialect, asked once per pool (a failed question is asked again on the next
 * call: a mirror that was down is not taken for PostgreSQL).
 */
export function mirrorDialect(mirror: Sql): Promise<Dialect> {
  let dialect = detected.get(mirror);
  if (!dialect) {
    dialect = run<Array<{ version: string }>>(mirror, VERSION).then(([row]) =>
      dialectFromVersion(row!.version)
    );
    detected.set(mirror, dialect);
    dialect.catch(() => detected.delete(mirror));
  }
  return dialect;
}

/** A statement built here: its text, its parameters, and whether to prepare it. */
export interface Statement {
  text: string;
  params: unknown[];
  /** false: planned for its parameters on every run (its best plan depends on the page). */
  prepare?: boolean;
}

/**
 * COPY's formats the bulk load streams: binary (values as the wire protocol sends them, no
 * printing or parsing at either end) or text.
 */
export type CopyFormat = 'binary' | 'text';

/** Runs a statement built here: the sync's only `unsafe` call. */
export function run<T extends unknown[] = Array<Record<string, unknown>>>(
  db: Pick<Sql, 'unsafe'>,
  statement: Statement,
) {
  return db.unsafe<T>(
    statement.text,
    statement.params as never,
    statement.prepare === false ? { prepare: false } : undefined,
  );
}

const VERSION: Statement = { text: 'SELECT version() AS version', params: [] };

/** Constructs CockroachDB rejects (or that mean something else there). */
export const COCKROACH_REJECTS: readonly RegExp[] = [
  /\blisten\b/i,
  /\bnotify\b/i,
  /pg_advisory/i,
  /\btrigger\b/i,
  /\bserial\b/i,
  /\bctid\b/i,
  /\bxmin\b/i,
  /\bxmax\b/i,
  /::regclass/i,
  /\bunlogged\b/i,
  /\bcreate extension\b/i,
  /\binherits\b/i,
];

// ---------------------------------------------------------------------------------------------
// Identifiers and fragments.

/** Quotes an identifier that comes from the catalog of a declared table. */
export function ident(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

/** schema.table, each part quoted. */
export function qualified(table: string): string {
  return table.split('.').map(ident).join('.');
}

function keyType(shape: TableShape): string {
  return shape.columns[keyIndex(shape)]!.type;
}

function columnNames(shape: TableShape): string {
  return shape.columns.map((c) => ident(c.name)).join(', ');
}

/** The columns of a select that reads rows as text. */
function textColumns(shape: TableShape, alias = ''): string {
  const prefix = alias ? `${alias}.` : '';
  return shape.columns.map((c) => `CAST(${prefix}${ident(c.name)} AS TEXT)`).join(', ');
}

/**
 * A page's keys, from one array literal parameter, typed as the key. In a scalar subquery, so
 * that the literal is parsed once: as a bare expression, a filter would parse it again for
 * every row it looks at.
 */
function keyList(shape: TableShape, parameter: number): string {
  const type = keyType(shape);
  // The outer cast keeps `= ANY (...)` an array comparison, not a subquery's.
  return `CAST((SELECT CAST(CAST($${parameter} AS TEXT) AS ${type}[])) AS ${type}[])`;
}

/**
 * `SELECT <typed columns> FROM unnest(<text arrays>)`: the rows of a page, typed and named as
 * the table's columns, from parameters $first.. (one text array per column): JavaScript
 * arrays, or `literals`: each column's array already printed as one '{...}' string, which
 * goes from one database to the other without being taken apart in between.
 */
function unnestRows(shape: TableShape, first: number, literals = false): string {
  const casts = shape.columns.map((c, i) => `CAST(u.c${i} AS ${c.type}) AS ${ident(c.name)}`);
  const arrays = shape.columns.map((_, i) =>
    literals ? `CAST(CAST($${first + i} AS TEXT) AS TEXT[])` : `CAST($${first + i} AS TEXT[])`
  );
  const aliases = shape.columns.map((_, i) => `c${i}`);
  return `SELECT ${casts.join(', ')} FROM unnest(${arrays.join(', ')}) AS u (${
    aliases.join(', ')
  })`;
}

/**
 * Aggregates of a page (alias `p`) that print each column as one array literal (c0, c1...),
 * in key order: the parameters of unnestRows(shape, n, true).
 */
function literalColumns(shape: TableShape): string {
  return shape.columns.map((c, i) =>
    `CAST(array_agg(CAST(p.${ident(c.name)} AS TEXT) ORDER BY p.${
      ident(shape.key)
    }) AS TEXT) AS c${i}`
  ).join(', ');
}

/** `col = excluded.col` for every column but the key. */
function assignments(shape: TableShape): string {
  return shape.columns.filter((c) => c.name !== shape.key)
    .map((c) => `${ident(c.name)} = excluded.${ident(c.name)}`).join(', ');
}

/**
 * A timestamp parameter sent as text: postgres.js would send a timestamptz parameter through
 * a JavaScript Date, and lose its microseconds (a keyset cursor would then repeat its row).
 */
const timestamp = (parameter: number) => `CAST(CAST($${parameter} AS TEXT) AS TIMESTAMPTZ)`;

/**
 * A row's hash, spelled so that PostgreSQL and CockroachDB render it the same: booleans as
 * 0/1, timestamps as epoch microseconds, arrays joined, NULL marked.
 */
function rowHash(shape: TableShape): string {
  const columnText = (name: string, type: string) => {
    const c = ident(name);
    const value = type === 'boolean'
      ? `CASE WHEN ${c} THEN '1' ELSE '0' END`
      : type.startsWith('timestamp')
      ? `CAST(CAST(extract(epoch FROM ${c}) * 1000000 AS BIGINT) AS TEXT)`
      : type.endsWith('[]')
      ? `array_to_string(${c}, chr(30))`
      : `CAST(${c} AS TEXT)`;
    return `CASE WHEN ${c} IS NULL THEN 'N' ELSE 'V' || ${value} END`;
  };
  return `md5(${shape.columns.map((c) => columnText(c.name, c.type)).join(` || chr(31) || `)})`;
}

/** Verify's range of a key: its first character. */
function bucket(shape: TableShape): string {
  return `substr(CAST(${ident(shape.key)} AS TEXT), 1, 1)`;
}

/**
 * The next rows of the table itself in key order, after a key or from the start: two
 * spellings rather than `$1 is null or key > $1`, which no index can serve.
 */
function keysetPage(shape: TableShape, after: string | null, limit: number, select: string) {
  const key = ident(shape.key);
  return {
    text: `with page as (
       select t.* from ${qualified(shape.table)} t
       ${after === null ? '' : `where t.${key} > $1::text::${keyType(shape)}`}
       order by t.${key} limit ${limit}
     )
     select count(*)::int as rows, (select p.${key}::text from page p order by p.${key} desc limit 1) as last,
            ${select}
     from page p`,
    params: after === null ? [] : [after],
  };
}

// ---------------------------------------------------------------------------------------------
// The mirror's statements (and the ones the primary shares with it: verify's hashes, a count).

/**
 * The mirror's bookkeeping, two tables that CockroachDB's own writers can use too:
 * - tombstones: deletions, so that a later sync or a restore never brings a row back. An
 *   application that deletes on the mirror records its deletion here (origin null) for the
 *   pull to apply; the push writes origin 'primary', and the pull marks what it applied
 *   'pulled'.
 * - versions: per row, the updated_at of the version both sides last agreed on (written by
 *   the push and the pull). This is the origin marker: a mirror row whose updated_at is its
 *   agreed version came from the primary or was already pulled, and is not pulled (back).
 */
const BOOKKEEPING = {
  tombstones: 'CREATE TABLE IF NOT EXISTS public.cesar_sync_tombstones (' +
    'table_name TEXT NOT NULL, row_key TEXT NOT NULL, deleted_at TIMESTAMPTZ NOT NULL, origin TEXT, ' +
    'PRIMARY KEY (table_name, row_key))',
  // Mirrors made before the origin column.
  tombstonesOrigin: 'ALTER TABLE public.cesar_sync_tombstones ADD COLUMN IF NOT EXISTS origin TEXT',
  versions: 'CREATE TABLE IF NOT EXISTS public.cesar_sync_versions (' +
    'table_name TEXT NOT NULL, row_key TEXT NOT NULL, updated_at TIMESTAMPTZ NOT NULL, ' +
    'PRIMARY KEY (table_name, row_key))',
};

/** The statements the sync sends to a mirror of this dialect. */
export function mirrorStatements(dialect: Dialect) {
  return {
    /** A table's columns as information_schema describes them ($1 schema, $2 table). */
    columns(table: string): Statement {
      const [schema, name] = table.split('.') as [string, string];
      return {
        text: 'SELECT column_name AS name, data_type AS type, numeric_precision AS precision, ' +
          'numeric_scale AS scale, is_nullable AS nullable FROM information_schema.columns ' +
          'WHERE table_schema = $1 AND table_name = $2',
        params: [schema, name],
      };
    },

    createTombstones: (): Statement => ({ text: BOOKKEEPING.tombstones, params: [] }),
    addTombstonesOrigin: (): Statement => ({ text: BOOKKEEPING.tombstonesOrigin, params: [] }),
    createVersions: (): Statement => ({ text: BOOKKEEPING.versions, params: [] }),

    /**
     * The mirror's side of a table: the primary's column types, NOT NULL and the primary key;
     * no defaults, foreign keys, checks or triggers (rows arrive complete, in any order).
     */
    createTable(shape: TableShape): Statement {
      const columns = shape.columns.map((c) =>
        `${ident(c.name)} ${c.type}${c.notNull ? ' NOT NULL' : ''}`
      );
      return {
        text: `CREATE TABLE IF NOT EXISTS ${qualified(shape.table)} (${
          columns.join(', ')
        }, PRIMARY KEY (${ident(shape.key)}))`,
        params: [],
      };
    },

    /** The pull reads a mirror table in updated_at order, from its watermark. */
    createUpdatedIndex(shape: TableShape): Statement | null {
      if (updatedAtIndex(shape) < 0) return null;
      const name = `cesar_${shape.table.replace('.', '_')}_updated_idx`;
      return {
        text: `CREATE INDEX IF NOT EXISTS ${ident(name)} ON ${
          qualified(shape.table)
        } (updated_at, ${ident(shape.key)})`,
        params: [],
      };
    },

    /**
     * What the mirror has of a page (`keys`, `updatedAts`: the page's key and updated_at
     * columns as array literals): how many of its rows, and those it has newer.
     */
    pageOnMirror(shape: TableShape, keys: string, updatedAts: string | null): Statement {
      const key = ident(shape.key);
      const table = qualified(shape.table);
      const list = keyList(shape, 1);
      if (updatedAtIndex(shape) < 0) {
        return {
          text: `SELECT count(*) AS existing, NULL AS newer_keys, NULL AS newer_at ` +
            `FROM ${table} AS m WHERE m.${key} = ANY (${list})`,
          params: [keys],
          prepare: false,
        };
      }
      // The page's keys look the mirror's rows up by its primary key (an index scan however
      // big the table), then meet the page's updated_at: both sides materialized, so that the
      // planner cannot turn the lookup into a scan of the table for every key, or of all of it.
      return {
        text: 'WITH there AS MATERIALIZED (' +
          `SELECT m.${key} AS k, m.updated_at FROM ${table} AS m WHERE m.${key} = ANY (${list})), ` +
          'here AS MATERIALIZED (SELECT CAST(p.k AS ' + keyType(shape) +
          ') AS k, CAST(p.u AS TIMESTAMPTZ) AS u ' +
          'FROM unnest(CAST(CAST($1 AS TEXT) AS TEXT[]), CAST(CAST($2 AS TEXT) AS TEXT[])) AS p (k, u)) ' +
          'SELECT count(*) AS existing, ' +
          'array_agg(CAST(there.k AS TEXT)) FILTER (WHERE there.updated_at > here.u) AS newer_keys, ' +
          'array_agg(CAST(there.updated_at AS TEXT)) FILTER (WHERE there.updated_at > here.u) AS newer_at ' +
          'FROM there JOIN here ON here.k = there.k',
        params: [keys, updatedAts],
        prepare: false,
      };
    },

    /** How many of these keys (an array literal) the mirror has. */
    countKeys(shape: TableShape, keys: string): Statement {
      return {
        text: `SELECT count(*) AS n FROM ${qualified(shape.table)} ` +
          `WHERE ${ident(shape.key)} = ANY (${keyList(shape, 1)})`,
        params: [keys],
      };
    },

    /**
     * One statement: insert the rows (`columns`: one array literal per column), or update the
     * mirror's where its updated_at is not newer (equal times: the primary's version wins, so
     * every run decides the same way), and record each written row's version in
     * cesar_sync_versions. Returns how many rows it wrote (`written`).
     */
    upsertPage(shape: TableShape, columns: string[]): Statement {
      const table = qualified(shape.table);
      const key = ident(shape.key);
      const upsert = (first: number) =>
        `INSERT INTO ${table} (${columnNames(shape)}) ${unnestRows(shape, first, true)} ` +
        `ON CONFLICT (${key}) DO UPDATE SET ${assignments(shape)}`;
      if (updatedAtIndex(shape) < 0) {
        return {
          text: `WITH written AS (${
            upsert(1)
          } RETURNING 1) SELECT count(*) AS written FROM written`,
          params: columns,
        };
      }
      return {
        text: `WITH written AS (${upsert(2)} WHERE ${table}.updated_at <= excluded.updated_at ` +
          `RETURNING CAST(${key} AS TEXT) AS row_key, updated_at), ` +
          'versioned AS (INSERT INTO public.cesar_sync_versions (table_name, row_key, updated_at) ' +
          'SELECT $1, row_key, updated_at FROM written ' +
          'ON CONFLICT (table_name, row_key) DO UPDATE SET updated_at = excluded.updated_at RETURNING 1) ' +
          'SELECT count(*) AS written FROM versioned',
        params: [shape.table, ...columns],
      };
    },

    /** Deletes these keys (an array literal). */
    deleteKeys(shape: TableShape, keys: string): Statement {
      return {
        text: `DELETE FROM ${qualified(shape.table)} WHERE ${ident(shape.key)} = ANY (${
          keyList(shape, 1)
        })`,
        params: [keys],
      };
    },

    /** The push's tombstones for rows deleted on the primary (keys: an array literal). */
    recordTombstones(table: string, keys: string): Statement {
      return {
        text:
          'INSERT INTO public.cesar_sync_tombstones (table_name, row_key, deleted_at, origin) ' +
          "SELECT $1, k, now(), 'primary' FROM unnest(CAST(CAST($2 AS TEXT) AS TEXT[])) AS k " +
          'ON CONFLICT (table_name, row_key) DO UPDATE ' +
          'SET deleted_at = excluded.deleted_at, origin = excluded.origin',
        params: [table, keys],
      };
    },

    /** Forgets the agreed versions of deleted rows (keys: an array literal). */
    forgetVersions(table: string, keys: string): Statement {
      return {
        text: 'DELETE FROM public.cesar_sync_versions ' +
          'WHERE table_name = $1 AND row_key = ANY (CAST(CAST($2 AS TEXT) AS TEXT[]))',
        params: [table, keys],
      };
    },

    /** The mirror's clock, as text (`now`). */
    clock: (): Statement => ({ text: 'SELECT CAST(now() AS TEXT) AS now', params: [] }),

    /**
     * The mirror's changed rows after the cursor, in (updated_at, key) order, every column as
     * text: rows whose version is not the agreed one, from `from` on. Rows older than
     * `bulkLoadedFrom` without a version came from the push's bulk load.
     */
    changedRows(
      shape: TableShape,
      from: string | null,
      cursor: [string, string] | null,
      limit: number,
      bulkLoadedFrom: string | null,
    ): Statement {
      const key = ident(shape.key);
      const params: unknown[] = [shape.table];
      const where = [
        bulkLoadedFrom === null
          ? '(v.updated_at IS NULL OR v.updated_at <> t.updated_at)'
          : `(v.updated_at <> t.updated_at OR (v.updated_at IS NULL AND t.updated_at >= ${
            timestamp(params.push(bulkLoadedFrom))
          }))`,
      ];
      if (from !== null) {
        params.push(from);
        where.push(`t.updated_at >= ${timestamp(params.length)}`);
      }
      if (cursor !== null) {
        params.push(...cursor);
        where.push(
          `(t.updated_at, t.${key}) > (${timestamp(params.length - 1)}, CAST($${params.length} AS ${
            keyType(shape)
          }))`,
        );
      }
      return {
        text: `SELECT ${textColumns(shape, 't')} FROM ${qualified(shape.table)} AS t ` +
          'LEFT JOIN public.cesar_sync_versions AS v ' +
          `ON v.table_name = $1 AND v.row_key = CAST(t.${key} AS TEXT) ` +
          `WHERE ${where.join(' AND ')} ORDER BY t.updated_at, t.${key} LIMIT ${limit}`,
        params,
      };
    },

    /** The versions both sides now agree on (keys and updated_at as text). */
    recordVersions(table: string, keys: string[], updatedAts: string[]): Statement {
      return {
        text: 'INSERT INTO public.cesar_sync_versions (table_name, row_key, updated_at) ' +
          'SELECT $1, k, CAST(u AS TIMESTAMPTZ) FROM unnest(CAST($2 AS TEXT[]), CAST($3 AS TEXT[])) AS x (k, u) ' +
          'ON CONFLICT (table_name, row_key) DO UPDATE SET updated_at = excluded.updated_at',
        params: [table, keys, updatedAts],
      };
    },

    /** The mirror's own deletions (origin null) after a (deleted_at, row_key) cursor. */
    tombstonesPage(table: string, after: [string, string] | null, limit: number): Statement {
      return {
        text:
          'SELECT row_key, CAST(deleted_at AS TEXT) AS deleted_at FROM public.cesar_sync_tombstones ' +
          'WHERE table_name = $1 AND origin IS NULL' +
          (after ? ` AND (deleted_at, row_key) > (${timestamp(2)}, $3)` : '') +
          ` ORDER BY deleted_at, row_key LIMIT ${limit}`,
        params: after ? [table, ...after] : [table],
      };
    },

    /** Marks the mirror's deletions the pull applied. */
    markPulled(table: string, keys: string[]): Statement {
      return {
        text: "UPDATE public.cesar_sync_tombstones SET origin = 'pulled' " +
          'WHERE table_name = $1 AND row_key = ANY (CAST($2 AS TEXT[])) AND origin IS NULL',
        params: [table, keys],
      };
    },

    /** A row of the table after this key (or any row at all): empty when there is none. */
    anyRowAfter(shape: TableShape, after: string | null): Statement {
      return {
        text: `SELECT 1 FROM ${qualified(shape.table)}` +
          (after === null ? '' : ` WHERE ${ident(shape.key)} > CAST($1 AS ${keyType(shape)})`) +
          ' LIMIT 1',
        params: after === null ? [] : [after],
      };
    },

    /**
     * COPY FROM STDIN into the table, in COPY's binary or text format (`WITH BINARY`: the
     * spelling PostgreSQL and CockroachDB both take).
     */
    copyIn(shape: TableShape, format: CopyFormat): Statement {
      return {
        text: `COPY ${qualified(shape.table)} (${columnNames(shape)}) FROM STDIN${
          format === 'binary' ? ' WITH BINARY' : ''
        }`,
        params: [],
      };
    },

    /** The table's rows (`n`). */
    countRows(shape: TableShape): Statement {
      return { text: `SELECT count(*) AS n FROM ${qualified(shape.table)}`, params: [] };
    },

    /** The timestamp a snapshot read is at (`ts`); null where reads have no such clause. */
    snapshotTimestamp(): Statement | null {
      if (!dialect.asOfSystemTime) return null;
      return { text: 'SELECT CAST(cluster_logical_timestamp() AS TEXT) AS ts', params: [] };
    },

    /**
     * The restore's next page, every column as text, in key order after `after`; at the
     * snapshot's timestamp where the dialect reads AS OF SYSTEM TIME.
     */
    restorePage(
      shape: TableShape,
      after: string | null,
      limit: number,
      snapshot: string | null,
    ): Statement {
      if (snapshot !== null && !dialect.asOfSystemTime) {
        throw new Error(`a ${dialect.name} mirror cannot read at snapshot ${snapshot}`);
      }
      const key = ident(shape.key);
      const asOf = snapshot === null
        ? ''
        : ` AS OF SYSTEM TIME '${snapshot.replace(/[^0-9.]/g, '')}'`;
      // The first page has no WHERE: `($1 IS NULL OR key > $1)` is a form no index serves.
      return {
        text: `SELECT ${textColumns(shape)} FROM ${qualified(shape.table)}${asOf} ` +
          (after === null ? '' : `WHERE ${key} > CAST($1 AS ${keyType(shape)}) `) +
          `ORDER BY ${key} LIMIT ${limit}`,
        params: after === null ? [] : [after],
      };
    },

    /** Verify: per range of keys, its rows and the hash of their hashes in key order. */
    bucketHashes(shape: TableShape): Statement {
      return {
        text: `SELECT ${bucket(shape)} AS bucket, CAST(count(*) AS INT) AS rows, ` +
          `md5(string_agg(${rowHash(shape)}, ',' ORDER BY ${ident(shape.key)})) AS hash ` +
          `FROM ${qualified(shape.table)} GROUP BY 1`,
        params: [],
      };
    },

    /** Verify: each row's hash in these ranges. */
    rowHashes(shape: TableShape, buckets: string[]): Statement {
      return {
        text: `SELECT CAST(${ident(shape.key)} AS TEXT) AS key, ${rowHash(shape)} AS hash FROM ${
          qualified(shape.table)
        } WHERE ${bucket(shape)} = ANY ($1::TEXT[])`,
        params: [buckets],
      };
    },
  };
}

export type MirrorStatements = ReturnType<typeof mirrorStatements>;

/**
 * The end of both pull statements, over their `judged` rows (row_key, action, conflict, ours,
 * our_at): each conflict's loser to cesar.sync_conflicts (last writer wins; `theirs` and
 * `theirAt` are the mirror's version and time as the statement names them), each primary row
 * kept marked dirty so the push puts it back on the mirror (`kept`: which kept rows exist),
 * and the count per action.
 */
function pullVerdicts(mirror: { theirs: string; theirAt: string; kept: string }): string {
  return `lost as (
      insert into cesar.sync_conflicts
        (table_name, row_key, direction, winner, losing_version, winner_updated_at, loser_updated_at)
      select $1, j.row_key, 'down',
             case when j.action = 'keep' then 'primary' else 'mirror' end,
             case when j.action = 'keep' then ${mirror.theirs} else j.ours end,
             case when j.action = 'keep' then j.our_at else ${mirror.theirAt} end,
             case when j.action = 'keep' then ${mirror.theirAt} else j.our_at end
      from judged j where j.conflict
      returning 1
    ),
    redirty as (
      insert into cesar.sync_outbox (table_name, row_key, op, change_id)
      select $1, j.row_key, 'UPDATE', 0 from judged j where j.action = 'keep' and ${mirror.kept}
      on conflict (table_name, row_key) do nothing
      returning 1
    )
    select action, count(*)::int as rows, count(*) filter (where conflict)::int as conflicts`;
}

// ---------------------------------------------------------------------------------------------
// The primary's statements: PostgreSQL only, never sent to the mirror.

export const primaryStatements = {
  /** The copy's next page of the table, each column printed as one array literal. */
  tablePage(shape: TableShape, after: string | null, limit: number): Statement {
    return keysetPage(shape, after, limit, literalColumns(shape));
  },

  /** The outbox's next dirty entries in (change_id, row_key) order after `after`, and their rows. */
  outboxPage(shape: TableShape, after: [string, string], limit: number): Statement {
    const key = ident(shape.key);
    const type = keyType(shape);
    return {
      text: `with entries as (
       select e.row_key, e.change_id from cesar.sync_outbox_page($1, $2::text::bigint, $3, ${limit}) e
     ),
     -- Looked up by key (an array, so an index scan; a semi-join may scan the whole table).
     page as (
       select t.* from ${qualified(shape.table)} t
       where t.${key} = any (array(select e.row_key::${type} from entries e))
     ),
     gone as (
       select e.row_key from entries e
       where e.row_key::${type} not in (select p.${key} from page p)
     )
     select count(*)::int as rows, ${literalColumns(shape)},
            (select count(*)::int from entries) as entries,
            (select array_agg(e.row_key order by e.change_id, e.row_key)::text from entries e) as entry_keys,
            (select array_agg(e.change_id order by e.change_id, e.row_key)::text from entries e) as entry_ids,
            (select array[e.change_id::text, e.row_key] from entries e
             order by e.change_id desc, e.row_key desc limit 1) as last,
            (select array_agg(g.row_key)::text from gone g) as gone,
            (select count(*)::int from gone) as gone_count
     from page p`,
      params: [shape.table, after[0], after[1]],
    };
  },

  /** The rows the mirror had newer, recorded as conflicts the mirror won. */
  recordPushConflicts(
    shape: TableShape,
    lost: Array<{ row_key: string; mirror_updated_at: string }>,
  ): Statement {
    return {
      text: `insert into cesar.sync_conflicts
         (table_name, row_key, direction, winner, losing_version, winner_updated_at, loser_updated_at)
       select $1, l.row_key, 'up', 'mirror', to_jsonb(t.*), l.mirror_updated_at, t.updated_at
       from jsonb_to_recordset($2::jsonb) as l (row_key text, mirror_updated_at timestamptz)
       join ${qualified(shape.table)} t on t.${ident(shape.key)} = CAST(l.row_key AS ${
        keyType(shape)
      })`,
      params: [shape.table, lost],
    };
  },

  /**
   * A bulk page's bounds: how many rows follow `after` (or the start), up to `limit`, and the
   * last of them (`last`), read from the primary key's index alone.
   */
  bulkBounds(shape: TableShape, after: string | null, limit: number): Statement {
    const key = ident(shape.key);
    return {
      text: `with s as (
       select t.${key} as k from ${qualified(shape.table)} t
       ${after === null ? '' : `where t.${key} > $1::text::${keyType(shape)}`}
       order by t.${key} limit ${limit})
     select count(*)::int as rows, (select l.k::text from s l order by l.k desc limit 1) as last
     from s`,
      params: after === null ? [] : [after],
    };
  },

  /**
   * The bounds copyOut reads, as settings of the transaction: COPY takes no parameters, and
   * no value is ever spliced into its text.
   */
  copyBounds(after: string | null, last: string): Statement {
    return {
      text: "select set_config('cesar.copy_after', coalesce($1, ''), true), " +
        "set_config('cesar.copy_last', $2, true)",
      params: [after, last],
    };
  },

  /**
   * COPY TO STDOUT of the table's rows between the transaction's copyBounds (after
   * `cesar.copy_after` when `bounded`, up to `cesar.copy_last`), in key order, in COPY's
   * binary or text format: what the mirror's copyIn reads, streamed through without being
   * parsed.
   */
  copyOut(shape: TableShape, bounded: boolean, format: CopyFormat): Statement {
    const key = `t.${ident(shape.key)}`;
    const bound = (name: string) => `current_setting('cesar.${name}')::${keyType(shape)}`;
    return {
      text: `copy (select ${shape.columns.map((c) => `t.${ident(c.name)}`).join(', ')} from ${
        qualified(shape.table)
      } t where ${bounded ? `${key} > ${bound('copy_after')} and ` : ''}${key} <= ${
        bound('copy_last')
      } order by ${key}) to stdout${format === 'binary' ? ' with (format binary)' : ''}`,
      params: [],
    };
  },

  /**
   * The pull's page on the primary, in one statement: each incoming row is inserted, updated
   * (the mirror's is newer), left (the same, or the primary's is newer or was deleted later:
   * the row is marked dirty so the push puts the primary's version back on the mirror). A
   * conflict is a row both sides changed since they last agreed: the loser goes to
   * cesar.sync_conflicts.
   */
  applyPulledRows(shape: TableShape, rows: TextRow[]): Statement {
    const table = qualified(shape.table);
    const key = ident(shape.key);
    return {
      text: `
    with incoming as (${unnestRows(shape, 2)}),
    -- The primary's changes the mirror has not had yet.
    pending as (
      select u.row_key, u.op, u.occurred_at from cesar.unpushed_changes($1) u
      where u.row_key in (select i.${key}::text from incoming i)
    ),
    decided as (
      select i.${key}::text as row_key, to_jsonb(i.*) as theirs, i.updated_at as their_at,
             case when t.${key} is null then null else to_jsonb(t.*) end as ours,
             t.updated_at as our_at, p.op as pending_op,
             case
               when t.${key} is null and p.op = 'DELETE' and p.occurred_at >= i.updated_at then 'keep'
               when t.${key} is null then 'insert'
               when to_jsonb(t.*) = to_jsonb(i.*) then 'same'
               when i.updated_at > t.updated_at then 'update'
               else 'keep'
             end as action
      from incoming i
      left join ${table} t on t.${key} = i.${key}
      left join pending p on p.row_key = i.${key}::text
    ),
    judged as (
      select d.*, d.action = 'keep' or (d.action in ('insert', 'update') and d.pending_op is not null)
             as conflict
      from decided d
    ),
    written as (
      insert into ${table} (${columnNames(shape)})
      select i.* from incoming i join judged j on j.row_key = i.${key}::text
      where j.action in ('insert', 'update')
      on conflict (${key}) do update set ${assignments(shape)}
      where ${table}.updated_at < excluded.updated_at
      returning 1
    ),
    ${pullVerdicts({ theirs: 'j.theirs', theirAt: 'j.their_at', kept: 'j.ours is not null' })}
    from judged group by action
  `,
      params: [shape.table, ...columnArrays(shape, rows)],
    };
  },

  /**
   * The mirror's deletions on the primary: a row is deleted unless the primary changed it
   * after the deletion (then it stays, and is pushed back); a row the primary had changed
   * since the last sync and that the deletion removes is a conflict too.
   */
  applyTombstones(shape: TableShape, keys: string[], deletedAts: string[]): Statement {
    const table = qualified(shape.table);
    const key = ident(shape.key);
    const type = keyType(shape);
    return {
      text: `
    with incoming as (
      select u.k::${type} as key, u.d::timestamptz as deleted_at
      from unnest($2::text[], $3::text[]) as u (k, d)
    ),
    judged as (
      select i.key::text as row_key, i.deleted_at,
             case when t.${key} is null then null else to_jsonb(t.*) end as ours, t.updated_at as our_at,
             case when t.${key} is null then 'absent'
                  when t.updated_at <= i.deleted_at then 'delete' else 'keep' end as action,
             t.${key} is not null and (t.updated_at > i.deleted_at or o.row_key is not null) as conflict
      from incoming i
      left join ${table} t on t.${key} = i.key
      left join cesar.unpushed_changes($1) o on o.row_key = i.key::text
    ),
    removed as (
      delete from ${table} t using judged j
      where j.action = 'delete' and t.${key} = j.row_key::${type} and t.updated_at <= j.deleted_at
      returning 1
    ),
    ${pullVerdicts({ theirs: 'null', theirAt: 'j.deleted_at', kept: 'true' })}
    from judged group by action
  `,
      params: [shape.table, keys, deletedAts],
    };
  },

  /**
   * A restored page on the primary: rows missing or different written, rows of the page's key
   * range (after `after`, up to `last` inclusive; null: the start, the end) that the mirror
   * does not have deleted, rows changed since the last push kept.
   */
  applyRestorePage(
    shape: TableShape,
    after: string | null,
    last: string | null,
    rows: TextRow[],
  ): Statement {
    const table = qualified(shape.table);
    const key = ident(shape.key);
    const type = keyType(shape);
    return {
      text: `
    with incoming as (${unnestRows(shape, 4)}),
    -- Changed on the primary since its last push.
    dirty as (select u.row_key from cesar.unpushed_changes($1) u),
    written as (
      insert into ${table} (${columnNames(shape)})
      select i.* from incoming i where i.${key}::text not in (select row_key from dirty)
      on conflict (${key}) do update set ${assignments(shape)}
      where row(${table}.*) is distinct from row(excluded.*)
      returning (xmax = 0) as inserted
    ),
    removed as (
      delete from ${table} t
      where ($2::${type} is null or t.${key} > $2::${type})
        and ($3::${type} is null or t.${key} <= $3::${type})
        and t.${key} not in (select i.${key} from incoming i)
        and t.${key}::text not in (select row_key from dirty)
      returning 1
    )
    select (select count(*) from written where inserted)::int as inserted,
           (select count(*) from written where not inserted)::int as updated,
           (select count(*) from removed)::int as deleted,
           (select count(*) from incoming i where i.${key}::text in (select row_key from dirty))::int as kept
  `,
      params: [shape.table, after, last, ...columnArrays(shape, rows)],
    };
  },
};

/** A page's rows turned into one array per column, the parameters of unnestRows. */
function columnArrays(shape: TableShape, rows: TextRow[]): TextRow[] {
  return shape.columns.map((_, i) => rows.map((row) => row[i] ?? null));
}
