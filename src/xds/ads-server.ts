// ADS (SotW + Delta) and SDS over grpc-js, serving pre-encoded snapshot resources.
//
// One stream = one serialized send queue: requests and snapshot changes only mark a resource
// kind "dirty"; a pump builds each response from the *current* state at write time (so pending
// updates coalesce to the latest state per type), in SEND_ORDER (CDS → EDS → LDS → RDS → SDS),
// keeps at most MAX_INFLIGHT_WRITES unflushed responses and waits for 'drain' whenever
// call.write() returns false.
//
// Cost per published snapshot: one diff against the previous snapshot of that node type; a stream
// is marked only for the kinds whose change touches its subscription (Delta streams re-check only
// the touched names). Responses share work across streams: resource lists and the encoded
// `resources` run are computed once per (snapshot, kind, subscription); a stream only encodes its
// own version/type_url/nonce (see "Shared encoding").
import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import protobuf from 'protobufjs';
import { lookupType, kindOfTypeUrl, SEND_ORDER, TYPE_URLS, type ResourceKind } from '../proto/loader.js';
import type { SnapshotCache } from './cache.js';
import {
  NodeStatusRecord,
  withDefaults,
  type NodeStatus,
  type StreamKind,
  type XdsHooks,
  type XdsService,
} from './node-status.js';
import { diffSnapshots, mayResolve, sortedResources, type KindDiff, type SnapshotDiff } from './snapshot.js';
import type { NodeType, Snapshot, VersionedResource } from './types.js';
import { lenFieldSize, stringFieldSize, WireWriter } from '../../proto/wire.js';
import { certUris, type Authenticator, type NodePrincipal, type StreamCredentials } from './node-auth.js';

/** What the transport of `call` proves: verified client certificate, bearer token, peer. */
function streamCredentials(call: AnyCall): StreamCredentials {
  let peer = '';
  try {
    peer = call.getPeer();
  } catch {
    /* ignore */
  }
  let mtls = false;
  let uris: string[] = [];
  try {
    const auth = call.getAuthContext();
    const cert = auth.sslPeerCertificate;
    // grpc-js only exposes a peer certificate that the server's client CA verified.
    if (cert !== undefined && cert !== null && Object.keys(cert).length > 0) {
      mtls = true;
      uris = certUris(cert);
    }
  } catch {
    /* no TLS */
  }
  const header = call.metadata.get('authorization')[0];
  const m = typeof header === 'string' ? /^Bearer\s+(\S+)$/i.exec(header) : null;
  return { peer, mtls, certUris: uris, ...(m?.[1] !== undefined ? { bearer: m[1] } : {}) };
}

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
    serialize: (v) =>
      Buffer.isBuffer(v)
        ? v
        : Buffer.from(
            type()
              .encode(v as object)
              .finish(),
          ),
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
      `/${ADS_SERVICE}/StreamAggregatedResources`,
      `${DISCOVERY}.DiscoveryRequest`,
      `${DISCOVERY}.DiscoveryResponse`,
      true,
      true,
    ),
    DeltaAggregatedResources: method<DeltaDiscoveryRequest, DeltaDiscoveryResponse>(
      `/${ADS_SERVICE}/DeltaAggregatedResources`,
      `${DISCOVERY}.DeltaDiscoveryRequest`,
      `${DISCOVERY}.DeltaDiscoveryResponse`,
      true,
      true,
    ),
  } as unknown as grpc.ServiceDefinition;
}

export function secretDiscoveryServiceDefinition(): grpc.ServiceDefinition {
  return {
    StreamSecrets: method<DiscoveryRequest, DiscoveryResponse>(
      `/${SDS_SERVICE}/StreamSecrets`,
      `${DISCOVERY}.DiscoveryRequest`,
      `${DISCOVERY}.DiscoveryResponse`,
      true,
      true,
    ),
    DeltaSecrets: method<DeltaDiscoveryRequest, DeltaDiscoveryResponse>(
      `/${SDS_SERVICE}/DeltaSecrets`,
      `${DISCOVERY}.DeltaDiscoveryRequest`,
      `${DISCOVERY}.DeltaDiscoveryResponse`,
      true,
      true,
    ),
  } as unknown as grpc.ServiceDefinition;
}

// ---------------------------------------------------------------------------------------------
// Node type detection

