// Attacks on the secrets the control plane holds: private keys over xDS to nodes that were not
// granted them, self-asserted workload identities (and the certificates minted for them), SPIFFE
// ids with dot segments, and file-mode exportSecret taking over directories it does not own.
import { test } from 'vitest';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { AdsClient, TYPE_URLS, anyName } from '../helpers/ads-client.js';
import { CertificateAuthority } from '../../src/ca/index.js';
import { exportSecretsToFiles } from '../../src/ca/file-export.js';
import { CertManager } from '../../src/ca/manager.js';
import { identityAuthenticator, maySeeSecret } from '../../src/xds/node-auth.js';
import { live } from './harness.js';

const TLS = fs.readFileSync('test/fixtures/model/tls/secrets.yaml', 'utf8');
const CONFIG = `${TLS}
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: web, namespace: default}
spec:
  ingressClassName: otoroshi
  tls: [{hosts: [web.oto.tools], secretName: web-tls}]
  rules:
    - host: web.oto.tools
      http: {paths: [{path: /, pathType: Prefix, backend: {service: {name: web, port: {number: 80}}}}]}
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: default}
spec: {clusterIP: 10.0.0.10, ports: [{name: http, port: 80}]}
`;
const TOKEN = 'gw-token-for-the-test-0123456789';
const WANTED = ['default/web-tls', 'default/cn-only-tls', 'otoroshi-ca-bundle'];

async function secretsFor(port: number, opts: ConstructorParameters<typeof AdsClient>[1]): Promise<string[]> {
  const c = new AdsClient(port, opts);
  try {
    c.request(TYPE_URLS.secret, WANTED);
    // The CA bundle (public) is always served: the response comes, and tells what else was.
    const r = await c.nextSotw(10_000);
    return r.resources.map(anyName).sort();
  } finally {
    c.close();
  }
}

test(
  'secrets: a node with no identity gets no private key over ADS or SDS; a granted ' +
    'gateway gets the certificates its listeners serve',
  async (t) => {
    const { server } = await live(t, { 'all.yaml': CONFIG }, { gatewayToken: TOKEN });
    for (const service of ['ads', 'sds'] as const) {
      assert.deepEqual(
        await secretsFor(server.xdsPort, { service, node: { id: 'anyone' } }),
        ['otoroshi-ca-bundle'],
        `${service}: anonymous`,
      );
      assert.deepEqual(
        await secretsFor(server.xdsPort, { service, node: { id: 'liar' }, bearer: 'wrong-token' }),
        ['otoroshi-ca-bundle'],
        `${service}: a wrong token`,
      );
      // The gateway: the certificate its listener serves, not one no listener or cluster uses.
      assert.deepEqual(
        await secretsFor(server.xdsPort, { service, node: { id: 'gw' }, bearer: TOKEN }),
        ['default/web-tls', 'otoroshi-ca-bundle'],
        `${service}: gateway`,
      );
    }
  },
);

test(
  'secrets: a self-asserted NAMESPACE/SERVICE_ACCOUNT gets no workload certificate, ' + 'and none is minted',
  async (t) => {
    const { server } = await live(t, { 'all.yaml': CONFIG });
    for (let i = 0; i < 20; i++) {
      const id = `spiffe://cluster.local/ns/shop/sa/sa-${i}`;
      const c = new AdsClient(server.xdsPort, {
        node: { id: `side-${i}`, metadata: { NAMESPACE: 'shop', SERVICE_ACCOUNT: `sa-${i}` } },
      });
      c.request(TYPE_URLS.secret, [id, 'otoroshi-ca-bundle']);
      const r = await c.nextSotw(10_000);
      c.close();
      assert.deepEqual(r.resources.map(anyName), ['otoroshi-ca-bundle']);
    }
    assert.equal(server.workloadCertCount(), 0, 'no certificate minted for an identity nobody proved');
  },
);

