// Nightly fuzzing: the same fast-check properties as the CI fuzz tests (dist/test/fuzz-*.test.js),
// with many more cases. FUZZ_RUNS (default 50,000 per property) sets the count; FUZZ_SEED replays a
// reported failure. Build first: `npm run build && node scripts/fuzz-nightly.mjs [fuzz-authz ...]`.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

const runs = process.env.FUZZ_RUNS ?? '50000';
const only = process.argv.slice(2);
const dir = 'dist/test';
const files = fs
  .readdirSync(dir)
  .filter((f) => /^fuzz-.*\.test\.js$/.test(f))
  .filter((f) => only.length === 0 || only.some((o) => f.includes(o)))
  .sort()
  .map((f) => path.join(dir, f));
if (files.length === 0) {
  console.error(`no fuzz tests under ${dir}: run npm run build first`);
  process.exit(1);
}
console.log(
  `fuzz-nightly: ${files.length} file(s), FUZZ_RUNS=${runs}` +
    `${process.env.FUZZ_SEED ? `, FUZZ_SEED=${process.env.FUZZ_SEED}` : ''}`,
);
const t0 = Date.now();
const r = spawnSync(process.execPath, ['--test', '--test-timeout=0', '--test-concurrency=1', ...files], {
  stdio: 'inherit',
  env: { ...process.env, FUZZ_RUNS: runs },
});
console.log(`fuzz-nightly: ${r.status === 0 ? 'passed' : 'FAILED'} in ${Math.round((Date.now() - t0) / 1000)} s`);
process.exit(r.status ?? 1);
