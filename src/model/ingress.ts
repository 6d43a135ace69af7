// Ingress → Descriptors (docs/decisions.md: "Ingress annotations", "Ingress API", "Defaults by source").
import type {
  Descriptor,
  ErrorCode,
  HeaderMatch,
  KubeObject,
  LoadBalancing,
  PathMatchType,
  StoredObject,
  Target,
  TlsBinding,
} from './types.js';
import { annotationsOf, ingressDescriptorId, namespaceOf } from './ids.js';
import { asObject, isObject, num, str, strArray, type JsonObject, type ProblemItem, Problems } from './problems.js';
import { re2Problem } from './regex.js';
import { nameMatches } from './patterns.js';
import { serviceTarget, type KubeIndex } from './targets.js';
import { DEFAULT_CLIENT_CONFIG, checkHost, jwtRefFrom, type ModelSettings, type RefResolver } from './descriptor.js';
import { applyFeatures, dropReservedHeaders, type FieldOf } from './edge-features.js';
import { LOAD_BALANCING_TYPES } from './schemas.js';

export const OTOROSHI_CONTROLLERS = ['otoroshi', 'otoroshi.io/ingress-controller'];
/**
 * Both prefixes (docs/decisions.md: "Ingress annotations"). Applied in this order: the documented Otoroshi prefix wins.
 */
export const ANNOTATION_PREFIXES = ['otoroshi.ingress.kubernetes.io/', 'ingress.otoroshi.io/'];

// ------------------------------------------------------------------ class filtering

/** null when the ingress is ours, else why it is ignored. */
export function ingressClassProblem(ing: KubeObject, classes: readonly KubeObject[], s: ModelSettings): string | null {
  const ann = annotationsOf(ing);
  const spec = asObject(ing.spec);
  const cls = ann['kubernetes.io/ingress.class'] ?? str(spec, 'ingressClassName');
  const matches = (v: string): boolean => s.ingressClasses.some((p) => nameMatches(p, v));
  const ours = (controller: string | undefined): boolean =>
    controller !== undefined && (OTOROSHI_CONTROLLERS.includes(controller) || matches(controller));
  if (cls !== undefined && cls !== '') {
    const ic = classes.find((c) => c.metadata.name === cls);
    if (ic !== undefined) {
      const controller = str(asObject(ic.spec), 'controller');
      if (ours(controller) || matches(cls)) return null;
      return (
        `IngressClass ${cls} belongs to controller ${JSON.stringify(controller ?? '')}, not to otoroshi ` +
        `(ingressClasses: ${s.ingressClasses.join(', ')})`
      );
    }
    if (cls === 'otoroshi' || matches(cls)) return null;
    return `ingress class ${JSON.stringify(cls)} is not served (ingressClasses: ${s.ingressClasses.join(', ')})`;
  }
  if (s.ingressClasses.includes('*')) return null;
  // docs/decisions.md: "Ingress API": the default IngressClass applies to class-less ingresses (Otoroshi 1.5 does not).
  const def = classes.find(
    (c) =>
      annotationsOf(c)['ingressclass.kubernetes.io/is-default-class'] === 'true' &&
      ours(str(asObject(c.spec), 'controller')),
  );
  if (def !== undefined) return null;
  return 'no ingress class, and no default IngressClass belongs to otoroshi';
}

// ------------------------------------------------------------------ annotations

class AnnotationError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
  ) {
    super(message);
  }
}

export interface AnnotationContext {
  ns: string;
  refs: RefResolver;
  p: Problems;
  /** The full annotation key (for messages). */
  key: string;
  /**
   * Block annotations (`cors.*`, `gzip.*`, `ip-filtering.*`, ...) write the CRD spec fields here;
   * once every annotation is read, the CRD parsers (src/model/features.ts) read it, so an
   * annotation sets exactly the descriptor field the CRD would.
   */
  raw: JsonObject;
}

type Applier = (d: Descriptor) => void;

interface AnnotationDef {
  /** Parse (throws AnnotationError) and return how to apply the value to each descriptor. */
  run(value: string, ctx: AnnotationContext): Applier;
}

function def<T>(parse: (v: string, ctx: AnnotationContext) => T, apply: (d: Descriptor, v: T) => void): AnnotationDef {
  return {
    run(value, ctx) {
      const v = parse(value, ctx);
      return (d) => apply(d, v);
    },
  };
}

