// The control plane (`otoroshi-xds serve --source kubernetes`, two replicas as child processes)
// against a real kube-apiserver + kube-controller-manager (scripts/kube-up.sh), authenticated as
// the shipped ServiceAccount bound only to the shipped ClusterRole/Role. What a user sees with
// kubectl: informers per kind, Ingress classes, EndpointSlices, TLS Secrets, statuses and Events,
// Ingress status.loadBalancer, exported Secrets garbage-collected with their CR, Deployment
// restarts, the validating webhook, a watch that survives an API server restart, leader failover
// and the shared CA. The last test checks that no request of ours was answered 403.
import { afterAll, beforeAll, test } from 'vitest';
import assert from 'node:assert/strict';
import path from 'node:path';
import { X509Certificate } from 'node:crypto';
import tls from 'node:tls';
import { eventually, sleep } from './helpers/k8s.js';
import { freePort } from './helpers/redis.js';
import { AdsClient, TYPE_URLS, decodeAny } from './helpers/ads-client.js';
import {
  REPO,
  XdsWatcher,
  applyManifests,
  forbiddenLines,
  realKubeSkip,
  startControlPlane,
  startRealKube,
  type RealKube,
  type ServerProcess,
} from './helpers/kube-real.js';
import { descriptorObject } from './fixtures/index.js';

const skip = realKubeSkip();
const NS = 'otoroshi-xds';
const SD = 'proxy.otoroshi.io/v1alpha1';
let kube: RealKube;
let saKubeconfig: string;
let webhookPort: number;
/** When the API server was restarted (start, ready): its own startup answers are not ours to judge. */
let restartWindow: { from: number; to: number } | undefined;
const replicas: ServerProcess[] = [];

type Json = Record<string, unknown>;

async function getJson(k: RealKube, args: string[]): Promise<Json | undefined> {
  const r = await k.kubectl(['get', ...args, '-o', 'json']);
  if (r.code === 0) return JSON.parse(r.stdout) as Json;
  if (/NotFound|not found/.test(r.stderr)) return undefined;
  throw new Error(`kubectl get ${args.join(' ')}: ${r.stderr}`);
}

async function apply(doc: Json): Promise<string> {
  return kube.kubectlOk(['apply', '-f', '-'], { input: JSON.stringify(doc) });
}

const watchers = new Map<string, XdsWatcher>();
/** Everything the replica serves to an Envoy (LDS, CDS, RDS, EDS), as JSON text. */
async function servedHosts(s: ServerProcess): Promise<string> {
  let w = watchers.get(s.name);
  if (!w) {
    w = new XdsWatcher(s.xdsPort, `watcher-${s.name}`);
    watchers.set(s.name, w);
  }
  return w.text();
}

function replicaNamed(name: string): ServerProcess {
  const r = replicas.find((x) => x.name === name);
  assert.ok(r, name);
  return r;
}

async function leaseHolder(): Promise<string | undefined> {
  const l = await getJson(kube, ['lease', 'otoroshi-xds-leader', '-n', NS]);
  return ((l?.['spec'] as Json | undefined)?.['holderIdentity'] as string | undefined) || undefined;
}

const descriptor = (name: string, host: string, extra: Json = {}): Json =>
  descriptorObject(name, host, 'http://127.0.0.1:1', extra);

beforeAll(async () => {
  if (skip) return;
  kube = await startRealKube({ controllerManager: true });
  webhookPort = await freePort();
  await applyManifests(kube, webhookPort);
  await kube.kubectlOk(['apply', '-f', path.join(REPO, 'manifests/rbac-restart-deployments.yaml'), '-n', NS]);
  saKubeconfig = await kube.serviceAccountKubeconfig(NS, 'otoroshi-xds');
  const common = ['--ingress-address', '198.51.100.7', '--restart-dependant-deployments', 'on'];
  // both replicas start at once: they race to create the CA Secret
  const [a, b] = await Promise.all([
    startControlPlane({ name: 'replica-a', kubeconfig: saKubeconfig, leaseNamespace: NS, webhookPort, args: common }),
    startControlPlane({
      name: 'replica-b',
      kubeconfig: saKubeconfig,
      leaseNamespace: NS,
      webhookPort: await freePort(),
      args: common,
    }),
  ]);
  replicas.push(a, b);
});

