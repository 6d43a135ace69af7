import { afterEach, test } from 'vitest';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { pino } from 'pino';
import { lookupType, TYPE_URLS, type ProtoObject } from '../proto/loader.js';
import { startXdsServer, type XdsServerHandle } from '../src/xds/server/server.js';
import { detectNodeType } from '../src/xds/server/node.js';
import type { DiscoveryResponse } from '../src/xds/server/messages.js';
import { SnapshotCache, InconsistentSnapshotError } from '../src/xds/cache.js';
import {
  buildSnapshot,
  checkConsistency,
  defaultEncoder,
  diffSnapshots,
  VersionSource,
  type Resolver,
} from '../src/xds/snapshot.js';
import type { NodeType, ResourceSet, Snapshot } from '../src/xds/types.js';
import type { TypeStatus } from '../src/xds/node-status.js';
import { AdsClient, anyName, protocolViolations, responseNames, type ClientOptions } from './helpers/ads-client.js';

const HCM = 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager';
const ROUTER = 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router';
const { listener: LDS, route: RDS, cluster: CDS, endpoint: EDS, secret: SDS } = TYPE_URLS;

function hcm(route: string): ProtoObject {
  return {
    '@type': HCM,
    statPrefix: 'http',
    rds: { configSource: { ads: {}, resourceApiVersion: 'V3' }, routeConfigName: route },
    httpFilters: [{ name: 'envoy.filters.http.router', typedConfig: { '@type': ROUTER } }],
  };
}

function listener(name: string, route: string): ProtoObject {
  return {
    name,
    address: { socketAddress: { address: '0.0.0.0', portValue: 8080 } },
    filterChains: [{ filters: [{ name: 'envoy.filters.network.http_connection_manager', typedConfig: hcm(route) }] }],
  };
}

function apiListener(name: string, route: string): ProtoObject {
  return { name, apiListener: { apiListener: hcm(route) } };
}

function routeConfig(name: string, cluster: string, prefix = '/'): ProtoObject {
  return { name, virtualHosts: [{ name: 'vh', domains: ['*'], routes: [{ match: { prefix }, route: { cluster } }] }] };
}

function cluster(name: string): ProtoObject {
  return {
    name,
    type: 'EDS',
    edsClusterConfig: { edsConfig: { ads: {}, resourceApiVersion: 'V3' } },
    connectTimeout: { seconds: 1 },
  };
}

function cla(name: string, ip = '10.0.0.1', port = 8080): ProtoObject {
  return {
    clusterName: name,
    endpoints: [
      {
        locality: {},
        loadBalancingWeight: { value: 1 },
        lbEndpoints: [{ endpoint: { address: { socketAddress: { address: ip, portValue: port } } } }],
      },
    ],
  };
}

function secret(name: string): ProtoObject {
  return { name, tlsCertificate: { certificateChain: { inlineString: 'CERT' }, privateKey: { inlineString: 'KEY' } } };
}

function baseSet(over: Partial<ResourceSet> = {}): ResourceSet {
  return {
    listeners: [listener('l1', 'r1')],
    routes: [routeConfig('r1', 'c1')],
    clusters: [cluster('c1')],
    endpoints: [cla('c1')],
    secrets: [],
    ...over,
  };
}

interface Env {
  cache: SnapshotCache;
  handle: XdsServerHandle;
  publish(set: ResourceSet, nodeType?: NodeType, resolver?: Resolver): Snapshot;
  client(opts?: ClientOptions): AdsClient;
}

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function env(initial?: ResourceSet, maxNames?: number): Promise<Env> {
  const cache = new SnapshotCache();
  const versions = new VersionSource();
  const handle = await startXdsServer('127.0.0.1', 0, {
    cache,
    logger: pino({ level: 'silent' }),
    ...(maxNames === undefined ? {} : { maxNames }),
  });
  cleanups.push(() => handle.stop(200));
  const e: Env = {
    cache,
    handle,
    publish(set, nodeType = 'envoy', resolver) {
      const s = buildSnapshot(nodeType, versions.next(), set, defaultEncoder, resolver);
      cache.set(nodeType, s);
      return s;
    },
    client(opts) {
      const c = new AdsClient(handle.port, opts);
      cleanups.push(() => c.close());
      return c;
    },
  };
  if (initial) e.publish(initial);
  return e;
}

function assertProtocol(c: AdsClient): void {
  assert.deepEqual(protocolViolations(c.received), []);
}

async function waitFor(cond: () => boolean, ms = 1000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}

// --- SotW ------------------------------------------------------------------------------------

