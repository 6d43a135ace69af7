// Envoy routes of one planned route entry, per route configuration variant, in Otoroshi's order.
import type { ProtoObject } from '../../proto/loader.js';
import type { Descriptor } from '../../model/types.js';
import * as names from '../names.js';
import type { Entry } from '../plan/order.js';
import { duration, headerValue, sortedBy } from './common.js';
import {
  CORS_FILTER_NAME,
  RBAC_FILTER_NAME,
  corsPolicy,
  gzipFilterName,
  gzipPerRoute,
  otoroshiHeaders,
  rbacPerRoute,
  strippedRequestHeaders,
} from './features.js';
import {
  type RouteVariant,
  forwardRoute,
  headerMutations,
  httpsRedirectRoute,
  otoroshiErrorRoute,
  routeAction,
  routeMatch,
  withPerFilterConfig,
} from './route.js';
import { checkIsNoop, clientIdFromCheck, extAuthzPerFilterConfig } from './ext-authz.js';

/** Envoy per-route filter configurations of a forwarding (or maintenance) route. */
function featurePerFilter(
  d: Descriptor,
  authzConfig: ProtoObject | undefined,
  forwarding: boolean,
): ProtoObject | undefined {
  const out: ProtoObject = { ...(authzConfig ?? {}) };
  if (d.ipFiltering) out[RBAC_FILTER_NAME] = rbacPerRoute(d.ipFiltering);
  if (forwarding && d.cors) out[CORS_FILTER_NAME] = corsPolicy(d.cors);
  if (forwarding && d.gzip) out[gzipFilterName(d.gzip)] = gzipPerRoute();
  return Object.keys(out).length > 0 ? out : undefined;
}

/**
 * Header mutations of a forwarding route: Otoroshi's own headers (Envoy only), then the user's;
 * `checked`: the Check runs on the route and its apikey's client id goes upstream.
 */
function forwardMutations(d: Descriptor, variant: RouteVariant, checked: boolean): ProtoObject {
  const user = headerMutations(d);
  if (variant === 'grpc') return user;
  const oto = otoroshiHeaders(d);
  const reqAdd = [
    ...oto.request,
    ...(checked ? [clientIdFromCheck()] : []),
    ...((user.requestHeadersToAdd as ProtoObject[] | undefined) ?? []),
  ];
  const resAdd = [...oto.response, ...((user.responseHeadersToAdd as ProtoObject[] | undefined) ?? [])];
  const reqRemove = [
    ...new Set([...strippedRequestHeaders(d), ...((user.requestHeadersToRemove as string[] | undefined) ?? [])]),
  ].sort();
  return {
    requestHeadersToAdd: reqAdd,
    requestHeadersToRemove: reqRemove,
    ...(resAdd.length > 0 ? { responseHeadersToAdd: resAdd } : {}),
    ...(user.responseHeadersToRemove !== undefined ? { responseHeadersToRemove: user.responseHeadersToRemove } : {}),
  };
}

function withHeaderMatchers(match: ProtoObject, extra: readonly ProtoObject[]): ProtoObject {
  const headers = [...((match.headers as ProtoObject[] | undefined) ?? []), ...extra];
  return { ...match, headers };
}

/** `redirection`: a direct 3xx with the literal Location (Otoroshi answers it before anything else). */
function redirectionRoute(name: string, match: ProtoObject, code: number, to: string): ProtoObject {
  return {
    name,
    match,
    directResponse: { status: code },
    responseHeadersToAdd: [headerValue('Location', to.replace(/%/g, '%%'), 'OVERWRITE_IF_EXISTS_OR_ADD')],
  };
}

/** The route of `api.openApiDescriptorUrl`: a 302 to it from OPENAPI_PATH. */
export const OPENAPI_PATH = '/.well-known/otoroshi/openapi.json';

/**
 * The routes of an entry for a variant, in order (empty when that variant has no equivalent).
 * Otoroshi's order: redirection, headersVerification (400), readOnly (405), forceHttps
 * (303), ipFiltering (RBAC, 403), maintenance/build (503), then forwarding (customTimeouts first).
 * With ext_authz (Envoy variants only), a forwarding route checks with its descriptor id unless
 * the Check is a no-op for the descriptor (checkIsNoop: wholly public); direct responses and
 * redirects never call it (Otoroshi answers them before authentication).
 */
