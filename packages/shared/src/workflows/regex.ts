// The `matches` filter's regular expressions, run in time linear in the value's length. A
// backtracking engine (JavaScript's RegExp) takes exponential time on patterns such as
// `^(a+)+$`: one crafted event blocked the webhook function for about 100 s. Here a pattern is
// compiled to a Thompson NFA and every position of the value is read once, with the set of
// live states (at most the program's length) carried along: the work is bounded by
// program length x value length, whatever the pattern and the value.
//
// The syntax is JavaScript's, without flags, minus what needs backtracking: literals, `.`,
// classes (`[a-z]`, `[^...]`, `\d \w \s` and their negations), escapes (`\n`, `\x41`,
// `\u0041`, `\.`), anchors `^ $ \b \B`, groups `(...)`, `(?:...)`, `(?<name>...)`,
// alternation and the quantifiers `* + ? {n} {n,} {n,m}` (greedy or lazy: a test does not
// care). Backreferences and lookaround are refused with the reason, as is anything else.
// Like RegExp without the u flag, strings are read as UTF-16 code units.

/** Longest pattern accepted. */
export const MAX_PATTERN_LENGTH = 500;
/** Most NFA instructions a pattern may compile to (quantifier counts multiply its size). */
export const MAX_PROGRAM_SIZE = 500;
/** Largest count in a {n,m} quantifier. */
export const MAX_REPEAT = 1_000;
/**
 * A value's characters that are tested; the rest of a longer value is not read. With
 * MAX_PROGRAM_SIZE this bounds one test at about 10^7 steps: 0.14 to 0.18 s measured here
 * (tsx, this 2-core machine) for the worst patterns, `x{490}!` and a 450-item class repeated
 * 490 times, on 10,000 characters. A template holds at most 5 `matches` (workflows/schema.ts).
 */
export const MAX_SUBJECT_LENGTH = 10_000;

export class RegexSyntaxError extends Error {}

type CharTest = (c: number) => boolean;
type AssertKind = '^' | '$' | 'b' | 'B';
type Node =
  | { t: 'char'; test: CharTest }
  | { t: 'seq'; items: Node[] }
  | { t: 'alt'; options: Node[] }
  | { t: 'rep'; node: Node; min: number; max: number }
  | { t: 'assert'; kind: AssertKind };

type Instruction =
  | { op: 'char'; test: CharTest; next: number }
  | { op: 'split'; x: number; y: number }
  | { op: 'jmp'; x: number }
  | { op: 'assert'; kind: AssertKind; next: number }
  | { op: 'match' };

const range = (lo: number, hi: number): CharTest => (c) => c >= lo && c <= hi;
const anyOf = (...tests: CharTest[]): CharTest => (c) => tests.some((t) => t(c));
const not = (test: CharTest): CharTest => (c) => !test(c);
const code = (s: string) => s.charCodeAt(0);
const asTest = (x: number | CharTest): CharTest => typeof x === 'number' ? (c) => c === x : x;

const DIGIT = range(48, 57);
const WORD = anyOf(range(65, 90), range(97, 122), DIGIT, (c) => c === 95);
// JavaScript's \s: WhiteSpace and LineTerminator.
const SPACE: CharTest = (c) =>
  (c >= 9 && c <= 13) || c === 32 || c === 0xa0 || c === 0x1680 ||
  (c >= 0x2000 && c <= 0x200a) || c === 0x2028 || c === 0x2029 || c === 0x202f ||
  c === 0x205f || c === 0x3000 || c === 0xfeff;
const LINE_TERMINATOR: CharTest = (c) => c === 10 || c === 13 || c === 0x2028 || c === 0x2029;
const CONTROL_ESCAPES: Record<string, number> = { n: 10, r: 13, t: 9, f: 12, v: 11, '0': 0 };