// annotation value formats
export function parseBool(v: string): boolean {
  const s = v.trim().toLowerCase();
  if (s === 'true') return true;
  if (s === 'false') return false;
  throw new AnnotationError('OXDS_INVALID_ANNOTATION', `expected true or false, got ${JSON.stringify(v)}`);
}
function parseIntStrict(v: string, min = 0): number {
  const s = v.trim();
  if (!/^-?\d+$/.test(s) || !Number.isSafeInteger(Number(s)))
    throw new AnnotationError('OXDS_INVALID_ANNOTATION', `expected an integer, got ${JSON.stringify(v)}`);
  const n = Number(s);
  if (n < min) throw new AnnotationError('OXDS_INVALID_ANNOTATION', `expected an integer >= ${min}, got ${n}`);
  return n;
}
function parseNumber(v: string): number {
  const s = v.trim();
  if (!/^\d+(\.\d+)?$/.test(s))
    throw new AnnotationError('OXDS_INVALID_ANNOTATION', `expected a number, got ${JSON.stringify(v)}`);
  return Number(s);
}
/** `"a, b"` → `["a","b"]`; `""` → `[""]` (Otoroshi: that is how docs make an ingress private). */
export function parseList(v: string): string[] {
  return v.split(',').map((x) => x.trim());
}
/** `"k1=v1,k2=v2"`; `a=b=c` → `a→c` (first and last parts, as Otoroshi); an entry without `=` is an error. */
export function parseMap(v: string): Record<string, string> {
  const out: Record<string, string> = {};
  if (v.trim() === '') return out;
  for (const entry of v.split(',').map((x) => x.trim())) {
    if (entry === '') continue;
    const parts = entry.split('=');
    if (parts.length < 2)
      throw new AnnotationError('OXDS_INVALID_ANNOTATION', `expected k1=v1,k2=v2, got entry ${JSON.stringify(entry)}`);
    out[parts[0] ?? ''] = parts[parts.length - 1] ?? '';
  }
  return out;
}
function parseRegexList(v: string): string[] {
  const list = parseList(v);
  for (const r of list) {
    const reason = re2Problem(r);
    if (reason !== null)
      throw new AnnotationError('OXDS_INVALID_REGEX', `invalid RE2 regex ${JSON.stringify(r)}: ${reason}`);
  }
  return list;
}
function parseHeaderMatches(v: string): HeaderMatch[] {
  const m = parseMap(v);
  const out: HeaderMatch[] = [];
  for (const [name, regex] of Object.entries(m)) {
    const reason = re2Problem(regex);
    if (reason !== null)
      throw new AnnotationError(
        'OXDS_INVALID_REGEX',
        `invalid RE2 regex ${JSON.stringify(regex)} for header ${name}: ${reason}`,
      );
    out.push({ name: name.toLowerCase(), regex });
  }
  return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}
function parseGroups(list: string[], ctx: AnnotationContext): string[] {
  const out: string[] = [];
  for (const g of list) {
    if (g === '') continue;
    const r = ctx.refs.group(g, ctx.ns);
    if (r === undefined)
      ctx.p.warn(
        'OXDS_UNRESOLVED_REFERENCE',
        `group ${JSON.stringify(g)} not found; kept as a raw group id`,
        `metadata.annotations["${ctx.key}"]`,
      );
    const v = r ?? g;
    if (!out.includes(v)) out.push(v);
  }
  return out;
}
function parseLoadBalancing(v: string, ctx: AnnotationContext): LoadBalancing {
  const s = v.trim();
  if ((LOAD_BALANCING_TYPES as readonly string[]).includes(s)) return s as LoadBalancing;
  ctx.p.warn(
    'OXDS_INVALID_ANNOTATION',
    `unknown load-balancing type ${JSON.stringify(v)}: RoundRobin is used`,
    `metadata.annotations["${ctx.key}"]`,
  );
  return 'RoundRobin';
}

type BoolField = {
  [K in keyof Descriptor]-?: Descriptor[K] extends boolean ? K : never;
}[keyof Descriptor];
type MapField =
  | 'additionalHeaders'
  | 'additionalHeadersOut'
  | 'missingOnlyHeadersIn'
  | 'missingOnlyHeadersOut'
  | 'headersVerification';
type ClientConfigNumber = Exclude<keyof typeof DEFAULT_CLIENT_CONFIG, 'useCircuitBreaker' | 'customTimeouts'>;

