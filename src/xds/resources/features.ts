// Builders of the edge features: RBAC (ipFiltering), CORS, gzip (compressor), health checks,
// upstream (m)TLS over SDS, local rate limits, Otoroshi's headers. Pure functions.
import type { RouteInput } from '../plan/route-input.js';
import type {
  Packed,
  UpstreamTlsContext,
  envoy_config_accesslog_v3_AccessLogFilter as AccessLogFilter,
  envoy_config_core_v3_HeaderValueOption as HeaderValueOption,
  envoy_config_core_v3_HealthCheck as HealthCheck,
  envoy_config_rbac_v3_Principal as Principal,
  envoy_extensions_compression_gzip_compressor_v3_Gzip_CompressionLevel as GzipCompressionLevel,
  envoy_config_rbac_v3_RBAC as RbacRules,
  envoy_extensions_filters_network_http_connection_manager_v3_HttpFilter as HttpFilter,
  envoy_extensions_filters_network_http_connection_manager_v3_ResponseMapper as ResponseMapper,
  envoy_extensions_transport_sockets_tls_v3_CommonTlsContext as CommonTlsContext,
  envoy_type_matcher_v3_StringMatcher as StringMatcher,
} from '../../../proto/envoy-types.js';
import { TYPE_URL } from '../../../proto/type-urls.js';
import type { CorsSettings, GlobalConfigModel, GzipSettings, IpFiltering } from '../../model/types.js';
import { ipEntryToCidrs } from '../../model/edge-features.js';
import { adsConfigSource, duration, headerValue, wrapped } from './common.js';
import { shortHash } from '../names.js';

/**
 * A local-reply mapper filter on the reply's response code details (CEL). The RBAC and local
 * rate limit filters set their response flag / dynamic metadata only after sendLocalReply has
 * run the mappers, but the details are set before: they are the reliable discriminator (and never
 * match ext_authz's own 403s, whose bodies come from our Check service).
 */
function detailsFilter(expression: string): AccessLogFilter {
  return {
    extensionFilter: {
      name: 'envoy.access_loggers.extension_filters.cel',
      typedConfig: { '@type': TYPE_URL.CelExpressionFilter, expression },
    },
  };
}

/** Per-route RBAC filter (descriptor ipFiltering): no rules in the HCM (= pass), rules per route. */
export const RBAC_FILTER_NAME = 'envoy.filters.http.rbac';
/** GlobalConfig ipFiltering: rules in the HCM, on every route. */
export const GLOBAL_RBAC_FILTER_NAME = 'oxds.rbac.global';
export const CORS_FILTER_NAME = 'envoy.filters.http.cors';
export const GLOBAL_RATE_LIMIT_FILTER_NAME = 'oxds.ratelimit.global';
export const IP_NOT_ALLOWED = 'Your IP address is not allowed';

// ------------------------------------------------------------------ RBAC

function cidrPrincipals(entries: readonly string[]): Principal[] {
  const out: Principal[] = [];
  for (const e of entries)
    for (const c of ipEntryToCidrs(e) ?? [])
      out.push({ remoteIp: { addressPrefix: c.address, prefixLen: wrapped(c.prefixLen) } });
  return out;
}

/**
 * Otoroshi's rule: a non-empty whitelist denies every IP it does not list; the blacklist
 * denies what it lists. One ALLOW policy: in(whitelist) and not in(blacklist). The client IP is
 * Envoy's remote_ip: the downstream address after trusted X-Forwarded-For hops.
 */
export function rbacRules(f: IpFiltering): RbacRules {
  const ids: Principal[] = [];
  const white = cidrPrincipals(f.whitelist);
  const black = cidrPrincipals(f.blacklist);
  if (white.length > 0) ids.push({ orIds: { ids: white } });
  if (black.length > 0) ids.push({ notId: { orIds: { ids: black } } });
  if (ids.length === 0) ids.push({ any: true });
  const principal = ids.length === 1 ? (ids[0] as Principal) : { andIds: { ids } };
  return {
    action: 'ALLOW',
    policies: { 'otoroshi-ip-filtering': { permissions: [{ any: true }], principals: [principal] } },
  };
}

