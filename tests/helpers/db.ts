import postgres from 'postgres';
import { afterAll, inject } from 'vitest';
import { healingPoolOptions, type Sql } from '../../packages/shared/src/db.ts';

export const databaseUrl = () => inject('databaseUrl');
export const mirrorUrl = () => inject('mirrorUrl');

/** A pool for one test file, closed after it. */
export function testSql(url = databaseUrl(), max = 4): Sql {
  const sql = postgres(url, { ...healingPoolOptions, max, onnotice: () => {} });
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
