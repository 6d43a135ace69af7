// KubeSource (client-node informers) against the in-process API server double.
import { test } from 'vitest';
import assert from 'node:assert/strict';
import { KubeSource } from '../src/k8s/source.js';
import { KubeClient } from '../src/k8s/client.js';
import { buildModel } from '../src/model/build.js';
import { descriptor, endpointSlice, eventually, kubeConfigFor, service, sleep, startFake } from './helpers/k8s.js';
import type { FakeApiServer } from './helpers/fake-apiserver.js';

function keys(src: KubeSource): string[] {
  return src
    .view()
    .objects.map((o) => o.key)
    .sort();
}

async function setup(
  opts: { labelSelector?: string; namespaces?: string[] } = {},
): Promise<{ api: FakeApiServer; src: KubeSource; changes: () => number; stop: () => Promise<void> }> {
  const api = await startFake({ bookmarkMs: 50 });
  const src = new KubeSource({
    kubeConfig: kubeConfigFor(api),
    backoffInitialMs: 50,
    backoffMaxMs: 200,
    initialSyncTimeoutMs: 5000,
    ...opts,
  });
  let n = 0;
  src.on('change', () => n++);
  return {
    api,
    src,
    changes: () => n,
    stop: async () => {
      src.stop();
      await api.close();
    },
  };
}

test('k8s source: initial list, then create / update / delete through the watch', async () => {
  const { api, src, stop } = await setup();
  try {
    api.apply(descriptor('a', 'a.oto.tools', 'http://10.0.0.1:80'));
    api.apply(service('svc', 8080));
    await src.start();
    assert.ok(src.synced());
    assert.deepEqual(keys(src), ['Service/default/svc', 'ServiceDescriptor/default/a']);
    // built-in list items come without kind/apiVersion: the source restores them
    const svc = src.view().objects.find((o) => o.key === 'Service/default/svc');
    assert.equal(svc?.object.apiVersion, 'v1');
    api.apply(descriptor('b', 'b.oto.tools', 'http://10.0.0.2:80'));
    await eventually(() => keys(src).includes('ServiceDescriptor/default/b'));
    api.apply(descriptor('b', 'b2.oto.tools', 'http://10.0.0.2:80'));
    await eventually(
      () =>
        (src.view().objects.find((o) => o.key === 'ServiceDescriptor/default/b')?.object.spec as { hosts: string[] })
          .hosts[0] === 'b2.oto.tools',
    );
    api.remove('proxy.otoroshi.io/v1alpha1', 'ServiceDescriptor', 'default', 'a');
    await eventually(() => !keys(src).includes('ServiceDescriptor/default/a'));
    // every watch asked for bookmarks and a server-side timeout
    const watches = api.requests.filter((r) => r.watch);
    assert.ok(
      watches.length > 0 &&
        watches.every((r) => r.query.includes('allowWatchBookmarks=true') && r.query.includes('timeoutSeconds=')),
    );
    // TLS secrets only, server-side
    assert.ok(
      api.requests.some(
        (r) => r.path === '/api/v1/secrets' && r.query.includes('fieldSelector=type%3Dkubernetes.io%2Ftls'),
      ),
    );
  } finally {
    await stop();
  }
});

test('k8s source: objects created as v1 are seen (served from the v1alpha1 storage)', async () => {
  const { api, src, stop } = await setup();
  try {
    await src.start();
    const o = descriptor('v1obj', 'v1.oto.tools', 'http://10.0.0.1:80');
    o.apiVersion = 'proxy.otoroshi.io/v1';
    api.apply({ ...o, apiVersion: 'proxy.otoroshi.io/v1alpha1' });
    await eventually(() => keys(src).includes('ServiceDescriptor/default/v1obj'));
  } finally {
    await stop();
  }
});

test('k8s source: a status-only write emits no change', async () => {
  const { api, src, changes, stop } = await setup();
  try {
    api.apply(descriptor('a', 'a.oto.tools', 'http://10.0.0.1:80'));
    await src.start();
    const before = changes();
    const cur = api.get('proxy.otoroshi.io/v1alpha1', 'ServiceDescriptor', 'default', 'a')!;
    const res = await fetch(
      `${api.url}/apis/proxy.otoroshi.io/v1alpha1/namespaces/default/service-descriptors/a/status`,
      {
        method: 'PATCH',
        headers: { authorization: 'Bearer fake-token', 'content-type': 'application/merge-patch+json' },
        body: JSON.stringify({ status: { state: 'valid' } }),
      },
    );
    assert.equal(res.status, 200);
    // the informer sees the new resourceVersion…
    await eventually(
      () => (src.view().objects[0]?.object['status'] as { state?: string } | undefined)?.state === 'valid',
    );
    // …but nothing the model reads changed: no 'change'
    assert.equal(changes(), before);
    assert.equal(
      api.get('proxy.otoroshi.io/v1alpha1', 'ServiceDescriptor', 'default', 'a')!.metadata.resourceVersion !==
        cur.metadata.resourceVersion,
      true,
    );
  } finally {
    await stop();
  }
});

