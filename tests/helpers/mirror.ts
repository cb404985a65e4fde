import postgres from 'postgres';
import { afterAll, expect } from 'vitest';
import type { Sql } from '../../packages/shared/src/db.ts';
import { mirrorUrl } from './db.ts';

/** Constructs CockroachDB rejects (or that mean something else there). */
const REJECTED = [
  /\blisten\b/i,
  /\bnotify\b/i,
  /pg_advisory/i,
  /\btrigger\b/i,
  /\bserial\b/i,
  /\bctid\b/i,
  /\bxmin\b/i,
  /\bxmax\b/i,
  /::regclass/i,
  /\bunlogged\b/i,
  /\bcreate extension\b/i,
  /\binherits\b/i,
];

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
    for (const pattern of REJECTED) expect(statement, statement).not.toMatch(pattern);
  }
}
