// Child process: N lightweight ADS clients (raw grpc-js, protobufjs codecs) over C channels.
//   node push-client.js <port> <streams> <channels> <mode: sotw|delta|floor> <firstId> [envoy|grpc <hosts> <spread>
// <hotHost>]
// envoy: Envoy-like (wildcard CDS + LDS, then EDS/RDS by name). grpc: like grpc-js-xds, explicit
// names only: listener `svc-K.bench.local` (K = id mod hosts for ids < spread, else hotHost), then
// the route configuration its HCM names, then the clusters its virtual host's routes name, then EDS.
// IPC in:  {cmd:'arm', expectType} → from now on, record responses as "the change" (resets the change counters);
//                                    a stream has the change once it received a response of expectType
//          {cmd:'expect', diff}     → (after the server's change) which names changed per kind: only the
//                                    streams holding one of them are "affected" and awaited (grpc)
//          {cmd:'report'} → send per-stream results
//          {cmd:'exit'}
// IPC out: {type:'synced', ...} once every stream holds the full config (floor: once every stream is open)
//          {type:'changed'}     once every stream has received the change (a route response / a floor payload)
//          {type:'report', streams:[...]}
import * as grpc from '@grpc/grpc-js';
import type protobuf from 'protobufjs';
import { decodeToObject, lookupType, TYPE_URLS, type ProtoObject } from '../proto/loader.js';
import { sharedNow } from './gen.js';

const [portArg, streamsArg, channelsArg, modeArg, firstIdArg] = process.argv.slice(2);
const port = Number(portArg);
const nStreams = Number(streamsArg);
const nChannels = Math.max(1, Math.min(Number(channelsArg), nStreams));
const mode = modeArg as 'sotw' | 'delta' | 'floor';
const firstId = Number(firstIdArg ?? '0');
const nodeKind = (process.argv[7] ?? 'envoy') as 'envoy' | 'grpc';
const HOSTS = Number(process.argv[8] ?? '1000');
const SPREAD = Number(process.argv[9] ?? '1000');
const HOT_HOST = Number(process.argv[10] ?? '1');

const DISCOVERY = 'envoy.service.discovery.v3';
const ADS = `/${DISCOVERY}.AggregatedDiscoveryService`;
export const FLOOR_METHOD = '/bench.Floor/Stream';

interface Received<T> {
  t: number;
  len: number;
  msg: T;
}

function codecs(
  reqType: string,
  resType: string,
): { ser: (v: object) => Buffer; de: (b: Buffer) => Received<unknown> } {
  const rq: protobuf.Type = lookupType(reqType);
  const rs: protobuf.Type = lookupType(resType);
  return {
    ser: (v) => Buffer.from(rq.encode(rq.fromObject(v)).finish()),
    de: (b) => {
      const t = sharedNow();
      return { t, len: b.length, msg: rs.decode(b) };
    },
  };
}

/** What one stream reports to the orchestrator (bench/run.ts). */
export interface StreamResult {
  id: number;
  syncedAt: number;
  /** Bytes of the first response of each type (the full config). */
  fullBytes: number;
  /** Bytes of every response before arm. */
  preArmBytes: number;
  preArmMsgs: number;
  /** Receipt time of the response carrying the change (route type; floor: the payload). */
  changeAt: number;
  /** Bytes and count of every response after arm. */
  changeBytes: number;
  changeMsgs: number;
  changeTypes: Record<string, number>;
  /** grpc: the subscribed host and names per type; whether the last change touched them (envoy: always). */
  host?: string;
  names?: Record<string, string[]>;
  affected: boolean;
  error?: string;
}

const results: StreamResult[] = [];
let armed = false;
let expectType: string = TYPE_URLS.route;
/** grpc: false until the server's diff said which streams the change touches. */
let affectedKnown = false;
const resetChange = (r: StreamResult): void => {
  r.changeAt = 0;
  r.changeBytes = 0;
  r.changeMsgs = 0;
  r.changeTypes = {};
  r.affected = true;
};
let syncedCount = 0;
let syncedSent = false;
let changedSent = false;

function send(m: unknown): void {
  process.send?.(m);
}
function checkSynced(): void {
  if (!syncedSent && syncedCount === nStreams) {
    syncedSent = true;
    send({ type: 'synced' });
  }
}
function checkChanged(): void {
  if (!changedSent && (affectedKnown || nodeKind === 'envoy') && results.every((r) => !r.affected || r.changeAt > 0)) {
    changedSent = true;
    send({ type: 'changed' });
  }
}

