// JSON schemas of the `spec` of each proxy.otoroshi.io kind we read.
//
// Plain TS objects (OpenAPI v3 / JSON-schema subset) so the Kubernetes CRD manifests can be generated
// from the same source later. Conventions for that generator:
//  * `x-oxds-message` is ours (a readable message for anyOf failures): strip it.
//  * `x-kubernetes-int-or-string` is the Kubernetes marker; we pair it with an `anyOf` for ajv
//    (Kubernetes accepts exactly that shape).
//  * `type: [..]` unions (used where Otoroshi accepts several shapes, e.g. `targets` as array or
//    object, `validUntil` as ms or ISO string) must become `x-kubernetes-preserve-unknown-fields`.
//  * Unknown fields are allowed everywhere (no `additionalProperties: false`): Otoroshi ignores them.
import type { Ajv, ErrorObject, ValidateFunction } from 'ajv';
import { generatedValidators, newAjv } from './spec-validators.js';
import type { ConfigError, ErrorCode } from './types.js';

type Schema = Record<string, unknown>;

const str: Schema = { type: 'string' };
const bool: Schema = { type: 'boolean' };
const int: Schema = { type: 'integer' };
const nonNegInt: Schema = { type: 'integer', minimum: 0 };
const strArr: Schema = { type: 'array', items: str };
const strMap: Schema = { type: 'object', additionalProperties: { type: ['string', 'number', 'boolean'] } };
const intOrString: Schema = { 'x-kubernetes-int-or-string': true, anyOf: [{ type: 'integer' }, { type: 'string' }] };
const msOrDate: Schema = { type: ['integer', 'string'] };
const obj = (properties: Record<string, Schema>, extra: Schema = {}): Schema => ({
  type: 'object',
  properties,
  ...extra,
});

const common: Record<string, Schema> = {
  name: str,
  description: str,
  desc: str,
  tags: strArr,
  metadata: strMap,
};

export const LOAD_BALANCING_TYPES = [
  'RoundRobin',
  'Random',
  'Sticky',
  'IpAddressHash',
  'BestResponseTime',
  'WeightedBestResponseTime',
] as const;

const serviceRef: Record<string, Schema> = {
  serviceName: { type: 'string', minLength: 1 },
  servicePort: intOrString,
};

const protocol: Schema = { type: 'string', enum: ['HTTP/1.0', 'HTTP/1.1', 'HTTP/2.0'] };

const targetEntry: Schema = obj(
  {
    url: { type: 'string', minLength: 1 },
    host: { type: 'string', minLength: 1 },
    scheme: { type: 'string', enum: ['http', 'https', 'HTTP', 'HTTPS', 'ahttp', 'ahttps'] },
    weight: nonNegInt,
    protocol,
    ipAddress: str,
    predicate: { type: 'object' },
    mtlsConfig: obj({ certs: strArr, trustedCerts: strArr, mtls: bool, loose: bool, trustAll: bool }),
    tags: strArr,
    metadata: strMap,
    ...serviceRef,
  },
  {
    // Otoroshi's reader requires `host` (filled from `url`); we also accept a Service reference.
    anyOf: [{ required: ['url'] }, { required: ['host'] }, { required: ['serviceName'] }],
    'x-oxds-message': 'a target needs `url`, `host` or `serviceName`',
  },
);

const serviceTargets: Schema = obj(
  {
    ...serviceRef,
    scheme: { type: 'string', enum: ['http', 'https', 'HTTP', 'HTTPS', 'ahttp', 'ahttps'] },
    weight: nonNegInt,
    protocol,
  },
  { required: ['serviceName'] },
);

const clientConfig: Schema = obj({
  useCircuitBreaker: bool,
  retries: nonNegInt,
  maxErrors: nonNegInt,
  retryInitialDelay: nonNegInt,
  backoffFactor: { type: 'number', minimum: 0 },
  connectionTimeout: nonNegInt,
  idleTimeout: nonNegInt,
  callAndStreamTimeout: nonNegInt,
  callTimeout: nonNegInt,
  globalTimeout: nonNegInt,
  sampleInterval: nonNegInt,
  customTimeouts: {
    type: 'array',
    items: obj(
      {
        path: str,
        connectionTimeout: nonNegInt,
        idleTimeout: nonNegInt,
        callAndStreamTimeout: nonNegInt,
        callTimeout: nonNegInt,
        globalTimeout: nonNegInt,
      },
      { required: ['path'] },
    ),
  },
});

