// The policy view: Model → precompiled structures for the ext_authz hot path. Pure; every regex is
// compiled here, once. decide.ts only reads it.
import { compileIpFilter, type IpMatcher } from './ip-filter.js';
import type {
  ApiKey,
  ApiKeyConstraints,
  Descriptor,
  DescriptorJwtRef,
  JwtVerifierModel,
  Model,
  PathMatch,
  ServiceGroup,
} from '../model/types.js';
import { defaultApiKeyConstraints } from '../model/descriptor.js';
import { compileFullMatch, type Matcher } from '../model/linear-regex.js';
import { wildcardMatcher } from '../model/patterns.js';
import { compileRestrictions, type CompiledRestrictions } from './restrictions.js';
import { eachBatched, runSteps, type Steps } from '../model/steps.js';
import {
  extractionNames,
  hasRoutingConstraints,
  secretDigest,
  type ExtractionNames,
  type RoutingView,
  type SecretDigest,
} from './apikey.js';
import type { CheckInput } from './types.js';

export interface CompiledPath {
  value: string;
  type: PathMatch['type'];
}

export interface CompiledDescriptor {
  readonly d: Descriptor;
  readonly id: string;
  readonly enabled: boolean;
  readonly exactHosts: readonly string[];
  readonly wildcardHosts: readonly Matcher[];
  readonly paths: readonly CompiledPath[];
  readonly matchingHeaders: readonly { name: string; re: Matcher }[];
  readonly headersVerification: readonly [string, string][];
  readonly readOnly: boolean;
  readonly sendOtoroshiHeadersBack: boolean;
  readonly detectApiKeySooner: boolean;
  readonly publicRes: readonly Matcher[];
  readonly privateRes: readonly Matcher[];
  readonly constraints: ApiKeyConstraints;
  readonly names: ExtractionNames;
  readonly routingConstrained: boolean;
  /** `ipFiltering` (enforced here only for callers that are not our generated routes). */
  readonly ipAllowed: IpMatcher | undefined;
  readonly restrictions: CompiledRestrictions | undefined;
  /** Active verifier ref (enabled and with ids), else undefined. */
  readonly jwtRef: DescriptorJwtRef | undefined;
  readonly jwtExcluded: readonly Matcher[];
  /** Verifier ids of the ref that the policy does not know (→ 500 error.bad.globaljwtverifier.id). */
  readonly jwtUnknownIds: readonly string[];
  /** `service_<id>` and `group_<g>`: an apikey is authorized when it has one of these. */
  readonly entities: readonly string[];
  /** Headers removed from every upstream request (secret-bearing credential headers). */
  readonly removeUpstream: readonly string[];
}

export interface CompiledKey extends RoutingView {
  readonly k: ApiKey;
  readonly clientId: string;
  readonly authorized: ReadonlySet<string>;
  readonly secret: SecretDigest;
  /** Accepted too while rotation is enabled. */
  readonly nextSecret: SecretDigest | undefined;
  readonly restrictions: CompiledRestrictions | undefined;
  readonly quotas: { throttlingQuota: number; dailyQuota: number; monthlyQuota: number };
}

export interface AuthzPolicy {
  readonly descriptorsById: ReadonlyMap<string, CompiledDescriptor>;
  /** Lower-case exact host → descriptors (enabled only), in model order. */
  readonly byHost: ReadonlyMap<string, readonly CompiledDescriptor[]>;
  /** Enabled descriptors with at least one wildcard host. */
  readonly wildcard: readonly CompiledDescriptor[];
  /** Model order index, to merge exact and wildcard candidates deterministically. */
  readonly order: ReadonlyMap<CompiledDescriptor, number>;
  readonly apikeys: ReadonlyMap<string, CompiledKey>;
  readonly groups: ReadonlyMap<string, ServiceGroup>;
  readonly verifiers: ReadonlyMap<string, JwtVerifierModel>;
  /** Some key has `constrainedServicesOnly`: routing filtering may apply to any multi-match. */
  readonly anyConstrainedKey: boolean;
  /** GlobalConfig maintenance and IP filtering (for callers that are not our generated routes). */
  readonly globalMaintenance: boolean;
  readonly globalIpAllowed: IpMatcher | undefined;
}

