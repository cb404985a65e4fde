import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, openSync } from 'node:fs';
import { connect as connectTcp } from 'node:net';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import {
  applyMigrations,
  connect,
  installPgNetStandIn,
  loadSeed,
  waitForDatabase,
  writeLocalSettings,
} from './lib/database.ts';
import { readEnvFile, writeEnvFile } from './lib/env-file.ts';
import { repoRoot } from './lib/paths.ts';
import {
  type ClusterSpec,
  clusterUrl,
  ensurePostgresInstalled,
  initCluster,
  isRunning,
  startCluster,
  stopCluster,
} from './lib/pg-cluster.ts';
import {
  ensurePgBouncerInstalled,
  isPoolerRunning,
  poolerSettingsFromConfig,
  type PoolerSpec,
  poolerUrl,
  startPooler,
  stopPooler,
} from './lib/pgbouncer.ts';
import { run } from './lib/run.ts';
import { localKeys } from './local/keys.ts';
import {
  processAlive,
  stackMarker,
  stackProcesses,
  stopProcesses,
  stopStack,
} from './local/stack-processes.ts';

// `npm start` / `npm stop` / `npm run stack -- status`: the whole local stack without Docker.
// Every step checks before it acts, so starting a running stack is harmless.

const localDir = path.resolve(process.env.CESAR_LOCAL_DIR ?? path.join(repoRoot, '.local'));
const envFile = path.resolve(process.env.CESAR_ENV_FILE ?? path.join(repoRoot, '.env.local'));
const ports = {
  functions: Number(process.env.CESAR_FUNCTIONS_PORT ?? 54321),
  db: Number(process.env.CESAR_DB_PORT ?? 54322),
  mirror: Number(process.env.CESAR_MIRROR_PORT ?? 26257),
};
// [db.pooler] of supabase/config.toml: its port (54329), pool size and client limit.
const poolerConfig = poolerSettingsFromConfig();
const pooler: PoolerSpec = {
  ...poolerConfig,
  name: 'pooler',
  dir: path.join(localDir, 'pooler'),
  port: Number(process.env.CESAR_POOLER_PORT ?? poolerConfig.port),
  serverPort: ports.db,
};
const primary: ClusterSpec = {
  name: 'primary',
  dataDir: path.join(localDir, 'db'),
  port: ports.db,
  cron: true,
  durable: true,
};
const mirror: ClusterSpec = {
  name: 'mirror',
  dataDir: path.join(localDir, 'mirror'),
  port: ports.mirror,
  cron: false,
  durable: true,
};
const supervisorPidFile = path.join(localDir, 'supervisor.pid');
// Before the supervisor, `npm start` recorded the runtime itself here.
const legacyPidFile = path.join(localDir, 'runtime.pid');
const runtimeLog = path.join(localDir, 'runtime.log');
const seededMarker = path.join(localDir, 'db-seeded');
// The mirror stand-in uses CockroachDB's default database name.
const localMirrorUrl = clusterUrl(ports.mirror, 'defaultdb');
const functionsBase = `http://127.0.0.1:${ports.functions}`;

const say = (line: string) => console.log(line);

async function livePid(file: string): Promise<number | null> {
  if (!existsSync(file)) return null;
  const pid = Number((await readFile(file, 'utf8')).trim());
  return Number.isInteger(pid) && pid > 0 && processAlive(pid) ? pid : null;
}

/** The supervisor's pid, if the recorded one is alive and is this stack's supervisor. */
async function supervisorPid(): Promise<number | null> {
  const pid = await livePid(supervisorPidFile);
  return stackProcesses(localDir).some((p) => p.pid === pid && p.role === 'supervisor')
    ? pid
    : null;
}

