// The ext_authz decision, in Otoroshi's order: descriptor, headers verification, readOnly,
// restrictions, apikey, JWT verifier, quotas (only allowed calls count). Pure policy + the quota
// store + the JWT verifier engine. `check()` never throws and never allows by accident:
// any exception becomes a 500 deny (reason `internal`).
import { performance } from 'node:perf_hooks';
import { normalizeRequestPath } from './normalize-path.js';
import type { DescriptorJwtRef } from '../model/types.js';
import type { AuthzHooks, CheckInput, Decision, HeaderMutation, QuotaResult, QuotaStore } from './types.js';
import { ERRORS, deny, type Deny, type ErrorSpec } from './errors.js';
import {
  buildPolicy,
  isUriPublic,
  matchCandidates,
  requestDomain,
  type AuthzPolicy,
  type Candidate,
  type CompiledDescriptor,
  type CompiledKey,
} from './policy.js';
import {
  decodeJwtUnverified,
  extractCredentials,
  jwtClientId,
  matchRouting,
  secretMatches,
  type ApikeyJwtOptions,
  type ApikeyJwtVerifier,
  type Credentials,
} from './apikey.js';
import { checkRestrictions, type CompiledRestrictions } from './restrictions.js';
import { verifyApikeyJwt } from './jwt.js';
import { MemoryQuotaStore } from './quota/memory.js';

// ------------------------------------------------------------------ JWT verifier engine (jwt.ts)

/** What the JwtVerifier engine (src/authz/jwt.ts `JwtEngine`) answers for a descriptor's JWT verifier ref. */
export type JwtOutcome =
  | { kind: 'skipped' }
  | { kind: 'passed'; verifierId: string; mutation: HeaderMutation; claims: unknown }
  | { kind: 'denied'; status: number; message: string; code: string; reason: string };

/** The part of `JwtEngine` decide() needs. */
export interface JwtEngineLike {
  verify(ref: DescriptorJwtRef, input: CheckInput): Promise<JwtOutcome>;
}

export interface AuthorizerOptions {
  quota: QuotaStore;
  jwt?: JwtEngineLike;
  /** Clock (ms since epoch). */
  now?: () => number;
  hooks?: AuthzHooks;
  /** Verifier of apikey-signed JWTs (the apikey's JWT extraction method). Default: jwt.ts `verifyApikeyJwt`. */
  apikeyJwt?: ApikeyJwtVerifier;
}

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);
const HS_ALGS: readonly ('HS256' | 'HS384' | 'HS512')[] = ['HS256', 'HS384', 'HS512'];
const EMPTY: Readonly<Record<string, string>> = Object.freeze({});
const LEEWAY_SEC = 10;

const EMPTY_POLICY: AuthzPolicy = buildPolicy({ descriptors: [], groups: [], apikeys: [], certificates: [], tls: [] });

/** Reads `input` defensively: every field typed, nothing trusted. */
function normalize(input: unknown): CheckInput {
  const o = (input !== null && typeof input === 'object' ? input : {}) as Partial<Record<keyof CheckInput, unknown>>;
  const s = (v: unknown, d: string): string => (typeof v === 'string' ? v : d);
  const rec = (v: unknown): Readonly<Record<string, string>> => {
    if (v === null || typeof v !== 'object' || Array.isArray(v)) return EMPTY;
    for (const k in v as Record<string, unknown>) {
      if (typeof (v as Record<string, unknown>)[k] !== 'string') {
        const out: Record<string, string> = {};
        for (const [kk, vv] of Object.entries(v as Record<string, unknown>)) if (typeof vv === 'string') out[kk] = vv;
        return out;
      }
    }
    return v as Readonly<Record<string, string>>;
  };
  const path = s(o.path, '/');
  const n: CheckInput = {
    method: s(o.method, ''),
    host: s(o.host, ''),
    path: path.startsWith('/') ? path : `/${path}`,
    query: s(o.query, ''),
    headers: rec(o.headers),
    contextExtensions: rec(o.contextExtensions),
  };
  if (typeof o.sourceIp === 'string') n.sourceIp = o.sourceIp;
  if (typeof o.scheme === 'string') n.scheme = o.scheme;
  return n;
}

type KeyResult = { ok: true; key: CompiledKey } | { ok: false; deny: Deny };

/** A value now, or later. The apikey + in-memory quota path answers without any promise. */
export type Maybe<T> = T | Promise<T>;

