// Which mesh workload backs which descriptor, from the objects only (never from a sidecar's word):
// a Pod (file mode: a Pod-like YAML document, docs/mesh.md) is a mesh workload when it carries the
// label `otoroshi.io/sidecar: inject`; its identity is its namespace and ServiceAccount. A
// descriptor is backed by a Pod when one of its targets is a Service that selects the Pod (selector
// ⊆ labels) or whose EndpointSlices name the Pod as an endpoint's targetRef. A v1 Namespace may set
// the mTLS mode of every workload in it (annotation otoroshi.io/sidecar-mtls-mode).
import type { Descriptor, KubeObject, StoredObject } from '../../model/types.js';
import { spiffeIdFor } from '../../ca/ca.js';

export const SIDECAR_LABEL = 'otoroshi.io/sidecar';
export const ANNOTATIONS = {
  inboundPort: 'otoroshi.io/sidecar-inbound-port',
  mtlsMode: 'otoroshi.io/sidecar-mtls-mode',
  egress: 'otoroshi.io/sidecar-egress',
  apikey: 'otoroshi.io/sidecar-apikey',
} as const;
export const DEFAULT_INBOUND_PORT = 15006;

export type MtlsMode = 'STRICT' | 'PERMISSIVE';

/** One Pod of the mesh. */
export interface MeshPod {
  namespace: string;
  name: string;
  serviceAccount: string;
  spiffeId: string;
  ip: string;
  inboundPort: number;
  /**
   * An endpoint other sidecars may send to: not terminating, and not reported unready (a Pod
   * without a Ready condition, a file-mode document, counts as ready). An unready Pod still is its
   * workload (its own sidecar keeps the policy of what it backs).
   */
  ready: boolean;
  labels: Readonly<Record<string, string>>;
  annotations: Readonly<Record<string, string>>;
}

