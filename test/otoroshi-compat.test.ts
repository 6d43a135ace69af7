// Otoroshi users' own manifests and exports: every example object of Otoroshi's repository kept in
// testdata/otoroshi/ (kustomize base, the Kubernetes documentation, the CRD snippets, the demo
// exports) goes through validate (with the CA stage, as the CLI) and translate for both node types,
// with exactly the problems listed here; the two kustomize examples have golden output. Then one
// minimal input of our own per compatibility defect.
import { afterAll, test } from 'vitest';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import YAML from 'yaml';
import { assembleView, loadConfigDir, parseYamlFile, type ParsedFile } from '../src/sources/yaml.js';
import { compile, formatError } from '../src/pipeline.js';
import { buildModel, type ModelSettings } from '../src/model/build.js';
import { CertManager } from '../src/ca/manager.js';
import { CertificateAuthority } from '../src/ca/ca.js';
import { SEND_ORDER } from '../proto/loader.js';
import { RESOURCE_SET_KEYS } from '../src/xds/types.js';
import { importOtoroshiExport, legacyHost, nameFromId } from '../src/import/otoroshi-export.js';
import { toYamlDocuments } from '../src/import/cli.js';
import type { BuildResult, ConfigError, ConfigView } from '../src/model/types.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const DATA = path.join(ROOT, 'testdata', 'otoroshi');
const GOLDEN = path.join(DATA, 'golden');
const CLI = path.join(ROOT, 'dist', 'src', 'cli.js');
const UPDATE = process.env.UPDATE_GOLDEN === '1';

const ca = CertificateAuthority.create();
afterAll(() => ca.pool.close());

/** The CLI's CA stage: Certificate CRs issued with placeholder PEM (deterministic). */
function dryRunCa(built: BuildResult): void {
  new CertManager({ ca, dryRun: true }).materialize(built);
}

const read = (rel: string): string => fs.readFileSync(path.join(DATA, rel), 'utf8');

function viewOf(files: Record<string, string>): ConfigView {
  const parsed: ParsedFile[] = Object.entries(files).map(([relPath, text]) => ({
    relPath,
    ...parseYamlFile(relPath, text, 0),
  }));
  return assembleView(parsed);
}

/** `severity code kind/name field` of every problem, sorted: what a user reads from validate. */
function problems(errors: readonly ConfigError[], severity?: ConfigError['severity']): string[] {
  return errors
    .filter((e) => severity === undefined || e.severity === severity)
    .map((e) => `${e.severity} ${e.code} ${e.kind ?? ''}/${e.name ?? ''} ${e.field ?? ''}`.trim())
    .sort();
}

function run(files: Record<string, string>, settings: Partial<ModelSettings> = {}) {
  return compile(viewOf(files), settings, {}, dryRunCa);
}

function toYaml(v: unknown): string {
  return YAML.stringify(v, { sortMapEntries: true, lineWidth: 0, aliasDuplicateObjects: false });
}

/** Golden: both node types' resources, as YAML, in testdata/otoroshi/golden/<name>.<node>.yaml. */
function assertGolden(name: string, c: ReturnType<typeof run>): void {
  for (const node of ['envoy', 'grpc'] as const) {
    const set = c[node].set;
    const doc: Record<string, unknown> = {};
    for (const kind of SEND_ORDER) doc[RESOURCE_SET_KEYS[kind]] = set[RESOURCE_SET_KEYS[kind]];
    const text = toYaml(doc);
    const file = path.join(GOLDEN, `${name}.${node}.yaml`);
    if (UPDATE) {
      fs.mkdirSync(GOLDEN, { recursive: true });
      fs.writeFileSync(file, text);
    }
    assert.equal(text, fs.readFileSync(file, 'utf8'), `${file} (UPDATE_GOLDEN=1 rewrites it; review the diff)`);
  }
}

const ENVOY_REJECTED = (c: ReturnType<typeof run>): string[] =>
  c.errors.filter((e) => e.code === 'OXDS_ENVOY_VALIDATION').map((e) => e.message);

// ------------------------------------------------------------------ the kustomize examples

