// A raw grpc-js xDS client with the server's own protobufjs codecs. It speaks like Envoy
// (SotW: wildcard LDS/CDS, then RDS/EDS by name; ACK = version + nonce, NACK = last good
// version + rejected nonce + error_detail) and like a Delta client (subscribe/unsubscribe).
import * as grpc from '@grpc/grpc-js';
import { decodeToObject, lookupType, TYPE_URLS, type ProtoObject } from '../../proto/loader.js';
import {
  aggregatedDiscoveryServiceDefinition,
  secretDiscoveryServiceDefinition,
  type AnyMessage,
  type DeltaDiscoveryResponse,
  type DiscoveryResponse,
} from '../../src/xds/server/messages.js';

export { TYPE_URLS };

export interface ClientNode {
  id?: string;
  cluster?: string;
  userAgentName?: string;
  userAgentVersion?: string;
  /** Plain string metadata (encoded as a google.protobuf.Struct). */
  metadata?: Record<string, string>;
}

export interface ClientOptions {
  node?: ClientNode;
  mode?: 'sotw' | 'delta';
  service?: 'ads' | 'sds';
  /** Channel credentials (default plaintext). */
  credentials?: grpc.ChannelCredentials;
  /** Sent as `authorization: Bearer <token>` call metadata (the gateway token). */
  bearer?: string;
}

type Msg = DiscoveryResponse | DeltaDiscoveryResponse;

const ctorCache = new Map<string, grpc.ServiceClientConstructor>();
function clientCtor(service: 'ads' | 'sds'): grpc.ServiceClientConstructor {
  let c = ctorCache.get(service);
  if (!c) {
    c = grpc.makeGenericClientConstructor(
      service === 'ads' ? aggregatedDiscoveryServiceDefinition() : secretDiscoveryServiceDefinition(),
      service,
    );
    ctorCache.set(service, c);
  }
  return c;
}

function encodeNode(n: ClientNode): Record<string, unknown> {
  const fields: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(n.metadata ?? {})) fields[k] = { stringValue: v };
  return {
    id: n.id ?? 'test-node',
    cluster: n.cluster ?? 'test-cluster',
    userAgentName: n.userAgentName ?? 'envoy',
    userAgentVersion: n.userAgentVersion ?? '1.31.0',
    metadata: { fields },
    locality: {},
  };
}

/** Name of a resource carried in an Any (decoded with the loader). */
export function anyName(a: AnyMessage): string {
  const o = decodeAny(a);
  const n = o['name'] ?? o['clusterName'];
  return typeof n === 'string' ? n : '';
}

export function decodeAny(a: AnyMessage): ProtoObject {
  return decodeToObject(a.type_url, a.value);
}

export function responseNames(r: DiscoveryResponse): string[] {
  return r.resources.map(anyName);
}

export class AdsClient {
  readonly mode: 'sotw' | 'delta';
  private readonly client: grpc.Client;
  private readonly call: grpc.ClientDuplexStream<object, Msg>;
  private readonly queue: Msg[] = [];
  private waiters: { resolve: (m: Msg) => void; reject: (e: Error) => void }[] = [];
  private readonly node: Record<string, unknown>;
  private sentNode = false;
  /** Final status once the stream ended. */
  status: grpc.StatusObject | undefined;
  error: Error | undefined;
  /** Every response ever received, in order (for protocol assertions). */
  readonly received: Msg[] = [];
  /** SotW: last accepted version per type URL (what an ACK/NACK carries). */
  readonly accepted = new Map<string, string>();

