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
import * as grpc from '@grpc/grpc-js';
import type { TestContext } from 'node:test';
import { CertificateAuthority } from '../../src/ca/ca.js';
import { sidecarBootstrapYaml } from '../../src/envoy/bootstrap.js';
import { startServer, makeLogger, type RunningServer } from '../../src/main.js';
import {
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

const HOUR = 3_600_000;
const TD = 'cluster.local';
const spiffe = (sa: string): string => `spiffe://${TD}/ns/shop/sa/${sa}`;

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

function podYaml(
  name: string,
  sa: string,
  labels: Record<string, string>,
  inbound: number,
  extra: Record<string, string> = {},
): string {
  const ann = { 'otoroshi.io/sidecar-inbound-port': String(inbound), ...extra };
  return `apiVersion: v1
kind: Pod
metadata:
  name: ${name}
  namespace: shop
  labels: ${JSON.stringify({ ...labels, 'otoroshi.io/sidecar': 'inject' })}
  annotations: ${JSON.stringify(ann)}
spec: {serviceAccountName: ${sa}, containers: [{name: app, image: app}]}
status: {podIP: 127.0.0.1}
---
`;
}

function descriptorB(extra = ''): string {
  return `apiVersion: v1
kind: Service
metadata: {name: b, namespace: shop}
spec: {selector: {app: b}, clusterIP: 10.96.0.10, ports: [{name: http, port: 80, targetPort: 8080}]}
---
apiVersion: proxy.otoroshi.io/v1alpha1
kind: ServiceDescriptor
metadata: {name: b, namespace: shop, annotations: {otoroshi.io/id: b-svc}}
spec:
  forceHttps: false
  hosts: [b.oto.tools]
  publicPatterns: ['/public.*']
  targets: {serviceName: b, servicePort: 80}
${extra}---
apiVersion: proxy.otoroshi.io/v1alpha1
kind: ApiKey
metadata: {name: a-key, namespace: shop}
spec:
  clientId: a-key-id
  clientSecret: a-key-secret
  authorizedEntities: [service_b-svc]
  dailyQuota: 1000
`;
}

interface Mesh {
  server: RunningServer;
  dir: string;
  ca: CertificateAuthority;
  clock: { offset: number };
  a: Pod;
  b: Pod;
  caPem: string;
  podsYaml(bAnnotations?: Record<string, string>): string;
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
  const ca = CertificateAuthority.create({ now: issuedAt });
  const m = ca.material();
  const f = (n: string, pem: string): string => {
    const p = path.join(dir, n);
    fs.writeFileSync(p, pem, { mode: 0o600 });
    return p;
  };
  const serverCert = ca.issueSync({ hosts: ['127.0.0.1'], duration: 48 * HOUR }, { now: issuedAt });
  assert.ok(serverCert.ok);
  const xdsClient = (sa: string): { cert: string; key: string } => {
    const r = ca.workload(spiffe(sa), { now: issuedAt, ttlMs: 48 * HOUR });
    assert.ok(r.ok);
    return { cert: f(`${sa}-xds.crt`, r.cert.chainPem), key: f(`${sa}-xds.key`, r.cert.keyPem) };
  };
  const cfgDir = path.join(dir, 'config');
  fs.mkdirSync(cfgDir);
  const [aIn, bIn, aProxy, bProxy, aOut, bOut] = await Promise.all([1, 2, 3, 4, 5, 6].map(() => freePort()));
  const apps = { a: await startHttpBackend('app-a'), b: await startHttpBackend('app-b') };
  t.after(() => Promise.all([apps.a.stop(), apps.b.stop()]));
  const podsYaml = (bAnnotations: Record<string, string> = {}): string =>
    podYaml('a-1', 'a', { app: 'a' }, aIn as number, { 'otoroshi.io/sidecar-apikey': 'a-key' }) +
    podYaml('b-1', 'b', { app: 'b' }, bIn as number, bAnnotations);
  writeFiles(cfgDir, { 'pods.yaml': podsYaml(), 'b.yaml': descriptorB() });
  const config = testConfig(cfgDir, {
    caCert: f('ca-int.crt', m.intermediate.certPem),
    caKey: f('ca-int.key', m.intermediate.keyPem),
    caRootCert: f('ca-root.crt', m.root.certPem),
    xdsTlsCert: f('xds.crt', serverCert.cert.chainPem),
    xdsTlsKey: f('xds.key', serverCert.cert.keyPem),
    xdsClientCa: path.join(dir, 'ca-root.crt'),
    // Node identities come from xDS client certificates only.
    gatewayToken: undefined,
  });
  const server = await startServer(config, makeLogger(config.logLevel), undefined, {
    now: () => Date.now() - clock.offset,
  });
  const pods: Pod[] = [];
  t.after(async () => {
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
    const xdsCert = xdsClient(sa);
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
      tls: { caFile: path.join(dir, 'ca-root.crt'), certFile: xdsCert.cert, keyFile: xdsCert.key },
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
    ca,
    clock,
    a,
    b,
    caPem: m.root.certPem,
    podsYaml,
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

async function certSerial(envoy: EnvoyProcess, spiffeId: string): Promise<string | undefined> {
  const j = JSON.parse(await envoy.get('/certs')) as {
    certificates?: { cert_chain?: { serial_number?: string; subject_alt_names?: { uri?: string }[] }[] }[];
  };
  for (const c of j.certificates ?? [])
    for (const x of c.cert_chain ?? [])
      if (x.subject_alt_names?.some((s) => s.uri === spiffeId)) return x.serial_number;
  return undefined;
}

envoyTest(
  "mesh: A calls B through both sidecars over mTLS; B sees A's SPIFFE id; B's policy applies; plain clients are refused",
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
    const before = { a: await certSerial(a.envoy, spiffe('a')), b: await certSerial(b.envoy, spiffe('b')) };
    assert.ok(before.a && before.b, 'both sidecars hold their workload certificate');
    // The clock is set right: both certificates are due, the server mints new ones and pushes them.
    mesh.clock.offset = 0;
    const rebuilt = mesh.server.rebuildNow();
    let calls = 0;
    const failures: string[] = [];
    let after: { a?: string; b?: string } = {};
    await eventually(
      'both sidecars to hold a new workload certificate',
      async () => {
        const r = await call(a, 'b.shop.otoroshi.mesh', `/public/during-${calls++}`);
        if (r.status !== 200) failures.push(`${r.status} ${r.body}`);
        after = { a: await certSerial(a.envoy, spiffe('a')), b: await certSerial(b.envoy, spiffe('b')) };
        return after.a !== undefined && after.b !== undefined && after.a !== before.a && after.b !== before.b
          ? true
          : undefined;
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
    t.after(() => c.close());
    c.request(TYPE_URLS.secret, [spiffe('b'), spiffe('a'), 'otoroshi-ca-bundle']);
    const r = await c.nextSotw(10_000);
    const names = responseNames(r).sort();
    assert.deepEqual(names, ['otoroshi-ca-bundle', spiffe('a')].sort());
  },
  { timeout: 240_000 },
);
