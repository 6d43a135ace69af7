import { test } from 'vitest';
import assert from 'node:assert/strict';
import protobuf from 'protobufjs';
import { lookupType, TYPE_URLS, encodeObject, type ProtoObject } from '../proto/loader.js';
import { checkRules, formatIssue, validateResource, type ValidationIssue } from '../src/xds/validate.js';
import { fromProto3Json, toProto3Json } from '../proto/json.js';

const HCM_URL = 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager';
const ROUTER_URL = 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router';

function hcm(over: ProtoObject = {}): ProtoObject {
  return {
    '@type': HCM_URL,
    statPrefix: 'ingress_http',
    codecType: 'AUTO',
    rds: { routeConfigName: 'http.8080', configSource: { ads: {}, resourceApiVersion: 'V3' } },
    httpFilters: [{ name: 'envoy.filters.http.router', typedConfig: { '@type': ROUTER_URL } }],
    ...over,
  };
}

function listener(hcmObj: ProtoObject = hcm()): ProtoObject {
  return {
    name: 'http.8080',
    address: { socketAddress: { address: '0.0.0.0', portValue: 8080 } },
    filterChains: [{ filters: [{ name: 'envoy.filters.network.http_connection_manager', typedConfig: hcmObj }] }],
  };
}

function edsCluster(over: ProtoObject = {}): ProtoObject {
  return {
    name: 'svc-a',
    type: 'EDS',
    edsClusterConfig: { edsConfig: { ads: {}, resourceApiVersion: 'V3' }, serviceName: 'svc-a' },
    connectTimeout: { seconds: 5 },
    lbPolicy: 'ROUND_ROBIN',
    perConnectionBufferLimitBytes: { value: 32768 },
    ...over,
  };
}

function routeConfig(vhOver: ProtoObject = {}): ProtoObject {
  return {
    name: 'http.8080',
    virtualHosts: [
      {
        name: 'api',
        domains: ['api.example.com'],
        routes: [{ match: { prefix: '/' }, route: { cluster: 'svc-a', timeout: { seconds: 15 } } }],
        ...vhOver,
      },
    ],
  };
}

function issuesOf(r: ReturnType<typeof validateResource>): ValidationIssue[] {
  assert.equal(r.ok, false, 'expected validation to fail');
  return r.ok ? [] : r.issues;
}

function find(issues: ValidationIssue[], path: string, rule?: string): ValidationIssue {
  const hit = issues.find((i) => i.path === path && (rule === undefined || i.rule === rule));
  assert.ok(hit, `no issue at ${path} ${rule ?? ''}; got:\n${issues.map(formatIssue).join('\n')}`);
  return hit;
}

test('a valid Listener with an HCM (RDS over ADS, router typed_config) passes and encodes', () => {
  const r = validateResource(TYPE_URLS.listener, listener());
  assert.ok(r.ok, r.ok ? '' : r.issues.map(formatIssue).join('\n'));
  assert.deepEqual(Buffer.from(r.bytes), Buffer.from(encodeObject(TYPE_URLS.listener, listener())));
});

test('a valid EDS Cluster and a valid RouteConfiguration pass', () => {
  const c = validateResource(TYPE_URLS.cluster, edsCluster());
  assert.ok(c.ok, c.ok ? '' : c.issues.map(formatIssue).join('\n'));
  const r = validateResource('envoy.config.route.v3.RouteConfiguration', routeConfig());
  assert.ok(r.ok, r.ok ? '' : r.issues.map(formatIssue).join('\n'));
});

test('empty VirtualHost.domains fails repeated.min_items with an actionable message', () => {
  const issues = issuesOf(validateResource(TYPE_URLS.route, routeConfig({ domains: [] })));
  const i = find(issues, 'virtualHosts[0].domains', 'repeated.min_items');
  assert.equal(formatIssue(i), 'virtualHosts[0].domains: must have at least 1 item(s) (repeated.min_items)');
});

test('connectTimeout of 0s fails duration.gt', () => {
  const issues = issuesOf(validateResource(TYPE_URLS.cluster, edsCluster({ connectTimeout: { seconds: 0 } })));
  find(issues, 'connectTimeout', 'duration.gt');
  // nanos alone make it valid
  assert.ok(validateResource(TYPE_URLS.cluster, edsCluster({ connectTimeout: { nanos: 1 } })).ok);
});

