// mTLS overhead per request through two real Envoy sidecars (docs/mesh.md), same run, alternating:
//   direct     h2load → the app (floor: no Envoy)
//   plaintext  h2load → A's sidecar (explicit proxy port) → plain HTTP → B's sidecar inbound → the app
//              (B is PERMISSIVE; descriptor `bplain` targets B's inbound port as a plain address)
//   mesh mTLS  h2load → A's sidecar → mTLS (workload certificates over SDS, SAN checked) → B's sidecar → the app
// Both Envoy paths cross the same two Envoys and the same B inbound route; ext_authz is off
// (`--envoy-authz off`) so the difference is the mesh hop's TLS. One control plane in this process
// (mTLS on the xDS port, each sidecar with its workload's xDS client certificate), one app
// (bare node:http, in this process). h2load --h1 (one thread), BENCH_MTLS_CONNS (default 10)
// connections, closed loop, BENCH_MTLS_SLICE_S (default 5) s per slice after 1 s warm-up,
// BENCH_MTLS_ROUNDS (default 3) rounds; p50/p99 from h2load's per-request log.
// Run: `npm run build --silent && node dist/bench/sidecar-mtls.js` (needs Envoy and h2load).
// Writes bench/results/sidecar-mtls.json.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import type net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { envInt } from './gen.js';
import { sidecarBootstrapYaml } from '../src/envoy/bootstrap.js';
import { findEnvoy, ENVOY_HOWTO } from '../src/envoy/find-envoy.js';
import { startServer, makeLogger, type RunningServer } from '../src/main.js';
import { EnvoyProcess, eventually, httpRequest, nodeConverged, testConfig, writeFiles } from '../test/helpers/envoy.js';
import { freePort } from '../test/helpers/redis.js';
import { descriptorB, meshPki, podYaml, type MeshPki } from '../test/helpers/mesh.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '..', '..');
const CONNS = envInt('BENCH_MTLS_CONNS', 10);
const SLICE_S = envInt('BENCH_MTLS_SLICE_S', 5);
const ROUNDS = envInt('BENCH_MTLS_ROUNDS', 3);

interface LoadResult {
  rps: number;
  p50: number;
  p99: number;
  requests: number;
  non2xx: number;
  errors: string;
}

/** Closed-loop load with h2load (HTTP/1.1); latency percentiles from its per-request log. */
function load(port: number, host: string): Promise<LoadResult> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'oxds-h2load-'));
  const log = path.join(dir, 'requests.log');
  const args = ['--h1', '-c', String(CONNS), '-m', '1', '-D', String(SLICE_S), '--warm-up-time=1'];
  args.push('-H', `:authority: ${host}`, '--log-file', log, `http://127.0.0.1:${port}/x`);
  return new Promise((resolve) =>
    execFile('h2load', args, { encoding: 'utf8', timeout: SLICE_S * 1000 + 60_000 }, (_e, out, err) => {
      const rows = fs.existsSync(log)
        ? fs
            .readFileSync(log, 'utf8')
            .split('\n')
            .filter((l) => l !== '')
            .map((l) => l.split('\t'))
        : [];
      fs.rmSync(dir, { recursive: true, force: true });
      const lat = rows.map((r) => Number(r[2]) / 1000).sort((a, b) => a - b);
      const pct = (p: number): number => lat[Math.min(lat.length - 1, Math.floor((p / 100) * lat.length))] ?? NaN;
      const non2xx = rows.filter((r) => !(r[1] ?? '').startsWith('2')).length;
      const failed = /(\d+) failed/.exec(out)?.[1] ?? '?';
      resolve({
        rps: Number(/finished in [0-9.]+\w+, ([0-9.]+) req\/s/.exec(out)?.[1] ?? NaN),
        p50: pct(50),
        p99: pct(99),
        requests: lat.length,
        non2xx,
        errors: failed === '0' ? '' : `failed ${failed} ${err.trim().slice(0, 200)}`,
      });
    }),
  );
}

const loadavg = (): string =>
  os
    .loadavg()
    .map((x) => x.toFixed(1))
    .join(' ');

