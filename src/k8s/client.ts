// A small JSON REST client for the Kubernetes API, authenticated by @kubernetes/client-node's
// KubeConfig (in-cluster service account, KUBECONFIG, token, client certificates, CA).
// We use it for lists (raw JSON: the generated typed APIs turn timestamps into Date objects, while
// watch events stay raw — the informer cache must hold one shape) and for our few writes.
import http from 'node:http';
import https from 'node:https';
import { clientNode, type ClientNode as k8s } from './client-node.js';
import type { KubeMetadata } from '../model/types.js';

export interface KubeObjectJson {
  apiVersion?: string;
  kind?: string;
  metadata: KubeMetadata & { ownerReferences?: OwnerReference[]; [k: string]: unknown };
  [k: string]: unknown;
}

export interface OwnerReference {
  apiVersion: string;
  kind: string;
  name: string;
  uid: string;
  controller?: boolean;
  blockOwnerDeletion?: boolean;
}

export interface KubeList {
  metadata?: { resourceVersion?: string };
  items: KubeObjectJson[];
}

/** An API error with the Status the server sent. */
export class KubeApiError extends Error {
  constructor(
    readonly statusCode: number,
    readonly reason: string,
    message: string,
  ) {
    super(message);
  }
  /** client-node's ListWatch relists when `code === 410`. */
  get code(): number {
    return this.statusCode;
  }
}

export type PatchType = 'merge' | 'strategic';

/**
 * Loads a KubeConfig: an explicit file, else KUBECONFIG / ~/.kube/config / in-cluster (client-node's default order).
 */
export function loadKubeConfig(file?: string): k8s.KubeConfig {
  const kc = new (clientNode().KubeConfig)();
  if (file) kc.loadFromFile(file);
  else kc.loadFromDefault();
  return kc;
}

export class KubeClient {
  constructor(
    readonly kc: k8s.KubeConfig,
    private readonly timeoutMs = 15_000,
  ) {}

  /** The namespace of the current context (or `default`). */
  currentNamespace(): string {
    const ctx = this.kc.getContextObject(this.kc.getCurrentContext());
    return ctx?.namespace ?? 'default';
  }

  async request<T>(method: string, path: string, body?: unknown, contentType = 'application/json'): Promise<T> {
    const cluster = this.kc.getCurrentCluster();
    if (!cluster) throw new Error('kubeconfig has no current cluster');
    const url = new URL(cluster.server.replace(/\/$/, '') + path);
    const opts: https.RequestOptions = { method, headers: { accept: 'application/json' } };
    await this.kc.applyToHTTPSOptions(opts);
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const headers = opts.headers as Record<string, string | number>;
    if (payload) {
      headers['content-type'] = contentType;
      headers['content-length'] = payload.length;
    }
    const mod = url.protocol === 'https:' ? https : http;
    return new Promise<T>((resolve, reject) => {
      const req = mod.request(url, { ...opts, method, headers, timeout: this.timeoutMs }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let parsed: unknown;
          try {
            parsed = text === '' ? undefined : JSON.parse(text);
          } catch {
            parsed = undefined;
          }
          const code = res.statusCode ?? 0;
          if (code >= 200 && code < 300) return resolve(parsed as T);
          const st = (parsed ?? {}) as { reason?: string; message?: string };
          reject(
            new KubeApiError(
              code,
              st.reason ?? 'Unknown',
              `${method} ${path}: ${code} ${st.message ?? text.slice(0, 200)}`,
            ),
          );
        });
      });
      req.on('timeout', () => req.destroy(new Error(`${method} ${path}: timeout after ${this.timeoutMs} ms`)));
      req.on('error', reject);
      if (payload) req.write(payload);
      req.end();
    });
  }

  get<T = KubeObjectJson>(path: string): Promise<T> {
    return this.request<T>('GET', path);
  }

  /** GET that answers undefined on 404. */
  async find<T = KubeObjectJson>(path: string): Promise<T | undefined> {
    try {
      return await this.get<T>(path);
    } catch (err) {
      if (err instanceof KubeApiError && err.statusCode === 404) return undefined;
      throw err;
    }
  }

  list(path: string, query: Record<string, string | undefined> = {}): Promise<KubeList> {
    const qs = new URLSearchParams();
    for (const [k, v] of Object.entries(query)) if (v !== undefined && v !== '') qs.set(k, v);
    const s = qs.toString();
    return this.get<KubeList>(s ? `${path}?${s}` : path);
  }

  create<T = KubeObjectJson>(collectionPath: string, body: unknown): Promise<T> {
    return this.request<T>('POST', collectionPath, body);
  }

  replace<T = KubeObjectJson>(path: string, body: unknown): Promise<T> {
    return this.request<T>('PUT', path, body);
  }

  patch<T = KubeObjectJson>(path: string, body: unknown, type: PatchType = 'merge'): Promise<T> {
    return this.request<T>(
      'PATCH',
      path,
      body,
      type === 'merge' ? 'application/merge-patch+json' : 'application/strategic-merge-patch+json',
    );
  }

  delete(path: string): Promise<unknown> {
    return this.request('DELETE', path);
  }
}

/** `/api/v1` or `/apis/<group>/<version>`. */
export function groupVersionPath(apiVersion: string): string {
  return apiVersion.includes('/') ? `/apis/${apiVersion}` : `/api/${apiVersion}`;
}

/** Path of a collection (namespace undefined = cluster-wide or cluster-scoped). */
export function collectionPath(apiVersion: string, plural: string, namespace?: string): string {
  const ns = namespace !== undefined ? `/namespaces/${encodeURIComponent(namespace)}` : '';
  return `${groupVersionPath(apiVersion)}${ns}/${plural}`;
}

export function objectPath(apiVersion: string, plural: string, namespace: string | undefined, name: string): string {
  return `${collectionPath(apiVersion, plural, namespace)}/${encodeURIComponent(name)}`;
}
