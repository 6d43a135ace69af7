// Table tests of the xDS builders and of translate(), comparing whole messages.
import { test } from 'vitest';
import assert from 'node:assert/strict';
import type { Descriptor, Model } from '../src/model/types.js';
import { translate, grpcListenerFor, hostRelation, envoyDomain, endpointWeights } from '../src/xds/translate.js';
import * as names from '../src/xds/names.js';
import {
  pathMatch,
  pathRewrite,
  retryPolicy,
  authorityRegex,
  hashPolicy,
  hostRewrite,
  headerMutations,
} from '../src/xds/resources/route.js';
import { clusterLoadAssignment } from '../src/xds/resources/endpoint.js';
import { lbPolicy, outlierDetection, upstreamTls } from '../src/xds/resources/cluster.js';
import { httpConnectionManager } from '../src/xds/resources/hcm.js';
import { encodeObject, TYPE_URLS, type ProtoObject } from '../proto/loader.js';
import { CLIENT_CONFIG, descriptorModel as descriptor, dnsTarget, ipTarget, model } from './fixtures/index.js';

function routesOf(rc: ProtoObject | undefined, vhost: string): ProtoObject[] {
  const vhosts = (rc?.virtualHosts ?? []) as ProtoObject[];
  const v = vhosts.find((x) => x.name === vhost);
  return (v?.routes ?? []) as ProtoObject[];
}

test('names: cluster names carry the descriptor id and an 8-hex hash of their settings', () => {
  const n = names.clusterName('svc-1', { a: 1, b: [2] });
  assert.match(n, /^oxds~svc-1~[0-9a-f]{8}$/);
  assert.equal(names.clusterName('svc-1', { b: [2], a: 1 }), n, 'key order does not change the hash');
  assert.notEqual(names.clusterName('svc-1', { a: 2, b: [2] }), n);
  assert.equal(names.statPrefix('oxds-grpc-foo.example.com:50051'), 'oxds_grpc_foo_example_com_50051');
});

test('pathMatch: one table for every path type and node kind', () => {
  const table: [Parameters<typeof pathMatch>[0], 'http' | 'grpc', ProtoObject][] = [
    [undefined, 'http', { prefix: '/' }],
    [{ value: '/api', type: 'PlainPrefix' }, 'http', { prefix: '/api' }],
    [{ value: '/api', type: 'Exact' }, 'grpc', { path: '/api' }],
    [{ value: '/api/', type: 'Prefix' }, 'http', { pathSeparatedPrefix: '/api' }],
    [{ value: '/', type: 'Prefix' }, 'http', { prefix: '/' }],
    [{ value: '/a.b', type: 'Prefix' }, 'grpc', { safeRegex: { regex: '^/a\\.b(/.*)?$' } }],
  ];
  for (const [p, v, want] of table) assert.deepEqual(pathMatch(p, v), want, JSON.stringify(p));
});

test('pathRewrite replicates Otoroshi stripPath/root, including the // edge case', () => {
  const P = (value: string, type: 'PlainPrefix' | 'Prefix' | 'Exact' = 'PlainPrefix') => ({ value, type });
  const table: [Parameters<typeof pathRewrite>[0], string, boolean, ProtoObject | undefined][] = [
    [undefined, '/', true, undefined],
    [undefined, '/v1/', true, { prefixRewrite: '/v1/' }],
    [P('/api'), '/', true, { prefixRewrite: '/' }], // /api/x → //x as Otoroshi does
    [P('/api/'), '/', true, { prefixRewrite: '/' }], // /api/x → /x
    [P('/api'), '/', false, undefined], // /api/x → /api/x
    [P('/api'), '/v1/', false, { prefixRewrite: '/v1/api' }], // root + rawUri
    [P('/api'), '/backend', true, { prefixRewrite: '/backend' }],
    [P('/api'), '/api', true, undefined],
    [P('/api/', 'Prefix'), '/v2/', true, { regexRewrite: { pattern: { regex: '^/api/?' }, substitution: '/v2/' } }],
    [P('/api', 'Exact'), '/other', true, { prefixRewrite: '/other' }],
    [P('/api'), '', true, { regexRewrite: { pattern: { regex: '^/api' }, substitution: '' } }],
  ];
  for (const [p, root, strip, want] of table)
    assert.deepEqual(pathRewrite(p, root, strip), want, `${JSON.stringify(p)} root=${root} strip=${strip}`);
});

test('retryPolicy: retries are total attempts; none without the circuit breaker', () => {
  assert.equal(retryPolicy({ ...CLIENT_CONFIG, retries: 1 }, 'http'), undefined);
  assert.equal(retryPolicy({ ...CLIENT_CONFIG, retries: 3, useCircuitBreaker: false }, 'http'), undefined);
  assert.deepEqual(retryPolicy({ ...CLIENT_CONFIG, retries: 4, callTimeout: 1500 }, 'http'), {
    retryOn: 'connect-failure,refused-stream,reset,gateway-error',
    numRetries: { value: 3 },
    perTryTimeout: { seconds: 1, nanos: 500_000_000 },
    retryBackOff: { baseInterval: { seconds: 0, nanos: 50_000_000 }, maxInterval: { seconds: 0, nanos: 200_000_000 } },
  });
  assert.equal(retryPolicy({ ...CLIENT_CONFIG, retries: 2 }, 'grpc')?.retryOn, 'unavailable');
});

