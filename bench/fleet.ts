// Many real Envoys on one control plane (`npm run bench:fleet`; result in bench/results/fleet.json).
//   BENCH_FLEET_RSS_SIZES=1000,10000  descriptors for the RSS probe (one Envoy with full stats, one trimmed)
//   BENCH_FLEET_N=1000                descriptors of the fleet run
//   BENCH_FLEET_ENVOYS=100            Envoys of the fleet run (started BENCH_FLEET_BATCH at a time)
//   BENCH_FLEET_MODES=sotw,delta,vhds ADS flavours (the whole fleet restarts per flavour): `delta` is Delta with
//                                     --route-discovery rds (whole route tables), `vhds` Delta with the default
//                                     VHDS (virtual hosts as their own resources)
//   BENCH_FLEET_ONDEMAND_HOSTS=200    fresh hosts for the first-request latency probe (on demand vs eager)
//   BENCH_FLEET_STATS=trim|all        Envoy stats: `trim` keeps only the xDS/NACK counters (less RSS)
//   BENCH_SKIP=rss,fleet,floor,ondemand
// Everything real: `otoroshi-xds serve` as a child process, Envoy (`--concurrency 1`) from
// `bootstrap gateway`, loopback HTTP backends in this process. A change is a file write in the
// config directory; it is served when a real request through EVERY Envoy shows it (route change: the
// moved path answers 200; endpoint change: a request answered by the new backend). Bytes per Envoy:
// the server's own `oxds_xds_push_bytes_total` (by type) over the change, divided by the fleet size.
// Floor: a bare grpc-js server (bench/push-server.ts floor) writing the same bytes per stream to as
// many streams over as many HTTP/2 connections, same run.
import { fork, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import YAML from 'yaml';
import { cpuUs } from './authz.js';
import { envInt, envList, stats } from './gen.js';
import { next } from './ipc.js';
import { eventually, EnvoyProcess } from '../test/helpers/envoy.js';
import { freeServePorts, startServeChild, type ServeChild } from '../test/helpers/serve-child.js';
import { findEnvoy, ENVOY_HOWTO } from '../src/envoy/find-envoy.js';
import { gatewayBootstrap } from '../src/envoy/bootstrap.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '..', '..');
const RSS_SIZES = envList('BENCH_FLEET_RSS_SIZES', [1000, 10_000]);
const N = envInt('BENCH_FLEET_N', 1000);
const ENVOYS = envInt('BENCH_FLEET_ENVOYS', 100);
const BATCH = envInt('BENCH_FLEET_BATCH', 10);
const MODES = (process.env['BENCH_FLEET_MODES'] ?? 'sotw,delta,vhds').split(',').filter(Boolean);
const STATS = process.env['BENCH_FLEET_STATS'] ?? 'trim';
const ONDEMAND_HOSTS = envInt('BENCH_FLEET_ONDEMAND_HOSTS', 200);
const SKIP = new Set((process.env['BENCH_SKIP'] ?? '').split(',').filter(Boolean));
/**
 * Poll period per Envoy while waiting for a change (the measurement's resolution). Polling 100
 * Envoys every 20 ms is 5,000 requests/s through them: enough to load the machine being measured.
 */
const POLL_MS = envInt('BENCH_FLEET_POLL_MS', Math.max(20, 2 * ENVOYS));

type Stats = ReturnType<typeof stats>;

// ------------------------------------------------------------------ backends and config

interface Backend {
  id: string;
  port: number;
  stop(): Promise<void>;
}

/** A keep-alive backend answering its id. */
async function backend(id: string, host: string): Promise<Backend> {
  const server = http.createServer((_req, res) => res.end(id));
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((r) => server.listen(0, host, () => r()));
  const port = (server.address() as { port: number }).port;
  return {
    id,
    port,
    stop: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

interface Backends {
  a: Backend[];
  b: Backend[];
  moved: Backend;
  stop(): Promise<void>;
}

async function startBackends(): Promise<Backends> {
  // Targets on two IPs per descriptor: the route then uses autoHostRewrite, so moving one target
  // changes the ClusterLoadAssignment only (with one target host the route rewrites Host to it).
  const a = [await backend('a0', '127.0.0.1'), await backend('a1', '127.0.0.1')];
  const b = [await backend('b0', '127.0.0.2'), await backend('b1', '127.0.0.2')];
  const moved = await backend('moved', '127.0.0.2');
  return { a, b, moved, stop: async () => void (await Promise.all([...a, ...b, moved].map((x) => x.stop()))) };
}

export const ROUTE_CHANGED = 1;
export const EDS_CHANGED = 2;

/** n descriptors; `route`: descriptor 1 moved under /moved; `endpoint`: descriptor 2's 2nd target moved. */
function configYaml(n: number, be: Backends, change: { route?: boolean; endpoint?: boolean } = {}): string {
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    const second = change.endpoint && i === EDS_CHANGED ? be.moved : be.b[i % 2]!;
    out.push(`apiVersion: proxy.otoroshi.io/v1alpha1
kind: ServiceDescriptor
metadata: {name: s${i}, namespace: default}
spec:
  hosts: [s${i}.fleet.bench]
  forceHttps: false
  publicPatterns: ['/.*']
  targets: [{url: "http://127.0.0.1:${be.a[i % 2]!.port}"}, {url: "http://127.0.0.2:${second.port}"}]
${change.route && i === ROUTE_CHANGED ? '  matchingRoot: /moved\n' : ''}`);
  }
  return out.join('---\n');
}

/** As a ConfigMap volume or an editor's save does: the watcher never sees a half-written file. */
function writeAtomically(file: string, content: string): void {
  fs.writeFileSync(`${file}.tmp`, content);
  fs.renameSync(`${file}.tmp`, file);
}

// ------------------------------------------------------------------ Envoys

/** Only the counters this bench and the NACK check read: most of an idle Envoy's memory per cluster is stats. */
const TRIMMED_STATS = {
  stats_matcher: {
    inclusion_list: {
      patterns: [
        { safe_regex: { regex: '^(cluster_manager|listener_manager|control_plane|server)\\..*' } },
        { safe_regex: { regex: '.*\\.update_(rejected|success|attempt)$' } },
      ],
    },
  },
};

interface Gw {
  envoy: EnvoyProcess;
  port: number;
  agent: http.Agent;
}

async function startEnvoy(bin: string, xds: number, nodeId: string, delta: boolean, trim: boolean): Promise<Gw> {
  const b = gatewayBootstrap({
    xdsAddress: `127.0.0.1:${xds}`,
    nodeId,
    nodeCluster: 'otoroshi-gateway',
    adminAddress: '127.0.0.1',
    adminPort: 0,
    delta,
  });
  if (trim) b['stats_config'] = TRIMMED_STATS;
  const envoy = await EnvoyProcess.start(bin, YAML.stringify(b, { lineWidth: 0 }));
  await envoy.ready(600_000);
  const port = await eventually('the oxds-http listener', () => envoy.listenerPort('oxds-http'), 600_000);
  return { envoy, port, agent: new http.Agent({ keepAlive: true, maxSockets: 1 }) };
}

/** Status and body of GET http://s<i>.fleet.bench<p> through one Envoy. */
function get(g: Gw, i: number, p: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve) => {
    const req = http.get(
      { host: '127.0.0.1', port: g.port, path: p, headers: { host: `s${i}.fleet.bench` }, agent: g.agent },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.setTimeout(10_000, () => req.destroy());
    req.on('error', () => resolve({ status: 0, body: '' }));
  });
}

/** Waits until descriptor 0 and descriptor n-1 answer through `g`. */
async function serving(g: Gw, n: number, timeoutMs: number): Promise<void> {
  for (const i of [0, n - 1])
    await eventually(
      `s${i} through ${g.envoy.admin}`,
      async () => ((await get(g, i, '/x')).status === 200 ? true : undefined),
      timeoutMs,
    );
}

function rssMiB(pid: number | undefined): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m?.[1] ?? 0) / 1024;
}

