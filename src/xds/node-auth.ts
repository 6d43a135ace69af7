// Node authorization for secrets: who a connecting xDS client is (one pluggable "authenticate"
// step, run once per stream from what the transport proves), then which secrets it may receive.
//
//   gateway     a node the operator granted the gateway role: by the SPIFFE id of its xDS client
//               certificate (--gateway-identities), by a bearer token (--gateway-token), or, for
//               local development only, any plaintext client on loopback (--loopback-gateway on).
//               Receives the certificates the generated listeners and clusters use.
//   workload    a client certificate of our trust domain not granted the gateway role, or (Kubernetes,
//               --xds-token-review) a projected ServiceAccount token sent as `authorization: Bearer`
//               gRPC metadata that the API server's TokenReview accepts for our audience: receives its
//               own workload certificate (SDS name = its SPIFFE id) and nothing else private.
//   anonymous   everything else: trust bundles (validation contexts) only.
//   self-asserted  --xds-node-auth insecure-node-metadata: the old behaviour (any node gets every
//               certificate; a sidecar names its identity in node metadata). Never the default.
//
// The token travels in the gRPC call metadata, not in the node metadata: it is a credential of the
// transport like the gateway token (one header, one code path), the node metadata is echoed in
// config dumps, proxy status and logs, and it is where Istio puts it (the CSR call's header).
import { timingSafeEqual, createHash } from 'node:crypto';
import { isIP } from 'node:net';
import type { PeerCertificate } from 'node:tls';
import { parseSpiffeId } from '../ca/spiffe.js';
import { spiffeIdFor } from '../ca/ca.js';
import { eachBatched, runSteps, type Steps } from '../model/steps.js';
import type { ResourceSet } from './types.js';
import { SIDECAR_CERT_SECRET } from './names.js';

export type NodePrincipal =
  | { readonly kind: 'gateway'; readonly id: string }
  | { readonly kind: 'workload'; readonly spiffeId: string }
  | { readonly kind: 'self-asserted' }
  | { readonly kind: 'anonymous'; readonly reason: string };

/** What the transport of one xDS stream proves. */
export interface StreamCredentials {
  /** `ip:port` of the peer as grpc-js reports it. */
  peer: string;
  /** A verified client certificate was presented (mTLS). */
  mtls: boolean;
  /** URI SANs of the verified client certificate. */
  certUris: readonly string[];
  /** `authorization: Bearer <token>` of the call metadata. */
  bearer?: string;
}

export type Authenticator = (creds: StreamCredentials) => NodePrincipal | Promise<NodePrincipal>;

export interface NodeAuthPolicy {
  mode: 'identity' | 'insecure-node-metadata';
  trustDomain: string;
  /** SPIFFE ids (xDS client certificate URI SAN) granted the gateway role. */
  gatewayIdentities: readonly string[];
  /** Bearer tokens granted the gateway role. */
  gatewayTokens: readonly string[];
  /** Local development: a plaintext client on a loopback address is a gateway. */
  loopbackGateway: boolean;
  /** Kubernetes: checks a bearer token that is not a gateway token (TokenReview) → workload identity. */
  reviewToken?: (
    token: string,
  ) => Promise<{ ok: true; namespace: string; serviceAccount: string } | { ok: false; reason: string }>;
}

/** What a gateway may hold: the certificates the generated config uses, or every certificate. */
export type GatewaySecrets = 'referenced' | 'all';

const digest = (s: string): Buffer => createHash('sha256').update(s).digest();

function tokenMatches(given: string, tokens: readonly Buffer[]): boolean {
  const g = digest(given);
  let ok = false;
  for (const t of tokens) ok = timingSafeEqual(g, t) || ok;
  return ok;
}

/** The address part of grpc-js's peer string (`1.2.3.4:5`, `[::1]:5`, `ipv4:…`). */
export function peerAddress(peer: string): string {
  let p = peer.replace(/^ipv[46]:/, '');
  if (p.startsWith('[')) return p.slice(1, p.indexOf(']'));
  const c = p.lastIndexOf(':');
  if (c > 0 && p.indexOf(':') === c) p = p.slice(0, c);
  return p;
}

export function isLoopback(address: string): boolean {
  const v = isIP(address);
  if (v === 4) return address.startsWith('127.');
  if (v === 6) return address === '::1' || /^::ffff:127\./i.test(address);
  return false;
}

