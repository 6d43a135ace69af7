// ext_authz benchmark: h2load (gRPC unary over h2c) against
//   floor         a bare grpc-js unary server answering a constant pre-encoded CheckResponse
//   memory        registerAuthz + the real Authorizer (decide.ts) + MemoryQuotaStore
//   redis         registerAuthz + Authorizer + createQuotaStore({redisUrl}) (Redis behind the failover wrapper)
//   *-cluster2    the same under node:cluster with 2 workers sharing the port
// Each server runs in its own child process; h2load runs beside it (2 cores shared).
//   node dist/bench/authz.js [--duration 3] [--rounds 2] [--rss-seconds 60] [--cluster]   (~2 min with the defaults)
//   (--cluster adds the *-cluster2 rows, first round only; the RSS run is Redis mode at full load)
//   node dist/bench/authz.js serve <floor|memory|redis>[-cluster2] <port> [redisUrl]   (one server)
//   node dist/bench/authz.js body <file>                                            (h2load -d body)
// Writes bench/results/authz.json and prints a table. Needs h2load (nghttp2-client) and, for the
// Redis rows, redis-server (apt).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import cluster from 'node:cluster';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import pino from 'pino';
import { freePort, redisAvailable, startRedis } from '../test/helpers/redis.js';
import { parseYamlFile } from '../src/sources/yaml.js';
import { buildModel } from '../src/model/build.js';
import { buildPolicy } from '../src/authz/policy.js';
import { Authorizer } from '../src/authz/decide.js';
import { registerAuthz, startAuthzServer, AUTHORIZATION_SERVICE, CHECK_PATH } from '../src/authz/server.js';
import { encodeAllow } from '../src/authz/check-codec.js';
import { createQuotaStore } from '../src/authz/quota/index.js';
import { lookupType, TO_OBJECT_OPTIONS } from '../proto/loader.js';
import type { QuotaStore } from '../src/authz/types.js';
import { Audit, auditAuthzHooks, combineAuthzHooks } from '../src/audit.js';
import { createMetrics } from '../src/metrics.js';

const DESCRIPTORS = 50;
const APIKEYS = 2000;
const CLIENT_ID = 'bench-key-0042';
const CLIENT_SECRET = 'bench-secret-0042';
const DESCRIPTOR_ID = 'svc-7';

// ------------------------------------------------------------------ model + request

export function modelYaml(): string {
  const docs: string[] = [
    'apiVersion: proxy.otoroshi.io/v1alpha1\nkind: ServiceGroup\n' +
      'metadata: {name: bench, annotations: {otoroshi.io/id: bench}}\nspec: {name: Bench}',
  ];
  for (let i = 0; i < DESCRIPTORS; i++) {
    docs.push(`apiVersion: proxy.otoroshi.io/v1alpha1
kind: ServiceDescriptor
metadata: {name: svc-${i}, annotations: {otoroshi.io/id: svc-${i}}}
spec:
  hosts: [svc-${i}.oto.tools]
  groups: [bench]
  forceHttps: false
  targets: [{url: "http://10.0.${i}.1:8080"}]
  publicPatterns: ["/public/.*"]`);
  }
  for (let i = 0; i < APIKEYS; i++) {
    const n = String(i).padStart(4, '0');
    docs.push(`apiVersion: proxy.otoroshi.io/v1alpha1
kind: ApiKey
metadata: {name: bench-key-${n}}
spec:
  clientId: bench-key-${n}
  clientSecret: bench-secret-${n}
  authorizedEntities: [group_bench]
  throttlingQuota: 10000000
  dailyQuota: 1000000000
  monthlyQuota: 1000000000`);
  }
  return docs.join('\n---\n');
}

