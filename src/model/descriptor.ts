// ServiceDescriptor CRD → Descriptor (docs/decisions.md: "Kubernetes is the source of truth", "References", "Service
// targets", "Defaults by source", "enforceSecureCommunication", "Retries and timeouts").
import type {
  ApiKeyConstraints,
  ClientConfig,
  ConfigError,
  CustomTimeout,
  Descriptor,
  DescriptorJwtRef,
  HeaderMatch,
  JwtVerifierModel,
  LoadBalancing,
  PathMatch,
  RestrictionPath,
  Restrictions,
  StoredObject,
} from './types.js';
import { crdEntityId, namespaceOf } from './ids.js';
import { asObject, bool, isObject, num, str, strArray, strMap, type JsonObject, type Problems } from './problems.js';
import { javaToRe2, linearRegexProblem } from './linear-regex.js';
import { re2Problem } from './regex.js';
import { resolveDescriptorTargets, type KubeIndex } from './targets.js';
import { LOAD_BALANCING_TYPES } from './schemas.js';
import { FEATURE_FIELDS, applyFeatures, dropReservedHeaders } from './edge-features.js';
import { meshHosts } from './mesh-hosts.js';

export interface ModelSettings {
  /** Group of Ingress-generated descriptors (Otoroshi's built-in group; always resolvable). */
  defaultGroup: string;
  /** Ingress classes we serve; `*` wildcards allowed. */
  ingressClasses: string[];
  clusterDomain: string;
  meshDomain: string;
  /** Otoroshi's `coreDnsEnv`: an extra label in mesh hosts (`<name>.<ns>.<env>.<meshDomain>`). */
  coreDnsEnv?: string;
  /**
   * Append Otoroshi's mesh hosts (src/model/mesh-hosts.ts) to CRD descriptors, as Otoroshi does for
   * every ServiceDescriptor CR. The server turns it on for the Kubernetes source (--mesh-hosts auto);
   * in file mode the names resolve nowhere, so it stays off unless --mesh-hosts on (docs/mesh.md).
   * `enabledAdditionalHosts: false` in a spec still wins when this is true.
   */
  enableMeshHosts: boolean;
  /** Issue and serve the mesh certificate (src/model/mesh-certificate.ts) when descriptors have mesh hosts. */
  meshCertificate: boolean;
  /** Clock for time-dependent checks (expired certificates). Pure: never read the clock ourselves. */
  now: number;
  /**
   * Mixed into apikey clientId/clientSecret derived for specs that have none (they are derived
   * deterministically, not random, because buildModel is pure). Without a seed, anybody who knows
   * the namespace/name/uid can compute the secret: the lead should pass a persisted random value.
   */
  secretSeed: string;
}

export const DEFAULT_SETTINGS: ModelSettings = {
  defaultGroup: 'default',
  ingressClasses: ['otoroshi'],
  clusterDomain: 'cluster.local',
  meshDomain: 'otoroshi.mesh',
  enableMeshHosts: false,
  meshCertificate: false,
  now: 0,
  secretSeed: '',
};

export const DEFAULT_CLIENT_CONFIG: Readonly<ClientConfig> = {
  useCircuitBreaker: true,
  retries: 1,
  maxErrors: 20,
  retryInitialDelay: 50,
  backoffFactor: 2,
  connectionTimeout: 10000,
  idleTimeout: 60000,
  callAndStreamTimeout: 120000,
  callTimeout: 30000,
  globalTimeout: 30000,
  sampleInterval: 2000,
  customTimeouts: [],
};

/** Resolves references to other entities; returns the target id or undefined. */
export interface RefResolver {
  group(ref: string, ns: string): string | undefined;
  descriptor(ref: string, ns: string): string | undefined;
  /** JwtVerifier CRDs (docs/decisions.md: "References"). Optional: without it, every id is unresolved. */
  jwtVerifier?(ref: string, ns: string): string | undefined;
}

/** Where buildCrdDescriptor puts a descriptor's inline (`local`) JwtVerifier. */
export interface DescriptorExtras {
  localVerifier?: JwtVerifierModel;
}

