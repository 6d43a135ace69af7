// The sidecar mesh with real interception: each "pod" is its own network namespace (ip netns + a
// veth on a test bridge), holding its app (on the pod's 127.0.0.1 only) and a real Envoy sidecar;
// iptables REDIRECT in the pod sends the app's outbound TCP to the sidecar's outbound listener,
// except the sidecar's own (uid 1337), the sidecars' inbound port and the control plane (what the
// injected init container does). The app of A calls B's address with B's mesh host or descriptor
// host, unaware of the mesh: A-sidecar → mTLS → B-sidecar → B. A third namespace is a host outside
// the mesh (HTTP and a TCP echo): reached through A's sidecar under the outbound policy allow-any,
// refused under registry-only. Needs root, `ip`, `iptables` and `setpriv`: skipped otherwise
// (never in CI).
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomInt } from 'node:crypto';
import { test, type TestContext } from 'vitest';
import { sidecarBootstrapYaml } from '../../src/envoy/bootstrap.js';
import { startServer, makeLogger } from '../../src/main.js';
import {
  EnvoyProcess,
  eventually,
  findEnvoy,
  httpRequest,
  nodeConverged,
  testConfig,
  writeFiles,
} from '../helpers/envoy.js';
import { descriptorB, meshPki, meshSpiffe, podYaml } from '../helpers/mesh.js';

const INBOUND = 15006;
const OUTBOUND = 15001;
/** The sidecar's uid, exempt from interception (what the injected init container does). */
const ENVOY_UID = 1337;

function missing(): string | undefined {
  if (process.getuid?.() !== 0) return 'not root (network namespaces need root)';
  for (const [bin, arg] of [
    ['ip', '-V'],
    ['iptables', '-V'],
    ['curl', '--version'],
    ['setpriv', '--version'],
  ] as const)
    if (spawnSync(bin, [arg], { stdio: 'ignore' }).status !== 0) return `${bin} is not installed`;
  const f = findEnvoy();
  return 'missing' in f ? `real Envoy: ${f.missing}` : undefined;
}

const sh = (cmd: string, args: string[]): string => execFileSync(cmd, args, { encoding: 'utf8' });

/** A JSON echo app (path and headers), listening on 127.0.0.1:8080 inside its namespace. */
const APP = `import http from 'node:http';
http.createServer((req, res) => {
  res.setHeader('content-type', 'application/json');
  res.end(JSON.stringify({ path: req.url, headers: req.headers }));
}).listen(8080, '127.0.0.1', () => process.stdout.write('ready\\n'));
`;

/** A host outside the mesh (no sidecar): HTTP on :8080 and a line-echo TCP server on :7000, on all addresses. */
const EXTERNAL = `import http from 'node:http';
import net from 'node:net';
http.createServer((req, res) => res.end('external ' + req.headers.host + ' ' + req.url)).listen(8080, () =>
  net.createServer((s) => s.on('data', (d) => s.write('echo ' + d)))
    .listen(7000, () => process.stdout.write('ready\\n')));
`;

/** A raw TCP client run inside a pod (its app's view): sends one line, prints the first answer. */
const TCP_CLIENT = `import net from 'node:net';
const [host, port] = process.argv.slice(2);
const s = net.connect(Number(port), host, () => s.write('hello\\n'));
const done = (out) => { process.stdout.write(out); process.exit(0); };
s.setTimeout(10000, () => done('timeout'));
s.on('data', (d) => done(String(d)));
s.on('error', (e) => done('error ' + e.code));
s.on('close', () => done('closed'));
`;

interface NetPod {
  ns: string;
  ip: string;
  envoy: EnvoyProcess;
  nodeId: string;
}

/** curl from inside a pod's namespace (its app's view): status and body. Asynchronous: the server runs here. */
function curlFrom(pod: NetPod, url: string, host: string): Promise<{ status: number; body: string }> {
  const args = ['netns', 'exec', pod.ns, 'curl', '-s', '-m', '10', '-H', `Host: ${host}`, '-w', '\n%{http_code}', url];
  return new Promise((resolve, reject) => {
    const c = spawn('ip', args, { stdio: ['ignore', 'pipe', 'ignore'] });
    let out = '';
    c.stdout.on('data', (d: Buffer) => (out += d.toString()));
    c.once('error', reject);
    c.once('close', () => {
      const cut = out.lastIndexOf('\n');
      resolve({ status: Number(out.slice(cut + 1)), body: out.slice(0, cut) });
    });
  });
}

