import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import postgres from 'postgres';
import { readEnvFile, writeEnvFile } from '../lib/env-file.ts';
import { bin, repoRoot } from '../lib/paths.ts';
import { run } from '../lib/run.ts';
import { type Parsed, single, UsageError } from './args.ts';
import { CliError, EXIT } from './client.ts';
import { doctorCommand } from './doctor.ts';
import type { CommandResult } from './sync.ts';

// `cesar deploy --project-ref <ref> [--dry-run]`: a hosted Supabase project from this
// checkout in one command, with the Supabase CLI doing what it owns (link, db push, secrets,
// functions deploy) and this module doing the rest (the Vault entries pg_cron and the
// doorbells read, then `cesar doctor` against the deployed functions). Each step prints what
// it runs; a failing step stops the deploy with its output and what to fix.

/** The functions this project deploys (supabase/functions/<name>, verify_jwt in config.toml). */
export const DEPLOYED_FUNCTIONS = ['api', 'job-drain', 'webhook', 'sync'] as const;

/** Function secrets set when the deploy's environment gives them (README, Configuration). */
const OPTIONAL_FUNCTION_SETTINGS = [
  'COCKROACH_DB_URL',
  'CESAR_WEBHOOK_SIGNING_SECRET',
  'CESAR_WEBHOOK_SIGNATURE_TOLERANCE_SECONDS',
] as const;

/** Transaction-mode pooler (Supavisor) port: what the functions connect through. */
const TRANSACTION_POOLER_PORT = '6543';
/** Session-mode pooler port: SQL that needs a session, like this module's Vault writes. */
const SESSION_POOLER_PORT = '5432';

export interface DeployOptions {
  ref: string;
  dryRun: boolean;
  /** Database for `db push` and the Vault writes; default: the session pooler from `link`. */
  dbUrl?: string;
  /** CESAR_DB_URL for the functions; default: the transaction pooler from `link`. */
  poolerUrl?: string;
  /** Default https://<ref>.supabase.co/functions/v1; another for a custom domain. */
  functionsUrl?: string;
  /** The folder holding supabase/ (and packages/, which the functions import). */
  workdir: string;
  env: NodeJS.ProcessEnv;
  log: (line: string) => void;
}

interface Step {
  title: string;
  /** What the step runs, as printed: secret values are masked. */
  shows: string;
  fix: string;
  run: () => Promise<string>;
}

/** Why a step failed, with its output and what to do about it. */
export class DeployStepError extends CliError {
  constructor(readonly step: string, output: string, fix: string) {
    super(`${step} failed\n${output.trim()}\n  fix: ${fix}`, EXIT.failed);
  }
}

const maskUrl = (url: string) => {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '<not a URL>';
  }
};

/** A URL with the password and port set; the pooler URLs from `link` carry neither. */
function withCredentials(url: string, password: string, port: string): string {
  // The Management API writes a placeholder where the password goes.
  const u = new URL(url.replace('[YOUR-PASSWORD]', ''));
  // ' too: the URL is written single-quoted into an env file (writeEnvFile).
  u.password = encodeURIComponent(password).replaceAll("'", '%27');
  u.port = port;
  return u.toString();
}

/** What is missing from the environment, each with where to get it; empty when all is set. */
export function missingSettings(options: DeployOptions): string[] {
  const missing: string[] = [];
  if (!options.env.SUPABASE_ACCESS_TOKEN) {
    missing.push(
      'SUPABASE_ACCESS_TOKEN: a personal access token ' +
        '(https://supabase.com/dashboard/account/tokens)',
    );
  }
  if (!options.env.SUPABASE_DB_PASSWORD && !(options.dbUrl && options.poolerUrl)) {
    missing.push(
      "SUPABASE_DB_PASSWORD: the project's database password (Project Settings > Database)",
    );
  }
  return missing;
}

