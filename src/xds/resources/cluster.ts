// Cluster builders, and the one builder of upstream TLS transport sockets (descriptor clusters,
// TCP service clusters).
import type {
  Cluster,
  ClusterLoadAssignment,
  UpstreamTlsContext,
  envoy_config_cluster_v3_Cluster_LbPolicy as ClusterLbPolicy,
  envoy_config_cluster_v3_OutlierDetection as OutlierDetection,
  envoy_config_core_v3_Metadata as Metadata,
  envoy_config_core_v3_TransportSocket as TransportSocket,
} from '../../../proto/envoy-types.js';
import { TYPE_URL } from '../../../proto/type-urls.js';
import type { ClientConfig, LoadBalancing } from '../../model/types.js';
import { SHARED_ADS_CONFIG_SOURCE, duration, sharedDuration, wrapped } from './common.js';
import { frozen } from '../shapes.js';

export type LbPolicy = Extract<ClusterLbPolicy, 'ROUND_ROBIN' | 'RANDOM' | 'RING_HASH' | 'LEAST_REQUEST'>;

/** gRPC clients accept only ROUND_ROBIN and RING_HASH (others are NACKed). */
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
export function outlierDetection(cc: ClientConfig): OutlierDetection | undefined {
  if (!cc.useCircuitBreaker || cc.maxErrors <= 0) return undefined;
  return {
    consecutive_5xx: wrapped(cc.maxErrors),
    interval: duration(cc.sampleInterval),
    baseEjectionTime: duration(cc.sampleInterval),
    maxEjectionPercent: wrapped(100),
    enforcingSuccessRate: wrapped(0),
  };
}

/** outlierDetection objects by maxErrors, then sampleInterval (descriptors mostly share a few). */
const OUTLIERS = new Map<number, Map<number, OutlierDetection>>();

/** outlierDetection(cc) as one frozen object per setting (at most 1,024 maxErrors values are kept). */
export function sharedOutlierDetection(cc: ClientConfig): OutlierDetection | undefined {
  if (!cc.useCircuitBreaker || cc.maxErrors <= 0) return undefined;
  let byInterval = OUTLIERS.get(cc.maxErrors);
  if (byInterval === undefined) {
    if (OUTLIERS.size >= 1024) OUTLIERS.clear();
    OUTLIERS.set(cc.maxErrors, (byInterval = new Map()));
  }
  let od = byInterval.get(cc.sampleInterval);
  if (od === undefined) {
    if (byInterval.size >= 1024) byInterval.clear();
    byInterval.set(cc.sampleInterval, (od = frozen(outlierDetection(cc) as OutlierDetection)));
  }
  return od;
}

/** The TLS transport socket of upstream connections, with its UpstreamTlsContext. */
export function upstreamTlsSocket(context: UpstreamTlsContext): TransportSocket {
  return { name: 'envoy.transport_sockets.tls', typedConfig: { '@type': TYPE_URL.UpstreamTlsContext, ...context } };
}

/** Metadata key used to pick the TLS transport socket of an endpoint (mixed schemes or SNIs). */
export const TLS_MATCH_KEY = 'oxds_sni';

/** Endpoint metadata selecting the transport socket match `key` (see upstreamTlsTransport). */
export function tlsMatchMetadata(key: string, matchKey: string = TLS_MATCH_KEY): Metadata {
  return { filterMetadata: { 'envoy.transport_socket_match': { fields: { [matchKey]: { stringValue: key } } } } };
}

/** The transport socket fields of a cluster with TLS upstreams. */
export type UpstreamTransport = Pick<Cluster, 'transportSocket' | 'transportSocketMatches'>;

/**
 * TLS towards a cluster's endpoints, one UpstreamTlsContext per key (an SNI, a TLS setting): one
 * transport socket when every endpoint uses TLS with the same context; otherwise one transport
 * socket match per key (endpoints carry tlsMatchMetadata(key, matchKey)) and plaintext by default.
 * undefined without any TLS context.
 */
export function upstreamTlsTransport(
  contexts: ReadonlyArray<readonly [key: string, context: UpstreamTlsContext]>,
  allTls: boolean,
  matchKey: string = TLS_MATCH_KEY,
): UpstreamTransport | undefined {
  const [only] = contexts;
  if (only === undefined) return undefined;
  if (allTls && contexts.length === 1) return { transportSocket: upstreamTlsSocket(only[1]) };
  return {
    transportSocketMatches: contexts.map(([key, context]) => ({
      name: key,
      match: { fields: { [matchKey]: { stringValue: key } } },
      transportSocket: upstreamTlsSocket(context),
    })),
  };
}

/** https targets by host: TLS with SNI = the host (upstreamTlsTransport, one key per SNI). */
export function upstreamTls(httpsHosts: readonly string[], allHttps: boolean): UpstreamTransport | undefined {
  const snis = [...new Set(httpsHosts)].sort();
  return upstreamTlsTransport(
    snis.map((sni) => [sni, { sni }] as const),
    allHttps,
  );
}

export function http2ProtocolOptions(): Pick<Cluster, 'typedExtensionProtocolOptions'> {
  return {
    typedExtensionProtocolOptions: {
      'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': {
        '@type': TYPE_URL.HttpProtocolOptions,
        explicitHttpConfig: { http2ProtocolOptions: {} },
      },
    },
  };
}

/** Settings common to every cluster of a descriptor. */
export interface ClusterSettings {
  connectTimeoutMs: number;
  lbPolicy: LbPolicy;
  outlierDetection?: OutlierDetection;
  /** transportSocket / transportSocketMatches / typedExtensionProtocolOptions. */
  extra?: Cluster;
}

/** The fields every cluster of a descriptor starts with (a fresh object: the builders add theirs). */
function common(name: string, s: ClusterSettings): Cluster {
  const c: Cluster = { name, connectTimeout: sharedDuration(s.connectTimeoutMs), lbPolicy: s.lbPolicy };
  if (s.outlierDetection) c.outlierDetection = s.outlierDetection;
  return s.extra ? Object.assign(c, s.extra) : c;
}

/** EDS over ADS; the EDS service name is the cluster name. */
export function edsCluster(name: string, s: ClusterSettings): Cluster {
  const c = common(name, s);
  c.type = 'EDS';
  c.edsClusterConfig = { edsConfig: SHARED_ADS_CONFIG_SOURCE, serviceName: name };
  return c;
}

/** STRICT_DNS (Envoy) or LOGICAL_DNS (gRPC, one host) with an inline load assignment. */
export function dnsCluster(
  name: string,
  type: 'STRICT_DNS' | 'LOGICAL_DNS',
  s: ClusterSettings,
  loadAssignment: ClusterLoadAssignment,
): Cluster {
  const c = common(name, s);
  c.type = type;
  c.loadAssignment = loadAssignment;
  return c;
}
