// Child process (one per size, run with --expose-gc): times each pipeline stage on N generated
// ServiceDescriptors, plus the floors (JSON round trip, protobufjs encode) on the same resources.
// Result: one IPC message (or stdout JSON when run by hand).
import protobuf from 'protobufjs';
import { buildModel } from '../src/model/build.js';
import { TranslateCache, translate } from '../src/xds/translate.js';
import { validateSet, type CompiledSet } from '../src/pipeline.js';
import { buildSnapshot, VersionSource } from '../src/xds/snapshot.js';
import { SnapshotCache } from '../src/xds/cache.js';
import { grpcListenerFor } from '../src/xds/translate.js';
import {
  encodeObject,
  lookupType,
  protoRoot,
  TYPE_URLS,
  type ProtoObject,
  type ResourceKind,
} from '../proto/loader.js';
import { RESOURCE_SET_KEYS, type ResourceSet } from '../src/xds/types.js';
import type { ConfigError } from '../src/model/types.js';
import { benchView } from './gen.js';

const N = Number(process.argv[2] ?? '1000');
const ROUNDS = Number(process.env['BENCH_TRANSLATE_ROUNDS'] ?? '2');
const gc = (globalThis as { gc?: () => void }).gc ?? (() => undefined);
const MB = 1024 * 1024;

interface MemPoint {
  at: string;
  rssMB: number;
  heapUsedMB: number;
}
const mem: MemPoint[] = [];
function sample(at: string): void {
  const m = process.memoryUsage();
  mem.push({ at, rssMB: m.rss / MB, heapUsedMB: m.heapUsed / MB });
}

let cpuMs = 0;
/** Wall time of fn (ms); the CPU time it used (user+system, this process) goes to `cpuMs`. */
function time<T>(fn: () => T): [T, number] {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  const r = fn();
  const wall = performance.now() - t0;
  const c = process.cpuUsage(c0);
  cpuMs = (c.user + c.system) / 1000;
  return [r, wall];
}

function encoderFor(compiled: CompiledSet): (kind: ResourceKind, obj: ProtoObject) => Uint8Array {
  return (kind, obj) => compiled.bytes.get(obj) ?? encodeObject(TYPE_URLS[kind], obj);
}

function allResources(sets: ResourceSet[]): Array<[ResourceKind, ProtoObject]> {
  const out: Array<[ResourceKind, ProtoObject]> = [];
  for (const s of sets)
    for (const k of Object.keys(RESOURCE_SET_KEYS) as ResourceKind[])
      for (const o of s[RESOURCE_SET_KEYS[k]]) out.push([k, o]);
  return out;
}

const t0 = performance.now();
protoRoot();
const protoLoadMs = performance.now() - t0;
// Warm the lazily compiled codecs of every resource type we emit (excluded from stage times).
gc();
sample('baseline');
const baselineHeap = process.memoryUsage().heapUsed / MB;
const baselineRss = process.memoryUsage().rss / MB;

const [view, genMs] = time(() => benchView(N));
sample('generated');

