// A real server on a temporary config directory (free ports, silent logs), stopped after the test.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import assert from 'node:assert/strict';
import type { TestContext } from 'vitest';
import { resolveConfig } from '../../src/config.js';
import { descriptorYaml } from '../fixtures/index.js';
import { makeLogger, startServer, type RunningServer } from '../../src/main.js';

export interface Live {
  server: RunningServer;
  dir: string;
  cfgDir: string;
}

export async function live(
  t: TestContext,
  files: Record<string, string>,
  flags: Record<string, unknown> = {},
): Promise<Live> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'oxds-attack-'));
  const cfgDir = path.join(dir, 'config');
  fs.mkdirSync(cfgDir);
  for (const [name, text] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(cfgDir, name)), { recursive: true });
    fs.writeFileSync(path.join(cfgDir, name), text);
  }
  const r = resolveConfig(
    {
      config: cfgDir,
      xdsPort: 0,
      adminPort: 0,
      authzPort: 0,
      dataDir: path.join(dir, '.data'),
      debounceMs: 5,
      debounceMaxMs: 20,
      ...flags,
    },
    {},
  );
  assert.ok(r.ok, JSON.stringify(r));
  const server = await startServer(r.value, makeLogger('silent'));
  t.onTestFinished(async () => {
    await server.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  return { server, dir, cfgDir };
}

/** A public-ish descriptor document for `host`; `extra`: more spec lines, already indented. */
export function descriptor(id: string, host: string, extra = ''): string {
  const doc = { name: id, id, hosts: [host], forceHttps: false, targets: ['http://10.0.0.1:8080'], separator: true };
  return descriptorYaml(doc) + extra;
}
