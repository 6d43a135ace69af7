// How long a rebuild blocks the server's event loop (`node dist/bench/loop-block.js`; result in
// bench/results/loop-block.json). While the loop is blocked nothing reads the xDS sockets: an
// Envoy's HTTP/2 keepalive PING stays unanswered, and past the bootstrap's keepalive timeout Envoy
// resets the ADS connection. Measured with perf_hooks.monitorEventLoopDelay (10 ms resolution)
// around the cold start and BENCH_LOOP_REBUILDS rebuilds after one descriptor changed, for
// BENCH_LOOP_N (default 10,000) descriptors; the whole server (`startServer`) in this process.
// BENCH_LOOP_ENVOY=<timeout s>: also a real Delta Envoy on the server, its bootstrap's keepalive
// interval lowered to 1 s (so that a PING is always in flight when a rebuild starts) with that
// timeout; its resets are counted (Envoy's http2.keepalive_timeout, the server's stream ids).
// During every rebuild ext_authz Checks are sent one after another (a grpc-js client in this
// process: it waits for the same event loop, so a Check's latency includes any block it meets);
// answered Checks and their latencies are reported. BENCH_LOOP_DIST=<other build's dist/> runs that
// build's server (e.g. before a change) with this bench.
// `--against <checkout or dist/>`: BENCH_LOOP_PAIRS (default 2) interleaved pairs of runs, each a
// child process, this build's server and that one's alternately (A B, B A, ...); each run's rows
// and the load are printed, then the longest block and slowest Check per row and build
// (bench/results/loop-block-pairs.json).
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { envInt, writeDocFiles } from './gen.js';
import YAML from 'yaml';
import { eventually, EnvoyProcess, nodeConverged, testConfig, TEST_GATEWAY_TOKEN } from '../test/helpers/envoy.js';
import { checkClient, callCheck, checkRequest } from '../test/helpers/check-client.js';
import { gatewayBootstrap } from '../src/envoy/bootstrap.js';
import { findEnvoy } from '../src/envoy/find-envoy.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '..', '..');
const againstAt = process.argv.indexOf('--against');
if (againstAt >= 0) {
  const to = process.argv[againstAt + 1];
  if (to === undefined) throw new Error('--against needs a checkout or dist/ directory');
  runPairs(path.join(repo, 'dist'), distOf(to));
  process.exit(0);
}
const dist = process.env['BENCH_LOOP_DIST'] ?? path.join(repo, 'dist');
const { startServer, makeLogger } = (await import(
  path.join(dist, 'src', 'main.js')
)) as typeof import('../src/main.js');
const N = envInt('BENCH_LOOP_N', 10_000);
const REBUILDS = envInt('BENCH_LOOP_REBUILDS', 3);
const ENVOY_TIMEOUT_S = envInt('BENCH_LOOP_ENVOY', 0);

/** The descriptors, one YAML document each (written as files of at most 1,000). */
function yamlOf(n: number, gen: number): string[] {
  const out: string[] = [];
  for (let i = 0; i < n; i++)
    out.push(`apiVersion: proxy.otoroshi.io/v1alpha1
kind: ServiceDescriptor
metadata: {name: s${i}, namespace: default}
spec:
  hosts: [s${i}.loop.bench]
  forceHttps: false
  publicPatterns: ['/.*']
  targets: [{url: "http://127.0.0.1:${10_000 + (i % 1000)}"}, {url: "http://127.0.0.2:${10_000 + (i % 1000)}"}]
${i === n - 1 && gen > 0 ? `  matchingRoot: /v${gen}\n` : ''}`);
  return out;
}

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'oxds-loop-'));
writeDocFiles(dir, 'd', yamlOf(N, 0));
const h = monitorEventLoopDelay({ resolution: 10 });
const ms = (ns: number): number => Math.round(ns / 1e6);
const load = (): string =>
  os
    .loadavg()
    .map((x) => x.toFixed(2))
    .join(' ');