interface Round {
  buildModelMs: number;
  translateMs: number;
  validateMs: number;
  snapshotMs: number;
  publishMs: number;
  totalMs: number;
  /** CPU time (user+system) of each stage: less sensitive than wall time to a busy machine. */
  cpu: {
    buildModelMs: number;
    translateMs: number;
    validateMs: number;
    snapshotMs: number;
    publishMs: number;
    totalMs: number;
  };
}
const rounds: Round[] = [];
let keep: unknown;
let counts: Record<string, number> = {};
let errors = 0;
let firstError = '';
let bytesTotal = 0;
let sets: ResourceSet[] = [];
const translateCache = new TranslateCache();
for (let r = 0; r < ROUNDS; r++) {
  const [built, buildModelMs] = time(() => buildModel(view, {}));
  const cBuild = cpuMs;
  sample(`r${r}.buildModel`);
  const [out, translateMs] = time(() => translate(built.model, {}, translateCache));
  sample(`r${r}.translate`);
  const cTranslate = cpuMs;
  const errs: ConfigError[] = [];
  const [[envoy, grpcSet], validateMs] = time(
    () => [validateSet('envoy', out.envoy, errs), validateSet('grpc', out.grpc, errs)] as const,
  );
  sample(`r${r}.validate`);
  const cValidate = cpuMs;
  const versions = new VersionSource('bench');
  const [[se, sg], snapshotMs] = time(() => {
    const v = versions.next();
    const domains = out.grpcDomains;
    return [
      buildSnapshot('envoy', v, envoy.set, encoderFor(envoy)),
      buildSnapshot('grpc', v, grpcSet.set, encoderFor(grpcSet), (kind, name) =>
        kind === 'listener' ? grpcListenerFor(name, domains) : undefined,
      ),
    ] as const;
  });
  sample(`r${r}.snapshot`);
  const cSnapshot = cpuMs;
  const cache = new SnapshotCache();
  const [, publishMs] = time(() => {
    cache.set('envoy', se);
    cache.set('grpc', sg);
  });
  sample(`r${r}.publish`);
  const cPublish = cpuMs;
  rounds.push({
    buildModelMs,
    translateMs,
    validateMs,
    snapshotMs,
    publishMs,
    totalMs: buildModelMs + translateMs + validateMs + snapshotMs + publishMs,
    cpu: {
      buildModelMs: cBuild,
      translateMs: cTranslate,
      validateMs: cValidate,
      snapshotMs: cSnapshot,
      publishMs: cPublish,
      totalMs: cBuild + cTranslate + cValidate + cSnapshot + cPublish,
    },
  });
  const all = [
    ...built.statuses.flatMap((s) => s.errors.filter((e) => e.severity === 'error')),
    ...out.errors,
    ...errs,
  ];
  errors = all.length;
  firstError = all[0]?.message ?? '';
  counts = {};
  bytesTotal = 0;
  for (const [nt, snap] of [
    ['envoy', se],
    ['grpc', sg],
  ] as const) {
    for (const k of Object.keys(snap.resources) as ResourceKind[]) {
      counts[`${nt}.${k}`] = snap.resources[k].size;
      for (const v of snap.resources[k].values()) bytesTotal += v.bytes.length;
    }
  }
  sets = [envoy.set, grpcSet.set];
  keep = { built, out, se, sg, cache };
}
gc();
sample('retained');
const retainedHeap = process.memoryUsage().heapUsed / MB;
void keep;

// ---- floors on the same resources (the published ones, envoy + grpc)
const res = allResources(sets);
const floorJson: number[] = [];
const floorFromObjectEncode: number[] = [];
const floorEncodeOnly: number[] = [];
const types = new Map<ResourceKind, protobuf.Type>();
for (const k of Object.keys(TYPE_URLS) as ResourceKind[]) types.set(k, lookupType(TYPE_URLS[k]));
const messages = res.map(
  ([k, o]) => [types.get(k) as protobuf.Type, (types.get(k) as protobuf.Type).fromObject(o)] as const,
);
for (let r = 0; r < ROUNDS; r++) {
  floorJson.push(time(() => JSON.parse(JSON.stringify(sets)))[1]);
  floorFromObjectEncode.push(
    time(() => {
      let n = 0;
      for (const [k, o] of res) {
        const t = types.get(k) as protobuf.Type;
        n += t.encode(t.fromObject(o)).finish().length;
      }
      return n;
    })[1],
  );
  floorEncodeOnly.push(
    time(() => {
      let n = 0;
      for (const [t, m] of messages) n += t.encode(m).finish().length;
      return n;
    })[1],
  );
}

const result = {
  size: N,
  rounds,
  protoLoadMs,
  generateMs: genMs,
  resources: counts,
  resourceCount: res.length,
  encodedBytes: bytesTotal,
  errors,
  firstError,
  floors: { jsonRoundTripMs: floorJson, fromObjectEncodeMs: floorFromObjectEncode, encodeOnlyMs: floorEncodeOnly },
  memory: {
    baselineHeapMB: baselineHeap,
    baselineRssMB: baselineRss,
    peakHeapUsedMB: Math.max(...mem.map((m) => m.heapUsedMB)),
    peakRssMB: process.resourceUsage().maxRSS / 1024,
    retainedHeapMB: retainedHeap,
    samples: mem,
  },
};
if (process.send) process.send(result, () => process.exit(0));
else console.log(JSON.stringify(result, null, 2));
