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

/**
 * Until no drain holds a doorbell (a drain at work holds it, and a call on its way counts as
 * held until its drain does) and pg_net has no request waiting: the drains a doorbell called
 * linger before they answer, and a measurement should neither share the machine with them nor
 * miss their calls. Fails after `timeoutMs`.
 */
export async function untilDrainsIdle(sql: postgres.Sql, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const [row] = await sql<[{ busy: boolean }]>`
      select cesar.doorbell_held('webhook/drain') or cesar.doorbell_held('job-drain')
             or exists (select from net.http_request_queue) as busy`;
    if (!row.busy) return;
    if (Date.now() > deadline) throw new Error('the drains did not finish');
    await new Promise((r) => setTimeout(r, 100));
  }
}
