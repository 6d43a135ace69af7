// Hostile xDS input: random DiscoveryRequests / DeltaDiscoveryRequests (bad type URLs, unknown
// names, huge name lists, bogus nonces and versions, bogus initial_resource_versions, NACKs out
// of nowhere) and raw garbage bytes against the real AdsServer over gRPC (ADS and SDS, SotW and
// Delta). Properties: every stream either gets well-formed responses or ends with a clean gRPC
// status; the server never crashes; a canary Envoy-like stream stays connected throughout and
// still receives the next update; the server logs no internal error.
import { afterAll, beforeAll, test } from 'vitest';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import fc from 'fast-check';
import pino from 'pino';
import { Writable } from 'node:stream';
import { lookupType, TYPE_URLS, type ProtoObject } from '../proto/loader.js';
import { startXdsServer, type XdsServerHandle } from '../src/xds/server/server.js';
import { SnapshotCache } from '../src/xds/cache.js';
import { buildSnapshot, VersionSource } from '../src/xds/snapshot.js';
import type { ResourceSet } from '../src/xds/types.js';
import { AdsClient, protocolViolations } from './helpers/ads-client.js';
import { params } from './helpers/fuzz.js';

const HCM = 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager';
const ROUTER = 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router';

function set(gen: number): ResourceSet {
  const clusters: ProtoObject[] = [];
  const endpoints: ProtoObject[] = [];
  for (let i = 0; i < 5; i++) {
    clusters.push({
      name: `c${i}`,
      type: 'EDS',
      edsClusterConfig: { edsConfig: { ads: {}, resourceApiVersion: 'V3' } },
      connectTimeout: { seconds: 1 + gen },
    });
    endpoints.push({
      clusterName: `c${i}`,
      endpoints: [
        {
          locality: {},
          loadBalancingWeight: { value: 1 },
          lbEndpoints: [{ endpoint: { address: { socketAddress: { address: '10.0.0.1', portValue: 8000 + i } } } }],
        },
      ],
    });
  }
  return {
    listeners: [
      {
        name: 'l1',
        address: { socketAddress: { address: '0.0.0.0', portValue: 8080 } },
        filterChains: [
          {
            filters: [
              {
                name: 'envoy.filters.network.http_connection_manager',
                typedConfig: {
                  '@type': HCM,
                  statPrefix: 'http',
                  rds: { configSource: { ads: {}, resourceApiVersion: 'V3' }, routeConfigName: 'r1' },
                  httpFilters: [{ name: 'envoy.filters.http.router', typedConfig: { '@type': ROUTER } }],
                },
              },
            ],
          },
        ],
      },
    ],
    routes: [
      {
        name: 'r1',
        virtualHosts: [{ name: 'vh', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster: 'c0' } }] }],
      },
    ],
    clusters,
    endpoints,
    secrets: [
      {
        name: 's1',
        tlsCertificate: { certificateChain: { inlineString: 'CERT' }, privateKey: { inlineString: 'KEY' } },
      },
    ],
  };
}

const cache = new SnapshotCache();
const versions = new VersionSource();
let gen = 0;
function publish(): void {
  gen++;
  cache.set('envoy', buildSnapshot('envoy', versions.next(), set(gen)));
}

/** Server log lines at level >= error (an internal failure, not a rejected request). */
const internalErrors: string[] = [];
const logSink = new Writable({
  write(chunk: Buffer, _enc, cb) {
    for (const line of chunk.toString().split('\n')) {
      if (!line) continue;
      const o = JSON.parse(line) as { level: number };
      if (o.level >= 50) internalErrors.push(line);
    }
    cb();
  },
});

let handle: XdsServerHandle;
let channel: grpc.Client;
let canary: AdsClient;
let unhandled = 0;
const onUnhandled = (): void => {
  unhandled++;
};

beforeAll(async () => {
  process.on('unhandledRejection', onUnhandled);
  publish();
  handle = await startXdsServer('127.0.0.1', 0, { cache, logger: pino({ level: 'warn' }, logSink), maxNames: 10_000 });
  channel = new grpc.Client(`127.0.0.1:${handle.port}`, grpc.credentials.createInsecure());
  canary = new AdsClient(handle.port, { node: { id: 'canary' } });
  await canary.syncLikeEnvoy();
});
afterAll(async () => {
  process.off('unhandledRejection', onUnhandled);
  canary.close();
  channel.close();
  await handle.stop(200);
});

const DiscoveryRequest = lookupType('envoy.service.discovery.v3.DiscoveryRequest');
const DeltaDiscoveryRequest = lookupType('envoy.service.discovery.v3.DeltaDiscoveryRequest');
const DiscoveryResponse = lookupType('envoy.service.discovery.v3.DiscoveryResponse');
const DeltaDiscoveryResponse = lookupType('envoy.service.discovery.v3.DeltaDiscoveryResponse');

