// The sidecar role's resources: what one workload's Envoy receives, built from the model and the
// workload index (src/xds/sidecar/workloads.ts). Three listeners:
//   oxds-sidecar-inbound   mTLS with the workload's SPIFFE certificate (SDS), a peer certificate of our
//                          CA required (STRICT) or optional (PERMISSIVE); the policy of the descriptors
//                          this workload backs (ext_authz with descriptor_id, ipFiltering RBAC); the
//                          caller's SPIFFE id in XFCC and x-oxds-peer-id; then the app on 127.0.0.1.
//   oxds-sidecar-outbound  intercepted traffic (127.0.0.1, iptables REDIRECT): HTTP routed by Host;
//                          unknown hosts and non-HTTP traffic to the original destination (allow-any)
//                          or refused (registry-only);
//   oxds-sidecar-proxy     the same routes on an explicit HTTP proxy port (127.0.0.1).
// Outbound routes send descriptor hosts and mesh hosts to the destination pods' inbound ports with
// upstream mTLS (our workload certificate, the destination's SPIFFE id checked as a URI SAN), or to
// the descriptor's targets when no mesh pod backs it. docs/mesh.md describes the whole design.
import type { ProtoObject } from '../../../proto/loader.js';
import { TYPE_URL } from '../../../proto/type-urls.js';
import type { ApiKey, Descriptor, Model, StoredObject } from '../../model/types.js';
import { meshHosts, type MeshConfig } from '../../model/mesh-hosts.js';
import type { AuthzTarget, ResourceSet } from '../types.js';
import { CA_BUNDLE_SECRET_NAME, EXT_AUTHZ_CLUSTER_NAME, SIDECAR_CERT_SECRET } from '../names.js';

export { SIDECAR_CERT_SECRET };
import { adsConfigSource, duration, headerValue, socketAddress, wrapped } from '../resources/common.js';
import { httpConnectionManager } from '../resources/hcm.js';
import {
  type PackedHcm,
  downstreamTlsSocket,
  hcmNetworkFilter,
  httpListener,
  tlsInspector,
} from '../resources/listener.js';
import { routeConfiguration, virtualHost } from '../resources/route.js';
import { upstreamTlsSocket } from '../resources/cluster.js';
import { tcpProxy } from '../resources/tcp.js';
import {
  EXT_AUTHZ_FILTER_NAME,
  clientIdFromCheck,
  extAuthzCheck,
  extAuthzDisabled,
  extAuthzFilter,
} from '../resources/ext-authz.js';
import { RBAC_FILTER_NAME, ipDeniedMapper, rbacFilter, rbacPerRoute } from '../resources/features.js';
import { ANNOTATIONS, parseMtlsMode, podsOf, type MeshPod, type MtlsMode, type WorkloadIndex } from './workloads.js';

export const SIDECAR_NAMES = {
  inbound: 'oxds-sidecar-inbound',
  outbound: 'oxds-sidecar-outbound',
  proxy: 'oxds-sidecar-proxy',
  appCluster: 'oxds-sidecar-app',
  /** ORIGINAL_DST: intercepted traffic for destinations the mesh does not know (allow-any). */
  passthrough: 'oxds-sidecar-passthrough',
  /** No endpoints: what is refused (registry-only, a connection to the outbound port itself). */
  blackhole: 'oxds-sidecar-blackhole',
} as const;

/**
 * Intercepted traffic to destinations the mesh does not know (Istio's outboundTrafficPolicy):
 * `allow-any` forwards it to its original destination, `registry-only` refuses it. docs/mesh.md.
 */
export type OutboundPolicy = 'allow-any' | 'registry-only';
export const DEFAULT_OUTBOUND_POLICY: OutboundPolicy = 'allow-any';

/** The header carrying the caller's SPIFFE id to the application (set only from a verified certificate). */
export const PEER_ID_HEADER = 'x-oxds-peer-id';

/** Cluster of descriptor `id` as seen from a sidecar. */
export function meshClusterName(descriptorId: string): string {
  return `oxds-mesh~${descriptorId}`;
}

