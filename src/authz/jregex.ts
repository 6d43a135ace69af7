// Otoroshi patterns are Java regexes used with `matches()` (full match). We validate them as RE2 at
// build time (Envoy's dialect) and evaluate them in JS: this module turns one into an anchored JS
// RegExp, once, at policy-build time. Java/RE2 leading inline flags `(?i)`, `(?s)`, `(?m)` (any
// combination) become JS flags; anything JS cannot compile is reported (model) or compiled
// fail-closed (policy, see `compileFullMatch`).

const INLINE_FLAGS = /^\(\?([imsU]+)\)/;

/** A JS RegExp that fully matches what the Java pattern `matches()`; throws when JS can't compile it. */
export function javaRegexToJs(pattern: string): RegExp {
  let body = pattern;
  let flags = '';
  const m = INLINE_FLAGS.exec(body);
  if (m !== null) {
    const f = m[1] ?? '';
    if (f.includes('i')) flags += 'i';
    if (f.includes('m')) flags += 'm';
    if (f.includes('s')) flags += 's';
    body = body.slice(m[0].length);
  }
  // Java/RE2 `\A` and `\z` anchors have no JS spelling: inside a full match `^` / `$` are equivalent.
  body = body.replace(/(^|[^\\])\\A/g, '$1^').replace(/(^|[^\\])\\z/g, '$1$');
  return new RegExp(`^(?:${body})$`, flags);
}

/** null when JS can evaluate the pattern, else the reason. */
export function jsRegexProblem(pattern: string): string | null {
  try {
    javaRegexToJs(pattern);
    return null;
  } catch (e) {
    return e instanceof Error ? e.message : String(e);
  }
}

const NEVER = /(?!)/;
const ALWAYS = /^/;

/**
 * Compile for the hot path. A pattern that does not compile (the model rejects those, so this only
 * happens with a hand-made model) gets `onError`: `never` (allow-lists: public patterns, allowed
 * restrictions) or `always` (deny-lists: private patterns, forbidden / notFound restrictions), so a
 * broken pattern never opens anything.
 */
export function compileFullMatch(pattern: string, onError: 'never' | 'always'): RegExp {
  try {
    return javaRegexToJs(pattern);
  } catch {
    return onError === 'never' ? NEVER : ALWAYS;
  }
}

/** Otoroshi's RegexPool(pattern) for hosts: `.` literal, `*` = `.*`, full match, case-insensitive. */
export function hostWildcard(pattern: string): RegExp {
  const body = pattern
    .split('*')
    .map((s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))
    .join('.*');
  return new RegExp(`^${body}$`, 'i');
}
