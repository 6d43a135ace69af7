// Apikey credentials: extraction (docs/decisions.md: "Apikey extraction"), constant-time secrets, routing constraints
// (`matchRouting`) and the built-in HS verifier for apikey-signed JWTs.
import { createHash, hash as oneShotHash, timingSafeEqual } from 'node:crypto';
import type { ApiKeyConstraints } from '../model/types.js';
import type { CheckInput } from './types.js';

// ------------------------------------------------------------------ names

/** Resolved names (Otoroshi's `otoroshi.headers` defaults, overridden by apiKeyConstraints). Lower-case headers. */
export interface ExtractionNames {
  clientIdEnabled: boolean;
  clientIdHeader: string;
  clientIdQuery: string;
  customEnabled: boolean;
  idHeader: string;
  secretHeader: string;
  jwtEnabled: boolean;
  jwtHeader: string;
  jwtQuery: string;
  jwtCookie: string;
  basicEnabled: boolean;
  basicHeader: string;
  basicQuery: string;
}

export function extractionNames(c: ApiKeyConstraints): ExtractionNames {
  return {
    clientIdEnabled: c.clientIdAuth.enabled,
    clientIdHeader: (c.clientIdAuth.headerName ?? 'x-api-key').toLowerCase(),
    clientIdQuery: c.clientIdAuth.queryName ?? 'x-api-key',
    customEnabled: c.customHeadersAuth.enabled,
    idHeader: (c.customHeadersAuth.clientIdHeaderName ?? 'Otoroshi-Client-Id').toLowerCase(),
    secretHeader: (c.customHeadersAuth.clientSecretHeaderName ?? 'Otoroshi-Client-Secret').toLowerCase(),
    jwtEnabled: c.jwtAuth.enabled,
    jwtHeader: (c.jwtAuth.headerName ?? 'Otoroshi-Token').toLowerCase(),
    jwtQuery: c.jwtAuth.queryName ?? 'bearer_auth',
    jwtCookie: c.jwtAuth.cookieName ?? 'access_token',
    basicEnabled: c.basicAuth.enabled,
    basicHeader: (c.basicAuth.headerName ?? 'Otoroshi-Authorization').toLowerCase(),
    basicQuery: c.basicAuth.queryName ?? 'basic_auth',
  };
}

// ------------------------------------------------------------------ request helpers (no allocation unless found)

function decodeComponent(s: string): string {
  if (s.indexOf('%') < 0 && s.indexOf('+') < 0) return s;
  try {
    return decodeURIComponent(s.replace(/\+/g, ' '));
  } catch {
    return s;
  }
}

/** First value of query parameter `name` in a raw query string (no `?`). */
export function queryParam(query: string, name: string): string | undefined {
  if (query.length === 0) return undefined;
  let start = 0;
  while (start <= query.length) {
    let end = query.indexOf('&', start);
    if (end < 0) end = query.length;
    const eq = query.indexOf('=', start);
    const keyEnd = eq >= 0 && eq < end ? eq : end;
    const rawKey = query.slice(start, keyEnd);
    if (rawKey === name || (rawKey.length > 0 && decodeComponent(rawKey) === name)) {
      return keyEnd === end ? '' : decodeComponent(query.slice(keyEnd + 1, end));
    }
    start = end + 1;
  }
  return undefined;
}

