// Snapshots: every resource encoded once, content-hashed once; plus the consistency check that
// guards publication and the boot-scoped version generator.
import { hash, randomInt } from 'node:crypto';
import { encodeObject, TYPE_URLS, type ProtoObject, type ResourceKind } from '../../proto/loader.js';
import { TYPE_URL } from '../../proto/type-urls.js';
import { eachBatched, runSteps, type Steps } from '../model/steps.js';
import {
  RESOURCE_SET_KEYS,
  type NodeType,
  type ResourceMaps,
  type ResourceSet,
  type Snapshot,
  type VersionedResource,
} from './types.js';

export type Encoder = (kind: ResourceKind, obj: ProtoObject) => Uint8Array;
export type Resolver = (kind: ResourceKind, name: string) => ProtoObject | undefined;

const KINDS: readonly ResourceKind[] = ['listener', 'route', 'cluster', 'endpoint', 'secret'];

/** Default encoder: the protobufjs type named by the kind's type URL. */
export const defaultEncoder: Encoder = (kind, obj) => encodeObject(TYPE_URLS[kind], obj);

/** Content hash of encoded bytes: sha1, first 16 hex characters (one-shot: no Hash object per resource). */
export function contentHash(bytes: Uint8Array): string {
  return hash('sha1', bytes, 'hex').slice(0, 16);
}

/** The xDS resource name of an object (ClusterLoadAssignment: `clusterName`, others: `name`). */
export function resourceName(kind: ResourceKind, obj: ProtoObject): string {
  const v = kind === 'endpoint' ? obj['clusterName'] : obj['name'];
  return typeof v === 'string' ? v : '';
}

export function versionedResource(
  kind: ResourceKind,
  obj: ProtoObject,
  encode: Encoder = defaultEncoder,
): VersionedResource {
  return reused(kind, obj, encode, undefined);
}

/** Problems found while building (duplicate/empty names), reported by checkConsistency(). */
const BUILD_PROBLEMS = new WeakMap<Snapshot, string[]>();

/** Bound on memoized on-demand resolutions per kind (names come from clients). */
const MAX_RESOLVED = 10_000;

/**
 * The versioned resource of `obj`: `prev`'s when it was made from the same object and bytes (an
 * unchanged resource of the previous snapshot is neither hashed nor copied again).
 */
function reused(
  kind: ResourceKind,
  obj: ProtoObject,
  encode: Encoder,
  prev: ReadonlyMap<string, VersionedResource> | undefined,
): VersionedResource {
  const bytes = encode(kind, obj);
  const name = resourceName(kind, obj);
  const old = prev?.get(name);
  if (old !== undefined && old.object === obj && old.bytes === bytes) return old;
  return { name, kind, version: contentHash(bytes), bytes, object: obj };
}

/**
 * The snapshot of `set`. `prev`, the snapshot it replaces, lends its versioned resources to the
 * objects that did not change (same object, same bytes): their version is the same by construction.
 */
export function buildSnapshot(
  nodeType: NodeType,
  version: string,
  set: ResourceSet,
  encode: Encoder = defaultEncoder,
  resolver?: Resolver,
  prev?: Snapshot,
): Snapshot {
  return runSteps(buildSnapshotSteps(nodeType, version, set, encode, resolver, prev));
}