const METHODS = {
  'ads-sotw': '/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources',
  'ads-delta': '/envoy.service.discovery.v3.AggregatedDiscoveryService/DeltaAggregatedResources',
  'sds-sotw': '/envoy.service.secret.v3.SecretDiscoveryService/StreamSecrets',
  'sds-delta': '/envoy.service.secret.v3.SecretDiscoveryService/DeltaSecrets',
} as const;
type Method = keyof typeof METHODS;

const typeUrlArb = fc.oneof(
  fc.constantFrom(...Object.values(TYPE_URLS)),
  fc.constantFrom(
    '',
    'type.googleapis.com/envoy.config.listener.v3.Listener ',
    'type.googleapis.com/envoy.api.v2.Listener',
    'type.googleapis.com/google.protobuf.Empty',
    'Listener',
    '*',
  ),
  fc.string({ maxLength: 30 }),
);
const nameArb = fc.oneof(
  fc.constantFrom('l1', 'r1', 'c0', 'c4', 's1', '*', '', 'missing', 'xdstp://x/y', 'default/s1', 'c0\u0000'),
  fc.string({ maxLength: 20 }),
);
const namesArb = fc.oneof(
  { weight: 8, arbitrary: fc.array(nameArb, { maxLength: 8 }) },
  // huge lists: around and above the 10,000 names limit
  {
    weight: 1,
    arbitrary: fc.integer({ min: 9_990, max: 10_020 }).map((n) => Array.from({ length: n }, (_x, i) => `n${i}`)),
  },
);
const nonceArb = fc.oneof(
  fc.constantFrom('', '1', '2', '3', '0', '-1', '99999999999999999999', 'nonce'),
  fc.string({ maxLength: 10 }),
);
const nodeArb = fc.option(
  fc.record({
    id: fc.string({ maxLength: 10 }),
    cluster: fc.string({ maxLength: 5 }),
    userAgentName: fc.constantFrom('envoy', 'gRPC Node', 'grpc-c', '', 'x'),
    metadata: fc.option(
      fc.record({
        fields: fc.dictionary(
          fc.constantFrom('OXDS_NODE_TYPE', 'x'),
          fc.record({ stringValue: fc.constantFrom('grpc', 'envoy', 'GRPC', '', 'other') }),
        ),
      }),
      { nil: undefined },
    ),
  }),
  { nil: undefined },
);
const errorDetailArb = fc.option(
  fc.record({ code: fc.integer({ min: 0, max: 20 }), message: fc.string({ maxLength: 50 }) }),
  { nil: undefined },
);

const sotwArb = fc.record({
  node: nodeArb,
  typeUrl: typeUrlArb,
  resourceNames: namesArb,
  responseNonce: nonceArb,
  versionInfo: fc.oneof(fc.constantFrom('', 'x', '1-1'), fc.string({ maxLength: 10 })),
  errorDetail: errorDetailArb,
});
const deltaArb = fc.record({
  node: nodeArb,
  typeUrl: typeUrlArb,
  resourceNamesSubscribe: namesArb,
  resourceNamesUnsubscribe: fc.array(nameArb, { maxLength: 5 }),
  initialResourceVersions: fc.oneof(
    fc.dictionary(nameArb, fc.string({ maxLength: 8 }), { maxKeys: 6 }),
    fc
      .integer({ min: 9_999, max: 10_010 })
      .map((n) => Object.fromEntries(Array.from({ length: n }, (_x, i) => [`n${i}`, 'v']))),
  ),
  responseNonce: nonceArb,
  errorDetail: errorDetailArb,
});

type Msg =
  | { kind: 'sotw'; req: Record<string, unknown> }
  | { kind: 'delta'; req: Record<string, unknown> }
  | { kind: 'raw'; bytes: Uint8Array };
const msgArb: fc.Arbitrary<Msg> = fc.oneof(
  { weight: 4, arbitrary: sotwArb.map((req) => ({ kind: 'sotw' as const, req })) },
  { weight: 4, arbitrary: deltaArb.map((req) => ({ kind: 'delta' as const, req })) },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 200 }).map((bytes) => ({ kind: 'raw' as const, bytes })) },
);

function encode(m: Msg): Buffer {
  if (m.kind === 'raw') return Buffer.from(m.bytes);
  const T = m.kind === 'sotw' ? DiscoveryRequest : DeltaDiscoveryRequest;
  return Buffer.from(T.encode(T.fromObject(m.req)).finish());
}

const id = (b: Buffer): Buffer => b;

/** Opens one stream, writes the messages, collects what comes back for a short while, then ends it. */
/**
 * Writes `msgs` on a new stream and collects what comes back. Random fuzz streams are cancelled
 * after a short look; with `awaitEnd` the server's own status is awaited (no wall-clock race).
 */