afterAll(async () => {
  for (const w of watchers.values()) w.close();
  for (const r of replicas) await r.stop();
  await kube?.stop();
});

test.skipIf(skip)(
  'real apiserver: informers see create/update/delete of every kind (statuses follow the generation)',
  async () => {
    const kinds: Array<{ plural: string; kind: string; spec: Json }> = [
      { plural: 'service-groups', kind: 'ServiceGroup', spec: { description: 'g' } },
      {
        plural: 'service-descriptors',
        kind: 'ServiceDescriptor',
        spec: { hosts: ['kinds.oto.tools'], targets: [{ url: 'http://127.0.0.1:1' }] },
      },
      {
        plural: 'apikeys',
        kind: 'ApiKey',
        spec: { clientId: 'kinds-client', clientSecret: 'kinds-secret', authorizedEntities: ['group_default'] },
      },
      {
        plural: 'certificates',
        kind: 'Certificate',
        spec: { csr: { hosts: ['kinds.oto.tools'], subject: 'CN=kinds.oto.tools' } },
      },
      { plural: 'global-configs', kind: 'GlobalConfig', spec: { maintenanceMode: false } },
      {
        plural: 'jwt-verifiers',
        kind: 'JwtVerifier',
        spec: {
          source: { type: 'InHeader', name: 'jwt' },
          algoSettings: { type: 'HSAlgoSettings', size: 256, secret: 'x' },
          strategy: { type: 'PassThrough' },
        },
      },
      { plural: 'auth-modules', kind: 'AuthModule', spec: { type: 'basic' } },
      { plural: 'scripts', kind: 'Script', spec: { code: 'x' } },
      {
        plural: 'tcp-services',
        kind: 'TcpService',
        spec: {
          port: 19555,
          rules: [{ domain: '*', targets: [{ host: 'db.example.invalid', ip: '198.51.100.20', port: 5432 }] }],
        },
      },
      { plural: 'admins', kind: 'Admin', spec: { username: 'admin@oto.tools' } },
    ];
    const gen = async (
      plural: string,
      name: string,
    ): Promise<{ generation: number; observed: number | undefined; state: string | undefined } | undefined> => {
      const o = await getJson(kube, [`${plural}.proxy.otoroshi.io`, name, '-n', 'default']);
      if (!o) return undefined;
      const st = o['status'] as { observedGeneration?: number; state?: string } | undefined;
      return {
        generation: (o['metadata'] as { generation: number }).generation,
        observed: st?.observedGeneration,
        state: st?.state,
      };
    };
    for (const k of kinds) {
      const name = `kinds-${k.plural}`;
      await apply({ apiVersion: SD, kind: k.kind, metadata: { name, namespace: 'default' }, spec: k.spec });
      await eventually(
        async () => (await gen(k.plural, name))?.observed === 1,
        30_000,
        `${k.kind} status for generation 1`,
      );
      await apply({
        apiVersion: SD,
        kind: k.kind,
        metadata: { name, namespace: 'default' },
        spec: { ...k.spec, desc: 'updated' },
      });
      await eventually(
        async () => {
          const g = await gen(k.plural, name);
          return g !== undefined && g.generation === 2 && g.observed === 2;
        },
        30_000,
        `${k.kind} status for generation 2`,
      );
    }
    const a = replicaNamed('replica-a');
    await eventually(async () => (await servedHosts(a)).includes('kinds.oto.tools'), 30_000, 'descriptor routed');
    for (const k of kinds)
      await kube.kubectlOk([
        'delete',
        `${k.plural}.proxy.otoroshi.io`,
        `kinds-${k.plural}`,
        '-n',
        'default',
        '--wait=true',
      ]);
    await eventually(
      async () => !(await servedHosts(a)).includes('kinds.oto.tools'),
      30_000,
      'descriptor route removed',
    );
  },
);