/** buildSnapshot, pausing between batches of resources (the server's rebuilds). */
export function* buildSnapshotSteps(
  nodeType: NodeType,
  version: string,
  set: ResourceSet,
  encode: Encoder = defaultEncoder,
  resolver?: Resolver,
  prev?: Snapshot,
): Steps<Snapshot> {
  const problems: string[] = [];
  const maps = {} as { [K in ResourceKind]: Map<string, VersionedResource> };
  for (const kind of KINDS) {
    const m = new Map<string, VersionedResource>();
    const old = prev?.resources[kind];
    yield* eachBatched(set[RESOURCE_SET_KEYS[kind]], (obj) => {
      const r = reused(kind, obj, encode, old);
      if (r.name === '') problems.push(`${kind} without a name`);
      else if (m.has(r.name)) problems.push(`duplicate ${kind} name "${r.name}"`);
      m.set(r.name, r);
    });
    maps[kind] = m;
  }
  const resolved = new Map<string, VersionedResource | null>();
  const resolve = (kind: ResourceKind, name: string): VersionedResource | undefined => {
    const direct = maps[kind].get(name);
    if (direct || !resolver) return direct;
    const key = `${kind}\u0000${name}`;
    const hit = resolved.get(key);
    if (hit !== undefined) return hit ?? undefined;
    const obj = resolver(kind, name);
    const r = obj ? versionedResource(kind, obj, encode) : undefined;
    if (r && r.name !== name) r.name = name; // answer under the requested name
    if (resolved.size >= MAX_RESOLVED) resolved.clear();
    resolved.set(key, r ?? null);
    return r;
  };
  const snapshot: Snapshot = { version, nodeType, resources: maps as ResourceMaps, resolve };
  if (problems.length > 0) BUILD_PROBLEMS.set(snapshot, problems);
  if (!resolver) markNoResolver(snapshot);
  return snapshot;
}

/**
 * A snapshot of resources already versioned elsewhere (maps may be shared by several snapshots:
 * sidecars of one egress scope), without an on-demand resolver. `problems` as checkConsistency reports them.
 */
export function snapshotFromMaps(
  nodeType: NodeType,
  version: string,
  maps: ResourceMaps,
  problems: readonly string[] = [],
): Snapshot {
  const snapshot: Snapshot = { version, nodeType, resources: maps, resolve: (kind, name) => maps[kind].get(name) };
  if (problems.length > 0) BUILD_PROBLEMS.set(snapshot, [...problems]);
  markNoResolver(snapshot);
  return snapshot;
}

function isObj(v: unknown): v is ProtoObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array);
}

/** Visits every object nested in `v` (arrays and Any-expanded objects included). */
function walk(v: unknown, visit: (o: ProtoObject) => void, depth = 0): void {
  if (depth > 64 || typeof v !== 'object' || v === null) return;
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) walk(v[i], visit, depth + 1);
  } else if (!(v instanceof Uint8Array)) {
    const o = v as ProtoObject;
    visit(o);
    // Resource objects are plain (own enumerable properties only): for-in allocates no array.
    for (const k in o) walk(o[k], visit, depth + 1);
  }
}

/** RDS names referenced by the HCMs of a listener (filter chains, default chain, api_listener). */
export function referencedRouteNames(listener: ProtoObject): string[] {
  const out: string[] = [];
  walk(listener, (o) => {
    if (o['@type'] !== TYPE_URL.HttpConnectionManager) return;
    const rds = o['rds'];
    if (isObj(rds) && typeof rds['routeConfigName'] === 'string') out.push(rds['routeConfigName']);
  });
  return out;
}

/** The ClusterLoadAssignment name an EDS cluster needs, or undefined for non-EDS clusters. */
export function edsServiceName(cluster: ProtoObject): string | undefined {
  const eds = cluster['edsClusterConfig'];
  if (cluster['type'] !== 'EDS' && !isObj(eds)) return undefined;
  const sn = isObj(eds) ? eds['serviceName'] : undefined;
  if (typeof sn === 'string' && sn !== '') return sn;
  return typeof cluster['name'] === 'string' ? cluster['name'] : undefined;
}

/** referencedSecretNames per resource object (objects are not changed once built; shared ones are checked once). */
const SECRET_REFS = new WeakMap<ProtoObject, string[]>();

