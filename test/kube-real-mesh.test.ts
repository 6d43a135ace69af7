// The mesh's control-plane side against a real kube-apiserver (scripts/kube-up.sh), with the
// control plane's own ServiceAccount and the shipped RBAC:
//   - workload identity: a projected-style ServiceAccount token on the xDS stream, checked with
//     TokenReview, gets that account's SPIFFE certificate only; a forged, expired or wrongly
//     audienced token gets none;
//   - sidecar injection: `kubectl apply` of a labelled Pod through the real API server and our
//     mutating webhook (caBundle written by us) shows the injected containers and volumes;
//   - CoreDNS: the marked mesh block is put into a coredns ConfigMap, idempotently; dry-run changes nothing.
import { afterAll, beforeAll, test } from 'vitest';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { SignJWT, importPKCS8 } from 'jose';
import { REPO, applyManifests, realKubeSkip, startRealKube, type RealKube } from './helpers/kube-real.js';
import { eventually } from './helpers/k8s.js';
import { AdsClient, TYPE_URLS, decodeAny } from './helpers/ads-client.js';
import { resolveConfig } from '../src/config.js';
import { startServer, makeLogger, type RunningServer } from '../src/main.js';
import { KubeClient, loadKubeConfig } from '../src/k8s/client.js';
import { CertificateAuthority } from '../src/ca/ca.js';
import { FileCaStore } from '../src/ca/store.js';
import { AdmissionWebhook } from '../src/k8s/webhook.js';
import { INJECT_DEFAULTS } from '../src/k8s/inject.js';
import { CorednsSync, corednsBlock } from '../src/k8s/coredns.js';
import type { DeltaDiscoveryResponse } from '../src/xds/server/messages.js';

const skip = realKubeSkip();
const NS = 'otoroshi-xds';
let kube: RealKube;
let cpKubeconfig: string;

beforeAll(async () => {
  if (skip) return;
  kube = await startRealKube();
  await applyManifests(kube);
  await kube.kubectlOk(['apply', '-f', path.join(REPO, 'manifests/rbac-coredns.yaml')]);
  await kube.kubectlOk(['create', 'namespace', 'shop']);
  for (const sa of ['cart', 'pay']) await kube.kubectlOk(['-n', 'shop', 'create', 'serviceaccount', sa]);
  cpKubeconfig = await kube.serviceAccountKubeconfig(NS, 'otoroshi-xds');
});
afterAll(async () => {
  await kube?.stop();
});

const spiffe = (sa: string): string => `spiffe://cluster.local/ns/shop/sa/${sa}`;

async function tokenServer(): Promise<RunningServer> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'oxds-mesh-tr-'));
  fs.mkdirSync(path.join(dir, 'conf'));
  const r = resolveConfig(
    {
      config: path.join(dir, 'conf'),
      xdsPort: 0,
      adminPort: 0,
      authzPort: 0,
      dataDir: path.join(dir, '.data'),
      debounceMs: 5,
      debounceMaxMs: 20,
      xdsTokenReview: 'on',
      kubeconfig: cpKubeconfig,
    },
    {},
  );
  assert.ok(r.ok, r.ok ? '' : r.errors.join('; '));
  return startServer(r.value, makeLogger('silent'));
}

/** The secret names a node with `token` (and lying node metadata) receives for `names`. */
async function secretsFor(server: RunningServer, token: string | undefined, names: string[]): Promise<string[]> {
  const c = new AdsClient(server.xdsPort, {
    mode: 'delta',
    node: { id: `n-${Math.random()}`, metadata: { NAMESPACE: 'shop', SERVICE_ACCOUNT: 'pay' } },
    ...(token !== undefined ? { bearer: token } : {}),
  });
  try {
    c.subscribe(TYPE_URLS.secret, names);
    // The trust bundle goes to everyone: its arrival means the answer for every name was computed.
    const got = new Set<string>();
    while (!got.has('otoroshi-ca-bundle')) {
      const r = (await c.nextDelta(20_000)) as DeltaDiscoveryResponse;
      c.ackDelta(r);
      const res = r.resources as unknown as Array<{ resource?: { type_url: string; value: Uint8Array } }>;
      for (const x of res) got.add(String(decodeAny(x.resource as never)['name']));
    }
    return [...got].sort();
  } finally {
    c.close();
  }
}

