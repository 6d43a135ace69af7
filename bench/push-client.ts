// Child process: N lightweight ADS clients (raw grpc-js, protobufjs codecs) over C channels.
//   node push-client.js <port> <streams> <channels> <mode: sotw|delta|floor> <firstId>
// IPC in:  {cmd:'arm'}    → from now on, record responses as "the change"
//          {cmd:'report'} → send per-stream results
//          {cmd:'exit'}
// IPC out: {type:'synced', ...} once every stream holds the full config (floor: once every stream is open)
//          {type:'changed'}     once every stream has received the change (a route response / a floor payload)
//          {type:'report', streams:[...]}
import * as grpc from '@grpc/grpc-js';
import type protobuf from 'protobufjs';
import { decodeToObject, lookupType, TYPE_URLS, type ProtoObject } from '../src/proto/loader.js';
import { sharedNow } from './gen.js';

const [portArg, streamsArg, channelsArg, modeArg, firstIdArg] = process.argv.slice(2);
const port = Number(portArg);
const nStreams = Number(streamsArg);
const nChannels = Math.max(1, Math.min(Number(channelsArg), nStreams));
const mode = modeArg as 'sotw' | 'delta' | 'floor';
const firstId = Number(firstIdArg ?? '0');

const DISCOVERY = 'envoy.service.discovery.v3';
const ADS = `/${DISCOVERY}.AggregatedDiscoveryService`;
export const FLOOR_METHOD = '/bench.Floor/Stream';

interface Received<T> {
  t: number;
  len: number;
  msg: T;
}

function codecs(reqType: string, resType: string): { ser: (v: object) => Buffer; de: (b: Buffer) => Received<unknown> } {
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

interface StreamResult {
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
  error?: string;
}

const results: StreamResult[] = [];
let armed = false;
let syncedCount = 0;
let changedCount = 0;
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
  if (!changedSent && changedCount === nStreams) {
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
function dependentNames(typeUrl: string, version: string, anys: Array<{ type_url: string; value: Uint8Array }>): string[] {
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
  userAgentName: 'envoy',
  userAgentVersion: '1.31.0',
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

function openStream(i: number): void {
  const id = firstId + i;
  const ch = channels[i % nChannels] as grpc.Client;
  const r: StreamResult = { id, syncedAt: 0, fullBytes: 0, preArmBytes: 0, preArmMsgs: 0, changeAt: 0, changeBytes: 0, changeMsgs: 0, changeTypes: {} };
  results.push(r);
  const seen = new Set<string>();
  let changed = false;
  const onAny = (rec: Received<unknown>, typeUrl: string): void => {
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
    if (!changed && (mode === 'floor' || typeUrl === TYPE_URLS.route)) {
      changed = true;
      r.changeAt = rec.t;
      changedCount++;
      checkChanged();
    }
  };
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

  if (mode === 'sotw') {
    const call = ch.makeBidiStreamRequest(`${ADS}/StreamAggregatedResources`, sotw.ser, sotw.de as (b: Buffer) => Received<SotwResponse>);
    call.on('error', onError);
    let first = true;
    const req = (typeUrl: string, names: string[], nonce = '', version = ''): void => {
      call.write({ ...(first ? { node: node(id) } : {}), typeUrl, resourceNames: names, responseNonce: nonce, versionInfo: version });
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
    return;
  }

  const call = ch.makeBidiStreamRequest(`${ADS}/DeltaAggregatedResources`, delta.ser, delta.de as (b: Buffer) => Received<DeltaResponse>);
  call.on('error', onError);
  let first = true;
  const req = (m: Record<string, unknown>): void => {
    call.write({ ...(first ? { node: node(id) } : {}), ...m });
    first = false;
  };
  const subscribedTypes = new Set<string>([TYPE_URLS.cluster, TYPE_URLS.listener]);
  call.on('data', (rec: Received<DeltaResponse>) => {
    const m = rec.msg;
    onAny(rec, m.typeUrl);
    req({ typeUrl: m.typeUrl, responseNonce: m.nonce }); // ACK
    if ((m.typeUrl === TYPE_URLS.cluster || m.typeUrl === TYPE_URLS.listener) && !subscribedTypes.has(m.typeUrl === TYPE_URLS.cluster ? TYPE_URLS.endpoint : TYPE_URLS.route)) {
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

for (let i = 0; i < nStreams; i++) openStream(i);

process.on('message', (m: { cmd: string }) => {
  if (m.cmd === 'arm') {
    armed = true;
    send({ type: 'armed' });
  } else if (m.cmd === 'report') {
    send({ type: 'report', streams: results, pending: nStreams - changedCount, synced: syncedCount });
  } else if (m.cmd === 'exit') {
    for (const c of channels) c.close();
    process.exit(0);
  }
});
send({ type: 'started' });
