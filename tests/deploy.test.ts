import {
  chmod,
  cp,
  mkdir,
  mkdtemp,
  readdir,
  readFile,
  rm,
  stat,
  writeFile,
} from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { deploy, DEPLOYED_FUNCTIONS, DeployStepError } from '../scripts/cli/deploy.ts';
import { installPgNetStandIn } from '../scripts/lib/database.ts';
import { bin, repoRoot } from '../scripts/lib/paths.ts';
import {
  type ClusterSpec,
  clusterUrl,
  initCluster,
  LOCAL_PASSWORD,
  startCluster,
  stopCluster,
} from '../scripts/lib/pg-cluster.ts';
import { run } from '../scripts/lib/run.ts';
import { freePort } from '../scripts/local/functions.ts';
import {
  cliProfile,
  type ManagementApiStandIn,
  startManagementApi,
} from './helpers/management-api.ts';

// `cesar deploy` end to end without network: the real Supabase CLI (3.1.0) pointed at a
// stand-in of the Management API by a profile file, and a fresh PostgreSQL 15 cluster with
// pg_cron standing in for the project's database (pg_cron can only be created in
// cron.database_name, so a fresh database on the shared test cluster would not do).
//
// `db push` gets the database as --db-url (`supabase db push --remote=<url>`): for a linked
// project the CLI connects to db.<ref>.<project_host>:5432, or to the pooler from the
// Management API with the port forced to 5432 and the host checked against the public suffix
// list, so it cannot be aimed at a local cluster on another port without changing DNS.
//
// Supabase Vault is not packaged here: the project's database gets a minimal `vault` schema
// with supabase_vault's SQL interface (vault.secrets, vault.decrypted_secrets,
// create_secret(new_secret, new_name, new_description, new_key_id), update_secret(secret_id,
// new_secret, ...)), unencrypted, so the deploy's Vault SQL runs against those signatures.

const REF = 'cesardeploystandinab';
const VAULT_STAND_IN = `
  create schema vault;
  create table vault.secrets (
    id uuid primary key default gen_random_uuid(),
    name text unique,
    description text not null default '',
    secret text not null,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now());
  create view vault.decrypted_secrets as select *, secret as decrypted_secret from vault.secrets;
  create function vault.create_secret(new_secret text, new_name text default null,
      new_description text default '', new_key_id uuid default null) returns uuid
    language sql as $$
      insert into vault.secrets (secret, name, description)
      values (new_secret, new_name, new_description) returning id $$;
  create function vault.update_secret(secret_id uuid, new_secret text default null,
      new_name text default null, new_description text default null,
      new_key_id uuid default null) returns void
    language sql as $$
      update vault.secrets set secret = coalesce(new_secret, secret),
        name = coalesce(new_name, name), description = coalesce(new_description, description),
        updated_at = now()
      where id = secret_id $$;`;

let dir: string;
let workdir: string;
let cluster: ClusterSpec;
let dbUrl: string;
let api: ManagementApiStandIn;
let env: NodeJS.ProcessEnv;
// Standard Webhooks' published example secret (not one of ours).
const SIGNING_SECRET = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'cesar-deploy-'));
  await chmod(dir, 0o755);
  cluster = {
    name: 'deploy-target',
    dataDir: path.join(dir, 'db'),
    port: await freePort(),
    cron: true,
    durable: false,
  };
  await initCluster(cluster);
  await startCluster(cluster);
  dbUrl = clusterUrl(cluster.port);
  await installPgNetStandIn(dbUrl);
  const sql = postgres(dbUrl, { max: 1, onnotice: () => {} });
  await sql.unsafe(VAULT_STAND_IN);
  await sql.end();

  // A copy of the checkout's deployable parts: `link` writes supabase/.temp, which must not
  // touch the developer's own link.
  workdir = path.join(dir, 'project');
  for (const part of ['supabase/config.toml', 'supabase/migrations', 'supabase/functions']) {
    await cp(path.join(repoRoot, part), path.join(workdir, part), { recursive: true });
  }
  await cp(path.join(repoRoot, 'packages/shared'), path.join(workdir, 'packages/shared'), {
    recursive: true,
  });

  api = await startManagementApi({
    ref: REF,
    database: { host: '127.0.0.1', port: cluster.port, user: 'postgres', name: 'postgres' },
  });
  const { CESAR_FUNCTION_SECRET: _secret, COCKROACH_DB_URL: _mirror, ...inherited } = process.env;
  env = {
    ...inherited,
    HOME: path.join(dir, 'home'),
    SUPABASE_HOME: path.join(dir, 'home', '.supabase'),
    SUPABASE_PROFILE: await cliProfile(path.join(dir, 'home'), api.url),
    SUPABASE_ACCESS_TOKEN: 'sbp_0123456789abcdef0123456789abcdef01234567',
    SUPABASE_DB_PASSWORD: LOCAL_PASSWORD,
    SUPABASE_TELEMETRY_DISABLED: '1',
    DO_NOT_TRACK: '1',
    CESAR_DEPLOY_WORKDIR: workdir,
  };
}, 120_000);