/** SDS secret names referenced anywhere in an object (SdsSecretConfig = {name, sdsConfig}). */
export function referencedSecretNames(obj: ProtoObject): string[] {
  const hit = SECRET_REFS.get(obj);
  if (hit !== undefined) return hit;
  const out: string[] = [];
  SECRET_REFS.set(obj, out);
  walk(obj, (o) => {
    const sds = o['sdsConfig'];
    if (!isObj(sds) || typeof o['name'] !== 'string') return;
    // A file-based config source is not served by us.
    if ('path' in sds || 'pathConfigSource' in sds) return;
    out.push(o['name']);
  });
  return out;
}

type Refs = { routes: ReadonlySet<string>; eds: ReadonlySet<string>; secrets: ReadonlySet<string> };
/** The distinct names the resources of one map reference (maps are shared by many sidecar snapshots). */
const MAP_REFS = new WeakMap<ReadonlyMap<string, VersionedResource>, Refs>();
function refsOf(m: ReadonlyMap<string, VersionedResource>, kind: 'listener' | 'cluster'): Refs {
  return MAP_REFS.get(m) ?? runSteps(refsSteps(m, kind));
}

/** refsOf computed in batches of resources (and memoized for the map). */
function* refsSteps(m: ReadonlyMap<string, VersionedResource>, kind: 'listener' | 'cluster'): Steps<Refs> {
  const hit = MAP_REFS.get(m);
  if (hit !== undefined) return hit;
  const routes = new Set<string>();
  const eds = new Set<string>();
  const secrets = new Set<string>();
  yield* eachBatched(m.values(), (res) => {
    if (kind === 'listener') for (const rn of referencedRouteNames(res.object)) routes.add(rn);
    const sn = kind === 'cluster' ? edsServiceName(res.object) : undefined;
    if (sn !== undefined) eds.add(sn);
    for (const x of referencedSecretNames(res.object)) secrets.add(x);
  });
  const refs = { routes, eds, secrets };
  MAP_REFS.set(m, refs);
  return refs;
}

/**
 * Computes, in batches, what checkConsistency of `snapshot` walks (the names its listeners and
 * clusters reference), so that the check made at publication is a lookup.
 */
export function* consistencyPrepSteps(snapshot: Snapshot): Steps {
  yield* refsSteps(snapshot.resources.listener, 'listener');
  yield* refsSteps(snapshot.resources.cluster, 'cluster');
}

/** Whether every name the listeners and clusters reference exists (by distinct name, memoized per map). */
function referencesResolve(r: ResourceMaps): boolean {
  const has = (names: ReadonlySet<string>, m: ReadonlyMap<string, VersionedResource>): boolean => {
    for (const n of names) if (!m.has(n)) return false;
    return true;
  };
  const l = refsOf(r.listener, 'listener');
  const c = refsOf(r.cluster, 'cluster');
  return has(l.routes, r.route) && has(c.eds, r.endpoint) && has(l.secrets, r.secret) && has(c.secrets, r.secret);
}

/** Every problem that forbids publishing this snapshot; empty when consistent. */
export function checkConsistency(snapshot: Snapshot): string[] {
  const problems = [...(BUILD_PROBLEMS.get(snapshot) ?? [])];
  const r = snapshot.resources;
  if (referencesResolve(r)) return problems;
  for (const l of r.listener.values()) {
    for (const rn of referencedRouteNames(l.object)) {
      if (!r.route.has(rn)) problems.push(`listener "${l.name}" references missing route configuration "${rn}"`);
    }
  }
  for (const c of r.cluster.values()) {
    const sn = edsServiceName(c.object);
    if (sn !== undefined && !r.endpoint.has(sn))
      problems.push(`EDS cluster "${c.name}" has no ClusterLoadAssignment "${sn}"`);
  }
  for (const kind of ['listener', 'cluster'] as const) {
    for (const res of r[kind].values()) {
      for (const sn of referencedSecretNames(res.object)) {
        if (!r.secret.has(sn)) problems.push(`${kind} "${res.name}" references missing secret "${sn}"`);
      }
    }
  }
  return problems;
}

