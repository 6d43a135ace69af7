// Config source faults on the real server (file source, watch + rescan, no manual rebuild):
//   - a half-written file (new or existing): the last good objects stay served, the problem is
//     logged with the file; once the file is complete the new config is served and the
//     recovery is logged;
//   - the config directory disappears / cannot be read: the last good config stays served, the
//     error is logged; when it is back, recovery is automatic and logged.
// (Kubernetes watch drops / 410 / 500 belong to the Kubernetes source: not covered here.)
import { test, type TestContext } from 'vitest';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import pino from 'pino';
import { resolveConfig } from '../src/config.js';
import { startServer, type RunningServer } from '../src/main.js';
import { AdsClient, TYPE_URLS, anyName } from './helpers/ads-client.js';
import { descriptorYaml } from './fixtures/index.js';

function descriptor(name: string, port: number): string {
  const targets = [`http://127.0.0.1:${port}`];
  return descriptorYaml({
    name,
    namespace: 'default',
    id: name,
    hosts: [`${name}.oto.tools`],
    forceHttps: false,
    targets,
  });
}

interface Env {
  dir: string;
  server: RunningServer;
  logs: Array<{ msg: string; problem?: string; level: number }>;
  clusters(): Promise<string[]>;
}

async function setup(t: TestContext): Promise<Env> {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'oxds-faults-source-'));
  const dir = path.join(root, 'config');
  fs.mkdirSync(dir);
  t.onTestFinished(() => fs.rmSync(root, { recursive: true, force: true }));
  fs.writeFileSync(path.join(dir, 'a.yaml'), descriptor('a', 9001));
  const logs: Env['logs'] = [];
  const sink = new Writable({
    write(chunk: Buffer, _e, cb) {
      for (const l of chunk.toString().split('\n')) if (l) logs.push(JSON.parse(l) as Env['logs'][number]);
      cb();
    },
  });
  const r = resolveConfig(
    {
      config: dir,
      xdsPort: 0,
      adminPort: 0,
      authzPort: 0,
      debounceMs: 20,
      debounceMaxMs: 100,
      dataDir: path.join(root, '.data'),
    },
    {},
  );
  assert.ok(r.ok);
  const server = await startServer(r.value, pino({ level: 'info' }, sink));
  t.onTestFinished(() => server.stop());
  return {
    dir,
    server,
    logs,
    clusters: async () => {
      const c = new AdsClient(server.xdsPort, { node: { id: `probe-${Math.random()}` } });
      try {
        c.request(TYPE_URLS.cluster);
        const r0 = await c.nextSotw(3000);
        return r0.resources
          .map(anyName)
          .filter((n) => !n.startsWith('oxds-'))
          .sort();
      } finally {
        c.close();
      }
    },
  };
}

async function waitFor(what: string, f: () => boolean | Promise<boolean>, ms = 12_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await f())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const hasCluster = (names: string[], id: string): boolean => names.some((n) => n.includes(id));

test('fault: half-written files keep the last good config; completion is picked up and logged', async (t) => {
  const e = await setup(t);
  const before = await e.clusters();
  assert.ok(hasCluster(before, 'a'), JSON.stringify(before));

  // An existing file is being rewritten: only half of it is there.
  const full = descriptor('a', 9002);
  fs.writeFileSync(path.join(e.dir, 'a.yaml'), full.slice(0, full.indexOf('targets') + 12));
  // A new file appears half-written too.
  const fullB = descriptor('b', 9003);
  fs.writeFileSync(path.join(e.dir, 'b.yaml'), fullB.slice(0, fullB.indexOf('hosts') + 9));
  await waitFor('the parse problem to be logged', () =>
    e.logs.some((l) => l.msg === 'config problem' && /a\.yaml/.test(l.problem ?? '')),
  );
  assert.deepEqual(await e.clusters(), before, 'the last good config is still served');

  fs.writeFileSync(path.join(e.dir, 'a.yaml'), full);
  fs.writeFileSync(path.join(e.dir, 'b.yaml'), fullB);
  await waitFor('both descriptors served', async () => hasCluster(await e.clusters(), 'b'));
  await waitFor('the recovery to be logged', () =>
    e.logs.some((l) => l.msg === 'config problem resolved' && /a\.yaml/.test(l.problem ?? '')),
  );
  assert.ok(e.server.statuses().every((s) => s.state === 'valid'));
});

test('fault: the config directory disappears; last good config served, automatic logged recovery', async (t) => {
  const e = await setup(t);
  const before = await e.clusters();
  const moved = `${e.dir}.moved`;
  fs.renameSync(e.dir, moved);
  await waitFor('the directory error to be logged', () =>
    e.logs.some((l) => l.msg === 'config problem' && /cannot read config directory/.test(l.problem ?? '')),
  );
  assert.deepEqual(await e.clusters(), before, 'the last good config is still served');
  assert.ok(e.server.statuses().length > 0, 'objects are not dropped');

  fs.renameSync(moved, e.dir);
  await waitFor('the recovery to be logged', () =>
    e.logs.some((l) => l.msg === 'config problem resolved' && /cannot read config directory/.test(l.problem ?? '')),
  );
  // And changes are followed again.
  fs.writeFileSync(path.join(e.dir, 'c.yaml'), descriptor('c', 9004));
  await waitFor('the new descriptor served', async () => hasCluster(await e.clusters(), 'c'));
});
