// Regex validation with RE2: Envoy's safe_regex is RE2, so whatever we accept must compile there.
import { re2CompileError } from '../../proto/re2.js';
import { RecentCache } from './recent-cache.js';

/**
 * Verdicts by pattern. A check costs about half a millisecond (RE2 compiled to WebAssembly): a
 * configuration of tens of thousands of distinct patterns keeps all of them (a pattern is bounded
 * by the object's size).
 */
const cache = new RecentCache<string, string | null>(25_000);

/** Shapes (regexShape) of patterns RE2 compiled: a pattern of a known shape compiles too. */
const validShapes = new RecentCache<string, true>(25_000);

const isAlnum = (c: number): boolean => (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122);

/**
 * The pattern with every ASCII letter or digit that stands for itself replaced by `a`, or null when
 * the scan is unsure. RE2 reads such a character as a literal whatever it is, so two patterns of one
 * shape are both valid or both not (what a fleet generated from one template has: thousands of
 * distinct patterns, one compile). Kept as written, where a letter or digit can mean something: an
 * escape with the letters and digits after it and its `{...}` argument; a character class; a `{...}`
 * repetition; a `(?...` group header up to its first `)`, `:` or `>` (flags, names). A class holding
 * a `[` (POSIX classes) gives null: its end is not looked for.
 */
export function regexShape(pattern: string): string | null {
  let out = '';
  let i = 0;
  const n = pattern.length;
  const keepTo = (end: number): void => {
    out += pattern.slice(i, end);
    i = end;
  };
  while (i < n) {
    const c = pattern.charCodeAt(i);
    if (c === 92 /* \ */) {
      let j = i + 2;
      if (j <= n && /[pPx]/.test(pattern[i + 1] ?? '') && pattern[j] === '{') {
        const close = pattern.indexOf('}', j);
        j = close < 0 ? n : close + 1;
      }
      while (j < n && isAlnum(pattern.charCodeAt(j))) j++;
      keepTo(Math.min(j, n));
    } else if (c === 91 /* [ */) {
      let j = i + 1;
      if (pattern[j] === '^') j++;
      if (pattern[j] === ']') j++;
      for (;;) {
        if (j >= n) return null;
        const d = pattern[j];
        if (d === ']') break;
        if (d === '[') return null;
        j += d === '\\' ? 2 : 1;
      }
      keepTo(j + 1);
    } else if (c === 123 /* { */) {
      const close = pattern.indexOf('}', i);
      keepTo(close < 0 ? n : close + 1);
    } else if (c === 40 /* ( */ && pattern[i + 1] === '?') {
      let j = i + 2;
      while (j < n && pattern[j] !== ')' && pattern[j] !== ':' && pattern[j] !== '>') j++;
      keepTo(Math.min(j + 1, n));
    } else {
      out += isAlnum(c) ? 'a' : pattern[i];
      i++;
    }
  }
  return out;
}

/** The RE2 program size the gateway bootstrap allows (Envoy's `re2.max_program_size.error_level`). */
export const MAX_PROGRAM_SIZE = 32_768;

/** Instructions of one atom: UTF-8 `.`, classes and Unicode classes compile to several. */
function atomCost(pattern: string, i: number): { cost: number; end: number } {
  const c = pattern[i];
  if (c === '.') return { cost: 8, end: i + 1 };
  if (c === '[') {
    let j = i + 1;
    if (pattern[j] === '^') j++;
    if (pattern[j] === ']') j++;
    while (j < pattern.length && pattern[j] !== ']') j += pattern[j] === '\\' ? 2 : 1;
    return { cost: 4 + (j - i), end: j + 1 };
  }
  if (c === '\\') {
    const n = pattern[i + 1] ?? '';
    if (n === 'p' || n === 'P') {
      const close = pattern[i + 2] === '{' ? pattern.indexOf('}', i + 2) : i + 2;
      return { cost: 400, end: (close < 0 ? pattern.length : close) + 1 };
    }
    return { cost: /[dDwWsS]/.test(n) ? 8 : 1, end: i + 2 };
  }
  return { cost: 1, end: i + 1 };
}

/**
 * An upper estimate of the RE2 program size of `pattern` (which RE2 compiles): one linear scan,
 * counted repetitions multiply what they repeat. re2-wasm does not expose the program size.
 */
export function programSizeEstimate(pattern: string): number {
  const stack: { total: number; last: number }[] = [{ total: 0, last: 0 }];
  const top = (): { total: number; last: number } => stack[stack.length - 1] as { total: number; last: number };
  let i = 0;
  while (i < pattern.length) {
    const c = pattern[i];
    const f = top();
    if (c === '(') {
      stack.push({ total: 0, last: 0 });
      i = pattern[i + 1] === '?' ? pattern.indexOf(':', i) + 1 || i + 1 : i + 1;
      if (pattern.startsWith('(?P<', i - 1)) i = pattern.indexOf('>', i) + 1;
    } else if (c === ')' && stack.length > 1) {
      stack.pop();
      const atom = f.total + 2;
      top().total += atom;
      top().last = atom;
      i++;
    } else if (c === '|') {
      f.total += 1;
      f.last = 0;
      i++;
    } else if (c === '*' || c === '+' || c === '?') {
      f.total += 1;
      i++;
    } else if (c === '{' && /^\{(\d+)(,(\d*))?\}/.test(pattern.slice(i, i + 24))) {
      const m = /^\{(\d+)(,(\d*))?\}/.exec(pattern.slice(i, i + 24)) as RegExpExecArray;
      const k = Math.max(Number(m[1]), m[3] ? Number(m[3]) : 0, 1);
      f.total += f.last * (k - 1) + k;
      f.last *= k;
      i += m[0].length;
    } else {
      const a = atomCost(pattern, i);
      f.total += a.cost;
      f.last = a.cost;
      i = a.end;
    }
    if (top().total > 10 * MAX_PROGRAM_SIZE) return top().total;
  }
  return stack.reduce((s, x) => s + x.total, 0);
}

/** null when `pattern` compiles with RE2, else a readable reason. */
export function re2Problem(pattern: string): string | null {
  const hit = cache.get(pattern);
  if (hit !== undefined) return hit;
  // Estimated before compiling: a huge program would also exhaust re2-wasm's memory.
  const size = programSizeEstimate(pattern);
  let res: string | null;
  if (size > MAX_PROGRAM_SIZE)
    res =
      `the RE2 program is too large for Envoy (about ${size} instructions, at most ${MAX_PROGRAM_SIZE}): ` +
      'simplify the pattern (fewer counted repetitions or alternatives)';
  else {
    const shape = regexShape(pattern);
    if (shape !== null && validShapes.get(shape) === true) res = null;
    else {
      // Compiled as written (never as its shape): RE2's message quotes the pattern.
      try {
        res = re2CompileError(pattern);
      } catch (e) {
        res = `RE2 could not compile it: ${e instanceof Error ? e.message : String(e)}`;
      }
      if (res === null && shape !== null) validShapes.set(shape, true);
    }
  }
  cache.set(pattern, res);
  return res;
}
