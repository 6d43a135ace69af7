// ext_authz builders (Envoy nodes only): the HTTP filter, its per-route configurations and the
// static cluster that reaches our Check service (src/authz/). Proxyless gRPC clients never get
// any of this: grpc-js / C-core cannot run ext_authz and NACK an unknown non-optional filter.
import net from 'node:net';
import type {
  Cluster,
  Packed,
  envoy_config_core_v3_HeaderValueOption as HeaderValueOption,
  envoy_config_core_v3_TransportSocket as TransportSocket,
  envoy_extensions_filters_network_http_connection_manager_v3_HttpFilter as HttpFilter,
  envoy_extensions_transport_sockets_tls_v3_SubjectAltNameMatcher as SubjectAltNameMatcher,
} from '../../../proto/envoy-types.js';
import { TYPE_URL } from '../../../proto/type-urls.js';
import type { RouteInput } from '../plan/route-input.js';
import type { AuthzTarget } from '../types.js';
import { duration, headerValue, socketAddress, wrapped } from './common.js';
import { http2ProtocolOptions, upstreamTlsSocket } from './cluster.js';
import type { PerFilterConfig } from './route.js';

/** Retried on another replica: the Check never reached a service that could answer it. */
const AUTHZ_RETRY_ON = 'connect-failure,refused-stream,reset,unavailable';

/** The HTTP filter name: also the key of the per-route configurations. */
export const EXT_AUTHZ_FILTER_NAME = 'envoy.filters.http.ext_authz';

/**
 * The ext_authz HTTP filter (goes before the router). gRPC service over `clusterName`, V3 Check
 * API, no request body, no peer certificate. Denied responses flow through unchanged: status,
 * headers and body are the ones our Check service set in `denied_response` (Otoroshi's errors,
 * see docs/) — the HCM has no local_reply_config to rewrite them. `status_on_error` (the
 * service unreachable / timed out and failure_mode_allow off) is 503, not Envoy's default 403:
 * an outage of ours is not a client error. The route cache is not cleared after a Check: the
 * route (and its descriptor_id) was chosen before, and stays. With several replicas, a Check that
 * failed to reach one (connection refused or reset, replica gone) is retried on the next.
 */
export function extAuthzFilter(clusterName: string, a: AuthzTarget): HttpFilter {
  return {
    name: EXT_AUTHZ_FILTER_NAME,
    typedConfig: {
      '@type': TYPE_URL.ExtAuthz,
      grpcService: {
        envoyGrpc: {
          clusterName,
          ...((a.replicas?.length ?? 0) > 0
            ? { retryPolicy: { numRetries: wrapped(a.replicas!.length), retryOn: AUTHZ_RETRY_ON } }
            : {}),
        },
        timeout: duration(a.timeoutMs),
      },
      transportApiVersion: 'V3',
      failureModeAllow: a.failureModeAllow,
      statusOnError: { code: 'ServiceUnavailable' },
      includePeerCertificate: false,
    },
  };
}

/** Per-route: check with `descriptor_id` (decide.ts picks the descriptor by it, no host/path lookup). */
export function extAuthzCheck(descriptorId: string): Packed<'ExtAuthzPerRoute'> {
  return { '@type': TYPE_URL.ExtAuthzPerRoute, checkSettings: { contextExtensions: { descriptor_id: descriptorId } } };
}

/**
 * The upstream `Otoroshi-Client-Id` of a checked route: the apikey's client id from the Check's
 * dynamic metadata. The route's request_headers_to_remove runs after ext_authz's header mutations,
 * so a header set by the Check would be stripped with the client's own; this one is added after
 * the removal, from a value only the Check can write. No apikey (public call, failure-mode-allow):
 * the value is empty and Envoy adds no header.
 */
export function clientIdFromCheck(): HeaderValueOption {
  return headerValue(
    'Otoroshi-Client-Id',
    `%DYNAMIC_METADATA(${EXT_AUTHZ_FILTER_NAME}:client_id)%`,
    'OVERWRITE_IF_EXISTS_OR_ADD',
  );
}

/** Per-route: no Check call at all. */
export function extAuthzDisabled(): Packed<'ExtAuthzPerRoute'> {
  return { '@type': TYPE_URL.ExtAuthzPerRoute, disabled: true };
}

/** `typed_per_filter_config` of a route: checked (with its descriptor id) or disabled. */
export function extAuthzPerFilterConfig(descriptorId: string | undefined): PerFilterConfig {
  return { [EXT_AUTHZ_FILTER_NAME]: descriptorId === undefined ? extAuthzDisabled() : extAuthzCheck(descriptorId) };
}