test('strict HTTP_HEADER_NAME rejects a space; non-strict header rules reject CR/LF', () => {
  // UpstreamHttpProtocolOptions.auto_sni header uses the strict HTTP_HEADER_NAME regex.
  const strict = issuesOf(
    validateResource(
      TYPE_URLS.cluster,
      edsCluster({ upstreamHttpProtocolOptions: { autoSni: true, overrideAutoSniHeader: 'x host' } }),
    ),
  );
  const i = find(strict, 'upstreamHttpProtocolOptions.overrideAutoSniHeader', 'string.well_known_regex');
  assert.match(i.message, /HTTP_HEADER_NAME/);
  // Envoy declares HeaderValue.key with strict: false: a space is allowed by PGV, a newline is not.
  const vh = (key: string): ProtoObject => ({ requestHeadersToAdd: [{ header: { key, value: 'v' } }] });
  assert.ok(validateResource(TYPE_URLS.route, routeConfig(vh('x y'))).ok);
  const loose = issuesOf(validateResource(TYPE_URLS.route, routeConfig(vh('x\ny'))));
  find(loose, 'virtualHosts[0].requestHeadersToAdd[0].header.key', 'string.well_known_regex');
  // empty key fails min_len
  find(
    issuesOf(validateResource(TYPE_URLS.route, routeConfig(vh('')))),
    'virtualHosts[0].requestHeadersToAdd[0].header.key',
    'string.min_len',
  );
});

test('HCM without statPrefix inside a Listener filter typedConfig is reported through the Any', () => {
  const bad = hcm();
  delete bad['statPrefix'];
  const issues = issuesOf(validateResource(TYPE_URLS.listener, listener(bad)));
  find(issues, 'filterChains[0].filters[0].typedConfig(HttpConnectionManager).statPrefix', 'string.min_len');
  const noName = hcm({ httpFilters: [{ name: '', typedConfig: { '@type': ROUTER_URL } }] });
  find(
    issuesOf(validateResource(TYPE_URLS.listener, listener(noName))),
    'filterChains[0].filters[0].typedConfig(HttpConnectionManager).httpFilters[0].name',
    'string.min_len',
  );
});

test('missing required message and missing required oneof are reported', () => {
  const rc = routeConfig();
  const vhs = rc['virtualHosts'] as ProtoObject[];
  (vhs[0] as ProtoObject)['routes'] = [{ route: { cluster: 'svc-a' } }, { match: { prefix: '/' } }];
  const issues = issuesOf(validateResource(TYPE_URLS.route, rc));
  find(issues, 'virtualHosts[0].routes[0].match', 'message.required');
  find(issues, 'virtualHosts[0].routes[1].action', 'oneof.required');
  // RouteMatch's path_specifier oneof is required too: {} is not a match.
  (vhs[0] as ProtoObject)['routes'] = [{ match: {}, route: { cluster: 'svc-a' } }];
  find(
    issuesOf(validateResource(TYPE_URLS.route, rc)),
    'virtualHosts[0].routes[0].match.pathSpecifier',
    'oneof.required',
  );
  // a oneof member set to its default value counts as set (catch-all prefix '')
  (vhs[0] as ProtoObject)['routes'] = [{ match: { prefix: '' }, route: { cluster: 'svc-a' } }];
  assert.ok(validateResource(TYPE_URLS.route, rc).ok);
});

