// startServer with `--source kubernetes` against the API server double, through the real client.
import { test } from 'vitest';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { resolveConfig } from '../src/config.js';
import { startServer, makeLogger, type RunningServer } from '../src/main.js';
import type { FakeApiServer } from './helpers/fake-apiserver.js';
import { descriptor, endpointSlice, eventually, service, sleep, startFake, writeKubeConfig } from './helpers/k8s.js';

const SD = 'proxy.otoroshi.io/v1alpha1';

async function serve(api: FakeApiServer, extra: Record<string, unknown> = {}): Promise<RunningServer> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'oxds-k8s-srv-'));
  const r = resolveConfig(
    {
      source: 'kubernetes',
      kubeconfig: writeKubeConfig(api),
      xdsPort: 0,
      adminPort: 0,
      authzPort: 0,
      dataDir: path.join(dir, '.data'),
      debounceMs: 10,
      debounceMaxMs: 50,
      leaseDurationSeconds: 1,
      clusterGraceMs: 0,
      ...extra,
    },
    {},
  );
  if (!r.ok) throw new Error(r.errors.join('; '));
  return startServer(r.value, makeLogger('silent'));
}

function routesText(s: RunningServer): string {
  const snap = s.cache.get('envoy');
  return JSON.stringify([...(snap?.resources.route.values() ?? [])].map((r) => r.object));
}

function clusterNames(s: RunningServer): string[] {
  return [...(s.cache.get('envoy')?.resources.cluster.keys() ?? [])].sort();
}

function versions(s: RunningServer, kind: 'cluster' | 'listener' | 'route' | 'endpoint'): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [n, r] of s.cache.get('envoy')?.resources[kind] ?? []) out[n] = r.version;
  return out;
}

interface CrStatus {
  state?: string;
  conditions?: Array<{ type: string; status: string; reason: string; message: string }>;
}

function statusOf(api: FakeApiServer, kind: string, name: string): CrStatus | undefined {
  return api.get(SD, kind, 'default', name)?.['status'] as CrStatus | undefined;
}

