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
import { resolveAlias, vhdsDiff, vhdsView } from '../src/xds/vhds.js';
import type { VhdsView } from '../src/xds/types.js';
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
  assert.equal(empty.resources, undefined, 'first response sends no virtual host');
  // ...but touches the namespace, so that Envoy's subscription finishes its initialization.
  assert.deepEqual(empty.removedResources, ['oxds-http/']);
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

/** A snapshot of descriptors by stable id (removing one does not renumber the others' clusters). */
function snapshotById(hosts: Record<string, string[]>, version: string) {
  const ds = Object.entries(hosts).map(([id, h]) =>
    descriptorModel(`d-${id}`, { hosts: h, targets: [ipTarget('t', '127.0.0.1', 9000)] }),
  );
  const out = translate(model(ds), { ...DEFAULT_TRANSLATE_OPTIONS, vhds: true });
  assert.deepEqual(out.errors, []);
  return buildSnapshot('envoy', version, out.envoy);
}

/** What an Envoy holds after applying Delta VirtualHost responses: name → version. */
class HeldVhosts {
  readonly held = new Map<string, string>();
  apply(buf: Buffer | undefined): void {
    if (!buf) return;
    const m = decodeDelta(buf);
    for (const r of m.resources ?? []) if (r.resource) this.held.set(r.name, r.version);
    for (const n of m.removedResources ?? []) this.held.delete(n);
  }
}

/** One client: a subscription, what it holds, and a build on `view` with runs shared like the server's. */
function vhdsClient(share: (view: VhdsView) => (key: string, make: () => Buffer) => Buffer) {
  const sub = new VhdsSubscription();
  const client = new HeldVhosts();
  let nonce = 0;
  return {
    sub,
    held: client.held,
    build(view: VhdsView, version: string): void {
      client.apply(sub.build(view, version, String(++nonce), share(view))?.buf);
    },
  };
}

/** Shared runs per view and key, as the server's SharedResponses keeps them per snapshot. */
function sharedRuns() {
  const runs = new WeakMap<VhdsView, Map<string, Buffer>>();
  let hits = 0;
  const share = (view: VhdsView) => (key: string, make: () => Buffer) => {
    let m = runs.get(view);
    if (!m) runs.set(view, (m = new Map()));
    const hit = m.get(key);
    if (hit) hits++;
    const buf = hit ?? make();
    m.set(key, buf);
    return buf;
  };
  return { share, hits: () => hits };
}

const versionsOf = (view: VhdsView, names?: Iterable<string>) =>
  new Map([...(names ?? view.vhosts.keys())].map((n) => [n, view.vhosts.get(n)?.version ?? 'missing']));

test('VhdsSubscription (eager): current, 3 generations behind and new clients hold exactly the server hosts', () => {
  const gens: Record<string, string[]>[] = [
    { a: ['a.test'], b: ['b.test'], c: ['c.test'], d: ['d.test'] },
    { a: ['a.test'], b: ['b.test', 'b2.test'], c: ['c.test'], d: ['d.test'] }, // b changed
    { a: ['a.test'], b: ['b.test', 'b2.test'], d: ['d.test'], e: ['e.test'] }, // c removed, e added
    { a: ['a.test', 'a2.test'], b: ['b.test', 'b2.test'], d: ['d.test'], e: ['e.test'] }, // a changed
    { a: ['a.test', 'a2.test'], b: ['b.test'], e: ['e.test'], f: ['*.f.test'] }, // b back, d gone, f added
  ];
  const views = gens.map((g, i) => vhdsView(snapshotById(g, `v${i + 1}`), true));
  const { share, hits } = sharedRuns();
  const current = vhdsClient(share);
  const current2 = vhdsClient(share);
  const lagging = vhdsClient(share);
  let late: ReturnType<typeof vhdsClient> | undefined;
  views.forEach((view, i) => {
    const version = `v${i + 1}`;
    current.build(view, version);
    current2.build(view, version);
    assert.deepEqual(current.held, versionsOf(view), `current client at ${version}`);
    assert.deepEqual(current2.held, versionsOf(view), `second current client at ${version}`);
    // The lagging client sees v1, then v4 (three generations later), then v5.
    if (i === 0 || i >= 3) {
      lagging.build(view, version);
      assert.deepEqual(lagging.held, versionsOf(view), `lagging client at ${version}`);
    }
    // A client that connects at v3 starts from a full computation, then follows.
    if (i === 2) late = vhdsClient(share);
    if (late) {
      late.build(view, version);
      assert.deepEqual(late.held, versionsOf(view), `late client at ${version}`);
    }
  });
  assert.ok(!current.held.has('oxds-http/c.test') && !lagging.held.has('oxds-http/d.test'), 'removals told');
  assert.ok(hits() >= views.length, 'the second current client reuses the first one’s encoded runs');
});

