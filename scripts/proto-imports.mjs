// One-off merge helper: rewrites relative imports of the old src/proto/{loader,json}.js to the
// top-level proto/{loader,json}.js, in every .ts/.mjs file under the current directory. Run from
// the repository root after merging a branch written before the move: `node scripts/proto-imports.mjs`.
import fs from 'node:fs';
import path from 'node:path';
const root = process.cwd();
const moved = { 'src/proto/loader.js': 'proto/loader.js', 'src/proto/json.js': 'proto/json.js' };
function walk(d, out) {
  for (const e of fs.readdirSync(d, { withFileTypes: true })) {
    if (e.name === 'node_modules' || e.name === 'dist' || e.name === 'scratch' || e.name.startsWith('.')) continue;
    const p = path.join(d, e.name);
    if (e.isDirectory()) walk(p, out);
    else if (/\.(ts|mjs)$/.test(e.name)) out.push(p);
  }
  return out;
}
let n = 0;
for (const file of walk(root, [])) {
  const src = fs.readFileSync(file, 'utf8');
  const dir = path.dirname(file);
  const out = src.replace(/(from\s+|import\()(['"])(\.\.?\/[^'"]+)\2/g, (m, pre, q, spec) => {
    const abs = path.relative(root, path.resolve(dir, spec));
    const to = moved[abs];
    if (!to) return m;
    let rel = path.relative(dir, path.join(root, to));
    if (!rel.startsWith('.')) rel = './' + rel;
    return `${pre}${q}${rel}${q}`;
  });
  if (out !== src) {
    fs.writeFileSync(file, out);
    n++;
    console.log(path.relative(root, file));
  }
}
console.log(n, 'files');