test('SotW: an Envoy-like client syncs CDS, EDS, LDS, RDS; ACKs are recorded and nothing is re-sent', async () => {
  const e = await env(baseSet());
  const c = e.client();
  const last = await c.syncLikeEnvoy();
  assert.deepEqual(responseNames(last.get(CDS)!), ['c1']);
  assert.deepEqual(responseNames(last.get(EDS)!), ['c1']);
  assert.deepEqual(responseNames(last.get(LDS)!), ['l1']);
  assert.deepEqual(responseNames(last.get(RDS)!), ['r1']);
  await c.expectNone(200);
  assertProtocol(c);
  const [st] = e.handle.ads.statuses();
  assert.ok(st);
  assert.equal(st.nodeId, 'test-node');
  assert.equal(st.nodeType, 'envoy');
  assert.equal(st.streamKind, 'sotw');
  for (const t of [CDS, EDS, LDS, RDS]) {
    const ts: TypeStatus | undefined = st.types[t];
    assert.ok(ts, t);
    assert.equal(ts.ackedVersion, e.cache.get('envoy')!.version, t);
    assert.equal(ts.sentVersion, ts.ackedVersion);
  }
  assert.equal(st.types[RDS]!.wildcard, false);
  assert.deepEqual(st.types[RDS]!.subscribed, ['r1']);
  assert.equal(st.types[LDS]!.wildcard, true);

  // Republishing identical content (new version) sends nothing.
  e.publish(baseSet());
  await c.expectNone(200);
});

test('SotW: sends CDS → EDS → LDS → RDS when all types are requested at once', async () => {
  const e = await env(baseSet());
  const c = e.client();
  c.request(RDS, ['r1']);
  c.request(LDS);
  c.request(EDS, ['c1']);
  c.request(CDS);
  const order: string[] = [];
  for (let i = 0; i < 4; i++) order.push((await c.nextSotw()).typeUrl);
  assert.deepEqual(order, [CDS, EDS, LDS, RDS]);
  assertProtocol(c);
});

test('SotW: a change to one route sends RDS only', async () => {
  const e = await env(baseSet());
  const c = e.client();
  await c.syncLikeEnvoy();
  e.publish(baseSet({ routes: [routeConfig('r1', 'c1', '/v2')] }));
  const r = await c.nextSotw();
  assert.equal(r.typeUrl, RDS);
  assert.deepEqual(responseNames(r), ['r1']);
  assert.equal(r.versionInfo, e.cache.get('envoy')!.version);
  c.ack(r, ['r1']);
  await c.expectNone(200);
  assertProtocol(c);
});

test('SotW: a NACK is recorded with its error and the rejected version is not re-sent', async () => {
  const e = await env(baseSet());
  const c = e.client();
  await c.syncLikeEnvoy();
  const bad = e.publish(baseSet({ routes: [routeConfig('r1', 'c1', '/bad')] }));
  const r = await c.nextSotw();
  assert.equal(r.typeUrl, RDS);
  c.nack(r, 'route: invalid prefix', ['r1']);
  await c.expectNone(250);
  await waitFor(() => e.handle.ads.statuses()[0]?.types[RDS]?.lastNack !== undefined);
  const ts = e.handle.ads.statuses()[0]!.types[RDS]!;
  assert.equal(ts.lastNack!.message, 'route: invalid prefix');
  assert.equal(ts.lastNack!.version, bad.version);
  assert.equal(ts.lastNack!.nonce, r.nonce);
  assert.notEqual(ts.ackedVersion, bad.version);

  // An unrelated change (endpoints) does not resend the rejected routes.
  e.publish(baseSet({ routes: [routeConfig('r1', 'c1', '/bad')], endpoints: [cla('c1', '10.0.0.2')] }));
  const eds = await c.nextSotw();
  assert.equal(eds.typeUrl, EDS);
  c.ack(eds, ['c1']);
  await c.expectNone(200);

  // A fixed route is sent.
  const good = e.publish(baseSet({ routes: [routeConfig('r1', 'c1', '/good')], endpoints: [cla('c1', '10.0.0.2')] }));
  const fixed = await c.nextSotw();
  assert.equal(fixed.typeUrl, RDS);
  assert.equal(fixed.versionInfo, good.version);
  assertProtocol(c);
});

test('SotW: a stale-nonce request is ignored unless its names changed', async () => {
  const e = await env(baseSet());
  const c = e.client();
  const last = await c.syncLikeEnvoy();
  const firstRds = last.get(RDS)!;
  e.publish(baseSet({ routes: [routeConfig('r1', 'c1', '/v2')] }));
  const r2 = await c.nextSotw();
  c.ack(r2, ['r1']);
  await c.expectNone(100);

  // Old nonce, same names: ignored.
  c.request(RDS, ['r1'], firstRds.nonce);
  await c.expectNone(200);

  // Old nonce, changed names: answered for the new names.
  e.publish(
    baseSet({
      listeners: [listener('l1', 'r1'), listener('l2', 'r2')],
      routes: [routeConfig('r1', 'c1', '/v2'), routeConfig('r2', 'c1')],
    }),
  );
  const lds = await c.nextSotw();
  assert.equal(lds.typeUrl, LDS);
  c.request(RDS, ['r1', 'r2'], firstRds.nonce);
  const r3 = await c.nextSotw();
  assert.equal(r3.typeUrl, RDS);
  assert.deepEqual(responseNames(r3), ['r1', 'r2']);
  assertProtocol(c);
});

