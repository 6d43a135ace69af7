// The sidecar plan without Envoy: which workload backs which descriptor (Service selector, EndpointSlice
// targetRef), who a sidecar node is (proved identity only), egress scoping, and the resources' shape.
import { test } from 'vitest';
import assert from 'node:assert/strict';
import { buildModel } from '../src/model/build.js';
import type { StoredObject, KubeObject } from '../src/model/types.js';
import { DEFAULT_MESH_CONFIG } from '../src/model/mesh-hosts.js';
import { buildWorkloadIndex, meshPodOf } from '../src/xds/sidecar/workloads.js';
import { sidecarResources, meshClusterName, SIDECAR_NAMES, type SidecarNode } from '../src/xds/sidecar/plan.js';
import {
  sidecarBuilder,
  sidecarKey,
  sidecarNodeOf,
  sidecarSnapshotKey,
  SidecarSnapshots,
  UNIDENTIFIED_SIDECAR_KEY,
} from '../src/xds/sidecar/snapshots.js';
import { SnapshotCache } from '../src/xds/cache.js';
import { validateResource } from '../src/xds/validate.js';
import { TYPE_URLS, type ProtoObject } from '../proto/loader.js';

const TD = 'cluster.local';
let seq = 0;
function so(o: KubeObject): StoredObject {
  return {
    key: `${o.kind}/${o.metadata.namespace ?? 'default'}/${o.metadata.name}`,
    object: o,
    origin: { seq: seq++ },
  };
}
function pod(
  name: string,
  sa: string,
  labels: Record<string, string>,
  annotations: Record<string, string> = {},
): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: 'shop', labels: { ...labels, 'otoroshi.io/sidecar': 'inject' }, annotations },
    spec: { serviceAccountName: sa },
    status: { podIP: `10.0.0.${++seq}` },
  };
}
function service(name: string, selector?: Record<string, string>): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name, namespace: 'shop' },
    spec: { ...(selector ? { selector } : {}), clusterIP: '10.96.0.1', ports: [{ port: 80 }] },
  };
}
function descriptor(name: string, svc: string, ns = 'shop'): KubeObject {
  return {
    apiVersion: 'proxy.otoroshi.io/v1alpha1',
    kind: 'ServiceDescriptor',
    metadata: { name, namespace: ns },
    spec: { hosts: [`${name}.oto.tools`], forceHttps: false, targets: { serviceName: `shop/${svc}`, servicePort: 80 } },
  };
}
const CA_BUNDLE = { name: 'otoroshi-ca-bundle', validationContext: { trustedCa: { inlineString: 'x' } } };

function world(objects: KubeObject[]) {
  const view = { objects: objects.map(so), loadErrors: [] };
  const built = buildModel(view, { now: Date.now() });
  return {
    objects: view.objects,
    model: built.model,
    index: buildWorkloadIndex(view.objects, built.model.descriptors, TD),
  };
}
const node = (sa: string): SidecarNode => ({
  spiffeId: `spiffe://${TD}/ns/shop/sa/${sa}`,
  namespace: 'shop',
  serviceAccount: sa,
  appPort: 8080,
  inboundAddress: '0.0.0.0',
  inboundPort: 15006,
  outboundPort: 15001,
  proxyPort: 15080,
});
function resources(w: ReturnType<typeof world>, sa: string) {
  const set = sidecarResources(node(sa), {
    model: w.model,
    objects: w.objects,
    index: w.index,
    mesh: DEFAULT_MESH_CONFIG,
    gateway: { listeners: [], routes: [], clusters: [], endpoints: [], secrets: [CA_BUNDLE] },
    workloadSecret: (name) => ({ name, tlsCertificate: {} }),
  });
  assert.ok(set);
  return set;
}
const domainsOf = (rc: ProtoObject | undefined): string[] =>
  ((rc?.['virtualHosts'] ?? []) as ProtoObject[]).flatMap((v) => v['domains'] as string[]);