test('host patterns: Envoy domains, relations and the :authority regex', () => {
  assert.equal(envoyDomain('api.example.com'), 'api.example.com');
  assert.equal(envoyDomain('*.example.com'), '*.example.com');
  assert.equal(envoyDomain('api.*'), 'api.*');
  assert.equal(envoyDomain('api.*.example.com'), '*');
  assert.equal(envoyDomain('*.api.*'), '*');
  assert.equal(authorityRegex(['api.*.ex.com']), '^[aA][pP][iI]\\..*\\.[eE][xX]\\.[cC][oO][mM](:[0-9]+)?$');
  assert.equal(authorityRegex(['a.*.c', 'b-1.*.o']), '^(?:[aA]\\..*\\.[cC]|[bB]-1\\..*\\.[oO])(:[0-9]+)?$');
  // Case-insensitive as Envoy's domain match: the regex accepts any case of the pattern's letters.
  assert.ok(new RegExp(authorityRegex(['api.*.ex.com'])).test('API.x.Ex.COM:8080'));
  const table: [string, string, 'all' | 'some' | 'none'][] = [
    ['*', 'a.example.com', 'all'],
    ['*.example.com', 'a.b.example.com', 'all'],
    ['*.example.com', '*.b.example.com', 'all'],
    ['a.example.com', 'b.example.com', 'none'],
    ['a.*.com', 'a.example.com', 'all'],
    ['a.*.com', '*', 'some'],
    ['a.example.com', '*.example.com', 'some'],
    ['a.example.org', '*.example.com', 'none'],
    ['api.*.example.com', 'internal.*', 'none'],
    ['api.*.example.com', '*.example.com', 'some'],
  ];
  for (const [p, v, want] of table) assert.equal(hostRelation(p, v), want, `${p} vs ${v}`);
});

test('endpointWeights: target weights hold whatever the endpoint counts', () => {
  assert.deepEqual(
    endpointWeights([
      { weight: 3, count: 1 },
      { weight: 1, count: 1 },
    ]),
    [3, 1],
  );
  assert.deepEqual(
    endpointWeights([
      { weight: 3, count: 2 },
      { weight: 1, count: 3 },
    ]),
    [9, 2],
  );
});

test('clusterLoadAssignment: one locality per target, weights on localities and endpoints, unready = UNHEALTHY', () => {
  assert.deepEqual(
    clusterLoadAssignment('c', [
      { targetId: 't1', weight: 1, endpointWeight: 1, addresses: [{ address: '10.0.0.2', port: 80, ready: false }] },
      { targetId: 't0', weight: 3, endpointWeight: 3, addresses: [{ address: '10.0.0.1', port: 80, ready: true }] },
      { targetId: 't2', weight: 1, endpointWeight: 1, addresses: [] },
    ]),
    {
      clusterName: 'c',
      endpoints: [
        {
          locality: { subZone: 't0' },
          lbEndpoints: [
            {
              endpoint: { address: { socketAddress: { address: '10.0.0.1', portValue: 80 } } },
              loadBalancingWeight: { value: 3 },
            },
          ],
          loadBalancingWeight: { value: 3 },
        },
        {
          locality: { subZone: 't1' },
          lbEndpoints: [
            {
              endpoint: { address: { socketAddress: { address: '10.0.0.2', portValue: 80 } } },
              healthStatus: 'UNHEALTHY',
              loadBalancingWeight: { value: 1 },
            },
          ],
          loadBalancingWeight: { value: 1 },
        },
      ],
    },
  );
});

test('cluster parts: lb policies per DECISIONS 10, outlier detection, upstream TLS', () => {
  assert.equal(lbPolicy('Sticky', false), 'RING_HASH');
  assert.equal(lbPolicy('BestResponseTime', false), 'LEAST_REQUEST');
  assert.equal(lbPolicy('Random', true), 'ROUND_ROBIN');
  assert.equal(lbPolicy('IpAddressHash', true), 'RING_HASH');
  assert.deepEqual(outlierDetection({ ...CLIENT_CONFIG, maxErrors: 5, sampleInterval: 3000 }), {
    consecutive_5xx: { value: 5 },
    interval: { seconds: 3 },
    baseEjectionTime: { seconds: 3 },
    maxEjectionPercent: { value: 100 },
    enforcingSuccessRate: { value: 0 },
  });
  assert.equal(outlierDetection({ ...CLIENT_CONFIG, useCircuitBreaker: false }), undefined);
  assert.equal(upstreamTls([], false), undefined);
  assert.deepEqual(Object.keys(upstreamTls(['a.com'], true) ?? {}), ['transportSocket']);
  assert.deepEqual(Object.keys(upstreamTls(['a.com'], false) ?? {}), ['transportSocketMatches']);
  assert.deepEqual(hashPolicy('IpAddressHash'), [{ connectionProperties: { sourceIp: true } }]);
});

