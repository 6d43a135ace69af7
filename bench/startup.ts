// Start-up cost: what a fresh process pays to import each dependency and each of our entry
// modules (one fresh `node` per module and round; median of BENCH_STARTUP_ROUNDS), next to the
// floor (`node -e 0`) and the whole `translate` of an empty directory, all in the same run.
// `node dist/bench/startup.js` (after `npm run build`); BENCH_STARTUP_BASELINE=<other checkout> adds
// that checkout's `dist/src/cli.js translate` (e.g. before a change) to the same run.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { envInt } from './gen.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '..', '..');
const ROUNDS = envInt('BENCH_STARTUP_ROUNDS', 5);

const MODULES = [
  'commander',
  'yaml',
  'ajv',
  'protobufjs',
  '@grpc/grpc-js',
  '@grpc/proto-loader',
  're2-wasm',
  'jose',
  'ioredis',
  'pino',
  'prom-client',
  'fastify',
  '@kubernetes/client-node',
  './dist/proto/loader.js',
  './dist/src/xds/translate.js',
  './dist/src/model/build.js',
  './dist/src/pipeline.js',
  './dist/src/sources/yaml.js',
  './dist/src/main.js',
];

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

/** Wall ms and peak RSS (KiB) of one `node` run; `null` when it failed. */
function run(args: string[]): { ms: number; maxRssKiB: number } | null {
  const t = process.hrtime.bigint();
  const r = spawnSync('/usr/bin/time', ['-f', '%M', process.execPath, ...args], { cwd: repo, encoding: 'utf8' });
  const ms = Number(process.hrtime.bigint() - t) / 1e6;
  if (r.status !== 0) return null;
  return { ms, maxRssKiB: Number(r.stderr.trim().split('\n').pop()) };
}

/** ms spent in `import(m)` alone, measured inside a fresh process. */
function importMs(m: string): number | null {
  const spec = m.startsWith('./') ? path.join(repo, m) : m;
  const code =
    `const t=performance.now();await import(${JSON.stringify(spec)});` +
    'process.stdout.write(String(performance.now()-t))';
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', code], { cwd: repo, encoding: 'utf8' });
  return r.status === 0 ? Number(r.stdout) : null;
}

const empty = fs.mkdtempSync(path.join(os.tmpdir(), 'oxds-empty-'));
const rows: string[] = [];
const floor = Array.from({ length: ROUNDS }, () => run(['-e', '0'])!.ms);
const translate = Array.from({ length: ROUNDS }, () => run(['dist/src/cli.js', 'translate', '--config', empty]));
const tOk = translate.filter((x): x is NonNullable<typeof x> => x !== null);
rows.push(`| floor: \`node -e 0\` | ${median(floor).toFixed(0)} | |`);
const baseline = process.env['BENCH_STARTUP_BASELINE'];
if (baseline) {
  const b = Array.from({ length: ROUNDS }, () =>
    run([path.join(baseline, 'dist/src/cli.js'), 'translate', '--config', empty]),
  ).filter((x): x is NonNullable<typeof x> => x !== null);
  rows.push(
    `| baseline \`${baseline}` +
      `\` translate, empty dir | ${b.length ? median(b.map((x) => x.ms)).toFixed(0) : 'failed'}` +
      ` | ${b.length ? `peak RSS ${Math.round(median(b.map((x) => x.maxRssKiB)) / 1024)} MiB` : ''} |`,
  );
}
rows.push(
  `| \`translate --config <empty dir>\` (whole process) | ${median(tOk.map((x) => x.ms)).toFixed(0)}` +
    ` | peak RSS ${Math.round(median(tOk.map((x) => x.maxRssKiB)) / 1024)} MiB |`,
);
for (const m of MODULES) {
  const xs = Array.from({ length: ROUNDS }, () => importMs(m)).filter((x): x is number => x !== null);
  rows.push(`| import \`${m}\` alone | ${xs.length ? median(xs).toFixed(0) : 'failed'} | |`);
}
fs.rmSync(empty, { recursive: true, force: true });
console.log(
  `start-up, median of ${ROUNDS} fresh processes each; node ${process.version}, ` +
    `${os.cpus().length} × ${os.cpus()[0]?.model ?? '?'}, load average ${os
      .loadavg()
      .map((x) => x.toFixed(1))
      .join(' ')}`,
);
console.log('| what | ms | |\n|---|---|---|');
for (const r of rows) console.log(r);
