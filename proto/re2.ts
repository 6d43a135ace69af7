// re2-wasm, loaded on first use: requiring it compiles its WebAssembly module (~35 ms of every
// start-up), which a process whose configuration holds no regex never needs. re2-wasm is a CommonJS
// package, so a synchronous require works on every Node release we support.
import { createRequire } from 'node:module';
import type { RE2 as RE2Class } from 're2-wasm';

let loaded: typeof RE2Class | undefined;

/** re2-wasm's RE2 class (the module is loaded on the first call). */
export function re2Class(): typeof RE2Class {
  loaded ??= (createRequire(import.meta.url)('re2-wasm') as { RE2: typeof RE2Class }).RE2;
  return loaded;
}
