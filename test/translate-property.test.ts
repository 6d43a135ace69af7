// Property: any generated set of valid ServiceDescriptors (with every issue-3 feature), TcpServices
// and a GlobalConfig translates to resources that all pass validate.ts (PGV rules + protobuf
// round trip), form consistent snapshots (no dangling route / EDS / secret names), and carry no
// duplicate names. Also: translate is deterministic (same input, same output).
import { test } from 'vitest';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { buildModel } from '../src/model/build.js';
import { translate } from '../src/xds/translate.js';
import { validateSet } from '../src/pipeline.js';
import { buildSnapshot, checkConsistency } from '../src/xds/snapshot.js';
import type { ConfigError, KubeObject, StoredObject } from '../src/model/types.js';
import type { ProtoObject } from '../proto/loader.js';
import type { ResourceSet } from '../src/xds/types.js';

const CERT_PEM = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';

const host = fc.constantFrom(
  'a.example.com',
  'b.example.com',
  '*.example.com',
  'api.*.example.com',
  '*',
  'x.internal',
  'A.Example.com',
);
const path = fc.constantFrom('/', '/api', '/api/v2', '/x', '/api/', '/static');
const hdr = fc.constantFrom('x-tenant', 'x-env', 'X-Version');
const ip = fc.constantFrom('10.0.0.1', '10.0.0.2', '192.168.1.7', '2001:db8::1');
const ipEntry = fc.constantFrom('10.0.0.0/8', '192.168.*.*', '10.1.2.3', '*', '2001:db8::/32', '172.16.*');

const target = fc.record({
  kind: fc.constantFrom('ip', 'dns', 'https', 'mtls'),
  ip,
  port: fc.integer({ min: 1, max: 65535 }),
  weight: fc.integer({ min: 1, max: 5 }),
});

function targetSpec(t: { kind: string; ip: string; port: number; weight: number }): Record<string, unknown> {
  const h = t.ip.includes(':') ? `[${t.ip}]` : t.ip;
  if (t.kind === 'ip') return { url: `http://${h}:${t.port}`, weight: t.weight };
  if (t.kind === 'dns') return { url: `http://svc-${t.port}.internal:${t.port}`, weight: t.weight };
  if (t.kind === 'https') return { url: `https://secure-${t.port}.internal`, weight: t.weight };
  return {
    url: `https://mtls-${t.port}.internal:8443`,
    weight: t.weight,
    mtlsConfig: {
      mtls: true,
      certs: ['client'],
      trustedCerts: t.port % 2 === 0 ? ['ca'] : [],
      loose: t.port % 3 === 0,
    },
  };
}

const descriptorSpec = fc.record(
  {
    hosts: fc.uniqueArray(host, { minLength: 1, maxLength: 3 }),
    paths: fc.uniqueArray(path, { maxLength: 2 }),
    targets: fc.array(target, { minLength: 1, maxLength: 3 }),
    forceHttps: fc.boolean(),
    maintenanceMode: fc.boolean(),
    readOnly: fc.boolean(),
    overrideHost: fc.boolean(),
    xForwardedHeaders: fc.boolean(),
    sendOtoroshiHeadersBack: fc.boolean(),
    stripPath: fc.boolean(),
    matchingHeaders: fc.dictionary(hdr, fc.constantFrom('v[0-9]+', 'yes', '.*'), { maxKeys: 1 }),
    headersVerification: fc.dictionary(hdr, fc.constantFrom('acme', 'prod', '100%'), { maxKeys: 2 }),
    additionalHeaders: fc.dictionary(fc.constantFrom('X-A', 'X-B'), fc.constantFrom('1', '%REQ(x)%', 'v'), {
      maxKeys: 2,
    }),
    targetsLoadBalancing: fc.record({
      type: fc.constantFrom('RoundRobin', 'Random', 'Sticky', 'IpAddressHash', 'BestResponseTime'),
    }),
    clientConfig: fc.record({
      retries: fc.integer({ min: 1, max: 4 }),
      callTimeout: fc.integer({ min: 1, max: 60000 }),
      globalTimeout: fc.integer({ min: 1, max: 60000 }),
      maxErrors: fc.integer({ min: 0, max: 50 }),
      customTimeouts: fc.array(
        fc.record({ path: fc.constantFrom('/slow/.*', '/x', '.*'), callTimeout: fc.integer({ min: 1, max: 9000 }) }),
        { maxLength: 1 },
      ),
    }),
    ipFiltering: fc.record({
      whitelist: fc.array(ipEntry, { maxLength: 2 }),
      blacklist: fc.array(ipEntry, { maxLength: 2 }),
    }),
    redirection: fc.record({
      enabled: fc.boolean(),
      code: fc.constantFrom(301, 302, 303, 307, 308),
      to: fc.constantFrom('https://x.example.com', 'https://y.example.com/p?q=1'),
    }),
    cors: fc.record({
      enabled: fc.boolean(),
      allowOrigin: fc.constantFrom('*', 'https://a.example.com'),
      allowMethods: fc.constantFrom([], ['GET']),
      maxAge: fc.nat(3600),
    }),
    gzip: fc.record({
      enabled: fc.boolean(),
      whiteList: fc.constantFrom([], ['text/html'], ['application/json', 'text/plain']),
      compressionLevel: fc.integer({ min: 1, max: 9 }),
    }),
    healthCheck: fc.record({ enabled: fc.boolean(), url: fc.constantFrom('/', '/health') }),
    canary: fc.record({
      enabled: fc.boolean(),
      traffic: fc.constantFrom(0, 0.2, 1),
      targets: fc.array(target, { minLength: 1, maxLength: 2 }),
    }),
    api: fc.record({ openApiDescriptorUrl: fc.constantFrom('https://docs.example.com/o.json', '/openapi.json') }),
  },
  { requiredKeys: ['hosts', 'targets'] },
);