/** Builds a descriptor's inline verifier (src/model/jwt-verifier.ts `localJwtVerifier`). */
export type LocalVerifierBuilder = (
  descriptorId: string,
  namespace: string,
  sourceKey: string,
  spec: unknown,
  fieldPrefix: string,
) => { verifier?: JwtVerifierModel; errors: ConfigError[] };

export function clientConfigFrom(spec: JsonObject, field: string, p: Problems): ClientConfig {
  const cc = asObject(spec['clientConfig']);
  const n = (k: keyof ClientConfig): number => num(cc, k) ?? (DEFAULT_CLIENT_CONFIG[k] as number);
  const out: ClientConfig = {
    useCircuitBreaker: bool(cc, 'useCircuitBreaker', DEFAULT_CLIENT_CONFIG.useCircuitBreaker),
    retries: n('retries'),
    maxErrors: n('maxErrors'),
    retryInitialDelay: n('retryInitialDelay'),
    backoffFactor: n('backoffFactor'),
    connectionTimeout: n('connectionTimeout'),
    idleTimeout: n('idleTimeout'),
    callAndStreamTimeout: n('callAndStreamTimeout'),
    callTimeout: n('callTimeout'),
    globalTimeout: n('globalTimeout'),
    sampleInterval: n('sampleInterval'),
    customTimeouts: [],
  };
  if (out.retries < 1) {
    p.warn(
      'OXDS_INVALID_FIELD',
      `retries is the total number of attempts; ${out.retries} means 1`,
      `${field}.clientConfig.retries`,
    );
    out.retries = 1;
  }
  const cts = Array.isArray(cc['customTimeouts']) ? cc['customTimeouts'] : [];
  cts.forEach((raw, i) => {
    const ct = asObject(raw);
    const path = str(ct, 'path') ?? '/*';
    const t = (k: keyof Omit<CustomTimeout, 'path'>): number => num(ct, k) ?? (DEFAULT_CLIENT_CONFIG[k] as number);
    const reason = re2Problem(path);
    if (reason !== null) {
      p.error(
        'OXDS_INVALID_REGEX',
        `invalid RE2 regex ${JSON.stringify(path)}: ${reason}`,
        `${field}.clientConfig.customTimeouts[${i}].path`,
      );
      return;
    }
    // Our reader reads idleTimeout from `idleTimeout` (Otoroshi's reader bug is not reproduced).
    out.customTimeouts.push({
      path,
      connectionTimeout: t('connectionTimeout'),
      idleTimeout: t('idleTimeout'),
      callAndStreamTimeout: t('callAndStreamTimeout'),
      callTimeout: t('callTimeout'),
      globalTimeout: t('globalTimeout'),
    });
  });
  return out;
}

export function checkPatterns(patterns: string[], field: string, p: Problems): string[] {
  patterns.forEach((pat, i) => {
    // ext_authz evaluates these on the linear-time engine, Java spellings rewritten (linear-regex.ts).
    const reason = re2Problem(javaToRe2(pat)) ?? linearRegexProblem(pat);
    if (reason !== null)
      p.error('OXDS_INVALID_REGEX', `invalid RE2 regex ${JSON.stringify(pat)}: ${reason}`, `${field}[${i}]`);
  });
  return patterns;
}