function validate(options: DeployOptions) {
  // Project refs are 20 lowercase letters; anything else would reach the CLI as a branch name.
  if (!/^[a-z]{20}$/.test(options.ref)) {
    throw new UsageError(`--project-ref must be 20 lowercase letters, got "${options.ref}"`);
  }
  for (const [flag, url] of [['db-url', options.dbUrl], ['pooler-url', options.poolerUrl]]) {
    if (url && !/^postgres(ql)?:\/\//.test(url)) {
      throw new UsageError(`--${flag} must be a postgresql:// URL`);
    }
  }
  if (options.functionsUrl && !/^https?:\/\//.test(options.functionsUrl)) {
    throw new UsageError('--functions-url must be an http(s) URL');
  }
  if (!existsSync(path.join(options.workdir, 'supabase', 'config.toml'))) {
    throw new UsageError(`no supabase/config.toml under ${options.workdir}`);
  }
}

/** Where the secret and URLs of a deployed project are kept for the operator (git-ignored). */
export const deploySettingsFile = (workdir: string, ref: string) =>
  path.join(workdir, '.local', 'deploy', `${ref}.env`);

/**
 * Stores each setting in Vault (create, or update by name), where cesar.setting() finds it;
 * a database without Vault gets cesar.local_settings, which cesar.setting() reads next.
 */
export async function storeVaultSettings(
  url: string,
  values: Record<string, string>,
): Promise<string> {
  const sql = postgres(url, { max: 1, onnotice: () => {}, connect_timeout: 10, prepare: false });
  try {
    const [vault] = await sql`select to_regproc('vault.create_secret') is not null as present`;
    const lines: string[] = [];
    for (const [name, value] of Object.entries(values)) {
      if (vault!.present) {
        const [existing] = await sql`select id from vault.secrets where name = ${name}`;
        if (existing) {
          await sql`select vault.update_secret(${existing.id}::uuid, ${value})`;
        } else {
          await sql`select vault.create_secret(${value}, ${name}, 'CESAR Edge (cesar deploy)')`;
        }
        lines.push(`${existing ? 'updated' : 'created'} Vault secret ${name}`);
      } else {
        await sql`
          insert into cesar.local_settings (name, value) values (${name}, ${value})
          on conflict (name) do update set value = excluded.value`;
        lines.push(`no Vault in this database: wrote ${name} to cesar.local_settings`);
      }
    }
    // Read back through the function pg_cron and the triggers use.
    for (const name of Object.keys(values)) {
      const [row] = await sql`select cesar.setting(${name}) = ${values[name]!} as same`;
      if (!row?.same) throw new Error(`cesar.setting('${name}') does not return the value set`);
    }
    return lines.join('\n');
  } finally {
    await sql.end({ timeout: 5 });
  }
}

/**
 * The steps of a deploy. `previousSecret`: the one an earlier deploy of this project saved,
 * kept so that deploying again does not rotate the secret under running callers.
 */