const restrictionPath: Schema = obj({ method: str, path: str }, { required: ['method', 'path'] });
const restrictionsSchema: Schema = obj({
  enabled: bool,
  allowLast: bool,
  allowed: { type: 'array', items: restrictionPath },
  forbidden: { type: 'array', items: restrictionPath },
  notFound: { type: 'array', items: restrictionPath },
});
const nullableStr: Schema = { type: ['string', 'null'] };
const apiKeyConstraintsSchema: Schema = obj({
  basicAuth: obj({ enabled: bool, headerName: nullableStr, queryName: nullableStr }),
  customHeadersAuth: obj({ enabled: bool, clientIdHeaderName: nullableStr, clientSecretHeaderName: nullableStr }),
  clientIdAuth: obj({ enabled: bool, headerName: nullableStr, queryName: nullableStr }),
  jwtAuth: obj({
    enabled: bool,
    secretSigned: bool,
    keyPairSigned: bool,
    includeRequestAttributes: bool,
    maxJwtLifespanSecs: { type: ['integer', 'null'], minimum: 0 },
    headerName: nullableStr,
    queryName: nullableStr,
    cookieName: nullableStr,
  }),
  routing: obj({
    noneTagIn: strArr,
    oneTagIn: strArr,
    allTagsIn: strArr,
    noneMetaIn: strMap,
    oneMetaIn: strMap,
    allMetaIn: strMap,
    noneMetaKeysIn: strArr,
    oneMetaKeyIn: strArr,
    allMetaKeysIn: strArr,
  }),
});

export const serviceGroupSchema: Schema = obj({ ...common });

export const serviceDescriptorSchema: Schema = obj(
  {
    ...common,
    enabled: bool,
    groups: strArr,
    groupId: str,
    env: str,
    domain: str,
    subdomain: str,
    hosts: strArr,
    paths: strArr,
    matchingRoot: str,
    root: str,
    stripPath: bool,
    handleLegacyDomain: bool,
    enabledAdditionalHosts: bool,
    targets: {
      // array of entries, or one object `{serviceName, servicePort}`
      type: ['array', 'object'],
      items: targetEntry,
      properties: serviceTargets['properties'],
    },
    targetsFrom: serviceTargets,
    targetsLoadBalancing: obj({ type: str, ratio: { type: 'number', minimum: 0, maximum: 1 } }),
    userFacing: bool,
    privateApp: bool,
    forceHttps: bool,
    maintenanceMode: bool,
    buildMode: bool,
    strictlyPrivate: bool,
    sendOtoroshiHeadersBack: bool,
    readOnly: bool,
    xForwardedHeaders: bool,
    overrideHost: bool,
    allowHttp10: bool,
    detectApiKeySooner: bool,
    letsEncrypt: bool,
    tcpUdpTunneling: bool,
    enforceSecureCommunication: bool,
    sendInfoToken: bool,
    sendStateChallenge: bool,
    secComVersion: { type: 'integer', enum: [1, 2] },
    secComInfoTokenVersion: { type: 'string', enum: ['Legacy', 'Latest', 'legacy', 'latest'] },
    secComTtl: msOrDate,
    publicPatterns: strArr,
    privatePatterns: strArr,
    securityExcludedPatterns: strArr,
    additionalHeaders: strMap,
    additionalHeadersOut: strMap,
    missingOnlyHeadersIn: strMap,
    missingOnlyHeadersOut: strMap,
    removeHeadersIn: strArr,
    removeHeadersOut: strArr,
    headersVerification: strMap,
    matchingHeaders: strMap,
    clientConfig,
    ipFiltering: obj({ whitelist: strArr, blacklist: strArr }),
    healthCheck: obj({ enabled: bool, url: str }),
    cors: obj({
      enabled: bool,
      allowOrigin: str,
      exposeHeaders: strArr,
      allowHeaders: strArr,
      allowMethods: strArr,
      excludedPatterns: strArr,
      maxAge: nonNegInt,
      allowCredentials: bool,
    }),
    redirection: obj({ enabled: bool, code: { type: 'integer', enum: [301, 302, 303, 307, 308] }, to: str }),
    gzip: obj({
      enabled: bool,
      excludedPatterns: strArr,
      whiteList: strArr,
      blackList: strArr,
      bufferSize: nonNegInt,
      chunkedThreshold: nonNegInt,
      compressionLevel: { type: 'integer', minimum: -1, maximum: 9 },
    }),
    canary: obj({
      enabled: bool,
      traffic: { type: 'number', minimum: 0, maximum: 1 },
      targets: { type: 'array', items: targetEntry },
      root: str,
    }),
    api: obj({ exposeApi: bool, openApiDescriptorUrl: { type: ['string', 'null'] } }),
    jwtVerifier: obj({
      type: { type: 'string', enum: ['ref', 'local', 'global'] },
      ids: strArr,
      id: str,
      enabled: bool,
      excludedPatterns: strArr,
    }),
    authConfigRef: str,
    apiKeyConstraints: apiKeyConstraintsSchema,
    restrictions: restrictionsSchema,
  },
  {
    anyOf: [{ required: ['targets'] }, { required: ['targetsFrom'] }],
    'x-oxds-message': 'a ServiceDescriptor needs `targets` (or `targetsFrom`)',
    'x-oxds-missing': 'targets',
  },
);