/** Parses a pattern (recursive descent; nesting is bounded by the pattern's length). */
function parse(pattern: string): Node {
  let at = 0;
  const fail = (what: string): never => {
    throw new RegexSyntaxError(`${what} (at character ${at + 1})`);
  };
  const peek = () => pattern[at];
  const eat = (s: string) => (pattern.startsWith(s, at) ? ((at += s.length), true) : false);

  function alternation(): Node {
    const options = [sequence()];
    while (eat('|')) options.push(sequence());
    return options.length === 1 ? options[0]! : { t: 'alt', options };
  }

  function sequence(): Node {
    const items: Node[] = [];
    while (at < pattern.length && peek() !== '|' && peek() !== ')') items.push(quantified());
    return { t: 'seq', items };
  }

  function quantified(): Node {
    const node = atom();
    const bounds = quantifier();
    if (!bounds) return node;
    if (node.t === 'assert') fail('a quantifier on an anchor');
    eat('?'); // lazy: the same for a test
    if (quantifier()) fail('a quantifier on a quantifier');
    return { t: 'rep', node, ...bounds };
  }

  function quantifier(): { min: number; max: number } | null {
    if (eat('*')) return { min: 0, max: Infinity };
    if (eat('+')) return { min: 1, max: Infinity };
    if (eat('?')) return { min: 0, max: 1 };
    const braces = /^\{(\d+)(,(\d*))?\}/.exec(pattern.slice(at));
    if (!braces) return null;
    at += braces[0].length;
    const min = Number(braces[1]);
    const max = braces[2] === undefined ? min : braces[3] === '' ? Infinity : Number(braces[3]);
    if (max < min) fail('numbers out of order in a {n,m} quantifier');
    if (min > MAX_REPEAT || (max !== Infinity && max > MAX_REPEAT)) {
      fail(`a {n,m} quantifier over ${MAX_REPEAT}`);
    }
    return { min, max };
  }

  function atom(): Node {
    const c = pattern[at++]!;
    switch (c) {
      case '^':
        return { t: 'assert', kind: '^' };
      case '$':
        return { t: 'assert', kind: '$' };
      case '.':
        return { t: 'char', test: not(LINE_TERMINATOR) };
      case '[':
        return { t: 'char', test: charClass() };
      case '(':
        return group();
      case '\\':
        return escape();
      case '*':
      case '+':
      case '?':
        return fail('nothing to repeat');
      case ')':
        return fail('unmatched )');
      case '{':
        if (/^\d+(,\d*)?\}/.test(pattern.slice(at))) fail('nothing to repeat');
    }
    const literal = code(c);
    return { t: 'char', test: (x) => x === literal };
  }

  function group(): Node {
    if (eat('?')) {
      if (eat('=') || eat('!') || eat('<=') || eat('<!')) {
        fail('lookaround is not supported (it needs backtracking)');
      }
      if (eat('<')) {
        if (!/^[A-Za-z_$][\w$]*>/.test(pattern.slice(at))) fail('a malformed group name');
        at = pattern.indexOf('>', at) + 1;
      } else if (!eat(':')) fail('an unknown group kind');
    }
    const inner = alternation();
    if (!eat(')')) fail('a missing )');
    return inner;
  }

  function escape(): Node {
    if (at >= pattern.length) fail('\\ at the end of the pattern');
    const c = pattern[at]!;
    if (/[1-9]/.test(c) || (c === 'k' && pattern[at + 1] === '<')) {
      fail('backreferences are not supported (they need backtracking)');
    }
    if (c === 'b' || c === 'B') {
      at++;
      return { t: 'assert', kind: c };
    }
    return { t: 'char', test: asTest(characterEscape()) };
  }

  /**
   * An escape after its backslash, inside or outside a class: one character (its code) or a
   * class of them (\d \w \s and their negations).
   */
  function characterEscape(): number | CharTest {
    const c = pattern[at++]!;
    const classes: Record<string, CharTest> = {
      d: DIGIT,
      D: not(DIGIT),
      w: WORD,
      W: not(WORD),
      s: SPACE,
      S: not(SPACE),
    };
    if (c in classes) return classes[c]!;
    if (c in CONTROL_ESCAPES) {
      if (c === '0' && /\d/.test(pattern[at] ?? '')) fail('octal escapes are not supported');
      return CONTROL_ESCAPES[c]!;
    }
    const hex = c === 'x' ? /^[0-9A-Fa-f]{2}/ : c === 'u' ? /^[0-9A-Fa-f]{4}/ : null;
    if (hex) {
      const digits = hex.exec(pattern.slice(at))?.[0] ?? fail(`a malformed \\${c} escape`);
      at += digits.length;
      return parseInt(digits, 16);
    }
    if (/[A-Za-z0-9]/.test(c)) fail(`the escape \\${c} is not supported`);
    return code(c); // an escaped punctuation character stands for itself
  }

  /**
   * A class, compiled to a bitmap of the 65,536 code units: one lookup per character read,
   * however many items it lists (a 470-item class tested item by item made each step slow).
   */
  function charClass(): CharTest {
    const negated = eat('^');
    const bits = new Uint32Array(2048);
    const set = (c: number) => (bits[c >>> 5]! |= 1 << (c & 31));
    while (peek() !== ']') {
      if (at >= pattern.length) fail('a missing ]');
      const lo = classAtom();
      if (peek() === '-' && at + 1 < pattern.length && pattern[at + 1] !== ']') {
        at++;
        const hi = classAtom();
        if (typeof lo !== 'number' || typeof hi !== 'number') fail('a range of a class escape');
        if ((lo as number) > (hi as number)) fail('a range out of order in a class');
        for (let c = lo as number; c <= (hi as number); c++) set(c);
      } else if (typeof lo === 'number') set(lo);
      else for (let c = 0; c <= 0xffff; c++) if (lo(c)) set(c);
    }
    at++; // ]
    if (negated) { for (let i = 0; i < bits.length; i++) bits[i] = ~bits[i]!; }
    return (c) => ((bits[c >>> 5]! >>> (c & 31)) & 1) === 1;
  }

  /** A character of a class (its code) or a class escape (its test). */
  function classAtom(): number | CharTest {
    const c = pattern[at++]!;
    if (c !== '\\') return code(c);
    if (at >= pattern.length) fail('\\ at the end of the pattern');
    if (eat('b')) return 8; // backspace, inside a class
    return characterEscape();
  }

  const tree = alternation();
  if (at < pattern.length) fail('unmatched )');
  return tree;
}