test('workloads: a descriptor is backed by the pods its Service selects or its EndpointSlices name', () => {
  const slice: KubeObject = {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: { name: 'c-1', namespace: 'shop', labels: { 'kubernetes.io/service-name': 'c' } },
    addressType: 'IPv4',
    ports: [{ port: 80 }],
    endpoints: [{ addresses: ['10.0.9.9'], targetRef: { kind: 'Pod', name: 'c-pod', namespace: 'shop' } }],
  };
  const w = world([
    pod('b-pod', 'b', { app: 'b' }),
    pod('c-pod', 'c', { other: 'x' }),
    pod('stray', 'b', { app: 'nope' }),
    service('b', { app: 'b' }),
    service('c'),
    slice,
    descriptor('b', 'b'),
    descriptor('c', 'c'),
  ]);
  const backers = (name: string): string[] => {
    const d = w.model.descriptors.find((x) => x.name === name);
    return (w.index.backing.get(d?.id ?? '') ?? []).map((p) => p.name);
  };
  assert.deepEqual(backers('b'), ['b-pod']);
  assert.deepEqual(backers('c'), ['c-pod']);
  // Pods without the sidecar label are not in the mesh; a mesh pod without an IP is reported.
  const plain = { ...pod('p', 'b', {}), metadata: { name: 'p', namespace: 'shop' } };
  assert.equal(meshPodOf(plain, TD), undefined);
  const noIp = { ...pod('q', 'b', {}), status: {} };
  assert.match(String(meshPodOf(noIp, TD)), /Pod shop\/q: status.podIP/);
  const badPort = pod('r', 'b', {}, { 'otoroshi.io/sidecar-inbound-port': '99999' });
  assert.match(String(meshPodOf(badPort, TD)), /sidecar-inbound-port/);
});

test('plan: inbound serves the backed descriptors; outbound reaches mesh pods over mTLS (SAN checked)', () => {
  const w = world([
    pod('b-pod', 'b', { app: 'b' }),
    pod('a-pod', 'a', { app: 'a' }),
    service('b', { app: 'b' }),
    descriptor('b', 'b'),
  ]);
  const b = resources(w, 'b');
  const inbound = b.routes.find((r) => r['name'] === SIDECAR_NAMES.inbound);
  assert.ok(domainsOf(inbound).includes('b.oto.tools'));
  assert.ok(domainsOf(inbound).includes('b.shop.otoroshi.mesh'));
  const a = resources(w, 'a');
  // A backs nothing: its inbound forwards any host (mTLS is its only check).
  assert.deepEqual(domainsOf(a.routes.find((r) => r['name'] === SIDECAR_NAMES.inbound)), ['*']);
  const d = w.model.descriptors[0];
  assert.ok(d);
  const cluster = a.clusters.find((c) => c['name'] === meshClusterName(d.id));
  assert.ok(cluster);
  const json = JSON.stringify(cluster);
  assert.match(json, /"exact":"spiffe:\/\/cluster.local\/ns\/shop\/sa\/b"/);
  assert.match(json, /"portValue":15006/);
  // Every resource passes Envoy's validation rules.
  for (const [kind, list] of [
    ['listener', a.listeners],
    ['route', a.routes],
    ['cluster', a.clusters],
  ] as const)
    for (const r of list) {
      const v = validateResource(TYPE_URLS[kind], r);
      assert.ok(v.ok, `${kind} ${String(r['name'])}: ${v.ok ? '' : JSON.stringify(v.issues)}`);
    }
  // STRICT by default: one filter chain, client certificate required.
  const l = b.listeners.find((x) => x['name'] === SIDECAR_NAMES.inbound);
  assert.equal((l?.['filterChains'] as unknown[]).length, 1);
  assert.match(JSON.stringify(l), /"requireClientCertificate":\{"value":true\}/);
});