// Names to request after the first CDS/LDS, computed once per (type, version) per process.
const namesCache = new Map<string, string[]>();
function routeNamesOf(obj: unknown, out: Set<string>): void {
  if (Array.isArray(obj)) obj.forEach((x) => routeNamesOf(x, out));
  else if (obj && typeof obj === 'object') {
    const o = obj as ProtoObject;
    const rds = o['rds'] as ProtoObject | undefined;
    if (rds && typeof rds['routeConfigName'] === 'string') out.add(rds['routeConfigName']);
    for (const v of Object.values(o)) routeNamesOf(v, out);
  }
}
function dependentNames(
  typeUrl: string,
  version: string,
  anys: Array<{ type_url: string; value: Uint8Array }>,
): string[] {
  const key = `${typeUrl}|${version}`;
  let names = namesCache.get(key);
  if (names) return names;
  const out = new Set<string>();
  for (const a of anys) {
    const o = decodeToObject(a.type_url, a.value);
    if (typeUrl === TYPE_URLS.cluster) {
      const eds = o['edsClusterConfig'] as ProtoObject | undefined;
      if (o['type'] === 'EDS' || eds) out.add(String(eds?.['serviceName'] || o['name']));
    } else routeNamesOf(o, out);
  }
  names = [...out].sort();
  namesCache.set(key, names);
  return names;
}

const node = (id: number): object => ({
  id: `bench-node-${id}`,
  cluster: 'bench',
  userAgentName: nodeKind === 'grpc' ? 'gRPC Node.js' : 'envoy',
  userAgentVersion: nodeKind === 'grpc' ? '1.14.1' : '1.31.0',
  locality: {},
});

const channels: grpc.Client[] = [];
for (let c = 0; c < nChannels; c++) {
  channels.push(
    new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure(), {
      'grpc.use_local_subchannel_pool': 1,
      'grpc.max_receive_message_length': 256 * 1024 * 1024,
    } as grpc.ChannelOptions),
  );
}

const sotw = codecs(`${DISCOVERY}.DiscoveryRequest`, `${DISCOVERY}.DiscoveryResponse`);
const delta = codecs(`${DISCOVERY}.DeltaDiscoveryRequest`, `${DISCOVERY}.DeltaDiscoveryResponse`);
const WANT = [TYPE_URLS.cluster, TYPE_URLS.endpoint, TYPE_URLS.listener, TYPE_URLS.route];

interface SotwResponse {
  versionInfo: string;
  resources: Array<{ type_url: string; value: Uint8Array }>;
  typeUrl: string;
  nonce: string;
}
interface DeltaResponse {
  systemVersionInfo: string;
  resources: Array<{ name: string; version: string; resource?: { type_url: string; value: Uint8Array } }>;
  typeUrl: string;
  nonce: string;
}

type OnAny = (rec: Received<unknown>, typeUrl: string) => void;
type OnError = (e: Error) => void;

/** Counts a stream's bytes and messages before the change is armed (sync) and after (the change). */
function counter(r: StreamResult): OnAny {
  const seen = new Set<string>();
  return (rec: Received<unknown>, typeUrl: string): void => {
    if (!armed) {
      r.preArmBytes += rec.len;
      r.preArmMsgs++;
      if (!seen.has(typeUrl)) {
        seen.add(typeUrl);
        r.fullBytes += rec.len;
        if (mode === 'floor' || WANT.every((t) => seen.has(t))) {
          r.syncedAt = rec.t;
          syncedCount++;
          checkSynced();
        }
      }
      return;
    }
    r.changeBytes += rec.len;
    r.changeMsgs++;
    const short = typeUrl.slice(typeUrl.lastIndexOf('.') + 1);
    r.changeTypes[short] = (r.changeTypes[short] ?? 0) + 1;
    if (r.changeAt === 0 && (mode === 'floor' || typeUrl === expectType)) {
      r.changeAt = rec.t;
      checkChanged();
    }
  };
}

