// Sidecar snapshots: one per sidecar node shape (proved identity + bootstrap ports), published in
// the snapshot cache under a `sidecar|…` key next to the gateway's `envoy` and `grpc` ones. A key
// appears when a sidecar stream names it (snapshotKeyOf), is reassembled with every model build, and
// is dropped once no stream uses it. Resources are encoded once and shared: equal resources are one
// VersionedResource across sidecars and builds (ResourceInterner), sidecars of one egress scope share
// one cluster map, and a sidecar whose resources did not change keeps its snapshot (nothing is sent).
import { parseSpiffeId } from '../../ca/spiffe.js';
import { SIDECAR_META, SIDECAR_DEFAULTS } from '../../envoy/bootstrap.js';
import type { NodePrincipal } from '../node-auth.js';
import type { SnapshotCache } from '../cache.js';
import { createHash } from 'node:crypto';
import type { ProtoObject, ResourceKind } from '../../../proto/loader.js';
import type { NodeType, ResourceMaps, Snapshot, VersionedResource } from '../types.js';
import type { ConfigError } from '../../model/types.js';
import { metadataString } from '../server/node.js';
import type { NodeInfo } from '../server/messages.js';
import { contentHash, resourceName, snapshotFromMaps } from '../snapshot.js';
import { encodedBytes } from '../translate.js';
import { rejectedResource, validateKind } from '../validate.js';
import { SidecarPlan, type SidecarInputs, type SidecarNode } from './plan.js';
import { buildWorkloadIndex } from './workloads.js';

export const SIDECAR_KEY_PREFIX = 'sidecar|';
/** Keys of sidecars that proved no workload identity: never published, the stream gets nothing. */
export const UNIDENTIFIED_SIDECAR_KEY = 'sidecar|unidentified';
/** Bound on distinct sidecar shapes kept (each is one snapshot). */
export const MAX_SIDECAR_KEYS = 20_000;

type Meta = (key: string) => string | undefined;

function port(meta: Meta, key: string, dflt: number, allowZero = false): number {
  const v = meta(key);
  const n = v === undefined ? dflt : Number(v);
  return Number.isInteger(n) && n >= (allowZero ? 0 : 1) && n <= 65535 ? n : dflt;
}

/** Whether node metadata asks for the sidecar role (`OXDS_ROLE: sidecar`, set by `bootstrap sidecar`). */
export function isSidecarNode(meta: Meta): boolean {
  return meta(SIDECAR_META.role)?.trim().toLowerCase() === 'sidecar';
}

/**
 * The sidecar a node is: its identity from what the transport proved (a workload certificate),
 * or, only under --xds-node-auth insecure-node-metadata (`self-asserted`), from its metadata.
 */
export function sidecarNodeOf(principal: NodePrincipal, meta: Meta, trustDomain: string): SidecarNode | undefined {
  let spiffeId: string | undefined;
  if (principal.kind === 'workload') spiffeId = principal.spiffeId;
  else if (principal.kind === 'self-asserted') {
    const ns = meta(SIDECAR_META.namespace);
    const sa = meta(SIDECAR_META.serviceAccount);
    if (ns && sa) spiffeId = `spiffe://${trustDomain}/ns/${ns}/sa/${sa}`;
  }
  const parts = spiffeId === undefined ? undefined : parseSpiffeId(spiffeId, trustDomain);
  if (spiffeId === undefined || parts === undefined || parts[0] !== 'ns' || parts[2] !== 'sa') return undefined;
  const address = meta(SIDECAR_META.inboundAddress);
  return {
    spiffeId,
    namespace: parts[1] ?? '',
    serviceAccount: parts[3] ?? '',
    appPort: port(meta, SIDECAR_META.appPort, SIDECAR_DEFAULTS.appPort),
    inboundAddress:
      address !== undefined && /^[0-9a-fA-F:.]+$/.test(address) ? address : SIDECAR_DEFAULTS.inboundAddress,
    inboundPort: port(meta, SIDECAR_META.inboundPort, SIDECAR_DEFAULTS.inboundPort),
    outboundPort: port(meta, SIDECAR_META.outboundPort, SIDECAR_DEFAULTS.outboundPort),
    proxyPort: port(meta, SIDECAR_META.proxyPort, SIDECAR_DEFAULTS.proxyPort, true),
  };
}

export function sidecarKey(n: SidecarNode): string {
  const ports = `${n.inboundAddress}:${n.inboundPort}|${n.outboundPort}|${n.proxyPort}|${n.appPort}`;
  return `${SIDECAR_KEY_PREFIX}${n.spiffeId}|${ports}`;
}

