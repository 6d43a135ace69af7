// The virtual hosts of one route configuration variant: their keys, candidates and ordered entries.
import type { RouteVariant } from '../resources/route.js';
import type { TranslateCache } from './cache.js';
import type { Contribution } from './contribution.js';
import { orderedEntries, vhostCandidates, type Entry } from './order.js';

/** A planned virtual host: its Envoy domain key, the descriptors that may reach it and its route entries in order. */
export interface VhostPlan {
  v: string;
  key: string;
  candidates: readonly Contribution[];
  entries: readonly Entry[];
}

export function sameItems<T>(a: readonly T[], b: readonly T[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Memo key of a virtual host: Envoy variants differ with ext_authz (per-route configs). */
export function vhostKey(v: string, variant: RouteVariant, authz: boolean): string {
  return `${variant}${authz && variant !== 'grpc' ? '+authz' : ''}\n${v}`;
}

/**
 * The virtual hosts over `cs` for a variant. With a cache, a virtual host whose candidates are
 * the same contributions (by identity: they are memoised by content) keeps its entries array,
 * which lets the builders reuse what they built from it.
 */
export function planVirtualHosts(
  cs: readonly Contribution[],
  variant: RouteVariant,
  withNotFound: boolean,
  authz: boolean,
  cache?: TranslateCache,
): VhostPlan[] {
  return vhostCandidates(cs, withNotFound).map(([v, candidates]) => {
    const key = vhostKey(v, variant, authz);
    if (!cache) return { v, key, candidates, entries: orderedEntries(v, candidates) };
    let m = cache.vhostPlans.get(key);
    if (!m || !sameItems(m.cands, candidates)) {
      m = { used: cache.generation, cands: candidates, entries: orderedEntries(v, candidates) };
      cache.vhostPlans.set(key, m);
    }
    return { v, key, candidates, entries: cache.touch(m).entries };
  });
}