export function headerMatches(map: Record<string, string>, field: string, p: Problems): HeaderMatch[] {
  const out: HeaderMatch[] = [];
  for (const [name, regex] of Object.entries(map)) {
    const reason = re2Problem(regex);
    if (reason !== null) {
      p.error(
        'OXDS_INVALID_REGEX',
        `invalid RE2 regex ${JSON.stringify(regex)} for header ${name}: ${reason}`,
        `${field}.${name}`,
      );
      continue;
    }
    out.push({ name: name.toLowerCase(), regex });
  }
  return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

export function loadBalancingOf(v: unknown, field: string, p: Problems): LoadBalancing {
  if (v === undefined || v === null || v === '') return 'RoundRobin';
  if (typeof v === 'string' && (LOAD_BALANCING_TYPES as readonly string[]).includes(v)) return v as LoadBalancing;
  p.warn('OXDS_INVALID_FIELD', `unknown load-balancing type ${JSON.stringify(v)}: RoundRobin is used`, field);
  return 'RoundRobin';
}

/** Hosts must be non-empty names (letters, digits, `-`, `.`, `_`, `*` wildcards); no port/scheme/path. */
export function checkHost(h: string): boolean {
  return /^[A-Za-z0-9*_](?:[A-Za-z0-9*_.-]*[A-Za-z0-9*_])?$/.test(h) || h === '*';
}

/** Fields of a ServiceDescriptor spec that buildModel translates (the rest is kept in `spec`). */
const TRANSLATED = new Set([
  'id',
  'name',
  'enabled',
  'groups',
  'groupId',
  'hosts',
  'paths',
  'matchingRoot',
  'root',
  'stripPath',
  'matchingHeaders',
  'targets',
  'targetsFrom',
  'targetsLoadBalancing',
  'forceHttps',
  'maintenanceMode',
  'buildMode',
  'overrideHost',
  'allowHttp10',
  'readOnly',
  'xForwardedHeaders',
  'sendOtoroshiHeadersBack',
  'enforceSecureCommunication',
  'detectApiKeySooner',
  'additionalHeaders',
  'additionalHeadersOut',
  'missingOnlyHeadersIn',
  'missingOnlyHeadersOut',
  'removeHeadersIn',
  'removeHeadersOut',
  'headersVerification',
  'publicPatterns',
  'privatePatterns',
  'clientConfig',
  'enabledAdditionalHosts',
  'env',
  'domain',
  'subdomain',
  'handleLegacyDomain',
  'apiKeyConstraints',
  'restrictions',
  'jwtVerifier',
  ...FEATURE_FIELDS,
]);

export function untranslated(spec: JsonObject, translated: ReadonlySet<string>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(spec).sort()) if (!translated.has(k)) out[k] = spec[k];
  return out;
}

/** Build a Descriptor from a (schema-valid) ServiceDescriptor CR. Adds problems to `p`. */
function descriptorGroups(spec: JsonObject, ns: string, refs: RefResolver, p: Problems): string[] {
  // groups: legacy groupId ++ groups, de-duplicated, resolved (docs/decisions.md: "References"). Unresolved: warning,
  // the raw value is kept (it may be Otoroshi's built-in `default` group or be created later).
  const rawGroups = [
    ...(str(spec, 'groupId') !== undefined ? [str(spec, 'groupId') as string] : []),
    ...strArray(spec, 'groups'),
  ];
  const groups: string[] = [];
  rawGroups.forEach((g, i) => {
    const resolved = refs.group(g, ns);
    if (resolved === undefined) {
      const field =
        spec['groupId'] === g && i === 0 ? 'spec.groupId' : `spec.groups[${strArray(spec, 'groups').indexOf(g)}]`;
      p.warn(
        'OXDS_UNRESOLVED_REFERENCE',
        `group ${JSON.stringify(g)} not found (by otoroshi.io/id, name in ${ns}, or ns/name); kept as a raw group id`,
        field,
      );
    }
    const v = resolved ?? g;
    if (!groups.includes(v)) groups.push(v);
  });
  return groups;
}

function descriptorHosts(obj: StoredObject['object'], spec: JsonObject, s: ModelSettings, p: Problems): string[] {
  // hosts (+ legacy toHost when domain & subdomain are written, + mesh hosts when enabled)
  const hosts: string[] = [];
  const addHost = (h: string): void => {
    if (!hosts.includes(h)) hosts.push(h);
  };
  strArray(spec, 'hosts').forEach((h, i) => {
    if (!checkHost(h))
      p.error(
        'OXDS_INVALID_FIELD',
        `invalid host ${JSON.stringify(h)} (a host name, optionally with * wildcards; no scheme, port or path)`,
        `spec.hosts[${i}]`,
      );
    else addHost(h);
  });
  const domain = str(spec, 'domain');
  const subdomain = str(spec, 'subdomain');
  if (
    bool(spec, 'handleLegacyDomain', true) &&
    domain !== undefined &&
    domain !== '' &&
    subdomain !== undefined &&
    subdomain !== ''
  ) {
    const env = str(spec, 'env') ?? 'prod';
    addHost(env === 'prod' ? `${subdomain}.${domain}` : `${subdomain}.${env}.${domain}`);
  }
  if (s.enableMeshHosts && bool(spec, 'enabledAdditionalHosts', true)) meshHosts(obj.metadata, s).forEach(addHost);
  if (hosts.length === 0) p.warn('OXDS_MISSING_FIELD', 'no hosts: this descriptor matches no request', 'spec.hosts');
  return hosts;
}

