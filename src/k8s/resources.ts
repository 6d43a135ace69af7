// The Kubernetes resources otoroshi-xds reads, and the ten proxy.otoroshi.io kinds.
import { APIKEY_SECRET_TYPE } from '../model/apikey.js';
import type { KubeObjectJson } from './client.js';

export const OTOROSHI_GROUP = 'proxy.otoroshi.io';
/** Storage version; `v1` is served from the same storage. */
export const OTOROSHI_STORAGE_VERSION = 'v1alpha1';
export const OTOROSHI_VERSIONS = ['v1alpha1', 'v1'] as const;

export interface OtoroshiKind {
  kind: string;
  plural: string;
  singular: string;
  shortNames: string[];
}

/** Otoroshi's plurals, with our short names. */
export const OTOROSHI_KINDS: readonly OtoroshiKind[] = [
  { kind: 'ServiceGroup', plural: 'service-groups', singular: 'service-group', shortNames: ['osg'] },
  { kind: 'ServiceDescriptor', plural: 'service-descriptors', singular: 'service-descriptor', shortNames: ['osd'] },
  { kind: 'ApiKey', plural: 'apikeys', singular: 'apikey', shortNames: ['oak'] },
  { kind: 'Certificate', plural: 'certificates', singular: 'certificate', shortNames: ['ocert'] },
  { kind: 'GlobalConfig', plural: 'global-configs', singular: 'global-config', shortNames: ['ogc'] },
  { kind: 'JwtVerifier', plural: 'jwt-verifiers', singular: 'jwt-verifier', shortNames: ['ojwt'] },
  { kind: 'AuthModule', plural: 'auth-modules', singular: 'auth-module', shortNames: ['oauth'] },
  { kind: 'Script', plural: 'scripts', singular: 'script', shortNames: ['oscript'] },
  { kind: 'TcpService', plural: 'tcp-services', singular: 'tcp-service', shortNames: ['otcp'] },
  { kind: 'Admin', plural: 'admins', singular: 'admin', shortNames: ['oadmin'] },
];

export interface WatchedResource {
  apiVersion: string;
  kind: string;
  plural: string;
  namespaced: boolean;
  /** The user label selector (`--label-selector`) applies to this resource. */
  userLabels: boolean;
  /** Server-side field selector. */
  fieldSelector?: string;
  /** Server-side label selector of our own (the user's `--label-selector` does not apply then). */
  labelSelector?: string;
  /**
   * Keeps only the fields the model reads, applied to every listed and watched object before it is
   * cached (the informer's cache included), so a large cluster's Pods do not cost their full specs.
   * Status changes of such a resource are changes (a Pod's IP, its readiness).
   */
  keep?: (o: KubeObjectJson) => KubeObjectJson;
}

export const TLS_SECRET_TYPE = 'kubernetes.io/tls';
/** The label of mesh Pods (the one the injection webhook reacts to), docs/mesh.md. */
export const MESH_POD_SELECTOR = 'otoroshi.io/sidecar=inject';
/** Only our annotations are read on Pods and Namespaces (not kubectl's last-applied-configuration...). */
const OUR_ANNOTATION_PREFIX = 'otoroshi.io/';

type Json = Record<string, unknown>;
const isJson = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

function ourAnnotations(a: unknown): Record<string, string> | undefined {
  if (!isJson(a)) return undefined;
  const kept = Object.entries(a).filter(([k, v]) => k.startsWith(OUR_ANNOTATION_PREFIX) && typeof v === 'string');
  return kept.length > 0 ? (Object.fromEntries(kept) as Record<string, string>) : undefined;
}

/** The metadata an informer needs (name, namespace, uid, resourceVersion) plus what the model reads. */
function keptMetadata(o: KubeObjectJson, labels: boolean): KubeObjectJson['metadata'] {
  const m = o.metadata;
  const out: KubeObjectJson['metadata'] = { name: m.name };
  for (const k of ['namespace', 'uid', 'resourceVersion', 'creationTimestamp', 'deletionTimestamp'])
    if (m[k] !== undefined) out[k] = m[k];
  if (labels && m.labels !== undefined) out.labels = m.labels;
  const annotations = ourAnnotations(m.annotations);
  if (annotations !== undefined) out.annotations = annotations;
  return out;
}