/** What the kustomize examples warn about: features documented as not supported (docs/compatibility.md). */
const KUSTOMIZE_WARNINGS = (prefix: string, certs: string[]) => [
  `warning OXDS_MISSING_FIELD ApiKey/backend-apikey spec.clientSecret`,
  ...certs.map((c) => `warning OXDS_NOT_SUPPORTED Certificate/${c} spec.csr.signatureAlg`),
  ...[
    'secComAlgoChallengeBackToOto',
    'secComAlgoChallengeOtoToBack',
    'secComAlgoInfoToken',
    'secComInfoTokenVersion',
    'secComSettings',
    'secComUseSameAlgo',
    'secComVersion',
  ].map((f) => `warning OXDS_NOT_SUPPORTED ${prefix}ServiceDescriptor/backend spec.${f}`),
];

for (const [name, certs] of [
  ['example', ['backend-cert', 'client-cert', 'frontend-cert', 'oto-client-cert']],
  ['sidecar', ['backend-cert', 'client-cert', 'frontend-cert', 'mesh-cert', 'oto-client-cert']],
] as const) {
  test(
    `kustomize base/${name}` +
      `.yaml: no error, documented warnings only, the backend published with mTLS by subject DN; golden output`,
    () => {
      const c = run({ [`${name}.yaml`]: read(`kustomize/${name}.yaml`) });
      assert.deepEqual(problems(c.errors, 'error'), []);
      assert.deepEqual(problems(c.errors, 'warning'), KUSTOMIZE_WARNINGS('', [...certs]).sort());
      assert.deepEqual(problems(c.errors, 'notice'), ['notice OXDS_SKIPPED_KIND Deployment/app-deployment']);
      assert.deepEqual(ENVOY_REJECTED(c), []);
      const d = c.model.descriptors.find((x) => x.id === 'kubernetes-crd-import-default-backend');
      assert.ok(d, 'the flagship descriptor is published');
      // certs: [UID=oto-client-cert, O=OtoroshiApps] → the Certificate with that subject; trustedCerts:
      // [otoroshi-intermediate-ca] → our CA bundle
      assert.deepEqual(d.targets[0]?.mtls?.certs, ['default/oto-client-cert']);
      assert.deepEqual(d.targets[0]?.mtls?.trustedCerts, []);
      const cluster = JSON.stringify(
        c.envoy.set.clusters.find((x) => String(x.name).includes('kubernetes-crd-import-default-backend')),
      );
      assert.ok(cluster.includes('"default/oto-client-cert"') && cluster.includes('"otoroshi-ca-bundle"'), cluster);
      assertGolden(`kustomize-${name}`, c);
    },
  );
}

test('kustomize base/crds.yaml (CustomResourceDefinitions): every object skipped with a notice, no error', () => {
  const c = run({ 'crds.yaml': read('kustomize/crds.yaml') });
  assert.deepEqual(problems(c.errors, 'error'), []);
  assert.equal(problems(c.errors, 'notice').length, 13);
  assert.ok(problems(c.errors).every((p) => p.startsWith('notice OXDS_SKIPPED_KIND CustomResourceDefinition/')));
});

// ------------------------------------------------------------------ the documentation

test(
  'docs: the Ingress route example (Deployment, Service without clusterIP, v1beta1 ' +
    'Ingress) routes to the Service DNS name',
  () => {
    const c = run({ 'ingress-route.yaml': read('docs/ingress-route.yaml') });
    assert.deepEqual(problems(c.errors), [
      'notice OXDS_DNS_FALLBACK Ingress/http-app-ingress spec.rules[0].http.paths[0].backend',
      'notice OXDS_SKIPPED_KIND Deployment/http-app-deployment',
      // the example's TLS secret is not part of it
      'warning OXDS_UNRESOLVED_REFERENCE Ingress/http-app-ingress spec.tls[0].secretName',
    ]);
    const d = c.model.descriptors[0];
    assert.deepEqual(d?.targets[0]?.resolution, {
      type: 'dns',
      hostname: 'http-app-service.default.svc.cluster.local',
      port: 8080,
    });
    assert.deepEqual(ENVOY_REJECTED(c), []);
  },
);

/** The Deployment and Service of the route example, and another Ingress from the docs in place of its Ingress. */
function withRouteApp(ingress: string): Record<string, string> {
  const app = read('docs/ingress-route.yaml')
    .split(/^---$/m)
    .filter((d) => !/kind: Ingress/.test(d))
    .join('---');
  return { 'app.yaml': app, 'ingress.yaml': ingress };
}