function isPromise<T>(x: Maybe<T>): x is Promise<T> {
  return x instanceof Promise;
}

export class Authorizer {
  private policy: AuthzPolicy = EMPTY_POLICY;
  private readonly quota: QuotaStore;
  private readonly jwt: JwtEngineLike | undefined;
  private readonly now: () => number;
  private readonly hooks: AuthzHooks;
  private readonly apikeyJwt: ApikeyJwtVerifier;
  /** The quota store when it can count synchronously (an unmodified MemoryQuotaStore). */
  private readonly syncQuota: MemoryQuotaStore | undefined;

  constructor(opts: AuthorizerOptions) {
    this.quota = opts.quota;
    const q = opts.quota;
    this.syncQuota = q instanceof MemoryQuotaStore && q.consume === MemoryQuotaStore.prototype.consume ? q : undefined;
    this.jwt = opts.jwt;
    this.now = opts.now ?? Date.now;
    this.hooks = opts.hooks ?? {};
    this.apikeyJwt = opts.apikeyJwt ?? verifyApikeyJwt;
  }

  setPolicy(p: AuthzPolicy): void {
    this.policy = p;
  }

  getPolicy(): AuthzPolicy {
    return this.policy;
  }

  /**
   * Never throws (not even synchronously); never allows on an internal error. When nothing on the
   * way is asynchronous (no apikey JWT, no JWT verifier, a synchronous quota store) the decision
   * is taken synchronously and handed back in an already-resolved promise.
   */
  check(input: CheckInput): Promise<Decision> {
    const r = this.checkNow(input);
    return isPromise(r) ? r : Promise.resolve(r);
  }

  /**
   * `check`, but a decision taken synchronously is returned as is (no promise, no microtask): the
   * gRPC adapter answers it in the same turn, as a constant-answer server would.
   */
  checkNow(input: CheckInput): Maybe<Decision> {
    const onCheck = this.hooks.onCheck;
    const t0 = onCheck !== undefined ? performance.now() : 0;
    let r: Maybe<Decision>;
    try {
      r = this.decide(input);
    } catch (err) {
      return this.done(this.internalError(err), t0);
    }
    if (isPromise(r)) {
      return r.then(
        (d) => this.done(d, t0),
        (err: unknown) => this.done(this.internalError(err), t0),
      );
    }
    return this.done(r, t0);
  }

  private internalError(err: unknown): Decision {
    this.safe(() =>
      this.hooks.onSuspicious?.({
        kind: 'internal_error',
        detail: err instanceof Error ? `${err.name}: ${err.message}` : String(err),
      }),
    );
    return deny(ERRORS.internal);
  }

  private done(d: Decision, t0: number): Decision {
    const onCheck = this.hooks.onCheck;
    if (onCheck !== undefined) this.safe(() => onCheck.call(this.hooks, d, (performance.now() - t0) / 1000));
    return d;
  }

  private safe(fn: () => void): void {
    try {
      fn();
    } catch {
      /* hooks never break a decision */
    }
  }

  private suspicious(kind: string, detail: string, input: CheckInput, c?: CompiledDescriptor, clientId?: string): void {
    const h = this.hooks.onSuspicious;
    if (h === undefined) return;
    const ev: { kind: string; clientId?: string; sourceIp?: string; descriptorId?: string; detail: string } = {
      kind,
      detail,
    };
    if (clientId !== undefined) ev.clientId = clientId;
    if (input.sourceIp !== undefined) ev.sourceIp = input.sourceIp;
    if (c !== undefined) ev.descriptorId = c.id;
    this.safe(() => h.call(this.hooks, ev));
  }

