// A planned TcpService listener (src/xds/plan/tcp.ts) → Envoy listener (tcp_proxy filter chains) and clusters.
import type { ProtoObject } from '../../proto/loader.js';
import type { TcpTarget } from '../../model/types.js';
import type { TcpChainPlan, TcpListenerPlan } from '../plan/tcp.js';
import { TYPES, adsConfigSource, duration, socketAddress, wrapped } from './common.js';
import * as names from '../names.js';

const TCP_PROXY_TYPE = 'type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy';
const TLS_KEY = 'oxds_tls';

function tcpProxy(statPrefix: string, cluster: string): ProtoObject {
  return { name: 'envoy.filters.network.tcp_proxy', typedConfig: { '@type': TCP_PROXY_TYPE, statPrefix, cluster } };
}

/** STRICT_DNS cluster (IPs resolve to themselves); targets with `tls` get upstream TLS (SNI = host). */
export function tcpCluster(name: string, targets: readonly TcpTarget[], plaintext = false): ProtoObject {
  const tls = !plaintext && targets.some((t) => t.tls);
  const mixed = tls && targets.some((t) => !t.tls);
  const lbEndpoints = targets.map((t) => ({
    endpoint: { address: socketAddress(t.ip ?? t.host, t.port), hostname: t.host },
    ...(mixed && t.tls
      ? {
          metadata: {
            filterMetadata: { 'envoy.transport_socket_match': { fields: { [TLS_KEY]: { stringValue: t.host } } } },
          },
        }
      : {}),
  }));
  const socket = (sni: string): ProtoObject => ({
    name: 'envoy.transport_sockets.tls',
    typedConfig: { '@type': TYPES.upstreamTls, sni },
  });
  const tlsHosts = [...new Set(targets.filter((t) => t.tls).map((t) => t.host))].sort();
  let transport: ProtoObject = {};
  if (tls && !mixed && tlsHosts.length === 1) transport = { transportSocket: socket(tlsHosts[0] as string) };
  else if (tls) {
    transport = {
      transportSocketMatches: tlsHosts.map((h) => ({
        name: h,
        match: { fields: { [TLS_KEY]: { stringValue: h } } },
        transportSocket: socket(h),
      })),
    };
    if (!mixed)
      for (const e of lbEndpoints)
        Object.assign(e, {
          metadata: {
            filterMetadata: {
              'envoy.transport_socket_match': { fields: { [TLS_KEY]: { stringValue: e.endpoint.hostname } } },
            },
          },
        });
  }
  return {
    name,
    type: 'STRICT_DNS',
    connectTimeout: duration(10_000),
    lbPolicy: 'ROUND_ROBIN',
    loadAssignment: { clusterName: name, endpoints: [{ lbEndpoints }] },
    ...transport,
  };
}

/** Terminates TLS with the chain's SDS certificates; client certificates verified against the CA bundle when planned. */
function downstreamTls(secretNames: readonly string[], clientCerts: TcpListenerPlan['clientCerts']): ProtoObject {
  return {
    name: 'envoy.transport_sockets.tls',
    typedConfig: {
      '@type': TYPES.downstreamTls,
      commonTlsContext: {
        tlsCertificateSdsSecretConfigs: secretNames.map((name) => ({ name, sdsConfig: adsConfigSource() })),
        ...(clientCerts.validate
          ? { validationContextSdsSecretConfig: { name: names.CA_BUNDLE_SECRET_NAME, sdsConfig: adsConfigSource() } }
          : {}),
      },
      ...(clientCerts.require ? { requireClientCertificate: wrapped(true) } : {}),
    },
  };
}

function filterChain(p: TcpListenerPlan, c: TcpChainPlan): ProtoObject {
  return {
    ...(c.name !== undefined ? { name: c.name } : {}),
    ...(c.serverNames.length > 0 ? { filterChainMatch: { serverNames: c.serverNames } } : {}),
    filters: [tcpProxy(p.statPrefix, c.cluster)],
    ...(c.tlsSecrets !== undefined ? { transportSocket: downstreamTls(c.tlsSecrets, p.clientCerts) } : {}),
  };
}

/** The listener and clusters of a planned TcpService; Envoy wants a unique default chain, as default_filter_chain. */
export function tcpListener(p: TcpListenerPlan): { listener: ProtoObject; clusters: ProtoObject[] } {
  const chains = p.chains.map((c) => filterChain(p, c));
  const plain = chains.filter((c) => c.filterChainMatch === undefined);
  const matched = chains.filter((c) => c.filterChainMatch !== undefined);
  const listener: ProtoObject = {
    name: p.name,
    address: socketAddress(p.address, p.port),
    ...(p.tlsInspector
      ? {
          listenerFilters: [
            { name: 'envoy.filters.listener.tls_inspector', typedConfig: { '@type': TYPES.tlsInspector } },
          ],
        }
      : {}),
    filterChains: matched.length > 0 ? matched : plain.slice(0, 1),
    ...(matched.length > 0 && plain[0] ? { defaultFilterChain: plain[0] } : {}),
  };
  return { listener, clusters: p.clusters.map((c) => tcpCluster(c.name, c.targets, c.plaintext)) };
}
