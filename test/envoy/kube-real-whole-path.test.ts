// The whole path on this machine: real kube-apiserver → our server (`serve --source kubernetes`,
// ServiceAccount token) → real Envoy → a loopback backend. `kubectl apply` a ServiceDescriptor
// (static loopback target: an EndpointSlice may not hold a loopback address) and a public one is
// served; a private one with an ApiKey CR answers 400 "No ApiKey provided" (Otoroshi's
// answer) without the key, 200 with it; `kubectl
// delete` removes the route. (e2e/ runs the same idea in kind, on machines with Docker.)
import { afterAll, beforeAll, test } from 'vitest';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { gatewayBootstrapYaml } from '../../src/envoy/bootstrap.js';
import { EnvoyProcess, httpRequest, findEnvoy, ENVOY_HOWTO, eventually } from '../helpers/envoy.js';
import {
  applyManifests,
  realKubeSkip,
  startControlPlane,
  startRealKube,
  type RealKube,
  type ServerProcess,
} from '../helpers/kube-real.js';

const envoyBin = findEnvoy();
const kubeSkip = realKubeSkip();
if ('missing' in envoyBin && process.env['CI'] === 'true')
  throw new Error(`CI=true and the real Envoy is missing: ${envoyBin.missing}; ${ENVOY_HOWTO}`);
const skip = kubeSkip ?? ('missing' in envoyBin ? `real Envoy: ${envoyBin.missing}; ${ENVOY_HOWTO}` : undefined);
const NS = 'otoroshi-xds';
const SD = 'proxy.otoroshi.io/v1alpha1';

let kube: RealKube;
let cp: ServerProcess;
let envoy: EnvoyProcess;
let backend: http.Server;
let backendPort: number;
let httpPort: number;

beforeAll(async () => {
  if (skip || 'missing' in envoyBin) return;
  backend = http.createServer((req, res) => res.end(`backend-ok ${req.url}`));
  await new Promise<void>((r) => backend.listen(0, '127.0.0.1', () => r()));
  backendPort = (backend.address() as AddressInfo).port;
  kube = await startRealKube();
  await applyManifests(kube);
  const sa = await kube.serviceAccountKubeconfig(NS, 'otoroshi-xds');
  cp = await startControlPlane({
    name: 'whole-path',
    kubeconfig: sa,
    leaseNamespace: NS,
    args: ['--envoy-http-port', '0', '--envoy-https-port', '0', '--envoy-listen-address', '127.0.0.1'],
  });
  const bootstrap = gatewayBootstrapYaml({
    xdsAddress: `127.0.0.1:${cp.xdsPort}`,
    nodeId: 'kube-gw',
    nodeCluster: 'otoroshi-gateway',
    adminAddress: '127.0.0.1',
    adminPort: 0,
    delta: true,
  });
  envoy = await EnvoyProcess.start(envoyBin.bin, bootstrap);
  await envoy.ready();
  httpPort = await eventually('the oxds-http listener', () => envoy.listenerPort('oxds-http'));
});

afterAll(async () => {
  await envoy?.stop();
  await cp?.stop();
  await kube?.stop();
  await new Promise<void>((r) => (backend ? backend.close(() => r()) : r()));
});

const get = (host: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string }> =>
  httpRequest({ port: httpPort, host, path: '/hello', headers, timeoutMs: 5000 });

test.skipIf(skip)(
  'whole path: kubectl apply a ServiceDescriptor → curl through Envoy reaches the backend; an ApiKey CR gates a ' +
    'private one (400 without, 200 with); kubectl delete removes the route',
  async () => {
    const descriptor = (name: string, host: string, extra: Record<string, unknown>): string =>
      JSON.stringify({
        apiVersion: SD,
        kind: 'ServiceDescriptor',
        metadata: { name, namespace: 'default' },
        spec: { hosts: [host], targets: [{ url: `http://127.0.0.1:${backendPort}` }], forceHttps: false, ...extra },
      });
    await kube.kubectlOk(['apply', '-f', '-'], {
      input: descriptor('public', 'public.kube.oto.tools', { publicPatterns: ['/.*'] }),
    });
    const ok = await eventually(
      'public descriptor served by Envoy',
      async () => {
        const r = await get('public.kube.oto.tools').catch(() => undefined);
        return r?.status === 200 ? r : undefined;
      },
      60_000,
    );
    assert.equal(ok.body, 'backend-ok /hello');
    // private: an apikey is needed
    await kube.kubectlOk(['apply', '-f', '-'], {
      input: [
        JSON.stringify({
          apiVersion: SD,
          kind: 'ServiceGroup',
          metadata: { name: 'kube-group', namespace: 'default', annotations: { 'otoroshi.io/id': 'kube-group' } },
          spec: { description: 'g' },
        }),
        descriptor('private', 'private.kube.oto.tools', { groups: ['kube-group'] }),
        JSON.stringify({
          apiVersion: SD,
          kind: 'ApiKey',
          metadata: { name: 'kube-key', namespace: 'default' },
          spec: { clientId: 'kube-client', clientSecret: 'kube-secret', authorizedEntities: ['group_kube-group'] },
        }),
      ].join('\n---\n'),
    });
    let last = '';
    // Otoroshi's answer to a missing apikey: 400 "No ApiKey provided"
    await eventually(
      'private descriptor refuses a call without a key',
      async () => {
        const r = await get('private.kube.oto.tools').catch((e: Error) => ({ status: 0, body: e.message }));
        last = `${r.status} ${r.body}`;
        return r.status === 400 && r.body.includes('No ApiKey provided') ? true : undefined;
      },
      60_000,
    ).catch((e: Error) => {
      throw new Error(
        `${e.message}; last answer: ${last}; server log: ${cp
          .log()
          .split('\n')
          .filter((l) => /warn|error|problem/.test(l))
          .slice(-10)
          .join('\n')}`,
      );
    });
    const withKey = await eventually(
      '200 with the key',
      async () => {
        const r = await get('private.kube.oto.tools', {
          'Otoroshi-Client-Id': 'kube-client',
          'Otoroshi-Client-Secret': 'kube-secret',
        }).catch(() => undefined);
        return r?.status === 200 ? r : undefined;
      },
      60_000,
    );
    assert.equal(withKey.body, 'backend-ok /hello');
    assert.notEqual(
      (await get('private.kube.oto.tools', { 'Otoroshi-Client-Id': 'kube-client', 'Otoroshi-Client-Secret': 'wrong' }))
        .status,
      200,
    );
    // kubectl delete → the route goes away
    await kube.kubectlOk(['delete', 'service-descriptors', 'public', '-n', 'default']);
    await eventually(
      'public route removed',
      async () => ((await get('public.kube.oto.tools').catch(() => undefined))?.status === 404 ? true : undefined),
      60_000,
    );
    assert.deepEqual(await envoy.rejected(), {}, 'Envoy rejected no update');
  },
);