test('k8s source: a dropped watch resumes from its resourceVersion and loses nothing', async () => {
  const { api, src, stop } = await setup();
  try {
    api.apply(descriptor('a', 'a.oto.tools', 'http://10.0.0.1:80'));
    await src.start();
    const lists = api.requests.filter((r) => !r.watch && r.method === 'GET').length;
    api.dropWatches();
    // changes made while no watch is open
    api.apply(descriptor('b', 'b.oto.tools', 'http://10.0.0.2:80'));
    api.remove('proxy.otoroshi.io/v1alpha1', 'ServiceDescriptor', 'default', 'a');
    api.apply(endpointSlice('svc', ['10.1.0.1'], 8080));
    await eventually(
      () => keys(src).join() === ['EndpointSlice/default/svc-abc', 'ServiceDescriptor/default/b'].join(),
      10_000,
      'resumed view',
    );
    // resumed, not relisted
    assert.equal(api.requests.filter((r) => !r.watch && r.method === 'GET').length, lists);
    const resumed = api.requests.filter((r) => r.watch && r.path.endsWith('/service-descriptors')).at(-1)!;
    assert.match(resumed.query, /resourceVersion=\d+/);
  } finally {
    await stop();
  }
});

test('k8s source: 410 Gone on resume → relist; objects deleted meanwhile are removed', async () => {
  const { api, src, stop } = await setup();
  try {
    api.apply(descriptor('a', 'a.oto.tools', 'http://10.0.0.1:80'));
    api.apply(descriptor('c', 'c.oto.tools', 'http://10.0.0.3:80'));
    await src.start();
    const lists = () =>
      api.requests.filter((r) => !r.watch && r.method === 'GET' && r.path.endsWith('/service-descriptors')).length;
    const before = lists();
    api.dropWatches();
    api.apply(descriptor('b', 'b.oto.tools', 'http://10.0.0.2:80'));
    api.remove('proxy.otoroshi.io/v1alpha1', 'ServiceDescriptor', 'default', 'a');
    api.expireHistory(); // the history of those two changes is gone: a resume must get 410
    await eventually(
      () =>
        keys(src)
          .filter((k) => k.startsWith('ServiceDescriptor'))
          .join() === 'ServiceDescriptor/default/b,ServiceDescriptor/default/c',
      10_000,
      'relisted view',
    );
    assert.ok(lists() > before, 'relisted');
  } finally {
    await stop();
  }
});

test('k8s source: API server down → last objects kept; back up → resynced', async () => {
  const { api, src, stop } = await setup();
  try {
    api.apply(descriptor('a', 'a.oto.tools', 'http://10.0.0.1:80'));
    await src.start();
    api.setDown(true);
    await eventually(() => src.failing().length > 0, 10_000, 'failing informers');
    await sleep(300); // several failed retries
    assert.deepEqual(keys(src), ['ServiceDescriptor/default/a']);
    api.setDown(false);
    api.apply(descriptor('b', 'b.oto.tools', 'http://10.0.0.2:80'));
    await eventually(() => keys(src).includes('ServiceDescriptor/default/b'), 10_000, 'recovered');
    await eventually(() => src.failing().length === 0, 10_000, 'all informers recovered');
  } finally {
    await stop();
  }
});

test('k8s source: namespaces and label selector limit what is read', async () => {
  const { api, src, stop } = await setup({ namespaces: ['team-a'], labelSelector: 'otoroshi.io/enabled=true' });
  try {
    const labelled = (name: string, ns: string, on: boolean) => {
      const d = descriptor(name, `${name}.oto.tools`, 'http://10.0.0.1:80', {}, ns);
      if (on) d.metadata.labels = { 'otoroshi.io/enabled': 'true' };
      return d;
    };
    api.apply(labelled('in', 'team-a', true));
    api.apply(labelled('nolabel', 'team-a', false));
    api.apply(labelled('otherns', 'team-b', true));
    await src.start();
    assert.deepEqual(keys(src), ['ServiceDescriptor/team-a/in']);
    // losing the label removes it
    api.apply(labelled('in', 'team-a', false));
    await eventually(() => keys(src).length === 0);
  } finally {
    await stop();
  }
});

