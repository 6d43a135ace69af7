// The part of an xDS stream shared by SotW and Delta: node identity on the first request,
// authentication before any request is handled, name bounds and authorization, and the send pump.
//
// One stream = one serialized send queue: requests and snapshot changes only mark a resource
// kind "dirty"; a pump builds each response from the *current* state at write time (so pending
// updates coalesce to the latest state per type), in SEND_ORDER (CDS → EDS → LDS → RDS → SDS),
// keeps at most MAX_INFLIGHT_WRITES unflushed responses and waits for 'drain' whenever
// call.write() returns false.
import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { kindOfTypeUrl, SEND_ORDER, TYPE_URLS, type ResourceKind } from '../../../proto/loader.js';
import type { SnapshotCache } from '../cache.js';
import { NodeStatusRecord, type StreamKind, type XdsHooks, type XdsService } from '../node-status.js';
import type { KindDiff, SnapshotDiff } from '../snapshot.js';
import type { NodeType, Snapshot } from '../types.js';
import type { Authenticator, NodePrincipal } from '../node-auth.js';
import type { AnyCall, NodeInfo, RpcStatus } from './messages.js';
import { streamCredentials } from './node.js';
import type { SharedResponses } from './shared.js';
import { VHOST_TYPE_URL } from './vhds.js';

/** What a stream sends: the resource kinds, and VHDS virtual hosts (Delta only) right after RDS. */
export type PumpKind = ResourceKind | 'vhost';
const PUMP_ORDER: readonly PumpKind[] = [...SEND_ORDER.slice(0, SEND_ORDER.indexOf('route') + 1), 'vhost', 'secret'];
const pumpTypeUrl = (k: PumpKind): string => (k === 'vhost' ? VHOST_TYPE_URL : TYPE_URLS[k]);

/**
 * Responses written but not yet flushed, per stream. Further updates wait (coalesced: each
 * response is built from the latest state when it is its turn), so a slow client holds at most
 * this many encoded responses plus the per-type state.
 */
const MAX_INFLIGHT_WRITES = 2;
export const MAX_BAD_REQUEST_LOGS = 10;

/** A request the client got wrong: the stream ends with `code`. */
export class RequestError extends Error {
  constructor(
    readonly code: grpc.status,
    message: string,
  ) {
    super(message);
  }
}

/**
 * Whether a node may subscribe to a resource name (e.g. a workload certificate of another
 * identity); refused names are ignored as if they did not exist.
 */
export type AllowName = (principal: NodePrincipal, node: NodeInfo, kind: ResourceKind, name: string) => boolean;

/** What every stream of a server shares. */
export interface StreamContext {
  cache: SnapshotCache;
  shared: SharedResponses;
  logger: Logger;
  hooks: Required<XdsHooks>;
  nodeTypeOf: (node: NodeInfo) => NodeType;
  snapshotKeyOf: (node: NodeInfo, principal: NodePrincipal, nodeType: NodeType) => string;
  maxNames: number;
  authenticate: Authenticator;
  allowName: AllowName | undefined;
  initialBatchMs: number;
  /** The stream's snapshot key is known (its first request): it receives that key's publications. */
  onKeyed(s: StreamBase): void;
  onClose(s: StreamBase): void;
}

/** One built response: its bytes and what the node status records of it. */
export interface BuiltResponse {
  buf: Buffer;
  version: string;
  nonce: string;
  count: number;
}

let nextStreamId = 1;

export abstract class StreamBase {
  readonly id = nextStreamId++;
  readonly status: NodeStatusRecord;
  nodeType: NodeType | undefined;
  /** The snapshot cache key this stream reads (its node type, or a sidecar key). */
  snapshotKey: string | undefined;
  closed = false;
  protected log: Logger;
  private nonceSeq = 0;
  private readonly dirty = new Map<PumpKind, number>(); // kind → time first marked (ms)
  private pumpScheduled = false;
  private firstPumpDone = false;
  private inflight = 0;
  private blocked = false;
  private badRequestLogs = 0;

  constructor(
    protected readonly ctx: StreamContext,
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
  protected abstract build(kind: PumpKind, snap: Snapshot): BuiltResponse | undefined;
  protected abstract subscribedKinds(): Iterable<PumpKind>;
  /**
   * Whether a published change (`d`, this kind's part of the snapshot diff) can alter what this
   * stream must receive for `kind`; may record what to re-check (Delta).
   */
  protected abstract affectedBy(kind: PumpKind, snap: Snapshot, d: KindDiff | undefined): boolean;

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
      this.snapshotKey = this.ctx.snapshotKeyOf(n, this.principal, this.nodeType);
      this.ctx.onKeyed(this);
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

  /**
   * Records a NACK of the response `nonce` (which carried `version`) when the request has an error
   * detail; returns whether it was one. The last-good configuration stays in place.
   */
  protected nacked(typeUrl: string, version: string, nonce: string, err: RpcStatus | null | undefined): boolean {
    if (!err || !(err.code || err.message)) return false;
    const message = String(err.message ?? '');
    this.status.nacked(typeUrl, version, nonce, message);
    this.ctx.hooks.onNack(typeUrl, message);
    this.log.warn({ typeUrl, version, nonce, error: message.slice(0, 2000) }, 'xDS NACK');
    return true;
  }

  protected acked(typeUrl: string, version: string): void {
    this.status.acked(typeUrl, version);
    this.ctx.hooks.onAck(typeUrl);
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
    return this.snapshotKey === undefined ? undefined : this.ctx.cache.get(this.snapshotKey);
  }

  /**
   * Marks `kind` for (re)evaluation and schedules the pump. The first request of a stream opens
   * a short batching window (`initialBatchMs`) so that types requested together on connect are
   * answered in SEND_ORDER; afterwards the pump runs on the next turn of the event loop.
   */
  markDirty(kind: PumpKind): void {
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
    for (const k of this.subscribedKinds())
      if (!diff || this.affectedBy(k, snap, k === 'vhost' ? undefined : diff[k])) this.markDirty(k);
  }

  private pump(): void {
    while (!this.closed && !this.blocked && this.inflight < MAX_INFLIGHT_WRITES && this.dirty.size > 0) {
      const kind = PUMP_ORDER.find((k) => this.dirty.has(k));
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
      const typeUrl = pumpTypeUrl(kind);
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
