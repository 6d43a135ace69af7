// The mesh certificate: Otoroshi's `kubernetes-mesh-cert` (`*.<meshDomain>`, `*.svc.<meshDomain>`,
// `*.global.<meshDomain>`, from our intermediate CA, auto-renewed), plus per-namespace wildcards so
// that `<name>.<ns>.<meshDomain>` passes a client's hostname check. Gateways serve it by SNI for the
// mesh hosts (a TLS binding like a Certificate CR's); the CA stage issues it (src/ca/manager.ts).
import type { CertificateRequest, Descriptor, TlsBinding } from './types.js';
import { stableJson } from './certificate-crs.js';
import { meshCertificateHosts, type MeshConfig } from './mesh-hosts.js';

/** SDS secret name of the mesh certificate: no `/`, so no `<namespace>/<name>` of a Certificate CR can take it. */
export const MESH_CERT_SECRET = 'otoroshi-mesh-cert';
const SUBJECT = 'SN=Kubernetes Mesh Certificate, OU=Otoroshi Certificates, O=Otoroshi';

/**
 * The request and binding of the mesh certificate for these descriptors, or undefined when none of
 * them answers on a mesh host (then nothing needs it). Pure: the CA stage reuses the issued
 * certificate while the csr is unchanged.
 */
export function meshCertificate(
  descriptors: readonly Descriptor[],
  mesh: MeshConfig,
): { request: CertificateRequest; binding: TlsBinding } | undefined {
  const suffix = `.${mesh.meshDomain}`;
  const namespaces = descriptors
    .filter((d) => d.sourceKind === 'ServiceDescriptor' && d.hosts.some((h) => h.endsWith(suffix)))
    .map((d) => d.namespace);
  if (namespaces.length === 0) return undefined;
  const hosts = meshCertificateHosts(mesh, namespaces);
  const csr = { hosts, subject: SUBJECT, duration: '365d', key: { algo: 'ecdsa', size: 256 } };
  return {
    request: {
      secretName: MESH_CERT_SECRET,
      sourceKey: `mesh:${MESH_CERT_SECRET}`,
      id: 'kubernetes-mesh-cert',
      namespace: '',
      name: MESH_CERT_SECRET,
      csr,
      fingerprint: stableJson(csr),
      autoRenew: true,
    },
    binding: { secretName: MESH_CERT_SECRET, serverNames: [...hosts].sort() },
  };
}

/** Adds the mesh certificate's request and TLS binding to a model being built (one call from buildModel). */
export function addMeshCertificate(
  descriptors: readonly Descriptor[],
  mesh: MeshConfig,
  requests: CertificateRequest[],
  tls: TlsBinding[],
): void {
  const m = meshCertificate(descriptors, mesh);
  if (m === undefined) return;
  requests.push(m.request);
  tls.push(m.binding);
}