test.skipIf(skip)(
  'real apiserver: Ingress v1 with IngressClass, the default-class annotation, Service + EndpointSlice, TLS Secret, ' +
    'status.loadBalancer',
  async () => {
    const a = replicaNamed('replica-a');
    await apply({
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'web', namespace: 'default' },
      spec: { ports: [{ name: 'http', port: 8080, targetPort: 8080 }] },
    });
    await apply({
      apiVersion: 'discovery.k8s.io/v1',
      kind: 'EndpointSlice',
      metadata: { name: 'web-1', namespace: 'default', labels: { 'kubernetes.io/service-name': 'web' } },
      addressType: 'IPv4',
      endpoints: [{ addresses: ['198.51.100.11'], conditions: { ready: true } }],
      ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
    });
    // a TLS Secret (issued by the test's own openssl-made CA: any valid pair works)
    const pki = path.join(kube.dir, 'pki');
    await kube.kubectlOk([
      '-n',
      'default',
      'create',
      'secret',
      'tls',
      'web-tls',
      '--cert',
      path.join(pki, 'serving.crt'),
      '--key',
      path.join(pki, 'serving.key'),
    ]);
    const ingress = (name: string, host: string, cls?: string): Json => ({
      apiVersion: 'networking.k8s.io/v1',
      kind: 'Ingress',
      metadata: { name, namespace: 'default' },
      spec: {
        ...(cls ? { ingressClassName: cls } : {}),
        tls: [{ hosts: [host], secretName: 'web-tls' }],
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
    await apply(ingress('classed', 'classed.oto.tools', 'otoroshi'));
    await apply(ingress('classless', 'classless.oto.tools'));
    await eventually(
      async () => (await servedHosts(a)).includes('classed.oto.tools'),
      30_000,
      'classed Ingress routed',
    );
    const dump = await servedHosts(a);
    assert.ok(dump.includes('198.51.100.11'), 'EndpointSlice address in EDS');
    assert.ok(
      !dump.includes('classless.oto.tools'),
      'an Ingress without class is not ours while no class is the default',
    );
    // the leader writes status.loadBalancer of the Ingress it serves
    await eventually(
      async () => {
        const ing = await getJson(kube, ['ingress', 'classed', '-n', 'default']);
        return JSON.stringify(ing?.['status']).includes('198.51.100.7');
      },
      30_000,
      'Ingress status.loadBalancer',
    );
    const wide = await kube.kubectlOk(['get', 'ingress', 'classed', '-n', 'default']);
    assert.match(wide, /198\.51\.100\.7/, 'kubectl get ingress shows the ADDRESS');
    // IngressClass `otoroshi` becomes the default: the classless Ingress is served
    await kube.kubectlOk([
      'annotate',
      'ingressclass',
      'otoroshi',
      'ingressclass.kubernetes.io/is-default-class=true',
      '--overwrite',
    ]);
    await eventually(
      async () => (await servedHosts(a)).includes('classless.oto.tools'),
      30_000,
      'classless Ingress routed through the default class',
    );
    // the EndpointSlice changes → the new address is pushed
    await kube.kubectlOk([
      'patch',
      'endpointslice',
      'web-1',
      '-n',
      'default',
      '--type',
      'json',
      '-p',
      JSON.stringify([
        { op: 'add', path: '/endpoints/-', value: { addresses: ['198.51.100.12'], conditions: { ready: true } } },
      ]),
    ]);
    await eventually(async () => (await servedHosts(a)).includes('198.51.100.12'), 30_000, 'new endpoint');
    // the TLS Secret is served by SDS name, and deleting the Ingress removes the route
    assert.match(await servedHosts(a), /web-tls/);
    await kube.kubectlOk(['delete', 'ingress', 'classless', '-n', 'default']);
    await eventually(async () => !(await servedHosts(a)).includes('classless.oto.tools'), 30_000, 'Ingress removed');
  },
);

test.skipIf(skip)(
  'real apiserver: exported Secrets carry owner references; the garbage collector deletes them with their CR; a ' +
    'Deployment using one is rolled',
  async () => {
    await apply({
      apiVersion: SD,
      kind: 'ApiKey',
      metadata: { name: 'exported', namespace: 'default' },
      spec: {
        clientId: 'exp-id',
        clientSecret: 'exp-secret',
        authorizedEntities: ['group_default'],
        exportSecret: true,
        secretName: 'exported-key',
      },
    });
    const secret = await eventually(
      () => getJson(kube, ['secret', 'exported-key', '-n', 'default']),
      30_000,
      'exported Secret',
    );
    const meta = secret['metadata'] as {
      ownerReferences?: Array<{ kind: string; name: string; uid: string }>;
      labels?: Record<string, string>;
    };
    const cr = (await getJson(kube, ['apikeys.proxy.otoroshi.io', 'exported', '-n', 'default']))!;
    assert.equal(meta.ownerReferences?.[0]?.kind, 'ApiKey');
    assert.equal(meta.ownerReferences?.[0]?.uid, (cr['metadata'] as { uid: string }).uid);
    assert.equal(
      Buffer.from((secret['data'] as Record<string, string>)['clientSecret']!, 'base64').toString(),
      'exp-secret',
    );
    // a Deployment that mounts the Secret: rolled (new ReplicaSet) when the Secret changes
    await apply({
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'uses-key', namespace: 'default' },
      spec: {
        replicas: 1,
        selector: { matchLabels: { app: 'uses-key' } },
        template: {
          metadata: { labels: { app: 'uses-key' } },
          spec: {
            containers: [
              { name: 'c', image: 'example.invalid/none:1', volumeMounts: [{ name: 'k', mountPath: '/k' }] },
            ],
            volumes: [{ name: 'k', secret: { secretName: 'exported-key' } }],
          },
        },
      },
    });
    const replicaSets = async (): Promise<number> =>
      (
        (await getJson(kube, ['replicasets', '-n', 'default', '-l', 'app=uses-key']))?.['items'] as
          unknown[] | undefined
      )?.length ?? 0;
    await eventually(async () => (await replicaSets()) === 1, 60_000, 'first ReplicaSet');
    await apply({
      apiVersion: SD,
      kind: 'ApiKey',
      metadata: { name: 'exported', namespace: 'default' },
      spec: {
        clientId: 'exp-id',
        clientSecret: 'exp-secret-2',
        authorizedEntities: ['group_default'],
        exportSecret: true,
        secretName: 'exported-key',
      },
    });
    await eventually(
      async () => {
        const s = await getJson(kube, ['secret', 'exported-key', '-n', 'default']);
        return (
          s !== undefined &&
          Buffer.from((s['data'] as Record<string, string>)['clientSecret']!, 'base64').toString() === 'exp-secret-2'
        );
      },
      30_000,
      'Secret updated',
    );
    await eventually(async () => (await replicaSets()) === 2, 60_000, 'Deployment rolled (second ReplicaSet)');
    const dep = (await getJson(kube, ['deployment', 'uses-key', '-n', 'default']))!;
    assert.ok(
      ((dep['spec'] as Json)['template'] as { metadata: { annotations?: Record<string, string> } }).metadata
        .annotations?.['otoroshi.io/restartedAt'],
    );
    // a CR that stops exporting: the controller deletes the Secret it wrote (the CR stays)
    const unexported = (exportSecret: boolean): Json => ({
      apiVersion: SD,
      kind: 'ApiKey',
      metadata: { name: 'unexported', namespace: 'default' },
      spec: {
        clientId: 'unexp-id',
        clientSecret: 'unexp-secret',
        authorizedEntities: ['group_default'],
        exportSecret,
        secretName: 'unexported-key',
      },
    });
    await apply(unexported(true));
    await eventually(
      () => getJson(kube, ['secret', 'unexported-key', '-n', 'default']),
      30_000,
      'second exported Secret',
    );
    await apply(unexported(false));
    await eventually(
      async () => (await getJson(kube, ['secret', 'unexported-key', '-n', 'default'])) === undefined,
      30_000,
      'Secret deleted by the controller',
    );
    assert.ok(await getJson(kube, ['apikeys.proxy.otoroshi.io', 'unexported', '-n', 'default']));
    // deleting the CR: kube-controller-manager's garbage collector deletes the Secret
    await kube.kubectlOk(['delete', 'apikeys.proxy.otoroshi.io', 'exported', '-n', 'default']);
    await eventually(
      async () => (await getJson(kube, ['secret', 'exported-key', '-n', 'default'])) === undefined,
      60_000,
      'Secret garbage-collected',
    );
  },
);

test.skipIf(skip)(
  'real apiserver: the validating webhook refuses an invalid regex, an unknown JwtVerifier and a host+path conflict ' +
    'with our message; valid objects pass',
  async () => {
    // the leader wrote our root CA into the caBundle
    await eventually(
      async () => {
        const w = await getJson(kube, ['validatingwebhookconfiguration', 'otoroshi-xds']);
        return Boolean(
          (w?.['webhooks'] as Array<{ clientConfig: { caBundle?: string } }> | undefined)?.[0]?.clientConfig.caBundle,
        );
      },
      30_000,
      'caBundle written',
    );
    const refused = async (doc: Json, re: RegExp): Promise<void> => {
      const r = await kube.kubectl(['apply', '-f', '-'], { input: JSON.stringify(doc) });
      assert.notEqual(r.code, 0, `accepted: ${r.stdout}`);
      assert.match(r.stderr, /admission webhook "validate\.proxy\.otoroshi\.io" denied the request/);
      assert.match(r.stderr, re);
      const name = (doc['metadata'] as { name: string }).name;
      assert.equal((await kube.kubectl(['get', 'service-descriptors', name, '-n', 'default'])).code, 1, 'not stored');
    };
    await refused(
      descriptor('bad-regex', 'regex.oto.tools', { publicPatterns: ['/api/(unclosed'] }),
      /OXDS_INVALID_REGEX .*spec\.publicPatterns\[0\]/,
    );
    await refused(
      descriptor('bad-jwt', 'jwt.oto.tools', {
        jwtVerifier: { type: 'ref', enabled: true, ids: ['no-such-verifier'] },
      }),
      /OXDS_UNRESOLVED_REFERENCE .*JwtVerifier "no-such-verifier" not found/,
    );
    await kube.kubectlOk(['apply', '-f', '-'], { input: JSON.stringify(descriptor('first', 'shared.oto.tools')) });
    await eventually(
      async () => (await servedHosts(replicaNamed('replica-a'))).includes('shared.oto.tools'),
      30_000,
      'first routed',
    );
    await refused(
      descriptor('second', 'shared.oto.tools'),
      /OXDS_ROUTE_CONFLICT .*claims the same host\/path\/headers/,
    );
    // valid objects pass, updates of valid objects pass
    await kube.kubectlOk(['apply', '-f', '-'], { input: JSON.stringify(descriptor('second', 'other.oto.tools')) });
    await kube.kubectlOk(['apply', '-f', '-'], {
      input: JSON.stringify(descriptor('second', 'other.oto.tools', { description: 'updated' })),
    });
    // an update that breaks a stored object is refused too
    const r = await kube.kubectl(['apply', '-f', '-'], {
      input: JSON.stringify(descriptor('second', 'other.oto.tools', { privatePatterns: ['(['] })),
    });
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /OXDS_INVALID_REGEX/);
  },
);

