import postgres from 'postgres';
import { afterAll, inject } from 'vitest';
import {
  createSql,
  healingPoolOptions,
  instanceApplicationName,
  type Sql,
} from '../../packages/shared/src/db.ts';

/** The test database, directly: for setting up and asserting. */
export const databaseUrl = () => inject('databaseUrl');
/** The same database through PgBouncer in transaction mode: what function code connects to. */
export const poolerUrl = () => inject('poolerUrl');
export const mirrorUrl = () => inject('mirrorUrl');

/** A pool for one test file, closed after it; `connection` sets server parameters. */
export function testSql(
  url = databaseUrl(),
  max = 4,
  connection: Record<string, string> = {},
): Sql {
  const sql = postgres(url, { ...healingPoolOptions, max, connection, onnotice: () => {} });
  afterAll(() => sql.end({ timeout: 5 }));
  return sql;
}

/**
 * The pool a function instance has (createSql, as createFunctionRuntime builds it from
 * CESAR_DB_URL): through the transaction pooler, without prepared statements. For the apps a
 * test file builds; closed after it.
 */
export function functionSql(max = 4, functionName = 'test'): Sql {
  const sql = createSql(poolerUrl(), {
    applicationName: instanceApplicationName(functionName),
    max,
    pooled: true,
  });
  afterAll(() => sql.end({ timeout: 5 }));
  return sql;
}

class Rollback extends Error {}

/**
 * Runs `fn` in a transaction that is always rolled back, so tests that write leave the
 * shared database as they found it. `fn` gets the transaction as a Sql.
 */
export async function withRollback<T>(
  sql: Sql,
  fn: (tx: Sql) => Promise<T>,
  /** e.g. 'isolation level repeatable read', for a stable view while other files commit. */
  mode = '',
): Promise<T> {
  let result: T | undefined;
  try {
    await sql.begin(mode, async (tx) => {
      result = await fn(tx as unknown as Sql);
      throw new Rollback();
    });
  } catch (err) {
    if (!(err instanceof Rollback)) throw err;
  }
  return result as T;
}