/** A mesh Pod as the workload index reads it: labels, our annotations, ServiceAccount, IP, phase, readiness. */
export function keepMeshPod(o: KubeObjectJson): KubeObjectJson {
  const spec = isJson(o['spec']) ? o['spec'] : {};
  const status = isJson(o['status']) ? o['status'] : {};
  const conditions = Array.isArray(status['conditions']) ? status['conditions'] : [];
  const ready = conditions.find((c): c is Json => isJson(c) && c['type'] === 'Ready');
  const keptStatus: Json = {};
  for (const k of ['podIP', 'phase']) if (typeof status[k] === 'string') keptStatus[k] = status[k];
  if (ready !== undefined) keptStatus['conditions'] = [{ type: 'Ready', status: ready['status'] }];
  return {
    apiVersion: o.apiVersion,
    kind: o.kind,
    metadata: keptMetadata(o, true),
    spec: typeof spec['serviceAccountName'] === 'string' ? { serviceAccountName: spec['serviceAccountName'] } : {},
    status: keptStatus,
  };
}

/** A Namespace as the mesh reads it: its name and our annotations (the namespace's mTLS mode). */
export function keepNamespace(o: KubeObjectJson): KubeObjectJson {
  return { apiVersion: o.apiVersion, kind: o.kind, metadata: keptMetadata(o, false) };
}

/** Everything the KubeSource watches. */
export const WATCHED_RESOURCES: readonly WatchedResource[] = [
  ...OTOROSHI_KINDS.map((k): WatchedResource => ({
    apiVersion: `${OTOROSHI_GROUP}/${OTOROSHI_STORAGE_VERSION}`,
    kind: k.kind,
    plural: k.plural,
    namespaced: true,
    userLabels: true,
  })),
  { apiVersion: 'networking.k8s.io/v1', kind: 'Ingress', plural: 'ingresses', namespaced: true, userLabels: true },
  {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'IngressClass',
    plural: 'ingressclasses',
    namespaced: false,
    userLabels: false,
  },
  { apiVersion: 'v1', kind: 'Service', plural: 'services', namespaced: true, userLabels: false },
  // Mesh Pods only (server-side label selector): which workload backs which descriptor, and where.
  {
    apiVersion: 'v1',
    kind: 'Pod',
    plural: 'pods',
    namespaced: true,
    userLabels: false,
    labelSelector: MESH_POD_SELECTOR,
    keep: keepMeshPod,
  },
  // A namespace's mesh settings (otoroshi.io/sidecar-mtls-mode), docs/mesh.md.
  {
    apiVersion: 'v1',
    kind: 'Namespace',
    plural: 'namespaces',
    namespaced: false,
    userLabels: false,
    keep: keepNamespace,
  },
  {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    plural: 'endpointslices',
    namespaced: true,
    userLabels: false,
  },
  {
    apiVersion: 'v1',
    kind: 'Secret',
    plural: 'secrets',
    namespaced: true,
    userLabels: false,
    fieldSelector: `type=${TLS_SECRET_TYPE}`,
  },
  // ApiKey `secretName`: an existing Secret gives the key its clientId / clientSecret.
  {
    apiVersion: 'v1',
    kind: 'Secret',
    plural: 'secrets',
    namespaced: true,
    userLabels: false,
    fieldSelector: `type=${APIKEY_SECRET_TYPE}`,
  },
];

export function pluralOf(kind: string): string | undefined {
  return OTOROSHI_KINDS.find((k) => k.kind === kind)?.plural ?? WATCHED_RESOURCES.find((r) => r.kind === kind)?.plural;
}

export function isOtoroshiApiVersion(apiVersion: string): boolean {
  return apiVersion.startsWith(`${OTOROSHI_GROUP}/`);
}
