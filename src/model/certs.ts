// kubernetes.io/tls Secrets → TlsCertificate (otoroshi-model.md §8.4).
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
  if (chain === undefined || chain.trim() === '') {
    p.error('OXDS_MISSING_FIELD', 'tls.crt is missing (data or stringData)', 'data["tls.crt"]');
    return undefined;
  }
  if (key === undefined || key.trim() === '') {
    p.error('OXDS_MISSING_FIELD', 'tls.key is missing (data or stringData)', 'data["tls.key"]');
    return undefined;
  }
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(chain);
  } catch (e) {
    p.error('OXDS_INVALID_FIELD', `tls.crt is not a PEM certificate: ${errorMessage(e)}`, 'data["tls.crt"]');
    return undefined;
  }
  try {
    const k = createPrivateKey(key);
    if (!cert.checkPrivateKey(k)) {
      p.error('OXDS_INVALID_FIELD', 'tls.key does not match the certificate in tls.crt', 'data["tls.key"]');
      return undefined;
    }
  } catch (e) {
    p.error('OXDS_INVALID_FIELD', `tls.key is not a PEM private key: ${errorMessage(e)}`, 'data["tls.key"]');
    return undefined;
  }
  const notAfterMs = Date.parse(cert.validTo);
  const out: TlsCertificate = {
    secretName: `${ns}/${obj.metadata.name}`,
    sourceKey: so.key,
    certificateChain: chain,
    privateKey: key,
    dnsNames: dnsNamesOf(cert),
  };
  if (!Number.isNaN(notAfterMs)) {
    out.notAfter = new Date(notAfterMs).toISOString();
    if (now > 0 && notAfterMs < now) p.warn('OXDS_INVALID_FIELD', `certificate expired on ${out.notAfter}`, 'data["tls.crt"]');
  }
  return out;
}
