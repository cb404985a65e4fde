import type postgres from 'postgres';

/**
 * The function instances connected to a stack's primary, by the application names their
 * pools carry (instanceApplicationName in packages/shared/src/db.ts): `fn` names one
 * function, absent all of them. The same names afterwards mean nothing was restarted.
 */
export async function functionInstances(sql: postgres.Sql, fn = '%'): Promise<string[]> {
  const rows = await sql<Array<{ name: string }>>`
    select distinct application_name as name from pg_stat_activity
    where application_name like ${`cesar-edge/${fn}/%`} order by 1`;
  return rows.map((r) => r.name);
}
