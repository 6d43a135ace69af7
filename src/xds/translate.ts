// translate(model) → Envoy and proxyless-gRPC resources. Pure and deterministic: same model,
// same output, every list sorted. Invalid per-descriptor contributions are dropped with an
// OXDS_ENVOY_VALIDATION error; they never sink the shared route configurations.
import type { ProtoObject } from '../../proto/loader.js';
import { wildcardMatcher, type Matcher } from '../model/linear-regex.js';
import { TYPE_URLS } from '../../proto/loader.js';
import { validateResource, type ValidationIssue } from './validate.js';
import type {
  ConfigError,
  Descriptor,
  Model,
  PathMatch,
  Target,
  TcpServiceModel,
  TlsBinding,
  TlsCertificate,
} from '../model/types.js';
import { DEFAULT_TRANSLATE_OPTIONS, type ResourceSet, type TranslateOptions, type TranslateOutput } from './types.js';
import * as names from './names.js';
import { byString, duration, headerValue, sortedBy } from './resources/common.js';
import {
  CORS_FILTER_NAME,
  GLOBAL_RBAC_FILTER_NAME,
  RBAC_FILTER_NAME,
  corsFilter,
  corsPolicy,
  globalRateLimitFilter,
  gzipFilter,
  gzipFilterName,
  ipDeniedMapper,
  rbacFilter,
  throttledMapper,
  gzipPerRoute,
  healthCheck,
  otoroshiHeaders,
  type UpstreamTlsSpec,
  upstreamTlsContext,
  rbacPerRoute,
  strippedRequestHeaders,
} from './resources/features.js';
import { type HcmOptions, grpcHttpConnectionManager, httpConnectionManager } from './resources/hcm.js';
import { apiListener, httpListener, httpsListener, tlsFilterChain } from './resources/listener.js';
import {
  type ClusterChoice,
  type RouteVariant,
  forwardRoute,
  headerMutations,
  httpsRedirectRoute,
  otoroshiErrorRoute,
  routeAction,
  routeConfiguration,
  routeMatch,
  virtualHost,
  withPerFilterConfig,
} from './resources/route.js';
import {
  checkIsNoop,
  clientIdFromCheck,
  extAuthzCluster,
  extAuthzFilter,
  extAuthzPerFilterConfig,
} from './resources/ext-authz.js';
import {
  type ClusterSettings,
  tlsMatchMetadata,
  upstreamTlsTransport,
  dnsCluster,
  edsCluster,
  http2ProtocolOptions,
  lbPolicy,
  outlierDetection,
} from './resources/cluster.js';
import { type LocalityInput, clusterLoadAssignment } from './resources/endpoint.js';
import { tcpService } from './resources/tcp.js';
import { failFastLbConfig, uncappedCircuitBreakers, upstreamErrorMappers } from './resources/resilience.js';

// ------------------------------------------------------------------ host patterns

const globCache = new Map<string, Matcher>();

/** Otoroshi RegexPool: `.` literal, `*` any run of characters, whole host (port already stripped), case-insensitive. */
export function hostMatches(pattern: string, host: string): boolean {
  let re = globCache.get(pattern);
  if (!re) {
    re = wildcardMatcher(pattern);
    if (globCache.size > 10_000) globCache.clear();
    globCache.set(pattern, re);
  }
  return re.test(host);
}

/** The Envoy virtual-host domain for a host pattern: itself when Envoy can express it, else `*`. */
export function envoyDomain(pattern: string): string {
  const p = pattern.toLowerCase();
  const first = p.indexOf('*');
  if (first === -1 || p === '*') return p;
  if (first !== p.lastIndexOf('*')) return '*';
  return first === 0 || first === p.length - 1 ? p : '*';
}

/** Envoy's domain specificity: exact > suffix wildcard > prefix wildcard > `*`, longer first. */
function specificity(domain: string): [number, number] {
  if (domain === '*') return [0, 0];
  if (!domain.includes('*')) return [3, domain.length];
  return domain.startsWith('*') ? [2, domain.length] : [1, domain.length];
}

function moreSpecificOrEqual(a: string, b: string): boolean {
  const [ra, la] = specificity(a);
  const [rb, lb] = specificity(b);
  return a === b || ra > rb || (ra === rb && la > lb);
}

/** Two glob patterns can only share a host when their literal heads and tails agree. */
function literalEndsCompatible(a: string, b: string): boolean {
  const head = (x: string): string => x.slice(0, x.indexOf('*'));
  const tail = (x: string): string => x.slice(x.lastIndexOf('*') + 1);
  const [ha, hb, ta, tb] = [head(a), head(b), tail(a), tail(b)];
  return (ha.startsWith(hb) || hb.startsWith(ha)) && (ta.endsWith(tb) || tb.endsWith(ta));
}

/**
 * How host pattern `p` relates to the hosts Envoy sends to virtual host `v`:
 * 'all' (every such host matches p), 'some' (needs an :authority check), 'none'.
 */
export function hostRelation(p: string, v: string): 'all' | 'some' | 'none' {
  const lp = p.toLowerCase();
  if (lp === '*' || lp === v) return 'all';
  if (!v.includes('*')) return hostMatches(lp, v) ? 'all' : 'none';
  if (!lp.includes('*')) return hostMatches(v, lp) ? 'some' : 'none';
  if (!literalEndsCompatible(lp, v)) return 'none';
  if (v !== '*' && envoyDomain(lp) === lp) {
    if (lp.startsWith('*') && v.startsWith('*') && v.endsWith(lp.slice(1))) return 'all';
    if (lp.endsWith('*') && v.endsWith('*') && v.startsWith(lp.slice(0, -1))) return 'all';
  }
  return 'some';
}

// ------------------------------------------------------------------ per-descriptor contribution

/** What one descriptor brings: its clusters and endpoints per node type, and how routes reach them. */
interface Contribution {
  d: Descriptor;
  /** Envoy routes carry ext_authz per-route configurations (TranslateOptions.authz is set). */
  authz: boolean;
  patterns: string[];
  envoy: { clusters: ProtoObject[]; endpoints: ProtoObject[]; choice: ClusterChoice };
  grpc: { clusters: ProtoObject[]; endpoints: ProtoObject[]; choice: ClusterChoice };
}

/**
 * Whatever makes two clusters of a descriptor different *in kind*: how the cluster is discovered
 * (EDS vs DNS). Everything else — addresses, ports, weights, lb policy, timeouts, TLS — is updated
 * in place under the same name, which is what keeps an edit make-before-break: a renamed cluster
 * leaves in-flight RPCs of SotW gRPC clients on a cluster that "does not exist" until the new
 * routes arrive (seen with grpc-js-xds in test/real-clients.test.ts).
 */
export function clusterHashInput(d: Descriptor): unknown {
  return { discovery: d.targets.some((t) => t.resolution.type === 'dns') ? 'dns' : 'eds' };
}

