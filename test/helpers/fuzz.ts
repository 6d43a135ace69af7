// Shared fast-check plumbing for test/fuzz-*.test.ts and scripts/fuzz-nightly.mjs: run counts
// (FUZZ_RUNS overrides, FUZZ_SEED replays), seed corpora and a generic structural mutator.
import fs from 'node:fs';
import path from 'node:path';
import fc from 'fast-check';
import YAML from 'yaml';

/** Runs per property: `FUZZ_RUNS` (nightly) or the CI default given by the test. */
export function runs(ciDefault: number): number {
  const n = Number(process.env.FUZZ_RUNS);
  return Number.isInteger(n) && n > 0 ? n : ciDefault;
}

/** fast-check parameters: run count, optional replay seed (FUZZ_SEED), no shrinking time bomb. */
export function params(ciDefault: number): fc.Parameters<unknown> {
  const p: fc.Parameters<unknown> = { numRuns: runs(ciDefault), includeErrorInReport: true };
  const seed = Number(process.env.FUZZ_SEED);
  if (Number.isInteger(seed)) p.seed = seed;
  return p;
}

/** Every YAML document of the repository's fixtures and examples (the seed corpus). */
export function seedDocuments(): Array<Record<string, unknown>> {
  const dirs = ['testdata/in', 'test/fixtures/model', 'test/fixtures/authz', 'test/fixtures/jwt', 'examples'];
  const out: Array<Record<string, unknown>> = [];
  for (const d of dirs) {
    if (!fs.existsSync(d)) continue;
    for (const f of fs.readdirSync(d).sort()) {
      if (!/\.ya?ml$/.test(f)) continue;
      for (const doc of YAML.parseAllDocuments(fs.readFileSync(path.join(d, f), 'utf8'))) {
        try {
          const v = doc.toJS() as unknown;
          if (v && typeof v === 'object' && !Array.isArray(v)) out.push(v as Record<string, unknown>);
        } catch {
          /* not a seed */
        }
      }
    }
  }
  return out;
}

/** One structural edit: walk `path` (indices modulo the children count) then apply `op`. */
export interface Mutation {
  path: number[];
  op: 'replace' | 'delete' | 'duplicate' | 'stringify' | 'wrap';
  value: unknown;
}

/** Values that tend to break parsers: wrong types, huge/negative numbers, odd strings. */
export const hostileValue: fc.Arbitrary<unknown> = fc.oneof(
  fc.constantFrom(
    null,
    true,
    false,
    0,
    -1,
    1e308,
    -0,
    0.5,
    Number.MAX_SAFE_INTEGER,
    65536,
    4294967296,
    '',
    ' ',
    '*',
    '/',
    '//',
    '..',
    '-',
    '0',
    'true',
    '${x}',
    '\u0000',
    '\uFFFF',
    '😀',
    'a'.repeat(300),
    '[',
    '(?<',
    '.*',
    '((a+)+)+$',
    'http://',
    'https://[::1]:99999',
    '10.0.0.1:abc',
    '*.*.com',
    'ns/name',
    '-1ms',
  ),
  fc.string({ maxLength: 40 }),
  fc.string({ unit: 'binary', maxLength: 20 }),
  fc.integer(),
  fc.double(),
  fc.jsonValue({ maxDepth: 2 }),
);

export const mutationArb: fc.Arbitrary<Mutation> = fc.record({
  path: fc.array(fc.nat(), { minLength: 0, maxLength: 6 }),
  op: fc.constantFrom('replace', 'replace', 'replace', 'delete', 'duplicate', 'stringify', 'wrap'),
  value: hostileValue,
});

function clone<T>(v: T): T {
  return structuredClone(v);
}

/** Applies `m` to a deep copy of `root` (never mutates the input). */
export function mutate(root: unknown, muts: readonly Mutation[]): unknown {
  let doc = clone(root);
  for (const m of muts) doc = applyOne(doc, m);
  return doc;
}

function childrenOf(v: unknown): Array<string | number> {
  if (Array.isArray(v)) return v.map((_x, i) => i);
  if (v && typeof v === 'object') return Object.keys(v);
  return [];
}

function applyOne(root: unknown, m: Mutation): unknown {
  if (m.path.length === 0 || childrenOf(root).length === 0) return m.op === 'replace' ? clone(m.value) : root;
  let parent: unknown = root;
  let key: string | number | undefined;
  for (const step of m.path) {
    const kids = childrenOf(key === undefined ? parent : (parent as Record<string | number, unknown>)[key]);
    if (kids.length === 0) break;
    if (key !== undefined) parent = (parent as Record<string | number, unknown>)[key];
    key = kids[step % kids.length];
  }
  if (key === undefined) return root;
  const p = parent as Record<string | number, unknown>;
  const cur = p[key];
  switch (m.op) {
    case 'replace':
      p[key] = clone(m.value);
      break;
    case 'delete':
      if (Array.isArray(p) && typeof key === 'number') p.splice(key, 1);
      else delete p[key];
      break;
    case 'duplicate':
      if (Array.isArray(p)) p.push(clone(cur));
      else p[`${String(key)}-copy`] = clone(cur);
      break;
    case 'stringify':
      p[key] = typeof cur === 'string' ? Number(cur) : JSON.stringify(cur ?? null);
      break;
    case 'wrap':
      p[key] = Array.isArray(cur) ? { value: cur } : [cur];
      break;
  }
  return root;
}

/** Random edits of a text: insert/delete/replace runs of characters (a half-written file, a bad merge). */
export const textEditArb = fc.array(
  fc.record({
    at: fc.nat(),
    len: fc.nat({ max: 20 }),
    insert: fc.oneof(
      fc.string({ maxLength: 10 }),
      fc.constantFrom(
        ':',
        '- ',
        '\n',
        '  ',
        '{',
        '}',
        '[',
        ']',
        '---\n',
        '&a',
        '*a',
        '!!binary',
        '"',
        "'",
        '#',
        '\t',
        '?',
      ),
    ),
  }),
  { maxLength: 4 },
);

export function editText(text: string, edits: ReadonlyArray<{ at: number; len: number; insert: string }>): string {
  let t = text;
  for (const e of edits) {
    const at = t.length === 0 ? 0 : e.at % (t.length + 1);
    t = t.slice(0, at) + e.insert + t.slice(at + e.len);
  }
  return t;
}