export function deploySteps(
  options: DeployOptions,
  previousSecret?: string,
): { steps: Step[]; notes: string[] } {
  const { ref, workdir, env } = options;
  const notes: string[] = [];
  const cli = async (args: string[], extraEnv: Record<string, string> = {}) => {
    const result = await run(bin('supabase'), [...args, '--workdir', workdir, '--yes'], {
      cwd: workdir,
      env: { ...env, ...extraEnv },
      allowFailure: true,
    });
    const output = `${result.stdout}${result.stderr}`.trim();
    if (result.code !== 0) throw new Error(output || `exited with ${result.code}`);
    return output;
  };
  const show = (args: string[]) => `supabase ${args.join(' ')}`;

  const given = env.CESAR_FUNCTION_SECRET || previousSecret;
  const secret = given || randomBytes(32).toString('base64url');
  const functionsUrl = (options.functionsUrl ?? `https://${ref}.supabase.co/functions/v1`)
    .replace(/\/$/, '');
  const password = env.SUPABASE_DB_PASSWORD ?? '';
  // The pooler's address comes from `supabase link` (supabase/.temp/pooler-url), unless given.
  const linkedPooler = async (port: string) => {
    const file = path.join(workdir, 'supabase', '.temp', 'pooler-url');
    if (!existsSync(file)) {
      throw new Error(
        `supabase link wrote no pooler URL (${file}); pass --pooler-url and --db-url`,
      );
    }
    return withCredentials((await readFile(file, 'utf8')).trim(), password, port);
  };
  const poolerUrl = () =>
    options.poolerUrl ? Promise.resolve(options.poolerUrl) : linkedPooler(TRANSACTION_POOLER_PORT);
  const dbUrl = () =>
    options.dbUrl ? Promise.resolve(options.dbUrl) : linkedPooler(SESSION_POOLER_PORT);

  // What doctor (and the operator, with CESAR_ENV_FILE) needs to reach the deployed project.
  const saved = async () => {
    const settings = {
      CESAR_FUNCTIONS_URL: functionsUrl,
      CESAR_FUNCTION_SECRET: secret,
      CESAR_DB_URL: await poolerUrl(),
      SUPABASE_DB_URL: await dbUrl(),
    };
    const file = deploySettingsFile(workdir, ref);
    await mkdir(path.dirname(file), { recursive: true });
    await writeEnvFile(
      file,
      settings,
      `Written by cesar deploy for project ${ref}: secrets, keep it private.\n` +
        `Use it with: CESAR_ENV_FILE=${file} npm run cesar -- doctor`,
    );
    return settings;
  };

  const secretNames = ['CESAR_FUNCTION_SECRET', 'CESAR_DB_URL'];
  // Settings the functions read when they are given (the mirror, verifying signed deliveries).
  const optional = OPTIONAL_FUNCTION_SETTINGS.filter((name) => env[name]);
  secretNames.push(...optional);
  // A --db-url's password goes to the CLI in PGPASSWORD, never in its argv (ps shows argv).
  const push = () => {
    if (!options.dbUrl) return cli(['db', 'push', '--remote']);
    const url = new URL(options.dbUrl);
    const password = decodeURIComponent(url.password);
    url.password = '';
    return cli(['db', 'push', `--remote=${url}`], password ? { PGPASSWORD: password } : {});
  };
  const deployArgs = ['functions', 'deploy', ...DEPLOYED_FUNCTIONS, '--use-api', `--remote=${ref}`];

  const steps: Step[] = [
    {
      title: 'link the project',
      shows: show(['link', '--project-ref', ref]),
      fix: 'check SUPABASE_ACCESS_TOKEN and the project ref (Project Settings > General)',
      run: () => cli(['link', '--project-ref', ref]),
    },
    {
      title: 'apply the migrations',
      shows: show([
        'db',
        'push',
        options.dbUrl ? `--remote=${maskUrl(options.dbUrl)}` : '--remote',
      ]),
      fix:
        'check SUPABASE_DB_PASSWORD (Project Settings > Database); a migration that fails names ' +
        'its statement above',
      run: push,
    },
    {
      title: 'set the functions\u2019 secrets',
      shows: show([
        'secrets',
        'set',
        `--env-file <a private temporary file: ${secretNames.join(', ')}>`,
        `--remote=${ref}`,
      ]),
      fix: 'the access token needs edge_functions_secrets_write on this project',
      run: async () => {
        const values: Record<string, string> = {
          CESAR_FUNCTION_SECRET: secret,
          CESAR_DB_URL: await poolerUrl(),
        };
        for (const name of optional) values[name] = env[name]!;
        // Saved before it is used anywhere, so a later failure cannot lose a generated secret.
        await saved();
        // Through a private file, not NAME=value arguments: those show in every `ps`.
        const dir = await mkdtemp(path.join(tmpdir(), 'cesar-secrets-'));
        try {
          const file = path.join(dir, 'secrets.env');
          await writeEnvFile(file, values, 'cesar deploy: removed after `supabase secrets set`');
          return await cli(['secrets', 'set', '--env-file', file, `--remote=${ref}`]);
        } finally {
          await rm(dir, { recursive: true, force: true });
        }
      },
    },
    {
      title: 'store the settings pg_cron and the doorbells read (Vault)',
      shows: `Vault: cesar_functions_url=${functionsUrl}, cesar_function_secret=*** ` +
        `(SQL over ${options.dbUrl ? maskUrl(options.dbUrl) : 'the session pooler from link'})`,
      fix: 'the database user needs Vault (postgres has it on hosted); check the database URL ' +
        'and SUPABASE_DB_PASSWORD',
      run: async () =>
        storeVaultSettings(await dbUrl(), {
          cesar_functions_url: functionsUrl,
          cesar_function_secret: secret,
        }),
    },
    {
      title: 'deploy the functions',
      shows: show(deployArgs),
      fix: 'the access token needs edge_functions_write; a bundling error names the file above',
      run: () => cli(deployArgs),
    },
    {
      title: 'check the deployed project (cesar doctor)',
      shows: `cesar doctor against ${functionsUrl}`,
      fix: 'follow the fixes doctor printed above',
      run: async () => {
        const result = await doctorCommand({ settings: await saved() });
        if (result.exitCode !== EXIT.ok) throw new Error(result.human);
        return result.human;
      },
    },
  ];
  if (!env.CESAR_FUNCTION_SECRET && previousSecret) {
    notes.push('CESAR_FUNCTION_SECRET: the one saved by the last deploy of this project');
  }
  if (!given) {
    notes.push(
      'CESAR_FUNCTION_SECRET was not set: a new one is generated (kept in the file below, ' +
        'never printed)',
    );
  }
  notes.push(
    `the secret and URLs are saved to ${
      path.relative(workdir, deploySettingsFile(workdir, ref))
    } (git-ignored)`,
  );
  return { steps, notes };
}

