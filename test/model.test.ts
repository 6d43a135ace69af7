import { test } from 'vitest';
import assert from 'node:assert/strict';
import path from 'node:path';
import { buildModel, prevalidateSpecs, type ModelSettings } from '../src/model/build.js';
import { derivedToken } from '../src/model/ids.js';
import { validateSpec } from '../src/model/schemas.js';
import { runSteps } from '../src/model/steps.js';
import { loadConfigDir, parseYamlFile } from '../src/sources/yaml.js';
import type { BuildResult, ConfigError, Descriptor, ObjectStatus } from '../src/model/types.js';

const FIX = path.join(process.cwd(), 'test/fixtures/model');

function build(yaml: string, settings?: Partial<ModelSettings>): BuildResult {
  const { objects, errors } = parseYamlFile('t.yaml', yaml, 0);
  return buildModel({ objects, loadErrors: errors }, settings);
}
function st(r: BuildResult, key: string): ObjectStatus {
  const s = r.statuses.find((x) => x.key === key);
  assert.ok(s, `no status for ${key}; have ${r.statuses.map((x) => x.key).join(', ')}`);
  return s;
}
function errs(s: ObjectStatus, severity: 'error' | 'warning' = 'error'): ConfigError[] {
  return s.errors.filter((e) => e.severity === severity);
}
function desc(r: BuildResult, id: string): Descriptor {
  const d = r.model.descriptors.find((x) => x.id === id);
  assert.ok(d, `no descriptor ${id}; have ${r.model.descriptors.map((x) => x.id).join(', ')}`);
  return d;
}

const SD = (name: string, spec: string, meta = ''): string =>
  `apiVersion: proxy.otoroshi.io/v1alpha1\nkind: ServiceDescriptor\nmetadata:\n  name: ${name}` +
  `\n${meta}spec:\n${spec}\n---\n`;

const SERVICE = `apiVersion: v1
kind: Service
metadata: {name: web, namespace: default}
spec:
  clusterIP: 10.96.0.10
  ports:
    - {name: http, port: 80, targetPort: 8080}
    - {name: https, port: 443, targetPort: 8443}
---
`;
const ING = (name: string, extra = '', annotations = ''): string => `apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: ${name}
  namespace: default
${annotations !== '' ? `  annotations:\n${annotations}` : ''}spec:
  ingressClassName: otoroshi
${extra}  rules:
    - host: ${name}.oto.tools
      http:
        paths:
          - path: /api
            pathType: Prefix
            backend: {service: {name: web, port: {number: 80}}}
---
`;

test('examples/ builds with zero errors and zero warnings', async () => {
  const view = await loadConfigDir(path.join(process.cwd(), 'examples'));
  assert.deepEqual(view.loadErrors, []);
  const r = buildModel(view);
  const problems = r.statuses.flatMap((s) => s.errors);
  assert.deepEqual(problems, []);
  assert.ok(r.statuses.every((s) => s.state === 'valid'));
  assert.ok(r.model.descriptors.some((d) => d.hosts.includes('greeter.oto.tools') && d.forceHttps === false));
  assert.equal(r.model.groups.length, 1);
  assert.equal(r.model.apikeys.length, 1);
  assert.ok(r.model.descriptors.some((d) => d.sourceKind === 'Ingress'));
});

test('defaults: CRD descriptor vs Ingress descriptor', () => {
  const r = build(
    SD('crd', '  hosts: [crd.oto.tools]\n  targets: [{url: "http://127.0.0.1:8080"}]') + SERVICE + ING('ing'),
  );
  const c = desc(r, 'kubernetes-crd-import-default-crd');
  assert.equal(c.name, 'crd');
  assert.equal(c.sourceKind, 'ServiceDescriptor');
  assert.equal(c.enabled, true);
  assert.deepEqual(c.groups, []);
  assert.deepEqual(c.hosts, ['crd.oto.tools']); // no mesh hosts by default
  assert.deepEqual(c.paths, []);
  assert.equal(c.root, '/');
  assert.equal(c.stripPath, true);
  assert.equal(c.forceHttps, true);
  assert.equal(c.sendOtoroshiHeadersBack, true);
  assert.equal(c.enforceSecureCommunication, false);
  assert.equal(c.overrideHost, true);
  assert.equal(c.allowHttp10, true);
  assert.deepEqual(c.publicPatterns, []); // private: apikey needed
  assert.equal(c.loadBalancing, 'RoundRobin');
  assert.deepEqual(c.clientConfig, {
    useCircuitBreaker: true,
    retries: 1,
    maxErrors: 20,
    retryInitialDelay: 50,
    backoffFactor: 2,
    connectionTimeout: 10000,
    idleTimeout: 60000,
    callAndStreamTimeout: 120000,
    callTimeout: 30000,
    globalTimeout: 30000,
    sampleInterval: 2000,
    customTimeouts: [],
  });

  const i = desc(r, 'kubernetes-service-default-ing-ing-oto-tools-api');
  assert.equal(i.sourceKind, 'Ingress');
  assert.equal(i.name, 'kubernetes - ing - ing.oto.tools - /api');
  assert.deepEqual(i.groups, ['default']);
  assert.deepEqual(i.hosts, ['ing.oto.tools']);
  assert.deepEqual(i.paths, [{ value: '/api', type: 'Prefix' }]);
  assert.equal(i.root, '/api');
  assert.equal(i.stripPath, true);
  assert.equal(i.forceHttps, false);
  assert.equal(i.sendOtoroshiHeadersBack, false);
  assert.equal(i.enforceSecureCommunication, false);
  assert.deepEqual(i.publicPatterns, ['/.*']);
  assert.deepEqual(i.clientConfig, c.clientConfig);
  assert.equal(i.targets[0]?.host, 'web'); // not the FQDN for ingresses
});

