// Issue 3 translation semantics, asserted on the generated Envoy / gRPC resources (the golden
// files show whole outputs; these pin the rules: order of checks, SDS names, filters).
import { test } from 'vitest';
import assert from 'node:assert/strict';
import { assembleView, parseYamlFile } from '../src/sources/yaml.js';
import { buildModel } from '../src/model/build.js';
import { translate } from '../src/xds/translate.js';
import { compile } from '../src/pipeline.js';
import { descriptorYaml } from './fixtures/index.js';
import type { Model } from '../src/model/types.js';
import type { ProtoObject } from '../proto/loader.js';
import type { TranslateOutput } from '../src/xds/types.js';

function model(yaml: string, extra: Partial<Model> = {}): Model {
  const p = parseYamlFile('t.yaml', yaml, 0);
  return { ...buildModel({ objects: p.objects, loadErrors: p.errors }).model, ...extra };
}

// `spec`: spec lines, already indented by two spaces.
function sd(name: string, spec: string, ns = 'default'): string {
  return descriptorYaml({
    name,
    namespace: ns,
    id: name,
    hosts: [`${name}.example.com`],
    targets: ['http://10.0.0.1:8080'],
    spec: spec.replace(/^ {2}/gm, ''),
    separator: true,
  });
}

function routes(out: TranslateOutput, rc: string, vhost: string, node: 'envoy' | 'grpc' = 'envoy'): ProtoObject[] {
  const r = out[node].routes.find((x) => x.name === rc);
  const vh = ((r?.virtualHosts ?? []) as ProtoObject[]).find((v) => v.name === vhost);
  return ((vh?.routes ?? []) as ProtoObject[]).filter((x) => x.name !== 'oxds-not-found');
}

function kind(r: ProtoObject): string {
  if (r.redirect) return 'redirect';
  if (r.directResponse) return String((r.directResponse as ProtoObject).status);
  return 'forward';
}

const CERT = { certificateChain: 'CHAIN', privateKey: 'KEY', dnsNames: [] };
const TLS = {
  certificates: [{ secretName: 'default/gw', sourceKey: 'Secret/default/gw', ...CERT }],
  tls: [{ secretName: 'default/gw', serverNames: [] }],
};

test(
  'Otoroshi order of checks: headersVerification (400), readOnly (405), forceHttps ' +
    '(303 on http), then RBAC + forward',
  () => {
    const out = translate(
      model(
        sd(
          'app',
          '  forceHttps: true\n  readOnly: true\n  headersVerification: {X-Tenant: acme}\n  ipFiltering: {whitelist: ' +
            '[10.0.0.0/8]}',
        ),
        TLS,
      ),
    );
    assert.deepEqual(
      routes(out, 'oxds-http', 'app.example.com').map((r) => [r.name, kind(r)]),
      [
        ['app/all~hv0', '400'],
        ['app/all~ro', '405'],
        ['app/all', 'redirect'],
      ],
    );
    const https = routes(out, 'oxds-https', 'app.example.com');
    assert.deepEqual(
      https.map((r) => [r.name, kind(r)]),
      [
        ['app/all~hv0', '400'],
        ['app/all~ro', '405'],
        ['app/all', 'forward'],
      ],
    );
    // Header absent or different → 400 (an inverted matcher ignores absent headers unless they count as empty).
    assert.deepEqual((https[0]?.match as ProtoObject).headers, [
      { name: 'x-tenant', stringMatch: { exact: 'acme' }, invertMatch: true, treatMissingHeaderAsEmpty: true },
    ]);
    const body = ((https[0]?.directResponse as ProtoObject).body as ProtoObject).inlineString;
    assert.equal(body, '{"Otoroshi-Error":"Missing header(s)"}');
    // The RBAC policy sits on the forwarding route only (direct answers come first, as in Otoroshi).
    assert.ok(JSON.stringify(https[2]?.typedPerFilterConfig).includes('RBACPerRoute'));
    assert.equal(https[0]?.typedPerFilterConfig, undefined);
    // Proxyless gRPC has no direct responses: only the forwarding route, with the call deadline.
    const g = routes(out, 'oxds-grpc~app.example.com', 'app.example.com', 'grpc');
    assert.deepEqual(
      g.map((r) => r.name),
      ['app/all'],
    );
    assert.deepEqual((g[0]?.route as ProtoObject).maxStreamDuration, { maxStreamDuration: { seconds: 30 } });
  },
);