const tcpSpec = fc.record({
  port: fc.integer({ min: 1000, max: 1010 }),
  tls: fc.constantFrom('Disabled', 'PassThrough', 'Enabled'),
  sni: fc.record({
    enabled: fc.boolean(),
    forwardIfNoMatch: fc.boolean(),
    forwardsTo: fc.constant({ host: 'fallback.internal', port: 9000 }),
  }),
  rules: fc.array(
    fc.record({
      domain: fc.constantFrom('*', 'db.example.com', '*.db.example.com'),
      targets: fc.array(
        fc.record({
          host: fc.constantFrom('t1.internal', 't2.internal'),
          port: fc.integer({ min: 1, max: 65535 }),
          tls: fc.boolean(),
        }),
        { minLength: 1, maxLength: 2 },
      ),
    }),
    { minLength: 1, maxLength: 2 },
  ),
});

const globalSpec = fc.record({
  maintenanceMode: fc.boolean(),
  trustedProxies: fc.nat(3),
  throttlingQuota: fc.constantFrom(10, 1000, 10_000_000),
  ipFiltering: fc.record({
    whitelist: fc.array(ipEntry, { maxLength: 1 }),
    blacklist: fc.array(ipEntry, { maxLength: 1 }),
  }),
});

function so(kind: string, name: string, spec: unknown, seq: number, extra: Partial<KubeObject> = {}): StoredObject {
  const object: KubeObject = {
    apiVersion: kind === 'Secret' ? 'v1' : 'proxy.otoroshi.io/v1alpha1',
    kind,
    metadata: { name, namespace: 'default' },
    ...(spec !== undefined ? { spec } : {}),
    ...extra,
  };
  return { key: `${kind}/default/${name}`, object, origin: { seq } };
}

function names(list: readonly ProtoObject[], key = 'name'): string[] {
  return list.map((o) => String(o[key]));
}

function assertNoDuplicates(set: ResourceSet, what: string): void {
  for (const [k, list, key] of [
    ['listeners', set.listeners, 'name'],
    ['routes', set.routes, 'name'],
    ['clusters', set.clusters, 'name'],
    ['endpoints', set.endpoints, 'clusterName'],
    ['secrets', set.secrets, 'name'],
  ] as const) {
    const n = names(list, key);
    assert.equal(new Set(n).size, n.length, `${what} ${k}: duplicate names ${n.join(',')}`);
  }
  for (const rc of set.routes) {
    for (const vh of (rc.virtualHosts ?? []) as ProtoObject[]) {
      const rn = names((vh.routes ?? []) as ProtoObject[]);
      assert.equal(
        new Set(rn).size,
        rn.length,
        `${what} ${String(rc.name)}/${String(vh.name)}: duplicate route names ${rn.join(',')}`,
      );
    }
  }
}