/** Compiles the tree to a program; refuses one larger than MAX_PROGRAM_SIZE. */
function compile(tree: Node): Instruction[] {
  const program: Instruction[] = [];
  const emit = (ins: Instruction) => {
    if (program.length >= MAX_PROGRAM_SIZE) {
      throw new RegexSyntaxError(
        `the pattern is too large once its quantifiers are counted (over ${MAX_PROGRAM_SIZE} steps)`,
      );
    }
    program.push(ins);
    return program.length - 1;
  };

  // Repeats of what writes no instruction (`(?:){9999}`) cost compile time all the same.
  let calls = 0;
  function gen(node: Node): void {
    if (++calls > 4 * MAX_PROGRAM_SIZE) {
      throw new RegexSyntaxError(
        `the pattern is too large once its quantifiers are counted (over ${MAX_PROGRAM_SIZE} steps)`,
      );
    }
    switch (node.t) {
      case 'char':
        emit({ op: 'char', test: node.test, next: program.length + 1 });
        return;
      case 'assert':
        emit({ op: 'assert', kind: node.kind, next: program.length + 1 });
        return;
      case 'seq':
        node.items.forEach(gen);
        return;
      case 'alt': {
        const jumps: number[] = [];
        node.options.forEach((option, i) => {
          if (i < node.options.length - 1) {
            const split = emit({ op: 'split', x: program.length + 1, y: -1 });
            gen(option);
            jumps.push(emit({ op: 'jmp', x: -1 }));
            (program[split] as { y: number }).y = program.length;
          } else gen(option);
        });
        for (const j of jumps) (program[j] as { x: number }).x = program.length;
        return;
      }
      case 'rep': {
        for (let i = 0; i < node.min; i++) gen(node.node);
        if (node.max === Infinity) {
          const split = emit({ op: 'split', x: program.length + 1, y: -1 });
          gen(node.node);
          emit({ op: 'jmp', x: split });
          (program[split] as { y: number }).y = program.length;
          return;
        }
        const exits: number[] = [];
        for (let i = node.min; i < node.max; i++) {
          exits.push(emit({ op: 'split', x: program.length + 1, y: -1 }));
          gen(node.node);
        }
        for (const s of exits) (program[s] as { y: number }).y = program.length;
        return;
      }
    }
  }

  gen(tree);
  emit({ op: 'match' });
  return program;
}

