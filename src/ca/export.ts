// Certificate → the data of its exported `kubernetes.io/tls` Secret.
import type { TlsCertificate } from '../model/types.js';

const PEM_RE = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

/** The PEM certificates of a chain, in order. */
export function splitPemChain(chain: string): string[] {
  return chain.match(PEM_RE) ?? [];
}

/**
 * `tls.crt` (the full chain), `tls.key`, `cert.crt` (leaf only), `ca-chain.crt` (every cert
 * after the leaf, joined with a blank line; empty for a self-signed cert) and `ca.crt` (the last
 * cert of the chain, the leaf itself when self-signed). Values are plain strings (not base64).
 */
export function certificateSecretData(
  cert: Pick<TlsCertificate, 'certificateChain' | 'privateKey'>,
): Record<string, string> {
  const certs = splitPemChain(cert.certificateChain);
  const leaf = certs[0] ?? '';
  const rest = certs.slice(1);
  return {
    'tls.crt': cert.certificateChain,
    'tls.key': cert.privateKey,
    'cert.crt': leaf,
    'ca-chain.crt': rest.join('\n\n'),
    'ca.crt': certs[certs.length - 1] ?? leaf,
  };
}