function descriptorPaths(spec: JsonObject, p: Problems): { paths: PathMatch[]; root: string } {
  // paths
  const paths: PathMatch[] = [];
  const addPath = (v: string, field: string): void => {
    if (!v.startsWith('/')) {
      p.error('OXDS_INVALID_FIELD', `path ${JSON.stringify(v)} must start with /`, field);
      return;
    }
    if (!paths.some((x) => x.value === v)) paths.push({ value: v, type: 'PlainPrefix' });
  };
  strArray(spec, 'paths').forEach((v, i) => addPath(v, `spec.paths[${i}]`));
  const matchingRoot = str(spec, 'matchingRoot');
  if (matchingRoot !== undefined && matchingRoot !== '') addPath(matchingRoot, 'spec.matchingRoot');
  const root = str(spec, 'root') ?? '/';
  if (!root.startsWith('/'))
    p.error('OXDS_INVALID_FIELD', `root ${JSON.stringify(root)} must start with /`, 'spec.root');
  return { paths, root };
}

export function buildCrdDescriptor(
  so: StoredObject,
  s: ModelSettings,
  idx: KubeIndex,
  refs: RefResolver,
  p: Problems,
  extras?: DescriptorExtras,
  localVerifier?: LocalVerifierBuilder,
): Descriptor | undefined {
  const obj = so.object;
  const spec = asObject(obj.spec);
  const ns = namespaceOf(obj);
  const name = obj.metadata.name;
  const id = crdEntityId(obj);

  const groups = descriptorGroups(spec, ns, refs, p);

  const hosts = descriptorHosts(obj, spec, s, p);

  const { paths, root } = descriptorPaths(spec, p);

  // targets
  const t = resolveDescriptorTargets(spec, ns, idx);
  p.addItems('warning', t.warnings);
  p.addItems('notice', t.notices);
  p.addItems(t.targets.length > 0 ? 'warning' : 'error', t.dropped);
  // (when every target failed, the failures above are already errors)
  if (t.targets.length === 0 && t.dropped.length === 0)
    p.error('OXDS_MISSING_FIELD', 'no usable targets', 'spec.targets');

  const d: Descriptor = {
    id,
    name: str(spec, 'name') ?? name,
    sourceKey: so.key,
    sourceKind: 'ServiceDescriptor',
    namespace: ns,
    origin: so.origin,
    enabled: bool(spec, 'enabled', true),
    groups,
    hosts,
    paths,
    root,
    stripPath: bool(spec, 'stripPath', true),
    matchingHeaders: headerMatches(strMap(spec, 'matchingHeaders'), 'spec.matchingHeaders', p),
    targets: t.targets,
    loadBalancing: loadBalancingOf(asObject(spec['targetsLoadBalancing'])['type'], 'spec.targetsLoadBalancing.type', p),
    forceHttps: bool(spec, 'forceHttps', true),
    maintenanceMode: bool(spec, 'maintenanceMode', false),
    buildMode: bool(spec, 'buildMode', false),
    overrideHost: bool(spec, 'overrideHost', true),
    allowHttp10: bool(spec, 'allowHttp10', true),
    readOnly: bool(spec, 'readOnly', false),
    xForwardedHeaders: bool(spec, 'xForwardedHeaders', false),
    sendOtoroshiHeadersBack: bool(spec, 'sendOtoroshiHeadersBack', true),
    enforceSecureCommunication: bool(spec, 'enforceSecureCommunication', false),
    detectApiKeySooner: bool(spec, 'detectApiKeySooner', false),
    additionalHeaders: strMap(spec, 'additionalHeaders'),
    additionalHeadersOut: strMap(spec, 'additionalHeadersOut'),
    missingOnlyHeadersIn: strMap(spec, 'missingOnlyHeadersIn'),
    missingOnlyHeadersOut: strMap(spec, 'missingOnlyHeadersOut'),
    removeHeadersIn: strArray(spec, 'removeHeadersIn'),
    removeHeadersOut: strArray(spec, 'removeHeadersOut'),
    headersVerification: strMap(spec, 'headersVerification'),
    publicPatterns: checkPatterns(strArray(spec, 'publicPatterns'), 'spec.publicPatterns', p),
    privatePatterns: checkPatterns(strArray(spec, 'privatePatterns'), 'spec.privatePatterns', p),
    clientConfig: clientConfigFrom(spec, 'spec', p),
    apiKeyConstraints: apiKeyConstraintsFrom(spec['apiKeyConstraints'], 'spec.apiKeyConstraints', p),
    restrictions: restrictionsFrom(spec['restrictions'], 'spec.restrictions', p),
    jwtVerifier: jwtRefFrom(spec['jwtVerifier'], id, ns, so.key, refs, p, extras, localVerifier),
    spec: untranslated(spec, TRANSLATED),
  };
  if (obj.metadata.creationTimestamp !== undefined) d.createdAt = obj.metadata.creationTimestamp;
  applyFeatures(d, spec, ns, idx, p);
  dropReservedHeaders(d, p);
  return p.hasErrors ? undefined : d;
}
// ------------------------------------------------------------------ ext_authz policy fields

