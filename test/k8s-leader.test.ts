// LeaderElector, SecretExporter and StatusWriter units against the API server double.
import { test } from 'vitest';
import assert from 'node:assert/strict';
import { KubeClient } from '../src/k8s/client.js';
import { LeaderElector } from '../src/k8s/leader.js';
import { SecretExporter, apikeySecrets, certificateSecret, secretsUsedBy } from '../src/k8s/secret-exporter.js';
import { desiredStatus, reasonOf } from '../src/k8s/status-writer.js';
import type { ApiKey, ObjectStatus, StoredObject } from '../src/model/types.js';
import { eventually, kubeConfigFor, sleep, startFake } from './helpers/k8s.js';

test('leader: exactly one of three holds the lease; failover when the holder stops renewing', async () => {
  const api = await startFake();
  const client = new KubeClient(kubeConfigFor(api));
  const electors = ['r1', 'r2', 'r3'].map(
    (id) =>
      new LeaderElector(client, {
        namespace: 'default',
        name: 'lead',
        identity: id,
        leaseDurationSeconds: 1,
        retryPeriodMs: 100,
      }),
  );
  try {
    for (const e of electors) e.start();
    const leader = await eventually(() => electors.find((e) => e.isLeader()), 10_000, 'a leader');
    await sleep(500); // several rounds: nobody else takes it while it renews
    assert.deepEqual(
      electors.filter((e) => e.isLeader()).map((e) => e.identity),
      [leader.identity],
    );
    const lease = api.get('coordination.k8s.io/v1', 'Lease', 'default', 'lead')!;
    assert.equal((lease['spec'] as { holderIdentity: string }).holderIdentity, leader.identity);
    assert.match((lease['spec'] as { renewTime: string }).renewTime, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);
    // the holder crashes (stops renewing, no release): another takes over after the lease duration
    leader.abandon();
    const next = await eventually(() => electors.find((e) => e !== leader && e.isLeader()), 10_000, 'failover');
    const spec = api.get('coordination.k8s.io/v1', 'Lease', 'default', 'lead')!['spec'] as {
      holderIdentity: string;
      leaseTransitions: number;
    };
    assert.equal(spec.holderIdentity, next.identity);
    assert.equal(spec.leaseTransitions, 1);
    assert.equal(electors.filter((e) => e !== leader && e.isLeader()).length, 1);
  } finally {
    for (const e of electors) await e.stop();
    await api.close();
  }
});

test('leader: a leader that cannot reach the API server steps down', async () => {
  const api = await startFake();
  const client = new KubeClient(kubeConfigFor(api));
  const e = new LeaderElector(client, {
    namespace: 'default',
    name: 'lead',
    identity: 'solo',
    leaseDurationSeconds: 1,
    retryPeriodMs: 100,
  });
  try {
    e.start();
    await eventually(() => e.isLeader(), 10_000, 'leading');
    api.setDown(true);
    await eventually(() => !e.isLeader(), 10_000, 'stepped down');
    api.setDown(false);
    await eventually(() => e.isLeader(), 10_000, 'leading again');
  } finally {
    await e.stop();
    await api.close();
  }
});

function apikeyObject(name: string, uid: string, spec: Record<string, unknown>): StoredObject {
  return {
    key: `ApiKey/default/${name}`,
    object: {
      apiVersion: 'proxy.otoroshi.io/v1alpha1',
      kind: 'ApiKey',
      metadata: { name, namespace: 'default', uid },
      spec,
    },
    origin: { seq: 1 },
  };
}