  constructor(port: number, opts: ClientOptions = {}) {
    this.mode = opts.mode ?? 'sotw';
    const service = opts.service ?? 'ads';
    const Ctor = clientCtor(service);
    this.client = new Ctor(`127.0.0.1:${port}`, opts.credentials ?? grpc.credentials.createInsecure());
    this.node = encodeNode(opts.node ?? {});
    const methodName =
      service === 'ads'
        ? this.mode === 'sotw'
          ? 'StreamAggregatedResources'
          : 'DeltaAggregatedResources'
        : this.mode === 'sotw'
          ? 'StreamSecrets'
          : 'DeltaSecrets';
    const fn = (this.client as unknown as Record<string, (md?: grpc.Metadata) => grpc.ClientDuplexStream<object, Msg>>)[
      methodName
    ];
    if (!fn) throw new Error(`no method ${methodName}`);
    const md = new grpc.Metadata();
    if (opts.bearer !== undefined) md.set('authorization', `Bearer ${opts.bearer}`);
    this.call = fn.call(this.client, md);
    this.call.on('data', (m: Msg) => {
      this.received.push(m);
      const w = this.waiters.shift();
      if (w) w.resolve(m);
      else this.queue.push(m);
    });
    this.call.on('status', (s: grpc.StatusObject) => {
      this.status = s;
    });
    this.call.on('error', (e: Error) => {
      this.error = e;
      const ws = this.waiters;
      this.waiters = [];
      for (const w of ws) w.reject(e);
    });
  }

  /** Sends a raw request object (protobufjs plain form); the node goes on the first one. */
  send(req: Record<string, unknown>): void {
    const r = this.sentNode ? req : { node: this.node, ...req };
    this.sentNode = true;
    this.call.write(r);
  }

