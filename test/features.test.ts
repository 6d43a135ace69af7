// Issue 3 model units: ipFiltering entries, feature parsing, Ingress annotations mapped to the same
// descriptor fields as the CRD (both prefixes, both spellings), "not supported" warnings.
import { test } from 'vitest';
import assert from 'node:assert/strict';
import { ipEntryToCidrs } from '../src/model/edge-features.js';
import { parseYamlFile } from '../src/sources/yaml.js';
import { buildModel } from '../src/model/build.js';
import type { BuildResult, Descriptor } from '../src/model/types.js';

function build(yaml: string): BuildResult {
  const p = parseYamlFile('t.yaml', yaml, 0);
  return buildModel({ objects: p.objects, loadErrors: p.errors });
}

test('ipFiltering entries: IPs, CIDRs, trailing-octet wildcards; anything else is not expressible', () => {
  assert.deepEqual(ipEntryToCidrs('10.0.0.1'), [{ address: '10.0.0.1', prefixLen: 32 }]);
  assert.deepEqual(ipEntryToCidrs('10.0.0.0/8'), [{ address: '10.0.0.0', prefixLen: 8 }]);
  assert.deepEqual(ipEntryToCidrs('192.168.*.*'), [{ address: '192.168.0.0', prefixLen: 16 }]);
  assert.deepEqual(ipEntryToCidrs('172.16.*'), [{ address: '172.16.0.0', prefixLen: 16 }]);
  assert.deepEqual(ipEntryToCidrs('2001:db8::/32'), [{ address: '2001:db8::', prefixLen: 32 }]);
  assert.equal(ipEntryToCidrs('*')?.length, 2);
  for (const bad of ['10.*.0.1', '10.0.0.0/33', 'abc', '300.1.*', '10.0.0.1/x'])
    assert.equal(ipEntryToCidrs(bad), null, bad);
});

const SVC = `apiVersion: v1
kind: Service
metadata: {name: web, namespace: default}
spec: {clusterIP: 10.96.0.20, ports: [{name: http, port: 80}]}
---
`;

function ingress(annotations: Record<string, string>): string {
  const ann = Object.entries({ 'kubernetes.io/ingress.class': 'otoroshi', ...annotations })
    .map(([k, v]) => `    ${JSON.stringify(k)}: ${JSON.stringify(v)}`)
    .join('\n');
  return `${SVC}apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: ing
  namespace: default
  annotations:
${ann}
spec:
  rules:
    - host: web.example.com
      http: {paths: [{path: /, pathType: Prefix, backend: {service: {name: web, port: {number: 80}}}}]}
`;
}

function crd(spec: string): string {
  return `apiVersion: proxy.otoroshi.io/v1alpha1
kind: ServiceDescriptor
metadata: {name: d, namespace: default}
spec:
  hosts: [web.example.com]
  targets: [{url: "http://10.0.0.1:80"}]
${spec}`;
}

type Features = Pick<
  Descriptor,
  'ipFiltering' | 'redirection' | 'cors' | 'gzip' | 'healthCheck' | 'openApiDescriptorUrl'
>;
function features(d: Descriptor | undefined): Features {
  assert.ok(d);
  const { ipFiltering, redirection, cors, gzip, healthCheck, openApiDescriptorUrl } = d;
  return JSON.parse(
    JSON.stringify({ ipFiltering, redirection, cors, gzip, healthCheck, openApiDescriptorUrl }),
  ) as Features;
}

test('Ingress annotations set the same descriptor fields as the CRD, under both prefixes and both spellings', () => {
  const fromCrd = features(
    build(
      crd(`  ipFiltering: {whitelist: [10.0.0.0/8], blacklist: [10.9.9.9]}
  redirection: {enabled: true, code: 302, to: "https://moved.example.com"}
  cors: {enabled: true, allowOrigin: "https://a.example.com", allowMethods: [GET, POST], maxAge: 60}
  gzip: {enabled: true, whiteList: [application/json], compressionLevel: 7}
  healthCheck: {enabled: true, url: /ready}
  api: {openApiDescriptorUrl: /openapi.json}
`),
    ).model.descriptors[0],
  );
  const variants: Record<string, string>[] = [
    {
      'otoroshi.ingress.kubernetes.io/ip-filtering.whitelist': '10.0.0.0/8',
      'otoroshi.ingress.kubernetes.io/ip-filtering.blacklist': '10.9.9.9',
      'otoroshi.ingress.kubernetes.io/redirection.enabled': 'true',
      'otoroshi.ingress.kubernetes.io/redirection.code': '302',
      'otoroshi.ingress.kubernetes.io/redirection.to': 'https://moved.example.com',
      'otoroshi.ingress.kubernetes.io/cors.enabled': 'true',
      'otoroshi.ingress.kubernetes.io/cors.allowOrigin': 'https://a.example.com',
      'otoroshi.ingress.kubernetes.io/cors.allowMethods': 'GET, POST',
      'otoroshi.ingress.kubernetes.io/cors.maxAge': '60',
      'otoroshi.ingress.kubernetes.io/gzip.enabled': 'true',
      'otoroshi.ingress.kubernetes.io/gzip.whiteList': 'application/json',
      'otoroshi.ingress.kubernetes.io/gzip.compressionLevel': '7',
      'otoroshi.ingress.kubernetes.io/health-check.enabled': 'true',
      'otoroshi.ingress.kubernetes.io/health-check.url': '/ready',
      'otoroshi.ingress.kubernetes.io/api.open-api-descriptor-url': '/openapi.json',
    },
    {
      'ingress.otoroshi.io/ipFiltering.whitelist': '10.0.0.0/8',
      'ingress.otoroshi.io/ipFiltering.blacklist': '10.9.9.9',
      'ingress.otoroshi.io/redirection.enabled': 'TRUE',
      'ingress.otoroshi.io/redirection.code': '302',
      'ingress.otoroshi.io/redirection.to': 'https://moved.example.com',
      'ingress.otoroshi.io/cors.enabled': 'true',
      'ingress.otoroshi.io/cors.allow-origin': 'https://a.example.com',
      'ingress.otoroshi.io/cors.allow-methods': 'GET,POST',
      'ingress.otoroshi.io/cors.max-age': '60',
      'ingress.otoroshi.io/gzip.enabled': 'true',
      'ingress.otoroshi.io/gzip.white-list': 'application/json',
      'ingress.otoroshi.io/gzip.compression-level': '7',
      'ingress.otoroshi.io/healthCheck.enabled': 'true',
      'ingress.otoroshi.io/healthCheck.url': '/ready',
      'ingress.otoroshi.io/api.openApiDescriptorUrl': '/openapi.json',
    },
  ];
  for (const v of variants) {
    const r = build(ingress(v));
    const st = r.statuses.find((s) => s.kind === 'Ingress');
    assert.equal(st?.state, 'valid', JSON.stringify(st?.errors));
    assert.deepEqual(
      st?.errors.filter((e) => e.severity === 'error'),
      [],
    );
    assert.deepEqual(features(r.model.descriptors[0]), fromCrd);
  }
});

