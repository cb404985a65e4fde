import type postgres from 'postgres';

/**
 * Mutes the functions' doorbell (cesar.setting() finds no functions URL, so ring_doorbell and
 * the sweep call nothing), so that the only drain running is the one a bench calls itself.
 * Returns what puts the URL back.
 */
export async function muteDoorbell(sql: postgres.Sql): Promise<() => Promise<void>> {
  const [url] = await sql<Array<{ value: string }>>`
    delete from cesar.local_settings where name = 'cesar_functions_url' returning value`;
  return async () => {
    if (url) {
      await sql`insert into cesar.local_settings (name, value) values ('cesar_functions_url', ${url.value})`;
    }
  };
}