function gcd(a: number, b: number): number {
  return b === 0 ? a : gcd(b, a % b);
}

/**
 * Per-endpoint weights so that Envoy (endpoint weights) splits traffic between *targets* by
 * target weight whatever their endpoint counts: weight × lcm(n) / n; approximated past 10^6.
 */
export function endpointWeights(targets: readonly { weight: number; count: number }[]): number[] {
  let lcm = 1;
  for (const t of targets) if (t.count > 0) lcm = (lcm * t.count) / gcd(lcm, t.count);
  const exact = targets.map((t) => (t.count > 0 ? (t.weight * lcm) / t.count : t.weight));
  const total = targets.reduce((s, t, i) => s + (exact[i] ?? 0) * t.count, 0);
  if (lcm <= 10_000 && total <= 1_000_000) return exact;
  return targets.map((t) => Math.max(1, Math.round((t.weight * 1000) / Math.max(t.count, 1))));
}

function addressesOf(t: Target): { address: string; port: number; ready: boolean }[] {
  return t.resolution.type === 'static'
    ? t.resolution.endpoints.map((e) => ({ address: e.ip, port: e.port, ready: e.ready }))
    : [{ address: t.resolution.hostname, port: t.resolution.port, ready: true }];
}

/** Translate-wide inputs a contribution depends on besides its descriptor (part of its memo key). */
interface TranslateCtx {
  /** The mesh CA bundle is served (`otoroshi-ca-bundle`): https targets with mtlsConfig verify against it. */
  caBundle: boolean;
}

/** The upstream TLS of an https target and its transport-socket match key (the host when plain). */
function targetTls(t: Target, ctx: TranslateCtx): { key: string; spec: UpstreamTlsSpec } {
  const m = t.mtls;
  if (!m) return { key: t.host, spec: { sni: t.host, clientCerts: [], verifyHostname: false } };
  const validation = m.trustAll
    ? undefined
    : m.trustedCerts[0] !== undefined
      ? names.trustSecretName(m.trustedCerts[0])
      : ctx.caBundle
        ? names.CA_BUNDLE_SECRET_NAME
        : undefined;
  const spec: UpstreamTlsSpec = {
    sni: t.host,
    clientCerts: m.certs.slice(0, 1),
    ...(validation !== undefined ? { validation } : {}),
    verifyHostname: !m.loose,
  };
  return { key: `${t.host}#${names.shortHash(spec)}`, spec };
}

function localities(d: Descriptor, targets: readonly Target[], ctx: TranslateCtx, grpc = false): LocalityInput[] {
  const live = targets.filter((t) => t.weight > 0);
  const weights = endpointWeights(live.map((t) => ({ weight: t.weight, count: addressesOf(t).length })));
  const hosts = new Set(d.targets.map((t) => t.host));
  const https = d.targets.filter((t) => t.scheme === 'https');
  const keys = new Set(https.map((t) => targetTls(t, ctx).key));
  const tlsMatch = !grpc && https.length > 0 && (https.length < d.targets.length || keys.size > 1);
  return live.map((t, i) => ({
    targetId: t.id,
    weight: t.weight,
    endpointWeight: weights[i] ?? t.weight,
    addresses: addressesOf(t),
    ...(d.overrideHost && hosts.size > 1 ? { hostname: t.host } : {}),
    ...(tlsMatch && t.scheme === 'https' ? { metadata: tlsMatchMetadata(targetTls(t, ctx).key) } : {}),
  }));
}

/** https targets: one transport socket when every target is https with one TLS setting, else one match per setting. */
function upstreamTransport(d: Descriptor, ctx: TranslateCtx): ProtoObject | undefined {
  const https = d.targets.filter((t) => t.scheme === 'https');
  const byKey = new Map<string, UpstreamTlsSpec>();
  for (const t of https) {
    const x = targetTls(t, ctx);
    byKey.set(x.key, x.spec);
  }
  const sorted = [...byKey].sort((a, b) => byString(a[0], b[0]));
  const contexts = sorted.map(([key, spec]) => [key, upstreamTlsContext(spec)] as const);
  return upstreamTlsTransport(contexts, https.length === d.targets.length);
}

function clusterSettings(d: Descriptor, grpc: boolean, ctx: TranslateCtx): ClusterSettings {
  const od = outlierDetection(d.clientConfig);
  const extra: ProtoObject = {};
  if (!grpc) {
    // gRPC clients NACK TLS contexts without certificate providers: upstream TLS is Envoy-only.
    Object.assign(extra, upstreamTransport(d, ctx) ?? {});
    const http2 = d.targets.length > 0 && d.targets.every((t) => t.protocol === 'HTTP/2.0');
    if (http2) Object.assign(extra, http2ProtocolOptions());
    extra.circuitBreakers = uncappedCircuitBreakers();
    Object.assign(extra, failFastLbConfig());
    if (d.healthCheck) {
      const hosts = new Set(d.targets.map((t) => t.host));
      extra.healthChecks = [healthCheck(d.healthCheck.url, hosts.size === 1 ? [...hosts][0] : undefined, http2)];
    }
  }
  return {
    connectTimeoutMs: d.clientConfig.connectionTimeout,
    lbPolicy: lbPolicy(d.loadBalancing, grpc),
    ...(od ? { outlierDetection: od } : {}),
    ...(Object.keys(extra).length > 0 ? { extra } : {}),
  };
}

/** Envoy: one EDS cluster (all static) or one STRICT_DNS cluster with an inline assignment. */
function envoyClusterOf(
  d: Descriptor,
  name: string,
  ctx: TranslateCtx,
): { clusters: ProtoObject[]; endpoints: ProtoObject[] } {
  const s = clusterSettings(d, false, ctx);
  const cla = clusterLoadAssignment(name, localities(d, d.targets, ctx));
  if (d.targets.some((t) => t.resolution.type === 'dns'))
    return { clusters: [dnsCluster(name, 'STRICT_DNS', s, cla)], endpoints: [] };
  return { clusters: [edsCluster(name, s)], endpoints: [cla] };
}

/** Envoy clusters of a descriptor; with a canary, a second cluster and a weighted split (per request). */
function envoyClusters(d: Descriptor, name: string, ctx: TranslateCtx): Contribution['envoy'] {
  const main = envoyClusterOf(d, name, ctx);
  const canary = d.canary;
  if (!canary || canary.traffic <= 0) return { ...main, choice: { cluster: name } };
  const cname = names.canaryClusterName(name);
  const c = envoyClusterOf({ ...d, targets: canary.targets }, cname, ctx);
  const share = Math.round(canary.traffic * 1000);
  const split = [...(share < 1000 ? [{ name, weight: 1000 - share }] : []), { name: cname, weight: share }];
  return {
    clusters: [...main.clusters, ...c.clusters],
    endpoints: [...main.endpoints, ...c.endpoints],
    choice: split.length === 1 ? { cluster: cname } : { weightedClusters: split },
  };
}