test('SotW: names that do not exist yet are omitted and sent when they appear', async () => {
  const e = await env(baseSet());
  const c = e.client();
  c.request(RDS, ['r1', 'r9']);
  const r = await c.nextSotw();
  assert.deepEqual(responseNames(r), ['r1']);
  c.ack(r, ['r1', 'r9']);
  await c.expectNone(150);
  e.publish(baseSet({ routes: [routeConfig('r1', 'c1'), routeConfig('r9', 'c1')] }));
  const r2 = await c.nextSotw();
  assert.deepEqual(responseNames(r2), ['r1', 'r9']);

  // LDS/CDS are state-of-the-world: an explicit name that does not exist gets an empty answer
  // (the client learns "does not exist" at once), then the resource when it appears.
  c.request(LDS, ['l9']);
  const l = await c.nextSotw();
  assert.equal(l.typeUrl, LDS);
  assert.deepEqual(responseNames(l), []);
  c.ack(l, ['l9']);
  e.publish(
    baseSet({
      listeners: [listener('l1', 'r1'), listener('l9', 'r1')],
      routes: [routeConfig('r1', 'c1'), routeConfig('r9', 'c1')],
    }),
  );
  assert.deepEqual(responseNames(await c.nextSotw()), ['l9']);
});

test('SotW: a deleted cluster disappears from the next CDS response (wildcard)', async () => {
  const e = await env(baseSet({ clusters: [cluster('c1'), cluster('c2')], endpoints: [cla('c1'), cla('c2')] }));
  const c = e.client();
  c.request(CDS);
  const r = await c.nextSotw();
  assert.deepEqual(responseNames(r), ['c1', 'c2']);
  c.ack(r);
  e.publish(baseSet());
  const r2 = await c.nextSotw();
  assert.deepEqual(responseNames(r2), ['c1']);
});

test('SotW: an unknown type URL is ignored without closing the stream', async () => {
  const e = await env(baseSet());
  const c = e.client();
  c.request('type.googleapis.com/envoy.config.foo.v3.Bar', ['x']);
  c.request('', []);
  await c.expectNone(150);
  c.request(CDS);
  const r = await c.nextSotw();
  assert.equal(r.typeUrl, CDS);
  assert.equal(c.status, undefined);
});

test('SotW: a request with more names than maxNames ends that stream with INVALID_ARGUMENT only', async () => {
  const e = await env(baseSet(), 500);
  const bad = e.client();
  bad.request(
    RDS,
    Array.from({ length: 501 }, (_, i) => `r${i}`),
  );
  const st = await bad.ended();
  assert.equal(st.code, grpc.status.INVALID_ARGUMENT);
  assert.match(st.details, /too many resource names \(501 > 500\)/);
  const ok = e.client();
  ok.request(CDS);
  assert.equal((await ok.nextSotw()).typeUrl, CDS);
});

test('SotW: by default a subscription of 20,000 EDS names (a fleet-sized gateway) is served', async () => {
  const e = await env(baseSet());
  const c = e.client();
  c.request(EDS, [...Array.from({ length: 20_000 }, (_, i) => `absent-${i}`), 'c1']);
  const r = await c.nextSotw();
  assert.equal(r.typeUrl, EDS);
  assert.deepEqual(responseNames(r), ['c1']);
  assert.equal(c.status, undefined);
});

test('SotW: nothing is sent before a snapshot exists; the first snapshot is sent', async () => {
  const e = await env();
  const c = e.client();
  c.request(CDS);
  await c.expectNone(150);
  e.publish(baseSet());
  assert.deepEqual(responseNames(await c.nextSotw()), ['c1']);
});

test('SDS: StreamSecrets serves the requested secrets only', async () => {
  const tlsListener: ProtoObject = {
    ...listener('l1', 'r1'),
    filterChains: [
      {
        filters: [{ name: 'envoy.filters.network.http_connection_manager', typedConfig: hcm('r1') }],
        transportSocket: {
          name: 'envoy.transport_sockets.tls',
          typedConfig: {
            '@type': 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext',
            commonTlsContext: {
              tlsCertificateSdsSecretConfigs: [{ name: 's1', sdsConfig: { ads: {}, resourceApiVersion: 'V3' } }],
            },
          },
        },
      },
    ],
  };
  const e = await env(baseSet({ listeners: [tlsListener], secrets: [secret('s1'), secret('s2')] }));
  const c = e.client({ service: 'sds' });
  c.request(SDS, ['s1']);
  const r = await c.nextSotw();
  assert.equal(r.typeUrl, SDS);
  assert.deepEqual(responseNames(r), ['s1']);
  c.request(CDS);
  await c.expectNone(150); // other types are not served on SDS
});