test('docs: the Ingress with Otoroshi annotations: warnings name the annotations as written', () => {
  const c = run(withRouteApp(read('docs/ingress-annotations.yaml')));
  assert.deepEqual(problems(c.errors, 'error'), []);
  assert.deepEqual(problems(c.errors, 'warning'), [
    'warning OXDS_NOT_SUPPORTED Ingress/http-app-ingress metadata.annotations["ingress.otoroshi.io/allowHttp10"]',
    'warning OXDS_UNRESOLVED_REFERENCE Ingress/http-app-ingress metadata.annotations["ingress.otoroshi.io/group"]',
    'warning OXDS_UNRESOLVED_REFERENCE Ingress/http-app-ingress spec.tls[0].secretName',
  ]);
  const d = c.model.descriptors[0];
  assert.equal(d?.forceHttps, true);
  assert.deepEqual(d?.groups, ['http-app-group']);
});

test('docs: IngressClass + ingressClassName, with the controller configured as the docs say', () => {
  const c = run(
    { ...withRouteApp(read('docs/ingress-class-name.yaml')), 'class.yaml': read('docs/ingressclass.yaml') },
    { ingressClasses: ['otoroshi.io/ingress-controller'] },
  );
  assert.deepEqual(problems(c.errors, 'error'), []);
  assert.equal(c.model.descriptors.length, 1);
  assert.deepEqual(c.model.descriptors[0]?.hosts, ['httpapp.foo.bar']);
});

/** The errors the pre-1.5 root DN `CN=Otoroshi Root` gives, each with its hint (the only errors of these examples). */
function legacyRootErrors(c: ReturnType<typeof run>): { count: number; others: string[] } {
  const errs = c.errors.filter((e) => e.severity === 'error');
  const legacy = errs.filter((e) =>
    e.message.includes('CN=Otoroshi Root is the root DN of Otoroshi before 1.5: did you mean otoroshi-root-ca?'),
  );
  return { count: legacy.length, others: errs.filter((e) => !legacy.includes(e)).map(formatError) };
}

test(
  'docs: the "Full CRD example" as published: only the pre-1.5 root DN is an error ' +
    '(with its hint); the Deployment with a duplicate key is skipped',
  () => {
    const c = run({ 'full.yaml': read('docs/full-crd-example.yaml') });
    const l = legacyRootErrors(c);
    assert.deepEqual(l.others, []);
    assert.equal(l.count, 4); // three csr.issuer, one trustedCerts
    assert.deepEqual(problems(c.errors, 'notice'), ['notice OXDS_SKIPPED_KIND Deployment/http-app-deployment']);
    assert.ok(
      c.errors.some(
        (e) => e.severity === 'notice' && e.message.includes('duplicate key "volumeMounts" at line 30, column 9'),
      ),
    );
  },
);

test(
  'docs: the "Full CRD example" with otoroshi-root-ca for CN=Otoroshi Root: no ' +
    'error, the descriptor is published with mTLS',
  () => {
    const fixed = read('docs/full-crd-example.yaml').replaceAll('CN=Otoroshi Root', 'otoroshi-root-ca');
    const c = run({ 'full.yaml': fixed });
    assert.deepEqual(problems(c.errors, 'error'), []);
    assert.deepEqual(problems(c.errors, 'warning'), [
      'warning OXDS_MISSING_FIELD ApiKey/http-app-2-apikey-1 spec.clientSecret',
      'warning OXDS_MISSING_FIELD ApiKey/http-app-apikey-1 spec.clientSecret',
      'warning OXDS_NOT_SUPPORTED Certificate/http-app-certificate-backend spec.csr.signatureAlg',
      'warning OXDS_NOT_SUPPORTED Certificate/http-app-certificate-client spec.csr.signatureAlg',
      'warning OXDS_NOT_SUPPORTED Certificate/http-app-certificate-frontend spec.csr.signatureAlg',
      'warning OXDS_NOT_SUPPORTED ServiceDescriptor/http-app-service-descriptor spec.allowHttp10',
      // its group is another app's, not in the example
      'warning OXDS_UNRESOLVED_REFERENCE ApiKey/http-app-2-apikey-1 spec.authorizedEntities[0]',
    ]);
    const d = c.model.descriptors.find((x) => x.id === 'kubernetes-crd-import-default-http-app-service-descriptor');
    assert.deepEqual(d?.targets[0]?.mtls?.certs, ['default/http-app-certificate-client']);
    assert.deepEqual(ENVOY_REJECTED(c), []);
  },
);

