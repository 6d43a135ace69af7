// The sidecar data plane with real Envoys and real traffic (docs/mesh.md). Two "pods" A and B, each
// an app plus a real Envoy started from `bootstrap sidecar`, connected to one control plane over mTLS
// with their workload's xDS client certificate. A calls B by its mesh host and by its descriptor
// host through A's explicit proxy port: A-sidecar → mTLS → B-sidecar → B. Interception (iptables)
// is not used here: this machine has no iptables binary, so the pods are loopback ports (the
// explicit outbound proxy is what an application uses without interception).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { X509Certificate } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import type { TestContext } from 'vitest';
import { gatewayBootstrapYaml, sidecarBootstrapYaml } from '../../src/envoy/bootstrap.js';
import { startServer, makeLogger, type RunningServer } from '../../src/main.js';
import {
  TEST_GATEWAY_TOKEN,
  EnvoyProcess,
  envoyTest,
  eventually,
  httpRequest,
  nodeConverged,
  testConfig,
  writeFiles,
} from '../helpers/envoy.js';
import { startHttpBackend, type HttpBackend } from '../helpers/http-backends.js';
import { freePort } from '../helpers/redis.js';
import { AdsClient, TYPE_URLS, responseNames } from '../helpers/ads-client.js';
import { descriptorB, meshPki, meshSpiffe, podYaml, type MeshPki } from '../helpers/mesh.js';

const HOUR = 3_600_000;
const spiffe = meshSpiffe;

interface Pod {
  name: string;
  sa: string;
  app: HttpBackend;
  envoy: EnvoyProcess;
  nodeId: string;
  inboundPort: number;
  proxyPort: number;
  xdsCert: { cert: string; key: string };
}

interface Mesh {
  server: RunningServer;
  dir: string;
  clock: { offset: number };
  a: Pod;
  b: Pod;
  caPem: string;
  podsYaml(bAnnotations?: Record<string, string>): string;
  pki: MeshPki;
  /** Every Envoy of the test (its NACK check runs after the test). */
  pods: Pod[];
  update(files: Record<string, string | undefined>): Promise<void>;
}

async function converged(server: RunningServer, pod: Pod): Promise<void> {
  await eventually(`${pod.nodeId} to ACK its snapshot`, () => (nodeConverged(server, pod.nodeId) ? true : undefined));
  await eventually(`${pod.nodeId} to finish warming`, async () => {
    const s = await pod.envoy.stats('warming');
    return (s['listener_manager.total_listeners_warming'] ?? 0) === 0 &&
      (s['cluster_manager.warming_clusters'] ?? 0) === 0
      ? true
      : undefined;
  });
}