test('SotW: a slow client gets coalesced updates (latest state per type), not one per snapshot', async () => {
  const big = (i: number): ResourceSet =>
    baseSet({
      routes: [
        {
          ...routeConfig('r1', 'c1'),
          virtualHosts: [
            {
              name: 'vh',
              domains: ['*'],
              routes: Array.from({ length: 300 }, (_, j) => ({
                match: { prefix: `/p${i}/${j}/${'x'.repeat(40)}` },
                route: { cluster: 'c1' },
              })),
            },
          ],
        },
      ],
    });
  const e = await env(big(0));
  const c = e.client();
  c.request(RDS, ['r1']);
  c.ack(await c.nextSotw(), ['r1']);
  c.pause();
  const N = 150;
  let last: Snapshot | undefined;
  for (let i = 1; i <= N; i++) {
    last = e.publish(big(i));
    await new Promise((r) => setImmediate(r));
  }
  c.resume();
  let got: DiscoveryResponse | undefined;
  let count = 0;
  while (got?.versionInfo !== last!.version) {
    got = await c.nextSotw(3000);
    count++;
  }
  assert.ok(count < N, `expected coalescing, got ${count} responses for ${N} snapshots`);
  assertProtocol(c);
});

test('hooks see pushes, ACKs and NACKs; closeAllStreams ends streams with UNAVAILABLE', async () => {
  const cache = new SnapshotCache();
  const calls: string[] = [];
  const handle = await startXdsServer('127.0.0.1', 0, {
    cache,
    logger: pino({ level: 'silent' }),
    hooks: {
      onPush: (t, bytes, ms) => calls.push(`push ${t} ${bytes > 0} ${ms >= 0}`),
      onNack: (t) => calls.push(`nack ${t}`),
      onAck: (t) => calls.push(`ack ${t}`),
    },
  });
  cleanups.push(() => handle.stop(200));
  cache.set('envoy', buildSnapshot('envoy', 'v1', baseSet(), defaultEncoder));
  const c = new AdsClient(handle.port);
  cleanups.push(() => c.close());
  c.request(CDS);
  const r = await c.nextSotw();
  c.ack(r);
  await waitFor(() => calls.length >= 2);
  cache.set(
    'envoy',
    buildSnapshot(
      'envoy',
      'v2',
      baseSet({ clusters: [{ ...cluster('c1'), connectTimeout: { seconds: 2 } }] }),
      defaultEncoder,
    ),
  );
  c.nack(await c.nextSotw(), 'no');
  await waitFor(() => calls.length >= 4).catch(() => assert.fail(JSON.stringify(calls)));
  assert.deepEqual(calls, [`push ${CDS} true true`, `ack ${CDS}`, `push ${CDS} true true`, `nack ${CDS}`]);
  handle.ads.closeAllStreams();
  assert.equal((await c.ended()).code, grpc.status.UNAVAILABLE);
  assert.deepEqual(handle.ads.statuses(), []);
});

// --- Delta -----------------------------------------------------------------------------------

test('Delta: wildcard CDS, ACK recorded, removed_resources when a cluster is deleted', async () => {
  const e = await env(baseSet({ clusters: [cluster('c1'), cluster('c2')], endpoints: [cla('c1'), cla('c2')] }));
  const c = e.client({ mode: 'delta' });
  c.subscribe(CDS, []);
  const r = await c.nextDelta();
  assert.equal(r.typeUrl, CDS);
  assert.deepEqual(r.resources.map((x) => x.name).sort(), ['c1', 'c2']);
  assert.equal(r.systemVersionInfo, e.cache.get('envoy')!.version);
  for (const x of r.resources) {
    assert.equal(x.version, e.cache.get('envoy')!.resources.cluster.get(x.name)!.version);
    assert.equal(anyName(x.resource!), x.name);
  }
  c.ackDelta(r);
  await waitFor(() => e.handle.ads.statuses()[0]?.types[CDS]?.ackedVersion === r.systemVersionInfo);
  assert.equal(e.handle.ads.statuses()[0]!.streamKind, 'delta');

  e.publish(baseSet());
  const r2 = await c.nextDelta();
  assert.deepEqual(r2.resources, []);
  assert.deepEqual(r2.removedResources, ['c2']);
  c.ackDelta(r2);
  await c.expectNone(150);
  assertProtocol(c);
});