test('docs: the CRD snippets together (groups, apikey, descriptor, certificate, jwt, auth, organization, team)', () => {
  const files: Record<string, string> = {};
  for (const f of fs.readdirSync(path.join(DATA, 'snippets')).sort()) files[f] = read(`snippets/${f}`);
  const c = run(files);
  const l = legacyRootErrors(c);
  assert.deepEqual(l.others, []);
  assert.equal(l.count, 2); // certificate.yaml csr.issuer, service-descriptor.yaml trustedCerts
  assert.deepEqual(problems(c.errors, 'notice'), [
    'notice OXDS_SKIPPED_KIND Team/default-team',
    'notice OXDS_SKIPPED_KIND Tenant/default-organization',
  ]);
  const fixed = run(
    Object.fromEntries(
      Object.entries(files).map(([k, v]) => [k, v.replaceAll('CN=Otoroshi Root', 'otoroshi-root-ca')]),
    ),
  );
  assert.deepEqual(problems(fixed.errors, 'error'), []);
  assert.equal(fixed.model.descriptors.length, 1);
  assert.deepEqual(fixed.model.descriptors[0]?.targets[0]?.mtls?.certs, ['default/http-app-certificate-client']);
});

// ------------------------------------------------------------------ the demo exports (import round trip)

const EXPORTS = fs
  .readdirSync(path.join(DATA, 'exports'))
  .filter((f) => f.endsWith('.json'))
  .sort();

for (const f of EXPORTS) {
  test(`import ${f}: YAML that validates with no error and translates for both node types`, () => {
    const json: unknown = JSON.parse(read(`exports/${f}`));
    const r = importOtoroshiExport(json, { namespace: 'otoroshi' });
    const yaml = toYamlDocuments(r.objects);
    const c = run({ 'imported.yaml': yaml });
    assert.deepEqual(problems(c.errors, 'error'), []);
    assert.ok(
      c.errors.every(
        (e) =>
          e.severity !== 'warning' ||
          e.code === 'OXDS_NOT_SUPPORTED' ||
          (e.code === 'OXDS_INVALID_FIELD' && e.message.startsWith('certificate expired')),
      ),
      problems(c.errors, 'warning').join('\n'),
    );
    assert.deepEqual(ENVOY_REJECTED(c), []);
    const src = json as Record<string, unknown[]>;
    assert.equal(c.model.descriptors.length, (src['serviceDescriptors'] ?? []).length, 'every descriptor is published');
    assert.equal(c.model.apikeys.length, (src['apiKeys'] ?? []).length, 'every apikey is served');
    assert.equal(c.model.groups.length, (src['serviceGroups'] ?? []).length);
    // ids survive (references resolve through otoroshi.io/id), and apikeys keep their secret
    for (const k of src['apiKeys'] as Record<string, unknown>[]) {
      const m = c.model.apikeys.find((x) => x.clientId === k['clientId']);
      assert.equal(m?.clientSecret, k['clientSecret']);
      if (typeof k['authorizedGroup'] === 'string')
        assert.deepEqual(m?.authorizedEntities, [`group_${k['authorizedGroup']}`]);
    }
    for (const d of src['serviceDescriptors'] as Record<string, unknown>[])
      assert.ok(
        c.model.descriptors.some((x) => x.id === d['id']),
        String(d['id']),
      );
    assert.ok(c.envoy.set.routes.length > 0 && c.grpc.set.clusters.length > 0);
    assert.ok(
      r.notes.some((n) => n.startsWith('simpleAdmins: 1 not carried over')),
      'admins are never carried over, and that is said',
    );
  });
}

