// Scale benchmark of the whole server (`startServer`: file source → compile → snapshot → ADS),
// in child processes:
//   1. cold start: 10,000 descriptors + 10,000 apikeys + 1,000 TLS Secrets in a config directory →
//      time to the first snapshot, peak RSS; then every object deleted → RSS/heap after GC, vs a
//      server started on the small config (baseline);
//   2. N concurrent ADS streams (raw HTTP/2 clients in separate processes, Envoy-like: wildcard LDS
//      + EDS of one shared and one own cluster, every response ACKed): server memory per stream,
//      time for one change (the shared cluster's endpoint) to reach every stream (p50/p99), server
//      CPU during the push;
//   3. churn: 50 changes/s for 60 s with 1,000 streams: rebuilds coalesced, every stream ends on the
//      last version (nobody falls behind), server RSS over time.
// Run: `npm run build && node dist/bench/scale.js` (or through bench/run.ts, section `scale`).
// Env: BENCH_SCALE_DESCRIPTORS=10000 BENCH_SCALE_APIKEYS=10000 BENCH_SCALE_SECRETS=1000
//      BENCH_SCALE_STREAMS=1000,5000 BENCH_SCALE_STREAM_DESCRIPTORS=1000 BENCH_SCALE_CLIENT_PROCS=2
//      BENCH_SCALE_CHURN_S=60 BENCH_SCALE_CHURN_RATE=50 BENCH_SCALE_CHURN_STREAMS=1000
//      BENCH_SCALE_SKIP=cold,streams,churn
// Writes bench/results/scale.json and prints tables. Every figure comes from this machine as it
// was during the run (shared cores: see the load average printed with the results).
import { fork, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import http2 from 'node:http2';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { apikeyDoc, descriptorDoc, envInt, envList, sharedNow, stats, writeDocFiles } from './gen.js';
import { next, type Msg } from './ipc.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '..', '..');
const SELF = fileURLToPath(import.meta.url);
const role = process.argv[2] ?? 'main';

const send = (m: unknown): void => {
  process.send?.(m);
};

function rssMB(): number {
  return process.memoryUsage().rss / 2 ** 20;
}
function peakRssMB(): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(fs.readFileSync('/proc/self/status', 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

// ------------------------------------------------------------------------------- config files

const FIXTURE_TLS = (): string =>
  fs.readFileSync(path.join(repo, 'test/fixtures/model/tls/secrets.yaml'), 'utf8').split('\n---\n')[0] ?? '';

function secretDocs(n: number): string[] {
  const base = FIXTURE_TLS();
  return Array.from({ length: n }, (_x, i) =>
    base.replace(/name: web-tls/, `name: tls-${i}`).replace(/namespace: default/, 'namespace: scale'),
  );
}

// ------------------------------------------------------------------------------- server role

async function serverRole(): Promise<void> {
  const t0 = performance.now();
  const dir = process.argv[3] ?? '';
  const { resolveConfig } = await import('../src/config.js');
  const { startServer, makeLogger } = await import('../src/main.js');
  const r = resolveConfig(
    { config: dir, xdsPort: 0, adminPort: 0, authzPort: 0, logLevel: 'warn', dataDir: path.join(dir, '..', 'data') },
    {},
  );
  if (!r.ok) throw new Error(r.errors.join());
  const tImport = performance.now();
  const server = await startServer(r.value, makeLogger('error'));
  const tReady = performance.now();
  let publishes = 0;
  let lastVersion = server.cache.get('envoy')?.version ?? '';
  server.cache.subscribe((nodeType, snap) => {
    if (nodeType !== 'envoy') return;
    publishes++;
    lastVersion = snap.version;
    send({ type: 'published', version: snap.version, at: sharedNow(), cpu: process.cpuUsage(), counts: counts() });
  });
  const counts = (): Record<string, number> => {
    const s = server.cache.get('envoy');
    return s ? Object.fromEntries(Object.entries(s.resources).map(([k, m]) => [k, m.size])) : {};
  };
  const memory = (): Record<string, number> => {
    const m = process.memoryUsage();
    return {
      rssMB: m.rss / 2 ** 20,
      heapUsedMB: m.heapUsed / 2 ** 20,
      externalMB: (m.external + m.arrayBuffers) / 2 ** 20,
      peakRssMB: peakRssMB(),
    };
  };
  process.on('message', (m: { cmd: string }) => {
    if (m.cmd === 'stats') {
      global.gc?.();
      global.gc?.();
      send({
        type: 'stats',
        memory: memory(),
        cpu: process.cpuUsage(),
        publishes,
        lastVersion,
        streams: server.ads.statuses().length,
        at: sharedNow(),
      });
    } else if (m.cmd === 'statsNoGc') {
      send({
        type: 'stats',
        memory: memory(),
        cpu: process.cpuUsage(),
        publishes,
        lastVersion,
        streams: server.ads.statuses().length,
        at: sharedNow(),
      });
    } else if (m.cmd === 'edsNames') {
      const s = server.cache.get('envoy');
      const names = s
        ? [...s.resources.endpoint.keys()].filter((n) => n.includes('~svc-')).sort((a, b) => idOf(a) - idOf(b))
        : [];
      send({ type: 'edsNames', names });
    } else if (m.cmd === 'exit') {
      void server.stop().then(() => process.exit(0));
    }
  });
  const idOf = (n: string): number => Number(/~svc-(\d+)~/.exec(n)?.[1] ?? -1);
  send({
    type: 'ready',
    coldStartMs: tReady - tImport,
    processToReadyMs: sharedNow() - (Number(process.env.SCALE_SPAWNED_AT) || sharedNow()),
    importMs: tImport - t0,
    memory: memory(),
    counts: counts(),
    xdsPort: server.xdsPort,
    version: lastVersion,
  });
}

// ------------------------------------------------------------------------------- client role

interface ScaleStream {
  id: number;
  ldsOk: boolean;
  edsVersion: string;
  versionAt: Map<string, number>;
  responses: number;
  bytes: number;
  closed: boolean;
}
interface ClientMsg {
  cmd: string;
  port?: number;
  n?: number;
  firstId?: number;
  names?: string[];
  version?: string;
  timeoutMs?: number;
}
/** A client process's streams, and the modules it loads only in that role. */
interface ClientCtx {
  loader: typeof import('../proto/loader.js');
  raw: typeof import('../test/helpers/raw-grpc.js');
  enc: (o: object) => Uint8Array;
  Res: ReturnType<typeof import('../proto/loader.js').lookupType>;
  streams: ScaleStream[];
  sessions: http2.ClientHttp2Session[];
  expectV?: { version: string; resolve: () => void };
}

const allHave = (c: ClientCtx, v: string): boolean => c.streams.every((s) => s.versionAt.has(v));

/** One Envoy-like SotW stream: LDS, and EDS for the common name and its own; every response is ACKed. */
function openScaleStream(c: ClientCtx, session: http2.ClientHttp2Session, id: number, edsNames: string[]): void {
  const { TYPE_URLS } = c.loader;
  const s: ScaleStream = {
    id,
    ldsOk: false,
    edsVersion: '',
    versionAt: new Map(),
    responses: 0,
    bytes: 0,
    closed: false,
  };
  c.streams.push(s);
  const st = c.raw.openRawStream({ session }, c.raw.ADS_SOTW_PATH, (buf) => {
    const r = c.Res.decode(buf) as unknown as { typeUrl: string; versionInfo: string; nonce: string };
    s.responses++;
    s.bytes += buf.length;
    const now = sharedNow();
    if (r.typeUrl === TYPE_URLS.endpoint) {
      s.edsVersion = r.versionInfo;
      s.versionAt.set(r.versionInfo, now);
      if (s.versionAt.size > 8) s.versionAt.delete(s.versionAt.keys().next().value as string);
      st.write(
        c.enc({
          typeUrl: r.typeUrl,
          versionInfo: r.versionInfo,
          responseNonce: r.nonce,
          resourceNames: edsNames,
        }),
      );
      if (c.expectV && allHave(c, c.expectV.version)) c.expectV.resolve();
    } else {
      s.ldsOk = true;
      st.write(c.enc({ typeUrl: r.typeUrl, versionInfo: r.versionInfo, responseNonce: r.nonce }));
    }
  });
  void st.ended.then(() => {
    s.closed = true;
  });
  st.write(
    c.enc({ node: { id: `scale-${id}`, cluster: 'scale', userAgentName: 'envoy' }, typeUrl: TYPE_URLS.listener }),
  );
  st.write(c.enc({ typeUrl: TYPE_URLS.endpoint, resourceNames: edsNames }));
}

/** Opens `m.n` streams, 100 per HTTP/2 session, and reports once they all hold LDS and EDS. */
async function startScaleStreams(c: ClientCtx, m: ClientMsg): Promise<void> {
  const names = m.names ?? [];
  const common = names[0] ?? '';
  const perSession = 100;
  let session: http2.ClientHttp2Session | undefined;
  for (let i = 0; i < (m.n ?? 0); i++) {
    if (i % perSession === 0) {
      session = http2.connect(`http://127.0.0.1:${m.port}`, { settings: { initialWindowSize: 1 << 20 } });
      session.on('error', () => undefined);
      c.sessions.push(session);
    }
    const id = (m.firstId ?? 0) + i;
    const own = names[id % names.length] ?? common;
    openScaleStream(c, session!, id, own === common ? [common] : [common, own]);
    if (i % 200 === 199) await new Promise((r) => setImmediate(r));
  }
  const streams = c.streams;
  const t = Date.now();
  while (!streams.every((s) => s.ldsOk && s.edsVersion !== '')) {
    if (Date.now() - t > 120_000) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  send({
    type: 'synced',
    n: streams.length,
    ok: streams.filter((s) => s.ldsOk && s.edsVersion !== '').length,
    closed: streams.filter((s) => s.closed).length,
  });
}

/** Waits (bounded) until every stream holds version `m.version`, then reports when each got it. */
async function expectVersion(c: ClientCtx, m: ClientMsg): Promise<void> {
  const v = m.version ?? '';
  if (!allHave(c, v)) {
    await Promise.race([
      new Promise<void>((resolve) => {
        c.expectV = { version: v, resolve };
      }),
      new Promise((r) => setTimeout(r, m.timeoutMs ?? 30_000)),
    ]);
  }
  c.expectV = undefined;
  send({
    type: 'got',
    times: c.streams.map((s) => s.versionAt.get(v)).filter((x): x is number => x !== undefined),
    missing: c.streams.filter((s) => !s.versionAt.has(v)).length,
  });
}

async function clientRole(): Promise<void> {
  const loader = await import('../proto/loader.js');
  const raw = await import('../test/helpers/raw-grpc.js');
  const Req = loader.lookupType('envoy.service.discovery.v3.DiscoveryRequest');
  const enc = (o: object): Uint8Array => Req.encode(Req.fromObject(o)).finish();
  const Res = loader.lookupType('envoy.service.discovery.v3.DiscoveryResponse');
  const c: ClientCtx = { loader, raw, enc, Res, streams: [], sessions: [] };
  process.on('message', async (m: ClientMsg) => {
    if (m.cmd === 'start') await startScaleStreams(c, m);
    else if (m.cmd === 'expect') await expectVersion(c, m);
    else if (m.cmd === 'report') {
      send({
        type: 'report',
        responses: c.streams.map((s) => s.responses),
        bytes: c.streams.reduce((n, s) => n + s.bytes, 0),
        lastVersions: [...new Set(c.streams.map((s) => s.edsVersion))],
        closed: c.streams.filter((s) => s.closed).length,
        rssMB: rssMB(),
      });
    } else if (m.cmd === 'exit') {
      for (const s of c.sessions) s.destroy();
      process.exit(0);
    }
  });
  send({ type: 'ready' });
}

// ------------------------------------------------------------------------------- orchestration

function spawnRole(r: string, args: string[], gc = false): ChildProcess {
  return fork(SELF, [r, ...args], {
    execArgv: gc ? ['--expose-gc', '--max-old-space-size=8192'] : ['--max-old-space-size=4096'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    env: { ...process.env, SCALE_SPAWNED_AT: String(sharedNow()) },
  });
}

async function stop(c: ChildProcess | undefined): Promise<void> {
  if (!c || c.exitCode !== null) return;
  const done = new Promise<void>((r) => c.once('exit', () => r()));
  try {
    c.send({ cmd: 'exit' });
  } catch {
    /* gone */
  }
  const t = setTimeout(() => c.kill('SIGKILL'), 10_000);
  await done;
  clearTimeout(t);
}

async function ask(c: ChildProcess, cmd: Record<string, unknown>, type: string, timeoutMs = 60_000): Promise<Msg> {
  const p = next(c, type, timeoutMs, `${String(cmd.cmd)}`);
  c.send(cmd);
  return p;
}

const f = (n: unknown, d = 0): string => (typeof n === 'number' && !Number.isNaN(n) ? n.toFixed(d) : '-');
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function tmpRoot(): { root: string; dir: string } {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'oxds-scale-'));
  const dir = path.join(root, 'config');
  fs.mkdirSync(dir);
  return { root, dir };
}

async function coldStart(nDesc: number, nKeys: number, nSecrets: number): Promise<Record<string, unknown>> {
  const { root, dir } = tmpRoot();
  try {
    fs.writeFileSync(path.join(dir, 'small.yaml'), descriptorDoc(0));
    // Baseline: the same server on one descriptor.
    let s = spawnRole('server', [dir], true);
    const base = await next(s, 'ready', 120_000, 'baseline server');
    const baseStats = await ask(s, { cmd: 'stats' }, 'stats');
    await stop(s);
    const files = [
      ...writeDocFiles(
        dir,
        'descriptors',
        Array.from({ length: nDesc }, (_x, i) => descriptorDoc(i + 1)),
      ),
      ...writeDocFiles(
        dir,
        'apikeys',
        Array.from({ length: nKeys }, (_x, i) => apikeyDoc(i)),
      ),
      ...writeDocFiles(dir, 'secrets', secretDocs(nSecrets)),
    ];
    const bytes = fs.readdirSync(dir).reduce((n, f2) => n + fs.statSync(path.join(dir, f2)).size, 0);
    s = spawnRole('server', [dir], true);
    const ready = await next(s, 'ready', 600_000, 'cold start');
    // A refused file (too large, bad YAML) would leave a server with nothing loaded: fail, don't measure it.
    const clusters = (ready.counts as Record<string, number>)['cluster'] ?? 0;
    if (clusters < nDesc) {
      await stop(s);
      throw new Error(`first snapshot has ${clusters} clusters, expected at least ${nDesc}`);
    }
    const loaded = await ask(s, { cmd: 'stats' }, 'stats');
    // Delete everything but the small file, wait for the publication, GC.
    const published = next(s, 'published', 120_000, 'publication after delete');
    for (const f2 of files) fs.rmSync(path.join(dir, f2), { force: true });
    const pub = await published;
    // Removed clusters are still served for --cluster-grace-ms (10 s, make-before-break): wait for
    // the rebuild that retires them before measuring.
    const retired = await next(s, 'published', 30_000, 'retirement rebuild').catch(() => undefined);
    await sleep(2000);
    const after = await ask(s, { cmd: 'stats' }, 'stats');
    await stop(s);
    return {
      descriptors: nDesc,
      apikeys: nKeys,
      secrets: nSecrets,
      configBytes: bytes,
      baseline: { ready: base, stats: baseStats },
      ready,
      loaded,
      afterDelete: { published: pub, retired, stats: after },
    };
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
}

interface StreamsEnv {
  server: ChildProcess;
  clients: ChildProcess[];
  dir: string;
  root: string;
  ipGen: number;
  before: Msg;
  synced: Msg[];
  after: Msg;
  syncMs: number;
}

async function withStreams(n: number, nDesc: number, procs: number): Promise<StreamsEnv> {
  const { root, dir } = tmpRoot();
  fs.writeFileSync(path.join(dir, 'hot.yaml'), descriptorDoc(0));
  writeDocFiles(
    dir,
    'rest',
    Array.from({ length: nDesc - 1 }, (_x, i) => descriptorDoc(i + 1)),
  );
  const server = spawnRole('server', [dir], true);
  const ready = await next(server, 'ready', 300_000, 'server');
  void ready;
  const names = ((await ask(server, { cmd: 'edsNames' }, 'edsNames')).names as string[]) ?? [];
  const before = await ask(server, { cmd: 'stats' }, 'stats');
  const clients: ChildProcess[] = [];
  for (let p = 0; p < procs; p++) {
    const c = spawnRole('client', []);
    await next(c, 'ready', 60_000, 'client');
    clients.push(c);
  }
  const per = Math.ceil(n / procs);
  const t0 = performance.now();
  const synced = await Promise.all(
    clients.map((c, p) =>
      ask(
        c,
        { cmd: 'start', port: ready.xdsPort, n: Math.min(per, n - p * per), firstId: p * per, names },
        'synced',
        300_000,
      ),
    ),
  );
  const syncMs = performance.now() - t0;
  await sleep(1000);
  const after = await ask(server, { cmd: 'stats' }, 'stats');
  return { server, clients, dir, root, ipGen: 0, before, synced, after, syncMs };
}

async function teardown(e: StreamsEnv): Promise<void> {
  await Promise.all(e.clients.map(stop));
  await stop(e.server);
  fs.rmSync(e.root, { recursive: true, force: true });
}

/** One change of the shared cluster's endpoint: publish → every stream has it. */
async function pushOnce(e: StreamsEnv): Promise<Record<string, unknown>> {
  e.ipGen++;
  const published = next(e.server, 'published', 60_000, 'publication');
  const tWrite = sharedNow();
  fs.writeFileSync(path.join(e.dir, 'hot.yaml'), descriptorDoc(0, e.ipGen));
  const pub = await published;
  const got = await Promise.all(
    e.clients.map((c) => ask(c, { cmd: 'expect', version: pub.version, timeoutMs: 60_000 }, 'got', 90_000)),
  );
  const end = await ask(e.server, { cmd: 'statsNoGc' }, 'stats');
  const times = got.flatMap((g) => g.times as number[]);
  const lat = stats(times.map((t) => t - (pub.at as number)));
  const missing = got.reduce((n, g) => n + (g.missing as number), 0);
  const c0 = pub.cpu as { user: number; system: number };
  const c1 = end.cpu as { user: number; system: number };
  const cpuMs = (c1.user + c1.system - c0.user - c0.system) / 1000;
  const wallMs = Math.max(...times) - (pub.at as number);
  return {
    fromWriteToPublishMs: (pub.at as number) - tWrite,
    latencyMs: lat,
    received: times.length,
    missing,
    serverCpuMs: cpuMs,
    wallMs,
    cpuPercentOfOneCore: (100 * cpuMs) / Math.max(1, (end.at as number) - (pub.at as number)),
  };
}

async function streamsBench(n: number, nDesc: number, procs: number): Promise<Record<string, unknown>> {
  const e = await withStreams(n, nDesc, procs);
  try {
    const pushes: Record<string, unknown>[] = [];
    for (let i = 0; i < 3; i++) pushes.push(await pushOnce(e));
    const bm = e.before.memory as Record<string, number>;
    const am = e.after.memory as Record<string, number>;
    return {
      streams: n,
      descriptors: nDesc,
      clientProcesses: procs,
      syncMs: e.syncMs,
      synced: e.synced,
      serverBefore: bm,
      serverAfter: am,
      perStreamKB: { rss: ((am.rssMB! - bm.rssMB!) * 1024) / n, heap: ((am.heapUsedMB! - bm.heapUsedMB!) * 1024) / n },
      openStreamsOnServer: e.after.streams,
      pushes,
    };
  } finally {
    await teardown(e);
  }
}

async function churnBench(
  n: number,
  nDesc: number,
  procs: number,
  seconds: number,
  rate: number,
): Promise<Record<string, unknown>> {
  const e = await withStreams(n, nDesc, procs);
  try {
    const start = await ask(e.server, { cmd: 'stats' }, 'stats');
    const samples: Array<{ t: number; rssMB: number; heapUsedMB: number }> = [];
    const t0 = performance.now();
    let writes = 0;
    let nextSample = 0;
    while (performance.now() - t0 < seconds * 1000) {
      e.ipGen++;
      fs.writeFileSync(path.join(e.dir, 'hot.yaml'), descriptorDoc(0, e.ipGen));
      writes++;
      const el = performance.now() - t0;
      if (el >= nextSample) {
        const s = await ask(e.server, { cmd: 'statsNoGc' }, 'stats');
        const m = s.memory as Record<string, number>;
        samples.push({ t: Math.round(el / 1000), rssMB: Math.round(m.rssMB!), heapUsedMB: Math.round(m.heapUsedMB!) });
        nextSample += 5000;
      }
      const due = t0 + (writes * 1000) / rate;
      const wait = due - performance.now();
      if (wait > 0) await sleep(wait);
    }
    const wallS = (performance.now() - t0) / 1000;
    await sleep(3000);
    const end = await ask(e.server, { cmd: 'stats' }, 'stats');
    const got = await Promise.all(
      e.clients.map((c) => ask(c, { cmd: 'expect', version: end.lastVersion, timeoutMs: 30_000 }, 'got', 60_000)),
    );
    const reports = await Promise.all(e.clients.map((c) => ask(c, { cmd: 'report' }, 'report')));
    const responses = stats(reports.flatMap((r) => r.responses as number[]));
    const publishes = (end.publishes as number) - (start.publishes as number);
    const sm = start.memory as Record<string, number>;
    const em = end.memory as Record<string, number>;
    return {
      streams: n,
      descriptors: nDesc,
      seconds: wallS,
      changesWritten: writes,
      changesPerSecond: writes / wallS,
      snapshotsPublished: publishes,
      coalescing: writes / Math.max(1, publishes),
      onLastVersion: got.reduce((x, g) => x + (g.times as number[]).length, 0),
      behind: got.reduce((x, g) => x + (g.missing as number), 0),
      responsesPerStream: responses,
      rssSamples: samples,
      serverMemory: { startAfterGc: sm, endAfterGc: em },
      clientRssMB: reports.map((r) => Math.round(r.rssMB as number)),
    };
  } finally {
    await teardown(e);
  }
}

interface ScaleEnv {
  nDesc: number;
  nKeys: number;
  nSecrets: number;
  streamCounts: number[];
  streamDesc: number;
  procs: number;
  churnS: number;
  churnRate: number;
  churnStreams: number;
}

function scaleEnv(): ScaleEnv {
  return {
    nDesc: envInt('BENCH_SCALE_DESCRIPTORS', 10_000),
    nKeys: envInt('BENCH_SCALE_APIKEYS', 10_000),
    nSecrets: Number(process.env.BENCH_SCALE_SECRETS ?? '1000'),
    streamCounts: envList('BENCH_SCALE_STREAMS', [1000, 5000]),
    streamDesc: envInt('BENCH_SCALE_STREAM_DESCRIPTORS', 1000),
    procs: envInt('BENCH_SCALE_CLIENT_PROCS', 2),
    churnS: envInt('BENCH_SCALE_CHURN_S', 60),
    churnRate: envInt('BENCH_SCALE_CHURN_RATE', 50),
    churnStreams: envInt('BENCH_SCALE_CHURN_STREAMS', 1000),
  };
}

async function coldSection({ nDesc, nKeys, nSecrets }: ScaleEnv): Promise<unknown> {
  process.stdout.write(`cold start: ${nDesc} descriptors + ${nKeys} apikeys + ${nSecrets} TLS secrets ... `);
  const c = await coldStart(nDesc, nKeys, nSecrets).catch((err: Error) => ({ error: err.message }));
  if ('error' in c) console.log(`FAILED: ${c.error}`);
  else {
    const r = c.ready as Msg;
    const l = (c.loaded as Msg).memory as Record<string, number>;
    const a = ((c.afterDelete as { stats: Msg }).stats.memory ?? {}) as Record<string, number>;
    const b = ((c.baseline as { stats: Msg }).stats.memory ?? {}) as Record<string, number>;
    console.log('done');
    console.log(
      `  config ${f((c.configBytes as number) / 2 ** 20, 1)} MiB YAML; resources ${JSON.stringify(r.counts)}`,
    );
    console.log(
      `  cold start to first snapshot: ${f(r.coldStartMs as number)} ms in startServer ` +
        `(read + parse + compile + publish + bind); ${f(r.processToReadyMs as number)} ms from process spawn`,
    );
    console.log(`  RSS after load (GC'd) ${f(l.rssMB)} MB, peak RSS ${f(l.peakRssMB)} MB, heap ${f(l.heapUsedMB)} MB`);
    console.log(
      `  after deleting every object: RSS ${f(a.rssMB)} MB, heap ${f(a.heapUsedMB)}` +
        ` MB; baseline server (1 descriptor): RSS ${f(b.rssMB)} MB, heap ${f(b.heapUsedMB)} MB`,
    );
  }
  return c;
}

async function streamsSection({ streamCounts, streamDesc, procs }: ScaleEnv): Promise<unknown> {
  const rs: Record<string, unknown>[] = [];
  for (const n of streamCounts) {
    const p = n > 2000 ? Math.max(procs, 4) : procs;
    process.stdout.write(`streams: ${n} ADS streams (${p} client processes, ${streamDesc} descriptors) ... `);
    const r = await streamsBench(n, streamDesc, p).catch((err: Error) => ({ streams: n, error: err.message }));
    rs.push(r);
    if ('error' in r) {
      console.log(`FAILED: ${r.error}`);
      continue;
    }
    console.log(`synced in ${f(r.syncMs as number)} ms`);
    const per = r.perStreamKB as Record<string, number>;
    console.log(
      `  server memory per stream: RSS ${f(per.rss, 1)} KiB, heap ${f(per.heap, 1)}` +
        ` KiB (open streams seen by the server: ${r.openStreamsOnServer})`,
    );
    for (const p of r.pushes as Array<Record<string, unknown>>) {
      const l = p.latencyMs as Record<string, number>;
      console.log(
        `  one change to all: ${p.received}/${n} (missing ${p.missing}) ` +
          `p50 ${f(l.p50)} ms p99 ${f(l.p99)} ms max ${f(l.max)} ms; server CPU ${f(p.serverCpuMs as number)} ms ` +
          `(${f(p.cpuPercentOfOneCore as number)}% of one core during the push); ` +
          `file write → publish ${f(p.fromWriteToPublishMs as number)} ms`,
      );
    }
  }
  return rs;
}

async function churnSection({ streamDesc, procs, churnS, churnRate, churnStreams }: ScaleEnv): Promise<unknown> {
  process.stdout.write(`churn: ${churnRate} changes/s for ${churnS} s with ${churnStreams} streams ... `);
  const r = await churnBench(churnStreams, streamDesc, procs, churnS, churnRate).catch((err: Error) => ({
    error: err.message,
  }));
  if ('error' in r) console.log(`FAILED: ${r.error}`);
  else {
    console.log('done');
    const rp = r.responsesPerStream as Record<string, number>;
    console.log(
      `  ${r.changesWritten} changes (${f(r.changesPerSecond as number, 1)}/s) → ${r.snapshotsPublished} snapshots ` +
        `(coalescing ×${f(r.coalescing as number, 1)}); ` +
        `on the last version at the end: ${r.onLastVersion}/${churnStreams}, behind: ${r.behind}`,
    );
    console.log(
      `  responses per stream p50 ${rp.p50} max ${rp.max}; server RSS samples (s:MB) ` +
        (r.rssSamples as Array<{ t: number; rssMB: number }>).map((x) => `${x.t}:${x.rssMB}`).join(' '),
    );
    const mm = r.serverMemory as Record<string, Record<string, number>>;
    console.log(
      `  server after GC: start RSS ${f(mm.startAfterGc?.rssMB)} MB heap ${f(mm.startAfterGc?.heapUsedMB)}` +
        ` MB → end RSS ${f(mm.endAfterGc?.rssMB)} MB heap ${f(mm.endAfterGc?.heapUsedMB)} MB`,
    );
  }
  return r;
}

async function main(): Promise<void> {
  const skip = new Set((process.env.BENCH_SCALE_SKIP ?? '').split(',').filter(Boolean));
  const env = scaleEnv();
  const machine = {
    nproc: os.availableParallelism(),
    loadavgAtStart: os.loadavg().map((x) => Number(x.toFixed(2))),
    memGB: Math.round(os.totalmem() / 2 ** 30),
    node: process.version,
  };
  console.log(`scale bench — ${machine.nproc} cores (shared), load average ${machine.loadavgAtStart.join(' ')}`);
  const out: Record<string, unknown> = { date: new Date().toISOString(), machine };
  if (!skip.has('cold')) out['cold'] = await coldSection(env);
  if (!skip.has('streams')) out['streams'] = await streamsSection(env);
  if (!skip.has('churn')) out['churn'] = await churnSection(env);
  out['loadavgAtEnd'] = os.loadavg().map((x) => Number(x.toFixed(2)));
  const dir = path.join(repo, 'bench', 'results');
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'scale.json'), `${JSON.stringify(out, null, 2)}\n`);
  console.log(`load average at end ${(out['loadavgAtEnd'] as number[]).join(' ')}; JSON: bench/results/scale.json`);
}

if (role === 'server') await serverRole();
else if (role === 'client') await clientRole();
else {
  await main();
  process.exit(0);
}