test('Delta: a change to one route sends that one resource', async () => {
  const routes = [routeConfig('r1', 'c1'), routeConfig('r2', 'c1'), routeConfig('r3', 'c1')];
  const listeners = [listener('l1', 'r1'), listener('l2', 'r2'), listener('l3', 'r3')];
  const e = await env(baseSet({ routes, listeners }));
  const c = e.client({ mode: 'delta' });
  c.subscribe(RDS, ['r1', 'r2', 'r3']);
  const r = await c.nextDelta();
  assert.equal(r.resources.length, 3);
  c.ackDelta(r);
  e.publish(
    baseSet({
      listeners,
      routes: [routeConfig('r1', 'c1'), routeConfig('r2', 'c1', '/changed'), routeConfig('r3', 'c1')],
    }),
  );
  const r2 = await c.nextDelta();
  assert.deepEqual(
    r2.resources.map((x) => x.name),
    ['r2'],
  );
  assert.deepEqual(r2.removedResources, []);
  c.ackDelta(r2);
  await c.expectNone(150);
  assertProtocol(c);
});

test('Delta: after unsubscribe, a change to that resource sends nothing', async () => {
  const routes = [routeConfig('r1', 'c1'), routeConfig('r2', 'c1')];
  const listeners = [listener('l1', 'r1'), listener('l2', 'r2')];
  const e = await env(baseSet({ routes, listeners }));
  const c = e.client({ mode: 'delta' });
  c.subscribe(RDS, ['r1', 'r2']);
  c.ackDelta(await c.nextDelta());
  c.unsubscribe(RDS, ['r2']);
  await c.expectNone(150);
  e.publish(baseSet({ listeners, routes: [routeConfig('r1', 'c1'), routeConfig('r2', 'c1', '/changed')] }));
  await c.expectNone(200);
  // Re-subscribing sends the current version.
  c.subscribe(RDS, ['r2']);
  const r = await c.nextDelta();
  assert.deepEqual(
    r.resources.map((x) => x.name),
    ['r2'],
  );
});

test('Delta: initial_resource_versions suppresses resending what the client already has', async () => {
  const routes = [routeConfig('r1', 'c1'), routeConfig('r2', 'c1')];
  const listeners = [listener('l1', 'r1'), listener('l2', 'r2')];
  const e = await env(baseSet({ routes, listeners }));
  const v1 = e.cache.get('envoy')!.resources.route.get('r1')!.version;
  const c = e.client({ mode: 'delta' });
  c.subscribe(RDS, ['r1', 'r2'], { r1: v1, r2: 'stale-version' });
  const r = await c.nextDelta();
  assert.deepEqual(
    r.resources.map((x) => x.name),
    ['r2'],
  );
});

test('Delta: a NACK is recorded and the rejected resource is not re-sent', async () => {
  const e = await env(baseSet());
  const c = e.client({ mode: 'delta' });
  c.subscribe(RDS, ['r1']);
  c.ackDelta(await c.nextDelta());
  const bad = e.publish(baseSet({ routes: [routeConfig('r1', 'c1', '/bad')] }));
  const r = await c.nextDelta();
  c.nackDelta(r, 'bad route');
  await c.expectNone(200);
  const ts = e.handle.ads.statuses()[0]!.types[RDS]!;
  assert.equal(ts.lastNack?.message, 'bad route');
  assert.equal(ts.lastNack?.version, bad.version);
});

// --- Node types and proxyless gRPC ------------------------------------------------------------

test('node type: user agent "gRPC ..." is proxyless, metadata OXDS_NODE_TYPE wins', () => {
  assert.equal(detectNodeType({ userAgentName: 'gRPC Node.js' }), 'grpc');
  assert.equal(detectNodeType({ userAgentName: 'gRPC C-core linux' }), 'grpc');
  assert.equal(detectNodeType({ userAgentName: 'envoy' }), 'envoy');
  assert.equal(detectNodeType({}), 'envoy');
  assert.equal(detectNodeType(undefined), 'envoy');
  assert.equal(
    detectNodeType({ userAgentName: 'envoy', metadata: { fields: { OXDS_NODE_TYPE: { stringValue: 'grpc' } } } }),
    'grpc',
  );
  assert.equal(
    detectNodeType({
      userAgentName: 'gRPC Node.js',
      metadata: { fields: { OXDS_NODE_TYPE: { stringValue: 'envoy' } } },
    }),
    'envoy',
  );
});

test('gRPC clients get the grpc snapshot; explicit listener names are resolved on demand', async () => {
  const e = await env(baseSet());
  const grpcSet = baseSet({ listeners: [apiListener('svc.example.com:443', 'r1')] });
  e.publish(grpcSet, 'grpc', (kind, name) =>
    kind === 'listener' && name.endsWith('.wild.example.com') ? apiListener(name, 'r1') : undefined,
  );
  const c = e.client({ node: { userAgentName: 'gRPC Node.js', userAgentVersion: '1.14.1' } });
  c.request(LDS, ['a.wild.example.com']);
  const r = await c.nextSotw();
  assert.deepEqual(responseNames(r), ['a.wild.example.com']);
  c.ack(r, ['a.wild.example.com']);
  c.request(LDS, ['a.wild.example.com', 'svc.example.com:443'], r.nonce, r.versionInfo);
  const r2 = await c.nextSotw();
  assert.deepEqual(responseNames(r2), ['a.wild.example.com', 'svc.example.com:443']);
  const st = e.handle.ads.statuses()[0]!;
  assert.equal(st.nodeType, 'grpc');
  assert.equal(st.userAgentName, 'gRPC Node.js');
  // The envoy client still sees the envoy listener.
  const envoy = e.client();
  envoy.request(LDS);
  assert.deepEqual(responseNames(await envoy.nextSotw()), ['l1']);
});