test.skipIf(skip)(
  'real apiserver: a ServiceAccount token (TokenReview) gets that workload certificate only; forged, expired or ' +
    'other-audience tokens get none',
  { timeout: 180_000 },
  async () => {
    const server = await tokenServer();
    try {
      const names = [spiffe('cart'), spiffe('pay'), 'otoroshi-ca-bundle'];
      const cart = (
        await kube.kubectlOk(['-n', 'shop', 'create', 'token', 'cart', '--audience', 'otoroshi-xds'])
      ).trim();
      // the node metadata claims "pay": the token decides
      assert.deepEqual(await secretsFor(server, cart, names), ['otoroshi-ca-bundle', spiffe('cart')]);
      const pay = (await kube.kubectlOk(['-n', 'shop', 'create', 'token', 'pay', '--audience', 'otoroshi-xds'])).trim();
      assert.deepEqual(await secretsFor(server, pay, names), ['otoroshi-ca-bundle', spiffe('pay')]);

      const refused = async (token: string | undefined, what: string): Promise<void> =>
        assert.deepEqual(await secretsFor(server, token, names), ['otoroshi-ca-bundle'], what);
      await refused(undefined, 'no token');
      // the API server's own audience, not ours
      const apiAudience = (await kube.kubectlOk(['-n', 'shop', 'create', 'token', 'cart'])).trim();
      await refused(apiAudience, 'other audience');
      const [h, p, sig] = cart.split('.') as [string, string, string];
      const flipped = sig.slice(0, 10) + (sig[10] === 'A' ? 'B' : 'A') + sig.slice(11);
      await refused(`${h}.${p}.${flipped}`, 'forged signature');
      // Tokens signed with the API server's real signing key: valid claims pass, the same expired do not.
      const key = await importPKCS8(fs.readFileSync(path.join(kube.dir, 'pki', 'sa.key'), 'utf8'), 'RS256');
      const uid = (await kube.kubectlOk(['-n', 'shop', 'get', 'sa', 'cart', '-o', 'jsonpath={.metadata.uid}'])).trim();
      const signed = (exp: number): Promise<string> =>
        new SignJWT({
          'kubernetes.io': { namespace: 'shop', serviceaccount: { name: 'cart', uid } },
        })
          .setProtectedHeader({ alg: 'RS256' })
          .setIssuer('https://kubernetes.default.svc.cluster.local')
          .setSubject('system:serviceaccount:shop:cart')
          .setAudience(['otoroshi-xds'])
          .setIssuedAt(exp - 3600)
          .setNotBefore(exp - 3600)
          .setExpirationTime(exp)
          .sign(key);
      const now = Math.floor(Date.now() / 1000);
      assert.deepEqual(await secretsFor(server, await signed(now + 600), names), [
        'otoroshi-ca-bundle',
        spiffe('cart'),
      ]);
      await refused(await signed(now - 120), 'expired');
    } finally {
      await server.stop();
    }
  },
);