/** The identity authenticator: client certificate, then bearer token, then (dev) loopback. */
export function identityAuthenticator(policy: NodeAuthPolicy): Authenticator {
  if (policy.mode === 'insecure-node-metadata') return () => ({ kind: 'self-asserted' });
  const gatewayIds = new Set(policy.gatewayIdentities);
  const tokens = policy.gatewayTokens.filter((t) => t !== '').map(digest);
  const review = policy.reviewToken;
  return (c) => {
    if (c.bearer !== undefined && (tokens.length > 0 || review !== undefined)) {
      if (tokens.length > 0 && tokenMatches(c.bearer, tokens)) return { kind: 'gateway', id: 'token' };
      if (review === undefined) return { kind: 'anonymous', reason: 'unknown bearer token' };
      return review(c.bearer).then((r): NodePrincipal =>
        r.ok
          ? { kind: 'workload', spiffeId: spiffeIdFor(policy.trustDomain, r.namespace, r.serviceAccount) }
          : { kind: 'anonymous', reason: r.reason },
      );
    }
    if (c.mtls) {
      const ids = c.certUris.filter((u) => parseSpiffeId(u, policy.trustDomain) !== undefined);
      const gw = ids.find((u) => gatewayIds.has(u));
      if (gw !== undefined) return { kind: 'gateway', id: gw };
      if (ids.length === 1 && ids[0] !== undefined) return { kind: 'workload', spiffeId: ids[0] };
      return {
        kind: 'anonymous',
        reason:
          ids.length === 0
            ? 'client certificate without a SPIFFE id of our trust domain'
            : 'client certificate with several SPIFFE ids',
      };
    }
    if (policy.loopbackGateway && isLoopback(peerAddress(c.peer))) return { kind: 'gateway', id: 'loopback' };
    return { kind: 'anonymous', reason: 'no client certificate and no gateway token' };
  };
}

/** URI SANs of a TLS peer certificate (`URI:a, URI:b, DNS:…`). */
export function certUris(cert: PeerCertificate | undefined): string[] {
  const san = cert?.subjectaltname;
  if (typeof san !== 'string') return [];
  return san
    .split(/,\s*/)
    .filter((e) => e.startsWith('URI:'))
    .map((e) => e.slice(4));
}

/** What one secret is, for authorization. */
export interface SecretFacts {
  /** Holds a private key (tls_certificate), as opposed to a trust bundle. */
  hasPrivateKey: boolean;
  /** Used by the generated listeners or clusters. */
  referenced: boolean;
}

/**
 * Whether `principal` may receive the secret `name`. `selfAsserted(name)` answers the insecure
 * mode (the old rule: a SPIFFE name only to the node whose metadata names it).
 */
export function maySeeSecret(
  principal: NodePrincipal,
  name: string,
  facts: SecretFacts | undefined,
  selfAsserted: () => boolean,
  gatewaySecrets: GatewaySecrets = 'referenced',
): boolean {
  const workloadName = name.startsWith('spiffe://');
  if (principal.kind === 'self-asserted') return workloadName ? selfAsserted() : true;
  if (workloadName) return principal.kind === 'workload' && principal.spiffeId === name;
  // Only a sidecar snapshot (built for the proved identity) holds it: the node's own certificate.
  if (name === SIDECAR_CERT_SECRET) return principal.kind === 'workload';
  if (facts === undefined) return false;
  if (!facts.hasPrivateKey) return true;
  return principal.kind === 'gateway' && (facts.referenced || gatewaySecrets === 'all');
}

/** sdsReferences per listener or cluster object (resource objects are not changed once built). */
const SDS_REFS = new WeakMap<object, readonly string[]>();

/** sdsReferences of one resource object, walked once per object (unchanged resources are not walked again). */
function sdsReferencesOf(obj: object): readonly string[] {
  let hit = SDS_REFS.get(obj);
  if (hit === undefined) {
    hit = [...sdsReferences([obj])];
    SDS_REFS.set(obj, hit);
  }
  return hit;
}

/** Names of every SDS secret config (`{name, sdsConfig}`) found anywhere in `objects`. */
function sdsReferences(objects: readonly unknown[]): Set<string> {
  const out = new Set<string>();
  const stack: unknown[] = [...objects];
  while (stack.length > 0) {
    const v = stack.pop();
    if (Array.isArray(v)) {
      for (const x of v) stack.push(x);
    } else if (typeof v === 'object' && v !== null && !(v instanceof Uint8Array)) {
      const o = v as Record<string, unknown>;
      if (typeof o['name'] === 'string' && o['sdsConfig'] !== undefined) out.add(o['name']);
      for (const x of Object.values(o)) if (typeof x === 'object' && x !== null) stack.push(x);
    }
  }
  return out;
}

/** Per secret of a resource set: whether it holds a private key, whether a listener or cluster uses it. */
export function secretFactsOf(set: ResourceSet): Map<string, SecretFacts> {
  return runSteps(secretFactsSteps(set));
}

/** secretFactsOf in batches of resources; only listeners and clusters not seen before are walked. */
export function* secretFactsSteps(set: ResourceSet): Steps<Map<string, SecretFacts>> {
  const out = new Map<string, SecretFacts>();
  // Facts are kept per secret of the set: without secrets there is nothing to walk for.
  if (set.secrets.length === 0) return out;
  const referenced = new Set<string>();
  const add = (obj: object): void => {
    for (const n of sdsReferencesOf(obj)) referenced.add(n);
  };
  yield* eachBatched(set.listeners, add);
  yield* eachBatched(set.clusters, add);
  yield* eachBatched(set.secrets, (s) => {
    const name = String(s['name']);
    out.set(name, { hasPrivateKey: s['tlsCertificate'] !== undefined, referenced: referenced.has(name) });
  });
  return out;
}