test(
  'k8s server: create → routed, update → pushed, EndpointSlice → ' + 'EDS only, invalid → status, delete → removed',
  async () => {
    const api = await startFake({ bookmarkMs: 200 });
    api.apply(service('backend', 8080));
    api.apply(endpointSlice('backend', ['10.1.0.1'], 8080));
    api.apply(descriptor('svc-a', 'a.oto.tools', 'http://10.0.0.1:80'));
    const s = await serve(api);
    try {
      // create → routed
      assert.match(routesText(s), /a\.oto\.tools/);
      // a Service-backed descriptor → an EDS cluster fed by the EndpointSlice
      api.apply(
        descriptor('svc-b', 'b.oto.tools', 'unused', { targets: { serviceName: 'backend', servicePort: 8080 } }),
      );
      await eventually(() => /b\.oto\.tools/.test(routesText(s)), 10_000, 'svc-b routed');
      const eds = await eventually(
        () =>
          [...(s.cache.get('envoy')?.resources.endpoint.values() ?? [])].find((e) =>
            JSON.stringify(e.object).includes('10.1.0.1'),
          ),
        10_000,
        'EDS with 10.1.0.1',
      );
      // update → pushed
      api.apply(descriptor('svc-a', 'a2.oto.tools', 'http://10.0.0.1:80'));
      await eventually(
        () => /a2\.oto\.tools/.test(routesText(s)) && !/"a\.oto\.tools/.test(routesText(s)),
        10_000,
        'svc-a updated',
      );
      // EndpointSlice change → only the ClusterLoadAssignment changes
      const before = {
        cluster: versions(s, 'cluster'),
        listener: versions(s, 'listener'),
        route: versions(s, 'route'),
        endpoint: versions(s, 'endpoint'),
      };
      api.apply(endpointSlice('backend', ['10.1.0.1', '10.1.0.2'], 8080));
      await eventually(
        () => JSON.stringify(s.cache.get('envoy')?.resources.endpoint.get(eds.name)?.object ?? {}).includes('10.1.0.2'),
        10_000,
        'new endpoint',
      );
      assert.deepEqual(versions(s, 'cluster'), before.cluster);
      assert.deepEqual(versions(s, 'listener'), before.listener);
      assert.deepEqual(versions(s, 'route'), before.route);
      assert.notEqual(versions(s, 'endpoint')[eds.name], before.endpoint[eds.name]);
      // statuses: the leader marks both Accepted
      await eventually(
        () => statusOf(api, 'ServiceDescriptor', 'svc-a')?.conditions?.[0]?.type === 'Accepted',
        10_000,
        'svc-a Accepted',
      );
      // invalid CR → Invalid condition + Event; the others keep working
      api.apply({
        apiVersion: SD,
        kind: 'ServiceDescriptor',
        metadata: { name: 'bad', namespace: 'default' },
        spec: { hosts: ['bad.oto.tools'], targets: [{ url: 'http://10.0.0.9:80', weight: -1 }] },
      });
      const bad = await eventually(
        () => {
          const st = statusOf(api, 'ServiceDescriptor', 'bad');
          return st?.state === 'invalid' ? st : undefined;
        },
        10_000,
        'bad Invalid',
      );
      assert.equal(bad.conditions?.[0]?.type, 'Invalid');
      assert.equal(bad.conditions?.[0]?.reason, 'OxdsInvalidField');
      assert.match(bad.conditions?.[0]?.message ?? '', /spec\.targets\[0\]\.weight/);
      await eventually(
        () =>
          api
            .list('v1', 'Event', 'default')
            .some(
              (e) => (e['involvedObject'] as { name: string }).name === 'bad' && e['reason'] === 'OxdsInvalidField',
            ),
        10_000,
        'Event',
      );
      assert.match(routesText(s), /a2\.oto\.tools/);
      assert.match(routesText(s), /b\.oto\.tools/);
      assert.equal(statusOf(api, 'ServiceDescriptor', 'svc-b')?.state, 'valid');
      // fixing it flips the condition
      api.apply({
        apiVersion: SD,
        kind: 'ServiceDescriptor',
        metadata: { name: 'bad', namespace: 'default' },
        spec: { hosts: ['bad.oto.tools'], targets: [{ url: 'http://10.0.0.9:80' }] },
      });
      await eventually(
        () => statusOf(api, 'ServiceDescriptor', 'bad')?.conditions?.[0]?.type === 'Accepted',
        10_000,
        'bad fixed',
      );
      // status writes happen only on change: nothing more is written once settled
      await sleep(600);
      const writes = api.requests.filter((r) => r.method === 'PATCH' && r.path.endsWith('/status')).length;
      api.apply(descriptor('svc-c', 'c.oto.tools', 'http://10.0.0.3:80'));
      await eventually(() => statusOf(api, 'ServiceDescriptor', 'svc-c')?.state === 'valid', 10_000, 'svc-c status');
      await sleep(600);
      assert.equal(
        api.requests.filter((r) => r.method === 'PATCH' && r.path.endsWith('/status')).length,
        writes + 1,
        'one status write for one new object',
      );
      // delete → removed
      api.remove(SD, 'ServiceDescriptor', 'default', 'svc-b');
      await eventually(() => !/b\.oto\.tools/.test(routesText(s)), 10_000, 'svc-b removed');
    } finally {
      await s.stop();
      await api.close();
    }
  },
);

test('k8s server: API server down → the last config is served; back → resynced', async () => {
  const api = await startFake({ bookmarkMs: 200 });
  api.apply(descriptor('svc-a', 'a.oto.tools', 'http://10.0.0.1:80'));
  const s = await serve(api);
  try {
    const v0 = s.cache.get('envoy')!.version;
    const clusters = clusterNames(s);
    api.setDown(true);
    await sleep(1500); // informers fail and retry with backoff
    assert.equal(s.cache.get('envoy')!.version, v0, 'no rebuild without news');
    assert.deepEqual(clusterNames(s), clusters);
    assert.match(routesText(s), /a\.oto\.tools/);
    api.setDown(false);
    api.apply(descriptor('svc-b', 'b.oto.tools', 'http://10.0.0.2:80'));
    await eventually(() => /b\.oto\.tools/.test(routesText(s)), 20_000, 'resynced');
  } finally {
    await s.stop();
    await api.close();
  }
});