async function exchange(
  method: Method,
  msgs: Msg[],
  awaitEnd = false,
): Promise<{ responses: Buffer[]; status?: grpc.StatusObject }> {
  const call = channel.makeBidiStreamRequest(METHODS[method], id, id);
  const responses: Buffer[] = [];
  let status: grpc.StatusObject | undefined;
  call.on('data', (b: Buffer) => responses.push(b));
  call.on('error', () => undefined);
  const ended = new Promise<void>((resolve) =>
    call.on('status', (s: grpc.StatusObject) => {
      status = s;
      resolve();
    }),
  );
  for (const m of msgs) call.write(encode(m));
  await Promise.race([ended, new Promise((r) => setTimeout(r, awaitEnd ? 120_000 : 25))]);
  if (!status) {
    call.cancel();
    await Promise.race([ended, new Promise((r) => setTimeout(r, 500))]);
  }
  return { responses, ...(status ? { status } : {}) };
}

const ALLOWED_END = new Set([
  grpc.status.OK,
  grpc.status.CANCELLED,
  grpc.status.INVALID_ARGUMENT,
  grpc.status.INTERNAL,
  grpc.status.RESOURCE_EXHAUSTED,
]);

test(
  'fuzz ADS: random requests and garbage get clean answers or clean errors; ' + 'other streams keep serving',
  async () => {
    let ended = 0;
    let answered = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom<Method>('ads-sotw', 'ads-delta', 'sds-sotw', 'sds-delta'),
        fc.array(msgArb, { minLength: 1, maxLength: 4 }),
        async (method, msgs) => {
          const { responses, status } = await exchange(method, msgs);
          if (status && status.code !== grpc.status.CANCELLED) ended++;
          if (responses.length) answered++;
          if (status && !ALLOWED_END.has(status.code))
            throw new Error(`unexpected status ${status.code} ${status.details}`);
          // Internal errors are for broken requests that cannot even be decoded (grpc-js' deserializer), never for
          // decoded ones.
          if (
            status?.code === grpc.status.INTERNAL &&
            !msgs.some((m) => m.kind === 'raw' || (method.endsWith('sotw') ? m.kind === 'delta' : m.kind === 'sotw'))
          ) {
            throw new Error(`INTERNAL for well-formed requests: ${status.details}`);
          }
          const Resp = method.endsWith('sotw') ? DiscoveryResponse : DeltaDiscoveryResponse;
          const decoded = responses.map(
            (b) =>
              Resp.toObject(Resp.decode(b), { arrays: true }) as {
                typeUrl: string;
                nonce: string;
                versionInfo?: string;
                systemVersionInfo?: string;
                resources: unknown[];
              },
          );
          const v = protocolViolations(decoded as never);
          if (v.length) throw new Error(v.join('; '));
          for (const r of decoded) {
            if (!(Object.values(TYPE_URLS) as string[]).includes(r.typeUrl))
              throw new Error(`response with type ${r.typeUrl}`);
            if (method.startsWith('sds') && r.typeUrl !== TYPE_URLS.secret)
              throw new Error(`SDS answered ${r.typeUrl}`);
          }
          if (canary.status) throw new Error(`the canary stream ended: ${canary.status.code} ${canary.status.details}`);
        },
      ),
      params(500),
    );
    assert.ok(answered > 0, 'some fuzzed streams got answers (the generator reaches the serving paths)');
    assert.ok(ended > 0, 'some fuzzed streams were refused (the generator reaches the error paths)');
    // The canary is still connected and receives the next change.
    await canary.expectNone(50).catch(() => undefined);
    publish();
    const r = await canary.nextSotw(2000);
    assert.equal(r.typeUrl, TYPE_URLS.cluster);
    assert.equal(canary.status, undefined);
    assert.deepEqual(
      internalErrors.filter((l) => !l.includes('"code":"INTERNAL"') || !l.includes('closing xDS stream')),
      [],
      'no internal error logged',
    );
    assert.equal(unhandled, 0);
    assert.ok(handle.ads.statuses().length >= 1);
  },
);

test('fuzz ADS: a huge name list is refused with INVALID_ARGUMENT, not served', async () => {
  const names = Array.from({ length: 10_001 }, (_x, i) => `n${i}`);
  const { status, responses } = await exchange(
    'ads-sotw',
    [{ kind: 'sotw', req: { typeUrl: TYPE_URLS.cluster, resourceNames: names } }],
    true,
  );
  assert.equal(responses.length, 0);
  assert.equal(status?.code, grpc.status.INVALID_ARGUMENT);
  const d = await exchange(
    'ads-delta',
    [
      {
        kind: 'delta',
        req: { typeUrl: TYPE_URLS.endpoint, initialResourceVersions: Object.fromEntries(names.map((n) => [n, 'v'])) },
      },
    ],
    true,
  );
  assert.equal(d.status?.code, grpc.status.INVALID_ARGUMENT);
});
