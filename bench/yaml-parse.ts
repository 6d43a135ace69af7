// YAML parsing of a large config directory, alternatives side by side in one process
// (`node dist/bench/yaml-parse.js`; BENCH_YAML_ROUNDS, default 3, interleaved; median reported).
// Input like bench/scale.ts's cold start: 10,000 descriptors + 10,000 apikeys + 1,000 TLS Secrets.
// Every alternative must keep what error messages need: a line and column for a syntax error.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import jsyaml from 'js-yaml';
import { parseAllDocuments, Parser } from 'yaml';
import { apikeyDoc, descriptorDoc, envInt } from './gen.js';
import { parseYamlFile } from '../src/sources/yaml.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '..', '..');
const ROUNDS = envInt('BENCH_YAML_ROUNDS', 3);

function input(): string {
  const docs: string[] = [];
  for (let i = 0; i < 10_000; i++) docs.push(descriptorDoc(i));
  for (let i = 0; i < 10_000; i++) docs.push(apikeyDoc(i));
  const tls = fs.readFileSync(path.join(repo, 'test/fixtures/model/tls/secrets.yaml'), 'utf8').split('\n---\n')[0]!;
  for (let i = 0; i < 1000; i++) docs.push(`${tls.replace(/name: web-tls/, `name: tls-${i}`)}\n`);
  return docs.join('---\n');
}

/** Splits at document markers (`---` alone on a line) so that parts can be parsed apart. */
function splitDocs(text: string, parts: number): string[] {
  const marks = [...text.matchAll(/^---$/gm)].map((m) => m.index);
  const out: string[] = [];
  let start = 0;
  for (let p = 1; p < parts; p++) {
    const at = marks[Math.floor((marks.length * p) / parts)];
    if (at === undefined || at <= start) continue;
    out.push(text.slice(start, at));
    start = at;
  }
  out.push(text.slice(start));
  return out;
}

const WORKER = `
const { parentPort } = require('node:worker_threads');
parentPort.on('message', async ({ text, mod }) => {
  const { parseYamlFile } = await import(mod);
  const r = parseYamlFile('x.yaml', text, 0);
  parentPort.postMessage({ objects: r.objects.length, errors: r.errors.length, result: r });
});`;

function workers(n: number): { run(parts: string[]): Promise<number>; stop(): Promise<void> } {
  const ws = Array.from({ length: n }, () => new Worker(WORKER, { eval: true }));
  const mod = new URL('../src/sources/yaml.js', import.meta.url).href;
  return {
    run: async (parts) => {
      const res = await Promise.all(
        parts.map(
          (text, i) =>
            new Promise<{ objects: number }>((resolve) => {
              const w = ws[i % n]!;
              w.once('message', resolve);
              w.postMessage({ text, mod });
            }),
        ),
      );
      return res.reduce((a, r) => a + r.objects, 0);
    },
    stop: async () => void (await Promise.all(ws.map((w) => w.terminate()))),
  };
}

const text = input();
const bad = text.replace('kind: ApiKey\nmetadata: {name: key-5000,', 'kind: ApiKey\nmetadata: {name: key-5000,,:');
const MiB = (text.length / 2 ** 20).toFixed(1);
console.log(`== YAML parsing, ${MiB} MiB, 21,000 documents; median of ${ROUNDS}; load ${os.loadavg()[0]!.toFixed(1)}`);

const ws2 = workers(2);
const alternatives: [string, () => number | Promise<number>, (t: string) => string][] = [
  [
    'parseYamlFile (what the server runs: js-yaml, the yaml path for broken files)',
    () => parseYamlFile('x.yaml', text, 0).objects.length,
    (t) => parseYamlFile('x.yaml', t, 0).errors[0]?.message.split('\n')[0] ?? 'no error',
  ],
  [
    'yaml parseAllDocuments + toJS, keepSourceTokens false, uniqueKeys false',
    () =>
      parseAllDocuments(text, { keepSourceTokens: false, uniqueKeys: false }).map((d) => d.toJS() as unknown).length,
    (t) => {
      const d = parseAllDocuments(t, { prettyErrors: true }).find((x) => x.errors.length > 0);
      return d?.errors[0]?.message.split('\n')[0] ?? 'no error';
    },
  ],
  [
    'yaml Parser (CST only, no documents: a floor for yaml, no values)',
    () => {
      let n = 0;
      for (const tok of new Parser().parse(text)) if (tok.type === 'document') n++;
      return n;
    },
    () => 'CST only: errors are not reported by line',
  ],
  [
    'js-yaml 4 loadAll',
    () => jsyaml.loadAll(text).length,
    (t) => {
      try {
        jsyaml.loadAll(t);
        return 'no error';
      } catch (e) {
        return (e as Error).message.split('\n')[0]!;
      }
    },
  ],
  [
    'parseYamlFile in 2 worker threads (file split at document markers)',
    () => ws2.run(splitDocs(text, 2)),
    () => 'same as parseYamlFile (line numbers per part: offset by the part start)',
  ],
  [
    'floor: JSON.parse of the same objects',
    (() => {
      const json = JSON.stringify(jsyaml.loadAll(text));
      return () => (JSON.parse(json) as unknown[]).length;
    })(),
    () => '-',
  ],
];
const times = alternatives.map(() => [] as number[]);
const counts: number[] = [];
for (let r = 0; r < ROUNDS; r++)
  for (const [i, [, fn]] of alternatives.entries()) {
    const t0 = performance.now();
    counts[i] = await fn();
    times[i]!.push(performance.now() - t0);
  }
await ws2.stop();
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
console.log('| parser | ms (median) | documents | syntax error reported as |\n|---|---|---|---|');
const rows = alternatives.map(([name, , err], i) => {
  const row = { name, ms: Math.round(median(times[i]!)), documents: counts[i], error: err(bad) };
  console.log(`| ${row.name} | ${row.ms} | ${row.documents} | ${row.error} |`);
  return row;
});
fs.mkdirSync(path.join(repo, 'bench', 'results'), { recursive: true });
fs.writeFileSync(
  path.join(repo, 'bench', 'results', 'yaml-parse.json'),
  `${JSON.stringify({ at: new Date().toISOString(), mib: Number(MiB), rows }, null, 2)}\n`,
);
