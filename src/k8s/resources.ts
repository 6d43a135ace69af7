// The Kubernetes resources otoroshi-xds reads, and the ten proxy.otoroshi.io kinds.
import { APIKEY_SECRET_TYPE } from '../model/apikey.js';

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
}

export const TLS_SECRET_TYPE = 'kubernetes.io/tls';

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