afterAll(async () => {
  await api?.close();
  if (cluster) await stopCluster(cluster);
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** Relative imports of a TypeScript file, resolved against it. */
function relativeImports(file: string, source: string): string[] {
  const found = source.matchAll(
    /(?:^|\s)(?:import|export)\s[^'";]*?from\s*'(\.[^']+)'|import\s*\(?\s*'(\.[^']+)'/gm,
  );
  return [...found].map((m) => path.posix.join(path.posix.dirname(file), (m[1] ?? m[2])!));
}

/** Every file a function's entry reaches through relative imports, repo-relative. */
async function importGraph(entry: string): Promise<Set<string>> {
  const seen = new Set<string>();
  const pending = [entry];
  while (pending.length > 0) {
    const file = pending.pop()!;
    if (seen.has(file)) continue;
    seen.add(file);
    const source = await readFile(path.join(repoRoot, file), 'utf8');
    pending.push(...relativeImports(file, source));
  }
  return seen;
}

describe('cesar deploy', () => {
  test('--dry-run prints every step and runs none (the stand-in gets no request)', async () => {
    const result = await run(
      process.execPath,
      [
        '--import',
        'tsx',
        path.join(repoRoot, 'scripts/cesar.ts'),
        'deploy',
        '--project-ref',
        REF,
        '--dry-run',
      ],
      { cwd: repoRoot, env, allowFailure: true },
    );
    const output = result.stdout + result.stderr;
    expect(result.code, output).toBe(0);
    for (
      const step of [
        `supabase link --project-ref ${REF}`,
        'supabase db push --remote',
        'supabase secrets set --env-file <a private temporary file: CESAR_FUNCTION_SECRET, ' +
        `CESAR_DB_URL> --remote=${REF}`,
        `cesar_functions_url=https://${REF}.supabase.co/functions/v1`,
        `supabase functions deploy api job-drain webhook sync --use-api --remote=${REF}`,
        `cesar doctor against https://${REF}.supabase.co/functions/v1`,
      ]
    ) {
      expect(output).toContain(step);
    }
    expect(output).toContain('[6/6]');
    expect(api.requests).toEqual([]);
    await expect(stat(path.join(workdir, 'supabase/.temp/project-ref'))).rejects.toThrow();
  }, 60_000);

  test('says what is missing before doing anything', async () => {
    const { SUPABASE_ACCESS_TOKEN: _t, SUPABASE_DB_PASSWORD: _p, ...bare } = env;
    const result = await run(
      process.execPath,
      ['--import', 'tsx', path.join(repoRoot, 'scripts/cesar.ts'), 'deploy', '--project-ref', REF],
      { cwd: repoRoot, env: bare, allowFailure: true },
    );
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('SUPABASE_ACCESS_TOKEN');
    expect(result.stderr).toContain('SUPABASE_DB_PASSWORD');
    expect(api.requests).toEqual([]);
  }, 60_000);

  test(
    'links, pushes the migrations, sets secrets and Vault, uploads the four functions',
    async () => {
      const log: string[] = [];
      // No functions are served for this project, so the last step (doctor against the
      // functions URL) must fail, naming the URL it could not reach.
      const closed = `http://127.0.0.1:${await freePort()}/functions/v1`;
      const error = await deploy({
        ref: REF,
        dryRun: false,
        dbUrl,
        functionsUrl: closed,
        workdir,
        // Verifying signed deliveries: set as a function secret when the environment gives it.
        env: { ...env, CESAR_WEBHOOK_SIGNING_SECRET: SIGNING_SECRET },
        log: (line) => log.push(line),
      }).catch((err) => err);
      expect(error, log.join('\n')).toBeInstanceOf(DeployStepError);
      expect((error as DeployStepError).step, (error as Error).message).toContain('[6/6]');
      expect((error as Error).message).toContain(`cannot reach ${closed}/api/__doctor`);
      // The database half of doctor passed: migrations, pg_cron jobs, the Vault settings.
      expect((error as Error).message).toMatch(/ok +migrations: up to date/);
      expect((error as Error).message).toMatch(/ok +settings for pg_cron and the doorbells/);

      // 1. link asked the Management API for the project.
      expect(api.requests.some((r) => r.method === 'GET' && r.path === `/v1/projects/${REF}`))
        .toBe(true);

      // 2. db push applied every migration, recorded in the CLI's history table.
      const sql = postgres(dbUrl, { max: 1, onnotice: () => {} });
      try {
        const files = (await readdir(path.join(repoRoot, 'supabase/migrations')))
          .filter((f) => f.endsWith('.sql')).map((f) => f.split('_')[0]).sort();
        const applied = await sql<Array<{ version: string }>>`
        select version from supabase_migrations.schema_migrations order by version`;
        expect(applied.map((r) => r.version)).toEqual(files);
        const [cron] =
          await sql`select count(*)::int as n from cron.job where jobname like 'cesar-%'`;
        expect(cron!.n).toBeGreaterThan(0);

        // 3. secrets: the names hosted accepts, the transaction pooler for the functions.
        const posts = api.requests.filter((r) => r.path === `/v1/projects/${REF}/secrets`);
        expect(posts).toHaveLength(1);
        const sent = JSON.parse(posts[0]!.body.toString()) as Array<
          { name: string; value: string }
        >;
        expect(sent.map((s) => s.name).sort()).toEqual([
          'CESAR_DB_URL',
          'CESAR_FUNCTION_SECRET',
          'CESAR_WEBHOOK_SIGNING_SECRET',
        ]);
        expect(api.secrets.get('CESAR_WEBHOOK_SIGNING_SECRET')).toBe(SIGNING_SECRET);
        const secret = api.secrets.get('CESAR_FUNCTION_SECRET')!;
        expect(secret).toMatch(/^[A-Za-z0-9_-]{43}$/);
        const pooler = new URL(api.secrets.get('CESAR_DB_URL')!);
        expect(pooler.port).toBe('6543');
        expect(pooler.hostname).toBe('127.0.0.1');
        expect(decodeURIComponent(pooler.password)).toBe(LOCAL_PASSWORD);
        // The generated secret is never printed (CI logs keep it), only saved, privately.
        expect(log.join('\n')).not.toContain(secret);
        expect(log.join('\n')).not.toContain(SIGNING_SECRET);
        const saved = path.join(workdir, '.local/deploy', `${REF}.env`);
        expect((await stat(saved)).mode & 0o077).toBe(0);
        expect(await readFile(saved, 'utf8')).toContain(`CESAR_FUNCTION_SECRET='${secret}'`);

        // 4. Vault holds what cesar.setting() hands pg_cron and the doorbells.
        const vault = await sql<Array<{ name: string }>>`
        select name from vault.secrets order by name`;
        expect(vault.map((v) => v.name)).toEqual(['cesar_function_secret', 'cesar_functions_url']);
        const [setting] = await sql`
        select cesar.setting('cesar_function_secret') as secret,
               cesar.setting('cesar_functions_url') as url`;
        expect(setting).toEqual({ secret, url: closed });
      } finally {
        await sql.end();
      }

      // 5. The four uploads: every file their imports reach, their deno.json, verify_jwt false.
      expect([...api.functions.keys()].sort()).toEqual([...DEPLOYED_FUNCTIONS].sort());
      for (const name of DEPLOYED_FUNCTIONS) {
        const fn = api.functions.get(name)!;
        const entry = `supabase/functions/${name}/index.ts`;
        expect(fn.metadata).toMatchObject({
          entrypoint_path: entry,
          import_map_path: `supabase/functions/${name}/deno.json`,
          verify_jwt: false,
        });
        const uploaded = new Set(fn.files.keys());
        expect(uploaded).toContain(`supabase/functions/${name}/deno.json`);
        const needed = await importGraph(entry);
        expect([...needed].filter((f) => f.startsWith('packages/shared/src/')).length)
          .toBeGreaterThan(5);
        expect([...needed].filter((f) => !uploaded.has(f)), `${name} upload misses`).toEqual([]);
        for (const file of needed) {
          expect(fn.files.get(file)!.equals(await readFile(path.join(repoRoot, file)))).toBe(true);
        }
      }
    },
    300_000,
  );

  test('a failing step stops the deploy with its output and the fix', async () => {
    expect(api.functions.size, 'runs after the deploy test').toBe(DEPLOYED_FUNCTIONS.length);
    const secret = api.secrets.get('CESAR_FUNCTION_SECRET')!;
    const before = api.requests.length;
    api.failures.set(`POST /v1/projects/${REF}/secrets`, {
      status: 403,
      message: 'stand-in: this token lacks edge_functions_secrets_write',
    });
    const log: string[] = [];
    try {
      const error = await deploy({
        ref: REF,
        dryRun: false,
        dbUrl,
        workdir,
        env,
        log: (line) => log.push(line),
      }).catch((err) => err);
      expect(error, log.join('\n')).toBeInstanceOf(DeployStepError);
      expect((error as DeployStepError).step).toContain('[3/6] set the functions');
      expect((error as Error).message).toContain('this token lacks edge_functions_secrets_write');
      expect((error as Error).message).toContain(
        'fix: the access token needs edge_functions_secrets_write',
      );
      const later = api.requests.slice(before);
      // Nothing after the failing step ran: no function upload.
      expect(later.filter((r) => r.path.includes('/functions'))).toEqual([]);
      // Deploying again keeps the secret the first deploy saved instead of rotating it.
      expect(log.join('\n')).toContain('the one saved by the last deploy');
      const post = later.find((r) => r.method === 'POST' && r.path.endsWith('/secrets'))!;
      const sent = JSON.parse(post.body.toString()) as Array<{ name: string; value: string }>;
      expect(sent.find((s) => s.name === 'CESAR_FUNCTION_SECRET')?.value).toBe(secret);
    } finally {
      api.failures.clear();
    }
  }, 120_000);

  test('each function type-checks from its uploaded files alone, with its deno.json', async () => {
    expect(api.functions.size, 'runs after the deploy test').toBe(DEPLOYED_FUNCTIONS.length);
    // npm: specifiers need packages. With no node_modules and no package.json, Deno looks in
    // its cache (DENO_DIR); this one is built from the repo's node_modules (the versions the
    // lock pins), in the cache's own layout, and --cached-only forbids any download. What it
    // proves: the uploaded files and deno.json alone resolve and type-check; what hosted
    // fetches from npm is the same name@version.
    const denoDir = path.join(dir, 'deno-cache');
    const imports = JSON.parse(
      await readFile(path.join(repoRoot, 'supabase/functions/api/deno.json'), 'utf8'),
    ).imports as Record<string, string>;
    // The packages the uploaded code imports by bare name (the import map lists more).
    const sources = [...api.functions.values()].flatMap((f) =>
      [...f.files].filter(([file]) => file.endsWith('.ts')).map(([, data]) => data.toString())
    ).join('\n');
    const packages = new Map<string, string>();
    for (const [bare, spec] of Object.entries(imports)) {
      const m = /^npm:\/?(@?[^@/]+(?:\/[^@/]+)?)@([^/]+)/.exec(spec);
      const used = new RegExp(`from '${bare.replace(/\/$/, '')}[/']`).test(sources);
      if (m && used) packages.set(m[1]!, m[2]!);
    }
    expect([...packages.keys()].sort()).toEqual(['hono', 'postgres', 'zod']);
    for (const [name, version] of packages) {
      const pkg = JSON.parse(
        await readFile(path.join(repoRoot, 'node_modules', name, 'package.json'), 'utf8'),
      );
      expect(pkg.version, `node_modules/${name}`).toBe(version);
      const target = path.join(denoDir, 'npm/registry.npmjs.org', name);
      await cp(path.join(repoRoot, 'node_modules', name), path.join(target, version), {
        recursive: true,
      });
      const deps = Object.keys(pkg.dependencies ?? {});
      expect(deps, `${name} has dependencies this cache does not hold`).toEqual([]);
      await writeFile(
        path.join(target, 'registry.json'),
        JSON.stringify({
          name,
          'dist-tags': { latest: version },
          versions: { [version]: { version, dependencies: {}, dist: { tarball: '' } } },
        }),
      );
    }
    for (const name of DEPLOYED_FUNCTIONS) {
      const root = await mkdtemp(path.join(dir, `upload-${name}-`));
      for (const [file, data] of api.functions.get(name)!.files) {
        await mkdir(path.dirname(path.join(root, file)), { recursive: true });
        await writeFile(path.join(root, file), data);
      }
      const check = () =>
        run(bin('deno'), [
          'check',
          '--cached-only',
          '--config',
          `supabase/functions/${name}/deno.json`,
          `supabase/functions/${name}/index.ts`,
        ], { cwd: root, env: { ...process.env, DENO_DIR: denoDir }, allowFailure: true });
      const result = await check();
      expect(result.code, `${name}: ${result.stdout}${result.stderr}`).toBe(0);
      // And it does not pass by accident: a missing shared file fails the same check.
      if (name === 'api') {
        await rm(path.join(root, 'packages/shared/src/version.ts'));
        expect((await check()).code).not.toBe(0);
      }
    }
  }, 300_000);
});