/** What a sidecar node is: its proved identity and the ports of its bootstrap. */
export interface SidecarNode {
  spiffeId: string;
  namespace: string;
  serviceAccount: string;
  appPort: number;
  inboundAddress: string;
  inboundPort: number;
  outboundPort: number;
  /** 0: no explicit proxy listener. */
  proxyPort: number;
}

export interface SidecarInputs {
  model: Model;
  objects: readonly StoredObject[];
  index: WorkloadIndex;
  mesh: MeshConfig;
  authz?: AuthzTarget;
  /** The gateway's resources: the ext_authz cluster and the CA bundle are taken from there. */
  gateway: ResourceSet;
  /** The workload certificate secret (SDS name = SPIFFE id), or undefined when none can be minted yet. */
  workloadSecret(spiffeId: string): ProtoObject | undefined;
  /** Default: DEFAULT_OUTBOUND_POLICY. */
  outboundPolicy?: OutboundPolicy;
}

/** A host pattern as an Envoy domain: exact names and leading `*.` wildcards; others are left out. */
export function sidecarDomain(pattern: string): string | undefined {
  const p = pattern.toLowerCase();
  if (!p.includes('*')) return p;
  return p.startsWith('*.') && !p.slice(1).includes('*') ? p : undefined;
}

function crName(d: Descriptor): string {
  return d.sourceKey.slice(d.sourceKey.lastIndexOf('/') + 1);
}

/** Descriptor hosts plus, for ServiceDescriptor CRs, Otoroshi's mesh hosts. */
export function descriptorDomains(
  d: Descriptor,
  objects: ReadonlyMap<string, StoredObject>,
  mesh: MeshConfig,
): string[] {
  const hosts = [...d.hosts];
  if (d.sourceKind === 'ServiceDescriptor') {
    const meta = objects.get(d.sourceKey)?.object.metadata;
    hosts.push(...meshHosts({ name: crName(d), namespace: d.namespace, annotations: meta?.annotations ?? {} }, mesh));
  }
  const out = new Set<string>();
  for (const h of hosts) {
    const dom = sidecarDomain(h);
    if (dom !== undefined) out.add(dom);
  }
  return [...out].sort();
}

/**
 * The inbound's mTLS mode (annotation otoroshi.io/sidecar-mtls-mode), as Istio's PeerAuthentication
 * layers it: a Pod's annotation, else its Namespace's, else STRICT. PERMISSIVE only when every pod
 * of the workload is; a workload with no known pod takes its namespace's mode.
 */
export function mtlsModeOf(pods: readonly MeshPod[], namespaceMode: MtlsMode | undefined): MtlsMode {
  const dflt = namespaceMode ?? 'STRICT';
  if (pods.length === 0) return dflt;
  return pods.every((p) => (parseMtlsMode(p.annotations[ANNOTATIONS.mtlsMode]) ?? dflt) === 'PERMISSIVE')
    ? 'PERMISSIVE'
    : 'STRICT';
}

/**
 * Egress scope (annotation otoroshi.io/sidecar-egress: `ns/*` or `ns/name`, comma separated; `./`
 * is the workload's namespace), as a normalized key: sorted `ns/name` rules, '' when absent on
 * every pod (every descriptor). Sidecars with the same key receive the same outbound side.
 */
export function egressScopeKey(pods: readonly MeshPod[], ownNs: string): string {
  const rules = new Set<string>();
  for (const p of pods)
    for (const raw of (p.annotations[ANNOTATIONS.egress] ?? '').split(',')) {
      const e = raw.trim();
      if (e === '') continue;
      const [ns = '', name = '*'] = e.split('/', 2);
      rules.add(`${ns === '.' ? ownNs : ns}/${name}`);
    }
  return [...rules].sort().join(',');
}

/** The descriptors an egress scope key admits; undefined: every descriptor. */
export function egressScopeFilter(key: string): ((d: Descriptor) => boolean) | undefined {
  if (key === '') return undefined;
  const rules = key.split(',').map((r) => {
    const i = r.indexOf('/');
    return { ns: r.slice(0, i), name: r.slice(i + 1) };
  });
  return (d) => rules.some((r) => (r.ns === '*' || r.ns === d.namespace) && (r.name === '*' || r.name === crName(d)));
}