export function rbacFilter(name: string, f: IpFiltering | undefined): HttpFilter {
  return { name, typedConfig: { '@type': TYPE_URL.Rbac, ...(f ? { rules: rbacRules(f) } : {}) } };
}

export function rbacPerRoute(f: IpFiltering): Packed<'RbacPerRoute'> {
  return { '@type': TYPE_URL.RbacPerRoute, rbac: { rules: rbacRules(f) } };
}

/**
 * HCM local reply mapper: a request the RBAC filter denied gets Otoroshi's 403 (body, headers)
 * instead of Envoy's `RBAC: access denied` (details `rbac_access_denied_matched_policy[...]`).
 */
export function ipDeniedMapper(): ResponseMapper {
  return {
    filter: detailsFilter("response.code_details.startsWith('rbac_access_denied')"),
    statusCode: wrapped(403),
    body: { inlineString: JSON.stringify({ 'Otoroshi-Error': IP_NOT_ALLOWED }) },
    bodyFormatOverride: { textFormatSource: { inlineString: '%LOCAL_REPLY_BODY%' }, contentType: 'application/json' },
    headersToAdd: [
      headerValue('Otoroshi-Error', 'true', 'OVERWRITE_IF_EXISTS_OR_ADD'),
      headerValue('Otoroshi-Error-Msg', IP_NOT_ALLOWED, 'OVERWRITE_IF_EXISTS_OR_ADD'),
    ],
  };
}

/** Local reply mapper: the global rate limit's 429 carries Otoroshi's JSON body. */
export function throttledMapper(): ResponseMapper {
  return {
    filter: detailsFilter("response.code_details == 'local_rate_limited'"),
    body: { inlineString: JSON.stringify({ 'Otoroshi-Error': '[GLOBAL] You performed too much requests' }) },
    bodyFormatOverride: { textFormatSource: { inlineString: '%LOCAL_REPLY_BODY%' }, contentType: 'application/json' },
  };
}

// ------------------------------------------------------------------ CORS

export function corsFilter(): HttpFilter {
  return { name: CORS_FILTER_NAME, typedConfig: { '@type': TYPE_URL.Cors } };
}

function originMatcher(origin: string): StringMatcher {
  const o = origin.trim();
  if (o === '*' || o === '') return { safeRegex: { regex: '.*' } };
  return { exact: o };
}

export function corsPolicy(c: CorsSettings): Packed<'CorsPolicy'> {
  return {
    '@type': TYPE_URL.CorsPolicy,
    allowOriginStringMatch: c.allowOrigin
      .split(',')
      .filter((x) => x.trim() !== '')
      .map(originMatcher)
      .concat(c.allowOrigin.trim() === '' ? [originMatcher('*')] : []),
    ...(c.allowMethods.length > 0 ? { allowMethods: c.allowMethods.join(',') } : {}),
    ...(c.allowHeaders.length > 0 ? { allowHeaders: c.allowHeaders.join(',') } : {}),
    ...(c.exposeHeaders.length > 0 ? { exposeHeaders: c.exposeHeaders.join(',') } : {}),
    ...(c.maxAge !== undefined ? { maxAge: String(c.maxAge) } : {}),
    allowCredentials: wrapped(c.allowCredentials),
  };
}

// ------------------------------------------------------------------ gzip

/** One compressor filter per distinct gzip configuration, disabled by default, enabled per route. */
export function gzipFilterName(g: GzipSettings): string {
  return `oxds.gzip.${shortHash({ w: g.whiteList, b: g.bufferSize, l: g.compressionLevel })}`;
}

export function gzipFilter(g: GzipSettings): HttpFilter {
  return {
    name: gzipFilterName(g),
    disabled: true,
    typedConfig: {
      '@type': TYPE_URL.Compressor,
      compressorLibrary: {
        name: 'gzip',
        typedConfig: {
          '@type': TYPE_URL.Gzip,
          compressionLevel: `COMPRESSION_LEVEL_${g.compressionLevel}` as GzipCompressionLevel,
          chunkSize: wrapped(Math.min(65536, Math.max(4096, g.bufferSize))),
        },
      },
      responseDirectionConfig: {
        commonConfig: { ...(g.whiteList.length > 0 ? { contentType: [...g.whiteList].sort() } : {}) },
      },
    },
  };
}

