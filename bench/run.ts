// `npm run bench`: translate benchmark (one fresh child process per size) and push benchmark
// (real ADS server + 2 client processes; SotW, Delta, and a bare grpc-js floor).
// Env: BENCH_SIZES=1000,10000  BENCH_STREAMS=1000  BENCH_PUSH_DESCRIPTORS=1000  BENCH_CHANNELS=10 (per client process)
//      BENCH_TRANSLATE_TIMEOUT_S=90  BENCH_SKIP=translate|push  BENCH_TRANSLATE_ROUNDS=2 (cold + warm, same process)
import { fork, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { envInt, envList, stats } from './gen.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '..', '..');
const SIZES = envList('BENCH_SIZES', [1000, 10000]);
const STREAMS = envInt('BENCH_STREAMS', 1000);
const PUSH_N = envInt('BENCH_PUSH_DESCRIPTORS', 1000);
const CHANNELS = envInt('BENCH_CHANNELS', 10);
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
  const line = (r: string[]): string => r.map((c, i) => (i === 0 ? c.padEnd(w[i] ?? 0) : c.padStart(w[i] ?? 0))).join('  ');
  return [line(head), w.map((x) => '-'.repeat(x)).join('  '), ...cells.slice(1).map(line)].join('\n');
}

type Msg = { type: string; [k: string]: unknown };

function spawn(script: string, args: string[], execArgv: string[] = []): ChildProcess {
  return fork(path.join(here, script), args, { execArgv, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
}

function next(child: ChildProcess, type: string, timeoutMs: number, what: string): Promise<Msg> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => {
      cleanup();
      reject(new Error(`timeout after ${timeoutMs} ms waiting for ${what}`));
    }, timeoutMs);
    const onMsg = (m: Msg): void => {
      if (m && m.type === type) {
        cleanup();
        resolve(m);
      }
    };
    const onExit = (code: number | null, sig: string | null): void => {
      cleanup();
      reject(new Error(`${what}: child exited (${code ?? sig}) before "${type}"`));
    };
    const cleanup = (): void => {
      clearTimeout(t);
      child.off('message', onMsg);
      child.off('exit', onExit);
    };
    child.on('message', onMsg);
    child.on('exit', onExit);
  });
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
  rounds: { buildModelMs: number; translateMs: number; validateMs: number; snapshotMs: number; publishMs: number; totalMs: number; cpu?: { totalMs: number; translateMs: number } }[];
  protoLoadMs: number;
  resources: Record<string, number>;
  resourceCount: number;
  encodedBytes: number;
  errors: number;
  firstError: string;
  floors: { jsonRoundTripMs: number[]; fromObjectEncodeMs: number[]; encodeOnlyMs: number[] };
  memory: { baselineHeapMB: number; baselineRssMB: number; peakHeapUsedMB: number; peakRssMB: number; retainedHeapMB: number };
  wallMs?: number;
  error?: string;
}

