// Listener builders: the gateway HTTP/HTTPS listeners and gRPC api_listeners.
import type { ProtoObject } from '../../proto/loader.js';
import { TYPES, adsConfigSource, socketAddress } from './common.js';

export function hcmNetworkFilter(hcm: ProtoObject): ProtoObject {
  return { name: 'envoy.filters.network.http_connection_manager', typedConfig: hcm };
}

/** Plain HTTP listener with a single filter chain. */
export function httpListener(name: string, address: string, port: number, hcm: ProtoObject): ProtoObject {
  return {
    name,
    address: socketAddress(address, port),
    filterChains: [{ filters: [hcmNetworkFilter(hcm)] }],
  };
}

/** DownstreamTlsContext reading its certificate by SDS over ADS. */
export function downstreamTlsContext(secretName: string): ProtoObject {
  return {
    '@type': TYPES.downstreamTls,
    commonTlsContext: {
      tlsCertificateSdsSecretConfigs: [{ name: secretName, sdsConfig: adsConfigSource() }],
      alpnProtocols: ['h2', 'http/1.1'],
    },
  };
}

/** One HTTPS filter chain: SNI match (absent when serverNames is empty: the default chain). */
export function tlsFilterChain(
  name: string,
  serverNames: readonly string[],
  secretName: string,
  hcm: ProtoObject,
): ProtoObject {
  return {
    name,
    ...(serverNames.length > 0 ? { filterChainMatch: { serverNames: [...serverNames] } } : {}),
    filters: [hcmNetworkFilter(hcm)],
    transportSocket: { name: 'envoy.transport_sockets.tls', typedConfig: downstreamTlsContext(secretName) },
  };
}

/** HTTPS listener: undefined when there is no filter chain (no TLS binding). */
export function httpsListener(
  name: string,
  address: string,
  port: number,
  chains: readonly ProtoObject[],
): ProtoObject | undefined {
  if (chains.length === 0) return undefined;
  return {
    name,
    address: socketAddress(address, port),
    listenerFilters: [{ name: 'envoy.filters.listener.tls_inspector', typedConfig: { '@type': TYPES.tlsInspector } }],
    filterChains: [...chains],
  };
}

/** Proxyless gRPC listener: an api_listener holding an HCM. */
export function apiListener(name: string, hcm: ProtoObject): ProtoObject {
  return { name, apiListener: { apiListener: hcm } };
}
