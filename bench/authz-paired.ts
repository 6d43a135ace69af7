// ext_authz Check against the bare grpc-js floor, PAIRED: both servers run side by side for the whole
// run and are measured in alternating short slices (floor, ours, ours, floor, …), each slice's ratio
// taken against the adjacent slice of the other server. On this shared 2-core VM the throughput of
// the same server moves by ±20 % from one 5 s run to the next (the floor alone gave 16.6k–25.6k
// checks/s within minutes); rounds of fresh processes compare runs minutes apart, a pair compares
// runs seconds apart. The goal is judged on the median of the pair ratios, reported with their
// spread; the per-slice figures are in bench/results/authz-paired.json.
//
//   node dist/bench/authz-paired.js [--pairs 16] [--slice 3] [--modes memory,redis]
//
// Needs h2load (and redis-server for the Redis mode). Same request, model and servers as
// bench/authz.ts (its `serve` children).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { redisAvailable, startRedis } from '../test/helpers/redis.js';
import { benchCheckRequest, grpcFrame, h2loadWithCpu, startChild, stopChild, verify, type RunResult } from './authz.js';

interface Slice {
  pair: number;
  mode: string;
  reqPerSec: number;
  serverCpuUs: number | undefined;
  failed: number;
  load1: number;
}

interface PairStats {
  mode: string;
  pairs: number;
  ratioMedian: number;
  ratioP25: number;
  ratioP75: number;
  ratioMin: number;
  ratioMax: number;
  cpuRatioMedian: number | undefined;
  oursReqPerSecMedian: number;
  floorReqPerSecMedian: number;
  oursCpuUsMedian: number | undefined;
  floorCpuUsMedian: number | undefined;
  failed: number;
}

function arg(name: string, def: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? (process.argv[i + 1] ?? def) : def;
}

