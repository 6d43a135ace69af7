// translate as steps: besides its descriptor loop, the virtual-host planning and emit of every
// variant, the descriptors' clusters and the gRPC route configurations pause every few hundred
// items, cold and on a rebuild with the same cache; pausing never changes what it makes.
import { test } from 'vitest';
import assert from 'node:assert/strict';
import { buildModel } from '../src/model/build.js';
import { STEP_BATCH, runSteps } from '../src/model/steps.js';
import { TranslateCache, translate, translateSteps } from '../src/xds/translate.js';
import type { TranslateOutput } from '../src/xds/types.js';
import { benchView } from '../bench/gen.js';

const N = 1_200;

function pausesOf(steps: Generator<void, TranslateOutput>): { pauses: number; out: TranslateOutput } {
  let pauses = 0;
  for (;;) {
    const r = steps.next();
    if (r.done) return { pauses, out: r.value };
    pauses++;
  }
}

function json(o: TranslateOutput): string {
  return JSON.stringify(o);
}

test(`translate of ${N} descriptors pauses in each of its per-descriptor and per-virtual-host loops`, () => {
  const { model } = buildModel(benchView(N));
  const perLoop = Math.floor(N / STEP_BATCH);
  // The descriptor loop; per variant (http, grpc) the candidate index, the plans and the emit;
  // the descriptors' clusters; the gRPC route configurations (one per host).
  const loops = 1 + 2 * 3 + 1 + 1;
  const cache = new TranslateCache();
  const cold = pausesOf(translateSteps(model, {}, cache));
  assert.ok(cold.pauses >= loops * perLoop, `cold: only ${cold.pauses} pauses for ${N} descriptors`);
  assert.equal(json(cold.out), json(translate(model, {})));
  // A rebuild of the same model (every memo hits) pauses as often and makes the same output.
  const again = pausesOf(translateSteps(model, {}, cache));
  assert.ok(again.pauses >= loops * perLoop, `rebuild: only ${again.pauses} pauses for ${N} descriptors`);
  assert.equal(json(again.out), json(cold.out));
});

test('a rebuild with one descriptor changed, driven by steps, equals a cold translate of that model', () => {
  const cache = new TranslateCache();
  runSteps(translateSteps(buildModel(benchView(N)).model, {}, cache));
  const changed = buildModel(benchView(N, { index: 7, gen: 1 })).model;
  const { out } = pausesOf(translateSteps(changed, {}, cache));
  assert.equal(json(out), json(translate(changed, {})));
});
