// Sidecar snapshots: one per sidecar node shape (proved identity + bootstrap ports), published in
// the snapshot cache under a `sidecar|…` key next to the gateway's `envoy` and `grpc` ones. A key
// appears when a sidecar stream names it (snapshotKeyOf), is rebuilt with every model build, and is
// dropped once no stream uses it.
import { parseSpiffeId } from '../../ca/spiffe.js';
import { SIDECAR_META, SIDECAR_DEFAULTS } from '../../envoy/bootstrap.js';
import type { NodePrincipal } from '../node-auth.js';
import type { SnapshotCache } from '../cache.js';
import type { NodeType, Snapshot } from '../types.js';
import type { ConfigError } from '../../model/types.js';
import { metadataString } from '../server/node.js';
import type { NodeInfo } from '../server/messages.js';
import { buildSnapshot, type Encoder } from '../snapshot.js';
import { validateSet } from '../../pipeline.js';
import { sidecarResources, type SidecarInputs, type SidecarNode } from './plan.js';
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

export type BuildSidecar = (node: SidecarNode, version: string) => Snapshot | undefined;

/** The sidecar keys in use and their nodes; builds and publishes their snapshots. */
export class SidecarSnapshots {
  private readonly nodes = new Map<string, SidecarNode>();
  private build: BuildSidecar | undefined;
  private version = '';

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

  /** After a model build: rebuild every sidecar in use (`inUse`: keys of open streams) and forget the others. */
  rebuild(build: BuildSidecar, version: string, inUse: ReadonlySet<string>): void {
    this.build = build;
    this.version = version;
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

  private publishOne(key: string, node: SidecarNode): void {
    if (this.build === undefined) return;
    try {
      const snap = this.build(node, this.version);
      if (snap !== undefined) this.cache.set(key, snap);
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
  encode: Encoder;
  /** Resources failing Envoy's validation (left out of the snapshot). */
  onErrors(errors: ConfigError[]): void;
}

/** The builder SidecarSnapshots.rebuild() takes, for one model build. */
export function sidecarBuilder(b: SidecarBuildInputs): BuildSidecar {
  // Indexed on the first sidecar of this build: a control plane with gateways only never pays for it.
  let inputs: SidecarInputs | undefined;
  return (node, version) => {
    inputs ??= { ...b, index: buildWorkloadIndex(b.objects, b.model.descriptors, b.trustDomain) };
    const set = sidecarResources(node, inputs);
    if (set === undefined) return undefined;
    const errors: ConfigError[] = [];
    const compiled = validateSet('envoy', set, errors);
    if (errors.length > 0) b.onErrors(errors);
    const snap = buildSnapshot(
      'envoy',
      version,
      compiled.set,
      (kind, obj) => compiled.bytes.get(obj) ?? b.encode(kind, obj),
    );
    snap.cacheKey = sidecarKey(node);
    return snap;
  };
}