/** `${bootId}-${seq}` versions: a restart never reuses a version an Envoy already holds. */
export class VersionSource {
  readonly bootId: string;
  private seq = 0;
  constructor(bootId?: string) {
    this.bootId =
      bootId ??
      `${Date.now().toString(36)}${randomInt(36 ** 4)
        .toString(36)
        .padStart(4, '0')}`;
  }
  next(): string {
    this.seq += 1;
    return `${this.bootId}-${this.seq}`;
  }
}

// ---------------------------------------------------------------------------------------------
// Per-snapshot derived data for the ADS server (computed lazily, once per snapshot).

/** Snapshots known to have no on-demand resolver (built by buildSnapshot without one). */
const NO_RESOLVER = new WeakSet<Snapshot>();

/**
 * Whether `snapshot.resolve` may answer names absent from its maps. Conservative: true for
 * snapshots not built by buildSnapshot.
 */
export function mayResolve(snapshot: Snapshot): boolean {
  return !NO_RESOLVER.has(snapshot);
}

/** Records that buildSnapshot made `s` without a resolver (called from buildSnapshot). */
function markNoResolver(s: Snapshot): void {
  NO_RESOLVER.add(s);
}

const SORTED = new WeakMap<ReadonlyMap<string, VersionedResource>, readonly VersionedResource[]>();

/**
 * Every resource of `kind` in `snapshot`, sorted by name; one shared (frozen) array per resource map
 * (sidecars of one egress scope share their cluster map, so they share its sorted list too).
 */
export function sortedResources(snapshot: Snapshot, kind: ResourceKind): readonly VersionedResource[] {
  const m = snapshot.resources[kind];
  let list = SORTED.get(m);
  if (!list) {
    list = Object.freeze([...m.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)));
    SORTED.set(m, list);
  }
  return list;
}

/** Names of one kind whose resource appeared or changed version (`changed`) or disappeared (`removed`). */
export interface KindDiff {
  changed: ReadonlySet<string>;
  removed: ReadonlySet<string>;
  /** changed.size + removed.size */
  size: number;
}

/** What changed from one snapshot of a node type to the next, per kind (computed once per publication). */
export type SnapshotDiff = Record<ResourceKind, KindDiff>;

const EMPTY_KIND_DIFF: KindDiff = Object.freeze({ changed: new Set<string>(), removed: new Set<string>(), size: 0 });

/** The last diff computed into each snapshot, with the snapshot it starts from (weakly: no chain is kept). */
const DIFF_INTO = new WeakMap<Snapshot, { prev: WeakRef<Snapshot>; diff: SnapshotDiff }>();

/** Per-kind diff of the published maps (resources answered on demand by `resolve` are not covered). */
export function diffSnapshots(prev: Snapshot, next: Snapshot): SnapshotDiff {
  const hit = DIFF_INTO.get(next);
  return hit?.prev.deref() === prev ? hit.diff : runSteps(diffSnapshotsSteps(prev, next));
}

/** diffSnapshots in batches of resources; the result is kept for diffSnapshots(prev, next). */
export function* diffSnapshotsSteps(prev: Snapshot, next: Snapshot): Steps<SnapshotDiff> {
  const out = {} as Record<ResourceKind, KindDiff>;
  for (const kind of KINDS) {
    const a = prev.resources[kind];
    const b = next.resources[kind];
    if (a === b) {
      out[kind] = EMPTY_KIND_DIFF;
      continue;
    }
    const changed = new Set<string>();
    const removed = new Set<string>();
    yield* eachBatched(b, ([n, r]) => {
      if (a.get(n)?.version !== r.version) changed.add(n);
    });
    yield* eachBatched(a.keys(), (n) => {
      if (!b.has(n)) removed.add(n);
    });
    out[kind] =
      changed.size + removed.size === 0 ? EMPTY_KIND_DIFF : { changed, removed, size: changed.size + removed.size };
  }
  DIFF_INTO.set(next, { prev: new WeakRef(prev), diff: out });
  return out;
}