/** Egress scope of a workload's pods as a filter (undefined: every descriptor). */
export function egressFilter(pods: readonly MeshPod[], ownNs: string): ((d: Descriptor) => boolean) | undefined {
  return egressScopeFilter(egressScopeKey(pods, ownNs));
}

/** The ApiKey named by otoroshi.io/sidecar-apikey (a clientId, or the ApiKey object's name in the pod's namespace). */
export function sidecarApikey(pods: readonly MeshPod[], apikeys: readonly ApiKey[]): ApiKey | undefined {
  for (const p of pods) {
    const ref = p.annotations[ANNOTATIONS.apikey];
    if (ref === undefined || ref === '') continue;
    const k =
      apikeys.find((a) => a.clientId === ref) ??
      apikeys.find((a) => a.namespace === p.namespace && a.sourceKey.endsWith(`/${p.namespace}/${ref}`));
    if (k !== undefined) return k;
  }
  return undefined;
}

function sdsSecret(name: string): ProtoObject {
  return { name, sdsConfig: adsConfigSource() };
}

function staticCluster(
  name: string,
  endpoints: readonly { ip: string; port: number }[],
  extra: ProtoObject = {},
): ProtoObject {
  return {
    name,
    type: 'STATIC',
    connectTimeout: duration(5000),
    loadAssignment: {
      clusterName: name,
      endpoints: [{ lbEndpoints: endpoints.map((e) => ({ endpoint: { address: socketAddress(e.ip, e.port) } })) }],
    },
    ...extra,
  };
}

/** Upstream mTLS to mesh pods: our certificate, the CA bundle, the destinations' SPIFFE ids as URI SANs. */
export function meshUpstreamTls(ownCertSecret: string, peerIds: readonly string[]): ProtoObject {
  return upstreamTlsSocket({
    commonTlsContext: {
      tlsCertificateSdsSecretConfigs: [sdsSecret(ownCertSecret)],
      combinedValidationContext: {
        defaultValidationContext: {
          matchTypedSubjectAltNames: [...new Set(peerIds)]
            .sort()
            .map((id) => ({ sanType: 'URI', matcher: { exact: id } })),
        },
        validationContextSdsSecretConfig: sdsSecret(CA_BUNDLE_SECRET_NAME),
      },
    },
  });
}

function meshDownstreamTls(ownSpiffeId: string, requirePeer: boolean): ProtoObject {
  return downstreamTlsSocket({
    '@type': TYPE_URL.DownstreamTlsContext,
    requireClientCertificate: wrapped(requirePeer),
    commonTlsContext: {
      tlsCertificateSdsSecretConfigs: [sdsSecret(ownSpiffeId)],
      validationContextSdsSecretConfig: sdsSecret(CA_BUNDLE_SECRET_NAME),
    },
  });
}

/** The cluster of one descriptor seen from any sidecar: its mesh pods (mTLS), else its own targets. */
export function outboundCluster(d: Descriptor, pods: readonly MeshPod[]): ProtoObject | undefined {
  const name = meshClusterName(d.id);
  if (pods.length > 0) {
    // Unready or terminating pods get no traffic; all of them are the destination's identity.
    const peers = pods.map((p) => p.spiffeId);
    return staticCluster(
      name,
      pods.filter((p) => p.ready).map((p) => ({ ip: p.ip, port: p.inboundPort })),
      { transportSocket: meshUpstreamTls(SIDECAR_CERT_SECRET, peers) },
    );
  }
  const statics = d.targets.flatMap((t) =>
    t.resolution.type === 'static'
      ? t.resolution.endpoints.filter((e) => e.ready).map((e) => ({ ip: e.ip, port: e.port }))
      : [],
  );
  const dns = d.targets.find((t) => t.resolution.type === 'dns');
  const https = d.targets.find((t) => t.scheme === 'https');
  const tls = https !== undefined ? { transportSocket: upstreamTlsSocket({ sni: https.host }) } : {};
  if (statics.length > 0) return staticCluster(name, statics, tls);
  if (dns !== undefined && dns.resolution.type === 'dns') {
    return {
      ...staticCluster(name, [{ ip: dns.resolution.hostname, port: dns.resolution.port }], tls),
      type: 'STRICT_DNS',
    };
  }
  return undefined;
}