test('annotation values that do not parse invalidate only that ingress; unknown ones warn', () => {
  const r = build(
    ingress({
      'otoroshi.ingress.kubernetes.io/cors.enabled': 'yes',
      'otoroshi.ingress.kubernetes.io/what-is-this': 'x',
    }),
  );
  const st = r.statuses.find((s) => s.kind === 'Ingress');
  assert.equal(st?.state, 'invalid');
  assert.deepEqual(st?.errors.map((e) => [e.severity, e.code]).sort(), [
    ['error', 'OXDS_INVALID_ANNOTATION'],
    ['warning', 'OXDS_INVALID_ANNOTATION'],
  ]);
});

test('fields Envoy cannot express warn OXDS_NOT_SUPPORTED on the object, and the descriptor keeps serving', () => {
  const r = build(crd('  enforceSecureCommunication: true\n  transformerRefs: [cp:t]\n  privateApp: true\n'));
  const st = r.statuses.find((s) => s.kind === 'ServiceDescriptor');
  assert.equal(st?.state, 'valid');
  assert.deepEqual(
    st?.errors.filter((e) => e.code === 'OXDS_NOT_SUPPORTED').map((e) => e.field),
    ['spec.enforceSecureCommunication', 'spec.transformerRefs', 'spec.privateApp'],
  );
  assert.equal(r.model.descriptors.length, 1);
  const ing = build(
    ingress({ 'ingress.otoroshi.io/enforceSecureCommunication': 'true', 'ingress.otoroshi.io/secComVersion': 'V2' }),
  );
  const ist = ing.statuses.find((s) => s.kind === 'Ingress');
  assert.deepEqual(
    ist?.errors.map((e) => e.code),
    ['OXDS_NOT_SUPPORTED', 'OXDS_NOT_SUPPORTED'],
  );
});

test('targets mtlsConfig: refs without / resolve in the descriptor namespace', () => {
  const r = build(
    crd('').replace(
      'targets: [{url: "http://10.0.0.1:80"}]',
      'targets: [{url: "https://10.0.0.1", mtlsConfig: {mtls: true, certs: [client], trustedCerts: [other/ca], ' +
        'loose: true}}]',
    ),
  );
  assert.deepEqual(r.model.descriptors[0]?.targets[0]?.mtls, {
    certs: ['default/client'],
    trustedCerts: ['other/ca'],
    trustAll: false,
    loose: true,
    field: 'spec.targets[0].mtlsConfig',
  });
});

test('TcpService and GlobalConfig reach the model', () => {
  const r = build(`apiVersion: proxy.otoroshi.io/v1alpha1
kind: TcpService
metadata: {name: t, namespace: default}
spec:
  port: 5000
  tls: passthrough
  sni: {enabled: true}
  rules: [{domain: a.example.com, targets: [{host: a.internal, port: 1}]}]
---
apiVersion: proxy.otoroshi.io/v1alpha1
kind: GlobalConfig
metadata: {name: g, namespace: default}
spec: {maintenanceMode: true, trustXForwarded: false, ipFiltering: {blacklist: [1.2.3.4]}}
`);
  assert.equal(r.model.tcpServices?.[0]?.tls, 'PassThrough');
  assert.deepEqual(r.model.tcpServices?.[0]?.rules, [
    { domain: 'a.example.com', targets: [{ host: 'a.internal', port: 1, tls: false }] },
  ]);
  assert.deepEqual(
    r.model.globalConfig && {
      m: r.model.globalConfig.maintenanceMode,
      p: r.model.globalConfig.trustedProxies,
      b: r.model.globalConfig.ipFiltering.blacklist,
    },
    { m: true, p: 0, b: ['1.2.3.4'] },
  );
});
