// Every generated name, in one place. Names are contracts: Envoy and gRPC clients subscribe to
// them, the snapshot consistency check follows them, and docs quote them.
import { hash } from 'node:crypto';

export const HTTP_LISTENER_NAME = 'oxds-http';
export const HTTPS_LISTENER_NAME = 'oxds-https';

export const HTTP_ROUTE_CONFIG_NAME = 'oxds-http';
export const HTTPS_ROUTE_CONFIG_NAME = 'oxds-https';
/** Prefix of the proxyless gRPC route configurations (one per api_listener host). */
export const GRPC_ROUTE_CONFIG_NAME = 'oxds-grpc';
/**
 * Proxyless gRPC: every api_listener `<host>` has its own RouteConfiguration `oxds-grpc~<host>`
 * holding only the virtual hosts that can match that host, so a route change re-sends only the
 * route configurations of the hosts it touches, to the clients subscribed to them.
 */
export function grpcRouteConfigName(host: string): string {
  return `${GRPC_ROUTE_CONFIG_NAME}~${host}`;
}
/** Route configuration of on-demand api_listeners whose host only matches wildcard patterns. */
export const GRPC_WILDCARD_ROUTE_CONFIG_NAME = `${GRPC_ROUTE_CONFIG_NAME}~*`;

/** Envoy only: the static cluster (inline endpoints, no EDS) of our ext_authz Check service. */
export const EXT_AUTHZ_CLUSTER_NAME = 'oxds-ext-authz';

/** JSON with object keys sorted, so that equal values always hash the same. */
export function stableJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(stableJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${stableJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

/** First 8 hex chars of the SHA-256 of the stable JSON of `value`. */
export function shortHash(value: unknown): string {
  return hash('sha256', stableJson(value), 'hex').slice(0, 8);
}

/**
 * `oxds~<descriptorId>~<hash>`: the hash covers whatever makes two clusters different (see
 * clusterHashInput in translate.ts), never the endpoint IPs (those travel by EDS only).
 * The EDS service name is the cluster name.
 */
export function clusterName(descriptorId: string, hashInput: unknown): string {
  return clusterNameOfHash(descriptorId, shortHash(hashInput));
}

/** clusterName, given the shortHash of its hash input (callers that hash few distinct inputs keep them). */
export function clusterNameOfHash(descriptorId: string, inputHash: string): string {
  return `oxds~${descriptorId}~${inputHash}`;
}

/** gRPC only: one LOGICAL_DNS cluster per dns target of a descriptor. */
export function dnsTargetClusterName(descriptorCluster: string, targetId: string): string {
  return `${descriptorCluster}~${targetId}`;
}

/** SDS name of the mesh CA trust bundle (a validation_context secret): a documented contract. */
export const CA_BUNDLE_SECRET_NAME = 'otoroshi-ca-bundle';
/**
 * SDS name of a sidecar's own workload certificate in its outbound clusters (the same bytes for every
 * sidecar, so they are shared); only a sidecar's own snapshot holds a secret of that name.
 */
export const SIDECAR_CERT_SECRET = 'oxds-sidecar-workload-cert';

/** SDS secret name: the TlsBinding/TlsCertificate secretName (`<namespace>/<name>`), as is. */
export function secretName(name: string): string {
  return name;
}

/** Envoy stat prefixes: only `[A-Za-z0-9_]`, everything else becomes `_`. */
export function statPrefix(name: string): string {
  return name.replace(/[^A-Za-z0-9_]/g, '_');
}

/** A virtual host per host pattern: its name is the pattern itself (unique in a route configuration). */
export function virtualHostName(hostPattern: string): string {
  return hostPattern;
}

/** Route name: `<descriptorId>/<path index or "all">`; unique within a virtual host. */
export function routeName(descriptorId: string, pathIndex: number | undefined): string {
  return `${descriptorId}/${pathIndex === undefined ? 'all' : String(pathIndex)}`;
}

/** HTTPS filter chain name: one per TLS binding. */
export function filterChainName(secret: string): string {
  return `oxds-https~${secret}`;
}

/** Envoy only: the canary cluster of a descriptor cluster. */
export function canaryClusterName(descriptorCluster: string): string {
  return `${descriptorCluster}~canary`;
}

/** SDS validation_context secret made of a trusted certificate's chain: `<ns>/<name>~trust`. */
export function trustSecretName(certSecretName: string): string {
  return `${certSecretName}~trust`;
}

/** TcpService listener: `oxds-tcp~<id>`; its clusters `oxds-tcp~<id>~<rule index | fwd | all>`. */
export function tcpListenerName(id: string): string {
  return `oxds-tcp~${id}`;
}

export function tcpClusterName(id: string, part: string): string {
  return `oxds-tcp~${id}~${part}`;
}