/** A CheckRequest shaped like Envoy's (headers map, addresses, context extensions). */
export function benchCheckRequest(): Buffer {
  const CheckRequest = lookupType('envoy.service.auth.v3.CheckRequest');
  const host = `${DESCRIPTOR_ID}.oto.tools`;
  const p = '/api/orders/123?expand=items';
  return Buffer.from(
    CheckRequest.encode(
      CheckRequest.fromObject({
        attributes: {
          source: { address: { socketAddress: { address: '10.244.1.17', portValue: 51234 } } },
          destination: { address: { socketAddress: { address: '10.244.0.5', portValue: 8080 } } },
          request: {
            time: { seconds: 1718000000, nanos: 123000000 },
            http: {
              id: '11790209734458823781',
              method: 'GET',
              path: p,
              host,
              scheme: 'http',
              protocol: 'HTTP/1.1',
              headers: {
                ':authority': host,
                ':method': 'GET',
                ':path': p,
                ':scheme': 'http',
                accept: 'application/json',
                'accept-encoding': 'gzip, deflate',
                'user-agent': 'Mozilla/5.0 (X11; Linux x86_64) bench/1.0',
                'x-forwarded-proto': 'http',
                'x-forwarded-for': '192.0.2.10',
                'x-request-id': '3f6c1b8e-8a0b-4a43-9f2e-6a1f0d4d2c11',
                'x-envoy-expected-rq-timeout-ms': '15000',
                'otoroshi-client-id': CLIENT_ID,
                'otoroshi-client-secret': CLIENT_SECRET,
              },
            },
          },
          contextExtensions: { descriptor_id: DESCRIPTOR_ID },
        },
      }),
    ).finish(),
  );
}

// ------------------------------------------------------------------ servers (child processes)

/** Printed on SIGTERM by a `serve` child (Redis batching: checks per script call). */
let exitStats: (() => string) | undefined;

async function serve(mode: string, port: number, redisUrl: string | undefined): Promise<void> {
  const logger = pino({ level: 'warn' });
  if (mode === 'floor') {
    // The constant answer is what our adapter sends for this request (an allow with mutations).
    const answer = encodeAllow({
      allow: true,
      reason: 'apikey',
      descriptorId: DESCRIPTOR_ID,
      clientId: CLIENT_ID,
      upstreamHeaders: { 'Otoroshi-Proxied-Host': `${DESCRIPTOR_ID}.oto.tools` },
      removeUpstreamHeaders: ['otoroshi-client-id', 'otoroshi-client-secret'],
      responseHeaders: {
        'Otoroshi-Daily-Calls-Remaining': '999999999',
        'Otoroshi-Monthly-Calls-Remaining': '999999999',
      },
    });
    const server = new grpc.Server();
    server.addService(AUTHORIZATION_SERVICE, {
      Check: (_call: unknown, cb: grpc.sendUnaryData<Buffer>) => cb(null, answer),
    });
    await new Promise<void>((res, rej) =>
      server.bindAsync(`127.0.0.1:${port}`, grpc.ServerCredentials.createInsecure(), (e) => (e ? rej(e) : res())),
    );
  } else {
    const built = buildModel({ objects: parseYamlFile('bench.yaml', modelYaml(), 0).objects, loadErrors: [] });
    // AUTHZ_BENCH_MAX_BATCH=n (1 = no batching) for A/B runs of the Redis batching
    const maxBatch = Number(process.env['AUTHZ_BENCH_MAX_BATCH'] ?? 0);
    const batchOpts = maxBatch > 0 ? { batching: maxBatch > 1, maxBatch } : {};
    const quota: QuotaStore = mode.startsWith('redis')
      ? createQuotaStore({ redisUrl: redisUrl!, logger, ...batchOpts })
      : createQuotaStore({});
    // The product's hooks (src/main.ts): Prometheus metrics and the audit of security events.
    const hooks = combineAuthzHooks(createMetrics().authzHooks, auditAuthzHooks(new Audit(logger)));
    const az = new Authorizer({ quota, hooks });
    az.setPolicy(buildPolicy(built.model));
    if (mode.startsWith('redis')) {
      const primary = (quota as unknown as { primary: { ready(): Promise<void> } }).primary;
      await primary.ready();
    }
    // As the product's AuthzStage: a decision taken synchronously is answered in the same turn.
    await startAuthzServer('127.0.0.1', port, { check: (i) => az.checkNow(i), logger, hooks });
    const primary = (quota as unknown as { primary?: { stats?: { calls: number; checks: number } } }).primary;
    if (primary?.stats)
      exitStats = () =>
        `STATS ${JSON.stringify({ redisScriptCalls: primary.stats!.calls, redisChecks: primary.stats!.checks })}\n`;
    void registerAuthz; // (startAuthzServer = new grpc.Server + registerAuthz + bind)
  }
  process.stdout.write(`READY ${port}\n`);
}