test('mesh hosts only when enableMeshHosts is set, and not with enabledAdditionalHosts: false', () => {
  const y =
    SD('m', '  hosts: [m.oto.tools]\n  targets: [{url: "http://10.0.0.1"}]', '  namespace: prod\n') +
    SD('n', '  enabledAdditionalHosts: false\n  hosts: [n.oto.tools]\n  targets: [{url: "http://10.0.0.1"}]');
  const r = build(y, { enableMeshHosts: true });
  assert.deepEqual(desc(r, 'kubernetes-crd-import-prod-m').hosts, [
    'm.oto.tools',
    'm.global.otoroshi.mesh',
    'm.prod.otoroshi.mesh',
    'm.prod.svc.otoroshi.mesh',
    'm.prod.svc.cluster.local',
  ]);
  assert.deepEqual(desc(r, 'kubernetes-crd-import-default-n').hosts, ['n.oto.tools']);
});

test(
  'targets: url, host+scheme, ipAddress, hostname (dns), ' + 'serviceName in entries, object form and targetsFrom',
  () => {
    const spec = `  hosts: [t.oto.tools]
  targets:
    - url: http://127.0.0.1:50051
    - url: https://backend.example.com
      weight: 2
      protocol: HTTP/2.0
    - host: localhost:9000
      scheme: http
    - host: api.internal:8443
      ipAddress: 10.1.2.3
    - host: "[::1]:81"
      scheme: http
    - serviceName: web
      servicePort: https
`;
    const r = build(
      SERVICE +
        SD('t', spec) +
        SD('o', '  hosts: [o.oto.tools]\n  targets: {serviceName: default/web, servicePort: 80}') +
        SD('f', '  hosts: [f.oto.tools]\n  targetsFrom: {serviceName: web, servicePort: http}'),
    );
    const t = desc(r, 'kubernetes-crd-import-default-t').targets;
    assert.deepEqual(
      t.map((x) => x.id),
      ['t0', 't1', 't2', 't3', 't4', 't5'],
    );
    assert.deepEqual(t[0], {
      id: 't0',
      scheme: 'http',
      host: '127.0.0.1',
      port: 50051,
      weight: 1,
      protocol: 'HTTP/1.1',
      resolution: { type: 'static', endpoints: [{ ip: '127.0.0.1', port: 50051, ready: true }] },
    });
    assert.deepEqual(t[1], {
      id: 't1',
      scheme: 'https',
      host: 'backend.example.com',
      port: 443,
      weight: 2,
      protocol: 'HTTP/2.0',
      resolution: { type: 'dns', hostname: 'backend.example.com', port: 443 },
    });
    assert.deepEqual(t[2]?.resolution, { type: 'dns', hostname: 'localhost', port: 9000 });
    assert.equal(t[2]?.scheme, 'http');
    assert.equal(t[3]?.scheme, 'https'); // Otoroshi's default scheme for `host` entries
    assert.equal(t[3]?.host, 'api.internal');
    assert.deepEqual(t[3]?.resolution, { type: 'static', endpoints: [{ ip: '10.1.2.3', port: 8443, ready: true }] });
    assert.deepEqual(t[4]?.resolution, { type: 'static', endpoints: [{ ip: '::1', port: 81, ready: true }] });
    // no EndpointSlice: the clusterIP as a single static endpoint; https port → https scheme; FQDN host
    assert.deepEqual(t[5], {
      id: 't5',
      scheme: 'https',
      host: 'web.default.svc.cluster.local',
      port: 443,
      weight: 1,
      protocol: 'HTTP/1.1',
      service: { namespace: 'default', name: 'web', port: 'https' },
      resolution: { type: 'static', endpoints: [{ ip: '10.96.0.10', port: 443, ready: true }] },
    });
    const o = desc(r, 'kubernetes-crd-import-default-o').targets;
    assert.equal(o.length, 1);
    assert.equal(o[0]?.scheme, 'http');
    assert.equal(o[0]?.port, 80);
    const f = desc(r, 'kubernetes-crd-import-default-f').targets;
    assert.equal(f[0]?.service?.port, 'http');
  },
);