test(
  'property: valid descriptor / TcpService / GlobalConfig sets translate to valid, consistent, duplicate-free ' +
    'resources',
  { timeout: 120_000 },
  () => {
    fc.assert(
      fc.property(
        fc.array(descriptorSpec, { minLength: 1, maxLength: 5 }),
        fc.array(tcpSpec, { maxLength: 2 }),
        fc.option(globalSpec, { nil: undefined }),
        fc.boolean(),
        (ds, tcps, global, caBundle) => {
          const objects: StoredObject[] = [];
          let seq = 0;
          ds.forEach((spec, i) => {
            const s = {
              ...spec,
              targets: spec.targets.map(targetSpec),
              ...(spec.canary ? { canary: { ...spec.canary, targets: spec.canary.targets.map(targetSpec) } } : {}),
            };
            objects.push(so('ServiceDescriptor', `d${i}`, s, seq++));
          });
          tcps.forEach((spec, i) => objects.push(so('TcpService', `t${i}`, spec, seq++)));
          if (global) objects.push(so('GlobalConfig', 'global', global, seq++));
          const built = buildModel({ objects, loadErrors: [] });
          // Certificates are provided directly (a PEM parser is not what this property is about).
          const model = {
            ...built.model,
            certificates: [
              {
                secretName: 'default/client',
                sourceKey: 'Secret/default/client',
                certificateChain: CERT_PEM,
                privateKey: 'K',
                dnsNames: ['client.example.com'],
              },
              {
                secretName: 'default/ca',
                sourceKey: 'Secret/default/ca',
                certificateChain: CERT_PEM,
                privateKey: 'K',
                dnsNames: ['db.example.com'],
              },
            ],
            ...(caBundle ? { caBundle: CERT_PEM } : {}),
          };
          const out = translate(model, {
            authz: { address: '127.0.0.1', port: 18001, timeoutMs: 200, failureModeAllow: false },
          });
          const envoyErrors = out.errors.filter((e) => e.code === 'OXDS_ENVOY_VALIDATION');
          assert.deepEqual(
            envoyErrors.map((e) => e.message),
            [],
            'no generated resource is rejected by translate',
          );
          for (const node of ['envoy', 'grpc'] as const) {
            const rejected: ConfigError[] = [];
            const compiled = validateSet(node, out[node], rejected);
            assert.deepEqual(
              rejected.map((e) => e.message),
              [],
              `${node}: every resource passes validate.ts`,
            );
            assert.deepEqual(
              checkConsistency(buildSnapshot(node, 'v1', compiled.set)),
              [],
              `${node}: snapshot consistency`,
            );
            assertNoDuplicates(out[node], node);
          }
          // No valid descriptor is dropped: every one with hosts has its routes.
          assert.deepEqual(
            out.errors.filter((e) => e.severity === 'error').map((e) => e.message),
            [],
            'no descriptor dropped by translate',
          );
          const routeNames = new Set(
            out.envoy.routes.flatMap((rc) =>
              ((rc.virtualHosts ?? []) as ProtoObject[]).flatMap((vh) => names((vh.routes ?? []) as ProtoObject[])),
            ),
          );
          for (const d of built.model.descriptors) {
            if (d.enabled && d.hosts.length > 0)
              assert.ok(
                [...routeNames].some((n) => n.startsWith(`${d.id}/`)),
                `descriptor ${d.id} has routes`,
              );
          }
          assert.deepEqual(
            translate(model, { authz: { address: '127.0.0.1', port: 18001, timeoutMs: 200, failureModeAllow: false } }),
            out,
            'deterministic',
          );
        },
      ),
      { numRuns: 150, seed: 20261122 },
    );
  },
);

// ------------------------------------------------------------------ Ingress annotations