async function serveMain(): Promise<void> {
  const [, , , mode = 'floor', portS = '0', redisUrl] = process.argv;
  const port = Number(portS);
  if (mode.endsWith('-cluster2')) {
    if (cluster.isPrimary) {
      let ready = 0;
      for (let i = 0; i < 2; i++) {
        const w = cluster.fork();
        w.on('message', (m) => {
          if (m === 'ready' && ++ready === 2) process.stdout.write(`READY ${port}\n`);
        });
      }
      process.on('SIGTERM', () => {
        for (const w of Object.values(cluster.workers ?? {})) w?.kill();
        process.exit(0);
      });
      return;
    }
    const orig = process.stdout.write.bind(process.stdout);
    process.stdout.write = ((s: string) =>
      String(s).startsWith('READY') ? (process.send?.('ready'), true) : orig(s)) as typeof process.stdout.write;
  }
  await serve(mode.replace(/-cluster2$/, ''), port, redisUrl);
}

// ------------------------------------------------------------------ orchestration

export interface RunResult {
  name: string;
  reqPerSec: number;
  succeeded: number;
  failed: number;
  p50us: number;
  p99us: number;
  p999us?: number;
  rps?: number;
  /** Server CPU (user + system) per answered Check, µs (single-process modes at full load). */
  serverCpuUs?: number;
}

export async function startChild(
  mode: string,
  redisUrl?: string,
): Promise<{ child: ChildProcess; port: number; output: () => string }> {
  const port = await freePort();
  const args = [fileURLToPath(import.meta.url), 'serve', mode, String(port)];
  if (redisUrl) args.push(redisUrl);
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  await new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`${mode}: server did not start`)), 30_000);
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('READY')) {
        clearTimeout(t);
        resolve();
      }
    });
    child.once('exit', (c) => reject(new Error(`${mode}: exited ${c}`)));
  });
  return { child, port, output: () => out };
}

export async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const done = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  await Promise.race([done, new Promise((r) => setTimeout(r, 3000))]);
  if (child.exitCode === null) child.kill('SIGKILL');
}

