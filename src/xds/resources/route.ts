// Route configuration builders: route configurations, virtual hosts, routes and their parts.
import type { RouteInput } from '../plan/route-input.js';
import type {
  Any,
  RouteConfiguration,
  envoy_config_core_v3_HeaderValueOption as HeaderValueOption,
  envoy_config_route_v3_HeaderMatcher as HeaderMatcher,
  envoy_config_route_v3_RetryPolicy as RetryPolicy,
  envoy_config_route_v3_Route as Route,
  envoy_config_route_v3_RouteAction as RouteAction,
  envoy_config_route_v3_RouteAction_HashPolicy as HashPolicy,
  envoy_config_route_v3_RouteMatch as RouteMatch,
  envoy_config_route_v3_VirtualHost as VirtualHost,
} from '../../../proto/envoy-types.js';
import type { ProtoObject } from '../../../proto/loader.js';
import type { ClientConfig, HeaderMatch, LoadBalancing, PathMatch } from '../../model/types.js';
import { duration, headerValue, sharedDuration, sortedBy, wrapped } from './common.js';
import { withFields } from '../shapes.js';
import { escapeRegex, hostPatternRegex } from '../../model/patterns.js';

export { escapeRegex } from '../../model/patterns.js';

/** Which route configuration a route is built for. */
export type RouteVariant = 'http' | 'https' | 'grpc';

/** Header mutations of a route configuration, applied to every route of it. */
export type RouteConfigHeaders = Pick<
  RouteConfiguration,
  'responseHeadersToAdd' | 'requestHeadersToAdd' | 'requestHeadersToRemove' | 'mostSpecificHeaderMutationsWins'
>;

export function routeConfiguration(
  name: string,
  virtualHosts: readonly VirtualHost[],
  headers?: RouteConfigHeaders,
): RouteConfiguration {
  const rc: RouteConfiguration = { name, virtualHosts: [...virtualHosts] };
  return headers ? Object.assign(rc, headers) : rc;
}

export function virtualHost(name: string, domains: readonly string[], routes: readonly Route[]): VirtualHost {
  return { name, domains: [...domains], routes: [...routes] };
}

/**
 * An `:authority` regex for any of the host patterns (case-insensitive, like Envoy's virtual-host
 * domain match), port allowed.
 */
export function authorityRegex(hostPatterns: readonly string[]): string {
  const alts = hostPatterns.map(hostPatternRegex);
  return `^${alts.length === 1 ? alts[0] : `(?:${alts.join('|')})`}(:[0-9]+)?$`;
}

/**
 * A full-match (RE2) header matcher. Envoy: `string_match.safe_regex` (`safe_regex_match` is
 * deprecated); proxyless gRPC clients: `safe_regex_match`, the only form C-core accepts.
 */
export function headerRegexMatcher(name: string, regex: string, variant: RouteVariant): HeaderMatcher {
  return variant === 'grpc' ? { name, safeRegexMatch: { regex } } : { name, stringMatch: { safeRegex: { regex } } };
}

/**
 * Path part of a RouteMatch. PlainPrefix → `prefix`; Exact → `path`; k8s Prefix →
 * `pathSeparatedPrefix` (trailing `/` dropped, `/` alone → `prefix: '/'`) for Envoy, and an
 * equivalent `safeRegex` for gRPC clients (grpc-js-xds NACKs path_separated_prefix).
 * No path → `prefix: '/'`, set explicitly (oneof members are only encoded when present).
 */
export function pathMatch(path: PathMatch | undefined, variant: RouteVariant): RouteMatch {
  if (!path) return { prefix: '/' };
  if (path.type === 'Exact') return { path: path.value };
  if (path.type === 'PlainPrefix') return { prefix: path.value };
  const segment = path.value.replace(/\/+$/, '');
  if (segment === '') return { prefix: '/' };
  if (variant === 'grpc') return { safeRegex: { regex: `^${escapeRegex(segment)}(/.*)?$` } };
  return { pathSeparatedPrefix: segment };
}

export function routeMatch(
  path: PathMatch | undefined,
  headers: readonly HeaderMatch[],
  authority: readonly string[] | undefined,
  variant: RouteVariant,
): RouteMatch {
  const m = pathMatch(path, variant);
  if (headers.length === 0 && authority === undefined) return m;
  const matchers = sortedBy(headers, (h) => h.name).map((h) => headerRegexMatcher(h.name, h.regex, variant));
  if (authority !== undefined) matchers.unshift(headerRegexMatcher(':authority', authorityRegex(authority), variant));
  m.headers = matchers;
  return m;
}