export const apiKeySchema: Schema = obj({
  ...common,
  clientId: { type: 'string', minLength: 1 },
  clientSecret: { type: 'string', minLength: 1 },
  clientName: str,
  authorizedEntities: strArr,
  authorizedGroup: str,
  enabled: bool,
  readOnly: bool,
  allowClientIdOnly: bool,
  constrainedServicesOnly: bool,
  throttlingQuota: nonNegInt,
  dailyQuota: nonNegInt,
  monthlyQuota: nonNegInt,
  validUntil: msOrDate,
  exportSecret: bool,
  secretName: str,
  daikokuToken: str,
  rotation: obj({ enabled: bool, rotationEvery: nonNegInt, gracePeriod: nonNegInt, nextSecret: str }),
  restrictions: restrictionsSchema,
});

export const certificateSchema: Schema = obj({
  ...common,
  autoRenew: bool,
  chain: str,
  privateKey: str,
  caRef: str,
  ca: bool,
  client: bool,
  exportSecret: bool,
  secretName: str,
  from: msOrDate,
  to: msOrDate,
  csr: obj({
    issuer: str,
    hosts: strArr,
    key: obj({
      algo: { type: 'string', enum: ['rsa', 'ecdsa', 'RSA', 'ECDSA', 'ec', 'EC'] },
      size: { type: 'integer', minimum: 1 },
    }),
    name: { type: 'object' },
    subject: str,
    client: bool,
    ca: bool,
    duration: msOrDate,
    signatureAlg: str,
    digestAlg: str,
  }),
});

export const globalConfigSchema: Schema = obj({
  maintenanceMode: bool,
  trustXForwarded: bool,
  trustedProxies: nonNegInt,
  ipFiltering: obj({ whitelist: strArr, blacklist: strArr }),
  throttlingQuota: nonNegInt,
  perIpThrottlingQuota: nonNegInt,
  limitConcurrentRequests: bool,
  maxConcurrentRequests: nonNegInt,
  useCircuitBreakers: bool,
  endlessIpAddresses: strArr,
  lines: strArr,
  quotasSettings: obj({
    enabled: bool,
    dailyQuotasThreshold: { type: 'number' },
    monthlyQuotasThreshold: { type: 'number' },
  }),
  tlsSettings: obj({ defaultDomain: str, randomIfNotFound: bool }),
});

const algoSettings: Schema = obj(
  {
    type: {
      type: 'string',
      enum: [
        'HSAlgoSettings',
        'RSAlgoSettings',
        'ESAlgoSettings',
        'JWKSAlgoSettings',
        'RSAKPAlgoSettings',
        'ESKPAlgoSettings',
        'KidAlgoSettings',
      ],
    },
    size: int,
    secret: str,
    base64: bool,
    publicKey: str,
    privateKey: str,
    url: str,
    certId: str,
  },
  { required: ['type'] },
);