test.skipIf(skip)(
  'real apiserver: kubectl apply of a labelled Pod shows the injected sidecar (our webhook, our caBundle); warnings ' +
    'name the unsupported annotations',
  { timeout: 180_000 },
  async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'oxds-mesh-inject-'));
    const ca = await CertificateAuthority.loadOrCreate(new FileCaStore(dir));
    const client = new KubeClient(loadKubeConfig(cpKubeconfig));
    const webhook = new AdmissionWebhook({
      host: '127.0.0.1',
      port: 0,
      hosts: ['127.0.0.1'],
      configName: '',
      inject: {
        configName: 'otoroshi-xds-inject',
        options: {
          envoyImage: 'envoyproxy/envoy:v1.31-latest',
          initImage: 'otoroshi-xds:0.1.0',
          xdsAddress: 'otoroshi-xds-xds.otoroshi-xds.svc:18000',
          controlPlanePorts: [18000, 18001],
          tokenAudience: 'otoroshi-xds',
          ...INJECT_DEFAULTS,
        },
      },
      client,
      ca: () => ca,
      isLeader: () => true,
      view: () => ({ objects: [], loadErrors: [] }),
      settings: () => ({}),
      now: Date.now,
    });
    webhook.start();
    try {
      const port = await eventually(() => webhook.port, 30_000, 'the webhook to serve');
      const p = '/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/otoroshi-xds-inject';
      // the leader writes our root CA into the shipped configuration (with the control plane's RBAC)
      const bundle = Buffer.from(ca.rootCertPem).toString('base64');
      await eventually(
        async () =>
          (await kube.client.get<{ webhooks: Array<{ clientConfig: { caBundle?: string } }> }>(p)).webhooks[0]
            ?.clientConfig.caBundle === bundle,
        30_000,
        'the caBundle',
      );
      // the API server cannot dial the Service here: point the webhook at our loopback port
      await kube.kubectlOk([
        'patch',
        'mutatingwebhookconfiguration',
        'otoroshi-xds-inject',
        '--type',
        'json',
        '-p',
        JSON.stringify([
          {
            op: 'replace',
            path: '/webhooks/0/clientConfig',
            value: { url: `https://127.0.0.1:${port}/inject`, caBundle: bundle },
          },
        ]),
      ]);
      const pod = (name: string, labels: string, extra = ''): string => `apiVersion: v1
kind: Pod
metadata:
  name: ${name}
  namespace: shop
  labels: {app: cart${labels}}
  annotations:
    otoroshi.io/sidecar-apikey: cart-apikey
    otoroshi.io/sidecar-backend-cert: cart-backend-cert
spec:
  serviceAccountName: cart
${extra}  containers:
    - name: app
      image: nginx:1.27
      ports: [{containerPort: 8080}]
`;
      const applied = await kube.kubectl(['apply', '-f', '-'], {
        input: pod('cart-1', ', otoroshi.io/sidecar: inject'),
      });
      assert.equal(applied.code, 0, applied.stderr);
      assert.match(applied.stderr, /Warning: otoroshi\.io\/sidecar-backend-cert: not supported/);
      assert.match(
        applied.stderr,
        /Warning: otoroshi\.io\/sidecar-apikey: supported: the control plane reads it from the Pod/,
      );
      const got = JSON.parse(await kube.kubectlOk(['-n', 'shop', 'get', 'pod', 'cart-1', '-o', 'json'])) as {
        metadata: { annotations: Record<string, string> };
        spec: {
          containers: Array<{ name: string; securityContext?: { runAsUser?: number } }>;
          initContainers: Array<{ name: string; args?: string[]; command?: string[] }>;
          volumes: Array<{
            name: string;
            projected?: { sources: Array<{ serviceAccountToken?: { audience: string } }> };
          }>;
        };
      };
      assert.deepEqual(
        got.spec.containers.map((c) => c.name),
        ['app', 'otoroshi-xds-envoy'],
      );
      assert.equal(got.spec.containers[1]?.securityContext?.runAsUser, 1337);
      assert.deepEqual(
        got.spec.initContainers.map((c) => c.name),
        ['otoroshi-xds-bootstrap', 'otoroshi-xds-iptables'],
      );
      const args = got.spec.initContainers[0]?.args ?? [];
      assert.equal(args[args.indexOf('--service-account') + 1], 'cart');
      assert.equal(args[args.indexOf('--app-port') + 1], '8080');
      assert.match(got.spec.initContainers[1]?.command?.[2] ?? '', /REDIRECT --to-ports 15001/);
      const token = got.spec.volumes.find((v) => v.name === 'otoroshi-xds-token');
      assert.equal(token?.projected?.sources[0]?.serviceAccountToken?.audience, 'otoroshi-xds');
      // the API server also added its own kube-api-access volume: ours come on top of it
      assert.ok(got.spec.volumes.some((v) => v.name.startsWith('kube-api-access-')));
      assert.equal(got.metadata.annotations['otoroshi.io/sidecar-injected'], 'true');

      // an unlabelled Pod is untouched; a hostNetwork one is refused with our message
      await kube.kubectlOk(['apply', '-f', '-'], { input: pod('plain-1', '') });
      const plain = JSON.parse(await kube.kubectlOk(['-n', 'shop', 'get', 'pod', 'plain-1', '-o', 'json'])) as {
        spec: { containers: unknown[]; initContainers?: unknown[] };
      };
      assert.equal(plain.spec.containers.length, 1);
      assert.equal(plain.spec.initContainers, undefined);
      const denied = await kube.kubectl(['apply', '-f', '-'], {
        input: pod('host-1', ', otoroshi.io/sidecar: inject', '  hostNetwork: true\n'),
      });
      assert.notEqual(denied.code, 0);
      assert.match(denied.stderr, /denied the request: otoroshi\.io\/sidecar: inject on a hostNetwork pod/);
    } finally {
      await webhook.stop();
      ca.pool.close();
    }
  },
);