test('plan: otoroshi.io/sidecar-egress scopes the outbound routes (ns/* or ns/name)', () => {
  const objs = [
    service('b', { app: 'b' }),
    descriptor('b', 'b'),
    descriptor('other', 'b', 'team'),
    descriptor('third', 'b'),
  ];
  const all = world([pod('a-pod', 'a', { app: 'a' }), ...objs]);
  const outbound = (set: ReturnType<typeof resources>): string[] =>
    domainsOf(set.routes.find((r) => r['name'] === SIDECAR_NAMES.outbound)).filter((x) => x.endsWith('.oto.tools'));
  assert.deepEqual(outbound(resources(all, 'a')).sort(), ['b.oto.tools', 'other.oto.tools', 'third.oto.tools']);
  const scoped = world([pod('a-pod', 'a', { app: 'a' }, { 'otoroshi.io/sidecar-egress': './b, team/*' }), ...objs]);
  assert.deepEqual(outbound(resources(scoped, 'a')).sort(), ['b.oto.tools', 'other.oto.tools']);
});

test('sidecar nodes: identity from the proved workload certificate, never from metadata', () => {
  const meta: Record<string, string> = {
    OXDS_ROLE: 'sidecar',
    NAMESPACE: 'kube-system',
    SERVICE_ACCOUNT: 'admin',
    OXDS_SIDECAR_INBOUND_PORT: '16006',
  };
  const m = (k: string): string | undefined => meta[k];
  const proved = sidecarNodeOf({ kind: 'workload', spiffeId: 'spiffe://cluster.local/ns/shop/sa/a' }, m, TD);
  assert.equal(proved?.spiffeId, 'spiffe://cluster.local/ns/shop/sa/a');
  assert.equal(proved?.inboundPort, 16006);
  assert.equal(sidecarNodeOf({ kind: 'anonymous', reason: 'x' }, m, TD), undefined);
  assert.equal(sidecarNodeOf({ kind: 'gateway', id: 'token' }, m, TD), undefined);
  // Only the documented insecure mode believes metadata.
  assert.equal(
    sidecarNodeOf({ kind: 'self-asserted' }, m, TD)?.spiffeId,
    'spiffe://cluster.local/ns/kube-system/sa/admin',
  );
  const keyOf = sidecarSnapshotKey(TD, new SidecarSnapshots(new SnapshotCache()));
  const n = { metadata: meta };
  assert.equal(keyOf(n, { kind: 'anonymous', reason: 'x' }, 'envoy'), UNIDENTIFIED_SIDECAR_KEY);
  assert.match(
    keyOf(n, { kind: 'workload', spiffeId: 'spiffe://cluster.local/ns/shop/sa/a' }, 'envoy'),
    /^sidecar\|spiffe:\/\/cluster.local\/ns\/shop\/sa\/a\|/,
  );
  assert.equal(keyOf({ metadata: {} }, { kind: 'anonymous', reason: 'x' }, 'envoy'), 'envoy');
  assert.equal(keyOf(n, { kind: 'anonymous', reason: 'x' }, 'grpc'), 'grpc');
});

function publishAll(snaps: SidecarSnapshots, w: ReturnType<typeof world>, version: string, sas: string[]): void {
  const build = sidecarBuilder({
    model: w.model,
    objects: w.objects,
    mesh: DEFAULT_MESH_CONFIG,
    gateway: { listeners: [], routes: [], clusters: [], endpoints: [], secrets: [CA_BUNDLE] },
    workloadSecret: (name) => ({ name, tlsCertificate: { certificateChain: { inlineString: `pem of ${name}` } } }),
    trustDomain: TD,
    onErrors: (errors) => assert.fail(JSON.stringify(errors)),
  });
  snaps.rebuild(build, version, new Set(sas.map((sa) => sidecarKey(node(sa)))));
  for (const sa of sas) snaps.want(node(sa));
}

