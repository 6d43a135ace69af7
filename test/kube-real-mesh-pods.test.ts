// Mesh Pods from the Kubernetes API (docs/mesh.md, "Declaring workloads"), against a real
// kube-apiserver with the control plane's own ServiceAccount and the shipped RBAC: a Service and a
// labelled Pod (its IP set through the status subresource, as no kubelet runs here) make that
// Pod's workload back the descriptor targeting the Service. The workload's sidecar receives the
// inbound routes of that descriptor; another sidecar's outbound cluster for it holds the Pod's
// `podIP:inbound port`; a Pod reported unready, then deleted, takes its endpoint away. A
// Namespace annotation sets the mTLS mode of the workloads in it.
import { afterAll, beforeAll, test } from 'vitest';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { XdsWatcher, applyManifests, realKubeSkip, startRealKube, type RealKube } from './helpers/kube-real.js';
import { eventually } from './helpers/k8s.js';
import { TYPE_URLS } from './helpers/ads-client.js';
import { resolveConfig } from '../src/config.js';
import { startServer, makeLogger, type RunningServer } from '../src/main.js';
import { SIDECAR_META } from '../src/envoy/bootstrap.js';
import { SIDECAR_NAMES, meshClusterName } from '../src/xds/sidecar/plan.js';

const skip = realKubeSkip();
const NS = 'otoroshi-xds';
let kube: RealKube;
let server: RunningServer;
const POD_IP = '10.244.3.7';
const INBOUND = 15106;

beforeAll(async () => {
  if (skip) return;
  kube = await startRealKube();
  await applyManifests(kube);
  // No webhook server runs in this file: the API server must not call ours for Pods and CRs.
  await kube.kubectlOk(['delete', 'mutatingwebhookconfiguration', 'otoroshi-xds-inject']);
  await kube.kubectlOk(['delete', 'validatingwebhookconfiguration', 'otoroshi-xds']);
  await kube.kubectlOk(['create', 'namespace', 'shop']);
  for (const sa of ['cart', 'pay']) await kube.kubectlOk(['-n', 'shop', 'create', 'serviceaccount', sa]);
  const kubeconfig = await kube.serviceAccountKubeconfig(NS, 'otoroshi-xds');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'oxds-mesh-pods-'));
  const r = resolveConfig(
    {
      source: 'kubernetes',
      kubeconfig,
      leaseNamespace: NS,
      podName: 'mesh-pods-test',
      xdsPort: 0,
      adminPort: 0,
      authzPort: 0,
      dataDir: path.join(dir, '.data'),
      debounceMs: 5,
      debounceMaxMs: 20,
      // the sidecar nodes below say who they are in their metadata (no certificate, no token here)
      xdsNodeAuth: 'insecure-node-metadata',
      xdsTokenReview: 'off',
    },
    {},
  );
  assert.ok(r.ok, r.ok ? '' : r.errors.join('; '));
  server = await startServer(r.value, makeLogger('silent'));
});
afterAll(async () => {
  await server?.stop();
  await kube?.stop();
});

type Json = Record<string, unknown>;

/** What one sidecar node receives over SotW (latest listeners, clusters and its route tables), acked. */
class SidecarView extends XdsWatcher {
  constructor(port: number, sa: string) {
    super(
      port,
      {
        id: `sidecar-${sa}`,
        metadata: {
          [SIDECAR_META.role]: 'sidecar',
          [SIDECAR_META.namespace]: 'shop',
          [SIDECAR_META.serviceAccount]: sa,
          [SIDECAR_META.inboundPort]: String(INBOUND),
        },
      },
      [SIDECAR_NAMES.inbound, SIDECAR_NAMES.outbound],
    );
  }

  /** The domains of the inbound route table's virtual hosts. */
  inboundDomains(): string[] {
    const rc = this.of(TYPE_URLS.route, SIDECAR_NAMES.inbound);
    const vhosts = (rc?.['virtualHosts'] ?? []) as Array<{ domains: string[] }>;
    return vhosts.flatMap((v) => v.domains);
  }

  /** `ip:port` of a cluster's static endpoints, '' when the cluster is absent. */
  endpoints(cluster: string): string[] | undefined {
    const c = this.of(TYPE_URLS.cluster, cluster);
    if (c === undefined) return undefined;
    const la = c['loadAssignment'] as
      { endpoints?: Array<{ lbEndpoints?: Array<{ endpoint: { address: { socketAddress: Json } } }> }> } | undefined;
    return (la?.endpoints ?? []).flatMap((e) =>
      (e.lbEndpoints ?? []).map(
        (l) =>
          `${String(l.endpoint.address.socketAddress['address'])}:` +
          `${String(l.endpoint.address.socketAddress['portValue'])}`,
      ),
    );
  }

  /** The inbound listener's filter chain names (one `mtls` chain: STRICT; plus a plaintext default: PERMISSIVE). */
  inboundMode(): string | undefined {
    const l = this.of(TYPE_URLS.listener, SIDECAR_NAMES.inbound);
    if (l === undefined) return undefined;
    return l['defaultFilterChain'] !== undefined ? 'PERMISSIVE' : 'STRICT';
  }
}

const apply = (doc: Json): Promise<string> => kube.kubectlOk(['apply', '-f', '-'], { input: JSON.stringify(doc) });

