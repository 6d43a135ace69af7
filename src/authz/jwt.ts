// JWT verification with Otoroshi's JwtVerifier semantics, and the HS check of the apikey-by-JWT
// path. Algorithms, status codes, claims, JWKS caching and transform expressions: docs/jwt.md.
import { createHmac, timingSafeEqual, webcrypto } from 'node:crypto';
import { cachedReplacer, fullMatcher, replacer, type Matcher, type Replacer } from '../model/linear-regex.js';
import type * as jose from 'jose';
import type {
  DescriptorJwtRef,
  JwtAlgoSettings,
  JwtStrategy,
  JwtTokenSource,
  JwtVerifierModel,
} from '../model/types.js';
import { toPkcs8Pem, toSpkiPem } from '../model/jwt-verifier.js';
import type { AuthzHooks, CheckInput, HeaderMutation } from './types.js';
import type { ApikeyJwtOptions, ApikeyJwtResult } from './apikey.js';

let joseModule: typeof jose | undefined;
/** jose, imported on first use (a server without JwtVerifiers never loads it). */
async function loadJose(): Promise<typeof jose> {
  joseModule ??= await import('jose');
  return joseModule;
}

export type JwtOutcome =
  | { kind: 'skipped' }
  | { kind: 'passed'; verifierId: string; mutation: HeaderMutation; claims: Record<string, unknown> }
  | {
      kind: 'denied';
      status: number;
      message: string;
      code: string;
      reason: 'jwt_invalid' | 'jwt_missing' | 'internal';
    };

export interface JwtEngineDeps {
  nowMs?: () => number;
  /** Upper bound of a JWKS fetch (the verifier's `timeout` applies when smaller). */
  fetchTimeoutMs?: number;
  hooks?: AuthzHooks;
  logger?: { warn(obj: object, msg: string): void };
  /** Minimum delay between two JWKS fetches of one url caused by an unknown kid or a failure (10 s). */
  jwksCooldownMs?: number;
}

export const JWT_LEEWAY_SEC = 10;
const DEFAULT_JWKS_COOLDOWN_MS = 10_000;
const MAX_JWKS_BYTES = 1024 * 1024;
const OUTPUT_CACHE_MAX = 2048;

// ------------------------------------------------------------------ small helpers

function denied(status: number, code: string, reason: 'jwt_invalid' | 'jwt_missing' | 'internal'): JwtOutcome {
  return { kind: 'denied', status, message: code, code, reason };
}
const BAD_TOKEN = denied(400, 'error.bad.token', 'jwt_invalid');
const BAD_INPUT_ALG = denied(400, 'error.bad.input.algorithm.name', 'jwt_invalid');
const BAD_OUTPUT_ALG = denied(400, 'error.bad.output.algorithm.name', 'internal');
const TOKEN_NOT_FOUND = denied(400, 'error.expected.token.not.found', 'jwt_missing');
const UNKNOWN_VERIFIER = denied(500, 'error.bad.globaljwtverifier.id', 'internal');