/** A string value of node metadata (a google.protobuf.Struct, or a plain object). */
export function metadataString(md: unknown, key: string): string | undefined {
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
  /** Max resource names per request / subscribed per type (default DEFAULT_MAX_NAMES). */
  maxNames?: number;
  /**
   * Who the client of a stream is, from what its transport proves (client certificate, bearer
   * token, peer address); run once per stream before its first request is handled. Default:
   * self-asserted (the node's own metadata is believed).
   */
  authenticate?: Authenticator;
  /**
   * Whether a node may subscribe to a resource name (e.g. a workload certificate of another
   * identity); refused names are ignored as if they did not exist. Default: every name.
   */
  allowName?: (principal: NodePrincipal, node: NodeInfo, kind: ResourceKind, name: string) => boolean;
  /** Batching window after a stream's first request, so types requested together go out in order (default 10 ms). */
  initialBatchMs?: number;
  /** Budget of the shared per-subscription cache on the current snapshot (default 64 MiB, 4,096 entries per node type). */
  sharedEncodingMaxBytes?: number;
  sharedEncodingMaxEntries?: number;
}

/** LDS and CDS are the only kinds with wildcard subscriptions. */
const WILDCARD_KINDS: ReadonlySet<ResourceKind> = new Set(['listener', 'cluster']);
/**
 * Default bound on names per request / per subscribed type: an Envoy in SotW mode subscribes one
 * EDS name per cluster, so the bound must exceed the largest fleet's cluster count (10× the
 * 10,000 descriptors of a large Otoroshi install). It bounds the per-stream subscription state
 * (~100 B per name, so ~10 MB per stream at most); the gRPC message size bounds one request.
 */
export const DEFAULT_MAX_NAMES = 100_000;
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
  shared: SharedResponses;
  logger: Logger;
  hooks: Required<XdsHooks>;
  nodeTypeOf: (node: NodeInfo) => NodeType;
  maxNames: number;
  authenticate: Authenticator;
  allowName: AdsServerOptions['allowName'];
  initialBatchMs: number;
  onClose(s: StreamBase): void;
}

const byName = (a: VersionedResource, b: VersionedResource): number => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);

/**
 * Resources of `kind` wanted by a subscription, sorted by name; names not (yet) existing are
 * omitted. A plain wildcard subscription gets the snapshot's shared sorted list (no copy).
 */
function desiredResources(
  snap: Snapshot,
  kind: ResourceKind,
  wildcard: boolean,
  names: ReadonlySet<string>,
): readonly VersionedResource[] {
  const map = snap.resources[kind];
  if (wildcard) {
    const all = sortedResources(snap, kind);
    let extra: VersionedResource[] | undefined;
    for (const n of names) {
      if (map.has(n)) continue;
      const r = snap.resolve(kind, n);
      if (r) (extra ??= []).push(r);
    }
    return extra ? [...all, ...extra].sort(byName) : all;
  }
  const out: VersionedResource[] = [];
  for (const n of names) {
    const r = map.get(n) ?? snap.resolve(kind, n);
    if (r) out.push(r);
  }
  return out.sort(byName);
}

/** Does a (non-empty) kind diff touch an explicit name subscription? Iterates the smaller side. */
function touches(names: ReadonlySet<string>, d: KindDiff): boolean {
  if (d.size === 0 || names.size === 0) return false;
  if (d.size <= names.size) {
    for (const n of d.changed) if (names.has(n)) return true;
    for (const n of d.removed) if (names.has(n)) return true;
    return false;
  }
  for (const n of names) if (d.changed.has(n) || d.removed.has(n)) return true;
  return false;
}