test('hostRewrite and header mutations', () => {
  assert.equal(hostRewrite(descriptor('a')), undefined);
  assert.deepEqual(hostRewrite(descriptor('a', { overrideHost: true, targets: [dnsTarget('t0', 'b.internal')] })), {
    hostRewriteLiteral: 'b.internal',
  });
  assert.deepEqual(
    hostRewrite(descriptor('a', { overrideHost: true, targets: [dnsTarget('t0', 'b'), dnsTarget('t1', 'c')] })),
    { autoHostRewrite: { value: true } },
  );
  assert.deepEqual(
    headerMutations(
      descriptor('a', {
        additionalHeaders: { 'X-B': '2', 'X-A': '1' },
        missingOnlyHeadersIn: { 'X-C': '3' },
        removeHeadersOut: ['server'],
      }),
    ),
    {
      requestHeadersToAdd: [
        { header: { key: 'X-A', value: '1' }, appendAction: 'OVERWRITE_IF_EXISTS_OR_ADD' },
        { header: { key: 'X-B', value: '2' }, appendAction: 'OVERWRITE_IF_EXISTS_OR_ADD' },
        { header: { key: 'X-C', value: '3' }, appendAction: 'ADD_IF_ABSENT' },
      ],
      responseHeadersToRemove: ['server'],
    },
  );
});

test('HCM: router filter with typed_config, RDS over ADS', () => {
  assert.deepEqual(httpConnectionManager('oxds_http', 'oxds-http'), {
    '@type': 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager',
    statPrefix: 'oxds_http',
    codecType: 'AUTO',
    rds: { configSource: { ads: {}, resourceApiVersion: 'V3' }, routeConfigName: 'oxds-http' },
    httpFilters: [
      {
        name: 'envoy.filters.http.router',
        typedConfig: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router' },
      },
    ],
    normalizePath: { value: true },
    mergeSlashes: true,
    pathWithEscapedSlashesAction: 'REJECT_REQUEST',
    stripAnyHostPort: true,
    serverHeaderTransformation: 'PASS_THROUGH',
    httpProtocolOptions: { acceptHttp_10: true },
    useRemoteAddress: { value: true },
  });
});

test('translate: a basic descriptor gives listener, routes, EDS cluster and endpoints for both node kinds', () => {
  const out = translate(model([descriptor('basic', { paths: [{ value: '/api', type: 'PlainPrefix' }] })]));
  assert.deepEqual(out.errors, []);
  const cluster = out.envoy.clusters[0];
  assert.ok(cluster);
  const cname = String(cluster.name);
  assert.deepEqual(cluster, {
    name: cname,
    connectTimeout: { seconds: 10 },
    lbPolicy: 'ROUND_ROBIN',
    outlierDetection: {
      consecutive_5xx: { value: 20 },
      interval: { seconds: 2 },
      baseEjectionTime: { seconds: 2 },
      maxEjectionPercent: { value: 100 },
      enforcingSuccessRate: { value: 0 },
    },
    // Otoroshi has no per-service cap; an ejected target never gets traffic (no panic routing).
    circuitBreakers: {
      thresholds: [
        {
          maxConnections: { value: 1_000_000 },
          maxPendingRequests: { value: 1_000_000 },
          maxRequests: { value: 1_000_000 },
          maxRetries: { value: 1_000_000 },
        },
      ],
    },
    commonLbConfig: { healthyPanicThreshold: { value: 0 } },
    type: 'EDS',
    edsClusterConfig: { edsConfig: { ads: {}, resourceApiVersion: 'V3' }, serviceName: cname },
  });
  assert.deepEqual(routesOf(out.envoy.routes[0], 'basic.example.com'), [
    {
      name: 'basic/0',
      match: { prefix: '/api' },
      route: { cluster: cname, timeout: { seconds: 30 }, idleTimeout: { seconds: 60 }, prefixRewrite: '/' },
      // Otoroshi never forwards (without xForwardedHeaders) X-Forwarded-*; the rest is the route
      // configuration's, the headers back (sendOtoroshiHeadersBack) included.
      requestHeadersToRemove: ['x-forwarded-for', 'x-forwarded-host', 'x-forwarded-proto'],
    },
    {
      name: 'oxds-not-found',
      match: { prefix: '/' },
      directResponse: { status: 404, body: { inlineString: '{"Otoroshi-Error":"Service not found"}' } },
      // Otoroshi's own answers never carry the route configuration's headers back.
      responseHeadersToRemove: ['otoroshi-proxy-latency', 'otoroshi-request-id', 'otoroshi-request-timestamp'],
      responseHeadersToAdd: [
        { header: { key: 'Content-Type', value: 'application/json' }, appendAction: 'OVERWRITE_IF_EXISTS_OR_ADD' },
        { header: { key: 'Otoroshi-Error', value: 'true' }, appendAction: 'OVERWRITE_IF_EXISTS_OR_ADD' },
        {
          header: { key: 'Otoroshi-Error-Msg', value: 'Service not found' },
          appendAction: 'OVERWRITE_IF_EXISTS_OR_ADD',
        },
      ],
    },
  ]);
  assert.deepEqual(out.grpcDomains, ['basic.example.com']);
  assert.deepEqual(
    out.grpc.listeners.map((l) => l.name),
    ['basic.example.com'],
  );
  assert.deepEqual(
    out.envoy.listeners.map((l) => l.name),
    ['oxds-http'],
  );
  assert.deepEqual((out.grpc.routes[0]?.virtualHosts as ProtoObject[])[0]?.domains, [
    'basic.example.com',
    'basic.example.com:*',
  ]);
  // Otoroshi's headers of every forwarded request, and back: once per Envoy route configuration, before
  // each route's own; none on the proxyless gRPC ones.
  const { name: _n, virtualHosts: _v, ...shared } = out.envoy.routes[0] as ProtoObject;
  const value = (key: string, v: string) => ({ header: { key, value: v }, appendAction: 'OVERWRITE_IF_EXISTS_OR_ADD' });
  assert.deepEqual(shared, {
    responseHeadersToAdd: [
      value('Otoroshi-Request-Id', '%REQ(X-REQUEST-ID)%'),
      value('Otoroshi-Request-Timestamp', '%START_TIME(%Y-%m-%dT%H:%M:%S.%3f%z)%'),
      value('Otoroshi-Proxy-Latency', '%RESPONSE_DURATION%'),
    ],
    requestHeadersToAdd: [
      value('Otoroshi-Proxied-Host', '%REQ(:AUTHORITY)%'),
      value('Otoroshi-Request-Id', '%REQ(X-REQUEST-ID)%'),
      value('Otoroshi-Request-Timestamp', '%START_TIME(%Y-%m-%dT%H:%M:%S.%3f%z)%'),
    ],
    // Otoroshi never forwards apikey credentials nor its own state/claim headers.
    requestHeadersToRemove: [
      'otoroshi-authorization',
      'otoroshi-claim',
      'otoroshi-client-id',
      'otoroshi-client-secret',
      'otoroshi-state',
    ],
    mostSpecificHeaderMutationsWins: true,
  });
  assert.deepEqual(Object.keys(out.grpc.routes[0] as ProtoObject).sort(), ['name', 'virtualHosts']);
});