interface OutboundEntry {
  d: Descriptor;
  domains: string[];
  mesh: boolean;
  cluster: ProtoObject;
}

function outboundRoute(e: OutboundEntry, key: ApiKey | undefined): ProtoObject {
  const t = e.d.targets[0];
  const rewrite = !e.mesh && e.d.overrideHost && t !== undefined ? { hostRewriteLiteral: t.host } : {};
  return {
    name: e.d.id,
    match: { prefix: '/' },
    route: { cluster: meshClusterName(e.d.id), timeout: duration(0), ...rewrite },
    // The workload's ApiKey, so the destination's apikey checks keep working inside the mesh.
    ...(e.mesh && key !== undefined
      ? {
          requestHeadersToAdd: [
            headerValue('Otoroshi-Client-Id', key.clientId, 'ADD_IF_ABSENT'),
            headerValue('Otoroshi-Client-Secret', key.clientSecret, 'ADD_IF_ABSENT'),
          ],
        }
      : {}),
  };
}

function notFound(name: string): ProtoObject {
  return virtualHost(name, ['*'], [{ name, match: { prefix: '/' }, directResponse: { status: 404 } }]);
}

/** The Via value the explicit proxy adds (a proxy's own hop, RFC 9110), so its requests are told apart. */
export const PROXY_VIA = '1.1 oxds-sidecar-proxy';

/**
 * allow-any: a Host no descriptor claims goes to the address the app dialled. Not from the explicit
 * proxy (its original destination is itself, a loop): its requests carry our Via value, 404.
 */
function passthroughHost(): ProtoObject {
  const name = SIDECAR_NAMES.passthrough;
  const fromProxy = { name: 'via', stringMatch: { contains: PROXY_VIA } };
  return virtualHost(
    name,
    ['*'],
    [
      {
        name: 'oxds-sidecar-proxy-unknown-host',
        match: { prefix: '/', headers: [fromProxy] },
        directResponse: { status: 404 },
      },
      { name, match: { prefix: '/' }, route: { cluster: name, timeout: duration(0) } },
    ],
  );
}

function outboundPolicyClusters(): ProtoObject[] {
  return [
    {
      name: SIDECAR_NAMES.passthrough,
      type: 'ORIGINAL_DST',
      lbPolicy: 'CLUSTER_PROVIDED',
      connectTimeout: duration(5000),
    },
    staticCluster(SIDECAR_NAMES.blackhole, []),
  ];
}

/**
 * The intercepted-traffic listener: original_dst restores the address the app dialled, and
 * http_inspector sends HTTP to the routes, anything else (TLS, databases...) to the original
 * destination (allow-any) or nowhere (registry-only). A connection dialling the outbound port
 * itself would loop: refused. A protocol where the server speaks first waits one second for the
 * inspector, then goes the non-HTTP way.
 */
function outboundListener(node: SidecarNode, hcm: PackedHcm, policy: OutboundPolicy): ProtoObject {
  const tcpCluster = policy === 'allow-any' ? SIDECAR_NAMES.passthrough : SIDECAR_NAMES.blackhole;
  return {
    name: SIDECAR_NAMES.outbound,
    address: socketAddress('127.0.0.1', node.outboundPort),
    listenerFilters: [
      { name: 'envoy.filters.listener.original_dst', typedConfig: { '@type': TYPE_URL.OriginalDst } },
      { name: 'envoy.filters.listener.http_inspector', typedConfig: { '@type': TYPE_URL.HttpInspector } },
    ],
    listenerFiltersTimeout: duration(1000),
    continueOnListenerFiltersTimeout: true,
    filterChains: [
      {
        name: 'loop',
        filterChainMatch: { destinationPort: wrapped(node.outboundPort) },
        filters: [tcpProxy('oxds-sidecar-loop', SIDECAR_NAMES.blackhole)],
      },
      {
        name: 'http',
        filterChainMatch: { applicationProtocols: ['http/1.1', 'h2c'] },
        filters: [hcmNetworkFilter(hcm)],
      },
    ],
    defaultFilterChain: { name: 'tcp', filters: [tcpProxy('oxds-sidecar-tcp', tcpCluster)] },
  };
}