function portInUse(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connectTcp({ host: '127.0.0.1', port }, () => {
      socket.end();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

async function settings() {
  const saved = await readEnvFile(envFile);
  const configuredMirror = process.env.COCKROACH_DB_URL ?? saved.COCKROACH_DB_URL;
  const externalMirror = configuredMirror && configuredMirror !== localMirrorUrl
    ? configuredMirror
    : null;
  // The keys `supabase start` prints (keys.ts), kept across restarts. A stack from before them
  // saved a random hex service_role key: it is remade as a JWT on the next start, unless that
  // stack is still running, whose functions hold the old key until they restart.
  const outdatedButRunning = !saved.SUPABASE_JWT_SECRET && saved.SUPABASE_SERVICE_ROLE_KEY &&
    (await supervisorPid()) !== null;
  if (outdatedButRunning) {
    say('keys       kept as they are while the stack runs: `npm stop && npm start` makes the JWTs');
  }
  const keys = outdatedButRunning
    ? { SUPABASE_SERVICE_ROLE_KEY: saved.SUPABASE_SERVICE_ROLE_KEY! }
    : localKeys(saved);
  return {
    externalMirror,
    env: {
      SUPABASE_URL: functionsBase,
      // The functions connect through the pooler, as through Supavisor's port 6543 on hosted;
      // SUPABASE_DB_URL stays the direct connection (migrations, the pg_net worker's LISTEN).
      CESAR_DB_URL: poolerUrl(pooler.port),
      SUPABASE_DB_URL: clusterUrl(ports.db),
      COCKROACH_DB_URL: externalMirror ?? localMirrorUrl,
      CESAR_FUNCTION_SECRET: saved.CESAR_FUNCTION_SECRET ?? randomBytes(32).toString('hex'),
      ...keys,
      CESAR_FUNCTIONS_URL: `${functionsBase}/functions/v1`,
    },
  };
}

async function waitForApi(env: Record<string, string>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    try {
      const res = await fetch(`${env.CESAR_FUNCTIONS_URL}/api/health`, {
        headers: { authorization: `Bearer ${env.CESAR_FUNCTION_SECRET}` },
        signal: AbortSignal.timeout(5000),
      });
      if (res.status === 200) return;
      last = `${res.status} ${await res.text()}`;
    } catch (err) {
      last = (err as Error).message;
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  const tail = await run('tail', ['-n', '30', runtimeLog], { allowFailure: true });
  throw new Error(
    `the api function did not answer 200 within ${timeoutMs} ms (last: ${last})\n${tail.stdout}`,
  );
}

/** A dead supervisor's runtime and functions would keep the port and serve stale code. */
async function stopLeftovers(): Promise<void> {
  const left = stackProcesses(localDir);
  if (left.length > 0) {
    await stopStack(localDir);
    say(`leftovers  stopped ${left.length} process(es) a dead runtime left running`);
  }
  const legacy = await livePid(legacyPidFile);
  if (legacy) await stopProcesses([legacy], 15_000);
  await rm(legacyPidFile, { force: true });
}

async function start() {
  await mkdir(localDir, { recursive: true });
  const running = await supervisorPid();
  if (!running) await stopLeftovers();
  await ensurePostgresInstalled({ cron: true, log: say });
  await ensurePgBouncerInstalled({ log: say });
  const { env, externalMirror } = await settings();
  await writeEnvFile(
    envFile,
    env,
    'CESAR Edge local stack settings, written by `npm start`. Not committed.\nLoad with: set -a; . ./.env.local; set +a',
  );

  await initCluster(primary);
  await startCluster(primary);
  await waitForDatabase(env.SUPABASE_DB_URL);
  say(`database   ${env.SUPABASE_DB_URL}`);
  await startPooler(pooler, env.SUPABASE_DB_URL);
  say(`pooler     ${env.CESAR_DB_URL} (PgBouncer, transaction mode, as Supavisor's port 6543)`);

  if (externalMirror) {
    say('mirror     COCKROACH_DB_URL (external)');
  } else {
    await initCluster(mirror);
    await startCluster(mirror);
    await waitForDatabase(clusterUrl(ports.mirror));
    const admin = connect(clusterUrl(ports.mirror));
    const [exists] = await admin`select 1 from pg_database where datname = 'defaultdb'`;
    if (!exists) await admin`create database defaultdb`;
    await admin.end();
    say(`mirror     ${localMirrorUrl} (PostgreSQL standing in for CockroachDB)`);
  }

  const net = await installPgNetStandIn(env.SUPABASE_DB_URL);
  const migrated = await applyMigrations(env.SUPABASE_DB_URL);
  say(
    `migrations ${
      /up to date/i.test(migrated) && !/Applying/.test(migrated) ? 'up to date' : 'applied'
    } (pg_net: ${net})`,
  );
  await writeLocalSettings(env.SUPABASE_DB_URL, {
    cesar_functions_url: env.CESAR_FUNCTIONS_URL,
    cesar_function_secret: env.CESAR_FUNCTION_SECRET,
  });
  if (!existsSync(seededMarker)) {
    await loadSeed(env.SUPABASE_DB_URL);
    await writeFile(seededMarker, `${new Date().toISOString()}\n`);
    say('seed       supabase/seed.sql loaded');
  }

  if (running && processAlive(running)) {
    say('functions  already running');
  } else {
    if (await portInUse(ports.functions)) {
      throw new Error(
        `port ${ports.functions} is in use by another process; stop it, or set CESAR_FUNCTIONS_PORT`,
      );
    }
    const out = openSync(runtimeLog, 'a');
    const child = spawn(process.execPath, [
      '--import',
      'tsx',
      path.join(repoRoot, 'scripts/local/supervisor.ts'),
    ], {
      cwd: repoRoot,
      detached: true,
      stdio: ['ignore', out, out],
      env: {
        ...process.env,
        ...env,
        CESAR_FUNCTIONS_PORT: String(ports.functions),
        ...stackMarker(localDir, 'supervisor'),
      },
    });
    await writeFile(supervisorPidFile, `${child.pid}\n`);
    child.unref();
  }
  await waitForApi(env, 90_000);
  say(`functions  ${env.CESAR_FUNCTIONS_URL}/<name>  (api: ${env.CESAR_FUNCTIONS_URL}/api/health)`);
  say(
    `settings   ${
      path.relative(process.cwd(), envFile) || envFile
    }  (set -a; . ./.env.local; set +a)`,
  );
  say('CESAR Edge is up. `npm stop` stops it.');
}

async function stop() {
  // Everything carrying this stack's marker, the supervisor first: nothing is left running.
  const legacy = await livePid(legacyPidFile);
  if (legacy) await stopProcesses([legacy], 15_000);
  if ((await stopStack(localDir)) > 0 || legacy) say('functions  stopped');
  await rm(supervisorPidFile, { force: true });
  await rm(legacyPidFile, { force: true });
  if (await stopPooler(pooler)) say('pooler     stopped');
  for (const spec of [mirror, primary]) {
    if (await stopCluster(spec)) say(`${spec.name.padEnd(10)} stopped`);
  }
}

async function status() {
  const pid = await supervisorPid();
  say(`primary    ${(await isRunning(primary)) ? `running on ${ports.db}` : 'stopped'}`);
  say(
    `pooler     ${
      (await isPoolerRunning(pooler))
        ? `running on ${pooler.port} (PgBouncer, transaction mode)`
        : 'stopped'
    }`,
  );
  say(
    `mirror     ${
      (await isRunning(mirror)) ? `running on ${ports.mirror}` : 'stopped (or external)'
    }`,
  );
  const parts = stackProcesses(localDir);
  const count = (role: string) => parts.filter((p) => p.role === role).length;
  const processes = `${count('runtime')} runtime, ${count('function')} Deno function process(es)`;
  say(
    `functions  ${
      pid
        ? `running on ${ports.functions} (supervisor pid ${pid}; ${processes})`
        : parts.length > 0
        ? `not supervised (${processes}): \`npm start\` stops and restarts them`
        : 'stopped'
    }`,
  );
}

const commands: Record<string, () => Promise<void>> = { start, stop, status };
const command = process.argv[2] ?? '';
if (!commands[command]) {
  console.error(`usage: stack.ts ${Object.keys(commands).join('|')}`);
  process.exit(2);
}
try {
  await commands[command]!();
} catch (err) {
  console.error(`${command} failed: ${(err as Error).message}`);
  process.exit(1);
}