/** A boolean field also recorded in the staging spec (so that "not supported" checks see it). */
function alsoRaw(key: string, inner: AnnotationDef): AnnotationDef {
  return {
    run(value, ctx) {
      const apply = inner.run(value, ctx);
      ctx.raw[key] = parseBool(value);
      return apply;
    },
  };
}

const boolDef = (f: BoolField): AnnotationDef =>
  def(parseBool, (d, v) => {
    d[f] = v;
  });
const mapDef = (f: MapField): AnnotationDef =>
  def(parseMap, (d, v) => {
    d[f] = { ...v };
  });
const ccDef = (f: ClientConfigNumber, parse: (v: string) => number): AnnotationDef =>
  def(parse, (d, v) => {
    d.clientConfig[f] = v;
  });

/**
 * The annotation table: normalised (camelCase) key → parser + applier. Keys are matched after the
 * prefix is removed and kebab-case segments are camelCased (`force-https` → `forceHttps`,
 * `client-config.retries` → `clientConfig.retries`, `issue-cert-c-a` → `issueCertCA`).
 * Extend it here for more features.
 */
export const ANNOTATIONS: ReadonlyMap<string, AnnotationDef> = new Map<string, AnnotationDef>([
  [
    'name',
    def(
      (v) => v,
      (d, v) => {
        d.name = v;
      },
    ),
  ],
  [
    'group',
    def(
      (v, ctx) => parseGroups([v.trim()], ctx),
      (d, v) => {
        d.groups = [...v];
      },
    ),
  ],
  [
    'groupId',
    def(
      (v, ctx) => parseGroups([v.trim()], ctx),
      (d, v) => {
        d.groups = [...v];
      },
    ),
  ],
  [
    'groups',
    def(
      (v, ctx) => parseGroups(parseList(v), ctx),
      (d, v) => {
        d.groups = [...v];
      },
    ),
  ],
  [
    'targetsLoadBalancing',
    def(parseLoadBalancing, (d, v) => {
      d.loadBalancing = v;
    }),
  ],
  ['enabled', boolDef('enabled')],
  ['stripPath', boolDef('stripPath')],
  ['forceHttps', boolDef('forceHttps')],
  ['maintenanceMode', boolDef('maintenanceMode')],
  ['buildMode', boolDef('buildMode')],
  ['readOnly', boolDef('readOnly')],
  ['overrideHost', boolDef('overrideHost')],
  ['sendOtoroshiHeadersBack', boolDef('sendOtoroshiHeadersBack')],
  ['xForwardedHeaders', boolDef('xForwardedHeaders')],
  ['allowHttp10', alsoRaw('allowHttp10', boolDef('allowHttp10'))],
  ['detectApiKeySooner', boolDef('detectApiKeySooner')],
  ['enforceSecureCommunication', alsoRaw('enforceSecureCommunication', boolDef('enforceSecureCommunication'))],
  [
    'publicPatterns',
    def(parseRegexList, (d, v) => {
      d.publicPatterns = [...v];
    }),
  ],
  [
    'privatePatterns',
    def(parseRegexList, (d, v) => {
      d.privatePatterns = [...v];
    }),
  ],
  [
    'removeHeadersIn',
    def(parseList, (d, v) => {
      d.removeHeadersIn = v.filter((x) => x !== '');
    }),
  ],
  [
    'removeHeadersOut',
    def(parseList, (d, v) => {
      d.removeHeadersOut = v.filter((x) => x !== '');
    }),
  ],
  ['additionalHeaders', mapDef('additionalHeaders')],
  ['additionalHeadersOut', mapDef('additionalHeadersOut')],
  ['missingOnlyHeadersIn', mapDef('missingOnlyHeadersIn')],
  ['missingOnlyHeadersOut', mapDef('missingOnlyHeadersOut')],
  ['headersVerification', mapDef('headersVerification')],
  [
    'matchingHeaders',
    def(parseHeaderMatches, (d, v) => {
      d.matchingHeaders = v.map((h) => ({ ...h }));
    }),
  ],
  [
    'clientConfig.useCircuitBreaker',
    def(parseBool, (d, v) => {
      d.clientConfig.useCircuitBreaker = v;
    }),
  ],
  ['clientConfig.retries', ccDef('retries', (v) => parseIntStrict(v, 1))],
  ['clientConfig.maxErrors', ccDef('maxErrors', (v) => parseIntStrict(v))],
  ['clientConfig.retryInitialDelay', ccDef('retryInitialDelay', (v) => parseIntStrict(v))],
  ['clientConfig.backoffFactor', ccDef('backoffFactor', parseNumber)],
  ['clientConfig.connectionTimeout', ccDef('connectionTimeout', (v) => parseIntStrict(v))],
  ['clientConfig.idleTimeout', ccDef('idleTimeout', (v) => parseIntStrict(v))],
  ['clientConfig.callAndStreamTimeout', ccDef('callAndStreamTimeout', (v) => parseIntStrict(v))],
  ['clientConfig.callTimeout', ccDef('callTimeout', (v) => parseIntStrict(v))],
  ['clientConfig.globalTimeout', ccDef('globalTimeout', (v) => parseIntStrict(v))],
  ['clientConfig.sampleInterval', ccDef('sampleInterval', (v) => parseIntStrict(v))],
]);

