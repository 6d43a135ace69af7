// Small shared value builders (durations, wrappers, type URLs, config sources).
import type { ProtoObject } from '../../proto/loader.js';

export const TYPES = {
  hcm: 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager',
  router: 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router',
  tlsInspector: 'type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector',
  downstreamTls: 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext',
  upstreamTls: 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext',
  httpProtocolOptions: 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions',
  extAuthz: 'type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthz',
  extAuthzPerRoute: 'type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthzPerRoute',
  httpGrpcAccessLog: 'type.googleapis.com/envoy.extensions.access_loggers.grpc.v3.HttpGrpcAccessLogConfig',
} as const;

/** google.protobuf.Duration from milliseconds (nanos only when non-zero). */
export function duration(ms: number): ProtoObject {
  const whole = Math.max(0, Math.floor(ms));
  const seconds = Math.floor(whole / 1000);
  const nanos = (whole % 1000) * 1_000_000;
  return nanos === 0 ? { seconds } : { seconds, nanos };
}

/** A wrapper (UInt32Value, BoolValue, ...). */
export function wrapped<T>(value: T): { value: T } {
  return { value };
}

/** ConfigSource: over the ADS stream, v3. */
export function adsConfigSource(): ProtoObject {
  return { ads: {}, resourceApiVersion: 'V3' };
}

export function socketAddress(address: string, port: number): ProtoObject {
  return { socketAddress: { address, portValue: port } };
}

/** HeaderValueOption. */
export function headerValue(
  key: string,
  value: string,
  appendAction: 'OVERWRITE_IF_EXISTS_OR_ADD' | 'ADD_IF_ABSENT',
): ProtoObject {
  return { header: { key, value }, appendAction };
}

/** Code-point order, never locale order: output must not depend on the machine. */
export function byString(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

export function sortedBy<T>(items: readonly T[], key: (t: T) => string): T[] {
  return [...items].sort((a, b) => byString(key(a), key(b)));
}
