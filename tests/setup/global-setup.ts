import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { TestProject } from 'vitest/node';
import {
  applyMigrations,
  connect,
  installPgNetStandIn,
  loadSeed,
} from '../../scripts/lib/database.ts';
import { dumpSchema } from '../../scripts/lib/schema-dump.ts';
import { freePort } from '../../scripts/local/functions.ts';
import {
  type ClusterSpec,
  clusterUrl,
  ensurePostgresInstalled,
  initCluster,
  startCluster,
  stopCluster,
} from '../../scripts/lib/pg-cluster.ts';
import {
  ensurePgBouncerInstalled,
  poolerSettingsFromConfig,
  type PoolerSpec,
  startPooler,
  stopPooler,
} from '../../scripts/lib/pgbouncer.ts';

// One throwaway PostgreSQL 15 cluster with pg_cron for the whole run (or DATABASE_URL when
// given), brought to production's state the way the local stack does it: pg_net stand-in,
// migrations through the Supabase CLI, seed. A second database on it stands in for the
// mirror. CESAR_KEEP_TEST_DB=1 keeps the cluster for inspection after a failing run.
// PgBouncer in transaction mode stands in front of it, as in the local stack: the function
// code under test connects through it (poolerUrl), as it does through Supavisor on hosted.

declare module 'vitest' {
  export interface ProvidedContext {
    databaseUrl: string;
    /** The same database through PgBouncer in transaction mode: what the functions use. */
    poolerUrl: string;
    mirrorUrl: string;
    /** pg_dump of cesar and public right after the migrations, before any test writes. */
    migratedSchema: string;
    /** The rows of cesar.job_types right after the migrations, before any test adds its own. */
    migratedJobTypes: Array<Record<string, unknown>>;
  }
}

export default async function setup(project: TestProject) {
  let databaseUrl = process.env.DATABASE_URL;
  let cleanup = async () => {};
  await ensurePgBouncerInstalled({ log: console.log });
  const dir = await mkdtemp(path.join(tmpdir(), 'cesar-test-'));
  await chmod(dir, 0o755);
  if (!databaseUrl) {
    await ensurePostgresInstalled({ cron: true, log: console.log });
    const spec: ClusterSpec = {
      name: 'test',
      dataDir: path.join(dir, 'db'),
      port: await freePort(),
      cron: true,
      durable: false,
    };
    await initCluster(spec);
    await startCluster(spec);
    databaseUrl = clusterUrl(spec.port);
    cleanup = async () => {
      if (process.env.CESAR_KEEP_TEST_DB === '1') {
        console.log(`test cluster kept: ${spec.dataDir} on port ${spec.port}`);
        return;
      }
      await stopCluster(spec);
    };
  }
  await installPgNetStandIn(databaseUrl);
  await applyMigrations(databaseUrl);
  // Dumped before the tests run: watching a table makes objects in cesar (its capture store).
  const migratedSchema = await dumpSchema(databaseUrl);
  const admin = connect(databaseUrl);
  const migratedJobTypes = await admin<Array<Record<string, unknown>>>`
    select job_type, max_attempts, backoff_base_seconds::float8 as backoff_base_seconds,
           backoff_cap_seconds::float8 as backoff_cap_seconds, concurrency, lease_seconds,
           rate_limit, rate_period_seconds::float8 as rate_period_seconds, rate_key,
           concurrency_key, key_concurrency
    from cesar.job_types order by job_type`;
  await loadSeed(databaseUrl);

  await admin`drop database if exists cesar_test_mirror`;
  await admin`create database cesar_test_mirror`;
  await admin.end();
  const mirrorUrl = new URL(databaseUrl);
  mirrorUrl.pathname = '/cesar_test_mirror';

  // The pool size and client limit of supabase/config.toml, as `npm start` has them.
  const target = new URL(databaseUrl);
  const pooler: PoolerSpec = {
    ...poolerSettingsFromConfig(),
    name: 'test pooler',
    dir: path.join(dir, 'pooler'),
    port: await freePort(),
    serverHost: target.hostname,
    serverPort: Number(target.port || 5432),
  };
  await startPooler(pooler, databaseUrl);
  const stopDatabase = cleanup;
  cleanup = async () => {
    await stopPooler(pooler);
    await stopDatabase();
    if (process.env.CESAR_KEEP_TEST_DB !== '1') await rm(dir, { recursive: true, force: true });
  };

  project.provide('databaseUrl', databaseUrl);
  // The same user, password and database; PgBouncer's address.
  const pooled = new URL(databaseUrl);
  pooled.hostname = '127.0.0.1';
  pooled.port = String(pooler.port);
  project.provide('poolerUrl', pooled.toString());
  project.provide('mirrorUrl', mirrorUrl.toString());
  project.provide('migratedSchema', migratedSchema);
  project.provide('migratedJobTypes', [...migratedJobTypes]);
  return cleanup;
}
