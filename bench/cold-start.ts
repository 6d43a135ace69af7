// Cold start of the whole server: a fresh process per round runs `startServer` on a config directory of
// N ServiceDescriptors + N ApiKeys (files of ≤ 1,000 objects) and stops at the first Envoy snapshot that
// holds every descriptor's cluster, set in the cache the xDS server serves (the server's port is bound by
// then; builds whose startServer takes no cache are read when it returns). Prints, per round: wall from
// process start (performance.now(), which includes node's own boot and module loading), of which module
// import; CPU (user + system) over the same span; peak RSS (VmHWM); when startServer returned.
//
//   npm run build && node dist/bench/cold-start.js [--descriptors 10000] [--apikeys 10000] [--rounds 3]
//        [--against <checkout with dist/>] [--dir <existing config dir>] [--profile <dir>]
//        [--node-flags "<node/V8 flags>"]... [--settle-ms <ms>]
//
// `--against` interleaves rounds of another checkout's build (e.g. main before a change) with this one's
// on the same generated input: before, after, before, after... The child always runs this file and
// imports the measured build's `dist/src/main.js` by path, so the other checkout needs no copy of it.
// `--profile <dir>` runs the children with `--cpu-prof` into that directory (slower; for where, not how long).
// `--node-flags "<flags>"` starts every child as `node <flags> …` (both builds; default: no flags). Given more
// than once, each value is one variant ("" = no flags) and every round runs every build × variant, interleaved.
// Each child also reports the time V8 spent in GC to the first snapshot (scavenges, mark-compacts); with
// `--settle-ms <ms>`, the child then stays up that long (the server idle, V8's memory reducer free to run)
// and reports its RSS and the heap committed at the end: the steady state after the start.
// Each round ends with the floor: this build's file source alone reading, parsing and taking in the same
// directory in a fresh process (no model, translate or server), after its import; each build's time is also
// given as a multiple of its round's floor, which follows the machine's speed from minute to minute.
// Writes bench/results/cold-start.json.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { PerformanceObserver, constants as perfConstants } from 'node:perf_hooks';
import v8 from 'node:v8';
import { apikeyDoc, descriptorDoc, writeDocFiles } from './gen.js';

const SELF = fileURLToPath(import.meta.url);
const here = path.dirname(SELF);
const repo = path.resolve(here, '..', '..');

interface Round {
  build: string;
  flags: string;
  wallMs: number;
  importMs: number;
  cpuMs: number;
  peakRssMiB: number;
  clusters: number;
  /** When startServer returned (the Envoy snapshot can be set before: wallMs ≤ returnedMs). */
  returnedMs: number;
  /** Peak RSS when startServer returned (the whole first build, its gRPC part included). */
  peakAtReturnMiB: number;
  gc: GcTotals;
  settled?: { rssMiB: number; heapCommittedMiB: number; newSpaceCommittedMiB: number };
}

interface GcTotals {
  ms: number;
  scavenges: number;
  scavengeMs: number;
  markCompacts: number;
  markCompactMs: number;
}

/** Sums the `gc` performance entries from now on (V8's pauses on the main thread). */
function watchGc(): GcTotals {
  const t: GcTotals = { ms: 0, scavenges: 0, scavengeMs: 0, markCompacts: 0, markCompactMs: 0 };
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      t.ms += e.duration;
      const kind = (e as { detail?: { kind?: number } }).detail?.kind;
      if (kind === perfConstants.NODE_PERFORMANCE_GC_MINOR) {
        t.scavenges++;
        t.scavengeMs += e.duration;
      } else if (kind === perfConstants.NODE_PERFORMANCE_GC_MAJOR) {
        t.markCompacts++;
        t.markCompactMs += e.duration;
      }
    }
  }).observe({ entryTypes: ['gc'] });
  return t;
}

