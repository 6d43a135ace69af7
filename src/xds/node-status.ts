// Per-connected-node xDS status (what `istioctl proxy-status` shows) and metric hooks.
import type { NodeType } from './types.js';

export type StreamKind = 'sotw' | 'delta';
export type XdsService = 'ads' | 'sds';

export interface NackRecord {
  version: string;
  nonce: string;
  message: string;
  /** ISO time. */
  at: string;
}

export interface TypeStatus {
  typeUrl: string;
  /** Last version the node ACKed (SotW version_info / Delta system_version_info). */
  ackedVersion?: string;
  ackedAt?: string;
  sentVersion?: string;
  sentNonce?: string;
  sentAt?: string;
  lastNack?: NackRecord;
  /** Explicitly subscribed names (sorted). */
  subscribed: string[];
  wildcard: boolean;
  /** Resources in the last response (SotW) / resources the node holds (Delta). */
  resourceCount: number;
}

export interface NodeStatus {
  streamId: number;
  service: XdsService;
  streamKind: StreamKind;
  nodeId: string;
  cluster: string;
  userAgentName: string;
  userAgentVersion: string;
  nodeType: NodeType;
  peer: string;
  /** ISO time. */
  connectedAt: string;
  /** Responses decided but not yet written or flushed (a published change not sent yet). */
  pending: boolean;
  types: Record<string, TypeStatus>;
}

/** Metric hooks; every method is optional and defaults to a no-op. */
export interface XdsHooks {
  onStreamOpen?(kind: StreamKind, service: XdsService): void;
  onStreamClose?(kind: StreamKind, service: XdsService): void;
  /** A response was written: its encoded size and the time from trigger to write. */
  onPush?(typeUrl: string, bytes: number, ms: number): void;
  onAck?(typeUrl: string): void;
  /** A NACK, with the error message the node sent (error_detail.message). */
  onNack?(typeUrl: string, detail?: string): void;
  /** A request was ignored or refused (unknown type URL, too many names, ...). */
  onBadRequest?(reason: string): void;
}

export const NOOP_HOOKS: Required<XdsHooks> = {
  onStreamOpen: () => undefined,
  onStreamClose: () => undefined,
  onPush: () => undefined,
  onAck: () => undefined,
  onNack: () => undefined,
  onBadRequest: () => undefined,
};

export function withDefaults(h: XdsHooks | undefined): Required<XdsHooks> {
  const out = { ...NOOP_HOOKS };
  if (!h) return out;
  // Keep `this` bound to the caller's object; swallow hook errors (metrics never break a stream).
  for (const k of Object.keys(NOOP_HOOKS) as (keyof XdsHooks)[]) {
    const fn = h[k] as ((...a: unknown[]) => void) | undefined;
    if (typeof fn === 'function') {
      (out as Record<string, unknown>)[k] = (...a: unknown[]) => {
        try {
          fn.apply(h, a);
        } catch {
          /* ignore */
        }
      };
    }
  }
  return out;
}

/** Mutable per-stream status owned by one stream; `view()` returns a detached copy. */
export class NodeStatusRecord {
  nodeId = '';
  cluster = '';
  userAgentName = '';
  userAgentVersion = '';
  nodeType: NodeType = 'envoy';
  readonly connectedAt = new Date().toISOString();
  private readonly types = new Map<string, TypeStatus>();
  /** Set by the owning stream: whether it has responses still to write. */
  pendingProbe: () => boolean = () => false;

  constructor(
    readonly streamId: number,
    readonly service: XdsService,
    readonly streamKind: StreamKind,
    readonly peer: string,
  ) {}

  type(typeUrl: string): TypeStatus {
    let t = this.types.get(typeUrl);
    if (!t) {
      t = { typeUrl, subscribed: [], wildcard: false, resourceCount: 0 };
      this.types.set(typeUrl, t);
    }
    return t;
  }

  sent(typeUrl: string, version: string, nonce: string, resourceCount: number): void {
    const t = this.type(typeUrl);
    t.sentVersion = version;
    t.sentNonce = nonce;
    t.sentAt = new Date().toISOString();
    t.resourceCount = resourceCount;
  }

  acked(typeUrl: string, version: string): void {
    const t = this.type(typeUrl);
    t.ackedVersion = version;
    t.ackedAt = new Date().toISOString();
  }

  nacked(typeUrl: string, version: string, nonce: string, message: string): void {
    this.type(typeUrl).lastNack = { version, nonce, message, at: new Date().toISOString() };
  }

  subscription(typeUrl: string, wildcard: boolean, names: Iterable<string>): void {
    const t = this.type(typeUrl);
    t.wildcard = wildcard;
    t.subscribed = [...names].sort();
  }

  view(): NodeStatus {
    const types: Record<string, TypeStatus> = {};
    for (const [k, t] of this.types)
      types[k] = { ...t, subscribed: [...t.subscribed], ...(t.lastNack ? { lastNack: { ...t.lastNack } } : {}) };
    return {
      streamId: this.streamId,
      service: this.service,
      streamKind: this.streamKind,
      nodeId: this.nodeId,
      cluster: this.cluster,
      userAgentName: this.userAgentName,
      userAgentVersion: this.userAgentVersion,
      nodeType: this.nodeType,
      peer: this.peer,
      connectedAt: this.connectedAt,
      pending: this.pendingProbe(),
      types,
    };
  }
}
