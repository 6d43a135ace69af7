// manifests/: the CRDs are generated from the ajv schemas (no drift), are structural, accept every
// example, reject typos; `kubectl kustomize` builds the base (and the Envoy overlay when its
// bootstrap exists).
import { test } from 'vitest';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync, spawnSync } from 'node:child_process';
import { parseAllDocuments } from 'yaml';
import { Ajv, type ValidateFunction } from 'ajv';
import { allCrds, renderCrdFiles, structuralProblems } from '../src/k8s/crds.js';
import { OTOROSHI_KINDS, WATCHED_RESOURCES } from '../src/k8s/resources.js';
import { normaliseKind } from '../src/model/ids.js';

const CRD_DIR = path.join('manifests', 'crds');

test('manifests/crds: the checked-in CRDs are exactly what scripts/gen-crds.mjs generates', () => {
  const want = renderCrdFiles();
  const have = fs
    .readdirSync(CRD_DIR)
    .filter((f) => f.endsWith('.yaml'))
    .sort();
  assert.deepEqual(have, [...want.keys()].sort(), 'set of files (run: npm run build && node scripts/gen-crds.mjs)');
  for (const [file, text] of want)
    assert.equal(
      fs.readFileSync(path.join(CRD_DIR, file), 'utf8'),
      text,
      `${file} drifted from src/model/schemas.ts (run: npm run build && node scripts/gen-crds.mjs)`,
    );
});

test(
  'CRDs: ten kinds, v1alpha1 storage + v1 served, status subresource, printer ' +
    'columns, short names, structural schemas',
  () => {
    const crds = allCrds();
    assert.equal(crds.length, 10);
    for (const { crd } of crds) {
      const spec = crd['spec'] as {
        names: { kind: string; shortNames: string[] };
        versions: Array<{
          name: string;
          served: boolean;
          storage: boolean;
          subresources: unknown;
          additionalPrinterColumns: Array<{ name: string }>;
          schema: { openAPIV3Schema: Record<string, unknown> };
        }>;
      };
      assert.deepEqual(
        spec.versions.map((v) => [v.name, v.served, v.storage]),
        [
          ['v1alpha1', true, true],
          ['v1', true, false],
        ],
      );
      for (const v of spec.versions) {
        assert.deepEqual(v.subresources, { status: {} });
        assert.ok(v.additionalPrinterColumns.some((c) => c.name === 'Status'));
        assert.deepEqual(structuralProblems(v.schema.openAPIV3Schema), [], `${spec.names.kind} ${v.name}`);
      }
      assert.ok(spec.names.shortNames.length > 0);
    }
    const sd = crds.find((c) => (c.crd['spec'] as { names: { kind: string } }).names.kind === 'ServiceDescriptor')!;
    const cols = (
      sd.crd['spec'] as { versions: Array<{ additionalPrinterColumns: Array<{ name: string }> }> }
    ).versions[0]!.additionalPrinterColumns.map((c) => c.name);
    assert.deepEqual(cols.slice(0, 3), ['Hosts', 'Targets', 'Status']);
    // a deliberately non-structural node is caught (the checker can fail)
    assert.ok(structuralProblems({ type: 'object', properties: { a: { properties: {} } } }).length > 0);
  },
);

/**
 * The API server's view of a CRD schema, approximated with ajv (types, enums, bounds, required, int-or-string,
 * nullable).
 */
function crdValidators(): Map<string, ValidateFunction> {
  const ajv = new Ajv({ strict: false, allErrors: true });
  ajv.addKeyword({ keyword: 'x-kubernetes-preserve-unknown-fields' });
  ajv.addKeyword({
    keyword: 'x-kubernetes-int-or-string',
    validate: (on: boolean, data: unknown) =>
      !on || (typeof data === 'number' && Number.isInteger(data)) || typeof data === 'string',
  });
  const out = new Map<string, ValidateFunction>();
  for (const { crd } of allCrds()) {
    const spec = crd['spec'] as {
      names: { kind: string };
      versions: Array<{ schema: { openAPIV3Schema: Record<string, unknown> } }>;
    };
    out.set(spec.names.kind, ajv.compile(spec.versions[0]!.schema.openAPIV3Schema));
  }
  return out;
}

test('CRD schemas accept every example in examples/ and reject typos', () => {
  const validators = crdValidators();
  let checked = 0;
  for (const file of fs.readdirSync('examples').filter((f) => /\.ya?ml$/.test(f))) {
    for (const doc of parseAllDocuments(fs.readFileSync(path.join('examples', file), 'utf8'))) {
      const o = doc.toJS() as { apiVersion?: string; kind?: string } | null;
      if (!o || !String(o.apiVersion ?? '').startsWith('proxy.otoroshi.io/')) continue;
      const v = validators.get(normaliseKind(String(o.kind)));
      assert.ok(v, `${file}: kind ${o.kind} has a CRD`);
      assert.ok(v(o), `${file} ${o.kind}: ${JSON.stringify(v.errors)}`);
      checked++;
    }
  }
  assert.ok(checked >= 5, `checked ${checked} examples`);
  const sd = validators.get('ServiceDescriptor')!;
  const base = { apiVersion: 'proxy.otoroshi.io/v1alpha1', kind: 'ServiceDescriptor', metadata: { name: 'x' } };
  assert.equal(
    sd({ ...base, spec: { targets: [{ url: 'http://a' }], forceHttps: 'yes' } }),
    false,
    'a string for a boolean',
  );
  assert.equal(
    sd({ ...base, spec: { targets: [{ url: 'http://a' }], clientConfig: { retries: -1 } } }),
    false,
    'a negative retry count',
  );
  assert.equal(
    sd({ ...base, spec: { targets: [{ url: 'http://a' }], redirection: { code: 304 } } }),
    false,
    'a redirect code outside the enum',
  );
  assert.equal(sd({ ...base, spec: { hosts: ['a'] } }), false, 'no targets');
  assert.equal(
    sd({ ...base, spec: { targetsFrom: { serviceName: 's', servicePort: 'http' } } }),
    true,
    'int-or-string port',
  );
  assert.equal(
    validators.get('TcpService')!({ ...base, kind: 'TcpService', spec: { port: 70000 } }),
    false,
    'port out of range',
  );
});

