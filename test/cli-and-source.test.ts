// The CLI as a user runs it (translate / validate exit codes and output) and the watched
// directory source (edits, deletes, half-written files).
import { test } from 'vitest';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { FileSource } from '../src/sources/file-source.js';

const CLI = path.resolve('dist/src/cli.js');

function cli(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], {
    encoding: 'utf8',
    timeout: 30_000,
    env: { ...process.env, OXDS_LOG_LEVEL: 'silent' },
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

function tmpDir(files: Record<string, string>): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'oxds-cli-'));
  for (const [name, text] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
    fs.writeFileSync(path.join(dir, name), text);
  }
  return dir;
}

const GOOD = `apiVersion: proxy.otoroshi.io/v1alpha1
kind: ServiceDescriptor
metadata: {name: good, namespace: default}
spec:
  hosts: [good.oto.tools]
  forceHttps: false
  targets: [{url: "http://127.0.0.1:9001"}]
`;

const BAD = `apiVersion: proxy.otoroshi.io/v1alpha1
kind: ServiceDescriptor
metadata: {name: good2, namespace: default}
spec:
  hosts: [good2.oto.tools]
  targets: [{url: "http://127.0.0.1:9002"}]
---
apiVersion: proxy.otoroshi.io/v1alpha1
kind: ServiceDescriptor
metadata: {name: bad-weight, namespace: team-a}
spec:
  hosts: [bad.oto.tools]
  targets: [{url: "http://127.0.0.1:9003", weight: "abc"}]
`;

test('translate on the examples prints every resource type as proto3 JSON and exits 0', () => {
  const r = cli(['translate', '--config', 'examples']);
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout) as Record<string, Array<Record<string, unknown>>>;
  assert.deepEqual(Object.keys(out).sort(), ['clusters', 'endpoints', 'listeners', 'routes', 'secrets']);
  assert.ok((out.listeners ?? []).length >= 1);
  assert.ok((out.clusters ?? []).length >= 3);
  // proto3 JSON: durations as strings, Any as @type
  const c = (out.clusters ?? [])[0] ?? {};
  assert.match(String(c.connectTimeout), /^\d+(\.\d+)?s$/);
  const hcm = JSON.stringify(out.listeners);
  const hcmType =
    'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager';
  assert.ok(hcm.includes(`"@type":"${hcmType}"`), hcm);
});

test('translate --node-type grpc --format yaml gives api_listeners for the descriptor hosts', () => {
  const r = cli(['translate', '--config', 'examples', '--node-type', 'grpc', '--format', 'yaml']);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /apiListener:/);
  assert.match(r.stdout, /name: greeter\.oto\.tools/);
});

test('translate exits 1 with the errors on stderr when the config is invalid, still printing the valid part', () => {
  const dir = tmpDir({ 'a.yaml': BAD });
  const r = cli(['translate', '--config', dir]);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /bad-weight/);
  assert.match(r.stderr, /spec\.targets\[0\]\.weight/);
  const out = JSON.parse(r.stdout) as { routes: unknown[] };
  assert.match(JSON.stringify(out.routes), /good2\.oto\.tools/);
  assert.doesNotMatch(JSON.stringify(out.routes), /bad\.oto\.tools/);
});