function emptyMutation(): HeaderMutation {
  return { upstreamHeaders: {}, removeUpstreamHeaders: [], responseHeaders: {} };
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function b64urlJson(part: string): unknown {
  if (!/^[A-Za-z0-9_-]*$/.test(part)) return undefined;
  try {
    return JSON.parse(Buffer.from(part, 'base64url').toString('utf8')) as unknown;
  } catch {
    return undefined;
  }
}

/** The three segments of a compact JWS, or undefined. */
function splitToken(token: string): [string, string, string] | undefined {
  const parts = token.split('.');
  if (parts.length !== 3) return undefined;
  return parts as [string, string, string];
}

/** Claims of a compact JWT without verifying anything: exactly 3 dot-separated parts. Never throws. */
export function decodeUnverifiedClaims(token: string): Record<string, unknown> | undefined {
  if (typeof token !== 'string') return undefined;
  const parts = splitToken(token);
  if (parts === undefined) return undefined;
  const claims = b64urlJson(parts[1]);
  return isRecord(claims) ? claims : undefined;
}

function decodeHeader(token: string): Record<string, unknown> | undefined {
  const parts = splitToken(token);
  if (parts === undefined) return undefined;
  const h = b64urlJson(parts[0]);
  return isRecord(h) ? h : undefined;
}

function cookieValue(header: string | undefined, name: string): string | undefined {
  if (header === undefined) return undefined;
  for (const part of header.split(';')) {
    const i = part.indexOf('=');
    if (i < 0) continue;
    if (part.slice(0, i).trim() !== name) continue;
    let v = part.slice(i + 1).trim();
    if (v.length >= 2 && v.startsWith('"') && v.endsWith('"')) v = v.slice(1, -1);
    return v;
  }
  return undefined;
}

/** Rewrites a Cookie header: drops `remove`, then sets `set` (replacing the first in place, else appending). */
function rewriteCookies(
  header: string | undefined,
  remove: string | undefined,
  set: { name: string; value: string } | undefined,
): string {
  let parts = (header ?? '')
    .split(';')
    .map((x) => x.trim())
    .filter((x) => x !== '')
    .map((raw) => {
      const i = raw.indexOf('=');
      return { name: i < 0 ? raw : raw.slice(0, i).trim(), raw };
    });
  if (remove !== undefined) parts = parts.filter((x) => x.name !== remove);
  if (set !== undefined) {
    const raw = `${set.name}=${set.value}`;
    const idx = parts.findIndex((x) => x.name === set.name);
    if (idx < 0) parts.push({ name: set.name, raw });
    else
      parts = parts
        .filter((x, i) => i === idx || x.name !== set.name)
        .map((x) => (x.name === set.name ? { name: x.name, raw } : x));
  }
  return parts.map((x) => x.raw).join('; ');
}

function firstQueryParam(query: string, name: string): string | undefined {
  if (query === '') return undefined;
  try {
    const v = new URLSearchParams(query).get(name);
    return v === null ? undefined : v;
  } catch {
    return undefined;
  }
}

// ------------------------------------------------------------------ claims checks

function stringifyClaim(v: unknown): string {
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  if (v === null) return 'null';
  return JSON.stringify(v);
}

interface CompiledChecks {
  fields: Array<[string, string]>;
  arrayFields: Array<[string, string[]]>;
}

function compileChecks(s: JwtStrategy): CompiledChecks {
  return {
    fields: Object.entries(s.verificationSettings.fields),
    arrayFields: Object.entries(s.verificationSettings.arrayFields).map(([k, v]) => [
      k,
      v.includes(',') ? v.split(',').map((x) => x.trim()) : [v],
    ]),
  };
}

function checkClaims(c: CompiledChecks, claims: Record<string, unknown>, nowSec: number): string | undefined {
  const iat = claims['iat'];
  if (iat !== undefined && (typeof iat !== 'number' || iat > nowSec + JWT_LEEWAY_SEC)) return 'iat in the future';
  for (const [k, want] of c.fields) {
    const got = claims[k];
    if (k === 'aud' && Array.isArray(got)) {
      if (!got.includes(want)) return `aud does not contain ${want}`;
    } else if (typeof got !== 'string' || got !== want) return `claim ${k} mismatch`;
  }
  for (const [k, want] of c.arrayFields) {
    const got = claims[k];
    if (!Array.isArray(got)) return `claim ${k} is not an array`;
    const have = new Set<string>();
    for (const x of got)
      if (typeof x === 'string' || typeof x === 'number' || typeof x === 'boolean') have.add(String(x));
    for (const w of want) if (!have.has(w)) return `claim ${k} lacks ${w}`;
  }
  return undefined;
}

// ------------------------------------------------------------------ Transform expressions

const EXPR = /\$\{([^}]*)\}/g;

function evalExpr(expr: string, ctx: ReadonlyMap<string, string>): string {
  const m = /^(?:token|ctx)\.(.+)$/.exec(expr);
  if (m === null) return 'bad-expr';
  const body = m[1] ?? '';
  const rep = /^(.+?)\.(replace|replaceAll)\('(.*)', ?'(.*)'\)$/.exec(body);
  if (rep !== null) {
    const [, field = '', op, a = '', b = ''] = rep;
    const v = ctx.get(field);
    if (v === undefined) return `no-token-${field}`;
    if (op === 'replace') return v.split(a).join(b);
    const r = cachedReplacer(a);
    if (r === null) return 'bad-expr';
    try {
      return r.replaceAll(v, b);
    } catch {
      return 'bad-expr';
    }
  }
  const alt = /^(.+?)\|(?:token|ctx)\.(.+?)(?::(.*))?$/.exec(body);
  if (alt !== null) {
    const [, f1 = '', f2 = '', dv] = alt;
    return ctx.get(f1) ?? ctx.get(f2) ?? dv ?? `no-token-${f1}-${f2}`;
  }
  const def = /^(.+?):(.*)$/.exec(body);
  if (def !== null) {
    const [, f = '', dv = ''] = def;
    return ctx.get(f) ?? dv;
  }
  return ctx.get(body) ?? `no-token-${body}`;
}

