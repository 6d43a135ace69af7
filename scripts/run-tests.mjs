// Runs the compiled test files (dist/test/**/*.test.js, built by `npm run build`) with vitest
// (vitest.config.mjs). Arguments are substrings: only files whose path contains one of them run.
// Ends with a plain count line a CI can read (`tests: N passed, N failed, N skipped`), and, outside
// CI, one line when real-Envoy tests were skipped because Envoy is missing (in CI they fail instead).
import fs from 'node:fs';
import path from 'node:path';
import { startVitest } from 'vitest/node';

function find(dir) {
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) return e.name === 'helpers' ? [] : find(p);
    return e.name.endsWith('.test.js') ? [p] : [];
  });
}

/** Counts every test by its final state, and prints it as the closing line. */
class CountReporter {
  counts = { passed: 0, failed: 0, skipped: 0 };
  onTestRunEnd(testModules, unhandledErrors) {
    for (const m of testModules) {
      for (const t of m.children.allTests()) {
        const s = t.result().state;
        if (s === 'passed') this.counts.passed++;
        else if (s === 'failed') this.counts.failed++;
        else this.counts.skipped++;
      }
      // A file that failed to load (syntax, top-level throw) has no tests: count it as a failure.
      if (m.state() === 'failed' && [...m.children.allTests()].length === 0) this.counts.failed++;
    }
    this.errors = unhandledErrors.length;
  }
}

const only = process.argv.slice(2);
const files = find('dist/test')
  .filter((f) => only.length === 0 || only.some((o) => f.includes(o)))
  .sort();
if (files.length === 0) {
  console.error('no test files found under dist/test');
  process.exit(1);
}
const counter = new CountReporter();
const vitest = await startVitest('test', files, {
  run: true,
  reporters: [process.env.CI === 'true' ? 'verbose' : 'default', counter],
});
const ok = vitest?.state.getCountOfFailedTests() === 0 && !process.exitCode;
await vitest?.close();
const c = counter.counts;
const extra = counter.errors ? `, ${counter.errors} unhandled errors` : '';
console.log(`tests: ${c.passed} passed, ${c.failed} failed, ${c.skipped} skipped${extra}`);
const { findEnvoy, ENVOY_HOWTO } = await import(path.resolve('dist/test/helpers/find-envoy.js'));
const envoy = findEnvoy();
if ('missing' in envoy && process.env.CI !== 'true') {
  const n = files.filter((f) => f.includes(`${path.sep}envoy${path.sep}`)).length;
  console.log(`real-Envoy tests skipped (${n} files under test/envoy/): ${envoy.missing}; ${ENVOY_HOWTO}`);
}
process.exit(ok && c.failed === 0 && !counter.errors ? 0 : 1);