/**
 * gRPC: static targets share one EDS cluster (locality weights = target weights); each dns
 * target gets its own LOGICAL_DNS cluster; the route splits by weighted_clusters when there is
 * more than one cluster (total_weight = the exact sum, as C-core requires).
 */
function grpcClusters(d: Descriptor, name: string, ctx: TranslateCtx): Contribution['grpc'] {
  const s = clusterSettings(d, true, ctx);
  const statics = d.targets.filter((t) => t.resolution.type === 'static' && t.weight > 0);
  const dns = d.targets.filter((t) => t.resolution.type === 'dns' && t.weight > 0);
  const out: Contribution['grpc'] = { clusters: [], endpoints: [], choice: { cluster: name } };
  const split: { name: string; weight: number }[] = [];
  if (statics.length > 0 || dns.length === 0) {
    out.clusters.push(edsCluster(name, s));
    out.endpoints.push(clusterLoadAssignment(name, localities(d, statics, ctx, true)));
    split.push({ name, weight: statics.reduce((sum, t) => sum + t.weight, 0) });
  }
  for (const t of dns) {
    const cname = names.dnsTargetClusterName(name, t.id);
    out.clusters.push(dnsCluster(cname, 'LOGICAL_DNS', s, clusterLoadAssignment(cname, localities(d, [t], ctx, true))));
    split.push({ name: cname, weight: t.weight });
  }
  const [single] = split;
  if (split.length === 1 && single) out.choice = { cluster: single.name };
  else out.choice = { weightedClusters: split };
  return out;
}

function contribution(d: Descriptor, authz: boolean, ctx: TranslateCtx): Contribution {
  const name = names.clusterName(d.id, clusterHashInput(d));
  const patterns = [...new Set(d.hosts)].sort(byString);
  return { d, authz, patterns, envoy: envoyClusters(d, name, ctx), grpc: grpcClusters(d, name, ctx) };
}

// ------------------------------------------------------------------ routes

const TYPE_RANK: Record<PathMatch['type'], number> = { Exact: 0, Prefix: 1, PlainPrefix: 2 };

/** One route candidate in a virtual host, with its ordering key. */
interface Entry {
  c: Contribution;
  path: PathMatch | undefined;
  pathIndex: number | undefined;
  /** Host patterns to check on :authority; undefined when every host of the vhost matches. */
  authority: string[] | undefined;
  /** 0 when the descriptor names this vhost's domain exactly. */
  hostRank: number;
}

function compareEntries(a: Entry, b: Entry): number {
  const la = a.path ? a.path.value.length : -1;
  const lb = b.path ? b.path.value.length : -1;
  if (la !== lb) return lb - la; // paths first, longest prefix first, catch-all last
  if (a.path && b.path && a.path.type !== b.path.type) return TYPE_RANK[a.path.type] - TYPE_RANK[b.path.type];
  const ha = a.c.d.matchingHeaders.length > 0 ? 0 : 1;
  const hb = b.c.d.matchingHeaders.length > 0 ? 0 : 1;
  if (ha !== hb) return ha - hb; // header-constrained first, else they are unreachable
  if (a.hostRank !== b.hostRank) return a.hostRank - b.hostRank;
  const aa = a.authority ? 0 : 1;
  const ab = b.authority ? 0 : 1;
  if (aa !== ab) return aa - ab;
  const ca = a.c.d.createdAt ?? '\uffff';
  const cb = b.c.d.createdAt ?? '\uffff';
  if (ca !== cb) return byString(ca, cb); // older wins
  if (a.c.d.id !== b.c.d.id) return byString(a.c.d.id, b.c.d.id);
  if (a.path && b.path && a.path.value !== b.path.value) return byString(a.path.value, b.path.value);
  return (a.pathIndex ?? -1) - (b.pathIndex ?? -1);
}

/** Entries of one descriptor for virtual host `v`, or none when no host of it reaches `v`. */
function entriesFor(c: Contribution, v: string): Entry[] {
  let all = false;
  let exact = false;
  const some: string[] = [];
  for (const p of c.patterns) {
    if (!moreSpecificOrEqual(v, envoyDomain(p))) continue; // Envoy never sends p's hosts here
    const rel = hostRelation(p, v);
    if (rel === 'all') all = true;
    if (rel === 'some') some.push(p);
    if (p.toLowerCase() === v) exact = true;
  }
  if (!all && some.length === 0) return [];
  const base = { c, authority: all ? undefined : some, hostRank: exact ? 0 : 1 };
  if (c.d.paths.length === 0) return [{ ...base, path: undefined, pathIndex: undefined }];
  return c.d.paths.map((path, i) => ({ ...base, path, pathIndex: i }));
}

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
 * Otoroshi's order (§4.5): redirection, headersVerification (400), readOnly (405), forceHttps
 * (303), ipFiltering (RBAC, 403), maintenance/build (503), then forwarding (customTimeouts first).
 * With ext_authz (Envoy variants only), a forwarding route checks with its descriptor id unless
 * the Check is a no-op for the descriptor (checkIsNoop: wholly public); direct responses and
 * redirects never call it (Otoroshi answers them before authentication, §4.5).
 */
