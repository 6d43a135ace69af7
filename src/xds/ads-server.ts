// ADS (SotW + Delta) and SDS over grpc-js, serving pre-encoded snapshot resources.
//
// One stream = one serialized send queue: requests and snapshot changes only mark a resource
// kind "dirty"; a pump builds each response from the *current* state at write time (so pending
// updates coalesce to the latest state per type), in SEND_ORDER (CDS → EDS → LDS → RDS → SDS),
// keeps at most MAX_INFLIGHT_WRITES unflushed responses and waits for 'drain' whenever
// call.write() returns false.
import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import type protobuf from 'protobufjs';
import { lookupType, kindOfTypeUrl, SEND_ORDER, TYPE_URLS, type ResourceKind } from '../proto/loader.js';
import type { SnapshotCache } from './cache.js';
import { NodeStatusRecord, withDefaults, type NodeStatus, type StreamKind, type XdsHooks, type XdsService } from './node-status.js';
import type { NodeType, Snapshot, VersionedResource } from './types.js';

// ---------------------------------------------------------------------------------------------
// Wire types (decoded protobufjs messages; camelCase fields, defaults on the prototype)

export interface NodeInfo {
  id?: string;
  cluster?: string;
  userAgentName?: string;
  userAgentVersion?: string;
  /** google.protobuf.Struct as decoded ({fields: {k: {stringValue}}}) or a plain object. */
  metadata?: unknown;
}

interface RpcStatus {
  code?: number;
  message?: string;
}

export interface DiscoveryRequest {
  versionInfo: string;
  node?: NodeInfo | null;
  resourceNames: string[];
  typeUrl: string;
  responseNonce: string;
  errorDetail?: RpcStatus | null;
}

export interface DeltaDiscoveryRequest {
  node?: NodeInfo | null;
  typeUrl: string;
  resourceNamesSubscribe: string[];
  resourceNamesUnsubscribe: string[];
  initialResourceVersions: Record<string, string>;
  responseNonce: string;
  errorDetail?: RpcStatus | null;
}

/** google.protobuf.Any as protobufjs's bundled definition names its fields. */
export interface AnyMessage {
  type_url: string;
  value: Uint8Array;
}

export interface DiscoveryResponse {
  versionInfo: string;
  resources: AnyMessage[];
  typeUrl: string;
  nonce: string;
}

export interface DeltaResource {
  name: string;
  version: string;
  resource?: AnyMessage;
}

export interface DeltaDiscoveryResponse {
  systemVersionInfo: string;
  resources: DeltaResource[];
  typeUrl: string;
  removedResources: string[];
  nonce: string;
}

// ---------------------------------------------------------------------------------------------
// Service definitions (hand-built; protobufjs codecs; shared with the test client)

function codec<T>(typeName: string): { serialize: (v: T | Buffer) => Buffer; deserialize: (b: Buffer) => T } {
  let t: protobuf.Type | undefined;
  const type = (): protobuf.Type => (t ??= lookupType(typeName));
  return {
    // A Buffer is an already-encoded message (the server pre-encodes to measure and write once).
    serialize: (v) => (Buffer.isBuffer(v) ? v : Buffer.from(type().encode(v as object).finish())),
    deserialize: (b) => type().decode(b) as unknown as T,
  };
}

function method<Req, Res>(path: string, req: string, res: string, requestStream: boolean, responseStream: boolean) {
  const rq = codec<Req>(req);
  const rs = codec<Res>(res);
  return {
    path,
    requestStream,
    responseStream,
    requestSerialize: rq.serialize,
    requestDeserialize: rq.deserialize,
    responseSerialize: rs.serialize,
    responseDeserialize: rs.deserialize,
  };
}

const DISCOVERY = 'envoy.service.discovery.v3';
const ADS_SERVICE = `${DISCOVERY}.AggregatedDiscoveryService`;
const SDS_SERVICE = 'envoy.service.secret.v3.SecretDiscoveryService';