test('k8s source: bookmarks move the resume point past changes of other resources', async () => {
  const { api, src, stop } = await setup();
  try {
    api.apply(descriptor('a', 'a.oto.tools', 'http://10.0.0.1:80'));
    await src.start();
    const rvA = Number(
      api.get('proxy.otoroshi.io/v1alpha1', 'ServiceDescriptor', 'default', 'a')!.metadata.resourceVersion,
    );
    for (let i = 0; i < 5; i++) api.apply(service(`s${i}`, 80 + i)); // the global resourceVersion moves on
    const resumeRv = (): number => {
      const w = api.requests.filter((r) => r.watch && r.path.endsWith('/service-descriptors')).at(-1);
      return Number(new URLSearchParams(w?.query ?? '').get('resourceVersion') ?? 0);
    };
    const sdLists = (): number =>
      api.requests.filter((r) => r.path.endsWith('/service-descriptors') && !r.watch).length;
    const listsBefore = sdLists();
    // drop the watches until a resume starts from a bookmark's version (newer than any descriptor)
    await eventually(
      async () => {
        api.dropWatches();
        await sleep(100);
        return resumeRv() > rvA;
      },
      10_000,
      'resume from a bookmark',
    );
    assert.equal(sdLists(), listsBefore, 'resumed, never relisted');
  } finally {
    await stop();
  }
});

test('k8s source: templates are merged under each CR spec (the spec wins)', async () => {
  const { deepMerge, applyTemplate } = await import('../src/k8s/templates.js');
  assert.deepEqual(deepMerge({ a: 1, b: { c: 1, d: [1] } }, { b: { d: [2] }, e: 3 }), {
    a: 1,
    b: { c: 1, d: [2] },
    e: 3,
  });
  const api = await startFake({ bookmarkMs: 50 });
  const src = new KubeSource({
    kubeConfig: kubeConfigFor(api),
    // both spellings: Otoroshi's code reads `service-descriptor`, its default config writes `apikeys`
    templates: {
      'service-descriptor': { forceHttps: true, clientConfig: { retries: 3 }, hosts: ['template.oto.tools'] },
      apikeys: { throttlingQuota: 7 },
    },
  });
  try {
    api.apply(descriptor('a', 'a.oto.tools', 'http://10.0.0.1:80', { clientConfig: { callTimeout: 1000 } }));
    api.apply({
      apiVersion: 'proxy.otoroshi.io/v1alpha1',
      kind: 'ApiKey',
      metadata: { name: 'k', namespace: 'default' },
      spec: { clientId: 'c' },
    });
    await src.start();
    const spec = (key: string) => src.view().objects.find((o) => o.key === key)?.object.spec as Record<string, unknown>;
    const sd = spec('ServiceDescriptor/default/a');
    assert.deepEqual(sd['hosts'], ['a.oto.tools'], 'the spec wins');
    assert.equal(sd['forceHttps'], false, 'the spec wins');
    assert.deepEqual(sd['clientConfig'], { retries: 3, callTimeout: 1000 }, 'deep merge');
    assert.equal(spec('ApiKey/default/k')['throttlingQuota'], 7);
    // the stored object on the API server is untouched
    assert.equal(
      (api.get('proxy.otoroshi.io/v1alpha1', 'ApiKey', 'default', 'k')!['spec'] as Record<string, unknown>)[
        'throttlingQuota'
      ],
      undefined,
    );
    assert.equal(
      applyTemplate({ apiVersion: 'v1', kind: 'Service', metadata: { name: 's' } }, { 'service-descriptor': { x: 1 } })[
        'spec'
      ],
      undefined,
    );
  } finally {
    src.stop();
    await api.close();
  }
});

test(
  'k8s source: otoroshi.io/apikey-secret Secrets are read (server-side selector), ' +
    'and an ApiKey secretName takes its credentials from one',
  async () => {
    const { api, src, stop } = await setup();
    try {
      const b64 = (s: string): string => Buffer.from(s).toString('base64');
      api.apply({
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: { name: 'creds', namespace: 'default' },
        type: 'otoroshi.io/apikey-secret',
        data: { clientId: b64('cluster-id'), clientSecret: b64('cluster-secret') },
      });
      api.apply({
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: { name: 'other', namespace: 'default' },
        type: 'Opaque',
        data: { x: b64('y') },
      });
      api.apply({
        apiVersion: 'proxy.otoroshi.io/v1alpha1',
        kind: 'ApiKey',
        metadata: { name: 'k', namespace: 'default' },
        spec: { secretName: 'creds', authorizedEntities: ['group_default'] },
      });
      await src.start();
      assert.deepEqual(keys(src), ['ApiKey/default/k', 'Secret/default/creds']);
      assert.ok(
        api.requests.some(
          (r) => r.path === '/api/v1/secrets' && r.query.includes('fieldSelector=type%3Dotoroshi.io%2Fapikey-secret'),
        ),
      );
      const key = buildModel(src.view()).model.apikeys[0];
      assert.equal(key?.clientId, 'cluster-id');
      assert.equal(key?.clientSecret, 'cluster-secret');
      // a rotated Secret is followed
      api.apply({
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: { name: 'creds', namespace: 'default' },
        type: 'otoroshi.io/apikey-secret',
        data: { clientId: b64('cluster-id'), clientSecret: b64('rotated') },
      });
      await eventually(() => buildModel(src.view()).model.apikeys[0]?.clientSecret === 'rotated');
    } finally {
      await stop();
    }
  },
);

