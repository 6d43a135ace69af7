// Workload identity from a projected ServiceAccount token: the API server's TokenReview says
// whether the token is valid (signature, expiry, bound pod still alive, audience) and whose it is
// (`system:serviceaccount:<ns>:<sa>`), as Istio checks its sidecars' CSRs. Results are cached per
// token (bounded, short), and at most `maxInFlight` reviews run at once: a flood of made-up tokens
// cannot flood the API server.
import { createHash } from 'node:crypto';
import type { KubeClient } from './client.js';

export type TokenIdentity = { ok: true; namespace: string; serviceAccount: string } | { ok: false; reason: string };

export type TokenReviewer = (token: string) => Promise<TokenIdentity>;

interface TokenReviewStatus {
  authenticated?: boolean;
  user?: { username?: string };
  audiences?: string[];
  error?: string;
}

const SA_PREFIX = 'system:serviceaccount:';

/** `system:serviceaccount:<ns>:<sa>` → its parts. */
export function serviceAccountOf(
  username: string | undefined,
): { namespace: string; serviceAccount: string } | undefined {
  if (username === undefined || !username.startsWith(SA_PREFIX)) return undefined;
  const [namespace, serviceAccount, ...rest] = username.slice(SA_PREFIX.length).split(':');
  if (!namespace || !serviceAccount || rest.length > 0) return undefined;
  return { namespace, serviceAccount };
}

/** What a TokenReview status means for us (pure). */
export function identityOf(status: TokenReviewStatus | undefined, audience: string): TokenIdentity {
  if (status?.authenticated !== true)
    return { ok: false, reason: `token not authenticated${status?.error ? `: ${status.error}` : ''}` };
  if (!(status.audiences ?? []).includes(audience)) return { ok: false, reason: `token audience is not ${audience}` };
  const sa = serviceAccountOf(status.user?.username);
  if (sa === undefined) return { ok: false, reason: 'token is not a ServiceAccount token' };
  return { ok: true, ...sa };
}

export interface TokenReviewOptions {
  audience: string;
  /** How long a result is reused (ms); an expired token is refused once its cached answer ages out. */
  cacheMs?: number;
  maxCached?: number;
  maxInFlight?: number;
  now?: () => number;
}

/** A TokenReviewer backed by the API server (POST /apis/authentication.k8s.io/v1/tokenreviews). */
export function kubeTokenReviewer(client: Pick<KubeClient, 'create'>, o: TokenReviewOptions): TokenReviewer {
  const cacheMs = o.cacheMs ?? 30_000;
  const maxCached = o.maxCached ?? 10_000;
  const maxInFlight = o.maxInFlight ?? 32;
  const now = o.now ?? Date.now;
  const cache = new Map<string, { at: number; identity: TokenIdentity }>();
  let inFlight = 0;
  return async (token) => {
    if (token === '' || token.length > 16_384) return { ok: false, reason: 'token empty or too long' };
    const key = createHash('sha256').update(token).digest('base64');
    const hit = cache.get(key);
    if (hit !== undefined && now() - hit.at < cacheMs) return hit.identity;
    if (inFlight >= maxInFlight) return { ok: false, reason: 'too many token reviews in flight' };
    inFlight++;
    try {
      const r = await client.create<{ status?: TokenReviewStatus }>('/apis/authentication.k8s.io/v1/tokenreviews', {
        apiVersion: 'authentication.k8s.io/v1',
        kind: 'TokenReview',
        spec: { token, audiences: [o.audience] },
      });
      const identity = identityOf(r.status, o.audience);
      cache.delete(key);
      cache.set(key, { at: now(), identity });
      while (cache.size > maxCached) cache.delete(cache.keys().next().value as string);
      return identity;
    } catch (err) {
      // not cached: the API server may be back on the next stream
      return { ok: false, reason: `TokenReview failed: ${(err as Error).message}` };
    } finally {
      inFlight--;
    }
  };
}

/** Whether sidecars' ServiceAccount tokens are checked: on by default with the Kubernetes source. */
export function tokenReviewEnabled(config: { xdsTokenReview: 'auto' | 'on' | 'off'; source: string }): boolean {
  return config.xdsTokenReview === 'on' || (config.xdsTokenReview === 'auto' && config.source === 'kubernetes');
}
