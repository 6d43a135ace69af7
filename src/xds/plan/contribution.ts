// The clusters and endpoints one descriptor brings, per node role, and how its routes reach them.
import type { ProtoObject } from '../../../proto/loader.js';
import type { Descriptor, Target } from '../../model/types.js';
import * as names from '../names.js';
import { frozen, withFields } from '../shapes.js';
import type { RouteInput } from './route-input.js';
import { byString } from '../resources/common.js';
import { healthCheck, type UpstreamTlsSpec, upstreamTlsContext } from '../resources/features.js';
import type { ClusterChoice } from '../resources/route.js';
import type { Cluster } from '../../../proto/envoy-types.js';
import {
  type ClusterSettings,
  tlsMatchMetadata,
  upstreamTlsTransport,
  dnsCluster,
  edsCluster,
  http2ProtocolOptions,
  lbPolicy,
  sharedOutlierDetection,
} from '../resources/cluster.js';
import { type LocalityInput, clusterLoadAssignment } from '../resources/endpoint.js';
import { failFastLbConfig, uncappedCircuitBreakers } from '../resources/resilience.js';

/** What one descriptor brings: its clusters and endpoints per node type, and how routes reach them. */
export interface Contribution {
  d: Descriptor;
  /** What the route builders read of `d`. */
  route: RouteInput;
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
  return { discovery: discoveryOf(d) };
}

function discoveryOf(d: Descriptor): 'dns' | 'eds' {
  return d.targets.some((t) => t.resolution.type === 'dns') ? 'dns' : 'eds';
}

/** The hash part of cluster names, by discovery kind (the whole hash input): two values, hashed once. */
const CLUSTER_HASHES = new Map<string, string>();