export interface SafeRegex {
  /** Like RegExp.prototype.test: is there a match anywhere in the value? */
  test(value: string): boolean;
  /** Instructions visited by the last test: at most program size x (value length + 1). */
  readonly lastSteps: number;
  readonly size: number;
}

/** Compiles a pattern, or throws a RegexSyntaxError that says what is wrong. */
export function compileSafeRegex(pattern: string): SafeRegex {
  if (pattern.length > MAX_PATTERN_LENGTH) {
    throw new RegexSyntaxError(`the pattern is longer than ${MAX_PATTERN_LENGTH} characters`);
  }
  // JavaScript's own parser first: what it refuses is refused with its message.
  try {
    new RegExp(pattern);
  } catch (err) {
    throw new RegexSyntaxError((err as Error).message);
  }
  const program = compile(parse(pattern));
  const seen = new Int32Array(program.length);
  let generation = 0;
  let steps = 0;

  return {
    size: program.length,
    get lastSteps() {
      return steps;
    },
    test(value: string): boolean {
      const truncated = value.length > MAX_SUBJECT_LENGTH;
      const subject = truncated ? value.slice(0, MAX_SUBJECT_LENGTH) : value;
      const n = subject.length;
      const isWord = (i: number) => i >= 0 && i < n && WORD(subject.charCodeAt(i));
      const holds = (kind: AssertKind, pos: number) =>
        kind === '^'
          ? pos === 0
          : kind === '$'
          ? pos === n && !truncated
          : (isWord(pos - 1) !== isWord(pos)) === (kind === 'b');
      steps = 0;
      let matched = false;
      const stack: number[] = [];
      /** Adds `pc` and what it reaches without reading, at `pos`, to `threads`. */
      const follow = (threads: number[], pc: number, pos: number) => {
        stack.push(pc);
        while (stack.length > 0) {
          const at = stack.pop()!;
          if (seen[at] === generation) continue;
          seen[at] = generation;
          steps++;
          const ins = program[at]!;
          switch (ins.op) {
            case 'char':
              threads.push(at);
              break;
            case 'jmp':
              stack.push(ins.x);
              break;
            case 'split':
              stack.push(ins.y, ins.x);
              break;
            case 'assert':
              if (holds(ins.kind, pos)) stack.push(ins.next);
              break;
            case 'match':
              matched = true;
          }
        }
      };
      generation++;
      let threads: number[] = [];
      follow(threads, 0, 0);
      for (let pos = 0; pos < n && !matched; pos++) {
        const c = subject.charCodeAt(pos);
        const next: number[] = [];
        generation++;
        for (const pc of threads) {
          const ins = program[pc] as { test: CharTest; next: number };
          steps++;
          if (ins.test(c)) follow(next, ins.next, pos + 1);
        }
        follow(next, 0, pos + 1); // a match may start at any position
        threads = next;
      }
      return matched;
    },
  };
}

const compiled = new Map<string, SafeRegex | null>();
const MAX_CACHED = 1_000;

/**
 * The `matches` filter: does `pattern` match somewhere in `value`? Compiled patterns are kept
 * (the most recent MAX_CACHED). Null when it cannot be decided: a value longer than
 * MAX_SUBJECT_LENGTH, or a pattern this matcher refuses (saved before templates were checked
 * against it).
 */
export function patternMatches(pattern: string, value: string): boolean | null {
  if (value.length > MAX_SUBJECT_LENGTH) return null;
  let regex = compiled.get(pattern);
  if (regex === undefined) {
    try {
      regex = compileSafeRegex(pattern);
    } catch {
      regex = null;
    }
    if (compiled.size >= MAX_CACHED) compiled.delete(compiled.keys().next().value!);
    compiled.set(pattern, regex);
  }
  return regex === null ? null : regex.test(value);
}
