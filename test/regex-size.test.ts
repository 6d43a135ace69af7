// RE2 checks of user regexes: the program size Envoy allows (one regex over it rejects the whole
// route table; re2-wasm cannot report the size: our estimate refuses larger patterns on the object,
// before compiling them), the pattern compiled as Envoy compiles it, thousands of them, by shape.
import { test } from 'vitest';
import assert from 'node:assert/strict';
import { MAX_PROGRAM_SIZE, programSizeEstimate, re2Problem, regexShape } from '../src/model/regex.js';
import { re2CompileError } from '../proto/re2.js';
import { RecentCache } from '../src/model/recent-cache.js';
import { authorityRegex } from '../src/xds/resources/route.js';
import { RE2_MAX_PROGRAM_SIZE } from '../src/envoy/bootstrap.js';

test('regex size: the limit is the one the gateway bootstrap gives Envoy', () => {
  assert.equal(MAX_PROGRAM_SIZE, RE2_MAX_PROGRAM_SIZE);
});

test(
  'regex size: patterns Envoy accepts pass (200 alternatives, 60 wildcard hosts), ' +
    'huge programs are refused with the reason',
  () => {
    const alts = Array.from({ length: 200 }, (_, i) => `tenant-${i}-[a-z]+`).join('|');
    assert.equal(re2Problem(`(?:${alts})`), null);
    assert.equal(re2Problem(authorityRegex(Array.from({ length: 60 }, (_, i) => `api-*.zone${i}.oto.tools`))), null);
    for (const big of [
      '(?:a{1000}){40}',
      '\\p{L}{100}',
      `(?:${Array.from({ length: 5000 }, (_, i) => `x${i}y`).join('|')})`,
    ]) {
      assert.ok(programSizeEstimate(big) > MAX_PROGRAM_SIZE, big.slice(0, 30));
      assert.match(re2Problem(big) ?? '', /too large for Envoy/);
    }
    assert.ok(programSizeEstimate('ab{3}') >= 4);
    assert.ok(programSizeEstimate('(ab){10}') > programSizeEstimate('(ab){2}'));
  },
);

test('regex check: thousands of distinct patterns all compile (the RE2 heap is freed after each compile)', () => {
  // re2-wasm's heap is 16 MiB, fixed, and not garbage-collected: each compiled pattern left in it used
  // to take its share until, some 6,700 patterns on, every compile failed with an out-of-memory abort.
  const refused: string[] = [];
  for (let i = 0; i < 9000; i++) {
    const pattern = `tenant-${i}-[a-z]+(x|y){2,5}`;
    const problem = re2CompileError(pattern);
    if (problem !== null) refused.push(`${pattern}: ${problem}`);
  }
  assert.deepEqual(refused.slice(0, 3), []);
});

test('regex check: the pattern as Envoy compiles it (no JavaScript rewriting), (?<name>...) accepted', () => {
  // What Envoy answers for each (envoy --mode validate on a route with this safe_regex).
  assert.match(re2Problem('\\u0041') ?? '', /invalid escape sequence: \\u/);
  assert.match(re2Problem('\\cA') ?? '', /invalid escape sequence: \\c/);
  assert.match(re2Problem('a{1001}') ?? '', /invalid repetition size/);
  assert.equal(re2Problem('(?<tenant>t-[0-9]+)'), null);
  assert.equal(re2Problem('\\C'), null);
  assert.equal(re2Problem('a/b'), null);
  // A lookbehind is not (?<name>: RE2 refuses it.
  assert.match(re2Problem('(?<=a)b') ?? '', /invalid perl operator/);
});

test('RecentCache: a working set up to one generation is never evicted; older entries go two generations on', () => {
  const c = new RecentCache<string, number>(3);
  for (const k of ['a', 'b', 'c']) c.set(k, k.charCodeAt(0));
  c.set('d', 1); // the generation {a, b, c} is now the previous one
  assert.equal(c.get('a'), 97); // moved back to the current: {d, a}
  c.set('e', 2); // current {d, a, e}: full
  c.set('f', 3); // {d, a, e} becomes the previous; {b, c} dropped
  assert.equal(c.get('b'), undefined);
  assert.equal(c.get('c'), undefined);
  assert.equal(c.get('a'), 97);
  assert.equal(c.get('f'), 3);
  assert.ok(c.size <= 6);
  // A set of 3 used over and over in any order stays: nothing is recomputed.
  const d = new RecentCache<number, number>(3);
  for (let round = 0; round < 5; round++)
    for (const k of round % 2 ? [2, 0, 1] : [0, 1, 2]) {
      if (round > 0) assert.equal(d.get(k), k * 10, `round ${round} key ${k}`);
      else d.set(k, k * 10);
    }
  // With null values (a valid pattern's verdict), a hit is told from a miss.
  const n = new RecentCache<string, string | null>(2);
  n.set('ok', null);
  assert.equal(n.get('ok'), null);
  assert.equal(n.get('missing'), undefined);
});

/** Random patterns over RE2's syntax characters and a few letters and digits (seeded: the same ones every run). */
function randomPatterns(count: number, seed: number): string[] {
  const tokens = [
    'a',
    'b',
    'z',
    'A',
    '0',
    '1',
    '7',
    '9',
    'x',
    'p',
    'P',
    'Q',
    'E',
    'u',
    'c',
    'd',
    'i',
    '\\',
    '[',
    ']',
    '^',
    '-',
    '{',
    '}',
    ',',
    '(',
    ')',
    '?',
    ':',
    '<',
    '>',
    '=',
    '!',
    '*',
    '+',
    '|',
    '.',
    '$',
    '{2}',
    '{1,3}',
    '(?P<',
    '(?i)',
    '[[:alpha:]',
    '\\p{',
    '\\x{',
  ];
  let s = seed;
  const next = (): number => {
    s = (s * 1103515245 + 12345) % 2 ** 31;
    return s / 2 ** 31;
  };
  return Array.from({ length: count }, () => {
    let p = '';
    const len = 1 + Math.floor(next() * 10);
    for (let k = 0; k < len; k++) p += tokens[Math.floor(next() * tokens.length)];
    return p;
  });
}

test('regexShape: a pattern and its shape get the same RE2 verdict (3,000 random patterns, tricky ones)', () => {
  const tricky = [
    '[[:alpha:]z-a]',
    '\\pN',
    '\\pa',
    '\\x4z',
    '\\x41',
    'a{2,1}',
    '(?P<n>a)(?P<n>b)',
    '\\Qa[b\\E',
    '\\1',
    '[z-a]b',
    'b**',
  ];
  let compared = 0;
  for (const p of [...tricky, ...randomPatterns(3000, 17)]) {
    const shape = regexShape(p);
    if (shape === null) continue;
    compared++;
    assert.equal(regexShape(shape), shape, `shape of the shape of ${JSON.stringify(p)}`);
    assert.equal(
      re2CompileError(p) === null,
      re2CompileError(shape) === null,
      `${JSON.stringify(p)} vs ${JSON.stringify(shape)}`,
    );
  }
  assert.ok(compared > 2000, `only ${compared} patterns had a shape`);
  assert.equal(regexShape('tenant-42-[a-z]+(x|y){2,5}'), 'aaaaaa-aa-[a-z]+(a|a){2,5}');
  // A pattern of a known valid shape is valid, an invalid one still gets its own message.
  assert.equal(re2Problem('shape-1-[0-9]+'), null);
  assert.equal(re2Problem('shape-2-[0-9]+'), null);
  assert.match(re2Problem('shape-3-[9-0]+') ?? '', /invalid character class range: 9-0/);
});