test(
  'import: the 1.4 shape (groupId, subdomain/env/domain) and the 1.5 shape ' +
    '(groups, hosts) give the same hosts and groups',
  () => {
    assert.equal(legacyHost('api', 'prod', 'oto.tools'), 'api.oto.tools');
    assert.equal(legacyHost('api', 'dev', 'oto.tools'), 'api.dev.oto.tools');
    assert.equal(legacyHost('', 'prod', 'oto.tools'), 'prod.oto.tools'); // Otoroshi's own case order
    const old = {
      id: 'svc-1',
      name: 's',
      groupId: 'g1',
      subdomain: 'api',
      env: 'prod',
      domain: 'oto.tools',
      targets: [{ host: '127.0.0.1:8080', scheme: 'http' }],
      matchingRoot: null,
      enforceSecureCommunication: false,
    };
    const now = {
      id: 'svc-1',
      name: 's',
      groups: ['g1'],
      hosts: ['api.oto.tools'],
      targets: [{ host: '127.0.0.1:8080', scheme: 'http' }],
      enforceSecureCommunication: false,
    };
    const specOf = (d: object) => importOtoroshiExport({ serviceDescriptors: [d] }).objects[0]?.spec;
    assert.deepEqual(specOf(old), specOf(now));
    const r = importOtoroshiExport({
      serviceGroups: [{ id: 'g1', name: 'G' }],
      serviceDescriptors: [old],
      apiKeys: [{ clientId: 'k', clientSecret: 's', authorizedGroup: 'g1' }],
    });
    assert.deepEqual(
      r.objects.map((o) => [o.kind, o.metadata.name, o.metadata.annotations['otoroshi.io/id']]),
      [
        ['ServiceGroup', 'g1', 'g1'],
        ['ServiceDescriptor', 'svc-1', 'svc-1'],
        ['ApiKey', 'k', 'k'],
      ],
    );
    const c = run({ 'i.yaml': toYamlDocuments(r.objects) });
    assert.deepEqual(problems(c.errors), []);
    assert.deepEqual(c.model.descriptors[0]?.groups, ['g1']);
    assert.deepEqual(c.model.descriptors[0]?.hosts, ['api.oto.tools']);
    assert.equal(nameFromId('PqgO_x--'), 'pqgo-x');
    assert.throws(() => importOtoroshiExport([1, 2]), /not an Otoroshi export/);
    assert.throws(() => importOtoroshiExport({ foo: 1 }), /none of config, serviceGroups/);
  },
);

// ------------------------------------------------------------------ the CLI, as a user runs it

function cli(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 120_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

test(
  'CLI: validate of the kustomize example exits 0; import + validate of a demo ' +
    'export exits 0; a .json in the config dir gets a notice',
  () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'oxds-compat-'));
    try {
      fs.copyFileSync(path.join(DATA, 'kustomize', 'example.yaml'), path.join(dir, 'example.yaml'));
      fs.copyFileSync(path.join(DATA, 'exports', 'mtls-state.json'), path.join(dir, 'state.json'));
      const v = cli(['validate', '--config', dir]);
      assert.equal(v.status, 0, v.stdout + v.stderr);
      assert.match(
        v.stdout,
        /notice OXDS_SKIPPED_FILE state\.json: state\.json is not read .*otoroshi-xds import state\.json/,
      );
      assert.match(v.stdout, /0 error\(s\)/);
      const out = path.join(dir, 'imported.yaml');
      const i = cli(['import', path.join(dir, 'state.json'), '--out', out]);
      assert.equal(i.status, 0, i.stderr);
      assert.match(i.stderr, /note: clientValidators: 2 not carried over/);
      assert.equal(fs.statSync(out).mode & 0o777, 0o600, 'the export holds secrets: the YAML is not world-readable');
      fs.rmSync(path.join(dir, 'example.yaml'));
      const v2 = cli(['validate', '--config', dir]);
      assert.equal(v2.status, 0, v2.stdout);
      const bad = cli(['import', path.join(dir, 'imported.yaml')]);
      assert.equal(bad.status, 2);
      assert.match(bad.stderr, /cannot read .*imported\.yaml/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  },
);

// ------------------------------------------------------------------ one minimal input per defect

