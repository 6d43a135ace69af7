// Envoy routes of one planned route entry, per route configuration variant, in Otoroshi's order.
import type { ProtoObject } from '../../../proto/loader.js';
import type { RouteInput } from '../plan/route-input.js';
import * as names from '../names.js';
import type { Entry } from '../plan/order.js';
import { OPENAPI_PATH, type RouteStep, routeSteps } from '../plan/route-steps.js';

export { OPENAPI_PATH } from '../plan/route-steps.js';
import { duration, headerValue } from './common.js';
import { frozen, withFields } from '../shapes.js';
import {
  ALWAYS_ADDED_TOUCH,
  ALWAYS_STRIPPED,
  CORS_FILTER_NAME,
  HEADERS_BACK,
  RBAC_FILTER_NAME,
  alwaysAddedRequestHeaders,
  corsPolicy,
  gzipFilterName,
  gzipPerRoute,
  headersBack,
  otoroshiHeaders,
  rbacPerRoute,
  strippedRequestHeaders,
} from './features.js';
import {
  type RouteConfigHeaders,
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
  d: RouteInput,
  authzConfig: ProtoObject | undefined,
  forwarding: boolean,
): ProtoObject | undefined {
  // Without any feature, the ext_authz configuration alone (never mutated: routes share it).
  if (!d.ipFiltering && !(forwarding && (d.cors || d.gzip))) return authzConfig;
  const out: ProtoObject = { ...(authzConfig ?? {}) };
  if (d.ipFiltering) out[RBAC_FILTER_NAME] = rbacPerRoute(d.ipFiltering);
  if (forwarding && d.cors) out[CORS_FILTER_NAME] = corsPolicy(d.cors);
  if (forwarding && d.gzip) out[gzipFilterName(d.gzip)] = gzipPerRoute();
  return out;
}

/**
 * Header mutations every forwarding route of an Envoy route configuration shares, set once on the
 * route configuration instead of on each route (Envoy builds the header parsers of every route on
 * each route table update): Otoroshi's request headers, and its headers back to the client
 * (sendOtoroshiHeadersBack, the default). The route configuration's mutations run before each
 * route's own (most_specific_header_mutations_wins), so a route's additions win over them and its
 * removals run after them: the routes that must not answer with the headers back remove them
 * (withoutHeadersBack), and forwardMutations handles the cases where a route's own removals would
 * undo the shared additions. Proxyless gRPC route configurations get none (their routes carry no
 * Otoroshi headers).
 */
export function routeConfigHeaders(variant: RouteVariant): RouteConfigHeaders | undefined {
  return variant === 'grpc' ? undefined : ENVOY_ROUTE_CONFIG_HEADERS;
}

/** One object (never mutated): route configurations encode it once. */
const ENVOY_ROUTE_CONFIG_HEADERS: RouteConfigHeaders = {
  responseHeadersToAdd: headersBack(),
  requestHeadersToAdd: alwaysAddedRequestHeaders(),
  requestHeadersToRemove: [...ALWAYS_STRIPPED],
  mostSpecificHeaderMutationsWins: true,
};

const lower = (h: string): string => h.toLowerCase();
const SHARED_STRIPPED: ReadonlySet<string> = new Set(ALWAYS_STRIPPED);

/**
 * `route` without Otoroshi's headers back (they come from the route configuration): Otoroshi's own
 * answers (404, errors, redirects) never carry them.
 */
function withoutHeadersBack(route: ProtoObject): ProtoObject {
  return withFields(route, { responseHeadersToRemove: [...HEADERS_BACK] });
}

/**
 * The response mutations of a forwarding route (Envoy variants) under the route configuration's
 * headers back. sendOtoroshiHeadersBack off: the route removes them, the upstream's own included, as
 * Otoroshi does (it always drops those names from the upstream's response and adds its own only
 * when the flag is on). On: a route whose own removals name one of them adds them again after its
 * removals (Otoroshi applies removeHeadersOut before adding its headers back).
 */