export const jwtVerifierSchema: Schema = obj({
  ...common,
  strict: bool,
  source: obj(
    { type: { type: 'string', enum: ['InHeader', 'InQueryParam', 'InCookie'] }, name: str, remove: str },
    { required: ['type'] },
  ),
  algoSettings,
  strategy: obj(
    {
      type: { type: 'string', enum: ['PassThrough', 'Sign', 'Transform', 'DefaultToken'] },
      verificationSettings: obj({ fields: strMap, arrayFields: strMap }),
      algoSettings,
    },
    { required: ['type'] },
  ),
});

export const authModuleSchema: Schema = obj({ ...common, type: str });

export const scriptSchema: Schema = obj(
  {
    ...common,
    code: str,
    type: {
      type: 'string',
      enum: ['app', 'transformer', 'validator', 'preroute', 'sink', 'job', 'exporter', 'request-handler', 'composite'],
    },
  },
  { required: ['code'] },
);

const tcpTarget: Schema = obj(
  { host: str, ip: str, port: { type: 'integer', minimum: 1, maximum: 65535 }, tls: bool },
  { required: ['host'] },
);

export const tcpServiceSchema: Schema = obj(
  {
    ...common,
    enabled: bool,
    port: { type: 'integer', minimum: 1, maximum: 65535 },
    interface: str,
    tls: { type: 'string', enum: ['Disabled', 'Enabled', 'PassThrough', 'disabled', 'enabled', 'passthrough'] },
    sni: obj({ enabled: bool, forwardIfNoMatch: bool, forwardsTo: tcpTarget }),
    clientAuth: { type: 'string', enum: ['None', 'Want', 'Need', 'none', 'want', 'need'] },
    rules: { type: 'array', items: obj({ domain: str, targets: { type: 'array', items: tcpTarget } }) },
  },
  { required: ['port'] },
);

export const adminSchema: Schema = obj({
  ...common,
  username: str,
  password: str,
  label: str,
  createdAt: msOrDate,
  type: str,
  rights: { type: 'array' },
});

/** Spec schema per (normalised) kind. */
export const SPEC_SCHEMAS: Readonly<Record<string, Schema>> = {
  ServiceGroup: serviceGroupSchema,
  ServiceDescriptor: serviceDescriptorSchema,
  ApiKey: apiKeySchema,
  Certificate: certificateSchema,
  GlobalConfig: globalConfigSchema,
  JwtVerifier: jwtVerifierSchema,
  AuthModule: authModuleSchema,
  Script: scriptSchema,
  TcpService: tcpServiceSchema,
  Admin: adminSchema,
};

// ------------------------------------------------------------------ validation

// Validators: generated ahead of time (spec-validators.ts) when the generated file matches these
// schemas; otherwise ajv (loaded then) compiles each kind on first use: compiling every schema
// costs a process start-up ~0.2-0.7 s (`translate` of an empty directory, `serve` with few kinds).
let generated: Readonly<Record<string, ValidateFunction>> | null | undefined;
let ajvInstance: Ajv | undefined;
const compiled = new Map<string, ValidateFunction>();
function validatorOf(kind: string): ValidateFunction | undefined {
  // Own keys only: a kind such as `constructor` is not a schema.
  if (!Object.hasOwn(SPEC_SCHEMAS, kind)) return undefined;
  if (generated === undefined) generated = generatedValidators(SPEC_SCHEMAS);
  if (generated !== null) return generated[kind];
  let v = compiled.get(kind);
  if (v === undefined) {
    ajvInstance ??= newAjv();
    v = ajvInstance.compile(SPEC_SCHEMAS[kind]!);
    compiled.set(kind, v);
  }
  return v;
}

/** `/targets/0/weight` → `spec.targets[0].weight` (keys that are not identifiers are quoted). */
export function pointerToField(prefix: string, pointer: string): string {
  let out = prefix;
  if (pointer === '') return out;
  for (const raw of pointer.split('/').slice(1)) {
    const seg = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    if (/^\d+$/.test(seg)) out += `[${seg}]`;
    else if (/^[A-Za-z_$][\w$-]*$/.test(seg)) out += out === '' ? seg : `.${seg}`;
    else out += `[${JSON.stringify(seg)}]`;
  }
  return out;
}

/** The JSON types a `type` error names: `string or number`. */
function typeNames(params: unknown): string {
  return String((params as { type?: unknown }).type).replace(',', ' or ');
}

