// Mesh test fixtures: mesh Pod documents, B's descriptor (with its Service and A's ApiKey), and a
// PKI from our own CA dated `issuedAt` (the xDS serving certificate and workload xDS client certificates).
import fs from 'node:fs';
import path from 'node:path';
import assert from 'node:assert/strict';
import { CertificateAuthority } from '../../src/ca/ca.js';
import { apiKeyYaml, descriptorYaml, yamlDocs } from '../fixtures/index.js';

export const MESH_TD = 'cluster.local';
export const meshSpiffe = (sa: string): string => `spiffe://${MESH_TD}/ns/shop/sa/${sa}`;

export function podYaml(
  name: string,
  sa: string,
  labels: Record<string, string>,
  inbound: number,
  extra: Record<string, string> = {},
  ip = '127.0.0.1',
): string {
  const ann = { 'otoroshi.io/sidecar-inbound-port': String(inbound), ...extra };
  return `apiVersion: v1
kind: Pod
metadata:
  name: ${name}
  namespace: shop
  labels: ${JSON.stringify({ ...labels, 'otoroshi.io/sidecar': 'inject' })}
  annotations: ${JSON.stringify(ann)}
spec: {serviceAccountName: ${sa}, containers: [{name: app, image: app}]}
status: {podIP: ${ip}}
---
`;
}

export function descriptorB(extra = ''): string {
  const service = `apiVersion: v1
kind: Service
metadata: {name: b, namespace: shop}
spec: {selector: {app: b}, clusterIP: 10.96.0.10, ports: [{name: http, port: 80, targetPort: 8080}]}
`;
  const descriptor = descriptorYaml({
    name: 'b',
    namespace: 'shop',
    id: 'b-svc',
    // Spec lines in this order (forceHttps first), as the mesh tests have always written them.
    spec: [
      'forceHttps: false',
      'hosts: [b.oto.tools]',
      "publicPatterns: ['/public.*']",
      'targets: {serviceName: b, servicePort: 80}',
    ].join('\n'),
  });
  const key = apiKeyYaml({
    name: 'a-key',
    namespace: 'shop',
    clientId: 'a-key-id',
    clientSecret: 'a-key-secret',
    authorizedEntities: ['service_b-svc'],
    dailyQuota: 1000,
  });
  return yamlDocs(service, `${descriptor}${extra}`, key);
}

export interface MeshPki {
  ca: CertificateAuthority;
  caRootFile: string;
  caPem: string;
  /** Server config keys: our CA, and mTLS on the xDS port with workload certificates. */
  serverFlags: Record<string, string>;
  xdsClient(sa: string): { cert: string; key: string };
}

export function meshPki(dir: string, issuedAt: number, serverHost: string): MeshPki {
  const ca = CertificateAuthority.create({ now: issuedAt });
  const m = ca.material();
  const f = (n: string, pem: string): string => {
    const p = path.join(dir, n);
    fs.writeFileSync(p, pem, { mode: 0o644 });
    return p;
  };
  const serverCert = ca.issueSync({ hosts: [serverHost], duration: 48 * 3_600_000 }, { now: issuedAt });
  assert.ok(serverCert.ok);
  const caRootFile = f('ca-root.crt', m.root.certPem);
  return {
    ca,
    caRootFile,
    caPem: m.root.certPem,
    serverFlags: {
      caCert: f('ca-int.crt', m.intermediate.certPem),
      caKey: f('ca-int.key', m.intermediate.keyPem),
      caRootCert: caRootFile,
      xdsTlsCert: f('xds.crt', serverCert.cert.chainPem),
      xdsTlsKey: f('xds.key', serverCert.cert.keyPem),
      xdsClientCa: caRootFile,
    },
    xdsClient(sa) {
      const r = ca.workload(meshSpiffe(sa), { now: issuedAt, ttlMs: 48 * 3_600_000 });
      assert.ok(r.ok);
      return { cert: f(`${sa}-xds.crt`, r.cert.chainPem), key: f(`${sa}-xds.key`, r.cert.keyPem) };
    },
  };
}
