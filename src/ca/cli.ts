// `otoroshi-xds ca show` / `ca issue --csr FILE`: operators' view of the CA.
import fs from 'node:fs';
import path from 'node:path';
import { X509Certificate } from 'node:crypto';
import YAML from 'yaml';
import type { Writable } from 'node:stream';
import { CertificateAuthority } from './ca.js';
import type { CertificateCsr } from '../model/types.js';
import { certificateSecretData } from './export.js';
import { isObject } from '../model/problems.js';

function describe(label: string, pem: string): string {
  const x = new X509Certificate(pem);
  return [
    `# ${label}`,
    `#   subject:     ${x.subject.split('\n').join(', ')}`,
    `#   issuer:      ${x.issuer.split('\n').join(', ')}`,
    `#   not before:  ${new Date(x.validFrom).toISOString()}`,
    `#   not after:   ${new Date(x.validTo).toISOString()}`,
    `#   sha256:      ${x.fingerprint256}`,
    ...(x.subjectAltName ? [`#   SANs:        ${x.subjectAltName}`] : []),
    pem.trim(),
    '',
  ].join('\n');
}

export function runCaShow(ca: CertificateAuthority, out: Writable): number {
  out.write(describe('root CA (the trust bundle, SDS otoroshi-ca-bundle)', ca.rootCertPem));
  out.write(describe('intermediate CA (signs certificates)', ca.intermediateCertPem));
  return 0;
}

/** A csr block, a Certificate spec (`csr:`), or a whole CR (`spec.csr`). */
export function csrFromDocument(doc: unknown): CertificateCsr | undefined {
  if (!isObject(doc)) return undefined;
  const spec = isObject(doc['spec']) ? doc['spec'] : doc;
  const csr = isObject(spec['csr']) ? spec['csr'] : spec;
  return csr as CertificateCsr;
}

export async function runCaIssue(
  ca: CertificateAuthority,
  o: { csrFile: string; outDir?: string; now?: number },
  out: Writable,
  err: Writable,
): Promise<number> {
  let doc: unknown;
  try {
    doc = YAML.parse(fs.readFileSync(o.csrFile, 'utf8'));
  } catch (e) {
    err.write(`otoroshi-xds: cannot read ${o.csrFile}: ${(e as Error).message.split('\n')[0] ?? ''}\n`);
    return 2;
  }
  const csr = csrFromDocument(doc);
  if (csr === undefined) {
    err.write(`otoroshi-xds: ${o.csrFile}: expected a csr object\n`);
    return 2;
  }
  const r = await ca.issue(csr, { now: o.now ?? Date.now() });
  if (!r.ok) {
    err.write(`otoroshi-xds: ${o.csrFile}: ${r.error.field ?? 'csr'}: ${r.error.message}\n`);
    return 1;
  }
  const data = certificateSecretData({ certificateChain: r.cert.chainPem, privateKey: r.cert.keyPem });
  if (o.outDir !== undefined) {
    fs.mkdirSync(o.outDir, { recursive: true, mode: 0o700 });
    for (const [name, value] of Object.entries(data))
      fs.writeFileSync(path.join(o.outDir, name), value, { mode: 0o600 });
    out.write(
      `${Object.keys(data)
        .map((n) => path.join(o.outDir as string, n))
        .join('\n')}\n`,
    );
  } else {
    out.write(describe('certificate', r.cert.certPem));
    out.write(`# chain (certificate, then its issuers up to the root)\n${r.cert.chainPem.trim()}\n`);
    out.write(`# private key\n${r.cert.keyPem.trim()}\n`);
  }
  return 0;
}
