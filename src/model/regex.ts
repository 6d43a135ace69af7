// Regex validation with RE2: Envoy's safe_regex is RE2, so whatever we accept must compile there.
import { RE2 } from 're2-wasm';
import { wildcardMatcher } from './linear-regex.js';

const cache = new Map<string, string | null>();

/** null when `pattern` compiles with RE2, else a readable reason. */
export function re2Problem(pattern: string): string | null {
  const hit = cache.get(pattern);
  if (hit !== undefined) return hit;
  let res: string | null = null;
  try {
    new RE2(pattern, 'u');
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

/** Otoroshi's RegexPool host semantics: `.` literal, `*` matches anything, full match (case-sensitive, linear). */
export function wildcardMatch(pattern: string, value: string): boolean {
  return wildcardMatcher(pattern, false).test(value);
}
