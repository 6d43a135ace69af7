// Make-before-break for removed clusters. When a rebuild drops a cluster (a descriptor renamed,
// replaced or deleted), clients may still route to it until they receive the new routes: CDS is
// sent before RDS, so removing the cluster in the same push opens a window of "cluster does not
// exist" failures. Removed clusters and their endpoints are therefore kept for a grace period,
// then dropped by a later rebuild. Nothing references them any more, so this is always safe.
import type { ProtoObject } from '../../proto/loader.js';
import type { ResourceSet } from './types.js';

export interface RetiredEntry {
  cluster: ProtoObject;
  endpoints?: ProtoObject;
  /** When the cluster disappeared from the translated config. */
  since: number;
}

export type RetiredClusters = Map<string, RetiredEntry>;

function nameOf(o: ProtoObject, key: 'name' | 'clusterName'): string {
  const v = o[key];
  return typeof v === 'string' ? v : '';
}

/**
 * Returns `next` plus the clusters (and their load assignments) that `previous` served and `next`
 * no longer has, for at most `graceMs` after they disappeared. `retired` is updated in place
 * (the caller keeps it between rebuilds, one per node type). Pure apart from that map.
 */
export function withRetiredClusters(
  previous: ResourceSet | undefined,
  next: ResourceSet,
  retired: RetiredClusters,
  now: number,
  graceMs: number,
): ResourceSet {
  const present = new Set(next.clusters.map((c) => nameOf(c, 'name')));
  if (previous) {
    const prevEndpoints = new Map(previous.endpoints.map((e) => [nameOf(e, 'clusterName'), e]));
    for (const c of previous.clusters) {
      const name = nameOf(c, 'name');
      if (present.has(name) || retired.has(name)) continue;
      retired.set(name, { cluster: c, endpoints: prevEndpoints.get(name), since: now });
    }
  }
  for (const [name, r] of retired) {
    if (present.has(name) || now - r.since >= graceMs) retired.delete(name);
  }
  if (retired.size === 0) return next;
  const endpointNames = new Set(next.endpoints.map((e) => nameOf(e, 'clusterName')));
  const clusters = [...next.clusters];
  const endpoints = [...next.endpoints];
  for (const [, r] of retired) {
    clusters.push(r.cluster);
    if (r.endpoints && !endpointNames.has(nameOf(r.endpoints, 'clusterName'))) endpoints.push(r.endpoints);
  }
  return { ...next, clusters, endpoints };
}

/** When the next retired cluster expires (ms since epoch), or undefined when none is kept. */
export function nextRetirement(retired: RetiredClusters, graceMs: number): number | undefined {
  let min: number | undefined;
  for (const [, r] of retired) min = min === undefined ? r.since + graceMs : Math.min(min, r.since + graceMs);
  return min;
}