// --- Snapshot and cache -----------------------------------------------------------------------

test('cache: an inconsistent snapshot is rejected and the last good one kept', async () => {
  const cache = new SnapshotCache();
  const vs = new VersionSource('boot');
  const good = buildSnapshot('envoy', vs.next(), baseSet(), defaultEncoder);
  cache.set('envoy', good);
  let notified = 0;
  cache.subscribe(() => notified++);
  const cases: [string, ResourceSet][] = [
    ['missing route', baseSet({ routes: [] })],
    ['missing route (api_listener)', baseSet({ listeners: [apiListener('x', 'nope')] })],
    ['missing CLA', baseSet({ endpoints: [] })],
    [
      'missing CLA by service name',
      baseSet({ clusters: [{ ...cluster('c1'), edsClusterConfig: { edsConfig: { ads: {} }, serviceName: 'svc' } }] }),
    ],
    ['duplicate name', baseSet({ routes: [routeConfig('r1', 'c1'), routeConfig('r1', 'c2')] })],
    [
      'missing secret',
      baseSet({
        clusters: [
          {
            ...cluster('c1'),
            transportSocket: {
              name: 'tls',
              typedConfig: {
                '@type': 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext',
                commonTlsContext: { validationContextSdsSecretConfig: { name: 'ca', sdsConfig: { ads: {} } } },
              },
            },
          },
        ],
      }),
    ],
  ];
  for (const [label, set] of cases) {
    const s = buildSnapshot('envoy', vs.next(), set, defaultEncoder);
    assert.notDeepEqual(checkConsistency(s), [], label);
    assert.throws(() => cache.set('envoy', s), InconsistentSnapshotError, label);
  }
  assert.equal(cache.get('envoy'), good);
  assert.equal(notified, 0);
  assert.throws(() => cache.set('grpc', good), InconsistentSnapshotError);
  // setMany publishes all or nothing.
  const grpcGood = buildSnapshot('grpc', vs.next(), baseSet(), defaultEncoder);
  const envoyBad = buildSnapshot('envoy', vs.next(), baseSet({ routes: [] }), defaultEncoder);
  assert.throws(() => cache.setMany({ grpc: grpcGood, envoy: envoyBad }), InconsistentSnapshotError);
  assert.equal(cache.get('grpc'), undefined);
  cache.setMany({ grpc: grpcGood });
  assert.equal(cache.get('grpc'), grpcGood);
});

test('snapshot: per-resource versions are content hashes; VersionSource never repeats across boots', () => {
  const a = buildSnapshot('envoy', 'v1', baseSet(), defaultEncoder);
  const b = buildSnapshot('envoy', 'v2', baseSet({ routes: [routeConfig('r1', 'c1', '/x')] }), defaultEncoder);
  assert.equal(a.resources.cluster.get('c1')!.version, b.resources.cluster.get('c1')!.version);
  assert.notEqual(a.resources.route.get('r1')!.version, b.resources.route.get('r1')!.version);
  assert.equal(a.resources.endpoint.get('c1')!.name, 'c1');
  const v = new VersionSource('abc');
  assert.equal(v.next(), 'abc-1');
  assert.equal(v.next(), 'abc-2');
  assert.notEqual(new VersionSource().bootId, new VersionSource().bootId);
  assert.match(new VersionSource().next(), /^[0-9a-z]+-1$/);
});

// --- Snapshot diff and shared encoding --------------------------------------------------------

test('snapshot diff: changed/added and removed names per kind, once per publication', () => {
  const a = buildSnapshot(
    'envoy',
    'v1',
    baseSet({ clusters: [cluster('c1'), cluster('c2')], endpoints: [cla('c1'), cla('c2')] }),
    defaultEncoder,
  );
  const b = buildSnapshot(
    'envoy',
    'v2',
    baseSet({ clusters: [cluster('c1'), cluster('c3')], endpoints: [cla('c1', '10.0.0.9'), cla('c3')] }),
    defaultEncoder,
  );
  const d = diffSnapshots(a, b);
  assert.deepEqual([...d.cluster.changed], ['c3']);
  assert.deepEqual([...d.cluster.removed], ['c2']);
  assert.deepEqual([...d.endpoint.changed].sort(), ['c1', 'c3']);
  assert.deepEqual([...d.endpoint.removed], ['c2']);
  assert.equal(d.route.size, 0);
  assert.equal(d.listener.size, 0);
});

