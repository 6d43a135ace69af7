// The sidecar plan without Envoy: which workload backs which descriptor (Service selector, EndpointSlice
// targetRef), who a sidecar node is (proved identity only), egress scoping, and the resources' shape.
import { test } from 'vitest';
import assert from 'node:assert/strict';
import { buildModel } from '../src/model/build.js';
import type { StoredObject, KubeObject } from '../src/model/types.js';
import { descriptorObject } from './fixtures/index.js';
import { DEFAULT_MESH_CONFIG } from '../src/model/mesh-hosts.js';
import { buildWorkloadIndex, meshPodOf } from '../src/xds/sidecar/workloads.js';
import {
  sidecarResources,
  meshClusterName,
  mtlsModeOf,
  SIDECAR_NAMES,
  type OutboundPolicy,
  type SidecarNode,
} from '../src/xds/sidecar/plan.js';
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
// No publicPatterns: these descriptors stay private.
function descriptor(name: string, svc: string, ns = 'shop'): KubeObject {
  const targets = { serviceName: `shop/${svc}`, servicePort: 80 };
  return descriptorObject(name, `${name}.oto.tools`, '', { targets, publicPatterns: undefined }, ns);
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
function resources(w: ReturnType<typeof world>, sa: string, outboundPolicy?: OutboundPolicy) {
  const set = sidecarResources(node(sa), {
    ...(outboundPolicy ? { outboundPolicy } : {}),
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

test('sidecar snapshots: a scope shares its encoded outbound resources; a workload change rebuilds only it', () => {
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
  assert.equal(c.resources.cluster.size, 4, 'the app, b, and the passthrough and blackhole clusters');
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
});

function w0Descriptor(s: { resources: { cluster: ReadonlyMap<string, unknown> } }, name: string): string {
  const k = [...s.resources.cluster.keys()].find((x) => x.startsWith('oxds-mesh~') && x.includes(name));
  assert.ok(k, name);
  return k;
}
const namespaceDoc = (name: string, annotations: Record<string, string>): KubeObject => ({
  apiVersion: 'v1',
  kind: 'Namespace',
  metadata: { name, annotations },
});
const MODE = 'otoroshi.io/sidecar-mtls-mode';

test('mTLS mode: the Pod annotation, else the Namespace one, else STRICT; PERMISSIVE only if every pod is', () => {
  const objs = [service('b', { app: 'b' }), descriptor('b', 'b')];
  const inboundMode = (w: ReturnType<typeof world>, sa: string): string => {
    const l = resources(w, sa).listeners.find((x) => x['name'] === SIDECAR_NAMES.inbound);
    return l?.['defaultFilterChain'] !== undefined ? 'PERMISSIVE' : 'STRICT';
  };
  const permissiveNs = namespaceDoc('shop', { [MODE]: 'permissive' });
  assert.equal(inboundMode(world([pod('b1', 'b', { app: 'b' }), ...objs]), 'b'), 'STRICT');
  assert.equal(inboundMode(world([pod('b1', 'b', { app: 'b' }), permissiveNs, ...objs]), 'b'), 'PERMISSIVE');
  // a workload with no known pod takes its namespace's mode
  assert.equal(inboundMode(world([permissiveNs, ...objs]), 'z'), 'PERMISSIVE');
  const strictPod = pod('b2', 'b', { app: 'b' }, { [MODE]: 'STRICT' });
  assert.equal(inboundMode(world([pod('b1', 'b', { app: 'b' }), strictPod, permissiveNs, ...objs]), 'b'), 'STRICT');
  const permissivePod = pod('b3', 'b', { app: 'b' }, { [MODE]: 'PERMISSIVE' });
  const strictNs = namespaceDoc('shop', { [MODE]: 'STRICT' });
  assert.equal(inboundMode(world([permissivePod, strictNs, ...objs]), 'b'), 'PERMISSIVE');
  // another namespace's annotation does not apply; a bad value is reported and ignored
  assert.equal(
    inboundMode(world([pod('b1', 'b', { app: 'b' }), namespaceDoc('team', { [MODE]: 'PERMISSIVE' }), ...objs]), 'b'),
    'STRICT',
  );
  const bad = world([namespaceDoc('shop', { [MODE]: 'LAX' }), ...objs]);
  assert.equal(bad.index.namespaceMtls.size, 0);
  assert.match(
    bad.index.problems.join(),
    /Namespace shop: metadata.annotations\["otoroshi.io\/sidecar-mtls-mode"\] must be STRICT or PERMISSIVE/,
  );
  assert.equal(mtlsModeOf([], undefined), 'STRICT');
});

test('workloads: unready or terminating pods get no traffic but stay their workload; finished pods are out', () => {
  const unready = {
    ...pod('b1', 'b', { app: 'b' }),
    status: { podIP: '10.0.1.1', conditions: [{ type: 'Ready', status: 'False' }] },
  };
  const terminating = pod('b2', 'b', { app: 'b' });
  Object.assign(terminating.metadata, { deletionTimestamp: '2026-01-01T00:00:00Z' });
  const ready = {
    ...pod('b3', 'b', { app: 'b' }),
    status: { podIP: '10.0.1.3', conditions: [{ type: 'Ready', status: 'True' }] },
  };
  const done = { ...pod('b4', 'b', { app: 'b' }), status: { podIP: '10.0.1.4', phase: 'Succeeded' } };
  const w = world([
    unready,
    terminating,
    ready,
    done,
    pod('a1', 'a', { app: 'a' }),
    service('b', { app: 'b' }),
    descriptor('b', 'b'),
  ]);
  assert.deepEqual(
    w.index.pods.map((p) => `${p.name}:${String(p.ready)}`),
    ['a1:true', 'b1:false', 'b2:false', 'b3:true'],
  );
  const d = w.model.descriptors[0];
  assert.ok(d);
  const json = JSON.stringify(resources(w, 'a').clusters.find((c) => c['name'] === meshClusterName(d.id)));
  assert.match(json, /10\.0\.1\.3/);
  assert.doesNotMatch(json, /10\.0\.1\.1"|10\.0\.1\.4/);
  // b's own sidecar keeps the descriptor's inbound policy while a pod of it is unready
  assert.ok(
    domainsOf(resources(w, 'b').routes.find((r) => r['name'] === SIDECAR_NAMES.inbound)).includes('b.oto.tools'),
  );
});

test('outbound policy: allow-any passes unknown hosts and non-HTTP to ORIGINAL_DST; registry-only refuses', () => {
  const w = world([
    pod('a1', 'a', { app: 'a' }),
    pod('b1', 'b', { app: 'b' }),
    service('b', { app: 'b' }),
    descriptor('b', 'b'),
  ]);
  const lastVhost = (set: ReturnType<typeof resources>, name: string): string =>
    JSON.stringify((set.routes.find((r) => r['name'] === name)?.['virtualHosts'] as ProtoObject[]).at(-1));
  const outboundOf = (set: ReturnType<typeof resources>): ProtoObject | undefined =>
    set.listeners.find((l) => l['name'] === SIDECAR_NAMES.outbound);
  const any = resources(w, 'a');
  assert.match(lastVhost(any, SIDECAR_NAMES.outbound), /"cluster":"oxds-sidecar-passthrough"/);
  // the explicit proxy shares the table; its requests (our Via value) are not passed through (a loop): 404
  assert.equal(
    any.routes.find((r) => r['name'] === SIDECAR_NAMES.proxy),
    undefined,
  );
  assert.match(lastVhost(any, SIDECAR_NAMES.outbound), /"contains":"1.1 oxds-sidecar-proxy".*"status":404/);
  const proxy = any.listeners.find((l) => l['name'] === SIDECAR_NAMES.proxy);
  assert.match(JSON.stringify(proxy), /"via":"1.1 oxds-sidecar-proxy"/);
  const passthrough = any.clusters.find((c) => c['name'] === SIDECAR_NAMES.passthrough);
  assert.equal(passthrough?.['type'], 'ORIGINAL_DST');
  const l = outboundOf(any);
  assert.match(JSON.stringify(l?.['listenerFilters']), /original_dst.*http_inspector/);
  assert.match(JSON.stringify(l?.['defaultFilterChain']), /"cluster":"oxds-sidecar-passthrough"/);
  // a connection to the outbound port itself (not intercepted) would loop: refused
  assert.match(
    JSON.stringify(l?.['filterChains']),
    /"destinationPort":\{"value":15001\}.*"cluster":"oxds-sidecar-blackhole"/,
  );
  const only = resources(w, 'a', 'registry-only');
  assert.match(lastVhost(only, SIDECAR_NAMES.outbound), /"status":404/);
  assert.equal(
    only.routes.find((r) => r['name'] === SIDECAR_NAMES.proxy),
    undefined,
    'one shared table',
  );
  assert.match(JSON.stringify(outboundOf(only)?.['defaultFilterChain']), /"cluster":"oxds-sidecar-blackhole"/);
  for (const set of [any, only])
    for (const [kind, list] of [
      ['listener', set.listeners],
      ['route', set.routes],
      ['cluster', set.clusters],
    ] as const)
      for (const r of list) {
        const v = validateResource(TYPE_URLS[kind], r);
        assert.ok(v.ok, `${kind} ${String(r['name'])}: ${v.ok ? '' : JSON.stringify(v.issues)}`);
      }
});