test('redirection answers first, even under GlobalConfig maintenance; other services answer 503', () => {
  const yaml = `apiVersion: proxy.otoroshi.io/v1alpha1
kind: GlobalConfig
metadata: {name: global, namespace: otoroshi}
spec: {maintenanceMode: true}
${sd('moved', '  forceHttps: false\n  redirection: {enabled: true, code: 307, to: "https://new.example.com/a%20b"}')}
${sd('app', '  forceHttps: true\n  readOnly: true\n  headersVerification: {X-A: b}')}`;
  const out = translate(model(yaml));
  const [moved] = routes(out, 'oxds-http', 'moved.example.com');
  assert.equal(kind(moved as ProtoObject), '307');
  assert.deepEqual(moved?.responseHeadersToAdd, [
    {
      header: { key: 'Location', value: 'https://new.example.com/a%%20b' },
      appendAction: 'OVERWRITE_IF_EXISTS_OR_ADD',
    },
  ]);
  // Global maintenance comes before headersVerification, readOnly and forceHttps (§4.5 step 4).
  const appRoutes = routes(out, 'oxds-http', 'app.example.com');
  assert.deepEqual(appRoutes.map(kind), ['503']);
  const [app] = appRoutes;
  assert.ok(
    String(((app?.directResponse as ProtoObject).body as ProtoObject).inlineString).includes(
      'Service in maintenance mode',
    ),
  );
});

test(
  'targets mtlsConfig: SDS client cert + explicit trust secret; CA bundle when ' +
    'configured; unknown refs drop the descriptor',
  () => {
    const certs = [
      { secretName: 'default/client', sourceKey: 'Secret/default/client', ...CERT },
      { secretName: 'pki/ca', sourceKey: 'Secret/pki/ca', ...CERT, certificateChain: 'CA-CHAIN' },
    ];
    const yaml =
      sd('explicit', '  forceHttps: false\n').replace(
        'http://10.0.0.1:8080"}',
        'https://b.internal", mtlsConfig: {mtls: true, certs: [client], trustedCerts: [pki/ca]}}',
      ) +
      sd('bundle', '  forceHttps: false\n').replace(
        'http://10.0.0.1:8080"}',
        'https://c.internal", mtlsConfig: {mtls: true, certs: [client]}}',
      ) +
      sd('anything', '  forceHttps: false\n').replace(
        'http://10.0.0.1:8080"}',
        'https://d.internal", mtlsConfig: {certs: [client], trustAll: true}}',
      ) +
      sd('unknown', '  forceHttps: false\n').replace(
        'http://10.0.0.1:8080"}',
        'https://e.internal", mtlsConfig: {mtls: true, certs: [nope]}}',
      );
    const out = translate(model(yaml, { certificates: certs, caBundle: 'BUNDLE' }));
    const tlsOf = (id: string): string =>
      JSON.stringify(out.envoy.clusters.find((c) => String(c.name).startsWith(`oxds~${id}~`))?.transportSocket);
    assert.ok(
      tlsOf('explicit').includes('"name":"default/client"') &&
        tlsOf('explicit').includes('"name":"pki/ca~trust"') &&
        tlsOf('explicit').includes('"exact":"b.internal"'),
    );
    assert.ok(tlsOf('bundle').includes('"name":"otoroshi-ca-bundle"'));
    assert.ok(tlsOf('anything').includes('"name":"default/client"') && !tlsOf('anything').includes('alidation'));
    assert.equal(
      out.envoy.clusters.some((c) => String(c.name).startsWith('oxds~unknown~')),
      false,
    );
    assert.deepEqual(
      out.errors.map((e) => [e.code, e.name]),
      [['OXDS_UNRESOLVED_REFERENCE', 'unknown']],
    );
    const secrets = new Map(out.envoy.secrets.map((s) => [String(s.name), s]));
    assert.deepEqual(secrets.get('pki/ca~trust'), {
      name: 'pki/ca~trust',
      validationContext: { trustedCa: { inlineString: 'CA-CHAIN' } },
    });
    assert.ok(secrets.has('otoroshi-ca-bundle') && secrets.has('default/client'));
    // Without a CA bundle, nothing references it (no dangling SDS name).
    const noCa = translate(model(yaml, { certificates: certs }));
    assert.ok(!JSON.stringify(noCa.envoy.clusters).includes('otoroshi-ca-bundle'));
  },
);

