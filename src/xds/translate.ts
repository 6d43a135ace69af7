// translate(model) → Envoy and proxyless-gRPC resources. Pure and deterministic: same model,
// same output, every list sorted. Invalid per-descriptor contributions are dropped with an
// OXDS_ENVOY_VALIDATION error; they never sink the shared route configurations.
import type { ProtoObject } from '../proto/loader.js';
import { TYPE_URLS } from '../proto/loader.js';
import { validateResource, type ValidationIssue } from './validate.js';
import type { ConfigError, Descriptor, Model, PathMatch, Target, TlsBinding, TlsCertificate } from '../model/types.js';
import { DEFAULT_TRANSLATE_OPTIONS, type ResourceSet, type TranslateOptions, type TranslateOutput } from './types.js';
import * as names from './names.js';
import { byString, sortedBy } from './resources/common.js';
import { grpcHttpConnectionManager, httpConnectionManager } from './resources/hcm.js';
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
} from './resources/route.js';
import {
  type ClusterSettings,
  TLS_MATCH_KEY,
  dnsCluster,
  edsCluster,
  http2ProtocolOptions,
  lbPolicy,
  outlierDetection,
  upstreamTls,
} from './resources/cluster.js';
import { type LocalityInput, clusterLoadAssignment } from './resources/endpoint.js';

// ------------------------------------------------------------------ host patterns

const globCache = new Map<string, RegExp>();