const PREFIX = fc.constantFrom('otoroshi.ingress.kubernetes.io/', 'ingress.otoroshi.io/');
const ANNOTATION = fc.oneof(
  fc.tuple(
    fc.constantFrom(
      'force-https',
      'forceHttps',
      'read-only',
      'readOnly',
      'x-forwarded-headers',
      'send-otoroshi-headers-back',
      'override-host',
      'maintenance-mode',
      'cors.enabled',
      'gzip.enabled',
      'health-check.enabled',
      'redirection.enabled',
      'allow-http10',
    ),
    fc.constantFrom('true', 'false', 'TRUE', 'nope'),
  ),
  fc.tuple(
    fc.constantFrom('ip-filtering.whitelist', 'ipFiltering.blacklist'),
    fc.constantFrom('10.0.0.0/8', '192.168.*.*, 10.1.1.1', '', '10.*.1.1'),
  ),
  fc.tuple(
    fc.constantFrom('headers-verification', 'additional-headers', 'missing-only-headers-out'),
    fc.constantFrom('X-A=b', 'X-A=b,X-B=100%', 'bad'),
  ),
  fc.tuple(
    fc.constantFrom(
      'clientConfig.retries',
      'client-config.global-timeout',
      'cors.maxAge',
      'gzip.compressionLevel',
      'redirection.code',
    ),
    fc.constantFrom('1', '3', '301', '-1', 'x'),
  ),
  fc.tuple(
    fc.constantFrom('redirection.to', 'cors.allowOrigin', 'health-check.url', 'api.open-api-descriptor-url'),
    fc.constantFrom('https://x.example.com', '/ready', '*'),
  ),
  fc.tuple(
    fc.constantFrom('raw'),
    fc.constantFrom(
      '{"canary": {"enabled": true, "traffic": 0.5, "targets": [{"url": "http://10.0.0.9"}]}}',
      '{"hosts": []}',
      'not json',
    ),
  ),
  fc.tuple(
    fc.constantFrom('transformer-refs', 'secComTtl', 'enforceSecureCommunication', 'unknown-thing'),
    fc.constantFrom('true', 'x'),
  ),
);

test(
  'property: annotated Ingresses build and translate; a bad annotation invalidates only its Ingress',
  { timeout: 120_000 },
  () => {
    fc.assert(
      fc.property(
        fc.array(fc.array(fc.tuple(PREFIX, ANNOTATION), { maxLength: 8 }), { minLength: 1, maxLength: 3 }),
        (ingresses) => {
          const objects: StoredObject[] = [
            {
              key: 'Service/default/web',
              object: {
                apiVersion: 'v1',
                kind: 'Service',
                metadata: { name: 'web', namespace: 'default' },
                spec: { clusterIP: '10.96.0.20', ports: [{ name: 'http', port: 80 }] },
              },
              origin: { seq: 0 },
            },
          ];
          ingresses.forEach((anns, i) => {
            const annotations: Record<string, string> = { 'kubernetes.io/ingress.class': 'otoroshi' };
            for (const [prefix, [k, v]] of anns) annotations[`${prefix}${k}`] = v;
            objects.push({
              key: `Ingress/default/i${i}`,
              object: {
                apiVersion: 'networking.k8s.io/v1',
                kind: 'Ingress',
                metadata: { name: `i${i}`, namespace: 'default', annotations },
                spec: {
                  rules: [
                    {
                      host: `i${i}.example.com`,
                      http: {
                        paths: [
                          {
                            path: '/',
                            pathType: 'Prefix',
                            backend: { service: { name: 'web', port: { number: 80 } } },
                          },
                        ],
                      },
                    },
                  ],
                },
              },
              origin: { seq: i + 1 },
            });
          });
          const built = buildModel({ objects, loadErrors: [] });
          for (const s of built.statuses.filter((x) => x.kind === 'Ingress')) {
            const served = built.model.descriptors.some((d) => d.sourceKey === s.key);
            assert.equal(
              served,
              s.state === 'valid',
              `${s.key}: served iff valid (${JSON.stringify(s.errors.map((e) => e.code))})`,
            );
          }
          const out = translate(built.model);
          assert.deepEqual(
            out.errors.filter((e) => e.severity === 'error').map((e) => e.message),
            [],
          );
          for (const node of ['envoy', 'grpc'] as const) {
            const rejected: ConfigError[] = [];
            const compiled = validateSet(node, out[node], rejected);
            assert.deepEqual(
              rejected.map((e) => e.message),
              [],
            );
            assert.deepEqual(checkConsistency(buildSnapshot(node, 'v1', compiled.set)), []);
            assertNoDuplicates(out[node], node);
          }
        },
      ),
      { numRuns: 100, seed: 3 },
    );
  },
);