/** One real RPC, decoded: correctness check (h2load ignores gRPC trailers). */
export function verify(port: number, body: Buffer, mode: string): Promise<string> {
  const CheckResponse = lookupType('envoy.service.auth.v3.CheckResponse');
  const client = new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  const id = (b: Buffer): Buffer => b;
  return new Promise((resolve, reject) => {
    client.makeUnaryRequest(CHECK_PATH, id, id, body, { deadline: Date.now() + 5000 }, (err, res) => {
      client.close();
      if (err) return reject(err);
      const r = CheckResponse.toObject(CheckResponse.decode(res!), TO_OBJECT_OPTIONS) as {
        status?: { code?: number };
        okResponse?: { responseHeadersToAdd?: Array<{ header: { key: string; value: string } }> };
      };
      if ((r.status?.code ?? 0) !== 0 || !r.okResponse)
        return reject(new Error(`${mode}: not an allow: ${JSON.stringify(r)}`));
      const rem = r.okResponse.responseHeadersToAdd?.find(
        (h) => h.header.key.toLowerCase() === 'otoroshi-daily-calls-remaining',
      );
      resolve(rem ? `allow, ${rem.header.key}: ${rem.header.value}` : 'allow');
    });
  });
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

const WARM_UP_S = 1;

function h2load(
  port: number,
  bodyFile: string,
  name: string,
  o: { duration: number; c: number; m: number; rps?: number },
): RunResult {
  const log = path.join(os.tmpdir(), `oxds-h2load-${process.pid}-${name}.log`);
  fs.rmSync(log, { force: true });
  const args = [
    `-c${o.c}`,
    `-m${o.m}`,
    '-t1',
    '-D',
    `${o.duration}`,
    `--warm-up-time=${WARM_UP_S}`,
    '-d',
    bodyFile,
    '-H',
    'content-type: application/grpc',
    '-H',
    'te: trailers',
    `--log-file=${log}`,
  ];
  if (o.rps) args.push(`--rps=${o.rps}`);
  args.push(`http://127.0.0.1:${port}${CHECK_PATH}`);
  const r = spawnSync('h2load', args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`h2load failed: ${r.stderr}\n${r.stdout}`);
  const rps = /finished in [\d.]+\w+, ([\d.]+) req\/s/.exec(r.stdout);
  const reqs = /requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed/.exec(r.stdout);
  const lat = fs
    .readFileSync(log, 'utf8')
    .split('\n')
    .filter((l) => l.length > 0)
    .map((l) => Number(l.split('\t')[2]))
    .filter((n) => Number.isFinite(n))
    .sort((a, b) => a - b);
  fs.rmSync(log, { force: true });
  const res: RunResult = {
    name,
    reqPerSec: Number(rps?.[1] ?? 0),
    succeeded: Number(reqs?.[4] ?? 0),
    failed: Number(reqs?.[5] ?? 0),
    p50us: percentile(lat, 50),
    p99us: percentile(lat, 99),
    p999us: percentile(lat, 99.9),
  };
  if (o.rps) res.rps = o.rps * o.c;
  return res;
}

/** CPU time (user + system) of process `pid` so far, µs (clock ticks of /proc/<pid>/stat). */
export function cpuUs(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // fields 14 and 15 of stat(5) (utime, stime) are the 12th and 13th after the command name
  return ((Number(f[11]) + Number(f[12])) * 1e6) / CLOCK_TICKS;
}
const CLOCK_TICKS = 100;

/**
 * h2load at full load with the server's CPU per Check: CPU time over the run (warm-up included)
 * divided by the Checks of the run scaled by (warm-up + duration) / duration. On a shared machine
 * this compares floor and product better than checks/s, which also follow the neighbours' load.
 */
export function h2loadWithCpu(pid: number, port: number, bodyFile: string, name: string, duration: number): RunResult {
  const c0 = cpuUs(pid);
  const r = h2load(port, bodyFile, name, { duration, c: 4, m: 32 });
  const checks = (r.succeeded * (duration + WARM_UP_S)) / duration;
  if (checks > 0) r.serverCpuUs = Number(((cpuUs(pid) - c0) / checks).toFixed(1));
  return r;
}

function rssKb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m?.[1] ?? 0);
}

/** 5-byte gRPC message prefix (uncompressed, big-endian length) + message: h2load's `-d` body. */
export function grpcFrame(body: Buffer): Buffer {
  const framed = Buffer.concat([Buffer.from([0, 0, 0, 0, 0]), body]);
  framed.writeUInt32BE(body.length, 1);
  return framed;
}

function arg(name: string, def: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? (process.argv[i + 1] ?? def) : def;
}

interface RssRun {
  mode: string;
  seconds: number;
  samplesKb: number[];
  startKb: number;
  endKb: number;
  maxKb: number;
  reqPerSec: number;
  earlyMedianKb: number;
  lateMedianKb: number;
}
type BatchStats = Record<string, { redisScriptCalls: number; redisChecks: number }>;
interface Rounds {
  results: RunResult[];
  checks: Record<string, string>;
  batchStats: BatchStats;
}
interface BenchOptions {
  duration: number;
  rounds: number;
  modes: string[];
  clusterModes: string[];
  body: Buffer;
  bodyFile: string;
  redisUrl?: string;
}

/** One mode's runs: full load (with server CPU for single-process modes) and 1,000 checks/s. */
async function runMode(o: BenchOptions, mode: string, acc: Rounds): Promise<void> {
  const { child, port, output } = await startChild(mode, o.redisUrl);
  try {
    acc.checks[mode] = await verify(port, o.body, mode);
    acc.results.push(
      mode.endsWith('cluster2')
        ? h2load(port, o.bodyFile, mode, { duration: o.duration, c: 4, m: 32 })
        : h2loadWithCpu(child.pid!, port, o.bodyFile, mode, o.duration),
    );
    if (!mode.endsWith('cluster2'))
      acc.results.push(h2load(port, o.bodyFile, `${mode}@1000rps`, { duration: o.duration, c: 4, m: 1, rps: 250 }));
    acc.checks[`${mode} after`] = await verify(port, o.body, mode);
  } finally {
    await stopChild(child);
  }
  const st = /STATS (.*)/.exec(output());
  if (st) {
    const x = JSON.parse(st[1]!) as { redisScriptCalls: number; redisChecks: number };
    const b = (acc.batchStats[mode] ??= { redisScriptCalls: 0, redisChecks: 0 });
    b.redisScriptCalls += x.redisScriptCalls;
    b.redisChecks += x.redisChecks;
  }
}

