// Otoroshi's host patterns (its RegexPool wildcards), in one place: `.` is a literal dot, `*` any
// run of characters (possibly empty), the whole value must match. Hosts compare case-insensitively
// (DNS names are, and Envoy matches virtual-host domains that way); other names using the same
// wildcard spelling (IngressClass names) compare exactly. See docs/decisions.md: "Host patterns: one meaning".
import type { Matcher } from './linear-regex.js';

/** `parts` = the pattern split on `*`: first a prefix, last a suffix, the middle ones found greedily left to right. */
function globParts(parts: readonly string[], s: string): boolean {
  const first = parts[0] ?? '';
  if (parts.length === 1) return s === first;
  const last = parts[parts.length - 1] ?? '';
  if (s.length < first.length + last.length || !s.startsWith(first) || !s.endsWith(last)) return false;
  let pos = first.length;
  const end = s.length - last.length;
  for (let i = 1; i < parts.length - 1; i++) {
    const part = parts[i] ?? '';
    if (part === '') continue;
    const at = s.indexOf(part, pos);
    if (at < 0 || at + part.length > end) return false;
    pos = at + part.length;
  }
  return true;
}

/**
 * A wildcard matcher in O(pattern × value) time whatever the number of `*` (a backtracking
 * RegExp of `*a*a*a…` is exponential in the number of stars). Case-insensitive unless told.
 */
export function wildcardMatcher(pattern: string, caseInsensitive = true): Matcher {
  const p = caseInsensitive ? pattern.toLowerCase() : pattern;
  const parts = p.split('*');
  return { test: (value: string) => globParts(parts, caseInsensitive ? value.toLowerCase() : value) };
}

const hostCache = new Map<string, Matcher>();

/** Whether `host` (port already stripped) matches the host pattern, case-insensitively. */
export function hostMatches(pattern: string, host: string): boolean {
  let re = hostCache.get(pattern);
  if (!re) {
    re = wildcardMatcher(pattern);
    if (hostCache.size > 10_000) hostCache.clear();
    hostCache.set(pattern, re);
  }
  return re.test(host);
}

/** Whether two host patterns (or names) can name a common host: either matches the other, `*` matches all. */
export function hostsOverlap(a: string, b: string): boolean {
  return a === '*' || b === '*' || hostMatches(a, b) || hostMatches(b, a);
}

/** A wildcard match of a non-host name (IngressClass names): exact case. */
export function nameMatches(pattern: string, value: string): boolean {
  return wildcardMatcher(pattern, false).test(value);
}

/** Escapes every RE2 metacharacter. */
export function escapeRegex(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/**
 * `[aA]` for every ASCII letter: case-insensitive without `(?i)`, which proxyless gRPC clients' regex engines reject.
 */
function caseless(s: string): string {
  return s.replace(/[a-z]/gi, (c) => `[${c.toLowerCase()}${c.toUpperCase()}]`);
}

/** The RE2 spelling of a host pattern (unanchored, case-insensitive): the same set of hosts as hostMatches. */
export function hostPatternRegex(pattern: string): string {
  return pattern
    .split('*')
    .map((part) => caseless(escapeRegex(part)))
    .join('.*');
}
