import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parse, TomlError, type TomlTable } from 'smol-toml';
import { repoRoot } from '../lib/paths.ts';

// supabase/config.toml as the local stack reads it: the gateway applies
// `[functions.<name>] verify_jwt` and the pooler takes `[db.pooler]`, as the CLI and hosted do.

export const CONFIG_TOML = path.join(repoRoot, 'supabase', 'config.toml');

/** A parsed config.toml; a broken file is an error naming the file and the line. */
export function readConfigToml(file = CONFIG_TOML): TomlTable {
  const text = readFileSync(file, 'utf8');
  try {
    return parse(text);
  } catch (err) {
    if (err instanceof TomlError) {
      throw new Error(`${file}: line ${err.line}: ${err.message.split('\n')[0]}`);
    }
    throw err;
  }
}

/** The table at `key`, or empty when absent; an error when it is something else. */
export function tableAt(config: TomlTable, key: string): TomlTable {
  const value = config[key];
  if (value === undefined) return {};
  if (
    typeof value !== 'object' || value === null || Array.isArray(value) || value instanceof Date
  ) {
    throw new Error(`${key} must be a table`);
  }
  return value as TomlTable;
}

/** `[functions.<name>]` settings the local stack applies. */
export interface FunctionSettings {
  /** Refuse requests without a valid JWT or API key before the function runs. */
  verifyJwt: boolean;
}

/**
 * Each function's settings from a parsed config.toml. verify_jwt is true when absent, as the
 * CLI deploys and serves a function it has no setting for.
 */
export function functionSettings(config: TomlTable): (name: string) => FunctionSettings {
  const settings = new Map<string, FunctionSettings>();
  const functions = tableAt(config, 'functions');
  for (const name of Object.keys(functions)) {
    const verify = tableAt(functions, name).verify_jwt ?? true;
    if (typeof verify !== 'boolean') {
      throw new Error(`functions.${name}.verify_jwt must be true or false`);
    }
    settings.set(name, { verifyJwt: verify });
  }
  return (name) => settings.get(name) ?? { verifyJwt: true };
}

export function readFunctionSettings(file = CONFIG_TOML) {
  return functionSettings(readConfigToml(file));
}
