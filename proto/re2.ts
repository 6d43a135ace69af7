// re2-wasm, loaded on first use: requiring it compiles its WebAssembly module (~35 ms of every
// start-up), which a process whose configuration holds no regex never needs. re2-wasm is a CommonJS
// package, so a synchronous require works on every Node release we support.
import { createRequire } from 'node:module';
import type { RE2 as RE2Class } from 're2-wasm';

const require = createRequire(import.meta.url);

let loaded: typeof RE2Class | undefined;

/** re2-wasm's RE2 class (the module is loaded on the first call). */
export function re2Class(): typeof RE2Class {
  loaded ??= (require('re2-wasm') as { RE2: typeof RE2Class }).RE2;
  return loaded;
}

/** The C++ RE2 object re2-wasm wraps: its heap is WebAssembly memory, freed by `delete` only. */
interface WrappedRE2 {
  ok(): boolean;
  error(): string;
  delete(): void;
}
type WrappedRE2Class = new (pattern: string, ignoreCase: boolean, multiline: boolean, dotAll: boolean) => WrappedRE2;

let wrapped: WrappedRE2Class | undefined;

/**
 * Why RE2 refuses `pattern` as it is written (the way Envoy compiles a safe_regex), or null when it
 * compiles. Not through re2-wasm's RE2 class: that one rewrites JavaScript syntax first (`\u0041`,
 * `\cA`...), so it accepts patterns Envoy refuses, and it never frees what it compiles. Its module has
 * a fixed 16 MiB heap that no garbage collector reclaims: without the `delete` below, some 6,700
 * distinct patterns exhaust it, and every later one fails with an out-of-memory abort. The one rewrite
 * kept is `(?<name>` to `(?P<name>`: the RE2 in re2-wasm predates the `(?<name>` spelling, which the
 * RE2 in Envoy accepts with the same meaning.
 */
export function re2CompileError(pattern: string): string | null {
  wrapped ??= (require('re2-wasm/build/wasm/re2.js') as { WrappedRE2: WrappedRE2Class }).WrappedRE2;
  const re = new wrapped(pattern.replace(/\(\?<(?![=!])/g, '(?P<'), false, false, false);
  try {
    return re.ok() ? null : re.error();
  } finally {
    re.delete();
  }
}
