// The VHDS split of a snapshot (src/xds/vhds.ts) and a Delta stream's VHDS subscription
// (src/xds/server/vhds.ts), without Envoy: resource names, PGV validity, byte-exact virtual hosts,
// alias resolution, and what a subscription is sent on each change.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'vitest';
import YAML from 'yaml';
import { decodeToObject, TYPE_URLS } from '../proto/loader.js';
import { DEFAULT_TRANSLATE_OPTIONS } from '../src/xds/types.js';
import { translate } from '../src/xds/translate.js';
import { buildSnapshot } from '../src/xds/snapshot.js';
import { validateResource } from '../src/xds/validate.js';
import { resolveAlias, vhdsView } from '../src/xds/vhds.js';
import { TYPE_URL } from '../proto/type-urls.js';
import { VhdsSubscription } from '../src/xds/server/vhds.js';
import { descriptorModel, ipTarget, model } from './fixtures/index.js';

function snapshotOf(hosts: string[][], version = 'v1') {
  const ds = hosts.map((h, i) =>
    descriptorModel(`d${i}`, { hosts: h, targets: [ipTarget('t', '127.0.0.1', 9000 + i)] }),
  );
  const out = translate(model(ds), { ...DEFAULT_TRANSLATE_OPTIONS, vhds: true });
  assert.deepEqual(out.errors, []);
  return buildSnapshot('envoy', version, out.envoy);
}

/** Decoded DeltaDiscoveryResponse. */
function decodeDelta(buf: Buffer) {
  return decodeToObject('envoy.service.discovery.v3.DeltaDiscoveryResponse', buf) as {
    resources?: { name: string; version: string; aliases?: string[]; resource?: { value: Uint8Array } }[];
    removedResources?: string[];
  };
}

test('vhdsView: shells with vhds and no virtual hosts; one valid VirtualHost per host, named <rc>/<domain>', () => {
  const snap = snapshotOf([['a.test'], ['b.test'], ['*.wild.test']]);
  const view = vhdsView(snap, true);
  const rc = snap.resources.route.get('oxds-http');
  assert.ok(rc);
  const shell = view.routes.get('oxds-http');
  assert.ok(shell);
  assert.equal(validateResource(TYPE_URLS.route, shell.object).ok, true);
  const decodedShell = decodeToObject(TYPE_URLS.route, shell.bytes);
  assert.equal(decodedShell['virtualHosts'], undefined);
  assert.deepEqual(decodedShell['vhds'], { configSource: { ads: {}, resourceApiVersion: 'V3' } });
  const inline = (rc.object['virtualHosts'] as { name: string; domains: string[] }[]).length;
  assert.equal(view.vhosts.size, inline);
  for (const [name, vh] of view.vhosts) {
    const obj = decodeToObject(TYPE_URL.VirtualHost, vh.bytes) as { name: string; domains: string[] };
    assert.equal(name, `oxds-http/${obj.domains[0]}`);
    assert.equal(obj.name, name, 'VirtualHost.name is the resource name (Envoy removes by it)');
    const r = validateResource(TYPE_URL.VirtualHost, obj);
    assert.equal(r.ok, true, JSON.stringify(r));
    if (r.ok) assert.deepEqual(Buffer.from(r.bytes), Buffer.from(vh.bytes), 'spliced bytes = encoding');
  }
  // Unchanged route configuration → the same split (memoised by resource).
  assert.equal(vhdsView(snap, true).vhosts.get('oxds-http/a.test'), view.vhosts.get('oxds-http/a.test'));
});

test('resolveAlias: exact (port stripped, any case), then suffix wildcard; never the * catch-all', () => {
  const view = vhdsView(snapshotOf([['a.test'], ['*.wild.test']]), false);
  assert.equal(resolveAlias(view, 'oxds-http/a.test'), 'oxds-http/a.test');
  assert.equal(resolveAlias(view, 'oxds-http/A.Test:8080'), 'oxds-http/a.test');
  assert.equal(resolveAlias(view, 'oxds-http/x.y.wild.test'), 'oxds-http/*.wild.test');
  assert.equal(resolveAlias(view, 'oxds-http/nobody.test'), undefined);
  assert.equal(resolveAlias(view, 'other-rc/a.test'), undefined);
  assert.equal(resolveAlias(view, 'no-slash'), undefined);
});