/** Subscribed names the snapshot's maps do not hold (answered on demand by `resolve`, which a diff does not cover). */
function unresolvedNames(snap: Snapshot, kind: ResourceKind, names: ReadonlySet<string>): string[] {
  if (names.size === 0 || !mayResolve(snap)) return [];
  const map = snap.resources[kind];
  const out: string[] = [];
  for (const n of names) if (!map.has(n)) out.push(n);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Shared encoding.
//
// A response's `resources` (field 2, repeated) is the bulk of it and the same for every stream
// with the same subscription on the same snapshot: it is encoded once (per resource, then per
// run) and each stream's message is that byte run concatenated with its own small fields
// (version, type_url, nonce, removed names). Protobuf parsers accept fields in any order and
// repeated fields split anywhere, so clients decode exactly the message protobufjs would encode
// (for SotW the bytes are even identical: fields are written in field-number order).

/** Length of google.protobuf.Any{type_url = 1, value = 2} holding resource `r`. */
function anyLength(r: VersionedResource): number {
  return stringFieldSize(1, TYPE_URLS[r.kind]) + lenFieldSize(2, r.bytes.length);
}

/** Per resource: `resources` entry of a DiscoveryResponse (field 2 = Any{type_url, value}). */
const SOTW_ENTRY = new WeakMap<VersionedResource, Buffer>();
function sotwEntry(r: VersionedResource): Buffer {
  let b = SOTW_ENTRY.get(r);
  if (!b) {
    const any = anyLength(r);
    const w = new WireWriter(lenFieldSize(2, any));
    b = w.message(2, any).string(1, TYPE_URLS[r.kind]).bytes(2, r.bytes).finish();
    SOTW_ENTRY.set(r, b);
  }
  return b;
}

/** Per resource: `resources` entry of a DeltaDiscoveryResponse (field 2 = Resource{name=3, version=1, resource=2}). */
const DELTA_ENTRY = new WeakMap<VersionedResource, Buffer>();
function deltaEntry(r: VersionedResource): Buffer {
  let b = DELTA_ENTRY.get(r);
  if (!b) {
    const any = anyLength(r);
    const res = stringFieldSize(3, r.name) + stringFieldSize(1, r.version) + lenFieldSize(2, any);
    const w = new WireWriter(lenFieldSize(2, res)).message(2, res).string(3, r.name).string(1, r.version);
    b = w.message(2, any).string(1, TYPE_URLS[r.kind]).bytes(2, r.bytes).finish();
    DELTA_ENTRY.set(r, b);
  }
  return b;
}

function concatEntries(list: readonly VersionedResource[], entry: (r: VersionedResource) => Buffer): Buffer {
  if (list.length === 1) return entry(list[0] as VersionedResource);
  const parts = new Array<Buffer>(list.length);
  let len = 0;
  for (let i = 0; i < list.length; i++) {
    const b = entry(list[i] as VersionedResource);
    parts[i] = b;
    len += b.length;
  }
  return Buffer.concat(parts, len);
}

interface SharedEntry {
  list?: readonly VersionedResource[];
  run?: Buffer;
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

  private entry(snap: Snapshot, ns: string, key: string): SharedEntry | undefined {
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
    const t = this.perType.get(snap.nodeType);
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

/** DiscoveryResponse = version_info(1) + resources(2, shared run) + type_url(4) + nonce(5). */
function sotwMessage(version: string, run: Buffer, typeUrl: string, nonce: string): Buffer {
  const size = stringFieldSize(1, version) + run.length + stringFieldSize(4, typeUrl) + stringFieldSize(5, nonce);
  return new WireWriter(size).string(1, version).raw(run).string(4, typeUrl).string(5, nonce).finish();
}

/** DeltaDiscoveryResponse = system_version_info(1) + resources(2, shared run) + type_url(4) + nonce(5) + removed_resources(6). */
function deltaMessage(
  version: string,
  run: Buffer | undefined,
  typeUrl: string,
  nonce: string,
  removed: readonly string[],
): Buffer {
  let size = stringFieldSize(1, version) + (run?.length ?? 0) + stringFieldSize(4, typeUrl) + stringFieldSize(5, nonce);
  for (const n of removed) size += stringFieldSize(6, n);
  const w = new WireWriter(size).string(1, version);
  if (run) w.raw(run);
  w.string(4, typeUrl).string(5, nonce);
  for (const n of removed) w.string(6, n);
  return w.finish();
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
    this.status.pendingProbe = () => this.dirty.size > 0 || this.inflight > 0;
    this.log = ctx.logger.child({ stream: this.id, service, kind });
    // Requests wait for the authentication step (in order: every callback chains on one promise).
    const authenticated = Promise.resolve()
      .then(() => ctx.authenticate(streamCredentials(call)))
      .then(
        (p) => {
          this.principal = p;
        },
        () => {
          this.principal = { kind: 'anonymous', reason: 'authentication failed' };
        },
      );
    call.on('data', (req: unknown) => void authenticated.then(() => this.guard(() => this.onRequest(req))));
    call.on(
      'end',
      () =>
        void authenticated.then(() =>
          this.guard(() => {
            this.close();
            call.end();
          }),
        ),
    );
    call.on('cancelled', () => this.close());
    call.on('error', () => this.close());
    call.on('close', () => this.close());
    ctx.hooks.onStreamOpen(kind, service);
    this.log.debug({ peer }, 'xDS stream opened');
  }

  protected abstract handle(req: unknown): void;
  /** Builds the (encoded) response for `kind` from current state, or undefined if nothing is to be sent. */
  protected abstract build(
    kind: ResourceKind,
    snap: Snapshot,
  ): { buf: Buffer; version: string; nonce: string; count: number } | undefined;
  protected abstract subscribedKinds(): Iterable<ResourceKind>;
  /**
   * Whether a published change (`d`, this kind's part of the snapshot diff) can alter what this
   * stream must receive for `kind`; may record what to re-check (Delta).
   */
  protected abstract affectedBy(kind: ResourceKind, snap: Snapshot, d: KindDiff): boolean;

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
      this.node = n;
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

  /** The node of the stream's first request, and who its transport proved it is (for `allowName`). */
  protected node: NodeInfo = {};
  protected principal: NodePrincipal = { kind: 'anonymous', reason: 'not authenticated yet' };
  private refusedLogs = 0;

  /** Whether this stream's node may have `name`; a refusal is logged (a few times) and counted. */
  protected allowed(kind: ResourceKind, name: string): boolean {
    const allow = this.ctx.allowName;
    if (allow === undefined) return true;
    let ok = false;
    try {
      ok = allow(this.principal, this.node, kind, name);
    } catch {
      ok = false;
    }
    if (!ok) {
      this.ctx.hooks.onBadRequest('name_not_allowed');
      if (this.refusedLogs++ < MAX_BAD_REQUEST_LOGS)
        this.log.warn({ kind, name: name.slice(0, 200) }, 'xDS resource refused to this node');
    }
    return ok;
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

  /**
   * A new snapshot was published for this stream's node type. With the diff from the previous
   * one, only the kinds whose change touches this stream's subscription are marked; without it
   * (first snapshot), every subscribed kind is.
   */
  onSnapshot(snap: Snapshot, diff: SnapshotDiff | undefined): void {
    if (this.closed) return;
    for (const k of this.subscribedKinds()) if (!diff || this.affectedBy(k, snap, diff[k])) this.markDirty(k);
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
      const buf = out.buf;
      this.inflight += 1;
      const ok = this.call.write(buf, () => {
        // Flushed to HTTP/2 (which applies flow control): the next response may go.
        this.inflight -= 1;
        if (!this.closed && this.dirty.size > 0) this.guard(() => this.pump());
      });
      const typeUrl = TYPE_URLS[kind];
      this.status.sent(typeUrl, out.version, out.nonce, out.count);
      this.ctx.hooks.onPush(typeUrl, buf.length, performance.now() - since);
      this.log.debug(
        { typeUrl, version: out.version, nonce: out.nonce, resources: out.count, bytes: buf.length },
        'xDS response sent',
      );
      if (!ok) {
        this.blocked = true;
        this.call.once('drain', () => {
          this.blocked = false;
          this.guard(() => this.pump());
        });
      }
    }
  }
}

// --- State of the World -----------------------------------------------------------------------

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

function subscriptionKey(wildcard: boolean, names: ReadonlySet<string>): string {
  return intern(JSON.stringify([wildcard, [...names].sort()]));
}

const SOTW_NS = Object.fromEntries(SEND_ORDER.map((k) => [k, `s:${k}`])) as Record<ResourceKind, string>;
const DELTA_NS = Object.fromEntries(SEND_ORDER.map((k) => [k, `d:${k}`])) as Record<ResourceKind, string>;

class SotwStream extends StreamBase {
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
    const typeUrl = st.typeUrl;
    const err = req.errorDetail;
    if (err && (err.code || err.message)) {
      // NACK: keep last-good; the rejected content counts as sent, so it is not resent until it changes.
      const message = String(err.message ?? '');
      this.status.nacked(typeUrl, st.sent.version, nonce, message);
      this.ctx.hooks.onNack(typeUrl, message);
      this.log.warn({ typeUrl, version: st.sent.version, nonce, error: message.slice(0, 2000) }, 'xDS NACK');
    } else if (req.versionInfo === st.sent.version) {
      this.status.acked(typeUrl, st.sent.version);
      this.ctx.hooks.onAck(typeUrl);
    }
  }

  protected build(kind: ResourceKind, snap: Snapshot) {
    const st = this.types.get(kind);
    if (!st) return undefined;
    const wildcard = st.wildcard && WILDCARD_KINDS.has(kind);
    // Shared by every stream with the same subscription on this snapshot (a plain wildcard gets the snapshot's sorted list).
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
  /** Re-evaluate every resource at the next build (new subscription, or a large change). */
  full: boolean;
  /** Otherwise: the names a published change touched, to re-check at the next build. */
  pending: Set<string>;
}

/** A Delta stream re-checks only the changed names, unless a change touches more than this many. */
const DELTA_MAX_PENDING = 256;

class DeltaStream extends StreamBase {
  private readonly types = new Map<ResourceKind, DeltaState>();

  protected subscribedKinds(): Iterable<ResourceKind> {
    return this.types.keys();
  }

  protected affectedBy(kind: ResourceKind, snap: Snapshot, d: KindDiff): boolean {
    const st = this.types.get(kind);
    if (!st) return false;
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
    const kind = this.kindOf(req.typeUrl ?? '');
    if (!kind) return;
    const sub = Array.isArray(req.resourceNamesSubscribe) ? req.resourceNamesSubscribe : [];
    const unsub = Array.isArray(req.resourceNamesUnsubscribe) ? req.resourceNamesUnsubscribe : [];
    const initial =
      req.initialResourceVersions && typeof req.initialResourceVersions === 'object' ? req.initialResourceVersions : {};
    this.checkNames(sub.length + unsub.length);
    const typeUrl = TYPE_URLS[kind];
    let st = this.types.get(kind);
    let changed = false;
    if (!st) {
      st = {
        kind,
        typeUrl,
        wildcard: false,
        names: new Set(),
        known: new Map(),
        mustRespond: false,
        nonces: new Map(),
        full: true,
        pending: new Set(),
      };
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
          this.ctx.hooks.onNack(typeUrl, message);
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
      } else if (!st.names.has(n) && this.allowed(kind, n)) {
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
      st.full = true;
      this.status.subscription(typeUrl, st.wildcard, st.names);
      this.markDirty(kind);
    }
  }

  protected build(kind: ResourceKind, snap: Snapshot) {
    const st = this.types.get(kind);
    if (!st) return undefined;
    let toSend: VersionedResource[];
    const removed: string[] = [];
    if (st.full) {
      // Every resource of interest against what the client holds.
      st.full = false;
      st.pending.clear();
      const res = desiredResources(snap, kind, st.wildcard, st.names);
      const wanted = new Set(res.map((r) => r.name));
      toSend = res.filter((r) => st.known.get(r.name) !== r.version);
      for (const n of [...st.known.keys()]) {
        if (wanted.has(n)) continue;
        st.known.delete(n);
        // Gone while still of interest → tell the client; merely unsubscribed → forget silently.
        if (st.wildcard || st.names.has(n)) removed.push(n);
      }
    } else {
      // Only the names the published changes touched (the rest is unchanged by construction).
      toSend = [];
      const map = snap.resources[kind];
      for (const n of st.pending) {
        const named = st.names.has(n);
        const r = st.wildcard || named ? (map.get(n) ?? (named ? snap.resolve(kind, n) : undefined)) : undefined;
        if (r) {
          if (st.known.get(n) !== r.version) toSend.push(r);
        } else if (st.known.delete(n) && (st.wildcard || named)) {
          removed.push(n);
        }
      }
      st.pending.clear();
      toSend.sort(byName);
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
    const run =
      toSend.length === 0
        ? undefined
        : this.ctx.shared.run(snap, DELTA_NS[kind], JSON.stringify(toSend.map((r) => r.name)), () =>
            concatEntries(toSend, deltaEntry),
          );
    const buf = deltaMessage(snap.version, run, st.typeUrl, nonce, removed);
    return { buf, version: snap.version, nonce, count: st.known.size };
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
      maxNames: opts.maxNames ?? DEFAULT_MAX_NAMES,
      authenticate: opts.authenticate ?? (() => ({ kind: 'self-asserted' })),
      allowName: opts.allowName,
      shared: new SharedResponses(
        opts.sharedEncodingMaxBytes ?? 64 * 1024 * 1024,
        opts.sharedEncodingMaxEntries ?? 4096,
      ),
      initialBatchMs: opts.initialBatchMs ?? 10,
      onClose: (s) => this.streams.delete(s),
    };
    // The previous snapshot per node type, to diff each publication once for all streams.
    const last = new Map<NodeType, Snapshot>();
    for (const t of ['envoy', 'grpc'] as const) {
      const s = opts.cache.get(t);
      if (s) last.set(t, s);
    }
    this.unsubscribe = opts.cache.subscribe((nodeType, snap) => {
      const prev = last.get(nodeType);
      last.set(nodeType, snap);
      const diff = prev ? diffSnapshots(prev, snap) : undefined;
      for (const s of this.streams) if (s.nodeType === nodeType) s.guard(() => s.onSnapshot(snap, diff));
    });
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