/** Otoroshi RegexPool: `.` → `\.`, `*` → `.*`, whole host (port already stripped). */
export function hostMatches(pattern: string, host: string): boolean {
  let re = globCache.get(pattern);
  if (!re) {
    const src = pattern.replace(/[+?^${}()|[\]\\]/g, '\\$&').replace(/\./g, '\\.').replace(/\*/g, '.*');
    re = new RegExp(`^${src}$`, 'i');
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

function localities(d: Descriptor, targets: readonly Target[], grpc = false): LocalityInput[] {
  const live = targets.filter((t) => t.weight > 0);
  const weights = endpointWeights(live.map((t) => ({ weight: t.weight, count: addressesOf(t).length })));
  const hosts = new Set(d.targets.map((t) => t.host));
  const tlsMatch = !grpc && d.targets.some((t) => t.scheme === 'https') && (d.targets.some((t) => t.scheme === 'http') || new Set(d.targets.filter((t) => t.scheme === 'https').map((t) => t.host)).size > 1);
  return live.map((t, i) => ({
    targetId: t.id,
    weight: t.weight,
    endpointWeight: weights[i] ?? t.weight,
    addresses: addressesOf(t),
    ...(d.overrideHost && hosts.size > 1 ? { hostname: t.host } : {}),
    ...(tlsMatch && t.scheme === 'https' ? { metadata: { filterMetadata: { 'envoy.transport_socket_match': { fields: { [TLS_MATCH_KEY]: { stringValue: t.host } } } } } } : {}),
  }));
}

function clusterSettings(d: Descriptor, grpc: boolean): ClusterSettings {
  const od = outlierDetection(d.clientConfig);
  const extra: ProtoObject = {};
  if (!grpc) {
    // gRPC clients NACK TLS contexts without certificate providers: upstream TLS is Envoy-only.
    const https = d.targets.filter((t) => t.scheme === 'https');
    Object.assign(extra, upstreamTls(https.map((t) => t.host), https.length === d.targets.length) ?? {});
    if (d.targets.length > 0 && d.targets.every((t) => t.protocol === 'HTTP/2.0')) Object.assign(extra, http2ProtocolOptions());
  }
  return {
    connectTimeoutMs: d.clientConfig.connectionTimeout,
    lbPolicy: lbPolicy(d.loadBalancing, grpc),
    ...(od ? { outlierDetection: od } : {}),
    ...(Object.keys(extra).length > 0 ? { extra } : {}),
  };
}

/** Envoy: one EDS cluster (all static) or one STRICT_DNS cluster with an inline assignment. */
function envoyClusters(d: Descriptor, name: string): Contribution['envoy'] {
  const s = clusterSettings(d, false);
  const cla = clusterLoadAssignment(name, localities(d, d.targets));
  if (d.targets.some((t) => t.resolution.type === 'dns')) {
    return { clusters: [dnsCluster(name, 'STRICT_DNS', s, cla)], endpoints: [], choice: { cluster: name } };
  }
  return { clusters: [edsCluster(name, s)], endpoints: [cla], choice: { cluster: name } };
}

/**
 * gRPC: static targets share one EDS cluster (locality weights = target weights); each dns
 * target gets its own LOGICAL_DNS cluster; the route splits by weighted_clusters when there is
 * more than one cluster (total_weight = the exact sum, as C-core requires).
 */
function grpcClusters(d: Descriptor, name: string): Contribution['grpc'] {
  const s = clusterSettings(d, true);
  const statics = d.targets.filter((t) => t.resolution.type === 'static' && t.weight > 0);
  const dns = d.targets.filter((t) => t.resolution.type === 'dns' && t.weight > 0);
  const out: Contribution['grpc'] = { clusters: [], endpoints: [], choice: { cluster: name } };
  const split: { name: string; weight: number }[] = [];
  if (statics.length > 0 || dns.length === 0) {
    out.clusters.push(edsCluster(name, s));
    out.endpoints.push(clusterLoadAssignment(name, localities(d, statics, true)));
    split.push({ name, weight: statics.reduce((sum, t) => sum + t.weight, 0) });
  }
  for (const t of dns) {
    const cname = names.dnsTargetClusterName(name, t.id);
    out.clusters.push(dnsCluster(cname, 'LOGICAL_DNS', s, clusterLoadAssignment(cname, localities(d, [t], true))));
    split.push({ name: cname, weight: t.weight });
  }
  const [single] = split;
  if (split.length === 1 && single) out.choice = { cluster: single.name };
  else out.choice = { weightedClusters: split };
  return out;
}

function contribution(d: Descriptor): Contribution {
  const name = names.clusterName(d.id, clusterHashInput(d));
  const patterns = [...new Set(d.hosts)].sort(byString);
  return { d, patterns, envoy: envoyClusters(d, name), grpc: grpcClusters(d, name) };
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

/** The route of an entry for a variant; undefined when that variant has no equivalent. */
function routeOf(e: Entry, variant: RouteVariant): ProtoObject | undefined {
  const d = e.c.d;
  const name = names.routeName(d.id, e.pathIndex);
  const match = routeMatch(e.path, d.matchingHeaders, e.authority, variant);
  if (variant === 'http' && d.forceHttps) return httpsRedirectRoute(name, match);
  if (d.maintenanceMode || d.buildMode) {
    if (variant === 'grpc') return undefined; // grpc-js-xds NACKs a route whose action is not `route`
    return otoroshiErrorRoute(name, match, 503, d.maintenanceMode ? 'Service in maintenance mode' : 'Service under construction');
  }
  const choice = variant === 'grpc' ? e.c.grpc.choice : e.c.envoy.choice;
  return forwardRoute(name, match, routeAction(d, e.path, choice, variant), headerMutations(d));
}

/** Otoroshi's 404 for requests no descriptor takes (Envoy only). */
function notFoundRoute(): ProtoObject {
  return otoroshiErrorRoute('oxds-not-found', { prefix: '/' }, 404, 'Service not found');
}

function grpcDomains(v: string): string[] {
  return v.includes('*') ? [v] : [v, `${v}:*`];
}

/** The route configuration of a variant over the given contributions. */
function routeConfigurationFor(name: string, cs: readonly Contribution[], variant: RouteVariant, notFound = variant !== 'grpc'): ProtoObject {
  const keys = new Set<string>();
  for (const c of cs) for (const p of c.patterns) keys.add(envoyDomain(p));
  if (notFound) keys.add('*'); // Otoroshi's 404 for unknown hosts
  // A concrete pattern only ever reaches its own vhost: index them, scan only wildcard ones.
  const byHost = new Map<string, Contribution[]>();
  const wild: Contribution[] = [];
  for (const c of cs) {
    if (c.patterns.some((p) => p.includes('*'))) wild.push(c);
    for (const p of c.patterns) if (!p.includes('*')) byHost.set(p.toLowerCase(), [...(byHost.get(p.toLowerCase()) ?? []), c]);
  }
  const vhosts: ProtoObject[] = [];
  for (const v of [...keys].sort(byString)) {
    const candidates = new Set([...(byHost.get(v) ?? []), ...wild]);
    const entries = [...candidates].flatMap((c) => entriesFor(c, v)).sort(compareEntries);
    const routes = entries.map((e) => routeOf(e, variant)).filter((r): r is ProtoObject => r !== undefined);
    if (notFound) routes.push(notFoundRoute());
    if (routes.length === 0) continue;
    vhosts.push(virtualHost(names.virtualHostName(v), variant === 'grpc' ? grpcDomains(v) : [v], routes));
  }
  return routeConfiguration(name, vhosts);
}

// ------------------------------------------------------------------ validation

/**
 * VALIDATION CALL SITE (the only one): checks one resource of a descriptor's contribution with
 * validateResource (strict shape, PGV rules, encode/decode round trip).
 */
function checkResource(typeUrl: string, obj: ProtoObject): ValidationIssue[] {
  const r = validateResource(typeUrl, obj);
  return r.ok ? [] : r.issues;
}

function objectName(sourceKey: string): string {
  const parts = sourceKey.split('/');
  return parts[parts.length - 1] ?? sourceKey;
}

function descriptorError(d: Descriptor, what: string, issue: ValidationIssue): ConfigError {
  return {
    code: 'OXDS_ENVOY_VALIDATION',
    message: `descriptor ${d.id}: ${what}${issue.path ? ` at ${issue.path}` : ''} violates ${issue.rule}: ${issue.message}; its routes and clusters are not published`,
    field: issue.path ? `${what}.${issue.path}` : what,
    kind: d.sourceKind,
    namespace: d.namespace,
    name: objectName(d.sourceKey),
    ...(d.origin.file !== undefined ? { file: d.origin.file } : {}),
    ...(d.origin.doc !== undefined ? { doc: d.origin.doc } : {}),
    severity: 'error',
  };
}

/** `virtualHosts[1].routes[0].x` → `virtualHosts["a.example.com"].routes["id/0"].x` (stable, readable). */
function namedPath(obj: ProtoObject, path: string): string {
  const m = /^virtualHosts\[(\d+)\](?:\.routes\[(\d+)\])?(.*)$/.exec(path);
  if (!m) return path;
  const vh = (obj.virtualHosts as ProtoObject[] | undefined)?.[Number(m[1])];
  const route = m[2] !== undefined ? (vh?.routes as ProtoObject[] | undefined)?.[Number(m[2])] : undefined;
  const vhPart = `virtualHosts[${JSON.stringify(vh?.name ?? m[1])}]`;
  const routePart = m[2] !== undefined ? `.routes[${JSON.stringify(route?.name ?? m[2])}]` : '';
  return `${vhPart}${routePart}${m[3] ?? ''}`;
}

/** The first problem of a contribution, checked on exactly the resources it would add. */
function validateContribution(c: Contribution): ConfigError | undefined {
  const checks: [string, string, ProtoObject][] = [
    // https differs from http only by forceHttps redirects: validate it only when it differs.
    ...(c.d.forceHttps ? (['http', 'https', 'grpc'] as const) : (['http', 'grpc'] as const)).map((v): [string, string, ProtoObject] => [
      `routes(${v})`,
      TYPE_URLS.route,
      routeConfigurationFor('validate', [c], v, false),
    ]),
    ...[...c.envoy.clusters, ...c.grpc.clusters].map((o): [string, string, ProtoObject] => [`cluster ${String(o.name)}`, TYPE_URLS.cluster, o]),
    ...[...c.envoy.endpoints, ...c.grpc.endpoints].map((o): [string, string, ProtoObject] => [`endpoints ${String(o.clusterName)}`, TYPE_URLS.endpoint, o]),
  ];
  for (const [what, url, obj] of checks) {
    const issue = memoCheck(url, obj);
    if (issue) return descriptorError(c.d, what, issue);
  }
  return undefined;
}

/**
 * Validation verdicts by resource content. Rebuilds re-translate every descriptor, and most did
 * not change: the verdict of identical content is identical, so this memo is invisible (translate
 * stays pure) and turns the PGV walk (~0.5 ms a resource) into one stable-JSON key per resource.
 */
const verdicts = new Map<string, ValidationIssue | null>();

function memoCheck(url: string, obj: ProtoObject): ValidationIssue | undefined {
  const key = `${url}\n${JSON.stringify(obj)}`; // builders emit keys in a fixed order
  let v = verdicts.get(key);
  if (v === undefined) {
    const [issue] = checkResource(url, obj);
    v = issue ? { ...issue, path: namedPath(obj, issue.path) } : null;
    if (verdicts.size >= 50_000) verdicts.clear();
    verdicts.set(key, v);
  }
  return v ?? undefined;
}

// ------------------------------------------------------------------ TLS

function tlsResources(model: Model, errors: ConfigError[]): { chains: ProtoObject[]; secrets: ProtoObject[] } {
  const certs = new Map<string, TlsCertificate>(model.certificates.map((c) => [c.secretName, c]));
  const used = new Set<string>();
  let defaultTaken = false;
  const chains: ProtoObject[] = [];
  const secrets = new Map<string, ProtoObject>();
  const hcm = httpConnectionManager(names.statPrefix(names.HTTPS_LISTENER_NAME), names.HTTPS_ROUTE_CONFIG_NAME);
  for (const b of sortedBy(model.tls, (x: TlsBinding) => x.secretName)) {
    const cert = certs.get(b.secretName);
    const warn = (message: string): void => {
      errors.push({ code: 'OXDS_UNRESOLVED_REFERENCE', message, field: 'tls', severity: 'warning' });
    };
    if (!cert) {
      warn(`TLS binding for ${b.serverNames.join(', ') || '(default)'} names certificate ${b.secretName}, which is unknown: binding skipped`);
      continue;
    }
    const serverNames = [...new Set(b.serverNames.map((n) => n.toLowerCase()))].sort(byString).filter((n) => !used.has(n));
    if (serverNames.length === 0 && (b.serverNames.length > 0 || defaultTaken)) {
      warn(`TLS binding ${b.secretName}: every server name is already served by another certificate: binding skipped`);
      continue;
    }
    if (serverNames.length === 0) defaultTaken = true;
    serverNames.forEach((n) => used.add(n));
    const secret = names.secretName(b.secretName);
    chains.push(tlsFilterChain(names.filterChainName(secret), serverNames, secret, hcm));
    secrets.set(secret, {
      name: secret,
      tlsCertificate: { certificateChain: { inlineString: cert.certificateChain }, privateKey: { inlineString: cert.privateKey } },
    });
  }
  return { chains, secrets: [...secrets.values()] };
}

// ------------------------------------------------------------------ translate

function byName(key: string): (a: ProtoObject, b: ProtoObject) => number {
  return (a, b) => byString(String(a[key]), String(b[key]));
}

function emptySet(): ResourceSet {
  return { listeners: [], routes: [], clusters: [], endpoints: [], secrets: [] };
}

export function translate(model: Model, opts?: Partial<TranslateOptions>): TranslateOutput {
  const o: TranslateOptions = { ...DEFAULT_TRANSLATE_OPTIONS, ...(opts ?? {}) };
  const errors: ConfigError[] = [];
  const contributions: Contribution[] = [];
  const descriptors = [...model.descriptors].sort((a, b) => byString(a.id, b.id) || byString(a.sourceKey, b.sourceKey));
  const seen = new Set<string>();
  for (const d of descriptors) {
    // Otoroshi drops disabled descriptors before choosing one (§4.3.2): no routes, no clusters.
    if (!d.enabled || d.hosts.length === 0) continue;
    if (seen.has(d.id)) {
      // Route and cluster names derive from the id: a second descriptor with it would collide.
      errors.push({ ...descriptorError(d, 'id', { path: '', rule: 'unique', message: `id ${d.id} is already used by another descriptor` }), code: 'OXDS_DUPLICATE_OBJECT', field: 'id' });
      continue;
    }
    seen.add(d.id);
    const c = contribution(d);
    const problem = validateContribution(c);
    if (problem) errors.push(problem);
    else contributions.push(c);
  }

  const envoy = emptySet();
  const grpc = emptySet();
  envoy.listeners.push(
    httpListener(names.HTTP_LISTENER_NAME, o.listenAddress, o.httpPort, httpConnectionManager(names.statPrefix(names.HTTP_LISTENER_NAME), names.HTTP_ROUTE_CONFIG_NAME)),
  );
  envoy.routes.push(routeConfigurationFor(names.HTTP_ROUTE_CONFIG_NAME, contributions, 'http'));
  if (model.tls.length > 0) {
    const { chains, secrets } = tlsResources(model, errors);
    const https = httpsListener(names.HTTPS_LISTENER_NAME, o.listenAddress, o.httpsPort, chains);
    if (https) {
      envoy.listeners.push(https);
      envoy.routes.push(routeConfigurationFor(names.HTTPS_ROUTE_CONFIG_NAME, contributions, 'https'));
      envoy.secrets.push(...secrets);
    }
  }
  grpc.routes.push(routeConfigurationFor(names.GRPC_ROUTE_CONFIG_NAME, contributions, 'grpc'));

  const domains = new Set<string>();
  for (const c of contributions) {
    envoy.clusters.push(...c.envoy.clusters);
    envoy.endpoints.push(...c.envoy.endpoints);
    grpc.clusters.push(...c.grpc.clusters);
    grpc.endpoints.push(...c.grpc.endpoints);
    c.patterns.forEach((p) => domains.add(p));
  }
  const grpcDomainList = [...domains].sort(byString);
  for (const host of grpcDomainList.filter((p) => !p.includes('*'))) grpc.listeners.push(grpcApiListener(host));

  for (const set of [envoy, grpc]) {
    set.listeners.sort(byName('name'));
    set.routes.sort(byName('name'));
    set.clusters.sort(byName('name'));
    set.endpoints.sort(byName('clusterName'));
    set.secrets.sort(byName('name'));
  }
  return { envoy, grpc, grpcDomains: grpcDomainList, errors };
}

/** An api_listener named `name` when its host (`:port` stripped) matches one of the patterns. */
export function grpcListenerFor(name: string, domains: readonly string[]): ProtoObject | undefined {
  const host = name.replace(/:[0-9]+$/, '');
  if (host === '' || !domains.some((p) => hostMatches(p, host))) return undefined;
  return grpcApiListener(name);
}

function grpcApiListener(name: string): ProtoObject {
  return apiListener(name, grpcHttpConnectionManager(names.statPrefix(`oxds-grpc-${name}`), names.GRPC_ROUTE_CONFIG_NAME));
}
