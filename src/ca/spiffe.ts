// SPIFFE ids per the SPIFFE-ID specification: `spiffe://<trust domain><path>`, trust domain of
// lower-case letters, digits, `.`, `-`, `_`; path segments of letters, digits, `.`, `-`, `_`, never
// empty, `.` or `..`; no query, fragment, port or user info; at most 2048 bytes.

const TRUST_DOMAIN = /^[a-z0-9._-]+$/;
const SEGMENT = /^[A-Za-z0-9._-]+$/;
const MAX_ID_BYTES = 2048;

/** The path segments of a valid SPIFFE id (of `trustDomain` when given), else undefined. */
export function parseSpiffeId(id: string, trustDomain?: string): string[] | undefined {
  if (id.length > MAX_ID_BYTES || !id.startsWith('spiffe://')) return undefined;
  const rest = id.slice('spiffe://'.length);
  const slash = rest.indexOf('/');
  const domain = slash < 0 ? rest : rest.slice(0, slash);
  if (domain === '' || !TRUST_DOMAIN.test(domain)) return undefined;
  if (trustDomain !== undefined && domain !== trustDomain) return undefined;
  if (slash < 0) return [];
  const segments = rest.slice(slash + 1).split('/');
  for (const s of segments) if (!SEGMENT.test(s) || s === '.' || s === '..') return undefined;
  return segments;
}

/** Kubernetes names: a namespace is a DNS-1123 label, a ServiceAccount a DNS-1123 subdomain. */
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
function isDnsSubdomain(s: string): boolean {
  return s.length <= 253 && s.split('.').every((l) => DNS_LABEL.test(l));
}

/** A workload identity of ours: exactly `spiffe://<trustDomain>/ns/<namespace>/sa/<service account>`. */
export function isWorkloadSpiffeId(id: string, trustDomain: string): boolean {
  const s = parseSpiffeId(id, trustDomain);
  if (s === undefined || s.length !== 4 || s[0] !== 'ns' || s[2] !== 'sa') return false;
  return DNS_LABEL.test(s[1] ?? '') && isDnsSubdomain(s[3] ?? '');
}
