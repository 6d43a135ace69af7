// Envoy gRPC Access Log Service (envoy.service.accesslog.v3.AccessLogService/StreamAccessLogs):
// HTTP access-log entries become per-descriptor traffic metrics — Otoroshi's "requests served,
// data in/out, upstream latency, overhead". Labels are bounded: a descriptor label is only ever a
// descriptor id of the current model (else "unknown"), a client id only a known apikey, and the
// per-apikey series are opt-in.
import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { Counter, Histogram, type Registry } from 'prom-client';
import { lookupType, TO_OBJECT_OPTIONS } from '../proto/loader.js';

export const ALS_PATH = '/envoy.service.accesslog.v3.AccessLogService/StreamAccessLogs';

/** One HTTP request as the metrics need it (extracted from an HTTPAccessLogEntry). */
export interface AccessRecord {
  descriptorId?: string;
  clientId?: string;
  status: number;
  bytesIn: number;
  bytesOut: number;
  /** Seconds from the first byte sent upstream to the last byte received from it. */
  upstreamSeconds?: number;
  /** Seconds of the whole request as Envoy saw it. */
  totalSeconds?: number;
}

type Obj = Record<string, unknown>;
const num = (v: unknown): number => (typeof v === 'number' ? v : typeof v === 'string' ? Number(v) || 0 : 0);
const obj = (v: unknown): Obj => (v && typeof v === 'object' ? (v as Obj) : {});

/** google.protobuf.Duration (decoded: {seconds, nanos}) → seconds. */
function seconds(d: unknown): number | undefined {
  if (!d || typeof d !== 'object') return undefined;
  const o = d as Obj;
  return num(o.seconds) + num(o.nanos) / 1e9;
}

/**
 * Our route names are `<descriptorId>/<index|all>` (src/xds/names.ts) and our clusters
 * `oxds~<descriptorId>~<hash>`: either gives the descriptor.
 */
export function descriptorOf(routeName: string, upstreamCluster: string): string | undefined {
  const slash = routeName.lastIndexOf('/');
  if (slash > 0) return routeName.slice(0, slash);
  const m = /^oxds~(.+)~[0-9a-f]+(?:~t\d+)?$/.exec(upstreamCluster);
  return m?.[1];
}

export function accessRecord(entry: Obj): AccessRecord {
  const common = obj(entry.commonProperties);
  const req = obj(entry.request);
  const res = obj(entry.response);
  const headers = obj(req.requestHeaders);
  const status = num(obj(res.responseCode).value);
  const firstTx = seconds(common.timeToFirstUpstreamTxByte);
  const lastRx = seconds(common.timeToLastUpstreamRxByte);
  const total = seconds(common.duration) ?? seconds(common.timeToLastDownstreamTxByte);
  const rec: AccessRecord = {
    status,
    bytesIn: num(req.requestHeadersBytes) + num(req.requestBodyBytes),
    bytesOut: num(res.responseHeadersBytes) + num(res.responseBodyBytes),
  };
  const d = descriptorOf(String(common.routeName ?? ''), String(common.upstreamCluster ?? ''));
  if (d !== undefined) rec.descriptorId = d;
  const cid = headers['otoroshi-client-id'];
  if (typeof cid === 'string' && cid !== '') rec.clientId = cid;
  if (firstTx !== undefined && lastRx !== undefined && lastRx >= firstTx) rec.upstreamSeconds = lastRx - firstTx;
  if (total !== undefined) rec.totalSeconds = total;
  return rec;
}

export function statusClass(status: number): string {
  return status >= 100 && status < 600 ? `${Math.floor(status / 100)}xx` : 'none';
}

export interface TrafficMetrics {
  record(r: AccessRecord): void;
}

/**
 * Registers the traffic metrics. `known()` returns the current descriptor ids and apikey client
 * ids (the label values allowed); `perApikey` turns on the per-apikey request counter.
 */