/**
 * Validated, encoded resources kept across builds, keyed by content: equal objects give the same
 * VersionedResource (encoded and hashed once, then shared by every snapshot holding it). A
 * resource not used during a build is dropped at the next one.
 */
export class ResourceInterner {
  private prev = new Map<string, VersionedResource>();
  private cur = new Map<string, VersionedResource>();
  private byObject = new WeakMap<ProtoObject, VersionedResource | null>();
  private prevMaps = new Map<string, SharedMap>();
  private curMaps = new Map<string, SharedMap>();
  /** Resources validated and encoded / found already encoded (counters for tests and benchmarks). */
  encoded = 0;
  reused = 0;

  /** Starts a build: what the previous build did not use is forgotten. */
  startBuild(): void {
    this.prev = this.cur;
    this.cur = new Map();
    this.byObject = new WeakMap();
    this.prevMaps = this.curMaps;
    this.curMaps = new Map();
  }

  /**
   * The by-name map of a resource list shared by many sidecars, the same Map object across builds
   * while its resources do not change: an unchanged sidecar is then recognised, diffed and checked
   * in O(1) for that kind instead of once per resource per sidecar.
   */
  sharedMap(list: readonly VersionedResource[]): SharedMap {
    const key = list.map((r) => r.version).join(',');
    let m = this.curMaps.get(key) ?? this.prevMaps.get(key);
    if (m === undefined) {
      const problems: string[] = [];
      m = { map: byName(list, problems), problems };
    }
    this.curMaps.set(key, m);
    return m;
  }

  /** The versioned resource of `obj`, or undefined (and an error) when it fails Envoy's validation. */
  get(kind: ResourceKind, obj: ProtoObject, errors: ConfigError[]): VersionedResource | undefined {
    const seen = this.byObject.get(obj);
    if (seen !== undefined) return seen ?? undefined;
    const key = `${kind}:${createHash('sha1').update(JSON.stringify(obj)).digest('base64')}`;
    let r = this.cur.get(key) ?? this.prev.get(key);
    if (r !== undefined) this.reused++;
    else {
      const known = encodedBytes(obj);
      const v = known !== undefined ? { ok: true as const, bytes: known } : validateKind(kind, obj);
      if (!v.ok) {
        errors.push(rejectedResource('envoy', kind, obj, v.issues));
        this.byObject.set(obj, null);
        return undefined;
      }
      this.encoded++;
      r = { name: resourceName(kind, obj), kind, version: contentHash(v.bytes), bytes: v.bytes, object: obj };
    }
    this.cur.set(key, r);
    this.byObject.set(obj, r);
    return r;
  }
}

/** A by-name resource map shared by sidecars, and its duplicate-name problems. */
export interface SharedMap {
  map: Map<string, VersionedResource>;
  problems: readonly string[];
}

export interface SidecarBuildContext {
  interner: ResourceInterner;
  /** The snapshot published for this sidecar so far: returned as is when nothing changed. */
  previous: Snapshot | undefined;
}

export type BuildSidecar = (node: SidecarNode, version: string, ctx: SidecarBuildContext) => Snapshot | undefined;

/** Counters of SidecarSnapshots (tests, benchmarks, logs). */
export interface SidecarStats {
  /** Snapshots published with new content. */
  published: number;
  /** Sidecars whose resources did not change at a rebuild (their snapshot kept). */
  unchanged: number;
}

/** The sidecar keys in use and their nodes; builds and publishes their snapshots. */
export class SidecarSnapshots {
  private readonly nodes = new Map<string, SidecarNode>();
  private build: BuildSidecar | undefined;
  private version = '';
  private readonly interner = new ResourceInterner();
  readonly stats: SidecarStats = { published: 0, unchanged: 0 };

  constructor(
    private readonly cache: SnapshotCache,
    private readonly onError: (key: string, err: unknown) => void = () => undefined,
  ) {}

  /** A stream names `node`: remember it, and publish its snapshot now if a build exists. */
  want(node: SidecarNode): string {
    const key = sidecarKey(node);
    if (this.nodes.has(key)) return key;
    if (this.nodes.size >= MAX_SIDECAR_KEYS) return UNIDENTIFIED_SIDECAR_KEY;
    this.nodes.set(key, node);
    this.publishOne(key, node);
    return key;
  }

  /** After a model build: reassemble every sidecar in use (`inUse`: keys of open streams), forget the others. */
  rebuild(build: BuildSidecar, version: string, inUse: ReadonlySet<string>): void {
    this.build = build;
    this.version = version;
    this.interner.startBuild();
    for (const [key, node] of this.nodes) {
      if (!inUse.has(key)) {
        this.nodes.delete(key);
        this.cache.delete(key);
        continue;
      }
      this.publishOne(key, node);
    }
  }

