// Which virtual hosts a set of descriptors needs, which descriptors each may receive, and the
// order of their routes in it (first match wins in Envoy, so the order is Otoroshi's choice).
import type { PathMatch } from '../../model/types.js';
import { byString } from '../resources/common.js';
import type { Contribution } from './contribution.js';
import { envoyDomain, hostRelation, moreSpecificOrEqual } from './hosts.js';
import { eachBatched, type Steps } from '../../model/steps.js';

/** One route of a descriptor in a virtual host, with its ordering key. */
export interface Entry {
  c: Contribution;
  path: PathMatch | undefined;
  pathIndex: number | undefined;
  /** Host patterns to check on :authority; undefined when every host of the vhost matches. */
  authority: string[] | undefined;
  /** 0 when the descriptor names this vhost's domain exactly. */
  hostRank: number;
}

const TYPE_RANK: Record<PathMatch['type'], number> = { Exact: 0, Prefix: 1, PlainPrefix: 2 };

/** Longest path first, header-constrained first, exact host first, then the older descriptor. */
export function compareEntries(a: Entry, b: Entry): number {
  const la = a.path ? a.path.value.length : -1;
  const lb = b.path ? b.path.value.length : -1;
  if (la !== lb) return lb - la; // paths first, longest prefix first, catch-all last
  if (a.path && b.path && a.path.type !== b.path.type) return TYPE_RANK[a.path.type] - TYPE_RANK[b.path.type];
  const ha = a.c.d.matchingHeaders.length > 0 ? 0 : 1;
  const hb = b.c.d.matchingHeaders.length > 0 ? 0 : 1;
  if (ha !== hb) return ha - hb; // header-constrained first, else they are unreachable
  if (a.hostRank !== b.hostRank) return a.hostRank - b.hostRank;
  const aa = a.authority ? 0 : 1;
  const ab = b.authority ? 0 : 1;
  if (aa !== ab) return aa - ab;
  const ca = a.c.d.createdAt ?? '\uffff';
  const cb = b.c.d.createdAt ?? '\uffff';
  if (ca !== cb) return byString(ca, cb); // older wins
  if (a.c.d.id !== b.c.d.id) return byString(a.c.d.id, b.c.d.id);
  if (a.path && b.path && a.path.value !== b.path.value) return byString(a.path.value, b.path.value);
  return (a.pathIndex ?? -1) - (b.pathIndex ?? -1);
}

/** Entries of one descriptor for virtual host `v`, or none when no host of it reaches `v`. */
export function entriesFor(c: Contribution, v: string): Entry[] {
  let all = false;
  let exact = false;
  const some: string[] = [];
  for (const p of c.patterns) {
    if (!moreSpecificOrEqual(v, envoyDomain(p))) continue; // Envoy never sends p's hosts here
    const rel = hostRelation(p, v);
    if (rel === 'all') all = true;
    if (rel === 'some') some.push(p);
    if (p.toLowerCase() === v) exact = true;
  }
  if (!all && some.length === 0) return [];
  const authority = all ? undefined : some;
  const hostRank = exact ? 0 : 1;
  // One literal (not a spread of a shared base): entries share one hidden class (src/xds/shapes.ts).
  if (c.d.paths.length === 0) return [{ c, authority, hostRank, path: undefined, pathIndex: undefined }];
  return c.d.paths.map((path, i) => ({ c, authority, hostRank, path, pathIndex: i }));
}

/** The ordered entries of virtual host `v` over its candidate descriptors. */
export function orderedEntries(v: string, candidates: readonly Contribution[]): Entry[] {
  const entries: Entry[] = [];
  for (const c of candidates) for (const e of entriesFor(c, v)) entries.push(e);
  if (entries.length > 1) entries.sort(compareEntries);
  return entries;
}

/** What vhostCandidates gathers, one contribution at a time. */
class CandidateIndex {
  private readonly keys = new Set<string>();
  private readonly byHost = new Map<string, Contribution[]>();
  private readonly wild: Contribution[] = [];

  add(c: Contribution): void {
    let isWild = false;
    for (const p of c.patterns) {
      this.keys.add(envoyDomain(p));
      if (p.includes('*')) isWild = true;
      else {
        const k = p.toLowerCase();
        const l = this.byHost.get(k);
        if (l) {
          if (l[l.length - 1] !== c) l.push(c);
        } else this.byHost.set(k, [c]);
      }
    }
    if (isWild) this.wild.push(c);
  }

  candidates(withNotFound: boolean): [string, readonly Contribution[]][] {
    const { keys, byHost, wild } = this;
    if (withNotFound) keys.add('*'); // Otoroshi's 404 for unknown hosts
    return [...keys].sort(byString).map((v) => {
      const exact = byHost.get(v);
      let candidates: readonly Contribution[] = exact ?? wild;
      if (exact && wild.length > 0) candidates = [...new Set([...exact, ...wild])];
      return [v, candidates];
    });
  }
}

/**
 * The virtual-host keys (Envoy domains, sorted) a set of descriptors needs, each with the
 * descriptors that may reach it: the ones naming it exactly (indexed) and every wildcard one.
 */
export function vhostCandidates(
  cs: readonly Contribution[],
  withNotFound: boolean,
): [string, readonly Contribution[]][] {
  const index = new CandidateIndex();
  for (const c of cs) index.add(c);
  return index.candidates(withNotFound);
}

/** `vhostCandidates` as steps: it pauses every few hundred contributions. */
export function* vhostCandidatesSteps(
  cs: readonly Contribution[],
  withNotFound: boolean,
): Steps<[string, readonly Contribution[]][]> {
  const index = new CandidateIndex();
  yield* eachBatched(cs, (c) => index.add(c));
  return index.candidates(withNotFound);
}
