// TcpService → Envoy listener (tcp_proxy filter chains) and clusters.
import type { ProtoObject } from '../../proto/loader.js';
import type { ConfigError, TcpServiceModel, TcpTarget, TlsCertificate } from '../../model/types.js';
import { hostsOverlap } from '../../model/patterns.js';
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

/** Envoy server_names accept exact names and `*.suffix`; `*` alone = the default chain. */
function serverNamesOf(domain: string): string[] | null | 'any' {
  const d = domain.trim().toLowerCase();
  if (d === '*' || d === '') return 'any';
  if (!d.includes('*')) return [d];
  if (d.startsWith('*.') && !d.slice(1).includes('*')) return [d];
  return null;
}

function downstreamTls(secretNames: readonly string[], s: TcpServiceModel, caBundle: boolean): ProtoObject {
  const validate = s.clientAuth !== 'None' && caBundle;
  return {
    name: 'envoy.transport_sockets.tls',
    typedConfig: {
      '@type': TYPES.downstreamTls,
      commonTlsContext: {
        tlsCertificateSdsSecretConfigs: secretNames.map((name) => ({ name, sdsConfig: adsConfigSource() })),
        ...(validate
          ? { validationContextSdsSecretConfig: { name: names.CA_BUNDLE_SECRET_NAME, sdsConfig: adsConfigSource() } }
          : {}),
      },
      ...(s.clientAuth === 'Need' && validate ? { requireClientCertificate: wrapped(true) } : {}),
    },
  };
}

export interface TcpOutput {
  listener?: ProtoObject;
  clusters: ProtoObject[];
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
  const clusters: ProtoObject[] = [];
  const chains: ProtoObject[] = [];
  // Disabled: plain TCP, SNI ignored (Otoroshi does not read it then). PassThrough / Enabled with sni.enabled: route by SNI.
  const sni = s.sni.enabled && s.tls !== 'Disabled';
  const certFor = (domain: string): TlsCertificate | undefined =>
    certs.find((c) => c.dnsNames.some((n) => hostsOverlap(domain, n)));
  if (!sni) {
    const all = s.rules.flatMap((r) => r.targets);
    const cname = names.tcpClusterName(s.id, 'all');
    clusters.push(tcpCluster(cname, all));
    const chain: ProtoObject = { filters: [tcpProxy(stat, cname)] };
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
      const chain: ProtoObject = {
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
  const listener: ProtoObject = {
    name: lname,
    address: socketAddress(s.interface, s.port),
    ...(sni || s.tls === 'Enabled'
      ? {
          listenerFilters: [
            { name: 'envoy.filters.listener.tls_inspector', typedConfig: { '@type': TYPES.tlsInspector } },
          ],
        }
      : {}),
    filterChains: matched.length > 0 ? matched : plain.slice(0, 1),
    ...(matched.length > 0 && plain[0] ? { defaultFilterChain: plain[0] } : {}),
  };
  return { listener, clusters, errors };
}
