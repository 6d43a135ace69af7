import { test } from 'vitest';
import assert from 'node:assert/strict';
import path from 'node:path';
import { assembleView, loadConfigDir, parseYamlFile } from '../src/sources/yaml.js';
import { listConfigFiles } from '../src/sources/config-files.js';

const FIX = path.join(process.cwd(), 'test/fixtures/model');

test(
  'multi-document file: ' + 'one StoredObject per document, empty documents skipped, namespace defaults to default',
  () => {
    const r = parseYamlFile(
      'dir/f.yaml',
      'apiVersion: v1\nkind: Service\nmetadata: {name: a}\n---\n---\n# only a comment\n---\napiVersion: v1\nkind: ' +
        'Service\nmetadata: {name: b, namespace: x}\n',
      10,
    );
    assert.deepEqual(r.errors, []);
    assert.deepEqual(
      r.objects.map((o) => [o.key, o.origin.file, o.origin.doc, o.origin.seq]),
      [
        ['Service/default/a', 'dir/f.yaml', 0, 10],
        ['Service/x/b', 'dir/f.yaml', 3, 11],
      ],
    );
  },
);

test('Apikey is accepted as a spelling of ApiKey in the key', () => {
  const r = parseYamlFile('f.yaml', 'apiVersion: proxy.otoroshi.io/v1\nkind: Apikey\nmetadata: {name: k}\n', 0);
  assert.equal(r.objects[0]?.key, 'ApiKey/default/k');
});

test('YAML syntax error gives OXDS_YAML_PARSE with line and column, and other documents of the file still load', () => {
  const r = parseYamlFile(
    'f.yaml',
    'apiVersion: v1\nkind: Service\nmetadata: {name: ok}\n---\nkind: [unclosed\nmetadata: x\n',
    0,
  );
  assert.equal(r.objects.length, 1);
  const e = r.errors.find((x) => x.code === 'OXDS_YAML_PARSE');
  assert.ok(e, JSON.stringify(r.errors));
  assert.equal(e.file, 'f.yaml');
  assert.equal(e.doc, 1);
  assert.match(e.message, /line \d+, column \d+/);
});

test('not an object / missing apiVersion, kind or metadata.name', () => {
  const r = parseYamlFile(
    'f.yaml',
    '- a\n- b\n---\n42\n---\nkind: Service\nmetadata: {name: x}\n---\napiVersion: v1\nkind: Service\nmetadata: {}\n',
    0,
  );
  assert.deepEqual(
    r.errors.map((e) => [e.code, e.doc, e.field]),
    [
      ['OXDS_NOT_AN_OBJECT', 0, undefined],
      ['OXDS_NOT_AN_OBJECT', 1, undefined],
      ['OXDS_MISSING_FIELD', 2, 'apiVersion'],
      ['OXDS_MISSING_FIELD', 3, 'metadata.name'],
    ],
  );
});

test('duplicate keys: the first declaration wins (within a file and across files)', () => {
  const doc = 'apiVersion: v1\nkind: Service\nmetadata: {name: a}\n';
  const f1 = parseYamlFile('a.yaml', `${doc}---\n${doc}`, 0);
  assert.equal(f1.objects.length, 1);
  assert.equal(f1.errors[0]?.code, 'OXDS_DUPLICATE_OBJECT');
  assert.equal(f1.errors[0]?.doc, 1);
  const f2 = parseYamlFile('b.yaml', doc, 0);
  const view = assembleView([
    { relPath: 'a.yaml', ...f1 },
    { relPath: 'b.yaml', ...f2 },
  ]);
  assert.equal(view.objects.length, 1);
  assert.equal(view.objects[0]?.origin.file, 'a.yaml');
  assert.deepEqual(
    view.loadErrors.map((e) => [e.code, e.file]),
    [
      ['OXDS_DUPLICATE_OBJECT', 'a.yaml'],
      ['OXDS_DUPLICATE_OBJECT', 'b.yaml'],
    ],
  );
});

test(
  'loadConfigDir: recursive, sorted, *.yaml/*.yml only, hidden entries skipped; ' +
    'bad YAML in one file does not stop the others',
  async () => {
    assert.deepEqual(
      (await listConfigFiles(path.join(FIX, 'bad-yaml'))).files.map((f) => f.rel),
      ['a-good.yaml', 'b-broken.yaml', 'sub/c-good.yml', 'sub/d-dup.yaml'],
    );
    const view = await loadConfigDir(path.join(FIX, 'bad-yaml'));
    assert.deepEqual(
      view.objects.map((o) => o.key),
      ['ServiceGroup/default/first', 'ServiceGroup/default/second', 'ServiceGroup/other/third'],
    );
    assert.deepEqual(
      view.objects.map((o) => o.origin.seq),
      [0, 1, 2],
    );
    assert.deepEqual(
      view.loadErrors.map((e) => [e.code, e.file, e.doc]),
      [
        ['OXDS_YAML_PARSE', 'b-broken.yaml', 0],
        ['OXDS_NOT_AN_OBJECT', 'sub/c-good.yml', 1],
        ['OXDS_MISSING_FIELD', 'sub/c-good.yml', 2],
        ['OXDS_DUPLICATE_OBJECT', 'sub/d-dup.yaml', 0],
      ],
    );
  },
);

test('aliases take the bounded path: an alias bomb is refused, an anchor is expanded, `&` in values is data', () => {
  // Nine levels of nine aliases: 9^9 nodes if expanded without bound.
  const levels = ['  a0: &a0 [x, x, x, x, x, x, x, x, x]'];
  for (let i = 1; i < 9; i++) levels.push(`  a${i}: &a${i} [${new Array<string>(9).fill(`*a${i - 1}`).join(', ')}]`);
  const bomb = `apiVersion: v1\nkind: ConfigMap\nmetadata: {name: bomb}\ndata:\n${levels.join('\n')}\n`;
  const r = parseYamlFile('bomb.yaml', bomb, 0);
  assert.equal(r.objects.length, 0);
  assert.equal(r.errors[0]?.code, 'OXDS_YAML_PARSE');
  const shared = parseYamlFile(
    'shared.yaml',
    'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\ndata: {x: &v one, y: *v}\n',
    0,
  );
  assert.deepEqual(shared.errors, []);
  assert.deepEqual(shared.objects[0]?.object.data, { x: 'one', y: 'one' });
  const amp = parseYamlFile(
    'amp.yaml',
    'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\ndata: {q: "a=1&b=2"}\n',
    0,
  );
  assert.deepEqual(amp.errors, []);
  assert.deepEqual(amp.objects[0]?.object.data, { q: 'a=1&b=2' });
});
