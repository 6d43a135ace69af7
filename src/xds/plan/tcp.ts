// The plan of a TcpService's listener: its filter chains (by SNI or one for all), their clusters and
// certificates, and what Envoy cannot do of it (reported as problems on the TcpService).
import type { ConfigError, TcpServiceModel, TcpTarget, TlsCertificate } from '../../model/types.js';
import { hostsOverlap } from '../../model/patterns.js';
import * as names from '../names.js';
import { nameOfKey, originFields } from '../../model/ids.js';

export interface TcpClusterPlan {
  name: string;
  targets: TcpTarget[];
  /** Targets' `tls` ignored (Otoroshi forwards unmatched connections as they are). */
  plaintext: boolean;
}

export interface TcpChainPlan {
  /** Absent for the single chain of a listener without SNI routing. */
  name?: string;
  /** SNI server names this chain matches; empty: the default chain. */
  serverNames: string[];
  cluster: string;
  /** TLS terminated with these SDS certificates (absent: passed through or plain). */
  tlsSecrets?: string[];
}

export interface TcpListenerPlan {
  name: string;
  statPrefix: string;
  address: string;
  port: number;
  /** The tls_inspector listener filter reads SNI (SNI routing or TLS termination). */
  tlsInspector: boolean;
  /** Terminated TLS verifies client certificates against the mesh CA bundle; `require`: a certificate is needed. */
  clientCerts: { validate: boolean; require: boolean };
  chains: TcpChainPlan[];
  clusters: TcpClusterPlan[];
}

/** Envoy server_names accept exact names and `*.suffix`; `*` alone = the default chain. */
function serverNamesOf(domain: string): string[] | null | 'any' {
  const d = domain.trim().toLowerCase();
  if (d === '*' || d === '') return 'any';
  if (!d.includes('*')) return [d];
  if (d.startsWith('*.') && !d.slice(1).includes('*')) return [d];
  return null;
}

type Report = (code: ConfigError['code'], message: string, field: string) => void;

function reporter(s: TcpServiceModel, errors: ConfigError[]): Report {
  return (code, message, field) =>
    errors.push({
      code,
      message,
      field,
      kind: 'TcpService',
      namespace: s.namespace,
      name: nameOfKey(s.sourceKey, s.namespace),
      ...originFields(s.origin),
      severity: 'warning',
    });
}

/** Disabled (SNI ignored) or no SNI: every rule's targets in one cluster; Enabled: the certificate is chosen by SNI. */
function singleChain(
  p: TcpListenerPlan,
  s: TcpServiceModel,
  certs: readonly TlsCertificate[],
  report: Report,
): boolean {
  const cname = names.tcpClusterName(s.id, 'all');
  p.clusters.push({ name: cname, targets: s.rules.flatMap((r) => r.targets), plaintext: false });
  const chain: TcpChainPlan = { serverNames: [], cluster: cname };
  if (s.tls === 'Enabled') {
    const secrets = [...new Set(certs.map((c) => names.secretName(c.secretName)))].sort();
    if (secrets.length === 0) {
      report(
        'OXDS_UNRESOLVED_REFERENCE',
        'tls: Enabled but no certificate is known: listener not published',
        'spec.tls',
      );
      return false;
    }
    chain.tlsSecrets = secrets;
  }
  p.chains.push(chain);
  return true;
}

/** SNI routing: one chain per rule matching its domain (an earlier rule wins), then the forwarding default. */
function sniChains(p: TcpListenerPlan, s: TcpServiceModel, certs: readonly TlsCertificate[], report: Report): void {
  const taken = new Set<string>();
  s.rules.forEach((r, i) => {
    const sn = serverNamesOf(r.domain);
    if (sn === null) {
      const why = 'Envoy matches SNI on exact names and *.suffix only: rule not supported, skipped';
      report('OXDS_NOT_SUPPORTED', `rule domain ${JSON.stringify(r.domain)}: ${why}`, `spec.rules[${i}].domain`);
      return;
    }
    const list = sn === 'any' ? [] : sn.filter((n) => !taken.has(n));
    if (sn === 'any' ? taken.has('*') : list.length === 0) return; // an earlier rule wins (first match)
    if (sn === 'any') taken.add('*');
    list.forEach((n) => taken.add(n));
    const cname = names.tcpClusterName(s.id, `r${i}`);
    p.clusters.push({ name: cname, targets: r.targets, plaintext: false });
    const chain: TcpChainPlan = { name: `rule-${i}`, serverNames: list, cluster: cname };
    if (s.tls === 'Enabled') {
      const cert = certs.find((c) => c.dnsNames.some((n) => hostsOverlap(r.domain, n)));
      if (!cert) {
        report(
          'OXDS_UNRESOLVED_REFERENCE',
          `no certificate serves ${r.domain}: rule skipped`,
          `spec.rules[${i}].domain`,
        );
        return;
      }
      chain.tlsSecrets = [names.secretName(cert.secretName)];
    }
    p.chains.push(chain);
  });
  if (s.sni.forwardIfNoMatch && s.sni.forwardsTo && !taken.has('*')) {
    const cname = names.tcpClusterName(s.id, 'fwd');
    p.clusters.push({ name: cname, targets: [s.sni.forwardsTo], plaintext: true });
    p.chains.push({ name: 'forward-if-no-match', serverNames: [], cluster: cname });
  }
}

/**
 * One listener on `interface:port`, or none (with the reason) when no chain is left. SNI
 * (PassThrough, or Enabled with sni.enabled): one chain per rule; `forwardIfNoMatch` → a default
 * chain to `forwardsTo` (plaintext); no default chain otherwise (the connection is closed).
 */
export function planTcpService(
  s: TcpServiceModel,
  certs: readonly TlsCertificate[],
  caBundle: boolean,
): { listener?: TcpListenerPlan; errors: ConfigError[] } {
  const errors: ConfigError[] = [];
  const report = reporter(s, errors);
  const name = names.tcpListenerName(s.id);
  // Disabled: plain TCP, SNI ignored (Otoroshi does not read it then).
  const sni = s.sni.enabled && s.tls !== 'Disabled';
  const validate = s.clientAuth !== 'None' && caBundle;
  const p: TcpListenerPlan = {
    name,
    statPrefix: names.statPrefix(name),
    address: s.interface,
    port: s.port,
    tlsInspector: sni || s.tls === 'Enabled',
    clientCerts: { validate, require: s.clientAuth === 'Need' && validate },
    chains: [],
    clusters: [],
  };
  if (sni) sniChains(p, s, certs, report);
  else if (!singleChain(p, s, certs, report)) return { errors };
  if (s.clientAuth !== 'None' && s.tls === 'Enabled' && !caBundle)
    report(
      'OXDS_NOT_SUPPORTED',
      `clientAuth ${s.clientAuth} needs the mesh CA bundle (no CA configured): client certificates are not verified`,
      'spec.clientAuth',
    );
  return p.chains.length === 0 ? { errors } : { listener: p, errors };
}