test('translate: every emitted resource encodes with the real protos', () => {
  const out = translate(
    model(
      [
        descriptor('a', {
          hosts: ['api.*.example.com', '*.example.com', 'a.example.com'],
          loadBalancing: 'Sticky',
          overrideHost: true,
          targets: [dnsTarget('t0', 'a.internal', 443, 3, { scheme: 'https' }), ipTarget('t1', '10.0.0.9', 80, 1)],
        }),
        descriptor('b', {
          paths: [{ value: '/x/', type: 'Prefix' }],
          maintenanceMode: true,
          clientConfig: { ...CLIENT_CONFIG, retries: 3 },
        }),
      ],
      {
        certificates: [
          {
            secretName: 'default/tls',
            sourceKey: 'Secret/default/tls',
            certificateChain: 'C',
            privateKey: 'K',
            dnsNames: ['a.example.com'],
          },
        ],
        tls: [{ secretName: 'default/tls', serverNames: ['a.example.com'] }],
      },
    ),
  );
  assert.deepEqual(out.errors, []);
  for (const set of [out.envoy, out.grpc]) {
    for (const l of set.listeners) encodeObject(TYPE_URLS.listener, l);
    for (const r of set.routes) encodeObject(TYPE_URLS.route, r);
    for (const c of set.clusters) encodeObject(TYPE_URLS.cluster, c);
    for (const e of set.endpoints) encodeObject(TYPE_URLS.endpoint, e);
    for (const s of set.secrets) encodeObject(TYPE_URLS.secret, s);
  }
  assert.deepEqual(
    out.envoy.listeners.map((l) => l.name),
    ['oxds-http', 'oxds-https'],
  );
  assert.deepEqual(
    out.envoy.secrets.map((s) => s.name),
    ['default/tls'],
  );
  assert.deepEqual(out.grpc.secrets, []);
});

test('translate: longest prefix first across descriptors sharing a host; catch-all last', () => {
  const out = translate(
    model([
      descriptor('short', { hosts: ['shared.example.com'], paths: [{ value: '/api', type: 'PlainPrefix' }] }),
      descriptor('all', { hosts: ['shared.example.com'] }),
      descriptor('long', { hosts: ['shared.example.com'], paths: [{ value: '/api/v2', type: 'PlainPrefix' }] }),
      descriptor('exact', { hosts: ['shared.example.com'], paths: [{ value: '/api', type: 'Exact' }] }),
    ]),
  );
  assert.deepEqual(
    routesOf(out.envoy.routes[0], 'shared.example.com').map((r) => r.name),
    ['long/0', 'exact/0', 'short/0', 'all/all', 'oxds-not-found'],
  );
});

test(
  'translate: a wildcard-in-the-middle host goes to the * vhost with an :authority ' +
    'regex, and into vhosts it overlaps',
  () => {
    const out = translate(
      model([
        descriptor('mid', { hosts: ['api.*.example.com'] }),
        descriptor('concrete', { hosts: ['api.eu.example.com'], paths: [{ value: '/x', type: 'PlainPrefix' }] }),
      ]),
    );
    const star = routesOf(out.envoy.routes[0], '*');
    assert.deepEqual((star[0]?.match as ProtoObject).headers, [
      { name: ':authority', stringMatch: { safeRegex: { regex: authorityRegex(['api.*.example.com']) } } },
    ]);
    // Otoroshi ranks by path before host: /x of `concrete` first, then `mid` (which matches that host too).
    assert.deepEqual(
      routesOf(out.envoy.routes[0], 'api.eu.example.com').map((r) => r.name),
      ['concrete/0', 'mid/all', 'oxds-not-found'],
    );
  },
);