function evalJson(v: unknown, ctx: ReadonlyMap<string, string>): unknown {
  if (typeof v === 'string') return v.includes('${') ? v.replace(EXPR, (_all, e: string) => evalExpr(e, ctx)) : v;
  if (Array.isArray(v)) return v.map((x) => evalJson(x, ctx));
  if (isRecord(v)) {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) out[k] = evalJson(x, ctx);
    return out;
  }
  return v;
}

/** Otoroshi's Transform mapping (see the header comment for the supported expressions). */
export function transformClaims(
  claims: Record<string, unknown>,
  mapping: { map: Record<string, string>; values: Record<string, unknown>; remove: string[] },
): Record<string, unknown> {
  const ctx = new Map<string, string>();
  for (const [k, v] of Object.entries(claims)) ctx.set(k, stringifyClaim(v));
  let out: Record<string, unknown> = { ...claims };
  for (const [from, to] of Object.entries(mapping.map)) {
    if (!(from in out)) continue;
    const v = evalJson(out[from], ctx);
    if (from !== to) delete out[from];
    out[to] = v;
  }
  out = { ...out, ...(evalJson(mapping.values, ctx) as Record<string, unknown>) };
  const result: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(out)) {
    if (v === null || v === undefined || v === 'null') continue;
    if (mapping.remove.includes(k)) continue;
    result[k] = v;
  }
  return result;
}

// ------------------------------------------------------------------ compiled verifiers

type VerifyKey = jose.CryptoKey;

interface SignerKey {
  alg: string;
  key: Promise<jose.CryptoKey | Uint8Array>;
}

interface Compiled {
  model: JwtVerifierModel;
  fingerprint: string;
  removeRe?: Replacer;
  checks: CompiledChecks;
  /** Static settings: alg → key (promise, imported once). */
  keys: Map<string, Promise<VerifyKey>>;
  signer?: SignerKey | null;
}

function hsBytes(s: Extract<JwtAlgoSettings, { type: 'HSAlgoSettings' }>): Uint8Array {
  return s.base64 ? new Uint8Array(Buffer.from(s.secret, 'base64')) : new TextEncoder().encode(s.secret);
}

function hmacKey(bytes: Uint8Array, size: number, usage: 'sign' | 'verify'): Promise<jose.CryptoKey> {
  return webcrypto.subtle.importKey('raw', bytes, { name: 'HMAC', hash: `SHA-${size}` }, false, [
    usage,
  ]) as Promise<jose.CryptoKey>;
}

/** Algorithms accepted by static (non-JWKS) settings. */
function staticAlgs(s: Exclude<JwtAlgoSettings, { type: 'JWKSAlgoSettings' }>): readonly string[] {
  switch (s.type) {
    case 'HSAlgoSettings':
      return [`HS${s.size}`];
    case 'RSAlgoSettings':
      return [`RS${s.size}`, `PS${s.size}`];
    case 'ESAlgoSettings':
      return [`ES${s.size}`];
  }
}

// ------------------------------------------------------------------ JWKS cache

interface JwksEntry {
  url: string;
  jwks?: Map<string, jose.JWK>;
  /** alg\0kid → imported key */
  imported: Map<string, Promise<VerifyKey>>;
  expiresAt: number;
  lastAttemptAt: number;
  lastFailureAt?: number;
  inflight?: Promise<void>;
  abort?: AbortController;
}

const RSA_ALGS = new Set(['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512']);
const EC_ALG_CURVE: Readonly<Record<string, string>> = { ES256: 'P-256', ES384: 'P-384', ES512: 'P-521' };

