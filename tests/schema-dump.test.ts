import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { expect, inject, it } from 'vitest';
import { repoRoot } from '../scripts/lib/paths.ts';

it('supabase/schema.sql is what the migrations produce (npm run schema:dump)', async () => {
  const committed = await readFile(path.join(repoRoot, 'supabase/schema.sql'), 'utf8');
  // Dumped by the global setup right after the migrations (tests then watch tables of their own).
  const actual = inject('migratedSchema');
  // A mismatch names the first differing line, to see what changed without a diff tool.
  const a = actual.split('\n');
  const c = committed.split('\n');
  const first = a.findIndex((line, i) => line !== c[i]);
  expect(first === -1 ? null : { line: first + 1, migrations: a[first], committed: c[first] })
    .toBeNull();
  expect(a.length).toBe(c.length);
});
