import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { repoRoot } from './lib/paths.ts';
import { startScratchDatabase } from './lib/scratch-database.ts';
import { dumpSchema } from './lib/schema-dump.ts';

// `npm run schema:dump`: applies the migrations to a throwaway cluster and writes
// supabase/schema.sql, the schema they produce. tests/schema-dump.test.ts fails when the
// committed file is stale, so a migration's effect is reviewed as a diff of the schema.

const db = await startScratchDatabase('schema', { durable: false, log: console.log });
try {
  await writeFile(path.join(repoRoot, 'supabase/schema.sql'), await dumpSchema(db.url));
  console.log('wrote supabase/schema.sql');
} finally {
  await db.remove();
}
