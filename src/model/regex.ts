// Regex validation with RE2: Envoy's safe_regex is RE2, so whatever we accept must compile there.
import { re2Class } from '../../proto/re2.js';

const cache = new Map<string, string | null>();

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
  let res: string | null = null;
  // Estimated before compiling: a huge program would also exhaust re2-wasm's memory.
  const size = programSizeEstimate(pattern);
  try {
    if (size > MAX_PROGRAM_SIZE)
      res =
        `the RE2 program is too large for Envoy (about ${size} instructions, at most ${MAX_PROGRAM_SIZE}): ` +
        'simplify the pattern (fewer counted repetitions or alternatives)';
    else new (re2Class())(pattern, 'u');
  } catch (e) {
    const msg = e instanceof Error ? e.message : String(e);
    // re2-wasm says "Invalid regular expression: /x/u: reason"; keep only the reason.
    const i = msg.lastIndexOf('/u: ');
    res = i >= 0 ? msg.slice(i + 4) : msg;
  }
  if (cache.size > 10000) cache.clear();
  cache.set(pattern, res);
  return res;
}
