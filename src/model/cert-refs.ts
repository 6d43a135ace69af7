// Certificate references of targets' mtlsConfig (`certs`, `trustedCerts`), resolved as Otoroshi's
// MtlsConfig does: by certificate id, then by subject DN; plus our `<ns>/<name>` SDS names and the
// built-in CAs (`otoroshi-root-ca`, `otoroshi-intermediate-ca`, or their DN).
import type { CertificateRequest, Descriptor, Target, TargetMtls, TlsCertificate } from './types.js';
import type { ProblemItem } from './problems.js';
import { dnEquals } from '../ca/x509.js';
import { INTERMEDIATE_CA_DN, INTERMEDIATE_CA_ID, ROOT_CA_DN, ROOT_CA_ID } from '../ca/ca.js';

/** What a certificate reference can point at: one of the config's certificates, by its SDS name. */
export interface CertCandidate {
  secretName: string;
  id?: string;
  subject?: string;
  notAfter?: string;
}

export interface CertIndex {
  bySecretName: ReadonlyMap<string, CertCandidate>;
  byId: ReadonlyMap<string, CertCandidate>;
  /** DN candidates, the preferred first (latest notAfter, then issued ones by name). */
  withSubject: readonly CertCandidate[];
}

/** The subject a Certificate CR asks for: `csr.subject`, or the `csr.name` map as `k=v, k=v`. */
export function requestedSubject(r: CertificateRequest): string | undefined {
  if (r.csr.subject !== undefined && r.csr.subject.trim() !== '') return r.csr.subject;
  const name = r.csr.name;
  if (name === undefined || Object.keys(name).length === 0) return undefined;
  return Object.entries(name)
    .map(([k, v]) => `${k}=${v}`)
    .join(', ');
}

export function certIndex(certs: readonly TlsCertificate[], requests: readonly CertificateRequest[]): CertIndex {
  const all: CertCandidate[] = [];
  for (const c of certs)
    all.push({
      secretName: c.secretName,
      ...(c.id !== undefined ? { id: c.id } : {}),
      ...(c.subject !== undefined ? { subject: c.subject } : {}),
      ...(c.notAfter !== undefined ? { notAfter: c.notAfter } : {}),
    });
  for (const r of requests) {
    const subject = requestedSubject(r);
    all.push({ secretName: r.secretName, id: r.id, ...(subject !== undefined ? { subject } : {}) });
  }
  const bySecretName = new Map<string, CertCandidate>();
  const byId = new Map<string, CertCandidate>();
  for (const c of all) {
    if (!bySecretName.has(c.secretName)) bySecretName.set(c.secretName, c);
    if (c.id !== undefined && !byId.has(c.id)) byId.set(c.id, c);
  }
  const withSubject = all
    .filter((c) => c.subject !== undefined)
    .sort((a, b) => (b.notAfter ?? '').localeCompare(a.notAfter ?? '') || a.secretName.localeCompare(b.secretName));
  return { bySecretName, byId, withSubject };
}

export type CertRefTarget = { secretName: string } | { builtinCa: typeof ROOT_CA_ID | typeof INTERMEDIATE_CA_ID };

function builtinCa(ref: string): typeof ROOT_CA_ID | typeof INTERMEDIATE_CA_ID | undefined {
  if (ref === ROOT_CA_ID || dnEquals(ref, ROOT_CA_DN)) return ROOT_CA_ID;
  if (ref === INTERMEDIATE_CA_ID || dnEquals(ref, INTERMEDIATE_CA_DN)) return INTERMEDIATE_CA_ID;
  return undefined;
}

/** A reference as written (`name`, `ns/name`, an Otoroshi id, a subject DN, a built-in CA). */
export function resolveCertRef(raw: string, ns: string, idx: CertIndex): CertRefTarget | undefined {
  const ref = raw.trim();
  const ca = builtinCa(ref);
  if (ca !== undefined) return { builtinCa: ca };
  const path = idx.bySecretName.get(ref.includes('/') ? ref : `${ns}/${ref}`);
  if (path !== undefined) return { secretName: path.secretName };
  const byId = idx.byId.get(ref);
  if (byId !== undefined) return { secretName: byId.secretName };
  if (!ref.includes('=')) return undefined;
  const byDn = idx.withSubject.find((c) => c.subject !== undefined && dnEquals(ref, c.subject));
  return byDn === undefined ? undefined : { secretName: byDn.secretName };
}

