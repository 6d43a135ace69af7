// Otoroshi `Restrictions.handleRestrictions` (descriptor and apikey restrictions), precompiled.
import type { RestrictionPath, Restrictions } from '../model/types.js';
import { compileFullMatch, type Matcher } from '../model/linear-regex.js';

interface CompiledRestrictionPath {
  /** lower-case method, or `*` */
  method: string;
  re: Matcher;
  /** true: the regex applies to `domain + path` (path not starting with `/`) */
  withDomain: boolean;
}

export interface CompiledRestrictions {
  allowLast: boolean;
  allowed: CompiledRestrictionPath[];
  forbidden: CompiledRestrictionPath[];
  notFound: CompiledRestrictionPath[];
}

export type RestrictionOutcome = 'pass' | 'not_found' | 'forbidden';

function compileList(list: readonly RestrictionPath[], onError: 'never' | 'always'): CompiledRestrictionPath[] {
  return list.map((p) => ({
    method: p.method.trim().toLowerCase(),
    re: compileFullMatch(p.path, onError),
    withDomain: !p.path.startsWith('/'),
  }));
}

/** undefined when restrictions are absent or disabled (nothing to check on the hot path). */
export function compileRestrictions(r: Restrictions | undefined): CompiledRestrictions | undefined {
  if (r === undefined || !r.enabled) return undefined;
  return {
    allowLast: r.allowLast,
    // A broken pattern never opens anything: allowed → never matches; forbidden/notFound → always.
    allowed: compileList(r.allowed, 'never'),
    forbidden: compileList(r.forbidden, 'always'),
    notFound: compileList(r.notFound, 'always'),
  };
}

function matches(list: readonly CompiledRestrictionPath[], method: string, domain: string, path: string): boolean {
  for (const p of list) {
    if (p.method !== '*' && p.method !== method) continue;
    if (p.re.test(p.withDomain ? domain + path : path)) return true;
  }
  return false;
}

/**
 * `method` lower-case, `domain` = host without port, `path` without the query string.
 * allowLast: notFound → 404, forbidden → 403, not allowed → 404. Otherwise allowed first.
 */
export function checkRestrictions(
  r: CompiledRestrictions,
  method: string,
  domain: string,
  path: string,
): RestrictionOutcome {
  if (r.allowLast) {
    if (matches(r.notFound, method, domain, path)) return 'not_found';
    if (matches(r.forbidden, method, domain, path)) return 'forbidden';
    if (!matches(r.allowed, method, domain, path)) return 'not_found';
    return 'pass';
  }
  if (matches(r.allowed, method, domain, path)) return 'pass';
  if (matches(r.notFound, method, domain, path)) return 'not_found';
  if (matches(r.forbidden, method, domain, path)) return 'forbidden';
  return 'not_found';
}
