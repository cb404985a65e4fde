import { existsSync } from 'node:fs';
import { chmod, readFile, writeFile } from 'node:fs/promises';

/** Reads KEY=value lines (comments and blank lines skipped; no shell expansion). */
export async function readEnvFile(file: string): Promise<Record<string, string>> {
  if (!existsSync(file)) return {};
  const values: Record<string, string> = {};
  for (const line of (await readFile(file, 'utf8')).split('\n')) {
    const match = /^\s*(?:export\s+)?([A-Z_][A-Z0-9_]*)=(.*)$/.exec(line);
    if (!match) continue;
    values[match[1]!] = match[2]!.trim().replace(/^(['"])(.*)\1$/, '$2');
  }
  return values;
}

/** Writes the file so that `source .env.local` (or `set -a; . ./.env.local`) works. */
export async function writeEnvFile(file: string, values: Record<string, string>, header: string) {
  const lines = Object.entries(values).map(([key, value]) => {
    // Single quotes keep a value as it is for a shell, except a quote or a line break.
    if (/['\n\r]/.test(value)) throw new Error(`${key} holds a quote or a line break`);
    return `${key}='${value}'`;
  });
  await writeFile(
    file,
    `${header.split('\n').map((l) => `# ${l}`).join('\n')}\n${lines.join('\n')}\n`,
    { mode: 0o600 },
  );
  // mode applies only to a file that writeFile creates.
  await chmod(file, 0o600);
}