test(
  'headers: user values are literal (% escaped), ' + 'Otoroshi headers added, credentials stripped (custom names too)',
  () => {
    const out = translate(
      model(
        sd(
          'h',
          '  forceHttps: false\n  additionalHeaders: {X-Pct: "100%"}\n  apiKeyConstraints: {customHeadersAuth: ' +
            '{enabled: true, clientIdHeaderName: X-My-Id, clientSecretHeaderName: X-My-Secret}}',
        ),
      ),
    );
    const [r] = routes(out, 'oxds-http', 'h.example.com');
    const adds = (r?.requestHeadersToAdd as ProtoObject[]).map((h) => [
      (h.header as ProtoObject).key,
      (h.header as ProtoObject).value,
    ]);
    assert.deepEqual(adds.at(-1), ['X-Pct', '100%%']);
    // Otoroshi's own headers and credential names are the route configuration's; custom names the route's.
    const rc = out.envoy.routes.find((x) => x.name === 'oxds-http') as ProtoObject;
    assert.ok(
      (rc.requestHeadersToAdd as ProtoObject[]).some((h) => (h.header as ProtoObject).key === 'Otoroshi-Request-Id'),
    );
    for (const h of ['otoroshi-client-id', 'otoroshi-client-secret'])
      assert.ok((rc.requestHeadersToRemove as string[]).includes(h), h);
    for (const h of ['x-my-id', 'x-my-secret', 'x-forwarded-for'])
      assert.ok((r?.requestHeadersToRemove as string[]).includes(h), h);
  },
);

test('headers: a route removing a header the shared ones write or read removes and adds those itself', () => {
  const out = translate(
    model(
      sd('rm', '  forceHttps: false\n  removeHeadersIn: [X-Request-Id]') +
        sd('keep', '  forceHttps: false\n  removeHeadersIn: [x-other]'),
    ),
  );
  const keys = (r: ProtoObject | undefined): string[] =>
    ((r?.requestHeadersToAdd as ProtoObject[] | undefined) ?? []).map((h) => String((h.header as ProtoObject).key));
  const [rm] = routes(out, 'oxds-http', 'rm.example.com');
  assert.deepEqual(keys(rm), ['Otoroshi-Proxied-Host', 'Otoroshi-Request-Id', 'Otoroshi-Request-Timestamp']);
  for (const h of ['X-Request-Id', 'otoroshi-proxied-host', 'otoroshi-request-id', 'otoroshi-request-timestamp'])
    assert.ok((rm?.requestHeadersToRemove as string[]).includes(h), h);
  const [keep] = routes(out, 'oxds-http', 'keep.example.com');
  assert.deepEqual(keys(keep), []);
  assert.ok(!(keep?.requestHeadersToRemove as string[]).includes('otoroshi-request-id'));
});

test('gzip: one compressor filter per distinct configuration, enabled only on the routes that use it', () => {
  const gz = (level: number): string =>
    `  forceHttps: false\n  gzip: {enabled: true, whiteList: [application/json], compressionLevel: ${level}}`;
  const out = translate(model(sd('a', gz(5)) + sd('b', gz(5)) + sd('c', gz(9)) + sd('d', '  forceHttps: false')));
  const filters = (
    ((out.envoy.listeners[0]?.filterChains as ProtoObject[])[0]?.filters as ProtoObject[])[0]
      ?.typedConfig as ProtoObject
  ).httpFilters as ProtoObject[];
  const gzipFilters = filters.filter((f) => String(f.name).startsWith('oxds.gzip.'));
  assert.equal(gzipFilters.length, 2);
  assert.ok(gzipFilters.every((f) => f.disabled === true));
  const perRoute = (id: string): string[] =>
    Object.keys((routes(out, 'oxds-http', `${id}.example.com`)[0]?.typedPerFilterConfig ?? {}) as ProtoObject);
  assert.deepEqual(perRoute('a'), perRoute('b'));
  assert.notDeepEqual(perRoute('a'), perRoute('c'));
  assert.deepEqual(perRoute('d'), []);
});