/** An Envoy-like SotW ADS stream: wildcard CDS and LDS, then EDS and RDS for the names they carry. */
function openSotwStream(id: number, ch: grpc.Client, onAny: OnAny, onError: OnError): void {
  const call = ch.makeBidiStreamRequest(
    `${ADS}/StreamAggregatedResources`,
    sotw.ser,
    sotw.de as (b: Buffer) => Received<SotwResponse>,
  );
  call.on('error', onError);
  let first = true;
  const req = (typeUrl: string, names: string[], nonce = '', version = ''): void => {
    call.write({
      ...(first ? { node: node(id) } : {}),
      typeUrl,
      resourceNames: names,
      responseNonce: nonce,
      versionInfo: version,
    });
    first = false;
  };
  const subscribed = new Map<string, string[]>([
    [TYPE_URLS.cluster, []],
    [TYPE_URLS.listener, []],
  ]);
  call.on('data', (rec: Received<SotwResponse>) => {
    const m = rec.msg;
    onAny(rec, m.typeUrl);
    req(m.typeUrl, subscribed.get(m.typeUrl) ?? [], m.nonce, m.versionInfo); // ACK
    if (m.typeUrl === TYPE_URLS.cluster && !subscribed.has(TYPE_URLS.endpoint)) {
      const names = dependentNames(m.typeUrl, m.versionInfo, m.resources);
      subscribed.set(TYPE_URLS.endpoint, names);
      req(TYPE_URLS.endpoint, names);
    } else if (m.typeUrl === TYPE_URLS.listener && !subscribed.has(TYPE_URLS.route)) {
      const names = dependentNames(m.typeUrl, m.versionInfo, m.resources);
      subscribed.set(TYPE_URLS.route, names);
      req(TYPE_URLS.route, names);
    }
  });
  req(TYPE_URLS.cluster, []);
  req(TYPE_URLS.listener, []);
}

/** A Delta ADS call whose first request carries the node; `req` writes one request. */
function deltaCall(id: number, ch: grpc.Client, onError: OnError) {
  const call = ch.makeBidiStreamRequest(
    `${ADS}/DeltaAggregatedResources`,
    delta.ser,
    delta.de as (b: Buffer) => Received<DeltaResponse>,
  );
  call.on('error', onError);
  let first = true;
  const req = (m: Record<string, unknown>): void => {
    call.write({ ...(first ? { node: node(id) } : {}), ...m });
    first = false;
  };
  return { call, req };
}

/** An Envoy-like Delta ADS stream: wildcard CDS and LDS, then EDS and RDS for the names they carry. */
function openDeltaStream(id: number, ch: grpc.Client, onAny: OnAny, onError: OnError): void {
  const { call, req } = deltaCall(id, ch, onError);
  const subscribedTypes = new Set<string>([TYPE_URLS.cluster, TYPE_URLS.listener]);
  call.on('data', (rec: Received<DeltaResponse>) => {
    const m = rec.msg;
    onAny(rec, m.typeUrl);
    req({ typeUrl: m.typeUrl, responseNonce: m.nonce }); // ACK
    if (
      (m.typeUrl === TYPE_URLS.cluster || m.typeUrl === TYPE_URLS.listener) &&
      !subscribedTypes.has(m.typeUrl === TYPE_URLS.cluster ? TYPE_URLS.endpoint : TYPE_URLS.route)
    ) {
      const dep = m.typeUrl === TYPE_URLS.cluster ? TYPE_URLS.endpoint : TYPE_URLS.route;
      const anys = m.resources.flatMap((x) => (x.resource ? [x.resource] : []));
      const names = dependentNames(m.typeUrl, m.systemVersionInfo, anys);
      subscribedTypes.add(dep);
      req({ typeUrl: dep, resourceNamesSubscribe: names });
    }
  });
  // Wildcard: an empty subscribe list on the first LDS/CDS request.
  req({ typeUrl: TYPE_URLS.cluster, resourceNamesSubscribe: [] });
  req({ typeUrl: TYPE_URLS.listener, resourceNamesSubscribe: [] });
}

function openStream(i: number): void {
  const id = firstId + i;
  const ch = channels[i % nChannels] as grpc.Client;
  const r: StreamResult = {
    id,
    syncedAt: 0,
    fullBytes: 0,
    preArmBytes: 0,
    preArmMsgs: 0,
    changeAt: 0,
    changeBytes: 0,
    changeMsgs: 0,
    changeTypes: {},
    affected: true,
  };
  results.push(r);
  const onAny = counter(r);
  const onError = (e: Error): void => {
    if (!r.error) r.error = e.message;
  };

  if (mode === 'floor') {
    const call = ch.makeBidiStreamRequest(
      FLOOR_METHOD,
      (b: Buffer) => b,
      (b: Buffer): Received<unknown> => ({ t: sharedNow(), len: b.length, msg: null }),
    );
    call.on('data', (rec: Received<unknown>) => onAny(rec, 'floor'));
    call.on('error', onError);
    // The server answers the hello with a 1-byte "synced" message.
    call.write(Buffer.from([1]));
    return;
  }

  if (nodeKind === 'grpc') {
    openGrpcStream(id, ch, r, onAny, onError);
    return;
  }

  if (mode === 'sotw') openSotwStream(id, ch, onAny, onError);
  else openDeltaStream(id, ch, onAny, onError);
}

