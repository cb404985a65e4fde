import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { freePort } from '../local/functions.ts';
import { applyMigrations, installPgNetStandIn } from './database.ts';
import {
  type ClusterSpec,
  clusterUrl,
  ensurePostgresInstalled,
  initCluster,
  startCluster,
  stopCluster,
} from './pg-cluster.ts';

// A database of its own for a script that needs nothing else of the stack (the schema dump,
// the schedules benchmark): PostgreSQL 15 with pg_cron in a temporary folder on a free port,
// the pg_net stand-in and the migrations applied, as the tests' global setup makes theirs.

export interface ScratchDatabase {
  url: string;
  /** Stops the cluster and deletes its folder. */
  remove(): Promise<void>;
}

export async function startScratchDatabase(
  name: string,
  options: { durable: boolean; log?: (line: string) => void },
): Promise<ScratchDatabase> {
  await ensurePostgresInstalled({ cron: true, log: options.log });
  const dir = await mkdtemp(path.join(tmpdir(), `cesar-${name.replace(/\W+/g, '-')}-`));
  await chmod(dir, 0o755);
  const spec: ClusterSpec = {
    name,
    dataDir: path.join(dir, 'db'),
    port: await freePort(),
    cron: true,
    durable: options.durable,
  };
  const remove = async () => {
    await stopCluster(spec);
    await rm(dir, { recursive: true, force: true });
  };
  try {
    await initCluster(spec);
    await startCluster(spec);
    const url = clusterUrl(spec.port);
    await installPgNetStandIn(url);
    await applyMigrations(url);
    return { url, remove };
  } catch (err) {
    await remove();
    throw err;
  }
}
