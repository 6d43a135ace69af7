// The HTTPS listener's filter chains (one per certificate binding, by SNI) and the SDS secrets.
import type { ProtoObject } from '../../proto/loader.js';
import type { ConfigError, Model, TlsBinding, TlsCertificate } from '../model/types.js';
import { certState } from '../model/serving.js';
import * as names from './names.js';
import { sortedBy, byString } from './resources/common.js';
import { type HcmOptions, httpConnectionManager } from './resources/hcm.js';
import { tlsFilterChain } from './resources/listener.js';

export function tlsResources(
  model: Model,
  errors: ConfigError[],
  filters: readonly ProtoObject[],
  accessLogCluster: string | undefined,
  hcmOpts: HcmOptions,
): { chains: ProtoObject[] } {
  const certs = new Map<string, TlsCertificate>(model.certificates.map((c) => [c.secretName, c]));
  const used = new Set<string>();
  let defaultTaken = false;
  const chains: ProtoObject[] = [];
  const hcm = httpConnectionManager(
    names.statPrefix(names.HTTPS_LISTENER_NAME),
    names.HTTPS_ROUTE_CONFIG_NAME,
    filters,
    accessLogCluster,
    hcmOpts,
  );
  for (const b of sortedBy(model.tls, (x: TlsBinding) => x.secretName)) {
    const cert = certs.get(b.secretName);
    const warn = (message: string): void => {
      errors.push({
        code: 'OXDS_UNRESOLVED_REFERENCE',
        message,
        field: 'tls',
        severity: 'warning',
        ...(b.source ?? {}),
      });
    };
    if (!cert) {
      const what = `TLS binding for ${b.serverNames.join(', ') || '(default)'}`;
      warn(`${what} names certificate ${b.secretName}, which ${certState(model, b.secretName)}: binding skipped`);
      continue;
    }
    const serverNames = [...new Set(b.serverNames.map((n) => n.toLowerCase()))]
      .sort(byString)
      .filter((n) => !used.has(n));
    if (serverNames.length === 0 && (b.serverNames.length > 0 || defaultTaken)) {
      warn(`TLS binding ${b.secretName}: every server name is already served by another certificate: binding skipped`);
      continue;
    }
    if (serverNames.length === 0) defaultTaken = true;
    serverNames.forEach((n) => used.add(n));
    const secret = names.secretName(b.secretName);
    chains.push(tlsFilterChain(names.filterChainName(secret), serverNames, secret, hcm));
  }
  return { chains };
}

/**
 * Every certificate of the model is an SDS secret named `<namespace>/<name>` (a contract: users
 * reference them from hand-written Envoy config), and the CA trust bundle is the validation
 * context `otoroshi-ca-bundle`.
 */
export function sdsSecrets(model: Model): ProtoObject[] {
  const out = new Map<string, ProtoObject>();
  for (const cert of model.certificates) {
    const name = names.secretName(cert.secretName);
    if (out.has(name)) continue;
    out.set(name, {
      name,
      tlsCertificate: {
        certificateChain: { inlineString: cert.certificateChain },
        privateKey: { inlineString: cert.privateKey },
      },
    });
  }
  // Explicit trusted certificates of targets' mtlsConfig: a validation context from the chain.
  const certs = new Map(model.certificates.map((c) => [c.secretName, c]));
  for (const d of model.descriptors) {
    for (const t of [...d.targets, ...(d.canary?.targets ?? [])]) {
      const ref = t.mtls && !t.mtls.trustAll ? t.mtls.trustedCerts[0] : undefined;
      const cert = ref !== undefined ? certs.get(ref) : undefined;
      if (ref === undefined || cert === undefined) continue;
      const name = names.trustSecretName(ref);
      if (!out.has(name))
        out.set(name, { name, validationContext: { trustedCa: { inlineString: cert.certificateChain } } });
    }
  }
  if (model.caBundle !== undefined && model.caBundle.trim() !== '') {
    out.set(names.CA_BUNDLE_SECRET_NAME, {
      name: names.CA_BUNDLE_SECRET_NAME,
      validationContext: { trustedCa: { inlineString: model.caBundle } },
    });
  }
  return [...out.values()];
}