function quantile(xs: number[], q: number): number {
  const a = [...xs].sort((x, y) => x - y);
  if (a.length === 0) return Number.NaN;
  const pos = (a.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return a[lo]! + (a[hi]! - a[lo]!) * (pos - lo);
}

const round3 = (x: number): number => Number(x.toFixed(3));

/** Slice order of pair k: floor first on even pairs, ours first on odd ones (drift cancels). */
export function pairOrder(k: number, mode: string): string[] {
  return k % 2 === 0 ? ['floor', mode] : [mode, 'floor'];
}

/** The ratios of each pair (ours / floor, and floor CPU / ours CPU) and their summary. */
export function pairStats(mode: string, slices: readonly Slice[]): PairStats {
  const pairs = [...new Set(slices.filter((s) => s.mode === mode).map((s) => s.pair))];
  const ratios: number[] = [];
  const cpuRatios: number[] = [];
  for (const k of pairs) {
    const ours = slices.find((s) => s.pair === k && s.mode === mode);
    const floor = slices.find((s) => s.pair === k && s.mode === 'floor');
    if (!ours || !floor || floor.reqPerSec <= 0) continue;
    ratios.push(ours.reqPerSec / floor.reqPerSec);
    if (ours.serverCpuUs && floor.serverCpuUs) cpuRatios.push(floor.serverCpuUs / ours.serverCpuUs);
  }
  const of = (m: string, f: (s: Slice) => number | undefined): number[] =>
    slices.filter((s) => s.mode === m && pairs.includes(s.pair)).flatMap((s) => f(s) ?? []);
  const cpuOurs = of(mode, (s) => s.serverCpuUs);
  const cpuFloor = of('floor', (s) => s.serverCpuUs);
  return {
    mode,
    pairs: ratios.length,
    ratioMedian: round3(quantile(ratios, 0.5)),
    ratioP25: round3(quantile(ratios, 0.25)),
    ratioP75: round3(quantile(ratios, 0.75)),
    ratioMin: round3(Math.min(...ratios)),
    ratioMax: round3(Math.max(...ratios)),
    cpuRatioMedian: cpuRatios.length > 0 ? round3(quantile(cpuRatios, 0.5)) : undefined,
    oursReqPerSecMedian: Math.round(
      quantile(
        of(mode, (s) => s.reqPerSec),
        0.5,
      ),
    ),
    floorReqPerSecMedian: Math.round(
      quantile(
        of('floor', (s) => s.reqPerSec),
        0.5,
      ),
    ),
    oursCpuUsMedian: cpuOurs.length > 0 ? round3(quantile(cpuOurs, 0.5)) : undefined,
    floorCpuUsMedian: cpuFloor.length > 0 ? round3(quantile(cpuFloor, 0.5)) : undefined,
    failed: of(mode, (s) => s.failed).reduce((a, b) => a + b, 0),
  };
}

type Child = Awaited<ReturnType<typeof startChild>>;

function measure(child: Child, bodyFile: string, mode: string, seconds: number, pair: number): Slice {
  const r: RunResult = h2loadWithCpu(child.child.pid!, child.port, bodyFile, mode, seconds);
  return {
    pair,
    mode,
    reqPerSec: r.reqPerSec,
    serverCpuUs: r.serverCpuUs,
    failed: r.failed,
    load1: Number(os.loadavg()[0]!.toFixed(2)),
  };
}

async function run(): Promise<void> {
  const pairs = Number(arg('pairs', '16'));
  const slice = Number(arg('slice', '3'));
  const body = benchCheckRequest();
  const bodyFile = path.join(os.tmpdir(), `oxds-bench-paired-${process.pid}.bin`);
  fs.writeFileSync(bodyFile, grpcFrame(body));
  const redis = redisAvailable() ? await startRedis() : undefined;
  const wanted = arg('modes', 'memory,redis').split(',');
  const modes = wanted.filter((m) => m !== 'redis' || redis !== undefined);
  const loadBefore = os.loadavg();
  const children = new Map<string, Child>();
  const slices: Slice[] = [];
  const checks: Record<string, string> = {};
  try {
    for (const mode of ['floor', ...modes]) {
      const c = await startChild(mode, redis?.url);
      children.set(mode, c);
      checks[mode] = await verify(c.port, body, mode);
      measure(c, bodyFile, mode, slice, -1); // warm-up: JIT, connection pools, Redis scripts
    }
    for (const mode of modes)
      for (let k = 0; k < pairs; k++)
        for (const m of pairOrder(k, mode)) slices.push(measure(children.get(m)!, bodyFile, m, slice, k));
    for (const mode of modes) checks[`${mode} after`] = await verify(children.get(mode)!.port, body, mode);
  } finally {
    for (const c of children.values()) await stopChild(c.child);
    await redis?.stop();
    fs.rmSync(bodyFile, { force: true });
  }
  report({ pairs, slice, loadBefore, slices, checks, modes });
}

function report(r: {
  pairs: number;
  slice: number;
  loadBefore: number[];
  slices: Slice[];
  checks: Record<string, string>;
  modes: string[];
}): void {
  const stats = r.modes.map((m) => pairStats(m, r.slices));
  const goals = stats.map((s) => {
    const min = s.mode === 'memory' ? 0.8 : 0.6;
    return {
      goal: `ext_authz ${s.mode}: ≥ ${min * 100} % of the floor's checks/s (paired)`,
      met: s.ratioMedian >= min,
      detail:
        `median of ${s.pairs} pair ratios ${s.ratioMedian} (quartiles ${s.ratioP25}–${s.ratioP75}, ` +
        `range ${s.ratioMin}–${s.ratioMax}); ` +
        `CPU per Check ${s.oursCpuUsMedian} µs vs floor ${s.floorCpuUsMedian} µs`,
    };
  });
  const out = {
    date: new Date().toISOString(),
    machine: { cpus: os.cpus().length, model: os.cpus()[0]?.model, node: process.version },
    loadavgBefore: r.loadBefore,
    loadavgAfter: os.loadavg(),
    pairs: r.pairs,
    sliceSeconds: r.slice,
    correctness: r.checks,
    stats,
    slices: r.slices,
    goals,
  };
  fs.mkdirSync('bench/results', { recursive: true });
  fs.writeFileSync('bench/results/authz-paired.json', JSON.stringify(out, null, 2));
  const fmt = (xs: number[]): string => xs.map((l) => l.toFixed(2)).join(' ');
  console.log(`load average before ${fmt(r.loadBefore)}, after ${fmt(os.loadavg())}`);
  console.log(`${r.pairs} pairs of ${r.slice} s slices per mode, servers kept running, order alternating`);
  console.log(
    '| mode | pairs | ours/floor median | quartiles | range | ours req/s | floor req/s | CPU µs ours / floor |',
  );
  console.log('|---|---:|---:|---:|---:|---:|---:|---:|');
  for (const s of stats)
    console.log(
      `| ${s.mode} | ${s.pairs} | ${s.ratioMedian} | ${s.ratioP25}–${s.ratioP75} | ${s.ratioMin}–${s.ratioMax} | ` +
        `${s.oursReqPerSecMedian} | ${s.floorReqPerSecMedian} | ${s.oursCpuUsMedian} / ${s.floorCpuUsMedian} |`,
    );
  for (const [k, v] of Object.entries(r.checks)) console.log(`check ${k}: ${v}`);
  for (const g of goals) console.log(`  [${g.met ? 'MET' : 'NOT MET'}] ${g.goal}: ${g.detail}`);
}

const isMain = process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href;
if (isMain)
  run().catch((e: unknown) => {
    console.error(e);
    process.exit(1);
  });