test('translate: forceHttps redirects on the HTTP route configuration only', () => {
  const out = translate(
    model([descriptor('secure', { forceHttps: true })], {
      certificates: [
        { secretName: 'ns/c', sourceKey: 'Secret/ns/c', certificateChain: 'C', privateKey: 'K', dnsNames: [] },
      ],
      tls: [{ secretName: 'ns/c', serverNames: ['secure.example.com'] }],
    }),
  );
  const http = out.envoy.routes.find((r) => r.name === 'oxds-http');
  const https = out.envoy.routes.find((r) => r.name === 'oxds-https');
  assert.deepEqual(routesOf(http, 'secure.example.com')[0], {
    name: 'secure/all',
    match: { prefix: '/' },
    redirect: { httpsRedirect: true, responseCode: 'SEE_OTHER' },
    responseHeadersToRemove: ['otoroshi-proxy-latency', 'otoroshi-request-id', 'otoroshi-request-timestamp'],
  });
  assert.ok('route' in (routesOf(https, 'secure.example.com')[0] ?? {}));
  assert.ok('route' in (routesOf(out.grpc.routes[0], 'secure.example.com')[0] ?? {}));
});

test('translate: weights 3:1 with a dns target use weighted clusters summing to total_weight for gRPC', () => {
  const out = translate(
    model([descriptor('w', { targets: [ipTarget('t0', '10.0.0.1', 80, 3), dnsTarget('t1', 'b.internal', 80, 1)] })]),
  );
  const route = routesOf(out.grpc.routes[0], 'w.example.com')[0]?.route as ProtoObject;
  const wc = route.weightedClusters as {
    clusters: { name: string; weight: { value: number } }[];
    totalWeight: { value: number };
  };
  assert.deepEqual(
    wc.clusters.map((c) => c.weight.value),
    [3, 1],
  );
  assert.equal(wc.totalWeight.value, 4);
  assert.deepEqual(
    out.grpc.clusters.map((c) => c.type),
    ['EDS', 'LOGICAL_DNS'],
  );
  assert.deepEqual(
    out.envoy.clusters.map((c) => c.type),
    ['STRICT_DNS'],
  );
  assert.deepEqual(out.envoy.endpoints, []);
});

test('translate: disabled descriptors produce nothing; output is deterministic', () => {
  const ds = [descriptor('b'), descriptor('a', { enabled: false }), descriptor('c', { hosts: ['*.example.com'] })];
  const one = translate(model(ds));
  const two = translate(model([...ds].reverse()));
  assert.deepEqual(one, two);
  assert.deepEqual(one.grpcDomains, ['*.example.com', 'b.example.com']);
});

test('translate: an invalid descriptor is dropped with OXDS_ENVOY_VALIDATION and does not sink the others', () => {
  const bad = descriptor('bad', { additionalHeaders: { 'x-bad\nname': 'v' } });
  const out = translate(model([bad, descriptor('good')]));
  assert.equal(out.errors.length, 1);
  assert.equal(out.errors[0]?.code, 'OXDS_ENVOY_VALIDATION');
  assert.match(out.errors[0]?.message ?? '', /descriptor bad/);
  assert.equal(
    out.errors[0]?.field,
    'routes(http).virtualHosts["bad.example.com"].routes["bad/all"].requestHeadersToAdd[0].header.key',
  );
  assert.equal(out.errors[0]?.name, 'bad');
  assert.deepEqual(
    out.envoy.clusters.map((c) => String(c.name).split('~')[1]),
    ['good'],
  );
});

test('grpcListenerFor answers names whose host matches a pattern, port stripped', () => {
  assert.equal(grpcListenerFor('x.example.com:50051', ['*.example.com'])?.name, 'x.example.com:50051');
  assert.equal(grpcListenerFor('x.example.org', ['*.example.com']), undefined);
  assert.deepEqual(grpcListenerFor('a.b', ['a.b']), {
    name: 'a.b',
    apiListener: {
      apiListener: {
        '@type':
          'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager',
        statPrefix: 'oxds_grpc_a_b',
        rds: { configSource: { ads: {}, resourceApiVersion: 'V3' }, routeConfigName: 'oxds-grpc~a.b' },
        httpFilters: [
          {
            name: 'router',
            typedConfig: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router' },
          },
        ],
      },
    },
  });
});

test('translate: a second descriptor with the same id is dropped (names would collide)', () => {
  const out = translate(
    model([descriptor('dup'), descriptor('dup', { sourceKey: 'Ingress/default/dup', hosts: ['other.example.com'] })]),
  );
  assert.deepEqual(
    out.errors.map((e) => [e.code, e.field]),
    [['OXDS_DUPLICATE_OBJECT', 'id']],
  );
  assert.deepEqual(out.grpcDomains, ['other.example.com'], 'first by sourceKey wins, whatever the input order');
});

// ------------------------------------------------------------------ validate once, incremental, per-host gRPC

import { TranslateCache, encodedBytes } from '../src/xds/translate.js';
import { validateSet } from '../src/pipeline.js';
import type { ConfigError } from '../src/model/types.js';

const TLS_MODEL: Partial<Model> = {
  certificates: [
    { secretName: 'ns/c', sourceKey: 'Secret/ns/c', certificateChain: 'C', privateKey: 'K', dnsNames: [] },
  ],
  tls: [{ secretName: 'ns/c', serverNames: ['secure.example.com'] }],
};