test(
  'secret exporter: create, update, conflict with a foreign secret, garbage ' +
    'collection of ours only, dependant restarts',
  async () => {
    const api = await startFake();
    const client = new KubeClient(kubeConfigFor(api));
    const exp = new SecretExporter(client, { namespaces: ['default', 'other'], restartDependantDeployments: true });
    try {
      api.apply({
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: { name: 'taken', namespace: 'default' },
        type: 'Opaque',
        data: { a: 'Yg==' },
      });
      api.apply({
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: {
          name: 'ours-old',
          namespace: 'other',
          labels: { 'app.kubernetes.io/managed-by': 'otoroshi-xds' },
          annotations: { 'otoroshi.io/kind': 'crd/apikey' },
        },
        type: 'Opaque',
        data: {},
      });
      // the CA Secret carries our label too, but is no exported secret: never deleted by the reconciliation
      api.apply({
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: {
          name: 'otoroshi-xds-ca',
          namespace: 'other',
          labels: { 'app.kubernetes.io/managed-by': 'otoroshi-xds', 'otoroshi.io/kind': 'ca' },
        },
        type: 'Opaque',
        data: {},
      });
      api.apply({
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: {
          name: 'elsewhere',
          namespace: 'unwatched',
          labels: { 'app.kubernetes.io/managed-by': 'otoroshi-xds' },
          annotations: { 'otoroshi.io/kind': 'crd/apikey' },
        },
        type: 'Opaque',
        data: {},
      });
      api.apply({
        apiVersion: 'apps/v1',
        kind: 'Deployment',
        metadata: { name: 'app', namespace: 'default' },
        spec: {
          template: {
            metadata: {},
            spec: {
              containers: [
                { name: 'c', env: [{ name: 'K', valueFrom: { secretKeyRef: { name: 'k1', key: 'clientId' } } }] },
              ],
            },
          },
        },
      });
      api.apply({
        apiVersion: 'apps/v1',
        kind: 'Deployment',
        metadata: { name: 'unrelated', namespace: 'default' },
        spec: { template: { metadata: {}, spec: { containers: [{ name: 'c' }] } } },
      });
      const keys: ApiKey[] = [
        { clientId: 'id1', clientSecret: 's1', sourceKey: 'ApiKey/default/k1' } as ApiKey,
        { clientId: 'id2', clientSecret: 's2', sourceKey: 'ApiKey/default/k2' } as ApiKey,
        { clientId: 'id3', clientSecret: 's3', sourceKey: 'ApiKey/default/k3' } as ApiKey,
      ];
      const objects = [
        apikeyObject('k1', 'u1', { exportSecret: true, secretName: 'k1' }),
        apikeyObject('k2', 'u2', { exportSecret: true, secretName: 'taken' }),
        apikeyObject('k3', 'u3', { exportSecret: false }),
      ];
      const desired = apikeySecrets(keys, objects);
      assert.deepEqual(
        desired.map((d) => `${d.namespace}/${d.name}`),
        ['default/k1', 'default/taken'],
      );
      const r1 = await exp.sync(desired);
      assert.deepEqual(r1.created, ['default/k1']);
      assert.deepEqual(r1.conflicts, ['default/taken']);
      assert.deepEqual(r1.deleted, ['other/ours-old']);
      assert.deepEqual(r1.restarted, ['default/app']);
      assert.equal(
        Buffer.from(
          (api.get('v1', 'Secret', 'default', 'taken')!['data'] as Record<string, string>)['a']!,
          'base64',
        ).toString(),
        'b',
        'a foreign secret is never overwritten',
      );
      assert.ok(
        api.get('v1', 'Secret', 'unwatched', 'elsewhere'),
        'secrets outside the watched namespaces are left alone',
      );
      assert.ok(api.get('v1', 'Secret', 'other', 'otoroshi-xds-ca'), 'the CA Secret is left alone');
      const dep = api.get('apps/v1', 'Deployment', 'default', 'app')!;
      assert.ok(
        ((dep['spec'] as { template: { metadata: { annotations?: Record<string, string> } } }).template.metadata
          .annotations ?? {})['otoroshi.io/restartedAt'],
      );
      assert.equal(
        (
          api.get('apps/v1', 'Deployment', 'default', 'unrelated')!['spec'] as {
            template: { metadata: { annotations?: unknown } };
          }
        ).template.metadata.annotations,
        undefined,
      );
      // no change → no write
      const writes = api.requests.filter((r) => r.method !== 'GET').length;
      const r2 = await exp.sync(desired);
      assert.deepEqual([r2.created, r2.updated, r2.deleted, r2.restarted], [[], [], [], []]);
      assert.equal(api.requests.filter((r) => r.method !== 'GET').length, writes);
      // changed secret → update
      keys[0]!.clientSecret = 's1b';
      const r3 = await exp.sync(apikeySecrets(keys, objects));
      assert.deepEqual(r3.updated, ['default/k1']);
    } finally {
      await api.close();
    }
  },
);

test('certificate secret: tls.crt = chain, cert.crt = leaf, ca-chain.crt = the rest, ca.crt = last', () => {
  const pem = (n: string): string => `-----BEGIN CERTIFICATE-----\n${n}\n-----END CERTIFICATE-----`;
  const chain = [pem('leaf'), pem('inter'), pem('root')].join('\n');
  const d = certificateSecret(
    { namespace: 'ns', name: 'c' },
    chain,
    'KEY',
    { apiVersion: 'proxy.otoroshi.io/v1alpha1', kind: 'Certificate', name: 'c', namespace: 'ns', uid: 'u' },
    'cert-id',
  );
  assert.equal(d.type, 'kubernetes.io/tls');
  assert.equal(d.data['tls.crt'], chain);
  assert.equal(d.data['tls.key'], 'KEY');
  assert.equal(d.data['cert.crt'], pem('leaf'));
  assert.equal(d.data['ca-chain.crt'], `${pem('inter')}\n\n${pem('root')}`);
  assert.equal(d.data['ca.crt'], pem('root'));
});

