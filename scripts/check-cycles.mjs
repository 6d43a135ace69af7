// Fails on a file-level import cycle among src/, test/, bench/ and scripts/ TypeScript files (dpdm over
// the import graph, type-only imports included: a cycle of types is still two files that cannot be
// understood apart). ALLOWED lists cycles known when this check was added, each as its files joined
// by " -> " starting from the alphabetically first; it is to be emptied, never grown.
import path from 'node:path';
import { parseDependencyTree, parseCircular, shortenTree } from 'dpdm';

/** Today's cycles, each to be broken (empty: there were none when the check was added). */
const ALLOWED = new Set([]);

/** A cycle as one string, rotated to start at its alphabetically first file, so it is stable. */
export function cycleKey(files) {
  const i = files.indexOf([...files].sort()[0]);
  return [...files.slice(i), ...files.slice(0, i)].join(' -> ');
}

const roots = process.argv.slice(2).length ? process.argv.slice(2) : ['src', 'test', 'bench', 'scripts'];
const cwd = process.cwd();
const tree = await parseDependencyTree(
  roots.map((r) => `${r}/**/*.ts`),
  { context: cwd, transform: false, skipDynamicImports: false, tsconfig: path.join(cwd, 'tsconfig.json') },
);
const short = shortenTree(cwd, tree);
const files = Object.keys(short).filter((f) => !f.startsWith('node_modules/') && !f.startsWith('node:'));
const cycles = parseCircular(short, false).map(cycleKey);
const unique = [...new Set(cycles)].sort();
const fresh = unique.filter((c) => !ALLOWED.has(c));
const gone = [...ALLOWED].filter((c) => !unique.includes(c));
for (const c of unique) console.log(`${ALLOWED.has(c) ? 'allowed cycle' : 'IMPORT CYCLE'}: ${c}`);
for (const c of gone) console.log(`cycle gone, remove it from ALLOWED in scripts/check-cycles.mjs: ${c}`);
console.log(`import cycles: ${unique.length} (${fresh.length} new) among ${files.length} files`);
process.exit(fresh.length > 0 ? 1 : 0);