function responseMutations(d: RouteInput, user: ProtoObject): ProtoObject {
  const removed = (user.responseHeadersToRemove as string[] | undefined) ?? [];
  const again = d.sendOtoroshiHeadersBack && removed.some((h) => HEADERS_BACK.includes(lower(h)));
  const add = [...(again ? headersBack() : []), ...((user.responseHeadersToAdd as ProtoObject[] | undefined) ?? [])];
  const mine = new Set(removed.map(lower));
  const extra = d.sendOtoroshiHeadersBack ? [] : HEADERS_BACK.filter((h) => !mine.has(h));
  const remove = [...removed, ...extra].sort();
  const out: ProtoObject = {};
  if (add.length > 0) out.responseHeadersToAdd = add;
  if (remove.length > 0) out.responseHeadersToRemove = remove;
  return out;
}

/**
 * Header mutations of a forwarding route: Otoroshi's own headers (Envoy only) beyond the route
 * configuration's (routeConfigHeaders), then the user's; `checked`: the Check runs on the route and its
 * apikey's client id goes upstream. Otoroshi removes before it adds: a route removing a header the
 * shared additions write or read removes and adds those itself, after its removals (responseMutations
 * for the response side).
 */
function forwardMutations(d: RouteInput, variant: RouteVariant, checked: boolean): ProtoObject {
  const user = headerMutations(d);
  if (variant === 'grpc') return user;
  const oto = otoroshiHeaders(d);
  const res = responseMutations(d, user);
  const shared = SHARED_STRIPPED;
  const own = [...strippedRequestHeaders(d), ...((user.requestHeadersToRemove as string[] | undefined) ?? [])].filter(
    (h) => !shared.has(lower(h)),
  );
  const redo = own.some((h) => ALWAYS_ADDED_TOUCH.has(lower(h)));
  const again = redo ? alwaysAddedRequestHeaders() : [];
  const reqAdd = [
    ...again,
    ...oto.request,
    ...(checked ? [clientIdFromCheck()] : []),
    ...((user.requestHeadersToAdd as ProtoObject[] | undefined) ?? []),
  ];
  const reqRemove = [...new Set([...own, ...again.map((h) => lower(h.header?.key ?? ''))])].sort();
  const out: ProtoObject = {};
  if (reqAdd.length > 0) out.requestHeadersToAdd = reqAdd;
  if (reqRemove.length > 0) out.requestHeadersToRemove = reqRemove;
  if (res.responseHeadersToAdd !== undefined) out.responseHeadersToAdd = res.responseHeadersToAdd;
  if (res.responseHeadersToRemove !== undefined) out.responseHeadersToRemove = res.responseHeadersToRemove;
  return out;
}