function routesOf(e: Entry, variant: RouteVariant): ProtoObject[] {
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
function notFoundRoute(authz: boolean): ProtoObject {
  const route = otoroshiErrorRoute('oxds-not-found', { prefix: '/' }, 404, 'Service not found');
  return authz ? withPerFilterConfig(route, extAuthzPerFilterConfig(undefined)) : route;
}

function grpcDomains(v: string): string[] {
  return v.includes('*') ? [v] : [v, `${v}:*`];
}

// ------------------------------------------------------------------ encoded bytes

/**
 * Encoded bytes of every resource translate validated (strict shape, PGV rules, encode/decode
 * round trip), by output object. validateSet reuses them instead of validating and encoding again;
 * whatever is not here (gateway listeners, secrets) is validated there. Output objects must not
 * be mutated (they are also reused by the next translate when their input did not change).
 */
const ENCODED = new WeakMap<ProtoObject, Uint8Array>();

/** The validated encoding of a resource returned by translate, when translate validated it. */
export function encodedBytes(obj: ProtoObject): Uint8Array | undefined {
  return ENCODED.get(obj);
}

function varintSize(n: number): number {
  let s = 1;
  while (n >= 0x80) {
    n >>>= 7;
    s++;
  }
  return s;
}

function writeField(buf: Uint8Array, pos: number, tag: number, bytes: Uint8Array): number {
  buf[pos++] = tag;
  let n = bytes.length;
  while (n >= 0x80) {
    buf[pos++] = (n & 0x7f) | 0x80;
    n >>>= 7;
  }
  buf[pos++] = n;
  buf.set(bytes, pos);
  return pos + bytes.length;
}

/**
 * A message made of length-delimited fields only, in field-number order (what protobufjs emits):
 * `head` (field 1, a string), then `strings` (field 2), then `parts` (field `partsTag`). Encoded
 * sub-messages are concatenated as they are: a repeated message field is its elements' encodings.
 */
function encodeDelimited(
  head: string,
  strings: readonly string[],
  partsTag: number,
  parts: readonly Uint8Array[],
): Uint8Array {
  const h = Buffer.from(head, 'utf8');
  const ss = strings.map((x) => Buffer.from(x, 'utf8'));
  let size = 1 + varintSize(h.length) + h.length;
  for (const b of ss) size += 1 + varintSize(b.length) + b.length;
  for (const b of parts) size += 1 + varintSize(b.length) + b.length;
  const buf = Buffer.allocUnsafe(size);
  let pos = writeField(buf, 0, 0x0a, h);
  for (const b of ss) pos = writeField(buf, pos, 0x12, b);
  for (const b of parts) pos = writeField(buf, pos, partsTag, b);
  return buf;
}

// ------------------------------------------------------------------ memos
//
// Rebuilds re-translate every descriptor and most did not change. Everything below is keyed by
// content (a descriptor's JSON, a vhost's route records by identity, a name), so a hit returns
// exactly what a miss would compute: translate stays pure. Entries not used by the last
// translate are dropped at its end (bounded by the size of the last input).

let generation = 0;

interface Used {
  used: number;
}

function sweep<K, V extends Used>(m: Map<K, V>): void {
  for (const [k, v] of m) if (v.used !== generation) m.delete(k);
}

/** A route of one descriptor for one variant, path and :authority check: validated and encoded. */
interface RouteRec {
  obj: ProtoObject;
  bytes: Uint8Array;
}
type RouteSlot = RouteRec[] | { issue: ValidationIssue } | null;

interface DescriptorMemo extends Used {
  json: string;
  c: Contribution;
  /** The first context-free problem of the descriptor (its own route configurations, clusters, endpoints). */
  problem: ConfigError | null;
  routes: Map<string, RouteSlot>;
}
const descriptorMemo = new Map<string, DescriptorMemo>();

/** Validation of a virtual host without its routes, by domains kind and host key. */
const shellMemo = new Map<string, Used & { issue: ValidationIssue | null }>();

interface VhostRec extends Used {
  name: string;
  /** The candidate contributions it was built from: the same ones (by identity) give the same vhost. */
  cands?: readonly Contribution[];
  routes: RouteRec[];
  obj: ProtoObject;
  bytes: Uint8Array;
}
const vhostMemo = new Map<string, VhostRec>();

interface RouteConfigRec extends Used {
  vhosts: VhostRec[];
  obj: ProtoObject;
  ok: boolean;
}
const routeConfigMemo = new Map<string, RouteConfigRec>();
const listenerMemo = new Map<string, Used & { obj: ProtoObject }>();

function sameItems<T>(a: readonly T[], b: readonly T[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Validates `obj` once; on success its bytes are remembered for validateSet. */
function check(url: string, obj: ProtoObject): ValidationIssue | undefined {
  const r = validateResource(url, obj);
  if (r.ok) {
    ENCODED.set(obj, r.bytes);
    return undefined;
  }
  return r.issues[0] ?? { path: '', rule: 'unknown', message: 'rejected' };
}

const ROUTE_TYPE = 'envoy.config.route.v3.Route';
const VHOST_TYPE = 'envoy.config.route.v3.VirtualHost';

function routeKey(e: Entry, variant: RouteVariant): string {
  // http and https routes differ only by forceHttps redirects.
  const v = variant === 'grpc' ? 'g' : variant === 'http' && e.c.d.forceHttps ? 'r' : 'h';
  return `${v}|${e.pathIndex ?? '-'}|${e.authority ? e.authority.join('\n') : ''}`;
}

/** The validated route of an entry (memoised on the descriptor), null when the variant has none. */
function routeSlot(e: Entry, variant: RouteVariant, memo: DescriptorMemo): RouteSlot {
  const key = routeKey(e, variant);
  let slot = memo.routes.get(key);
  if (slot === undefined) {
    const objs = routesOf(e, variant);
    if (objs.length === 0) slot = null;
    else {
      const recs: RouteRec[] = [];
      let bad: ValidationIssue | undefined;
      for (const obj of objs) {
        const issue = check(ROUTE_TYPE, obj);
        if (issue) {
          bad = { ...issue, path: `routes[${JSON.stringify(obj.name)}]${issue.path ? `.${issue.path}` : ''}` };
          break;
        }
        recs.push({ obj, bytes: ENCODED.get(obj) as Uint8Array });
      }
      slot = bad ? { issue: bad } : recs;
    }
    if (memo.routes.size >= 1024) memo.routes.clear();
    memo.routes.set(key, slot);
  }
  return slot;
}

function vhostDomains(v: string, variant: RouteVariant): string[] {
  return variant === 'grpc' ? grpcDomains(v) : [v];
}

/** The problem of a virtual host's own fields (name, domains), memoised. */
function shellIssue(v: string, variant: RouteVariant): ValidationIssue | null {
  const key = `${variant === 'grpc' ? 'g' : 'e'}\n${v}`;
  let m = shellMemo.get(key);
  if (!m) {
    const r = validateResource(VHOST_TYPE, { name: names.virtualHostName(v), domains: vhostDomains(v, variant) });
    m = { used: generation, issue: r.ok ? null : (r.issues[0] ?? null) };
    shellMemo.set(key, m);
  }
  m.used = generation;
  return m.issue;
}

/** Memo key of a virtual host: Envoy variants differ with ext_authz (per-route configs). */
function vhostKey(v: string, variant: RouteVariant, authz: boolean): string {
  return `${variant}${authz && variant !== 'grpc' ? '+authz' : ''}\n${v}`;
}

function vhostRec(v: string, variant: RouteVariant, authz: boolean, routes: RouteRec[]): VhostRec {
  const key = vhostKey(v, variant, authz);
  let m = vhostMemo.get(key);
  if (!m || !sameItems(m.routes, routes)) {
    const name = names.virtualHostName(v);
    const domains = vhostDomains(v, variant);
    m = {
      used: generation,
      name,
      routes,
      obj: virtualHost(
        name,
        domains,
        routes.map((r) => r.obj),
      ),
      bytes: encodeDelimited(
        name,
        domains,
        0x1a,
        routes.map((r) => r.bytes),
      ),
    };
    vhostMemo.set(key, m);
  }
  m.used = generation;
  return m;
}

const notFound = new Map<boolean, RouteRec>();
function notFoundRec(authz: boolean): RouteRec {
  let rec = notFound.get(authz);
  if (!rec) {
    const obj = notFoundRoute(authz);
    const issue = check(ROUTE_TYPE, obj);
    if (issue) throw new Error(`the not-found route is invalid: ${issue.path}: ${issue.message}`);
    rec = { obj, bytes: ENCODED.get(obj) as Uint8Array };
    notFound.set(authz, rec);
  }
  return rec;
}

/** A route configuration over validated virtual hosts: bytes assembled from theirs. */
function routeConfigRec(name: string, vhosts: VhostRec[]): ProtoObject {
  let m = routeConfigMemo.get(name);
  if (!m || !sameItems(m.vhosts, vhosts)) {
    const obj = routeConfiguration(
      name,
      vhosts.map((v) => v.obj),
    );
    const ok = m ? m.ok : validateResource(TYPE_URLS.route, { name }).ok;
    // When the configuration's own fields are invalid, validateSet validates it whole (and reports).
    if (ok)
      ENCODED.set(
        obj,
        encodeDelimited(
          name,
          [],
          0x12,
          vhosts.map((v) => v.bytes),
        ),
      );
    m = { used: generation, vhosts, obj, ok };
    routeConfigMemo.set(name, m);
  }
  m.used = generation;
  return m.obj;
}

// ------------------------------------------------------------------ route configurations

/** Host keys of a set of contributions, with the candidates of each (concrete: indexed; wildcard: scanned). */
function virtualHostsOf(
  cs: readonly Contribution[],
  variant: RouteVariant,
  withNotFound: boolean,
  memos: ReadonlyMap<Contribution, DescriptorMemo>,
  onBad: (c: Contribution, v: string, issue: ValidationIssue, route: ProtoObject | undefined) => void,
  authz: boolean,
  build = true,
): Map<string, VhostRec> {
  const keys = new Set<string>();
  const byHost = new Map<string, Contribution[]>();
  const wild: Contribution[] = [];
  for (const c of cs) {
    let isWild = false;
    for (const p of c.patterns) {
      keys.add(envoyDomain(p));
      if (p.includes('*')) isWild = true;
      else {
        const k = p.toLowerCase();
        const l = byHost.get(k);
        if (l) {
          if (l[l.length - 1] !== c) l.push(c);
        } else byHost.set(k, [c]);
      }
    }
    if (isWild) wild.push(c);
  }
  if (withNotFound) keys.add('*'); // Otoroshi's 404 for unknown hosts
  const out = new Map<string, VhostRec>();
  const sortedKeys = [...keys].sort(byString);
  for (const v of sortedKeys) {
    const exact = byHost.get(v);
    let candidates: readonly Contribution[] = exact ?? wild;
    if (exact && wild.length > 0) candidates = [...new Set([...exact, ...wild])];
    if (build) {
      // Contributions are memoised by content: the same candidates make the same virtual host.
      const prev = vhostMemo.get(vhostKey(v, variant, authz));
      if (prev?.cands && sameItems(prev.cands, candidates)) {
        prev.used = generation;
        out.set(v, prev);
        continue;
      }
    }
    const entries: Entry[] = [];
    for (const c of candidates) for (const e of entriesFor(c, v)) entries.push(e);
    if (entries.length > 1) entries.sort(compareEntries);
    const routes: RouteRec[] = [];
    let invalid: [Entry, ValidationIssue][] | undefined;
    for (const e of entries) {
      const slot = routeSlot(e, variant, memos.get(e.c) as DescriptorMemo);
      if (slot === null) continue;
      if ('issue' in slot) (invalid ??= []).push([e, slot.issue]);
      else routes.push(...slot);
    }
    if (withNotFound) routes.push(notFoundRec(authz));
    if (routes.length === 0 && !invalid) continue;
    const shell = shellIssue(v, variant);
    if (shell) {
      for (const e of entries) onBad(e.c, v, shell, undefined);
      continue;
    }
    if (invalid) {
      for (const [e, issue] of invalid) onBad(e.c, v, issue, undefined);
      continue;
    }
    if (build) {
      const rec = vhostRec(v, variant, authz, routes);
      rec.cands = candidates;
      out.set(v, rec);
    }
  }
  return out;
}

// ------------------------------------------------------------------ validation

function objectName(sourceKey: string): string {
  const parts = sourceKey.split('/');
  return parts[parts.length - 1] ?? sourceKey;
}

/** An error on the object a descriptor comes from (its routes and clusters are not published). */
function descriptorProblem(d: Descriptor, code: ConfigError['code'], message: string, field: string): ConfigError {
  return {
    code,
    message: `descriptor ${d.id}: ${message}; its routes and clusters are not published`,
    field,
    kind: d.sourceKind,
    namespace: d.namespace,
    name: objectName(d.sourceKey),
    ...(d.origin.file !== undefined ? { file: d.origin.file } : {}),
    ...(d.origin.doc !== undefined ? { doc: d.origin.doc } : {}),
    severity: 'error',
  };
}

function descriptorError(d: Descriptor, what: string, issue: ValidationIssue): ConfigError {
  const at = issue.path ? ` at ${issue.path}` : '';
  return descriptorProblem(
    d,
    'OXDS_ENVOY_VALIDATION',
    `${what}${at} violates ${issue.rule}: ${issue.message}`,
    issue.path ? `${what}.${issue.path}` : what,
  );
}

/** `virtualHosts["a.example.com"].routes["id/0"].x`: where an issue of a route or virtual host sits. */
function vhostIssue(v: string, route: ProtoObject | undefined, issue: ValidationIssue): ValidationIssue {
  const vh = `virtualHosts[${JSON.stringify(names.virtualHostName(v))}]`;
  const at = route ? `${vh}.routes[${JSON.stringify(route.name)}]` : vh;
  return { ...issue, path: issue.path ? `${at}.${issue.path}` : at };
}

/**
 * The first problem of a contribution, checked on exactly the resources it would add on its own
 * (its virtual hosts in each route configuration, its clusters and endpoints). Every resource
 * checked here is encoded once and its bytes reused by the route configurations and validateSet.
 */
function validateContribution(c: Contribution, memo: DescriptorMemo): ConfigError | null {
  const memos = new Map([[c, memo]]);
  // https differs from http only by forceHttps redirects: validate it only when it differs.
  for (const v of c.d.forceHttps ? (['http', 'https', 'grpc'] as const) : (['http', 'grpc'] as const)) {
    let problem: ValidationIssue | undefined;
    virtualHostsOf(
      [c],
      v,
      false,
      memos,
      (_c, host, issue, route) => {
        problem ??= vhostIssue(host, route, issue);
      },
      c.authz,
      false,
    );
    if (problem) return descriptorError(c.d, `routes(${v})`, problem);
  }
  for (const o of [...c.envoy.clusters, ...c.grpc.clusters]) {
    const issue = check(TYPE_URLS.cluster, o);
    if (issue) return descriptorError(c.d, `cluster ${String(o.name)}`, issue);
  }
  for (const o of [...c.envoy.endpoints, ...c.grpc.endpoints]) {
    const issue = check(TYPE_URLS.endpoint, o);
    if (issue) return descriptorError(c.d, `endpoints ${String(o.clusterName)}`, issue);
  }
  return null;
}

/** The memo of a descriptor: its contribution and verdict, recomputed only when its content changed. */
function memoFor(d: Descriptor, authz: boolean, ctx: TranslateCtx): DescriptorMemo {
  const json = `${JSON.stringify(d)}\u0000${JSON.stringify(ctx)}`;
  const key = `${d.id}\u0000${d.sourceKey}${authz ? '\u0000authz' : ''}`;
  let m = descriptorMemo.get(key);
  if (!m || m.json !== json) {
    m = { used: generation, json, c: contribution(d, authz, ctx), problem: null, routes: new Map() };
    m.problem = validateContribution(m.c, m);
    descriptorMemo.set(key, m);
  }
  m.used = generation;
  return m;
}

// ------------------------------------------------------------------ TLS

function tlsResources(
  model: Model,
  errors: ConfigError[],
  filters: readonly ProtoObject[],
  accessLogCluster: string | undefined,
  hcmOpts: HcmOptions,
): { chains: ProtoObject[] } {
  const certs = new Map<string, TlsCertificate>(model.certificates.map((c) => [c.secretName, c]));
  const used = new Set<string>();
  let defaultTaken = false;
  const chains: ProtoObject[] = [];
  const hcm = httpConnectionManager(
    names.statPrefix(names.HTTPS_LISTENER_NAME),
    names.HTTPS_ROUTE_CONFIG_NAME,
    filters,
    accessLogCluster,
    hcmOpts,
  );
  for (const b of sortedBy(model.tls, (x: TlsBinding) => x.secretName)) {
    const cert = certs.get(b.secretName);
    const warn = (message: string): void => {
      errors.push({
        code: 'OXDS_UNRESOLVED_REFERENCE',
        message,
        field: 'tls',
        severity: 'warning',
        ...(b.source ?? {}),
      });
    };
    if (!cert) {
      warn(
        `TLS binding for ${b.serverNames.join(', ') || '(default)'} names certificate ${b.secretName}, which ${certState(model, b.secretName)}: binding skipped`,
      );
      continue;
    }
    const serverNames = [...new Set(b.serverNames.map((n) => n.toLowerCase()))]
      .sort(byString)
      .filter((n) => !used.has(n));
    if (serverNames.length === 0 && (b.serverNames.length > 0 || defaultTaken)) {
      warn(`TLS binding ${b.secretName}: every server name is already served by another certificate: binding skipped`);
      continue;
    }
    if (serverNames.length === 0) defaultTaken = true;
    serverNames.forEach((n) => used.add(n));
    const secret = names.secretName(b.secretName);
    chains.push(tlsFilterChain(names.filterChainName(secret), serverNames, secret, hcm));
  }
  return { chains };
}

/**
 * Every certificate of the model is an SDS secret named `<namespace>/<name>` (a contract: users
 * reference them from hand-written Envoy config), and the CA trust bundle is the validation
 * context `otoroshi-ca-bundle`.
 */
function sdsSecrets(model: Model): ProtoObject[] {
  const out = new Map<string, ProtoObject>();
  for (const cert of model.certificates) {
    const name = names.secretName(cert.secretName);
    if (out.has(name)) continue;
    out.set(name, {
      name,
      tlsCertificate: {
        certificateChain: { inlineString: cert.certificateChain },
        privateKey: { inlineString: cert.privateKey },
      },
    });
  }
  // Explicit trusted certificates of targets' mtlsConfig: a validation context from the chain.
  const certs = new Map(model.certificates.map((c) => [c.secretName, c]));
  for (const d of model.descriptors) {
    for (const t of [...d.targets, ...(d.canary?.targets ?? [])]) {
      const ref = t.mtls && !t.mtls.trustAll ? t.mtls.trustedCerts[0] : undefined;
      const cert = ref !== undefined ? certs.get(ref) : undefined;
      if (ref === undefined || cert === undefined) continue;
      const name = names.trustSecretName(ref);
      if (!out.has(name))
        out.set(name, { name, validationContext: { trustedCa: { inlineString: cert.certificateChain } } });
    }
  }
  if (model.caBundle !== undefined && model.caBundle.trim() !== '') {
    out.set(names.CA_BUNDLE_SECRET_NAME, {
      name: names.CA_BUNDLE_SECRET_NAME,
      validationContext: { trustedCa: { inlineString: model.caBundle } },
    });
  }
  return [...out.values()];
}

// ------------------------------------------------------------------ translate

function byName(key: string): (a: ProtoObject, b: ProtoObject) => number {
  return (a, b) => byString(String(a[key]), String(b[key]));
}

function emptySet(): ResourceSet {
  return { listeners: [], routes: [], clusters: [], endpoints: [], secrets: [] };
}

/** Route configurations of every variant over `cs`; contributions failing in context are reported in `bad`. */
function assemble(
  cs: readonly Contribution[],
  memos: ReadonlyMap<Contribution, DescriptorMemo>,
  https: boolean,
  authz: boolean,
) {
  const bad = new Map<Contribution, ConfigError>();
  const onBad =
    (variant: RouteVariant) =>
    (c: Contribution, v: string, issue: ValidationIssue, route: ProtoObject | undefined): void => {
      if (!bad.has(c)) bad.set(c, descriptorError(c.d, `routes(${variant})`, vhostIssue(v, route, issue)));
    };
  const http = virtualHostsOf(cs, 'http', true, memos, onBad('http'), authz);
  const secure = https ? virtualHostsOf(cs, 'https', true, memos, onBad('https'), authz) : undefined;
  const grpc = virtualHostsOf(cs, 'grpc', false, memos, onBad('grpc'), authz);
  return { bad, http, secure, grpc };
}

/** The gateway HTTP filters before the router (issue 3 features, ext_authz), in Otoroshi's order. */
function gatewayFilters(model: Model, descriptors: readonly Descriptor[], o: TranslateOptions): ProtoObject[] {
  const g = model.globalConfig;
  const out: ProtoObject[] = [];
  const rl = g ? globalRateLimitFilter(g) : undefined;
  if (rl) out.push(rl);
  if (g && g.ipFiltering.whitelist.length + g.ipFiltering.blacklist.length > 0)
    out.push(rbacFilter(GLOBAL_RBAC_FILTER_NAME, g.ipFiltering));
  out.push(rbacFilter(RBAC_FILTER_NAME, undefined), corsFilter());
  if (o.authz) out.push(extAuthzFilter(names.EXT_AUTHZ_CLUSTER_NAME, o.authz));
  const gz = new Map<string, ProtoObject>();
  for (const d of descriptors) if (d.enabled && d.gzip) gz.set(gzipFilterName(d.gzip), gzipFilter(d.gzip));
  for (const k of [...gz.keys()].sort(byString)) out.push(gz.get(k) as ProtoObject);
  return out;
}

function hcmOptions(model: Model): HcmOptions {
  const g = model.globalConfig;
  return {
    ...(g && g.trustedProxies > 0 ? { xffNumTrustedHops: g.trustedProxies } : {}),
    localReplyMappers: [
      ipDeniedMapper(),
      ...(g && globalRateLimitFilter(g) ? [throttledMapper()] : []),
      ...upstreamErrorMappers(),
    ],
  };
}

/** A descriptor under GlobalConfig maintenance: only its redirection still precedes the 503. */
function globalMaintenanceOf(d: Descriptor): Descriptor {
  const { ipFiltering: _ip, ...rest } = d;
  return {
    ...rest,
    maintenanceMode: true,
    buildMode: false,
    headersVerification: {},
    readOnly: false,
    forceHttps: false,
  };
}

/** Why a certificate is missing: a Certificate CR that failed to issue is not "unknown". */
function certState(model: Model, secretName: string): string {
  return (model.certificateRequests ?? []).some((r) => r.secretName === secretName)
    ? "is not issued (see that Certificate's status)"
    : 'is unknown (no Certificate or kubernetes.io/tls Secret of that name)';
}

/** Certificate refs of a descriptor's targets (mtlsConfig) that the model does not know. */
function unresolvedCertRefs(model: Model, d: Descriptor, known: ReadonlySet<string>): ConfigError[] {
  const out: ConfigError[] = [];
  const all = [...d.targets, ...(d.canary?.targets ?? [])];
  for (const t of all) {
    for (const ref of [...(t.mtls?.certs ?? []), ...(t.mtls?.trustedCerts ?? [])]) {
      if (known.has(ref)) continue;
      const message = `target ${t.host}:${t.port} mtlsConfig names certificate ${ref}, which ${certState(model, ref)}`;
      out.push(descriptorProblem(d, 'OXDS_UNRESOLVED_REFERENCE', message, t.mtls?.field ?? 'spec.targets.mtlsConfig'));
    }
  }
  return out;
}

/** An address Envoy listens on, and what it is, for conflicts. */
interface Bound {
  address: string;
  port: number;
  what: string;
}

const ANY_ADDRESS = new Set(['0.0.0.0', '::', '']);

/** Two listeners on one port collide when their addresses are equal or either is a wildcard one. */
function overlaps(a: Bound, b: Bound): boolean {
  if (a.port === 0 || a.port !== b.port) return false;
  return a.address === b.address || ANY_ADDRESS.has(a.address) || ANY_ADDRESS.has(b.address);
}

/** Why a TcpService's listener cannot be sent: its port is taken, or a resource breaks Envoy's rules. */
function tcpProblem(
  t: TcpServiceModel,
  listener: ProtoObject,
  clusters: readonly ProtoObject[],
  taken: readonly Bound[],
): ConfigError | undefined {
  const base = {
    kind: 'TcpService',
    namespace: t.namespace,
    name: objectName(t.sourceKey),
    severity: 'error' as const,
    ...(t.origin.file !== undefined ? { file: t.origin.file } : {}),
    ...(t.origin.doc !== undefined ? { doc: t.origin.doc } : {}),
  };
  const clash = taken.find((b) => overlaps({ address: t.interface, port: t.port, what: '' }, b));
  if (clash)
    return {
      ...base,
      code: 'OXDS_ROUTE_CONFLICT',
      field: 'spec.port',
      message: `port ${t.port} on ${t.interface} is already used by ${clash.what}: listener not published`,
    };
  const issue =
    check(TYPE_URLS.listener, listener) ??
    clusters.map((c) => check(TYPE_URLS.cluster, c)).find((x) => x !== undefined);
  if (issue)
    return {
      ...base,
      code: 'OXDS_ENVOY_VALIDATION',
      field: 'spec',
      message: `listener${issue.path ? ` at ${issue.path}` : ''} violates ${issue.rule}: ${issue.message}`,
    };
  return undefined;
}

export function translate(model: Model, opts?: Partial<TranslateOptions>): TranslateOutput {
  const o: TranslateOptions = { ...DEFAULT_TRANSLATE_OPTIONS, ...(opts ?? {}) };
  const authz = o.authz !== undefined;
  const ctx: TranslateCtx = { caBundle: model.caBundle !== undefined && model.caBundle.trim() !== '' };
  const globalMaintenance = model.globalConfig?.maintenanceMode === true;
  // Gateway HTTP filters: issue-3 features and ext_authz (Envoy only) before the router.
  const httpFilters = gatewayFilters(model, model.descriptors, o);
  const hcmOpts = hcmOptions(model);
  generation++;
  const errors: ConfigError[] = [];
  let contributions: Contribution[] = [];
  const memos = new Map<Contribution, DescriptorMemo>();
  const descriptors = [...model.descriptors].sort((a, b) => byString(a.id, b.id) || byString(a.sourceKey, b.sourceKey));
  const knownCerts = new Set(model.certificates.map((c) => c.secretName));
  const seen = new Set<string>();
  for (const d0 of descriptors) {
    // Otoroshi drops disabled descriptors before choosing one (§4.3.2): no routes, no clusters.
    if (!d0.enabled || d0.hosts.length === 0) continue;
    if (seen.has(d0.id)) {
      // Route and cluster names derive from the id: a second descriptor with it would collide.
      errors.push({
        ...descriptorError(d0, 'id', {
          path: '',
          rule: 'unique',
          message: `id ${d0.id} is already used by another descriptor`,
        }),
        code: 'OXDS_DUPLICATE_OBJECT',
        field: 'id',
      });
      continue;
    }
    seen.add(d0.id);
    const unresolved = unresolvedCertRefs(model, d0, knownCerts);
    if (unresolved.length > 0) {
      errors.push(...unresolved);
      continue;
    }
    // GlobalConfig maintenanceMode: every service answers 503 right after its redirection (§4.5
    // step 4: before headersVerification, readOnly, forceHttps and the descriptor's IP filtering).
    const d = globalMaintenance ? globalMaintenanceOf(d0) : d0;
    const m = memoFor(d, authz, ctx);
    if (m.problem) errors.push({ ...m.problem });
    else {
      contributions.push(m.c);
      memos.set(m.c, m);
    }
  }

  const tls = model.tls.length > 0 ? tlsResources(model, errors, httpFilters, o.accessLogCluster, hcmOpts) : undefined;
  const httpsListenerObj = tls
    ? httpsListener(names.HTTPS_LISTENER_NAME, o.listenAddress, o.httpsPort, tls.chains)
    : undefined;

  // A route valid on its own can still fail in another descriptor's virtual host (another
  // :authority check): drop such descriptors and assemble again (rare; never more than once each).
  let vhosts = assemble(contributions, memos, httpsListenerObj !== undefined, authz);
  while (vhosts.bad.size > 0) {
    const bad = vhosts.bad;
    for (const c of contributions) {
      const e = bad.get(c);
      if (e) errors.push(e);
    }
    contributions = contributions.filter((c) => !bad.has(c));
    vhosts = assemble(contributions, memos, httpsListenerObj !== undefined, authz);
  }

  const envoy = emptySet();
  const grpc = emptySet();
  envoy.listeners.push(
    httpListener(
      names.HTTP_LISTENER_NAME,
      o.listenAddress,
      o.httpPort,
      httpConnectionManager(
        names.statPrefix(names.HTTP_LISTENER_NAME),
        names.HTTP_ROUTE_CONFIG_NAME,
        httpFilters,
        o.accessLogCluster,
        hcmOpts,
      ),
    ),
  );
  envoy.routes.push(routeConfigRec(names.HTTP_ROUTE_CONFIG_NAME, [...vhosts.http.values()]));
  if (tls && httpsListenerObj && vhosts.secure) {
    envoy.listeners.push(httpsListenerObj);
    envoy.routes.push(routeConfigRec(names.HTTPS_ROUTE_CONFIG_NAME, [...vhosts.secure.values()]));
  }
  envoy.secrets.push(...sdsSecrets(model));

  // TcpServices (Envoy only): a listener each, with its clusters.
  const taken: Bound[] = [
    { address: o.listenAddress, port: o.httpPort, what: `the HTTP listener (${names.HTTP_LISTENER_NAME})` },
  ];
  if (httpsListenerObj)
    taken.push({
      address: o.listenAddress,
      port: o.httpsPort,
      what: `the HTTPS listener (${names.HTTPS_LISTENER_NAME})`,
    });
  for (const t of [...(model.tcpServices ?? [])].sort((a, b) => byString(a.sourceKey, b.sourceKey))) {
    if (!t.enabled) continue;
    const r = tcpService(t, model.certificates, ctx.caBundle);
    errors.push(...r.errors);
    if (!r.listener) continue;
    const problem = tcpProblem(t, r.listener, r.clusters, taken);
    if (problem) {
      errors.push(problem);
      continue;
    }
    taken.push({ address: t.interface, port: t.port, what: `TcpService ${t.sourceKey}` });
    envoy.listeners.push(r.listener);
    envoy.clusters.push(...r.clusters);
  }

  const domains = new Set<string>();
  for (const c of contributions) {
    for (const x of c.envoy.clusters) envoy.clusters.push(x);
    for (const x of c.envoy.endpoints) envoy.endpoints.push(x);
    for (const x of c.grpc.clusters) grpc.clusters.push(x);
    for (const x of c.grpc.endpoints) grpc.endpoints.push(x);
    for (const p of c.patterns) domains.add(p);
  }
  const grpcDomainList = [...domains].sort(byString);
  if (o.authz) envoy.clusters.push(extAuthzCluster(names.EXT_AUTHZ_CLUSTER_NAME, o.authz));

  // Proxyless gRPC: one route configuration per api_listener host, with the virtual hosts that
  // can match it (its own, and the wildcard ones matching it), in the shared order.
  const wildVhosts: [string, VhostRec][] = [...vhosts.grpc].filter(([v]) => v.includes('*'));
  for (const host of grpcDomainList) {
    if (host.includes('*')) continue;
    const h = host.toLowerCase();
    const own = vhosts.grpc.get(h);
    const list: [string, VhostRec][] = own ? [[h, own]] : [];
    for (const w of wildVhosts) if (hostMatches(w[0], h)) list.push(w);
    if (list.length > 1) list.sort((a, b) => byString(a[0], b[0]));
    const rcName = names.grpcRouteConfigName(host);
    grpc.routes.push(
      routeConfigRec(
        rcName,
        list.map((x) => x[1]),
      ),
    );
    grpc.listeners.push(grpcApiListenerMemo(host, rcName));
  }
  // On-demand listeners (grpcListenerFor) of hosts that only wildcard patterns match.
  if (grpcDomainList.some((p) => p.includes('*'))) {
    grpc.routes.push(
      routeConfigRec(
        names.GRPC_WILDCARD_ROUTE_CONFIG_NAME,
        wildVhosts.map((x) => x[1]),
      ),
    );
  }

  for (const set of [envoy, grpc]) {
    set.listeners.sort(byName('name'));
    set.routes.sort(byName('name'));
    set.clusters.sort(byName('name'));
    set.endpoints.sort(byName('clusterName'));
    set.secrets.sort(byName('name'));
  }
  for (const m of [descriptorMemo, shellMemo, vhostMemo, routeConfigMemo, listenerMemo] as Map<string, Used>[])
    sweep(m);
  return { envoy, grpc, grpcDomains: grpcDomainList, errors };
}

/**
 * The RouteConfiguration an api_listener named `name` uses: `oxds-grpc~<host>` when its host
 * (`:port` stripped) is a concrete pattern, else the wildcard one (undefined when nothing matches).
 */
function grpcRouteConfigFor(name: string, domains: readonly string[]): string | undefined {
  const host = name.replace(/:[0-9]+$/, '');
  if (host === '') return undefined;
  const h = host.toLowerCase();
  let wild = false;
  for (const p of domains) {
    if (!p.includes('*')) {
      if (p.toLowerCase() === h) return names.grpcRouteConfigName(p);
    } else if (!wild && hostMatches(p, host)) wild = true;
  }
  return wild ? names.GRPC_WILDCARD_ROUTE_CONFIG_NAME : undefined;
}

/** An api_listener named `name` when its host (`:port` stripped) matches one of the patterns. */
export function grpcListenerFor(name: string, domains: readonly string[]): ProtoObject | undefined {
  const rc = grpcRouteConfigFor(name, domains);
  return rc === undefined ? undefined : grpcApiListener(name, rc);
}

function grpcApiListener(name: string, routeConfigName: string): ProtoObject {
  return apiListener(name, grpcHttpConnectionManager(names.statPrefix(`oxds-grpc-${name}`), routeConfigName));
}

function grpcApiListenerMemo(name: string, routeConfigName: string): ProtoObject {
  let m = listenerMemo.get(name);
  if (!m) {
    const obj = grpcApiListener(name, routeConfigName);
    check(TYPE_URLS.listener, obj); // when invalid, validateSet reports it
    m = { used: generation, obj };
    listenerMemo.set(name, m);
  }
  m.used = generation;
  return m.obj;
}