const SD = (
  name: string,
  extra: string,
  target = '{url: "https://b.internal"}',
) => `apiVersion: proxy.otoroshi.io/v1alpha1
kind: ServiceDescriptor
metadata: {name: ${name}, namespace: default}
spec:
  hosts: [${name}.example.com]
  targets: [${target}]
  publicPatterns: ["/.*"]
  forceHttps: false
${extra}---
`;
const CERT = (name: string, subject: string, extra = '', annotations = '') => `apiVersion: proxy.otoroshi.io/v1alpha1
kind: Certificate
metadata: {name: ${name}, namespace: default${annotations}}
spec:
  csr: {client: true, key: {algo: ecdsa, size: 256}, subject: "${subject}"${extra}}
---
`;

test(
  'defect 1: mtlsConfig certs/trustedCerts by Otoroshi id, by subject DN, and the ' +
    'built-in CAs; an unknown DN is named as written, with its index',
  () => {
    const yaml =
      CERT('by-dn', 'UID=c1, O=Apps') +
      CERT('by-id', 'CN=c2', '', ', annotations: {otoroshi.io/id: the-id}') +
      SD(
        'a',
        '',
        '{url: "https://b.internal", mtlsConfig: {mtls: true, certs: ["O=Apps,uid=c1"], trustedCerts: ' +
          '[otoroshi-root-ca]}}',
      ) +
      SD(
        'b',
        '',
        '{url: "https://b.internal", mtlsConfig: {mtls: true, certs: [the-id], trustedCerts: ["CN=Otoroshi Default ' +
          'Intermediate CA Certificate, OU=Otoroshi Certificates, O=Otoroshi"]}}',
      ) +
      SD('c', '', '{url: "https://b.internal", mtlsConfig: {mtls: true, certs: [by-dn, "UID=nobody, O=Apps"]}}');
    const c = run({ 'x.yaml': yaml });
    const mtls = (id: string) =>
      c.model.descriptors.find((d) => d.id === `kubernetes-crd-import-default-${id}`)?.targets[0]?.mtls;
    assert.deepEqual(mtls('a')?.certs, ['default/by-dn']);
    assert.deepEqual(mtls('a')?.trustedCerts, []); // the CA bundle
    assert.deepEqual(mtls('b')?.certs, ['default/by-id']);
    assert.equal(mtls('c'), undefined);
    const err = c.errors.find((e) => e.name === 'c' && e.severity === 'error');
    assert.equal(err?.field, 'spec.targets[0].mtlsConfig.certs[1]');
    assert.match(err?.message ?? '', /^no certificate has the subject DN "UID=nobody, O=Apps"/);
    assert.ok(!(err?.message ?? '').includes('default/UID'));
    const asClient = run({
      'x.yaml': SD('d', '', '{url: "https://b.internal", mtlsConfig: {mtls: true, certs: [otoroshi-intermediate-ca]}}'),
    });
    assert.match(
      asClient.errors.find((e) => e.severity === 'error')?.message ?? '',
      /is a CA, not a client certificate/,
    );
  },
);

test('defect 2: secCom* fields of a CRD warn (where Otoroshi would use them), as the Ingress annotations do', () => {
  const c = run({
    'x.yaml':
      SD('a', '  secComVersion: 2\n  secComSettings: {type: HSAlgoSettings, size: 512, secret: s}\n') +
      SD('off', '  enforceSecureCommunication: false\n  secComVersion: 2\n'),
  });
  assert.deepEqual(problems(c.errors), [
    'warning OXDS_NOT_SUPPORTED ServiceDescriptor/a spec.secComSettings',
    'warning OXDS_NOT_SUPPORTED ServiceDescriptor/a spec.secComVersion',
  ]);
});

test('defect 3: ApiKey.daikokuToken warns, naming the field and saying the key authorizes nothing', () => {
  const c = run({
    'x.yaml':
      'apiVersion: proxy.otoroshi.io/v1alpha1\nkind: ApiKey\nmetadata: {name: k, namespace: default}\nspec: ' +
      '{clientSecret: s, daikokuToken: tok}\n',
  });
  const w = c.errors.find((e) => e.field === 'spec.daikokuToken');
  assert.equal(w?.severity, 'warning');
  assert.match(w?.message ?? '', /no authorizedEntities: it authorizes nothing/);
});