/** What the sidecar plan reads: mesh pods, and per descriptor id the pods that back it. */
export interface WorkloadIndex {
  pods: readonly MeshPod[];
  backing: ReadonlyMap<string, readonly MeshPod[]>;
  /** The pods of each workload identity (SPIFFE id), in `pods` order. */
  bySpiffeId: ReadonlyMap<string, readonly MeshPod[]>;
  /** The mTLS mode a Namespace sets for its workloads (annotation otoroshi.io/sidecar-mtls-mode). */
  namespaceMtls: ReadonlyMap<string, MtlsMode>;
  /** Problems with mesh Pods (bad port annotation, no IP), for logs. */
  problems: readonly string[];
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function strings(v: unknown): Record<string, string> {
  if (!isRecord(v)) return {};
  return Object.fromEntries(Object.entries(v).filter((e): e is [string, string] => typeof e[1] === 'string'));
}

/** STRICT / PERMISSIVE (any case), else undefined. */
export function parseMtlsMode(v: string | undefined): MtlsMode | undefined {
  const u = v?.trim().toUpperCase();
  return u === 'STRICT' || u === 'PERMISSIVE' ? u : undefined;
}

/** Not terminating and not reported unready. */
function podReady(o: KubeObject, status: Record<string, unknown>): boolean {
  if ('deletionTimestamp' in o.metadata && o.metadata.deletionTimestamp != null) return false;
  const conds = Array.isArray(status['conditions']) ? status['conditions'] : [];
  const ready = conds.find((c) => isRecord(c) && c['type'] === 'Ready') as Record<string, unknown> | undefined;
  return ready === undefined || ready['status'] === 'True';
}

/** A mesh Pod from a v1 Pod object, or a problem; undefined for Pods outside the mesh or finished. */
export function meshPodOf(o: KubeObject, trustDomain: string): MeshPod | string | undefined {
  if (o.kind !== 'Pod' || o.apiVersion !== 'v1') return undefined;
  const labels = strings(o.metadata.labels);
  if (labels[SIDECAR_LABEL] !== 'inject') return undefined;
  const ns = o.metadata.namespace ?? 'default';
  const where = `Pod ${ns}/${o.metadata.name}`;
  const spec = isRecord(o.spec) ? o.spec : {};
  const status = isRecord(o['status']) ? o['status'] : {};
  // A finished Pod keeps its IP in its status, which another Pod may have by now.
  if (status['phase'] === 'Succeeded' || status['phase'] === 'Failed') return undefined;
  const sa =
    typeof spec['serviceAccountName'] === 'string' && spec['serviceAccountName'] !== ''
      ? spec['serviceAccountName']
      : 'default';
  const ip = status['podIP'];
  if (typeof ip !== 'string' || ip === '') return `${where}: status.podIP is not set yet`;
  const annotations = strings(o.metadata.annotations);
  const rawPort = annotations[ANNOTATIONS.inboundPort];
  const port = rawPort === undefined ? DEFAULT_INBOUND_PORT : Number(rawPort);
  if (!Number.isInteger(port) || port < 1 || port > 65535)
    return `${where}: metadata.annotations["${ANNOTATIONS.inboundPort}"] must be a port 1-65535`;
  return {
    namespace: ns,
    name: o.metadata.name,
    serviceAccount: sa,
    spiffeId: spiffeIdFor(trustDomain, ns, sa),
    ip,
    inboundPort: port,
    ready: podReady(o, status),
    labels,
    annotations,
  };
}

function selects(selector: Record<string, string>, labels: Readonly<Record<string, string>>): boolean {
  const keys = Object.keys(selector);
  return keys.length > 0 && keys.every((k) => labels[k] === selector[k]);
}

/** Pod names (`<ns>/<name>`) an EndpointSlice's endpoints point at. */
function slicePods(es: KubeObject): string[] {
  const eps = es['endpoints'];
  if (!Array.isArray(eps)) return [];
  const out: string[] = [];
  for (const e of eps) {
    const ref = isRecord(e) && isRecord(e['targetRef']) ? e['targetRef'] : undefined;
    if (ref?.['kind'] !== 'Pod' || typeof ref['name'] !== 'string') continue;
    const ns = typeof ref['namespace'] === 'string' ? ref['namespace'] : (es.metadata.namespace ?? 'default');
    out.push(`${ns}/${ref['name']}`);
  }
  return out;
}

export function buildWorkloadIndex(
  objects: readonly StoredObject[],
  descriptors: readonly Descriptor[],
  trustDomain: string,
): WorkloadIndex {
  const pods: MeshPod[] = [];
  const problems: string[] = [];
  const services = new Map<string, KubeObject>();
  const sliceRefs = new Map<string, Set<string>>();
  const namespaceMtls = new Map<string, MtlsMode>();
  for (const so of objects) {
    const o = so.object;
    if (o.kind === 'Namespace' && o.apiVersion === 'v1') {
      const raw = o.metadata.annotations?.[ANNOTATIONS.mtlsMode];
      const mode = parseMtlsMode(raw);
      if (mode !== undefined) namespaceMtls.set(o.metadata.name, mode);
      else if (raw !== undefined)
        problems.push(
          `Namespace ${o.metadata.name}: metadata.annotations["${ANNOTATIONS.mtlsMode}"] must be STRICT or PERMISSIVE`,
        );
      continue;
    }
    const p = meshPodOf(o, trustDomain);
    if (typeof p === 'string') problems.push(p);
    else if (p !== undefined) pods.push(p);
    if (o.kind === 'Service' && o.apiVersion === 'v1')
      services.set(`${o.metadata.namespace ?? 'default'}/${o.metadata.name}`, o);
    if (o.kind === 'EndpointSlice') {
      const svc = o.metadata.labels?.['kubernetes.io/service-name'];
      if (typeof svc !== 'string') continue;
      const k = `${o.metadata.namespace ?? 'default'}/${svc}`;
      const set = sliceRefs.get(k) ?? new Set<string>();
      for (const n of slicePods(o)) set.add(n);
      sliceRefs.set(k, set);
    }
  }
  pods.sort((a, b) => (a.namespace + '/' + a.name < b.namespace + '/' + b.name ? -1 : 1));
  const byLabel = podsByLabel(pods);
  const byName = new Map(pods.map((p) => [`${p.namespace}/${p.name}`, p]));
  const order = new Map(pods.map((p, i) => [p, i]));
  const backing = new Map<string, MeshPod[]>();
  for (const d of descriptors) {
    const found = new Set<MeshPod>();
    for (const t of d.targets) {
      if (t.service === undefined) continue;
      const key = `${t.service.namespace}/${t.service.name}`;
      const svc = services.get(key);
      const selector = strings(isRecord(svc?.spec) ? svc.spec['selector'] : undefined);
      const hits = new Set(selected(byLabel, t.service.namespace, selector));
      for (const n of sliceRefs.get(key) ?? []) {
        const p = byName.get(n);
        if (p !== undefined && p.namespace === t.service.namespace) hits.add(p);
      }
      // In pod order per target, as a scan of the namespace's pods would find them.
      for (const p of [...hits].sort((a, b) => (order.get(a) ?? 0) - (order.get(b) ?? 0))) found.add(p);
    }
    if (found.size > 0) backing.set(d.id, [...found]);
  }
  const bySpiffeId = new Map<string, MeshPod[]>();
  for (const p of pods) {
    const list = bySpiffeId.get(p.spiffeId);
    if (list === undefined) bySpiffeId.set(p.spiffeId, [p]);
    else list.push(p);
  }
  return { pods, backing, bySpiffeId, namespaceMtls, problems };
}

/** Pods by `namespace \0 label \0 value`, in `pods` order. */
function podsByLabel(pods: readonly MeshPod[]): Map<string, MeshPod[]> {
  const out = new Map<string, MeshPod[]>();
  for (const p of pods)
    for (const [k, v] of Object.entries(p.labels)) {
      const key = `${p.namespace}\u0000${k}\u0000${v}`;
      const list = out.get(key);
      if (list === undefined) out.set(key, [p]);
      else list.push(p);
    }
  return out;
}

/** The pods of namespace `ns` a Service selector selects: the pods with its first label, filtered by all. */
function selected(byLabel: ReadonlyMap<string, MeshPod[]>, ns: string, selector: Record<string, string>): MeshPod[] {
  const first = Object.entries(selector)[0];
  if (first === undefined) return [];
  const candidates = byLabel.get(`${ns}\u0000${first[0]}\u0000${first[1]}`) ?? [];
  return candidates.filter((p) => selects(selector, p.labels));
}

/** The pods of one workload identity. */
export function podsOf(index: WorkloadIndex, spiffeId: string): MeshPod[] {
  return [...(index.bySpiffeId.get(spiffeId) ?? [])];
}
