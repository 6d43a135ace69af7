// Every user-supplied regex is evaluated here, on a linear-time engine (re2js: RE2 semantics, the
// dialect Envoy's safe_regex uses), never on JavaScript's backtracking RegExp. Otoroshi users write
// Java regexes used with `matches()` (full match): the few Java spellings RE2 lacks are rewritten
// (`\p{Alpha}` and the other POSIX classes, `\Z`); what RE2 cannot express at all (backreferences,
// lookaround, possessive quantifiers) is refused when the config is built.
import { RE2JS } from 're2js';

export interface Matcher {
  /** Whether the whole string matches (Java `matches()`). */
  test(s: string): boolean;
}

/** Java's POSIX character classes (US-ASCII, as Java defines them) in RE2 spelling. */
const JAVA_POSIX: Readonly<Record<string, string>> = {
  Lower: 'a-z',
  Upper: 'A-Z',
  ASCII: '\\x00-\\x7F',
  Alpha: 'a-zA-Z',
  Digit: '0-9',
  Alnum: 'a-zA-Z0-9',
  Punct: '!-/:-@\\[-`{-~',
  Graph: '!-~',
  Print: ' -~',
  Blank: ' \\t',
  Cntrl: '\\x00-\\x1F\\x7F',
  XDigit: '0-9a-fA-F',
  Space: ' \\t\\n\\x0B\\f\\r',
};

/**
 * A Java pattern in RE2 syntax: `\p{Alpha}`-style classes become ranges (inside or outside a
 * character class), `\Z` (end, before a final line terminator) becomes `\n?\z`. Linear in the
 * pattern length; anything else is left for RE2 to accept or refuse.
 */
export function javaToRe2(pattern: string): string {
  let out = '';
  let inClass = false;
  for (let i = 0; i < pattern.length; i++) {
    const ch = pattern[i] as string;
    if (ch === '\\' && i + 1 < pattern.length) {
      const next = pattern[i + 1] as string;
      if ((next === 'p' || next === 'P') && pattern[i + 2] === '{') {
        const end = pattern.indexOf('}', i + 3);
        const name = end < 0 ? undefined : pattern.slice(i + 3, end);
        const ranges = name === undefined ? undefined : JAVA_POSIX[name.startsWith('Is') ? name.slice(2) : name];
        if (ranges !== undefined && end >= 0) {
          const neg = next === 'P';
          if (inClass && !neg) out += ranges;
          else out += `[${neg ? '^' : ''}${ranges}]`;
          i = end;
          continue;
        }
      }
      if (next === 'Z' && !inClass) {
        out += '(?:\\n?\\z)';
        i += 1;
        continue;
      }
      out += ch + next;
      i += 1;
      continue;
    }
    if (ch === '[' && !inClass) {
      inClass = true;
      out += ch;
      // `[]...]` and `[^]...]`: a leading `]` is a literal.
      if (pattern[i + 1] === '^') {
        out += '^';
        i += 1;
      }
      if (pattern[i + 1] === ']') {
        out += '\\]';
        i += 1;
      }
      continue;
    }
    if (ch === ']' && inClass) inClass = false;
    out += ch;
  }
  return out;
}

const META = /[\\^$.|?*+()[\]{}]/;

/**
 * A fast path for the common shapes (`/api/items`, `/public/.*`): a literal, or a literal followed
 * by `.*` (which, without the s flag, matches anything but a newline). undefined for anything else.
 */
function literalMatcher(pattern: string): Matcher | undefined {
  if (pattern.endsWith('.*')) {
    const lit = pattern.slice(0, -2);
    if (META.test(lit)) return undefined;
    return { test: (s) => s.startsWith(lit) && s.indexOf('\n', lit.length) < 0 };
  }
  if (META.test(pattern)) return undefined;
  return { test: (s) => s === pattern };
}

/** A full-match matcher for a (Java-spelled) user pattern; throws a readable Error when RE2 refuses it. */
export function fullMatcher(pattern: string): Matcher {
  const fast = literalMatcher(pattern);
  if (fast !== undefined) return fast;
  const re = compileRe2(pattern);
  return { test: (s) => re.testExact(s) };
}

function compileRe2(pattern: string): RE2JS {
  try {
    return RE2JS.compile(javaToRe2(pattern));
  } catch (e) {
    throw new Error(e instanceof Error ? e.message : String(e));
  }
}

/** null when the linear-time engine accepts `pattern`, else the reason. */
export function linearRegexProblem(pattern: string): string | null {
  try {
    compileRe2(pattern);
    return null;
  } catch (e) {
    return (e as Error).message;
  }
}

/** Java `String.replaceAll(pattern, replacement)` on the linear-time engine (`$1` refers to a group). */
export interface Replacer {
  replaceAll(s: string, replacement: string): string;
}

export function replacer(pattern: string): Replacer {
  const re = compileRe2(pattern);
  return { replaceAll: (s, replacement) => re.matcher(s).replaceAll(replacement, true) };
}

const NEVER: Matcher = { test: () => false };
const ALWAYS: Matcher = { test: () => true };

/**
 * Compile for the hot path. A pattern that does not compile (the model refuses those, so this only
 * happens with a hand-made model) gets `onError`: `never` (allow-lists: public patterns, allowed
 * restrictions) or `always` (deny-lists: private patterns, forbidden / notFound restrictions), so a
 * broken pattern never opens anything.
 */
export function compileFullMatch(pattern: string, onError: 'never' | 'always'): Matcher {
  try {
    return fullMatcher(pattern);
  } catch {
    return onError === 'never' ? NEVER : ALWAYS;
  }
}

const replacers = new Map<string, Replacer | null>();

/** `replacer(pattern)`, memoized (bounded); null when the pattern does not compile. */
export function cachedReplacer(pattern: string): Replacer | null {
  let r = replacers.get(pattern);
  if (r === undefined) {
    try {
      r = replacer(pattern);
    } catch {
      r = null;
    }
    if (replacers.size >= 1000) replacers.clear();
    replacers.set(pattern, r);
  }
  return r;
}
