// The Otoroshi documentation examples in ../shared/spec/otoroshi-data/ (ServiceGroup, ApiKey,
// Certificate, JwtVerifier, AuthModule) load, build and translate without errors, and every
// resource they produce passes validate.ts.
import { test } from 'vitest';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseYamlFile } from '../src/sources/yaml.js';
import { buildModel } from '../src/model/build.js';
import { translate } from '../src/xds/translate.js';
import { validateSet } from '../src/pipeline.js';
import type { ConfigError, StoredObject } from '../src/model/types.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const DATA = path.resolve(ROOT, '..', 'shared', 'spec', 'otoroshi-data');
const files = fs.existsSync(DATA)
  ? fs
      .readdirSync(DATA)
      .filter((f) => f.endsWith('.yaml') && !f.startsWith('crds'))
      .sort()
  : [];

test.skipIf(files.length === 0 ? `no ${DATA}` : false)(
  'Otoroshi doc examples build and translate without errors',
  () => {
    const objects: StoredObject[] = [];
    const loadErrors: ConfigError[] = [];
    files.forEach((f, i) => {
      const parsed = parseYamlFile(f, fs.readFileSync(path.join(DATA, f), 'utf8'), i * 100);
      objects.push(...parsed.objects);
      loadErrors.push(...parsed.errors);
    });
    assert.deepEqual(loadErrors, []);
    assert.ok(objects.length >= files.length, 'every example file has an object');
    const built = buildModel({ objects, loadErrors });
    const errors = built.statuses.flatMap((s) =>
      s.errors.filter((e) => e.severity === 'error').map((e) => `${s.key} ${e.code} ${e.field ?? ''}: ${e.message}`),
    );
    assert.deepEqual(errors, []);
    assert.ok(built.statuses.every((s) => s.state === 'valid'));
    const out = translate(built.model);
    assert.deepEqual(
      out.errors.filter((e) => e.severity === 'error'),
      [],
    );
    for (const node of ['envoy', 'grpc'] as const) {
      const rejected: ConfigError[] = [];
      validateSet(node, out[node], rejected);
      assert.deepEqual(rejected, []);
    }
  },
);