/** The root CA's DN in Otoroshi before 1.5, still in its documentation's examples. */
export const LEGACY_ROOT_DN = 'CN=Otoroshi Root';

/** The hint for a reference that matches nothing (Otoroshi's pre-1.5 root DN is a common one). */
export function certRefHint(ref: string): string {
  return dnEquals(ref, LEGACY_ROOT_DN)
    ? ` (${LEGACY_ROOT_DN} is the root DN of Otoroshi before 1.5: did you mean ${ROOT_CA_ID}?)`
    : '';
}

interface MtlsOutcome {
  mtls: TargetMtls;
  problems: ProblemItem[];
}

function resolveMtls(m: TargetMtls, ns: string, idx: CertIndex): MtlsOutcome {
  const problems: ProblemItem[] = [];
  const field = m.field ?? 'spec.targets.mtlsConfig';
  const certs: string[] = [];
  const trustedCerts: string[] = [];
  const notFound = (list: 'certs' | 'trustedCerts', j: number, ref: string): void => {
    // A plain name stays an SDS name `<ns>/<name>`: a certificate may still be added to the model
    // before translation, which reports it if it is still unknown. A DN or a legacy name cannot.
    if (!ref.includes('=') && !dnEquals(ref, LEGACY_ROOT_DN)) {
      (list === 'certs' ? certs : trustedCerts).push(ref.includes('/') ? ref : `${ns}/${ref}`);
      return;
    }
    problems.push({
      code: 'OXDS_UNRESOLVED_REFERENCE',
      message:
        `no certificate has the subject DN ${JSON.stringify(ref)} (a Certificate's csr.subject, a kubernetes.io/tls ` +
        `Secret's certificate; or ${ROOT_CA_ID} / ${INTERMEDIATE_CA_ID})${certRefHint(ref)}: the descriptor's ` +
        `routes and clusters are not published`,
      field: `${field}.${list}[${j}]`,
    });
  };
  m.certs.forEach((ref, j) => {
    const r = resolveCertRef(ref, ns, idx);
    if (r === undefined) notFound('certs', j, ref);
    else if ('builtinCa' in r) {
      problems.push({
        code: 'OXDS_INVALID_FIELD',
        message: `${r.builtinCa} is a CA, not a client certificate: name a Certificate with csr.client: true`,
        field: `${field}.certs[${j}]`,
      });
    } else certs.push(r.secretName);
  });
  m.trustedCerts.forEach((ref, j) => {
    const r = resolveCertRef(ref, ns, idx);
    if (r === undefined) notFound('trustedCerts', j, ref);
    else if ('secretName' in r) trustedCerts.push(r.secretName);
    // a built-in CA: the CA trust bundle, which is what an empty trustedCerts means
  });
  return { mtls: { ...m, certs, trustedCerts }, problems };
}

/**
 * The descriptor with its targets' certificate references resolved to SDS names, and the
 * references that resolve to nothing (each one keeps the descriptor from being published).
 */
export function resolveDescriptorCertRefs(d: Descriptor, idx: CertIndex): { d: Descriptor; problems: ProblemItem[] } {
  const problems: ProblemItem[] = [];
  const all = [...d.targets, ...(d.canary?.targets ?? [])];
  if (all.every((t) => t.mtls === undefined)) return { d, problems };
  const fix = (t: Target): Target => {
    if (t.mtls === undefined) return t;
    const r = resolveMtls(t.mtls, d.namespace, idx);
    problems.push(...r.problems);
    return { ...t, mtls: r.mtls };
  };
  const out: Descriptor = { ...d, targets: d.targets.map(fix) };
  if (d.canary !== undefined) out.canary = { ...d.canary, targets: d.canary.targets.map(fix) };
  return { d: out, problems };
}
