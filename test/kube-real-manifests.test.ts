// The shipped manifests against a real kube-apiserver (scripts/kube-up.sh): `kubectl apply -k
// manifests/` succeeds, the CRDs are structural and Established, the examples are accepted, and
// for every kind a wrongly typed field (or an unknown top-level field) is refused by `kubectl
// apply` with a message naming the field (server-side validation of the CRD schemas).
import { afterAll, beforeAll, test } from 'vitest';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { REPO, applyManifests, realKubeSkip, startRealKube, type RealKube } from './helpers/kube-real.js';

const skip = realKubeSkip();
let kube: RealKube;

beforeAll(async () => {
  if (!skip) kube = await startRealKube();
});
afterAll(async () => {
  await kube?.stop();
});

interface PropSchema {
  type?: string;
  properties?: Record<string, PropSchema>;
  required?: string[];
}
interface Crd {
  metadata: { name: string };
  spec: {
    names: { kind: string; plural: string };
    versions: Array<{ name: string; storage: boolean; schema: { openAPIV3Schema: PropSchema } }>;
  };
}

function crds(): Crd[] {
  const dir = path.join(REPO, 'manifests/crds');
  return fs
    .readdirSync(dir)
    .filter((f) => f !== 'kustomization.yaml' && f.endsWith('.yaml'))
    .map((f) => YAML.parse(fs.readFileSync(path.join(dir, f), 'utf8')) as Crd);
}

const sample = (t: string | undefined): unknown =>
  t === 'integer' ? 1234 : t === 'boolean' ? true : t === 'array' ? [] : t === 'object' ? {} : 'x';
const wrong = (t: string | undefined): unknown => (t === 'string' ? 12345 : 'not-a-' + String(t));

/**
 * A spec with the required fields of the kind and one scalar field of the wrong type (a boolean or integer when there
 * is one).
 */
function wronglyTyped(crd: Crd): { spec: Record<string, unknown>; field: string } {
  const spec = crd.spec.versions[0]!.schema.openAPIV3Schema.properties!['spec']!;
  const props = Object.entries(spec.properties ?? {});
  const out: Record<string, unknown> = {};
  for (const r of spec.required ?? []) out[r] = sample(spec.properties?.[r]?.type);
  const pick =
    props.find(([k, p]) => (p.type === 'boolean' || p.type === 'integer') && !(spec.required ?? []).includes(k)) ??
    props.find(([, p]) => p.type === 'string');
  assert.ok(pick, `${crd.metadata.name}: no scalar field under spec`);
  out[pick[0]] = wrong(pick[1].type);
  return { spec: out, field: `spec.${pick[0]}` };
}

function validSpec(crd: Crd): Record<string, unknown> {
  const spec = crd.spec.versions[0]!.schema.openAPIV3Schema.properties!['spec']!;
  return Object.fromEntries((spec.required ?? []).map((r) => [r, sample(spec.properties?.[r]?.type)]));
}

