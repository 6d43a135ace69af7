// In-memory ServiceDescriptor generator for the benchmarks (no files, no YAML parsing).
import fs from 'node:fs';
import path from 'node:path';
import type { ConfigView, StoredObject } from '../src/model/types.js';

export const BENCH_NS = 'bench';

/** Path of descriptor `i` (generation `gen` changes it: the "one route changed" edit). */
export function benchPath(i: number, gen = 0): string {
  return gen === 0 ? `/api/v1/svc-${i}` : `/api/v${gen + 1}/svc-${i}`;
}

/**
 * Descriptor `i`: host `svc-i.bench.local`, 2 static targets `127.0.0.x:port`, one path,
 * matchingHeaders on 10% of them.
 */
/** The descriptor whose route changes ('route') and the one whose endpoint IP changes ('endpoint'). */
export const CHANGED_INDEX = 1;
export const EDS_CHANGED_INDEX = 2;

export type BenchChange = { index: number; gen: number; what?: 'route' | 'endpoint' };

export function benchDescriptor(i: number, gen = 0, what: 'route' | 'endpoint' = 'route'): StoredObject {
  // An 'endpoint' change moves the first target to another IP (EDS only); 'route' changes the path.
  // Descriptor EDS_CHANGED_INDEX has targets on two different IPs from the start: with a single
  // target host the route rewrites Host to it (hostRewriteLiteral), so an IP change would change
  // the route too; with mixed hosts the route uses autoHostRewrite and only the CLA changes.
  const a = (i % 250) + 1;
  const firstIp = what === 'endpoint' && gen > 0 ? `127.1.${gen % 250}.${a}` : `127.0.0.${a}`;
  const secondIp = i === EDS_CHANGED_INDEX ? `127.0.1.${a}` : `127.0.0.${a}`;
  const port = 10_000 + (i % 50_000);
  const spec: Record<string, unknown> = {
    hosts: [`svc-${i}.bench.local`],
    paths: [benchPath(i, what === 'route' ? gen : 0)],
    forceHttps: false,
    enforceSecureCommunication: false,
    targets: [
      { url: `http://${firstIp}:${port}`, weight: 1 },
      { url: `http://${secondIp}:${port + 1}`, weight: 1 },
    ],
  };
  if (i % 10 === 0) spec['matchingHeaders'] = { 'x-bench-tenant': `tenant-${i}-[a-z]+` };
  return {
    key: `ServiceDescriptor/${BENCH_NS}/svc-${i}`,
    object: {
      apiVersion: 'proxy.otoroshi.io/v1alpha1',
      kind: 'ServiceDescriptor',
      metadata: { name: `svc-${i}`, namespace: BENCH_NS, uid: `uid-${i}`, creationTimestamp: '2024-01-01T00:00:00Z' },
      spec,
    },
    origin: { seq: i },
  };
}

export function benchView(n: number, changed?: BenchChange | BenchChange[]): ConfigView {
  const objects: StoredObject[] = [];
  const list = changed === undefined ? [] : Array.isArray(changed) ? changed : [changed];
  for (let i = 0; i < n; i++) {
    const c = list.find((x) => x.index === i);
    objects.push(benchDescriptor(i, c ? c.gen : 0, c?.what ?? 'route'));
  }
  return { objects, loadErrors: [] };
}

export function envInt(name: string, dflt: number): number {
  const v = process.env[name];
  if (v === undefined || v.trim() === '') return dflt;
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`${name} must be a positive number, got ${JSON.stringify(v)}`);
  return Math.floor(n);
}

export function envList(name: string, dflt: number[]): number[] {
  const v = process.env[name];
  if (v === undefined || v.trim() === '') return dflt;
  return v.split(',').map((s) => {
    const n = Number(s.trim());
    if (!Number.isFinite(n) || n <= 0) throw new Error(`${name}: bad size ${JSON.stringify(s)}`);
    return Math.floor(n);
  });
}

/** Wall clock shared by processes on this machine (ms, sub-ms resolution). */
export function sharedNow(): number {
  return performance.timeOrigin + performance.now();
}

export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const idx = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[idx] as number;
}

export function stats(values: readonly number[]): {
  n: number;
  p50: number;
  p99: number;
  max: number;
  min: number;
  mean: number;
} {
  const s = [...values].sort((a, b) => a - b);
  const mean = s.reduce((x, y) => x + y, 0) / Math.max(1, s.length);
  return {
    n: s.length,
    p50: percentile(s, 50),
    p99: percentile(s, 99),
    max: s[s.length - 1] ?? NaN,
    min: s[0] ?? NaN,
    mean,
  };
}

/** YAML of scale descriptor `i` (`svc-i.scale.local`, one static target; `ipGen` moves the target IP). */
export function descriptorDoc(i: number, ipGen = 0): string {
  const a = (i % 250) + 1;
  return `apiVersion: proxy.otoroshi.io/v1alpha1
kind: ServiceDescriptor
metadata: {name: svc-${i}, namespace: scale, annotations: {otoroshi.io/id: svc-${i}}}
spec:
  hosts: [svc-${i}.scale.local]
  forceHttps: false
  enforceSecureCommunication: false
  targets: [{url: "http://127.${ipGen % 250}.${Math.floor(i / 250) % 250}.${a}:${10000 + (i % 50000)}"}]
`;
}
/** YAML of scale apikey `i` (authorized on `svc-(i % 1000)`, daily quota 100,000). */
export function apikeyDoc(i: number): string {
  return `apiVersion: proxy.otoroshi.io/v1alpha1
kind: ApiKey
metadata: {name: key-${i}, namespace: scale}
spec: {clientId: key-${i}, clientSecret: secret-${i}, authorizedEntities: [service_svc-${i % 1000}], dailyQuota: 100000}
`;
}
/** Limits of one generated config file: well under the server's 2 MiB `--max-config-file-bytes` default. */
export const DOCS_PER_FILE = 1000;
export const BYTES_PER_FILE = 1 << 20;

/**
 * Writes `docs` (YAML documents) as `prefix-0.yaml`, `prefix-1.yaml`... of at most `DOCS_PER_FILE` documents and
 * `BYTES_PER_FILE` bytes each (a larger file is refused by the server, and a bench would silently measure an
 * empty server). Returns the file names.
 */
export function writeDocFiles(dir: string, prefix: string, docs: readonly string[]): string[] {
  const names: string[] = [];
  let chunk: string[] = [];
  let bytes = 0;
  const flush = (): void => {
    if (chunk.length === 0) return;
    const name = `${prefix}-${names.length}.yaml`;
    fs.writeFileSync(path.join(dir, name), chunk.join('\n---\n'));
    names.push(name);
    chunk = [];
    bytes = 0;
  };
  for (const d of docs) {
    const n = Buffer.byteLength(d) + 5;
    if (chunk.length >= DOCS_PER_FILE || bytes + n > BYTES_PER_FILE) flush();
    chunk.push(d);
    bytes += n;
  }
  flush();
  return names;
}