interface Checks {
  answered: number;
  maxMs: number;
  p50Ms: number;
}
const rows: {
  what: string;
  wallMs: number;
  cpuMs: number;
  maxBlockMs: number;
  p99BlockMs: number;
  load: string;
  checks?: Checks;
}[] = [];
/** Checks sent back to back until `stop()`: how many were answered, and their latencies. */
function checkLoop(port: number): { stop: () => Promise<Checks> } {
  const client = checkClient(port);
  const body = checkRequest({ host: 's1.loop.bench', path: '/x' });
  const lat: number[] = [];
  let running = true;
  const done = (async () => {
    while (running) {
      const t = performance.now();
      await callCheck(client, body).catch(() => undefined);
      lat.push(performance.now() - t);
    }
  })();
  return {
    stop: async () => {
      running = false;
      await done;
      client.close();
      lat.sort((a, b) => a - b);
      const at = (q: number): number => Math.round(lat[Math.min(lat.length - 1, Math.floor(q * lat.length))] ?? 0);
      return { answered: lat.length, maxMs: Math.round(lat[lat.length - 1] ?? 0), p50Ms: at(0.5) };
    },
  };
}
const measure = async (what: string, fn: () => Promise<unknown>, checksPort?: number): Promise<void> => {
  const l = load();
  h.reset();
  h.enable();
  const t0 = performance.now();
  const c0 = process.cpuUsage();
  const checks = checksPort !== undefined ? checkLoop(checksPort) : undefined;
  await fn();
  const c = process.cpuUsage(c0);
  const checked = await checks?.stop();
  // One more turn so that the delay of the last block is sampled.
  await new Promise((r) => setTimeout(r, 50));
  const wallMs = Math.round(performance.now() - t0);
  const cpuMs = Math.round((c.user + c.system) / 1000);
  h.disable();
  rows.push({ what, wallMs, cpuMs, maxBlockMs: ms(h.max), p99BlockMs: ms(h.percentile(99)), load: l, checks: checked });
  const ck = checked ? `; Checks answered ${checked.answered}, p50 ${checked.p50Ms} ms, max ${checked.maxMs} ms` : '';
  console.log(
    `  ${what}: wall ${wallMs} ms, CPU ${cpuMs} ms, longest event-loop block ${ms(h.max)} ms` +
      ` (p99 ${ms(h.percentile(99))})${ck}; load ${l}`,
  );
};

const config = testConfig(dir, {
  maxConfigFileBytes: 256 * 1024 * 1024,
  maxConfigTotalBytes: 256 * 1024 * 1024,
  envoyAuthz: 'off',
});
const floorChecks = async (port: number): Promise<void> => {
  const c = checkLoop(port);
  await new Promise((r) => setTimeout(r, 2000));
  const r = await c.stop();
  console.log(
    `  floor: Checks on the idle server for 2 s: ${r.answered} answered, p50 ${r.p50Ms} ms, max ${r.maxMs} ms`,
  );
};
let server: Awaited<ReturnType<typeof startServer>> | undefined;
console.log(`== event-loop blocks, ${N} descriptors, node ${process.version}, server from ${dist}`);
await measure('cold start (startServer: parse, build, publish)', async () => {
  server = await startServer(config, makeLogger('silent'));
});
// A refused config file would leave an empty server: fail instead of measuring it.
const clusters = server!.cache.get('envoy')?.resources.cluster.size ?? 0;
if (clusters < N) throw new Error(`first snapshot has ${clusters} clusters, expected at least ${N}`);
let envoy: EnvoyProcess | undefined;
const found = findEnvoy();
const streams = (): number[] =>
  server!.ads
    .statuses()
    .filter((s) => s.nodeId === 'loop' && s.service === 'ads')
    .map((s) => s.streamId);