test('k8s server: two replicas → one leader writes; it stops → the other takes over', async () => {
  const api = await startFake({ bookmarkMs: 200 });
  api.apply(descriptor('svc-a', 'a.oto.tools', 'http://10.0.0.1:80'));
  const a = await serve(api, { podName: 'replica-a' });
  const b = await serve(api, { podName: 'replica-b' });
  let bStopped = false;
  try {
    const lease = () =>
      api.get('coordination.k8s.io/v1', 'Lease', 'default', 'otoroshi-xds-leader')?.['spec'] as
        { holderIdentity?: string; leaseTransitions?: number } | undefined;
    const first = await eventually(() => lease()?.holderIdentity || undefined, 10_000, 'a leader');
    assert.ok(first === 'replica-a' || first === 'replica-b');
    // both serve the same routes
    assert.match(routesText(a), /a\.oto\.tools/);
    assert.match(routesText(b), /a\.oto\.tools/);
    // events and statuses come from the leader only
    api.apply({
      apiVersion: SD,
      kind: 'ServiceDescriptor',
      metadata: { name: 'bad', namespace: 'default' },
      spec: { hosts: ['bad.oto.tools'] },
    });
    await eventually(
      () => api.list('v1', 'Event', 'default').some((e) => (e['involvedObject'] as { name: string }).name === 'bad'),
      10_000,
      'Event',
    );
    await sleep(500);
    const reporters = new Set(api.list('v1', 'Event', 'default').map((e) => e['reportingInstance']));
    assert.deepEqual([...reporters], [first]);
    // the leader stops → the other takes over (release on stop)
    const [leader, other] = first === 'replica-a' ? [a, b] : [b, a];
    if (leader === b) bStopped = true;
    await leader.stop();
    const second = await eventually(
      () => {
        const h = lease()?.holderIdentity;
        return h && h !== first ? h : undefined;
      },
      10_000,
      'failover',
    );
    assert.notEqual(second, first);
    // the new leader writes: a new invalid object gets its status
    api.apply({
      apiVersion: SD,
      kind: 'ServiceDescriptor',
      metadata: { name: 'bad2', namespace: 'default' },
      spec: { hosts: ['bad2.oto.tools'] },
    });
    await eventually(
      () => statusOf(api, 'ServiceDescriptor', 'bad2')?.state === 'invalid',
      10_000,
      'status by the new leader',
    );
    if (other === a) await a.stop();
    else await b.stop();
  } finally {
    await a.stop();
    if (!bStopped) await b.stop();
    await api.close();
  }
});