test('ExternalName Service → dns target', () => {
  const r = build(
    'apiVersion: v1\nkind: Service\nmetadata: {name: ext}\n' +
      'spec: {type: ExternalName, externalName: api.example.com, ports: [{port: 443}]}\n---\n' +
      SD('e', '  hosts: [e.oto.tools]\n  targets: {serviceName: ext, servicePort: 443}'),
  );
  const t = desc(r, 'kubernetes-crd-import-default-e').targets[0];
  assert.deepEqual(t?.resolution, { type: 'dns', hostname: 'api.example.com', port: 443 });
  assert.equal(t?.scheme, 'https');
});

test('EndpointSlice: endpoints by port name, not-ready endpoints kept with ready:false, other services ignored', () => {
  const slices = `apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: web-1, labels: {kubernetes.io/service-name: web}}
addressType: IPv4
ports: [{name: http, port: 8080}, {name: https, port: 8443}]
endpoints:
  - addresses: [10.0.0.2]
    conditions: {ready: true}
  - addresses: [10.0.0.1]
    conditions: {ready: false}
  - addresses: [10.0.0.3]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: other-1, labels: {kubernetes.io/service-name: other}}
addressType: IPv4
ports: [{name: http, port: 9999}]
endpoints: [{addresses: [10.9.9.9]}]
---
`;
  const r = build(
    SERVICE + slices + SD('s', '  hosts: [s.oto.tools]\n  targets: [{serviceName: web, servicePort: 80}]'),
  );
  const t = desc(r, 'kubernetes-crd-import-default-s').targets[0];
  assert.deepEqual(t?.resolution, {
    type: 'static',
    endpoints: [
      { ip: '10.0.0.1', port: 8080, ready: false },
      { ip: '10.0.0.2', port: 8080, ready: true },
      { ip: '10.0.0.3', port: 8080, ready: true },
    ],
  });
});

test('unresolved Service: error when no target is left, warning when some targets are usable', () => {
  const r = build(
    SD('a', '  hosts: [a.oto.tools]\n  targets: [{serviceName: nope, servicePort: 80}]') +
      SD('b', '  hosts: [b.oto.tools]\n  targets: [{serviceName: nope}, {url: "http://10.0.0.1"}]'),
  );
  const a = st(r, 'ServiceDescriptor/default/a');
  assert.equal(a.state, 'invalid');
  assert.equal(errs(a)[0]?.code, 'OXDS_UNRESOLVED_REFERENCE');
  assert.equal(errs(a)[0]?.field, 'spec.targets[0].serviceName');
  const b = st(r, 'ServiceDescriptor/default/b');
  assert.equal(b.state, 'valid');
  assert.equal(errs(b, 'warning')[0]?.code, 'OXDS_UNRESOLVED_REFERENCE');
  assert.deepEqual(
    desc(r, 'kubernetes-crd-import-default-b').targets.map((t) => t.id),
    ['t1'],
  );
  assert.equal(r.model.descriptors.length, 1);
});

test('weight 0: warning and the target is dropped', () => {
  const r = build(
    SD('w', '  hosts: [w.oto.tools]\n  targets: [{url: "http://10.0.0.1", weight: 0}, {url: "http://10.0.0.2"}]'),
  );
  const s = st(r, 'ServiceDescriptor/default/w');
  assert.equal(s.state, 'valid');
  assert.equal(errs(s, 'warning')[0]?.field, 'spec.targets[0].weight');
  assert.deepEqual(
    desc(r, 'kubernetes-crd-import-default-w').targets.map((t) => t.id),
    ['t1'],
  );
});

test('mesh Pods and Namespaces (read by the sidecar plan) get no "outside our scope" notice', () => {
  const r = build(
    'apiVersion: v1\nkind: Pod\nmetadata: {name: p, labels: {otoroshi.io/sidecar: inject}}\n---\n' +
      'apiVersion: v1\nkind: Namespace\nmetadata: {name: shop}\n---\n' +
      'apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\n',
  );
  const notices = r.statuses.flatMap((x) => x.errors.map((e) => `${x.key} ${e.code}`));
  assert.deepEqual(notices, ['Deployment/default/d OXDS_SKIPPED_KIND']);
});

test('unknown kind: error on that object only; kinds outside our scope are skipped with a notice', () => {
  const r = build(
    'apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\n---\napiVersion: ' +
      'proxy.otoroshi.io/v2\nkind: ServiceGroup\nmetadata: {name: g}\n---\n' +
      SD('ok', '  hosts: [ok.oto.tools]\n  targets: [{url: "http://10.0.0.1"}]'),
  );
  assert.deepEqual(
    st(r, 'Deployment/default/d').errors.map((e) => [e.severity, e.code]),
    [['notice', 'OXDS_SKIPPED_KIND']],
  );
  assert.equal(st(r, 'Deployment/default/d').state, 'valid');
  assert.equal(errs(st(r, 'ServiceGroup/default/g'))[0]?.code, 'OXDS_UNKNOWN_KIND');
  assert.equal(st(r, 'ServiceDescriptor/default/ok').state, 'valid');
  assert.equal(r.model.descriptors.length, 1);
});