/** names.clusterName(d.id, clusterHashInput(d)), without hashing the same input again. */
function descriptorClusterName(d: Descriptor): string {
  const discovery = discoveryOf(d);
  let h = CLUSTER_HASHES.get(discovery);
  if (h === undefined) {
    h = names.shortHash(clusterHashInput(d));
    CLUSTER_HASHES.set(discovery, h);
  }
  return names.clusterNameOfHash(d.id, h);
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
export interface TranslateCtx {
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

/** Whether the targets of `d` have more than one host. */
function severalHosts(d: Descriptor): boolean {
  const [first] = d.targets;
  return first !== undefined && d.targets.some((t) => t.host !== first.host);
}

/** Endpoints pick their TLS transport socket by metadata: some targets are plain, or https ones differ in TLS. */
function needsTlsMatch(d: Descriptor, ctx: TranslateCtx): boolean {
  const https = d.targets.filter((t) => t.scheme === 'https');
  if (https.length === 0) return false;
  return https.length < d.targets.length || new Set(https.map((t) => targetTls(t, ctx).key)).size > 1;
}

function localities(d: Descriptor, targets: readonly Target[], ctx: TranslateCtx, grpc = false): LocalityInput[] {
  const live = targets.filter((t) => t.weight > 0);
  const addresses = live.map(addressesOf);
  const weights = endpointWeights(live.map((t, i) => ({ weight: t.weight, count: addresses[i]?.length ?? 0 })));
  const hostname = d.overrideHost && severalHosts(d);
  const tlsMatch = !grpc && needsTlsMatch(d, ctx);
  return live.map((t, i) => {
    const l: LocalityInput = {
      targetId: t.id,
      weight: t.weight,
      endpointWeight: weights[i] ?? t.weight,
      addresses: addresses[i] ?? [],
    };
    if (hostname) l.hostname = t.host;
    if (tlsMatch && t.scheme === 'https') l.metadata = tlsMatchMetadata(targetTls(t, ctx).key);
    return l;
  });
}

/** https targets: one transport socket when every target is https with one TLS setting, else one match per setting. */
function upstreamTransport(d: Descriptor, ctx: TranslateCtx): ProtoObject | undefined {
  const https = d.targets.filter((t) => t.scheme === 'https');
  if (https.length === 0) return undefined;
  const byKey = new Map<string, UpstreamTlsSpec>();
  for (const t of https) {
    const x = targetTls(t, ctx);
    byKey.set(x.key, x.spec);
  }
  const sorted = [...byKey].sort((a, b) => byString(a[0], b[0]));
  const contexts = sorted.map(([key, spec]) => [key, upstreamTlsContext(spec)] as const);
  return upstreamTlsTransport(contexts, https.length === d.targets.length);
}

/** The resilience fields of every Envoy descriptor cluster (shared: clusters are never mutated). */
const ENVOY_RESILIENCE: Cluster = frozen({ circuitBreakers: uncappedCircuitBreakers(), ...failFastLbConfig() });
const HTTP2_OPTIONS = frozen(http2ProtocolOptions());

/** The Envoy-only cluster fields of `d`: upstream TLS, HTTP/2, resilience, health check (in that order). */
function envoyExtra(d: Descriptor, ctx: TranslateCtx): Cluster {
  // gRPC clients NACK TLS contexts without certificate providers: upstream TLS is Envoy-only.
  const transport = upstreamTransport(d, ctx);
  const http2 = d.targets.length > 0 && d.targets.every((t) => t.protocol === 'HTTP/2.0');
  if (!transport && !http2 && !d.healthCheck) return ENVOY_RESILIENCE;
  const extra: Cluster = Object.assign({}, transport, http2 ? HTTP2_OPTIONS : undefined, ENVOY_RESILIENCE);
  if (d.healthCheck) {
    const host = d.targets.length > 0 && !severalHosts(d) ? d.targets[0]?.host : undefined;
    extra.healthChecks = [healthCheck(d.healthCheck.url, host, http2)];
  }
  return extra;
}

function clusterSettings(d: Descriptor, grpc: boolean, ctx: TranslateCtx): ClusterSettings {
  const s: ClusterSettings = {
    connectTimeoutMs: d.clientConfig.connectionTimeout,
    lbPolicy: lbPolicy(d.loadBalancing, grpc),
  };
  const od = sharedOutlierDetection(d.clientConfig);
  if (od) s.outlierDetection = od;
  if (!grpc) s.extra = envoyExtra(d, ctx);
  return s;
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
  if (!canary || canary.traffic <= 0) return withFields(main, { choice: { cluster: name } });
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
function grpcClusters(
  d: Descriptor,
  name: string,
  ctx: TranslateCtx,
  envoy: Contribution['envoy'],
): Contribution['grpc'] {
  const s = clusterSettings(d, true, ctx);
  const statics = d.targets.filter((t) => t.resolution.type === 'static' && t.weight > 0);
  const dns = d.targets.filter((t) => t.resolution.type === 'dns' && t.weight > 0);
  const out: Contribution['grpc'] = { clusters: [], endpoints: [], choice: { cluster: name } };
  const split: { name: string; weight: number }[] = [];
  if (statics.length > 0 || dns.length === 0) {
    out.clusters.push(edsCluster(name, s));
    out.endpoints.push(
      sharedAssignment(d, name, envoy) ?? clusterLoadAssignment(name, localities(d, statics, ctx, true)),
    );
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

/**
 * The Envoy ClusterLoadAssignment of `name` when gRPC's would be the same: every target static (the
 * same live targets) and none https (no transport-socket match metadata, which gRPC never has).
 * One object for both roles: built and validated once.
 */
function sharedAssignment(d: Descriptor, name: string, envoy: Contribution['envoy']): ProtoObject | undefined {
  if (!d.targets.every((t) => t.resolution.type === 'static' && t.scheme !== 'https')) return undefined;
  return envoy.endpoints.find((e) => e['clusterName'] === name);
}

/** The fields of a descriptor its routes are built from (optional ones only when set). */
export function routeInputOf(d: Descriptor): RouteInput {
  const out: RouteInput = {
    id: d.id,
    matchingHeaders: d.matchingHeaders,
    forceHttps: d.forceHttps,
    root: d.root,
    stripPath: d.stripPath,
    overrideHost: d.overrideHost,
    targets: d.targets,
    clientConfig: d.clientConfig,
    loadBalancing: d.loadBalancing,
    additionalHeaders: d.additionalHeaders,
    additionalHeadersOut: d.additionalHeadersOut,
    missingOnlyHeadersIn: d.missingOnlyHeadersIn,
    missingOnlyHeadersOut: d.missingOnlyHeadersOut,
    removeHeadersIn: d.removeHeadersIn,
    removeHeadersOut: d.removeHeadersOut,
    xForwardedHeaders: d.xForwardedHeaders,
    sendOtoroshiHeadersBack: d.sendOtoroshiHeadersBack,
    privatePatterns: d.privatePatterns,
    publicPatterns: d.publicPatterns,
    headersVerification: d.headersVerification,
    readOnly: d.readOnly,
    detectApiKeySooner: d.detectApiKeySooner,
  };
  if (d.hostRewrite !== undefined) out.hostRewrite = d.hostRewrite;
  if (d.apiKeyConstraints !== undefined) out.apiKeyConstraints = d.apiKeyConstraints;
  if (d.ipFiltering !== undefined) out.ipFiltering = d.ipFiltering;
  if (d.cors !== undefined) out.cors = d.cors;
  if (d.gzip !== undefined) out.gzip = d.gzip;
  if (d.restrictions !== undefined) out.restrictions = d.restrictions;
  if (d.jwtVerifier !== undefined) out.jwtVerifier = d.jwtVerifier;
  return out;
}

export function contribution(d: Descriptor, authz: boolean, ctx: TranslateCtx): Contribution {
  const name = descriptorClusterName(d);
  const patterns = [...new Set(d.hosts)].sort(byString);
  const route = routeInputOf(d);
  const envoy = envoyClusters(d, name, ctx);
  return { d, route, authz, patterns, envoy, grpc: grpcClusters(d, name, ctx, envoy) };
}
