// Delta (incremental) streams: responses carry only what changed against what the client holds.
import { TYPE_URLS, type ResourceKind } from '../../../proto/loader.js';
import type { KindDiff } from '../snapshot.js';
import type { Snapshot, VersionedResource } from '../types.js';
import { concatEntries, deltaEntry, deltaMessage } from './encode.js';
import type { DeltaDiscoveryRequest } from './messages.js';
import { DELTA_NS } from './shared.js';
import { StreamBase, type BuiltResponse, type PumpKind } from './stream.js';
import { VHOST_TYPE_URL, VhdsSubscription } from './vhds.js';
import { byName, desiredResources, unresolvedNames, WILDCARD_KINDS } from './subscription.js';

interface DeltaState {
  kind: ResourceKind;
  typeUrl: string;
  wildcard: boolean;
  names: Set<string>;
  /** What the client holds: name → version. */
  known: Map<string, string>;
  /** Answer the next pump even when empty (first wildcard request). */
  mustRespond: boolean;
  /** Recent nonces → system version they carried (to attribute ACK/NACKs). */
  nonces: Map<string, string>;
  /** Re-evaluate every resource at the next build (new subscription, or a large change). */
  full: boolean;
  /** Otherwise: the names a published change touched, to re-check at the next build. */
  pending: Set<string>;
}

const MAX_TRACKED_NONCES = 32;
const DELTA_VHOST_NS = 'd:vhost';

/** A snapshot as a Delta Envoy sees it: with VHDS, its route configurations are the shells. */
const ROUTE_VIEWS = new WeakMap<Snapshot, Snapshot>();
function deltaView(snap: Snapshot, kind: ResourceKind): Snapshot {
  const v = snap.vhds;
  if (kind !== 'route' || !v || v.routes.size === 0) return snap;
  let out = ROUTE_VIEWS.get(snap);
  if (!out) {
    const route = new Map(snap.resources.route);
    for (const [n, r] of v.routes) route.set(n, r);
    out = { ...snap, resources: { ...snap.resources, route } };
    ROUTE_VIEWS.set(snap, out);
  }
  return out;
}

function rememberNonce(nonces: Map<string, string>, nonce: string, version: string): void {
  nonces.set(nonce, version);
  if (nonces.size > MAX_TRACKED_NONCES) {
    const oldest = nonces.keys().next().value;
    if (oldest !== undefined) nonces.delete(oldest);
  }
}

/** A Delta stream re-checks only the changed names, unless a change touches more than this many. */
const DELTA_MAX_PENDING = 256;

/** A new subscription of `kind`: wildcard when its first request names nothing (LDS/CDS). */
function newDeltaState(kind: ResourceKind, wildcard: boolean, initial: Record<string, unknown>): DeltaState {
  const known = new Map<string, string>();
  for (const [n, v] of Object.entries(initial)) if (typeof v === 'string') known.set(n, v);
  return {
    kind,
    typeUrl: TYPE_URLS[kind],
    wildcard,
    names: new Set(),
    known,
    mustRespond: wildcard,
    nonces: new Map(),
    full: true,
    pending: new Set(),
  };
}

/** What to send and what to tell removed, from a resource list and what the client holds. */
interface DeltaChanges {
  toSend: VersionedResource[];
  removed: string[];
}

/** Every resource of interest against what the client holds. */
function fullChanges(st: DeltaState, snap: Snapshot): DeltaChanges {
  const res = desiredResources(snap, st.kind, st.wildcard, st.names);
  const wanted = new Set(res.map((r) => r.name));
  const toSend = res.filter((r) => st.known.get(r.name) !== r.version);
  const removed: string[] = [];
  for (const n of [...st.known.keys()]) {
    if (wanted.has(n)) continue;
    st.known.delete(n);
    // Gone while still of interest → tell the client; merely unsubscribed → forget silently.
    if (st.wildcard || st.names.has(n)) removed.push(n);
  }
  return { toSend, removed };
}

