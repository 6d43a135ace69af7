// VHDS push per stream: server CPU to bring S Delta VHDS streams (eager, every virtual host held) to
// a snapshot where one route changed, for N virtual hosts; in-process (no gRPC, no Envoy), the
// stream's build as the ADS server runs it (subscription state + shared encoded runs + message).
//   node dist/bench/vhds-push.js [beforeDistDir]   → before/after alternated in child processes
//   BENCH_VHDS_N=1000,10000 BENCH_VHDS_STREAMS=100 BENCH_VHDS_CHANGES=10
// Child: node dist/bench/vhds-push.js --child <distDir> <N> <streams> <changes> → one JSON line.
import { execFileSync } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { envInt, envList } from './gen.js';

const here = path.dirname(new URL(import.meta.url).pathname);

async function child(dist: string, n: number, streams: number, changes: number): Promise<void> {
  const imp = (p: string) => import(pathToFileURL(path.join(dist, p)).href);
  const { compile } = await imp('src/pipeline.js');
  const { buildSnapshot } = await imp('src/xds/snapshot.js');
  const { vhdsView } = await imp('src/xds/vhds.js');
  const { VhdsSubscription } = await imp('src/xds/server/vhds.js');
  const { SharedResponses } = await imp('src/xds/server/shared.js');
  const { benchView, CHANGED_INDEX } = await imp('bench/gen.js');
  const { encodeObject, TYPE_URLS } = await imp('proto/loader.js');
  const snapOf = (gen: number) => {
    const changed = gen === 0 ? [] : [{ index: CHANGED_INDEX, gen }];
    const c = compile(benchView(n, changed), {}, { vhds: true });
    const enc = (kind: string, obj: object) => c.envoy.bytes.get(obj) ?? encodeObject(TYPE_URLS[kind], obj);
    return buildSnapshot('envoy', `v${gen}`, c.envoy.set, enc);
  };
  const shared = new SharedResponses(512 * 1024 * 1024, 100_000);
  const subs = Array.from({ length: streams }, () => {
    const s = new VhdsSubscription();
    s.apply([], []);
    return s;
  });
  let nonce = 0;
  const buildAll = (snap: { vhds: unknown; version: string }) => {
    let bytes = 0;
    for (const s of subs) {
      const out = s.build(snap.vhds, snap.version, String(++nonce), (key: string, make: () => Buffer) =>
        shared.run(snap, 'd:vhost', key, make),
      );
      bytes += out?.buf.length ?? 0;
    }
    return bytes;
  };
  const s0 = snapOf(0);
  s0.vhds = vhdsView(s0, true);
  buildAll(s0); // initial sync (full), untimed
  const ms: number[] = [];
  const viewMs: number[] = [];
  let bytes = 0;
  for (let g = 1; g <= changes; g++) {
    const snap = snapOf(g);
    const v0 = process.cpuUsage();
    snap.vhds = vhdsView(snap, true);
    const v1 = process.cpuUsage(v0);
    const c0 = process.cpuUsage();
    bytes = buildAll(snap);
    const c1 = process.cpuUsage(c0);
    viewMs.push((v1.user + v1.system) / 1000);
    ms.push((c1.user + c1.system) / 1000);
  }
  ms.sort((a, b) => a - b);
  viewMs.sort((a, b) => a - b);
  const vhosts = (s0.vhds as { vhosts: Map<string, unknown> }).vhosts.size;
  const med = (a: number[]) => a[Math.floor(a.length / 2)] ?? NaN;
  console.log(JSON.stringify({ vhosts, streams, medianMs: med(ms), minMs: ms[0], viewMs: med(viewMs), bytes }));
}

function run(): void {
  const before = process.argv[2] ?? '/tmp/s7-vhdsx-before-dist';
  const after = path.resolve(here, '..');
  const streams = envInt('BENCH_VHDS_STREAMS', 100);
  const changes = envInt('BENCH_VHDS_CHANGES', 10);
  for (const n of envList('BENCH_VHDS_N', [1000, 10000]))
    for (const [label, dist] of [
      ['before', before],
      ['after', after],
      ['before', before],
      ['after', after],
    ] as const) {
      const load = os.loadavg()[0]?.toFixed(2);
      const args = [path.join(here, 'vhds-push.js'), '--child', dist, String(n), String(streams), String(changes)];
      const line = execFileSync(process.execPath, args, { encoding: 'utf8' }).trim().split('\n').pop() ?? '';
      const r = JSON.parse(line) as { vhosts: number; medianMs: number; minMs: number; viewMs: number; bytes: number };
      console.log(
        `${label.padEnd(6)} N=${n} vhosts=${r.vhosts} streams=${streams}: all streams ${r.medianMs.toFixed(1)} ms ` +
          `(min ${r.minMs.toFixed(1)}; ${(r.medianMs / streams).toFixed(3)} ms/stream), ` +
          `view once ${r.viewMs.toFixed(1)} ms, ${r.bytes} B sent in all, load ${load}`,
      );
    }
}

if (process.argv[2] === '--child')
  await child(process.argv[3] as string, Number(process.argv[4]), Number(process.argv[5]), Number(process.argv[6]));
else run();
