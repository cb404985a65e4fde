import { existsSync, readFileSync } from 'node:fs';
import { chown, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { connect as connectTcp } from 'node:net';
import path from 'node:path';
import postgres from 'postgres';
import { CONFIG_TOML, readConfigToml, tableAt } from '../local/config-toml.ts';
import { LOCAL_PASSWORD } from './pg-cluster.ts';
import { isRoot, run } from './run.ts';

// The local stack's transaction-mode pooler: Debian's PgBouncer (1.18) between the functions
// and the primary, standing in for Supavisor's transaction port (6543) on hosted Supabase. A
// server connection belongs to a client for one transaction only, so whatever needs a session
// (LISTEN, session advisory locks, session SETs, temp tables, prepared statements) fails or
// misbehaves through it exactly as it would on hosted: the functions are tested that way.
//
// Authentication: the primary uses scram-sha-256. PgBouncer checks a client's SCRAM proof
// against a userlist holding the role's SCRAM secret copied from pg_authid (same salt and
// iterations), and then logs into the server with that same proof: no plain password is
// written anywhere (the userlist, mode 0600, holds what pg_authid holds), and no function has
// to be installed in the database (auth_query would need a SECURITY DEFINER lookup function
// there, which `supabase db push` would carry to hosted).
// The userlist is rewritten at every start, so a changed password takes effect on restart.

const BINARY = '/usr/sbin/pgbouncer';
const INSTALL_COMMAND = 'apt-get update && apt-get install -y pgbouncer';

export interface PoolerSettings {
  /** [db.pooler] port in supabase/config.toml: 54329. */
  port: number;
  /**
   * Server connections per (database, user): 15, what Supabase gives the smallest computes
   * (Nano, Micro: 60 direct connections in all, so a quarter of them for the pooler).
   */
  defaultPoolSize: number;
  /** Client connections: 200, Supavisor's client limit on Nano and Micro. */
  maxClientConn: number;
}

export interface PoolerSpec extends PoolerSettings {
  name: string;
  /** Holds pgbouncer.ini, the userlist, the pid file and the log. */
  dir: string;
  /** The PostgreSQL it pools: 127.0.0.1 unless said. */
  serverHost?: string;
  serverPort: number;
}

/** The [db.pooler] section of supabase/config.toml (the keys this pooler honours). */
export function poolerSettingsFromConfig(
  file = CONFIG_TOML,
): PoolerSettings {
  const values = tableAt(tableAt(readConfigToml(file), 'db'), 'pooler');
  if (values.pool_mode !== undefined && values.pool_mode !== 'transaction') {
    throw new Error(
      `supabase/config.toml [db.pooler] pool_mode is "${values.pool_mode}": the functions ` +
        'are built for transaction mode (Supavisor on port 6543)',
    );
  }
  const number = (key: string, fallback: number) => {
    const value = values[key] ?? fallback;
    if (typeof value !== 'number' || !Number.isInteger(value) || value < 1) {
      throw new Error(`supabase/config.toml [db.pooler] ${key} must be a positive integer`);
    }
    return value;
  };
  return {
    port: number('port', 54329),
    defaultPoolSize: number('default_pool_size', 15),
    maxClientConn: number('max_client_conn', 200),
  };
}

export function poolerUrl(port: number, database = 'postgres'): string {
  return `postgresql://postgres:${LOCAL_PASSWORD}@127.0.0.1:${port}/${database}`;
}

/** Installs Debian's pgbouncer as root; otherwise stops with the command to run. */
export async function ensurePgBouncerInstalled(options: { log?: (line: string) => void } = {}) {
  if (existsSync(BINARY)) return;
  if (!isRoot()) {
    throw new Error(`missing pgbouncer; install with:\n  sudo sh -c '${INSTALL_COMMAND}'`);
  }
  options.log?.("installing pgbouncer from Debian's packages...");
  // The package enables a system service; policy-rc.d or the absence of systemd keeps it from
  // starting here, and the stack never uses it (its pooler has its own config and port).
  await run('sh', ['-c', INSTALL_COMMAND], {
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
  });
  if (!existsSync(BINARY)) throw new Error('still missing after install: pgbouncer');
}

const files = (spec: PoolerSpec) => ({
  ini: path.join(spec.dir, 'pgbouncer.ini'),
  users: path.join(spec.dir, 'userlist.txt'),
  pid: path.join(spec.dir, 'pgbouncer.pid'),
  log: path.join(spec.dir, 'pgbouncer.log'),
});

/** The configuration; each value that is not PgBouncer's default says why. */
export function pgbouncerIni(spec: PoolerSpec): string {
  const f = files(spec);
  return [
    `;; ${spec.name}: written by scripts/lib/pgbouncer.ts at every start; edits are lost.`,
    '[databases]',
    // Any database name the client asks for, on the primary, logged in as the client's user
    // (no user here: SCRAM pass-through needs the client's own proof).
    `* = host=${spec.serverHost ?? '127.0.0.1'} port=${spec.serverPort}`,
    '',
    '[pgbouncer]',
    'listen_addr = 127.0.0.1',
    `listen_port = ${spec.port}`,
    'unix_socket_dir =',
    `pidfile = ${f.pid}`,
    `logfile = ${f.log}`,
    'pool_mode = transaction',
    `default_pool_size = ${spec.defaultPoolSize}`,
    `max_client_conn = ${spec.maxClientConn}`,
    'auth_type = scram-sha-256',
    `auth_file = ${f.users}`,
    // SHOW CLIENTS on the admin console: which function instances are connected, by the
    // application_name each pool sets (tests/helpers/stack.ts, cesar doctor).
    'admin_users = postgres',
    'stats_users = postgres',
    // JDBC and some drivers send it; Supavisor ignores it too.
    'ignore_startup_parameters = extra_float_digits',
    // After the primary refused a login, wait 1 s (not 15 s) before trying again: the
    // self-healing tests restart the primary and expect answers within a second or two of it.
    'server_login_retry = 1',
    // A client queued for a server connection is dropped after 5 s instead of 120 s. PgBouncer
    // 1.18 keeps clients queued while the primary refuses connections (only a failed login
    // makes it refuse new clients at once), so this bounds how long a function's query waits
    // in an outage before its 503; a pool exhausted for 5 s is an error too.
    'query_wait_timeout = 5',
    // Server connections are checked before reuse after 5 s idle (default 30 s), so one the
    // primary dropped while it restarted is noticed before a client gets it.
    'server_check_delay = 5',
    'server_connect_timeout = 5',
    'log_connections = 0',
    'log_disconnections = 0',
    '',
  ].join('\n');
}

async function ownerIds(): Promise<{ uid: number; gid: number } | null> {
  if (!isRoot()) return null;
  const { stdout: uid } = await run('id', ['-u', 'postgres']);
  const { stdout: gid } = await run('id', ['-g', 'postgres']);
  return { uid: Number(uid.trim()), gid: Number(gid.trim()) };
}

/** "role" "SCRAM-SHA-256$..." lines for every role that can log in with a SCRAM password. */
async function userlist(directUrl: string): Promise<string> {
  const sql = postgres(directUrl, { max: 1, onnotice: () => {}, connect_timeout: 5 });
  try {
    const rows = await sql<Array<{ name: string; secret: string }>>`
      select rolname as name, rolpassword as secret from pg_authid
      where rolcanlogin and rolpassword like 'SCRAM-SHA-256$%' order by 1`;
    const quote = (s: string) => `"${s.replaceAll('"', '""')}"`;
    return rows.map((r) => `${quote(r.name)} ${quote(r.secret)}\n`).join('');
  } finally {
    await sql.end();
  }
}

async function livePid(spec: PoolerSpec): Promise<number | null> {
  // PgBouncer removes its pid file as it exits: gone between two reads is not running.
  const pid = Number((await readFile(files(spec).pid, 'utf8').catch(() => '')).trim());
  if (!Number.isInteger(pid) || pid <= 0) return null;
  try {
    // A pid file can outlive its process and the pid can be reused: check what runs there.
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    return cmdline.includes('pgbouncer') && cmdline.includes(files(spec).ini) ? pid : null;
  } catch {
    return null;
  }
}

export async function isPoolerRunning(spec: PoolerSpec): Promise<boolean> {
  return (await livePid(spec)) !== null;
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connectTcp({ host: '127.0.0.1', port }, () => {
      socket.end();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/**
 * Writes the configuration and the userlist (read from the primary, which must be up) and
 * starts PgBouncer as a daemon; a running one reloads both. Waits until it accepts.
 */
export async function startPooler(spec: PoolerSpec, directUrl: string): Promise<void> {
  const f = files(spec);
  const owner = await ownerIds();
  await mkdir(spec.dir, { recursive: true, mode: 0o755 });
  if (owner) await chown(spec.dir, owner.uid, owner.gid);
  await writeFile(f.ini, pgbouncerIni(spec), { mode: 0o644 });
  await writeFile(f.users, await userlist(directUrl), { mode: 0o600 });
  if (owner) {
    for (const file of [f.ini, f.users]) await chown(file, owner.uid, owner.gid);
  }
  const running = await livePid(spec);
  if (running) {
    process.kill(running, 'SIGHUP');
    return;
  }
  if (await accepts(spec.port)) {
    throw new Error(
      `port ${spec.port} is in use by another process; stop it, or set CESAR_POOLER_PORT`,
    );
  }
  // PgBouncer refuses to run as root: as root it runs as the clusters' OS user.
  const [cmd, args] = owner
    ? ['runuser', ['-u', 'postgres', '--', BINARY, '-d', f.ini]]
    : [BINARY, ['-d', f.ini]];
  const started = await run(cmd, args, { allowFailure: true });
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    if (await accepts(spec.port) && await livePid(spec)) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  const tail = await run('tail', ['-n', '20', f.log], { allowFailure: true });
  throw new Error(
    `${spec.name}: PgBouncer did not start on port ${spec.port}\n` +
      `${started.stdout}${started.stderr}${tail.stdout}`,
  );
}

/** SIGTERM is PgBouncer 1.18's immediate shutdown (SIGINT waits for clients to leave). */
export async function stopPooler(spec: PoolerSpec): Promise<boolean> {
  const pid = await livePid(spec);
  if (!pid) return false;
  process.kill(pid, 'SIGTERM');
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline && (await livePid(spec))) {
    await new Promise((r) => setTimeout(r, 50));
  }
  if (await livePid(spec)) process.kill(pid, 'SIGKILL');
  await rm(files(spec).pid, { force: true });
  return true;
}

/**
 * A SHOW command on the admin console of the PgBouncer behind `poolerUrl` (database
 * `pgbouncer`; the stack makes `postgres` an admin). The console speaks the simple query
 * protocol only and has no pg_type to fetch.
 */
export async function pgbouncerShow<T extends object>(
  poolerUrl: string,
  what: 'CONFIG' | 'CLIENTS' | 'POOLS',
): Promise<T[]> {
  const url = new URL(poolerUrl);
  url.pathname = '/pgbouncer';
  const admin = postgres(url.toString(), {
    max: 1,
    fetch_types: false,
    prepare: false,
    connect_timeout: 3,
    onnotice: () => {},
  });
  try {
    return [...await admin.unsafe<T[]>(`SHOW ${what}`).simple()];
  } finally {
    await admin.end({ timeout: 1 });
  }
}