/** Otoroshi's defaults (a fresh object each call: callers may mutate). */
export function defaultApiKeyConstraints(): ApiKeyConstraints {
  return {
    basicAuth: { enabled: true },
    customHeadersAuth: { enabled: true },
    clientIdAuth: { enabled: true },
    jwtAuth: { enabled: true, secretSigned: true, keyPairSigned: true, includeRequestAttributes: false },
    routing: {
      noneTagIn: [],
      oneTagIn: [],
      allTagsIn: [],
      noneMetaIn: {},
      oneMetaIn: {},
      allMetaIn: {},
      noneMetaKeysIn: [],
      oneMetaKeyIn: [],
      allMetaKeysIn: [],
    },
  };
}

const CONSTRAINT_BLOCKS = ['basicAuth', 'customHeadersAuth', 'clientIdAuth', 'jwtAuth', 'routing'] as const;

/** A header/query/cookie name: a non-empty string, else undefined (= the global default name). */
function nameOf(o: JsonObject, k: string): string | undefined {
  const v = str(o, k);
  return v !== undefined && v.trim() !== '' ? v.trim() : undefined;
}

function setName<T extends object, K extends keyof T>(o: T, k: K, v: T[K] | undefined): void {
  if (v !== undefined) o[k] = v;
}

/**
 * `apiKeyConstraints`. Otoroshi's reader needs all five sub-objects and silently falls back to
 * the defaults for the WHOLE block when one is missing (a partial block only worked through the
 * merge with a stored entity). Kubernetes is our single source of truth (docs/decisions.md: "Kubernetes is the source
 * of truth"), so that rule
 * would silently drop e.g. `jwtAuth: {enabled: false}`. Our rule: every missing sub-object / field
 * takes its own default, and a warning says the block is partial (Otoroshi would ignore it).
 */