test('missing targets → OXDS_MISSING_FIELD spec.targets; empty targets list is invalid too', () => {
  const r = build(SD('m', '  hosts: [m.oto.tools]') + SD('e', '  hosts: [e.oto.tools]\n  targets: []'));
  const m = errs(st(r, 'ServiceDescriptor/default/m'));
  assert.deepEqual(
    m.map((e) => [e.code, e.field, e.kind, e.name, e.file, e.doc]),
    [['OXDS_MISSING_FIELD', 'spec.targets', 'ServiceDescriptor', 'm', 't.yaml', 0]],
  );
  assert.equal(errs(st(r, 'ServiceDescriptor/default/e'))[0]?.code, 'OXDS_MISSING_FIELD');
  assert.equal(r.model.descriptors.length, 0);
});

test('wrong type: weight "abc" names spec.targets[0].weight; target without url/host/serviceName', () => {
  const r = build(
    SD('w', '  hosts: [w.oto.tools]\n  targets:\n    - url: http://10.0.0.1\n      weight: abc\n    - scheme: http'),
  );
  const e = errs(st(r, 'ServiceDescriptor/default/w'));
  const weight = e.find((x) => x.field === 'spec.targets[0].weight');
  assert.ok(weight, JSON.stringify(e));
  assert.equal(weight.code, 'OXDS_INVALID_FIELD');
  assert.match(weight.message, /integer/);
  const t1 = e.find((x) => x.field === 'spec.targets[1]');
  assert.ok(t1, JSON.stringify(e));
  assert.match(t1.message, /url.*host.*serviceName/);
  assert.equal(e.length, 2);
});

test('invalid RE2 regex in matchingHeaders / publicPatterns → OXDS_INVALID_REGEX naming the field', () => {
  const r = build(
    SD(
      'h',
      '  hosts: [h.oto.tools]\n  matchingHeaders:\n    x-version: "(?=v2)v2"\n  targets: [{url: "http://10.0.0.1"}]',
    ) +
      SD(
        'p',
        '  hosts: [p.oto.tools]\n  publicPatterns: ["/ok/.*", "/bad/(unclosed"]\n  targets: [{url: "http://10.0.0.1"}]',
      ) +
      SD(
        'g',
        '  hosts: [g.oto.tools]\n  matchingHeaders: {x-version: "v2(\\\\.[0-9]+)?"}\n  targets: [{url: ' +
          '"http://10.0.0.1"}]',
      ),
  );
  const h = errs(st(r, 'ServiceDescriptor/default/h'));
  assert.deepEqual(
    h.map((e) => [e.code, e.field]),
    [['OXDS_INVALID_REGEX', 'spec.matchingHeaders.x-version']],
  );
  const p = errs(st(r, 'ServiceDescriptor/default/p'));
  assert.deepEqual(
    p.map((e) => [e.code, e.field]),
    [['OXDS_INVALID_REGEX', 'spec.publicPatterns[1]']],
  );
  assert.deepEqual(desc(r, 'kubernetes-crd-import-default-g').matchingHeaders, [
    { name: 'x-version', regex: 'v2(\\.[0-9]+)?' },
  ]);
});

test('paths and matchingRoot become PlainPrefix; a path without a leading / is invalid', () => {
  const r = build(
    SD(
      'p',
      '  hosts: [p.oto.tools]\n  paths: [/api, /v2]\n  matchingRoot: /root\n  targets: [{url: "http://10.0.0.1"}]',
    ) + SD('bad', '  hosts: [b.oto.tools]\n  paths: [api]\n  targets: [{url: "http://10.0.0.1"}]'),
  );
  assert.deepEqual(desc(r, 'kubernetes-crd-import-default-p').paths, [
    { value: '/api', type: 'PlainPrefix' },
    { value: '/v2', type: 'PlainPrefix' },
    { value: '/root', type: 'PlainPrefix' },
  ]);
  assert.deepEqual(
    errs(st(r, 'ServiceDescriptor/default/bad')).map((e) => [e.code, e.field]),
    [['OXDS_INVALID_FIELD', 'spec.paths[0]']],
  );
});

test('unknown targetsLoadBalancing type → RoundRobin with a warning', () => {
  const r = build(
    SD('l', '  hosts: [l.oto.tools]\n  targetsLoadBalancing: {type: Fancy}\n  targets: [{url: "http://10.0.0.1"}]'),
  );
  assert.equal(desc(r, 'kubernetes-crd-import-default-l').loadBalancing, 'RoundRobin');
  assert.equal(errs(st(r, 'ServiceDescriptor/default/l'), 'warning')[0]?.field, 'spec.targetsLoadBalancing.type');
});

