// Plan goldens: testdata/in/<case>.yaml → buildModel → the plan (src/xds/plan/: per node role,
// listeners, route configurations with virtual hosts and ordered route entries, clusters, secrets)
// → testdata/plan/<case>.plan.yaml. The plan is what the builders consume: every test also checks
// that the resources built from it carry exactly the planned names, in the planned order.
// UPDATE_GOLDEN=1 rewrites them and deletes stale ones. Review golden diffs like code.
import { test } from 'vitest';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import YAML from 'yaml';
import { parseYamlFile } from '../src/sources/yaml.js';
import { buildModel } from '../src/model/build.js';
import { TranslateCache, translatePlanned } from '../src/xds/translate.js';
import type { ResourceSet, TranslateOptions } from '../src/xds/types.js';
import type { RolePlan } from '../src/xds/plan/types.js';
import type { ProtoObject } from '../proto/loader.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const IN = path.join(ROOT, 'testdata', 'in');
const OUT = path.join(ROOT, 'testdata', 'plan');
const UPDATE = process.env.UPDATE_GOLDEN === '1';

function optionsOf(name: string): Partial<TranslateOptions> | undefined {
  const f = path.join(IN, `${name}.options.json`);
  return fs.existsSync(f) ? (JSON.parse(fs.readFileSync(f, 'utf8')) as Partial<TranslateOptions>) : undefined;
}

const namesOf = (list: readonly ProtoObject[], key = 'name'): string[] => list.map((o) => String(o[key]));

/** The built resources of a role carry the planned names: listeners, route configurations, vhosts, clusters,
 * secrets. */
function assertBuiltFromPlan(name: string, role: RolePlan, set: ResourceSet): void {
  const at = `${name} (${role.role})`;
  assert.deepEqual(
    namesOf(set.listeners),
    role.listeners.map((l) => l.name),
    `${at}: listeners`,
  );
  assert.deepEqual(
    namesOf(set.routes),
    role.routeConfigs.map((r) => r.name),
    `${at}: route configurations`,
  );
  for (const rc of role.routeConfigs) {
    const built = set.routes.find((r) => r.name === rc.name) as ProtoObject;
    const vhosts = built.virtualHosts as ProtoObject[];
    assert.deepEqual(
      namesOf(vhosts),
      rc.virtualHosts.map((v) => v.name),
      `${at}: ${rc.name} virtual hosts`,
    );
    assert.deepEqual(
      vhosts.map((v) => v.domains),
      rc.virtualHosts.map((v) => v.domains),
      `${at}: ${rc.name} domains`,
    );
  }
  assert.deepEqual(
    namesOf(set.clusters),
    role.clusters.map((c) => c.name),
    `${at}: clusters`,
  );
  const eds = role.clusters.filter((c) => c.endpoints).map((c) => c.name);
  assert.deepEqual(namesOf(set.endpoints, 'clusterName'), eds, `${at}: endpoints`);
  assert.deepEqual(namesOf(set.secrets), role.secrets, `${at}: secrets`);
}

const cases = fs.existsSync(IN)
  ? fs
      .readdirSync(IN)
      .filter((f) => f.endsWith('.yaml'))
      .sort()
  : [];
const produced = new Set<string>();

for (const file of cases) {
  const name = file.replace(/\.yaml$/, '');
  test(`plan golden: ${name}`, () => {
    const parsed = parseYamlFile(file, fs.readFileSync(path.join(IN, file), 'utf8'), 0);
    const built = buildModel({ objects: parsed.objects, loadErrors: parsed.errors });
    const { output, plan } = translatePlanned(built.model, optionsOf(name), new TranslateCache());
    const [gateway, grpc] = plan.roles as [RolePlan, RolePlan];
    assertBuiltFromPlan(name, gateway, output.envoy);
    assertBuiltFromPlan(name, grpc, output.grpc);
    const f = `${name}.plan.yaml`;
    produced.add(f);
    const content = YAML.stringify(plan, { lineWidth: 0, aliasDuplicateObjects: false });
    if (UPDATE) {
      fs.mkdirSync(OUT, { recursive: true });
      fs.writeFileSync(path.join(OUT, f), content);
      return;
    }
    assert.equal(content, fs.readFileSync(path.join(OUT, f), 'utf8'), `${f} differs (UPDATE_GOLDEN=1 to rewrite)`);
  });
}

test.skipIf(cases.length === 0)('plan golden: no stale files in testdata/plan', () => {
  if (!fs.existsSync(OUT)) return;
  const stale = fs.readdirSync(OUT).filter((f) => f.endsWith('.yaml') && !produced.has(f));
  if (UPDATE) for (const f of stale) fs.unlinkSync(path.join(OUT, f));
  else assert.deepEqual(stale, [], 'plan goldens without a case (UPDATE_GOLDEN=1 deletes them)');
});