export function apiKeyConstraintsFrom(v: unknown, field: string, p: Problems): ApiKeyConstraints {
  const out = defaultApiKeyConstraints();
  if (v === undefined || v === null) return out;
  if (!isObject(v)) {
    p.error('OXDS_INVALID_FIELD', 'apiKeyConstraints must be an object', field);
    return out;
  }
  const missing = CONSTRAINT_BLOCKS.filter((k) => v[k] === undefined || v[k] === null);
  if (missing.length > 0 && missing.length < CONSTRAINT_BLOCKS.length) {
    p.warn(
      'OXDS_INVALID_FIELD',
      `partial apiKeyConstraints (missing ${missing.join(', ')}): Otoroshi would ignore the whole block; here the ` +
        `missing parts take their defaults`,
      field,
    );
  }
  const b = asObject(v['basicAuth']);
  out.basicAuth = { enabled: bool(b, 'enabled', true) };
  setName(out.basicAuth, 'headerName', nameOf(b, 'headerName'));
  setName(out.basicAuth, 'queryName', nameOf(b, 'queryName'));
  const c = asObject(v['customHeadersAuth']);
  out.customHeadersAuth = { enabled: bool(c, 'enabled', true) };
  setName(out.customHeadersAuth, 'clientIdHeaderName', nameOf(c, 'clientIdHeaderName'));
  setName(out.customHeadersAuth, 'clientSecretHeaderName', nameOf(c, 'clientSecretHeaderName'));
  const ci = asObject(v['clientIdAuth']);
  out.clientIdAuth = { enabled: bool(ci, 'enabled', true) };
  setName(out.clientIdAuth, 'headerName', nameOf(ci, 'headerName'));
  setName(out.clientIdAuth, 'queryName', nameOf(ci, 'queryName'));
  const j = asObject(v['jwtAuth']);
  out.jwtAuth = {
    enabled: bool(j, 'enabled', true),
    secretSigned: bool(j, 'secretSigned', true),
    keyPairSigned: bool(j, 'keyPairSigned', true),
    includeRequestAttributes: bool(j, 'includeRequestAttributes', false),
  };
  const max = num(j, 'maxJwtLifespanSecs');
  if (max !== undefined) out.jwtAuth.maxJwtLifespanSecs = max;
  setName(out.jwtAuth, 'headerName', nameOf(j, 'headerName'));
  setName(out.jwtAuth, 'queryName', nameOf(j, 'queryName'));
  setName(out.jwtAuth, 'cookieName', nameOf(j, 'cookieName'));
  const r = asObject(v['routing']);
  out.routing = {
    noneTagIn: strArray(r, 'noneTagIn'),
    oneTagIn: strArray(r, 'oneTagIn'),
    allTagsIn: strArray(r, 'allTagsIn'),
    noneMetaIn: strMap(r, 'noneMetaIn'),
    oneMetaIn: strMap(r, 'oneMetaIn'),
    allMetaIn: strMap(r, 'allMetaIn'),
    noneMetaKeysIn: strArray(r, 'noneMetaKeysIn'),
    oneMetaKeyIn: strArray(r, 'oneMetaKeyIn'),
    allMetaKeysIn: strArray(r, 'allMetaKeysIn'),
  };
  return out;
}

export function defaultRestrictions(): Restrictions {
  return { enabled: false, allowLast: true, allowed: [], forbidden: [], notFound: [] };
}

/**
 * `restrictions` (descriptor or apikey): `{enabled false, allowLast true, allowed, forbidden,
 * notFound: [{method, path}]}`. Otoroshi drops entries that do not parse; we drop them too, with a
 * warning. Paths are Java regexes (full match): an invalid one is an error, since a dropped
 * `forbidden` entry would open what it was meant to close.
 */
export function restrictionsFrom(v: unknown, field: string, p: Problems): Restrictions {
  const out = defaultRestrictions();
  if (v === undefined || v === null) return out;
  if (!isObject(v)) {
    p.error('OXDS_INVALID_FIELD', 'restrictions must be an object', field);
    return out;
  }
  out.enabled = bool(v, 'enabled', false);
  out.allowLast = bool(v, 'allowLast', true);
  for (const list of ['allowed', 'forbidden', 'notFound'] as const) {
    const raw = v[list];
    if (raw === undefined || raw === null) continue;
    if (!Array.isArray(raw)) {
      p.error('OXDS_INVALID_FIELD', `${list} must be an array of {method, path}`, `${field}.${list}`);
      continue;
    }
    raw.forEach((e, i) => {
      const f = `${field}.${list}[${i}]`;
      const o = asObject(e);
      const method = str(o, 'method');
      const path = str(o, 'path');
      if (method === undefined || path === undefined) {
        p.warn(
          'OXDS_INVALID_FIELD',
          'a restriction needs a string `method` and `path`: entry ignored (as Otoroshi does)',
          f,
        );
        return;
      }
      const reason = re2Problem(javaToRe2(path)) ?? linearRegexProblem(path);
      if (reason !== null) {
        p.error('OXDS_INVALID_REGEX', `invalid regex ${JSON.stringify(path)}: ${reason}`, `${f}.path`);
        return;
      }
      const rp: RestrictionPath = { method: method.trim(), path };
      out[list].push(rp);
    });
  }
  return out;
}