test(
  'route conflict: the oldest (creationTimestamp, then file order) wins; ' + 'disabled descriptors do not conflict',
  () => {
    const t = '  targets: [{url: "http://10.0.0.1"}]';
    const r = build(
      SD('newer', `  hosts: [c.oto.tools]\n  paths: [/x]\n${t}`, '  creationTimestamp: "2024-02-01T00:00:00Z"\n') +
        SD('older', `  hosts: [c.oto.tools]\n  paths: [/x]\n${t}`, '  creationTimestamp: "2024-01-01T00:00:00Z"\n') +
        SD('first', `  hosts: [d.oto.tools]\n${t}`) +
        SD('second', `  hosts: [d.oto.tools]\n${t}`) +
        SD('off', `  enabled: false\n  hosts: [d.oto.tools]\n${t}`) +
        SD('other-headers', `  hosts: [d.oto.tools]\n  matchingHeaders: {x-v: "2"}\n${t}`),
    );
    const newer = errs(st(r, 'ServiceDescriptor/default/newer'));
    assert.equal(newer[0]?.code, 'OXDS_ROUTE_CONFLICT');
    assert.match(newer[0]?.message ?? '', /kubernetes-crd-import-default-older/);
    assert.equal(st(r, 'ServiceDescriptor/default/older').state, 'valid');
    assert.equal(st(r, 'ServiceDescriptor/default/first').state, 'valid');
    assert.equal(errs(st(r, 'ServiceDescriptor/default/second'))[0]?.code, 'OXDS_ROUTE_CONFLICT');
    assert.equal(st(r, 'ServiceDescriptor/default/off').state, 'valid');
    assert.equal(desc(r, 'kubernetes-crd-import-default-off').enabled, false);
    assert.equal(st(r, 'ServiceDescriptor/default/other-headers').state, 'valid');
    assert.deepEqual(
      r.model.descriptors.map((d) => d.id),
      [
        'kubernetes-crd-import-default-first',
        'kubernetes-crd-import-default-off',
        'kubernetes-crd-import-default-older',
        'kubernetes-crd-import-default-other-headers',
      ],
    );
  },
);

test('ingress annotations: both prefixes, camelCase and kebab-case; a bad value invalidates only that ingress', () => {
  const good = ING(
    'good',
    '',
    [
      '    ingress.otoroshi.io/force-https: "TRUE"',
      '    otoroshi.ingress.kubernetes.io/sendOtoroshiHeadersBack: "true"',
      '    ingress.otoroshi.io/public-patterns: ""',
      '    ingress.otoroshi.io/additional-headers: "a=1, b=x=2"',
      '    ingress.otoroshi.io/remove-headers-in: "x-a, x-b"',
      '    ingress.otoroshi.io/matching-headers: "x-version=v2"',
      '    ingress.otoroshi.io/clientConfig.retries: "3"',
      '    ingress.otoroshi.io/client-config.call-timeout: "1000"',
      '    ingress.otoroshi.io/targets-load-balancing: Random',
      '    ingress.otoroshi.io/name: my route',
      '    ingress.otoroshi.io/enabled: "false"',
      '',
    ].join('\n'),
  );
  const bad = ING('bad', '', '    ingress.otoroshi.io/force-https: "yes"\n');
  const r = build(SERVICE + good + bad);
  const g = desc(r, 'kubernetes-service-default-good-good-oto-tools-api');
  assert.equal(g.forceHttps, true);
  assert.equal(g.sendOtoroshiHeadersBack, true);
  assert.deepEqual(g.publicPatterns, ['']);
  assert.deepEqual(g.additionalHeaders, { a: '1', b: '2' });
  assert.deepEqual(g.removeHeadersIn, ['x-a', 'x-b']);
  assert.deepEqual(g.matchingHeaders, [{ name: 'x-version', regex: 'v2' }]);
  assert.equal(g.clientConfig.retries, 3);
  assert.equal(g.clientConfig.callTimeout, 1000);
  assert.equal(g.loadBalancing, 'Random');
  assert.equal(g.name, 'my route');
  assert.equal(g.enabled, false);
  assert.equal(st(r, 'Ingress/default/good').state, 'valid');
  const b = st(r, 'Ingress/default/bad');
  assert.equal(b.state, 'invalid');
  assert.deepEqual(
    errs(b).map((e) => [e.code, e.field]),
    [['OXDS_INVALID_ANNOTATION', 'metadata.annotations["ingress.otoroshi.io/force-https"]']],
  );
  assert.match(errs(b)[0]?.message ?? '', /ingress\.otoroshi\.io\/force-https/);
  assert.equal(r.model.descriptors.length, 1);
});