  private decide(raw: CheckInput): Maybe<Decision> {
    const given = normalize(raw);
    // Decide on the path Envoy routes on (normalised); what cannot be normalised is refused.
    const normalPath = normalizeRequestPath(given.path);
    if (normalPath === undefined) return deny(ERRORS.badPath);
    const input = normalPath === given.path ? given : { ...given, path: normalPath };
    const p = this.policy;
    const now = this.now();

    // 1. descriptor: context_extensions.descriptor_id (our routes set it), else Otoroshi's host + path matching
    let c: CompiledDescriptor | undefined;
    const byId = input.contextExtensions['descriptor_id'];
    if (byId !== undefined) {
      // Our routes name a descriptor we know; an unknown id never falls back to host matching.
      c = p.descriptorsById.get(byId);
      if (c === undefined) return deny(ERRORS.serviceNotFound);
    }
    if (c !== undefined) {
      if (!c.enabled) return deny(ERRORS.serviceUnavailable, c.id);
    } else {
      const domain = requestDomain(input.host);
      if (domain === undefined) return deny(ERRORS.serviceNotFoundInvalidHost);
      const relativeUri = input.query.length > 0 ? `${input.path}?${input.query}` : input.path;
      let cands = matchCandidates(p, domain, input, relativeUri);
      if (cands.length === 0) return deny(ERRORS.serviceNotFound);
      if (cands.length > 1) cands = this.routingFilter(p, cands, input);
      c = (cands[0] as Candidate).c;
      // A caller that is not one of our generated routes (another mesh's Envoy, Istio CUSTOM):
      // the checks our routes do in Envoy before calling us (IP filtering, maintenance / build mode) happen here.
      const ip = input.sourceIp;
      const allowed = (m: ((ip: string) => boolean) | undefined): boolean =>
        m === undefined || (ip !== undefined && m(ip));
      if (!allowed(p.globalIpAllowed) || !allowed(c.ipAllowed)) return deny(ERRORS.ipNotAllowed, c.id);
      if (p.globalMaintenance || c.d.maintenanceMode) return deny(ERRORS.maintenance, c.id);
      if (c.d.buildMode) return deny(ERRORS.underConstruction, c.id);
    }

    // 2. headersVerification: literal values (no `${...}` expressions)
    for (const [name, value] of c.headersVerification) {
      if (input.headers[name] !== value) return deny(ERRORS.missingHeaders, c.id);
    }
    // 3. descriptor readOnly
    const method = input.method.toUpperCase();
    if (c.readOnly && !SAFE_METHODS.has(method)) return deny(ERRORS.methodNotAllowed, c.id);
    // 4. descriptor restrictions (before authentication)
    if (c.restrictions !== undefined) {
      const r = this.restrict(c.restrictions, input, method);
      if (r !== undefined) return deny(r, c.id);
    }

    // 5. authentication
    let key: CompiledKey | undefined;
    if (isUriPublic(c, input.path)) {
      if (c.detectApiKeySooner) {
        const creds = extractCredentials(input, c.names);
        if (creds !== undefined) {
          const kr = this.keyFlow(p, c, creds, input, method, now);
          if (isPromise(kr)) return kr.then((k) => (k.ok ? this.afterAuth(c, input, k.key, now) : k.deny));
          if (!kr.ok) return kr.deny;
          key = kr.key;
        }
      }
    } else {
      const creds = extractCredentials(input, c.names);
      if (creds === undefined) return deny(ERRORS.noApiKey, c.id);
      const kr = this.keyFlow(p, c, creds, input, method, now);
      if (isPromise(kr)) return kr.then((k) => (k.ok ? this.afterAuth(c, input, k.key, now) : k.deny));
      if (!kr.ok) return kr.deny;
      key = kr.key;
    }
    return this.afterAuth(c, input, key, now);
  }

  /** Steps 6–8, after authentication. */
  private afterAuth(
    c: CompiledDescriptor,
    input: CheckInput,
    key: CompiledKey | undefined,
    now: number,
  ): Maybe<Decision> {
    if (c.jwtRef !== undefined && !this.excluded(c, input.path)) return this.jwtThenQuota(c, input, key, now);
    return this.quotaAndAllow(c, key, now, undefined, false);
  }

  /** 6. JWT verifier ref, before counting the call: a call the verifier refuses must not use up a quota. */
  private async jwtThenQuota(
    c: CompiledDescriptor,
    input: CheckInput,
    key: CompiledKey | undefined,
    now: number,
  ): Promise<Decision> {
    let mutation: HeaderMutation | undefined;
    let verified = false;
    if (c.jwtRef !== undefined) {
      if (c.jwtUnknownIds.length > 0) return deny(ERRORS.badVerifierId, c.id, key?.clientId);
      if (this.jwt === undefined) return deny(ERRORS.internal, c.id, key?.clientId);
      const out = await this.jwt.verify(c.jwtRef, input);
      if (out.kind === 'denied') {
        // Otoroshi checks quotas before the verifier: an exhausted key still gets its 429.
        if (key !== undefined && (await this.exhausted(key, now)))
          return deny(ERRORS.tooManyRequests, c.id, key.clientId);
        const d: Deny = {
          allow: false,
          reason: out.reason === 'jwt_missing' ? 'jwt_missing' : 'jwt_invalid',
          status: out.status,
          message: out.message,
          code: out.code,
          descriptorId: c.id,
        };
        if (key !== undefined) d.clientId = key.clientId;
        return d;
      }
      if (out.kind === 'passed') {
        mutation = out.mutation;
        verified = true;
      }
    }

    return this.quotaAndAllow(c, key, now, mutation, verified);
  }