/** Public patterns that full-match every path (Otoroshi matches `req.path`, which starts with `/`). */
const MATCH_EVERY_PATH = new Set(['.*', '/.*', '^.*$', '^/.*$', '^.*', '^/.*', '.*$', '/.*$', '(.*)', '/(.*)']);

/**
 * Whether the Check can be skipped on every route of `d`: decide.ts would allow every request
 * unconditionally (no private pattern, a public pattern matching every path, and nothing else
 * the Check enforces: headersVerification, readOnly, restrictions, detectApiKeySooner, an active
 * JWT verifier). Ingress descriptors (`publicPatterns: ["/.*"]`) are the common case. Patterns
 * that make only some paths public keep the Check on: decide.ts evaluates them per request.
 */
export function checkIsNoop(d: RouteInput): boolean {
  if (d.privatePatterns.length > 0) return false;
  if (!d.publicPatterns.some((p) => MATCH_EVERY_PATH.has(p.trim()))) return false;
  if (Object.keys(d.headersVerification).length > 0 || d.readOnly || d.detectApiKeySooner) return false;
  if (d.restrictions?.enabled === true) return false;
  const jwt = d.jwtVerifier;
  if (jwt !== undefined && jwt.enabled && jwt.ids.length > 0) return false;
  return true;
}

/** Every replica of the Check service, the first one being `address:port`. */
function authzEndpoints(a: AuthzTarget): Array<{ address: string; port: number }> {
  return [{ address: a.address, port: a.port }, ...(a.replicas ?? [])];
}

/**
 * TLS to the Check service: HTTP/2 by ALPN, its certificate verified against the CA and the SNI (or the replica IPs).
 */
function authzTlsSocket(a: AuthzTarget, tls: NonNullable<AuthzTarget['tls']>): TransportSocket {
  const sans: SubjectAltNameMatcher[] =
    tls.sni !== undefined
      ? [{ sanType: 'DNS', matcher: { exact: tls.sni } }]
      : authzEndpoints(a)
          .filter((e) => net.isIP(e.address) !== 0)
          .map((e) => ({ sanType: 'IP_ADDRESS', matcher: { exact: e.address } }));
  return upstreamTlsSocket({
    ...(tls.sni !== undefined ? { sni: tls.sni } : {}),
    commonTlsContext: {
      alpnProtocols: ['h2'],
      validationContext: {
        trustedCa: { inlineString: tls.trustedCa },
        ...(sans.length > 0 ? { matchTypedSubjectAltNames: sans } : {}),
      },
    },
  });
}

/**
 * The cluster of our Check service: HTTP/2, STATIC for IP addresses, STRICT_DNS when a replica
 * is a name, an inline load assignment (no EDS) with one endpoint per replica, round robin.
 * Circuit-breaker limits raised well above Envoy's default of 1024 concurrent requests, which a
 * busy gateway would reach and turn into status_on_error. With several replicas, one that fails
 * 3 calls in a row is ejected for 10 s (at most half of them at once), and the filter retries a
 * Check that never reached a replica (see extAuthzFilter). TLS when the Check port speaks it.
 */
export function extAuthzCluster(name: string, a: AuthzTarget): Cluster {
  const limit = wrapped(1_000_000);
  const endpoints = authzEndpoints(a);
  return {
    name,
    type: endpoints.every((e) => net.isIP(e.address) !== 0) ? 'STATIC' : 'STRICT_DNS',
    connectTimeout: duration(Math.max(1, a.timeoutMs)),
    ...http2ProtocolOptions(),
    circuitBreakers: {
      thresholds: [{ maxConnections: limit, maxPendingRequests: limit, maxRequests: limit, maxRetries: limit }],
    },
    ...(endpoints.length > 1
      ? {
          outlierDetection: {
            consecutive_5xx: wrapped(3),
            interval: duration(1000),
            baseEjectionTime: duration(10_000),
            maxEjectionPercent: wrapped(50),
          },
        }
      : {}),
    ...(a.tls !== undefined ? { transportSocket: authzTlsSocket(a, a.tls) } : {}),
    loadAssignment: {
      clusterName: name,
      endpoints: [{ lbEndpoints: endpoints.map((e) => ({ endpoint: { address: socketAddress(e.address, e.port) } })) }],
    },
  };
}