test.skipIf(skip)(
  'real apiserver: with the webhook down the cluster is not blocked (failurePolicy Ignore); an invalid CR gets ' +
    'status Invalid and a Warning Event that kubectl describe shows',
  async () => {
    const closed = await freePort();
    const patch = [
      { op: 'replace', path: '/webhooks/0/clientConfig/url', value: `https://127.0.0.1:${closed}/validate` },
    ];
    await kube.kubectlOk([
      'patch',
      'validatingwebhookconfiguration',
      'otoroshi-xds',
      '--type',
      'json',
      '-p',
      JSON.stringify(patch),
    ]);
    await apply(
      descriptor('negative-weight', 'neg.oto.tools', { targets: [{ url: 'http://127.0.0.1:1', weight: -1 }] }),
    );
    const st = await eventually(
      async () => {
        const o = await getJson(kube, ['service-descriptors', 'negative-weight', '-n', 'default']);
        const s = o?.['status'] as
          { state?: string; conditions?: Array<{ type: string; reason: string; message: string }> } | undefined;
        return s?.state === 'invalid' ? s : undefined;
      },
      30_000,
      'Invalid status',
    );
    assert.equal(st.conditions?.[0]?.type, 'Invalid');
    assert.equal(st.conditions?.[0]?.reason, 'OxdsInvalidField');
    assert.match(st.conditions?.[0]?.message ?? '', /spec\.targets\[0\]\.weight/);
    const described = await eventually(
      async () => {
        const d = await kube.kubectlOk(['describe', 'service-descriptors', 'negative-weight', '-n', 'default']);
        return /Warning\s+OxdsInvalidField/.test(d) ? d : undefined;
      },
      30_000,
      'Event in kubectl describe',
    );
    assert.match(described, /spec\.targets\[0\]\.weight/);
    assert.match(await kube.kubectlOk(['get', 'service-descriptors', 'negative-weight', '-n', 'default']), /invalid/);
    await kube.kubectlOk(['delete', 'service-descriptors', 'negative-weight', '-n', 'default']);
    const back = [
      { op: 'replace', path: '/webhooks/0/clientConfig/url', value: `https://127.0.0.1:${webhookPort}/validate` },
    ];
    await kube.kubectlOk([
      'patch',
      'validatingwebhookconfiguration',
      'otoroshi-xds',
      '--type',
      'json',
      '-p',
      JSON.stringify(back),
    ]);
  },
);

