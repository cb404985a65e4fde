import path from 'node:path';
import { binDir } from './pg-cluster.ts';
import { run } from './run.ts';

/**
 * The schema the migrations produce, as pg_dump prints it (cesar and public; no data, no
 * owners; grants kept, they are part of the security model). Lines that change from one
 * dump to the next (pg_dump's \restrict keys, its version banner) are dropped.
 */
export async function dumpSchema(databaseUrl: string): Promise<string> {
  const { stdout } = await run(path.join(binDir(), 'pg_dump'), [
    '--schema-only',
    '--no-owner',
    '--schema=cesar',
    '--schema=public',
    databaseUrl,
  ]);
  return stdout
    .split('\n')
    .filter((line) => !/^\\(un)?restrict\b/.test(line) && !/^-- Dumped (from|by) /.test(line))
    .join('\n')
    .replace(/\n{3,}/g, '\n\n');
}
