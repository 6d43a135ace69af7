// Certificate CRs (docs/decisions.md: "Issuers, keys and renewal") → a CertificateRequest for the CA (csr),
// or a TlsCertificate (user-provided chain + privateKey). Pure: issuing happens after buildModel.
import type {
  CertificateCsr,
  CertificateRequest,
  SecretRef,
  StoredObject,
  TlsBinding,
  TlsCertificate,
} from './types.js';
import { crdEntityId, namespaceOf } from './ids.js';
import { asObject, isObject, str, type JsonObject, type Problems } from './problems.js';
import { certificateFromPem } from './tls-secrets.js';

export interface CertificateOut {
  request?: CertificateRequest;
  provided?: TlsCertificate;
  /** HTTPS server names this certificate serves (its DNS hosts), unless it is a CA. */
  binding?: TlsBinding;
}

/** Keys sorted at every level: the same csr always gives the same fingerprint. */
export function stableJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(stableJson).join(',')}]`;
  if (isObject(v)) {
    return `{${Object.keys(v)
      .sort()
      .filter((k) => v[k] !== undefined)
      .map((k) => `${JSON.stringify(k)}:${stableJson(v[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(v) ?? 'null';
}

function csrOf(raw: JsonObject): CertificateCsr {
  const csr: CertificateCsr = {};
  const s = (k: string): string | undefined => str(raw, k);
  const issuer = s('issuer');
  if (issuer !== undefined && issuer.trim() !== '') csr.issuer = issuer.trim();
  if (Array.isArray(raw['hosts'])) csr.hosts = raw['hosts'].filter((h): h is string => typeof h === 'string');
  if (isObject(raw['key'])) {
    const k = raw['key'];
    csr.key = {};
    if (typeof k['algo'] === 'string') csr.key.algo = k['algo'];
    if (typeof k['size'] === 'number') csr.key.size = k['size'];
  }
  if (s('keyType') !== undefined) csr.keyType = s('keyType') as string;
  if (typeof raw['keySize'] === 'number') csr.keySize = raw['keySize'];
  if (s('subject') !== undefined) csr.subject = s('subject') as string;
  if (isObject(raw['name'])) {
    const name: Record<string, string> = {};
    for (const [k, v] of Object.entries(raw['name'])) if (typeof v === 'string') name[k] = v;
    csr.name = name;
  }
  if (typeof raw['client'] === 'boolean') csr.client = raw['client'];
  if (typeof raw['ca'] === 'boolean') csr.ca = raw['ca'];
  if (typeof raw['duration'] === 'number' || typeof raw['duration'] === 'string') csr.duration = raw['duration'];
  if (s('signatureAlg') !== undefined) csr.signatureAlg = s('signatureAlg') as string;
  if (s('digestAlg') !== undefined) csr.digestAlg = s('digestAlg') as string;
  return csr;
}

/** `secretName`: `ns/name` or `name` in the CR's namespace; default `<metadata.name>-secret`. */
export function exportRef(spec: JsonObject, ns: string, crName: string, p: Problems): SecretRef | undefined {
  if (spec['exportSecret'] !== true) return undefined;
  const raw = str(spec, 'secretName')?.trim() || `${crName}-secret`;
  const parts = raw.split('/');
  const ref =
    parts.length === 2 ? { namespace: parts[0] as string, name: parts[1] as string } : { namespace: ns, name: raw };
  if (
    parts.length > 2 ||
    !/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/.test(ref.name) ||
    !/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(ref.namespace)
  ) {
    p.error(
      'OXDS_INVALID_FIELD',
      `secretName ${JSON.stringify(raw)} is not a valid Secret name (DNS subdomain, optionally "namespace/name")`,
      'spec.secretName',
    );
    return undefined;
  }
  return ref;
}

const DNS_RE = /^(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/i;

export function buildCertificate(so: StoredObject, now: number, p: Problems): CertificateOut {
  const obj = so.object;
  const ns = namespaceOf(obj);
  const spec = asObject(obj.spec);
  const secretName = `${ns}/${obj.metadata.name}`;
  const id = crdEntityId(obj);
  const exportSecret = exportRef(spec, ns, obj.metadata.name, p);
  if (p.hasErrors) return {};
  const out: CertificateOut = {};
  if (isObject(spec['csr'])) {
    if (str(spec, 'chain') !== undefined)
      p.warn('OXDS_INVALID_FIELD', 'chain is ignored: csr is set, so the CA issues this certificate', 'spec.chain');
    const csr = csrOf(spec['csr']);
    const req: CertificateRequest = {
      secretName,
      sourceKey: so.key,
      id,
      namespace: ns,
      name: obj.metadata.name,
      csr,
      fingerprint: stableJson(csr),
      autoRenew: spec['autoRenew'] === true,
    };
    if (exportSecret !== undefined) req.exportSecret = exportSecret;
    out.request = req;
    const dns = (csr.hosts ?? []).filter((h) => DNS_RE.test(h)).map((h) => h.toLowerCase());
    if (csr.ca !== true && dns.length > 0)
      out.binding = {
        secretName,
        serverNames: [...new Set(dns)].sort(),
        source: { kind: 'Certificate', namespace: ns, name: obj.metadata.name },
      };
    return out;
  }
  const chain = str(spec, 'chain');
  const key = str(spec, 'privateKey');
  if (chain === undefined && key === undefined) {
    p.error(
      'OXDS_MISSING_FIELD',
      'a Certificate needs either csr (issued by our CA) or chain + privateKey',
      'spec.csr',
    );
    return {};
  }
  const pem = certificateFromPem(
    chain,
    key,
    { chain: 'spec.chain', key: 'spec.privateKey', chainName: 'chain', keyName: 'privateKey' },
    now,
    p,
  );
  if (pem === undefined) return {};
  const cert: TlsCertificate = { secretName, sourceKey: so.key, ...pem, id };
  if (spec['ca'] === true) cert.ca = true;
  if (exportSecret !== undefined) cert.exportSecret = exportSecret;
  out.provided = cert;
  if (cert.ca !== true && cert.dnsNames.length > 0) {
    out.binding = {
      secretName,
      serverNames: [...new Set(cert.dnsNames.map((d) => d.toLowerCase()))].sort(),
      source: { kind: 'Certificate', namespace: ns, name: obj.metadata.name },
    };
  }
  return out;
}