/** Value of cookie `name` from a `cookie` header. */
export function cookieValue(header: string | undefined, name: string): string | undefined {
  if (header === undefined || header.length === 0) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    if (part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

// ------------------------------------------------------------------ extraction

export type Credentials =
  | { method: 'clientId'; clientId: string }
  | { method: 'custom'; clientId: string; secret: string }
  | { method: 'jwt'; token: string }
  | { method: 'basic'; clientId: string; secret: string }
  /** Basic present but yields no `id:secret` parts (400 No ApiKey provided). */
  | { method: 'basic-empty' };

function isJwtShaped(t: string): boolean {
  // exactly 3 dot-separated parts
  const a = t.indexOf('.');
  if (a < 0) return false;
  const b = t.indexOf('.', a + 1);
  // Java split drops trailing empty parts: `a.b.` has 2.
  return b >= 0 && b < t.length - 1 && t.indexOf('.', b + 1) < 0;
}

function base64Decode(s: string): string | undefined {
  const t = s.trim();
  if (t.length === 0 || !/^[A-Za-z0-9+/=_-]+$/.test(t)) return undefined;
  return Buffer.from(t, 'base64').toString('utf8');
}

/** Java `String.split(":")`: trailing empty strings removed. */
function javaSplitColon(s: string): string[] {
  const parts = s.split(':');
  while (parts.length > 0 && parts[parts.length - 1] === '') parts.pop();
  return parts;
}

/**
 * Otoroshi's order: clientId-only (`x-api-key`), custom headers (both), JWT (header, `Authorization:
 * Bearer`, query, cookie; 3 parts), Basic (header, `Authorization: Basic`, query). The first method
 * whose credentials are present and whose constraint is enabled wins; no fallback. undefined = none.
 */
export function extractCredentials(input: CheckInput, n: ExtractionNames): Credentials | undefined {
  const h = input.headers;
  if (n.clientIdEnabled) {
    const v = h[n.clientIdHeader] ?? queryParam(input.query, n.clientIdQuery);
    if (v !== undefined) return { method: 'clientId', clientId: v };
  }
  if (n.customEnabled) {
    const id = h[n.idHeader];
    const secret = h[n.secretHeader];
    if (id !== undefined && secret !== undefined) return { method: 'custom', clientId: id, secret };
  }
  if (n.jwtEnabled) {
    // header, else `Authorization: Bearer`, else query, else cookie; then the 3-part filter (no
    // further fallback when the first present value is not a JWT).
    let tok = h[n.jwtHeader];
    if (tok === undefined) {
      const auth = h['authorization'];
      if (auth !== undefined && auth.startsWith('Bearer ')) tok = auth;
    }
    if (tok !== undefined) tok = tok.replaceAll('Bearer ', '');
    else tok = queryParam(input.query, n.jwtQuery) ?? cookieValue(h['cookie'], n.jwtCookie);
    if (tok !== undefined && isJwtShaped(tok)) return { method: 'jwt', token: tok };
  }
  if (n.basicEnabled) {
    let decoded: string | undefined;
    let present = false;
    let raw = h[n.basicHeader];
    if (raw === undefined) {
      const auth = h['authorization'];
      if (auth !== undefined && auth.startsWith('Basic ')) raw = auth;
    }
    if (raw !== undefined) {
      present = true;
      decoded = base64Decode(raw.replaceAll('Basic ', ''));
    }
    if (decoded === undefined) {
      const q = queryParam(input.query, n.basicQuery);
      if (q !== undefined) {
        present = true;
        decoded = base64Decode(q);
      }
    }
    if (decoded !== undefined) {
      const parts = javaSplitColon(decoded);
      const first = parts[0];
      const last = parts[parts.length - 1];
      if (first === undefined || last === undefined) return { method: 'basic-empty' };
      return { method: 'basic', clientId: first.trim(), secret: last.trim() };
    }
    if (present) return { method: 'basic-empty' };
  }
  return undefined;
}

// ------------------------------------------------------------------ secrets (constant time)

/**
 * An expected secret, kept so that a comparison takes the same time whatever the provided secret
 * and whatever the expected one's length: secrets up to `SECRET_SLOT` bytes are stored zero-padded
 * to that fixed size (one `timingSafeEqual` over the whole slot, then an integer compare of the
 * lengths); longer ones as their sha256 digest (both sides hashed, fixed 32 bytes). The padded
 * form costs a copy instead of a hash per Check (see docs/hand-written.md).
 */
export type SecretDigest =
  | { readonly kind: 'padded'; readonly slot: Buffer; readonly length: number }
  | { readonly kind: 'sha256'; readonly digest: Buffer };

/** Secrets up to this many UTF-8 bytes are compared padded; Otoroshi's generated ones are 64. */
export const SECRET_SLOT = 128;
const SCRATCH = Buffer.alloc(SECRET_SLOT);

function sha256(secret: string): Buffer {
  // crypto.hash (Node >= 20.12) is the one-shot, ~2x cheaper form.
  if (typeof oneShotHash === 'function') return oneShotHash('sha256', secret, 'buffer');
  return createHash('sha256').update(secret, 'utf8').digest();
}

export function secretDigest(secret: string): SecretDigest {
  const length = Buffer.byteLength(secret, 'utf8');
  if (length > SECRET_SLOT) return { kind: 'sha256', digest: sha256(secret) };
  const slot = Buffer.alloc(SECRET_SLOT);
  slot.write(secret, 'utf8');
  return { kind: 'padded', slot, length };
}

/** Constant-time in the expected secret: `crypto.timingSafeEqual` over a fixed-size slot. */
export function secretMatches(provided: string, expected: SecretDigest): boolean {
  if (expected.kind === 'sha256') return timingSafeEqual(sha256(provided), expected.digest);
  const length = Buffer.byteLength(provided, 'utf8');
  // A provided secret longer than the slot cannot match; it is compared anyway (same work).
  SCRATCH.fill(0);
  if (length <= SECRET_SLOT) SCRATCH.write(provided, 'utf8');
  const same = timingSafeEqual(SCRATCH, expected.slot);
  return same && length === expected.length;
}

// ------------------------------------------------------------------ routing constraints

export interface RoutingView {
  tags: readonly string[];
  metadata: Readonly<Record<string, string>>;
  constrainedServicesOnly: boolean;
}

export function hasRoutingConstraints(r: ApiKeyConstraints['routing']): boolean {
  return (
    r.noneTagIn.length > 0 ||
    r.oneTagIn.length > 0 ||
    r.allTagsIn.length > 0 ||
    Object.keys(r.noneMetaIn).length > 0 ||
    Object.keys(r.oneMetaIn).length > 0 ||
    Object.keys(r.allMetaIn).length > 0 ||
    r.noneMetaKeysIn.length > 0 ||
    r.oneMetaKeyIn.length > 0 ||
    r.allMetaKeysIn.length > 0
  );
}

const has = (o: Readonly<Record<string, string>>, k: string): boolean => Object.prototype.hasOwnProperty.call(o, k);

/** Otoroshi `ApiKey.matchRouting(descriptor)`; `constrained` = the descriptor has routing constraints. */
export function matchRouting(key: RoutingView, r: ApiKeyConstraints['routing'], constrained: boolean): boolean {
  if (!constrained) return !key.constrainedServicesOnly;
  const t = key.tags;
  const m = key.metadata;
  if (r.oneTagIn.length > 0 && !t.some((x) => r.oneTagIn.includes(x))) return false;
  if (r.allTagsIn.length > 0 && !r.allTagsIn.every((x) => t.includes(x))) return false;
  if (r.noneTagIn.length > 0 && t.some((x) => r.noneTagIn.includes(x))) return false;
  const pairs = (o: Record<string, string>): [string, string][] => Object.entries(o);
  const pairIn = ([k, v]: [string, string]): boolean => has(m, k) && m[k] === v;
  if (Object.keys(r.oneMetaIn).length > 0 && !pairs(r.oneMetaIn).some(pairIn)) return false;
  if (Object.keys(r.allMetaIn).length > 0 && !pairs(r.allMetaIn).every(pairIn)) return false;
  if (Object.keys(r.noneMetaIn).length > 0 && pairs(r.noneMetaIn).some(pairIn)) return false;
  if (r.oneMetaKeyIn.length > 0 && !r.oneMetaKeyIn.some((k) => has(m, k))) return false;
  if (r.allMetaKeysIn.length > 0 && !r.allMetaKeysIn.every((k) => has(m, k))) return false;
  if (r.noneMetaKeysIn.length > 0 && r.noneMetaKeysIn.some((k) => has(m, k))) return false;
  return true;
}

// ------------------------------------------------------------------ apikey JWTs

export type JwtClaims = Record<string, unknown>;

function b64urlJson(part: string): unknown {
  return JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
}

/** Header and payload without verification; undefined when not a JWT with object header/payload. */
export function decodeJwtUnverified(token: string): { header: JwtClaims; claims: JwtClaims } | undefined {
  const a = token.indexOf('.');
  const b = token.indexOf('.', a + 1);
  if (a < 0 || b < 0) return undefined;
  try {
    const header = b64urlJson(token.slice(0, a));
    const claims = b64urlJson(token.slice(a + 1, b));
    if (header === null || typeof header !== 'object' || Array.isArray(header)) return undefined;
    if (claims === null || typeof claims !== 'object' || Array.isArray(claims)) return undefined;
    return { header: header as JwtClaims, claims: claims as JwtClaims };
  } catch {
    return undefined;
  }
}

/** Otoroshi: claim `clientId`, else `client_id`, else `cid`, else `iss`. */
export function jwtClientId(claims: JwtClaims): string | undefined {
  for (const k of ['clientId', 'client_id', 'cid', 'iss']) {
    const v = claims[k];
    if (typeof v === 'string' && v !== '') return v;
  }
  return undefined;
}

export interface ApikeyJwtOptions {
  nowMs: number;
  leewaySec: number;
  maxJwtLifespanSecs?: number;
  allowedAlgs: readonly ('HS256' | 'HS384' | 'HS512')[];
  /** The request's X-XSRF-TOKEN (a token with an `xsrfToken` claim must match it). */
  xsrfHeader?: string;
}

export type ApikeyJwtResult = { ok: true; claims: JwtClaims } | { ok: false; reason: string };

/** jwt.ts `verifyApikeyJwt`'s signature (the default); injectable for tests. */
export type ApikeyJwtVerifier = (token: string, secret: string, opts: ApikeyJwtOptions) => Promise<ApikeyJwtResult>;