function rssMiB(): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync('/proc/self/status', 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

async function settle(ms: number): Promise<NonNullable<Round['settled']>> {
  await new Promise((r) => setTimeout(r, ms));
  const spaces = v8.getHeapSpaceStatistics();
  const newSpace = spaces.find((x) => x.space_name === 'new_space');
  return {
    rssMiB: rssMiB(),
    heapCommittedMiB: v8.getHeapStatistics().total_heap_size / 2 ** 20,
    newSpaceCommittedMiB: (newSpace?.space_size ?? NaN) / 2 ** 20,
  };
}

function peakRssMiB(): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(fs.readFileSync('/proc/self/status', 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

interface CacheLike {
  get(nodeType: string): { resources: Record<string, { size: number }> } | undefined;
  subscribe(fn: (nodeType: string) => void): void;
}

interface StartServerLike {
  (
    config: unknown,
    logger: unknown,
    metrics?: unknown,
    deps?: { cache?: CacheLike },
  ): Promise<{ cache: CacheLike; stop(): Promise<void> }>;
}

async function child(buildRoot: string, dir: string, want: number, settleMs: number): Promise<void> {
  const gc = watchGc();
  const dist = path.join(buildRoot, 'dist', 'src');
  const cfg = (await import(pathToFileURL(path.join(dist, 'config.js')).href)) as {
    resolveConfig(
      flags: Record<string, unknown>,
      env: Record<string, string>,
    ): { ok: boolean; value?: unknown; errors?: string[] };
  };
  const main = (await import(pathToFileURL(path.join(dist, 'main.js')).href)) as {
    startServer: StartServerLike;
    makeLogger(level: string): unknown;
  };
  const tImport = performance.now();
  const data = fs.mkdtempSync(path.join(os.tmpdir(), 'oxds-cold-data-'));
  const r = cfg.resolveConfig(
    { config: dir, xdsPort: 0, adminPort: 0, authzPort: 0, logLevel: 'error', dataDir: data },
    {},
  );
  if (!r.ok) throw new Error((r.errors ?? []).join('; '));
  // A cache watched from before the first build (builds whose startServer takes one): the round ends when
  // the Envoy snapshot with every descriptor's cluster is set, which can be before startServer returns.
  const cacheMod = (await import(pathToFileURL(path.join(dist, 'xds', 'cache.js')).href)) as {
    SnapshotCache: new () => CacheLike;
  };
  const watched = new cacheMod.SnapshotCache();
  const clustersIn = (c: CacheLike): number => c.get('envoy')?.resources['cluster']?.size ?? 0;
  let at: { wallMs: number; cpu: NodeJS.CpuUsage; peak: number } | undefined;
  const mark = (): void => {
    at = { wallMs: performance.now(), cpu: process.cpuUsage(), peak: peakRssMiB() };
  };
  watched.subscribe((nodeType) => {
    if (at === undefined && nodeType === 'envoy' && clustersIn(watched) >= want) mark();
  });
  const server = await main.startServer(r.value, main.makeLogger('error'), undefined, { cache: watched });
  const returnedMs = performance.now();
  const peakAtReturn = peakRssMiB();
  if (server.cache !== watched) {
    // An older build: it made its own cache, watched from startServer's return.
    if (clustersIn(server.cache) < want) {
      await new Promise<void>((resolve) => {
        server.cache.subscribe((nodeType) => {
          if (nodeType === 'envoy' && clustersIn(server.cache) >= want) resolve();
        });
      });
    }
    mark();
  }
  const { wallMs, cpu, peak } = at as NonNullable<typeof at>;
  // The gc entries of the last pauses are delivered on a later tick: let them in before reading the totals.
  await new Promise((r) => setImmediate(r));
  const out: Omit<Round, 'build' | 'flags'> = {
    wallMs,
    importMs: tImport,
    cpuMs: (cpu.user + cpu.system) / 1000,
    peakRssMiB: peak,
    clusters: clustersIn(server.cache),
    returnedMs,
    peakAtReturnMiB: peakAtReturn,
    gc: { ...gc },
  };
  if (settleMs > 0) out.settled = await settle(settleMs);
  process.stdout.write(`${JSON.stringify(out)}\n`);
  await server.stop();
  fs.rmSync(data, { recursive: true, force: true });
  process.exit(0);
}

/**
 * The floor of a round: this build's file source reading, parsing and taking in the same directory, and
 * nothing else (no model, no translate, no server), after the import of its module, as a fresh process.
 */
async function floorChild(buildRoot: string, dir: string): Promise<void> {
  const mod = (await import(pathToFileURL(path.join(buildRoot, 'dist', 'src', 'sources', 'file-source.js')).href)) as {
    FileSource: new (o: { dir: string }) => {
      scan(): Promise<boolean>;
      view(): { objects: unknown[] };
      stop(): void;
    };
  };
  const tImport = performance.now();
  const source = new mod.FileSource({ dir });
  await source.scan();
  const objects = source.view().objects.length;
  const wallMs = performance.now();
  const cpu = process.cpuUsage();
  process.stdout.write(
    `${JSON.stringify({ wallMs, importMs: tImport, cpuMs: (cpu.user + cpu.system) / 1000, objects })}\n`,
  );
  source.stop();
  process.exit(0);
}

interface FloorRound {
  wallMs: number;
  importMs: number;
  cpuMs: number;
  objects: number;
}

function runFloor(dir: string): Promise<FloorRound> {
  return childJson<FloorRound>([SELF, 'floor', repo, dir], 'floor child');
}

/** Runs `node <args>` and parses the last line it prints (a JSON object). */
function childJson<T>(args: string[], what: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    p.stdout.on('data', (b: Buffer) => (out += b.toString()));
    p.on('error', reject);
    p.on('exit', (code) => {
      const line = out.trim().split('\n').pop() ?? '';
      if (code !== 0 || !line.startsWith('{')) return reject(new Error(`${what} exited ${code}: ${out}`));
      resolve(JSON.parse(line) as T);
    });
  });
}

interface ChildOptions {
  want: number;
  profileDir: string | undefined;
  flags: string;
  settleMs: number;
}

function runChild(buildRoot: string, dir: string, o: ChildOptions): Promise<Round> {
  const args = [
    ...splitFlags(o.flags),
    ...(o.profileDir ? ['--cpu-prof', '--cpu-prof-dir', o.profileDir] : []),
    SELF,
    'child',
    buildRoot,
    dir,
    String(o.want),
    String(o.settleMs),
  ];
  return childJson<Omit<Round, 'build' | 'flags'>>(args, `child for ${buildRoot}`).then((r) => ({
    build: buildRoot,
    flags: o.flags,
    ...r,
  }));
}

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : undefined;
}