function kubectl(): boolean {
  return spawnSync('kubectl', ['version', '--client'], { stdio: 'ignore' }).status === 0;
}

test.skipIf(kubectl() ? false : 'kubectl is not installed')('kubectl kustomize manifests/ builds the base', () => {
  const out = execFileSync('kubectl', ['kustomize', 'manifests/'], { encoding: 'utf8' });
  const docs = parseAllDocuments(out).map(
    (d) => d.toJS() as { kind: string; metadata: { name: string; namespace?: string }; spec?: Record<string, unknown> },
  );
  const kinds = docs.map((d) => d.kind);
  assert.equal(kinds.filter((k) => k === 'CustomResourceDefinition').length, OTOROSHI_KINDS.length);
  for (const k of [
    'Namespace',
    'ServiceAccount',
    'ClusterRole',
    'ClusterRoleBinding',
    'Role',
    'RoleBinding',
    'ConfigMap',
    'Deployment',
    'Service',
    'IngressClass',
    'PodDisruptionBudget',
  ])
    assert.ok(kinds.includes(k), k);
  const dep = docs.find((d) => d.kind === 'Deployment' && d.metadata.name === 'otoroshi-xds')!;
  assert.equal(dep.metadata.namespace, 'otoroshi-xds');
  assert.equal(dep.spec?.['replicas'], 2);
  const pod = (
    dep.spec?.['template'] as {
      spec: {
        securityContext: { runAsNonRoot: boolean };
        containers: Array<{
          livenessProbe: { httpGet: { path: string } };
          readinessProbe: { httpGet: { path: string } };
          resources: unknown;
        }>;
      };
    }
  ).spec;
  assert.equal(pod.securityContext.runAsNonRoot, true);
  assert.equal(pod.containers[0]!.livenessProbe.httpGet.path, '/live');
  assert.equal(pod.containers[0]!.readinessProbe.httpGet.path, '/ready');
  assert.ok(pod.containers[0]!.resources);
  // least privilege: no wildcard verbs or resources
  for (const r of docs.filter((d) => d.kind === 'ClusterRole' || d.kind === 'Role')) {
    for (const rule of (r as unknown as { rules: Array<{ verbs: string[]; resources: string[] }> }).rules) {
      assert.ok(!rule.verbs.includes('*') && !rule.resources.includes('*'), `${r.metadata.name}: wildcard rule`);
    }
  }
});

test.skipIf(
  !kubectl()
    ? 'kubectl is not installed'
    : !fs.existsSync('manifests/envoy/gateway.yaml')
      ? 'manifests/envoy/gateway.yaml is not in this branch (written in another branch)'
      : false,
)('kubectl kustomize manifests/envoy-gateway/ builds (needs manifests/envoy/gateway.yaml)', () => {
  const out = execFileSync(
    'kubectl',
    ['kustomize', '--load-restrictor', 'LoadRestrictionsNone', 'manifests/envoy-gateway/'],
    { encoding: 'utf8' },
  );
  assert.match(out, /kind: Deployment/);
  assert.match(out, /envoy-gateway-bootstrap-/);
});

test('manifests/rbac.yaml: the ClusterRole grants list and watch of every watched resource (Pods included)', () => {
  const role = parseAllDocuments(fs.readFileSync('manifests/rbac.yaml', 'utf8'))
    .map(
      (d) => d.toJS() as { kind: string; rules?: Array<{ apiGroups: string[]; resources: string[]; verbs: string[] }> },
    )
    .find((d) => d.kind === 'ClusterRole');
  assert.ok(role?.rules);
  const granted = new Set(
    role.rules.flatMap((r) =>
      r.apiGroups.flatMap((g) => r.resources.flatMap((res) => r.verbs.map((v) => `${g}|${res}|${v}`))),
    ),
  );
  const missing = WATCHED_RESOURCES.flatMap((w) => {
    const group = w.apiVersion.includes('/') ? w.apiVersion.slice(0, w.apiVersion.indexOf('/')) : '';
    return ['list', 'watch'].map((v) => `${group}|${w.plural}|${v}`).filter((k) => !granted.has(k));
  });
  assert.deepEqual(missing, []);
  assert.ok(WATCHED_RESOURCES.some((w) => w.kind === 'Pod' && w.labelSelector === 'otoroshi.io/sidecar=inject'));
});
