// ServiceDescriptor CRD → Descriptor (otoroshi-model.md §4.1, §4.2, §4.6; DECISIONS 4–9).
import type { ClientConfig, CustomTimeout, Descriptor, HeaderMatch, LoadBalancing, PathMatch, StoredObject } from './types.js';
import { annotationsOf, crdEntityId, namespaceOf } from './ids.js';
import { asObject, bool, num, str, strArray, strMap, type JsonObject, type Problems } from './problems.js';
import { re2Problem } from './regex.js';
import { resolveDescriptorTargets, type KubeIndex } from './targets.js';
import { LOAD_BALANCING_TYPES } from './schemas.js';

export interface ModelSettings {
  /** Group of Ingress-generated descriptors (Otoroshi's built-in group; always resolvable). */
  defaultGroup: string;
  /** Ingress classes we serve; `*` wildcards allowed. */
  ingressClasses: string[];
  clusterDomain: string;
  meshDomain: string;
  /**
   * Append Otoroshi's mesh hosts (§4.2) to CRD descriptors. Default false: in file mode (and for a
   * plain edge proxy) `<name>.<ns>.svc.otoroshi.mesh` & co. are names no client uses, and they would
   * only add noise (and possible conflicts) to the route table. `enabledAdditionalHosts: false` in
   * a spec still wins when this is true.
   */
  enableMeshHosts: boolean;
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
}

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
    p.warn('OXDS_INVALID_FIELD', `retries is the total number of attempts; ${out.retries} means 1`, `${field}.clientConfig.retries`);
    out.retries = 1;
  }
  const cts = Array.isArray(cc['customTimeouts']) ? cc['customTimeouts'] : [];
  cts.forEach((raw, i) => {
    const ct = asObject(raw);
    const path = str(ct, 'path') ?? '/*';
    const t = (k: keyof Omit<CustomTimeout, 'path'>): number => num(ct, k) ?? (DEFAULT_CLIENT_CONFIG[k] as number);
    const reason = re2Problem(path);
    if (reason !== null) {
      p.error('OXDS_INVALID_REGEX', `invalid RE2 regex ${JSON.stringify(path)}: ${reason}`, `${field}.clientConfig.customTimeouts[${i}].path`);
      return;
    }
    // Our reader reads idleTimeout from `idleTimeout` (Otoroshi's reader bug, §4.6, is not reproduced).
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
    const reason = re2Problem(pat);
    if (reason !== null) p.error('OXDS_INVALID_REGEX', `invalid RE2 regex ${JSON.stringify(pat)}: ${reason}`, `${field}[${i}]`);
  });
  return patterns;
}

export function headerMatches(map: Record<string, string>, field: string, p: Problems): HeaderMatch[] {
  const out: HeaderMatch[] = [];
  for (const [name, regex] of Object.entries(map)) {
    const reason = re2Problem(regex);
    if (reason !== null) {
      p.error('OXDS_INVALID_REGEX', `invalid RE2 regex ${JSON.stringify(regex)} for header ${name}: ${reason}`, `${field}.${name}`);
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
  'id', 'name', 'enabled', 'groups', 'groupId', 'hosts', 'paths', 'matchingRoot', 'root', 'stripPath',
  'matchingHeaders', 'targets', 'targetsFrom', 'targetsLoadBalancing', 'forceHttps', 'maintenanceMode',
  'buildMode', 'overrideHost', 'allowHttp10', 'readOnly', 'xForwardedHeaders', 'sendOtoroshiHeadersBack',
  'enforceSecureCommunication', 'detectApiKeySooner', 'additionalHeaders', 'additionalHeadersOut',
  'missingOnlyHeadersIn', 'missingOnlyHeadersOut', 'removeHeadersIn', 'removeHeadersOut', 'headersVerification',
  'publicPatterns', 'privatePatterns', 'clientConfig', 'enabledAdditionalHosts', 'env', 'domain', 'subdomain',
  'handleLegacyDomain',
]);

export function untranslated(spec: JsonObject, translated: ReadonlySet<string>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(spec).sort()) if (!translated.has(k)) out[k] = spec[k];
  return out;
}