test.skipIf(skip)('real apiserver: watches resume after an API server restart without a relist storm', async () => {
  const a = replicaNamed('replica-a');
  const saUser = `system:serviceaccount:${NS}:otoroshi-xds`;
  // One key per informer: the path and its selectors (Secrets are watched twice, by type).
  const informerKey = (uri: string): string => {
    const u = new URL(uri, 'https://x');
    const selectors = ['fieldSelector', 'labelSelector'].map((k) => `${k}=${u.searchParams.get(k) ?? ''}`);
    return `${u.pathname}?${selectors.join('&')}`;
  };
  const lists = (): string[] =>
    kube
      .auditEvents()
      .filter((e) => e.user.username === saUser && e.verb === 'list')
      .map((e) => informerKey(e.requestURI));
  const before = lists().length;
  restartWindow = await kube.restartApiserver();
  await kube.kubectlOk(['apply', '-f', '-'], {
    input: JSON.stringify(descriptor('after-restart', 'after-restart.oto.tools')),
  });
  await eventually(
    async () => (await servedHosts(a)).includes('after-restart.oto.tools'),
    60_000,
    'change after the restart seen',
  );
  for (const r of replicas)
    await eventually(async () => (await r.admin('/ready')).status === 200, 30_000, `${r.name} ready`);
  await sleep(1000);
  // While the restarted server comes up, its requests may fail (connection refused, 403 before its
  // authorizer has synced): each informer then lists once again. A storm would be repeated lists.
  const perResource = new Map<string, number>();
  for (const uri of lists().slice(before)) perResource.set(uri, (perResource.get(uri) ?? 0) + 1);
  const storm = [...perResource].filter(([, n]) => n > 2 * replicas.length);
  assert.deepEqual(storm, [], 'no resource listed more than twice per replica after the restart');
});