test('strict shape check: unknown field, unknown enum, unknown @type, wrong shapes', () => {
  const typo = issuesOf(
    validateResource(TYPE_URLS.cluster, edsCluster({ edsClusterConfig: { serviceNmae: 'x', edsConfig: { ads: {} } } })),
  );
  const i = find(typo, 'edsClusterConfig.serviceNmae', 'shape.unknown_field');
  assert.match(i.message, /did you mean serviceName/);
  const snake = issuesOf(validateResource(TYPE_URLS.cluster, { ...edsCluster(), connect_timeout: { seconds: 1 } }));
  assert.match(find(snake, 'connect_timeout', 'shape.unknown_field').message, /connectTimeout/);
  const routeTypo = routeConfig();
  ((routeTypo['virtualHosts'] as ProtoObject[])[0] as ProtoObject)['routes'] = [
    { match: { prefix: '/' }, route: { clusterNmae: 'a', cluster: 'b' } },
  ];
  find(
    issuesOf(validateResource(TYPE_URLS.route, routeTypo)),
    'virtualHosts[0].routes[0].route.clusterNmae',
    'shape.unknown_field',
  );

  const en = issuesOf(validateResource(TYPE_URLS.cluster, edsCluster({ lbPolicy: 'ROUND_ROBINN' })));
  find(en, 'lbPolicy', 'shape.enum');

  const anyBad = hcm({
    httpFilters: [{ name: 'x', typedConfig: { '@type': 'type.googleapis.com/envoy.nope.v3.Nope' } }],
  });
  find(
    issuesOf(validateResource(TYPE_URLS.listener, listener(anyBad))),
    'filterChains[0].filters[0].typedConfig(HttpConnectionManager).httpFilters[0].typedConfig',
    'shape.any',
  );

  const shapes = issuesOf(
    validateResource(
      TYPE_URLS.cluster,
      edsCluster({ connectTimeout: '5s', perConnectionBufferLimitBytes: 5, name: 7 }),
    ),
  );
  find(shapes, 'connectTimeout', 'shape.message');
  find(shapes, 'perConnectionBufferLimitBytes', 'shape.message');
  find(shapes, 'name', 'shape.string');

  const oneofTwice = issuesOf(validateResource(TYPE_URLS.cluster, edsCluster({ clusterType: { name: 'x' } })));
  find(oneofTwice, 'clusterDiscoveryType', 'shape.oneof');

  const range = issuesOf(
    validateResource(TYPE_URLS.listener, {
      ...listener(),
      address: { socketAddress: { address: '0.0.0.0', portValue: 70000 } },
    }),
  );
  find(range, 'address.socketAddress.portValue');
});

test('numeric, enum and uint32 wrapper rules', () => {
  // ClusterLoadAssignment: priority lte 128, load_balancing_weight (UInt32Value) gte 1
  const cla = (lw: number, prio: number): ProtoObject => ({
    clusterName: 'svc-a',
    endpoints: [
      {
        locality: {},
        loadBalancingWeight: { value: lw },
        priority: prio,
        lbEndpoints: [{ endpoint: { address: { socketAddress: { address: '10.0.0.1', portValue: 80 } } } }],
      },
    ],
  });
  assert.ok(validateResource(TYPE_URLS.endpoint, cla(1, 0)).ok);
  const bad = issuesOf(validateResource(TYPE_URLS.endpoint, cla(0, 200)));
  find(bad, 'endpoints[0].loadBalancingWeight', 'uint32.gte');
  find(bad, 'endpoints[0].priority', 'uint32.lte');
  // enum.defined_only on numbers
  find(issuesOf(validateResource(TYPE_URLS.cluster, edsCluster({ lbPolicy: 99 }))), 'lbPolicy', 'enum.defined_only');
});

test('checkRules works on decoded messages too', () => {
  const t = lookupType(TYPE_URLS.listener);
  const bad = hcm();
  delete bad['statPrefix'];
  const msg = t.decode(encodeObject(TYPE_URLS.listener, listener(bad)));
  const issues = checkRules(t, msg);
  find(issues, 'filterChains[0].filters[0].typedConfig(HttpConnectionManager).statPrefix', 'string.min_len');
  assert.deepEqual(checkRules(t, t.decode(encodeObject(TYPE_URLS.listener, listener()))), []);
});

