// State-of-the-World streams: every response carries the whole subscribed state of its type.
import { TYPE_URLS, type ResourceKind } from '../../../proto/loader.js';
import { sortedResources, type KindDiff } from '../snapshot.js';
import type { Snapshot, VersionedResource } from '../types.js';
import { concatEntries, sotwEntry, sotwMessage } from './encode.js';
import type { DiscoveryRequest } from './messages.js';
import { SOTW_NS, subscriptionKey } from './shared.js';
import { StreamBase, type BuiltResponse } from './stream.js';
import { desiredResources, sameSet, touches, unresolvedNames, WILDCARD_KINDS } from './subscription.js';

interface SotwState {
  kind: ResourceKind;
  typeUrl: string;
  wildcard: boolean;
  names: Set<string>;
  /** JSON of [wildcard, sorted names] (interned): with the snapshot, determines the response's resources. */
  subKey: string;
  /** The names of the request that set the subscription, as sent (to recognise identical repeats cheaply). */
  raw?: readonly string[];
  /** Resources of the last response (sorted by name). */
  sent?: { version: string; nonce: string; resources: readonly VersionedResource[] };
}

export class SotwStream extends StreamBase {
  private readonly types = new Map<ResourceKind, SotwState>();

  protected subscribedKinds(): Iterable<ResourceKind> {
    return this.types.keys();
  }

  protected affectedBy(kind: ResourceKind, snap: Snapshot, d: KindDiff): boolean {
    const st = this.types.get(kind);
    if (!st) return false;
    if (st.wildcard && d.size > 0) return true;
    return touches(st.names, d) || unresolvedNames(snap, kind, st.names).length > 0;
  }

  protected handle(raw: unknown): void {
    const req = raw as DiscoveryRequest;
    const kind = this.kindOf(req.typeUrl ?? '');
    if (!kind) return;
    const rawNames = Array.isArray(req.resourceNames) ? req.resourceNames : [];
    this.checkNames(rawNames.length);
    const typeUrl = TYPE_URLS[kind];
    let st = this.types.get(kind);
    const first = st === undefined;
    st ??= { kind, typeUrl, wildcard: false, names: new Set(), subKey: '' };
    this.types.set(kind, st);

    // Fast path: an ACK/NACK (or stale request) with the same names as the request that set the
    // subscription (Envoy repeats every name in every ACK): no subscription change to work out.
    const nonce = req.responseNonce ?? '';
    const prevRaw = st.raw;
    if (
      !first &&
      nonce !== '' &&
      prevRaw !== undefined &&
      prevRaw.length === rawNames.length &&
      rawNames.every((n, i) => n === prevRaw[i])
    ) {
      this.ackOrNack(st, req, nonce);
      return;
    }

    // Subscription: '*' or (legacy) an empty first request = wildcard, for LDS/CDS only.
    const names = new Set(rawNames.filter((n) => n !== '*' && this.allowed(kind, n)));
    let wildcard = false;
    if (WILDCARD_KINDS.has(kind)) {
      if (rawNames.includes('*')) wildcard = true;
      else if (rawNames.length === 0) wildcard = first || st.wildcard;
    }
    const changed = first || wildcard !== st.wildcard || !sameSet(names, st.names);
    const apply = (): void => {
      st.raw = rawNames;
      st.wildcard = wildcard;
      st.names = names;
      st.subKey = subscriptionKey(wildcard, names);
      this.status.subscription(typeUrl, wildcard, names);
      this.markDirty(kind);
    };

    if (nonce === '') {
      // A first request for this type (or the client starting over): answer in full.
      st.sent = undefined;
      apply();
      return;
    }
    // ACK/NACK of the last response, or a stale (or bogus) nonce: ignored unless the subscription changed.
    this.ackOrNack(st, req, nonce);
    if (changed) apply();
  }

  /** Records an ACK or NACK when `nonce` is that of the last response of this type (else: stale, ignored). */
  private ackOrNack(st: SotwState, req: DiscoveryRequest, nonce: string): void {
    if (!st.sent || nonce !== st.sent.nonce) return;
    // A NACKed content counts as sent, so it is not resent until it changes.
    if (this.nacked(st.typeUrl, st.sent.version, nonce, req.errorDetail)) return;
    if (req.versionInfo === st.sent.version) this.acked(st.typeUrl, st.sent.version);
  }

  protected build(kind: ResourceKind, snap: Snapshot): BuiltResponse | undefined {
    const st = this.types.get(kind);
    if (!st) return undefined;
    const wildcard = st.wildcard && WILDCARD_KINDS.has(kind);
    // Shared by every stream with the same subscription on this snapshot
    // (a plain wildcard gets the snapshot's sorted list).
    const res =
      wildcard && st.names.size === 0
        ? sortedResources(snap, kind)
        : this.ctx.shared.list(snap, SOTW_NS[kind], st.subKey, () => desiredResources(snap, kind, wildcard, st.names));
    if (st.sent) {
      const prev = st.sent.resources;
      if (prev === res) return undefined;
      if (prev.length === res.length && res.every((r, i) => prev[i]?.name === r.name && prev[i]?.version === r.version))
        return undefined;
    } else if (res.length === 0 && !WILDCARD_KINDS.has(kind)) {
      // RDS/EDS/SDS: nothing requested exists yet; answer when it appears. (LDS/CDS do answer
      // with an empty state of the world: for them absence means "does not exist".)
      return undefined;
    }
    const nonce = this.nextNonce();
    st.sent = { version: snap.version, nonce, resources: res };
    const run = this.ctx.shared.run(snap, SOTW_NS[kind], st.subKey, () => concatEntries(res, sotwEntry));
    return { buf: sotwMessage(snap.version, run, st.typeUrl, nonce), version: snap.version, nonce, count: res.length };
  }
}