/**
 * `jwtVerifier`. `ref` (also when `type` is absent): `{ids (or legacy id), enabled false,
 * excludedPatterns}`, ids resolved like every reference (docs/decisions.md: "References"). An unresolved id of an
 * ENABLED ref is an error on the descriptor (fail closed: left out rather than served without its
 * verifier); of a disabled ref, a warning. `local` / `global` (inline): built by `localVerifier` with
 * id `local:<descriptorId>`; the ref points at it (`enabled` defaults to false for `local`, as
 * Otoroshi's reader does, true for `global`).
 */
export function jwtRefFrom(
  v: unknown,
  descriptorId: string,
  ns: string,
  sourceKey: string,
  refs: RefResolver,
  p: Problems,
  extras?: DescriptorExtras,
  localVerifier?: LocalVerifierBuilder,
): DescriptorJwtRef {
  const off: DescriptorJwtRef = { enabled: false, ids: [], excludedPatterns: [] };
  if (v === undefined || v === null) return off;
  if (!isObject(v)) {
    p.error('OXDS_INVALID_FIELD', 'jwtVerifier must be an object', 'spec.jwtVerifier');
    return off;
  }
  const type = str(v, 'type') ?? 'ref';
  const excludedPatterns = checkPatterns(strArray(v, 'excludedPatterns'), 'spec.jwtVerifier.excludedPatterns', p);
  if (type === 'local' || type === 'global') {
    const enabled = bool(v, 'enabled', type === 'global');
    if (localVerifier === undefined) {
      if (enabled)
        p.error('OXDS_INVALID_FIELD', `inline (${type}) jwtVerifier is not supported here`, 'spec.jwtVerifier');
      return off;
    }
    const built = localVerifier(descriptorId, ns, sourceKey, v, 'spec.jwtVerifier');
    // A disabled inline verifier that does not parse only warns (it is never used).
    for (const e of built.errors) p.add(enabled ? e.severity : 'warning', e.code, e.message, e.field);
    if (built.verifier === undefined) {
      if (enabled && !built.errors.some((e) => e.severity === 'error'))
        p.error('OXDS_INVALID_FIELD', 'invalid inline jwtVerifier', 'spec.jwtVerifier');
      return off;
    }
    if (extras !== undefined) extras.localVerifier = built.verifier;
    return { enabled, ids: [built.verifier.id], excludedPatterns };
  }
  const enabled = bool(v, 'enabled', false);
  const listed = strArray(v, 'ids');
  const rawIds = [...listed];
  const legacy = str(v, 'id');
  if (legacy !== undefined && legacy !== '' && !rawIds.includes(legacy)) rawIds.push(legacy);
  const ids: string[] = [];
  rawIds.forEach((ref, i) => {
    const resolved = refs.jwtVerifier?.(ref, ns);
    if (resolved === undefined) {
      const f = i < listed.length ? `spec.jwtVerifier.ids[${i}]` : 'spec.jwtVerifier.id';
      p.add(
        enabled ? 'error' : 'warning',
        'OXDS_UNRESOLVED_REFERENCE',
        `JwtVerifier ${JSON.stringify(ref)} not found (by otoroshi.io/id, name in ${ns}, or ns/name)`,
        f,
      );
      return;
    }
    if (!ids.includes(resolved)) ids.push(resolved);
  });
  return { enabled, ids, excludedPatterns };
}