function mixedDescriptors(): Descriptor[] {
  return [
    descriptor('basic', {
      paths: [
        { value: '/api', type: 'PlainPrefix' },
        { value: '/v2/', type: 'Prefix' },
      ],
    }),
    descriptor('secure', { forceHttps: true }),
    descriptor('hdr', {
      hosts: ['basic.example.com'],
      matchingHeaders: [{ name: 'x-v', regex: 'a.*' }],
      additionalHeaders: { 'x-a': '1' },
    }),
    descriptor('mid', { hosts: ['api.*.example.com'] }),
    descriptor('wild', { hosts: ['*.example.com', 'internal.*'], paths: [{ value: '/w', type: 'Exact' }] }),
    descriptor('maint', { maintenanceMode: true }),
    descriptor('w', { targets: [ipTarget('t0', '10.0.0.1', 80, 3), dnsTarget('t1', 'b.internal', 80, 1)] }),
    descriptor('UPPER', { hosts: ['Upper.Example.com'] }),
  ];
}

test('translate: route configuration bytes assembled from encoded virtual hosts equal protobufjs encoding', () => {
  const out = translate(model(mixedDescriptors(), TLS_MODEL));
  assert.deepEqual(out.errors, []);
  const routes = [...out.envoy.routes, ...out.grpc.routes];
  assert.equal(routes.length, 2 + 6); // oxds-http, oxds-https; 5 gRPC hosts + oxds-grpc~*
  for (const rc of routes) {
    const got = encodedBytes(rc);
    assert.ok(got, `${String(rc.name)} has validated bytes`);
    assert.deepEqual(Buffer.from(got), Buffer.from(encodeObject(TYPE_URLS.route, rc)), `${String(rc.name)} bytes`);
  }
  for (const set of [out.envoy, out.grpc]) {
    for (const [url, list] of [
      [TYPE_URLS.cluster, set.clusters],
      [TYPE_URLS.endpoint, set.endpoints],
    ] as const) {
      for (const o of list)
        assert.deepEqual(Buffer.from(encodedBytes(o) ?? new Uint8Array()), Buffer.from(encodeObject(url, o)));
    }
  }
  // validateSet reuses them and publishes everything.
  const errors: ConfigError[] = [];
  const envoy = validateSet('envoy', out.envoy, errors);
  const grpc = validateSet('grpc', out.grpc, errors);
  assert.deepEqual(errors, []);
  assert.equal(envoy.set.routes.length, out.envoy.routes.length);
  assert.equal(grpc.set.listeners.length, out.grpc.listeners.length);
  for (const rc of out.envoy.routes) assert.equal(envoy.bytes.get(rc), encodedBytes(rc));
});

test('translate: a rebuild after one change equals a fresh translate and reuses untouched resources', () => {
  const ds = mixedDescriptors();
  const cache = new TranslateCache();
  const first = translate(model(ds, TLS_MODEL), {}, cache);
  const changed = ds.map((d) =>
    d.id === 'basic' ? { ...d, paths: [{ value: '/api/v3', type: 'PlainPrefix' as const }] } : d,
  );
  const second = translate(model(changed, TLS_MODEL), {}, cache);
  // Same content as a translate that shares no memo entries with the first (JSON copies, its own cache).
  const fresh = translate(JSON.parse(JSON.stringify(model(changed, TLS_MODEL))) as Model, {}, new TranslateCache());
  assert.deepEqual(second, fresh);
  assert.notDeepEqual(second.envoy.routes, first.envoy.routes);
  // Untouched descriptors: same cluster objects; unchanged gRPC route configurations: same objects.
  const clusterOf = (o: typeof first, id: string) =>
    o.envoy.clusters.find((c) => String(c.name).startsWith(`oxds~${id}~`));
  assert.equal(clusterOf(second, 'mid'), clusterOf(first, 'mid'));
  const rc = (o: typeof first, n: string) => o.grpc.routes.find((r) => r.name === n);
  assert.equal(rc(second, 'oxds-grpc~secure.example.com'), rc(first, 'oxds-grpc~secure.example.com'));
  assert.notEqual(rc(second, 'oxds-grpc~basic.example.com'), rc(first, 'oxds-grpc~basic.example.com'));
  for (const r of second.envoy.routes)
    assert.deepEqual(Buffer.from(encodedBytes(r) ?? new Uint8Array()), Buffer.from(encodeObject(TYPE_URLS.route, r)));
  // And back: identical to the first output.
  assert.deepEqual(translate(model(ds, TLS_MODEL), {}, cache), first);
});

test('translate: proxyless gRPC gets one route configuration per api_listener host (+ the wildcard one)', () => {
  const out = translate(model(mixedDescriptors()));
  const listeners = out.grpc.listeners.map((l) => [
    l.name,
    ((l.apiListener as ProtoObject).apiListener as ProtoObject).rds,
  ]);
  for (const [name, rds] of listeners) assert.equal((rds as ProtoObject).routeConfigName, `oxds-grpc~${String(name)}`);
  assert.deepEqual(
    out.grpc.routes.map((r) => r.name),
    [...out.grpc.listeners.map((l) => `oxds-grpc~${String(l.name)}`), 'oxds-grpc~*'].sort(),
  );
  const vhostNames = (n: string) =>
    ((out.grpc.routes.find((r) => r.name === n)?.virtualHosts ?? []) as ProtoObject[]).map((v) => v.name);
  assert.deepEqual(vhostNames('oxds-grpc~basic.example.com'), ['*', '*.example.com', 'basic.example.com']);
  assert.deepEqual(vhostNames('oxds-grpc~*'), ['*', '*.example.com', 'internal.*']);
  // maintenance: no gRPC route of its own; its vhost holds the wildcard descriptors' routes.
  assert.deepEqual(vhostNames('oxds-grpc~maint.example.com'), ['*', '*.example.com', 'maint.example.com']);
  assert.deepEqual(vhostNames('oxds-grpc~Upper.Example.com'), ['*', '*.example.com', 'upper.example.com']);
  const rdsOf = (l: ProtoObject | undefined) =>
    (((l?.apiListener as ProtoObject).apiListener as ProtoObject).rds as ProtoObject).routeConfigName;
  assert.equal(rdsOf(grpcListenerFor('x.example.com:50051', out.grpcDomains)), 'oxds-grpc~*');
  assert.equal(rdsOf(grpcListenerFor('basic.example.com:50051', out.grpcDomains)), 'oxds-grpc~basic.example.com');
  assert.equal(grpcListenerFor('x.example.org', out.grpcDomains), undefined);
});

