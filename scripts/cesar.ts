import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { onlyKnown, parseArgs, type Parsed, UsageError } from './cli/args.ts';
import { type Client, clientFromEnvironment, CliError, EXIT } from './cli/client.ts';
import { type CommandResult, restoreCommand, syncCommand, verifyCommand } from './cli/sync.ts';
import { deployCommand } from './cli/deploy.ts';
import { doctorCommand, migrateCommand } from './cli/doctor.ts';
import { jobsCommand } from './cli/jobs.ts';
import { eventsCommand, workflowsCommand } from './cli/workflows.ts';
import { bin, repoRoot } from './lib/paths.ts';

// `npm run cesar -- <command>` (or `npx cesar <command>`): the operator's CLI. Human output by
// default, `--json` for machines; exit codes: 0 ok, 1 the operation failed (a table failed,
// verify found differences), 2 usage, 3 the functions cannot be reached or refused the secret.

const HELP = `cesar <command> [options]

  start | stop | status          the local stack (npm start / npm stop)
  doctor                         check every part; say what is wrong and how to fix it
  migrate [--dry-run] [--db-url URL]   apply pending migrations (Supabase CLI)
  deploy --project-ref <ref> [--dry-run] [--db-url URL] [--pooler-url URL] [--functions-url URL]
                                 link, db push, secrets, Vault, functions deploy, then doctor
                                 (needs SUPABASE_ACCESS_TOKEN and SUPABASE_DB_PASSWORD)
  sync    [--table T]... [--direction up|down|both] [--dry-run]
  verify  [--table T]...         compare primary and mirror
  restore [--table T]...         rebuild the primary's tables from the mirror
  workflows list | enable <id|name> | disable <id|name> | run <id|name>
  events list [--table T] [--status S] [--limit N]
  events replay --from <ISO time> [--to <ISO time>] [--table T] [--workflow <id|name>] [--status S]...
  events redeliver <id>
  jobs list [--status S] [--type T] [--limit N]
  jobs types                      each type's caps and rate limits
  jobs types set <type> [--concurrency N] [--rate-limit N --rate-period SECONDS]
                 [--rate-key payload.F] [--key-concurrency N --concurrency-key payload.F]
                                 change them (none clears one)
  jobs rate-limit set <type> <key> --limit N --period SECONDS
  jobs rate-limit delete <type> <key>
                                 one key's own rate limit, e.g. an http_request action's
                                 rate_group: jobs rate-limit set http.request partner-x ...
  jobs retry <id>... | --type T [--since <ISO time>]
  jobs cancel <id>...

  --json   machine-readable output on stdout
Settings: .env.local (written by npm start), or CESAR_FUNCTIONS_URL and CESAR_FUNCTION_SECRET.`;

const KNOWN: Record<string, string[]> = {
  doctor: ['json'],
  migrate: ['dry-run', 'db-url', 'json'],
  deploy: ['project-ref', 'dry-run', 'db-url', 'pooler-url', 'functions-url', 'json'],
  sync: ['table', 'direction', 'dry-run', 'json'],
  verify: ['table', 'json'],
  restore: ['table', 'json'],
  workflows: ['json'],
  events: ['table', 'status', 'limit', 'from', 'to', 'workflow', 'json'],
  jobs: [
    'status',
    'type',
    'limit',
    'since',
    'period',
    'concurrency',
    'rate-limit',
    'rate-period',
    'rate-key',
    'key-concurrency',
    'concurrency-key',
    'json',
  ],
};

async function main(argv: string[]): Promise<number> {
  const parsed = parseArgs(argv, new Set(['json', 'dry-run', 'help']));
  const [command] = parsed.positionals;
  if (!command || command === 'help' || parsed.flags.has('help')) {
    console.log(HELP);
    return command || parsed.flags.has('help') ? EXIT.ok : EXIT.usage;
  }
  if (command === 'start' || command === 'stop' || command === 'status') {
    const run = spawnSync(bin('tsx'), [path.join(repoRoot, 'scripts/stack.ts'), command], {
      stdio: 'inherit',
    });
    return run.status ?? EXIT.failed;
  }
  // Commands that talk to the functions get the client; doctor and migrate read the
  // settings themselves.
  const withClient = (fn: (c: Client, p: Parsed) => Promise<CommandResult>) => async (p: Parsed) =>
    fn(await clientFromEnvironment(), p);
  const commands: Record<string, (p: Parsed) => Promise<CommandResult>> = {
    doctor: () => doctorCommand(),
    migrate: migrateCommand,
    deploy: (p) => deployCommand(p),
    sync: withClient(syncCommand),
    verify: withClient(verifyCommand),
    restore: withClient(restoreCommand),
    workflows: withClient(workflowsCommand),
    events: withClient(eventsCommand),
    jobs: withClient(jobsCommand),
  };
  const run = commands[command];
  if (!run) throw new UsageError(`unknown command ${command}`);
  onlyKnown(parsed, KNOWN[command]!);
  const result = await run(parsed);
  console.log(parsed.flags.has('json') ? JSON.stringify(result.json, null, 2) : result.human);
  return result.exitCode;
}

try {
  process.exitCode = await main(process.argv.slice(2));
} catch (err) {
  if (err instanceof UsageError) {
    console.error(`cesar: ${err.message}\n\n${HELP}`);
    process.exitCode = EXIT.usage;
  } else if (err instanceof CliError) {
    console.error(`cesar: ${err.message}`);
    process.exitCode = err.exitCode;
  } else {
    throw err;
  }
}