async function runRounds(o: BenchOptions): Promise<Rounds> {
  const acc: Rounds = { results: [], checks: {}, batchStats: {} };
  // Rounds alternate the order (the machine is shared: load drifts); the table shows medians.
  for (let round = 0; round < o.rounds; round++)
    for (const mode of round === 0 ? [...o.modes, ...o.clusterModes] : round % 2 ? [...o.modes].reverse() : o.modes) {
      await runMode(o, mode, acc);
      process.stderr.write(`round ${round + 1}/${o.rounds} ${mode}: done (load ${os.loadavg()[0]!.toFixed(2)})\n`);
    }
  return acc;
}

/** RSS sampled once a second under full load for `seconds`. */
async function measureRss(mode: string, redisUrl: string | undefined, bodyFile: string, seconds: number) {
  const { child, port } = await startChild(mode, redisUrl);
  try {
    const samples: number[] = [rssKb(child.pid!)];
    const timer = setInterval(() => samples.push(rssKb(child.pid!)), 1000);
    const load = spawn(
      'h2load',
      [
        ...['-c4', '-m32', '-t1', '-D', String(seconds), '-d', bodyFile],
        ...['-H', 'content-type: application/grpc', '-H', 'te: trailers'],
        `http://127.0.0.1:${port}${CHECK_PATH}`,
      ],
      { stdio: ['ignore', 'pipe', 'ignore'] },
    );
    let out = '';
    load.stdout.on('data', (d: Buffer) => (out += d.toString()));
    await new Promise((r) => load.once('exit', r));
    clearInterval(timer);
    samples.push(rssKb(child.pid!));
    const medKb = (xs: number[]): number => [...xs].sort((a, b) => a - b)[xs.length >> 1] ?? 0;
    // flat = the median of the last quarter is within 10 % of the median of the second quarter (after warm-up)
    const q = Math.max(1, Math.floor(samples.length / 4));
    const rss: RssRun = {
      mode,
      seconds,
      samplesKb: samples,
      startKb: samples[0]!,
      endKb: samples.at(-1)!,
      maxKb: Math.max(...samples),
      reqPerSec: Number(/([\d.]+) req\/s/.exec(out)?.[1] ?? 0),
      earlyMedianKb: medKb(samples.slice(q, 2 * q)),
      lateMedianKb: medKb(samples.slice(-q)),
    };
    return rss;
  } finally {
    await stopChild(child);
  }
}

/** The median of each run name over the rounds. */
function summarize(results: RunResult[]): RunResult[] {
  const med = (xs: number[]): number => {
    const a = [...xs].sort((x, y) => x - y);
    return a.length % 2 ? a[(a.length - 1) >> 1]! : (a[a.length / 2 - 1]! + a[a.length / 2]!) / 2;
  };
  const names = [...new Set(results.map((r) => r.name))];
  return names.map((name) => {
    const rs = results.filter((r) => r.name === name);
    const x: RunResult = {
      name,
      reqPerSec: med(rs.map((r) => r.reqPerSec)),
      succeeded: rs.reduce((a, r) => a + r.succeeded, 0),
      failed: rs.reduce((a, r) => a + r.failed, 0),
      p50us: med(rs.map((r) => r.p50us)),
      p99us: med(rs.map((r) => r.p99us)),
      p999us: med(rs.map((r) => r.p999us ?? 0)),
    };
    const cpu = rs.flatMap((r) => (r.serverCpuUs !== undefined ? [r.serverCpuUs] : []));
    if (cpu.length > 0) x.serverCpuUs = med(cpu);
    if (rs[0]!.rps) x.rps = rs[0]!.rps;
    return x;
  });
}