test('VhdsSubscription: eager wildcard gets all, a change sends one, removal is told; aliases answered once', () => {
  const v1 = vhdsView(snapshotOf([['a.test'], ['b.test']]), true);
  const sub = new VhdsSubscription();
  assert.equal(sub.apply([], []), false, 'the empty namespace request is the wildcard it already is');
  const first = decodeDelta(sub.build(v1, 'v1', '1')!.buf);
  const names = (first.resources ?? []).map((r) => r.name);
  assert.ok(names.includes('oxds-http/a.test') && names.includes('oxds-http/b.test'));
  assert.equal(sub.build(v1, 'v1', '2'), undefined, 'nothing new');

  // b changes (another target port: its route's cluster stays, so change the host set instead).
  const v2 = vhdsView(snapshotOf([['a.test'], ['b.test', 'b2.test']], 'v2'), true);
  const second = decodeDelta(sub.build(v2, 'v2', '3')!.buf);
  assert.deepEqual(
    (second.resources ?? []).map((r) => r.name),
    [...v2.vhosts.keys()].filter((n) => v1.vhosts.get(n)?.version !== v2.vhosts.get(n)?.version).sort(),
  );
  assert.equal(second.removedResources, undefined);

  const v3 = vhdsView(snapshotOf([['a.test']], 'v3'), true);
  const third = decodeDelta(sub.build(v3, 'v3', '4')!.buf);
  assert.ok((third.removedResources ?? []).includes('oxds-http/b.test'));

  // An alias of a held host is answered with the host and the alias; a host nothing matches but
  // the `*` catch-all, or of an unknown route configuration, with an empty resource named by the alias.
  sub.apply(['oxds-http/a.test:80', 'oxds-http/gone.test', 'nope/x.test'], []);
  const fourth = decodeDelta(sub.build(v3, 'v3', '5')!.buf);
  const byName = new Map((fourth.resources ?? []).map((r) => [r.name, r]));
  assert.deepEqual(byName.get('oxds-http/a.test')?.aliases, ['oxds-http/a.test:80']);
  assert.ok(byName.get('oxds-http/a.test')?.resource);
  assert.deepEqual(byName.get('oxds-http/gone.test')?.aliases, ['oxds-http/gone.test']);
  assert.equal(byName.get('oxds-http/gone.test')?.resource, undefined);
  assert.deepEqual(byName.get('nope/x.test')?.aliases, ['nope/x.test']);
  assert.equal(byName.get('nope/x.test')?.resource, undefined);
  assert.equal(sub.build(v3, 'v3', '6'), undefined, 'aliases answered once');
});

test('VhdsSubscription on demand: nothing up front; an alias brings its host', () => {
  const v1 = vhdsView(snapshotOf([['a.test'], ['b.test']]), false);
  const sub = new VhdsSubscription();
  sub.apply([], []);
  const empty = decodeDelta(sub.build(v1, 'v1', '1')!.buf);
  assert.equal(empty.resources, undefined, 'first response empty (Envoy waits for it to finish init)');
  sub.apply(['oxds-http/b.test'], []);
  const got = decodeDelta(sub.build(v1, 'v1', '2')!.buf);
  assert.deepEqual(
    (got.resources ?? []).map((r) => r.name),
    ['oxds-http/b.test'],
  );
  const v2 = vhdsView(snapshotOf([['a.test'], ['b.test']], 'v2'), false);
  assert.equal(sub.build(v2, 'v2', '3'), undefined, 'unchanged host: nothing');
});

test('golden: the VHDS split of three hosts (shell + virtual hosts, decoded): testdata/vhds/split.yaml', () => {
  const root = path.resolve(import.meta.dirname, '..', '..');
  const snap = snapshotOf([['api.oto.tools'], ['*.apps.oto.tools'], ['www.oto.tools']]);
  const view = vhdsView(snap, true);
  const doc = {
    routes: [...view.routes.values()].map((r) => decodeToObject(TYPE_URLS.route, r.bytes)),
    vhosts: [...view.vhosts.values()].map((v) => ({
      version: v.version,
      ...decodeToObject(TYPE_URL.VirtualHost, v.bytes),
    })),
  };
  const text = YAML.stringify(JSON.parse(JSON.stringify(doc)), { lineWidth: 0 });
  const file = path.join(root, 'testdata', 'vhds', 'split.yaml');
  if (process.env.UPDATE_GOLDEN === '1') {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, text);
  }
  assert.equal(text, fs.readFileSync(file, 'utf8'));
});