test('proto3 JSON of a Cluster: Duration strings, bare wrappers, enums, round trip', () => {
  const c = edsCluster({
    connectTimeout: { seconds: 5 },
    dnsRefreshRate: { seconds: 1, nanos: 500_000_000 },
    maxRequestsPerConnection: { value: 0 },
  });
  const j = toProto3Json(TYPE_URLS.cluster, c) as Record<string, unknown>;
  assert.equal(j['connectTimeout'], '5s');
  assert.equal(j['dnsRefreshRate'], '1.500s');
  assert.equal(j['perConnectionBufferLimitBytes'], 32768);
  assert.equal(j['maxRequestsPerConnection'], 0); // wrappers have presence
  assert.equal(j['type'], 'EDS');
  assert.equal(j['lbPolicy'], undefined); // ROUND_ROBIN is the default: omitted
  assert.deepEqual(j['edsClusterConfig'], { edsConfig: { ads: {}, resourceApiVersion: 'V3' }, serviceName: 'svc-a' });
  const back = fromProto3Json(TYPE_URLS.cluster, j);
  const canonical = { ...c };
  delete canonical['lbPolicy']; // explicitly-set default: protobufjs encodes it, protoc JSON omits it
  assert.deepEqual(
    Buffer.from(encodeObject(TYPE_URLS.cluster, back)),
    Buffer.from(encodeObject(TYPE_URLS.cluster, canonical)),
  );
  // bytes input gives the same JSON
  assert.deepEqual(toProto3Json(TYPE_URLS.cluster, encodeObject(TYPE_URLS.cluster, c)), j);
});

test('proto3 JSON: Any recursion, Struct, int64 as strings', () => {
  const l = listener();
  const lj = toProto3Json(TYPE_URLS.listener, l) as any;
  const tc = lj.filterChains[0].filters[0].typedConfig;
  assert.equal(tc['@type'], HCM_URL);
  assert.equal(tc.statPrefix, 'ingress_http');
  assert.deepEqual(tc.httpFilters[0].typedConfig, { '@type': ROUTER_URL });
  assert.deepEqual(
    Buffer.from(encodeObject(TYPE_URLS.listener, fromProto3Json(TYPE_URLS.listener, lj))),
    Buffer.from(
      encodeObject(TYPE_URLS.listener, {
        ...l,
        filterChains: [
          {
            filters: [
              {
                name: 'envoy.filters.network.http_connection_manager',
                typedConfig: { ...hcm(), codecType: undefined },
              },
            ],
          },
        ],
      }),
    ),
  );
  const md = {
    filterMetadata: {
      otoroshi: {
        fields: {
          a: { stringValue: 'x' },
          n: { numberValue: 2 },
          l: { listValue: { values: [{ boolValue: true }, { nullValue: 'NULL_VALUE' }] } },
        },
      },
    },
  };
  const c = edsCluster({
    metadata: md,
    maxRequestsPerConnection: undefined,
    circuitBreakers: { thresholds: [{ maxRequests: { value: 10 } }] },
  });
  const cj = toProto3Json(TYPE_URLS.cluster, c) as any;
  assert.deepEqual(cj.metadata.filterMetadata.otoroshi, { a: 'x', n: 2, l: [true, null] });
  const back = fromProto3Json(TYPE_URLS.cluster, cj);
  const canonical = { ...c };
  delete canonical['lbPolicy'];
  assert.deepEqual(
    Buffer.from(encodeObject(TYPE_URLS.cluster, back)),
    Buffer.from(encodeObject(TYPE_URLS.cluster, canonical)),
  );
  // Duration seconds are int64: strings accepted, nanos printed with 3/6/9 digits
  const od = toProto3Json('envoy.config.cluster.v3.OutlierDetection', {
    interval: { seconds: '10', nanos: 1000 },
  }) as any;
  assert.equal(od.interval, '10.000001s');
  const rr = { retryPolicy: { retryOn: '5xx', hostSelectionRetryMaxAttempts: 3 } };
  const rj = toProto3Json('envoy.config.route.v3.RouteAction', { cluster: 'c', ...rr }) as any;
  assert.equal(rj.retryPolicy.hostSelectionRetryMaxAttempts, '3'); // int64 → string
  assert.equal(toProto3Json('google.protobuf.UInt64Value', { value: '18446744073709551615' }), '18446744073709551615');
  assert.throws(() => fromProto3Json(TYPE_URLS.cluster, { nmae: 'x' }), /unknown field/);
});