test('VhdsSubscription (on demand): aliases follow their hosts across generations; unsubscribed → removed', () => {
  const gens: Record<string, string[]>[] = [
    { a: ['a.test'], b: ['b.test'], w: ['*.w.test'] },
    { a: ['a.test', 'a2.test'], b: ['b.test'], w: ['*.w.test'] }, // a changed
    { a: ['a.test', 'a2.test'], b: ['b.test'], w: ['*.w.test'], n: ['new.test'] }, // unknown host appears
    { a: ['a.test', 'a2.test'], b: ['b.test', 'b2.test'], w: ['*.w.test', 'w.test'], n: ['new.test'] },
    { a: ['a.test'], b: ['b.test', 'b2.test'], w: ['*.w.test', 'w.test'], n: ['new.test', 'n2.test'] },
  ];
  const views = gens.map((g, i) => vhdsView(snapshotById(g, `v${i + 1}`), false));
  const aliases = ['oxds-http/a.test:80', 'oxds-http/q.w.test', 'oxds-http/new.test'];
  const { share } = sharedRuns();
  const current = vhdsClient(share);
  const lagging = vhdsClient(share);
  for (const c of [current, lagging]) c.sub.apply(aliases, []);
  const expected = (view: VhdsView, as: string[]) =>
    versionsOf(view, new Set(as.map((a) => resolveAlias(view, a)).filter((n) => n !== undefined)));
  let subscribed = aliases;
  views.forEach((view, i) => {
    const version = `v${i + 1}`;
    if (i === 3) {
      // Envoy drops the alias of a.test: its host is removed from the client.
      current.sub.apply([], ['oxds-http/a.test:80']);
      subscribed = aliases.slice(1);
    }
    current.build(view, version);
    assert.deepEqual(current.held, expected(view, subscribed), `current client at ${version}`);
    if (i === 0 || i === 4) {
      lagging.build(view, version);
      assert.deepEqual(lagging.held, expected(view, aliases), `lagging client at ${version}`);
    }
  });
  assert.equal(current.held.has('oxds-http/a.test'), false);
  assert.equal(lagging.held.get('oxds-http/new.test'), views[4]?.vhosts.get('oxds-http/new.test')?.version);
});

/** One response of `sub` on `view`, decoded; asserts no name is both sent and removed (Envoy refuses that). */
function responseOf(sub: VhdsSubscription, view: VhdsView, version: string, nonce: string) {
  const out = sub.build(view, version, nonce);
  if (!out) return undefined;
  const m = decodeDelta(out.buf);
  const sent = (m.resources ?? []).map((r) => r.name);
  for (const n of m.removedResources ?? []) assert.ok(!sent.includes(n), `${n} both sent and removed`);
  return { ...m, again: out.again };
}

test('VhdsSubscription (on demand): a host asked under its own name is removed when deleted, and comes back', () => {
  const v1 = vhdsView(snapshotById({ a: ['a.test'], k: ['keep.test'] }, 'v1'), false);
  const v2 = vhdsView(snapshotById({ k: ['keep.test'] }, 'v2'), false);
  const v3 = vhdsView(snapshotById({ a: ['a.test'], k: ['keep.test'] }, 'v3'), false);
  const sub = new VhdsSubscription();
  sub.apply([], []);
  responseOf(sub, v1, 'v1', '1');
  sub.apply(['oxds-http/a.test'], []);
  const got = responseOf(sub, v1, 'v1', '2');
  assert.deepEqual(
    got?.resources?.map((r) => [r.name, r.aliases]),
    [['oxds-http/a.test', ['oxds-http/a.test']]],
  );

  // Deleted: removed by its name, though that name is also the alias Envoy keeps subscribed.
  const gone = responseOf(sub, v2, 'v2', '3');
  assert.deepEqual(gone?.removedResources, ['oxds-http/a.test']);
  assert.equal(gone?.resources, undefined);
  // A request for it again: Envoy subscribes the alias again; the answer is "unknown" (empty, with the alias).
  assert.equal(sub.apply(['oxds-http/a.test'], []), true, 'a second subscription of an answered alias re-arms it');
  const unknown = responseOf(sub, v2, 'v2', '4');
  assert.deepEqual(
    unknown?.resources?.map((r) => [r.name, r.aliases, r.resource]),
    [['oxds-http/a.test', ['oxds-http/a.test'], undefined]],
  );
  assert.equal(sub.build(v2, 'v2', '5'), undefined, 'answered once');

  // Recreated: the alias is still subscribed, so the host is sent without being asked.
  const back = responseOf(sub, v3, 'v3', '6');
  assert.deepEqual(
    back?.resources?.map((r) => r.name),
    ['oxds-http/a.test'],
  );
  assert.ok(back?.resources?.[0]?.resource);
  // Asked while held (a request that raced the push): answered with the host and the alias.
  sub.apply(['oxds-http/a.test'], []);
  const again = responseOf(sub, v3, 'v3', '7');
  assert.deepEqual(
    again?.resources?.map((r) => [r.name, r.aliases]),
    [['oxds-http/a.test', ['oxds-http/a.test']]],
  );
  assert.deepEqual([...sub.known.keys()].sort(), ['oxds-http/a.test']);
});