test(
  'defect 4: kinds outside our scope are skipped with a notice (exit 0); ' + 'misspelt kinds of our group still error',
  () => {
    const c = run({
      'x.yaml':
        'apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\n---\napiVersion: ' +
        'proxy.otoroshi.io/v1alpha1\nkind: Route\nmetadata: {name: r}\n---\napiVersion: ' +
        'proxy.otoroshi.io/v1alpha1\nkind: ServiceDescripter\nmetadata: {name: typo}\n---\napiVersion: ' +
        'proxy.otoroshi.io/v1alpha1\nkind: servicegroup\nmetadata: {name: case}\n',
    });
    assert.deepEqual(
      problems(c.errors),
      [
        'error OXDS_UNKNOWN_KIND servicegroup/case',
        'error OXDS_UNKNOWN_KIND ServiceDescripter/typo',
        'notice OXDS_SKIPPED_KIND Deployment/d',
        'notice OXDS_SKIPPED_KIND Route/r',
      ].sort(),
    );
    assert.match(c.errors.find((e) => e.name === 'case')?.message ?? '', /did you mean ServiceGroup\?/);
  },
);

test(
  'defect 5: a serviceName target whose Service has no clusterIP and no ' +
    'EndpointSlice uses the DNS name, with a notice',
  () => {
    const svc =
      'apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: default}\nspec: ' +
      '{ports: [{name: http, port: 8080}]}\n---\n';
    const c = run(
      { 'x.yaml': svc + SD('a', '', '{serviceName: web, servicePort: http}') },
      { clusterDomain: 'corp.local' },
    );
    assert.deepEqual(problems(c.errors), ['notice OXDS_DNS_FALLBACK ServiceDescriptor/a spec.targets[0].serviceName']);
    assert.deepEqual(c.model.descriptors[0]?.targets[0]?.resolution, {
      type: 'dns',
      hostname: 'web.default.svc.corp.local',
      port: 8080,
    });
  },
);

test('defect 6: signatureAlg is honoured by an RSA issuer and warned about with our EC intermediate', () => {
  const rsaCa =
    'apiVersion: proxy.otoroshi.io/v1alpha1\nkind: Certificate\nmetadata: {name: rsa-ca, namespace: default}\n' +
    'spec:\n  csr: {ca: true, issuer: otoroshi-root-ca, key: {algo: rsa, size: 2048}, subject: "CN=RSA CA"}\n---\n';
  const leaf = (name: string, issuer: string) =>
    `apiVersion: proxy.otoroshi.io/v1alpha1\nkind: Certificate\nmetadata: {name: ${name}, namespace: default}\n` +
    `spec:\n  csr: {issuer: ${issuer}, hosts: [${name}.example.com], key: {algo: rsa, size: 2048}, ` +
    `subject: "CN=${name}", signatureAlg: SHA256WithRSAEncryption}\n---\n`;
  const c = run({ 'x.yaml': rsaCa + leaf('by-rsa', '"CN=RSA CA"') + leaf('by-ec', 'otoroshi-intermediate-ca') });
  assert.deepEqual(problems(c.errors), ['warning OXDS_NOT_SUPPORTED Certificate/by-ec spec.csr.signatureAlg']);
  assert.match(c.errors[0]?.message ?? '', /signed ecdsa-with-SHA/);
});

test('defect 7: ApiKey secretName with an existing apikey-secret Secret gives clientId and clientSecret', () => {
  const b64 = (v: string): string => Buffer.from(v).toString('base64');
  const secret = `apiVersion: v1
kind: Secret
metadata: {name: creds, namespace: default}
type: otoroshi.io/apikey-secret
data: {clientId: ${b64('the-id')}, clientSecret: ${b64('the-secret')}}
---
`;
  const ours = `apiVersion: v1
kind: Secret
metadata: {name: exported, namespace: default, labels: {app.kubernetes.io/managed-by: otoroshi-xds}}
type: otoroshi.io/apikey-secret
stringData: {clientId: old, clientSecret: old}
---
`;
  const key = (name: string, spec: string) =>
    `apiVersion: proxy.otoroshi.io/v1alpha1\nkind: ApiKey\nmetadata: {name: ${name}, namespace: default}\n` +
    `spec: {${spec}}\n---\n`;
  const c = run({
    'x.yaml':
      secret +
      ours +
      key('k', 'secretName: creds') +
      key('mine', 'secretName: exported, exportSecret: true, clientId: mine, clientSecret: spec-secret'),
  });
  const k = c.model.apikeys.find((x) => x.sourceKey === 'ApiKey/default/k');
  assert.equal(k?.clientId, 'the-id');
  assert.equal(k?.clientSecret, 'the-secret');
  assert.deepEqual(problems(c.errors), ['notice OXDS_MISSING_FIELD ApiKey/k spec.secretName']);
  // the Secret we export ourselves follows the ApiKey, never the other way round
  assert.equal(c.model.apikeys.find((x) => x.sourceKey === 'ApiKey/default/mine')?.clientSecret, 'spec-secret');
});