// ------------------------------------------------------------------ proxyless gRPC (like grpc-js-xds)

type Any = { type_url: string; value: Uint8Array };
// Decoding results per resource content (SotW: response version + subscribed name; Delta: name +
// resource version), shared by the streams of a process.
const decoded = new Map<string, unknown>();
function memo<T>(key: string, f: () => T): T {
  if (decoded.has(key)) return decoded.get(key) as T;
  const v = f();
  decoded.set(key, v);
  return v;
}
/** The route configuration named by an api_listener's HCM (`rds.routeConfigName`). */
function rdsNameOf(a: Any): string | undefined {
  const out = new Set<string>();
  routeNamesOf(decodeToObject(a.type_url, a.value), out);
  return [...out][0];
}
/** Per route configuration (decoded once per content): domain → clusters named by that virtual host's routes. */
function domainIndex(a: Any): Map<string, string[]> {
  const rc = decodeToObject(a.type_url, a.value);
  const idx = new Map<string, string[]>();
  for (const vh of (rc['virtualHosts'] as ProtoObject[] | undefined) ?? []) {
    const out = new Set<string>();
    for (const route of (vh['routes'] as ProtoObject[] | undefined) ?? []) {
      const act = route['route'] as ProtoObject | undefined;
      if (!act) continue;
      if (typeof act['cluster'] === 'string') out.add(act['cluster']);
      const wc = act['weightedClusters'] as ProtoObject | undefined;
      for (const c of (wc?.['clusters'] as ProtoObject[] | undefined) ?? [])
        if (typeof c['name'] === 'string') out.add(c['name']);
    }
    const list = [...out].sort();
    for (const d of (vh['domains'] as string[] | undefined) ?? []) if (!idx.has(d)) idx.set(d, list);
  }
  return idx;
}
/**
 * Clusters of the virtual host grpc-js would pick for `host`: exact domain, else the longest wildcard match, else '*'.
 */
function clustersFor(idx: Map<string, string[]>, host: string): string[] {
  const exact = idx.get(host) ?? idx.get(`${host}:443`);
  if (exact) return exact;
  let best: string[] | undefined;
  let bestLen = -1;
  for (const [d, list] of idx) {
    const ok = (d.startsWith('*') && host.endsWith(d.slice(1))) || (d.endsWith('*') && host.startsWith(d.slice(0, -1)));
    if (ok && d.length > bestLen) {
      best = list;
      bestLen = d.length;
    }
  }
  return best ?? idx.get('*') ?? [];
}
function edsNameOf(a: Any): string | undefined {
  const o = decodeToObject(a.type_url, a.value);
  const eds = o['edsClusterConfig'] as ProtoObject | undefined;
  if (o['type'] === 'EDS' || eds) return String(eds?.['serviceName'] || o['name']);
  return undefined;
}

/** A proxyless stream's subscriptions: names per type, and how one resource names the next type's. */
interface GrpcSubs {
  id: number;
  ch: grpc.Client;
  host: string;
  subs: Map<string, string[]>;
  setNames: (typeUrl: string, names: string[]) => boolean;
  follow: (typeUrl: string, a: Any, key: string) => [string, string[]] | undefined;
  onAny: OnAny;
  onError: OnError;
}

function grpcSotwStream(g: GrpcSubs): void {
  const { id, ch, subs, setNames, follow, onAny, onError } = g;
  const call = ch.makeBidiStreamRequest(
    `${ADS}/StreamAggregatedResources`,
    sotw.ser,
    sotw.de as (b: Buffer) => Received<SotwResponse>,
  );
  call.on('error', onError);
  let first = true;
  const req = (typeUrl: string, nonce = '', version = ''): void => {
    call.write({
      ...(first ? { node: node(id) } : {}),
      typeUrl,
      resourceNames: subs.get(typeUrl) ?? [],
      responseNonce: nonce,
      versionInfo: version,
    });
    first = false;
  };
  call.on('data', (rec: Received<SotwResponse>) => {
    const m = rec.msg;
    onAny(rec, m.typeUrl);
    req(m.typeUrl, m.nonce, m.versionInfo); // ACK
    const mine = subs.get(m.typeUrl) ?? [];
    for (const a of m.resources) {
      // SotW has no per-resource version: the response version + the (only) subscribed name identify the content.
      const f = follow(m.typeUrl, a, `${m.versionInfo}|${mine.join(',')}`);
      if (f && setNames(f[0], f[1])) req(f[0]);
    }
  });
  req(TYPE_URLS.listener);
}

