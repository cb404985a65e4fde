import { existsSync } from 'node:fs';
import { chmod, chown, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir, userInfo } from 'node:os';
import path from 'node:path';
import { isRoot, run } from './run.ts';

// Local PostgreSQL 15 clusters for the stack and the tests: Debian's server binaries,
// pg_cron preloaded where asked, TCP on 127.0.0.1 only, password auth.

const PG_MAJOR = 15;
const DEBIAN_BINDIR = `/usr/lib/postgresql/${PG_MAJOR}/bin`;
const DEBIAN_LIBDIR = `/usr/lib/postgresql/${PG_MAJOR}/lib`;
const INSTALL_COMMAND =
  `apt-get update && apt-get install -y postgresql-${PG_MAJOR} postgresql-${PG_MAJOR}-cron`;

/** Supabase's local convention; these clusters listen on 127.0.0.1 only. */
export const LOCAL_PASSWORD = 'postgres';

export interface ClusterSpec {
  /** For messages and the log's name. */
  name: string;
  dataDir: string;
  port: number;
  /** Preload pg_cron and point it at the `postgres` database. */
  cron: boolean;
  /** Throwaway clusters trade durability for speed. */
  durable: boolean;
}

export function clusterUrl(port: number, database = 'postgres'): string {
  return `postgresql://postgres:${LOCAL_PASSWORD}@127.0.0.1:${port}/${database}`;
}

export function binDir(): string {
  return process.env.PG_BINDIR ?? DEBIAN_BINDIR;
}

function missingParts(cron: boolean): string[] {
  const missing: string[] = [];
  if (!existsSync(path.join(binDir(), 'postgres'))) missing.push(`postgresql-${PG_MAJOR}`);
  if (cron && !existsSync(path.join(DEBIAN_LIBDIR, 'pg_cron.so'))) {
    missing.push(`postgresql-${PG_MAJOR}-cron`);
  }
  return missing;
}

/**
 * Makes sure the PostgreSQL 15 server (and pg_cron) are installed: as root it installs
 * Debian's packages, otherwise it stops with the command to run.
 */
export async function ensurePostgresInstalled(
  options: { cron: boolean; log?: (line: string) => void },
) {
  const missing = missingParts(options.cron);
  if (missing.length === 0) return;
  if (!isRoot()) {
    throw new Error(
      `missing ${missing.join(', ')}; install with:\n  sudo sh -c '${INSTALL_COMMAND}'`,
    );
  }
  options.log?.(`installing ${missing.join(', ')} from Debian's packages...`);
  await run('sh', ['-c', INSTALL_COMMAND], {
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
  });
  const still = missingParts(options.cron);
  if (still.length > 0) throw new Error(`still missing after install: ${still.join(', ')}`);
}

// initdb refuses to run as root: as root, the cluster belongs to the `postgres` OS user.
function asOwner(command: string, args: string[]): [string, string[]] {
  return isRoot() ? ['runuser', ['-u', 'postgres', '--', command, ...args]] : [command, args];
}

async function runAsOwner(command: string, args: string[], allowFailure = false) {
  const [cmd, argv] = asOwner(path.join(binDir(), command), args);
  return await run(cmd, argv, { allowFailure });
}

async function ownerIds(): Promise<{ uid: number; gid: number }> {
  if (!isRoot()) return { uid: userInfo().uid, gid: userInfo().gid };
  const { stdout: uid } = await run('id', ['-u', 'postgres']);
  const { stdout: gid } = await run('id', ['-g', 'postgres']);
  return { uid: Number(uid.trim()), gid: Number(gid.trim()) };
}

export function isInitialized(spec: ClusterSpec): boolean {
  return existsSync(path.join(spec.dataDir, 'PG_VERSION'));
}

/** Creates the cluster if its data directory is empty; harmless when it exists. */
export async function initCluster(spec: ClusterSpec): Promise<void> {
  if (isInitialized(spec)) return;
  // The folders above dataDir must be traversable by the server's OS user.
  await mkdir(spec.dataDir, { recursive: true });
  const { uid, gid } = await ownerIds();
  await chown(spec.dataDir, uid, gid);
  await chmod(spec.dataDir, 0o700);
  const pwdir = await mkdtemp(path.join(tmpdir(), 'cesar-pw-'));
  const pwfile = path.join(pwdir, 'pw');
  try {
    await chown(pwdir, uid, gid);
    await writeFile(pwfile, `${LOCAL_PASSWORD}\n`, { mode: 0o600 });
    await chown(pwfile, uid, gid);
    await runAsOwner('initdb', [
      '-D',
      spec.dataDir,
      '-U',
      'postgres',
      '--encoding=UTF8',
      '--locale=C.UTF-8',
      '--auth-local=peer',
      '--auth-host=scram-sha-256',
      `--pwfile=${pwfile}`,
    ]);
  } finally {
    await rm(pwdir, { recursive: true, force: true });
  }
  const settings = [
    `listen_addresses = '127.0.0.1'`,
    `port = ${spec.port}`,
    `unix_socket_directories = ''`,
    `max_connections = 200`,
    `timezone = 'UTC'`,
    `log_timezone = 'UTC'`,
    ...(spec.cron
      ? [
        `shared_preload_libraries = 'pg_cron'`,
        `cron.database_name = 'postgres'`,
        // Background workers instead of libpq connections: no password needed for cron's own
        // connections, as on Supabase.
        `cron.use_background_workers = on`,
        `max_worker_processes = 32`,
        `cron.timezone = 'UTC'`,
      ]
      : []),
    ...(spec.durable ? [] : [`fsync = off`, `synchronous_commit = off`, `full_page_writes = off`]),
  ];
  await writeFile(path.join(spec.dataDir, 'postgresql.auto.conf'), settings.join('\n') + '\n');
  await chown(path.join(spec.dataDir, 'postgresql.auto.conf'), uid, gid);
}

export async function isRunning(spec: ClusterSpec): Promise<boolean> {
  if (!isInitialized(spec)) return false;
  const { code } = await runAsOwner('pg_ctl', ['status', '-D', spec.dataDir], true);
  return code === 0;
}

/** Starts the cluster and waits until it accepts connections; harmless when it runs. */
export async function startCluster(spec: ClusterSpec): Promise<void> {
  if (await isRunning(spec)) return;
  const log = path.join(spec.dataDir, 'server.log');
  const result = await runAsOwner(
    'pg_ctl',
    ['start', '-w', '-t', '60', '-D', spec.dataDir, '-l', log, '-o', `-p ${spec.port}`],
    true,
  );
  if (result.code !== 0) {
    const tail = await run('tail', ['-n', '20', log], { allowFailure: true });
    throw new Error(
      `${spec.name}: PostgreSQL did not start on port ${spec.port}\n${result.stdout}${result.stderr}${tail.stdout}`,
    );
  }
}

export async function stopCluster(spec: ClusterSpec): Promise<boolean> {
  if (!(await isRunning(spec))) return false;
  await runAsOwner('pg_ctl', ['stop', '-w', '-m', 'fast', '-D', spec.dataDir]);
  return true;
}
