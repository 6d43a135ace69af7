// Where the real Envoy binary is: $OXDS_ENVOY_BIN, else the project's venv (.cache/envoy, made by
// `npm run envoy:install`), else `envoy` on PATH. Used by `validate --envoy`, `npm run demo`, the
// benchmarks and the tests; free of imports of the rest of the product so that callers can ask cheaply.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

export const ENVOY_HOWTO =
  'install it with `npm run envoy:install` (Python 3 venv in .cache/envoy) or set OXDS_ENVOY_BIN';

/** The project root: the first parent of this module holding a package.json. */
export function repoRoot(): string {
  let dir = path.dirname(new URL(import.meta.url).pathname);
  for (let i = 0; i < 5; i++) {
    if (fs.existsSync(path.join(dir, 'package.json'))) return dir;
    dir = path.dirname(dir);
  }
  return process.cwd();
}

function venvEnvoy(root: string): string | undefined {
  const lib = path.join(root, '.cache', 'envoy', 'lib');
  if (!fs.existsSync(lib)) return undefined;
  for (const py of fs.readdirSync(lib)) {
    const bin = path.join(lib, py, 'site-packages', 'envoy', '_bin', 'envoy');
    if (fs.existsSync(bin)) return bin;
  }
  return undefined;
}

function runs(bin: string): boolean {
  return spawnSync(bin, ['--version'], { stdio: 'ignore', timeout: 30_000 }).status === 0;
}

export type EnvoyLookup = { bin: string } | { missing: string };

/** Finds the binary: `explicit` (a path given by the user) must run; else the usual lookup. */
export function lookupEnvoy(explicit?: string, env: NodeJS.ProcessEnv = process.env, root = repoRoot()): EnvoyLookup {
  if (explicit !== undefined)
    return runs(explicit) ? { bin: explicit } : { missing: `${explicit} does not run (envoy --version failed)` };
  const fromEnv = env.OXDS_ENVOY_BIN;
  if (fromEnv) return runs(fromEnv) ? { bin: fromEnv } : { missing: `OXDS_ENVOY_BIN=${fromEnv} does not run` };
  const local = venvEnvoy(root);
  if (local && runs(local)) return { bin: local };
  if (runs('envoy')) return { bin: 'envoy' };
  return { missing: 'no Envoy binary (OXDS_ENVOY_BIN, .cache/envoy, PATH)' };
}

let found: EnvoyLookup | undefined;

/** The Envoy binary, or why there is none (looked up once per process). */
export function findEnvoy(): EnvoyLookup {
  return (found ??= lookupEnvoy());
}