function compileDescriptor(d: Descriptor, verifiers: ReadonlyMap<string, JwtVerifierModel>): CompiledDescriptor {
  const exactHosts: string[] = [];
  const wildcardHosts: Matcher[] = [];
  for (const h of d.hosts) {
    if (h.includes('*')) wildcardHosts.push(wildcardMatcher(h));
    else exactHosts.push(h.toLowerCase());
  }
  const constraints = d.apiKeyConstraints ?? defaultApiKeyConstraints();
  const ref = d.jwtVerifier;
  const active = ref !== undefined && ref.enabled && ref.ids.length > 0 ? ref : undefined;
  const names = extractionNames(constraints);
  const removeUpstream = [
    ...new Set([
      names.secretHeader,
      names.basicHeader,
      'otoroshi-client-secret',
      'otoroshi-authorization',
      'otoroshi-client-id',
    ]),
  ];
  return {
    d,
    id: d.id,
    enabled: d.enabled,
    exactHosts,
    wildcardHosts,
    paths: d.paths.map((p) => ({ value: p.value, type: p.type })),
    matchingHeaders: d.matchingHeaders.map((h) => ({
      name: h.name.toLowerCase(),
      re: compileFullMatch(h.regex, 'never'),
    })),
    headersVerification: Object.entries(d.headersVerification).map(
      ([k, v]) => [k.toLowerCase(), v] as [string, string],
    ),
    readOnly: d.readOnly,
    sendOtoroshiHeadersBack: d.sendOtoroshiHeadersBack,
    detectApiKeySooner: d.detectApiKeySooner,
    // public: a broken pattern never matches; private: a broken pattern always matches (fail closed).
    publicRes: d.publicPatterns.map((p) => compileFullMatch(p, 'never')),
    privateRes: d.privatePatterns.map((p) => compileFullMatch(p, 'always')),
    constraints,
    names,
    routingConstrained: hasRoutingConstraints(constraints.routing),
    ipAllowed: compileIpFilter(d.ipFiltering),
    restrictions: compileRestrictions(d.restrictions),
    jwtRef: active,
    jwtExcluded: active === undefined ? [] : active.excludedPatterns.map((p) => compileFullMatch(p, 'never')),
    jwtUnknownIds: active === undefined ? [] : active.ids.filter((id) => !verifiers.has(id)),
    entities: [`service_${d.id}`, ...d.groups.map((g) => `group_${g}`)],
    removeUpstream,
  };
}

function compileKey(k: ApiKey): CompiledKey {
  const rot = k.rotation;
  return {
    k,
    clientId: k.clientId,
    authorized: new Set(k.authorizedEntities),
    secret: secretDigest(k.clientSecret),
    nextSecret:
      rot !== undefined && rot.enabled && rot.nextSecret !== undefined ? secretDigest(rot.nextSecret) : undefined,
    restrictions: compileRestrictions(k.restrictions),
    quotas: { throttlingQuota: k.throttlingQuota, dailyQuota: k.dailyQuota, monthlyQuota: k.monthlyQuota },
    tags: k.tags,
    metadata: k.metadata,
    // Not a field of ApiKey (types.ts): read from the untranslated spec.
    constrainedServicesOnly: k.spec['constrainedServicesOnly'] === true,
  };
}

/** Build the hot-path view of a model. Pure. */
export function buildPolicy(model: Model): AuthzPolicy {
  return runSteps(buildPolicySteps(model));
}

