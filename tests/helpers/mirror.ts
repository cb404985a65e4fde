import postgres from 'postgres';
import { afterAll, expect } from 'vitest';
import type { Sql } from '../../packages/shared/src/db.ts';
import { COCKROACH_REJECTS } from '../../packages/shared/src/mirror/dialect.ts';
import { mirrorUrl } from './db.ts';

/** A pool on the mirror that records every statement sent to it, closed after the file. */
export function recordingMirror(): { mirror: Sql; statements: string[] } {
  const statements: string[] = [];
  const mirror = postgres(mirrorUrl(), {
    max: 4,
    onnotice: () => {},
    debug: (_connection, query) => statements.push(query),
  });
  afterAll(() => mirror.end({ timeout: 5 }));
  return { mirror, statements };
}

export function expectCockroachCompatible(statements: string[]) {
  expect(statements.length).toBeGreaterThan(10);
  for (const statement of statements) {
    for (const pattern of COCKROACH_REJECTS) expect(statement, statement).not.toMatch(pattern);
  }
}