test('defect 8: csr.issuer CN=Otoroshi Root stays an error, with "did you mean otoroshi-root-ca"', () => {
  const c = run({ 'x.yaml': CERT('c', 'CN=c', ', issuer: "CN=Otoroshi Root"') });
  const e = c.errors.find((x) => x.severity === 'error');
  assert.equal(e?.field, 'spec.csr.issuer');
  assert.match(e?.message ?? '', /unknown issuer "CN=Otoroshi Root".*did you mean otoroshi-root-ca\?/);
});

test('defect 9: enforceSecureCommunication: true warns; the docs say the default differs from Otoroshi', () => {
  const c = run({ 'x.yaml': SD('a', '  enforceSecureCommunication: true\n') });
  assert.deepEqual(problems(c.errors), [
    'warning OXDS_NOT_SUPPORTED ServiceDescriptor/a spec.enforceSecureCommunication',
  ]);
  const doc = fs.readFileSync(path.join(ROOT, 'docs', 'kubernetes.md'), 'utf8');
  assert.match(doc, /`enforceSecureCommunication` defaults to `false` here\s+\(Otoroshi: `true`\)/);
});

test(
  'defect 10: one-line YAML errors naming the object; "not issued" for a ' +
    'certificate that failed; annotation fields one way',
  () => {
    const dup =
      'apiVersion: proxy.otoroshi.io/v1alpha1\nkind: ServiceGroup\nmetadata: {name: g}\nspec:\n  name: a\n  name: b\n';
    const parsed = parseYamlFile('block.yaml', dup, 0);
    assert.equal(parsed.errors.length, 1);
    const line = formatError(parsed.errors[0] as ConfigError);
    assert.equal(
      line,
      'error OXDS_YAML_PARSE block.yaml#0 ServiceGroup default/g: ' +
        'duplicate key "name" at line 6, column 3: a key may appear once per map (the document is ignored)',
    );
    // a certificate that exists but failed to issue is "not issued", not "unknown"
    const c = run({
      'x.yaml':
        CERT('c', 'CN=c', ', issuer: nope') +
        SD('a', '', '{url: "https://b.internal", mtlsConfig: {mtls: true, certs: [c]}}'),
    });
    assert.match(
      c.errors.find((e) => e.name === 'a')?.message ?? '',
      /names certificate default\/c, which is not issued \(see that Certificate's status\)/,
    );
    // annotation paths are always metadata.annotations["<the key as written>"]
    const ing = run({
      'x.yaml': `apiVersion: v1
kind: Service
metadata: {name: s}
spec: {clusterIP: 10.0.0.1, ports: [{port: 80}]}
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: i
  annotations:
    kubernetes.io/ingress.class: otoroshi
    ingress.otoroshi.io/allowHttp10: "false"
    ingress.otoroshi.io/group: nope
spec:
  rules:
    - host: a.example.com
      http: {paths: [{path: /, pathType: Prefix, backend: {service: {name: s, port: {number: 80}}}}]}
`,
    });
    assert.deepEqual(ing.errors.map((e) => e.field).sort(), [
      'metadata.annotations["ingress.otoroshi.io/allowHttp10"]',
      'metadata.annotations["ingress.otoroshi.io/group"]',
    ]);
  },
);

test(
  'a duplicate key in a kind we serve is an error naming the object; ' + 'the same in a Deployment is only a notice',
  async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'oxds-compat-'));
    try {
      fs.writeFileSync(
        path.join(dir, 'a.yaml'),
        'apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\nspec:\n  x: 1\n  x: 2\n',
      );
      const view = await loadConfigDir(dir);
      const built = buildModel(view);
      assert.deepEqual(problems(built.statuses.flatMap((s) => s.errors)), ['notice OXDS_SKIPPED_KIND Deployment/d']);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  },
);