test('k8s server: ApiKey exportSecret → secret written; only our secrets are deleted', async () => {
  const api = await startFake({ bookmarkMs: 200 });
  api.apply({
    apiVersion: SD,
    kind: 'ApiKey',
    metadata: { name: 'key1', namespace: 'default' },
    spec: {
      clientId: 'cid1',
      clientSecret: 'csecret1',
      authorizedEntities: [],
      exportSecret: true,
      secretName: 'key1-secret',
    },
  });
  // an orphan of ours (from a deleted CR) and a user's secret with our annotation but no label
  api.apply({
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: {
      name: 'orphan',
      namespace: 'default',
      labels: { 'app.kubernetes.io/managed-by': 'otoroshi-xds' },
      annotations: { 'otoroshi.io/kind': 'crd/apikey' },
    },
    type: 'otoroshi.io/apikey-secret',
    data: {},
  });
  api.apply({
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name: 'users', namespace: 'default', annotations: { 'otoroshi.io/id': 'x' } },
    type: 'Opaque',
    data: {},
  });
  const s = await serve(api);
  try {
    const sec = await eventually(() => api.get('v1', 'Secret', 'default', 'key1-secret'), 10_000, 'exported secret');
    assert.equal(sec['type'], 'otoroshi.io/apikey-secret');
    const data = Object.fromEntries(
      Object.entries(sec['data'] as Record<string, string>).map(([k, v]) => [k, Buffer.from(v, 'base64').toString()]),
    );
    const basic = Buffer.from('cid1:csecret1').toString('base64');
    assert.deepEqual(data, {
      clientId: 'cid1',
      clientSecret: 'csecret1',
      userPwd: 'cid1:csecret1',
      basicAuth: basic,
      basicAuthHeader: `Basic ${basic}`,
    });
    assert.equal(sec.metadata.labels?.['app.kubernetes.io/managed-by'], 'otoroshi-xds');
    const owners = sec.metadata['ownerReferences'] as Array<{ kind: string; name: string; uid: string }>;
    assert.equal(owners[0]?.kind, 'ApiKey');
    assert.equal(owners[0]?.uid, api.get(SD, 'ApiKey', 'default', 'key1')!.metadata.uid);
    await eventually(() => api.get('v1', 'Secret', 'default', 'orphan') === undefined, 10_000, 'orphan deleted');
    assert.ok(api.get('v1', 'Secret', 'default', 'users'), 'a secret that is not ours survives');
    // the secret follows the key
    api.apply({
      apiVersion: SD,
      kind: 'ApiKey',
      metadata: { name: 'key1', namespace: 'default' },
      spec: {
        clientId: 'cid1',
        clientSecret: 'csecret2',
        authorizedEntities: [],
        exportSecret: true,
        secretName: 'key1-secret',
      },
    });
    await eventually(
      () =>
        Buffer.from(
          (api.get('v1', 'Secret', 'default', 'key1-secret')?.['data'] as Record<string, string>)['clientSecret'] ?? '',
          'base64',
        ).toString() === 'csecret2',
      10_000,
      'updated secret',
    );
    api.remove(SD, 'ApiKey', 'default', 'key1');
    await eventually(
      () => api.get('v1', 'Secret', 'default', 'key1-secret') === undefined,
      10_000,
      'secret deleted with its key',
    );
    assert.ok(api.get('v1', 'Secret', 'default', 'users'));
  } finally {
    await s.stop();
    await api.close();
  }
});

test(
  'k8s server: Ingress + IngressClass → routed, status.loadBalancer written; ' + 'a relist without news pushes nothing',
  async () => {
    const api = await startFake({ bookmarkMs: 200 });
    api.apply({
      apiVersion: 'networking.k8s.io/v1',
      kind: 'IngressClass',
      metadata: { name: 'otoroshi' },
      spec: { controller: 'otoroshi.io/ingress-controller' },
    });
    api.apply(service('web', 8080));
    api.apply(endpointSlice('web', ['10.2.0.1'], 8080));
    const ingress = (host: string, cls: string) => ({
      apiVersion: 'networking.k8s.io/v1',
      kind: 'Ingress',
      metadata: { name: 'web', namespace: 'default' },
      spec: {
        ingressClassName: cls,
        rules: [
          {
            host,
            http: {
              paths: [{ path: '/', pathType: 'Prefix', backend: { service: { name: 'web', port: { number: 8080 } } } }],
            },
          },
        ],
      },
    });
    api.apply(ingress('web.oto.tools', 'otoroshi'));
    // an Ingress of another controller: never routed, its status never touched
    api.apply({ ...ingress('other.oto.tools', 'nginx'), metadata: { name: 'other', namespace: 'default' } });
    const s = await serve(api, { ingressAddress: '192.0.2.10' });
    try {
      assert.match(routesText(s), /web\.oto\.tools/);
      await eventually(
        () =>
          JSON.stringify(api.get('networking.k8s.io/v1', 'Ingress', 'default', 'web')?.['status'] ?? {}) ===
          JSON.stringify({ loadBalancer: { ingress: [{ ip: '192.0.2.10' }] } }),
        10_000,
        'ingress status',
      );
      assert.doesNotMatch(routesText(s), /other\.oto\.tools/);
      assert.equal(api.get('networking.k8s.io/v1', 'Ingress', 'default', 'other')?.['status'], undefined);
      // a bad annotation makes that Ingress invalid: a Warning Event names it
      const bad = ingress('bad.oto.tools', 'otoroshi');
      api.apply({
        ...bad,
        metadata: {
          name: 'bad',
          namespace: 'default',
          annotations: { 'otoroshi.ingress.kubernetes.io/forceHttps': 'maybe' },
        },
      });
      const ev = await eventually(
        () =>
          api
            .list('v1', 'Event', 'default')
            .find((e) => (e['involvedObject'] as { kind: string; name: string }).name === 'bad'),
        10_000,
        'Ingress Event',
      );
      assert.equal((ev['involvedObject'] as { kind: string }).kind, 'Ingress');
      assert.equal(ev['reason'], 'OxdsInvalidAnnotation');
      assert.equal(ev['type'], 'Warning');
      assert.match(String(ev['message']), /forceHttps/);
      // another class → not ours → removed
      api.apply(ingress('web.oto.tools', 'nginx'));
      await eventually(() => !/web\.oto\.tools/.test(routesText(s)), 10_000, 'ingress of another class dropped');
      api.apply(ingress('web2.oto.tools', 'otoroshi'));
      await eventually(() => /web2\.oto\.tools/.test(routesText(s)), 10_000, 'ingress back');
      // history expired + watches dropped → every informer relists; nothing changed → no new snapshot
      await sleep(500);
      const v = s.cache.get('envoy')!.version;
      const lists = api.requests.filter((r) => r.method === 'GET' && !r.watch).length;
      api.expireHistory();
      api.dropWatches();
      await eventually(
        () => api.requests.filter((r) => r.method === 'GET' && !r.watch).length >= lists + 15,
        10_000,
        'relists',
      );
      await sleep(500);
      assert.equal(s.cache.get('envoy')!.version, v, 'no push after a relist that found nothing new');
    } finally {
      await s.stop();
      await api.close();
    }
  },
);