/** `block.key` annotations that fill the spec object `raw[block][key]` (parsed later like a CRD). */
function rawDef(block: string, key: string, parse: (v: string) => unknown): AnnotationDef {
  return {
    run(value, ctx) {
      const v = parse(value);
      const o = isObject(ctx.raw[block]) ? (ctx.raw[block] as JsonObject) : {};
      o[key] = v;
      ctx.raw[block] = o;
      return () => undefined;
    },
  };
}
const parseInt0 = (v: string): number => parseIntStrict(v);

/** Annotations read into `raw` (the same spec fields a ServiceDescriptor CRD has). */
const BLOCK_ANNOTATIONS: [string, AnnotationDef][] = [
  ['ipFiltering.whitelist', rawDef('ipFiltering', 'whitelist', (v) => parseList(v).filter((x) => x !== ''))],
  ['ipFiltering.blacklist', rawDef('ipFiltering', 'blacklist', (v) => parseList(v).filter((x) => x !== ''))],
  ['api.exposeApi', rawDef('api', 'exposeApi', parseBool)],
  ['api.openApiDescriptorUrl', rawDef('api', 'openApiDescriptorUrl', (v) => v.trim())],
  ['healthCheck.enabled', rawDef('healthCheck', 'enabled', parseBool)],
  ['healthCheck.url', rawDef('healthCheck', 'url', (v) => v.trim())],
  ['redirection.enabled', rawDef('redirection', 'enabled', parseBool)],
  ['redirection.code', rawDef('redirection', 'code', parseInt0)],
  ['redirection.to', rawDef('redirection', 'to', (v) => v.trim())],
  ['cors.enabled', rawDef('cors', 'enabled', parseBool)],
  ['cors.allowOrigin', rawDef('cors', 'allowOrigin', (v) => v.trim())],
  ['cors.exposeHeaders', rawDef('cors', 'exposeHeaders', (v) => parseList(v).filter((x) => x !== ''))],
  ['cors.allowHeaders', rawDef('cors', 'allowHeaders', (v) => parseList(v).filter((x) => x !== ''))],
  ['cors.allowMethods', rawDef('cors', 'allowMethods', (v) => parseList(v).filter((x) => x !== ''))],
  ['cors.excludedPatterns', rawDef('cors', 'excludedPatterns', (v) => parseList(v).filter((x) => x !== ''))],
  // docs/decisions.md: "Ingress annotations": seconds (Otoroshi read milliseconds here, a bug).
  ['cors.maxAge', rawDef('cors', 'maxAge', parseInt0)],
  ['cors.allowCredentials', rawDef('cors', 'allowCredentials', parseBool)],
  ['gzip.enabled', rawDef('gzip', 'enabled', parseBool)],
  ['gzip.excludedPatterns', rawDef('gzip', 'excludedPatterns', (v) => parseList(v).filter((x) => x !== ''))],
  ['gzip.whiteList', rawDef('gzip', 'whiteList', (v) => parseList(v).filter((x) => x !== ''))],
  ['gzip.blackList', rawDef('gzip', 'blackList', (v) => parseList(v).filter((x) => x !== ''))],
  ['gzip.bufferSize', rawDef('gzip', 'bufferSize', parseInt0)],
  ['gzip.chunkedThreshold', rawDef('gzip', 'chunkedThreshold', parseInt0)],
  ['gzip.compressionLevel', rawDef('gzip', 'compressionLevel', parseInt0)],
  ['jwtVerifier.ids', rawDef('jwtVerifier', 'ids', (v) => parseList(v).filter((x) => x !== ''))],
  ['jwtVerifier.enabled', rawDef('jwtVerifier', 'enabled', parseBool)],
  ['jwtVerifier.excludedPatterns', rawDef('jwtVerifier', 'excludedPatterns', parseRegexList)],
];

