// Real-Envoy benchmarks (bench/results/envoy.json; `npm run bench`, BENCH_SKIP=envoy-authz,envoy-propagation):
// 1. Latency added by ext_authz: one Envoy, one `serve` child process, one backend; paced wrk
//    load (rate/100 connections, 10 ms pause between requests) at BENCH_ENVOY_RATES (default 200,1000 req/s) on a route
// checked by ext_authz (apikey)
//    and on the same kind of route with the Check disabled (a public descriptor), alternating.
// 2. Config propagation: BENCH_ENVOY_FLEETS (default 20,50) real Envoys on one server, SotW and
//    Delta; one descriptor added to the config directory, time until every Envoy serves it
//    (each polled with real requests). Floor: the first Envoy of the same run.
import { execFile, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { envList, stats } from './gen.js';
import { descriptorYaml, eventually, EnvoyProcess } from '../test/helpers/envoy.js';
import { freeServePorts, startServeChild, type ServeChild } from '../test/helpers/serve-child.js';
import { findEnvoy, ENVOY_HOWTO } from '../src/envoy/find-envoy.js';
import { gatewayBootstrapYaml } from '../src/envoy/bootstrap.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '..', '..');
const RATES = envList('BENCH_ENVOY_RATES', [200, 1000]);
const FLEETS = envList('BENCH_ENVOY_FLEETS', [20, 50]);
const SKIP = new Set((process.env['BENCH_SKIP'] ?? '').split(',').filter(Boolean));
const SLICE_MS = Number(process.env['BENCH_ENVOY_SLICE_MS'] ?? 5000);

/** A minimal keep-alive backend (fixed small JSON body). */
async function startHttpBackend(_id: string): Promise<{ port: number; stop(): Promise<void> }> {
  const server = http.createServer((_req, res) => {
    res.setHeader('content-type', 'application/json');
    res.end('{"ok":true}');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as { port: number }).port;
  return {
    port,
    stop: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

const KEY = { 'otoroshi-client-id': 'bench-client', 'otoroshi-client-secret': 'bench-secret' };

function latencyConfig(backendPort: number): string {
  return (
    descriptorYaml('open', `hosts: [open.bench]\ntargets: [{url: "http://127.0.0.1:${backendPort}"}]`) +
    `apiVersion: proxy.otoroshi.io/v1alpha1
kind: ServiceDescriptor
metadata: {name: checked, namespace: default}
spec:
  forceHttps: false
  groups: [bench]
  hosts: [checked.bench]
  targets: [{url: "http://127.0.0.1:${backendPort}"}]
---
apiVersion: proxy.otoroshi.io/v1alpha1
kind: ApiKey
metadata: {name: bench, namespace: default}
spec:
  clientId: bench-client
  clientSecret: bench-secret
  authorizedEntities: [bench]
  throttlingQuota: 100000000
  dailyQuota: 100000000000
  monthlyQuota: 100000000000
`
  );
}

async function gateway(
  bin: string,
  server: ServeChild,
  nodeId: string,
  delta: boolean,
): Promise<{ envoy: EnvoyProcess; port: number }> {
  const envoy = await EnvoyProcess.start(
    bin,
    gatewayBootstrapYaml({
      xdsAddress: `127.0.0.1:${server.ports.xds}`,
      nodeId,
      nodeCluster: 'otoroshi-gateway',
      adminAddress: '127.0.0.1',
      adminPort: 0,
      delta,
    }),
  );
  await envoy.ready(120_000);
  const port = await eventually('the oxds-http listener', () => envoy.listenerPort('oxds-http'), 120_000);
  return { envoy, port };
}

function run(cmd: string, args: string[], timeout: number): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve) =>
    execFile(cmd, args, { encoding: 'utf8', timeout }, (_e, stdout, stderr) => resolve({ stdout, stderr })),
  );
}

/**
 * Paced load with wrk (C, not this process's event loop): `conns` connections, each waiting
 * `delayMs` between requests (wrk's Lua `delay()`), so that the offered rate is about `rate`.
 * wrk measures each request's latency (the pause excluded) and reports its percentiles.
 */
async function wrk(
  port: number,
  host: string,
  headers: Record<string, string>,
  rate: number,
  ms: number,
): Promise<{ p50: number; p90: number; p99: number; achieved: number; non2xx: number; requests: number }> {
  const conns = Math.max(1, Math.round(rate / 100));
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'oxds-wrk-'));
  const script = path.join(dir, 'paced.lua');
  const hdrs = Object.entries({ Host: host, ...headers })
    .map(([k, v]) => `wrk.headers[${JSON.stringify(k)}] = ${JSON.stringify(v)}`)
    .join('\n');
  fs.writeFileSync(script, `${hdrs}\nfunction delay() return 10 end\n`);
  // Asynchronously: the backend lives in this process's event loop.
  const r = await run(
    'wrk',
    [
      '-t',
      '1',
      '-c',
      String(conns),
      '-d',
      `${Math.round(ms / 1000)}s`,
      '--latency',
      '-s',
      script,
      `http://127.0.0.1:${port}/x`,
    ],
    ms + 60_000,
  );
  fs.rmSync(dir, { recursive: true, force: true });
  const text = r.stdout;
  const q = (label: string): number => {
    const m = new RegExp(`^\\s*${label}%\\s+([0-9.]+)(us|ms|s)`, 'm').exec(text);
    if (!m?.[1]) return NaN;
    const v = Number(m[1]);
    return m[2] === 'us' ? v / 1000 : m[2] === 's' ? v * 1000 : v;
  };
  const requests = Number(/(\d+) requests in/.exec(text)?.[1] ?? NaN);
  if (!(requests > 0)) console.log(`  wrk: ${text}${r.stderr}`);
  const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(text)?.[1] ?? 0);
  return { p50: q('50'), p90: q('90'), p99: q('99'), achieved: requests / (ms / 1000), non2xx, requests };
}