test(
  'k8s server: started while the API server is down → ' + 'publishes nothing (not ready) until the first sync',
  async () => {
    const api = await startFake({ bookmarkMs: 200 });
    api.apply(descriptor('svc-a', 'a.oto.tools', 'http://10.0.0.1:80'));
    api.setDown(true);
    const s = await serve(api);
    try {
      // no snapshot at all: proxies keep what they have rather than getting an empty config
      assert.equal(s.cache.get('envoy'), undefined);
      const ready = async (): Promise<number> => (await fetch(`http://127.0.0.1:${s.adminPort}/ready`)).status;
      assert.equal(await ready(), 503);
      api.setDown(false);
      await eventually(() => /a\.oto\.tools/.test(routesText(s)), 20_000, 'first sync');
      // Ready once the whole first build is published: the Envoy snapshot is set first, the proxyless
      // gRPC one right after it, so the routes can be seen a moment before /ready turns 200.
      await eventually(async () => (await ready()) === 200, 20_000, 'ready after the first build');
    } finally {
      await s.stop();
      await api.close();
    }
  },
);

test('k8s server: an ADS client (like Envoy) sees the cluster; an EndpointSlice change sends it EDS only', async () => {
  const { AdsClient, TYPE_URLS, anyName, decodeAny } = await import('./helpers/ads-client.js');
  const api = await startFake({ bookmarkMs: 200 });
  api.apply(service('backend', 8080));
  api.apply(endpointSlice('backend', ['10.1.0.1'], 8080));
  api.apply(descriptor('svc-b', 'b.oto.tools', 'unused', { targets: { serviceName: 'backend', servicePort: 8080 } }));
  const s = await serve(api);
  const client = new AdsClient(s.xdsPort, { node: { id: 'gw-k8s', userAgentName: 'envoy' } });
  try {
    const last = await client.syncLikeEnvoy(5000);
    const eds = last.get(TYPE_URLS.endpoint);
    assert.ok(eds, 'EDS subscribed');
    assert.match(JSON.stringify(eds.resources.map(decodeAny)), /10\.1\.0\.1/);
    assert.match(JSON.stringify(last.get(TYPE_URLS.route)?.resources.map(decodeAny)), /b\.oto\.tools/);
    api.apply(endpointSlice('backend', ['10.1.0.1', '10.1.0.2'], 8080));
    const r = await client.nextSotw(10_000);
    assert.equal(r.typeUrl, TYPE_URLS.endpoint, 'the first push after an EndpointSlice change is EDS');
    assert.match(JSON.stringify(r.resources.map(decodeAny)), /10\.1\.0\.2/);
    client.ack(r, r.resources.map(anyName));
    await client.expectNone(500); // no CDS / LDS / RDS push
  } finally {
    client.close();
    await s.stop();
    await api.close();
  }
});