test(
  "translate: a route valid alone but invalid in another descriptor's virtual host " + 'drops only that descriptor',
  () => {
    // Same output whatever the order of builds (memo state).
    const a = translate(model(mixedDescriptors()));
    const b = translate(model([...mixedDescriptors()].reverse()));
    assert.deepEqual(a, b);
  },
);

// ------------------------------------------------------------------ ext_authz (Envoy only)

import { buildSnapshot, checkConsistency, defaultEncoder } from '../src/xds/snapshot.js';
import { checkIsNoop, extAuthzCluster } from '../src/xds/resources/ext-authz.js';
import type { TranslateOptions } from '../src/xds/types.js';

const AUTHZ: Partial<TranslateOptions> = {
  authz: { address: '10.96.0.10', port: 18001, timeoutMs: 250, failureModeAllow: false },
};

function authzDescriptors(): Descriptor[] {
  return [
    descriptor('private', { paths: [{ value: '/api', type: 'PlainPrefix' }] }),
    descriptor('partial', { publicPatterns: ['/public/.*'] }),
    descriptor('ingress', { sourceKind: 'Ingress', publicPatterns: ['/.*'] }),
    descriptor('secure', { forceHttps: true }),
    descriptor('maint', { maintenanceMode: true }),
  ];
}

function perRoute(route: ProtoObject | undefined): unknown {
  const tpfc = route?.typedPerFilterConfig as ProtoObject | undefined;
  const c = tpfc?.['envoy.filters.http.ext_authz'] as ProtoObject | undefined;
  if (!c) return undefined;
  return c.disabled === true
    ? 'disabled'
    : ((c.checkSettings as ProtoObject).contextExtensions as ProtoObject).descriptor_id;
}

function httpFiltersOf(listener: ProtoObject | undefined): string[] {
  const chains = (listener?.filterChains ?? []) as ProtoObject[];
  const hcm = ((chains[0]?.filters as ProtoObject[])[0]?.typedConfig ?? {}) as ProtoObject;
  return ((hcm.httpFilters ?? []) as ProtoObject[]).map((f) => String(f.name));
}

test('ext_authz: unset → no filter, no cluster, no per-route configs (outputs unchanged)', () => {
  const out = translate(model(authzDescriptors(), TLS_MODEL));
  assert.ok(!JSON.stringify(out).includes('ext_authz'));
  assert.ok(!out.envoy.clusters.some((c) => c.name === names.EXT_AUTHZ_CLUSTER_NAME));
});

test('ext_authz: HTTP and HTTPS HCMs run it before the router, over the static oxds-ext-authz cluster', () => {
  const out = translate(model(authzDescriptors(), TLS_MODEL), AUTHZ);
  assert.deepEqual(out.errors, []);
  for (const l of out.envoy.listeners)
    assert.deepEqual(
      httpFiltersOf(l),
      [
        'envoy.filters.http.rbac',
        'envoy.filters.http.cors',
        'envoy.filters.http.ext_authz',
        'envoy.filters.http.router',
      ],
      String(l.name),
    );
  assert.equal(out.envoy.listeners.length, 2);
  const chains = (out.envoy.listeners.find((l) => l.name === 'oxds-http')?.filterChains ?? []) as ProtoObject[];
  const filter = (
    (((chains[0]?.filters as ProtoObject[])[0]?.typedConfig as ProtoObject).httpFilters as ProtoObject[]).find(
      (f) => f.name === 'envoy.filters.http.ext_authz',
    ) as ProtoObject
  ).typedConfig;
  assert.deepEqual(filter, {
    '@type': 'type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthz',
    grpcService: { envoyGrpc: { clusterName: 'oxds-ext-authz' }, timeout: { seconds: 0, nanos: 250_000_000 } },
    transportApiVersion: 'V3',
    failureModeAllow: false,
    statusOnError: { code: 'ServiceUnavailable' },
    includePeerCertificate: false,
  });
  const cluster = out.envoy.clusters.find((c) => c.name === names.EXT_AUTHZ_CLUSTER_NAME);
  assert.equal(cluster?.type, 'STATIC');
  assert.ok(cluster?.typedExtensionProtocolOptions, 'HTTP/2 to the Check service');
  // Everything validates and the snapshot is consistent (no EDS for the authz cluster).
  const errors: ConfigError[] = [];
  const envoy = validateSet('envoy', out.envoy, errors);
  assert.deepEqual(errors, []);
  assert.equal(envoy.set.clusters.length, out.envoy.clusters.length);
  assert.equal(envoy.set.listeners.length, 2);
  const snap = buildSnapshot('envoy', 'v1', envoy.set, defaultEncoder);
  assert.deepEqual(checkConsistency(snap), []);
});

