// The typed intermediate model. It knows nothing of Kubernetes clients or Envoy protos:
// sources produce KubeObjects, buildModel() turns them into this, translate() reads it.

/** A Kubernetes-shaped object as read from a YAML file or the API server. */
export interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata: KubeMetadata;
  spec?: unknown;
  /** v1 Secret / EndpointSlice / Service keep their own top-level fields. */
  [key: string]: unknown;
}

export interface KubeMetadata {
  name: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  creationTimestamp?: string;
  generation?: number;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

/** Where an object came from: enough to name it in every error. */
export interface ObjectOrigin {
  /** File path (file mode) relative to the config directory, or undefined (cluster mode). */
  file?: string;
  /** 0-based document index inside the file. */
  doc?: number;
  /** Monotonic arrival order, used as a tie-breaker for "oldest wins". */
  seq: number;
}

/** Stable key of an object: `<kind>/<namespace>/<name>`. */
export type ObjectKey = string;

export interface StoredObject {
  key: ObjectKey;
  object: KubeObject;
  origin: ObjectOrigin;
}

/** The input of buildModel: every object known to the store. */
export interface ConfigView {
  objects: readonly StoredObject[];
  /** Parse errors of documents that never became objects (bad YAML, no kind, ...). */
  loadErrors: readonly ConfigError[];
}

/** Stable error codes (documented in docs/errors.md). */
export type ErrorCode =
  | 'OXDS_YAML_PARSE'
  | 'OXDS_NOT_AN_OBJECT'
  | 'OXDS_UNKNOWN_KIND'
  | 'OXDS_MISSING_FIELD'
  | 'OXDS_INVALID_FIELD'
  | 'OXDS_INVALID_REGEX'
  | 'OXDS_INVALID_TARGET'
  | 'OXDS_UNRESOLVED_REFERENCE'
  | 'OXDS_DUPLICATE_OBJECT'
  | 'OXDS_ROUTE_CONFLICT'
  | 'OXDS_INVALID_ANNOTATION'
  | 'OXDS_ENVOY_VALIDATION'
  | 'OXDS_ENVOY_REJECTED'
  | 'OXDS_INGRESS_IGNORED'
  | 'OXDS_TOO_MANY_GLOBAL_CONFIGS'
  | 'OXDS_NOT_SUPPORTED'
  | 'OXDS_SKIPPED_KIND'
  | 'OXDS_DNS_FALLBACK'
  | 'OXDS_SKIPPED_FILE'
  | 'OXDS_RESERVED_HEADER';

export interface ConfigError {
  code: ErrorCode;
  message: string;
  /** JSONPath-like field path inside the object, e.g. `spec.targets[0].url`. */
  field?: string;
  kind?: string;
  namespace?: string;
  name?: string;
  file?: string;
  doc?: number;
  /**
   * Warnings and notices do not make an object invalid; a notice is information (an object skipped on purpose, a
   * fallback taken).
   */
  severity: Severity;
}

export type Severity = 'error' | 'warning' | 'notice';

export interface ObjectStatus {
  key: ObjectKey;
  kind: string;
  namespace: string;
  name: string;
  origin: ObjectOrigin;
  state: 'valid' | 'invalid';
  errors: ConfigError[];
}

// ---------------------------------------------------------------- descriptors

export type LoadBalancing =
  'RoundRobin' | 'Random' | 'Sticky' | 'IpAddressHash' | 'BestResponseTime' | 'WeightedBestResponseTime';

export type PathMatchType = 'PlainPrefix' | 'Prefix' | 'Exact';

export interface PathMatch {
  /** The path as written (always starts with `/`). */
  value: string;
  /** PlainPrefix = Otoroshi string prefix (`/api` matches `/apix`); Prefix = k8s segment prefix. */
  type: PathMatchType;
}

export interface SocketEndpoint {
  ip: string;
  port: number;
  /** false for not-ready EndpointSlice endpoints (sent as UNHEALTHY). */
  ready: boolean;
}

export interface Target {
  /** Stable id within the descriptor (`t0`, `t1`, ... in spec order). */
  id: string;
  scheme: 'http' | 'https';
  /** Otoroshi's target.host without port: Host header (overrideHost) and TLS SNI. */
  host: string;
  port: number;
  weight: number;
  /** 'HTTP/1.1' (default) or 'HTTP/2.0'. */
  protocol: 'HTTP/1.0' | 'HTTP/1.1' | 'HTTP/2.0';
  /**
   * Addresses to dial. `static`: IPs known now (IP literal, ipAddress, resolved Service).
   * `dns`: a hostname resolved by the data plane.
   */
  resolution: { type: 'static'; endpoints: SocketEndpoint[] } | { type: 'dns'; hostname: string; port: number };
  /** For Service-backed targets: where endpoints came from (for docs / debugging). */
  service?: { namespace: string; name: string; port: string | number };
  /** `targets[].mtlsConfig` (https targets): upstream TLS settings. */
  mtls?: TargetMtls;
}

export interface ClientConfig {
  useCircuitBreaker: boolean;
  /** Total attempts (1 = no retry). */
  retries: number;
  maxErrors: number;
  retryInitialDelay: number;
  backoffFactor: number;
  connectionTimeout: number;
  idleTimeout: number;
  callAndStreamTimeout: number;
  callTimeout: number;
  globalTimeout: number;
  sampleInterval: number;
  customTimeouts: CustomTimeout[];
}

export interface CustomTimeout {
  path: string;
  connectionTimeout: number;
  idleTimeout: number;
  callAndStreamTimeout: number;
  callTimeout: number;
  globalTimeout: number;
}

export interface HeaderMatch {
  name: string;
  /** Full-match regex on the header value (Otoroshi matchingHeaders). */
  regex: string;
}

export interface Descriptor {
  /** Otoroshi id (annotation `otoroshi.io/id`, or generated). */
  id: string;
  name: string;
  /** Which object produced it. */
  sourceKey: ObjectKey;
  sourceKind: 'ServiceDescriptor' | 'Ingress';
  namespace: string;
  origin: ObjectOrigin;
  /** ISO creationTimestamp when known: older wins route conflicts. */
  createdAt?: string;
  enabled: boolean;
  groups: string[];
  /** Host patterns; `*` matches any characters (including dots), Otoroshi's RegexPool semantics. */
  hosts: string[];
  /** Empty = every path. */
  paths: PathMatch[];
  root: string;
  stripPath: boolean;
  matchingHeaders: HeaderMatch[];
  targets: Target[];
  loadBalancing: LoadBalancing;
  forceHttps: boolean;
  maintenanceMode: boolean;
  buildMode: boolean;
  overrideHost: boolean;
  /** `additionalHeaders: {Host: x}`: the upstream Host (Envoy's host rewrite), over overrideHost. */
  hostRewrite?: string;
  allowHttp10: boolean;
  readOnly: boolean;
  xForwardedHeaders: boolean;
  sendOtoroshiHeadersBack: boolean;
  enforceSecureCommunication: boolean;
  detectApiKeySooner: boolean;
  additionalHeaders: Record<string, string>;
  additionalHeadersOut: Record<string, string>;
  missingOnlyHeadersIn: Record<string, string>;
  missingOnlyHeadersOut: Record<string, string>;
  removeHeadersIn: string[];
  removeHeadersOut: string[];
  headersVerification: Record<string, string>;
  publicPatterns: string[];
  privatePatterns: string[];
  clientConfig: ClientConfig;
  /** ext_authz policy fields (optional; Otoroshi's defaults when absent). */
  apiKeyConstraints?: ApiKeyConstraints;
  restrictions?: Restrictions;
  jwtVerifier?: DescriptorJwtRef;
  /** Edge features; absent = off. */
  ipFiltering?: IpFiltering;
  redirection?: Redirection;
  cors?: CorsSettings;
  gzip?: GzipSettings;
  healthCheck?: HealthCheckSettings;
  canary?: CanarySettings;
  /** `api.openApiDescriptorUrl` when set. */
  openApiDescriptorUrl?: string;
  /** Fields of the spec that this version does not translate (kept for later features). */
  spec: Record<string, unknown>;
}

export interface ServiceGroup {
  id: string;
  name: string;
  description: string;
  sourceKey: ObjectKey;
  namespace: string;
}

export interface ApiKeyQuotas {
  throttlingQuota: number;
  dailyQuota: number;
  monthlyQuota: number;
}

export interface ApiKey extends ApiKeyQuotas {
  clientId: string;
  clientSecret: string;
  clientName: string;
  sourceKey: ObjectKey;
  namespace: string;
  enabled: boolean;
  readOnly: boolean;
  allowClientIdOnly: boolean;
  /** Resolved: `group_<id>` / `service_<id>`. */
  authorizedEntities: string[];
  validUntil?: number;
  tags: string[];
  metadata: Record<string, string>;
  /** ext_authz fields (optional until the ext_authz issue lands). */
  restrictions?: Restrictions;
  rotation?: ApiKeyRotation;
  spec: Record<string, unknown>;
}

/** A TLS certificate known to the model (from a kubernetes.io/tls Secret in this issue). */
export interface TlsCertificate {
  /** SDS secret name: `<namespace>/<name>`. */
  secretName: string;
  sourceKey: ObjectKey;
  certificateChain: string;
  privateKey: string;
  /** DNS names (SANs, or CN when there are none) the certificate serves. */
  dnsNames: string[];
  notAfter?: string;
  /** Otoroshi id (Certificate CRs: annotation or `kubernetes-crd-import-<ns>-<name>`). */
  id?: string;
  /** A CA certificate: may sign other Certificates (`csr.issuer`). */
  ca?: boolean;
  /** Subject DN (RFC 4514-ish, as `X509Certificate.subject` joined with `, `). */
  subject?: string;
  notBefore?: string;
  /** Where to export it as a `kubernetes.io/tls` Secret (Certificate `exportSecret`). */
  exportSecret?: SecretRef;
}

export interface SecretRef {
  namespace: string;
  name: string;
}

/** A Certificate CR's `spec.csr`, as the CA reads it. */
export interface CertificateCsr {
  /** Issuer id or subject DN; see IssueOptions.issuer (which wins when both are given). */
  issuer?: string;
  /** DNS names, IP literals, or URIs (`spiffe://...`) → SubjectAltName entries. */
  hosts?: readonly string[];
  /** Default here: ECDSA P-256 (docs/decisions.md: "Issuers, keys and renewal"; Otoroshi's own default is RSA 2048). */
  key?: { algo?: string; size?: number };
  /** Legacy form of `key`. */
  keyType?: string;
  keySize?: number;
  /** Subject DN, e.g. `UID=x, O=y`. */
  subject?: string;
  /** Used when `subject` is absent: joined as `k=v,k=v`. */
  name?: Readonly<Record<string, string>>;
  client?: boolean;
  ca?: boolean;
  /** Milliseconds, or a duration string (`"30 days"`, `"24h"`, `"90m"`). Default 365 days. */
  duration?: number | string;
  signatureAlg?: string;
  digestAlg?: string;
}

/** A certificate the CA must issue (a Certificate CR with `csr`); materialised outside buildModel. */
export interface CertificateRequest {
  /** SDS secret name `<namespace>/<name>`: a documented contract. */
  secretName: string;
  sourceKey: ObjectKey;
  id: string;
  namespace: string;
  name: string;
  csr: CertificateCsr;
  /** Stable JSON of the csr: a certificate is reused while it is unchanged . */
  fingerprint: string;
  autoRenew: boolean;
  exportSecret?: SecretRef;
}

/** A TLS binding for the HTTPS listener: which SNI names use which certificate. */
export interface TlsBinding {
  secretName: string;
  serverNames: string[];
  /** The object that asked for it (an Ingress TLS section, a Certificate CR), named in warnings. */
  source?: { kind: string; namespace: string; name: string };
}

// ---------------------------------------------------------------- authz policy (ext_authz issue)

/** One `{method, path}` entry of Otoroshi `restrictions`. */
export interface RestrictionPath {
  method: string;
  path: string;
}

export interface Restrictions {
  enabled: boolean;
  allowLast: boolean;
  allowed: RestrictionPath[];
  forbidden: RestrictionPath[];
  notFound: RestrictionPath[];
}

export interface ApiKeyRotation {
  enabled: boolean;
  /** hours */
  rotationEvery: number;
  /** hours */
  gracePeriod: number;
  nextSecret?: string;
}

/** Descriptor `apiKeyConstraints` ; `undefined` names = global default names. */
export interface ApiKeyConstraints {
  basicAuth: { enabled: boolean; headerName?: string; queryName?: string };
  customHeadersAuth: { enabled: boolean; clientIdHeaderName?: string; clientSecretHeaderName?: string };
  clientIdAuth: { enabled: boolean; headerName?: string; queryName?: string };
  jwtAuth: {
    enabled: boolean;
    secretSigned: boolean;
    keyPairSigned: boolean;
    includeRequestAttributes: boolean;
    maxJwtLifespanSecs?: number;
    headerName?: string;
    queryName?: string;
    cookieName?: string;
  };
  routing: {
    noneTagIn: string[];
    oneTagIn: string[];
    allTagsIn: string[];
    noneMetaIn: Record<string, string>;
    oneMetaIn: Record<string, string>;
    allMetaIn: Record<string, string>;
    noneMetaKeysIn: string[];
    oneMetaKeyIn: string[];
    allMetaKeysIn: string[];
  };
}

export type JwtTokenSource =
  | { type: 'InHeader'; name: string; remove: string }
  | { type: 'InQueryParam'; name: string }
  | { type: 'InCookie'; name: string };

export type JwtAlgoSettings =
  | { type: 'HSAlgoSettings'; size: 256 | 384 | 512; secret: string; base64: boolean }
  | { type: 'RSAlgoSettings'; size: 256 | 384 | 512; publicKey: string; privateKey?: string }
  | { type: 'ESAlgoSettings'; size: 256 | 384 | 512; publicKey: string; privateKey?: string }
  | {
      type: 'JWKSAlgoSettings';
      url: string;
      headers: Record<string, string>;
      timeout: number;
      ttl: number;
      kty: 'RSA' | 'EC';
    };

export interface JwtVerificationSettings {
  /** claim → expected string value */
  fields: Record<string, string>;
  /** claim → comma-separated values the claim array must all contain */
  arrayFields: Record<string, string>;
}

export type JwtStrategy =
  | { type: 'PassThrough'; verificationSettings: JwtVerificationSettings }
  | { type: 'Sign'; verificationSettings: JwtVerificationSettings; algoSettings: JwtAlgoSettings }
  | {
      type: 'Transform';
      verificationSettings: JwtVerificationSettings;
      algoSettings: JwtAlgoSettings;
      transformSettings: {
        location: JwtTokenSource;
        mappingSettings: { map: Record<string, string>; values: Record<string, unknown>; remove: string[] };
      };
    };

/** A JwtVerifier CRD (global), or a descriptor's local verifier (id `local:<descriptorId>`). */
export interface JwtVerifierModel {
  id: string;
  name: string;
  sourceKey: ObjectKey;
  namespace: string;
  strict: boolean;
  source: JwtTokenSource;
  algoSettings: JwtAlgoSettings;
  strategy: JwtStrategy;
}

/** The descriptor side: which verifiers apply (Otoroshi's ref semantics). */
export interface DescriptorJwtRef {
  enabled: boolean;
  ids: string[];
  excludedPatterns: string[];
}

export interface Model {
  descriptors: Descriptor[];
  groups: ServiceGroup[];
  apikeys: ApiKey[];
  certificates: TlsCertificate[];
  tls: TlsBinding[];
  /**
   * PEM trust bundle of the mesh CA (root + intermediate), served over SDS as the
   * validation context `otoroshi-ca-bundle`. Unset when no CA is configured.
   */
  caBundle?: string;
  /** Certificate CRs with a `csr`: issued by the CA stage between buildModel and translate. */
  certificateRequests?: CertificateRequest[];
  /** JwtVerifier CRDs and descriptors' local verifiers (optional until the ext_authz issue lands). */
  jwtVerifiers?: JwtVerifierModel[];
  /** TcpService CRDs. */
  tcpServices?: TcpServiceModel[];
  /** The GlobalConfig; absent = Otoroshi's defaults. */
  globalConfig?: GlobalConfigModel;
}

export interface BuildResult {
  model: Model;
  statuses: ObjectStatus[];
}

// ---------------------------------------------------------------- edge features

/** `ipFiltering`: entries are CIDRs (`10.0.0.0/8`) or wildcard patterns (`192.168.1.*`). */
export interface IpFiltering {
  whitelist: string[];
  blacklist: string[];
}

export type RedirectCode = 301 | 302 | 303 | 307 | 308;

export interface Redirection {
  code: RedirectCode;
  to: string;
}

export interface CorsSettings {
  allowOrigin: string;
  exposeHeaders: string[];
  allowHeaders: string[];
  allowMethods: string[];
  excludedPatterns: string[];
  /** seconds */
  maxAge?: number;
  allowCredentials: boolean;
}

export interface GzipSettings {
  excludedPatterns: string[];
  whiteList: string[];
  blackList: string[];
  bufferSize: number;
  chunkedThreshold: number;
  compressionLevel: number;
}

export interface HealthCheckSettings {
  /** Path checked on every target (`GET <url>`). */
  url: string;
}

export interface CanarySettings {
  /** Share of requests sent to the canary targets (0..1). */
  traffic: number;
  targets: Target[];
  root: string;
}

/** Otoroshi `mtlsConfig` of a target; certificate refs resolved to SDS names `<ns>/<name>`. */
export interface TargetMtls {
  /** Client certificates (the first is presented). */
  certs: string[];
  /** Trusted CA certificates (validation context); empty = the mesh CA bundle. */
  trustedCerts: string[];
  trustAll: boolean;
  /** No hostname verification (Otoroshi `loose`). */
  loose: boolean;
  /** Where the mtlsConfig was written (`spec.targets[0].mtlsConfig`), for messages. */
  field?: string;
}

// ---------------------------------------------------------------- TcpService / GlobalConfig

export interface TcpTarget {
  host: string;
  ip?: string;
  port: number;
  tls: boolean;
}

export interface TcpRule {
  /** SNI wildcard pattern (`*` = any). */
  domain: string;
  targets: TcpTarget[];
}

export interface TcpServiceModel {
  id: string;
  name: string;
  sourceKey: ObjectKey;
  namespace: string;
  origin: ObjectOrigin;
  enabled: boolean;
  port: number;
  interface: string;
  tls: 'Disabled' | 'Enabled' | 'PassThrough';
  clientAuth: 'None' | 'Want' | 'Need';
  sni: { enabled: boolean; forwardIfNoMatch: boolean; forwardsTo?: TcpTarget };
  rules: TcpRule[];
}

export interface GlobalConfigModel {
  sourceKey: ObjectKey;
  maintenanceMode: boolean;
  trustXForwarded: boolean;
  /** How many proxies in front of Envoy append to X-Forwarded-For (Envoy xff_num_trusted_hops). */
  trustedProxies: number;
  ipFiltering: IpFiltering;
  /** Calls per second over all services (Otoroshi's 10 s window: quota × 10 per 10 s). */
  throttlingQuota: number;
  perIpThrottlingQuota: number;
}