test('ingress class filtering: class name, IngressClass controller, default IngressClass, settings wildcard', () => {
  const mk = (name: string, cls: string): string => `apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: ${name}
${cls}spec:
  rules:
    - host: ${name}.oto.tools
      http: {paths: [{path: /, pathType: Prefix, backend: {service: {name: web, port: {number: 80}}}}]}
---
`;
  const classes = `apiVersion: networking.k8s.io/v1
kind: IngressClass
metadata: {name: oto-class}
spec: {controller: otoroshi.io/ingress-controller}
---
apiVersion: networking.k8s.io/v1
kind: IngressClass
metadata: {name: nginx}
spec: {controller: k8s.io/ingress-nginx}
---
`;
  const ings =
    mk('by-annotation', '  annotations: {kubernetes.io/ingress.class: otoroshi}\n') +
    mk('by-class-object', '').replace('spec:\n', 'spec:\n  ingressClassName: oto-class\n') +
    mk('nginx', '').replace('spec:\n', 'spec:\n  ingressClassName: nginx\n') +
    mk('classless', '');
  const r1 = build(SERVICE + classes + ings);
  assert.equal(st(r1, 'Ingress/default/by-annotation').state, 'valid');
  assert.equal(errs(st(r1, 'Ingress/default/by-annotation'), 'warning').length, 0);
  assert.equal(errs(st(r1, 'Ingress/default/by-class-object'), 'warning').length, 0);
  assert.equal(errs(st(r1, 'Ingress/default/nginx'), 'warning')[0]?.code, 'OXDS_INGRESS_IGNORED');
  assert.equal(st(r1, 'Ingress/default/nginx').state, 'valid');
  assert.equal(errs(st(r1, 'Ingress/default/classless'), 'warning')[0]?.code, 'OXDS_INGRESS_IGNORED');
  assert.deepEqual(
    new Set(r1.model.descriptors.map((d) => d.sourceKey)),
    new Set(['Ingress/default/by-annotation', 'Ingress/default/by-class-object']),
  );

  // the default IngressClass belongs to otoroshi: class-less ingresses are ours
  const r2 = build(
    SERVICE +
      classes.replace(
        'metadata: {name: oto-class}',
        'metadata: {name: oto-class, annotations: {ingressclass.kubernetes.io/is-default-class: "true"}}',
      ) +
      ings,
  );
  assert.equal(errs(st(r2, 'Ingress/default/classless'), 'warning').length, 0);
  assert.equal(errs(st(r2, 'Ingress/default/nginx'), 'warning')[0]?.code, 'OXDS_INGRESS_IGNORED');
  // ingressClasses: ['*'] takes everything
  const r3 = build(SERVICE + classes + ings, { ingressClasses: ['*'] });
  assert.equal(r3.model.descriptors.length, 4);
});

test('ingress: v1beta1 backend shape (serviceName/servicePort), pathType mapping, default backend', () => {
  const y = `apiVersion: extensions/v1beta1
kind: Ingress
metadata:
  name: old
  annotations: {kubernetes.io/ingress.class: otoroshi}
spec:
  backend: {serviceName: web, servicePort: https}
  rules:
    - http:
        paths:
          - path: /exact
            pathType: Exact
            backend: {serviceName: web, servicePort: 80}
          - path: /impl
            backend: {serviceName: web, servicePort: http}
---
`;
  const r = build(SERVICE + y);
  assert.equal(st(r, 'Ingress/default/old').state, 'valid');
  const e = desc(r, 'kubernetes-service-default-old-wildcard-exact');
  assert.deepEqual(e.hosts, ['*']);
  assert.deepEqual(e.paths, [{ value: '/exact', type: 'Exact' }]);
  assert.equal(e.targets[0]?.port, 80);
  assert.deepEqual(e.targets[0]?.resolution, {
    type: 'static',
    endpoints: [{ ip: '10.96.0.10', port: 80, ready: true }],
  });
  assert.deepEqual(desc(r, 'kubernetes-service-default-old-wildcard-impl').paths, [
    { value: '/impl', type: 'PlainPrefix' },
  ]);
  const d = desc(r, 'kubernetes-service-default-old-wildcard-default-backend');
  assert.deepEqual(d.paths, [{ value: '/', type: 'PlainPrefix' }]);
  assert.equal(d.targets[0]?.scheme, 'https');
});

test('ingress: a path with a missing Service is dropped with a warning; all paths missing → invalid', () => {
  const y = (name: string, svc2: string): string => `apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: ${name}}
spec:
  ingressClassName: otoroshi
  rules:
    - host: x.oto.tools
      http:
        paths:
          - {path: /a, pathType: Prefix, backend: {service: {name: nope, port: {number: 80}}}}
          - {path: /b, pathType: Prefix, backend: {service: {name: ${svc2}, port: {name: http}}}}
---
`;
  const r = build(SERVICE + y('partial', 'web') + y('none', 'nope2'));
  const p = st(r, 'Ingress/default/partial');
  assert.equal(p.state, 'valid');
  assert.deepEqual(
    errs(p, 'warning').map((e) => [e.code, e.field]),
    [['OXDS_UNRESOLVED_REFERENCE', 'spec.rules[0].http.paths[0].backend']],
  );
  assert.equal(st(r, 'Ingress/default/none').state, 'invalid');
  assert.deepEqual(
    r.model.descriptors.map((d) => d.id),
    ['kubernetes-service-default-partial-x-oto-tools-b'],
  );
});

