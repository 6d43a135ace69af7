// Summarises a V8 .cpuprofile (from `node --cpu-prof`): top functions by self time and by
// inclusive time (each function counted once per sample, however deep the recursion).
// Usage: node dist/bench/profile-summary.js <file.cpuprofile> [top=25] [filter-substring]
import fs from 'node:fs';

interface Node {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  nodes: Node[];
  samples: number[];
  timeDeltas: number[];
}

const [file, topArg, filter] = process.argv.slice(2);
if (!file) {
  console.error('usage: profile-summary <file.cpuprofile> [top] [filter]');
  process.exit(2);
}
const p = JSON.parse(fs.readFileSync(file, 'utf8')) as Profile;
const top = Number(topArg ?? '25');
const byId = new Map<number, Node>();
const parent = new Map<number, number>();
for (const n of p.nodes) byId.set(n.id, n);
for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);

const label = (n: Node): string => {
  const url = n.callFrame.url.replace(/^.*\/(dist|node_modules)\//, '$1/');
  return `${n.callFrame.functionName || '(anonymous)'} ${url}:${n.callFrame.lineNumber + 1}`;
};
const self = new Map<string, number>();
const incl = new Map<string, number>();
let total = 0;
p.samples.forEach((id, i) => {
  const dt = (p.timeDeltas[i] ?? 0) / 1000;
  total += dt;
  const n = byId.get(id);
  if (!n) return;
  self.set(label(n), (self.get(label(n)) ?? 0) + dt);
  const seen = new Set<string>();
  for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
    const node = byId.get(cur);
    if (!node) break;
    const l = label(node);
    if (seen.has(l)) continue;
    seen.add(l);
    incl.set(l, (incl.get(l) ?? 0) + dt);
  }
});
const show = (title: string, m: Map<string, number>): void => {
  console.log(`\n${title} (total ${total.toFixed(0)} ms)`);
  [...m]
    .filter(([k]) => !filter || k.includes(filter))
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .forEach(([k, v]) =>
      console.log(`${v.toFixed(0).padStart(8)} ms ${((100 * v) / total).toFixed(1).padStart(5)}%  ${k}`),
    );
};
show('self time', self);
show('inclusive time', incl);