async function latencyBench(bin: string): Promise<unknown> {
  const backend = await startHttpBackend('bench');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'oxds-bench-envoy-'));
  fs.writeFileSync(path.join(dir, 'd.yaml'), latencyConfig(backend.port));
  const server = await startServeChild(dir, await freeServePorts(), ['--log-level', 'warn']);
  const { envoy, port } = await gateway(bin, server, 'bench-latency', true);
  try {
    await eventually(
      'checked route served',
      async () => ((await status(port, 'checked.bench', KEY)) === 200 ? true : undefined),
      60_000,
    );
    await wrk(port, 'open.bench', {}, 200, 2000); // warm-up
    await wrk(port, 'checked.bench', KEY, 200, 2000);
    const rows: unknown[] = [];
    for (const rate of RATES) {
      // Alternating arms, twice, so that drift in the machine's load hits both alike.
      const runs: Awaited<ReturnType<typeof wrk>>[] = [];
      for (let round = 0; round < 2; round++)
        runs.push(
          await wrk(port, 'open.bench', {}, rate, SLICE_MS),
          await wrk(port, 'checked.bench', KEY, rate, SLICE_MS),
        );
      const arm = (i: number): { p50: number; p90: number; p99: number; achieved: number; non2xx: number } => {
        const xs = runs.filter((_, j) => j % 2 === i);
        const med = (k: 'p50' | 'p90' | 'p99' | 'achieved'): number => Math.max(...xs.map((x) => x[k]));
        return {
          p50: med('p50'),
          p90: med('p90'),
          p99: med('p99'),
          achieved: xs.reduce((a, x) => a + x.achieved, 0) / xs.length,
          non2xx: xs.reduce((a, x) => a + x.non2xx, 0),
        };
      };
      const off = arm(0);
      const on = arm(1);
      const row = { rate, noAuthz: off, authz: on, addedP50Ms: on.p50 - off.p50, addedP99Ms: on.p99 - off.p99 };
      console.log(
        `  ~${rate} req/s (achieved ${off.achieved.toFixed(0)} / ${on.achieved.toFixed(0)}): ` +
          `without ext_authz p50 ${off.p50.toFixed(3)} ms p99 ${off.p99.toFixed(3)} ms | ` +
          `with p50 ${on.p50.toFixed(3)} ms p99 ${on.p99.toFixed(3)} ms | ` +
          `added p50 ${row.addedP50Ms.toFixed(3)} ms p99 ${row.addedP99Ms.toFixed(3)} ms | ` +
          `non-2xx ${off.non2xx}/${on.non2xx}`,
      );
      rows.push(row);
    }
    return {
      rows,
      sliceMs: SLICE_MS,
      rounds: 2,
      tool: 'wrk, 1 thread, rate/100 connections, 10 ms pause per connection (Lua delay)',
    };
  } finally {
    await envoy.stop();
    await server.kill('SIGTERM');
    await backend.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

function status(port: number, host: string, headers: Record<string, string> = {}): Promise<number> {
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/', headers: { host, ...headers }, agent: false }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.setTimeout(5000, () => req.destroy());
    req.on('error', () => resolve(0));
  });
}