function grpcDeltaStream(g: GrpcSubs): void {
  const { id, ch, host, subs, setNames, follow, onAny, onError } = g;

  const { call, req } = deltaCall(id, ch, onError);
  call.on('data', (rec: Received<DeltaResponse>) => {
    const m = rec.msg;
    onAny(rec, m.typeUrl);
    req({ typeUrl: m.typeUrl, responseNonce: m.nonce }); // ACK
    for (const x of m.resources) {
      if (!x.resource) continue;
      const f = follow(m.typeUrl, x.resource, `${x.name}|${x.version}`);
      if (!f) continue;
      const before = subs.get(f[0]) ?? [];
      if (setNames(f[0], f[1])) {
        req({
          typeUrl: f[0],
          resourceNamesSubscribe: f[1].filter((n) => !before.includes(n)),
          resourceNamesUnsubscribe: before.filter((n) => !f[1].includes(n)),
        });
      }
    }
  });
  req({ typeUrl: TYPE_URLS.listener, resourceNamesSubscribe: [host] });
}

function openGrpcStream(
  id: number,
  ch: grpc.Client,
  r: StreamResult,
  onAny: (rec: Received<unknown>, typeUrl: string) => void,
  onError: (e: Error) => void,
): void {
  const hostIndex = id < SPREAD ? id % HOSTS : HOT_HOST;
  const host = `svc-${hostIndex}.bench.local`;
  r.host = host;
  // What this stream subscribes to, per type (explicit names only, like grpc-js-xds).
  const subs = new Map<string, string[]>();
  r.names = {};
  const setNames = (typeUrl: string, names: string[]): boolean => {
    const prev = subs.get(typeUrl);
    subs.set(typeUrl, names);
    (r.names as Record<string, string[]>)[typeUrl.slice(typeUrl.lastIndexOf('.') + 1)] = names;
    return !prev || prev.join('\n') !== names.join('\n');
  };
  setNames(TYPE_URLS.listener, [host]);
  /** Derives the next type's names from a received resource of `typeUrl` (key: content identity). */
  const follow = (typeUrl: string, a: Any, key: string): [string, string[]] | undefined => {
    if (typeUrl === TYPE_URLS.listener) {
      const rn = memo(`L|${key}`, () => rdsNameOf(a));
      return rn ? [TYPE_URLS.route, [rn]] : undefined;
    }
    if (typeUrl === TYPE_URLS.route)
      return [
        TYPE_URLS.cluster,
        clustersFor(
          memo(`R|${key}`, () => domainIndex(a)),
          host,
        ),
      ];
    if (typeUrl === TYPE_URLS.cluster) {
      const n = memo(`C|${key}`, () => edsNameOf(a));
      return n ? [TYPE_URLS.endpoint, [n]] : undefined;
    }
    return undefined;
  };

  const g: GrpcSubs = { id, ch, host, subs, setNames, follow, onAny, onError };
  if (mode === 'sotw') grpcSotwStream(g);
  else grpcDeltaStream(g);
}

/** A stream is affected by a change when it holds one of the changed (or removed) names. */
function markAffected(diff: Record<string, { changed: string[]; removed: string[] }>): void {
  const kindOf: Record<string, string> = {
    Listener: 'listener',
    RouteConfiguration: 'route',
    Cluster: 'cluster',
    ClusterLoadAssignment: 'endpoint',
  };
  const sets = new Map<string, Set<string>>();
  for (const [k, v] of Object.entries(diff)) sets.set(k, new Set([...v.changed, ...v.removed]));
  for (const r of results) {
    r.affected = false;
    for (const [short, names] of Object.entries(r.names ?? {})) {
      const s = sets.get(kindOf[short] ?? '');
      if (s && names.some((n) => s.has(n))) r.affected = true;
    }
  }
  affectedKnown = true;
}

for (let i = 0; i < nStreams; i++) openStream(i);

process.on(
  'message',
  (m: { cmd: string; expectType?: string; diff?: Record<string, { changed: string[]; removed: string[] }> }) => {
    if (m.cmd === 'arm') {
      armed = true;
      expectType = m.expectType ?? TYPE_URLS.route;
      affectedKnown = false;
      changedSent = false;
      for (const r of results) resetChange(r);
      send({ type: 'armed' });
    } else if (m.cmd === 'expect') {
      if (nodeKind === 'grpc' && m.diff) markAffected(m.diff);
      checkChanged();
    } else if (m.cmd === 'report') {
      send({
        type: 'report',
        streams: results,
        pending: results.filter((r) => r.affected && r.changeAt === 0).length,
        synced: syncedCount,
      });
    } else if (m.cmd === 'exit') {
      for (const c of channels) c.close();
      process.exit(0);
    }
  },
);
send({ type: 'started' });
