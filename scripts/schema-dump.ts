import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { applyMigrations, installPgNetStandIn } from './lib/database.ts';
import { repoRoot } from './lib/paths.ts';
import {
  clusterUrl,
  ensurePostgresInstalled,
  initCluster,
  startCluster,
  stopCluster,
} from './lib/pg-cluster.ts';
import { dumpSchema } from './lib/schema-dump.ts';
import { freePort } from './local/functions.ts';

// `npm run schema:dump`: applies the migrations to a throwaway cluster and writes
// supabase/schema.sql, the schema they produce. tests/schema-dump.test.ts fails when the
// committed file is stale, so a migration's effect is reviewed as a diff of the schema.

await ensurePostgresInstalled({ cron: true, log: console.log });
const dir = await mkdtemp(path.join(tmpdir(), 'cesar-schema-'));
await chmod(dir, 0o755);
const spec = {
  name: 'schema',
  dataDir: path.join(dir, 'db'),
  port: await freePort(),
  cron: true,
  durable: false,
};
try {
  await initCluster(spec);
  await startCluster(spec);
  const url = clusterUrl(spec.port);
  await installPgNetStandIn(url);
  await applyMigrations(url);
  await writeFile(path.join(repoRoot, 'supabase/schema.sql'), await dumpSchema(url));
  console.log('wrote supabase/schema.sql');
} finally {
  await stopCluster(spec);
  await rm(dir, { recursive: true, force: true });
}
