import { test } from 'vitest';
import assert from 'node:assert/strict';
import { withRetiredClusters, nextRetirement, type RetiredClusters } from '../src/xds/retire.js';
import type { ResourceSet } from '../src/xds/types.js';

function set(clusters: string[]): ResourceSet {
  return {
    listeners: [],
    routes: [],
    clusters: clusters.map((name) => ({ name, type: 'EDS' })),
    endpoints: clusters.map((clusterName) => ({ clusterName })),
    secrets: [],
  };
}
const names = (s: ResourceSet): string[] => s.clusters.map((c) => String(c.name)).sort();

test('a removed cluster and its endpoints are still served during the grace period, then dropped', () => {
  const retired: RetiredClusters = new Map();
  const first = withRetiredClusters(undefined, set(['a', 'b']), retired, 1000, 500);
  assert.deepEqual(names(first), ['a', 'b']);
  const second = withRetiredClusters(first, set(['a', 'c']), retired, 1100, 500);
  assert.deepEqual(names(second), ['a', 'b', 'c']);
  assert.deepEqual(second.endpoints.map((e) => e.clusterName).sort(), ['a', 'b', 'c']);
  assert.equal(nextRetirement(retired, 500), 1600);
  // a rebuild inside the grace period keeps it, and does not restart its clock
  const third = withRetiredClusters(second, set(['a', 'c']), retired, 1400, 500);
  assert.deepEqual(names(third), ['a', 'b', 'c']);
  assert.equal(nextRetirement(retired, 500), 1600);
  const fourth = withRetiredClusters(third, set(['a', 'c']), retired, 1600, 500);
  assert.deepEqual(names(fourth), ['a', 'c']);
  assert.equal(nextRetirement(retired, 500), undefined);
});

test('a cluster that comes back is served from the new config, not the retired copy', () => {
  const retired: RetiredClusters = new Map();
  const a = withRetiredClusters(undefined, set(['a', 'b']), retired, 0, 500);
  const b = withRetiredClusters(a, set(['a']), retired, 10, 500);
  const back = set(['a', 'b']);
  back.clusters[1] = { name: 'b', type: 'STRICT_DNS' };
  const c = withRetiredClusters(b, back, retired, 20, 500);
  assert.equal(c.clusters.length, 2);
  assert.equal(c.clusters.find((x) => x.name === 'b')?.type, 'STRICT_DNS');
  assert.equal(retired.size, 0);
});