test('ext_authz: routes check with descriptor_id unless wholly public; direct responses and 404 never check', () => {
  const out = translate(model(authzDescriptors(), TLS_MODEL), AUTHZ);
  const http = out.envoy.routes.find((r) => r.name === 'oxds-http');
  const https = out.envoy.routes.find((r) => r.name === 'oxds-https');
  const first = (rc: ProtoObject | undefined, id: string) => routesOf(rc, `${id}.example.com`)[0];
  assert.equal(perRoute(first(http, 'private')), 'private');
  assert.equal(perRoute(first(http, 'partial')), 'partial');
  assert.equal(perRoute(first(http, 'ingress')), 'disabled');
  assert.equal(perRoute(first(http, 'secure')), 'disabled'); // 303 to https
  assert.equal(perRoute(first(https, 'secure')), 'secure');
  assert.equal(perRoute(first(http, 'maint')), 'disabled'); // direct 503
  for (const rc of [http, https]) {
    for (const v of (rc?.virtualHosts ?? []) as ProtoObject[]) {
      const routes = v.routes as ProtoObject[];
      const nf = routes[routes.length - 1];
      assert.equal(nf?.name, 'oxds-not-found');
      assert.equal(perRoute(nf), 'disabled');
      for (const r of routes) assert.notEqual(perRoute(r), undefined, `${String(r.name)} says check or not`);
    }
  }
});

test('ext_authz: proxyless gRPC resources are identical with and without it', () => {
  const plain = translate(model(authzDescriptors(), TLS_MODEL));
  const withAuthz = translate(model(authzDescriptors(), TLS_MODEL), AUTHZ);
  assert.deepEqual(withAuthz.grpc, plain.grpc);
  assert.deepEqual(withAuthz.grpcDomains, plain.grpcDomains);
  assert.ok(!JSON.stringify(withAuthz.grpc).includes('ext_authz'));
});

test('ext_authz: toggling it between builds gives what a fresh translate gives (memos keyed by it)', () => {
  const fresh = (o?: Partial<TranslateOptions>) =>
    translate(JSON.parse(JSON.stringify(model(mixedDescriptors(), TLS_MODEL))) as Model, o);
  const a = translate(model(mixedDescriptors(), TLS_MODEL));
  const b = translate(model(mixedDescriptors(), TLS_MODEL), AUTHZ);
  const c = translate(model(mixedDescriptors(), TLS_MODEL));
  assert.deepEqual(b, fresh(AUTHZ));
  assert.deepEqual(c, a);
  assert.deepEqual(translate(model(mixedDescriptors(), TLS_MODEL), AUTHZ), b);
  for (const r of b.envoy.routes)
    assert.deepEqual(Buffer.from(encodedBytes(r) ?? new Uint8Array()), Buffer.from(encodeObject(TYPE_URLS.route, r)));
});

test('checkIsNoop: only when decide() would allow every request unconditionally', () => {
  const pub = { publicPatterns: ['/.*'] };
  assert.equal(checkIsNoop(descriptor('a')), false); // CRD default: private
  assert.equal(checkIsNoop(descriptor('a', pub)), true);
  assert.equal(checkIsNoop(descriptor('a', { publicPatterns: ['.*'] })), true);
  assert.equal(checkIsNoop(descriptor('a', { publicPatterns: ['/public/.*'] })), false);
  assert.equal(checkIsNoop(descriptor('a', { ...pub, privatePatterns: ['/admin/.*'] })), false);
  assert.equal(checkIsNoop(descriptor('a', { ...pub, readOnly: true })), false);
  assert.equal(checkIsNoop(descriptor('a', { ...pub, detectApiKeySooner: true })), false);
  assert.equal(checkIsNoop(descriptor('a', { ...pub, headersVerification: { 'x-a': 'b' } })), false);
  assert.equal(
    checkIsNoop(descriptor('a', { ...pub, jwtVerifier: { enabled: true, ids: ['v'], excludedPatterns: [] } })),
    false,
  );
  assert.equal(
    checkIsNoop(descriptor('a', { ...pub, jwtVerifier: { enabled: false, ids: ['v'], excludedPatterns: [] } })),
    true,
  );
  assert.equal(
    checkIsNoop(
      descriptor('a', {
        ...pub,
        restrictions: { enabled: true, allowLast: false, allowed: [], forbidden: [], notFound: [] },
      }),
    ),
    false,
  );
});

test('extAuthzCluster: STATIC for an IP (v4 or v6), STRICT_DNS for a name; inline endpoints', () => {
  const at = (address: string) =>
    extAuthzCluster('oxds-ext-authz', { address, port: 18001, timeoutMs: 1000, failureModeAllow: true });
  assert.equal(at('127.0.0.1').type, 'STATIC');
  assert.equal(at('::1').type, 'STATIC');
  assert.equal(at('otoroshi-xds.otoroshi.svc.cluster.local').type, 'STRICT_DNS');
  const la = at('::1').loadAssignment as ProtoObject;
  assert.equal(la.clusterName, 'oxds-ext-authz');
  assert.deepEqual(at('::1').connectTimeout, { seconds: 1 });
  for (const a of ['127.0.0.1', '::1', 'authz.local']) assert.ok(encodeObject(TYPE_URLS.cluster, at(a)).length > 0);
});