export function aggregatedDiscoveryServiceDefinition(): grpc.ServiceDefinition {
  return {
    StreamAggregatedResources: method<DiscoveryRequest, DiscoveryResponse>(
      `/${ADS_SERVICE}/StreamAggregatedResources`, `${DISCOVERY}.DiscoveryRequest`, `${DISCOVERY}.DiscoveryResponse`, true, true),
    DeltaAggregatedResources: method<DeltaDiscoveryRequest, DeltaDiscoveryResponse>(
      `/${ADS_SERVICE}/DeltaAggregatedResources`, `${DISCOVERY}.DeltaDiscoveryRequest`, `${DISCOVERY}.DeltaDiscoveryResponse`, true, true),
  } as unknown as grpc.ServiceDefinition;
}

export function secretDiscoveryServiceDefinition(): grpc.ServiceDefinition {
  return {
    StreamSecrets: method<DiscoveryRequest, DiscoveryResponse>(
      `/${SDS_SERVICE}/StreamSecrets`, `${DISCOVERY}.DiscoveryRequest`, `${DISCOVERY}.DiscoveryResponse`, true, true),
    DeltaSecrets: method<DeltaDiscoveryRequest, DeltaDiscoveryResponse>(
      `/${SDS_SERVICE}/DeltaSecrets`, `${DISCOVERY}.DeltaDiscoveryRequest`, `${DISCOVERY}.DeltaDiscoveryResponse`, true, true),
  } as unknown as grpc.ServiceDefinition;
}

// ---------------------------------------------------------------------------------------------
// Node type detection

function metadataString(md: unknown, key: string): string | undefined {
  if (typeof md !== 'object' || md === null) return undefined;
  const fields = (md as { fields?: unknown }).fields;
  if (typeof fields === 'object' && fields !== null) {
    const v = (fields as Record<string, unknown>)[key] as { stringValue?: unknown; string_value?: unknown } | undefined;
    const s = v?.stringValue ?? v?.string_value;
    if (typeof s === 'string') return s;
  }
  const direct = (md as Record<string, unknown>)[key];
  return typeof direct === 'string' ? direct : undefined;
}

/** Metadata `OXDS_NODE_TYPE` ("grpc"|"envoy") wins; else a user agent starting with "gRPC" is proxyless gRPC. */
export function detectNodeType(node: NodeInfo | null | undefined): NodeType {
  const explicit = metadataString(node?.metadata, 'OXDS_NODE_TYPE')?.trim().toLowerCase();
  if (explicit === 'grpc' || explicit === 'envoy') return explicit;
  return /^grpc/i.test(node?.userAgentName ?? '') ? 'grpc' : 'envoy';
}

// ---------------------------------------------------------------------------------------------
// Streams

export interface AdsServerOptions {
  cache: SnapshotCache;
  logger: Logger;
  nodeType?: (node: NodeInfo) => NodeType;
  hooks?: XdsHooks;
  /** Max resource names per request / subscribed per type (default 10,000). */
  maxNames?: number;
  /** Batching window after a stream's first request, so types requested together go out in order (default 10 ms). */
  initialBatchMs?: number;
}

/** LDS and CDS are the only kinds with wildcard subscriptions. */
const WILDCARD_KINDS: ReadonlySet<ResourceKind> = new Set(['listener', 'cluster']);
const MAX_TRACKED_NONCES = 32;
/**
 * Responses written but not yet flushed, per stream. Further updates wait (coalesced: each
 * response is built from the latest state when it is its turn), so a slow client holds at most
 * this many encoded responses plus the per-type state.
 */
const MAX_INFLIGHT_WRITES = 2;
const MAX_BAD_REQUEST_LOGS = 10;

class RequestError extends Error {
  constructor(
    readonly code: grpc.status,
    message: string,
  ) {
    super(message);
  }
}

type AnyCall = grpc.ServerDuplexStream<unknown, unknown>;

interface Ctx {
  cache: SnapshotCache;
  logger: Logger;
  hooks: Required<XdsHooks>;
  nodeTypeOf: (node: NodeInfo) => NodeType;
  maxNames: number;
  initialBatchMs: number;
  onClose(s: StreamBase): void;
}

function anyOf(r: VersionedResource): AnyMessage {
  return { type_url: TYPE_URLS[r.kind], value: r.bytes };
}

