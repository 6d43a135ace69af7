// Subscriptions against a snapshot: which resources a subscription wants, and whether a published
// change touches it.
import type { ResourceKind } from '../../../proto/loader.js';
import { mayResolve, sortedResources, type KindDiff } from '../snapshot.js';
import type { Snapshot, VersionedResource } from '../types.js';

/** LDS and CDS are the only kinds with wildcard subscriptions. */
export const WILDCARD_KINDS: ReadonlySet<ResourceKind> = new Set(['listener', 'cluster']);
export const byName = (a: VersionedResource, b: VersionedResource): number =>
  a.name < b.name ? -1 : a.name > b.name ? 1 : 0;

/**
 * Resources of `kind` wanted by a subscription, sorted by name; names not (yet) existing are
 * omitted. A plain wildcard subscription gets the snapshot's shared sorted list (no copy).
 */
export function desiredResources(
  snap: Snapshot,
  kind: ResourceKind,
  wildcard: boolean,
  names: ReadonlySet<string>,
): readonly VersionedResource[] {
  const map = snap.resources[kind];
  if (wildcard) {
    const all = sortedResources(snap, kind);
    let extra: VersionedResource[] | undefined;
    for (const n of names) {
      if (map.has(n)) continue;
      const r = snap.resolve(kind, n);
      if (r) (extra ??= []).push(r);
    }
    return extra ? [...all, ...extra].sort(byName) : all;
  }
  const out: VersionedResource[] = [];
  for (const n of names) {
    const r = map.get(n) ?? snap.resolve(kind, n);
    if (r) out.push(r);
  }
  return out.sort(byName);
}

/** Does a (non-empty) kind diff touch an explicit name subscription? Iterates the smaller side. */
export function touches(names: ReadonlySet<string>, d: KindDiff): boolean {
  if (d.size === 0 || names.size === 0) return false;
  if (d.size <= names.size) {
    for (const n of d.changed) if (names.has(n)) return true;
    for (const n of d.removed) if (names.has(n)) return true;
    return false;
  }
  for (const n of names) if (d.changed.has(n) || d.removed.has(n)) return true;
  return false;
}

/** Subscribed names the snapshot's maps do not hold (answered on demand by `resolve`, which a diff does not cover). */
export function unresolvedNames(snap: Snapshot, kind: ResourceKind, names: ReadonlySet<string>): string[] {
  if (names.size === 0 || !mayResolve(snap)) return [];
  const map = snap.resources[kind];
  const out: string[] = [];
  for (const n of names) if (!map.has(n)) out.push(n);
  return out;
}

export function sameSet(a: ReadonlySet<string>, b: ReadonlySet<string>): boolean {
  if (a.size !== b.size) return false;
  for (const x of a) if (!b.has(x)) return false;
  return true;
}