  /** 7. quotas (count the call), then 8. */
  private quotaAndAllow(
    c: CompiledDescriptor,
    key: CompiledKey | undefined,
    now: number,
    mutation: HeaderMutation | undefined,
    verified: boolean,
  ): Maybe<Decision> {
    if (key === undefined) return this.allow(c, undefined, {}, mutation, verified);
    const fromStore = (q: QuotaResult): Decision => this.afterQuota(c, key, q, mutation, verified);
    const storeDown = (): Decision => {
      this.safe(() => this.hooks.onQuotaStoreError?.('fail-closed'));
      return deny(ERRORS.quotaStoreUnavailable, c.id, key.clientId);
    };
    const sync = this.syncQuota;
    let q: Maybe<QuotaResult>;
    try {
      q =
        sync !== undefined
          ? sync.consumeSync(key.clientId, key.quotas, now)
          : this.quota.consume(key.clientId, key.quotas, now);
    } catch {
      return storeDown();
    }
    if (isPromise(q)) return q.then(fromStore, storeDown);
    return fromStore(q);
  }

  private afterQuota(
    c: CompiledDescriptor,
    key: CompiledKey,
    q: QuotaResult,
    mutation: HeaderMutation | undefined,
    verified: boolean,
  ): Decision {
    let responseHeaders: Record<string, string> = {};
    if (q.degraded) this.safe(() => this.hooks.onQuotaStoreError?.('fail-open'));
    if (!q.allowed) {
      const which = q.exceeded ?? 'throttling';
      this.safe(() => this.hooks.onQuotaExceeded?.(key.clientId, which));
      return deny(ERRORS.tooManyRequests, c.id, key.clientId);
    }
    if (c.sendOtoroshiHeadersBack) {
      responseHeaders = {
        'Otoroshi-Daily-Calls-Remaining': String(q.dailyRemaining),
        'Otoroshi-Monthly-Calls-Remaining': String(q.monthlyRemaining),
      };
    }
    return this.allow(c, key, responseHeaders, mutation, verified);
  }

  /** 8. allow */
  private allow(
    c: CompiledDescriptor,
    key: CompiledKey | undefined,
    responseHeaders: Record<string, string>,
    mutation: HeaderMutation | undefined,
    verified: boolean,
  ): Decision {
    const upstreamHeaders: Record<string, string> = key !== undefined ? { 'Otoroshi-Client-Id': key.clientId } : {};
    // Envoy applies removals after sets: never remove what we set.
    const removeUpstreamHeaders =
      key !== undefined ? c.removeUpstream.filter((h) => h !== 'otoroshi-client-id') : c.removeUpstream.slice();
    if (mutation !== undefined) {
      Object.assign(upstreamHeaders, mutation.upstreamHeaders);
      for (const h of mutation.removeUpstreamHeaders) {
        const l = h.toLowerCase();
        if (!removeUpstreamHeaders.includes(l)) removeUpstreamHeaders.push(l);
      }
      Object.assign(responseHeaders, mutation.responseHeaders);
    }
    const allow: Decision = {
      allow: true,
      reason: key !== undefined ? 'apikey' : verified ? 'jwt_verifier' : 'public',
      descriptorId: c.id,
      upstreamHeaders,
      removeUpstreamHeaders,
      responseHeaders,
    };
    if (key !== undefined) allow.clientId = key.clientId;
    return allow;
  }

  private excluded(c: CompiledDescriptor, path: string): boolean {
    for (const re of c.jwtExcluded) if (re.test(path)) return true;
    return false;
  }

  private restrict(r: CompiledRestrictions, input: CheckInput, method: string): ErrorSpec | undefined {
    const domain = requestDomain(input.host) ?? input.host.toLowerCase();
    const out = checkRestrictions(r, method.toLowerCase(), domain, input.path);
    return out === 'pass' ? undefined : out === 'forbidden' ? ERRORS.restrictionForbidden : ERRORS.restrictionNotFound;
  }

