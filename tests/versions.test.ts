import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { repoRoot } from '../scripts/lib/paths.ts';
import { functionNames, FUNCTIONS_DIR } from '../scripts/local/functions.ts';
import { VERSION } from '../packages/shared/src/version.ts';

// One source of versions: package.json (and its lockfile). Deno's import maps, used by the
// local stack and by `supabase functions deploy`, must pin exactly the same packages.

const readJson = (file: string) => JSON.parse(readFileSync(file, 'utf8'));
const pkg = readJson(path.join(repoRoot, 'package.json'));
const lock = readJson(path.join(repoRoot, 'package-lock.json'));
const deps: Record<string, string> = { ...pkg.dependencies, ...pkg.devDependencies };

function importMaps(): Array<{ file: string; imports: Record<string, string> }> {
  const files = [path.join(repoRoot, 'deno.json')];
  for (const name of functionNames()) {
    const file = path.join(FUNCTIONS_DIR, name, 'deno.json');
    if (existsSync(file)) files.push(file);
  }
  return files.map((file) => ({ file, imports: readJson(file).imports ?? {} }));
}

describe('versions', () => {
  it('pins every dependency exactly in package.json', () => {
    for (const [name, range] of Object.entries(deps)) {
      expect(range, name).toMatch(/^\d+\.\d+\.\d+$/);
    }
    for (
      const name of [
        'hono',
        'zod',
        'postgres',
        '@supabase/supabase-js',
        'vitest',
        'supabase',
        'deno',
      ]
    ) {
      expect(deps[name], name).toBeDefined();
      expect(lock.packages[`node_modules/${name}`].version, name).toBe(deps[name]);
    }
  });

  it('pins the same versions in every deno.json import map', () => {
    const maps = importMaps();
    expect(maps[0]!.imports.hono).toBeDefined();
    for (const { file, imports } of maps) {
      for (const [key, target] of Object.entries(imports)) {
        const match = /^npm:\/?((?:@[^/@]+\/)?[^/@]+)@([^/]+)/.exec(target);
        expect(match, `${file}: ${key}`).not.toBeNull();
        const [, name, version] = match!;
        expect(version, `${path.relative(repoRoot, file)}: ${name}`).toBe(deps[name!]);
      }
    }
  });

  it('reports the package version from the code', () => {
    expect(VERSION).toBe(pkg.version);
  });
});
