// @kubernetes/client-node, loaded on first use. Importing it costs ~0.5 s of start-up (it pulls in
// its whole generated API), which a server on the file source or the `translate` CLI never needs.
// `clientNode()` loads it synchronously (require of an ES module, Node ≥ 20.19); `preloadClientNode()`
// loads it asynchronously, which startServer does first when the configuration uses Kubernetes, so
// that older Node 20 releases (no require of ES modules) work on the server's paths too.
import { createRequire } from 'node:module';
import type * as ClientNode from '@kubernetes/client-node';

export type { ClientNode };

let loaded: typeof ClientNode | undefined;

/** The @kubernetes/client-node module (loaded on the first call). */
export function clientNode(): typeof ClientNode {
  loaded ??= createRequire(import.meta.url)('@kubernetes/client-node') as typeof ClientNode;
  return loaded;
}

/** Loads @kubernetes/client-node with `import()`; later `clientNode()` calls return it. */
export async function preloadClientNode(): Promise<void> {
  loaded ??= await import('@kubernetes/client-node');
}