test(
  'GlobalConfig: throttling, global RBAC, then the per-route filters; ' + 'trusted proxies → xff_num_trusted_hops',
  () => {
    const yaml = `apiVersion: proxy.otoroshi.io/v1alpha1
kind: GlobalConfig
metadata: {name: global, namespace: otoroshi}
spec: {throttlingQuota: 100, trustedProxies: 2, ipFiltering: {blacklist: [203.0.113.0/24]}}
${sd('app', '  forceHttps: false')}`;
    const out = translate(model(yaml), {
      authz: { address: '127.0.0.1', port: 1, timeoutMs: 100, failureModeAllow: false },
    });
    const hcm = ((out.envoy.listeners[0]?.filterChains as ProtoObject[])[0]?.filters as ProtoObject[])[0]
      ?.typedConfig as ProtoObject;
    assert.deepEqual(
      (hcm.httpFilters as ProtoObject[]).map((f) => f.name),
      [
        'oxds.ratelimit.global',
        'oxds.rbac.global',
        'envoy.filters.http.rbac',
        'envoy.filters.http.cors',
        'envoy.filters.http.ext_authz',
        'envoy.filters.http.router',
      ],
    );
    assert.equal(hcm.xffNumTrustedHops, 2);
    const rl = ((hcm.httpFilters as ProtoObject[])[0]?.typedConfig as ProtoObject).tokenBucket;
    assert.deepEqual(rl, { maxTokens: 1000, tokensPerFill: { value: 1000 }, fillInterval: { seconds: 10 } });
    // Without a GlobalConfig: no global filters, the client IP is the TCP peer.
    const plain = translate(model(sd('app', '  forceHttps: false')));
    const phcm = ((plain.envoy.listeners[0]?.filterChains as ProtoObject[])[0]?.filters as ProtoObject[])[0]
      ?.typedConfig as ProtoObject;
    assert.deepEqual(
      (phcm.httpFilters as ProtoObject[]).map((f) => f.name),
      ['envoy.filters.http.rbac', 'envoy.filters.http.cors', 'envoy.filters.http.router'],
    );
    assert.equal(phcm.xffNumTrustedHops, undefined);
  },
);

test('TcpService: disabled ones get no listener; enabled ones a tcp_proxy listener on their port', () => {
  const yaml = `apiVersion: proxy.otoroshi.io/v1alpha1
kind: TcpService
metadata: {name: on, namespace: default}
spec: {port: 5000, rules: [{targets: [{host: a.internal, port: 1}]}]}
---
apiVersion: proxy.otoroshi.io/v1alpha1
kind: TcpService
metadata: {name: off, namespace: default}
spec: {enabled: false, port: 5001, rules: [{targets: [{host: b.internal, port: 1}]}]}
`;
  const out = translate(model(yaml));
  const tcp = out.envoy.listeners.filter((l) => String(l.name).startsWith('oxds-tcp~'));
  assert.deepEqual(
    tcp.map((l) => ((l.address as ProtoObject).socketAddress as ProtoObject).portValue),
    [5000],
  );
  assert.ok(JSON.stringify(tcp[0]).includes('tcp_proxy'));
  assert.deepEqual(
    out.grpc.listeners.filter((l) => String(l.name).startsWith('oxds-tcp')),
    [],
  );
});

test('TcpService problems reach the status of their object even when its YAML name or namespace has a "/"', () => {
  // A YAML file is not checked by the API server: `metadata.name: /` gave the SNI warning the name ''
  // (the key was split on '/'), so it named no object and no status showed it.
  const tcp = (name: string, ns: string, port: number): string => `apiVersion: proxy.otoroshi.io/v1alpha1
kind: TcpService
metadata: {name: "${name}", namespace: "${ns}"}
spec:
  port: ${port}
  tls: PassThrough
  sni: {enabled: true}
  rules: [{domain: "pg-*.example.com", targets: [{host: a.internal, port: 1}]}, {targets: [{host: b.internal}]}]
`;
  const docs = [tcp('/', 'data', 5432), tcp('pg/main', 'data', 5433), tcp('x', 'ns/a', 5434), tcp('y/', 'ns/a', 8080)];
  const p = parseYamlFile('t.yaml', docs.join('---\n'), 0);
  const c = compile(assembleView([{ relPath: 't.yaml', ...p }]), {}, { httpPort: 8080 });
  const codes = (key: string): string[] => {
    const s = c.statuses.find((x) => x.key === key);
    assert.ok(s, `no status for ${key}`);
    return s.errors.map((e) => `${s.state} ${e.code} ${e.field ?? ''}`);
  };
  const sni = 'OXDS_NOT_SUPPORTED spec.rules[0].domain';
  assert.deepEqual(codes('TcpService/data//'), [`valid ${sni}`]);
  assert.deepEqual(codes('TcpService/data/pg/main'), [`valid ${sni}`]);
  assert.deepEqual(codes('TcpService/ns/a/x'), [`valid ${sni}`]);
  assert.deepEqual(codes('TcpService/ns/a/y/'), [`invalid ${sni}`, 'invalid OXDS_ROUTE_CONFLICT spec.port']);
  assert.ok(c.errors.every((e) => e.name !== '' && e.name !== 'main'));
});