  /** Next response (waits up to `timeoutMs`). */
  next(timeoutMs = 2000): Promise<Msg> {
    const m = this.queue.shift();
    if (m) return Promise.resolve(m);
    if (this.error) return Promise.reject(this.error);
    return new Promise<Msg>((resolve, reject) => {
      const w = {
        resolve: (x: Msg) => {
          clearTimeout(t);
          resolve(x);
        },
        reject: (e: Error) => {
          clearTimeout(t);
          reject(e);
        },
      };
      const t = setTimeout(() => {
        this.waiters = this.waiters.filter((x) => x !== w);
        reject(new Error(`no xDS response within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiters.push(w);
    });
  }

  async nextSotw(timeoutMs?: number): Promise<DiscoveryResponse> {
    return (await this.next(timeoutMs)) as DiscoveryResponse;
  }

  async nextDelta(timeoutMs?: number): Promise<DeltaDiscoveryResponse> {
    return (await this.next(timeoutMs)) as DeltaDiscoveryResponse;
  }

  /** Resolves if nothing arrives within `ms`; rejects with the unexpected response otherwise. */
  async expectNone(ms = 200): Promise<void> {
    const got = await this.next(ms).then(
      (m) => m,
      () => undefined,
    );
    if (got)
      throw new Error(`unexpected xDS response: ${got.typeUrl} nonce ${got.nonce} (${got.resources.length} resources)`);
  }

  /** Resolves when the stream ends (with its status). */
  ended(timeoutMs = 2000): Promise<grpc.StatusObject> {
    if (this.status) return Promise.resolve(this.status);
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('stream did not end')), timeoutMs);
      this.call.once('status', (s: grpc.StatusObject) => {
        clearTimeout(t);
        resolve(s);
      });
    });
  }

  // --- SotW ----------------------------------------------------------------------------------

  /** A SotW request: names (empty = wildcard for LDS/CDS), carrying the last accepted version. */
  request(typeUrl: string, names: string[] = [], nonce = '', version?: string): void {
    this.send({
      typeUrl,
      resourceNames: names,
      responseNonce: nonce,
      versionInfo: version ?? this.accepted.get(typeUrl) ?? '',
    });
  }

  /** ACK: the response's version and nonce (names unchanged unless given). */
  ack(r: DiscoveryResponse, names: string[] = []): void {
    this.accepted.set(r.typeUrl, r.versionInfo);
    this.send({ typeUrl: r.typeUrl, resourceNames: names, responseNonce: r.nonce, versionInfo: r.versionInfo });
  }

  /** NACK: the last accepted version, the rejected nonce and an error_detail. */
  nack(r: DiscoveryResponse, message: string, names: string[] = []): void {
    this.send({
      typeUrl: r.typeUrl,
      resourceNames: names,
      responseNonce: r.nonce,
      versionInfo: this.accepted.get(r.typeUrl) ?? '',
      errorDetail: { code: 3, message },
    });
  }

  /**
   * Behaves like Envoy at startup: wildcard CDS and LDS, then EDS for the EDS clusters and RDS
   * for the routes the listeners reference, ACKing everything; returns the last response per type.
   */
  async syncLikeEnvoy(timeoutMs = 2000): Promise<Map<string, DiscoveryResponse>> {
    const last = new Map<string, DiscoveryResponse>();
    this.request(TYPE_URLS.cluster);
    this.request(TYPE_URLS.listener);
    const want = new Set<string>([TYPE_URLS.cluster, TYPE_URLS.listener]);
    while ([...want].some((t) => !last.has(t))) {
      const r = await this.nextSotw(timeoutMs);
      last.set(r.typeUrl, r);
      if (r.typeUrl === TYPE_URLS.cluster) {
        this.ack(r);
        const eds = r.resources.map(decodeAny).filter((c) => c['type'] === 'EDS' || c['edsClusterConfig']);
        const names = eds.map((c) =>
          String((c['edsClusterConfig'] as ProtoObject | undefined)?.['serviceName'] ?? c['name']),
        );
        if (names.length > 0 && !want.has(TYPE_URLS.endpoint)) {
          want.add(TYPE_URLS.endpoint);
          this.request(TYPE_URLS.endpoint, names);
        }
      } else if (r.typeUrl === TYPE_URLS.listener) {
        this.ack(r);
        const routes = r.resources.flatMap((a) => routeNamesOf(decodeAny(a)));
        if (routes.length > 0 && !want.has(TYPE_URLS.route)) {
          want.add(TYPE_URLS.route);
          this.request(TYPE_URLS.route, routes);
        }
      } else {
        this.ack(r, r.resources.map(anyName));
      }
    }
    return last;
  }

  // --- Delta ---------------------------------------------------------------------------------

  subscribe(typeUrl: string, names: string[], initialResourceVersions?: Record<string, string>): void {
    this.send({
      typeUrl,
      resourceNamesSubscribe: names,
      ...(initialResourceVersions ? { initialResourceVersions } : {}),
    });
  }

  unsubscribe(typeUrl: string, names: string[]): void {
    this.send({ typeUrl, resourceNamesUnsubscribe: names });
  }

  ackDelta(r: DeltaDiscoveryResponse): void {
    this.send({ typeUrl: r.typeUrl, responseNonce: r.nonce });
  }

  nackDelta(r: DeltaDiscoveryResponse, message: string): void {
    this.send({ typeUrl: r.typeUrl, responseNonce: r.nonce, errorDetail: { code: 3, message } });
  }

  /** Stops reading responses (a slow client: HTTP/2 flow control then backs up the server). */
  pause(): void {
    this.call.pause();
  }

  resume(): void {
    this.call.resume();
  }

  close(): void {
    try {
      this.call.cancel();
    } catch {
      /* ignore */
    }
    this.client.close();
  }
}

function routeNamesOf(listener: ProtoObject): string[] {
  const out: string[] = [];
  const walk = (v: unknown): void => {
    if (Array.isArray(v)) v.forEach(walk);
    else if (v && typeof v === 'object') {
      const o = v as ProtoObject;
      const rds = o['rds'] as ProtoObject | undefined;
      if (rds && typeof rds['routeConfigName'] === 'string') out.push(rds['routeConfigName']);
      Object.values(o).forEach(walk);
    }
  };
  walk(listener);
  return [...new Set(out)].sort();
}

/** Asserts protocol invariants over every response a client received; returns an error list. */
export function protocolViolations(received: readonly Msg[]): string[] {
  const problems: string[] = [];
  let lastNonce = 0;
  for (const m of received) {
    const n = Number(m.nonce);
    if (!(n > lastNonce)) problems.push(`nonce ${m.nonce} not > ${lastNonce}`);
    lastNonce = Number.isFinite(n) ? n : lastNonce;
    const version = 'versionInfo' in m ? m.versionInfo : (m as DeltaDiscoveryResponse).systemVersionInfo;
    if (!version) problems.push(`empty version on ${m.typeUrl} nonce ${m.nonce}`);
    for (const r of m.resources) {
      const a = ('type_url' in r ? r : (r as { resource?: AnyMessage }).resource) as AnyMessage | undefined;
      if (a && a.type_url !== m.typeUrl) problems.push(`resource type ${a.type_url} in a ${m.typeUrl} response`);
    }
  }
  return problems;
}

export { lookupType };