/** Build a Descriptor from a (schema-valid) ServiceDescriptor CR. Adds problems to `p`. */
export function buildCrdDescriptor(so: StoredObject, s: ModelSettings, idx: KubeIndex, refs: RefResolver, p: Problems): Descriptor | undefined {
  const obj = so.object;
  const spec = asObject(obj.spec);
  const ns = namespaceOf(obj);
  const name = obj.metadata.name;
  const id = crdEntityId(obj);

  // groups: legacy groupId ++ groups, de-duplicated, resolved (DECISIONS 5). Unresolved: warning,
  // the raw value is kept (it may be Otoroshi's built-in `default` group or be created later).
  const rawGroups = [...(str(spec, 'groupId') !== undefined ? [str(spec, 'groupId') as string] : []), ...strArray(spec, 'groups')];
  const groups: string[] = [];
  rawGroups.forEach((g, i) => {
    const resolved = refs.group(g, ns);
    if (resolved === undefined) {
      const field = spec['groupId'] === g && i === 0 ? 'spec.groupId' : `spec.groups[${strArray(spec, 'groups').indexOf(g)}]`;
      p.warn('OXDS_UNRESOLVED_REFERENCE', `group ${JSON.stringify(g)} not found (by otoroshi.io/id, name in ${ns}, or ns/name); kept as a raw group id`, field);
    }
    const v = resolved ?? g;
    if (!groups.includes(v)) groups.push(v);
  });

  // hosts (+ legacy toHost when domain & subdomain are written, + mesh hosts when enabled)
  const hosts: string[] = [];
  const addHost = (h: string): void => {
    if (!hosts.includes(h)) hosts.push(h);
  };
  strArray(spec, 'hosts').forEach((h, i) => {
    if (!checkHost(h)) p.error('OXDS_INVALID_FIELD', `invalid host ${JSON.stringify(h)} (a host name, optionally with * wildcards; no scheme, port or path)`, `spec.hosts[${i}]`);
    else addHost(h);
  });
  const domain = str(spec, 'domain');
  const subdomain = str(spec, 'subdomain');
  if (bool(spec, 'handleLegacyDomain', true) && domain !== undefined && domain !== '' && subdomain !== undefined && subdomain !== '') {
    const env = str(spec, 'env') ?? 'prod';
    addHost(env === 'prod' ? `${subdomain}.${domain}` : `${subdomain}.${env}.${domain}`);
  }
  if (s.enableMeshHosts && bool(spec, 'enabledAdditionalHosts', true)) {
    const globalName = annotationsOf(obj)['global-name/otoroshi.io'] ?? name;
    addHost(`${globalName}.global.${s.meshDomain}`);
    addHost(`${name}.${ns}.${s.meshDomain}`);
    addHost(`${name}.${ns}.svc.${s.meshDomain}`);
    addHost(`${name}.${ns}.svc.${s.clusterDomain}`);
  }
  if (hosts.length === 0) p.warn('OXDS_MISSING_FIELD', 'no hosts: this descriptor matches no request', 'spec.hosts');

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
  if (!root.startsWith('/')) p.error('OXDS_INVALID_FIELD', `root ${JSON.stringify(root)} must start with /`, 'spec.root');

  // targets
  const t = resolveDescriptorTargets(spec, ns, idx);
  p.addItems('warning', t.warnings);
  p.addItems(t.targets.length > 0 ? 'warning' : 'error', t.dropped);
  // (when every target failed, the failures above are already errors)
  if (t.targets.length === 0 && t.dropped.length === 0) p.error('OXDS_MISSING_FIELD', 'no usable targets', 'spec.targets');

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
    spec: untranslated(spec, TRANSLATED),
  };
  if (obj.metadata.creationTimestamp !== undefined) d.createdAt = obj.metadata.creationTimestamp;
  return p.hasErrors ? undefined : d;
}