export async function deploy(options: DeployOptions): Promise<CommandResult> {
  validate(options);
  const missing = missingSettings(options);
  if (missing.length > 0) {
    throw new CliError(
      `cannot deploy: missing\n${missing.map((m) => `  ${m}`).join('\n')}`,
      EXIT.usage,
    );
  }
  const previous = await readEnvFile(deploySettingsFile(options.workdir, options.ref));
  const { steps, notes } = deploySteps(options, previous.CESAR_FUNCTION_SECRET);
  const log = options.log;
  log(`${options.dryRun ? 'Would deploy' : 'Deploying'} to project ${options.ref}`);
  for (const note of notes) log(`  note: ${note}`);
  const done: string[] = [];
  for (const [i, step] of steps.entries()) {
    const label = `[${i + 1}/${steps.length}] ${step.title}`;
    log(`${label}\n  $ ${step.shows}`);
    if (options.dryRun) continue;
    let output: string;
    try {
      output = await step.run();
    } catch (err) {
      throw new DeployStepError(label, (err as Error).message, step.fix);
    }
    if (output) log(output.split('\n').map((l) => `  ${l}`).join('\n'));
    done.push(step.title);
  }
  return {
    json: { ref: options.ref, dry_run: options.dryRun, steps: steps.map((s) => s.shows), done },
    human: options.dryRun
      ? 'Dry run: nothing was run.'
      : `Deployed to ${options.ref}: ${done.length} steps done.`,
    exitCode: EXIT.ok,
  };
}

export function deployCommand(
  parsed: Parsed,
  env: NodeJS.ProcessEnv = process.env,
  // Progress goes to stderr under --json, so stdout stays one JSON document.
  log: (line: string) => void = parsed.flags.has('json') ? console.error : console.log,
): Promise<CommandResult> {
  if (parsed.positionals.length > 1) throw new UsageError('deploy takes no arguments');
  const ref = single(parsed, 'project-ref');
  if (!ref) throw new UsageError('deploy needs --project-ref <ref>');
  return deploy({
    ref,
    dryRun: parsed.flags.has('dry-run'),
    dbUrl: single(parsed, 'db-url'),
    poolerUrl: single(parsed, 'pooler-url'),
    functionsUrl: single(parsed, 'functions-url'),
    workdir: env.CESAR_DEPLOY_WORKDIR ?? repoRoot,
    env,
    log,
  });
}
