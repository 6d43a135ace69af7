// The publish side of a rebuild runs as steps too (src/model/steps.ts): the snapshots, the ext_authz
// policy, the secret facts, the consistency references and the diff pause every few hundred
// resources, and give what the all-at-once functions give; the snapshots are still set at once.
import { test } from 'vitest';
import assert from 'node:assert/strict';
import { compile, type Compiled } from '../src/pipeline.js';
import { runSteps, STEP_BATCH, type Steps } from '../src/model/steps.js';
import { buildPolicy, buildPolicySteps } from '../src/authz/policy.js';
import { SnapshotCache } from '../src/xds/cache.js';
import { secretFactsOf, secretFactsSteps } from '../src/xds/node-auth.js';
import { buildSnapshot, buildSnapshotSteps, diffSnapshots, type Encoder } from '../src/xds/snapshot.js';
import { encodeObject, TYPE_URLS, type ProtoObject, type ResourceKind } from '../proto/loader.js';
import type { Snapshot } from '../src/xds/types.js';
import { benchView } from '../bench/gen.js';

const N = 1_200;

/** Runs steps to the end, counting its pauses. */
function counted<T>(steps: Steps<T>): { value: T; pauses: number } {
  let pauses = 0;
  for (;;) {
    const r = steps.next();
    if (r.done) return { value: r.value, pauses };
    pauses++;
  }
}

const encoderOf =
  (c: Compiled): Encoder =>
  (kind, obj) =>
    c.envoy.bytes.get(obj) ?? encodeObject(TYPE_URLS[kind], obj);

/** name → [version, bytes as hex] per kind. */
function content(s: Snapshot): Record<string, [string, string, string][]> {
  const out: Record<string, [string, string, string][]> = {};
  for (const [kind, m] of Object.entries(s.resources))
    out[kind] = [...m.values()].map((r) => [r.name, r.version, Buffer.from(r.bytes).toString('hex')]);
  return out;
}

test(`a snapshot of ${N} descriptors is built in batches, with the bytes and versions of one built at once`, () => {
  const c = compile(benchView(N), {}, {});
  const once = buildSnapshot('envoy', 'v1', c.envoy.set, encoderOf(c));
  const { value, pauses } = counted(buildSnapshotSteps('envoy', 'v1', c.envoy.set, encoderOf(c)));
  // Clusters and endpoints: one of each per descriptor, a pause every STEP_BATCH of them.
  assert.ok(pauses >= 2 * Math.floor(N / STEP_BATCH), `only ${pauses} pauses`);
  assert.deepEqual(content(value), content(once));
  assert.ok(value.resources.cluster.size >= N);
});

test('the ext_authz policy is built in batches of descriptors, in model order', () => {
  const c = compile(benchView(N), {}, {});
  const { value, pauses } = counted(buildPolicySteps(c.model));
  assert.ok(pauses >= Math.floor(N / STEP_BATCH), `only ${pauses} pauses`);
  assert.equal(value.descriptorsById.size, c.model.descriptors.length);
  // The order of a descriptor is its index in the model (the tie-break of equal matches).
  c.model.descriptors.forEach((d, i) => assert.equal(value.order.get(value.descriptorsById.get(d.id)!), i));
  const once = buildPolicy(c.model);
  assert.deepEqual([...value.byHost.keys()], [...once.byHost.keys()]);
});

const sds = (name: string): ProtoObject => ({ name, sdsConfig: { ads: {}, resourceApiVersion: 'V3' } });
const listener = (secret: string): ProtoObject => ({
  name: `l-${secret}`,
  filterChains: [
    { transportSocket: { typedConfig: { commonTlsContext: { tlsCertificateSdsSecretConfigs: [sds(secret)] } } } },
  ],
});
const cluster = (name: string, secret: string): ProtoObject => ({
  name,
  transportSocket: { typedConfig: { commonTlsContext: { validationContextSdsSecretConfig: sds(secret) } } },
});
const cert = (name: string): ProtoObject => ({ name, tlsCertificate: { certificateChain: { inlineString: 'x' } } });

test('secret facts follow the resources of each set, walked once per resource object', () => {
  const l = listener('gw-cert');
  const set = (clusters: ProtoObject[]) => ({
    listeners: [l],
    routes: [],
    clusters,
    endpoints: [],
    secrets: [cert('gw-cert'), cert('other-cert'), { name: 'ca', validationContext: {} }],
  });
  const first = secretFactsOf(set([]));
  assert.deepEqual(first.get('gw-cert'), { hasPrivateKey: true, referenced: true });
  assert.deepEqual(first.get('other-cert'), { hasPrivateKey: true, referenced: false });
  assert.deepEqual(first.get('ca'), { hasPrivateKey: false, referenced: false });
  // The same listener object again, plus a new cluster: its references count, the listener's still do.
  const second = runSteps(secretFactsSteps(set([cluster('c1', 'other-cert')])));
  assert.deepEqual(second.get('gw-cert'), { hasPrivateKey: true, referenced: true });
  assert.deepEqual(second.get('other-cert'), { hasPrivateKey: true, referenced: true });
  // And gone with the cluster.
  assert.deepEqual(secretFactsOf(set([])).get('other-cert'), { hasPrivateKey: true, referenced: false });
});

test('prepared in batches, a publication is still one setMany: subscribers see the diff of the change', () => {
  const c1 = compile(benchView(N), {}, {});
  const c2 = compile(benchView(N, { index: 7, gen: 1, what: 'route' }), {}, {});
  const cache = new SnapshotCache();
  const s1 = buildSnapshot('envoy', 'v1', c1.envoy.set, encoderOf(c1));
  cache.setMany({ envoy: s1 });
  const seen: { version: string; changed: Record<string, string[]> }[] = [];
  cache.subscribe((_key, snap) => {
    const d = diffSnapshots(s1, snap);
    const changed = Object.fromEntries(Object.entries(d).map(([k, v]) => [k, [...v.changed].sort()]));
    seen.push({ version: snap.version, changed });
  });
  const s2 = buildSnapshot('envoy', 'v2', c2.envoy.set, encoderOf(c2), undefined, s1);
  const { pauses } = counted(cache.prepareSteps({ envoy: s2 }));
  assert.ok(pauses >= Math.floor(N / STEP_BATCH), `only ${pauses} pauses`);
  // Nothing is published by the preparation.
  assert.equal(cache.get('envoy'), s1);
  assert.equal(seen.length, 0);
  cache.setMany({ envoy: s2 });
  assert.equal(cache.get('envoy'), s2);
  assert.equal(seen.length, 1);
  // The diff subscribers read is the one a full comparison gives.
  const expected: Record<string, string[]> = {};
  for (const kind of Object.keys(s2.resources) as ResourceKind[]) {
    const a = s1.resources[kind];
    expected[kind] = [...s2.resources[kind].values()]
      .filter((r) => a.get(r.name)?.version !== r.version)
      .map((r) => r.name)
      .sort();
  }
  assert.deepEqual(seen[0]!.changed, expected);
  assert.ok(expected['route']!.length > 0, 'the changed path changes a route configuration');
});