test.skipIf(skip)(
  'real apiserver: kubectl apply -k manifests/ succeeds; every CRD is structural and Established; the examples are ' +
    'accepted',
  async () => {
    const out = await applyManifests(kube);
    const crd = 'customresourcedefinition\\.apiextensions\\.k8s\\.io/service-descriptors\\.proxy\\.otoroshi\\.io';
    assert.match(out, new RegExp(`${crd} (created|configured|unchanged)`));
    assert.match(out, /clusterrole\.rbac\.authorization\.k8s\.io\/otoroshi-xds created/);
    assert.match(out, /validatingwebhookconfiguration\.admissionregistration\.k8s\.io\/otoroshi-xds created/);
    for (const crd of crds()) {
      const got = JSON.parse(await kube.kubectlOk(['get', 'crd', crd.metadata.name, '-o', 'json'])) as {
        status: { conditions: Array<{ type: string; status: string; message: string }> };
      };
      const cond = Object.fromEntries(got.status.conditions.map((c) => [c.type, c]));
      assert.equal(cond['Established']?.status, 'True', `${crd.metadata.name} Established`);
      assert.equal(cond['NamesAccepted']?.status, 'True', `${crd.metadata.name} NamesAccepted`);
      assert.equal(
        cond['NonStructuralSchema'],
        undefined,
        `${crd.metadata.name}: ${cond['NonStructuralSchema']?.message}`,
      );
    }
    // the examples are accepted as they are, except what the real server refuses in any cluster: an
    // EndpointSlice with a loopback address (they are there for file mode, with a local backend)
    const docs = fs
      .readdirSync(path.join(REPO, 'examples'))
      .filter((f) => f.endsWith('.yaml'))
      .flatMap((f) =>
        YAML.parseAllDocuments(fs.readFileSync(path.join(REPO, 'examples', f), 'utf8')).map(
          (d) => d.toJS() as Record<string, unknown>,
        ),
      )
      .filter((d) => d !== null);
    const loopback = (d: Record<string, unknown>): boolean =>
      d['kind'] === 'EndpointSlice' && /"127\./.test(JSON.stringify(d['endpoints']));
    const applied = await kube.kubectlOk(['apply', '-f', '-'], {
      input: docs
        .filter((d) => !loopback(d))
        .map((d) => JSON.stringify(d))
        .join('\n---\n'),
    });
    assert.match(applied, /servicedescriptor\.proxy\.otoroshi\.io\/\S+ created/);
    for (const d of docs.filter(loopback)) {
      const r = await kube.kubectl(['apply', '-f', '-'], { input: JSON.stringify(d) });
      assert.notEqual(r.code, 0);
      assert.match(r.stderr, /may not be in the loopback range/);
    }
    // `kubectl get otoroshi` (the category) lists them
    const listed = await kube.kubectlOk(['get', 'otoroshi', '-A']);
    assert.match(listed, /servicedescriptor\.proxy\.otoroshi\.io\//);
    assert.match(listed, /apikey\.proxy\.otoroshi\.io\/demo-apikey/);
    // served as v1 as well as v1alpha1 (same storage)
    const v1 = JSON.parse(
      await kube.kubectlOk(['get', 'service-descriptors.v1.proxy.otoroshi.io', '-A', '-o', 'json']),
    ) as { items: Array<{ apiVersion: string }> };
    assert.ok(v1.items.length > 0 && v1.items.every((i) => i.apiVersion === 'proxy.otoroshi.io/v1'));
  },
);

// (the manifests are applied once, by the first test: a second client-side apply would put the
// Service reference back next to the loopback URL of the webhook)
test.skipIf(skip)(
  'real apiserver: for every kind, kubectl apply refuses a wrongly typed field and an unknown top-level field, ' +
    'naming the field',
  async () => {
    const all = crds();
    assert.equal(all.length, 10);
    for (const crd of all) {
      for (const version of crd.spec.versions.map((v) => v.name)) {
        const { spec, field } = wronglyTyped(crd);
        const name = `bad-${crd.spec.names.plural}-${version}`.toLowerCase();
        const doc = {
          apiVersion: `proxy.otoroshi.io/${version}`,
          kind: crd.spec.names.kind,
          metadata: { name, namespace: 'default' },
          spec,
        };
        const r = await kube.kubectl(['apply', '-f', '-'], { input: JSON.stringify(doc) });
        assert.notEqual(
          r.code,
          0,
          `${crd.spec.names.kind} ${version} ${field}=${JSON.stringify(spec[field.slice(5)])} accepted:\n${r.stdout}`,
        );
        assert.ok(r.stderr.includes(field), `${crd.spec.names.kind} ${version}: the error names ${field}: ${r.stderr}`);
        assert.match(r.stderr, /must be of type|Invalid value/);
        // a typo at the top level ("spc") is refused by strict field validation, naming it
        const typo = {
          apiVersion: `proxy.otoroshi.io/${version}`,
          kind: crd.spec.names.kind,
          metadata: { name: `${name}-typo`, namespace: 'default' },
          spec: validSpec(crd),
          spc: {},
        };
        const t = await kube.kubectl(['apply', '-f', '-'], { input: JSON.stringify(typo) });
        assert.notEqual(t.code, 0, `${crd.spec.names.kind} ${version}: unknown field "spc" accepted`);
        assert.match(t.stderr, /unknown field "spc"/);
        // neither was stored
        const g = await kube.kubectl([
          'get',
          `${crd.spec.names.plural}.${version}.proxy.otoroshi.io`,
          name,
          '-n',
          'default',
        ]);
        assert.notEqual(g.code, 0);
        assert.match(g.stderr, /NotFound|not found/);
      }
    }
  },
);

test.skipIf(skip)(
  'real apiserver: unknown fields inside spec are kept (Otoroshi ignores them; existing CRs stay valid)',
  async () => {
    const doc = {
      apiVersion: 'proxy.otoroshi.io/v1alpha1',
      kind: 'ServiceDescriptor',
      metadata: { name: 'unknown-field', namespace: 'default' },
      spec: { hosts: ['u.oto.tools'], targets: [{ url: 'http://127.0.0.1:1' }], someFutureOtoroshiField: { a: 1 } },
    };
    await kube.kubectlOk(['apply', '-f', '-'], { input: JSON.stringify(doc) });
    const got = JSON.parse(
      await kube.kubectlOk(['get', 'service-descriptors', 'unknown-field', '-n', 'default', '-o', 'json']),
    ) as { spec: Record<string, unknown> };
    assert.deepEqual(got.spec['someFutureOtoroshiField'], { a: 1 });
  },
);
