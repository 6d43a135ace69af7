// Listener builders: the gateway HTTP/HTTPS listeners and gRPC api_listeners.
import type {
  Listener,
  Packed,
  envoy_config_listener_v3_Filter as NetworkFilter,
  envoy_config_listener_v3_FilterChain as FilterChain,
  envoy_config_listener_v3_ListenerFilter as ListenerFilter,
  envoy_config_core_v3_TransportSocket as TransportSocket,
} from '../../../proto/envoy-types.js';
import { TYPE_URL } from '../../../proto/type-urls.js';
import { adsConfigSource, socketAddress } from './common.js';

/** The HttpConnectionManager of a listener, packed (hcm.ts builds it). */
export type PackedHcm = Packed<'HttpConnectionManager'>;

export function hcmNetworkFilter(hcm: PackedHcm): NetworkFilter {
  return { name: 'envoy.filters.network.http_connection_manager', typedConfig: hcm };
}

/** Plain HTTP listener with a single filter chain. */
export function httpListener(name: string, address: string, port: number, hcm: PackedHcm): Listener {
  return {
    name,
    address: socketAddress(address, port),
    filterChains: [{ filters: [hcmNetworkFilter(hcm)] }],
  };
}

/** DownstreamTlsContext reading its certificate by SDS over ADS. */
export function downstreamTlsContext(secretName: string): Packed<'DownstreamTlsContext'> {
  return {
    '@type': TYPE_URL.DownstreamTlsContext,
    commonTlsContext: {
      tlsCertificateSdsSecretConfigs: [{ name: secretName, sdsConfig: adsConfigSource() }],
      alpnProtocols: ['h2', 'http/1.1'],
    },
  };
}

/** The TLS transport socket of downstream connections. */
export function downstreamTlsSocket(context: Packed<'DownstreamTlsContext'>): TransportSocket {
  return { name: 'envoy.transport_sockets.tls', typedConfig: context };
}

/** The listener filter reading the SNI (filter chain match by server name). */
export function tlsInspector(): ListenerFilter {
  return { name: 'envoy.filters.listener.tls_inspector', typedConfig: { '@type': TYPE_URL.TlsInspector } };
}

/** One HTTPS filter chain: SNI match (absent when serverNames is empty: the default chain). */
export function tlsFilterChain(
  name: string,
  serverNames: readonly string[],
  secretName: string,
  hcm: PackedHcm,
): FilterChain {
  return {
    name,
    ...(serverNames.length > 0 ? { filterChainMatch: { serverNames: [...serverNames] } } : {}),
    filters: [hcmNetworkFilter(hcm)],
    transportSocket: downstreamTlsSocket(downstreamTlsContext(secretName)),
  };
}

/** HTTPS listener: undefined when there is no filter chain (no TLS binding). */
export function httpsListener(
  name: string,
  address: string,
  port: number,
  chains: readonly FilterChain[],
): Listener | undefined {
  if (chains.length === 0) return undefined;
  return {
    name,
    address: socketAddress(address, port),
    listenerFilters: [tlsInspector()],
    filterChains: [...chains],
  };
}

/** Proxyless gRPC listener: an api_listener holding an HCM. */
export function apiListener(name: string, hcm: PackedHcm): Listener {
  return { name, apiListener: { apiListener: hcm } };
}