test.skipIf(skip)(
  'real apiserver: two replicas share the CA Secret; one Lease holder; killing it hands the Lease over',
  async () => {
    // one CA Secret, and both replicas' webhook certificates verify against its root
    const ca = (await getJson(kube, ['secret', 'otoroshi-xds-ca', '-n', NS]))!;
    const rootPem = Buffer.from((ca['data'] as Record<string, string>)['ca-root.crt.pem']!, 'base64').toString();
    assert.match(rootPem, /BEGIN CERTIFICATE/);
    for (const r of replicas) {
      const peer = await new Promise<X509Certificate>((resolve, reject) => {
        const s = tls.connect({ host: '127.0.0.1', port: r.webhookPort!, ca: rootPem }, () => {
          const cert = s.getPeerX509Certificate()!;
          s.end();
          resolve(cert);
        });
        s.on('error', reject);
      });
      assert.ok(peer.checkIP('127.0.0.1'), `${r.name}: certificate for 127.0.0.1`);
    }
    const holder = await eventually(leaseHolder, 30_000, 'a Lease holder');
    assert.ok(['replica-a', 'replica-b'].includes(holder));
    const other = holder === 'replica-a' ? 'replica-b' : 'replica-a';
    await replicaNamed(holder).kill();
    await eventually(async () => (await leaseHolder()) === other, 60_000, `${other} takes the Lease over`);
    // the new leader writes statuses
    await apply(descriptor('after-failover', 'failover.oto.tools'));
    await eventually(
      async () => {
        const o = await getJson(kube, ['service-descriptors', 'after-failover', '-n', 'default']);
        return (o?.['status'] as { state?: string } | undefined)?.state === 'valid';
      },
      30_000,
      'status written by the new leader',
    );
  },
);