test(
  'sidecar snapshots: one egress scope shares its encoded outbound resources; ' + 'a workload change rebuilds only it',
  () => {
    const base: KubeObject[] = [
      pod('a-pod', 'a', { app: 'a' }),
      pod('b-pod', 'b', { app: 'b' }),
      pod('c-pod', 'c', { app: 'c' }, { 'otoroshi.io/sidecar-egress': './b' }),
      service('b', { app: 'b' }),
      descriptor('b', 'b'),
      descriptor('third', 'b'),
    ];
    const objs = (aAnnotations: Record<string, string>): KubeObject[] =>
      base.map((o) =>
        o.metadata.name === 'a-pod' ? { ...o, metadata: { ...o.metadata, annotations: aAnnotations } } : o,
      );
    const cache = new SnapshotCache();
    const snaps = new SidecarSnapshots(cache, (_k, err) => assert.fail(String(err)));
    const sas = ['a', 'b', 'c'];
    publishAll(snaps, world(objs({})), 'v1', sas);
    const snap = (sa: string) => {
      const s = cache.get(sidecarKey(node(sa)));
      assert.ok(s, sa);
      return s;
    };
    const [a, b, c] = [snap('a'), snap('b'), snap('c')];
    assert.equal(snaps.stats.published, 3);
    // a and b (every descriptor) share one cluster map: the same encoded objects, encoded once.
    assert.equal(a.resources.cluster, b.resources.cluster);
    const d = w0Descriptor(a, 'b');
    assert.equal(a.resources.cluster.get(d), b.resources.cluster.get(d));
    assert.equal(a.resources.route.get(SIDECAR_NAMES.outbound), b.resources.route.get(SIDECAR_NAMES.outbound));
    assert.equal(a.resources.listener.get(SIDECAR_NAMES.outbound), b.resources.listener.get(SIDECAR_NAMES.outbound));
    // c's scope (./b) differs: its own cluster map and route table, but the same encoded cluster for b.
    assert.notEqual(c.resources.cluster, a.resources.cluster);
    assert.equal(c.resources.cluster.size, 2);
    assert.equal(c.resources.cluster.get(d), a.resources.cluster.get(d));
    assert.notEqual(c.resources.route.get(SIDECAR_NAMES.outbound), a.resources.route.get(SIDECAR_NAMES.outbound));
    // Inbound sides and certificates are per workload.
    assert.notEqual(a.resources.listener.get(SIDECAR_NAMES.inbound), b.resources.listener.get(SIDECAR_NAMES.inbound));
    assert.ok(a.resources.secret.has('spiffe://cluster.local/ns/shop/sa/a'));
    assert.ok(!a.resources.secret.has('spiffe://cluster.local/ns/shop/sa/b'));

    // A rebuild with nothing changed keeps every snapshot; a change to a's pods rebuilds only a.
    publishAll(snaps, world(objs({})), 'v2', sas);
    assert.deepEqual([snap('a'), snap('b'), snap('c')], [a, b, c]);
    assert.equal(snaps.stats.published, 3);
    const encodedBefore = snaps.encoding().encoded;
    publishAll(snaps, world(objs({ 'otoroshi.io/sidecar-mtls-mode': 'PERMISSIVE' })), 'v3', sas);
    assert.notEqual(snap('a'), a);
    assert.equal(snap('a').version, 'v3');
    assert.equal(snap('b'), b);
    assert.equal(snap('c'), c);
    assert.equal(snaps.stats.published, 4);
    // Only a's inbound listener was encoded again.
    assert.equal(snaps.encoding().encoded - encodedBefore, 1);
    assert.equal(snap('a').resources.cluster.get(d), a.resources.cluster.get(d));
  },
);

function w0Descriptor(s: { resources: { cluster: ReadonlyMap<string, unknown> } }, name: string): string {
  const k = [...s.resources.cluster.keys()].find((x) => x.startsWith('oxds-mesh~') && x.includes(name));
  assert.ok(k, name);
  return k;
}
