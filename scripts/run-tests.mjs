// Runs every compiled test file (dist/test/**/*.test.js) with node's test runner.
// Helpers under dist/test/helpers are not test files. Ends with one line when real-peer tests
// were skipped because the peer is missing (never in CI, where they fail instead).
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

function find(dir) {
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) return e.name === 'helpers' ? [] : find(p);
    return e.name.endsWith('.test.js') ? [p] : [];
  });
}
const only = process.argv.slice(2);
const files = find('dist/test')
  .filter((f) => only.length === 0 || only.some((o) => f.includes(o)))
  .sort();
if (files.length === 0) {
  console.error('no test files found under dist/test');
  process.exit(1);
}
const r = spawnSync(process.execPath, ['--test', '--test-timeout=300000', ...files], { stdio: 'inherit' });
const { findEnvoy, ENVOY_HOWTO } = await import(path.resolve('dist/test/helpers/find-envoy.js'));
const envoy = findEnvoy();
if ('missing' in envoy && process.env.CI !== 'true') {
  const n = files.filter((f) => f.includes(`${path.sep}envoy${path.sep}`)).length;
  console.log(`real-Envoy tests skipped (${n} files under test/envoy/): ${envoy.missing}; ${ENVOY_HOWTO}`);
}
process.exit(r.status ?? 1);