test('validate names file, document index, object and field path, and exits 1', () => {
  const dir = tmpDir({ 'team/a.yaml': BAD, 'b.yaml': 'kind: [unclosed\n' });
  const r = cli(['validate', '--config', dir]);
  assert.equal(r.status, 1);
  const line = r.stdout.split('\n').find((l) => l.includes('bad-weight')) ?? '';
  assert.match(line, /team\/a\.yaml#1/);
  assert.match(line, /ServiceDescriptor team-a\/bad-weight/);
  assert.match(line, /spec\.targets\[0\]\.weight/);
  assert.match(r.stdout, /OXDS_YAML_PARSE b\.yaml#0/);
});

test('validate names the file and document of a TcpService warning', () => {
  const tcp = `apiVersion: proxy.otoroshi.io/v1alpha1
kind: TcpService
metadata: {name: pg, namespace: data}
spec:
  port: 5432
  tls: PassThrough
  sni: {enabled: true}
  rules:
    - domain: "pg-*.example.com"
      targets: [{host: pg.internal, port: 5432}]
`;
  const dir = tmpDir({ 'tcp/a.yaml': `${GOOD}\n---\n${tcp}` });
  const r = cli(['validate', '--config', dir]);
  const line = r.stdout.split('\n').find((l) => l.includes('TcpService data/pg')) ?? '';
  assert.match(line, /^warning OXDS_NOT_SUPPORTED tcp\/a\.yaml#1 TcpService data\/pg spec\.rules\[0\]\.domain: /);
});

test('validate exits 0 on the examples', () => {
  const r = cli(['validate', '--config', 'examples']);
  assert.equal(r.status, 0, r.stdout);
  assert.match(r.stdout, /0 error\(s\)/);
});

test('a bad flag value is refused with the flag named', () => {
  const r = cli(['translate', '--config', 'examples', '--envoy-http-port', '70000']);
  assert.equal(r.status, 2);
  assert.match(r.stderr, /--envoy-http-port/);
});

test('file source: edits and deletions are seen, a half-written file keeps its last good objects', async () => {
  const dir = tmpDir({ 'good.yaml': GOOD });
  const src = new FileSource({ dir, rescanMs: 50 });
  await src.start();
  try {
    assert.deepEqual(
      src.view().objects.map((o) => o.key),
      ['ServiceDescriptor/default/good'],
    );
    let changes = 0;
    src.on('change', () => changes++);
    fs.writeFileSync(path.join(dir, 'more.yaml'), GOOD.replace(/good/g, 'more'));
    // the watcher (or the 50 ms safety-net rescan) picks the new file up by itself
    for (let i = 0; i < 200 && src.view().objects.length < 2; i++) await new Promise((r) => setTimeout(r, 25));
    assert.equal(src.view().objects.length, 2);
    assert.ok(changes >= 1);
    // half-written: YAML broken mid-document → last good objects stay, error reported
    fs.writeFileSync(
      path.join(dir, 'more.yaml'),
      'apiVersion: proxy.otoroshi.io/v1alpha1\nkind: ServiceDescriptor\nmetadata: {name: more\n',
    );
    await src.scan();
    const v = src.view();
    assert.ok(v.objects.some((o) => o.key === 'ServiceDescriptor/default/more'));
    assert.ok(v.loadErrors.some((e) => e.code === 'OXDS_YAML_PARSE' && e.file === 'more.yaml'));
    fs.unlinkSync(path.join(dir, 'more.yaml'));
    await src.scan();
    assert.deepEqual(
      src.view().objects.map((o) => o.key),
      ['ServiceDescriptor/default/good'],
    );
    // an object keeps its first-seen order across rewrites (oldest-wins stays stable)
    const seqBefore = src.view().objects[0]?.origin.seq;
    fs.writeFileSync(path.join(dir, 'good.yaml'), GOOD.replace('9001', '9009'));
    await src.scan();
    assert.equal(src.view().objects[0]?.origin.seq, seqBefore);
  } finally {
    src.stop();
  }
});

test('file source: an unreadable directory keeps the last objects and reports the problem', async () => {
  const dir = tmpDir({ 'good.yaml': GOOD });
  const src = new FileSource({ dir });
  await src.scan();
  fs.rmSync(dir, { recursive: true });
  await src.scan();
  const v = src.view();
  assert.equal(v.objects.length, 1);
  assert.ok(v.loadErrors.some((e) => /cannot read config directory/.test(e.message)));
});

test('file source: prepare gets each changed file’s objects, in order, before the scan resolves', async () => {
  const dir = tmpDir({ 'a.yaml': GOOD, 'b.yaml': GOOD.replace(/good/g, 'other') });
  const seen: string[][] = [];
  const src = new FileSource({
    dir,
    prepare: async (objects) => {
      seen.push(objects.map((o) => o.key));
    },
  });
  try {
    await src.scan();
    assert.deepEqual(seen, [['ServiceDescriptor/default/good'], ['ServiceDescriptor/default/other']]);
    fs.writeFileSync(path.join(dir, 'b.yaml'), GOOD.replace(/good/g, 'other').replace('9001', '19002'));
    await src.scan();
    assert.equal(seen.length, 3, 'only the changed file is prepared again');
    assert.deepEqual(seen[2], ['ServiceDescriptor/default/other']);
  } finally {
    src.stop();
  }
});
