// The xDS server: ADS (SotW + Delta) and SDS over grpc-js, serving pre-encoded snapshot resources.
//
// Cost per published snapshot: one diff against the previous snapshot of that node type; a stream
// is marked only for the kinds whose change touches its subscription (Delta streams re-check only
// the touched names). Responses share work across streams: resource lists and the encoded
// `resources` run are computed once per (snapshot, kind, subscription); a stream only encodes its
// own version/type_url/nonce (see encode.ts).
import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import type { SnapshotCache } from '../cache.js';
import type { Authenticator, NodePrincipal } from '../node-auth.js';
import { withDefaults, type NodeStatus, type StreamKind, type XdsHooks, type XdsService } from '../node-status.js';
import { diffSnapshots } from '../snapshot.js';
import type { NodeType, Snapshot } from '../types.js';
import { DeltaStream } from './delta.js';
import {
  aggregatedDiscoveryServiceDefinition,
  secretDiscoveryServiceDefinition,
  type AnyCall,
  type NodeInfo,
} from './messages.js';
import { detectNodeType } from './node.js';
import { SharedResponses } from './shared.js';
import { SotwStream } from './sotw.js';
import type { AllowName, StreamBase, StreamContext } from './stream.js';

/**
 * Default bound on names per request / per subscribed type: an Envoy in SotW mode subscribes one
 * EDS name per cluster, so the bound must exceed the largest fleet's cluster count (10× the
 * 10,000 descriptors of a large Otoroshi install). It bounds the per-stream subscription state
 * (~100 B per name, so ~10 MB per stream at most); the gRPC message size bounds one request.
 */
export const DEFAULT_MAX_NAMES = 100_000;

export interface AdsServerOptions {
  cache: SnapshotCache;
  logger: Logger;
  nodeType?: (node: NodeInfo) => NodeType;
  /**
   * The snapshot cache key a stream reads (default: its node type). Sidecars get a key of their
   * own workload (src/xds/sidecar/snapshots.ts); runs once per stream, after authentication.
   */
  snapshotKey?: (node: NodeInfo, principal: NodePrincipal, nodeType: NodeType) => string;
  hooks?: XdsHooks;
  /** Max resource names per request / subscribed per type (default DEFAULT_MAX_NAMES). */
  maxNames?: number;
  /**
   * Who the client of a stream is, from what its transport proves (client certificate, bearer
   * token, peer address); run once per stream before its first request is handled. Default:
   * self-asserted (the node's own metadata is believed).
   */
  authenticate?: Authenticator;
  /** Whether a node may subscribe to a resource name (default: every name). */
  allowName?: AllowName;
  /** Batching window after a stream's first request, so types requested together go out in order (default 10 ms). */
  initialBatchMs?: number;
  /**
   * Budget of the shared per-subscription cache on the current snapshot (default 64 MiB, 4,096 entries per node type).
   */
  sharedEncodingMaxBytes?: number;
  sharedEncodingMaxEntries?: number;
}

export class AdsServer {
  private readonly streams = new Set<StreamBase>();
  /** Open streams by snapshot key: a publication visits only its readers (one per sidecar key). */
  private readonly byKey = new Map<string, Set<StreamBase>>();
  private readonly ctx: StreamContext;
  private readonly unsubscribe: () => void;

  constructor(opts: AdsServerOptions) {
    const nodeTypeOf = opts.nodeType ?? detectNodeType;
    this.ctx = {
      cache: opts.cache,
      logger: opts.logger,
      hooks: withDefaults(opts.hooks),
      nodeTypeOf: (node) => {
        try {
          return nodeTypeOf(node);
        } catch {
          return detectNodeType(node);
        }
      },
      snapshotKeyOf: (node, principal, nodeType) => {
        try {
          return opts.snapshotKey?.(node, principal, nodeType) ?? nodeType;
        } catch {
          return nodeType;
        }
      },
      maxNames: opts.maxNames ?? DEFAULT_MAX_NAMES,
      authenticate: opts.authenticate ?? (() => ({ kind: 'self-asserted' })),
      allowName: opts.allowName,
      shared: new SharedResponses(
        opts.sharedEncodingMaxBytes ?? 64 * 1024 * 1024,
        opts.sharedEncodingMaxEntries ?? 4096,
      ),
      initialBatchMs: opts.initialBatchMs ?? 10,
      onKeyed: (s) => this.keyed(s),
      onClose: (s) => this.closed(s),
    };
    // The previous snapshot per node type, to diff each publication once for all streams.
    const last = new Map<string, Snapshot>();
    for (const t of ['envoy', 'grpc'] as const) {
      const s = opts.cache.get(t);
      if (s) last.set(t, s);
    }
    this.unsubscribe = opts.cache.subscribe((key, snap) => {
      const prev = last.get(key);
      last.set(key, snap);
      const diff = prev ? diffSnapshots(prev, snap) : undefined;
      for (const s of this.byKey.get(key) ?? []) s.guard(() => s.onSnapshot(snap, diff));
    });
  }

