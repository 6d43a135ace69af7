// A rebuild runs as steps (src/model/steps.ts): the model build and translate pause every few hundred
// objects, so the event loop (ext_authz Checks, xDS keepalives) runs during a rebuild of a large
// config. Both drivers run the same implementation and must produce the same output.
import { test } from 'vitest';
import assert from 'node:assert/strict';
import { WarmUp, compile, compileSteps, runSteps, runStepsYielding, type Compiled } from '../src/pipeline.js';
import { STEP_BATCH } from '../src/model/steps.js';
import { RESOURCE_SET_KEYS } from '../src/xds/types.js';
import { benchView } from '../bench/gen.js';

const N = 1_200;

/** Every published resource's encoded bytes, per kind, in publication order. */
function encoded(c: Compiled): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const key of Object.values(RESOURCE_SET_KEYS)) {
    out[key] = c.envoy.set[key].map((r) => Buffer.from(c.envoy.bytes.get(r) ?? new Uint8Array()).toString('hex'));
  }
  return out;
}

test(`compileSteps pauses within the model build and translate of ${N} descriptors`, () => {
  const steps = compileSteps(benchView(N), {}, {});
  let pauses = 0;
  for (let r = steps.next(); !r.done; r = steps.next()) pauses++;
  // Each per-object loop pauses every STEP_BATCH items: the shape check, the descriptors and
  // translate's descriptor loop at least, plus the pauses between stages.
  const perLoop = Math.floor(N / STEP_BATCH);
  assert.ok(pauses >= 3 * perLoop + 3, `only ${pauses} pauses for ${N} descriptors`);
});

test('a yielding compile lets queued callbacks run before it ends, and yields the same output', async () => {
  const view = benchView(N);
  const sync = compile(view, {}, {});
  let ticks = 0;
  let running = true;
  const tick = (): void => {
    ticks++;
    if (running) setImmediate(tick);
  };
  setImmediate(tick);
  const yielded = await runStepsYielding(compileSteps(view, {}, {}));
  running = false;
  const ticksDuringCompile = ticks;
  assert.ok(ticksDuringCompile >= 3, `the event loop ran ${ticksDuringCompile} times during the compile`);
  assert.equal(yielded.envoy.set.clusters.length, sync.envoy.set.clusters.length);
  assert.ok(yielded.envoy.set.clusters.length >= N, 'every descriptor has its cluster');
  assert.deepEqual(encoded(yielded), encoded(sync));
  assert.deepEqual(yielded.errors, sync.errors);
});

test('a warm-up of the objects as they are read changes nothing the compile then publishes', () => {
  const view = benchView(300);
  const cold = compile(view, {}, {});
  const warm = new WarmUp(() => ({ settings: {}, opts: {} }));
  // A view read in two files: the second brings no new kind (only its specs are checked).
  const half = Math.floor(view.objects.length / 2);
  runSteps(warm.steps(view.objects.slice(0, half)));
  runSteps(warm.steps(view.objects.slice(half)));
  const after = compile(view, {}, {});
  assert.deepEqual(encoded(after), encoded(cold));
  assert.deepEqual(after.statuses, cold.statuses);
  assert.deepEqual(after.errors, cold.errors);
});