test.skipIf(skip)(
  'real apiserver: the CoreDNS Corefile gets the marked mesh block once (idempotent), replaced when the settings ' +
    'change; dry-run writes nothing',
  { timeout: 120_000 },
  async () => {
    const corefile = `.:53 {
    errors
    health
    kubernetes cluster.local in-addr.arpa ip6.arpa {
       pods insecure
       fallthrough in-addr.arpa ip6.arpa
    }
    forward . /etc/resolv.conf
    cache 30
}
`;
    await kube.kubectlOk([
      '-n',
      'kube-system',
      'create',
      'configmap',
      'coredns',
      `--from-literal=Corefile=${corefile}`,
    ]);
    const client = new KubeClient(loadKubeConfig(cpKubeconfig));
    const read = async (): Promise<{ corefile: string; rv: string }> => {
      const cm = JSON.parse(
        await kube.kubectlOk(['-n', 'kube-system', 'get', 'configmap', 'coredns', '-o', 'json']),
      ) as {
        data: { Corefile: string };
        metadata: { resourceVersion: string };
      };
      return { corefile: cm.data.Corefile, rv: cm.metadata.resourceVersion };
    };
    const opts = {
      meshDomain: 'otoroshi.mesh',
      clusterDomain: 'cluster.local',
      rewriteTarget: 'gw.otoroshi-xds.svc.cluster.local',
    };
    const logs: string[] = [];
    const sync = (block: string, dryRun: boolean): CorednsSync =>
      new CorednsSync({
        client,
        configMap: { namespace: 'kube-system', name: 'coredns' },
        block,
        dryRun,
        isLeader: () => true,
        onLog: (_l, msg, f) => logs.push(`${msg} ${String(f?.['block'] ?? '')}`),
      });
    const before0 = await read();
    assert.equal(await sync(corednsBlock(opts), true).step(), 'dry-run');
    assert.equal((await read()).rv, before0.rv, 'dry-run writes nothing');
    assert.ok(logs.some((l) => l.includes('### otoroshi-mesh-begin ###') && l.includes('otoroshi.mesh:53 {')));

    assert.equal(await sync(corednsBlock(opts), false).step(), 'updated');
    const once = await read();
    assert.ok(once.corefile.startsWith('### otoroshi-mesh-begin ###\n### config-hash: '));
    assert.match(
      once.corefile,
      /rewrite name regex \(\.\*\)\\\.otoroshi\\\.mesh gw\.otoroshi-xds\.svc\.cluster\.local answer auto/,
    );
    assert.ok(once.corefile.endsWith(corefile), 'the existing server block is kept as it was');
    assert.equal(await sync(corednsBlock(opts), false).step(), 'unchanged');
    assert.equal((await read()).rv, once.rv, 'idempotent: no second write');

    assert.equal(await sync(corednsBlock({ ...opts, meshDomain: 'mesh.corp' }), false).step(), 'updated');
    const changed = (await read()).corefile;
    assert.equal(changed.split('### otoroshi-mesh-begin ###').length, 2, 'one block, replaced');
    assert.match(changed, /^mesh\.corp:53 \{$/m);
    assert.doesNotMatch(changed, /^otoroshi\.mesh:53/m);
    assert.ok(changed.endsWith(corefile));
  },
);