/** buildPolicy, pausing between batches of descriptors and keys (the server's rebuilds). */
export function* buildPolicySteps(model: Model): Steps<AuthzPolicy> {
  const verifiers = new Map<string, JwtVerifierModel>();
  for (const v of model.jwtVerifiers ?? []) verifiers.set(v.id, v);
  const descriptorsById = new Map<string, CompiledDescriptor>();
  const byHost = new Map<string, CompiledDescriptor[]>();
  const wildcard: CompiledDescriptor[] = [];
  const order = new Map<CompiledDescriptor, number>();
  let i = 0;
  yield* eachBatched(model.descriptors, (d) => {
    const c = compileDescriptor(d, verifiers);
    descriptorsById.set(d.id, c);
    order.set(c, i++);
    if (!d.enabled) return;
    for (const h of c.exactHosts) {
      const l = byHost.get(h);
      if (l === undefined) byHost.set(h, [c]);
      else if (!l.includes(c)) l.push(c);
    }
    if (c.wildcardHosts.length > 0) wildcard.push(c);
  });
  const apikeys = new Map<string, CompiledKey>();
  let anyConstrainedKey = false;
  yield* eachBatched(model.apikeys, (k) => {
    const c = compileKey(k);
    apikeys.set(k.clientId, c);
    if (c.constrainedServicesOnly) anyConstrainedKey = true;
  });
  const groups = new Map<string, ServiceGroup>();
  for (const g of model.groups) groups.set(g.id, g);
  const g = model.globalConfig;
  return {
    descriptorsById,
    byHost,
    wildcard,
    order,
    apikeys,
    groups,
    verifiers,
    anyConstrainedKey,
    globalMaintenance: g?.maintenanceMode ?? false,
    globalIpAllowed: compileIpFilter(g?.ipFiltering),
  };
}

// ------------------------------------------------------------------ matching

/** Request host without port, lower-case; undefined when it cannot be parsed. */
export function requestDomain(host: string): string | undefined {
  let h = host;
  if (h.startsWith('[')) {
    const end = h.indexOf(']');
    if (end < 0) return undefined;
    h = h.slice(0, end + 1);
  } else {
    const c = h.indexOf(':');
    if (c >= 0) {
      if (h.indexOf(':', c + 1) >= 0) return undefined;
      h = h.slice(0, c);
    }
  }
  if (h.length === 0 || h.length > 255) return undefined;
  return h.toLowerCase();
}

/** Length of the matched path prefix, -1 when the descriptor has no paths, undefined when no path matches. */
export function pathMatchLength(c: CompiledDescriptor, path: string, relativeUri: string): number | undefined {
  if (c.paths.length === 0) return -1;
  let best: number | undefined;
  for (const p of c.paths) {
    let ok: boolean;
    if (p.type === 'PlainPrefix') ok = relativeUri.startsWith(p.value);
    else if (p.type === 'Exact') ok = path === p.value;
    else {
      // Kubernetes Prefix: element-wise on `/`-separated segments.
      const v = p.value.length > 1 && p.value.endsWith('/') ? p.value.slice(0, -1) : p.value;
      ok = v === '/' || path === v || path.startsWith(`${v}/`);
    }
    if (ok && (best === undefined || p.value.length > best)) best = p.value.length;
  }
  return best;
}

function headersMatch(c: CompiledDescriptor, headers: Readonly<Record<string, string>>): boolean {
  for (const m of c.matchingHeaders) {
    const v = headers[m.name];
    if (v === undefined || !m.re.test(v)) return false;
  }
  return true;
}

export interface Candidate {
  c: CompiledDescriptor;
  len: number;
}

/**
 * Enabled descriptors matching host/headers/path, ordered as Otoroshi does: with paths first (longest matched
 * prefix first), then without paths; ties in model order.
 */
export function matchCandidates(p: AuthzPolicy, domain: string, input: CheckInput, relativeUri: string): Candidate[] {
  const out: Candidate[] = [];
  const consider = (c: CompiledDescriptor): void => {
    if (!headersMatch(c, input.headers)) return;
    const len = pathMatchLength(c, input.path, relativeUri);
    if (len === undefined) return;
    for (const o of out) if (o.c === c) return;
    out.push({ c, len });
  };
  const exact = p.byHost.get(domain);
  if (exact !== undefined) for (const c of exact) consider(c);
  for (const c of p.wildcard) {
    for (const re of c.wildcardHosts) {
      if (re.test(domain)) {
        consider(c);
        break;
      }
    }
  }
  if (out.length > 1) {
    out.sort((a, b) => {
      if (a.len !== b.len) {
        if (a.len < 0) return 1;
        if (b.len < 0) return -1;
        return b.len - a.len;
      }
      return (p.order.get(a.c) ?? 0) - (p.order.get(b.c) ?? 0);
    });
  }
  return out;
}

/** Otoroshi `isUriPublic`: no private pattern matches AND some public pattern matches (path without query). */
export function isUriPublic(c: CompiledDescriptor, path: string): boolean {
  for (const re of c.privateRes) if (re.test(path)) return false;
  for (const re of c.publicRes) if (re.test(path)) return true;
  return false;
}
