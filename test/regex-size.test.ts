// RE2 program size: Envoy rejects a regex whose program exceeds the bootstrap's limit (and one
// such regex rejects the whole route table). re2-wasm cannot report the size: our estimate refuses
// larger patterns on the object, before compiling them, and keeps what Envoy accepts.
import { test } from 'vitest';
import assert from 'node:assert/strict';
import { MAX_PROGRAM_SIZE, programSizeEstimate, re2Problem } from '../src/model/regex.js';
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