  /** Quotas read without counting: is one of them exhausted? (errors → false) */
  private async exhausted(key: CompiledKey, now: number): Promise<boolean> {
    try {
      const q = await this.quota.peek(key.clientId, key.quotas, now);
      return q.dailyRemaining <= 0 || q.monthlyRemaining <= 0 || q.windowCalls >= key.quotas.throttlingQuota * 10;
    } catch {
      return false;
    }
  }

  /**
   * Otoroshi's candidate ordering with an apikey: drop candidates whose routing constraints reject the key; when
   * all are dropped keep the last one (so the key flow answers 401, not 404).
   */
  private routingFilter(p: AuthzPolicy, cands: Candidate[], input: CheckInput): Candidate[] {
    if (!p.anyConstrainedKey && !cands.some((x) => x.c.routingConstrained)) return cands;
    const kept: Candidate[] = [];
    for (const cand of cands) {
      const key = this.peekKey(p, cand.c, input);
      if (key === undefined || matchRouting(key, cand.c.constraints.routing, cand.c.routingConstrained))
        kept.push(cand);
    }
    if (kept.length > 0) return kept;
    const last = cands[cands.length - 1];
    return last !== undefined ? [last] : cands;
  }

  /** The apikey a request names (not validated), with the names of descriptor `c`. */
  private peekKey(p: AuthzPolicy, c: CompiledDescriptor, input: CheckInput): CompiledKey | undefined {
    const creds = extractCredentials(input, c.names);
    if (creds === undefined || creds.method === 'basic-empty') return undefined;
    if (creds.method === 'jwt') {
      const dec = decodeJwtUnverified(creds.token);
      const id = dec !== undefined ? jwtClientId(dec.claims) : undefined;
      return id !== undefined ? p.apikeys.get(id) : undefined;
    }
    return p.apikeys.get(creds.clientId);
  }

  private authorizedKey(p: AuthzPolicy, c: CompiledDescriptor, clientId: string): CompiledKey | undefined {
    const key = p.apikeys.get(clientId);
    if (key === undefined) return undefined;
    for (const e of c.entities) if (key.authorized.has(e)) return key;
    return undefined;
  }

  /** enabled / validUntil, on every extraction method: a disabled or expired key never passes. */
  private inactive(key: CompiledKey, now: number): ErrorSpec | undefined {
    if (!key.k.enabled) return ERRORS.badApiKeyDisabled;
    if (key.k.validUntil !== undefined && now > key.k.validUntil) return ERRORS.badApiKeyExpired;
    return undefined;
  }

  /** Per-extraction-method checks, then key restrictions and key readOnly. */
  private keyFlow(
    p: AuthzPolicy,
    c: CompiledDescriptor,
    creds: Credentials,
    input: CheckInput,
    method: string,
    now: number,
  ): Maybe<KeyResult> {
    // Only the apikey-JWT method is asynchronous (HMAC verification through jose).
    if (creds.method === 'jwt') return this.jwtKeyFlow(p, c, creds, input, method, now);
    const fail = (spec: ErrorSpec, clientId?: string): KeyResult => ({ ok: false, deny: deny(spec, c.id, clientId) });
    let key: CompiledKey | undefined;
    let routingError: ErrorSpec;
    switch (creds.method) {
      case 'basic-empty':
        return fail(ERRORS.noApiKey);
      case 'clientId': {
        key = this.authorizedKey(p, c, creds.clientId);
        if (key === undefined) return fail(ERRORS.invalidApiKey);
        if (!key.k.allowClientIdOnly) return fail(ERRORS.badApiKeyClientIdOnly, key.clientId);
        const ina = this.inactive(key, now);
        if (ina !== undefined) return fail(ina, key.clientId);
        routingError = ERRORS.routingInvalid;
        break;
      }
      case 'custom':
      case 'basic': {
        key = this.authorizedKey(p, c, creds.clientId);
        if (key === undefined) return fail(ERRORS.invalidApiKey);
        // Otoroshi `isValid`: enabled && (secret == clientSecret || rotation && secret == nextSecret).
        // Both digests are always compared (no early exit that would time the rotation branch).
        const okMain = secretMatches(creds.secret, key.secret);
        const okNext = key.nextSecret !== undefined ? secretMatches(creds.secret, key.nextSecret) : false;
        if (!okMain && !okNext) {
          this.suspicious('bad_secret', `wrong secret (${creds.method})`, input, c, key.clientId);
          return fail(ERRORS.badApiKey, key.clientId);
        }
        const ina = this.inactive(key, now);
        if (ina !== undefined) return fail(ina, key.clientId);
        routingError = ERRORS.routingBad;
        break;
      }
    }
    return this.keyChecks(c, key, routingError, input, method);
  }