export function routesOf(e: Entry, variant: RouteVariant): ProtoObject[] {
  const d = e.c.d;
  const authz = e.c.authz && variant !== 'grpc';
  const name = names.routeName(d.id, e.pathIndex);
  const match = routeMatch(e.path, d.matchingHeaders, e.authority, variant);
  const noCheck = authz ? extAuthzPerFilterConfig(undefined) : undefined;
  const out: ProtoObject[] = [];
  if (variant !== 'grpc') {
    if (d.openApiDescriptorUrl !== undefined && (e.pathIndex ?? 0) === 0) {
      const m = routeMatch({ value: OPENAPI_PATH, type: 'Exact' }, d.matchingHeaders, e.authority, variant);
      out.push(withPerFilterConfig(redirectionRoute(`${name}~openapi`, m, 302, d.openApiDescriptorUrl), noCheck));
    }
    if (d.redirection)
      return [
        ...out,
        withPerFilterConfig(redirectionRoute(name, match, d.redirection.code, d.redirection.to), noCheck),
      ];
    sortedBy(Object.entries(d.headersVerification), ([k]) => k).forEach(([h, v], i) => {
      // A missing header must hit the 400 too: inverted matchers skip absent headers unless they count as empty.
      const m = withHeaderMatchers(match, [
        { name: h.toLowerCase(), stringMatch: { exact: v }, invertMatch: true, treatMissingHeaderAsEmpty: true },
      ]);
      out.push(withPerFilterConfig(otoroshiErrorRoute(`${name}~hv${i}`, m, 400, 'Missing header(s)'), noCheck));
    });
    if (d.readOnly) {
      const m = withHeaderMatchers(match, [
        { name: ':method', stringMatch: { safeRegex: { regex: 'GET|HEAD|OPTIONS' } }, invertMatch: true },
      ]);
      out.push(
        withPerFilterConfig(
          otoroshiErrorRoute(`${name}~ro`, m, 405, 'Method not allowed. Can only handle GET, HEAD, OPTIONS'),
          noCheck,
        ),
      );
    }
  }
  if (variant === 'http' && d.forceHttps)
    return [...out, withPerFilterConfig(httpsRedirectRoute(name, match), noCheck)];
  if (d.maintenanceMode || d.buildMode) {
    if (variant === 'grpc') return out; // grpc-js-xds NACKs a route whose action is not `route`
    const err = otoroshiErrorRoute(
      name,
      match,
      503,
      d.maintenanceMode ? 'Service in maintenance mode' : 'Service under construction',
    );
    return [...out, withPerFilterConfig(err, featurePerFilter(d, noCheck, false))];
  }
  const choice = variant === 'grpc' ? e.c.grpc.choice : e.c.envoy.choice;
  const checked = authz && !checkIsNoop(d);
  const check = authz ? extAuthzPerFilterConfig(checked ? d.id : undefined) : undefined;
  const perFilter = variant === 'grpc' ? undefined : featurePerFilter(d, check, true);
  const mutations = forwardMutations(d, variant, checked);
  if (variant !== 'grpc') {
    d.clientConfig.customTimeouts.forEach((ct, i) => {
      const m = withHeaderMatchers(match, [
        { name: ':path', stringMatch: { safeRegex: { regex: `(?:${ct.path})(?:\\?.*)?` } } },
      ]);
      const action: ProtoObject = {
        ...routeAction(d, e.path, choice, variant),
        timeout: duration(ct.globalTimeout),
        idleTimeout: duration(ct.idleTimeout),
      };
      const retry = action.retryPolicy as ProtoObject | undefined;
      if (retry) action.retryPolicy = { ...retry, perTryTimeout: duration(ct.callTimeout) };
      out.push(withPerFilterConfig(forwardRoute(`${name}~ct${i}`, m, action, mutations), perFilter));
    });
  }
  out.push(
    withPerFilterConfig(forwardRoute(name, match, routeAction(d, e.path, choice, variant), mutations), perFilter),
  );
  return out;
}

/**
 * Otoroshi's 404 for requests no descriptor takes (Envoy only). With ext_authz it never calls
 * the Check: Otoroshi answers 404 before any authentication, and the Check could only say 404.
 */
export function notFoundRoute(authz: boolean): ProtoObject {
  const route = otoroshiErrorRoute('oxds-not-found', { prefix: '/' }, 404, 'Service not found');
  return authz ? withPerFilterConfig(route, extAuthzPerFilterConfig(undefined)) : route;
}