async function app(): Promise<{ port: number; stop(): Promise<void> }> {
  const server = http.createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end('ok');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    port: (server.address() as net.AddressInfo).port,
    stop: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

async function converged(server: RunningServer, envoy: EnvoyProcess, nodeId: string): Promise<void> {
  await eventually(`${nodeId} to ACK its snapshot`, () => (nodeConverged(server, nodeId) ? true : undefined), 60_000);
  await eventually(
    `${nodeId} to finish warming`,
    async () => {
      const s = await envoy.stats('warming');
      const warming =
        (s['listener_manager.total_listeners_warming'] ?? 0) + (s['cluster_manager.warming_clusters'] ?? 0);
      return warming === 0 ? true : undefined;
    },
    60_000,
  );
}

/** The Envoy binary; without one the benchmark is skipped (exit 0). */
function envoyBin(): string {
  const found = findEnvoy();
  const bin = 'bin' in found ? found.bin : undefined;
  if (bin === undefined) {
    console.log(`sidecar-mtls: skipped, ${ENVOY_HOWTO}`);
    process.exit(0);
  }
  return bin;
}

/** Pods A and B (B PERMISSIVE), descriptor B and `bplain` (B's inbound port as a plain address). */
function writeMeshConfig(cfgDir: string, aIn: number, bIn: number): void {
  const bplain = `apiVersion: proxy.otoroshi.io/v1alpha1
kind: ServiceDescriptor
metadata: {name: bplain, namespace: shop}
spec:
  forceHttps: false
  overrideHost: true
  hosts: [bplain.oto.tools]
  targets: [{host: "b.oto.tools:${bIn}", scheme: http, ipAddress: 127.0.0.1}]
---
`;
  writeFiles(cfgDir, {
    'pods.yaml':
      podYaml('a-1', 'a', { app: 'a' }, aIn) +
      podYaml('b-1', 'b', { app: 'b' }, bIn, { 'otoroshi.io/sidecar-mtls-mode': 'PERMISSIVE' }),
    'b.yaml': descriptorB() + '---\n' + bplain,
  });
}

interface SidecarContext {
  bin: string;
  dir: string;
  pki: MeshPki;
  server: RunningServer;
  appPort: number;
  /** Every started sidecar, for the cleanup (pushed as soon as its process starts). */
  envoys: EnvoyProcess[];
}

/** One sidecar for service account `sa`, with its workload's xDS client certificate; ready and converged. */
async function startSidecar(
  ctx: SidecarContext,
  sa: string,
  inbound: number,
  proxy: number,
  out: number,
): Promise<EnvoyProcess> {
  const xdsCert = ctx.pki.xdsClient(sa);
  const nodeId = `bench-${sa}-${process.pid}`;
  const bootstrap = sidecarBootstrapYaml({
    xdsAddress: `127.0.0.1:${ctx.server.xdsPort}`,
    namespace: 'shop',
    serviceAccount: sa,
    nodeId,
    appPort: ctx.appPort,
    inboundAddress: '127.0.0.1',
    inboundPort: inbound,
    outboundPort: out,
    proxyPort: proxy,
    adminPort: 0,
    tls: { caFile: ctx.pki.caRootFile, certFile: xdsCert.cert, keyFile: xdsCert.key },
  });
  const edir = path.join(ctx.dir, `envoy-${sa}`);
  fs.mkdirSync(edir);
  const envoy = await EnvoyProcess.start(ctx.bin, bootstrap, { dir: edir });
  ctx.envoys.push(envoy);
  await envoy.ready(120_000);
  await converged(ctx.server, envoy, nodeId);
  return envoy;
}

interface Arm {
  name: string;
  port: number;
  host: string;
}

interface Row {
  arm: string;
  round: number;
  load: string;
  r: LoadResult;
}

/** Each path answers 200 before measuring (the mesh path proves the SDS certificates are in place). */
async function checkArms(server: RunningServer, arms: Arm[]): Promise<void> {
  for (const st of server.statuses())
    if (st.errors.length > 0)
      console.log(`config: ${st.kind} ${st.name}: ${st.errors.map((e) => e.message).join('; ')}`);
  for (const a of arms)
    await eventually(
      `${a.name} answers 200`,
      async () => {
        const r = await httpRequest({ port: a.port, host: a.host, path: '/x' });
        if (r.status !== 200) throw new Error(`${r.status} ${r.body.slice(0, 200)}`);
        return true;
      },
      60_000,
    );
}

/** One warm-up slice per arm, then ROUNDS rounds alternating the arms. */
async function measure(arms: Arm[]): Promise<Row[]> {
  for (const a of arms) await load(a.port, a.host); // warm-up
  const rows: Row[] = [];
  for (let round = 1; round <= ROUNDS; round++)
    for (const a of arms) {
      const r = await load(a.port, a.host);
      rows.push({ arm: a.name, round, load: loadavg(), r });
    }
  return rows;
}

/** Prints the table (with the sidecars' rejections, NACKs and B's TLS handshakes) and writes the JSON. */
async function report(server: RunningServer, envoys: EnvoyProcess[], bin: string, rows: Row[]): Promise<void> {
  const rejected = await Promise.all(envoys.map((e) => e.rejected()));
  // The mesh arm did cross TLS: B's inbound counts handshakes (the plaintext arms add none).
  const handshakes = await (envoys[1] as EnvoyProcess).stats('listener\\..*ssl\\.handshake$');
  const nacks = server.ads.statuses().flatMap((s) => Object.values(s.types).filter((x) => x.lastNack)).length;
  console.log(
    `\n== mTLS overhead through two Envoy sidecars (h2load --h1 -c${CONNS}, ${SLICE_S} s slices, ${ROUNDS} rounds ` +
      `alternating; Envoy ${path.basename(bin)}, ${os.cpus().length} cores); rejected ${JSON.stringify(rejected)}, ` +
      `NACKs ${nacks}; B inbound TLS handshakes ${JSON.stringify(handshakes)}`,
  );
  console.log('| path | round | req/s | p50 ms | p99 ms | non-2xx | load |');
  console.log('| --- | --- | --- | --- | --- | --- | --- |');
  for (const x of rows)
    console.log(
      `| ${x.arm} | ${x.round} | ${x.r.rps.toFixed(0)} | ${x.r.p50.toFixed(2)} | ${x.r.p99.toFixed(2)} | ` +
        `${x.r.non2xx}${x.r.errors ? ` ${x.r.errors}` : ''} | ${x.load} |`,
    );
  const out = path.join(repo, 'bench', 'results');
  fs.mkdirSync(out, { recursive: true });
  fs.writeFileSync(path.join(out, 'sidecar-mtls.json'), `${JSON.stringify({ rows, rejected, nacks }, null, 2)}\n`);
}

async function main(): Promise<void> {
  const bin = envoyBin();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'oxds-bench-mtls-'));
  const pki = meshPki(dir, Date.now() - 60_000, '127.0.0.1');
  const cfgDir = path.join(dir, 'config');
  fs.mkdirSync(cfgDir);
  const [aIn, bIn, aProxy, bProxy, aOut, bOut] = (await Promise.all([1, 2, 3, 4, 5, 6].map(() => freePort()))) as [
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  const backend = await app();
  writeMeshConfig(cfgDir, aIn, bIn);
  const config = testConfig(cfgDir, { ...pki.serverFlags, envoyAuthz: 'off', logLevel: 'warn' });
  const server = await startServer(config, makeLogger('warn'));
  const envoys: EnvoyProcess[] = [];
  try {
    const ctx: SidecarContext = { bin, dir, pki, server, appPort: backend.port, envoys };
    await startSidecar(ctx, 'a', aIn, aProxy, aOut);
    await startSidecar(ctx, 'b', bIn, bProxy, bOut);
    const arms: Arm[] = [
      { name: 'direct to the app (floor)', port: backend.port, host: 'app' },
      { name: 'B inbound, plain HTTP (one Envoy)', port: bIn, host: 'b.oto.tools' },
      { name: 'A → plain HTTP → B (two Envoys)', port: aProxy, host: 'bplain.oto.tools' },
      { name: 'A → mesh mTLS → B (two Envoys)', port: aProxy, host: 'b.shop.otoroshi.mesh' },
    ];
    await checkArms(server, arms);
    const rows = await measure(arms);
    await report(server, envoys, bin, rows);
  } finally {
    for (const e of envoys) await e.stop();
    await server.stop();
    await backend.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
  process.exit(0);
}

await main();
