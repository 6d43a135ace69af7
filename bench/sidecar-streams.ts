// 1,000 sidecar streams against one whole server (`startServer`, file source, N ServiceDescriptors
// each backed by a mesh Pod), in child processes:
//   1. first full config: every stream is one workload (svc-i in ns-(i mod 10)); it authenticates by
//      its node metadata under the documented insecure mode `--xds-node-auth insecure-node-metadata`
//      (plaintext loopback; one client certificate per workload would only add the TLS handshakes).
//      Clients speak Delta ADS like Envoy (the `bootstrap sidecar` default): wildcard CDS + LDS, then
//      RDS and SDS by the names the listeners and clusters reference; every response ACKed. Bytes and
//      time per sidecar to the full config, unscoped and scoped (`otoroshi.io/sidecar-egress: ./*`);
//      server RSS.
//   2. rotation wave: the server's CA clock is moved past every workload certificate's renewal time
//      and a rebuild runs (the renewal path: a new key pair per workload, pushed over SDS); time until
//      every stream has received (and ACKed, in the same tick) its new secrets, and the server's CPU
//      over that time. Floor: bare grpc-js (bench/push-server.ts `floor`) pushing the same bytes per
//      stream to as many streams, same run.
// Run: `npm run build --silent && node dist/bench/sidecar-streams.js`
// Env: BENCH_SIDECAR_N=1000 (descriptors) BENCH_SIDECAR_STREAMS=1000 BENCH_SIDECAR_CLIENT_PROCS=2
//      BENCH_SIDECAR_CHANNELS=10 (per client process) BENCH_SIDECAR_SCOPES=unscoped,scoped
//      BENCH_SIDECAR_PROFILE_DIR=dir (CPU profile of the server)
// Writes bench/results/sidecar-streams.json and prints a table with the load average.
import { fork, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { envInt, sharedNow, stats } from './gen.js';
import { next, type Msg } from './ipc.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '..', '..');
const SELF = fileURLToPath(import.meta.url);
const role = process.argv[2] ?? 'main';
const NAMESPACES = 10;
/** Past every renewal time of a 24 h workload certificate (2/3 of its life + 10 % jitter), before expiry. */
const ROTATE_CLOCK_MS = 20 * 3600_000;

const send = (m: unknown): void => {
  process.send?.(m);
};

function peakRssMB(): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(fs.readFileSync('/proc/self/status', 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

// ------------------------------------------------------------------------------- config files

function workloadDocs(i: number, scoped: boolean): string {
  const ns = `ns-${i % NAMESPACES}`;
  const app = `svc-${i}`;
  const ip = `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;
  const annotations = scoped ? `, annotations: {otoroshi.io/sidecar-egress: "./*"}` : '';
  return `apiVersion: v1
kind: Pod
metadata: {name: ${app}-pod, namespace: ${ns}, labels: {app: ${app}, otoroshi.io/sidecar: inject}${annotations}}
spec: {serviceAccountName: ${app}}
status: {podIP: ${ip}}
---
apiVersion: v1
kind: Service
metadata: {name: ${app}, namespace: ${ns}}
spec: {selector: {app: ${app}}, clusterIP: 10.96.${(i >> 8) & 255}.${i & 255}, ports: [{port: 80}]}
---
apiVersion: proxy.otoroshi.io/v1alpha1
kind: ServiceDescriptor
metadata: {name: ${app}, namespace: ${ns}}
spec: {hosts: [${app}.bench.local], forceHttps: false, targets: {serviceName: ${app}, servicePort: 80}}
`;
}

function writeConfig(root: string, n: number, scoped: boolean): string {
  const dir = path.join(root, 'config');
  fs.mkdirSync(dir, { recursive: true });
  const docs: string[] = [];
  for (let i = 0; i < n; i++) docs.push(workloadDocs(i, scoped));
  fs.writeFileSync(path.join(dir, 'mesh.yaml'), docs.join('---\n'));
  return dir;
}

// ------------------------------------------------------------------------------- server child

async function serverMain(): Promise<void> {
  const dir = process.argv[3] ?? '';
  const { resolveConfig } = await import('../src/config.js');
  const { startServer, makeLogger } = await import('../src/main.js');
  const r = resolveConfig(
    {
      config: dir,
      xdsPort: 0,
      adminPort: 0,
      authzPort: 0,
      logLevel: 'warn',
      dataDir: path.join(dir, '..', 'data'),
      xdsNodeAuth: 'insecure-node-metadata',
    },
    {},
  );
  if (!r.ok) throw new Error(r.errors.join());
  let clockOffset = 0;
  let rotateCpu = process.cpuUsage();
  const server = await startServer(r.value, makeLogger('error'), undefined, { now: () => Date.now() + clockOffset });
  const memory = (): Record<string, number> => {
    const m = process.memoryUsage();
    return { rssMB: m.rss / 2 ** 20, heapUsedMB: m.heapUsed / 2 ** 20, peakRssMB: peakRssMB() };
  };
  process.on('message', (m: { cmd: string }) => {
    if (m.cmd === 'memory') {
      global.gc?.();
      send({ type: 'memory', ...memory(), streams: server.ads.statuses().length });
    } else if (m.cmd === 'rotate') {
      const t0 = sharedNow();
      clockOffset = ROTATE_CLOCK_MS;
      rotateCpu = process.cpuUsage();
      void server.rebuildNow().then(() => send({ type: 'rotated', t0, rebuildMs: sharedNow() - t0 }));
    } else if (m.cmd === 'cpu') {
      const u = process.cpuUsage(rotateCpu);
      send({ type: 'cpu', ms: (u.user + u.system) / 1000 });
    } else if (m.cmd === 'exit') {
      void server.stop().then(() => process.exit(0));
    }
  });
  send({ type: 'ready', port: server.xdsPort, ...memory() });
}

// ------------------------------------------------------------------------------- client child

interface SidecarStream {
  id: number;
  openedAt: number;
  syncedAt: number;
  fullBytes: number;
  /** Rotation: receipt of the SDS response holding the new certificate, its bytes. */
  rotatedAt: number;
  rotateBytes: number;
  otherAfterArm: number;
  error?: string;
}

type Grpc = typeof import('@grpc/grpc-js');
type Loader = typeof import('../proto/loader.js');
const DISCOVERY = 'envoy.service.discovery.v3';

interface AnyResource {
  type_url: string;
  value: Uint8Array;
}

interface Res {
  t: number;
  len: number;
  msg: {
    typeUrl: string;
    nonce: string;
    resources: { name: string; version: string; resource?: AnyResource }[];
  };
}

interface Refs {
  rds: string[];
  sds: string[];
}

/** The streams of one client process and what they share. */
interface Clients {
  n: number;
  first: number;
  urls: Loader['TYPE_URLS'];
  rq: ReturnType<Loader['lookupType']>;
  rs: ReturnType<Loader['lookupType']>;
  channels: InstanceType<Grpc['Client']>[];
  refsOf: (name: string, version: string, any: AnyResource) => Refs;
  results: SidecarStream[];
  synced: number;
  armed: boolean;
  rotated: number;
}

/** One stream's progress to its full config: types seen, names subscribed to, names received. */
interface StreamState {
  r: SidecarStream;
  req: (m: Record<string, unknown>) => void;
  seen: Set<string>;
  want: { rds: Set<string>; sds: Set<string> };
  have: Set<string>;
}

/** Names a decoded resource references (RDS route_config_name, SDS secret names). */
function collectRefs(decoded: unknown): Refs {
  const rds = new Set<string>();
  const sds = new Set<string>();
  const walk = (v: unknown): void => {
    if (Array.isArray(v)) v.forEach(walk);
    else if (v && typeof v === 'object' && !(v instanceof Uint8Array)) {
      const o = v as Record<string, unknown>;
      const r = o['rds'] as Record<string, unknown> | undefined;
      if (r && typeof r['routeConfigName'] === 'string') rds.add(r['routeConfigName']);
      if (typeof o['name'] === 'string' && o['sdsConfig'] !== undefined) sds.add(o['name']);
      for (const x of Object.values(o)) walk(x);
    }
  };
  walk(decoded);
  return { rds: [...rds], sds: [...sds] };
}

/** `collectRefs` of a resource, memoized per resource version. */
function memoRefs(decodeToObject: Loader['decodeToObject']): Clients['refsOf'] {
  const refsMemo = new Map<string, Refs>();
  return (name, version, any) => {
    const key = `${any.type_url}|${name}|${version}`;
    let hit = refsMemo.get(key);
    if (hit) return hit;
    hit = collectRefs(decodeToObject(any.type_url, any.value));
    refsMemo.set(key, hit);
    return hit;
  };
}

/** Arguments (port, streams, channels, first id), protobuf types and the gRPC channels. */
async function setupClients(): Promise<Clients> {
  const grpc = await import('@grpc/grpc-js');
  const { lookupType, decodeToObject, TYPE_URLS } = await import('../proto/loader.js');
  const [portArg, nArg, chArg, firstArg] = process.argv.slice(3);
  const port = Number(portArg);
  const n = Number(nArg);
  const first = Number(firstArg);
  const rq = lookupType(`${DISCOVERY}.DeltaDiscoveryRequest`);
  const rs = lookupType(`${DISCOVERY}.DeltaDiscoveryResponse`);
  const channels = Array.from(
    { length: Math.max(1, Number(chArg)) },
    () =>
      new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure(), {
        'grpc.use_local_subchannel_pool': 1,
        'grpc.max_receive_message_length': 256 * 1024 * 1024,
      } as never),
  );
  const refsOf = memoRefs(decodeToObject);
  return { n, first, urls: TYPE_URLS, rq, rs, channels, refsOf, results: [], synced: 0, armed: false, rotated: 0 };
}

/** The Envoy node of workload svc-`id` (authenticated by this metadata, `insecure-node-metadata`). */
function sidecarNode(id: number): Record<string, unknown> {
  const ns = `ns-${id % NAMESPACES}`;
  return {
    id: `sidecar-${id}`,
    cluster: 'bench',
    userAgentName: 'envoy',
    metadata: {
      fields: {
        OXDS_ROLE: { stringValue: 'sidecar' },
        NAMESPACE: { stringValue: ns },
        SERVICE_ACCOUNT: { stringValue: `svc-${id}` },
      },
    },
  };
}

/** After arming: the first SDS response is the rotated secret; anything else is counted. */
function onArmedResponse(c: Clients, r: SidecarStream, res: Res): void {
  if (res.msg.typeUrl === c.urls.secret && r.rotatedAt === 0) {
    r.rotatedAt = res.t;
    r.rotateBytes = res.len;
    c.rotated++;
    if (c.rotated === c.n) send({ type: 'rotated' });
  } else r.otherAfterArm++;
}

/** Subscribes (RDS, SDS) to the names the response's listeners and clusters reference, not yet wanted. */
function subscribeRefs(c: Clients, st: StreamState, m: Res['msg']): void {
  const { urls, refsOf } = c;
  const newRds: string[] = [];
  const newSds: string[] = [];
  for (const x of m.resources) {
    st.have.add(x.name);
    if (!x.resource || (m.typeUrl !== urls.cluster && m.typeUrl !== urls.listener)) continue;
    const refs = refsOf(x.name, x.version, x.resource);
    for (const a of refs.rds) if (!st.want.rds.has(a)) newRds.push(a);
    for (const a of refs.sds) if (!st.want.sds.has(a)) newSds.push(a);
    for (const a of newRds) st.want.rds.add(a);
    for (const a of newSds) st.want.sds.add(a);
  }
  if (newRds.length > 0) st.req({ typeUrl: urls.route, resourceNamesSubscribe: newRds });
  if (newSds.length > 0) st.req({ typeUrl: urls.secret, resourceNamesSubscribe: newSds });
}

/** Full config: CDS and LDS seen, and every referenced route and secret received. */
function fullyConfigured(c: Clients, st: StreamState): boolean {
  return (
    [c.urls.cluster, c.urls.listener].every((t) => st.seen.has(t)) &&
    [...st.want.rds, ...st.want.sds].every((x) => st.have.has(x))
  );
}

/** Before arming: counts the bytes to the full config, follows the references, marks the stream synced. */
function onConfigResponse(c: Clients, st: StreamState, res: Res): void {
  const { r } = st;
  const m = res.msg;
  if (r.syncedAt === 0) r.fullBytes += res.len;
  st.seen.add(m.typeUrl);
  subscribeRefs(c, st, m);
  if (r.syncedAt === 0 && fullyConfigured(c, st)) {
    r.syncedAt = res.t;
    c.synced++;
    if (c.synced === c.n) send({ type: 'synced' });
  }
}

/** Opens stream `i` (Delta ADS, like Envoy): wildcard CDS + LDS; every response ACKed in the tick it arrives. */
function openStream(c: Clients, i: number): void {
  const id = c.first + i;
  const r: SidecarStream = {
    id,
    openedAt: sharedNow(),
    syncedAt: 0,
    fullBytes: 0,
    rotatedAt: 0,
    rotateBytes: 0,
    otherAfterArm: 0,
  };
  c.results.push(r);
  const { rq, rs } = c;
  const call = (c.channels[i % c.channels.length] as InstanceType<Grpc['Client']>).makeBidiStreamRequest(
    `/${DISCOVERY}.AggregatedDiscoveryService/DeltaAggregatedResources`,
    (v: object) => Buffer.from(rq.encode(rq.fromObject(v)).finish()),
    (b: Buffer): Res => ({ t: sharedNow(), len: b.length, msg: rs.decode(b) as unknown as Res['msg'] }),
  );
  call.on('error', (e: Error) => {
    r.error ??= e.message;
  });
  const node = sidecarNode(id);
  let firstReq = true;
  const req = (m: Record<string, unknown>): void => {
    call.write({ ...(firstReq ? { node } : {}), ...m });
    firstReq = false;
  };
  const st: StreamState = { r, req, seen: new Set(), want: { rds: new Set(), sds: new Set() }, have: new Set() };
  call.on('data', (res: Res) => {
    req({ typeUrl: res.msg.typeUrl, responseNonce: res.msg.nonce }); // ACK, in the same tick as the receipt
    if (c.armed) onArmedResponse(c, r, res);
    else onConfigResponse(c, st, res);
  });
  req({ typeUrl: c.urls.cluster, resourceNamesSubscribe: [] });
  req({ typeUrl: c.urls.listener, resourceNamesSubscribe: [] });
}

async function clientsMain(): Promise<void> {
  const c = await setupClients();
  process.on('message', (m: { cmd: string }) => {
    if (m.cmd === 'arm') {
      c.armed = true;
      send({ type: 'armed' });
    } else if (m.cmd === 'report') send({ type: 'report', streams: c.results });
    else if (m.cmd === 'exit') process.exit(0);
  });
  for (let i = 0; i < c.n; i++) openStream(c, i);
}

// ------------------------------------------------------------------------------- orchestrator

const N = envInt('BENCH_SIDECAR_N', 1000);
const STREAMS = envInt('BENCH_SIDECAR_STREAMS', 1000);
const PROCS = envInt('BENCH_SIDECAR_CLIENT_PROCS', 2);
const CHANNELS = envInt('BENCH_SIDECAR_CHANNELS', 10);
const SCOPES = (process.env['BENCH_SIDECAR_SCOPES'] ?? 'unscoped,scoped').split(',');

const load = (): string =>
  os
    .loadavg()
    .map((x) => x.toFixed(1))
    .join(' ');
const f = (x: number | undefined, d = 0): string => (x === undefined || Number.isNaN(x) ? '-' : x.toFixed(d));
const kib = (b: number): string => `${(b / 1024).toFixed(1)} KiB`;

function child(args: string[], execArgv: string[] = []): ChildProcess {
  return fork(SELF, args, { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv });
}
function kill(c: ChildProcess | undefined): void {
  if (c && c.exitCode === null) c.kill('SIGKILL');
}

async function askAll(cs: ChildProcess[], cmd: string, reply: string, ms: number): Promise<Msg[]> {
  return Promise.all(
    cs.map((c) => {
      const w = next(c, reply, ms, `${cmd} → ${reply}`);
      c.send({ cmd });
      return w;
    }),
  );
}

interface ScopeResult {
  scope: string;
  load: string;
  streams: number;
  errors: string[];
  syncWallMs: number;
  firstConfigMs: ReturnType<typeof stats>;
  fullBytes: ReturnType<typeof stats>;
  serverRssMB: number;
  serverIdleRssMB: number;
  serverPeakRssMB: number;
  rotation: { load: string; received: number; ms: ReturnType<typeof stats>; bytes: ReturnType<typeof stats> };
  rebuildMs: number;
  /** Server CPU (user + system) of the rotation wave. */
  rotationCpuMs: number;
  other: number;
}

async function runScope(scope: string): Promise<ScopeResult> {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'oxds-sidecar-streams-'));
  const dir = writeConfig(root, N, scope === 'scoped');
  let server: ChildProcess | undefined;
  const clients: ChildProcess[] = [];
  try {
    const prof = process.env['BENCH_SIDECAR_PROFILE_DIR'];
    server = child(['server', dir], ['--expose-gc', ...(prof ? ['--cpu-prof', `--cpu-prof-dir=${prof}`] : [])]);
    const ready = await next(server, 'ready', 180_000, 'server ready');
    const idle = await askAll([server], 'memory', 'memory', 30_000);
    const t0 = sharedNow();
    const per = Math.ceil(STREAMS / PROCS);
    const synced: Promise<Msg>[] = [];
    for (let p = 0; p < PROCS; p++) {
      const n = Math.min(per, STREAMS - p * per);
      if (n <= 0) continue;
      const c = child(['clients', String(ready['port']), String(n), String(CHANNELS), String(p * per)]);
      clients.push(c);
      synced.push(next(c, 'synced', 300_000, `${scope}: every sidecar stream synced`));
    }
    await Promise.all(synced);
    const syncWallMs = sharedNow() - t0;
    const syncLoad = load();
    await new Promise((r) => setTimeout(r, 1000)); // the last ACKs
    const mem = (await askAll([server], 'memory', 'memory', 30_000))[0] as Msg;
    await askAll(clients, 'arm', 'armed', 10_000);
    const rotated = clients.map((c) => next(c, 'rotated', 300_000, `${scope}: every stream got its new secret`));
    const rw = next(server, 'rotated', 300_000, 'rotation rebuild');
    server.send({ cmd: 'rotate' });
    const rot = await rw;
    await Promise.all(rotated);
    const rotLoad = load();
    // Server CPU from the rotation start to every stream holding its new secret (the figure a loaded machine keeps).
    const cpu = (await askAll([server], 'cpu', 'cpu', 30_000))[0] as Msg;
    await new Promise((r) => setTimeout(r, 500));
    const streams = (await askAll(clients, 'report', 'report', 30_000)).flatMap((m) => m['streams'] as SidecarStream[]);
    const tRot = Number(rot['t0']);
    const got = streams.filter((s) => s.rotatedAt > 0);
    return {
      scope,
      load: syncLoad,
      streams: streams.length,
      errors: [...new Set(streams.flatMap((s) => (s.error ? [s.error] : [])))].slice(0, 3),
      syncWallMs,
      firstConfigMs: stats(streams.map((s) => s.syncedAt - s.openedAt)),
      fullBytes: stats(streams.map((s) => s.fullBytes)),
      serverRssMB: Number(mem['rssMB']),
      serverIdleRssMB: Number((idle[0] as Msg)['rssMB']),
      serverPeakRssMB: Number(mem['peakRssMB']),
      rotation: {
        load: rotLoad,
        received: got.length,
        ms: stats(got.map((s) => s.rotatedAt - tRot)),
        bytes: stats(got.map((s) => s.rotateBytes)),
      },
      rebuildMs: Number(rot['rebuildMs']),
      rotationCpuMs: Number(cpu['ms']),
      other: streams.reduce((x, s) => x + s.otherAfterArm, 0),
    };
  } finally {
    for (const c of clients) kill(c);
    if (server && server.exitCode === null) {
      const exited = new Promise((r) => server?.once('exit', r));
      server.send({ cmd: 'exit' });
      await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))]);
    }
    kill(server);
    fs.rmSync(root, { recursive: true, force: true });
    await new Promise((r) => setTimeout(r, 500));
  }
}

/** Bare grpc-js pushing `bytes` to STREAMS streams (bench/push-server.ts floor, bench/push-client.ts floor). */
async function floor(bytes: number): Promise<{ load: string; ms: ReturnType<typeof stats>; received: number }> {
  const spawn = (script: string, args: string[]): ChildProcess =>
    fork(path.join(here, script), args, { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const server = spawn('push-server.js', ['floor']);
  const clients: ChildProcess[] = [];
  try {
    const ready = await next(server, 'ready', 60_000, 'floor server');
    const per = Math.ceil(STREAMS / PROCS);
    const synced: Promise<Msg>[] = [];
    for (let p = 0; p < PROCS; p++) {
      const n = Math.min(per, STREAMS - p * per);
      if (n <= 0) continue;
      const c = spawn('push-client.js', [String(ready['port']), String(n), String(CHANNELS), 'floor', String(p * per)]);
      clients.push(c);
      synced.push(next(c, 'synced', 120_000, 'floor clients synced'));
    }
    await Promise.all(synced);
    await Promise.all(
      clients.map((c) => {
        const w = next(c, 'armed', 10_000, 'armed');
        c.send({ cmd: 'arm' });
        return w;
      }),
    );
    const changed = clients.map((c) => next(c, 'changed', 60_000, 'floor payload received'));
    const sw = next(server, 'sent', 30_000, 'floor sent');
    server.send({ cmd: 'send', bytes });
    const tSend = Number((await sw)['tSend']);
    await Promise.all(changed);
    const l = load();
    const reports = await Promise.all(
      clients.map((c) => {
        const w = next(c, 'report', 30_000, 'report');
        c.send({ cmd: 'report' });
        return w;
      }),
    );
    const all = reports.flatMap((r) => r['streams'] as { changeAt: number }[]).filter((s) => s.changeAt > 0);
    return { load: l, ms: stats(all.map((s) => s.changeAt - tSend)), received: all.length };
  } finally {
    for (const c of clients) kill(c);
    kill(server);
  }
}

async function main(): Promise<void> {
  const results: ScopeResult[] = [];
  for (const scope of SCOPES) {
    process.stdout.write(`sidecar streams, ${scope}: ${STREAMS} streams, ${N} descriptors ... `);
    const r = await runScope(scope);
    console.log(`synced in ${f(r.syncWallMs)} ms, rotation ${f(r.rotation.ms.max)} ms (load ${r.load})`);
    results.push(r);
  }
  const payload = Math.round(results[0]?.rotation.bytes.p50 ?? 1000);
  process.stdout.write(`floor: bare grpc-js, ${payload} B to ${STREAMS} streams ... `);
  const fl = await floor(payload);
  console.log(`done (load ${fl.load})`);
  console.log(
    `\n== Sidecar streams: ${STREAMS} Delta ADS streams (one workload each), ${N} descriptors; ` +
      `node ${process.version}, ${os.cpus().length} cores`,
  );
  console.log(
    '| egress scope | streams | full config / sidecar (p50) | first full config ms p50 / p99 / max | ' +
      'all synced ms | server RSS idle → with streams (peak) | load |',
  );
  console.log('| --- | --- | --- | --- | --- | --- | --- |');
  for (const r of results)
    console.log(
      `| ${r.scope} | ${r.streams} | ${kib(r.fullBytes.p50)} | ` +
        `${f(r.firstConfigMs.p50)} / ${f(r.firstConfigMs.p99)} / ` +
        `${f(r.firstConfigMs.max)} | ${f(r.syncWallMs)} | ${f(r.serverIdleRssMB)} → ${f(r.serverRssMB)} MB ` +
        `(${f(r.serverPeakRssMB)}) | ${r.load} |`,
    );
  console.log('\n== Workload certificate rotation wave (from the rebuild start to the last stream receiving its SDS)');
  console.log('| run | streams with the new secret | SDS bytes / stream | p50 ms | p99 ms | max ms | load |');
  console.log('| --- | --- | --- | --- | --- | --- | --- |');
  for (const r of results)
    console.log(
      `| ${r.scope} (rebuild ${f(r.rebuildMs)} ms, server CPU ${f(r.rotationCpuMs)} ms; ` +
        `other responses ${r.other}) | ` +
        `${r.rotation.received}/${r.streams} | ${f(r.rotation.bytes.p50)} B | ` +
        `${f(r.rotation.ms.p50)} | ${f(r.rotation.ms.p99)} | ${f(r.rotation.ms.max)} | ` +
        `${r.rotation.load} |`,
    );
  console.log(
    `| floor: bare grpc-js, ${payload} B each | ${fl.received}/${STREAMS} | ${payload} B | ${f(fl.ms.p50)} | ` +
      `${f(fl.ms.p99)} | ${f(fl.ms.max)} | ${fl.load} |`,
  );
  for (const r of results) if (r.errors.length > 0) console.log(`  ${r.scope} stream errors: ${r.errors.join(' | ')}`);
  const dir = path.join(repo, 'bench', 'results');
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'sidecar-streams.json'), `${JSON.stringify({ results, floor: fl }, null, 2)}\n`);
  process.exit(0);
}

if (role === 'server') await serverMain();
else if (role === 'clients') await clientsMain();
else await main();
