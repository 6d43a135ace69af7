// TcpService → Envoy listener (tcp_proxy filter chains) and clusters.
import type {
  Cluster,
  Listener,
  envoy_config_endpoint_v3_LbEndpoint as LbEndpoint,
  envoy_config_listener_v3_Filter as NetworkFilter,
  envoy_config_listener_v3_FilterChain as FilterChain,
  envoy_config_core_v3_TransportSocket as TransportSocket,
} from '../../../proto/envoy-types.js';
import { TYPE_URL } from '../../../proto/type-urls.js';
import type { ConfigError, TcpServiceModel, TcpTarget, TlsCertificate } from '../../model/types.js';
import { wildcardMatch } from '../../model/regex.js';
import { adsConfigSource, duration, socketAddress, wrapped } from './common.js';
import { tlsMatchMetadata, upstreamTlsTransport } from './cluster.js';
import { downstreamTlsSocket, tlsInspector } from './listener.js';
import * as names from '../names.js';

const TLS_KEY = 'oxds_tls';

function tcpProxy(statPrefix: string, cluster: string): NetworkFilter {
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

/** Envoy server_names accept exact names and `*.suffix`; `*` alone = the default chain. */
function serverNamesOf(domain: string): string[] | null | 'any' {
  const d = domain.trim().toLowerCase();
  if (d === '*' || d === '') return 'any';
  if (!d.includes('*')) return [d];
  if (d.startsWith('*.') && !d.slice(1).includes('*')) return [d];
  return null;
}

function downstreamTls(secretNames: readonly string[], s: TcpServiceModel, caBundle: boolean): TransportSocket {
  const validate = s.clientAuth !== 'None' && caBundle;
  return downstreamTlsSocket({
    '@type': TYPE_URL.DownstreamTlsContext,
    commonTlsContext: {
      tlsCertificateSdsSecretConfigs: secretNames.map((name) => ({ name, sdsConfig: adsConfigSource() })),
      ...(validate
        ? { validationContextSdsSecretConfig: { name: names.CA_BUNDLE_SECRET_NAME, sdsConfig: adsConfigSource() } }
        : {}),
    },
    ...(s.clientAuth === 'Need' && validate ? { requireClientCertificate: wrapped(true) } : {}),
  });
}

export interface TcpOutput {
  listener?: Listener;
  clusters: Cluster[];
  errors: ConfigError[];
}

/**
 * One listener on `interface:port`. Disabled (SNI ignored) or no SNI: all rules' targets in one
 * cluster (Enabled: TLS terminated, Envoy picks the certificate by SNI among every known one).
 * SNI (PassThrough or Enabled with sni.enabled): one filter chain per rule matching its domain
 * (tls_inspector), `forwardIfNoMatch` → a default chain to `forwardsTo` (plaintext); no default
 * chain otherwise (the connection is closed). Enabled terminates TLS with the certificate whose
 * names match the rule's domain.
 */
export function tcpService(s: TcpServiceModel, certs: readonly TlsCertificate[], caBundle: boolean): TcpOutput {
  const errors: ConfigError[] = [];
  const warn = (message: string, field: string): void => {
    errors.push({
      code: 'OXDS_NOT_SUPPORTED',
      message,
      field,
      kind: 'TcpService',
      namespace: s.namespace,
      name: s.sourceKey.split('/').pop() ?? s.name,
      severity: 'warning',
    });
  };
  const lname = names.tcpListenerName(s.id);
  const stat = names.statPrefix(lname);
  const clusters: Cluster[] = [];
  const chains: FilterChain[] = [];
  // Disabled: plain TCP, SNI ignored. PassThrough / Enabled with sni.enabled: route by SNI.
  const sni = s.sni.enabled && s.tls !== 'Disabled';
  const certFor = (domain: string): TlsCertificate | undefined =>
    certs.find((c) => c.dnsNames.some((n) => domain === '*' || wildcardMatch(domain, n) || wildcardMatch(n, domain)));
  if (!sni) {
    const all = s.rules.flatMap((r) => r.targets);
    const cname = names.tcpClusterName(s.id, 'all');
    clusters.push(tcpCluster(cname, all));
    const chain: FilterChain = { filters: [tcpProxy(stat, cname)] };
    if (s.tls === 'Enabled') {
      // TLS terminated with the certificate Envoy picks by SNI among every known one.
      const secrets = [...new Set(certs.map((c) => names.secretName(c.secretName)))].sort();
      if (secrets.length === 0) {
        errors.push({
          code: 'OXDS_UNRESOLVED_REFERENCE',
          message: 'tls: Enabled but no certificate is known: listener not published',
          field: 'spec.tls',
          kind: 'TcpService',
          namespace: s.namespace,
          name: s.sourceKey.split('/').pop() ?? s.name,
          severity: 'warning',
        });
        return { clusters: [], errors };
      }
      chain.transportSocket = downstreamTls(secrets, s, caBundle);
    }
    chains.push(chain);
  } else {
    const taken = new Set<string>();
    s.rules.forEach((r, i) => {
      const sn = serverNamesOf(r.domain);
      if (sn === null) {
        warn(
          `rule domain ${JSON.stringify(r.domain)}: Envoy matches SNI on exact names and *.suffix only: rule not supported, skipped`,
          `spec.rules[${i}].domain`,
        );
        return;
      }
      const list = sn === 'any' ? [] : sn.filter((n) => !taken.has(n));
      if (sn === 'any' ? taken.has('*') : list.length === 0) return; // an earlier rule wins (first match)
      if (sn === 'any') taken.add('*');
      list.forEach((n) => taken.add(n));
      const cname = names.tcpClusterName(s.id, `r${i}`);
      clusters.push(tcpCluster(cname, r.targets));
      const chain: FilterChain = {
        name: `rule-${i}`,
        ...(list.length > 0 ? { filterChainMatch: { serverNames: list } } : {}),
        filters: [tcpProxy(stat, cname)],
      };
      if (s.tls === 'Enabled') {
        const cert = certFor(r.domain);
        if (!cert) {
          errors.push({
            code: 'OXDS_UNRESOLVED_REFERENCE',
            message: `no certificate serves ${r.domain}: rule skipped`,
            field: `spec.rules[${i}].domain`,
            kind: 'TcpService',
            namespace: s.namespace,
            name: s.sourceKey.split('/').pop() ?? s.name,
            severity: 'warning',
          });
          return;
        }
        chain.transportSocket = downstreamTls([names.secretName(cert.secretName)], s, caBundle);
      }
      chains.push(chain);
    });
    if (s.sni.forwardIfNoMatch && s.sni.forwardsTo && !taken.has('*')) {
      const cname = names.tcpClusterName(s.id, 'fwd');
      clusters.push(tcpCluster(cname, [s.sni.forwardsTo], true));
      // Otoroshi forwards unmatched connections as they are (plaintext to forwardsTo).
      chains.push({ name: 'forward-if-no-match', filters: [tcpProxy(stat, cname)] });
    }
  }
  if (s.clientAuth !== 'None' && s.tls === 'Enabled' && !caBundle)
    warn(
      `clientAuth ${s.clientAuth} needs the mesh CA bundle (no CA configured): client certificates are not verified`,
      'spec.clientAuth',
    );
  if (chains.length === 0) return { clusters: [], errors };
  // Envoy: the default chain (no match) must be unique and is given as default_filter_chain.
  const plain = chains.filter((c) => c.filterChainMatch === undefined);
  const matched = chains.filter((c) => c.filterChainMatch !== undefined);
  const listener: Listener = {
    name: lname,
    address: socketAddress(s.interface, s.port),
    ...(sni || s.tls === 'Enabled' ? { listenerFilters: [tlsInspector()] } : {}),
    filterChains: matched.length > 0 ? matched : plain.slice(0, 1),
    ...(matched.length > 0 && plain[0] ? { defaultFilterChain: plain[0] } : {}),
  };
  return { listener, clusters, errors };
}