test('group references: by otoroshi.io/id annotation, by metadata.name, by ns/name; unresolved is a warning', () => {
  const groups = `apiVersion: proxy.otoroshi.io/v1alpha1
kind: ServiceGroup
metadata:
  name: annotated
  annotations: {otoroshi.io/id: my-group-id}
---
apiVersion: proxy.otoroshi.io/v1alpha1
kind: ServiceGroup
metadata: {name: plain, namespace: default}
spec: {name: Plain group}
---
apiVersion: proxy.otoroshi.io/v1alpha1
kind: ServiceGroup
metadata: {name: remote, namespace: team}
---
`;
  const r = build(
    groups +
      SD(
        'd',
        '  groups: [my-group-id, plain, team/remote, ghost, default]\n  hosts: [d.oto.tools]\n  targets: [{url: ' +
          '"http://10.0.0.1"}]',
      ),
  );
  assert.deepEqual(desc(r, 'kubernetes-crd-import-default-d').groups, [
    'my-group-id',
    'kubernetes-crd-import-default-plain',
    'kubernetes-crd-import-team-remote',
    'ghost',
    'default',
  ]);
  const s = st(r, 'ServiceDescriptor/default/d');
  assert.equal(s.state, 'valid');
  assert.deepEqual(
    errs(s, 'warning').map((e) => [e.code, e.field]),
    [['OXDS_UNRESOLVED_REFERENCE', 'spec.groups[3]']],
  );
  assert.deepEqual(
    r.model.groups.map((g) => [g.id, g.name, g.description]),
    [
      ['kubernetes-crd-import-default-plain', 'Plain group', '--'],
      ['kubernetes-crd-import-team-remote', 'remote', '--'],
      ['my-group-id', 'annotated', '--'],
    ],
  );
});

test('apikeys: defaults, authorizedEntities normalised and resolved, derived credentials are deterministic', () => {
  const y = `apiVersion: proxy.otoroshi.io/v1alpha1
kind: ServiceGroup
metadata: {name: g, annotations: {otoroshi.io/id: g-id}}
---
${SD('svc', '  hosts: [s.oto.tools]\n  targets: [{url: "http://10.0.0.1"}]')}apiVersion: proxy.otoroshi.io/v1
kind: Apikey
metadata: {name: k1, uid: 1234}
spec:
  clientId: id1
  clientSecret: secret1
  authorizedEntities: [g-id, group_g, service_svc, service_kubernetes-crd-import-default-svc, group_ghost]
  validUntil: "2030-01-01T00:00:00Z"
  throttlingQuota: 5
---
apiVersion: proxy.otoroshi.io/v1alpha1
kind: ApiKey
metadata: {name: k2}
spec:
  authorizedEntities: [g]
---
`;
  const r = build(y);
  const k1 = r.model.apikeys.find((k) => k.clientId === 'id1');
  assert.ok(k1);
  assert.deepEqual(k1.authorizedEntities, ['group_g-id', 'service_kubernetes-crd-import-default-svc', 'group_ghost']);
  assert.equal(k1.validUntil, Date.parse('2030-01-01T00:00:00Z'));
  assert.equal(k1.throttlingQuota, 5);
  assert.equal(k1.dailyQuota, 10000000);
  assert.equal(k1.monthlyQuota, 10000000);
  assert.equal(k1.clientName, 'k1');
  assert.equal(k1.enabled, true);
  assert.equal(k1.readOnly, false);
  assert.equal(k1.allowClientIdOnly, false);
  assert.equal(errs(st(r, 'ApiKey/default/k1'), 'warning')[0]?.code, 'OXDS_UNRESOLVED_REFERENCE');
  const k2 = r.model.apikeys.find((k) => k.sourceKey === 'ApiKey/default/k2');
  assert.ok(k2);
  assert.match(k2.clientId, /^[A-Za-z0-9]{64}$/);
  assert.match(k2.clientSecret, /^[A-Za-z0-9]{128}$/);
  assert.deepEqual(k2.authorizedEntities, ['group_g-id']);
  const again = build(y).model.apikeys.find((k) => k.sourceKey === 'ApiKey/default/k2');
  assert.equal(again?.clientSecret, k2.clientSecret);
  assert.notEqual(
    build(y, { secretSeed: 'other' }).model.apikeys.find((k) => k.sourceKey === 'ApiKey/default/k2')?.clientSecret,
    k2.clientSecret,
  );
});

test(
  'TLS secrets become certificates; ingress tls → bindings; ' + 'a missing secret is a warning, a broken PEM an error',
  async () => {
    const view = await loadConfigDir(path.join(FIX, 'tls'));
    const r = buildModel(view, { now: Date.parse('2026-01-01T00:00:00Z') });
    assert.deepEqual(
      r.model.certificates.map((c) => [c.secretName, c.dnsNames]),
      [
        ['default/cn-only-tls', ['cn-only.oto.tools']],
        ['default/web-tls', ['web.oto.tools', '*.web.oto.tools']],
      ],
    );
    assert.match(r.model.certificates[1]?.certificateChain ?? '', /BEGIN CERTIFICATE/);
    assert.match(r.model.certificates[1]?.privateKey ?? '', /PRIVATE KEY/);
    assert.equal(errs(st(r, 'Secret/default/broken-tls'))[0]?.code, 'OXDS_INVALID_FIELD');
    assert.deepEqual(r.model.tls, [
      {
        secretName: 'default/web-tls',
        serverNames: ['web.oto.tools'],
        source: { kind: 'Ingress', namespace: 'default', name: 'web' },
      },
    ]);
    const ing = st(r, 'Ingress/default/web');
    assert.equal(ing.state, 'valid');
    assert.deepEqual(
      errs(ing, 'warning').map((e) => [e.code, e.field]),
      [['OXDS_UNRESOLVED_REFERENCE', 'spec.tls[1].secretName']],
    );
    assert.equal(r.model.descriptors.length, 1);
  },
);

