import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

// The folders of packages/shared/src show the architecture: each one's public surface is its
// index.ts, and they depend on each other in one direction only, lowest first. The modules
// at the top of src (db, config, clock, cpu, limits, runtime, ...) are the base every folder
// may use; they use no folder.

const SRC = path.resolve('packages/shared/src');
const LAYERS = ['http', 'capture', 'mirror', 'queue', 'workflows', 'api'];

function tsFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) return tsFiles(full);
    return entry.name.endsWith('.ts') ? [full] : [];
  });
}

/** Every relative module a file imports or re-exports, resolved to a path. */
function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  return [...text.matchAll(/(?:import|export)\s[^;]*?from\s+'(\.[^']+)'/gs)]
    .map((m) => path.resolve(path.dirname(file), m[1]!));
}

/** The folder of src a path is in; 'base' for a module at the top of src. */
function folderOf(file: string): string | null {
  const rel = path.relative(SRC, file);
  if (rel.startsWith('..')) return null;
  const parts = rel.split(path.sep);
  return parts.length === 1 ? 'base' : parts[0]!;
}

const edges = tsFiles(SRC).flatMap((from) =>
  importsOf(from).map((to) => ({ from, to, a: folderOf(from)!, b: folderOf(to) }))
).filter((e) => e.b !== null && e.a !== e.b);

describe('the architecture of packages/shared/src', () => {
  it('has exactly the folders the layering names', () => {
    const folders = readdirSync(SRC, { withFileTypes: true }).filter((e) => e.isDirectory())
      .map((e) => e.name).sort();
    expect(folders).toEqual([...LAYERS].sort());
  });

  it("reaches into another folder only through that folder's index.ts", () => {
    const through = edges.filter((e) =>
      e.b !== 'base' && path.basename(e.to) !== 'index.ts' ||
      e.b !== 'base' && path.dirname(e.to) !== path.join(SRC, e.b!)
    );
    expect(through.map((e) => `${path.relative(SRC, e.from)} -> ${path.relative(SRC, e.to)}`))
      .toEqual([]);
  });

  it('depends downwards only: base <- http <- capture <- mirror <- queue <- workflows <- api', () => {
    const rank = (folder: string) => folder === 'base' ? -1 : LAYERS.indexOf(folder);
    const upward = edges.filter((e) => rank(e.b!) >= rank(e.a));
    expect(upward.map((e) => `${path.relative(SRC, e.from)} -> ${path.relative(SRC, e.to)}`))
      .toEqual([]);
  });

  it('serves each function through folder surfaces and the base runtime only', () => {
    const functions = path.resolve('supabase/functions');
    for (const name of readdirSync(functions)) {
      const entry = path.join(functions, name, 'index.ts');
      for (const target of importsOf(entry)) {
        const folder = folderOf(target);
        expect(folder, `${name} imports ${target}`).not.toBeNull();
        if (folder !== 'base') expect(path.basename(target), `${name}`).toBe('index.ts');
      }
    }
  });
});