/** Every value of a repeatable option, in order. */
function args(name: string): string[] {
  const out: string[] = [];
  process.argv.forEach((a, i) => {
    const v = process.argv[i + 1];
    if (a === `--${name}` && v !== undefined) out.push(v);
  });
  return out;
}

function splitFlags(flags: string): string[] {
  return flags.split(/\s+/).filter((x) => x !== '');
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? NaN;
}

function roundLine(res: Round): string {
  const st = res.settled;
  return (
    `wall ${res.wallMs.toFixed(0)} ms (import ${res.importMs.toFixed(0)}, ` +
    `after import ${(res.wallMs - res.importMs).toFixed(0)}), CPU ${res.cpuMs.toFixed(0)} ms, ` +
    `GC ${res.gc.ms.toFixed(0)} ms (${res.gc.scavenges} scavenges ${res.gc.scavengeMs.toFixed(0)} ms, ` +
    `${res.gc.markCompacts} mark-compacts ${res.gc.markCompactMs.toFixed(0)} ms), ` +
    `peak RSS ${res.peakRssMiB.toFixed(0)} MiB, ${res.clusters} clusters` +
    (res.returnedMs !== undefined && res.returnedMs > res.wallMs
      ? `, startServer returned ${(res.returnedMs - res.wallMs).toFixed(0)} ms later (peak RSS by then ` +
        `${res.peakAtReturnMiB.toFixed(0)} MiB)`
      : '') +
    (st
      ? `; settled: RSS ${st.rssMiB.toFixed(0)} MiB, heap committed ${st.heapCommittedMiB.toFixed(0)} MiB ` +
        `(new space ${st.newSpaceCommittedMiB.toFixed(0)})`
      : '')
  );
}

interface Summary {
  build: string;
  flags: string;
  wallMs: number;
  afterImportMs: number;
  cpuMs: number;
  gcMs: number;
  peakRssMiB: number;
  settledRssMiB: number | undefined;
}

function summarize(build: string, flags: string, results: Round[]): Summary {
  const rs = results.filter((x) => x.build === build && x.flags === flags);
  const settled = rs.flatMap((x) => (x.settled ? [x.settled.rssMiB] : []));
  return {
    build,
    flags,
    wallMs: median(rs.map((x) => x.wallMs)),
    afterImportMs: median(rs.map((x) => x.wallMs - x.importMs)),
    cpuMs: median(rs.map((x) => x.cpuMs)),
    gcMs: median(rs.map((x) => x.gc.ms)),
    peakRssMiB: median(rs.map((x) => x.peakRssMiB)),
    settledRssMiB: settled.length > 0 ? median(settled) : undefined,
  };
}

function summaryLine(s: Summary): string {
  return (
    `wall ${s.wallMs.toFixed(0)} ms (after import ${s.afterImportMs.toFixed(0)}), CPU ${s.cpuMs.toFixed(0)} ms, ` +
    `GC ${s.gcMs.toFixed(0)} ms, peak RSS ${s.peakRssMiB.toFixed(0)} MiB` +
    (s.settledRssMiB !== undefined ? `, settled RSS ${s.settledRssMiB.toFixed(0)} MiB` : '')
  );
}