test('every object and every load error gets exactly one status; nothing throws on garbage', () => {
  const r = buildModel({
    objects: [
      {
        key: 'X/default/a',
        object: {
          apiVersion: 'proxy.otoroshi.io/v1alpha1',
          kind: 'ServiceDescriptor',
          metadata: { name: 'a' },
          spec: 'nope',
        },
        origin: { seq: 0 },
      },
      {
        key: 'X/default/b',
        object: { apiVersion: 'v1', kind: 'Service', metadata: { name: 'b' }, spec: { ports: 'x' } },
        origin: { seq: 1 },
      },
      {
        key: 'X/default/c',
        object: {
          apiVersion: 'networking.k8s.io/v1',
          kind: 'Ingress',
          metadata: { name: 'c', annotations: { 'kubernetes.io/ingress.class': 'otoroshi' } },
          spec: { rules: 'x', tls: 3 },
        },
        origin: { seq: 2 },
      },
      {
        key: 'X/default/d',
        object: {
          apiVersion: 'v1',
          kind: 'Secret',
          metadata: { name: 'd' },
          type: 'kubernetes.io/tls',
          data: { 'tls.crt': 12 },
        },
        origin: { seq: 3 },
      },
    ],
    loadErrors: [{ code: 'OXDS_YAML_PARSE', message: 'x', file: 'f.yaml', doc: 2, severity: 'error' }],
  });
  assert.deepEqual(
    r.statuses.map((s) => [s.key, s.state]),
    [
      ['X/default/a', 'invalid'],
      ['X/default/b', 'invalid'],
      ['X/default/c', 'valid'],
      ['X/default/d', 'invalid'],
      ['file:f.yaml#2', 'invalid'],
    ],
  );
});

test('output is deterministic whatever the order of the view', async () => {
  const view = await loadConfigDir(path.join(process.cwd(), 'examples'));
  const a = buildModel(view);
  const b = buildModel({ objects: [...view.objects].reverse(), loadErrors: view.loadErrors });
  assert.deepEqual(b.model, a.model);
  assert.deepEqual(b.statuses, a.statuses);
});

test('accepted-but-untranslated kinds are schema-checked and reported valid', () => {
  const r = build(`apiVersion: proxy.otoroshi.io/v1alpha1
kind: JwtVerifier
metadata: {name: j}
spec:
  strict: true
  source: {type: InHeader, name: jwt, remove: ''}
  algoSettings: {type: HSAlgoSettings, size: 512, secret: secret}
  strategy: {type: PassThrough, verificationSettings: {fields: {foo: bar}, arrayFields: {}}}
---
apiVersion: proxy.otoroshi.io/v1alpha1
kind: Script
metadata: {name: s}
spec: {type: transformer}
---
apiVersion: proxy.otoroshi.io/v1alpha1
kind: TcpService
metadata: {name: t}
spec: {port: 99999, tls: Sometimes}
---
`);
  assert.equal(st(r, 'JwtVerifier/default/j').state, 'valid');
  assert.deepEqual(
    errs(st(r, 'Script/default/s')).map((e) => [e.code, e.field]),
    [['OXDS_MISSING_FIELD', 'spec.code']],
  );
  assert.deepEqual(
    errs(st(r, 'TcpService/default/t'))
      .map((e) => e.field)
      .sort(),
    ['spec.port', 'spec.tls'],
  );
});

test('a spec checked ahead of the build (prevalidateSpecs) gives the build the same problems', () => {
  const yaml = SD('bad', '  hosts: [a.oto.tools]\n  targets: [{url: "http://127.0.0.1:1", weight: "x"}]');
  const cold = build(yaml);
  const { objects, errors } = parseYamlFile('t.yaml', yaml, 0);
  runSteps(prevalidateSpecs(objects));
  const warm = buildModel({ objects, loadErrors: errors });
  assert.deepEqual(warm.statuses, cold.statuses);
  assert.ok(errs(st(warm, 'ServiceDescriptor/default/bad')).some((e) => e.field === 'spec.targets[0].weight'));
  // The same spec object read as another kind is checked against that kind's schema.
  assert.deepEqual(validateSpec('ServiceGroup', objects[0]?.object.spec), validateSpec('ServiceGroup', {}));
});

test('derived apikey credentials are pinned: a change would re-key every apikey without a clientSecret', () => {
  assert.equal(
    derivedToken(64, 'clientId', 'seed', 'uid-1', 'default', 'key-1'),
    'vDQfaoxhRqFAVWsXvbth3J7o0RB97DiACYuoIZjknNRU6RqmFvdMh2QlayCRGztr',
  );
  assert.equal(
    derivedToken(130, 'clientSecret', 'seed', 'uid-1', 'default', 'key-1'),
    'RgDwgEMGQg9lPxG9qBIiqIENP7i0hikNrjDD09GisdiJXqBpJZ7AohchOShVaebHx' +
      'TGZqfYDFe4w5gE3vw3gGqFSRwUKSRxpTHR2y8FYqFZk4ygYnhG3wNDGVhRe9Ulf7g',
  );
});
