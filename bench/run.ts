// `npm run bench`: translate benchmark (one fresh child process per size) and push benchmark
// (real ADS server + 2 client processes; SotW, Delta, and a bare grpc-js floor).
// Env: BENCH_SIZES=1000,10000  BENCH_STREAMS=1000  BENCH_PUSH_DESCRIPTORS=1000  BENCH_CHANNELS=10 (per client process)
//      BENCH_TRANSLATE_TIMEOUT_S=90  BENCH_SKIP=translate|push|envoy|grpc|envoy-sotw|...  BENCH_TRANSLATE_ROUNDS=2
// (cold + warm, same process)
//      BENCH_GRPC_HOT=200 (proxyless scenario: streams on the changed host, besides STREAMS spread over all hosts)
//      BENCH_SKIP=authz,authz-paired skip the ext_authz benchmarks (bench/authz.ts ~2 min, bench/authz-paired.ts
//      ~4 min; need h2load, and redis-server for the Redis rows)
//      BENCH_SKIP=envoy-authz,envoy-propagation skip the real-Envoy benchmarks (bench/envoy.ts; needs Envoy and wrk;
//      BENCH_ENVOY_RATES=200,1000 BENCH_ENVOY_FLEETS=20,50 BENCH_ENVOY_SLICE_MS=5000)
//      BENCH_SKIP=scale skips the whole-server scale benchmark (bench/scale.ts, ~5 min; BENCH_SCALE_* knobs there)
//      BENCH_SKIP=sidecar (or sidecar-streams, sidecar-mtls) skips the mesh benchmarks (bench/sidecar-*.ts)
import { fork, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { envInt, envList, stats } from './gen.js';
import { next, type Msg } from './ipc.js';
import { TYPE_URLS } from '../proto/type-urls.js';
import type { StreamResult } from './push-client.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '..', '..');
const SIZES = envList('BENCH_SIZES', [1000, 10000]);
const STREAMS = envInt('BENCH_STREAMS', 1000);
const PUSH_N = envInt('BENCH_PUSH_DESCRIPTORS', 1000);
const CHANNELS = envInt('BENCH_CHANNELS', 10);
/** Proxyless gRPC scenario: extra streams all on the changed host (on top of STREAMS spread over the descriptors). */
const GRPC_HOT = envInt('BENCH_GRPC_HOT', 200);
const CLIENT_PROCS = 2;
const TRANSLATE_TIMEOUT_MS = envInt('BENCH_TRANSLATE_TIMEOUT_S', 90) * 1000;
const SKIP = new Set((process.env['BENCH_SKIP'] ?? '').split(',').filter(Boolean));
const GOAL_TRANSLATE_MS = 1000;
const GOAL_PUSH_MS = 1000;
const GOAL_DELTA_RATIO = 0.01;

const f = (n: number | undefined, d = 0): string => (n === undefined || Number.isNaN(n) ? '-' : n.toFixed(d));
const kb = (n: number): string => `${(n / 1024).toFixed(1)} KiB`;
function table(head: string[], rows: (string | number)[][]): string {
  const cells = [head, ...rows.map((r) => r.map(String))];
  const w = head.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]): string =>
    r.map((c, i) => (i === 0 ? c.padEnd(w[i] ?? 0) : c.padStart(w[i] ?? 0))).join('  ');
  return [line(head), w.map((x) => '-'.repeat(x)).join('  '), ...cells.slice(1).map(line)].join('\n');
}

