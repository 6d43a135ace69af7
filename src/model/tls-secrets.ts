// kubernetes.io/tls Secrets → TlsCertificate.
import { X509Certificate, createPrivateKey } from 'node:crypto';
import type { StoredObject, TlsCertificate } from './types.js';
import { namespaceOf } from './ids.js';
import { asObject, errorMessage, str, type Problems } from './problems.js';

export const TLS_SECRET_TYPE = 'kubernetes.io/tls';

function secretValue(obj: Record<string, unknown>, key: string, p: Problems): string | undefined {
  const stringData = asObject(obj['stringData']);
  const s = str(stringData, key);
  if (s !== undefined) return s;
  const data = asObject(obj['data']);
  const b64 = str(data, key);
  if (b64 === undefined) return undefined;
  const clean = b64.replace(/\s+/g, '');
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(clean)) {
    p.error('OXDS_INVALID_FIELD', `data.${key} is not base64`, `data["${key}"]`);
    return undefined;
  }
  return Buffer.from(clean, 'base64').toString('utf8');
}

/** DNS SANs of a certificate, else its CN. */
export function dnsNamesOf(cert: X509Certificate): string[] {
  const names: string[] = [];
  const san = cert.subjectAltName;
  if (san !== undefined) {
    for (const part of san.split(/,\s*/)) {
      const m = /^DNS:(.+)$/.exec(part.trim());
      if (m?.[1] !== undefined && !names.includes(m[1])) names.push(m[1]);
    }
  }
  if (names.length === 0) {
    const cn = /(?:^|\n)CN=([^\n]+)/.exec(cert.subject);
    if (cn?.[1] !== undefined) names.push(cn[1].trim());
  }
  return names;
}

export function buildTlsCertificate(so: StoredObject, now: number, p: Problems): TlsCertificate | undefined {
  const obj = so.object;
  const ns = namespaceOf(obj);
  const chain = secretValue(obj, 'tls.crt', p);
  const key = secretValue(obj, 'tls.key', p);
  if (p.hasErrors) return undefined;
  const pem = certificateFromPem(
    chain,
    key,
    { chain: 'data["tls.crt"]', key: 'data["tls.key"]', chainName: 'tls.crt', keyName: 'tls.key' },
    now,
    p,
  );
  if (pem === undefined) return undefined;
  return { secretName: `${ns}/${obj.metadata.name}`, sourceKey: so.key, ...pem };
}

/** PEM chain + key → the certificate's facts; problems (missing, not PEM, key mismatch, expired) go to `p`. */
export function certificateFromPem(
  chain: string | undefined,
  key: string | undefined,
  f: { chain: string; key: string; chainName: string; keyName: string },
  now: number,
  p: Problems,
): Omit<TlsCertificate, 'secretName' | 'sourceKey'> | undefined {
  if (chain === undefined || chain.trim() === '') {
    p.error('OXDS_MISSING_FIELD', `${f.chainName} is missing`, f.chain);
    return undefined;
  }
  if (key === undefined || key.trim() === '') {
    p.error('OXDS_MISSING_FIELD', `${f.keyName} is missing`, f.key);
    return undefined;
  }
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(chain);
  } catch (e) {
    p.error('OXDS_INVALID_FIELD', `${f.chainName} is not a PEM certificate: ${errorMessage(e)}`, f.chain);
    return undefined;
  }
  try {
    const k = createPrivateKey(key);
    if (!cert.checkPrivateKey(k)) {
      p.error('OXDS_INVALID_FIELD', `${f.keyName} does not match the certificate in ${f.chainName}`, f.key);
      return undefined;
    }
  } catch {
    // never echo the parser's message: it may quote key material
    p.error('OXDS_INVALID_FIELD', `${f.keyName} is not a PEM private key`, f.key);
    return undefined;
  }
  const out: Omit<TlsCertificate, 'secretName' | 'sourceKey'> = {
    certificateChain: chain,
    privateKey: key,
    dnsNames: dnsNamesOf(cert),
    subject: cert.subject.split('\n').join(', '),
    ca: cert.ca,
  };
  const notAfterMs = Date.parse(cert.validTo);
  const notBeforeMs = Date.parse(cert.validFrom);
  if (!Number.isNaN(notBeforeMs)) out.notBefore = new Date(notBeforeMs).toISOString();
  if (!Number.isNaN(notAfterMs)) {
    out.notAfter = new Date(notAfterMs).toISOString();
    if (now > 0 && notAfterMs < now) p.warn('OXDS_INVALID_FIELD', `certificate expired on ${out.notAfter}`, f.chain);
  }
  return out;
}