/** Only the names the published changes touched (the rest is unchanged by construction). */
function pendingChanges(st: DeltaState, snap: Snapshot): DeltaChanges {
  const toSend: VersionedResource[] = [];
  const removed: string[] = [];
  const map = snap.resources[st.kind];
  for (const n of st.pending) {
    const named = st.names.has(n);
    const r = st.wildcard || named ? (map.get(n) ?? (named ? snap.resolve(st.kind, n) : undefined)) : undefined;
    if (r) {
      if (st.known.get(n) !== r.version) toSend.push(r);
    } else if (st.known.delete(n) && (st.wildcard || named)) {
      removed.push(n);
    }
  }
  toSend.sort(byName);
  return { toSend, removed };
}

/** Applies a request's subscribe / unsubscribe lists; returns whether the subscription changed. */
function applySubscription(
  st: DeltaState,
  sub: readonly string[],
  unsub: readonly string[],
  allowed: (name: string) => boolean,
): boolean {
  let changed = false;
  for (const n of sub) {
    if (n === '*') {
      if (WILDCARD_KINDS.has(st.kind) && !st.wildcard) {
        st.wildcard = true;
        changed = true;
      }
    } else if (!st.names.has(n) && allowed(n)) {
      st.names.add(n);
      changed = true;
    }
  }
  for (const n of unsub) {
    if (n === '*') {
      if (st.wildcard) {
        st.wildcard = false;
        changed = true;
      }
    } else if (st.names.delete(n)) {
      changed = true;
    }
  }
  return changed;
}

export class DeltaStream extends StreamBase {
  private readonly types = new Map<ResourceKind, DeltaState>();
  private vh: VhdsSubscription | undefined;

  protected subscribedKinds(): Iterable<PumpKind> {
    const kinds: PumpKind[] = [...this.types.keys()];
    if (this.vh) kinds.push('vhost');
    return kinds;
  }

  protected affectedBy(kind: PumpKind, snap: Snapshot, d: KindDiff | undefined): boolean {
    if (kind === 'vhost') return this.vh !== undefined && this.vh.lastView !== snap.vhds;
    const st = this.types.get(kind);
    if (!st || !d) return false;
    if (st.full) return true;
    let hit = false;
    const add = (n: string): void => {
      st.pending.add(n);
      hit = true;
    };
    if (st.wildcard && d.size > 0) {
      if (d.size > DELTA_MAX_PENDING) st.full = true;
      else {
        for (const n of d.changed) add(n);
        for (const n of d.removed) add(n);
      }
    } else if (d.size > 0 && st.names.size > 0) {
      if (d.size <= st.names.size) {
        for (const n of d.changed) if (st.names.has(n)) add(n);
        for (const n of d.removed) if (st.names.has(n)) add(n);
      } else {
        for (const n of st.names) if (d.changed.has(n) || d.removed.has(n)) add(n);
      }
    }
    for (const n of unresolvedNames(snap, kind, st.names)) add(n);
    if (st.pending.size > DELTA_MAX_PENDING) st.full = true;
    return hit || st.full;
  }

  protected handle(raw: unknown): void {
    const req = raw as DeltaDiscoveryRequest;
    if (req.typeUrl === VHOST_TYPE_URL) {
      this.handleVhds(req);
      return;
    }
    const kind = this.kindOf(req.typeUrl ?? '');
    if (!kind) return;
    const sub = Array.isArray(req.resourceNamesSubscribe) ? req.resourceNamesSubscribe : [];
    const unsub = Array.isArray(req.resourceNamesUnsubscribe) ? req.resourceNamesUnsubscribe : [];
    this.checkNames(sub.length + unsub.length);
    let st = this.types.get(kind);
    let changed = false;
    if (!st) {
      const initial =
        req.initialResourceVersions && typeof req.initialResourceVersions === 'object'
          ? req.initialResourceVersions
          : {};
      this.checkNames(Object.keys(initial).length);
      st = newDeltaState(kind, WILDCARD_KINDS.has(kind) && sub.length === 0, initial);
      this.types.set(kind, st);
      changed = true;
    }
    this.ackOrNack(st, req);
    if (applySubscription(st, sub, unsub, (n) => this.allowed(kind, n))) changed = true;
    this.checkNames(st.names.size);
    if (changed) {
      st.full = true;
      this.status.subscription(st.typeUrl, st.wildcard, st.names);
      this.markDirty(kind);
    }
  }