export function gzipPerRoute(): Packed<'FilterConfig'> {
  return { '@type': TYPE_URL.FilterConfig, config: { '@type': TYPE_URL.CompressorPerRoute, overrides: {} } };
}

// ------------------------------------------------------------------ global throttling

/** GlobalConfig throttlingQuota: calls/s over a 10 s window (quota × 10 tokens every 10 s). */
export function globalRateLimitFilter(g: GlobalConfigModel): HttpFilter | undefined {
  if (g.throttlingQuota <= 0 || g.throttlingQuota >= 10_000_000) return undefined;
  const tokens = Math.min(g.throttlingQuota * 10, 4_294_967_295);
  return {
    name: GLOBAL_RATE_LIMIT_FILTER_NAME,
    typedConfig: {
      '@type': TYPE_URL.LocalRateLimit,
      statPrefix: 'oxds_global_throttling',
      tokenBucket: { maxTokens: tokens, tokensPerFill: wrapped(tokens), fillInterval: duration(10_000) },
      filterEnabled: {
        defaultValue: { numerator: 100, denominator: 'HUNDRED' },
        runtimeKey: 'oxds_global_throttling_enabled',
      },
      filterEnforced: {
        defaultValue: { numerator: 100, denominator: 'HUNDRED' },
        runtimeKey: 'oxds_global_throttling_enforced',
      },
      responseHeadersToAdd: [
        headerValue('Otoroshi-Error', 'true', 'OVERWRITE_IF_EXISTS_OR_ADD'),
        headerValue('Otoroshi-Error-Msg', '[GLOBAL] You performed too much requests', 'OVERWRITE_IF_EXISTS_OR_ADD'),
      ],
      localRateLimitPerDownstreamConnection: false,
    },
  };
}

// ------------------------------------------------------------------ health check

/**
 * Otoroshi's health check: GET <url>, 5 s timeout, 200–499 is healthy, 3 failures eject.
 * `http2`: the cluster speaks HTTP/2 to its targets, so does the check (Envoy defaults to HTTP/1.1).
 */
export function healthCheck(url: string, host: string | undefined, http2 = false): HealthCheck {
  return {
    timeout: duration(5000),
    interval: duration(10_000),
    unhealthyThreshold: wrapped(3),
    healthyThreshold: wrapped(1),
    httpHealthCheck: {
      path: url,
      ...(host ? { host } : {}),
      expectedStatuses: [{ start: 200, end: 500 }],
      ...(http2 ? { codecClientType: 'HTTP2' } : {}),
    },
  };
}

// ------------------------------------------------------------------ upstream TLS with SDS

export interface UpstreamTlsSpec {
  sni: string;
  /** SDS tls_certificate secret names presented as client certificates. */
  clientCerts: string[];
  /** SDS validation_context secret name; undefined = no verification. */
  validation?: string;
  /** SAN checked against the SNI (Otoroshi's hostname verification; off with `loose`). */
  verifyHostname: boolean;
}

/** The UpstreamTlsContext of a TLS setting (upstreamTlsSocket packs it). */
export function upstreamTlsContext(s: UpstreamTlsSpec): UpstreamTlsContext {
  const common: CommonTlsContext = {};
  if (s.clientCerts.length > 0)
    common.tlsCertificateSdsSecretConfigs = s.clientCerts.map((name) => ({ name, sdsConfig: adsConfigSource() }));
  if (s.validation !== undefined) {
    const sds = { name: s.validation, sdsConfig: adsConfigSource() };
    if (s.verifyHostname) {
      common.combinedValidationContext = {
        defaultValidationContext: { matchTypedSubjectAltNames: [{ sanType: 'DNS', matcher: { exact: s.sni } }] },
        validationContextSdsSecretConfig: sds,
      };
    } else common.validationContextSdsSecretConfig = sds;
  }
  return {
    sni: s.sni,
    ...(Object.keys(common).length > 0 ? { commonTlsContext: common } : {}),
  };
}

// ------------------------------------------------------------------ Otoroshi headers

/** `%` starts an Envoy header formatter: user values are literal. */
export function literalHeaderValue(v: string): string {
  return v.replace(/%/g, '%%');
}

