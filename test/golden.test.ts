// Golden files: testdata/in/<case>.yaml (CRDs / Ingress / Secrets ...) → buildModel → translate →
// testdata/out/<case>.<node>.<type>.yaml (listeners, routes, clusters, endpoints, secrets, and
// grpc.domains), plus <case>.errors.yaml when the model or the translation reported problems.
// A case may carry translate options in testdata/in/<case>.options.json (Partial<TranslateOptions>).
// UPDATE_GOLDEN=1 rewrites them and deletes stale ones. Review golden diffs like code.
import { test } from 'vitest';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import YAML from 'yaml';
import { parseYamlFile } from '../src/sources/yaml.js';
import { buildModel } from '../src/model/build.js';
import { translate } from '../src/xds/translate.js';
import { RESOURCE_SET_KEYS, type TranslateOptions, type TranslateOutput } from '../src/xds/types.js';
import { SEND_ORDER, TYPE_URLS } from '../proto/loader.js';
import { toProto3Json } from '../proto/json.js';
import { validateSet } from '../src/pipeline.js';
import { buildSnapshot, checkConsistency } from '../src/xds/snapshot.js';
import type { ConfigError } from '../src/model/types.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const IN = path.join(ROOT, 'testdata', 'in');
const OUT = path.join(ROOT, 'testdata', 'out');
const UPDATE = process.env.UPDATE_GOLDEN === '1';

function toYaml(value: unknown): string {
  return YAML.stringify(value, { sortMapEntries: true, lineWidth: 0, aliasDuplicateObjects: false });
}

/** Translate options of a case: testdata/in/<case>.options.json when present. */
function optionsOf(name: string): Partial<TranslateOptions> | undefined {
  const f = path.join(IN, `${name}.options.json`);
  return fs.existsSync(f) ? (JSON.parse(fs.readFileSync(f, 'utf8')) as Partial<TranslateOptions>) : undefined;
}

/** Every golden file of one case, by file name. Empty lists produce no file. */
function renderCase(name: string, text: string, opts: Partial<TranslateOptions> | undefined): Map<string, string> {
  const parsed = parseYamlFile(`${name}.yaml`, text, 0);
  const built = buildModel({ objects: parsed.objects, loadErrors: parsed.errors });
  const out: TranslateOutput = translate(built.model, opts);
  // Every emitted resource passes Envoy's PGV rules + a protobuf round trip, and the sets are
  // consistent (no dangling route / EDS / secret names): a golden case can never hide a reject.
  const rejected: ConfigError[] = [];
  for (const node of ['envoy', 'grpc'] as const) {
    const compiled = validateSet(node, out[node], rejected);
    // The printed JSON of a resource (translate's output) read from the object is what its
    // encoded bytes print.
    for (const kind of SEND_ORDER) {
      for (const obj of compiled.set[RESOURCE_SET_KEYS[kind]]) {
        const bytes = compiled.bytes.get(obj);
        assert.ok(bytes, `${name}: ${kind} has bytes`);
        assert.deepEqual(
          toProto3Json(TYPE_URLS[kind], obj),
          toProto3Json(TYPE_URLS[kind], bytes),
          `${name}: ${kind} JSON`,
        );
      }
    }
    assert.deepEqual(
      checkConsistency(buildSnapshot(node, 'v1', compiled.set)),
      [],
      `${name}: ${node} snapshot consistency`,
    );
  }
  assert.deepEqual(
    rejected.map((e) => e.message),
    [],
    `${name}: every resource passes validate.ts`,
  );
  const files = new Map<string, string>();
  for (const node of ['envoy', 'grpc'] as const) {
    for (const kind of SEND_ORDER) {
      const key = RESOURCE_SET_KEYS[kind];
      const list = out[node][key];
      if (list.length > 0) files.set(`${name}.${node}.${key}.yaml`, toYaml(list));
    }
  }
  if (out.grpcDomains.length > 0) files.set(`${name}.grpc.domains.yaml`, toYaml(out.grpcDomains));
  const modelErrors = built.statuses.flatMap((s) => s.errors.map((e) => ({ object: s.key, ...e })));
  const errors = {
    ...(modelErrors.length > 0 ? { model: modelErrors } : {}),
    ...(out.errors.length > 0 ? { translate: out.errors } : {}),
  };
  if (Object.keys(errors).length > 0) files.set(`${name}.errors.yaml`, toYaml(errors));
  return files;
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
  test(`golden: ${name}`, () => {
    const files = renderCase(name, fs.readFileSync(path.join(IN, file), 'utf8'), optionsOf(name));
    const expected = fs.existsSync(OUT)
      ? fs.readdirSync(OUT).filter((f) => f.startsWith(`${name}.`) && belongsTo(name, f))
      : [];
    for (const f of files.keys()) produced.add(f);
    if (UPDATE) {
      fs.mkdirSync(OUT, { recursive: true });
      for (const [f, content] of files) fs.writeFileSync(path.join(OUT, f), content);
      return;
    }
    assert.deepEqual(
      [...files.keys()].sort(),
      expected.sort(),
      `${name}: set of golden files (UPDATE_GOLDEN=1 to rewrite)`,
    );
    for (const [f, content] of files) {
      assert.equal(content, fs.readFileSync(path.join(OUT, f), 'utf8'), `${f} differs (UPDATE_GOLDEN=1 to rewrite)`);
    }
  });
}

/** `<case>.<node>.<type>.yaml` or `<case>.errors.yaml` of exactly this case (not of `<case>-x`). */
function belongsTo(name: string, f: string): boolean {
  const rest = f.slice(name.length + 1);
  return /^(envoy|grpc)\.[a-z]+\.yaml$/.test(rest) || rest === 'errors.yaml';
}

test.skipIf(cases.length === 0)('golden: no stale files in testdata/out', () => {
  if (!fs.existsSync(OUT)) return;
  const stale = fs.readdirSync(OUT).filter((f) => f.endsWith('.yaml') && !produced.has(f));
  if (UPDATE) {
    for (const f of stale) fs.unlinkSync(path.join(OUT, f));
    return;
  }
  assert.deepEqual(stale, [], 'golden files without a case (UPDATE_GOLDEN=1 deletes them)');
});
