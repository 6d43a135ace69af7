// The virtual hosts of one route configuration variant: their keys, candidates and ordered entries.
import type { RouteVariant } from '../resources/route.js';
import type { TranslateCache } from './cache.js';
import type { Contribution } from './contribution.js';
import { orderedEntries, vhostCandidates, vhostCandidatesSteps, type Entry } from './order.js';
import { eachBatched, type Steps } from '../../model/steps.js';

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

/** The ordered entries a lone contribution has in virtual host `v`, when already known (else undefined). */
export type OwnEntries = (c: Contribution, v: string) => readonly Entry[] | undefined;

/**
 * The virtual hosts of one contribution on its own (its Envoy domains, sorted) with its entries in
 * each: what planVirtualHosts([c]) plans for every variant (entries do not depend on the variant).
 */
export function ownVirtualHosts(c: Contribution): Map<string, Entry[]> {
  return new Map(vhostCandidates([c], false).map(([v, candidates]) => [v, orderedEntries(v, candidates)]));
}

/** The plans of a contribution's own virtual hosts for `variant`. */
export function ownPlans(c: Contribution, own: ReadonlyMap<string, Entry[]>, variant: RouteVariant): VhostPlan[] {
  const candidates = [c];
  return [...own].map(([v, entries]) => ({ v, key: vhostKey(v, variant, c.authz), candidates, entries }));
}

/** Ordered entries of `v` over `candidates`: a lone candidate's own ones when known. */
function entriesOf(v: string, candidates: readonly Contribution[], own: OwnEntries | undefined): readonly Entry[] {
  const [only] = candidates;
  const known = candidates.length === 1 && only !== undefined ? own?.(only, v) : undefined;
  return known ?? orderedEntries(v, candidates);
}

/** One planned virtual host; with a cache, its entries are kept while its candidates are the same. */
function planOne(
  v: string,
  candidates: readonly Contribution[],
  variant: RouteVariant,
  authz: boolean,
  cache: TranslateCache | undefined,
  own: OwnEntries | undefined,
): VhostPlan {
  const key = vhostKey(v, variant, authz);
  if (!cache) return { v, key, candidates, entries: entriesOf(v, candidates, own) };
  let m = cache.vhostPlans.get(key);
  if (!m || !sameItems(m.cands, candidates)) {
    m = { used: cache.generation, cands: candidates, entries: entriesOf(v, candidates, own) };
    cache.vhostPlans.set(key, m);
  }
  return { v, key, candidates, entries: cache.touch(m).entries };
}

/**
 * The virtual hosts over `cs` for a variant. With a cache, a virtual host whose candidates are
 * the same contributions (by identity: they are memoised by content) keeps its entries array,
 * which lets the builders reuse what they built from it. `own` lends the entries a lone candidate
 * already has (computed when its contribution was validated).
 */
export function planVirtualHosts(
  cs: readonly Contribution[],
  variant: RouteVariant,
  withNotFound: boolean,
  authz: boolean,
  cache?: TranslateCache,
  own?: OwnEntries,
): VhostPlan[] {
  return vhostCandidates(cs, withNotFound).map(([v, cands]) => planOne(v, cands, variant, authz, cache, own));
}

/** `planVirtualHosts` as steps: it pauses every few hundred virtual hosts. */
export function* planVirtualHostsSteps(
  cs: readonly Contribution[],
  variant: RouteVariant,
  withNotFound: boolean,
  authz: boolean,
  cache: TranslateCache,
  own: OwnEntries,
): Steps<VhostPlan[]> {
  const out: VhostPlan[] = [];
  const candidates = yield* vhostCandidatesSteps(cs, withNotFound);
  yield* eachBatched(candidates, ([v, cands]) => {
    out.push(planOne(v, cands, variant, authz, cache, own));
  });
  return out;
}