const TIMESTAMP = '%START_TIME(%Y-%m-%dT%H:%M:%S.%3f%z)%';

/** Headers never forwarded upstream by any route (Otoroshi strips them), lower-cased, sorted. */
export const ALWAYS_STRIPPED: readonly string[] = [
  'otoroshi-authorization',
  'otoroshi-claim',
  'otoroshi-client-id',
  'otoroshi-client-secret',
  'otoroshi-state',
];

const X_FORWARDED = ['x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host'];
/** strippedRequestHeaders without custom apikey headers: with and without xForwardedHeaders. */
const STRIPPED_WITH_XFF: readonly string[] = [...ALWAYS_STRIPPED].sort();
const STRIPPED_WITHOUT_XFF: readonly string[] = [...ALWAYS_STRIPPED, ...X_FORWARDED].sort();

/** Headers never forwarded upstream (Otoroshi strips them), lower-cased. */
export function strippedRequestHeaders(d: RouteInput): string[] {
  const c = d.apiKeyConstraints?.customHeadersAuth;
  if (!c?.clientIdHeaderName && !c?.clientSecretHeaderName)
    return [...(d.xForwardedHeaders ? STRIPPED_WITH_XFF : STRIPPED_WITHOUT_XFF)];
  const out = new Set(ALWAYS_STRIPPED);
  if (c.clientIdHeaderName) out.add(c.clientIdHeaderName.toLowerCase());
  if (c.clientSecretHeaderName) out.add(c.clientSecretHeaderName.toLowerCase());
  if (!d.xForwardedHeaders) for (const h of X_FORWARDED) out.add(h);
  return [...out].sort();
}

/** Otoroshi's request headers of every forwarded request: proxied host, request id, timestamp. */
export function alwaysAddedRequestHeaders(): HeaderValueOption[] {
  return [
    headerValue('Otoroshi-Proxied-Host', '%REQ(:AUTHORITY)%', 'OVERWRITE_IF_EXISTS_OR_ADD'),
    headerValue('Otoroshi-Request-Id', '%REQ(X-REQUEST-ID)%', 'OVERWRITE_IF_EXISTS_OR_ADD'),
    headerValue('Otoroshi-Request-Timestamp', TIMESTAMP, 'OVERWRITE_IF_EXISTS_OR_ADD'),
  ];
}

/**
 * The request headers alwaysAddedRequestHeaders writes or reads (lower-cased): a route removing
 * one of them must remove and add those headers itself, in Otoroshi's order (removals first).
 */
export const ALWAYS_ADDED_TOUCH: ReadonlySet<string> = new Set([
  'otoroshi-proxied-host',
  'otoroshi-request-id',
  'otoroshi-request-timestamp',
  'x-request-id',
  ':authority',
  'host',
]);

/** Otoroshi's headers back to the client on a forwarded request (sendOtoroshiHeadersBack). */
export function headersBack(): HeaderValueOption[] {
  return [
    headerValue('Otoroshi-Request-Id', '%REQ(X-REQUEST-ID)%', 'OVERWRITE_IF_EXISTS_OR_ADD'),
    headerValue('Otoroshi-Request-Timestamp', TIMESTAMP, 'OVERWRITE_IF_EXISTS_OR_ADD'),
    headerValue('Otoroshi-Proxy-Latency', '%RESPONSE_DURATION%', 'OVERWRITE_IF_EXISTS_OR_ADD'),
  ];
}

/** The names headersBack writes, lower-cased and sorted. */
export const HEADERS_BACK: readonly string[] = headersBack()
  .map((h) => (h.header?.key ?? '').toLowerCase())
  .sort();

/**
 * Envoy-side Otoroshi request headers of a descriptor beyond alwaysAddedRequestHeaders: X-Forwarded-Host
 * upstream when xForwardedHeaders (the headers back are the route configuration's: gateway-routes.ts).
 */
export function otoroshiHeaders(d: RouteInput): { request: HeaderValueOption[] } {
  const request = d.xForwardedHeaders
    ? [headerValue('X-Forwarded-Host', '%REQ(:AUTHORITY)%', 'OVERWRITE_IF_EXISTS_OR_ADD')]
    : [];
  return { request };
}
