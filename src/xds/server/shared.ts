// What streams share: encoded response runs and resource lists per subscription on the current
// snapshot (gateway node types) or on one resource map (sidecars), and interned subscription keys.
import { SEND_ORDER, type ResourceKind } from '../../../proto/loader.js';
import { mayResolve } from '../snapshot.js';
import type { NodeType, Snapshot, VersionedResource } from '../types.js';

interface SharedEntry {
  list?: readonly VersionedResource[];
  run?: Buffer;
}

/** Entries kept per shared sidecar resource map (subscription keys seen on it). */
const MAX_MAP_ENTRIES = 64;

/**
 * What sidecar streams share on one resource map. A sidecar snapshot holds one workload's maps,
 * but sidecars of one egress scope hold the very same cluster map (src/xds/sidecar/snapshots.ts):
 * once a second snapshot reads a map, its lists and runs are kept for every later reader.
 */
interface MapStore {
  first: Snapshot;
  shared: boolean;
  entries: Map<string, SharedEntry>;
  bytes: number;
}

/**
 * What streams with the same subscription share on the current snapshot of a node type: the
 * resolved resource list (SotW) and the encoded `resources` run, keyed by kind + subscription key
 * (SotW: the interned subscription key; Delta: the names sent). Only the current snapshot per
 * node type is kept (builds always use it); bounded in entries and bytes (beyond: computed, not kept).
 */
export class SharedResponses {
  private readonly perType = new Map<
    NodeType,
    { snap: Snapshot; kinds: Map<string, Map<string, SharedEntry>>; bytes: number; entries: number }
  >();
  hits = 0;
  misses = 0;
  listHits = 0;

  constructor(
    private readonly maxBytes: number,
    private readonly maxEntries: number,
  ) {}

  private readonly maps = new WeakMap<ReadonlyMap<string, VersionedResource>, MapStore>();

  /**
   * Sidecar snapshots share by resource map: with no on-demand resolver, a subscription's list
   * and run depend only on the map of its kind. Maps read by one snapshot only keep nothing.
   */
  private mapStore(snap: Snapshot, ns: string): MapStore | undefined {
    const kind = NS_KIND.get(ns);
    if (kind === undefined || mayResolve(snap)) return undefined;
    const m = snap.resources[kind];
    const st = this.maps.get(m);
    if (st === undefined) {
      this.maps.set(m, { first: snap, shared: false, entries: new Map(), bytes: 0 });
      return undefined;
    }
    if (!st.shared && st.first === snap) return undefined;
    st.shared = true;
    return st;
  }

  private mapEntry(snap: Snapshot, ns: string, key: string): SharedEntry | undefined {
    const st = this.mapStore(snap, ns);
    if (st === undefined) return undefined;
    const k = `${ns}\u0000${key}`;
    let e = st.entries.get(k);
    if (!e && st.entries.size < MAX_MAP_ENTRIES) {
      e = {};
      st.entries.set(k, e);
    }
    return e;
  }

  private entry(snap: Snapshot, ns: string, key: string): SharedEntry | undefined {
    if (snap.cacheKey !== undefined) return this.mapEntry(snap, ns, key);
    let t = this.perType.get(snap.nodeType);
    if (!t || t.snap !== snap) {
      t = { snap, kinds: new Map(), bytes: 0, entries: 0 };
      this.perType.set(snap.nodeType, t);
    }
    let m = t.kinds.get(ns);
    if (!m) {
      m = new Map();
      t.kinds.set(ns, m);
    }
    let e = m.get(key);
    if (!e && t.entries < this.maxEntries) {
      e = {};
      m.set(key, e);
      t.entries++;
    }
    return e;
  }

  /** The resource list of a subscription (computed once per snapshot and key). */
  list(
    snap: Snapshot,
    ns: string,
    key: string,
    make: () => readonly VersionedResource[],
  ): readonly VersionedResource[] {
    const e = this.entry(snap, ns, key);
    if (e?.list) {
      this.listHits++;
      return e.list;
    }
    const list = make();
    if (e) e.list = list;
    return list;
  }

  /** The encoded `resources` run of a response (encoded once per snapshot and key). */
  run(snap: Snapshot, ns: string, key: string, make: () => Buffer): Buffer {
    const e = this.entry(snap, ns, key);
    if (e?.run) {
      this.hits++;
      return e.run;
    }
    this.misses++;
    const buf = make();
    const t = snap.cacheKey === undefined ? this.perType.get(snap.nodeType) : this.mapStore(snap, ns);
    if (e && t && t.bytes + buf.length <= this.maxBytes) {
      e.run = buf;
      t.bytes += buf.length;
    }
    return buf;
  }

  stats(): { hits: number; misses: number; listHits: number; entries: number; bytes: number } {
    let entries = 0;
    let bytes = 0;
    for (const t of this.perType.values()) {
      entries += t.entries;
      bytes += t.bytes;
    }
    return { hits: this.hits, misses: this.misses, listHits: this.listHits, entries, bytes };
  }
}

/** Interned subscription keys: identical subscriptions share one string (map lookups compare pointers). */
const SUB_KEYS = new Map<string, string>();
function intern(k: string): string {
  const hit = SUB_KEYS.get(k);
  if (hit !== undefined) return hit;
  if (SUB_KEYS.size >= 10_000) SUB_KEYS.clear();
  SUB_KEYS.set(k, k);
  return k;
}

export function subscriptionKey(wildcard: boolean, names: ReadonlySet<string>): string {
  return intern(JSON.stringify([wildcard, [...names].sort()]));
}

export const SOTW_NS = Object.fromEntries(SEND_ORDER.map((k) => [k, `s:${k}`])) as Record<ResourceKind, string>;
export const DELTA_NS = Object.fromEntries(SEND_ORDER.map((k) => [k, `d:${k}`])) as Record<ResourceKind, string>;
/** The resource kind of a namespace above (others, e.g. Delta's VHDS view, are not shared by map). */
const NS_KIND = new Map<string, ResourceKind>(
  SEND_ORDER.flatMap((k) => [[SOTW_NS[k], k] as const, [DELTA_NS[k], k] as const]),
);
