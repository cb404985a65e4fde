import { describe, expect, it } from 'vitest';
import {
  compileSafeRegex,
  MAX_PROGRAM_SIZE,
  RegexSyntaxError,
} from '../packages/shared/src/workflows/regex.ts';

// The `matches` filter's linear-time matcher: the same answers as JavaScript's RegExp on the
// syntax it accepts, and bounded work on patterns that make a backtracking engine blow up.

/** A small seeded generator (mulberry32), so a failure names a reproducible case. */
function random(seed: number) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function generator(rand: () => number) {
  const pick = <T>(xs: readonly T[]) => xs[Math.floor(rand() * xs.length)]!;
  const atoms = [
    'a',
    'b',
    '1',
    ' ',
    '_',
    '.',
    '\\d',
    '\\w',
    '\\s',
    '\\W',
    '[ab]',
    '[^a]',
    '[a-c1]',
    '\\.',
    '\\n',
  ];
  const quantifiers = ['', '', '', '*', '+', '?', '{2}', '{1,2}', '{0,}', '*?', '+?'];
  const pattern = (depth: number): string => {
    const parts: string[] = [];
    const length = 1 + Math.floor(rand() * 4);
    for (let i = 0; i < length; i++) {
      const r = rand();
      if (r < 0.08) parts.push(pick(['^', '$', '\\b', '\\B']));
      else if (r < 0.25 && depth < 3) {
        const inner = rand() < 0.4
          ? `${pattern(depth + 1)}|${pattern(depth + 1)}`
          : pattern(depth + 1);
        parts.push(`${pick(['(', '(?:'])}${inner})${pick(quantifiers)}`);
      } else parts.push(pick(atoms) + pick(quantifiers));
    }
    return parts.join('');
  };
  const subject = () =>
    Array.from(
      { length: Math.floor(rand() * 14) },
      () => pick(['a', 'b', 'c', '1', ' ', '_', '\n', '.']),
    ).join('');
  return { pattern: () => pattern(0), subject };
}

describe('compileSafeRegex', () => {
  it('answers as RegExp does on 20,000 generated pattern and value pairs', () => {
    const gen = generator(random(20261202));
    let compared = 0;
    for (let i = 0; i < 4_000; i++) {
      const pattern = gen.pattern();
      const ours = compileSafeRegex(pattern);
      const theirs = new RegExp(pattern);
      for (let j = 0; j < 5; j++) {
        const value = gen.subject();
        expect(ours.test(value), `/${pattern}/ on ${JSON.stringify(value)}`).toBe(
          theirs.test(value),
        );
        compared++;
      }
    }
    expect(compared).toBe(20_000);
  });

  it('answers as RegExp does on hand-picked cases', () => {
    const cases: Array<[string, string[]]> = [
      ['^keep', ['keep 1', 'drop 1', 'xkeep']],
      ['^(a+)+$', ['aaaa', 'aaab', '']],
      ['colou?r', ['color', 'colour', 'colr']],
      ['\\bcat\\b', ['a cat!', 'concat', 'cat']],
      ['^[\\w.+-]+@[\\w-]+\\.[a-z]{2,}$', ['a.b+c@d-e.org', 'a@b.c', '@b.org']],
      ['(?<year>\\d{4})-\\d{2}', ['2026-12', '26-12']],
      ['[\\]\\\\-]', [']', '\\', '-', 'a']],
      ['a{2,3}$', ['aa', 'aaaa', 'a']],
      ['\\x41\\u0042', ['AB', 'ab']],
      ['[]', ['', 'a']],
      ['[^]', ['', 'a']],
      ['a.c', ['abc', 'a\nc']],
    ];
    for (const [pattern, values] of cases) {
      const ours = compileSafeRegex(pattern);
      for (const value of values) {
        expect(ours.test(value), `/${pattern}/ on ${JSON.stringify(value)}`).toBe(
          new RegExp(pattern).test(value),
        );
      }
    }
  });

  it('does bounded work where a backtracking engine blows up', () => {
    for (const pattern of ['^(a+)+$', '^(a|a)*$', '^(a|aa)+$', '(.*a){12}', '^(\\w+\\s?)*$']) {
      const regex = compileSafeRegex(pattern);
      const value = `${'a'.repeat(20_000)}!`;
      regex.test(value);
      // Every instruction at most once per position: linear in the value.
      expect(regex.lastSteps, pattern).toBeLessThanOrEqual(2 * regex.size * (value.length + 1));
    }
  });

  it('refuses what needs backtracking, and patterns too large, saying why', () => {
    const refused: Array<[string, RegExp]> = [
      ['(a)\\1', /backreferences are not supported/],
      ['(?<x>a)\\k<x>', /backreferences are not supported/],
      ['a(?=b)', /lookaround is not supported/],
      ['(?<!a)b', /lookaround is not supported/],
      ['\\p{L}', /the escape \\p is not supported/],
      ['(a{1000}){1000}', new RegExp(`over ${MAX_PROGRAM_SIZE} steps`)],
      ['a'.repeat(501), /longer than 500 characters/],
      ['(?:(?:(?:){999}){999}){999}', /too large once its quantifiers are counted/],
      ['(?:(?:(?:){9999}){9999}){9999}', /quantifier over 1000/],
      ['^a{12345}$', /quantifier over 1000/],
      ['(', /Invalid regular expression|missing/],
      ['*a', /Nothing to repeat|nothing to repeat/],
    ];
    for (const [pattern, reason] of refused) {
      expect(() => compileSafeRegex(pattern), pattern).toThrow(RegexSyntaxError);
      expect(() => compileSafeRegex(pattern), pattern).toThrow(reason);
    }
  });
});