/** Each summary row with its ratios to the floor (throughput, CPU) and to the two-worker floor. */
function withRatios(summary: RunResult[]) {
  const floor = summary.find((r) => r.name === 'floor')!;
  const floor2 = summary.find((r) => r.name === 'floor-cluster2');
  return summary.map((r) => ({
    ...r,
    ratioToFloor: r.rps ? undefined : Number((r.reqPerSec / floor.reqPerSec).toFixed(3)),
    cpuRatioToFloor:
      r.serverCpuUs !== undefined && floor.serverCpuUs !== undefined
        ? Number((floor.serverCpuUs / r.serverCpuUs).toFixed(3))
        : undefined,
    ratioToClusterFloor:
      floor2 && r.name.endsWith('cluster2') ? Number((r.reqPerSec / floor2.reqPerSec).toFixed(3)) : undefined,
  }));
}

interface Goal {
  goal: string;
  met: boolean | null;
  detail: string;
}

const mib = (kb: number, digits = 0): string => (kb / 1024).toFixed(digits);

function goals(summary: RunResult[], rss: RssRun | undefined, rounds: number, duration: number): Goal[] {
  const out: Goal[] = [];
  const get = (n: string): RunResult | undefined => summary.find((r) => r.name === n);
  const floor = get('floor')!;
  const ratioGoal = (name: string, min: number): void => {
    const r = get(name);
    const goal = `ext_authz ${name}: ≥ ${min * 100} % of the floor's checks/s (unpaired rounds)`;
    out.push(
      r
        ? {
            goal,
            met: r.reqPerSec / floor.reqPerSec >= min,
            detail:
              `${r.reqPerSec.toFixed(0)} / ${floor.reqPerSec.toFixed(0)} req/s = ` +
              `${(r.reqPerSec / floor.reqPerSec).toFixed(2)} (medians of ${rounds} × ${duration} s)`,
          }
        : { goal, met: null, detail: 'not run' },
    );
  };
  ratioGoal('memory', 0.8);
  ratioGoal('redis', 0.6);
  for (const name of ['memory@1000rps', 'redis@1000rps']) {
    const r = get(name);
    if (r)
      out.push({
        goal: `ext_authz ${name.replace('@1000rps', '')}: p99 < 2 ms at 1,000 checks/s`,
        met: r.p99us < 2000,
        detail: `p50 ${r.p50us} µs, p99 ${r.p99us} µs (floor p99 ${get('floor@1000rps')?.p99us ?? '?'} µs)`,
      });
  }
  if (rss)
    out.push({
      goal: `ext_authz memory flat over ${rss.seconds} s (${rss.mode}, full load)`,
      met: rss.lateMedianKb <= rss.earlyMedianKb * 1.1,
      detail:
        `RSS start ${mib(rss.startKb)} MiB, 2nd-quarter median ${mib(rss.earlyMedianKb)} MiB, ` +
        `last-quarter median ${mib(rss.lateMedianKb)} MiB, max ${mib(rss.maxKb)} MiB ` +
        `at ${rss.reqPerSec.toFixed(0)} req/s`,
    });
  return out;
}

type Report = ReturnType<typeof report>;

function report(o: BenchOptions, runs: Rounds, rss: RssRun | undefined, loadBefore: number[]) {
  const summary = summarize(runs.results);
  return {
    date: new Date().toISOString(),
    machine: {
      cpus: os.cpus().length,
      model: os.cpus()[0]?.model,
      node: process.version,
      loadavgBefore: loadBefore,
      loadavgAfter: os.loadavg(),
    },
    checkRequestBytes: o.body.length,
    model: { descriptors: DESCRIPTORS, apikeys: APIKEYS },
    correctness: runs.checks,
    rounds: o.rounds,
    durationSeconds: o.duration,
    results: withRatios(summary),
    runs: runs.results,
    rss,
    redisBatching: Object.fromEntries(
      Object.entries(runs.batchStats).map(([k, v]) => [
        k,
        { ...v, checksPerCall: Number((v.redisChecks / Math.max(1, v.redisScriptCalls)).toFixed(1)) },
      ]),
    ),
    goals: goals(summary, rss, o.rounds, o.duration),
  };
}

