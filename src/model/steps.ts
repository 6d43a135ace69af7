// Work written as steps: a generator that pauses (yields) between batches, so that one
// implementation has two drivers: `runSteps` (all at once: CLIs, tests) and `runStepsYielding`
// (the server's builds: the event loop runs at every pause). The work keeps its state local to
// the generator; whatever it publishes is set in one synchronous call, never half-way.

/** A computation that pauses between its steps and returns a T. */
export type Steps<T = void> = Generator<void, T>;

/** Items handled between two pauses by the per-object and per-descriptor loops. */
export const STEP_BATCH = 500;

/** Calls `fn` on every item, pausing after every `size` of them. */
export function* eachBatched<T>(items: Iterable<T>, fn: (item: T) => void, size = STEP_BATCH): Steps {
  let n = 0;
  for (const item of items) {
    fn(item);
    if (++n % size === 0) yield;
  }
}

/** Runs steps to the end without pausing. */
export function runSteps<T>(steps: Steps<T>): T {
  for (;;) {
    const r = steps.next();
    if (r.done) return r.value;
  }
}

/** Runs steps to the end, letting the event loop run (setImmediate) at every pause. */
export async function runStepsYielding<T>(steps: Steps<T>): Promise<T> {
  for (;;) {
    const r = steps.next();
    if (r.done) return r.value;
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
}