const PEER_ID_BASE = {
  requestHeadersToRemove: [PEER_ID_HEADER],
  requestHeadersToAdd: [headerValue(PEER_ID_HEADER, '%DOWNSTREAM_PEER_URI_SAN%', 'OVERWRITE_IF_EXISTS_OR_ADD')],
};

function inboundRoute(d: Descriptor, authz: AuthzTarget | undefined): ProtoObject {
  const perFilter: ProtoObject = {};
  if (authz) perFilter[EXT_AUTHZ_FILTER_NAME] = extAuthzCheck(d.id);
  if (d.ipFiltering) perFilter[RBAC_FILTER_NAME] = rbacPerRoute(d.ipFiltering);
  return {
    name: d.id,
    match: { prefix: '/' },
    route: { cluster: SIDECAR_NAMES.appCluster, timeout: duration(0) },
    ...PEER_ID_BASE,
    ...(authz ? { requestHeadersToAdd: [...PEER_ID_BASE.requestHeadersToAdd, clientIdFromCheck()] } : {}),
    ...(Object.keys(perFilter).length > 0 ? { typedPerFilterConfig: perFilter } : {}),
  };
}

/** The inbound route table of a workload backing `backed` (sorted by id). */
function inboundRoutes(
  backed: readonly Descriptor[],
  domainsOf: (d: Descriptor) => string[],
  authz: AuthzTarget | undefined,
): ProtoObject {
  const claimed = new Set<string>();
  const vhosts: ProtoObject[] = [];
  for (const d of backed) {
    const domains = domainsOf(d).filter((x) => !claimed.has(x));
    if (domains.length === 0) continue;
    for (const x of domains) claimed.add(x);
    vhosts.push(virtualHost(d.id, domains, [inboundRoute(d, authz)]));
  }
  // A workload backing descriptors answers only their hosts (another Host header must not skip their
  // policy); one backing none is reached by any host, mTLS being its only check.
  if (backed.length > 0) vhosts.push(notFound('oxds-sidecar-unknown-host'));
  else {
    const any = 'oxds-sidecar-any';
    const route = {
      name: any,
      match: { prefix: '/' },
      route: { cluster: SIDECAR_NAMES.appCluster, timeout: duration(0) },
      ...PEER_ID_BASE,
      ...(authz ? { typedPerFilterConfig: { [EXT_AUTHZ_FILTER_NAME]: extAuthzDisabled() } } : {}),
    };
    vhosts.push(virtualHost(any, ['*'], [route]));
  }
  return routeConfiguration(SIDECAR_NAMES.inbound, vhosts);
}

function inboundHcm(authz: AuthzTarget | undefined, peerId: boolean): PackedHcm {
  const filters = [rbacFilter(RBAC_FILTER_NAME, undefined)];
  if (authz) filters.push(extAuthzFilter(EXT_AUTHZ_CLUSTER_NAME, authz));
  const name = `${SIDECAR_NAMES.inbound}${peerId ? '' : '-plaintext'}`;
  const hcm = httpConnectionManager(name, SIDECAR_NAMES.inbound, filters, undefined, {
    localReplyMappers: [ipDeniedMapper()],
  });
  // XFCC: only what this Envoy verified (a caller's own header is dropped).
  return peerId
    ? { ...hcm, forwardClientCertDetails: 'SANITIZE_SET', setCurrentClientCertDetails: { uri: true } }
    : { ...hcm, forwardClientCertDetails: 'SANITIZE' };
}

function inboundListener(authz: AuthzTarget | undefined, node: SidecarNode, mode: MtlsMode): ProtoObject {
  const mtlsChain: ProtoObject = {
    name: 'mtls',
    filters: [hcmNetworkFilter(inboundHcm(authz, true))],
    transportSocket: meshDownstreamTls(node.spiffeId, true),
  };
  const address = socketAddress(node.inboundAddress, node.inboundPort);
  if (mode === 'STRICT') return { name: SIDECAR_NAMES.inbound, address, filterChains: [mtlsChain] };
  return {
    name: SIDECAR_NAMES.inbound,
    address,
    listenerFilters: [tlsInspector()],
    filterChains: [{ ...mtlsChain, filterChainMatch: { transportProtocol: 'tls' } }],
    defaultFilterChain: { name: 'plaintext', filters: [hcmNetworkFilter(inboundHcm(authz, false))] },
  };
}

