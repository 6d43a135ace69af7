// Attacks through the config directory: a huge YAML file, and symbolic links leaving it.
import { test } from 'vitest';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { descriptor, live } from './harness.js';
import { loadConfigDir } from '../../src/sources/yaml.js';

test(
  'a YAML file over the size bound is refused with an error naming it; ' + 'the other files keep being served',
  async (t) => {
    const { server, cfgDir } = await live(
      t,
      { 'ok.yaml': descriptor('ok', 'ok.oto.tools') },
      { maxConfigFileBytes: 1024 * 1024 },
    );
    fs.writeFileSync(path.join(cfgDir, 'huge.yaml'), `# ${'x'.repeat(3 * 1024 * 1024)}\n`);
    await server.rebuildNow();
    assert.ok(
      server.statuses().some((s) => s.key.includes('ok')),
      'ok.yaml still served',
    );
    const view = await loadConfigDir(cfgDir, { maxFileBytes: 1024 * 1024, maxTotalBytes: 64 * 1024 * 1024 });
    assert.ok(
      view.loadErrors.some((e) => e.file === 'huge.yaml' && /more than the limit/.test(e.message)),
      JSON.stringify(view.loadErrors),
    );
    assert.ok(view.objects.some((o) => o.key.includes('ok')));
  },
);

test(
  'symbolic links: a ConfigMap-style link inside the directory is followed; one ' +
    'leaving it is refused and reported',
  async (t) => {
    const { server, cfgDir, dir } = await live(t, {});
    fs.mkdirSync(path.join(cfgDir, '..data'));
    fs.writeFileSync(path.join(cfgDir, '..data', 'desc.yaml'), descriptor('cm', 'cm.oto.tools'));
    fs.symlinkSync('..data/desc.yaml', path.join(cfgDir, 'desc.yaml'));
    fs.writeFileSync(path.join(dir, 'outside.yaml'), descriptor('out', 'out.oto.tools'));
    fs.symlinkSync(path.join(dir, 'outside.yaml'), path.join(cfgDir, 'escape.yaml'));
    await server.rebuildNow();
    const keys = server.statuses().map((s) => s.key);
    assert.ok(
      keys.some((k) => k.includes('/cm')),
      `the ConfigMap-style link is served: ${keys.join(', ')}`,
    );
    assert.ok(!keys.some((k) => k.includes('/out')), 'the link leaving the directory is not read');
    const view = await loadConfigDir(cfgDir);
    assert.ok(view.loadErrors.some((e) => e.file === 'escape.yaml' && /outside the config directory/.test(e.message)));
    assert.ok(view.objects.some((o) => o.key.endsWith('/cm')));
  },
);
