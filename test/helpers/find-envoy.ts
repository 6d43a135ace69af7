// Where the real Envoy binary is: $OXDS_ENVOY_BIN, else the project's venv (.cache/envoy, made by
// `npm run envoy:install`), else `envoy` on PATH. Kept free of imports of the product so that the
// test runner can ask cheaply.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

export const ENVOY_HOWTO = 'install it with `npm run envoy:install` (Python 3 venv in .cache/envoy) or set OXDS_ENVOY_BIN';

function repoRoot(): string {
  // dist/test/helpers/envoy.js → repo root; the source tree (tsx) is one level less deep.
  let dir = path.dirname(new URL(import.meta.url).pathname);
  for (let i = 0; i < 4; i++) {
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

let found: { bin: string } | { missing: string } | undefined;

/** The Envoy binary, or why there is none. */
export function findEnvoy(): { bin: string } | { missing: string } {
  if (found) return found;
  const env = process.env.OXDS_ENVOY_BIN;
  if (env) {
    found = runs(env) ? { bin: env } : { missing: `OXDS_ENVOY_BIN=${env} does not run` };
    return found;
  }
  const local = venvEnvoy(repoRoot());
  if (local && runs(local)) return (found = { bin: local });
  if (runs('envoy')) return (found = { bin: 'envoy' });
  return (found = { missing: 'no Envoy binary (OXDS_ENVOY_BIN, .cache/envoy, PATH)' });
}