/** The outbound side every sidecar of one egress scope shares. */
export interface OutboundScope {
  entries: readonly OutboundEntry[];
  /** The clusters of `entries`, by id. */
  clusters: readonly ProtoObject[];
}

/** One sidecar's resources, in parts: `shared*` parts are the same objects for every sidecar sharing them. */
export interface SidecarParts {
  listeners: ProtoObject[];
  routes: ProtoObject[];
  /** The app cluster, the scope's clusters, the ext_authz cluster: one array per (scope, app port). */
  sharedClusters: readonly ProtoObject[];
  secrets: ProtoObject[];
}

function memo<K, V>(m: Map<K, V>, k: K, make: () => V): V {
  let v = m.get(k);
  if (v === undefined) {
    v = make();
    m.set(k, v);
  }
  return v;
}

/**
 * The sidecar plan of one model build. What does not depend on the workload is computed once and
 * shared: descriptor domains and clusters (once per descriptor), the outbound side (once per
 * egress scope, its route table once per scope and ApiKey), listeners by port. The inbound side is
 * per workload.
 */
export class SidecarPlan {
  private readonly byKey: ReadonlyMap<string, StoredObject>;
  private readonly authz: AuthzTarget | undefined;
  private readonly authzCluster: ProtoObject | undefined;
  private readonly bundle: ProtoObject | undefined;
  private readonly byAge: readonly Descriptor[];
  private readonly backedBy = new Map<string, Descriptor[]>();
  private readonly domains = new Map<string, string[]>();
  private readonly clusters = new Map<string, ProtoObject | null>();
  private readonly scopes = new Map<string, OutboundScope>();
  private readonly outRoutes = new Map<string, ProtoObject>();
  private readonly clusterLists = new Map<string, readonly ProtoObject[]>();
  private readonly listeners = new Map<string, ProtoObject>();
  private readonly policy: OutboundPolicy;
  private readonly policyClusters: readonly ProtoObject[] = outboundPolicyClusters();
  /** Outbound scopes computed (a counter for tests and benchmarks). */
  scopesBuilt = 0;

  constructor(private readonly inputs: SidecarInputs) {
    this.byKey = new Map(inputs.objects.map((o) => [o.key, o]));
    this.policy = inputs.outboundPolicy ?? DEFAULT_OUTBOUND_POLICY;
    this.authzCluster = inputs.gateway.clusters.find((c) => c['name'] === EXT_AUTHZ_CLUSTER_NAME);
    this.authz = inputs.authz && this.authzCluster ? inputs.authz : undefined;
    this.bundle = inputs.gateway.secrets.find((s) => s['name'] === CA_BUNDLE_SECRET_NAME);
    const enabled = inputs.model.descriptors.filter((d) => d.enabled);
    this.byAge = [...enabled].sort((a, b) => ((a.createdAt ?? '') + a.id < (b.createdAt ?? '') + b.id ? -1 : 1));
    for (const d of [...enabled].sort((a, b) => (a.id < b.id ? -1 : 1)))
      for (const id of new Set((inputs.index.backing.get(d.id) ?? []).map((p) => p.spiffeId)))
        memo(this.backedBy, id, () => []).push(d);
  }

  private domainsOf = (d: Descriptor): string[] =>
    memo(this.domains, d.id, () => descriptorDomains(d, this.byKey, this.inputs.mesh));

  private clusterOf(d: Descriptor): ProtoObject | undefined {
    return (
      memo(this.clusters, d.id, () => outboundCluster(d, this.inputs.index.backing.get(d.id) ?? []) ?? null) ??
      undefined
    );
  }

