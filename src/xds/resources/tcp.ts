// A planned TcpService listener (src/xds/plan/tcp.ts) → Envoy listener (tcp_proxy filter chains) and clusters.
import type {
  Cluster,
  Listener,
  envoy_config_endpoint_v3_LbEndpoint as LbEndpoint,
  envoy_config_listener_v3_Filter as NetworkFilter,
  envoy_config_listener_v3_FilterChain as FilterChain,
  envoy_config_core_v3_TransportSocket as TransportSocket,
} from '../../../proto/envoy-types.js';
import { TYPE_URL } from '../../../proto/type-urls.js';
import type { TcpTarget } from '../../model/types.js';
import type { TcpChainPlan, TcpListenerPlan } from '../plan/tcp.js';
import { adsConfigSource, duration, socketAddress, wrapped } from './common.js';
import { tlsMatchMetadata, upstreamTlsTransport } from './cluster.js';
import { downstreamTlsSocket, tlsInspector } from './listener.js';
import * as names from '../names.js';

const TLS_KEY = 'oxds_tls';

export function tcpProxy(statPrefix: string, cluster: string): NetworkFilter {
  return { name: 'envoy.filters.network.tcp_proxy', typedConfig: { '@type': TYPE_URL.TcpProxy, statPrefix, cluster } };
}

/** STRICT_DNS cluster (IPs resolve to themselves); targets with `tls` get upstream TLS (SNI = host). */
export function tcpCluster(name: string, targets: readonly TcpTarget[], plaintext = false): Cluster {
  const tlsTargets = plaintext ? [] : targets.filter((t) => t.tls);
  const tlsHosts = [...new Set(tlsTargets.map((t) => t.host))].sort();
  const transport = upstreamTlsTransport(
    tlsHosts.map((h) => [h, { sni: h }] as const),
    tlsTargets.length === targets.length,
    TLS_KEY,
  );
  const byMatch = transport?.transportSocketMatches !== undefined;
  const lbEndpoints: LbEndpoint[] = targets.map((t) => ({
    endpoint: { address: socketAddress(t.ip ?? t.host, t.port), hostname: t.host },
    ...(byMatch && t.tls ? { metadata: tlsMatchMetadata(t.host, TLS_KEY) } : {}),
  }));
  return {
    name,
    type: 'STRICT_DNS',
    connectTimeout: duration(10_000),
    lbPolicy: 'ROUND_ROBIN',
    loadAssignment: { clusterName: name, endpoints: [{ lbEndpoints }] },
    ...(transport ?? {}),
  };
}

/**
 * Terminates TLS with the chain's SDS certificates; client certificates verified against the CA bundle when planned.
 */
function downstreamTls(secretNames: readonly string[], clientCerts: TcpListenerPlan['clientCerts']): TransportSocket {
  return downstreamTlsSocket({
    '@type': TYPE_URL.DownstreamTlsContext,
    commonTlsContext: {
      tlsCertificateSdsSecretConfigs: secretNames.map((name) => ({ name, sdsConfig: adsConfigSource() })),
      ...(clientCerts.validate
        ? { validationContextSdsSecretConfig: { name: names.CA_BUNDLE_SECRET_NAME, sdsConfig: adsConfigSource() } }
        : {}),
    },
    ...(clientCerts.require ? { requireClientCertificate: wrapped(true) } : {}),
  });
}

function filterChain(p: TcpListenerPlan, c: TcpChainPlan): FilterChain {
  return {
    ...(c.name !== undefined ? { name: c.name } : {}),
    ...(c.serverNames.length > 0 ? { filterChainMatch: { serverNames: c.serverNames } } : {}),
    filters: [tcpProxy(p.statPrefix, c.cluster)],
    ...(c.tlsSecrets !== undefined ? { transportSocket: downstreamTls(c.tlsSecrets, p.clientCerts) } : {}),
  };
}

/** The listener and clusters of a planned TcpService; Envoy wants a unique default chain, as default_filter_chain. */
export function tcpListener(p: TcpListenerPlan): { listener: Listener; clusters: Cluster[] } {
  const chains = p.chains.map((c) => filterChain(p, c));
  const plain = chains.filter((c) => c.filterChainMatch === undefined);
  const matched = chains.filter((c) => c.filterChainMatch !== undefined);
  const listener: Listener = {
    name: p.name,
    address: socketAddress(p.address, p.port),
    ...(p.tlsInspector ? { listenerFilters: [tlsInspector()] } : {}),
    filterChains: matched.length > 0 ? matched : plain.slice(0, 1),
    ...(matched.length > 0 && plain[0] ? { defaultFilterChain: plain[0] } : {}),
  };
  return { listener, clusters: p.clusters.map((c) => tcpCluster(c.name, c.targets, c.plaintext)) };
}