export function createTrafficMetrics(
  registry: Registry,
  known: () => { descriptors: ReadonlySet<string>; apikeys: ReadonlySet<string> },
  perApikey = false,
): TrafficMetrics {
  const requests = new Counter({
    name: 'oxds_http_requests_total',
    help: 'requests served by Envoy (access logs), by descriptor and status class',
    labelNames: ['descriptor', 'status_class'],
    registers: [registry],
  });
  const bytesIn = new Counter({
    name: 'oxds_http_request_bytes_total',
    help: 'request bytes (headers + body) received by Envoy, by descriptor',
    labelNames: ['descriptor'],
    registers: [registry],
  });
  const bytesOut = new Counter({
    name: 'oxds_http_response_bytes_total',
    help: 'response bytes (headers + body) sent by Envoy, by descriptor',
    labelNames: ['descriptor'],
    registers: [registry],
  });
  const buckets = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
  const upstream = new Histogram({
    name: 'oxds_http_upstream_latency_seconds',
    help: 'time from the first byte sent upstream to the last byte received, by descriptor',
    labelNames: ['descriptor'],
    buckets,
    registers: [registry],
  });
  const overhead = new Histogram({
    name: 'oxds_http_envoy_overhead_seconds',
    help: 'request duration minus upstream time (Envoy + ext_authz overhead)',
    buckets: [0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1],
    registers: [registry],
  });
  const perKey = perApikey
    ? new Counter({
        name: 'oxds_http_apikey_requests_total',
        help: 'requests by apikey client id (opt-in: --metrics-per-apikey)',
        labelNames: ['client_id'],
        registers: [registry],
      })
    : undefined;
  return {
    record(r) {
      const k = known();
      const descriptor = r.descriptorId !== undefined && k.descriptors.has(r.descriptorId) ? r.descriptorId : 'unknown';
      requests.inc({ descriptor, status_class: statusClass(r.status) });
      if (r.bytesIn > 0) bytesIn.inc({ descriptor }, r.bytesIn);
      if (r.bytesOut > 0) bytesOut.inc({ descriptor }, r.bytesOut);
      if (r.upstreamSeconds !== undefined) upstream.observe({ descriptor }, r.upstreamSeconds);
      if (r.totalSeconds !== undefined && r.upstreamSeconds !== undefined && r.totalSeconds >= r.upstreamSeconds) {
        overhead.observe(r.totalSeconds - r.upstreamSeconds);
      }
      if (perKey && r.clientId !== undefined && k.apikeys.has(r.clientId)) perKey.inc({ client_id: r.clientId });
    },
  };
}

const MessageType = lookupType('envoy.service.accesslog.v3.StreamAccessLogsMessage');
const ResponseType = lookupType('envoy.service.accesslog.v3.StreamAccessLogsResponse');
const EMPTY_RESPONSE = Buffer.from(ResponseType.encode(ResponseType.create({})).finish());

export const ACCESS_LOG_SERVICE: grpc.ServiceDefinition = {
  StreamAccessLogs: {
    path: ALS_PATH,
    requestStream: true,
    responseStream: false,
    requestSerialize: (b: Buffer) => b,
    requestDeserialize: (b: Buffer) => b,
    responseSerialize: (b: Buffer) => b,
    responseDeserialize: (b: Buffer) => b,
  },
};

/**
 * Registers the ALS on a grpc-js server (the xDS port: Envoy already has a cluster for it).
 * `closeAll()` ends every open log stream with UNAVAILABLE (shutdown: Envoy never ends them, so a
 * graceful server shutdown would otherwise wait for its force timeout).
 */
export function registerAls(
  server: grpc.Server,
  deps: { metrics: TrafficMetrics; logger: Logger },
): { closeAll(): void } {
  const open = new Map<object, grpc.sendUnaryData<Buffer>>();
  const handler: grpc.handleClientStreamingCall<Buffer, Buffer> = (call, callback) => {
    open.set(call, callback);
    let bad = 0;
    call.on('data', (buf: Buffer) => {
      try {
        const msg = MessageType.toObject(MessageType.decode(buf), TO_OBJECT_OPTIONS) as Obj;
        const entries = obj(msg.httpLogs).logEntry;
        if (Array.isArray(entries)) for (const e of entries) deps.metrics.record(accessRecord(obj(e)));
      } catch (err) {
        if (bad++ < 3)
          deps.logger.warn({ err: (err as Error).message }, 'access log service: undecodable message ignored');
      }
    });
    call.on('error', () => open.delete(call));
    call.on('cancelled', () => open.delete(call));
    call.on('end', () => {
      if (open.delete(call)) callback(null, EMPTY_RESPONSE);
    });
  };
  server.addService(ACCESS_LOG_SERVICE, { StreamAccessLogs: handler });
  return {
    closeAll: () => {
      for (const [call, callback] of [...open]) {
        open.delete(call);
        try {
          callback({ code: grpc.status.UNAVAILABLE, details: 'control plane shutting down' });
        } catch {
          /* already gone */
        }
      }
    },
  };
}