const RESPONSE = 'envoy.service.discovery.v3.DiscoveryResponse';
const DELTA_RESPONSE = 'envoy.service.discovery.v3.DeltaDiscoveryResponse';

/** What protobufjs itself would put on the wire for a response object, decoded back to a plain object. */
function canonical(typeName: string, msg: object): unknown {
  const t = lookupType(typeName);
  return t.toObject(t.decode(t.encode(t.fromObject(msg)).finish()), { defaults: true, bytes: String });
}

test(
  'shared encoding (SotW): streams with the same subscription decode exactly what ' +
    'protobufjs would encode; per-stream nonces',
  async () => {
    const clusters = [cluster('c1'), cluster('c2'), cluster('c3')];
    const endpoints = [cla('c1'), cla('c2'), cla('c3')];
    const e = await env(baseSet({ clusters, endpoints }));
    const snap = e.cache.get('envoy')!;
    const clients = [e.client(), e.client(), e.client()];
    for (const c of clients) c.request(CDS);
    const first = await Promise.all(clients.map((c) => c.nextSotw()));
    for (const r of first) {
      const expected = {
        versionInfo: snap.version,
        resources: ['c1', 'c2', 'c3'].map((n) => ({ type_url: CDS, value: snap.resources.cluster.get(n)!.bytes })),
        typeUrl: CDS,
        nonce: r.nonce,
      };
      assert.deepEqual(canonical(RESPONSE, r), canonical(RESPONSE, expected));
    }
    const stats1 = e.handle.ads.sharedEncodingStats();
    assert.equal(stats1.misses, 1, JSON.stringify(stats1));
    assert.equal(stats1.hits, 2, JSON.stringify(stats1));
    for (let i = 0; i < clients.length; i++) clients[i]!.ack(first[i]!);

    // A change: every stream gets the new state, each with its own increasing nonce, encoded once.
    const next = e.publish(baseSet({ clusters: [...clusters, cluster('c4')], endpoints: [...endpoints, cla('c4')] }));
    const second = await Promise.all(clients.map((c) => c.nextSotw()));
    for (const r of second) {
      assert.deepEqual(responseNames(r), ['c1', 'c2', 'c3', 'c4']);
      assert.equal(r.versionInfo, next.version);
    }
    const stats2 = e.handle.ads.sharedEncodingStats();
    assert.equal(stats2.misses, 2);
    assert.equal(stats2.hits, 4);
    for (const c of clients) assertProtocol(c);

    // A stream's nonces keep increasing across types and changes.
    const c = clients[0]!;
    c.ack(second[0]!);
    c.request(EDS, ['c1', 'c4']);
    const eds = await c.nextSotw();
    assert.ok(Number(eds.nonce) > Number(second[0]!.nonce));
    assertProtocol(c);
  },
);

test(
  'shared encoding (Delta): same resources decoded as protobufjs would encode them; ' + 'removed names per stream',
  async () => {
    const routes = [routeConfig('r1', 'c1'), routeConfig('r2', 'c1')];
    const listeners = [listener('l1', 'r1'), listener('l2', 'r2')];
    const e = await env(baseSet({ routes, listeners }));
    const a = e.client({ mode: 'delta' });
    const b = e.client({ mode: 'delta' });
    a.subscribe(RDS, ['r1', 'r2']);
    b.subscribe(RDS, ['r1', 'r2']);
    const [ra, rb] = [await a.nextDelta(), await b.nextDelta()];
    const snap = e.cache.get('envoy')!;
    for (const r of [ra, rb]) {
      const expected = {
        systemVersionInfo: snap.version,
        resources: ['r1', 'r2'].map((n) => {
          const v = snap.resources.route.get(n)!;
          return { name: n, version: v.version, resource: { type_url: RDS, value: v.bytes } };
        }),
        typeUrl: RDS,
        removedResources: [],
        nonce: r.nonce,
      };
      assert.deepEqual(canonical(DELTA_RESPONSE, r), canonical(DELTA_RESPONSE, expected));
    }
    a.ackDelta(ra);
    b.ackDelta(rb);
    // r2 removed (l2 too, for consistency), r1 changed: one shared run for r1, removal in each stream's own part.
    const next = e.publish(baseSet({ listeners: [listener('l1', 'r1')], routes: [routeConfig('r1', 'c1', '/v2')] }));
    for (const c of [a, b]) {
      const r = await c.nextDelta();
      const v = next.resources.route.get('r1')!;
      const expected = {
        systemVersionInfo: next.version,
        resources: [{ name: 'r1', version: v.version, resource: { type_url: RDS, value: v.bytes } }],
        typeUrl: RDS,
        removedResources: ['r2'],
        nonce: r.nonce,
      };
      assert.deepEqual(canonical(DELTA_RESPONSE, r), canonical(DELTA_RESPONSE, expected));
      c.ackDelta(r);
      await c.expectNone(100);
      assertProtocol(c);
    }
    const st = e.handle.ads.sharedEncodingStats();
    assert.equal(st.misses, 2, JSON.stringify(st));
    assert.equal(st.hits, 2, JSON.stringify(st));
  },
);