function memAvailableMiB(): number {
  const m = /MemAvailable:\s+(\d+) kB/.exec(fs.readFileSync('/proc/meminfo', 'utf8'));
  return Number(m?.[1] ?? 0) / 1024;
}

const load = (): string =>
  os
    .loadavg()
    .map((x) => x.toFixed(2))
    .join(' ');

// ------------------------------------------------------------------ server

async function startServer(dir: string, extra: readonly string[] = []): Promise<ServeChild> {
  const flags = ['--log-level', 'warn', '--envoy-authz', 'off', ...extra];
  for (const f of ['--max-config-file-bytes', '--max-config-total-bytes']) flags.push(f, String(256 * 1024 * 1024));
  // A cold start of 10,000 descriptors takes minutes on a loaded 2-core machine.
  return startServeChild(dir, await freeServePorts(), flags, '127.0.0.1', 900_000);
}

/** `oxds_xds_push_bytes_total` (or another counter by type) from the server's /metrics. */
async function pushBytes(server: ServeChild, metric = 'oxds_xds_push_bytes_total'): Promise<Record<string, number>> {
  const text = await (await fetch(`http://127.0.0.1:${server.ports.admin}/metrics`)).text();
  const out: Record<string, number> = {};
  const re = new RegExp(`^${metric}\\{type="([^"]+)"\\} (\\d+(?:\\.\\d+)?(?:e\\+\\d+)?)$`, 'gm');
  for (const m of text.matchAll(re)) out[m[1]!] = Number(m[2]);
  return out;
}