test.skipIf(skip)(
  'real apiserver: a labelled Pod behind a Service backs the descriptor: its sidecar gets the inbound routes, ' +
    "another sidecar's outbound cluster gets podIP:inbound port; unready or deleted → the endpoint goes",
  { timeout: 180_000 },
  async (t) => {
    await apply({
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'cart', namespace: 'shop' },
      spec: { selector: { app: 'cart' }, ports: [{ port: 80, targetPort: 8080 }] },
    });
    await apply({
      apiVersion: 'proxy.otoroshi.io/v1alpha1',
      kind: 'ServiceDescriptor',
      metadata: { name: 'cart', namespace: 'shop', annotations: { 'otoroshi.io/id': 'cart-svc' } },
      spec: { hosts: ['cart.oto.tools'], targets: { serviceName: 'cart', servicePort: 80 }, forceHttps: false },
    });
    await apply({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: {
        name: 'cart-1',
        namespace: 'shop',
        labels: { app: 'cart', 'otoroshi.io/sidecar': 'inject' },
        annotations: { 'otoroshi.io/sidecar-inbound-port': String(INBOUND) },
      },
      spec: { serviceAccountName: 'cart', containers: [{ name: 'app', image: 'app:1' }] },
    });
    // The same labels without the mesh label: not a mesh Pod, never listed (server-side selector).
    await apply({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'cart-plain', namespace: 'shop', labels: { app: 'cart' } },
      spec: { serviceAccountName: 'cart', containers: [{ name: 'app', image: 'app:1' }] },
    });
    const setStatus = (status: Json): Promise<string> =>
      kube.kubectlOk([
        '-n',
        'shop',
        'patch',
        'pod',
        'cart-1',
        '--subresource=status',
        '--type=merge',
        '-p',
        JSON.stringify({ status }),
      ]);
    const ready = (s: string): Json => ({
      phase: 'Running',
      podIP: POD_IP,
      conditions: [{ type: 'Ready', status: s }],
    });
    await setStatus(ready('True'));

    const cart = new SidecarView(server.xdsPort, 'cart');
    const pay = new SidecarView(server.xdsPort, 'pay');
    t.onTestFinished(() => {
      cart.close();
      pay.close();
    });
    const cluster = meshClusterName('cart-svc');
    await eventually(() => cart.inboundDomains().includes('cart.oto.tools'), 60_000, "cart's inbound routes");
    // the mesh hosts of the CR come with it (mesh hosts are on with the Kubernetes source)
    assert.ok(cart.inboundDomains().includes('cart.shop.otoroshi.mesh'), cart.inboundDomains().join());
    await eventually(() => pay.endpoints(cluster)?.join() === `${POD_IP}:${INBOUND}`, 60_000, "pay's endpoint");
    // pay backs nothing: its inbound forwards any host to its app (mTLS being its only check)
    // (its route configuration is a resource of its own: it may arrive after the endpoint)
    await eventually(() => pay.inboundDomains().join() === '*', 60_000, "pay's inbound route to any host");

    // Reported unready: no traffic to it, while cart's sidecar keeps the descriptor's policy.
    await setStatus(ready('False'));
    await eventually(() => pay.endpoints(cluster)?.length === 0, 60_000, 'the unready endpoint to go');
    assert.ok(cart.inboundDomains().includes('cart.oto.tools'));
    await setStatus(ready('True'));
    await eventually(() => pay.endpoints(cluster)?.join() === `${POD_IP}:${INBOUND}`, 60_000, 'ready again');

    // Deleted: the endpoint goes (the descriptor falls back to its own target, the Service).
    await kube.kubectlOk(['-n', 'shop', 'delete', 'pod', 'cart-1', '--grace-period=0', '--force', '--wait=false']);
    await eventually(
      () => pay.endpoints(cluster) !== undefined && !pay.endpoints(cluster)!.includes(`${POD_IP}:${INBOUND}`),
      60_000,
      'the deleted endpoint to go',
    );
    await eventually(() => !cart.inboundDomains().includes('cart.oto.tools'), 60_000, "cart's inbound routes to go");
  },
);

test.skipIf(skip)(
  'real apiserver: a Namespace annotated otoroshi.io/sidecar-mtls-mode: PERMISSIVE makes its workloads PERMISSIVE; ' +
    "a Pod's own annotation wins",
  { timeout: 180_000 },
  async (t) => {
    const pay = new SidecarView(server.xdsPort, 'pay');
    t.onTestFinished(() => pay.close());
    await eventually(() => pay.inboundMode() === 'STRICT', 60_000, 'STRICT by default');
    await kube.kubectlOk(['annotate', 'namespace', 'shop', 'otoroshi.io/sidecar-mtls-mode=PERMISSIVE']);
    await eventually(() => pay.inboundMode() === 'PERMISSIVE', 60_000, 'PERMISSIVE from the namespace');
    await apply({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: {
        name: 'pay-1',
        namespace: 'shop',
        labels: { app: 'pay', 'otoroshi.io/sidecar': 'inject' },
        annotations: { 'otoroshi.io/sidecar-mtls-mode': 'STRICT' },
      },
      spec: { serviceAccountName: 'pay', containers: [{ name: 'app', image: 'app:1' }] },
    });
    await kube.kubectlOk([
      '-n',
      'shop',
      'patch',
      'pod',
      'pay-1',
      '--subresource=status',
      '--type=merge',
      '-p',
      JSON.stringify({ status: { podIP: '10.244.3.8' } }),
    ]);
    await eventually(() => pay.inboundMode() === 'STRICT', 60_000, "STRICT from the Pod's annotation");
    await kube.kubectlOk(['annotate', 'namespace', 'shop', 'otoroshi.io/sidecar-mtls-mode-']);
  },
);
