// Cold start of the whole server: a fresh process per round runs `startServer` on a config directory of
// N ServiceDescriptors + N ApiKeys (files of ≤ 1,000 objects) and stops at the first snapshot that holds
// every descriptor's cluster. Prints, per round: wall from process start (performance.now(), which
// includes node's own boot and module loading), of which module import; CPU (user + system) over the
// same span; peak RSS (VmHWM).
//
//   npm run build && node dist/bench/cold-start.js [--descriptors 10000] [--apikeys 10000] [--rounds 3]
//        [--against <checkout with dist/>] [--dir <existing config dir>] [--profile <dir>]
//
// `--against` interleaves rounds of another checkout's build (e.g. main before a change) with this one's
// on the same generated input: before, after, before, after... The child always runs this file and
// imports the measured build's `dist/src/main.js` by path, so the other checkout needs no copy of it.
// `--profile <dir>` runs the children with `--cpu-prof` into that directory (slower; for where, not how long).
// Writes bench/results/cold-start.json.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { apikeyDoc, descriptorDoc, writeDocFiles } from './gen.js';

const SELF = fileURLToPath(import.meta.url);
const here = path.dirname(SELF);
const repo = path.resolve(here, '..', '..');

interface Round {
  build: string;
  wallMs: number;
  importMs: number;
  cpuMs: number;
  peakRssMiB: number;
  clusters: number;
}

function peakRssMiB(): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(fs.readFileSync('/proc/self/status', 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

interface StartServerLike {
  (
    config: unknown,
    logger: unknown,
  ): Promise<{
    cache: {
      get(nodeType: string): { resources: Record<string, { size: number }> } | undefined;
      subscribe(fn: (nodeType: string) => void): void;
    };
    stop(): Promise<void>;
  }>;
}

async function child(buildRoot: string, dir: string, want: number): Promise<void> {
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
  const server = await main.startServer(r.value, main.makeLogger('error'));
  const clusters = (): number => server.cache.get('envoy')?.resources['cluster']?.size ?? 0;
  if (clusters() < want) {
    await new Promise<void>((resolve) => {
      server.cache.subscribe((nodeType) => {
        if (nodeType === 'envoy' && clusters() >= want) resolve();
      });
    });
  }
  const wallMs = performance.now();
  const cpu = process.cpuUsage();
  const out = {
    wallMs,
    importMs: tImport,
    cpuMs: (cpu.user + cpu.system) / 1000,
    peakRssMiB: peakRssMiB(),
    clusters: clusters(),
  };
  process.stdout.write(`${JSON.stringify(out)}\n`);
  await server.stop();
  fs.rmSync(data, { recursive: true, force: true });
  process.exit(0);
}

function runChild(buildRoot: string, dir: string, want: number, profileDir: string | undefined): Promise<Round> {
  const args = [
    ...(profileDir ? ['--cpu-prof', '--cpu-prof-dir', profileDir] : []),
    SELF,
    'child',
    buildRoot,
    dir,
    String(want),
  ];
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    p.stdout.on('data', (b: Buffer) => (out += b.toString()));
    p.on('error', reject);
    p.on('exit', (code) => {
      const line = out.trim().split('\n').pop() ?? '';
      if (code !== 0 || !line.startsWith('{'))
        return reject(new Error(`child for ${buildRoot} exited ${code}: ${out}`));
      resolve({ build: buildRoot, ...(JSON.parse(line) as Omit<Round, 'build'>) });
    });
  });
}

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : undefined;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? NaN;
}

async function main(): Promise<void> {
  const nDesc = Number(arg('descriptors') ?? 10_000);
  const nKeys = Number(arg('apikeys') ?? nDesc);
  const rounds = Number(arg('rounds') ?? 3);
  const against = arg('against');
  const profileDir = arg('profile');
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
  const results: Round[] = [];
  for (let r = 0; r < rounds; r++) {
    for (const b of builds) {
      const res = await runChild(b, dir, nDesc, profileDir);
      results.push(res);
      console.log(
        `  ${b === repo ? 'this ' : 'other'} round ${r + 1}: wall ${res.wallMs.toFixed(0)} ms ` +
          `(import ${res.importMs.toFixed(0)}, ` +
          `after import ${(res.wallMs - res.importMs).toFixed(0)}), ` +
          `CPU ${res.cpuMs.toFixed(0)} ms, peak RSS ${res.peakRssMiB.toFixed(0)} MiB, ${res.clusters} clusters`,
      );
    }
  }
  const summary = builds.map((b) => {
    const rs = results.filter((x) => x.build === b);
    return {
      build: b,
      wallMs: median(rs.map((x) => x.wallMs)),
      afterImportMs: median(rs.map((x) => x.wallMs - x.importMs)),
      cpuMs: median(rs.map((x) => x.cpuMs)),
      peakRssMiB: median(rs.map((x) => x.peakRssMiB)),
    };
  });
  for (const s of summary)
    console.log(
      `median ${s.build === repo ? 'this ' : 'other'} (${s.build}): wall ${s.wallMs.toFixed(0)} ms ` +
        `(after import ${s.afterImportMs.toFixed(0)}), CPU ${s.cpuMs.toFixed(0)} ms, ` +
        `peak RSS ${s.peakRssMiB.toFixed(0)} MiB`,
    );
  console.log(`load after: ${os.loadavg()[0]?.toFixed(2)}`);
  const outDir = path.join(repo, 'bench', 'results');
  fs.mkdirSync(outDir, { recursive: true });
  fs.writeFileSync(
    path.join(outDir, 'cold-start.json'),
    JSON.stringify({ nDesc, nKeys, bytes, cpuModel, node: process.version, rounds: results, summary }, null, 2),
  );
  if (root) fs.rmSync(root, { recursive: true, force: true });
}

if (process.argv[2] === 'child') {
  await child(process.argv[3] ?? repo, process.argv[4] ?? '', Number(process.argv[5] ?? 1));
} else {
  await main();
}