function spawn(script: string, args: string[], execArgv: string[] = []): ChildProcess {
  return fork(path.join(here, script), args, { execArgv, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
}

function kill(c: ChildProcess | undefined): void {
  if (c && c.exitCode === null && c.signalCode === null) {
    try {
      c.send({ cmd: 'exit' });
    } catch {
      /* ignore */
    }
    setTimeout(() => c.exitCode === null && c.kill('SIGKILL'), 2000).unref();
  }
}

// ------------------------------------------------------------------ translate

interface TranslateResult {
  size: number;
  rounds: {
    buildModelMs: number;
    translateMs: number;
    validateMs: number;
    snapshotMs: number;
    publishMs: number;
    totalMs: number;
    cpu?: { totalMs: number; translateMs: number };
  }[];
  protoLoadMs: number;
  resources: Record<string, number>;
  resourceCount: number;
  encodedBytes: number;
  errors: number;
  firstError: string;
  floors: { jsonRoundTripMs: number[]; fromObjectEncodeMs: number[]; encodeOnlyMs: number[] };
  memory: {
    baselineHeapMB: number;
    baselineRssMB: number;
    peakHeapUsedMB: number;
    peakRssMB: number;
    retainedHeapMB: number;
  };
  wallMs?: number;
  error?: string;
}

async function translateBench(
  size: number,
): Promise<TranslateResult | { size: number; error: string; wallMs: number }> {
  const rounds = process.env['BENCH_TRANSLATE_ROUNDS'] ?? '2';
  const t0 = performance.now();
  const child = fork(path.join(here, 'translate-child.js'), [String(size)], {
    execArgv: ['--expose-gc', '--max-old-space-size=8192'],
    env: { ...process.env, BENCH_TRANSLATE_ROUNDS: rounds },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  try {
    const r = (await new Promise<TranslateResult>((resolve, reject) => {
      const t = setTimeout(
        () => reject(new Error(`did not finish within ${TRANSLATE_TIMEOUT_MS / 1000} s (killed)`)),
        TRANSLATE_TIMEOUT_MS,
      );
      child.once('message', (m) => {
        clearTimeout(t);
        resolve(m as TranslateResult);
      });
      child.once('exit', (code, sig) => {
        clearTimeout(t);
        reject(new Error(`child exited (${code ?? sig})`));
      });
    })) as TranslateResult;
    r.wallMs = performance.now() - t0;
    return r;
  } catch (e) {
    child.kill('SIGKILL');
    return { size, error: (e as Error).message, wallMs: performance.now() - t0 };
  }
}

// ------------------------------------------------------------------ push

type Scenario = 'envoy' | 'grpc';
type ChangeKind = 'route' | 'endpoint';
const EXPECT_TYPE: Record<ChangeKind, string> = {
  route: TYPE_URLS.route,
  endpoint: TYPE_URLS.endpoint,
};

interface ChangeResult {
  change: ChangeKind | 'floor';
  tSet: number;
  setMs?: number;
  changeBuildMs?: number;
  /** Names changed per kind in the published snapshot (server-side diff), truncated. */
  diff?: Record<string, { changed: number; removed: number; names: string[] }>;
  affected: number;
  received: number;
  latencyMs: ReturnType<typeof stats>;
  fullBytesPerAffected: ReturnType<typeof stats>;
  changeBytesPerAffected: ReturnType<typeof stats>;
  changeMsgsPerAffected: ReturnType<typeof stats>;
  /** Streams the change did not touch that nevertheless received something (should be 0). */
  unaffectedThatReceived: number;
  unaffectedBytes: number;
  changeTypes: Record<string, number>;
  server?: Msg;
  payloadBytes?: number;
  error?: string;
}

interface PushResult {
  scenario: Scenario | 'floor';
  mode: 'sotw' | 'delta' | 'floor';
  streams: number;
  syncMs: number;
  fullBytesPerStream: ReturnType<typeof stats>;
  errors: string[];
  changes: ChangeResult[];
  error?: string;
}

type PushMode = 'sotw' | 'delta' | 'floor';

/** CLIENT_PROCS client processes sharing the streams; resolves once every stream holds the snapshot. */
async function startClients(scenario: Scenario | 'floor', mode: PushMode, port: number, clients: ChildProcess[]) {
  const total = scenario === 'grpc' ? STREAMS + GRPC_HOT : STREAMS;
  const per = Math.ceil(total / CLIENT_PROCS);
  const synced: Promise<Msg>[] = [];
  for (let p = 0; p < CLIENT_PROCS; p++) {
    const n = Math.min(per, total - p * per);
    if (n <= 0) continue;
    const extra = scenario === 'grpc' ? ['grpc', String(PUSH_N), String(STREAMS), '1'] : [];
    const c = spawn('push-client.js', [String(port), String(n), String(CHANNELS), mode, String(p * per), ...extra]);
    clients.push(c);
    synced.push(next(c, 'synced', 180_000, `${scenario} ${mode} clients synced`));
  }
  await Promise.all(synced);
}

/** Sends `cmd` to every child and waits for each one's `reply`. */
function askAll(children: ChildProcess[], msg: Record<string, unknown>, reply: string, ms: number, what = reply) {
  return Promise.all(
    children.map((c) => {
      const w = next(c, reply, ms, what);
      c.send(msg);
      return w;
    }),
  );
}

/** Makes the server change (or, for the floor, send its payload); returns when it did and what it changed. */
async function triggerChange(
  server: ChildProcess,
  clients: ChildProcess[],
  scenario: Scenario | 'floor',
  change: ChangeKind | 'floor',
  floorPayload: number,
): Promise<{ tSet: number; extra: Partial<ChangeResult> }> {
  if (change === 'floor') {
    const w = next(server, 'sent', 30_000, 'floor sent');
    server.send({ cmd: 'send', bytes: floorPayload });
    const m = await w;
    return { tSet: Number(m['tSend']), extra: { payloadBytes: floorPayload } };
  }
  const w = next(server, 'changed', 60_000, 'snapshot changed');
  server.send({ cmd: 'change', what: change });
  const m = await w;
  const diff = ((m['diff'] as Record<string, unknown>)[scenario] ?? {}) as Record<
    string,
    { changed: string[]; removed: string[] }
  >;
  for (const c of clients) c.send({ cmd: 'expect', diff });
  const summary: ChangeResult['diff'] = {};
  for (const [k, v] of Object.entries(diff))
    summary[k] = {
      changed: v.changed.length,
      removed: v.removed.length,
      names: [...v.changed, ...v.removed].slice(0, 5),
    };
  return {
    tSet: Number(m['tSet']),
    extra: { setMs: Number(m['setMs']), changeBuildMs: Number(m['buildMs']), diff: summary },
  };
}

/** One change's row from every stream's report (affected streams: latency and bytes; the others: leaks). */
function changeResult(
  change: ChangeKind | 'floor',
  tSet: number,
  extra: Partial<ChangeResult>,
  all: StreamResult[],
  server: Msg,
): ChangeResult {
  const aff = all.filter((s) => s.affected);
  const unaff = all.filter((s) => !s.affected);
  const got = aff.filter((s) => s.changeAt > 0);
  const types: Record<string, number> = {};
  for (const s of all) for (const [k, v] of Object.entries(s.changeTypes)) types[k] = (types[k] ?? 0) + v;
  return {
    change,
    tSet,
    ...extra,
    affected: aff.length,
    received: got.length,
    latencyMs: stats(got.map((s) => s.changeAt - tSet)),
    fullBytesPerAffected: stats(aff.map((s) => s.fullBytes)),
    changeBytesPerAffected: stats(aff.map((s) => s.changeBytes)),
    changeMsgsPerAffected: stats(aff.map((s) => s.changeMsgs)),
    unaffectedThatReceived: unaff.filter((s) => s.changeMsgs > 0).length,
    unaffectedBytes: unaff.reduce((x, s) => x + s.changeBytes, 0),
    changeTypes: types,
    server,
  };
}

/** Arms the clients, makes one change, waits for every affected stream, and collects the reports. */
async function measurePush(
  server: ChildProcess,
  clients: ChildProcess[],
  scenario: Scenario | 'floor',
  mode: PushMode,
  change: ChangeKind | 'floor',
  floorPayload: number,
): Promise<{ res: ChangeResult; all: StreamResult[] }> {
  const expectType = change === 'floor' ? undefined : EXPECT_TYPE[change];
  await askAll(clients, { cmd: 'arm', expectType }, 'armed', 10_000);
  const changed = clients.map((c) =>
    next(c, 'changed', 60_000, `${scenario} ${mode} ${change}: change received by every affected stream`),
  );
  changed.forEach((p) => p.catch(() => undefined));
  const { tSet, extra } = await triggerChange(server, clients, scenario, change, floorPayload);
  let changeError: string | undefined;
  try {
    await Promise.all(changed);
  } catch (e) {
    changeError = (e as Error).message;
  }
  await new Promise((r) => setTimeout(r, 500)); // anything else the change triggers
  const reports = await askAll(clients, { cmd: 'report' }, 'report', 30_000);
  const [serverStats] = await askAll([server], { cmd: 'stats' }, 'stats', 10_000, 'server stats');
  const all = reports.flatMap((r) => r['streams'] as StreamResult[]);
  const res = changeResult(change, tSet, extra, all, serverStats as Msg);
  if (changeError) res.error = changeError;
  return { res, all };
}

/**
 * One server + 2 client processes. envoy: STREAMS Envoy-like streams; a route change, then an
 * endpoint change. grpc: STREAMS proxyless streams spread over the descriptors + GRPC_HOT on the
 * changed host; a route change. floor: one payload of `floorPayload` bytes to STREAMS streams.
 */
async function pushBench(
  scenario: Scenario | 'floor',
  mode: PushMode,
  changes: ChangeKind[],
  floorPayload = 0,
): Promise<PushResult | { scenario: string; mode: string; error: string }> {
  let server: ChildProcess | undefined;
  const clients: ChildProcess[] = [];
  try {
    server = mode === 'floor' ? spawn('push-server.js', ['floor']) : spawn('push-server.js', ['ads', String(PUSH_N)]);
    const ready = await next(server, 'ready', 120_000, `${mode} server ready`);
    const t0 = performance.now();
    await startClients(scenario, mode, Number(ready['port']), clients);
    const syncMs = performance.now() - t0;
    await new Promise((r) => setTimeout(r, 300)); // let the last ACKs land
    const results: ChangeResult[] = [];
    let all: StreamResult[] = [];
    const kinds: (ChangeKind | 'floor')[] = mode === 'floor' ? ['floor'] : changes;
    for (const change of kinds) {
      const m = await measurePush(server, clients, scenario, mode, change, floorPayload);
      all = m.all;
      results.push(m.res);
    }
    return {
      scenario,
      mode,
      streams: all.length,
      syncMs,
      fullBytesPerStream: stats(all.map((s) => s.fullBytes)),
      errors: [...new Set(all.flatMap((s) => (s.error ? [s.error] : [])))].slice(0, 5),
      changes: results,
    };
  } catch (e) {
    return { scenario, mode, error: (e as Error).message };
  } finally {
    for (const c of clients) kill(c);
    kill(server);
    await new Promise((r) => setTimeout(r, 500));
  }
}

// ------------------------------------------------------------------ main

const started = performance.now();
const cpu =
  (fs.readFileSync('/proc/cpuinfo', 'utf8').match(/model name\s*:\s*(.*)/) ?? [])[1] ?? os.cpus()[0]?.model ?? '?';
const machine = {
  loadavgAtStart: os.loadavg().map((x) => Number(x.toFixed(2))),
  nproc: os.availableParallelism(),
  cpu,
  node: process.version,
  platform: `${os.type()} ${os.release()}`,
  memGB: Math.round(os.totalmem() / 2 ** 30),
};
console.log(
  `otoroshi-xds bench — ${machine.nproc} cores, ${machine.cpu}, node ${machine.node}` +
    `, load average ${machine.loadavgAtStart.join(' ')}`,
);
console.log(`sizes=${SIZES.join(',')} streams=${STREAMS} pushDescriptors=${PUSH_N} channels/process=${CHANNELS}\n`);

const out: Record<string, unknown> = {
  date: new Date().toISOString(),
  machine,
  config: {
    sizes: SIZES,
    streams: STREAMS,
    grpcHotStreams: GRPC_HOT,
    pushDescriptors: PUSH_N,
    channelsPerProcess: CHANNELS,
    clientProcesses: CLIENT_PROCS,
  },
};
const goals: { goal: string; met: boolean | null; detail: string }[] = [];

if (!SKIP.has('translate')) {
  const results: (TranslateResult | { size: number; error: string; wallMs: number })[] = [];
  for (const size of SIZES) {
    process.stdout.write(`translate ${size} ... `);
    const r = await translateBench(size);
    console.log('error' in r && r.error ? `FAILED: ${r.error}` : `${f(r.wallMs)} ms wall`);
    results.push(r);
  }
  out['translate'] = results;
  const rows: (string | number)[][] = [];
  for (const r of results) {
    if ('error' in r && r.error && !('rounds' in r)) {
      rows.push([`${r.size}`, 'error', r.error, '', '', '', '', '', '', '', '', '', '']);
      continue;
    }
    const t = r as TranslateResult;
    t.rounds.forEach((x, i) => {
      rows.push([
        `${t.size}${t.rounds.length > 1 ? (i === 0 ? ' cold' : ' warm') : ' cold'}`,
        f(x.buildModelMs),
        f(x.translateMs),
        f(x.validateMs),
        f(x.snapshotMs),
        f(x.publishMs),
        f(x.totalMs),
        f(x.cpu?.totalMs),
        f(t.floors.jsonRoundTripMs[i]),
        f(t.floors.fromObjectEncodeMs[i]),
        f(t.floors.encodeOnlyMs[i]),
        i === 0 ? f(t.memory.peakRssMB) : '',
        i === 0 ? f(t.memory.peakHeapUsedMB) : '',
      ]);
    });
  }
  console.log('\n== Translate (ms; floors = same published resources; memory MB in a fresh process)');
  console.log(
    table(
      [
        'descriptors',
        'buildModel',
        'translate',
        'validate',
        'snapshot',
        'cache.set',
        'TOTAL',
        'TOTAL cpu',
        'floor JSON',
        'floor fromObj+enc',
        'floor encode',
        'peak RSS',
        'peak heap',
      ],
      rows,
    ),
  );
  for (const r of results) {
    if (!('rounds' in r)) continue;
    console.log(
      `  ${r.size}: ${r.resourceCount} resources (${JSON.stringify(r.resources)}), ${kb(r.encodedBytes)} encoded, ` +
        `${r.errors} errors${r.errors ? ` (${r.firstError})` : ''}; ` +
        `heap baseline ${f(r.memory.baselineHeapMB)} MB, retained after GC ${f(r.memory.retainedHeapMB)} MB; ` +
        `proto load ${f(r.protoLoadMs)} ms (excluded)`,
    );
  }
  const big = results.find((r) => r.size === 10000) ?? results[results.length - 1];
  if (big) {
    if ('rounds' in big) {
      const best = Math.min(...big.rounds.map((x) => x.totalMs));
      const last = big.rounds[big.rounds.length - 1]!;
      const stages = Object.entries(last)
        .filter((e): e is [string, number] => typeof e[1] === 'number' && e[0] !== 'totalMs')
        .sort((a, b) => b[1] - a[1]);
      goals.push({
        goal: `${big.size} descriptors translated in < 1 s`,
        met: best < GOAL_TRANSLATE_MS,
        detail:
          `best total ${f(best)} ms wall (${f(last.cpu?.totalMs)}` +
          ` ms CPU); largest stage ${stages[0]?.[0]} ${f(stages[0]?.[1])} ms`,
      });
    } else {
      goals.push({ goal: `${big.size} descriptors translated in < 1 s`, met: false, detail: big.error });
    }
  }
}

if (!SKIP.has('push')) {
  const push: Record<string, PushResult | { scenario: string; mode: string; error: string }> = {};
  const runs: [string, Scenario | 'floor', 'sotw' | 'delta' | 'floor', ChangeKind[]][] = [
    ['envoy-sotw', 'envoy', 'sotw', ['route', 'endpoint']],
    ['envoy-delta', 'envoy', 'delta', ['route', 'endpoint']],
    ['grpc-sotw', 'grpc', 'sotw', ['route']],
    ['grpc-delta', 'grpc', 'delta', ['route']],
  ];
  for (const [key, scenario, mode, changes] of runs) {
    if (SKIP.has(key) || SKIP.has(scenario)) continue;
    const n = scenario === 'grpc' ? STREAMS + GRPC_HOT : STREAMS;
    process.stdout.write(`push ${key}: ${n} streams ... `);
    const r = await pushBench(scenario, mode, changes);
    console.log('changes' in r ? `synced in ${f(r.syncMs)} ms` : `FAILED: ${r.error}`);
    push[key] = r;
  }
  const es = push['envoy-sotw'];
  const routeChange = es && 'changes' in es ? es.changes.find((c) => c.change === 'route') : undefined;
  const payload = routeChange ? Math.max(1, Math.round(routeChange.changeBytesPerAffected.p50)) : 364_164;
  process.stdout.write(`push floor: ${STREAMS} streams, ${payload} B payload ... `);
  const fl = await pushBench('floor', 'floor', [], payload);
  console.log('changes' in fl ? 'done' : `FAILED: ${fl.error}`);
  push['floor'] = fl;
  out['push'] = push;

  const rows: (string | number)[][] = [];
  const label: Record<string, string> = {
    'envoy-sotw': 'Envoy SotW',
    'envoy-delta': 'Envoy Delta',
    'grpc-sotw': 'gRPC SotW',
    'grpc-delta': 'gRPC Delta',
    floor: 'floor (bare grpc-js)',
  };
  for (const [key, r] of Object.entries(push)) {
    if (!('changes' in r)) {
      rows.push([label[key] ?? key, 'error', r.error, '', '', '', '', '', '', '', '']);
      continue;
    }
    for (const c of r.changes) {
      const floor = c.change === 'floor';
      rows.push([
        label[key] ?? key,
        c.change,
        `${c.received}/${c.affected} of ${r.streams}`,
        f(c.latencyMs.p50),
        f(c.latencyMs.p99),
        f(c.latencyMs.max),
        floor ? '-' : kb(c.fullBytesPerAffected.p50),
        kb(c.changeBytesPerAffected.p50),
        floor ? '-' : `${f((100 * c.changeBytesPerAffected.p50) / c.fullBytesPerAffected.p50, 2)}%`,
        floor ? '-' : `${c.unaffectedThatReceived} (${c.unaffectedBytes} B)`,
        floor ? '-' : f(r.syncMs),
      ]);
    }
  }
  console.log(
    `\n== Push: ${PUSH_N} descriptors; route = one descriptor's path, endpoint = one target IP; ` +
      'latency from cache.set to receipt by every affected stream (ms)',
  );
  console.log(
    table(
      [
        'scenario',
        'change',
        'got it / affected',
        'p50',
        'p99',
        'max',
        'full config/stream',
        'change/stream',
        'change/full',
        'unaffected that got sth',
        'initial sync ms',
      ],
      rows,
    ),
  );
  for (const [key, r] of Object.entries(push)) {
    if (!('changes' in r) || key === 'floor') continue;
    for (const c of r.changes) {
      console.log(
        `  ${key} ${c.change}: diff ${JSON.stringify(c.diff)}; responses by type ${JSON.stringify(c.changeTypes)}; ` +
          `cache.set ${f(c.setMs, 1)} ms; rebuild ${f(c.changeBuildMs)} ms (not included)` +
          `${r.errors.length ? `; stream errors: ${r.errors.join(' | ')}` : ''}${c.error ? `; ${c.error}` : ''}`,
      );
      console.log(`         server: ${JSON.stringify(c.server)}`);
    }
  }
  const get = (key: string, change: ChangeKind): { r: PushResult; c: ChangeResult } | undefined => {
    const r = push[key];
    if (!r || !('changes' in r)) return undefined;
    const c = r.changes.find((x) => x.change === change);
    return c ? { r, c } : undefined;
  };
  const ok = (c: ChangeResult): boolean => !c.error && c.received === c.affected && c.affected > 0;
  for (const [key, name, change] of [
    ['envoy-sotw', 'Envoy SotW, route change', 'route'],
    ['envoy-delta', 'Envoy Delta, route change', 'route'],
    ['grpc-sotw', 'proxyless gRPC SotW, route change', 'route'],
    ['grpc-delta', 'proxyless gRPC Delta, route change', 'route'],
    ['envoy-sotw', 'Envoy SotW, endpoint change', 'endpoint'],
    ['envoy-delta', 'Envoy Delta, endpoint change', 'endpoint'],
  ] as const) {
    const x = get(key, change);
    if (!x) continue;
    goals.push({
      goal: `${name}: reaches every affected stream in < 1 s`,
      met: ok(x.c) && x.c.latencyMs.max < GOAL_PUSH_MS,
      detail:
        `${x.c.received}/${x.c.affected} affected of ${x.r.streams} streams, max ${f(x.c.latencyMs.max)}` +
        ` ms, p50 ${f(x.c.latencyMs.p50)} ms; unaffected that received something: ${x.c.unaffectedThatReceived}`,
    });
  }
  for (const [key, name, change] of [
    ['envoy-delta', 'Envoy Delta, route change', 'route'],
    ['envoy-delta', 'Envoy Delta, endpoint change', 'endpoint'],
    ['grpc-delta', 'proxyless gRPC Delta, route change', 'route'],
  ] as const) {
    const x = get(key, change);
    if (!x) continue;
    const ratio = x.c.changeBytesPerAffected.p50 / x.c.fullBytesPerAffected.p50;
    goals.push({
      goal: `${name}: < 1% of the full config per affected stream`,
      met: ratio < GOAL_DELTA_RATIO,
      detail: `${kb(x.c.changeBytesPerAffected.p50)} of ${kb(x.c.fullBytesPerAffected.p50)} = ${f(100 * ratio, 2)}%`,
    });
  }
}

if (!SKIP.has('authz')) {
  // ext_authz: its own script (h2load against child servers); it writes bench/results/authz.json
  console.log('\n== ext_authz Check (bench/authz.ts: h2load vs a bare grpc-js floor server, same run)');
  const t = performance.now();
  const r = spawnSync(process.execPath, [path.join(here, 'authz.js')], { cwd: repo, stdio: 'inherit' });
  const file = path.join(repo, 'bench', 'results', 'authz.json');
  if (r.status === 0 && fs.existsSync(file)) {
    const a = JSON.parse(fs.readFileSync(file, 'utf8')) as {
      goals?: { goal: string; met: boolean | null; detail: string }[];
    };
    out['authz'] = { ...a, wallMs: performance.now() - t };
    for (const g of a.goals ?? []) goals.push(g);
  } else {
    out['authz'] = { error: `bench/authz.js exited ${r.status ?? r.signal}` };
    goals.push({ goal: 'ext_authz benchmark', met: null, detail: `bench/authz.js exited ${r.status ?? r.signal}` });
  }
}

if (!SKIP.has('authz-paired')) {
  // The ext_authz goals judged on paired slices (bench/authz-paired.ts): floor and ours side by side.
  console.log('\n== ext_authz Check, paired with the floor (bench/authz-paired.ts)');
  const r = spawnSync(process.execPath, [path.join(here, 'authz-paired.js')], { cwd: repo, stdio: 'inherit' });
  const file = path.join(repo, 'bench', 'results', 'authz-paired.json');
  if (r.status === 0 && fs.existsSync(file)) {
    const a = JSON.parse(fs.readFileSync(file, 'utf8')) as { goals?: (typeof goals)[number][] };
    out['authzPaired'] = a;
    for (const g of a.goals ?? []) goals.push(g);
  } else goals.push({ goal: 'ext_authz paired benchmark', met: null, detail: `exited ${r.status ?? r.signal}` });
}

if (!SKIP.has('envoy-authz') || !SKIP.has('envoy-propagation')) {
  // Real Envoys (bench/envoy.ts): ext_authz latency (wrk) and config propagation to N Envoys. Writes
  // bench/results/envoy.json.
  console.log('\n== Real Envoy (bench/envoy.ts: ext_authz latency with wrk; propagation to BENCH_ENVOY_FLEETS Envoys)');
  const t = performance.now();
  const r = spawnSync(process.execPath, [path.join(here, 'envoy.js')], { cwd: repo, stdio: 'inherit' });
  const file = path.join(repo, 'bench', 'results', 'envoy.json');
  if (r.status === 0 && fs.existsSync(file))
    out['envoy'] = { ...(JSON.parse(fs.readFileSync(file, 'utf8')) as object), wallMs: performance.now() - t };
  else out['envoy'] = { error: `bench/envoy.js exited ${r.status ?? r.signal}` };
}

if (!SKIP.has('scale')) {
  // Scale of the whole server (bench/scale.ts, child processes; ~5 min): cold start with 10k
  // descriptors + 10k apikeys + 1k TLS secrets, 1,000 / 5,000 ADS streams, churn. Writes bench/results/scale.json.
  console.log('\n== Scale (bench/scale.ts: whole server, raw HTTP/2 ADS clients in child processes)');
  const t = performance.now();
  const r = spawnSync(process.execPath, [path.join(here, 'scale.js')], { cwd: repo, stdio: 'inherit' });
  const file = path.join(repo, 'bench', 'results', 'scale.json');
  if (r.status === 0 && fs.existsSync(file))
    out['scale'] = { ...(JSON.parse(fs.readFileSync(file, 'utf8')) as object), wallMs: performance.now() - t };
  else out['scale'] = { error: `bench/scale.js exited ${r.status ?? r.signal}` };
}

for (const [key, script, what] of [
  [
    'sidecar-streams',
    'sidecar-streams.js',
    '1,000 sidecar streams: first config scoped/unscoped, rotation wave vs grpc-js floor',
  ],
  ['sidecar-mtls', 'sidecar-mtls.js', 'mTLS overhead through two real Envoy sidecars vs plain HTTP (h2load)'],
  [
    'regex-check',
    'regex-check.js',
    'user regexes at fleet scale: 12,000 distinct patterns, cold and rebuilt, vs no regex',
  ],
] as const) {
  // The mesh benchmarks (bench/sidecar-*.ts) and the regex one, child processes; each writes bench/results/<key>.json.
  if (SKIP.has(key) || (key.startsWith('sidecar') && SKIP.has('sidecar'))) continue;
  console.log(`\n== ${what} (bench/${script.replace('.js', '.ts')})`);
  const t = performance.now();
  const r = spawnSync(process.execPath, [path.join(here, script)], { cwd: repo, stdio: 'inherit' });
  const file = path.join(repo, 'bench', 'results', `${key}.json`);
  if (r.status === 0 && fs.existsSync(file))
    out[key] = { ...(JSON.parse(fs.readFileSync(file, 'utf8')) as object), wallMs: performance.now() - t };
  else out[key] = { error: `bench/${script} exited ${r.status ?? r.signal}` };
}

out['goals'] = goals;
out['loadavgAtEnd'] = os.loadavg().map((x) => Number(x.toFixed(2)));
out['wallMs'] = performance.now() - started;
console.log('\n== Goals');
for (const g of goals) console.log(`  [${g.met ? 'MET' : 'NOT MET'}] ${g.goal}: ${g.detail}`);
const resultsDir = path.join(repo, 'bench', 'results');
fs.mkdirSync(resultsDir, { recursive: true });
fs.writeFileSync(path.join(resultsDir, 'latest.json'), `${JSON.stringify(out, null, 2)}\n`);
console.log(
  `\nwhole bench: ${f(performance.now() - started)}` +
    ` ms; load average at end ${(out['loadavgAtEnd'] as number[]).join(' ')}; JSON: bench/results/latest.json`,
);
process.exit(0);