  /** The outbound side of an egress scope key (egressScopeKey): computed once per build and key. */
  scope(key: string): OutboundScope {
    return memo(this.scopes, key, () => {
      this.scopesBuilt++;
      const filter = egressScopeFilter(key);
      const claimed = new Set<string>();
      const entries: OutboundEntry[] = [];
      for (const d of this.byAge) {
        if (filter !== undefined && !filter(d)) continue;
        const domains = this.domainsOf(d).filter((x) => !claimed.has(x));
        if (domains.length === 0) continue;
        for (const x of domains) claimed.add(x);
        const cluster = this.clusterOf(d);
        const mesh = (this.inputs.index.backing.get(d.id)?.length ?? 0) > 0;
        if (cluster !== undefined) entries.push({ d, domains, mesh, cluster });
      }
      entries.sort((a, b) => (a.d.id < b.d.id ? -1 : 1));
      return { entries, clusters: entries.map((e) => e.cluster) };
    });
  }

  private outboundRoutes(scopeKey: string, key: ApiKey | undefined): ProtoObject {
    return memo(this.outRoutes, `${scopeKey}\u0000${key?.clientId ?? ''}`, () => {
      const vhosts = this.scope(scopeKey).entries.map((e) => virtualHost(e.d.id, e.domains, [outboundRoute(e, key)]));
      vhosts.push(this.policy === 'allow-any' ? passthroughHost() : notFound('oxds-sidecar-unknown-host'));
      return routeConfiguration(SIDECAR_NAMES.outbound, vhosts);
    });
  }

  private clusterList(scopeKey: string, appPort: number): readonly ProtoObject[] {
    return memo(this.clusterLists, `${scopeKey}\u0000${appPort}`, () => [
      staticCluster(SIDECAR_NAMES.appCluster, [{ ip: '127.0.0.1', port: appPort }]),
      ...this.scope(scopeKey).clusters,
      ...this.policyClusters,
      ...(this.authz && this.authzCluster ? [this.authzCluster] : []),
    ]);
  }

  /** The intercepted-traffic listener, by port. */
  private interceptListener(node: SidecarNode): ProtoObject {
    return memo(this.listeners, `${SIDECAR_NAMES.outbound}:${node.outboundPort}`, () =>
      outboundListener(node, httpConnectionManager(SIDECAR_NAMES.outbound, SIDECAR_NAMES.outbound), this.policy),
    );
  }

  /** The explicit HTTP proxy listener, by port (its requests carry our Via value). */
  private proxyListener(port: number): ProtoObject {
    return memo(this.listeners, `${SIDECAR_NAMES.proxy}:${port}`, () => {
      const hcm = { ...httpConnectionManager(SIDECAR_NAMES.proxy, SIDECAR_NAMES.outbound), via: PROXY_VIA };
      return httpListener(SIDECAR_NAMES.proxy, '127.0.0.1', port, hcm);
    });
  }

  /** Every resource of one sidecar, in parts; undefined while its workload certificate cannot be minted. */
  parts(node: SidecarNode): SidecarParts | undefined {
    const cert = this.inputs.workloadSecret(node.spiffeId);
    if (cert === undefined || this.bundle === undefined) return undefined;
    const own = podsOf(this.inputs.index, node.spiffeId);
    const scopeKey = egressScopeKey(own, node.namespace);
    const key = sidecarApikey(own, this.inputs.model.apikeys);
    const listeners = [
      inboundListener(this.authz, node, mtlsModeOf(own, this.inputs.index.namespaceMtls.get(node.namespace))),
      this.interceptListener(node),
    ];
    if (node.proxyPort > 0) listeners.push(this.proxyListener(node.proxyPort));
    const backed = this.backedBy.get(node.spiffeId) ?? [];
    return {
      listeners,
      routes: [inboundRoutes(backed, this.domainsOf, this.authz), this.outboundRoutes(scopeKey, key)],
      sharedClusters: this.clusterList(scopeKey, node.appPort),
      secrets: [cert, { ...cert, name: SIDECAR_CERT_SECRET }, this.bundle],
    };
  }
}

/** Every resource one sidecar receives; undefined while its workload certificate cannot be minted. */
export function sidecarResources(node: SidecarNode, inputs: SidecarInputs): ResourceSet | undefined {
  const p = new SidecarPlan(inputs).parts(node);
  if (p === undefined) return undefined;
  return {
    listeners: p.listeners,
    routes: p.routes,
    clusters: [...p.sharedClusters],
    endpoints: [],
    secrets: p.secrets,
  };
}