/** Top-level annotations read into `raw` too (scalars the CRD parsers judge: supported or not). */
const RAW_SCALARS: [string, (v: string) => unknown][] = [
  ['userFacing', parseBool],
  ['privateApp', parseBool],
  ['strictlyPrivate', parseBool],
  ['letsEncrypt', parseBool],
  ['tcpUdpTunneling', parseBool],
  ['issueCert', parseBool],
  ['issueCertCA', (v) => v.trim()],
  ['logAnalyticsOnServer', parseBool],
  ['useAkkaHttpClient', parseBool],
  ['useNewWSClient', parseBool],
  ['sendInfoToken', parseBool],
  ['sendStateChallenge', parseBool],
  ['authConfigRef', (v) => v.trim()],
  ['clientValidatorRef', (v) => v.trim()],
  ['transformerRefs', (v) => parseList(v).filter((x) => x !== '')],
  ['securityExcludedPatterns', (v) => parseList(v).filter((x) => x !== '')],
];

/** Annotation keys that are recognised but that Envoy cannot express (one warning each). */
const UNSUPPORTED_PREFIXES = ['secCom', 'accessValidator.', 'preRouting.', 'transformerConfig'];

/**
 * Field paths of an ingress's Otoroshi settings, always as the annotation the user wrote
 * (`metadata.annotations["ingress.otoroshi.io/allowHttp10"]`), with the prefix in use.
 */
