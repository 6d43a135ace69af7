// Cluster builders.
import type { ProtoObject } from '../../proto/loader.js';
import type { ClientConfig, LoadBalancing } from '../../model/types.js';
import { TYPES, adsConfigSource, duration, wrapped } from './common.js';

export type LbPolicy = 'ROUND_ROBIN' | 'RANDOM' | 'RING_HASH' | 'LEAST_REQUEST';

/** DECISIONS 10. gRPC clients accept only ROUND_ROBIN and RING_HASH (others are NACKed). */
export function lbPolicy(lb: LoadBalancing, grpc: boolean): LbPolicy {
  const envoy: Record<LoadBalancing, LbPolicy> = {
    RoundRobin: 'ROUND_ROBIN',
    Random: 'RANDOM',
    Sticky: 'RING_HASH',
    IpAddressHash: 'RING_HASH',
    BestResponseTime: 'LEAST_REQUEST',
    WeightedBestResponseTime: 'LEAST_REQUEST',
  };
  const p = envoy[lb];
  return grpc && p !== 'RING_HASH' ? 'ROUND_ROBIN' : p;
}

/** Otoroshi's per-target breaker (maxErrors consecutive failures, reset after sampleInterval). */
export function outlierDetection(cc: ClientConfig): ProtoObject | undefined {
  if (!cc.useCircuitBreaker || cc.maxErrors <= 0) return undefined;
  return {
    consecutive_5xx: wrapped(cc.maxErrors),
    interval: duration(cc.sampleInterval),
    baseEjectionTime: duration(cc.sampleInterval),
    maxEjectionPercent: wrapped(100),
    enforcingSuccessRate: wrapped(0),
  };
}

export function upstreamTlsSocket(sni: string): ProtoObject {
  return { name: 'envoy.transport_sockets.tls', typedConfig: { '@type': TYPES.upstreamTls, sni } };
}

/** Metadata key used to pick the TLS transport socket of an endpoint (mixed schemes or SNIs). */
export const TLS_MATCH_KEY = 'oxds_sni';

/**
 * https targets: one transport socket when every target is https with one SNI; otherwise one
 * transport socket match per SNI (endpoints carry TLS_MATCH_KEY metadata) and plaintext by default.
 */
export function upstreamTls(httpsHosts: readonly string[], allHttps: boolean): ProtoObject | undefined {
  const snis = [...new Set(httpsHosts)].sort();
  const [only] = snis;
  if (only === undefined) return undefined;
  if (allHttps && snis.length === 1) return { transportSocket: upstreamTlsSocket(only) };
  return {
    transportSocketMatches: snis.map((sni) => ({
      name: sni,
      match: { fields: { [TLS_MATCH_KEY]: { stringValue: sni } } },
      transportSocket: upstreamTlsSocket(sni),
    })),
  };
}

export function http2ProtocolOptions(): ProtoObject {
  return {
    typedExtensionProtocolOptions: {
      'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': {
        '@type': TYPES.httpProtocolOptions,
        explicitHttpConfig: { http2ProtocolOptions: {} },
      },
    },
  };
}

/** Settings common to every cluster of a descriptor. */
export interface ClusterSettings {
  connectTimeoutMs: number;
  lbPolicy: LbPolicy;
  outlierDetection?: ProtoObject;
  /** transportSocket / transportSocketMatches / typedExtensionProtocolOptions. */
  extra?: ProtoObject;
}

function common(name: string, s: ClusterSettings): ProtoObject {
  return {
    name,
    connectTimeout: duration(s.connectTimeoutMs),
    lbPolicy: s.lbPolicy,
    ...(s.outlierDetection ? { outlierDetection: s.outlierDetection } : {}),
    ...(s.extra ?? {}),
  };
}

/** EDS over ADS; the EDS service name is the cluster name. */
export function edsCluster(name: string, s: ClusterSettings): ProtoObject {
  return { ...common(name, s), type: 'EDS', edsClusterConfig: { edsConfig: adsConfigSource(), serviceName: name } };
}

/** STRICT_DNS (Envoy) or LOGICAL_DNS (gRPC, one host) with an inline load assignment. */
export function dnsCluster(
  name: string,
  type: 'STRICT_DNS' | 'LOGICAL_DNS',
  s: ClusterSettings,
  loadAssignment: ProtoObject,
): ProtoObject {
  return { ...common(name, s), type, loadAssignment };
}