/** A public-only copy of a JWK usable for `alg`, or why not. */
function jwkFor(jwk: jose.JWK, alg: string): jose.JWK | string {
  if (jwk.use !== undefined && jwk.use !== 'sig') return `key use is ${jwk.use}`;
  if (jwk.alg !== undefined && jwk.alg !== alg) return `key alg is ${jwk.alg}, token alg is ${alg}`;
  if (jwk.kty === 'RSA') {
    if (!RSA_ALGS.has(alg)) return `alg ${alg} does not apply to an RSA key`;
    if (typeof jwk.n !== 'string' || typeof jwk.e !== 'string') return 'RSA key without n/e';
    return { kty: 'RSA', n: jwk.n, e: jwk.e };
  }
  if (jwk.kty === 'EC') {
    const crv = EC_ALG_CURVE[alg];
    if (crv === undefined) return `alg ${alg} does not apply to an EC key`;
    if (jwk.crv !== crv) return `alg ${alg} needs curve ${crv}, key is on ${String(jwk.crv)}`;
    if (typeof jwk.x !== 'string' || typeof jwk.y !== 'string') return 'EC key without x/y';
    return { kty: 'EC', crv: jwk.crv, x: jwk.x, y: jwk.y };
  }
  return `unsupported key type ${String(jwk.kty)}`;
}

// ------------------------------------------------------------------ the engine

export class JwtEngine {
  private readonly nowMs: () => number;
  private readonly fetchTimeoutMs: number | undefined;
  private readonly hooks: AuthzHooks | undefined;
  private readonly logger: { warn(obj: object, msg: string): void } | undefined;
  private readonly cooldownMs: number;
  private compiled = new Map<string, Compiled>();
  private readonly jwks = new Map<string, JwksEntry>();
  private readonly outputs = new Map<string, string>();
  private readonly patterns = new Map<string, Matcher | null>();
  private closed = false;

  constructor(verifiers: readonly JwtVerifierModel[], deps: JwtEngineDeps = {}) {
    this.nowMs = deps.nowMs ?? Date.now;
    this.fetchTimeoutMs = deps.fetchTimeoutMs;
    this.hooks = deps.hooks;
    this.logger = deps.logger;
    this.cooldownMs = deps.jwksCooldownMs ?? DEFAULT_JWKS_COOLDOWN_MS;
    this.setVerifiers(verifiers);
  }

  /** Replaces the verifier set; unchanged models keep their imported keys. JWKS caches are kept. */
  setVerifiers(verifiers: readonly JwtVerifierModel[]): void {
    const next = new Map<string, Compiled>();
    for (const m of verifiers) {
      const fingerprint = JSON.stringify(m);
      const prev = this.compiled.get(m.id);
      if (prev !== undefined && prev.fingerprint === fingerprint) {
        next.set(m.id, prev);
        continue;
      }
      const c: Compiled = { model: m, fingerprint, checks: compileChecks(m.strategy), keys: new Map() };
      if (m.source.type === 'InHeader' && m.source.remove !== '') {
        try {
          c.removeRe = replacer(m.source.remove);
        } catch {
          this.logger?.warn(
            { verifier: m.id, remove: m.source.remove },
            'jwt verifier: source.remove does not compile; ignored',
          );
        }
      }
      next.set(m.id, c);
    }
    this.compiled = next;
    this.outputs.clear();
  }

  close(): void {
    this.closed = true;
    for (const e of this.jwks.values()) e.abort?.abort();
    this.jwks.clear();
    this.outputs.clear();
    this.compiled.clear();
  }

  /** Otoroshi's ref semantics: enabled + ids, excludedPatterns, first passing id wins, else last failure. */
  async verify(ref: DescriptorJwtRef, input: CheckInput): Promise<JwtOutcome> {
    if (!ref.enabled || ref.ids.length === 0) return { kind: 'skipped' };
    for (const p of ref.excludedPatterns) {
      if (this.pattern(p)?.test(input.path) === true) return { kind: 'skipped' };
    }
    let last: JwtOutcome = UNKNOWN_VERIFIER;
    for (const id of ref.ids) {
      const c = this.compiled.get(id);
      if (c === undefined) {
        last = UNKNOWN_VERIFIER;
        continue;
      }
      let r: JwtOutcome;
      try {
        r = await this.verifyOne(c, input);
      } catch (e) {
        this.logger?.warn(
          { verifier: id, err: e instanceof Error ? e.message : String(e) },
          'jwt verifier: unexpected failure',
        );
        r = BAD_TOKEN;
      }
      if (r.kind !== 'denied') return r;
      last = r;
    }
    return last;
  }