/** Resources of `kind` wanted by a subscription, sorted by name; names not (yet) existing are omitted. */
function desiredResources(snap: Snapshot, kind: ResourceKind, wildcard: boolean, names: ReadonlySet<string>): VersionedResource[] {
  const out = new Map<string, VersionedResource>();
  const map = snap.resources[kind];
  if (wildcard) for (const [n, r] of map) out.set(n, r);
  for (const n of names) {
    if (out.has(n)) continue;
    const r = map.get(n) ?? snap.resolve(kind, n);
    if (r) out.set(n, r);
  }
  return [...out.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

function sameSet(a: ReadonlySet<string>, b: ReadonlySet<string>): boolean {
  if (a.size !== b.size) return false;
  for (const x of a) if (!b.has(x)) return false;
  return true;
}

let nextStreamId = 1;

abstract class StreamBase {
  readonly id = nextStreamId++;
  readonly status: NodeStatusRecord;
  nodeType: NodeType | undefined;
  closed = false;
  protected log: Logger;
  private nonceSeq = 0;
  private readonly dirty = new Map<ResourceKind, number>(); // kind → time first marked (ms)
  private pumpScheduled = false;
  private firstPumpDone = false;
  private inflight = 0;
  private blocked = false;
  private badRequestLogs = 0;

  constructor(
    protected readonly ctx: Ctx,
    protected readonly call: AnyCall,
    readonly service: XdsService,
    readonly kind: StreamKind,
  ) {
    let peer = '';
    try {
      peer = call.getPeer();
    } catch {
      /* ignore */
    }
    this.status = new NodeStatusRecord(this.id, service, kind, peer);
    this.log = ctx.logger.child({ stream: this.id, service, kind });
    call.on('data', (req: unknown) => this.guard(() => this.onRequest(req)));
    call.on('end', () => this.guard(() => {
      this.close();
      call.end();
    }));
    call.on('cancelled', () => this.close());
    call.on('error', () => this.close());
    call.on('close', () => this.close());
    ctx.hooks.onStreamOpen(kind, service);
    this.log.debug({ peer }, 'xDS stream opened');
  }

  protected abstract handle(req: unknown): void;
  /** Builds the response for `kind` from current state, or undefined if nothing is to be sent. */
  protected abstract build(kind: ResourceKind, snap: Snapshot): { msg: object; version: string; nonce: string; count: number } | undefined;
  protected abstract subscribedKinds(): Iterable<ResourceKind>;

  /** Runs `fn`; a throw becomes a gRPC status and a log line, never a crash. */
  guard(fn: () => void): void {
    try {
      fn();
    } catch (err) {
      if (err instanceof RequestError) this.fail(err.code, err.message, 'warn');
      else {
        this.log.error({ err }, 'xDS stream handler failed');
        this.fail(grpc.status.INTERNAL, 'internal error');
      }
    }
  }

  fail(code: grpc.status, details: string, level: 'warn' | 'error' = 'error'): void {
    if (this.closed) return;
    this.log[level]({ code: grpc.status[code], details }, 'closing xDS stream');
    this.close();
    try {
      this.call.emit('error', { code, details });
    } catch {
      /* the call is already gone */
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.dirty.clear();
    this.ctx.onClose(this);
    this.ctx.hooks.onStreamClose(this.kind, this.service);
    this.log.debug('xDS stream closed');
  }

  private onRequest(req: unknown): void {
    if (this.closed) return;
    const node = (req as { node?: NodeInfo | null }).node;
    if (this.nodeType === undefined) {
      const n: NodeInfo = node ?? {};
      this.nodeType = this.ctx.nodeTypeOf(n);
      this.status.nodeType = this.nodeType;
      this.status.nodeId = n.id ?? '';
      this.status.cluster = n.cluster ?? '';
      this.status.userAgentName = n.userAgentName ?? '';
      this.status.userAgentVersion = n.userAgentVersion ?? '';
      this.log = this.log.child({ node: this.status.nodeId, nodeType: this.nodeType });
    }
    this.handle(req);
  }

  protected badRequest(reason: string, detail: Record<string, unknown>): void {
    this.ctx.hooks.onBadRequest(reason);
    if (this.badRequestLogs++ < MAX_BAD_REQUEST_LOGS) this.log.warn(detail, `ignoring xDS request: ${reason}`);
  }

  /** The resource kind of a request's type URL, or undefined (logged) when not served here. */
  protected kindOf(typeUrl: string): ResourceKind | undefined {
    if (this.service === 'sds') {
      if (typeUrl === '' || typeUrl === TYPE_URLS.secret) return 'secret';
    } else {
      const k = kindOfTypeUrl(typeUrl);
      if (k) return k;
    }
    this.badRequest('unknown_type_url', { typeUrl: String(typeUrl).slice(0, 200) });
    return undefined;
  }

  protected checkNames(n: number): void {
    if (n > this.ctx.maxNames) {
      this.ctx.hooks.onBadRequest('too_many_names');
      throw new RequestError(grpc.status.INVALID_ARGUMENT, `too many resource names (${n} > ${this.ctx.maxNames})`);
    }
  }

  protected nextNonce(): string {
    this.nonceSeq += 1;
    return String(this.nonceSeq);
  }

  protected snapshot(): Snapshot | undefined {
    return this.nodeType === undefined ? undefined : this.ctx.cache.get(this.nodeType);
  }

  /**
   * Marks `kind` for (re)evaluation and schedules the pump. The first request of a stream opens
   * a short batching window (`initialBatchMs`) so that types requested together on connect are
   * answered in SEND_ORDER; afterwards the pump runs on the next turn of the event loop.
   */
  markDirty(kind: ResourceKind): void {
    if (this.closed) return;
    if (!this.dirty.has(kind)) this.dirty.set(kind, performance.now());
    if (this.pumpScheduled || this.blocked) return;
    this.pumpScheduled = true;
    const run = (): void => {
      this.pumpScheduled = false;
      this.guard(() => this.pump());
    };
    if (!this.firstPumpDone && this.ctx.initialBatchMs > 0) setTimeout(run, this.ctx.initialBatchMs);
    else setImmediate(run);
    this.firstPumpDone = true;
  }

  onSnapshot(): void {
    for (const k of this.subscribedKinds()) this.markDirty(k);
  }

  private pump(): void {
    while (!this.closed && !this.blocked && this.inflight < MAX_INFLIGHT_WRITES && this.dirty.size > 0) {
      const kind = SEND_ORDER.find((k) => this.dirty.has(k));
      if (kind === undefined) break;
      const since = this.dirty.get(kind) ?? performance.now();
      this.dirty.delete(kind);
      const snap = this.snapshot();
      if (!snap) continue;
      const out = this.build(kind, snap);
      if (!out) continue;
      const buf = this.serialize(out.msg);
      this.inflight += 1;
      const ok = this.call.write(buf, () => {
        // Flushed to HTTP/2 (which applies flow control): the next response may go.
        this.inflight -= 1;
        if (!this.closed && this.dirty.size > 0) this.guard(() => this.pump());
      });
      const typeUrl = TYPE_URLS[kind];
      this.status.sent(typeUrl, out.version, out.nonce, out.count);
      this.ctx.hooks.onPush(typeUrl, buf.length, performance.now() - since);
      this.log.debug({ typeUrl, version: out.version, nonce: out.nonce, resources: out.count, bytes: buf.length }, 'xDS response sent');
      if (!ok) {
        this.blocked = true;
        this.call.once('drain', () => {
          this.blocked = false;
          this.guard(() => this.pump());
        });
      }
    }
  }

  protected abstract serialize(msg: object): Buffer;
}

// --- State of the World -----------------------------------------------------------------------

interface SotwState {
  kind: ResourceKind;
  typeUrl: string;
  wildcard: boolean;
  names: Set<string>;
  sent?: { version: string; nonce: string; resources: Map<string, string> };
}

const sotwCodec = codec<DiscoveryResponse>(`${DISCOVERY}.DiscoveryResponse`);
const deltaCodec = codec<DeltaDiscoveryResponse>(`${DISCOVERY}.DeltaDiscoveryResponse`);

class SotwStream extends StreamBase {
  private readonly types = new Map<ResourceKind, SotwState>();

  protected subscribedKinds(): Iterable<ResourceKind> {
    return this.types.keys();
  }

  protected serialize(msg: object): Buffer {
    return sotwCodec.serialize(msg as DiscoveryResponse);
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
    st ??= { kind, typeUrl, wildcard: false, names: new Set() };
    this.types.set(kind, st);

    // Subscription: '*' or (legacy) an empty first request = wildcard, for LDS/CDS only.
    const names = new Set(rawNames.filter((n) => n !== '*'));
    let wildcard = false;
    if (WILDCARD_KINDS.has(kind)) {
      if (rawNames.includes('*')) wildcard = true;
      else if (rawNames.length === 0) wildcard = first || st.wildcard;
    }
    const changed = first || wildcard !== st.wildcard || !sameSet(names, st.names);
    const apply = (): void => {
      st.wildcard = wildcard;
      st.names = names;
      this.status.subscription(typeUrl, wildcard, names);
      this.markDirty(kind);
    };

    const nonce = req.responseNonce ?? '';
    if (nonce === '') {
      // A first request for this type (or the client starting over): answer in full.
      st.sent = undefined;
      apply();
      return;
    }
    if (st.sent && nonce === st.sent.nonce) {
      const err = req.errorDetail;
      if (err && (err.code || err.message)) {
        // NACK: keep last-good; the rejected content counts as sent, so it is not resent until it changes.
        const message = String(err.message ?? '');
        this.status.nacked(typeUrl, st.sent.version, nonce, message);
        this.ctx.hooks.onNack(typeUrl);
        this.log.warn({ typeUrl, version: st.sent.version, nonce, error: message.slice(0, 2000) }, 'xDS NACK');
      } else if (req.versionInfo === st.sent.version) {
        this.status.acked(typeUrl, st.sent.version);
        this.ctx.hooks.onAck(typeUrl);
      }
      if (changed) apply();
      return;
    }
    // Stale (or bogus) nonce: ignored unless the subscription changed.
    if (changed) apply();
  }

  protected build(kind: ResourceKind, snap: Snapshot) {
    const st = this.types.get(kind);
    if (!st) return undefined;
    const wildcard = st.wildcard && WILDCARD_KINDS.has(kind);
    const res = desiredResources(snap, kind, wildcard, st.names);
    if (st.sent) {
      const prev = st.sent.resources;
      if (prev.size === res.length && res.every((r) => prev.get(r.name) === r.version)) return undefined;
    } else if (res.length === 0 && !WILDCARD_KINDS.has(kind)) {
      // RDS/EDS/SDS: nothing requested exists yet; answer when it appears. (LDS/CDS do answer
      // with an empty state of the world: for them absence means "does not exist".)
      return undefined;
    }
    const nonce = this.nextNonce();
    st.sent = { version: snap.version, nonce, resources: new Map(res.map((r) => [r.name, r.version])) };
    const msg: DiscoveryResponse = { versionInfo: snap.version, resources: res.map(anyOf), typeUrl: st.typeUrl, nonce };
    return { msg, version: snap.version, nonce, count: res.length };
  }
}

// --- Delta (incremental) ----------------------------------------------------------------------

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
}

class DeltaStream extends StreamBase {
  private readonly types = new Map<ResourceKind, DeltaState>();

  protected subscribedKinds(): Iterable<ResourceKind> {
    return this.types.keys();
  }

  protected serialize(msg: object): Buffer {
    return deltaCodec.serialize(msg as DeltaDiscoveryResponse);
  }

  protected handle(raw: unknown): void {
    const req = raw as DeltaDiscoveryRequest;
    const kind = this.kindOf(req.typeUrl ?? '');
    if (!kind) return;
    const sub = Array.isArray(req.resourceNamesSubscribe) ? req.resourceNamesSubscribe : [];
    const unsub = Array.isArray(req.resourceNamesUnsubscribe) ? req.resourceNamesUnsubscribe : [];
    const initial = req.initialResourceVersions && typeof req.initialResourceVersions === 'object' ? req.initialResourceVersions : {};
    this.checkNames(sub.length + unsub.length);
    const typeUrl = TYPE_URLS[kind];
    let st = this.types.get(kind);
    let changed = false;
    if (!st) {
      st = { kind, typeUrl, wildcard: false, names: new Set(), known: new Map(), mustRespond: false, nonces: new Map() };
      this.types.set(kind, st);
      if (WILDCARD_KINDS.has(kind) && sub.length === 0) st.wildcard = true;
      const entries = Object.entries(initial);
      this.checkNames(entries.length);
      for (const [n, v] of entries) if (typeof v === 'string') st.known.set(n, v);
      st.mustRespond = st.wildcard;
      changed = true;
    }

    const nonce = req.responseNonce ?? '';
    if (nonce !== '') {
      const version = st.nonces.get(nonce);
      if (version !== undefined) {
        st.nonces.delete(nonce);
        const err = req.errorDetail;
        if (err && (err.code || err.message)) {
          const message = String(err.message ?? '');
          this.status.nacked(typeUrl, version, nonce, message);
          this.ctx.hooks.onNack(typeUrl);
          this.log.warn({ typeUrl, version, nonce, error: message.slice(0, 2000) }, 'xDS NACK');
        } else {
          this.status.acked(typeUrl, version);
          this.ctx.hooks.onAck(typeUrl);
        }
      }
    }

    for (const n of sub) {
      if (n === '*') {
        if (WILDCARD_KINDS.has(kind) && !st.wildcard) {
          st.wildcard = true;
          changed = true;
        }
      } else if (!st.names.has(n)) {
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
    this.checkNames(st.names.size);
    if (changed) {
      this.status.subscription(typeUrl, st.wildcard, st.names);
      this.markDirty(kind);
    }
  }

  protected build(kind: ResourceKind, snap: Snapshot) {
    const st = this.types.get(kind);
    if (!st) return undefined;
    const res = desiredResources(snap, kind, st.wildcard, st.names);
    const wanted = new Set(res.map((r) => r.name));
    const toSend = res.filter((r) => st.known.get(r.name) !== r.version);
    const removed: string[] = [];
    for (const n of [...st.known.keys()]) {
      if (wanted.has(n)) continue;
      st.known.delete(n);
      // Gone while still of interest → tell the client; merely unsubscribed → forget silently.
      if (st.wildcard || st.names.has(n)) removed.push(n);
    }
    if (toSend.length === 0 && removed.length === 0 && !st.mustRespond) return undefined;
    st.mustRespond = false;
    for (const r of toSend) st.known.set(r.name, r.version);
    const nonce = this.nextNonce();
    st.nonces.set(nonce, snap.version);
    if (st.nonces.size > MAX_TRACKED_NONCES) {
      const oldest = st.nonces.keys().next().value;
      if (oldest !== undefined) st.nonces.delete(oldest);
    }
    removed.sort();
    const msg: DeltaDiscoveryResponse = {
      systemVersionInfo: snap.version,
      resources: toSend.map((r) => ({ name: r.name, version: r.version, resource: anyOf(r) })),
      typeUrl: st.typeUrl,
      removedResources: removed,
      nonce,
    };
    return { msg, version: snap.version, nonce, count: st.known.size };
  }
}

// ---------------------------------------------------------------------------------------------
// Server

export class AdsServer {
  private readonly streams = new Set<StreamBase>();
  private readonly ctx: Ctx;
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
      maxNames: opts.maxNames ?? 10_000,
      initialBatchMs: opts.initialBatchMs ?? 10,
      onClose: (s) => this.streams.delete(s),
    };
    this.unsubscribe = opts.cache.subscribe((nodeType) => {
      for (const s of this.streams) if (s.nodeType === nodeType) s.onSnapshot();
    });
  }

  private open(call: AnyCall, service: XdsService, kind: StreamKind): void {
    try {
      const s = kind === 'sotw' ? new SotwStream(this.ctx, call, service, kind) : new DeltaStream(this.ctx, call, service, kind);
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
    server.bindAsync(`${host.includes(':') ? `[${host}]` : host}:${port}`, opts.credentials ?? grpc.ServerCredentials.createInsecure(), (err, p) =>
      err ? reject(err) : resolve(p),
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
