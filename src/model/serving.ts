// Which descriptors of a model are served, and as what: the model's own rules, applied to any
// model (buildModel's, or one made by hand) before it is planned for Envoy.
import type { ConfigError, Descriptor, Model } from './types.js';

/** The error of a descriptor on the object it comes from (its routes and clusters are not published). */
export type DescriptorProblem = (
  d: Descriptor,
  code: ConfigError['code'],
  message: string,
  field: string,
) => ConfigError;

/** A descriptor under GlobalConfig maintenance: only its redirection still precedes the 503. */
export function globalMaintenanceOf(d: Descriptor): Descriptor {
  const { ipFiltering: _ip, ...rest } = d;
  return {
    ...rest,
    maintenanceMode: true,
    buildMode: false,
    headersVerification: {},
    readOnly: false,
    forceHttps: false,
  };
}

/** Why a certificate is missing: a Certificate CR that failed to issue is not "unknown". */
export function certState(model: Model, secretName: string): string {
  return (model.certificateRequests ?? []).some((r) => r.secretName === secretName)
    ? "is not issued (see that Certificate's status)"
    : 'is unknown (no Certificate or kubernetes.io/tls Secret of that name)';
}

/** Certificate refs of a descriptor's targets (mtlsConfig) that the model does not know. */
function unresolvedCertRefs(
  model: Model,
  d: Descriptor,
  known: ReadonlySet<string>,
  problem: DescriptorProblem,
): ConfigError[] {
  const out: ConfigError[] = [];
  for (const t of [...d.targets, ...(d.canary?.targets ?? [])]) {
    for (const ref of [...(t.mtls?.certs ?? []), ...(t.mtls?.trustedCerts ?? [])]) {
      if (known.has(ref)) continue;
      const message = `target ${t.host}:${t.port} mtlsConfig names certificate ${ref}, which ${certState(model, ref)}`;
      out.push(problem(d, 'OXDS_UNRESOLVED_REFERENCE', message, t.mtls?.field ?? 'spec.targets.mtlsConfig'));
    }
  }
  return out;
}

/** One descriptor in id order: served as `served`, or left out with `errors`. */
export interface ServedDescriptor {
  served?: Descriptor;
  errors: ConfigError[];
}

/**
 * The descriptors to serve, sorted by id: enabled ones with hosts (Otoroshi drops disabled
 * descriptors before choosing one), one per id (route and cluster names derive from it; the first
 * by source key wins), every certificate reference known, GlobalConfig maintenance applied (every
 * service answers 503 right after its redirection: before headersVerification, readOnly,
 * forceHttps and its IP filtering).
 */
export function servedDescriptors(model: Model, problem: DescriptorProblem): ServedDescriptor[] {
  const out: ServedDescriptor[] = [];
  const byId = (a: Descriptor, b: Descriptor): number =>
    a.id < b.id ? -1 : a.id > b.id ? 1 : a.sourceKey < b.sourceKey ? -1 : a.sourceKey > b.sourceKey ? 1 : 0;
  const known = new Set(model.certificates.map((c) => c.secretName));
  const seen = new Set<string>();
  const maintenance = model.globalConfig?.maintenanceMode === true;
  for (const d of [...model.descriptors].sort(byId)) {
    if (!d.enabled || d.hosts.length === 0) continue;
    if (seen.has(d.id)) {
      const message = `id violates unique: id ${d.id} is already used by another descriptor`;
      out.push({ errors: [problem(d, 'OXDS_DUPLICATE_OBJECT', message, 'id')] });
      continue;
    }
    seen.add(d.id);
    const unresolved = unresolvedCertRefs(model, d, known, problem);
    if (unresolved.length > 0) out.push({ errors: unresolved });
    else out.push({ served: maintenance ? globalMaintenanceOf(d) : d, errors: [] });
  }
  return out;
}