test.skipIf(skip)(
  "real apiserver: a sidecar's ServiceAccount token on the xDS stream (TokenReview) gets its workload certificate",
  async () => {
    const token = (
      await kube.kubectlOk(['-n', 'default', 'create', 'token', 'default', '--audience', 'otoroshi-xds'])
    ).trim();
    const spiffe = 'spiffe://cluster.local/ns/default/sa/default';
    const alive = replicas.find((r) => r.child.exitCode === null && r.child.signalCode === null);
    assert.ok(alive, 'a running replica');
    const c = new AdsClient(alive.xdsPort, { mode: 'delta', node: { id: 'sidecar-token' }, bearer: token });
    try {
      c.subscribe(TYPE_URLS.secret, [spiffe]);
      const r = await c.nextDelta(30_000);
      const res = r.resources as unknown as Array<{ resource?: { type_url: string; value: Uint8Array } }>;
      assert.deepEqual(
        res.map((x) => decodeAny(x.resource as never)['name']),
        [spiffe],
      );
    } finally {
      c.close();
    }
  },
);

test.skipIf(skip)(
  'real apiserver: RBAC is sufficient: no request of the control plane was answered 403 (audit log and its own log)',
  async () => {
    const saUser = `system:serviceaccount:${NS}:otoroshi-xds`;
    const events = kube.auditEvents().filter((e) => e.user.username === saUser);
    assert.ok(events.length > 50, `the control plane made requests as its ServiceAccount (${events.length})`);
    const during = (e: { requestReceivedTimestamp?: string }): boolean => {
      const t = Date.parse(e.requestReceivedTimestamp ?? '');
      return restartWindow !== undefined && t >= restartWindow.from && t <= restartWindow.to;
    };
    const denied = events
      .filter((e) => e.responseStatus?.code === 403 && !during(e))
      .map((e) => `${e.verb} ${e.requestURI}: ${e.responseStatus?.message ?? ''}`);
    assert.deepEqual(denied, []);
    // the replicas' own logs: no 403 outside the restart window (pino lines carry epoch-ms "time")
    for (const r of replicas) {
      const lines = forbiddenLines(r.log()).filter((l) => {
        const t = Number(/"time":(\d+)/.exec(l)?.[1]);
        return !(restartWindow !== undefined && t >= restartWindow.from && t <= restartWindow.to + 60_000);
      });
      assert.deepEqual(lines, [], `${r.name} logged a 403`);
    }
  },
);

test.skipIf(skip)(
  'real apiserver: RBAC is minimal: every verb on every resource the shipped roles grant was used by the tests above',
  async () => {
    const YAML = (await import('yaml')).default;
    const fs = await import('node:fs');
    const saUser = `system:serviceaccount:${NS}:otoroshi-xds`;
    const used = new Set(
      kube
        .auditEvents()
        .filter((e) => e.user.username === saUser)
        .map(
          (e) =>
            `${e.objectRef?.apiGroup ?? ''}|${e.objectRef?.resource ?? ''}` +
            `${e.objectRef?.subresource ? `/${e.objectRef.subresource}` : ''}|${e.verb}`,
        ),
    );
    const granted: string[] = [];
    for (const file of ['manifests/rbac.yaml', 'manifests/rbac-restart-deployments.yaml']) {
      for (const doc of YAML.parseAllDocuments(fs.readFileSync(path.join(REPO, file), 'utf8')).map(
        (d) =>
          d.toJS() as { kind: string; rules?: Array<{ apiGroups: string[]; resources: string[]; verbs: string[] }> },
      )) {
        if (doc.kind !== 'ClusterRole' && doc.kind !== 'Role') continue;
        for (const r of doc.rules ?? [])
          for (const g of r.apiGroups)
            for (const res of r.resources) for (const v of r.verbs) granted.push(`${g}|${res}|${v}`);
      }
    }
    const unused = granted.filter((g) => !used.has(g));
    assert.deepEqual(unused, [], `granted but never used:\n${unused.join('\n')}`);
  },
);
