// The ajv validators compiled ahead of time (src/model/spec-validators.generated.cjs): no drift from
// the schemas, in use, the same verdicts and errors as ajv compiling at run time, and never used
// when the schemas changed.
import { test } from 'vitest';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { parseAllDocuments } from 'yaml';
import { SPEC_SCHEMAS } from '../src/model/schemas.js';
import { generatedPath, generatedValidators, newAjv, specValidatorsSource } from '../src/model/spec-validators.js';
import { normaliseKind } from '../src/model/ids.js';

const REGENERATE = 'run: npm run build && node scripts/gen-spec-validators.mjs';

test('spec-validators.generated.cjs is exactly what scripts/gen-spec-validators.mjs generates', () => {
  assert.ok(fs.readFileSync(generatedPath(), 'utf8') === specValidatorsSource(SPEC_SCHEMAS), `stale (${REGENERATE})`);
});

test('the generated validators are used for the current schemas, and refused for other schemas', () => {
  assert.ok(generatedValidators(SPEC_SCHEMAS) !== null);
  const edited = { ...SPEC_SCHEMAS, ApiKey: { type: 'object', required: ['clientId'] } };
  assert.equal(generatedValidators(edited), null);
});

/** Every spec of testdata/ and examples/, and copies with a wrong type in each top-level field. */
function corpus(): { kind: string; spec: unknown }[] {
  const out: { kind: string; spec: unknown }[] = [];
  for (const dir of ['testdata/in', 'testdata/otoroshi', 'examples']) {
    if (!fs.existsSync(dir)) continue;
    for (const f of fs.readdirSync(dir, { recursive: true }) as string[]) {
      if (!/\.ya?ml$/.test(f)) continue;
      for (const doc of parseAllDocuments(fs.readFileSync(path.join(dir, f), 'utf8'))) {
        const o = doc.toJS() as { kind?: unknown; spec?: unknown } | null;
        if (!o || typeof o.kind !== 'string') continue;
        const kind = normaliseKind(o.kind);
        if (!Object.hasOwn(SPEC_SCHEMAS, kind) || typeof o.spec !== 'object' || o.spec === null) continue;
        out.push({ kind, spec: o.spec });
        for (const k of Object.keys(o.spec)) {
          out.push({ kind, spec: { ...o.spec, [k]: 12.5 } });
          out.push({ kind, spec: { ...o.spec, [k]: [{ x: null }] } });
        }
      }
    }
  }
  for (const kind of Object.keys(SPEC_SCHEMAS)) out.push({ kind, spec: {} }, { kind, spec: { targets: 'x' } });
  return out;
}

test('generated and run-time compiled validators give the same verdicts and errors', () => {
  const gen = generatedValidators(SPEC_SCHEMAS)!;
  const ajv = newAjv();
  const runtime = new Map(Object.entries(SPEC_SCHEMAS).map(([k, s]) => [k, ajv.compile(s)]));
  const cases = corpus();
  assert.ok(cases.length > 200, `corpus of ${cases.length} specs`);
  let invalid = 0;
  for (const { kind, spec } of cases) {
    const a = gen[kind]!;
    const b = runtime.get(kind)!;
    const okA = a(spec);
    const okB = b(spec);
    assert.equal(okA, okB, `${kind} verdict`);
    if (!okA) invalid++;
    assert.deepEqual(a.errors ?? null, b.errors ?? null, `${kind} errors of ${JSON.stringify(spec).slice(0, 200)}`);
  }
  assert.ok(invalid > 100, `${invalid} invalid specs in the corpus`);
});