  private keyed(s: StreamBase): void {
    if (s.closed || s.snapshotKey === undefined) return;
    let set = this.byKey.get(s.snapshotKey);
    if (set === undefined) {
      set = new Set();
      this.byKey.set(s.snapshotKey, set);
    }
    set.add(s);
  }

  private closed(s: StreamBase): void {
    this.streams.delete(s);
    if (s.snapshotKey === undefined) return;
    const set = this.byKey.get(s.snapshotKey);
    if (set?.delete(s) && set.size === 0) this.byKey.delete(s.snapshotKey);
  }

  /** Snapshot keys of the open streams (sidecar keys no stream uses can be dropped). */
  snapshotKeys(): Set<string> {
    const out = new Set<string>();
    for (const k of this.byKey.keys()) out.add(k);
    return out;
  }

  private open(call: AnyCall, service: XdsService, kind: StreamKind): void {
    try {
      const s =
        kind === 'sotw'
          ? new SotwStream(this.ctx, call, service, kind)
          : new DeltaStream(this.ctx, call, service, kind);
      this.streams.add(s);
    } catch (err) {
      this.ctx.logger.error({ err }, 'failed to open xDS stream');
      try {
        call.emit('error', { code: grpc.status.INTERNAL, details: 'internal error' });
      } catch {
        /* ignore */
      }
    }
  }

  /** Adds the ADS and SDS services to `server`. */
  register(server: grpc.Server): void {
    server.addService(aggregatedDiscoveryServiceDefinition(), {
      StreamAggregatedResources: (call: AnyCall) => this.open(call, 'ads', 'sotw'),
      DeltaAggregatedResources: (call: AnyCall) => this.open(call, 'ads', 'delta'),
    });
    server.addService(secretDiscoveryServiceDefinition(), {
      StreamSecrets: (call: AnyCall) => this.open(call, 'sds', 'sotw'),
      DeltaSecrets: (call: AnyCall) => this.open(call, 'sds', 'delta'),
    });
  }

  /** Counters of the shared encoded-response cache (hits = responses whose resources were not re-encoded). */
  sharedEncodingStats(): { hits: number; misses: number; listHits: number; entries: number; bytes: number } {
    return this.ctx.shared.stats();
  }

  /** One entry per open stream, detached copies. */
  statuses(): NodeStatus[] {
    return [...this.streams].map((s) => s.status.view());
  }

  /** Ends every stream with UNAVAILABLE (clients reconnect, possibly elsewhere). */
  closeAllStreams(): void {
    for (const s of [...this.streams]) s.fail(grpc.status.UNAVAILABLE, 'control plane shutting down', 'warn');
  }

  /** Stops following the cache and closes every stream. */
  dispose(): void {
    this.unsubscribe();
    this.closeAllStreams();
  }
}

export interface XdsServerHandle {
  port: number;
  server: grpc.Server;
  ads: AdsServer;
  /** Closes streams, then shuts down gracefully (forcing after `graceMs`, default 5 s). */
  stop(graceMs?: number): Promise<void>;
}

export async function startXdsServer(
  host: string,
  port: number,
  opts: AdsServerOptions & { credentials?: grpc.ServerCredentials; serverOptions?: grpc.ServerOptions },
): Promise<XdsServerHandle> {
  const server = new grpc.Server({
    'grpc.keepalive_time_ms': 30_000,
    'grpc.keepalive_timeout_ms': 10_000,
    'grpc.keepalive_permit_without_calls': 1,
    'grpc.http2.min_ping_interval_without_data_ms': 5_000,
    ...opts.serverOptions,
  });
  const ads = new AdsServer(opts);
  ads.register(server);
  const bound = await new Promise<number>((resolve, reject) => {
    server.bindAsync(
      `${host.includes(':') ? `[${host}]` : host}:${port}`,
      opts.credentials ?? grpc.ServerCredentials.createInsecure(),
      (err, p) => (err ? reject(err) : resolve(p)),
    );
  });
  let stopped: Promise<void> | undefined;
  const stop = (graceMs = 5_000): Promise<void> =>
    (stopped ??= new Promise<void>((resolve) => {
      ads.dispose();
      const timer = setTimeout(() => {
        server.forceShutdown();
        resolve();
      }, graceMs);
      timer.unref();
      server.tryShutdown(() => {
        clearTimeout(timer);
        resolve();
      });
    }));
  return { port: bound, server, ads, stop };
}