/** A raw TCP exchange from inside a pod: what came back (`echo hello`, or `closed` / `error …` / `timeout`). */
function tcpFrom(pod: { ns: string }, script: string, host: string, port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const c = spawn('ip', ['netns', 'exec', pod.ns, process.execPath, script, host, String(port)], {
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    let out = '';
    c.stdout.on('data', (d: Buffer) => (out += d.toString()));
    c.once('error', reject);
    c.once('close', () => resolve(out.trim()));
  });
}

async function meshInNamespaces(t: TestContext, bin: string, extraConfig: Record<string, string> = {}) {
  const id = `${process.pid % 100000}${randomInt(100)}`;
  const octet = randomInt(1, 250);
  const subnet = `10.213.${octet}`;
  assert.ok(!sh('ip', ['-4', 'route']).includes(`${subnet}.`), `subnet ${subnet}.0/24 already in use`);
  const bridge = `oxsb${id}`.slice(0, 15);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'oxds-meshns-'));
  fs.chmodSync(dir, 0o755); // the sidecars run as ENVOY_UID
  const children: ChildProcess[] = [];
  const envoys: EnvoyProcess[] = [];
  const namespaces: string[] = [];
  let stopServer: () => Promise<void> = async () => undefined;
  // One hook, registered first: runs even if the set-up below fails half way.
  t.onTestFinished(async () => {
    try {
      for (const e of envoys) assert.deepEqual(await e.rejected(), {}, `rejected config: ${e.log().slice(-2000)}`);
    } finally {
      for (const e of envoys) await e.stop();
      for (const c of children) c.kill('SIGKILL');
      await stopServer();
      for (const ns of namespaces) spawnSync('ip', ['netns', 'del', ns]);
      spawnSync('ip', ['link', 'del', bridge]);
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
  sh('ip', ['link', 'add', bridge, 'type', 'bridge']);
  sh('ip', ['addr', 'add', `${subnet}.1/24`, 'dev', bridge]);
  sh('ip', ['link', 'set', bridge, 'up']);
  const hostIp = `${subnet}.1`;
  const addPod = (name: string, n: number): { ns: string; ip: string } => {
    const ns = `oxsc-${id}-${name}`;
    const ip = `${subnet}.${n}`;
    const veth = `oxv${id}${name}`.slice(0, 15);
    sh('ip', ['netns', 'add', ns]);
    namespaces.push(ns);
    sh('ip', ['link', 'add', veth, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns]);
    sh('ip', ['link', 'set', veth, 'master', bridge, 'up']);
    sh('ip', ['-n', ns, 'addr', 'add', `${ip}/24`, 'dev', 'eth0']);
    sh('ip', ['-n', ns, 'link', 'set', 'eth0', 'up']);
    sh('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
    sh('ip', ['-n', ns, 'route', 'add', 'default', 'via', hostIp]);
    const ipt = (...args: string[]): string => sh('ip', ['netns', 'exec', ns, 'iptables', '-t', 'nat', ...args]);
    // Outbound TCP of the pod → the sidecar; not the sidecar's own (uid 1337, as the injected rules), not
    // the sidecars' inbound port, not the control plane.
    ipt('-A', 'OUTPUT', '-p', 'tcp', '-m', 'owner', '--uid-owner', String(ENVOY_UID), '-j', 'RETURN');
    ipt('-A', 'OUTPUT', '-p', 'tcp', '-d', `${subnet}.0/24`, '--dport', String(INBOUND), '-j', 'RETURN');
    ipt('-A', 'OUTPUT', '-p', 'tcp', '-d', hostIp, '-j', 'RETURN');
    ipt('-A', 'OUTPUT', '-p', 'tcp', '-d', `${subnet}.0/24`, '-j', 'REDIRECT', '--to-ports', String(OUTBOUND));
    return { ns, ip };
  };
  const a = addPod('a', 2);
  const b = addPod('b', 3);
  const ext = addPod('ext', 4);

  const pki = meshPki(dir, Date.now() - 3_600_000, hostIp);
  const cfgDir = path.join(dir, 'config');
  fs.mkdirSync(cfgDir);
  writeFiles(cfgDir, {
    'pods.yaml':
      podYaml('a-1', 'a', { app: 'a' }, INBOUND, { 'otoroshi.io/sidecar-apikey': 'a-key' }, a.ip) +
      podYaml('b-1', 'b', { app: 'b' }, INBOUND, {}, b.ip),
    'b.yaml': descriptorB(),
  });
  const config = testConfig(cfgDir, { host: hostIp, ...pki.serverFlags, gatewayToken: undefined, ...extraConfig });
  const server = await startServer(config, makeLogger(config.logLevel));
  stopServer = () => server.stop();

  const appFile = path.join(dir, 'app.mjs');
  fs.writeFileSync(appFile, APP);
  const externalFile = path.join(dir, 'external.mjs');
  fs.writeFileSync(externalFile, EXTERNAL);
  const tcpClient = path.join(dir, 'tcp-client.mjs');
  fs.writeFileSync(tcpClient, TCP_CLIENT);
  const external = spawn('ip', ['netns', 'exec', ext.ns, process.execPath, externalFile], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  children.push(external);
  await new Promise<void>((resolve, reject) => {
    external.stdout?.once('data', () => resolve());
    external.once('exit', (code) => reject(new Error(`external app exited ${String(code)}`)));
  });
  const start = async (name: string, p: { ns: string; ip: string }, sa: string): Promise<NetPod> => {
    const app = spawn('ip', ['netns', 'exec', p.ns, process.execPath, appFile], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    children.push(app);
    await new Promise<void>((resolve, reject) => {
      app.stdout?.once('data', () => resolve());
      app.once('exit', (code) => reject(new Error(`app ${name} exited ${String(code)}`)));
    });
    const wrapper = path.join(dir, `envoy-${name}.sh`);
    const asEnvoy = `setpriv --reuid=${ENVOY_UID} --regid=${ENVOY_UID} --clear-groups`;
    fs.writeFileSync(wrapper, `#!/bin/sh\nexec ip netns exec ${p.ns} ${asEnvoy} ${bin} "$@"\n`, { mode: 0o755 });
    const xds = pki.xdsClient(sa);
    const nodeId = `${name}-${id}`;
    const bootstrap = sidecarBootstrapYaml({
      xdsAddress: `${hostIp}:${server.xdsPort}`,
      namespace: 'shop',
      serviceAccount: sa,
      nodeId,
      appPort: 8080,
      adminAddress: p.ip,
      adminPort: 15000,
      tls: { caFile: pki.caRootFile, certFile: xds.cert, keyFile: xds.key },
    });
    const edir = path.join(dir, `envoy-${name}`);
    fs.mkdirSync(edir, { mode: 0o777 });
    fs.chmodSync(edir, 0o777);
    const envoy = await EnvoyProcess.start(wrapper, bootstrap, { dir: edir });
    envoys.push(envoy);
    await envoy.ready();
    await eventually(`${nodeId} to ACK its snapshot`, () => (nodeConverged(server, nodeId) ? true : undefined));
    return { ...p, envoy, nodeId };
  };
  return { a: await start('a', a, 'a'), b: await start('b', b, 'b'), ext, tcpClient, server };
}

const why = missing();
if (why !== undefined && process.env.CI !== 'true') console.log(`mesh-netns: skipped: ${why}`);
test.skipIf(why !== undefined && process.env.CI !== 'true')(
  'mesh in network namespaces: intercepted calls go A-sidecar → mTLS → B-sidecar → B; plain clients are refused',
  { timeout: 180_000 },
  async (t) => {
    assert.equal(why, undefined, `CI=true: ${String(why)}`);
    const f = findEnvoy();
    assert.ok(!('missing' in f));
    const { a, b } = await meshInNamespaces(t, f.bin);
    // A's app calls B's pod address on port 80: intercepted, routed by Host, over mTLS to B's sidecar.
    let last = '';
    const byMesh = await eventually('an intercepted mesh call A → B', async () => {
      const r = await curlFrom(a, `http://${b.ip}/public/netns`, 'b.shop.otoroshi.mesh');
      last = `${r.status} ${r.body}`;
      return r.status === 200 ? r : undefined;
    }).catch((e: unknown) => assert.fail(`${(e as Error).message}; last: ${last}`));
    const seen = JSON.parse(byMesh.body) as { path: string; headers: Record<string, string> };
    assert.equal(seen.path, '/public/netns');
    assert.equal(seen.headers['x-oxds-peer-id'], meshSpiffe('a'), "B's app sees A's SPIFFE id");
    const byHost = await curlFrom(a, `http://${b.ip}:8080/public/host`, 'b.oto.tools');
    assert.equal(byHost.status, 200, byHost.body);
    // B's policy on the intercepted call: the apikey A's sidecar adds is accepted.
    const priv = await curlFrom(a, `http://${b.ip}/private`, 'b.oto.tools');
    assert.equal(priv.status, 200, priv.body);
    assert.equal(
      (JSON.parse(priv.body) as { headers: Record<string, string> }).headers['otoroshi-client-id'],
      'a-key-id',
    );
    // From outside the pods: B's inbound refuses plaintext; B's app is not reachable at all.
    await assert.rejects(httpRequest({ address: b.ip, port: INBOUND, host: 'b.oto.tools', path: '/public/plain' }));
    await assert.rejects(httpRequest({ address: b.ip, port: 8080, host: 'b.oto.tools', path: '/public/app' }));
  },
);

test.skipIf(why !== undefined && process.env.CI !== 'true')(
  'mesh in network namespaces: outbound policy allow-any (the default) passes HTTP and non-HTTP TCP to a ' +
    'host outside the mesh through to the address dialled',
  { timeout: 300_000 },
  async (t) => {
    assert.equal(why, undefined, `CI=true: ${String(why)}`);
    const f = findEnvoy();
    assert.ok(!('missing' in f));
    // allow-any (the default): A's app reaches a host outside the mesh, intercepted by its sidecar.
    const any = await meshInNamespaces(t, f.bin);
    let last = '';
    const http = await eventually('an intercepted call to a host outside the mesh', async () => {
      const r = await curlFrom(any.a, `http://${any.ext.ip}:8080/out`, 'ext.example.com');
      last = `${r.status} ${r.body}`;
      return r.status === 200 ? r : undefined;
    }).catch((e: unknown) => assert.fail(`${(e as Error).message}; last: ${last}`));
    assert.equal(http.body, 'external ext.example.com /out');
    assert.equal(await tcpFrom(any.a, any.tcpClient, any.ext.ip, 7000), 'echo hello', 'non-HTTP TCP passes through');
    // Known mesh hosts keep going through mTLS to B (not to the address dialled).
    const mesh = await curlFrom(any.a, `http://${any.ext.ip}:8080/public/x`, 'b.shop.otoroshi.mesh');
    assert.equal(mesh.status, 200, mesh.body);
    assert.equal(
      (JSON.parse(mesh.body) as { headers: Record<string, string> }).headers['x-oxds-peer-id'],
      meshSpiffe('a'),
    );
  },
);

test.skipIf(why !== undefined && process.env.CI !== 'true')(
  'mesh in network namespaces: --mesh-outbound-policy registry-only refuses unknown destinations ' +
    '(HTTP 404, TCP closed)',
  { timeout: 300_000 },
  async (t) => {
    assert.equal(why, undefined, `CI=true: ${String(why)}`);
    const f = findEnvoy();
    assert.ok(!('missing' in f));
    const only = await meshInNamespaces(t, f.bin, { meshOutboundPolicy: 'registry-only' });
    // The mesh works (the sidecars are up and routing) ...
    let last = '';
    await eventually('an intercepted mesh call A → B', async () => {
      const r = await curlFrom(only.a, `http://${only.b.ip}/public/ok`, 'b.shop.otoroshi.mesh');
      last = `${r.status} ${r.body}`;
      return r.status === 200 ? r : undefined;
    }).catch((e: unknown) => assert.fail(`${(e as Error).message}; last: ${last}`));
    // ... and what it does not know is refused (the same calls pass under allow-any, test above).
    const http = await curlFrom(only.a, `http://${only.ext.ip}:8080/out`, 'ext.example.com');
    assert.equal(http.status, 404, http.body);
    assert.ok(!http.body.includes('external'));
    assert.match(await tcpFrom(only.a, only.tcpClient, only.ext.ip, 7000), /^(closed|error )/);
  },
);
