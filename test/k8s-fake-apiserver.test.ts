// The API server double answers client-node's generated (typed) clients and its Watch the way
// kube-apiserver does — what makes the other k8s tests meaningful.
import { test } from 'vitest';
import assert from 'node:assert/strict';
import * as k8s from '@kubernetes/client-node';
import { eventually, kubeConfigFor, startFake } from './helpers/k8s.js';
import { mergePatch, parseSelector } from './helpers/fake-apiserver.js';

test('fake apiserver: typed CoreV1Api / CustomObjectsApi / CoordinationV1Api round trips', async () => {
  const api = await startFake();
  const kc = kubeConfigFor(api);
  try {
    const core = kc.makeApiClient(k8s.CoreV1Api);
    const created = await core.createNamespacedSecret({
      namespace: 'default',
      body: { metadata: { name: 's1' }, type: 'Opaque', stringData: { a: 'b' } },
    });
    assert.equal(created.data?.['a'], Buffer.from('b').toString('base64'), 'stringData → data');
    assert.ok(created.metadata?.uid && created.metadata.resourceVersion);
    assert.ok(created.metadata?.creationTimestamp instanceof Date, 'timestamps parse as dates');
    // 409 AlreadyExists
    await assert.rejects(
      core.createNamespacedSecret({ namespace: 'default', body: { metadata: { name: 's1' } } }),
      (e: { code?: number; body?: string }) => e.code === 409 && /AlreadyExists/.test(String(e.body)),
    );
    // optimistic concurrency: a stale resourceVersion is a 409 Conflict
    const fresh = await core.replaceNamespacedSecret({
      name: 's1',
      namespace: 'default',
      body: { ...created, data: { a: 'Yw==' } },
    });
    assert.notEqual(fresh.metadata?.resourceVersion, created.metadata?.resourceVersion);
    await assert.rejects(
      core.replaceNamespacedSecret({ name: 's1', namespace: 'default', body: { ...created, data: { a: 'ZA==' } } }),
      (e: { code?: number }) => e.code === 409,
    );
    // 404 NotFound
    await assert.rejects(
      core.readNamespacedSecret({ name: 'nope', namespace: 'default' }),
      (e: { code?: number }) => e.code === 404,
    );
    const list = await core.listNamespacedSecret({ namespace: 'default' });
    assert.equal(list.items.length, 1);
    assert.ok(Number(list.metadata?.resourceVersion) >= Number(fresh.metadata?.resourceVersion));

    // CRs: status subresource, generation
    const co = kc.makeApiClient(k8s.CustomObjectsApi);
    const g = { group: 'proxy.otoroshi.io', version: 'v1alpha1', namespace: 'default', plural: 'service-descriptors' };
    const cr = (await co.createNamespacedCustomObject({
      ...g,
      body: {
        apiVersion: 'proxy.otoroshi.io/v1alpha1',
        kind: 'ServiceDescriptor',
        metadata: { name: 'sd' },
        spec: { hosts: ['a'] },
        status: { state: 'ignored' },
      },
    })) as { metadata: { generation: number; resourceVersion: string }; status?: unknown };
    assert.equal(cr.status, undefined, 'status is ignored on create');
    assert.equal(cr.metadata.generation, 1);
    const st = (await co.patchNamespacedCustomObjectStatus(
      { ...g, name: 'sd', body: { status: { state: 'valid' }, spec: { hosts: ['changed-through-status'] } } },
      k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
    )) as { spec: { hosts: string[] }; status: { state: string }; metadata: { generation: number } };
    assert.deepEqual(st.spec.hosts, ['a'], '/status only touches status');
    assert.equal(st.status.state, 'valid');
    assert.equal(st.metadata.generation, 1, 'status writes do not bump generation');
    const upd = (await co.patchNamespacedCustomObject(
      { ...g, name: 'sd', body: { spec: { hosts: ['b'] }, status: { state: 'nope' } } },
      k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
    )) as typeof st;
    assert.deepEqual(upd.spec.hosts, ['b']);
    assert.equal(upd.status.state, 'valid', 'the main resource does not touch status');
    assert.equal(upd.metadata.generation, 2);
    // served as v1 too
    const v1 = (await co.getNamespacedCustomObject({ ...g, version: 'v1', name: 'sd' })) as { apiVersion: string };
    assert.equal(v1.apiVersion, 'proxy.otoroshi.io/v1');

    // Leases with MicroTime
    const coord = kc.makeApiClient(k8s.CoordinationV1Api);
    const lease = await coord.createNamespacedLease({
      namespace: 'default',
      body: {
        metadata: { name: 'l' },
        spec: { holderIdentity: 'me', renewTime: new k8s.V1MicroTime(), leaseDurationSeconds: 5 },
      },
    });
    assert.equal(lease.spec?.holderIdentity, 'me');
    // V1MicroTime serialises with microseconds (what kube-apiserver requires of MicroTime fields)
    const stored = api.get('coordination.k8s.io/v1', 'Lease', 'default', 'l')!['spec'] as { renewTime: string };
    assert.match(stored.renewTime, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);
    assert.ok(lease.spec?.renewTime);
  } finally {
    await api.close();
  }
});

test(
  'fake apiserver: client-node Watch gets ADDED, MODIFIED, DELETED, BOOKMARK and a ' +
    '410 ERROR for an expired version',
  async () => {
    const api = await startFake({ bookmarkMs: 30 });
    const kc = kubeConfigFor(api);
    try {
      api.apply({ apiVersion: 'v1', kind: 'Service', metadata: { name: 'a', namespace: 'default' }, spec: {} });
      const events: Array<[string, string]> = [];
      const w = new k8s.Watch(kc);
      const ctl = await w.watch(
        '/api/v1/namespaces/default/services',
        { allowWatchBookmarks: true },
        (type, obj: { metadata: { name?: string; resourceVersion: string } }) =>
          events.push([type, obj.metadata.name ?? obj.metadata.resourceVersion]),
        () => undefined,
      );
      await eventually(() => events.some(([t]) => t === 'ADDED'));
      api.apply({ apiVersion: 'v1', kind: 'Service', metadata: { name: 'a', namespace: 'default' }, spec: { x: 1 } });
      api.remove('v1', 'Service', 'default', 'a');
      await eventually(() => events.some(([t]) => t === 'DELETED') && events.some(([t]) => t === 'BOOKMARK'));
      assert.deepEqual(
        events.filter(([t]) => t !== 'BOOKMARK').map(([t]) => t),
        ['ADDED', 'MODIFIED', 'DELETED'],
      );
      ctl.abort();
      api.expireHistory();
      const errs: Array<{ code: number; reason: string }> = [];
      let ended = false;
      await w.watch(
        '/api/v1/namespaces/default/services',
        { resourceVersion: '101' },
        (type, obj: { code: number; reason: string }) => type === 'ERROR' && errs.push(obj),
        () => (ended = true),
      );
      await eventually(() => ended);
      assert.deepEqual(
        errs.map((e) => [e.code, e.reason]),
        [[410, 'Expired']],
      );
    } finally {
      await api.close();
    }
  },
);

test('fake apiserver: label selectors and merge patch', () => {
  assert.deepEqual(
    parseSelector('a=b,c!=d,e,!f,g in (x, y)').map((r) => r.op),
    ['=', '!=', 'exists', '!exists', 'in'],
  );
  assert.deepEqual(mergePatch({ a: 1, b: { c: 2, d: 3 }, l: [1] }, { b: { c: null, e: 4 }, l: [2] }), {
    a: 1,
    b: { d: 3, e: 4 },
    l: [2],
  });
});