  private async jwtKeyFlow(
    p: AuthzPolicy,
    c: CompiledDescriptor,
    creds: Extract<Credentials, { method: 'jwt' }>,
    input: CheckInput,
    method: string,
    now: number,
  ): Promise<KeyResult> {
    const fail = (spec: ErrorSpec, clientId?: string): KeyResult => ({ ok: false, deny: deny(spec, c.id, clientId) });
    let key: CompiledKey | undefined;
    let routingError: ErrorSpec;
    switch (creds.method) {
      case 'jwt': {
        const dec = decodeJwtUnverified(creds.token);
        const clientId = dec !== undefined ? jwtClientId(dec.claims) : undefined;
        key = clientId !== undefined ? this.authorizedKey(p, c, clientId) : undefined;
        if (dec === undefined || key === undefined) return fail(ERRORS.invalidApiKeyJwt);
        const jc = c.constraints.jwtAuth;
        const alg = dec.header['alg'];
        const hs = typeof alg === 'string' && (HS_ALGS as readonly string[]).includes(alg);
        if (!hs || !jc.secretSigned) {
          // RS*/ES* need Otoroshi certificate key pairs (not in our model): refused like unknown algs.
          this.suspicious('jwt_alg', `apikey JWT with alg ${JSON.stringify(alg)} refused`, input, c, key.clientId);
          return fail(ERRORS.invalidApiKeyJwt, key.clientId);
        }
        const opts: ApikeyJwtOptions = { nowMs: now, leewaySec: LEEWAY_SEC, allowedAlgs: HS_ALGS };
        if (jc.maxJwtLifespanSecs !== undefined) opts.maxJwtLifespanSecs = jc.maxJwtLifespanSecs;
        const xsrfHeader = input.headers['x-xsrf-token'];
        if (xsrfHeader !== undefined) opts.xsrfHeader = xsrfHeader;
        // nextSecret is not accepted for JWTs: Otoroshi verifies apikey JWTs with clientSecret only.
        const v = await this.apikeyJwt(creds.token, key.k.clientSecret, opts);
        if (!v.ok) {
          this.suspicious('bad_jwt', `apikey JWT: ${v.reason}`, input, c, key.clientId);
          return fail(ERRORS.badApiKeyJwt, key.clientId);
        }
        const xsrf = v.claims['xsrfToken'];
        if (xsrf !== undefined && input.headers['x-xsrf-token'] !== xsrf)
          return fail(ERRORS.badApiKeyJwt, key.clientId);
        if (jc.includeRequestAttributes) {
          const relativeUri = input.query.length > 0 ? `${input.path}?${input.query}` : input.path;
          if (
            v.claims['httpPath'] !== relativeUri ||
            v.claims['httpVerb'] !== input.method ||
            v.claims['httpHost'] !== input.host
          ) {
            return fail(ERRORS.badApiKeyJwt, key.clientId);
          }
        }
        const ina = this.inactive(key, now);
        if (ina !== undefined) return fail(ina, key.clientId);
        routingError = ERRORS.routingJwt;
        break;
      }
    }
    return this.keyChecks(c, key, routingError, input, method);
  }

  /** Routing constraints, key restrictions, key readOnly (every method). */
  private keyChecks(
    c: CompiledDescriptor,
    key: CompiledKey,
    routingError: ErrorSpec,
    input: CheckInput,
    method: string,
  ): KeyResult {
    const fail = (spec: ErrorSpec, clientId?: string): KeyResult => ({ ok: false, deny: deny(spec, c.id, clientId) });
    if (!matchRouting(key, c.constraints.routing, c.routingConstrained)) return fail(routingError, key.clientId);
    if (key.restrictions !== undefined) {
      const r = this.restrict(key.restrictions, input, method);
      if (r !== undefined) return fail(r, key.clientId);
    }
    if (key.k.readOnly && !SAFE_METHODS.has(method)) return fail(ERRORS.methodNotAllowed, key.clientId);
    return { ok: true, key };
  }
}
