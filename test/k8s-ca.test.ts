// Cluster mode of the CA: one CA for every replica (a Secret), Certificate exportSecret as a
// kubernetes.io/tls Secret written by the leader, statuses on Certificate CRs.
import { test } from 'vitest';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { X509Certificate } from 'node:crypto';
import { resolveConfig } from '../src/config.js';
import { startServer, makeLogger, type RunningServer } from '../src/main.js';
import type { FakeApiServer } from './helpers/fake-apiserver.js';
import { eventually, startFake, writeKubeConfig } from './helpers/k8s.js';

const V = 'proxy.otoroshi.io/v1alpha1';

async function serve(api: FakeApiServer, podName: string): Promise<RunningServer> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'oxds-k8s-ca-'));
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
      podName,
    },
    {},
  );
  if (!r.ok) throw new Error(r.errors.join('; '));
  return startServer(r.value, makeLogger('silent'));
}

function bundleOf(s: RunningServer): string | undefined {
  const r = s.cache.get('envoy')?.resources.secret.get('otoroshi-ca-bundle');
  const o = r?.object as { validationContext?: { trustedCa?: { inlineString?: string } } } | undefined;
  return o?.validationContext?.trustedCa?.inlineString;
}

test(
  'k8s CA: replicas share one CA kept in a Secret; an exported Certificate becomes ' +
    'a kubernetes.io/tls Secret; a bad issuer gets a status',
  async () => {
    const api = await startFake({ bookmarkMs: 200 });
    api.apply({
      apiVersion: V,
      kind: 'Certificate',
      metadata: { name: 'web', namespace: 'default', uid: 'uid-web' },
      spec: { exportSecret: true, secretName: 'web-tls', csr: { hosts: ['web.oto.tools'] } },
    });
    api.apply({
      apiVersion: V,
      kind: 'Certificate',
      metadata: { name: 'orphan', namespace: 'default' },
      spec: { csr: { issuer: 'CN=Nobody', hosts: ['o.oto.tools'] } },
    });
    const a = await serve(api, 'replica-a');
    const b = await serve(api, 'replica-b');
    try {
      const caSecret = api.get('v1', 'Secret', 'default', 'otoroshi-xds-ca');
      assert.ok(caSecret, 'the CA Secret exists');
      assert.equal(
        (caSecret['metadata'] as { labels: Record<string, string> }).labels['app.kubernetes.io/managed-by'],
        'otoroshi-xds',
      );
      assert.ok(bundleOf(a) !== undefined && bundleOf(a) === bundleOf(b), 'both replicas serve the same trust bundle');

      const exported = await eventually(() => api.get('v1', 'Secret', 'default', 'web-tls'), 10_000, 'exported Secret');
      assert.equal(exported['type'], 'kubernetes.io/tls');
      const data = exported['data'] as Record<string, string>;
      assert.deepEqual(Object.keys(data).sort(), ['ca-chain.crt', 'ca.crt', 'cert.crt', 'tls.crt', 'tls.key']);
      const leaf = new X509Certificate(Buffer.from(data['cert.crt'] ?? '', 'base64'));
      const root = new X509Certificate(Buffer.from(data['ca.crt'] ?? '', 'base64'));
      assert.match(leaf.subjectAltName ?? '', /web\.oto\.tools/);
      assert.equal(root.fingerprint256, new X509Certificate(bundleOf(a) ?? '').fingerprint256);
      const owners =
        (exported['metadata'] as { ownerReferences?: Array<{ kind: string; name: string }> }).ownerReferences ?? [];
      assert.deepEqual(
        owners.map((o) => `${o.kind}/${o.name}`),
        ['Certificate/web'],
      );

      const st = await eventually(
        () => {
          const s = api.get(V, 'Certificate', 'default', 'orphan')?.['status'] as
            { state?: string; conditions?: Array<{ message: string }> } | undefined;
          return s?.state === 'invalid' ? s : undefined;
        },
        10_000,
        'status of the orphan',
      );
      assert.match(st.conditions?.map((c) => c.message).join() ?? '', /spec\.csr\.issuer: unknown issuer "CN=Nobody"/);
    } finally {
      await a.stop();
      await b.stop();
      await api.close();
    }
  },
);