async function startMesh(t: TestContext, bin: string): Promise<Mesh> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'oxds-mesh-'));
  // The server's clock starts 19 h behind: the workload certificates it mints first are due for
  // renewal once the clock is set right, and every certificate is valid in real time for Envoy.
  const clock = { offset: 19 * HOUR };
  const issuedAt = Date.now() - 20 * HOUR;
  const pki = meshPki(dir, issuedAt, '127.0.0.1');
  const cfgDir = path.join(dir, 'config');
  fs.mkdirSync(cfgDir);
  const [aIn, bIn, aProxy, bProxy, aOut, bOut] = await Promise.all([1, 2, 3, 4, 5, 6].map(() => freePort()));
  const apps = { a: await startHttpBackend('app-a'), b: await startHttpBackend('app-b') };
  t.onTestFinished(async () => {
    await Promise.all([apps.a.stop(), apps.b.stop()]);
  });
  const podsYaml = (bAnnotations: Record<string, string> = {}): string =>
    podYaml('a-1', 'a', { app: 'a' }, aIn as number, { 'otoroshi.io/sidecar-apikey': 'a-key' }) +
    podYaml('b-1', 'b', { app: 'b' }, bIn as number, bAnnotations);
  writeFiles(cfgDir, { 'pods.yaml': podsYaml(), 'b.yaml': descriptorB() });
  // Sidecars are known by their xDS client certificates; a gateway presents the test gateway token.
  const config = testConfig(cfgDir, pki.serverFlags);
  const server = await startServer(config, makeLogger(config.logLevel), undefined, {
    now: () => Date.now() - clock.offset,
  });
  const pods: Pod[] = [];
  t.onTestFinished(async () => {
    try {
      for (const p of pods) {
        assert.deepEqual(await p.envoy.rejected(), {}, `${p.name} rejected config: ${p.envoy.log().slice(-2000)}`);
      }
      const nacks = server.ads.statuses().flatMap((s) => Object.values(s.types).filter((x) => x.lastNack));
      assert.deepEqual(nacks, [], 'the server saw NACKs');
    } finally {
      for (const p of pods) await p.envoy.stop();
      await server.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
  const start = async (
    name: string,
    sa: string,
    app: HttpBackend,
    inbound: number,
    proxy: number,
    out: number,
  ): Promise<Pod> => {
    const xdsCert = pki.xdsClient(sa);
    const nodeId = `${name}-${process.pid}`;
    const bootstrap = sidecarBootstrapYaml({
      xdsAddress: `127.0.0.1:${server.xdsPort}`,
      namespace: 'shop',
      serviceAccount: sa,
      nodeId,
      appPort: app.port,
      inboundAddress: '127.0.0.1',
      inboundPort: inbound,
      outboundPort: out,
      proxyPort: proxy,
      adminPort: 0,
      tls: { caFile: pki.caRootFile, certFile: xdsCert.cert, keyFile: xdsCert.key },
    });
    const edir = path.join(dir, `envoy-${name}`);
    fs.mkdirSync(edir);
    const envoy = await EnvoyProcess.start(bin, bootstrap, { dir: edir });
    const pod: Pod = { name, sa, app, envoy, nodeId, inboundPort: inbound, proxyPort: proxy, xdsCert };
    pods.push(pod);
    await envoy.ready();
    await converged(server, pod);
    return pod;
  };
  const a = await start('a', 'a', apps.a, aIn as number, aProxy as number, aOut as number);
  const b = await start('b', 'b', apps.b, bIn as number, bProxy as number, bOut as number);
  return {
    server,
    dir,
    clock,
    a,
    b,
    caPem: pki.caPem,
    podsYaml,
    pki,
    pods,
    async update(files) {
      writeFiles(cfgDir, files);
      await server.rebuildNow();
      await converged(server, a);
      await converged(server, b);
    },
  };
}

/** A call from pod `from`'s application through its sidecar's explicit proxy port. */
function call(from: Pod, host: string, p: string, headers: Record<string, string> = {}) {
  return httpRequest({ port: from.proxyPort, host, path: p, headers });
}

/** Serial numbers of the SDS workload certificates a pod's Envoy uses for its identity (not its xDS client one). */
async function certSerials(pod: Pod, spiffeId: string): Promise<string[]> {
  const envoy = pod.envoy;
  const xds = new X509Certificate(fs.readFileSync(pod.xdsCert.cert)).serialNumber.toLowerCase();
  const j = JSON.parse(await envoy.get('/certs')) as {
    certificates?: { cert_chain?: { serial_number?: string; subject_alt_names?: { uri?: string }[] }[] }[];
  };
  const out: string[] = [];
  for (const c of j.certificates ?? [])
    for (const x of c.cert_chain ?? [])
      if (x.serial_number && x.subject_alt_names?.some((s) => s.uri === spiffeId))
        out.push(x.serial_number.toLowerCase());
  return [...new Set(out)].filter((x) => x !== xds).sort();
}

envoyTest(
  "mesh: A → B through both sidecars over mTLS; B sees A's SPIFFE id; B's policy applies; plain clients refused",
  async (t, bin) => {
    const mesh = await startMesh(t, bin);
    const { a, b } = mesh;

    // By mesh host and by descriptor host, as soon as both sidecars hold their certificates.
    const viaMesh = await eventually('a mesh call A → B', async () => {
      const r = await call(a, 'b.shop.otoroshi.mesh', '/public/hello');
      return r.status === 200 ? r : undefined;
    });
    assert.equal(viaMesh.status, 200);
    const seen = b.app.seen.at(-1);
    assert.ok(seen);
    assert.equal(seen.path, '/public/hello');
    assert.equal(seen.headers['x-oxds-peer-id'], spiffe('a'), "B's app sees A's SPIFFE id");
    assert.match(
      String(seen.headers['x-forwarded-client-cert']),
      new RegExp(`URI=${spiffe('a').replace(/[/.]/g, '\\$&')}`),
    );
    for (const host of [
      'b.oto.tools',
      'b.shop.svc.otoroshi.mesh',
      'b.global.otoroshi.mesh',
      'b.shop.svc.cluster.local',
    ]) {
      const r = await call(a, host, '/public/x');
      assert.equal(r.status, 200, `${host}: ${r.body}`);
    }
    assert.equal(a.app.seen.length, 0, 'nothing reached A');

    // A forged peer id from the caller is replaced by the verified one.
    await call(a, 'b.oto.tools', '/public/forged', { 'x-oxds-peer-id': 'spiffe://cluster.local/ns/x/sa/admin' });
    assert.equal(b.app.seen.at(-1)?.headers['x-oxds-peer-id'], spiffe('a'));

    // B's descriptor policy on mesh calls: the apikey A's sidecar adds passes; a wrong one is refused.
    const priv = await call(a, 'b.shop.otoroshi.mesh', '/private');
    assert.equal(priv.status, 200, priv.body);
    assert.equal(b.app.seen.at(-1)?.headers['otoroshi-client-id'], 'a-key-id');
    const wrong = await call(a, 'b.shop.otoroshi.mesh', '/private', {
      'Otoroshi-Client-Id': 'a-key-id',
      'Otoroshi-Client-Secret': 'not-the-secret',
    });
    assert.ok(wrong.status >= 400 && wrong.status < 500, `wrong secret: ${wrong.status} ${wrong.body}`);

    // A host B does not serve is not forwarded to B's app (its policy cannot be skipped by Host).
    const seenBefore = b.app.seen.length;
    const direct = await httpRequest({ port: a.proxyPort, host: 'unknown.example', path: '/' });
    assert.equal(direct.status, 404);
    assert.equal(b.app.seen.length, seenBefore);

    // A plain HTTP client and a TLS client without a certificate are refused at B's inbound.
    await assert.rejects(
      httpRequest({ port: b.inboundPort, host: 'b.oto.tools', path: '/public/plain', timeoutMs: 10_000 }),
      'plaintext is refused (STRICT)',
    );
    await assert.rejects(
      new Promise<void>((resolve, reject) => {
        const s = tls.connect({ host: '127.0.0.1', port: b.inboundPort, servername: 'b', rejectUnauthorized: false });
        s.on('secureConnect', () => {
          s.write('GET /public/nocert HTTP/1.1\r\nhost: b.oto.tools\r\n\r\n');
        });
        s.on('data', (d: Buffer) => {
          s.destroy();
          if (/^HTTP\/1\.1 200/.test(d.toString())) resolve();
          else reject(new Error(d.toString().slice(0, 100)));
        });
        s.on('error', reject);
        s.on('close', () => reject(new Error('closed')));
      }),
      'a TLS client without a certificate is refused',
    );
    assert.equal(b.app.seen.filter((s) => /plain|nocert/.test(s.path)).length, 0);

    // ipFiltering of B's descriptor applies to mesh calls (the caller is A's sidecar on 127.0.0.1).
    await mesh.update({ 'b.yaml': descriptorB('  ipFiltering: {blacklist: [127.0.0.1]}\n') });
    const blocked = await call(a, 'b.oto.tools', '/public/blocked');
    assert.equal(blocked.status, 403, blocked.body);
    await mesh.update({ 'b.yaml': descriptorB() });
    assert.equal((await call(a, 'b.oto.tools', '/public/again')).status, 200);

    // Quota: a fresh key (same ApiKey object, new client id) with a daily quota of 2: the third call is refused.
    const quota = descriptorB().replace('a-key-id', 'a-quota-id').replace('dailyQuota: 1000', 'dailyQuota: 2');
    await mesh.update({ 'b.yaml': quota });
    const statuses = [];
    for (let i = 0; i < 3; i++) statuses.push((await call(a, 'b.oto.tools', `/private/q${i}`)).status);
    assert.deepEqual(statuses, [200, 200, 429]);

    // PERMISSIVE (annotation on B's pods, for migration): a plain client reaches B, with no peer id.
    await mesh.update({
      'b.yaml': descriptorB(),
      'pods.yaml': mesh.podsYaml({ 'otoroshi.io/sidecar-mtls-mode': 'PERMISSIVE' }),
    });
    const plain = await httpRequest({
      port: b.inboundPort,
      host: 'b.oto.tools',
      path: '/public/plain-permissive',
      headers: { 'x-oxds-peer-id': 'spiffe://cluster.local/ns/x/sa/forged' },
    });
    assert.equal(plain.status, 200, plain.body);
    assert.equal(b.app.seen.at(-1)?.headers['x-oxds-peer-id'], undefined, 'no peer id without a certificate');
    const stillMtls = await call(a, 'b.shop.otoroshi.mesh', '/public/mtls-permissive');
    assert.equal(stillMtls.status, 200);
    assert.equal(b.app.seen.at(-1)?.headers['x-oxds-peer-id'], spiffe('a'));

    // PERMISSIVE per namespace (a Namespace annotation; precedence: the Pod's annotation, then its
    // Namespace's, then STRICT), the way Istio's namespace-wide PeerAuthentication is used for migration.
    const plainB = (p: string) => httpRequest({ port: b.inboundPort, host: 'b.oto.tools', path: p });
    const shopNs = (mode: string) =>
      'apiVersion: v1\nkind: Namespace\n' +
      `metadata: {name: shop, annotations: {otoroshi.io/sidecar-mtls-mode: ${mode}}}\n`;
    await mesh.update({ 'pods.yaml': mesh.podsYaml(), 'ns.yaml': shopNs('PERMISSIVE') });
    assert.equal((await plainB('/public/ns-permissive')).status, 200);
    assert.equal(b.app.seen.at(-1)?.headers['x-oxds-peer-id'], undefined);
    // The workload's own annotation wins over its namespace's.
    await mesh.update({ 'pods.yaml': mesh.podsYaml({ 'otoroshi.io/sidecar-mtls-mode': 'STRICT' }) });
    await assert.rejects(plainB('/public/pod-strict'), 'a STRICT pod in a PERMISSIVE namespace refuses plaintext');
    // The namespace back to STRICT (its annotation), the pods without one: refused again.
    await mesh.update({ 'pods.yaml': mesh.podsYaml(), 'ns.yaml': shopNs('STRICT') });
    await assert.rejects(plainB('/public/ns-strict'), 'a STRICT namespace refuses plaintext');
    assert.equal((await call(a, 'b.shop.otoroshi.mesh', '/public/ns-strict-mtls')).status, 200);

    // A gateway on the same control plane at the same time: the gateway's listeners (ports from the
    // server's flags), while each sidecar keeps its own (ports from its bootstrap).
    const gwCert = mesh.pki.xdsClient('gateway');
    const gwId = `gw-mesh-${process.pid}`;
    const gwDir = path.join(mesh.dir, 'envoy-gateway');
    fs.mkdirSync(gwDir);
    const gw = await EnvoyProcess.start(
      bin,
      gatewayBootstrapYaml({
        xdsAddress: `127.0.0.1:${mesh.server.xdsPort}`,
        nodeId: gwId,
        nodeCluster: 'otoroshi-gateway',
        adminAddress: '127.0.0.1',
        adminPort: 0,
        delta: true,
        token: TEST_GATEWAY_TOKEN,
        tls: { caFile: mesh.pki.caRootFile, certFile: gwCert.cert, keyFile: gwCert.key },
      }),
      { dir: gwDir },
    );
    mesh.pods.push({ ...a, name: 'gateway', envoy: gw, nodeId: gwId });
    await gw.ready();
    await eventually('the gateway to ACK', () => (nodeConverged(mesh.server, gwId) ? true : undefined));
    const names = async (e: EnvoyProcess): Promise<string[]> =>
      (
        (JSON.parse(await e.get('/listeners?format=json')) as { listener_statuses?: { name: string }[] })
          .listener_statuses ?? []
      )
        .map((l) => l.name)
        .sort();
    assert.deepEqual(
      await eventually('gateway listeners', async () => ((await names(gw)).length > 0 ? names(gw) : undefined)),
      ['oxds-http'],
    );
    assert.deepEqual(await names(a.envoy), ['oxds-sidecar-inbound', 'oxds-sidecar-outbound', 'oxds-sidecar-proxy']);
    assert.equal((await call(a, 'b.oto.tools', '/public/with-gateway')).status, 200);
  },
  { timeout: 240_000 },
);

envoyTest(
  "mesh: workload certificates rotate without a failed call; a node cannot obtain another workload's certificate",
  async (t, bin) => {
    const mesh = await startMesh(t, bin);
    const { a, b } = mesh;
    await eventually('a mesh call A → B', async () =>
      (await call(a, 'b.shop.otoroshi.mesh', '/public/r')).status === 200 ? true : undefined,
    );
    const before = { a: await certSerials(a, spiffe('a')), b: await certSerials(b, spiffe('b')) };
    assert.equal(before.a.length, 1, 'A holds its workload certificate');
    assert.equal(before.b.length, 1, 'B holds its workload certificate');
    // Rotated: every listener and cluster of the pod uses one certificate, a new one.
    const rotated = (now: string[], was: string[]): boolean => now.length === 1 && now[0] !== was[0];
    // The clock is set right: both certificates are due, the server mints new ones and pushes them.
    mesh.clock.offset = 0;
    const rebuilt = mesh.server.rebuildNow();
    let calls = 0;
    const failures: string[] = [];

    await eventually(
      'both sidecars to hold a new workload certificate',
      async () => {
        const r = await call(a, 'b.shop.otoroshi.mesh', `/public/during-${calls++}`);
        if (r.status !== 200) failures.push(`${r.status} ${r.body}`);
        const ra = rotated(await certSerials(a, spiffe('a')), before.a);
        const rb = rotated(await certSerials(b, spiffe('b')), before.b);
        return ra && rb ? true : undefined;
      },
      60_000,
    );
    await rebuilt;
    for (let i = 0; i < 5; i++) {
      const r = await call(a, 'b.shop.otoroshi.mesh', `/public/after-${i}`);
      if (r.status !== 200) failures.push(`${r.status} ${r.body}`);
    }
    assert.deepEqual(failures, [], `no call failed across the rotation (${calls} calls during it)`);

    // A's xDS identity asks for B's certificate: it gets its own and the trust bundle, never B's.
    const creds = grpc.credentials.createSsl(
      Buffer.from(mesh.caPem),
      fs.readFileSync(a.xdsCert.key),
      fs.readFileSync(a.xdsCert.cert),
    );
    const c = new AdsClient(mesh.server.xdsPort, { node: { id: 'thief' }, credentials: creds });
    t.onTestFinished(() => c.close());
    c.request(TYPE_URLS.secret, [spiffe('b'), spiffe('a'), 'otoroshi-ca-bundle']);
    const r = await c.nextSotw(10_000);
    const names = responseNames(r).sort();
    assert.deepEqual(names, ['otoroshi-ca-bundle', spiffe('a')].sort());
  },
  { timeout: 240_000 },
);