async function propagationBench(bin: string, n: number, delta: boolean): Promise<unknown> {
  const backend = await startHttpBackend('bench');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'oxds-bench-prop-'));
  fs.writeFileSync(
    path.join(dir, 'a.yaml'),
    descriptorYaml('base', `hosts: [base.bench]\ntargets: [{url: "http://127.0.0.1:${backend.port}"}]`),
  );
  const server = await startServeChild(dir, await freeServePorts(), ['--log-level', 'warn', '--envoy-authz', 'off']);
  const fleet: { envoy: EnvoyProcess; port: number }[] = [];
  try {
    for (let i = 0; i < n; i++) fleet.push(await gateway(bin, server, `bench-${delta ? 'delta' : 'sotw'}-${i}`, delta));
    for (const g of fleet)
      await eventually(
        'base served',
        async () => ((await status(g.port, 'base.bench')) === 200 ? true : undefined),
        120_000,
      );
    const rss = fleet.length;
    const t0 = performance.now();
    fs.writeFileSync(
      path.join(dir, 'b.yaml'),
      descriptorYaml('changed', `hosts: [changed.bench]\ntargets: [{url: "http://127.0.0.1:${backend.port}"}]`),
    );
    const times = await Promise.all(
      fleet.map(async (g) => {
        await eventually(
          'the change served',
          async () => ((await status(g.port, 'changed.bench')) === 200 ? true : undefined),
          120_000,
        );
        return performance.now() - t0;
      }),
    );
    const s = stats(times);
    console.log(
      `  ${n} Envoys, ${delta ? 'Delta' : 'SotW'}: first ${s.min.toFixed(0)} ms (floor), p50 ${s.p50.toFixed(0)}` +
        ` ms, all ${s.max.toFixed(0)} ms (${(s.max / s.min).toFixed(2)}x the first)`,
    );
    return {
      envoys: rss,
      flavour: delta ? 'delta' : 'sotw',
      firstMs: s.min,
      p50Ms: s.p50,
      allMs: s.max,
      allOverFirst: s.max / s.min,
    };
  } finally {
    await Promise.all(fleet.map((g) => g.envoy.stop()));
    await server.kill('SIGTERM');
    await backend.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

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
};
if (!SKIP.has('envoy-authz')) {
  console.log(
    `== ext_authz latency through Envoy (paced wrk, ${SLICE_MS} ms x 2 rounds per arm, worst round reported)`,
  );
  // wrk is a load tool of this bench only: without it, say so instead of printing empty rounds.
  if (spawnSync('wrk', ['--version']).error !== undefined)
    console.log('  skipped: no `wrk` on PATH (install it, e.g. Debian package wrk)');
  else out['authzLatency'] = await latencyBench(found.bin);
}
if (!SKIP.has('envoy-propagation')) {
  console.log('== config propagation: one descriptor added, until every Envoy serves it');
  const rows: unknown[] = [];
  for (const n of FLEETS) for (const delta of [false, true]) rows.push(await propagationBench(found.bin, n, delta));
  out['propagation'] = rows;
}
fs.mkdirSync(path.join(repo, 'bench', 'results'), { recursive: true });
fs.writeFileSync(path.join(repo, 'bench', 'results', 'envoy.json'), `${JSON.stringify(out, null, 2)}\n`);
