// Command-line arguments: positionals, `--name value`, `--name=value` and bare `--flag`s.
// A flag named in `booleans` never takes the next word as its value.

export interface Parsed {
  positionals: string[];
  options: Map<string, string[]>;
  flags: Set<string>;
}

export class UsageError extends Error {}

export function parseArgs(argv: string[], booleans: ReadonlySet<string>): Parsed {
  const parsed: Parsed = { positionals: [], options: new Map(), flags: new Set() };
  for (let i = 0; i < argv.length; i++) {
    const word = argv[i]!;
    if (!word.startsWith('--')) {
      parsed.positionals.push(word);
      continue;
    }
    const [name, inline] = word.slice(2).split(/=(.*)/s, 2) as [string, string | undefined];
    if (booleans.has(name)) {
      if (inline !== undefined) throw new UsageError(`--${name} takes no value`);
      parsed.flags.add(name);
      continue;
    }
    const value = inline ?? argv[++i];
    if (value === undefined || (inline === undefined && value.startsWith('--'))) {
      throw new UsageError(`--${name} needs a value`);
    }
    parsed.options.set(name, [...(parsed.options.get(name) ?? []), value]);
  }
  return parsed;
}

/** The one value of an option, or undefined; more than one is a usage error. */
export function single(parsed: Parsed, name: string): string | undefined {
  const values = parsed.options.get(name);
  if (values && values.length > 1) throw new UsageError(`--${name} was given more than once`);
  return values?.[0];
}

/** Options the command does not know are usage errors, not silently ignored. */
export function onlyKnown(parsed: Parsed, known: readonly string[]) {
  for (const name of [...parsed.options.keys(), ...parsed.flags]) {
    if (!known.includes(name)) throw new UsageError(`unknown option --${name}`);
  }
}