test('k8s source: only mesh Pods are listed and watched (label selector), only the fields the mesh reads', async () => {
  const { api, src, changes, stop } = await setup();
  const pod = (name: string, labels: Record<string, string>) => ({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name,
      namespace: 'shop',
      labels,
      annotations: {
        'otoroshi.io/sidecar-inbound-port': '15006',
        'kubectl.kubernetes.io/last-applied-configuration': 'x'.repeat(10_000),
      },
      managedFields: [{ manager: 'kubectl', fieldsV1: { 'f:spec': {} } }],
    },
    spec: {
      serviceAccountName: 'cart',
      containers: [{ name: 'app', image: 'app', env: [{ name: 'BIG', value: 'y'.repeat(10_000) }] }],
    },
    status: {
      phase: 'Running',
      podIP: '10.1.0.7',
      conditions: [
        { type: 'Ready', status: 'True', lastProbeTime: null },
        { type: 'PodScheduled', status: 'True' },
      ],
      containerStatuses: [{ name: 'app', ready: true }],
    },
  });
  try {
    api.apply(pod('cart-1', { app: 'cart', 'otoroshi.io/sidecar': 'inject' }));
    api.apply(pod('plain-1', { app: 'plain' }));
    await src.start();
    const lists = api.requests.filter((r) => r.path.endsWith('/pods'));
    assert.ok(lists.length > 0 && lists.every((r) => /labelSelector=otoroshi\.io%2Fsidecar%3Dinject/.test(r.query)));
    assert.deepEqual(
      keys(src).filter((k) => k.startsWith('Pod/')),
      ['Pod/shop/cart-1'],
    );
    const kept = (): unknown => {
      const o = src.view().objects.find((x) => x.key === 'Pod/shop/cart-1')?.object as Record<string, unknown>;
      const {
        resourceVersion: _rv,
        uid: _uid,
        creationTimestamp: _ct,
        ...meta
      } = o['metadata'] as Record<string, unknown>;
      return { ...o, metadata: meta };
    };
    assert.deepEqual(kept(), {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: {
        name: 'cart-1',
        namespace: 'shop',
        labels: { app: 'cart', 'otoroshi.io/sidecar': 'inject' },
        annotations: { 'otoroshi.io/sidecar-inbound-port': '15006' },
      },
      spec: { serviceAccountName: 'cart' },
      status: { podIP: '10.1.0.7', phase: 'Running', conditions: [{ type: 'Ready', status: 'True' }] },
    });
    // A status change of a mesh Pod (its IP, its readiness) is a change, kept the same way from the watch.
    const before = changes();
    const client = new KubeClient(kubeConfigFor(api));
    await client.patch('/api/v1/namespaces/shop/pods/cart-1/status', {
      status: { podIP: '10.1.0.8', conditions: [{ type: 'Ready', status: 'False' }] },
    });
    await eventually(() => (kept() as { status: { podIP: string } }).status.podIP === '10.1.0.8');
    assert.ok(changes() > before);
    assert.deepEqual((kept() as { status: unknown }).status, {
      podIP: '10.1.0.8',
      phase: 'Running',
      conditions: [{ type: 'Ready', status: 'False' }],
    });
    // Namespaces: only our annotations are kept.
    api.apply({
      apiVersion: 'v1',
      kind: 'Namespace',
      metadata: {
        name: 'shop',
        labels: { team: 'x' },
        annotations: { 'otoroshi.io/sidecar-mtls-mode': 'PERMISSIVE', a: 'b' },
      },
    });
    await eventually(() => keys(src).includes('Namespace//shop'));
    const ns = src.view().objects.find((x) => x.key === 'Namespace//shop')?.object;
    assert.deepEqual(ns?.metadata.annotations, { 'otoroshi.io/sidecar-mtls-mode': 'PERMISSIVE' });
    assert.equal(ns?.metadata.labels, undefined);
    api.remove('v1', 'Pod', 'shop', 'cart-1');
    await eventually(() => !keys(src).includes('Pod/shop/cart-1'));
  } finally {
    await stop();
  }
});
