// The kinds otoroshi-xds reads, and why any other object is left out.

export const OTOROSHI_GROUP = 'proxy.otoroshi.io';
export const OTOROSHI_VERSIONS = ['v1alpha1', 'v1'];
export const OTOROSHI_KINDS = [
  'ServiceGroup',
  'ServiceDescriptor',
  'ApiKey',
  'Certificate',
  'GlobalConfig',
  'JwtVerifier',
  'AuthModule',
  'Script',
  'TcpService',
  'Admin',
] as const;

export type Family = 'otoroshi' | 'Ingress' | 'IngressClass' | 'Service' | 'EndpointSlice' | 'Secret';

/** Kinds we read, with their normalised kind (`Apikey` → `ApiKey`); undefined for anything else. */
export function classify(apiVersion: string, kind: string): { kind: string; family: Family } | undefined {
  const k = kind === 'Apikey' ? 'ApiKey' : kind;
  const slash = apiVersion.indexOf('/');
  const group = slash >= 0 ? apiVersion.slice(0, slash) : '';
  const version = slash >= 0 ? apiVersion.slice(slash + 1) : apiVersion;
  if (
    group === OTOROSHI_GROUP &&
    OTOROSHI_VERSIONS.includes(version) &&
    (OTOROSHI_KINDS as readonly string[]).includes(k)
  ) {
    return { kind: k, family: 'otoroshi' };
  }
  if (
    k === 'Ingress' &&
    ['networking.k8s.io/v1', 'networking.k8s.io/v1beta1', 'extensions/v1beta1'].includes(apiVersion)
  )
    return { kind: k, family: 'Ingress' };
  if (k === 'IngressClass' && ['networking.k8s.io/v1', 'networking.k8s.io/v1beta1'].includes(apiVersion))
    return { kind: k, family: 'IngressClass' };
  if (k === 'Service' && apiVersion === 'v1') return { kind: k, family: 'Service' };
  if (k === 'EndpointSlice' && ['discovery.k8s.io/v1', 'discovery.k8s.io/v1beta1'].includes(apiVersion))
    return { kind: k, family: 'EndpointSlice' };
  if (k === 'Secret' && apiVersion === 'v1') return { kind: k, family: 'Secret' };
  return undefined;
}

/** Otoroshi kinds of the proxy.otoroshi.io group that otoroshi-xds does not serve (they configure Otoroshi itself). */
/** `proxy.otoroshi.io/v1alpha1 or proxy.otoroshi.io/v1`. */
function otoroshiApiVersions(): string {
  return OTOROSHI_VERSIONS.map((v) => `${OTOROSHI_GROUP}/${v}`).join(' or ');
}

/** ` (proxy.otoroshi.io kinds: …)`, for an unknown kind with no near spelling. */
function otoroshiKindsHint(): string {
  return ` (${OTOROSHI_GROUP} kinds: ${OTOROSHI_KINDS.join(', ')})`;
}

export const OTOROSHI_UNSERVED_KINDS = [
  'Tenant',
  'Organization',
  'Team',
  'DataExporter',
  'Route',
  'RouteComposition',
  'Backend',
  'ErrorTemplate',
  'WasmPlugin',
  'Draft',
  'SimpleAdmin',
];

/**
 * Kinds read from other groups: a near spelling of one of them (wrong case, wrong version) is a mistake, not another
 * product.
 */
const READ_KINDS = ['Ingress', 'IngressClass', 'Service', 'EndpointSlice', 'Secret'];

/**
 * Kinds the model does not translate but the mesh reads from the same objects (mesh Pods, and
 * Namespaces for their mTLS mode, docs/mesh.md): no notice for them.
 */
export function readByMesh(apiVersion: string, kind: string): boolean {
  return apiVersion === 'v1' && (kind === 'Pod' || kind === 'Namespace');
}

/**
 * Why an object of a kind we do not read is left out: a misspelt kind or version of our own group
 * (or a near spelling of a kind we read) is an error; anything else (Deployment,
 * CustomResourceDefinition, Otoroshi's Tenant or Team...) is outside our scope and skipped.
 */
export function unservedKind(apiVersion: string, kind: string): { misspelt: boolean; message: string } {
  const group = apiVersion.includes('/') ? apiVersion.slice(0, apiVersion.indexOf('/')) : '';
  const what = `${apiVersion} ${kind}`;
  if (group === OTOROSHI_GROUP) {
    if (OTOROSHI_UNSERVED_KINDS.includes(kind))
      return { misspelt: false, message: `${what} configures Otoroshi itself and has no meaning for Envoy: skipped` };
    const near = [...OTOROSHI_KINDS].find((k) => k.toLowerCase() === kind.toLowerCase());
    if (near !== undefined && near === kind)
      return {
        misspelt: true,
        message: `unsupported version ${apiVersion} of ${kind} (${otoroshiApiVersions()}): ignored`,
      };
    return {
      misspelt: true,
      message: `unknown kind ${what}${near !== undefined ? ` (did you mean ${near}?)` : otoroshiKindsHint()}: ignored`,
    };
  }
  if (group.toLowerCase() === OTOROSHI_GROUP || group.endsWith('.otoroshi.io'))
    return {
      misspelt: true,
      message: `unknown API group in ${what} (did you mean ${OTOROSHI_GROUP}/v1alpha1?): ignored`,
    };
  const near = READ_KINDS.find((k) => k.toLowerCase() === kind.toLowerCase());
  if (near !== undefined)
    return {
      misspelt: true,
      message:
        `unsupported ${what}${near !== kind ? ` (did you mean ${near}?)` : ' (this version is not read)'}` +
        ': ignored',
    };
  return { misspelt: false, message: `${what} is outside otoroshi-xds's scope: skipped` };
}