function minus(a: Record<string, number>, b: Record<string, number>): Record<string, number> {
  return Object.fromEntries(
    Object.entries(a)
      .map(([k, v]) => [k, v - (b[k] ?? 0)] as const)
      .filter(([, v]) => v > 0),
  );
}

interface Proxy {
  nodeId: string;
  types: Record<string, { lastNack?: { message: string } }>;
}

async function serverNacks(server: ServeChild): Promise<string[]> {
  const { proxies } = await server.admin<{ proxies: Proxy[] }>('/debug/proxies');
  return proxies.flatMap((p) =>
    Object.entries(p.types).flatMap(([t, s]) => (s.lastNack ? [`${p.nodeId} ${t}: ${s.lastNack.message}`] : [])),
  );
}

// ------------------------------------------------------------------ 1. RSS per Envoy

async function rssProbe(bin: string, n: number): Promise<unknown> {
  const be = await startBackends();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'oxds-fleet-rss-'));
  fs.writeFileSync(path.join(dir, 'd.yaml'), configYaml(n, be));
  const server = await startServer(dir);
  const gws: Gw[] = [];
  try {
    const t0 = performance.now();
    gws.push(await startEnvoy(bin, server.ports.xds, 'rss-all', true, false));
    gws.push(await startEnvoy(bin, server.ports.xds, 'rss-trim', true, true));
    await Promise.all(gws.map((g) => serving(g, n, 900_000)));
    const syncMs = performance.now() - t0;
    // Let both settle (config applied, nothing warming) before reading RSS.
    for (const g of gws)
      await eventually(
        'no cluster warming',
        async () => ((await g.envoy.stat('cluster_manager.warming_clusters')) === 0 ? true : undefined),
        300_000,
      );
    const [all, trim] = gws.map((g) => rssMiB(g.envoy.child.pid));
    const avail = memAvailableMiB();
    const row = {
      descriptors: n,
      rssMiBAllStats: all,
      rssMiBTrimmedStats: trim,
      syncMs,
      memAvailableMiB: avail,
      fitAllStats: Math.floor(avail / all!),
      fitTrimmed: Math.floor(avail / trim!),
      serverRssMiB: rssMiB(server.child.pid),
      load: load(),
    };
    console.log(
      `  ${n} descriptors: Envoy RSS ${all!.toFixed(0)} MiB (all stats) / ${trim!.toFixed(0)} MiB (trimmed stats); ` +
        `MemAvailable ${avail.toFixed(0)} MiB → ${row.fitAllStats} / ${row.fitTrimmed} such Envoys fit; ` +
        `server RSS ${row.serverRssMiB.toFixed(0)} MiB; ` +
        `both served in ${(syncMs / 1000).toFixed(1)} s; load ${row.load}`,
    );
    return row;
  } finally {
    await Promise.all(gws.map((g) => g.envoy.stop()));
    await server.kill('SIGTERM');
    await be.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

// ------------------------------------------------------------------ 2. the fleet

interface ChangeRow {
  change: 'route' | 'endpoint';
  /** ms from the file write until each Envoy served the change. */
  latency: Stats;
  /** The server's own rebuild of that change (its /health lastBuildMs). */
  serverBuildMs: number;
  /** Rebuilds the file write caused (1 unless the watcher saw it twice). */
  serverBuilds: number;
  /** CPU ms from the file write until every Envoy served it: all Envoys together, and the server. */
  envoysCpuMs: number;
  serverCpuMs: number;
  /** xDS responses the change caused, by type (all Envoys). */
  responses: Record<string, number>;
  bytesPerEnvoy: Record<string, number>;
  bytesPerEnvoyTotal: number;
  load: string;
}

/** Polls every Envoy until `seen` holds for it; ms since `t0` per Envoy. */
async function untilEveryEnvoy(
  fleet: Gw[],
  t0: number,
  probe: (g: Gw) => Promise<boolean>,
  what: string,
): Promise<number[]> {
  return Promise.all(
    fleet.map(async (g) => {
      const deadline = Date.now() + 300_000;
      for (;;) {
        if (await probe(g)) return performance.now() - t0;
        if (Date.now() > deadline) throw new Error(`${what}: not served by ${g.envoy.admin} after 300 s`);
        await new Promise((r) => setTimeout(r, POLL_MS));
      }
    }),
  );
}

type FleetServer = Awaited<ReturnType<typeof startServer>>;
interface FleetRun {
  flavour: string;
  server: FleetServer;
  fleet: Gw[];
  file: string;
  be: Awaited<ReturnType<typeof startBackends>>;
}

/** One config change: the time until every Envoy serves it, and what the server sent for it. */
async function measureChange(
  r: FleetRun,
  change: 'route' | 'endpoint',
  cfg: { route?: boolean; endpoint?: boolean },
): Promise<ChangeRow> {
  const { flavour, server, fleet, file, be } = r;
  const builds = (await server.admin<{ builds: number }>('/health')).builds;
  const b0 = await pushBytes(server);
  const p0 = await pushBytes(server, 'oxds_xds_pushes_total');
  const loadAt = load();
  const cpu0 = fleetCpu(r);
  const tw = performance.now();
  writeAtomically(file, configYaml(N, be, cfg));
  const times = await untilEveryEnvoy(
    fleet,
    tw,
    change === 'route'
      ? async (g) => (await get(g, ROUTE_CHANGED, '/x')).status === 404
      : async (g) => (await get(g, EDS_CHANGED, '/x')).body === 'moved',
    change,
  );
  const cpu1 = fleetCpu(r);
  // Everything the change caused has been written once every Envoy serves it and ACKed.
  await eventually(
    'the rebuild counted',
    async () => ((await server.admin<{ builds: number }>('/health')).builds > builds ? true : undefined),
    60_000,
  );
  await new Promise((r) => setTimeout(r, 1000));
  const health = await server.admin<{ builds: number; lastBuildMs: number }>('/health');
  const bytes = minus(await pushBytes(server), b0);
  const pushes = minus(await pushBytes(server, 'oxds_xds_pushes_total'), p0);
  const perEnvoy = Object.fromEntries(Object.entries(bytes).map(([k, v]) => [k, v / ENVOYS]));
  const row: ChangeRow = {
    change,
    latency: stats(times),
    serverBuildMs: health.lastBuildMs,
    serverBuilds: health.builds - builds,
    envoysCpuMs: (cpu1.envoys - cpu0.envoys) / 1000,
    serverCpuMs: (cpu1.server - cpu0.server) / 1000,
    responses: pushes,
    bytesPerEnvoy: perEnvoy,
    bytesPerEnvoyTotal: Object.values(perEnvoy).reduce((a, b) => a + b, 0),
    load: loadAt,
  };
  console.log(
    `  ${flavour} ${change}: every Envoy serves it ${row.latency.max.toFixed(0)} ms after the file write ` +
      `(first ${row.latency.min.toFixed(0)}, p50 ${row.latency.p50.toFixed(0)}; ` +
      `server rebuild ${row.serverBuildMs} ms, ${row.serverBuilds} build(s)); ` +
      `CPU until then: Envoys ${row.envoysCpuMs.toFixed(0)} ms (${(row.envoysCpuMs / ENVOYS).toFixed(1)} per Envoy), ` +
      `server ${row.serverCpuMs.toFixed(0)} ms; ` +
      `${(row.bytesPerEnvoyTotal / 1024).toFixed(1)} KiB per Envoy ${JSON.stringify(perEnvoy)}, ` +
      `responses ${JSON.stringify(pushes)}; load ${loadAt}`,
  );
  return row;
}

/** CPU µs so far of every Envoy of the run together, and of the server (polls included: 1 request per poll). */
function fleetCpu(r: FleetRun): { envoys: number; server: number } {
  let envoys = 0;
  for (const g of r.fleet) envoys += cpuUs(g.envoy.child.pid!);
  return { envoys, server: cpuUs(r.server.child.pid!) };
}

async function fleetRun(bin: string, flavour: string): Promise<unknown> {
  const delta = flavour !== 'sotw';
  const be = await startBackends();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'oxds-fleet-'));
  const file = path.join(dir, 'd.yaml');
  fs.writeFileSync(file, configYaml(N, be));
  // `delta` is Delta with the whole route table over RDS (the shape before VHDS), `vhds` the default.
  const server = await startServer(dir, flavour === 'delta' ? ['--route-discovery', 'rds'] : []);
  const fleet: Gw[] = [];
  try {
    const t0 = performance.now();
    const before = await pushBytes(server);
    for (let i = 0; i < ENVOYS; i += BATCH) {
      const batch = await Promise.all(
        Array.from({ length: Math.min(BATCH, ENVOYS - i) }, (_, j) =>
          startEnvoy(bin, server.ports.xds, `fleet-${flavour}-${i + j}`, delta, STATS === 'trim'),
        ),
      );
      await Promise.all(batch.map((g) => serving(g, N, 600_000)));
      fleet.push(...batch);
      process.stdout.write(`\r  ${flavour}: ${fleet.length}/${ENVOYS} Envoys serving`);
    }
    const syncMs = performance.now() - t0;
    const initial = minus(await pushBytes(server), before);
    const rss = fleet.map((g) => rssMiB(g.envoy.child.pid));
    console.log(
      `\r  ${flavour}: ${ENVOYS} Envoys serving ${N} descriptors after ${(syncMs / 1000).toFixed(1)} s; ` +
        `Envoy RSS median ${stats(rss).p50.toFixed(0)} MiB ` +
        `(sum ${(rss.reduce((a, b) => a + b, 0) / 1024).toFixed(1)} GiB); ` +
        `server RSS ${rssMiB(server.child.pid).toFixed(0)} MiB; load ${load()}`,
    );
    const proxies = (await server.admin<{ proxies: Proxy[] }>('/debug/proxies')).proxies.length;
    const rows: ChangeRow[] = [];
    const run: FleetRun = { flavour, server, fleet, file, be };
    const changes: { change: 'route' | 'endpoint'; cfg: { route?: boolean; endpoint?: boolean } }[] = [
      { change: 'route', cfg: { route: true } },
      { change: 'endpoint', cfg: { route: true, endpoint: true } },
    ];
    for (const { change, cfg } of changes) rows.push(await measureChange(run, change, cfg));
    const rejected = (await Promise.all(fleet.map((g) => g.envoy.rejected()))).filter((r) => Object.keys(r).length > 0);
    const nacks = await serverNacks(server);
    if (rejected.length > 0 || nacks.length > 0)
      console.log(`  NACKS: ${JSON.stringify(rejected).slice(0, 500)} ${nacks.slice(0, 5).join('; ')}`);
    return {
      flavour,
      envoys: ENVOYS,
      descriptors: N,
      stats: STATS,
      streamsOnServer: proxies,
      syncMs,
      initialBytesPerEnvoy: Object.values(initial).reduce((a, b) => a + b, 0) / ENVOYS,
      envoyRssMiB: stats(rss),
      changes: rows,
      envoysWithRejections: rejected.length,
      serverNacks: nacks.length,
    };
  } finally {
    await Promise.all(fleet.map((g) => g.envoy.stop()));
    for (const g of fleet) g.agent.destroy();
    await server.kill('SIGTERM');
    await be.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

// ------------------------------------------------------------------ first request: on demand vs eager

/** ms of one GET through `g` for host s<i> (status must be 200). */
async function timedGet(g: Gw, i: number, which: 'first' | 'second'): Promise<number> {
  const t = performance.now();
  const r = await get(g, i, '/x');
  if (r.status !== 200) throw new Error(`s${i}: status ${r.status} on its ${which} request`);
  return performance.now() - t;
}

/**
 * One Delta Envoy per mode on N descriptors: the first request to each of ONDEMAND_HOSTS fresh hosts
 * (sequential, one keep-alive connection), then a second request to each. `vhds-on-demand`: the
 * first request waits while Envoy fetches the virtual host; `vhds`: every host is already held.
 */
async function onDemandRun(bin: string, mode: 'vhds' | 'vhds-on-demand'): Promise<unknown> {
  const be = await startBackends();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'oxds-ondemand-'));
  fs.writeFileSync(path.join(dir, 'd.yaml'), configYaml(N, be));
  const server = await startServer(dir, ['--route-discovery', mode]);
  let g: Gw | undefined;
  try {
    g = await startEnvoy(bin, server.ports.xds, `ondemand-${mode}`, true, true);
    const hosts = Array.from({ length: Math.min(ONDEMAND_HOSTS, N - 2) }, (_, k) => 1 + k);
    // Warm the connection with a host the probe does not use.
    await eventually('the last host', async () => ((await get(g!, N - 1, '/x')).status === 200 ? true : undefined));
    const first: number[] = [];
    for (const i of hosts) first.push(await timedGet(g, i, 'first'));
    const second: number[] = [];
    for (const i of hosts) second.push(await timedGet(g, i, 'second'));
    const rejected = await g.envoy.rejected();
    const row = { mode, hosts: hosts.length, first: stats(first), second: stats(second), rejected, load: load() };
    console.log(
      `  ${mode}: first request p50 ${row.first.p50.toFixed(2)} ms, p99 ${row.first.p99.toFixed(2)} ms ` +
        `(second request p50 ${row.second.p50.toFixed(2)}, p99 ${row.second.p99.toFixed(2)}) over ${hosts.length} ` +
        `fresh hosts; rejected ${JSON.stringify(rejected)}; load ${row.load}`,
    );
    return row;
  } finally {
    await g?.envoy.stop();
    g?.agent.destroy();
    await server.kill('SIGTERM');
    await be.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

// ------------------------------------------------------------------ 3. the floor

function spawnChild(script: string, args: string[]): ChildProcess {
  return fork(path.join(here, script), args, { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
}

/** Bare grpc-js: `bytes` to each of `streams` streams, one HTTP/2 connection each (2 client processes). */
async function floor(streams: number, bytes: number): Promise<Stats> {
  const server = spawnChild('push-server.js', ['floor']);
  const clients: ChildProcess[] = [];
  try {
    const port = Number((await next(server, 'ready', 60_000, 'floor server'))['port']);
    const per = Math.ceil(streams / 2);
    for (let p = 0; p < 2; p++) {
      const n = Math.min(per, streams - p * per);
      if (n > 0)
        clients.push(spawnChild('push-client.js', [String(port), String(n), String(n), 'floor', String(p * per)]));
    }
    await Promise.all(clients.map((c) => next(c, 'synced', 120_000, 'floor clients')));
    await Promise.all(
      clients.map((c) => {
        const w = next(c, 'armed', 10_000, 'armed');
        c.send({ cmd: 'arm' });
        return w;
      }),
    );
    const changed = clients.map((c) => next(c, 'changed', 120_000, 'floor payload received'));
    const sent = next(server, 'sent', 60_000, 'floor sent');
    server.send({ cmd: 'send', bytes: Math.max(1, Math.round(bytes)) });
    const tSend = Number((await sent)['tSend']);
    await Promise.all(changed);
    const reports = await Promise.all(
      clients.map((c) => {
        const w = next(c, 'report', 30_000, 'report');
        c.send({ cmd: 'report' });
        return w;
      }),
    );
    const at = reports.flatMap((r) => (r['streams'] as { changeAt: number }[]).map((s) => s.changeAt - tSend));
    return stats(at);
  } finally {
    for (const c of [...clients, server]) {
      try {
        c.send({ cmd: 'exit' });
      } catch {
        /* gone */
      }
      setTimeout(() => c.exitCode === null && c.kill('SIGKILL'), 2000).unref();
    }
  }
}

// ------------------------------------------------------------------ main

const found = findEnvoy();
if ('missing' in found) {
  console.log(`  skipped: ${found.missing}; ${ENVOY_HOWTO}`);
  process.exit(0);
}
const out: Record<string, unknown> = {
  machine: {
    cpus: os.cpus().length,
    model: os.cpus()[0]?.model,
    memGB: Math.round(os.totalmem() / 2 ** 30),
    node: process.version,
  },
  at: new Date().toISOString(),
  loadAtStart: load(),
};
if (!SKIP.has('rss')) {
  console.log('== RSS per Envoy (one Envoy with all stats, one with trimmed stats, Delta)');
  const rows: unknown[] = [];
  for (const n of RSS_SIZES) rows.push(await rssProbe(found.bin, n));
  out['rss'] = rows;
}
if (!SKIP.has('fleet')) {
  console.log(
    `== ${ENVOYS} Envoys, ${N} descriptors: a route change and an endpoint change until every Envoy serves it`,
  );
  const rows: { flavour: string; changes: ChangeRow[] }[] = [];
  for (const m of MODES) rows.push((await fleetRun(found.bin, m)) as { flavour: string; changes: ChangeRow[] });
  out['fleet'] = rows;
  if (!SKIP.has('floor')) {
    const floors: unknown[] = [];
    for (const r of rows)
      for (const c of r.changes) {
        const f = await floor(ENVOYS, c.bytesPerEnvoyTotal);
        console.log(
          `  floor for ${r.flavour} ${c.change} ` +
            `(bare grpc-js, ${(c.bytesPerEnvoyTotal / 1024).toFixed(1)} KiB × ${ENVOYS} streams): ` +
            `all in ${f.max.toFixed(0)} ms (p50 ${f.p50.toFixed(0)})`,
        );
        floors.push({ flavour: r.flavour, change: c.change, bytes: c.bytesPerEnvoyTotal, latency: f });
      }
    out['floor'] = floors;
  }
}
if (!SKIP.has('ondemand')) {
  console.log(`== first request to a fresh host, ${N} descriptors, one Delta Envoy: on demand vs eager VHDS`);
  out['ondemand'] = [await onDemandRun(found.bin, 'vhds-on-demand'), await onDemandRun(found.bin, 'vhds')];
}
out['loadAtEnd'] = load();
fs.mkdirSync(path.join(repo, 'bench', 'results'), { recursive: true });
fs.writeFileSync(path.join(repo, 'bench', 'results', 'fleet.json'), `${JSON.stringify(out, null, 2)}\n`);