function printReport(out: Report, loadBefore: number[]): void {
  const loads = (ls: number[]): string => ls.map((l) => l.toFixed(2)).join(' ');
  console.log(`load average before ${loads(loadBefore)}, after ${loads(os.loadavg())}`);
  console.log(`medians of ${out.rounds} round(s), ${out.durationSeconds} s each`);
  console.log(
    '| run | req/s | ours/floor | ours/floor-cluster2 | server CPU µs/check | floor CPU/ours | p50 µs | p99 µs | ' +
      'p99.9 µs | failed |',
  );
  console.log('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
  for (const r of out.results)
    console.log(
      `| ${r.name} | ${r.reqPerSec.toFixed(0)} | ${r.ratioToFloor ?? ''} | ${r.ratioToClusterFloor ?? ''} | ` +
        `${r.serverCpuUs ?? ''} | ${r.cpuRatioToFloor ?? ''} | ${r.p50us} | ${r.p99us} | ${r.p999us} | ${r.failed} |`,
    );
  const rss = out.rss;
  if (rss)
    console.log(
      `RSS (${rss.mode}, ${rss.seconds}s at ${rss.reqPerSec.toFixed(0)} req/s): start ${mib(rss.startKb, 1)} MiB, ` +
        `max ${mib(rss.maxKb, 1)} MiB, end ${mib(rss.endKb, 1)} MiB`,
    );
  for (const [k, v] of Object.entries(out.redisBatching))
    console.log(
      `redis batching (${k}): ${v.redisChecks} checks in ${v.redisScriptCalls} script calls = ` +
        `${v.checksPerCall} per call`,
    );
  for (const [k, v] of Object.entries(out.correctness)) console.log(`check ${k}: ${v}`);
  for (const g of out.goals)
    console.log(`  [${g.met === null ? 'N/A' : g.met ? 'MET' : 'NOT MET'}] ${g.goal}: ${g.detail}`);
}

async function main(): Promise<void> {
  const rssSeconds = Number(arg('rss-seconds', '60'));
  const skipCluster = !process.argv.includes('--cluster'); // (--skip-cluster: the default, still accepted)
  const body = benchCheckRequest();
  const bodyFile = path.join(os.tmpdir(), `oxds-bench-check-${process.pid}.bin`);
  fs.writeFileSync(bodyFile, grpcFrame(body));
  const redis = redisAvailable() ? await startRedis() : undefined;
  const loadBefore = os.loadavg();
  const o: BenchOptions = {
    duration: Number(arg('duration', '3')),
    rounds: Number(arg('rounds', '2')),
    modes: ['floor', 'memory', ...(redis ? ['redis'] : [])],
    clusterModes: skipCluster ? [] : ['floor-cluster2', 'memory-cluster2', ...(redis ? ['redis-cluster2'] : [])],
    body,
    bodyFile,
    redisUrl: redis?.url,
  };
  let runs: Rounds;
  let rss: RssRun | undefined;
  try {
    runs = await runRounds(o);
    if (rssSeconds > 0) rss = await measureRss(redis ? 'redis' : 'memory', redis?.url, bodyFile, rssSeconds);
  } finally {
    await redis?.stop();
    fs.rmSync(bodyFile, { force: true });
  }
  const out = report(o, runs, rss, loadBefore);
  fs.mkdirSync('bench/results', { recursive: true });
  fs.writeFileSync('bench/results/authz.json', JSON.stringify(out, null, 2));
  printReport(out, loadBefore);
}

// Imported (bench/authz-ab.ts reuses the model and the request): no side effect.
const isMain = process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href;
if (!isMain) {
  // nothing to run
} else if (process.argv[2] === 'body') {
  // node dist/bench/authz.js body <file>: writes the framed CheckRequest (for manual h2load runs)
  fs.writeFileSync(process.argv[3] ?? 'check-request.bin', grpcFrame(benchCheckRequest()));
} else if (process.argv[2] === 'serve') {
  // exit normally on signals (so `node --cpu-prof` writes its profile)
  if (!cluster.isPrimary || !process.argv[3]?.endsWith('-cluster2')) {
    for (const sig of ['SIGINT', 'SIGTERM'] as const) {
      process.on(sig, () => {
        if (exitStats) process.stdout.write(exitStats(), () => process.exit(0));
        else process.exit(0);
      });
    }
  }
  serveMain().catch((e) => {
    console.error(e);
    process.exit(1);
  });
} else {
  main().catch((e) => {
    console.error(e);
    process.exit(1);
  });
}
