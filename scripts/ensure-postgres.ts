import { ensurePostgresInstalled } from './lib/pg-cluster.ts';
import { ensurePgBouncerInstalled } from './lib/pgbouncer.ts';

// Runs before `npm test` (npm's pretest): installs Debian's PostgreSQL 15, pg_cron and
// PgBouncer (the transaction pooler the functions connect through) when they are missing and
// we are root, or stops with the command to run. The test setup checks again, but an install
// can take longer than a test hook may.
try {
  await ensurePostgresInstalled({ cron: true, log: console.log });
  await ensurePgBouncerInstalled({ log: console.log });
} catch (err) {
  console.error((err as Error).message);
  process.exit(1);
}