  private pattern(p: string): Matcher | null {
    let re = this.patterns.get(p);
    if (re === undefined) {
      try {
        re = fullMatcher(p);
      } catch {
        re = null;
        this.logger?.warn({ pattern: p }, 'jwt verifier: excludedPatterns entry does not compile; ignored');
      }
      if (this.patterns.size > 10_000) this.patterns.clear();
      this.patterns.set(p, re);
    }
    return re;
  }

  private tokenOf(c: Compiled, input: CheckInput): string | undefined {
    const s = c.model.source;
    switch (s.type) {
      case 'InHeader': {
        const v = input.headers[s.name.toLowerCase()];
        if (v === undefined) return undefined;
        return c.removeRe !== undefined ? c.removeRe.replaceAll(v, '') : v;
      }
      case 'InQueryParam':
        return firstQueryParam(input.query, s.name);
      case 'InCookie':
        return cookieValue(input.headers['cookie'], s.name);
    }
  }

  private suspicious(input: CheckInput, c: Compiled, alg: string): void {
    const ev: { kind: string; sourceIp?: string; descriptorId?: string; detail: string } = {
      kind: 'jwt_alg_confusion',
      detail: `token alg ${JSON.stringify(alg)} refused by verifier ${c.model.id} (${c.model.algoSettings.type})`,
    };
    if (input.sourceIp !== undefined) ev.sourceIp = input.sourceIp;
    const d = input.contextExtensions['descriptor_id'];
    if (d !== undefined) ev.descriptorId = d;
    try {
      this.hooks?.onSuspicious?.(ev);
    } catch {
      /* hooks never break a decision */
    }
  }

  private async verifyOne(c: Compiled, input: CheckInput): Promise<JwtOutcome> {
    const token = this.tokenOf(c, input);
    if (token === undefined) return c.model.strict ? TOKEN_NOT_FOUND : { kind: 'skipped' };
    const header = decodeHeader(token);
    if (header === undefined) return BAD_TOKEN;
    const alg = typeof header['alg'] === 'string' ? header['alg'] : 'RS256';
    const settings = c.model.algoSettings;
    const isJwks = settings.type === 'JWKSAlgoSettings';
    if (alg.toLowerCase() === 'none' || (settings.type !== 'HSAlgoSettings' && alg.startsWith('HS'))) {
      this.suspicious(input, c, alg);
      return isJwks ? BAD_INPUT_ALG : BAD_TOKEN;
    }
    let key: VerifyKey | undefined;
    if (settings.type === 'JWKSAlgoSettings') {
      const kid = header['kid'];
      if (typeof kid !== 'string' || kid === '') return BAD_INPUT_ALG;
      key = await this.jwksKey(settings, kid, alg, c.model.id);
      if (key === undefined) return BAD_INPUT_ALG;
    } else {
      if (!staticAlgs(settings).includes(alg)) return BAD_TOKEN;
      try {
        key = await this.staticKey(c, settings, alg);
      } catch (e) {
        this.logger?.warn(
          { verifier: c.model.id, alg, err: e instanceof Error ? e.message : String(e) },
          'jwt verifier: key import failed',
        );
        return BAD_TOKEN;
      }
    }
    const now = this.nowMs();
    let claims: Record<string, unknown>;
    try {
      const r = await (joseModule ?? (await loadJose())).jwtVerify(token, key, {
        algorithms: [alg],
        clockTolerance: JWT_LEEWAY_SEC,
        currentDate: new Date(now),
      });
      claims = r.payload as Record<string, unknown>;
    } catch {
      return BAD_TOKEN;
    }
    if (checkClaims(c.checks, claims, Math.floor(now / 1000)) !== undefined) return BAD_TOKEN;
    return this.applyStrategy(c, input, token, claims);
  }