/**
 * Otoroshi's upstream path: `<root><rest>`, rest = the path with the matched prefix removed
 * (stripPath) or without its leading `/` (no strip). Replicated literally, including `//x` for
 * root `/` + stripped `/api` on `/api/x`. undefined when nothing changes.
 */
export function pathRewrite(
  path: PathMatch | undefined,
  root: string,
  stripPath: boolean,
): Pick<RouteAction, 'regexRewrite' | 'prefixRewrite'> | undefined {
  const matched = path?.value ?? '/';
  if (stripPath && path !== undefined) {
    const segment = matched.replace(/\/+$/, '');
    if (path.type === 'Prefix' && segment !== '' && segment !== matched) {
      // The Envoy match is on `/api`, Otoroshi strips `/api/`: strip an optional trailing slash too.
      return { regexRewrite: { pattern: { regex: `^${escapeRegex(segment)}/?` }, substitution: root } };
    }
    if (root === '') return { regexRewrite: { pattern: { regex: `^${escapeRegex(matched)}` }, substitution: '' } };
    return root === matched ? undefined : { prefixRewrite: root };
  }
  const effective = path?.type === 'Prefix' && matched !== '/' ? matched.replace(/\/+$/, '') : matched;
  const rewritten = root + effective.slice(1);
  if (rewritten === effective) return undefined;
  if (rewritten === '') return { regexRewrite: { pattern: { regex: '^/' }, substitution: '' } };
  return { prefixRewrite: rewritten };
}

/** Retry policy when retries > 1 and the circuit breaker (Otoroshi's retry loop) is on. */
export function retryPolicy(cc: ClientConfig, variant: RouteVariant): RetryPolicy | undefined {
  if (!cc.useCircuitBreaker || cc.retries <= 1) return undefined;
  const policy: RetryPolicy = {
    retryOn: variant === 'grpc' ? 'unavailable' : 'connect-failure,refused-stream,reset,gateway-error',
    numRetries: wrapped(cc.retries - 1),
    perTryTimeout: duration(cc.callTimeout),
  };
  if (cc.retryInitialDelay > 0) {
    const max = cc.retryInitialDelay * Math.pow(Math.max(cc.backoffFactor, 1), cc.retries - 2);
    policy.retryBackOff = {
      baseInterval: duration(cc.retryInitialDelay),
      maxInterval: duration(Math.min(max, 24 * 3600 * 1000)),
    };
  }
  return policy;
}

/** Sticky → `otoroshi-tracking` cookie (set when missing), IpAddressHash → source IP. */
export function hashPolicy(lb: LoadBalancing): HashPolicy[] | undefined {
  if (lb === 'Sticky') return [{ cookie: { name: 'otoroshi-tracking', ttl: duration(2592000 * 1000), path: '/' } }];
  if (lb === 'IpAddressHash') return [{ connectionProperties: { sourceIp: true } }];
  return undefined;
}

/**
 * additionalHeaders Host: that literal; overrideHost: one literal when every target shares the host, else the
 * endpoint's hostname.
 */
export function hostRewrite(d: RouteInput): Pick<RouteAction, 'hostRewriteLiteral' | 'autoHostRewrite'> | undefined {
  if (d.hostRewrite !== undefined) return { hostRewriteLiteral: d.hostRewrite };
  if (!d.overrideHost || d.targets.length === 0) return undefined;
  const hosts = new Set(d.targets.map((t) => t.host));
  const [only] = [...hosts];
  if (hosts.size === 1 && only !== undefined) return { hostRewriteLiteral: only };
  return { autoHostRewrite: wrapped(true) };
}

/** Which cluster(s) a route sends to. */
export type ClusterChoice = { cluster: string } | { weightedClusters: { name: string; weight: number }[] };

/** Weighted clusters: `total_weight` is deprecated in Envoy but required by proxyless C-core. */
export function clusterSpecifier(
  choice: ClusterChoice,
  variant: RouteVariant,
): Pick<RouteAction, 'cluster' | 'weightedClusters'> {
  if ('cluster' in choice) return { cluster: choice.cluster };
  const clusters = sortedBy(choice.weightedClusters, (c) => c.name).map((c) => ({
    name: c.name,
    weight: wrapped(c.weight),
  }));
  if (variant !== 'grpc') return { weightedClusters: { clusters } };
  const total = choice.weightedClusters.reduce((s, c) => s + c.weight, 0);
  return { weightedClusters: { clusters, totalWeight: wrapped(total) } };
}