async function translateBench(size: number): Promise<TranslateResult | { size: number; error: string; wallMs: number }> {
  const rounds = process.env['BENCH_TRANSLATE_ROUNDS'] ?? '2';
  const t0 = performance.now();
  const child = fork(path.join(here, 'translate-child.js'), [String(size)], {
    execArgv: ['--expose-gc', '--max-old-space-size=8192'],
    env: { ...process.env, BENCH_TRANSLATE_ROUNDS: rounds },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  try {
    const r = (await new Promise<TranslateResult>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`did not finish within ${TRANSLATE_TIMEOUT_MS / 1000} s (killed)`)), TRANSLATE_TIMEOUT_MS);
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

interface StreamResult {
  id: number;
  syncedAt: number;
  fullBytes: number;
  preArmBytes: number;
  preArmMsgs: number;
  changeAt: number;
  changeBytes: number;
  changeMsgs: number;
  changeTypes: Record<string, number>;
  error?: string;
}

interface PushResult {
  mode: 'sotw' | 'delta' | 'floor';
  streams: number;
  syncMs: number;
  tSet: number;
  setMs?: number;
  changeBuildMs?: number;
  latencyMs: ReturnType<typeof stats>;
  received: number;
  errors: string[];
  fullBytesPerStream: ReturnType<typeof stats>;
  changeBytesPerStream: ReturnType<typeof stats>;
  changeMsgsPerStream: ReturnType<typeof stats>;
  changeTypes: Record<string, number>;
  server?: Msg;
  payloadBytes?: number;
  error?: string;
}

async function pushBench(mode: 'sotw' | 'delta' | 'floor', floorPayload = 0): Promise<PushResult | { mode: string; error: string }> {
  let server: ChildProcess | undefined;
  const clients: ChildProcess[] = [];
  try {
    server = mode === 'floor' ? spawn('push-server.js', ['floor']) : spawn('push-server.js', ['ads', String(PUSH_N)]);
    const ready = await next(server, 'ready', 120_000, `${mode} server ready`);
    const port = Number(ready['port']);
    const t0 = performance.now();
    const per = Math.ceil(STREAMS / CLIENT_PROCS);
    const synced: Promise<Msg>[] = [];
    const changed: Promise<Msg>[] = [];
    for (let p = 0; p < CLIENT_PROCS; p++) {
      const n = Math.min(per, STREAMS - p * per);
      if (n <= 0) continue;
      const c = spawn('push-client.js', [String(port), String(n), String(CHANNELS), mode, String(p * per)]);
      clients.push(c);
      synced.push(next(c, 'synced', 180_000, `${mode} clients synced`));
    }
    await Promise.all(synced);
    const syncMs = performance.now() - t0;
    await new Promise((r) => setTimeout(r, 300)); // let the last ACKs land
    await Promise.all(clients.map((c) => { const w = next(c, 'armed', 10_000, 'armed'); c.send({ cmd: 'arm' }); return w; }));
    for (const c of clients) changed.push(next(c, 'changed', 60_000, `${mode} change received by every stream`));
    let tSet: number;
    let extra: Partial<PushResult> = {};
    if (mode === 'floor') {
      const w = next(server, 'sent', 30_000, 'floor sent');
      server.send({ cmd: 'send', bytes: floorPayload });
      const m = await w;
      tSet = Number(m['tSend']);
      extra = { payloadBytes: floorPayload };
    } else {
      const w = next(server, 'changed', 60_000, 'snapshot changed');
      server.send({ cmd: 'change' });
      const m = await w;
      tSet = Number(m['tSet']);
      extra = { setMs: Number(m['setMs']), changeBuildMs: Number(m['buildMs']) };
    }
    let changeError: string | undefined;
    try {
      await Promise.all(changed);
    } catch (e) {
      changeError = (e as Error).message;
    }
    await new Promise((r) => setTimeout(r, 500)); // anything else the change triggers
    const reports = await Promise.all(clients.map((c) => { const w = next(c, 'report', 30_000, 'report'); c.send({ cmd: 'report' }); return w; }));
    const sw = next(server, 'stats', 10_000, 'server stats');
    server.send({ cmd: 'stats' });
    const serverStats = await sw;
    const all = reports.flatMap((r) => r['streams'] as StreamResult[]);
    const got = all.filter((s) => s.changeAt > 0);
    const types: Record<string, number> = {};
    for (const s of all) for (const [k, v] of Object.entries(s.changeTypes)) types[k] = (types[k] ?? 0) + v;
    const res: PushResult = {
      mode,
      streams: all.length,
      syncMs,
      tSet,
      ...extra,
      latencyMs: stats(got.map((s) => s.changeAt - tSet)),
      received: got.length,
      errors: [...new Set(all.flatMap((s) => (s.error ? [s.error] : [])))].slice(0, 5),
      fullBytesPerStream: stats(all.map((s) => s.fullBytes)),
      changeBytesPerStream: stats(all.map((s) => s.changeBytes)),
      changeMsgsPerStream: stats(all.map((s) => s.changeMsgs)),
      changeTypes: types,
      server: serverStats,
    };
    if (changeError) res.error = changeError;
    return res;
  } catch (e) {
    return { mode, error: (e as Error).message };
  } finally {
    for (const c of clients) kill(c);
    kill(server);
    await new Promise((r) => setTimeout(r, 500));
  }
}

// ------------------------------------------------------------------ main

const started = performance.now();
const cpu = (fs.readFileSync('/proc/cpuinfo', 'utf8').match(/model name\s*:\s*(.*)/) ?? [])[1] ?? os.cpus()[0]?.model ?? '?';
const machine = { loadavgAtStart: os.loadavg().map((x) => Number(x.toFixed(2))), nproc: os.availableParallelism(), cpu, node: process.version, platform: `${os.type()} ${os.release()}`, memGB: Math.round(os.totalmem() / 2 ** 30) };
console.log(`otoroshi-xds bench — ${machine.nproc} cores, ${machine.cpu}, node ${machine.node}, load average ${machine.loadavgAtStart.join(' ')}`);
console.log(`sizes=${SIZES.join(',')} streams=${STREAMS} pushDescriptors=${PUSH_N} channels/process=${CHANNELS}\n`);

const out: Record<string, unknown> = { date: new Date().toISOString(), machine, config: { sizes: SIZES, streams: STREAMS, pushDescriptors: PUSH_N, channelsPerProcess: CHANNELS, clientProcesses: CLIENT_PROCS } };
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
        f(x.buildModelMs), f(x.translateMs), f(x.validateMs), f(x.snapshotMs), f(x.publishMs), f(x.totalMs), f(x.cpu?.totalMs),
        f(t.floors.jsonRoundTripMs[i]), f(t.floors.fromObjectEncodeMs[i]), f(t.floors.encodeOnlyMs[i]),
        i === 0 ? f(t.memory.peakRssMB) : '', i === 0 ? f(t.memory.peakHeapUsedMB) : '',
      ]);
    });
  }
  console.log('\n== Translate (ms; floors = same published resources; memory MB in a fresh process)');
  console.log(table(['descriptors', 'buildModel', 'translate', 'validate', 'snapshot', 'cache.set', 'TOTAL', 'TOTAL cpu', 'floor JSON', 'floor fromObj+enc', 'floor encode', 'peak RSS', 'peak heap'], rows));
  for (const r of results) {
    if (!('rounds' in r)) continue;
    console.log(`  ${r.size}: ${r.resourceCount} resources (${JSON.stringify(r.resources)}), ${kb(r.encodedBytes)} encoded, ${r.errors} errors${r.errors ? ` (${r.firstError})` : ''}; heap baseline ${f(r.memory.baselineHeapMB)} MB, retained after GC ${f(r.memory.retainedHeapMB)} MB; proto load ${f(r.protoLoadMs)} ms (excluded)`);
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
        detail: `best total ${f(best)} ms wall (${f(last.cpu?.totalMs)} ms CPU); largest stage ${stages[0]?.[0]} ${f(stages[0]?.[1])} ms`,
      });
    } else {
      goals.push({ goal: `${big.size} descriptors translated in < 1 s`, met: false, detail: big.error });
    }
  }
}