/** The values an `enum` error allows, JSON-quoted. */
function allowedValues(params: unknown): string {
  return ((params as { allowedValues?: unknown[] }).allowedValues ?? []).map((v) => JSON.stringify(v)).join(', ');
}

function got(data: unknown): string {
  return `, got ${JSON.stringify(data)}`;
}

function typeOf(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  if (typeof v === 'number') return Number.isInteger(v) ? 'integer' : 'number';
  return typeof v;
}

export interface SchemaProblem {
  code: ErrorCode;
  field: string;
  message: string;
}

/**
 * Problems of each spec already checked, by the spec object: parsed objects are never changed, and a
 * rebuild sees the same objects of every file that did not change (and a start-up checks them while
 * the next files are parsed: `prevalidateSpecs`), so each spec is checked once.
 */
const checkedSpecs = new WeakMap<object, { kind: string; problems: readonly SchemaProblem[] }>();

/** Validate `spec` of a proxy.otoroshi.io kind. Unknown kinds have no schema: no problems. */
export function validateSpec(kind: string, spec: unknown, prefix = 'spec'): readonly SchemaProblem[] {
  const memo = prefix === 'spec' && spec !== null && typeof spec === 'object';
  const known = memo ? checkedSpecs.get(spec) : undefined;
  if (known !== undefined && known.kind === kind) return known.problems;
  const validate = validatorOf(kind);
  if (validate === undefined) return [];
  const problems = validate(spec ?? {}) ? [] : ajvErrorsToProblems(validate.errors ?? [], prefix);
  if (memo) checkedSpecs.set(spec, { kind, problems });
  return problems;
}

function ajvErrorsToProblems(errors: readonly ErrorObject[], prefix: string): SchemaProblem[] {
  // anyOf failures: report the anyOf itself once (with our message) and drop its branches' errors.
  const anyOfPaths = errors.filter((e) => e.keyword === 'anyOf').map((e) => e.schemaPath);
  const out: SchemaProblem[] = [];
  const seen = new Set<string>();
  for (const e of errors) {
    if (e.keyword !== 'anyOf' && anyOfPaths.some((p) => e.schemaPath.startsWith(p + '/'))) continue;
    let field = pointerToField(prefix, e.instancePath);
    let code: ErrorCode = 'OXDS_INVALID_FIELD';
    let message: string;
    const parent = (e.parentSchema ?? {}) as Record<string, unknown>;
    switch (e.keyword) {
      case 'required': {
        const missing = String((e.params as { missingProperty?: string }).missingProperty);
        field = pointerToField(field, `/${missing}`);
        code = 'OXDS_MISSING_FIELD';
        message = `missing required field \`${missing}\``;
        break;
      }
      case 'anyOf': {
        const m = parent['x-oxds-missing'];
        if (typeof m === 'string') {
          field = pointerToField(field, `/${m}`);
          code = 'OXDS_MISSING_FIELD';
        } else if (
          typeOf(e.data) === 'object' &&
          Array.isArray(parent['anyOf']) &&
          (parent['anyOf'] as Schema[]).every((s) => 'required' in s)
        ) {
          code = 'OXDS_MISSING_FIELD';
        }
        const msg = parent['x-oxds-message'];
        message =
          typeof msg === 'string'
            ? msg
            : parent['x-kubernetes-int-or-string'] === true
              ? `must be an integer or a string, got ${typeOf(e.data)}`
              : 'does not match any allowed shape';
        break;
      }
      case 'type':
        message = `must be ${typeNames(e.params)}, got ${typeOf(e.data)} ${JSON.stringify(e.data)}`;
        break;
      case 'enum':
        message = `must be one of ${allowedValues(e.params)}, got ${JSON.stringify(e.data)}`;
        break;
      default:
        message = (e.message ?? 'is invalid') + (e.data !== undefined && typeof e.data !== 'object' ? got(e.data) : '');
    }
    const k = `${field}|${message}`;
    if (seen.has(k)) continue;
    seen.add(k);
    out.push({ code, field, message });
  }
  return out;
}

/** Same as validateSpec, shaped as ConfigErrors (without object identity; callers add it). */
export function specErrors(kind: string, spec: unknown): Pick<ConfigError, 'code' | 'field' | 'message'>[] {
  return [...validateSpec(kind, spec)];
}