  private staticKey(
    c: Compiled,
    s: Exclude<JwtAlgoSettings, { type: 'JWKSAlgoSettings' }>,
    alg: string,
  ): Promise<VerifyKey> {
    let k = c.keys.get(alg);
    if (k === undefined) {
      k =
        s.type === 'HSAlgoSettings'
          ? hmacKey(hsBytes(s), s.size, 'verify')
          : loadJose().then((j) => j.importSPKI(toSpkiPem(s.publicKey), alg));
      // A failed import is not cached: the next call retries (and fails the same way).
      k.catch(() => c.keys.delete(alg));
      c.keys.set(alg, k);
    }
    return k;
  }

  // ---------------------------------------------------------------- JWKS

  private async jwksKey(
    s: Extract<JwtAlgoSettings, { type: 'JWKSAlgoSettings' }>,
    kid: string,
    alg: string,
    verifierId: string,
  ): Promise<VerifyKey | undefined> {
    let e = this.jwks.get(s.url);
    if (e === undefined) {
      e = { url: s.url, imported: new Map(), expiresAt: 0, lastAttemptAt: Number.NEGATIVE_INFINITY };
      this.jwks.set(s.url, e);
    }
    const now = this.nowMs();
    const fresh = e.jwks !== undefined && now < e.expiresAt;
    const known = e.jwks?.has(kid) === true;
    const needFetch = !fresh
      ? // expired / never fetched: fetch, unless a fetch failed within the cooldown (stale keys, if any, serve)
        !(e.lastFailureAt !== undefined && now - e.lastFailureAt < this.cooldownMs)
      : // fresh but unknown kid (rotation): refetch at most once per cooldown
        !known && now - e.lastAttemptAt >= this.cooldownMs;
    if (needFetch || (!known && e.inflight !== undefined)) await this.fetchJwks(e, s, verifierId);
    const jwk = e.jwks?.get(kid);
    if (jwk === undefined) return undefined;
    const usable = jwkFor(jwk, alg);
    if (typeof usable === 'string') {
      this.logger?.warn(
        { verifier: verifierId, url: s.url, kid, alg, why: usable },
        'jwt verifier: JWKS key not usable for the token',
      );
      return undefined;
    }
    const ck = `${alg}\u0000${kid}`;
    let k = e.imported.get(ck);
    if (k === undefined) {
      k = loadJose().then((j) => j.importJWK(usable, alg)) as Promise<VerifyKey>;
      k.catch(() => e!.imported.delete(ck));
      e.imported.set(ck, k);
    }
    try {
      return await k;
    } catch (err) {
      this.logger?.warn(
        { verifier: verifierId, url: s.url, kid, err: err instanceof Error ? err.message : String(err) },
        'jwt verifier: JWKS key import failed',
      );
      return undefined;
    }
  }

  private fetchJwks(
    e: JwksEntry,
    s: Extract<JwtAlgoSettings, { type: 'JWKSAlgoSettings' }>,
    verifierId: string,
  ): Promise<void> {
    if (e.inflight !== undefined) return e.inflight;
    if (this.closed) return Promise.resolve();
    e.lastAttemptAt = this.nowMs();
    const timeout = this.fetchTimeoutMs !== undefined ? Math.min(s.timeout, this.fetchTimeoutMs) : s.timeout;
    const ac = new AbortController();
    e.abort = ac;
    const timer = setTimeout(() => ac.abort(new Error(`JWKS fetch timed out after ${timeout} ms`)), timeout);
    const run = async (): Promise<void> => {
      try {
        const res = await fetch(s.url, { headers: { accept: 'application/json', ...s.headers }, signal: ac.signal });
        if (res.status !== 200) {
          await res.body?.cancel().catch(() => undefined);
          throw new Error(`JWKS answered HTTP ${res.status}`);
        }
        const text = await res.text();
        if (text.length > MAX_JWKS_BYTES) throw new Error('JWKS document too large');
        const doc = JSON.parse(text) as unknown;
        const keys = isRecord(doc) ? doc['keys'] : undefined;
        if (!Array.isArray(keys)) throw new Error('JWKS document has no "keys" array');
        const map = new Map<string, jose.JWK>();
        for (const k of keys) {
          if (isRecord(k) && typeof k['kid'] === 'string' && !map.has(k['kid'])) map.set(k['kid'], k as jose.JWK);
        }
        // Keys whose material changed must be re-imported.
        if (e.jwks !== undefined) {
          for (const ck of [...e.imported.keys()]) {
            const kid = ck.slice(ck.indexOf('\u0000') + 1);
            if (JSON.stringify(e.jwks.get(kid)) !== JSON.stringify(map.get(kid))) e.imported.delete(ck);
          }
        }
        e.jwks = map;
        e.expiresAt = this.nowMs() + s.ttl;
        e.lastFailureAt = undefined;
      } catch (err) {
        e.lastFailureAt = this.nowMs();
        this.logger?.warn(
          {
            verifier: verifierId,
            url: s.url,
            err: err instanceof Error ? err.message : String(err),
            staleKeys: e.jwks?.size ?? 0,
          },
          'jwt verifier: JWKS fetch failed',
        );
      } finally {
        clearTimeout(timer);
        if (e.abort === ac) e.abort = undefined;
        e.inflight = undefined;
      }
    };
    e.inflight = run();
    return e.inflight;
  }

