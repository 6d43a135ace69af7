// Otoroshi's mesh hosts: the names every CRD ServiceDescriptor also answers on, so that a workload
// can call a service by `<name>.<ns>.otoroshi.mesh` (or its global name) through a gateway or its
// sidecar. One function, used by the model (descriptor hosts) and by the sidecar plan (outbound
// routes), so both always agree. The rules are Otoroshi 1.5's (docs/mesh.md):
//
//   <globalName>.global.[<coreDnsEnv>.]<meshDomain>   globalName: annotation global-name/otoroshi.io, else the name
//   <name>.<ns>.[<coreDnsEnv>.]<meshDomain>
//   <name>.<ns>.svc.[<coreDnsEnv>.]<meshDomain>
//   <name>.<ns>.svc.<clusterDomain>
//
// `name` is the CR's metadata.name (not spec.name), `ns` its namespace.

/** The mesh's DNS settings (KubernetesConfig `meshDomain`, `clusterDomain`, `coreDnsEnv`). */
export interface MeshConfig {
  /** Default `otoroshi.mesh`. */
  meshDomain: string;
  /** Default `cluster.local`. */
  clusterDomain: string;
  /** Otoroshi's `coreDnsEnv`: an extra label before the mesh domain (`<name>.<ns>.<env>.<meshDomain>`). */
  coreDnsEnv?: string;
}

export const DEFAULT_MESH_CONFIG: Readonly<MeshConfig> = {
  meshDomain: 'otoroshi.mesh',
  clusterDomain: 'cluster.local',
};

/** What the mesh hosts of a descriptor are made of: a KubeObject's `metadata` fits. */
export interface MeshHostSource {
  name: string;
  namespace?: string;
  annotations?: Readonly<Record<string, unknown>> | null;
}

export const GLOBAL_NAME_ANNOTATION = 'global-name/otoroshi.io';

/** The four mesh hosts of a descriptor, in Otoroshi's order, de-duplicated. */
export function meshHosts(descriptor: MeshHostSource, meshConfig: MeshConfig): string[] {
  const ns = descriptor.namespace !== undefined && descriptor.namespace !== '' ? descriptor.namespace : 'default';
  const annotated = descriptor.annotations?.[GLOBAL_NAME_ANNOTATION];
  const globalName = typeof annotated === 'string' && annotated !== '' ? annotated : descriptor.name;
  const env = meshConfig.coreDnsEnv !== undefined && meshConfig.coreDnsEnv !== '' ? `${meshConfig.coreDnsEnv}.` : '';
  const mesh = `${env}${meshConfig.meshDomain}`;
  const hosts = [
    `${globalName}.global.${mesh}`,
    `${descriptor.name}.${ns}.${mesh}`,
    `${descriptor.name}.${ns}.svc.${mesh}`,
    `${descriptor.name}.${ns}.svc.${meshConfig.clusterDomain}`,
  ];
  return [...new Set(hosts)];
}

/**
 * The SANs of the mesh certificate: Otoroshi's three (`*.<mesh>`, `*.svc.<mesh>`, `*.global.<mesh>`),
 * plus `*.<ns>.<mesh>` and `*.<ns>.svc.<mesh>` per namespace given. A wildcard covers one label, so
 * Otoroshi's three alone fail a client's hostname check on `<name>.<ns>.<mesh>`; the per-namespace
 * ones make every mesh host verify.
 */
export function meshCertificateHosts(meshConfig: MeshConfig, namespaces: Iterable<string> = []): string[] {
  const env = meshConfig.coreDnsEnv !== undefined && meshConfig.coreDnsEnv !== '' ? `${meshConfig.coreDnsEnv}.` : '';
  const mesh = `${env}${meshConfig.meshDomain}`;
  const perNs = [...new Set(namespaces)].sort().flatMap((ns) => [`*.${ns}.${mesh}`, `*.${ns}.svc.${mesh}`]);
  return [...new Set([`*.${mesh}`, `*.svc.${mesh}`, `*.global.${mesh}`, ...perNs])];
}