if (!SKIP.has('push')) {
  const push: Record<string, unknown> = {};
  for (const mode of ['sotw', 'delta'] as const) {
    process.stdout.write(`push ${mode}: ${STREAMS} streams ... `);
    const r = await pushBench(mode);
    console.log('latencyMs' in r ? `synced in ${f(r.syncMs)} ms` : `FAILED: ${r.error}`);
    push[mode] = r;
  }
  const sotw = push['sotw'] as PushResult | undefined;
  const payload = sotw && 'changeBytesPerStream' in sotw ? Math.max(1, Math.round(sotw.changeBytesPerStream.p50)) : 200_000;
  process.stdout.write(`push floor: ${STREAMS} streams, ${payload} B payload ... `);
  const fl = await pushBench('floor', payload);
  console.log('latencyMs' in fl ? 'done' : `FAILED: ${fl.error}`);
  push['floor'] = fl;
  out['push'] = push;

  const rows: (string | number)[][] = [];
  for (const mode of ['sotw', 'delta', 'floor'] as const) {
    const r = push[mode] as PushResult | { error: string };
    if (!('latencyMs' in r)) {
      rows.push([mode, 'error', r.error, '', '', '', '', '', '']);
      continue;
    }
    rows.push([
      mode === 'floor' ? 'floor (bare grpc-js)' : mode,
      `${r.received}/${r.streams}`,
      f(r.latencyMs.p50), f(r.latencyMs.p99), f(r.latencyMs.max),
      mode === 'floor' ? '-' : kb(r.fullBytesPerStream.p50),
      kb(r.changeBytesPerStream.p50),
      mode === 'floor' ? '-' : `${f((100 * r.changeBytesPerStream.p50) / r.fullBytesPerStream.p50, 2)}%`,
      mode === 'floor' ? '-' : f(r.syncMs),
    ]);
  }
  console.log(`\n== Push: one descriptor's path changed, ${PUSH_N} descriptors, latency from cache.set to receipt (ms)`);
  console.log(table(['mode', 'got change', 'p50', 'p99', 'max', 'full config/stream', 'change/stream', 'change/full', 'initial sync ms'], rows));
  for (const mode of ['sotw', 'delta'] as const) {
    const r = push[mode] as PushResult;
    if ('latencyMs' in r) {
      console.log(`  ${mode}: change responses by type ${JSON.stringify(r.changeTypes)}; cache.set ${f(r.setMs, 1)} ms; rebuild ${f(r.changeBuildMs)} ms (not included)${r.errors.length ? `; stream errors: ${r.errors.join(' | ')}` : ''}${r.error ? `; ${r.error}` : ''}`);
      console.log(`         server: ${JSON.stringify(r.server)}`);
    }
  }
  const s = push['sotw'] as PushResult;
  const d = push['delta'] as PushResult;
  for (const [name, r] of [['SotW', s], ['Delta', d]] as const) {
    if (r && 'latencyMs' in r) goals.push({ goal: `${name}: change reaches ${STREAMS} streams in < 1 s`, met: r.received === r.streams && r.latencyMs.max < GOAL_PUSH_MS, detail: `${r.received}/${r.streams} streams, max ${f(r.latencyMs.max)} ms, p50 ${f(r.latencyMs.p50)} ms` });
  }
  if (d && 'latencyMs' in d) {
    const ratio = d.changeBytesPerStream.p50 / d.fullBytesPerStream.p50;
    goals.push({ goal: 'Delta sends < 1% of the full config per stream', met: ratio < GOAL_DELTA_RATIO, detail: `${kb(d.changeBytesPerStream.p50)} of ${kb(d.fullBytesPerStream.p50)} = ${f(100 * ratio, 2)}%` });
  }
}

out['goals'] = goals;
out['loadavgAtEnd'] = os.loadavg().map((x) => Number(x.toFixed(2)));
out['wallMs'] = performance.now() - started;
console.log('\n== Goals');
for (const g of goals) console.log(`  [${g.met ? 'MET' : 'NOT MET'}] ${g.goal}: ${g.detail}`);
const resultsDir = path.join(repo, 'bench', 'results');
fs.mkdirSync(resultsDir, { recursive: true });
fs.writeFileSync(path.join(resultsDir, 'latest.json'), `${JSON.stringify(out, null, 2)}\n`);
console.log(`\nwhole bench: ${f(performance.now() - started)} ms; load average at end ${(out['loadavgAtEnd'] as number[]).join(' ')}; JSON: bench/results/latest.json`);
process.exit(0);