  keys(): string[] {
    return [...this.nodes.keys()];
  }

  /** Encoding counters of the shared resources. */
  encoding(): { encoded: number; reused: number } {
    return { encoded: this.interner.encoded, reused: this.interner.reused };
  }

  private publishOne(key: string, node: SidecarNode): void {
    if (this.build === undefined) return;
    try {
      const previous = this.cache.get(key);
      const snap = this.build(node, this.version, { interner: this.interner, previous });
      if (snap === undefined) return;
      if (snap === previous) {
        this.stats.unchanged++;
        return;
      }
      this.cache.set(key, snap);
      this.stats.published++;
    } catch (err) {
      // An inconsistent sidecar snapshot (a resource failed validation) keeps the previous one.
      this.onError(key, err);
    }
  }
}

/** The AdsServer `snapshotKey` option: sidecar nodes get their workload's key, the others their node type. */
export function sidecarSnapshotKey(
  trustDomain: string,
  sidecars: SidecarSnapshots,
): (node: NodeInfo, principal: NodePrincipal, nodeType: NodeType) => string {
  return (node, principal, nodeType) => {
    const meta: Meta = (k) => metadataString(node.metadata, k);
    if (nodeType !== 'envoy' || !isSidecarNode(meta)) return nodeType;
    const n = sidecarNodeOf(principal, meta, trustDomain);
    return n === undefined ? UNIDENTIFIED_SIDECAR_KEY : sidecars.want(n);
  };
}

export interface SidecarBuildInputs extends Omit<SidecarInputs, 'index'> {
  trustDomain: string;
  /** Resources failing Envoy's validation (left out of the snapshot). */
  onErrors(errors: ConfigError[]): void;
}

type Maps = { [K in ResourceKind]: Map<string, VersionedResource> };
const EMPTY = new Map<string, VersionedResource>();

function byName(list: readonly VersionedResource[], problems: string[]): Map<string, VersionedResource> {
  const m = new Map<string, VersionedResource>();
  for (const r of list) {
    if (m.has(r.name)) problems.push(`duplicate ${r.kind} name "${r.name}"`);
    m.set(r.name, r);
  }
  return m;
}

function sameMap(a: ReadonlyMap<string, VersionedResource>, b: ReadonlyMap<string, VersionedResource>): boolean {
  if (a === b) return true;
  if (a.size !== b.size) return false;
  for (const [n, r] of a) if (b.get(n) !== r) return false;
  return true;
}

function sameResources(a: ResourceMaps, b: Maps): boolean {
  return (Object.keys(b) as ResourceKind[]).every((k) => sameMap(a[k], b[k]));
}

/** The builder SidecarSnapshots.rebuild() takes, for one model build. */
export function sidecarBuilder(b: SidecarBuildInputs): BuildSidecar {
  // Indexed on the first sidecar of this build: a control plane with gateways only never pays for it.
  let plan: SidecarPlan | undefined;
  // One cluster map per shared cluster list (egress scope + app port) of this build.
  const clusterMaps = new WeakMap<readonly ProtoObject[], SharedMap>();
  return (node, version, { interner, previous }) => {
    plan ??= new SidecarPlan({ ...b, index: buildWorkloadIndex(b.objects, b.model.descriptors, b.trustDomain) });
    const parts = plan.parts(node);
    if (parts === undefined) return undefined;
    const errors: ConfigError[] = [];
    const problems: string[] = [];
    const encode = (kind: ResourceKind, list: readonly ProtoObject[]): VersionedResource[] =>
      list.flatMap((o) => interner.get(kind, o, errors) ?? []);
    let clusters = clusterMaps.get(parts.sharedClusters);
    if (clusters === undefined) {
      clusters = interner.sharedMap(encode('cluster', parts.sharedClusters));
      clusterMaps.set(parts.sharedClusters, clusters);
    }
    problems.push(...clusters.problems);
    const maps: Maps = {
      listener: byName(encode('listener', parts.listeners), problems),
      route: byName(encode('route', parts.routes), problems),
      cluster: clusters.map,
      endpoint: EMPTY,
      secret: byName(encode('secret', parts.secrets), problems),
    };
    if (errors.length > 0) b.onErrors(errors);
    if (previous !== undefined && problems.length === 0 && sameResources(previous.resources, maps)) return previous;
    const snap = snapshotFromMaps('envoy', version, maps, problems);
    snap.cacheKey = sidecarKey(node);
    return snap;
  };
}
