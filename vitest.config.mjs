// vitest over the compiled tests (dist/test, built by `npm run build`, which type-checks them): the
// tests and their helpers locate the repo, the CLI (dist/src/cli.js) and child scripts from there.
// scripts/run-tests.mjs is the entry point (`npm test`); it adds the closing count line.
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['dist/test/**/*.test.js'],
    exclude: ['**/node_modules/**', 'dist/test/helpers/**'],
    // Real-peer tests (Envoy, kube-apiserver, Redis) wait on processes: one budget for all.
    testTimeout: 300_000,
    hookTimeout: 300_000,
    teardownTimeout: 60_000,
    // Each file in its own child process: tests spawn Envoy/apiservers, trap signals, use process.env.
    pool: 'forks',
    isolate: true,
    // One file at a time. The machine has 2 cores shared by many; the real-Envoy and kube tests
    // spawn multi-threaded peers and are timed by the peers themselves (xDS ACK deadlines, leases),
    // so two heavy files side by side starve each other. node --test ran one file at a time here
    // too (its default is availableParallelism() - 1 = 1).
    fileParallelism: false,
    maxWorkers: 1,
    // node:test ran a test's after-hooks in the order they were added; keep that.
    sequence: { hooks: 'list' },
    // No watch mode, no colours in CI logs; failures name file and test.
    watch: false,
    passWithNoTests: false,
  },
});