test('VhdsSubscription (on demand): asked again as its host is deleted: removal first, the answer next', () => {
  const v1 = vhdsView(snapshotById({ a: ['a.test'], k: ['keep.test'] }, 'v1'), false);
  const v2 = vhdsView(snapshotById({ k: ['keep.test'] }, 'v2'), false);
  const sub = new VhdsSubscription();
  sub.apply(['oxds-http/a.test'], []);
  responseOf(sub, v1, 'v1', '1');
  sub.apply(['oxds-http/a.test'], []);
  // One response cannot remove a.test and answer the alias a.test (same name): the removal goes first.
  const first = responseOf(sub, v2, 'v2', '2');
  assert.deepEqual(first?.removedResources, ['oxds-http/a.test']);
  assert.equal(first?.resources, undefined);
  assert.equal(first?.again, true);
  const second = responseOf(sub, v2, 'v2', '3');
  assert.deepEqual(
    second?.resources?.map((r) => [r.name, r.aliases, r.resource]),
    [['oxds-http/a.test', ['oxds-http/a.test'], undefined]],
  );
  assert.equal(second?.removedResources, undefined);
  assert.equal(second?.again, false);
  assert.equal(sub.build(v2, 'v2', '4'), undefined);
});

test('VhdsSubscription (on demand): hosts asked under an alias (port, wildcard) are removed and come back', () => {
  const all = { a: ['a.test'], w: ['*.w.test'], k: ['keep.test'] };
  const v1 = vhdsView(snapshotById(all, 'v1'), false);
  const v2 = vhdsView(snapshotById({ k: ['keep.test'] }, 'v2'), false);
  const v3 = vhdsView(snapshotById(all, 'v3'), false);
  const sub = new VhdsSubscription();
  const aliases = ['oxds-http/a.test:8080', 'oxds-http/x.w.test'];
  sub.apply(aliases, []);
  const got = responseOf(sub, v1, 'v1', '1');
  assert.deepEqual(
    got?.resources?.map((r) => [r.name, r.aliases]),
    [
      ['oxds-http/*.w.test', ['oxds-http/x.w.test']],
      ['oxds-http/a.test', ['oxds-http/a.test:8080']],
    ],
  );
  const gone = responseOf(sub, v2, 'v2', '2');
  assert.deepEqual(gone?.removedResources, ['oxds-http/*.w.test', 'oxds-http/a.test']);
  sub.apply(aliases, []);
  const unknown = responseOf(sub, v2, 'v2', '3');
  assert.deepEqual(
    unknown?.resources?.map((r) => [r.name, r.aliases, r.resource]),
    aliases.map((a) => [a, [a], undefined]),
  );
  const back = responseOf(sub, v3, 'v3', '4');
  assert.deepEqual(
    back?.resources?.map((r) => r.name),
    ['oxds-http/*.w.test', 'oxds-http/a.test'],
  );
});

test('vhdsView: a new route configuration reuses the unchanged virtual hosts of the previous split', () => {
  const snap = (bRoot: string, version: string) => {
    const ds = [
      descriptorModel('d-a', { hosts: ['a.test'], targets: [ipTarget('t', '127.0.0.1', 9000)] }),
      descriptorModel('d-b', { hosts: ['b.test'], root: bRoot, targets: [ipTarget('t', '127.0.0.1', 9000)] }),
    ];
    const out = translate(model(ds), { ...DEFAULT_TRANSLATE_OPTIONS, vhds: true });
    assert.deepEqual(out.errors, []);
    return buildSnapshot('envoy', version, out.envoy);
  };
  const v1 = vhdsView(snap('/', 'v1'), true);
  const v2 = vhdsView(snap('/v2', 'v2'), true);
  assert.equal(v2.vhosts.get('oxds-http/a.test'), v1.vhosts.get('oxds-http/a.test'), 'unchanged: the same resource');
  const b = v2.vhosts.get('oxds-http/b.test');
  assert.notEqual(b?.version, v1.vhosts.get('oxds-http/b.test')?.version, 'changed: a new version');
  assert.equal(vhdsDiff(v1, v2).changed.size, 1, 'the diff sees the one changed virtual host');
  // Every reused or new virtual host is exactly what a fresh split makes of the same configuration.
  const fresh = vhdsView(snap('/v2', 'v3'), true);
  assert.equal(fresh.vhosts.size, v2.vhosts.size);
  for (const [n, vh] of fresh.vhosts) assert.deepEqual(v2.vhosts.get(n)?.bytes, vh.bytes, n);
  const obj = decodeToObject(TYPE_URL.VirtualHost, b!.bytes) as { name: string };
  assert.equal(obj.name, 'oxds-http/b.test');
});