test(
  'secrets: identity is what the xDS client certificate proves; a gateway is ' +
    'granted by SPIFFE id; insecure metadata mode only on request',
  () => {
    const policy = {
      mode: 'identity' as const,
      trustDomain: 'cluster.local',
      gatewayIdentities: ['spiffe://cluster.local/ns/infra/sa/gateway'],
      gatewayTokens: [],
      loopbackGateway: false,
    };
    const auth = identityAuthenticator(policy);
    const facts = { hasPrivateKey: true, referenced: true };
    const gw = auth({ peer: '10.0.0.9:5000', mtls: true, certUris: ['spiffe://cluster.local/ns/infra/sa/gateway'] });
    const cart = auth({ peer: '10.0.0.8:5000', mtls: true, certUris: ['spiffe://cluster.local/ns/shop/sa/cart'] });
    const plain = auth({ peer: '127.0.0.1:5000', mtls: false, certUris: [] });
    const never = (): boolean => true; // what the node metadata would claim: ignored outside the insecure mode
    assert.ok(!(gw instanceof Promise) && !(cart instanceof Promise) && !(plain instanceof Promise));
    assert.equal(maySeeSecret(gw, 'default/web-tls', facts, never), true);
    assert.equal(maySeeSecret(cart, 'default/web-tls', facts, never), false);
    assert.equal(maySeeSecret(cart, 'spiffe://cluster.local/ns/shop/sa/cart', undefined, never), true);
    assert.equal(maySeeSecret(cart, 'spiffe://cluster.local/ns/shop/sa/other', undefined, never), false);
    assert.equal(maySeeSecret(plain, 'default/web-tls', facts, never), false);
    assert.equal(maySeeSecret(plain, 'spiffe://cluster.local/ns/shop/sa/cart', undefined, never), false);
    assert.equal(maySeeSecret(plain, 'otoroshi-ca-bundle', { hasPrivateKey: false, referenced: false }, never), true);
    // Another trust domain, or a SPIFFE id with dot segments, is no identity.
    const foreign = auth({ peer: '10.0.0.7:1', mtls: true, certUris: ['spiffe://evil.local/ns/shop/sa/cart'] });
    assert.equal(!(foreign instanceof Promise) && foreign.kind, 'anonymous');
    const dots = auth({ peer: '10.0.0.7:1', mtls: true, certUris: ['spiffe://cluster.local/ns/../sa/..'] });
    assert.equal(!(dots instanceof Promise) && dots.kind, 'anonymous');
    const insecure = identityAuthenticator({ ...policy, mode: 'insecure-node-metadata' })({
      peer: '',
      mtls: false,
      certUris: [],
    });
    assert.ok(!(insecure instanceof Promise) && maySeeSecret(insecure, 'default/web-tls', facts, never));
  },
);

test('minting bound: beyond maxWorkloads no workload certificate is minted; dropping idle ones frees room', () => {
  const events: string[] = [];
  const mgr = new CertManager({
    ca: CertificateAuthority.create({ now: Date.now() }),
    maxWorkloads: 3,
    onEvent: (e) => events.push(`${e.type} ${'message' in e ? String(e.message) : ''}`),
  });
  const id = (i: number): string => `spiffe://cluster.local/ns/shop/sa/sa-${i}`;
  for (let i = 0; i < 3; i++) assert.ok(mgr.workload(id(i)), `workload ${i} minted`);
  for (let i = 3; i < 50; i++) assert.equal(mgr.workload(id(i)), undefined, `workload ${i} over the bound`);
  assert.equal(mgr.workloadCount, 3);
  assert.ok(
    events.some((e) => e.includes('workload certificate cache full (3)')),
    events.join('\n'),
  );
  assert.ok(mgr.workload(id(0)), 'a cached one is still served');
  assert.equal(mgr.retainWorkloads(new Set([id(0)])), 2, 'the two no stream holds are dropped');
  assert.ok(mgr.workload(id(3)), 'room again');
});

test('SPIFFE ids with dot segments, empty or extra segments are not minted', () => {
  const ca = CertificateAuthority.create({ now: Date.now() });
  assert.equal(ca.workload('spiffe://cluster.local/ns/shop/sa/cart', { now: Date.now() }).ok, true);
  for (const bad of [
    'spiffe://cluster.local/ns/../sa/..',
    'spiffe://cluster.local/ns/./sa/x',
    'spiffe://cluster.local//ns/a',
    'spiffe://cluster.local/ns/a/',
    'spiffe://Cluster.local/ns/a/sa/b',
  ]) {
    assert.equal(ca.workload(bad, { now: Date.now() }).ok, false, bad);
  }
});

test(
  'file-mode exportSecret never writes into or deletes a directory it did not ' +
    'create, nor one in another namespace',
  () => {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'oxds-export-'));
    try {
      const owned = path.join(root, 'default', 'operator-owned');
      fs.mkdirSync(owned, { recursive: true });
      fs.writeFileSync(path.join(owned, 'tls.crt'), 'OPERATOR DATA');
      const r = exportSecretsToFiles(root, [
        {
          namespace: 'default',
          name: 'operator-owned',
          data: { 'tls.crt': 'OURS' },
          owner: 'Certificate/team-a/c',
          ownerNamespace: 'team-a',
        },
      ]);
      assert.deepEqual(r.written, []);
      assert.equal(r.refused.length, 1);
      const r2 = exportSecretsToFiles(root, [
        {
          namespace: 'default',
          name: 'operator-owned',
          data: { 'tls.crt': 'OURS' },
          owner: 'Certificate/default/c',
          ownerNamespace: 'default',
        },
      ]);
      assert.deepEqual(r2.written, []);
      assert.match(r2.refused[0] ?? '', /not created by otoroshi-xds/);
      // The CR goes away: nothing of the operator's is removed.
      exportSecretsToFiles(root, []);
      assert.equal(fs.readFileSync(path.join(owned, 'tls.crt'), 'utf8'), 'OPERATOR DATA');
      // Ours, in the owner's namespace: written, then removed with the CR.
      const r3 = exportSecretsToFiles(root, [
        {
          namespace: 'team-a',
          name: 'mine',
          data: { 'tls.crt': 'OURS' },
          owner: 'Certificate/team-a/c',
          ownerNamespace: 'team-a',
        },
      ]);
      assert.deepEqual(r3.written, ['team-a/mine']);
      assert.deepEqual(exportSecretsToFiles(root, []).removed, ['team-a/mine']);
    } finally {
      fs.rmSync(root, { recursive: true, force: true });
    }
  },
);