  /** Envoy's VHDS subscription: route configuration names (namespaces) and on-demand aliases. */
  private handleVhds(req: DeltaDiscoveryRequest): void {
    const sub = Array.isArray(req.resourceNamesSubscribe) ? req.resourceNamesSubscribe : [];
    const unsub = Array.isArray(req.resourceNamesUnsubscribe) ? req.resourceNamesUnsubscribe : [];
    this.checkNames(sub.length + unsub.length);
    const first = this.vh === undefined;
    const vh = (this.vh ??= new VhdsSubscription());
    this.ackOrNack({ typeUrl: VHOST_TYPE_URL, nonces: vh.nonces }, req);
    const changed = vh.apply(sub, unsub);
    const names = vh.names();
    this.checkNames(names.size);
    if (changed || first) {
      this.status.subscription(VHOST_TYPE_URL, vh.wildcard, names);
      this.markDirty('vhost');
    }
  }

  /** Records an ACK or NACK of one of the recent responses of this type (else: stale, ignored). */
  private ackOrNack(st: Pick<DeltaState, 'typeUrl' | 'nonces'>, req: DeltaDiscoveryRequest): void {
    const nonce = req.responseNonce ?? '';
    if (nonce === '') return;
    const version = st.nonces.get(nonce);
    if (version === undefined) return;
    st.nonces.delete(nonce);
    if (!this.nacked(st.typeUrl, version, nonce, req.errorDetail)) this.acked(st.typeUrl, version);
  }

  protected build(kind: PumpKind, snap: Snapshot): BuiltResponse | undefined {
    if (kind === 'vhost') return this.buildVhds(snap);
    const st = this.types.get(kind);
    if (!st) return undefined;
    const view = deltaView(snap, kind);
    const { toSend, removed } = st.full ? fullChanges(st, view) : pendingChanges(st, view);
    st.full = false;
    st.pending.clear();
    if (toSend.length === 0 && removed.length === 0 && !st.mustRespond) return undefined;
    st.mustRespond = false;
    for (const r of toSend) st.known.set(r.name, r.version);
    const nonce = this.nextNonce();
    rememberNonce(st.nonces, nonce, snap.version);
    removed.sort();
    const ns = view === snap ? DELTA_NS[kind] : `${DELTA_NS[kind]}+vhds`;
    const run =
      toSend.length === 0
        ? undefined
        : this.ctx.shared.run(snap, ns, JSON.stringify(toSend.map((r) => r.name)), () =>
            concatEntries(toSend, deltaEntry),
          );
    const buf = deltaMessage(snap.version, run, st.typeUrl, nonce, removed);
    return { buf, version: snap.version, nonce, count: st.known.size };
  }

  private buildVhds(snap: Snapshot): BuiltResponse | undefined {
    const vh = this.vh;
    if (!vh) return undefined;
    const nonce = String(this.nextNonce());
    const out = vh.build(snap.vhds, snap.version, nonce, (key, make) =>
      this.ctx.shared.run(snap, DELTA_VHOST_NS, key, make),
    );
    if (!out) return undefined;
    rememberNonce(vh.nonces, nonce, snap.version);
    if (out.again) this.markDirty('vhost');
    return { buf: out.buf, version: snap.version, nonce, count: out.count };
  }
}
