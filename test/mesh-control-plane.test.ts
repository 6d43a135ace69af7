// The mesh's control-plane pieces, unit level: Otoroshi's mesh hosts (one function), the mesh
// certificate's SANs, the CoreDNS block and Corefile patch, TokenReview answers → identities,
// and the node authenticator's token path.
import { test } from 'vitest';
import assert from 'node:assert/strict';
import { meshHosts, meshCertificateHosts } from '../src/model/mesh-hosts.js';
import { meshCertificate, MESH_CERT_SECRET } from '../src/model/mesh-certificate.js';
import { buildModel } from '../src/model/build.js';
import { parseYamlFile } from '../src/sources/yaml.js';
import { corednsBlock, patchCorefile, parseConfigMapRef } from '../src/k8s/coredns.js';
import { identityOf, kubeTokenReviewer, serviceAccountOf } from '../src/k8s/token-review.js';
import { identityAuthenticator } from '../src/xds/node-auth.js';

const MESH = { meshDomain: 'otoroshi.mesh', clusterDomain: 'cluster.local' };

test("meshHosts: Otoroshi's four hosts from metadata.name, namespace and the global-name annotation", () => {
  assert.deepEqual(meshHosts({ name: 'api', namespace: 'shop' }, MESH), [
    'api.global.otoroshi.mesh',
    'api.shop.otoroshi.mesh',
    'api.shop.svc.otoroshi.mesh',
    'api.shop.svc.cluster.local',
  ]);
  assert.deepEqual(
    meshHosts(
      { name: 'api', annotations: { 'global-name/otoroshi.io': 'payments' } },
      { meshDomain: 'mesh.corp', clusterDomain: 'k.local', coreDnsEnv: 'dev' },
    ),
    [
      'payments.global.dev.mesh.corp',
      'api.default.dev.mesh.corp',
      'api.default.svc.dev.mesh.corp',
      'api.default.svc.k.local',
    ],
  );
  assert.deepEqual(meshCertificateHosts(MESH, ['b', 'a', 'b']), [
    '*.otoroshi.mesh',
    '*.svc.otoroshi.mesh',
    '*.global.otoroshi.mesh',
    '*.a.otoroshi.mesh',
    '*.a.svc.otoroshi.mesh',
    '*.b.otoroshi.mesh',
    '*.b.svc.otoroshi.mesh',
  ]);
});

test('mesh hosts and certificate in the model: CRD descriptors only, spec.name does not matter, off by default', () => {
  const yaml = `apiVersion: proxy.otoroshi.io/v1alpha1
kind: ServiceDescriptor
metadata: {name: api, namespace: shop}
spec: {name: "Shop API", hosts: [api.oto.tools], targets: [{url: "http://10.0.0.1"}]}
`;
  const view = { objects: parseYamlFile('d.yaml', yaml, 0).objects, loadErrors: [] };
  const off = buildModel(view, {});
  assert.deepEqual(off.model.descriptors[0]?.hosts, ['api.oto.tools']);
  assert.equal(off.model.certificateRequests?.length, 0);
  const on = buildModel(view, { enableMeshHosts: true, meshCertificate: true });
  assert.deepEqual(on.model.descriptors[0]?.hosts, [
    'api.oto.tools',
    ...meshHosts({ name: 'api', namespace: 'shop' }, MESH),
  ]);
  assert.deepEqual(
    on.model.certificateRequests?.map((r) => [r.secretName, r.autoRenew, r.csr.hosts]),
    [[MESH_CERT_SECRET, true, meshCertificateHosts(MESH, ['shop'])]],
  );
  assert.ok(
    on.model.tls.some((b) => b.secretName === MESH_CERT_SECRET && b.serverNames.includes('*.shop.otoroshi.mesh')),
  );
  // no descriptor on a mesh host: no certificate to issue
  assert.equal(meshCertificate([], MESH), undefined);
});