test('secretsUsedBy: volumes, projected volumes, env, envFrom', () => {
  const dep = {
    metadata: { name: 'd' },
    spec: {
      template: {
        spec: {
          volumes: [
            { name: 'a', secret: { secretName: 's1' } },
            { name: 'b', projected: { sources: [{ secret: { name: 's2' } }] } },
          ],
          containers: [
            {
              name: 'c',
              env: [{ name: 'X', valueFrom: { secretKeyRef: { name: 's3' } } }],
              envFrom: [{ secretRef: { name: 's4' } }],
            },
          ],
        },
      },
    },
  };
  assert.deepEqual(secretsUsedBy(dep).sort(), ['s1', 's2', 's3', 's4']);
});

test('desiredStatus: Accepted / Invalid with reason and message; lastTransitionTime kept while unchanged', () => {
  const base: ObjectStatus = {
    key: 'ServiceDescriptor/default/a',
    kind: 'ServiceDescriptor',
    namespace: 'default',
    name: 'a',
    origin: { seq: 1 },
    state: 'valid',
    errors: [],
  };
  const t1 = new Date('2026-01-01T00:00:00Z');
  const ok = desiredStatus(base, 3, undefined, t1);
  assert.deepEqual(ok, {
    state: 'valid',
    observedGeneration: 3,
    conditions: [
      {
        type: 'Accepted',
        status: 'True',
        reason: 'Accepted',
        message: 'accepted',
        observedGeneration: 3,
        lastTransitionTime: '2026-01-01T00:00:00Z',
      },
    ],
  });
  const again = desiredStatus(base, 3, ok, new Date('2026-02-01T00:00:00Z'));
  assert.equal(again.conditions[0]!.lastTransitionTime, '2026-01-01T00:00:00Z');
  const bad = desiredStatus(
    {
      ...base,
      state: 'invalid',
      errors: [
        { code: 'OXDS_INVALID_TARGET', message: 'bad url', field: 'spec.targets[0].url', severity: 'error' },
        { code: 'OXDS_MISSING_FIELD', message: 'w', severity: 'warning' },
      ],
    },
    4,
    ok,
    new Date('2026-03-01T00:00:00Z'),
  );
  assert.equal(bad.state, 'invalid');
  assert.deepEqual(
    { ...bad.conditions[0] },
    {
      type: 'Invalid',
      status: 'True',
      reason: 'OxdsInvalidTarget',
      message: 'spec.targets[0].url: bad url',
      observedGeneration: 4,
      lastTransitionTime: '2026-03-01T00:00:00Z',
    },
  );
  assert.equal(reasonOf('OXDS_ROUTE_CONFLICT'), 'OxdsRouteConflict');
});

test('controller: a leader elected before the first build deletes no exported secret', async () => {
  const { KubeController } = await import('../src/k8s/controller.js');
  const api = await startFake();
  const client = new KubeClient(kubeConfigFor(api));
  api.apply({
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: {
      name: 'k1',
      namespace: 'default',
      labels: { 'app.kubernetes.io/managed-by': 'otoroshi-xds' },
      annotations: { 'otoroshi.io/kind': 'crd/apikey' },
    },
    type: 'otoroshi.io/apikey-secret',
    data: {},
  });
  const c = new KubeController(client, {
    namespaces: ['*'],
    leaseNamespace: 'default',
    leaseName: 'lead',
    identity: 'solo',
    leaseDurationSeconds: 1,
    retryPeriodMs: 100,
  });
  try {
    c.start();
    await eventually(() => c.isLeader(), 10_000, 'leading');
    await c.exportSecrets();
    assert.ok(api.get('v1', 'Secret', 'default', 'k1'), 'kept: nothing is known yet');
    // after a build that wants no secret, ours go
    c.afterBuild({ objects: [], loadErrors: [] }, [], {
      descriptors: [],
      groups: [],
      apikeys: [],
      certificates: [],
      tls: [],
    });
    await c.exportSecrets();
    assert.equal(api.get('v1', 'Secret', 'default', 'k1'), undefined);
  } finally {
    await c.stop();
    await api.close();
  }
});