function withHeaderMatchers(match: ProtoObject, extra: readonly ProtoObject[]): ProtoObject {
  const headers = [...((match.headers as ProtoObject[] | undefined) ?? []), ...extra];
  return withFields(match, { headers });
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

/** What every route of an entry shares: its name, match, and ext_authz per-route configurations. */
interface EntryRoutes {
  e: Entry;
  variant: RouteVariant;
  name: string;
  match: ProtoObject;
  /** ext_authz off for this route (direct responses, redirects); undefined without ext_authz. */
  noCheck: ProtoObject | undefined;
}

/** A direct response or redirect of a step that is answered before forwarding. */
function guardRoute(x: EntryRoutes, step: Exclude<RouteStep, { kind: 'forward' }>): ProtoObject {
  const d = x.e.c.route;
  const name = `${x.name}${step.suffix}`;
  switch (step.kind) {
    case 'openapi': {
      const m = routeMatch({ value: OPENAPI_PATH, type: 'Exact' }, d.matchingHeaders, x.e.authority, x.variant);
      return withPerFilterConfig(redirectionRoute(name, m, 302, step.to), x.noCheck);
    }
    case 'redirect':
      return withPerFilterConfig(redirectionRoute(name, x.match, step.code, step.to), x.noCheck);
    case 'header-required': {
      // A missing header must hit the 400 too: inverted matchers skip absent headers unless they count as empty.
      const m = withHeaderMatchers(x.match, [
        {
          name: step.header.toLowerCase(),
          stringMatch: { exact: step.value },
          invertMatch: true,
          treatMissingHeaderAsEmpty: true,
        },
      ]);
      return withPerFilterConfig(otoroshiErrorRoute(name, m, 400, 'Missing header(s)'), x.noCheck);
    }
    case 'read-only': {
      const m = withHeaderMatchers(x.match, [
        { name: ':method', stringMatch: { safeRegex: { regex: 'GET|HEAD|OPTIONS' } }, invertMatch: true },
      ]);
      const message = 'Method not allowed. Can only handle GET, HEAD, OPTIONS';
      return withPerFilterConfig(otoroshiErrorRoute(name, m, 405, message), x.noCheck);
    }
    case 'https-redirect':
      return withPerFilterConfig(httpsRedirectRoute(name, x.match), x.noCheck);
    case 'unavailable':
      return withPerFilterConfig(
        otoroshiErrorRoute(name, x.match, 503, step.message),
        featurePerFilter(d, x.noCheck, false),
      );
  }
}

/**
 * Forwarding routes. With ext_authz (Envoy variants only), they check with the descriptor id
 * unless the Check is a no-op for the descriptor (checkIsNoop: wholly public).
 */
function forwardRoutes(x: EntryRoutes, steps: readonly Extract<RouteStep, { kind: 'forward' }>[]): ProtoObject[] {
  const { e, variant } = x;
  const d = e.c.route;
  const authz = e.c.authz && variant !== 'grpc';
  const choice = variant === 'grpc' ? e.c.grpc.choice : e.c.envoy.choice;
  const checked = authz && !checkIsNoop(d);
  const check = authz ? extAuthzPerFilterConfig(checked ? d.id : undefined) : undefined;
  const perFilter = variant === 'grpc' ? undefined : featurePerFilter(d, check, true);
  const mutations = forwardMutations(d, variant, checked);
  return steps.map((step) => {
    const ct = step.timeouts;
    if (ct === undefined)
      return withPerFilterConfig(
        forwardRoute(x.name, x.match, routeAction(d, e.path, choice, variant), mutations),
        perFilter,
      );
    const m = withHeaderMatchers(x.match, [
      { name: ':path', stringMatch: { safeRegex: { regex: `(?:${ct.path})(?:\\?.*)?` } } },
    ]);
    const action: ProtoObject = withFields(routeAction(d, e.path, choice, variant), {
      timeout: duration(ct.globalTimeout),
      idleTimeout: duration(ct.idleTimeout),
    });
    const retry = action.retryPolicy as ProtoObject | undefined;
    if (retry) action.retryPolicy = withFields(retry, { perTryTimeout: duration(ct.callTimeout) });
    return withPerFilterConfig(forwardRoute(`${x.name}${step.suffix}`, m, action, mutations), perFilter);
  });
}

/** ext_authz off on a route: one object for every such route (never mutated). */
const NO_CHECK: ProtoObject = frozen(extAuthzPerFilterConfig(undefined));

/** The Envoy routes of an entry for a variant: its planned steps (plan/route-steps.ts), built in order. */
export function routesOf(e: Entry, variant: RouteVariant): ProtoObject[] {
  const d = e.c.route;
  const x: EntryRoutes = {
    e,
    variant,
    name: names.routeName(d.id, e.pathIndex),
    match: routeMatch(e.path, d.matchingHeaders, e.authority, variant),
    noCheck: e.c.authz && variant !== 'grpc' ? NO_CHECK : undefined,
  };
  const out: ProtoObject[] = [];
  const forwards: Extract<RouteStep, { kind: 'forward' }>[] = [];
  // Guards exist on Envoy variants only, whose route configurations send the headers back.
  for (const s of routeSteps(e, variant)) {
    if (s.kind === 'forward') forwards.push(s);
    else out.push(withoutHeadersBack(guardRoute(x, s)));
  }
  if (forwards.length > 0) out.push(...forwardRoutes(x, forwards));
  return out;
}

/**
 * Otoroshi's 404 for requests no descriptor takes (Envoy only). With ext_authz it never calls
 * the Check: Otoroshi answers 404 before any authentication, and the Check could only say 404.
 */
export function notFoundRoute(authz: boolean): ProtoObject {
  const route = withoutHeadersBack(otoroshiErrorRoute('oxds-not-found', { prefix: '/' }, 404, 'Service not found'));
  return authz ? withPerFilterConfig(route, extAuthzPerFilterConfig(undefined)) : route;
}
