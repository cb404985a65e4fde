import postgres from 'postgres';

export type Sql = postgres.Sql;

export interface DbOptions {
  /** Shown in pg_stat_activity; health uses it to count this instance's connections. */
  applicationName: string;
  max: number;
}

/**
 * A postgres.js pool. Supabase's transaction pooler (port 6543) cannot keep prepared
 * statements across transactions, so they are turned off there and on everywhere else.
 */
export function createSql(url: string, options: DbOptions): Sql {
  return postgres(url, {
    max: options.max,
    prepare: !/:6543\//.test(url),
    idle_timeout: 30,
    connect_timeout: 5,
    connection: { application_name: options.applicationName },
    onnotice: () => {},
  });
}

/** A per-instance application name, so one instance's pool can be told from another's. */
export function instanceApplicationName(functionName: string): string {
  return `cesar-edge/${functionName}/${crypto.randomUUID().slice(0, 8)}`;
}