if (ENVOY_TIMEOUT_S > 0 && 'bin' in found) {
  const b = gatewayBootstrap({
    xdsAddress: `127.0.0.1:${server!.xdsPort}`,
    nodeId: 'loop',
    nodeCluster: 'otoroshi-gateway',
    adminAddress: '127.0.0.1',
    adminPort: 0,
    delta: true,
    token: TEST_GATEWAY_TOKEN,
  });
  const xds = (b['static_resources'] as { clusters: Record<string, unknown>[] }).clusters[0]!;
  const opts = xds['typed_extension_protocol_options'] as Record<string, Record<string, unknown>>;
  const http = opts['envoy.extensions.upstreams.http.v3.HttpProtocolOptions']!;
  http['explicit_http_config'] = {
    http2_protocol_options: { connection_keepalive: { interval: '1s', timeout: `${ENVOY_TIMEOUT_S}s` } },
  };
  envoy = await EnvoyProcess.start(found.bin, YAML.stringify(b, { lineWidth: 0 }));
  await envoy.ready(600_000);
  await eventually('Envoy in sync', () => (nodeConverged(server!, 'loop') ? true : undefined), 900_000);
  console.log(`  Envoy (Delta, keepalive 1 s / ${ENVOY_TIMEOUT_S} s) in sync on stream ${streams().join(',')}`);
}
await floorChecks(server!.authzPort);
const envoyRows: { rebuild: number; keepaliveTimeouts: number; streams: number[] }[] = [];
for (let g = 1; g <= REBUILDS; g++) {
  await measure(
    `rebuild ${g} (one descriptor's path changed)`,
    async () => {
      writeDocFiles(dir, 'd', yamlOf(N, g));
      await server!.rebuildNow();
    },
    server!.authzPort,
  );
  if (envoy) {
    await eventually('Envoy in sync', () => (nodeConverged(server!, 'loop') ? true : undefined), 900_000);
    const row = {
      rebuild: g,
      keepaliveTimeouts: await envoy.stat('cluster.xds_cluster.http2.keepalive_timeout'),
      streams: streams(),
    };
    envoyRows.push(row);
    console.log(
      `    Envoy: ${row.keepaliveTimeouts} keepalive timeout(s) so far; ADS stream now ${row.streams.join(',')}`,
    );
  }
}
const hwm = /VmHWM:\s+(\d+) kB/.exec(fs.readFileSync('/proc/self/status', 'utf8'));
const peakRssMB = hwm ? Math.round(Number(hwm[1]) / 1024) : undefined;
console.log(`  peak RSS of this process (server and bench): ${peakRssMB} MiB`);
await envoy?.stop();
await server!.stop();
fs.rmSync(dir, { recursive: true, force: true });
fs.mkdirSync(path.join(repo, 'bench', 'results'), { recursive: true });
const result = {
  at: new Date().toISOString(),
  dist,
  descriptors: N,
  peakRssMB,
  rows,
  envoyTimeoutS: ENVOY_TIMEOUT_S,
  envoyRows,
};
const outFile = process.env['BENCH_LOOP_OUT'] ?? path.join(repo, 'bench', 'results', 'loop-block.json');
fs.writeFileSync(outFile, `${JSON.stringify(result)}\n`);

/** A build's dist/ (given the checkout or the dist/ itself). */
function distOf(dir: string): string {
  const d = path.resolve(dir);
  return fs.existsSync(path.join(d, 'src', 'main.js')) ? d : path.join(d, 'dist');
}

interface RunResult {
  rows: { what: string; maxBlockMs: number; checks?: { maxMs: number } }[];
}

/** One child run of this bench on `dist`, its result read back from its own file. */
function childRun(dist: string, out: string): RunResult {
  const r = spawnSync(process.execPath, [fileURLToPath(import.meta.url)], {
    stdio: 'inherit',
    env: { ...process.env, BENCH_LOOP_DIST: dist, BENCH_LOOP_OUT: out },
  });
  if (r.status !== 0) throw new Error(`bench run on ${dist} exited with ${r.status}`);
  return JSON.parse(fs.readFileSync(out, 'utf8')) as RunResult;
}

/** Interleaved pairs of runs on two builds; the worst of each row per build, over the runs. */
function runPairs(a: string, b: string): void {
  const pairs = envInt('BENCH_LOOP_PAIRS', 2);
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'oxds-loop-pairs-'));
  const runs: { dist: string; result: RunResult }[] = [];
  for (let i = 0; i < pairs; i++)
    for (const d of i % 2 === 0 ? [a, b] : [b, a])
      runs.push({ dist: d, result: childRun(d, path.join(tmp, 'r.json')) });
  fs.rmSync(tmp, { recursive: true, force: true });
  const summary = [a, b].map((d) => {
    const mine = runs.filter((r) => r.dist === d).map((r) => r.result.rows);
    const whats = mine[0]?.map((row) => row.what) ?? [];
    return {
      dist: d,
      rows: whats.map((what) => {
        const rows = mine.map((rs) => rs.find((row) => row.what === what));
        return {
          what,
          maxBlockMs: rows.map((row) => row?.maxBlockMs ?? NaN),
          checkMaxMs: rows.map((row) => row?.checks?.maxMs ?? NaN),
        };
      }),
    };
  });
  for (const s of summary) {
    console.log(`== ${s.dist}: longest event-loop block per run (ms); slowest Check per run (ms)`);
    for (const r of s.rows)
      console.log(`  ${r.what}: blocks ${r.maxBlockMs.join(', ')}; Checks ${r.checkMaxMs.join(', ')}`);
  }
  fs.mkdirSync(path.join(repo, 'bench', 'results'), { recursive: true });
  const file = path.join(repo, 'bench', 'results', 'loop-block-pairs.json');
  fs.writeFileSync(file, `${JSON.stringify({ at: new Date().toISOString(), pairs, summary, runs })}\n`);
}