/** The forwarding RouteAction of a descriptor. */
export function routeAction(
  d: RouteInput,
  path: PathMatch | undefined,
  choice: ClusterChoice,
  variant: RouteVariant,
): RouteAction {
  const a: RouteAction = clusterSpecifier(choice, variant);
  a.timeout = sharedDuration(d.clientConfig.globalTimeout);
  // gRPC clients take the call deadline from max_stream_duration (gRFC A31), Envoy from timeout.
  if (variant !== 'grpc') a.idleTimeout = sharedDuration(d.clientConfig.idleTimeout);
  else a.maxStreamDuration = { maxStreamDuration: sharedDuration(d.clientConfig.globalTimeout) };
  const rewrite = pathRewrite(path, d.root, d.stripPath);
  if (rewrite) Object.assign(a, rewrite);
  const host = hostRewrite(d);
  if (host) Object.assign(a, host);
  const retry = retryPolicy(d.clientConfig, variant);
  if (retry) a.retryPolicy = retry;
  const hash = hashPolicy(d.loadBalancing);
  if (hash) a.hashPolicy = hash;
  return a;
}

/** An Otoroshi error as a direct response: status, JSON body and the Otoroshi-Error headers. */
export function otoroshiErrorRoute(name: string, match: RouteMatch, status: number, message: string): Route {
  return {
    name,
    match,
    directResponse: { status, body: { inlineString: JSON.stringify({ 'Otoroshi-Error': message }) } },
    responseHeadersToAdd: [
      headerValue('Content-Type', 'application/json', 'OVERWRITE_IF_EXISTS_OR_ADD'),
      headerValue('Otoroshi-Error', 'true', 'OVERWRITE_IF_EXISTS_OR_ADD'),
      headerValue('Otoroshi-Error-Msg', message, 'OVERWRITE_IF_EXISTS_OR_ADD'),
    ],
  };
}

/** forceHttps: Otoroshi answers plain HTTP with a 303 to the same URL over https. */
export function httpsRedirectRoute(name: string, match: RouteMatch): Route {
  return { name, match, redirect: { httpsRedirect: true, responseCode: 'SEE_OTHER' } };
}

function isEmpty(o: Record<string, string>): boolean {
  for (const _ in o) return false;
  return true;
}

/** User header values are literal: `%` (Envoy's formatter marker) is escaped. */
function headersToAdd(overwrite: Record<string, string>, ifAbsent: Record<string, string>): HeaderValueOption[] {
  if (isEmpty(overwrite) && isEmpty(ifAbsent)) return [];
  const lit = (v: string): string => v.replace(/%/g, '%%');
  const out = sortedBy(Object.entries(overwrite), ([k]) => k).map(([k, v]) =>
    headerValue(k, lit(v), 'OVERWRITE_IF_EXISTS_OR_ADD'),
  );
  for (const [k, v] of sortedBy(Object.entries(ifAbsent), ([k]) => k))
    out.push(headerValue(k, lit(v), 'ADD_IF_ABSENT'));
  return out;
}

/** additionalHeaders(Out) overwrite, missingOnlyHeaders(In|Out) add if absent, removeHeaders(In|Out) remove. */
/** The header mutation fields of a route. */
export type HeaderMutations = Pick<
  Route,
  'requestHeadersToAdd' | 'requestHeadersToRemove' | 'responseHeadersToAdd' | 'responseHeadersToRemove'
>;

export function headerMutations(d: RouteInput): HeaderMutations {
  const out: HeaderMutations = {};
  const reqAdd = headersToAdd(d.additionalHeaders, d.missingOnlyHeadersIn);
  if (reqAdd.length > 0) out.requestHeadersToAdd = reqAdd;
  if (d.removeHeadersIn.length > 0) out.requestHeadersToRemove = [...new Set(d.removeHeadersIn)].sort();
  const resAdd = headersToAdd(d.additionalHeadersOut, d.missingOnlyHeadersOut);
  if (resAdd.length > 0) out.responseHeadersToAdd = resAdd;
  if (d.removeHeadersOut.length > 0) out.responseHeadersToRemove = [...new Set(d.removeHeadersOut)].sort();
  return out;
}

/** A forwarding route. */
export function forwardRoute(name: string, match: RouteMatch, action: RouteAction, mutations: HeaderMutations): Route {
  return Object.assign({ name, match, route: action }, mutations);
}

/** typed_per_filter_config: filter name → its per-route configuration. */
export type PerFilterConfig = { [filter: string]: Any };

/**
 * `route` with a `typed_per_filter_config`; `route` itself when undefined. ProtoObject: translate.ts
 * still assembles these maps untyped.
 */
export function withPerFilterConfig(route: Route, perFilter: PerFilterConfig | ProtoObject | undefined): Route {
  return perFilter === undefined ? route : withFields(route, { typedPerFilterConfig: perFilter as PerFilterConfig });
}
