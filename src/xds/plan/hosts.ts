// Envoy's view of host patterns: which virtual-host domain a pattern lands in, how specific a
// domain is, and whether every host Envoy sends to a virtual host matches a pattern.
import { hostMatches } from '../../model/patterns.js';

/** The Envoy virtual-host domain for a host pattern: itself when Envoy can express it, else `*`. */
export function envoyDomain(pattern: string): string {
  const p = pattern.toLowerCase();
  const first = p.indexOf('*');
  if (first === -1 || p === '*') return p;
  if (first !== p.lastIndexOf('*')) return '*';
  return first === 0 || first === p.length - 1 ? p : '*';
}

/** Envoy's domain specificity: exact > suffix wildcard > prefix wildcard > `*`, longer first. */
function specificity(domain: string): [number, number] {
  if (domain === '*') return [0, 0];
  if (!domain.includes('*')) return [3, domain.length];
  return domain.startsWith('*') ? [2, domain.length] : [1, domain.length];
}

/** Whether Envoy prefers domain `a` over `b` for a host both match (or they are the same). */
export function moreSpecificOrEqual(a: string, b: string): boolean {
  const [ra, la] = specificity(a);
  const [rb, lb] = specificity(b);
  return a === b || ra > rb || (ra === rb && la > lb);
}

/** Two glob patterns can only share a host when their literal heads and tails agree. */
function literalEndsCompatible(a: string, b: string): boolean {
  const head = (x: string): string => x.slice(0, x.indexOf('*'));
  const tail = (x: string): string => x.slice(x.lastIndexOf('*') + 1);
  const [ha, hb, ta, tb] = [head(a), head(b), tail(a), tail(b)];
  return (ha.startsWith(hb) || hb.startsWith(ha)) && (ta.endsWith(tb) || tb.endsWith(ta));
}

/**
 * How host pattern `p` relates to the hosts Envoy sends to virtual host `v`:
 * 'all' (every such host matches p), 'some' (needs an :authority check), 'none'.
 */
export function hostRelation(p: string, v: string): 'all' | 'some' | 'none' {
  const lp = p.toLowerCase();
  if (lp === '*' || lp === v) return 'all';
  if (!v.includes('*')) return hostMatches(lp, v) ? 'all' : 'none';
  if (!lp.includes('*')) return hostMatches(v, lp) ? 'some' : 'none';
  if (!literalEndsCompatible(lp, v)) return 'none';
  if (v !== '*' && envoyDomain(lp) === lp) {
    if (lp.startsWith('*') && v.startsWith('*') && v.endsWith(lp.slice(1))) return 'all';
    if (lp.endsWith('*') && v.endsWith('*') && v.startsWith(lp.slice(0, -1))) return 'all';
  }
  return 'some';
}

/** Domains of a proxyless gRPC virtual host: a concrete host also with any port. */
export function grpcDomains(v: string): string[] {
  return v.includes('*') ? [v] : [v, `${v}:*`];
}
