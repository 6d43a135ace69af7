// The injected init container's interception script on real iptables, in a network namespace of
// our own (a "pod" joined to this host by a veth pair): outbound TCP lands on the outbound port
// unless it comes from Envoy's uid or goes to an excluded port; inbound TCP lands on the inbound
// port unless the port is excluded; running the script twice leaves the same rules.
// Needs root, `ip netns` and iptables; elsewhere skipped with the reason (CI runs as root).
import { afterAll, beforeAll, test } from 'vitest';
import assert from 'node:assert/strict';
import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import { interceptionScript, SIDECAR_UID } from '../src/k8s/inject-iptables.js';

const id = process.pid % 200;
const NS = `oxds-ipt-${process.pid}`;
const HOST_IF = `oxh${process.pid % 100000}`;
const POD_IF = `oxp${process.pid % 100000}`;
const HOST_IP = `10.253.${id}.1`;
const POD_IP = `10.253.${id}.2`;
const EXCLUDED_OUT = 18000;
const PROBE = 9090;

function why(): string | undefined {
  if (process.getuid?.() !== 0) return 'not root: network namespace interception test skipped';
  for (const [cmd, args] of [
    ['ip', ['netns', 'list']],
    ['iptables', ['--version']],
    ['setpriv', ['--version']],
  ] as const)
    if (spawnSync(cmd, args, { stdio: 'ignore' }).status !== 0) return `${cmd} unavailable: interception test skipped`;
  return undefined;
}
const skip = why();
if (skip !== undefined && process.env['CI'] === 'true') throw new Error(`CI=true: ${skip}`);

const sh = (cmd: string, args: readonly string[]): Promise<{ code: number; out: string }> =>
  new Promise((resolve) =>
    execFile(cmd, args, { timeout: 30_000 }, (err, stdout, stderr) =>
      resolve({ code: err ? 1 : 0, out: String(stdout) + String(stderr) }),
    ),
  );
const ok = async (cmd: string, ...args: string[]): Promise<string> => {
  const r = await sh(cmd, args);
  assert.equal(r.code, 0, `${cmd} ${args.join(' ')}: ${r.out}`);
  return r.out;
};

/** A node TCP server inside the namespace on `port` answering `name` and closing. */
const SERVER = (port: number, name: string): string =>
  `require('net').createServer((s)=>s.end(${JSON.stringify(name)})).listen(${port}, '0.0.0.0', ()=>console.log('up'))`;
const CLIENT = (host: string, port: number): string =>
  `const s=require('net').connect(${port}, ${JSON.stringify(host)});let d='';` +
  `s.on('data',(x)=>d+=x);s.on('end',()=>console.log(d));s.on('error',(e)=>console.log('error:'+e.code));`;

const children: ChildProcess[] = [];
const hostServers: net.Server[] = [];

async function nsServer(port: number, name: string): Promise<void> {
  const c = spawn('ip', ['netns', 'exec', NS, process.execPath, '-e', SERVER(port, name)], { stdio: 'pipe' });
  children.push(c);
  await new Promise<void>((resolve, reject) => {
    c.stdout.once('data', () => resolve());
    c.once('exit', (code) => reject(new Error(`server ${name} exited ${code}`)));
  });
}

async function hostServer(port: number, name: string): Promise<void> {
  const s = net.createServer((c) => c.end(name));
  hostServers.push(s);
  await new Promise<void>((resolve) => s.listen(port, HOST_IP, () => resolve()));
}

/** What a client inside the namespace (as `uid`) reads from host:port. */
async function fromPod(host: string, port: number, uid = 0): Promise<string> {
  const cred = uid === 0 ? [] : ['setpriv', `--reuid=${uid}`, `--regid=${uid}`, '--clear-groups'];
  return (await ok('ip', 'netns', 'exec', NS, ...cred, process.execPath, '-e', CLIENT(host, port))).trim();
}

const script = interceptionScript({
  inboundPort: 15006,
  outboundPort: 15001,
  uid: SIDECAR_UID,
  excludeOutboundPorts: [EXCLUDED_OUT],
  excludeInboundPorts: [PROBE],
});

beforeAll(async () => {
  if (skip) return;
  await ok('ip', 'netns', 'add', NS);
  await ok('ip', 'link', 'add', HOST_IF, 'type', 'veth', 'peer', 'name', POD_IF);
  await ok('ip', 'link', 'set', POD_IF, 'netns', NS);
  await ok('ip', 'addr', 'add', `${HOST_IP}/30`, 'dev', HOST_IF);
  await ok('ip', 'link', 'set', HOST_IF, 'up');
  await ok('ip', 'netns', 'exec', NS, 'ip', 'addr', 'add', `${POD_IP}/30`, 'dev', POD_IF);
  await ok('ip', 'netns', 'exec', NS, 'ip', 'link', 'set', POD_IF, 'up');
  await ok('ip', 'netns', 'exec', NS, 'ip', 'link', 'set', 'lo', 'up');
  await nsServer(15001, 'outbound-listener');
  await nsServer(15006, 'inbound-listener');
  await nsServer(8080, 'app-direct');
  await nsServer(PROBE, 'probe-port');
  await hostServer(9999, 'host-direct');
  await hostServer(EXCLUDED_OUT, 'control-plane-direct');
});

afterAll(async () => {
  for (const c of children) c.kill('SIGKILL');
  for (const s of hostServers) await new Promise<void>((r) => s.close(() => r()));
  if (!skip) {
    await sh('ip', ['link', 'del', HOST_IF]);
    await sh('ip', ['netns', 'del', NS]);
  }
});

test.skipIf(skip)('interception in a real network namespace: before the rules every connection is direct', async () => {
  assert.equal(await fromPod(HOST_IP, 9999), 'host-direct');
  assert.equal(await fromPod(POD_IP, 8080), 'app-direct');
});

test.skipIf(skip)(
  "interception in a real network namespace: outbound → 15001 except Envoy's uid and the control plane port; " +
    'inbound → ' +
    '15006 except the probe port; idempotent',
  async () => {
    await ok('ip', 'netns', 'exec', NS, 'sh', '-c', script);
    const rules = await ok('ip', 'netns', 'exec', NS, 'iptables', '-w', '-t', 'nat', '-S');
    // outbound
    assert.equal(await fromPod(HOST_IP, 9999), 'outbound-listener');
    assert.equal(
      await fromPod(HOST_IP, 9999, SIDECAR_UID),
      'host-direct',
      "Envoy's own connections are not redirected",
    );
    assert.equal(await fromPod(HOST_IP, EXCLUDED_OUT), 'control-plane-direct');
    assert.equal(await fromPod('127.0.0.1', 8080), 'app-direct', 'loopback is not redirected');
    // inbound, from the host side of the veth
    const fromHost = (port: number): Promise<string> =>
      new Promise((resolve, reject) => {
        const s = net.connect(port, POD_IP);
        let d = '';
        s.on('data', (x: Buffer) => (d += x.toString()));
        s.on('end', () => resolve(d));
        s.on('error', reject);
      });
    assert.equal(await fromHost(8080), 'inbound-listener');
    assert.equal(await fromHost(PROBE), 'probe-port');
    // a restarted init container ends with the same rules
    await ok('ip', 'netns', 'exec', NS, 'sh', '-c', script);
    assert.equal(await ok('ip', 'netns', 'exec', NS, 'iptables', '-w', '-t', 'nat', '-S'), rules);
  },
);