  // ---------------------------------------------------------------- strategies

  private signer(c: Compiled, s: JwtAlgoSettings): SignerKey | null {
    if (c.signer !== undefined) return c.signer;
    let signer: SignerKey | null = null;
    if (s.type === 'HSAlgoSettings') signer = { alg: `HS${s.size}`, key: hmacKey(hsBytes(s), s.size, 'sign') };
    else if (
      (s.type === 'RSAlgoSettings' || s.type === 'ESAlgoSettings') &&
      s.privateKey !== undefined &&
      s.privateKey.trim() !== ''
    ) {
      const alg = `${s.type === 'RSAlgoSettings' ? 'RS' : 'ES'}${s.size}`;
      const pem = s.privateKey;
      signer = { alg, key: loadJose().then((j) => j.importPKCS8(toPkcs8Pem(pem), alg)) };
    }
    if (signer !== null) signer.key.catch(() => undefined);
    c.signer = signer;
    return signer;
  }

  private async sign(
    c: Compiled,
    s: JwtAlgoSettings,
    payload: Record<string, unknown>,
    cacheKey: string,
  ): Promise<string | undefined> {
    const hit = this.outputs.get(cacheKey);
    if (hit !== undefined) return hit;
    const signer = this.signer(c, s);
    if (signer === null) return undefined;
    let out: string;
    try {
      out = await new (joseModule ?? (await loadJose())).SignJWT(payload as jose.JWTPayload)
        .setProtectedHeader({ alg: signer.alg, typ: 'JWT' })
        .sign(await signer.key);
    } catch (e) {
      this.logger?.warn(
        { verifier: c.model.id, err: e instanceof Error ? e.message : String(e) },
        'jwt verifier: signing failed',
      );
      return undefined;
    }
    if (this.outputs.size >= OUTPUT_CACHE_MAX) this.outputs.clear();
    this.outputs.set(cacheKey, out);
    return out;
  }

  private async applyStrategy(
    c: Compiled,
    input: CheckInput,
    token: string,
    claims: Record<string, unknown>,
  ): Promise<JwtOutcome> {
    const st = c.model.strategy;
    const mutation = emptyMutation();
    const passed = (): JwtOutcome => ({ kind: 'passed', verifierId: c.model.id, mutation, claims });
    if (st.type === 'PassThrough') return passed();
    const cacheKey = `${c.model.id}\u0000${token}`;
    if (st.type === 'Sign') {
      const out = await this.sign(c, st.algoSettings, claims, cacheKey);
      if (out === undefined) return BAD_OUTPUT_ALG;
      inject(mutation, c.model.source, out, input, undefined);
      return passed();
    }
    const payload = transformClaims(claims, st.transformSettings.mappingSettings);
    const out = await this.sign(c, st.algoSettings, payload, cacheKey);
    if (out === undefined) return BAD_OUTPUT_ALG;
    const src = c.model.source;
    const loc = st.transformSettings.location;
    if (src.type === 'InHeader' && !(loc.type === 'InHeader' && loc.name.toLowerCase() === src.name.toLowerCase())) {
      mutation.removeUpstreamHeaders.push(src.name.toLowerCase());
    }
    inject(mutation, loc, out, input, src.type === 'InCookie' ? src.name : undefined);
    return passed();
  }
}