export function annotationField(ing: KubeObject): FieldOf {
  const ann = annotationsOf(ing);
  const full = new Map<string, string>();
  for (const prefix of ANNOTATION_PREFIXES) {
    for (const k of Object.keys(ann))
      if (k.startsWith(prefix)) full.set(normaliseAnnotationKey(k.slice(prefix.length)), k);
  }
  const prefix =
    ANNOTATION_PREFIXES.find((x) => Object.keys(ann).some((k) => k.startsWith(x))) ?? ANNOTATION_PREFIXES[0];
  return (sub) => {
    const exact = full.get(sub);
    if (exact !== undefined) return `metadata.annotations["${exact}"]`;
    const head = sub.split(/[.[]/)[0] ?? sub;
    const rest = sub.slice(head.length);
    return `metadata.annotations["${full.get(head) ?? `${prefix}${head}`}"]${rest}`;
  };
}

/** kebab-case segments → camelCase; camelCase stays. */
export function normaliseAnnotationKey(key: string): string {
  return key
    .split('.')
    .map((seg) => seg.replace(/-([A-Za-z0-9])/g, (_m, c: string) => c.toUpperCase()))
    .join('.');
}

/** Parse the Otoroshi annotations of an ingress. Errors go to `p` (they invalidate the ingress). */
export function parseAnnotations(ing: KubeObject, refs: RefResolver, p: Problems, raw: JsonObject = {}): Applier[] {
  const ann = annotationsOf(ing);
  const ns = namespaceOf(ing);
  const byKey = new Map<string, { full: string; value: string }>();
  for (const prefix of ANNOTATION_PREFIXES) {
    for (const full of Object.keys(ann).sort()) {
      if (!full.startsWith(prefix)) continue;
      byKey.set(normaliseAnnotationKey(full.slice(prefix.length)), { full, value: ann[full] ?? '' });
    }
  }
  const appliers: Applier[] = [];
  for (const key of [...byKey.keys()].sort()) {
    const entry = byKey.get(key);
    if (entry === undefined) continue;
    const { full, value } = entry;
    const field = `metadata.annotations["${full}"]`;
    const scalar = RAW_SCALARS.find(([k]) => k === key);
    const d =
      ANNOTATIONS.get(key) ??
      BLOCK_MAP.get(key) ??
      (scalar
        ? def(
            (v) => scalar[1](v),
            () => undefined,
          )
        : undefined);
    if (scalar) {
      try {
        raw[key] = scalar[1](value);
      } catch (e) {
        if (e instanceof AnnotationError) p.error(e.code, `annotation ${full}: ${e.message}`, field);
        else throw e;
      }
      continue;
    }
    if (key === 'raw') {
      rawAnnotation(value, raw, p, field);
      continue;
    }
    if (d === undefined) {
      if (UNSUPPORTED_PREFIXES.some((x) => key.startsWith(x)))
        p.warn('OXDS_NOT_SUPPORTED', `annotation ${full} is not supported (Otoroshi-only feature): ignored`, field);
      else p.warn('OXDS_INVALID_ANNOTATION', `annotation ${full} is unknown: ignored`, field);
      continue;
    }
    try {
      appliers.push(d.run(value, { ns, refs, p, key: full, raw }));
    } catch (e) {
      if (e instanceof AnnotationError) p.error(e.code, `annotation ${full}: ${e.message}`, field);
      else throw e;
    }
  }
  return appliers;
}

const BLOCK_MAP: ReadonlyMap<string, AnnotationDef> = new Map(BLOCK_ANNOTATIONS);

/** Spec blocks `raw` may carry (from the `raw` annotation): merged into the staging spec. */
const RAW_BLOCKS = new Set([
  'ipFiltering',
  'api',
  'healthCheck',
  'redirection',
  'cors',
  'gzip',
  'canary',
  'jwtVerifier',
]);

/** The `raw` annotation: a JSON object; its feature blocks are merged (one level deep). */
function rawAnnotation(value: string, raw: JsonObject, p: Problems, field: string): void {
  let parsed: unknown;
  try {
    parsed = JSON.parse(value);
  } catch {
    p.error('OXDS_INVALID_ANNOTATION', 'annotation raw: not valid JSON', field);
    return;
  }
  if (!isObject(parsed)) {
    p.error('OXDS_INVALID_ANNOTATION', 'annotation raw: expected a JSON object', field);
    return;
  }
  for (const [k, v] of Object.entries(parsed)) {
    if (RAW_BLOCKS.has(k) && isObject(v)) raw[k] = { ...(isObject(raw[k]) ? (raw[k] as JsonObject) : {}), ...v };
    else
      p.warn(
        'OXDS_NOT_SUPPORTED',
        `annotation raw: key ${JSON.stringify(k)} is not supported in raw (use its own annotation): ignored`,
        field,
      );
  }
}

// ------------------------------------------------------------------ descriptors

interface Backend {
  serviceName: string;
  servicePort: unknown;
}

function backendOf(b: unknown): Backend | ProblemItem {
  const o = asObject(b);
  if (isObject(o['service'])) {
    const svc = o['service'];
    const port = asObject(svc['port']);
    const name = str(svc, 'name');
    if (name === undefined || name === '')
      return { code: 'OXDS_MISSING_FIELD', message: 'backend.service.name is required', field: 'service.name' };
    return { serviceName: name, servicePort: num(port, 'number') ?? str(port, 'name') };
  }
  const name = str(o, 'serviceName');
  if (name !== undefined && name !== '') return { serviceName: name, servicePort: o['servicePort'] };
  if (isObject(o['resource']))
    return { code: 'OXDS_INVALID_FIELD', message: 'resource backends are not supported', field: 'resource' };
  return { code: 'OXDS_MISSING_FIELD', message: 'backend needs service.name (or serviceName)' };
}

function pathTypeOf(v: unknown): PathMatchType {
  if (v === 'Exact') return 'Exact';
  if (v === 'Prefix') return 'Prefix';
  return 'PlainPrefix';
}

export interface IngressOutput {
  descriptors: Descriptor[];
  tls: TlsBinding[];
}

function baseDescriptor(
  so: StoredObject,
  s: ModelSettings,
  id: string,
  host: string,
  path: string,
  type: PathMatchType,
  target: Target,
): Descriptor {
  const ing = so.object;
  const d: Descriptor = {
    id,
    name: `kubernetes - ${ing.metadata.name} - ${host} - ${path}`,
    sourceKey: so.key,
    sourceKind: 'Ingress',
    namespace: namespaceOf(ing),
    origin: so.origin,
    enabled: true,
    groups: [s.defaultGroup],
    hosts: [host],
    paths: [{ value: path, type }],
    root: path,
    stripPath: true,
    matchingHeaders: [],
    targets: [target],
    loadBalancing: 'RoundRobin',
    forceHttps: false,
    maintenanceMode: false,
    buildMode: false,
    overrideHost: true,
    allowHttp10: true,
    readOnly: false,
    xForwardedHeaders: false,
    sendOtoroshiHeadersBack: false,
    enforceSecureCommunication: false,
    detectApiKeySooner: false,
    additionalHeaders: {},
    additionalHeadersOut: {},
    missingOnlyHeadersIn: {},
    missingOnlyHeadersOut: {},
    removeHeadersIn: [],
    removeHeadersOut: [],
    headersVerification: {},
    publicPatterns: ['/.*'],
    privatePatterns: [],
    clientConfig: { ...DEFAULT_CLIENT_CONFIG, customTimeouts: [] },
    spec: {},
  };
  if (ing.metadata.creationTimestamp !== undefined) d.createdAt = ing.metadata.creationTimestamp;
  return d;
}

/**
 * Build the descriptors and TLS bindings of an accepted Ingress. Annotation errors are errors (the
 * ingress is invalid). Problems of one path (bad path, missing Service/port) drop that path: they are
 * warnings while another path still works, errors when nothing is left. A missing TLS secret is a
 * warning (the routes keep working; the listener just has no certificate for those hosts).
 */
type AddPath = (
  host: string | undefined,
  path: string,
  pathType: unknown,
  backend: unknown,
  field: string,
  idOverride?: string,
) => void;

/** What the descriptors of one Ingress share while they are made. */
interface IngressContext {
  so: StoredObject;
  s: ModelSettings;
  idx: KubeIndex;
  ns: string;
  appliers: Applier[];
  p: Problems;
  pathProblems: ProblemItem[];
  descriptors: Descriptor[];
}

/** One descriptor per host + path of an Ingress (ids made unique), its problems collected in pathProblems. */
function ingressPathAdder(c: IngressContext): AddPath {
  const { so, s, idx, ns, appliers, p, pathProblems, descriptors } = c;
  const ing = so.object;
  const usedIds = new Map<string, number>();
  return (host, path, pathType, backend, field, idOverride) => {
    if (!path.startsWith('/')) {
      pathProblems.push({
        code: 'OXDS_INVALID_FIELD',
        message: `path ${JSON.stringify(path)} must start with /`,
        field: `${field}.path`,
      });
      return;
    }
    const b = backendOf(backend);
    if ('code' in b) {
      pathProblems.push({ ...b, field: `${field}.backend${b.field !== undefined ? `.${b.field}` : ''}` });
      return;
    }
    const t = serviceTarget(
      't0',
      b.serviceName,
      b.servicePort,
      ns,
      { weight: 1, protocol: 'HTTP/1.1' },
      idx,
      'short',
      (item) => p.notice(item.code, item.message, `${field}.backend`),
    );
    if ('code' in t) {
      pathProblems.push({ ...t, field: `${field}.backend` });
      return;
    }
    const h = host === undefined || host === '' ? '*' : host;
    let id = idOverride ?? ingressDescriptorId(ns, ing.metadata.name, host, path);
    const n = usedIds.get(id) ?? 0;
    usedIds.set(id, n + 1);
    if (n > 0) id = `${id}-${n + 1}`;
    const d = baseDescriptor(so, s, id, h, path, pathTypeOf(pathType), t);
    for (const a of appliers) a(d);
    // Annotations are shared by every descriptor of the Ingress: report their problems once.
    dropReservedHeaders(
      d,
      descriptors.length === 0 ? p : new Problems(p.kind, p.namespace, p.name),
      'metadata.annotations',
    );
    descriptors.push(d);
  };
}

/** spec.tls: each entry's secret (when it exists and is valid) bound to its hosts. */
function ingressTls(spec: JsonObject, ns: string, tlsSecrets: ReadonlyMap<string, boolean>, p: Problems): TlsBinding[] {
  const tls: TlsBinding[] = [];
  const tlsList = Array.isArray(spec['tls']) ? spec['tls'] : [];
  tlsList.forEach((raw, i) => {
    const t = asObject(raw);
    const secretName = str(t, 'secretName');
    if (secretName === undefined || secretName === '') return;
    const key = `${ns}/${secretName}`;
    const state = tlsSecrets.get(key);
    if (state === undefined) {
      p.warn(
        'OXDS_UNRESOLVED_REFERENCE',
        `TLS secret ${key} (type kubernetes.io/tls) not found: hosts ` +
          `${strArray(t, 'hosts').join(', ') || '(none)'} get no certificate`,
        `spec.tls[${i}].secretName`,
      );
      return;
    }
    if (!state) {
      p.warn(
        'OXDS_UNRESOLVED_REFERENCE',
        `TLS secret ${key} is invalid (see its status): not used`,
        `spec.tls[${i}].secretName`,
      );
      return;
    }
    tls.push({
      secretName: key,
      serverNames: [...new Set(strArray(t, 'hosts'))].sort(),
      source: { kind: 'Ingress', namespace: p.namespace, name: p.name },
    });
  });
  return tls;
}

export function buildIngress(
  so: StoredObject,
  s: ModelSettings,
  idx: KubeIndex,
  refs: RefResolver,
  tlsSecrets: ReadonlyMap<string, boolean>,
  p: Problems,
): IngressOutput {
  const ing = so.object;
  const ns = namespaceOf(ing);
  const spec = asObject(ing.spec);
  const raw: JsonObject = {};
  const appliers = parseAnnotations(ing, refs, p, raw);
  appliers.push(ingressFeatures(raw, ns, so.key, idx, refs, p, annotationField(ing)));
  const pathProblems: ProblemItem[] = [];
  const descriptors: Descriptor[] = [];

  const add = ingressPathAdder({ so, s, idx, ns, appliers, p, pathProblems, descriptors });

  const rules = Array.isArray(spec['rules']) ? spec['rules'] : [];
  rules.forEach((r, i) => {
    const rule = asObject(r);
    const host = str(rule, 'host');
    if (host !== undefined && host !== '' && !checkHost(host)) {
      pathProblems.push({
        code: 'OXDS_INVALID_FIELD',
        message: `invalid host ${JSON.stringify(host)}`,
        field: `spec.rules[${i}].host`,
      });
      return;
    }
    const paths = Array.isArray(asObject(rule['http'])['paths']) ? (asObject(rule['http'])['paths'] as unknown[]) : [];
    paths.forEach((pp, j) => {
      const po = asObject(pp);
      add(host, str(po, 'path') ?? '/', po['pathType'], po['backend'], `spec.rules[${i}].http.paths[${j}]`);
    });
  });
  const defaultBackend = spec['defaultBackend'] ?? spec['backend'];
  if (isObject(defaultBackend)) {
    const field = spec['defaultBackend'] !== undefined ? 'spec.defaultBackend' : 'spec.backend';
    const b = backendOf(defaultBackend);
    if ('code' in b) pathProblems.push({ ...b, field: `${field}${b.field !== undefined ? `.${b.field}` : ''}` });
    else {
      const before = pathProblems.length;
      add(
        undefined,
        '/',
        undefined,
        defaultBackend,
        field,
        ingressDescriptorId(ns, ing.metadata.name, undefined, '/default-backend'),
      );
      const last = pathProblems[pathProblems.length - 1];
      if (pathProblems.length > before && last !== undefined) last.field = field;
      const d = descriptors[descriptors.length - 1];
      if (d !== undefined && d.id.endsWith('default-backend'))
        d.name = `kubernetes - ${ing.metadata.name} - * - / (default-backend)`;
    }
  }
  p.addItems(descriptors.length > 0 ? 'warning' : 'error', pathProblems);
  if (descriptors.length === 0 && pathProblems.length === 0)
    p.warn(
      'OXDS_MISSING_FIELD',
      'this ingress has no rules with paths and no default backend: it routes nothing',
      'spec.rules',
    );

  const tls = ingressTls(spec, ns, tlsSecrets, p);
  return { descriptors, tls };
}

/** The CRD feature parsers over the staging spec of block annotations: one applier for every descriptor. */
function ingressFeatures(
  raw: JsonObject,
  ns: string,
  sourceKey: string,
  idx: KubeIndex,
  refs: RefResolver,
  p: Problems,
  at: FieldOf,
): Applier {
  const probe = { root: '/', clientConfig: { ...DEFAULT_CLIENT_CONFIG, customTimeouts: [] } } as unknown as Descriptor;
  applyFeatures(probe, raw, ns, idx, p, at);
  const jwt = raw['jwtVerifier'] !== undefined ? jwtRefFrom(raw['jwtVerifier'], '', ns, sourceKey, refs, p) : undefined;
  return (d) => {
    for (const k of [
      'ipFiltering',
      'redirection',
      'cors',
      'gzip',
      'healthCheck',
      'canary',
      'openApiDescriptorUrl',
    ] as const) {
      const v = probe[k];
      if (v !== undefined) (d as unknown as Record<string, unknown>)[k] = structuredClone(v);
    }
    if (jwt !== undefined) d.jwtVerifier = { ...jwt, ids: [...jwt.ids], excludedPatterns: [...jwt.excludedPatterns] };
  };
}
