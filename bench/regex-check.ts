// User regexes at fleet scale: N descriptors (the bench model), each with its own matchingHeaders regex,
// compiled cold (fresh process: no verdict cached) and rebuilt twice. The floor is the same config
// where the patterns come from one template (`tenant-<i>-[a-z]+(x|y){2,5}`: one shape, so one RE2
// compile): same routes, same header matchers. Against it, a distinct shape per descriptor (nine
// atoms of `.`, `[a-z]`, `\d`: every pattern is compiled by RE2, what a fleet of hand-written regexes
// costs). For context, the same descriptors without any regex. Also the cost of one RE2 compile here.
//
//   npm run build && node dist/bench/regex-check.js [--descriptors 12000]
//
// Each variant runs in its own child process (cold caches, cold JIT). Writes bench/results/regex-check.json.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { benchDescriptor } from './gen.js';
import { compile } from '../src/pipeline.js';
import { TranslateCache } from '../src/xds/plan/cache.js';
import { re2CompileError } from '../proto/re2.js';
import type { StoredObject } from '../src/model/types.js';

const SELF = fileURLToPath(import.meta.url);
const repo = path.resolve(path.dirname(SELF), '..', '..');
type Variant = 'none' | 'template' | 'shapes';

interface ChildResult {
  variant: Variant;
  coldMs: number;
  rebuildMs: number[];
  invalid: number;
}

function regexOf(variant: Variant, i: number): string | undefined {
  if (variant === 'none') return undefined;
  if (variant === 'template') return `tenant-${i}-[a-z]+(x|y){2,5}`;
  // A distinct shape each, of ordinary size: i in base 3 picks each of 9 atoms (3^9 = 19,683 shapes).
  const atoms = ['.', '[a-z]', '\\d'];
  let p = 'tenant-';
  for (let k = 0, x = i; k < 9; k++, x = Math.floor(x / 3)) p += atoms[x % 3];
  return `${p}+`;
}

function child(variant: Variant, n: number): ChildResult {
  const objects: StoredObject[] = [];
  for (let i = 0; i < n; i++) {
    const o = benchDescriptor(i);
    const spec = o.object['spec'] as Record<string, unknown>;
    delete spec['matchingHeaders'];
    const re = regexOf(variant, i);
    if (re !== undefined) spec['matchingHeaders'] = { 'x-tenant': re };
    objects.push(o);
  }
  const view = { objects, loadErrors: [] };
  const cache = new TranslateCache();
  const times: number[] = [];
  let invalid = 0;
  for (let r = 0; r < 3; r++) {
    const t = performance.now();
    const c = compile(view, {}, {}, undefined, cache);
    times.push(performance.now() - t);
    invalid = c.statuses.filter((s) => s.state === 'invalid').length;
  }
  return { variant, coldMs: times[0] as number, rebuildMs: times.slice(1), invalid };
}

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

if (process.argv[2] === 'child') {
  process.stdout.write(`${JSON.stringify(child(process.argv[3] as Variant, Number(process.argv[4])))}\n`);
} else {
  const n = Number(arg('descriptors') ?? 12_000);
  const cpu = os.cpus()[0]?.model ?? '?';
  console.log(
    `regex checks: ${n} descriptors, ${os.cpus().length} × ${cpu}, node ${process.version}, ` +
      `load ${os.loadavg()[0]?.toFixed(2)}`,
  );
  // One RE2 compile (this process, warm after the first hundred).
  for (let i = 0; i < 100; i++) re2CompileError(`warm-${i}-[a-z]+`);
  const t0 = performance.now();
  for (let i = 0; i < 1000; i++) re2CompileError(`one-${i}-[a-z]+(x|y){2,5}`);
  const perCompileMs = (performance.now() - t0) / 1000;
  console.log(`  one RE2 compile (re2-wasm, as written, freed): ${(perCompileMs * 1000).toFixed(0)} µs`);
  const results: ChildResult[] = [];
  for (const variant of ['template', 'shapes', 'none'] as const) {
    const r = spawnSync(process.execPath, [SELF, 'child', variant, String(n)], {
      encoding: 'utf8',
      maxBuffer: 1 << 26,
    });
    if (r.status !== 0) throw new Error(`child ${variant} exited ${r.status}: ${r.stderr}`);
    const res = JSON.parse(r.stdout.trim().split('\n').pop() ?? '{}') as ChildResult;
    results.push(res);
    const floor = results[0] as ChildResult;
    const rb = res.rebuildMs.map((x) => x.toFixed(0)).join(' / ');
    const label = { template: 'floor: one template', shapes: 'a shape each', none: 'no regex at all' }[variant];
    console.log(
      `  ${label.padEnd(26)} cold compile ${res.coldMs.toFixed(0).padStart(6)} ms` +
        (variant === 'shapes' ? ` (+${(res.coldMs - floor.coldMs).toFixed(0)} over the floor)` : '') +
        `, rebuilds ${rb} ms, invalid objects ${res.invalid}`,
    );
  }
  const out = { descriptors: n, cpu, node: process.version, perCompileMs, results, loadavg: os.loadavg() };
  fs.mkdirSync(path.join(repo, 'bench', 'results'), { recursive: true });
  fs.writeFileSync(path.join(repo, 'bench', 'results', 'regex-check.json'), `${JSON.stringify(out, null, 2)}\n`);
}