async function main(): Promise<void> {
  const nDesc = Number(arg('descriptors') ?? 10_000);
  const nKeys = Number(arg('apikeys') ?? nDesc);
  const rounds = Number(arg('rounds') ?? 3);
  const against = arg('against');
  const profileDir = arg('profile');
  const settleMs = Number(arg('settle-ms') ?? 0);
  const variants = args('node-flags');
  if (variants.length === 0) variants.push('');
  if (profileDir) fs.mkdirSync(profileDir, { recursive: true });
  let root: string | undefined;
  let dir = arg('dir');
  if (!dir) {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'oxds-cold-'));
    dir = path.join(root, 'config');
    fs.mkdirSync(dir);
    writeDocFiles(
      dir,
      'descriptors',
      Array.from({ length: nDesc }, (_x, i) => descriptorDoc(i + 1)),
    );
    writeDocFiles(
      dir,
      'apikeys',
      Array.from({ length: nKeys }, (_x, i) => apikeyDoc(i)),
    );
  }
  const bytes = fs.readdirSync(dir).reduce((n, f) => n + fs.statSync(path.join(dir, f)).size, 0);
  const cpuModel = os.cpus()[0]?.model ?? '?';
  console.log(
    `cold start: ${nDesc} descriptors + ${nKeys} apikeys, ${(bytes / 2 ** 20).toFixed(1)} MiB in ${dir}; ` +
      `${os.cpus().length} × ${cpuModel}, node ${process.version}, load ${os.loadavg()[0]?.toFixed(2)}`,
  );
  const builds = against ? [path.resolve(against), repo] : [repo];
  const label = (b: string, flags: string): string =>
    `${b === repo ? 'this ' : 'other'}${variants.length > 1 || flags !== '' ? ` [${flags || 'no flags'}]` : ''}`;
  const results: Round[] = [];
  const floors: FloorRound[] = [];
  for (let r = 0; r < rounds; r++) {
    for (const flags of variants) {
      for (const b of builds) {
        const res = await runChild(b, dir, { want: nDesc, profileDir, flags, settleMs });
        results.push(res);
        console.log(`  ${label(b, flags)} round ${r + 1}: ${roundLine(res)}`);
      }
    }
    const f = await runFloor(dir);
    floors.push(f);
    console.log(
      `  floor round ${r + 1}: this build's file source alone read, parsed and took in ${f.objects} objects ` +
        `${(f.wallMs - f.importMs).toFixed(0)} ms after its import (CPU ${f.cpuMs.toFixed(0)} ms)`,
    );
  }
  const summary = variants.flatMap((flags) => builds.map((b) => summarize(b, flags, results)));
  for (const s of summary) console.log(`median ${label(s.build, s.flags)} (${s.build}): ${summaryLine(s)}`);
  const floorMs = floors.map((f) => f.wallMs - f.importMs);
  console.log(`median floor (file source alone): ${median(floorMs).toFixed(0)} ms after import`);
  for (const flags of variants)
    for (const b of builds) {
      // Per round: the build's time after import over that round's floor (the machine's speed drifts).
      const ratios = results
        .filter((x) => x.build === b && x.flags === flags)
        .map((x, i) => (x.wallMs - x.importMs) / (floorMs[i] ?? NaN));
      console.log(`  ${label(b, flags)}: ${median(ratios).toFixed(2)}× the floor of its round (median)`);
    }
  console.log(`load after: ${os.loadavg()[0]?.toFixed(2)}`);
  const outDir = path.join(repo, 'bench', 'results');
  fs.mkdirSync(outDir, { recursive: true });
  fs.writeFileSync(
    path.join(outDir, 'cold-start.json'),
    JSON.stringify({ nDesc, nKeys, bytes, cpuModel, node: process.version, rounds: results, floors, summary }, null, 2),
  );
  if (root) fs.rmSync(root, { recursive: true, force: true });
}

if (process.argv[2] === 'floor') {
  await floorChild(process.argv[3] ?? repo, process.argv[4] ?? '');
} else if (process.argv[2] === 'child') {
  await child(
    process.argv[3] ?? repo,
    process.argv[4] ?? '',
    Number(process.argv[5] ?? 1),
    Number(process.argv[6] ?? 0),
  );
} else {
  await main();
}