test('generic rule families on a synthetic proto (ranges, pattern, map, unique, oneof, skip)', () => {
  const src = `syntax = "proto3"; package t;
message T {
  uint32 excl = 1 [(validate.rules).uint32 = {lt: 5, gt: 10}];
  int64 incl = 2 [(validate.rules).int64 = {gte: -3, lte: 3}];
  string pat = 3 [(validate.rules).string = {pattern: "^[a-z]+$", ignore_empty: true}];
  repeated string u = 5 [(validate.rules).repeated = {unique: true, max_items: 3}];
  map<string, string> m = 6 [(validate.rules).map = {
    min_pairs: 1, keys: {string: {min_len: 2}}, values: {string: {prefix: "v"}}
  }];
  google.protobuf.Duration d = 7 [(validate.rules).duration = {
    required: true, lt: {seconds: 10}, gte: {nanos: 1000000}
  }];
  E e = 8 [(validate.rules).enum = {defined_only: true, not_in: [2]}];
  oneof o { option (validate.required) = true; string a = 9; string b = 10 [(validate.rules).string.min_len = 3]; }
  Sub s = 11 [(validate.rules).message.skip = true];
  Sub s2 = 12;
  double ratio = 14 [(validate.rules).double = {gt: 0, lte: 1}];
}
message Sub { string x = 1 [(validate.rules).string.min_len = 1]; }
enum E { Z = 0; O = 1; TW = 2; }`;
  const root = new protobuf.Root();
  root.addJSON(
    (protobuf.common.get('google/protobuf/duration.proto') as protobuf.INamespace).nested as Record<
      string,
      protobuf.AnyNestedObject
    >,
  );
  protobuf.parse(src, root, { keepCase: false });
  root.resolveAll();
  const T = root.lookupType('t.T');
  const good = {
    excl: 11,
    incl: 3,
    pat: '',
    u: ['a', 'b'],
    m: { kk: 'v1' },
    d: { seconds: 1 },
    e: 'O',
    a: '',
    s: {},
    s2: { x: 'y' },
    ratio: 1,
  };
  assert.deepEqual(checkRules(T, good), []);
  const bad = {
    excl: 7,
    incl: '-4',
    pat: 'A1',
    u: ['a', 'a', 'b', 'c'],
    m: { k: 'x' },
    d: { seconds: 10 },
    e: 'TW',
    b: 'xy',
    s: {},
    s2: {},
    ratio: 0,
  };
  for (const issues of [checkRules(T, bad), checkRules(T, T.decode(T.encode(T.fromObject(bad)).finish()))]) {
    const got = issues.map(formatIssue).sort();
    assert.deepEqual(got, [
      'b: length must be at least 3 character(s) (string.min_len)',
      'd: must be inside range [0.001s, 10s) (got 10s) (duration.gte_lt)',
      'e: must not be TW (enum.not_in)',
      'excl: must be outside range [5, 10] (got 7) (uint32.gt_lt)',
      'incl: must be inside range [-3, 3] (got -4) (int64.gte_lte)',
      'm["k"]: length must be at least 2 character(s) (string.min_len)',
      'm["k"]: must start with "v" (string.prefix)',
      'pat: "A1" must match pattern ^[a-z]+$ (string.pattern)',
      'ratio: must be inside range (0, 1] (got 0) (double.gt_lte)',
      's2.x: must not be empty (at least 1 character(s)) (string.min_len)',
      'u: must have at most 3 item(s) (has 4) (repeated.max_items)',
      'u[1]: items must be unique (duplicate "a") (repeated.unique)',
    ]);
  }
  const empty = checkRules(T, {}).map((i) => `${i.path} ${i.rule}`);
  assert.deepEqual(empty.sort(), ['d duration.required', 'm map.min_pairs', 'o oneof.required', 'ratio double.gt_lte']);
});

test('proto3 JSON names follow protoc (consecutive_5xx → consecutive5xx), fromObject keys do not', () => {
  const od = { consecutive_5xx: { value: 3 }, interval: { seconds: 10 } };
  assert.ok(validateResource('envoy.config.cluster.v3.OutlierDetection', od).ok);
  const j = toProto3Json('envoy.config.cluster.v3.OutlierDetection', od);
  assert.deepEqual(j, { consecutive5xx: 3, interval: '10s' });
  assert.deepEqual(fromProto3Json('envoy.config.cluster.v3.OutlierDetection', j), {
    consecutive_5xx: { value: 3 },
    interval: { seconds: '10' },
  });
  const wrong = issuesOf(
    validateResource('envoy.config.cluster.v3.OutlierDetection', { consecutive5xx: { value: 3 } }),
  );
  assert.match(find(wrong, 'consecutive5xx', 'shape.unknown_field').message, /consecutive_5xx/);
});