/** Otoroshi's `asJwtInjection`: header `name: remove + token`, cookie `name=token`, query: nothing. */
function inject(
  m: HeaderMutation,
  loc: JwtTokenSource,
  token: string,
  input: CheckInput,
  removeCookie: string | undefined,
): void {
  if (loc.type === 'InHeader') m.upstreamHeaders[loc.name.toLowerCase()] = loc.remove + token;
  const setCookie = loc.type === 'InCookie' ? { name: loc.name, value: token } : undefined;
  if (setCookie !== undefined || removeCookie !== undefined) {
    const cookie = rewriteCookies(input.headers['cookie'], removeCookie, setCookie);
    if (cookie === '') m.removeUpstreamHeaders.push('cookie');
    else m.upstreamHeaders['cookie'] = cookie;
  }
}

// ------------------------------------------------------------------ apikey-by-JWT

const HS_HASH: Readonly<Record<string, string>> = { HS256: 'sha256', HS384: 'sha384', HS512: 'sha512' };

/**
 * Verifies an apikey JWT HS-signed with the key's clientSecret: alg in `allowedAlgs`, leeway,
 * exp / nbf / iat checked only when present (iat: not in the future), maxJwtLifespanSecs (exp and iat
 * then required, exp - iat <= max), `xsrfToken` claim must equal `xsrfHeader` (the X-XSRF-TOKEN value).
 * Constant-time signature comparison. Never throws.
 */
export async function verifyApikeyJwt(token: string, secret: string, opts: ApikeyJwtOptions): Promise<ApikeyJwtResult> {
  const parts = typeof token === 'string' ? splitToken(token) : undefined;
  if (parts === undefined) return { ok: false, reason: 'malformed token' };
  const header = b64urlJson(parts[0]);
  const claims = b64urlJson(parts[1]);
  if (!isRecord(header) || !isRecord(claims)) return { ok: false, reason: 'malformed token' };
  const alg = header['alg'];
  if (typeof alg !== 'string' || !(opts.allowedAlgs as readonly string[]).includes(alg))
    return { ok: false, reason: `algorithm ${String(alg)} not allowed` };
  if (header['crit'] !== undefined) return { ok: false, reason: 'unsupported crit header' };
  const hash = HS_HASH[alg];
  if (hash === undefined) return { ok: false, reason: `algorithm ${alg} not allowed` };
  if (secret === '') return { ok: false, reason: 'empty secret' };
  if (!/^[A-Za-z0-9_-]*$/.test(parts[2])) return { ok: false, reason: 'bad signature' };
  const expected = createHmac(hash, secret).update(`${parts[0]}.${parts[1]}`).digest();
  const got = Buffer.from(parts[2], 'base64url');
  if (got.length !== expected.length || !timingSafeEqual(got, expected)) return { ok: false, reason: 'bad signature' };

  const now = opts.nowMs / 1000;
  const leeway = opts.leewaySec;
  const num = (k: string): number | undefined | null => {
    const v = claims[k];
    if (v === undefined) return undefined;
    return typeof v === 'number' && Number.isFinite(v) ? v : null;
  };
  const exp = num('exp');
  const nbf = num('nbf');
  const iat = num('iat');
  if (exp === null || nbf === null || iat === null) return { ok: false, reason: 'exp/nbf/iat must be numbers' };
  if (exp !== undefined && now > exp + leeway) return { ok: false, reason: 'token expired' };
  if (nbf !== undefined && now < nbf - leeway) return { ok: false, reason: 'token not yet valid (nbf)' };
  if (iat !== undefined && now < iat - leeway) return { ok: false, reason: 'token issued in the future (iat)' };
  if (opts.maxJwtLifespanSecs !== undefined) {
    if (exp === undefined || iat === undefined)
      return { ok: false, reason: 'exp and iat are required (maxJwtLifespanSecs)' };
    if (exp - iat > opts.maxJwtLifespanSecs)
      return { ok: false, reason: `token lifespan ${exp - iat}s exceeds ${opts.maxJwtLifespanSecs}s` };
  }
  const xsrf = claims['xsrfToken'];
  if (xsrf !== undefined) {
    if (opts.xsrfHeader === undefined || typeof xsrf !== 'string' || xsrf !== opts.xsrfHeader)
      return { ok: false, reason: 'xsrfToken does not match X-XSRF-TOKEN' };
  }
  return { ok: true, claims };
}
