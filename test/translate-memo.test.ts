// translate's descriptor memo across rebuilt models: a rebuilt model has new descriptor objects, and
// one with the same data (compared in place, as its JSON would be) keeps its contribution and
// validated resources; different data, even only a different key order, is translated again.
import { test } from 'vitest';
import assert from 'node:assert/strict';
import { buildModel } from '../src/model/build.js';
import { TranslateCache, translate } from '../src/xds/translate.js';
import { sameData } from '../src/xds/contributions.js';
import { benchView } from '../bench/gen.js';

test('sameData: equal exactly when the JSON texts are, or stricter', () => {
  assert.ok(sameData({ a: 1, b: [1, 'x', { c: null }] }, { a: 1, b: [1, 'x', { c: null }] }));
  assert.ok(!sameData({ a: 1, b: 2 }, { b: 2, a: 1 }), 'key order shows in the JSON');
  assert.ok(!sameData({ a: [1, 2] }, { a: [1, 2, 3] }));
  assert.ok(!sameData({ a: '1' }, { a: 1 }));
  assert.ok(!sameData({ a: {} }, { a: [] }));
  // Stricter than JSON (a recompute, never a wrong reuse):
  assert.ok(!sameData({ a: undefined }, {}));
  assert.ok(!sameData({ d: new Date(0) }, { d: new Date(0) }));
  const shared = new Date(0);
  assert.ok(sameData({ d: shared }, { d: shared }), 'the same object is the same data');
});

test('a rebuilt model with equal descriptors keeps their resources; a changed one is rebuilt', () => {
  const cache = new TranslateCache();
  const first = translate(buildModel(benchView(50)).model, {}, cache);
  const again = translate(buildModel(benchView(50, { index: 3, gen: 1 })).model, {}, cache);
  const byName = (l: readonly Record<string, unknown>[]): Map<unknown, unknown> => new Map(l.map((c) => [c.name, c]));
  const before = byName(first.envoy.clusters);
  const kept = again.envoy.clusters.filter((c) => before.get(c.name) === c).length;
  // Every descriptor but the changed one kept its cluster object (the ext_authz-free set has one per descriptor).
  assert.equal(kept, again.envoy.clusters.length - 1);
  assert.deepEqual(
    JSON.parse(JSON.stringify(again)),
    JSON.parse(JSON.stringify(translate(buildModel(benchView(50, { index: 3, gen: 1 })).model))),
  );
});