test(
  'CoreDNS: the block is marked, hashed, and replaces a previous one; ' + 'other server blocks stay byte for byte',
  () => {
    const base = '.:53 {\n    errors\n    forward . /etc/resolv.conf\n}\n';
    const block = corednsBlock({ ...MESH, rewriteTarget: 'gw.ns.svc.cluster.local' });
    assert.match(block, /^### otoroshi-mesh-begin ###\n### config-hash: [0-9a-f]{64}\notoroshi\.mesh:53 \{\n/);
    assert.match(block, /\n\}\n### otoroshi-mesh-end ###\n$/);
    const first = patchCorefile(base, block);
    assert.deepEqual(first, { corefile: block + base, changed: true });
    assert.deepEqual(patchCorefile(first.corefile, block), { corefile: first.corefile, changed: false });
    const other = corednsBlock({ ...MESH, rewriteTarget: 'other.ns.svc.cluster.local' });
    const second = patchCorefile(`# head\n${first.corefile}`, other);
    assert.equal(second.corefile, `# head\n${other}${base}`);
    // coreDnsEnv: its own markers and zone, next to the plain one
    const dev = corednsBlock({ ...MESH, env: 'dev', rewriteTarget: 'gw' });
    assert.match(dev, /^### otoroshi-dev-mesh-begin ###[\s\S]*^dev\.otoroshi\.mesh:53 \{$/m);
    assert.equal(patchCorefile(first.corefile, dev, 'dev').corefile, dev + first.corefile);
    assert.deepEqual(parseConfigMapRef('kube-system/coredns'), { namespace: 'kube-system', name: 'coredns' });
    assert.equal(typeof parseConfigMapRef('coredns'), 'string');
  },
);

test('TokenReview: only an authenticated ServiceAccount token of our audience is an identity', () => {
  const sa = {
    authenticated: true,
    user: { username: 'system:serviceaccount:shop:cart' },
    audiences: ['otoroshi-xds'],
  };
  assert.deepEqual(identityOf(sa, 'otoroshi-xds'), { ok: true, namespace: 'shop', serviceAccount: 'cart' });
  assert.equal(identityOf({ ...sa, audiences: ['https://kubernetes.default.svc'] }, 'otoroshi-xds').ok, false);
  assert.equal(identityOf({ ...sa, authenticated: false, error: 'expired' }, 'otoroshi-xds').ok, false);
  assert.equal(identityOf({ ...sa, user: { username: 'alice' } }, 'otoroshi-xds').ok, false);
  assert.equal(identityOf(undefined, 'otoroshi-xds').ok, false);
  assert.equal(serviceAccountOf('system:serviceaccount:a:b:c'), undefined);
});

test(
  'TokenReview: answers are cached per token, ' + 'reviews in flight are bounded, API errors are not cached',
  async () => {
    let calls = 0;
    let fail = false;
    const release: Array<() => void> = [];
    const client = {
      create: async <T>(_p: string, body: unknown): Promise<T> => {
        calls++;
        if (fail) throw new Error('connection refused');
        const token = (body as { spec: { token: string } }).spec.token;
        if (token === 'slow') await new Promise<void>((r) => release.push(r));
        return {
          status: {
            authenticated: token === 'good',
            user: { username: 'system:serviceaccount:shop:cart' },
            audiences: ['aud'],
          },
        } as T;
      },
    };
    const review = kubeTokenReviewer(client, { audience: 'aud', maxInFlight: 1 });
    assert.deepEqual(await review('good'), { ok: true, namespace: 'shop', serviceAccount: 'cart' });
    assert.deepEqual(await review('good'), { ok: true, namespace: 'shop', serviceAccount: 'cart' });
    assert.equal(calls, 1);
    const slow = review('slow');
    assert.deepEqual(await review('other'), { ok: false, reason: 'too many token reviews in flight' });
    while (release.length === 0) await new Promise((r) => setImmediate(r));
    release[0]!();
    assert.equal((await slow).ok, false);
    fail = true;
    assert.match(((await review('x')) as { reason: string }).reason, /TokenReview failed: connection refused/);
    fail = false;
    assert.equal((await review('x')).ok, false);
    assert.equal(calls, 4, 'the failed review was retried, not cached');
    assert.equal((await review('')).ok, false);
  },
);

test(
  'node auth: a bearer that is not the gateway token goes to TokenReview ' + 'and becomes the workload SPIFFE id',
  async () => {
    const seen: string[] = [];
    const auth = identityAuthenticator({
      mode: 'identity',
      trustDomain: 'cluster.local',
      gatewayIdentities: [],
      gatewayTokens: ['gw-token'],
      loopbackGateway: false,
      reviewToken: async (t) => {
        seen.push(t);
        return t === 'sa-token'
          ? { ok: true, namespace: 'shop', serviceAccount: 'cart' }
          : { ok: false, reason: 'nope' };
      },
    });
    const creds = (bearer?: string) => ({
      peer: '10.0.0.7:5000',
      mtls: false,
      certUris: [],
      ...(bearer ? { bearer } : {}),
    });
    assert.deepEqual(await auth(creds('gw-token')), { kind: 'gateway', id: 'token' });
    assert.deepEqual(await auth(creds('sa-token')), {
      kind: 'workload',
      spiffeId: 'spiffe://cluster.local/ns/shop/sa/cart',
    });
    assert.deepEqual(await auth(creds('forged')), { kind: 'anonymous', reason: 'nope' });
    assert.equal((await auth(creds())).kind, 'anonymous');
    assert.deepEqual(seen, ['sa-token', 'forged'], 'the gateway token is never sent to the API server');
    // insecure mode ignores tokens entirely (documented, explicit)
    const insecure = identityAuthenticator({
      mode: 'insecure-node-metadata',
      trustDomain: 'cluster.local',
      gatewayIdentities: [],
      gatewayTokens: [],
      loopbackGateway: false,
    });
    assert.deepEqual(await insecure(creds('sa-token')), { kind: 'self-asserted' });
  },
);
