// Validation first runs one checked encoder pass (proto/check/encode.ts `encodeChecked` with the
// per-message PGV rules of `localRules`) that only answers "valid?"; where it doubts, the reporting
// passes run as before. These tests pin that the answer never depends on which path gave it: the
// same bytes for valid resources, the same issues (paths, rules, messages) for invalid ones, over
// every golden resource, generated descriptors, and random mutations of them.
import { test } from 'vitest';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { buildModel } from '../src/model/build.js';
import { translate } from '../src/xds/translate.js';
import type { ProtoObject } from '../proto/loader.js';
import { goldenCaseResources, resourcesOf } from './helpers/golden-cases.js';
import { resolveType } from '../proto/json.js';
import { encodeChecked } from '../proto/check/encode.js';
import { localRules } from '../proto/check/pgv-rules.js';
import { validateMessage, validateReporting, type ValidationResult } from '../proto/check/validate.js';
import { benchView } from '../bench/gen.js';
import { params } from './helpers/fuzz.js';

function goldenResources(): Array<[string, ProtoObject]> {
  return goldenCaseResources().flatMap((c) => c.resources);
}

/** A result in a comparable form: the bytes as hex, or the issues. */
function shown(r: ValidationResult): unknown {
  return r.ok ? { ok: true, hex: Buffer.from(r.bytes).toString('hex') } : r;
}

/** The answer, or what was thrown: a path may only throw where the other throws the same. */
function answer(v: typeof validateMessage, url: string, obj: ProtoObject): unknown {
  try {
    return shown(v(url, obj));
  } catch (e) {
    return { threw: String(e) };
  }
}

function assertSameAnswer(url: string, obj: ProtoObject, what: string): boolean {
  const fast = answer(validateMessage, url, obj);
  assert.deepEqual(fast, answer(validateReporting, url, obj), what);
  return (fast as { ok?: boolean }).ok === true;
}

const golden = goldenResources();
const generated = resourcesOf(translate(buildModel(benchView(300), {}).model, {}));

test('every golden and generated resource: the checked pass proves it, with the bytes of the reporting passes', () => {
  assert.ok(golden.length > 100 && generated.length > 1200);
  let proven = 0;
  for (const [url, obj] of [...golden, ...generated]) {
    assert.ok(assertSameAnswer(url, obj, url), url);
    if (encodeChecked(resolveType(url), obj, localRules) !== null) proven++;
  }
  // What it leaves to the reporting passes are values only the round trip proves (bytes...).
  assert.ok(proven >= 0.95 * (golden.length + generated.length), `${proven} proven`);
});

/** Every object and array of a resource, and every key used in it. */
function partsOf(root: ProtoObject): { nodes: Array<Record<string, unknown> | unknown[]>; keys: string[] } {
  const nodes: Array<Record<string, unknown> | unknown[]> = [];
  const keys = new Set<string>();
  const walk = (v: unknown): void => {
    if (typeof v !== 'object' || v === null) return;
    nodes.push(v as Record<string, unknown>);
    for (const [k, x] of Object.entries(v)) {
      if (!Array.isArray(v)) keys.add(k);
      walk(x);
    }
  };
  walk(root);
  return { nodes, keys: [...keys].sort() };
}

// Values a field may wrongly (or rightly) get: empty, out of range, of another kind, an enum name of
// another enum, a header value with a control character, a lone surrogate, messages that break rules.
const VALUES: unknown[] = [
  '',
  'x',
  'NOPE',
  'STATIC',
  'V3',
  'a b',
  'bad\nvalue',
  'a\uD800',
  '12',
  0,
  -1,
  1.5,
  65536,
  4294967296,
  -2147483649,
  2 ** 60,
  true,
  null,
  undefined,
  [],
  [null],
  ['x'],
  {},
  { seconds: 0 },
  { seconds: -1, nanos: 5 },
  { value: 0 },
  { value: 101 },
  { '@type': 'type.googleapis.com/nope.Nope' },
  { '@type': 'envoy.config.core.v3.Address' },
  { name: '' },
  { bogusKey: 1 },
];

test('random mutations of resources: the same issues (or bytes) through either path', () => {
  const samples = [...golden, ...generated.slice(0, 200)];
  let invalid = 0;
  let valid = 0;
  fc.assert(
    fc.property(
      fc.nat({ max: samples.length - 1 }),
      fc.array(fc.tuple(fc.nat(), fc.nat(), fc.nat({ max: VALUES.length + 1 })), { minLength: 1, maxLength: 3 }),
      (pick, edits) => {
        const [url, original] = samples[pick] as [string, ProtoObject];
        const obj = structuredClone(original);
        for (const [n, k, vi] of edits) {
          const { nodes, keys } = partsOf(obj);
          const node = nodes[n % nodes.length] as Record<string, unknown> | unknown[];
          // A value of the resource itself (a sub-message where a scalar is due...), or one of VALUES.
          const value = structuredClone(vi >= VALUES.length ? nodes[k % nodes.length] : VALUES[vi]);
          if (Array.isArray(node)) node[k % (node.length + 1)] = value;
          else if (vi === VALUES.length + 1) delete node[keys[k % keys.length] as string];
          else if (vi % 3 === 0) {
            // One of its own keys, given the value that key has elsewhere (often still valid).
            const own = Object.keys(node);
            const key = own[k % Math.max(own.length, 1)];
            const donor =
              key === undefined ? undefined : nodes.find((d, i) => i !== n % nodes.length && Object.hasOwn(d, key));
            if (key !== undefined && donor) node[key] = structuredClone((donor as Record<string, unknown>)[key]);
          } else node[[...keys, 'bogusKey'][k % (keys.length + 1)] as string] = value;
        }
        if (assertSameAnswer(url, obj, url)) valid++;
        else invalid++;
      },
    ),
    params(3000),
  );
  // Both answers were exercised.
  assert.ok(invalid > 300 && valid > 100, `${invalid} invalid, ${valid} valid`);
});