test(
  'a change sends nothing to streams subscribed elsewhere (SotW and Delta, ' + 'explicit names and wildcard)',
  async () => {
    const routes = [routeConfig('r1', 'c1'), routeConfig('r2', 'c2')];
    const listeners = [listener('l1', 'r1'), listener('l2', 'r2')];
    const clusters = [cluster('c1'), cluster('c2')];
    const set = (over: Partial<ResourceSet> = {}): ResourceSet =>
      baseSet({ routes, listeners, clusters, endpoints: [cla('c1'), cla('c2')], ...over });
    const e = await env(set());
    const sotw1 = e.client();
    const sotw2 = e.client();
    const delta1 = e.client({ mode: 'delta' });
    const delta2 = e.client({ mode: 'delta' });
    const wild = e.client({ mode: 'delta' });
    sotw1.request(RDS, ['r1']);
    sotw2.request(RDS, ['r2']);
    sotw1.ack(await sotw1.nextSotw(), ['r1']);
    sotw2.ack(await sotw2.nextSotw(), ['r2']);
    delta1.subscribe(RDS, ['r1']);
    delta2.subscribe(RDS, ['r2']);
    delta1.ackDelta(await delta1.nextDelta());
    delta2.ackDelta(await delta2.nextDelta());
    wild.subscribe(CDS, []);
    wild.ackDelta(await wild.nextDelta());
    // r2 changes: only the r2 subscribers hear about it.
    e.publish(set({ routes: [routeConfig('r1', 'c1'), routeConfig('r2', 'c2', '/v2')] }));
    const s2 = await sotw2.nextSotw();
    assert.deepEqual(responseNames(s2), ['r2']);
    const d2 = await delta2.nextDelta();
    assert.deepEqual(
      d2.resources.map((x) => x.name),
      ['r2'],
    );
    await Promise.all([sotw1.expectNone(200), delta1.expectNone(200), wild.expectNone(200)]);
    // An endpoint change reaches neither RDS subscriber nor the CDS wildcard.
    e.publish(
      set({
        routes: [routeConfig('r1', 'c1'), routeConfig('r2', 'c2', '/v2')],
        endpoints: [cla('c1', '10.9.9.9'), cla('c2')],
      }),
    );
    await Promise.all([
      sotw1.expectNone(200),
      sotw2.expectNone(0),
      delta1.expectNone(0),
      delta2.expectNone(0),
      wild.expectNone(0),
    ]);
    // A new cluster reaches the wildcard subscriber only, as that one resource.
    e.publish(
      set({
        clusters: [...clusters, cluster('c3')],
        endpoints: [cla('c1'), cla('c2'), cla('c3')],
        routes: [routeConfig('r1', 'c1'), routeConfig('r2', 'c2', '/v2')],
      }),
    );
    const w = await wild.nextDelta();
    assert.deepEqual(
      w.resources.map((x) => x.name),
      ['c3'],
    );
    await Promise.all([sotw1.expectNone(150), delta1.expectNone(0)]);
    for (const c of [sotw1, sotw2, delta1, delta2, wild]) assertProtocol(c);
  },
);

test('gRPC: a name answered on demand (resolver) is re-evaluated on every change', async () => {
  const e = await env(baseSet());
  let prefix = 'a';
  const resolver: Resolver = (kind, name) =>
    kind === 'listener' && name.endsWith('.wild.example.com')
      ? apiListener(name, `r${prefix === 'a' ? 1 : 2}`)
      : undefined;
  const grpcSet = (): ResourceSet =>
    baseSet({
      listeners: [apiListener('svc.example.com:443', 'r1')],
      routes: [routeConfig('r1', 'c1'), routeConfig('r2', 'c1')],
    });
  e.publish(grpcSet(), 'grpc', resolver);
  const c = e.client({ mode: 'delta', node: { userAgentName: 'gRPC Node.js' } });
  c.subscribe(LDS, ['x.wild.example.com']);
  const r = await c.nextDelta();
  assert.deepEqual(
    r.resources.map((x) => x.name),
    ['x.wild.example.com'],
  );
  c.ackDelta(r);
  prefix = 'b'; // same maps, different on-demand answer
  e.publish(grpcSet(), 'grpc', resolver);
  const r2 = await c.nextDelta();
  assert.deepEqual(
    r2.resources.map((x) => x.name),
    ['x.wild.example.com'],
  );
  assert.notEqual(r2.resources[0]!.version, r.resources[0]!.version);
});
