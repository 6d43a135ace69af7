// Contracts between translate (pure), validate, the snapshot cache and the ADS server.
import type { ProtoObject, ResourceKind } from '../../proto/loader.js';
import type { ConfigError } from '../model/types.js';

export type NodeType = 'envoy' | 'grpc';

/** Resources in protobufjs plain-object form (see ProtoObject), one list per xDS type. */
export interface ResourceSet {
  listeners: ProtoObject[];
  routes: ProtoObject[];
  clusters: ProtoObject[];
  endpoints: ProtoObject[];
  secrets: ProtoObject[];
}

export const RESOURCE_SET_KEYS: Record<ResourceKind, keyof ResourceSet> = {
  listener: 'listeners',
  route: 'routes',
  cluster: 'clusters',
  endpoint: 'endpoints',
  secret: 'secrets',
};

/** Where Envoy reaches our ext_authz Check service, and how it calls it. */
export interface AuthzTarget {
  /** IP (STATIC cluster) or DNS name (STRICT_DNS cluster) of the Check service, as Envoy sees it. */
  address: string;
  port: number;
  /** Check call timeout (also the connect timeout of the cluster). */
  timeoutMs: number;
  /** Allow the request when the Check service fails (unreachable, timeout); else 503. */
  failureModeAllow: boolean;
  /** Further ext_authz replicas: the cluster load-balances over `address:port` and these. */
  replicas?: ReadonlyArray<{ address: string; port: number }>;
  /** The Check service speaks TLS: Envoy verifies its certificate against `trustedCa` (PEM). */
  tls?: AuthzTls;
}

export interface AuthzTls {
  trustedCa: string;
  /** SNI sent and DNS SAN required; unset: no SNI, and the certificate must name the replica's IP. */
  sni?: string;
}

export interface TranslateOptions {
  /** Envoy gateway listeners. */
  listenAddress: string;
  httpPort: number;
  httpsPort: number;
  /**
   * ext_authz for Envoy nodes (unset: no filter, no cluster, no per-route configs). Proxyless
   * gRPC resources never change with it.
   */
  authz?: AuthzTarget;
  /** Envoy cluster (from its bootstrap) reaching our xDS port: HCMs log to our AccessLogService. */
  accessLogCluster?: string;
  /** Gateway HCMs get the on-demand filter (virtual hosts served by VHDS to Delta Envoys). */
  vhds?: boolean;
}

export const DEFAULT_TRANSLATE_OPTIONS: TranslateOptions = {
  listenAddress: '0.0.0.0',
  httpPort: 8080,
  httpsPort: 8443,
};

export interface TranslateOutput {
  envoy: ResourceSet;
  /**
   * Proxyless gRPC resources. `listeners` holds an api_listener for every concrete descriptor
   * host; names matching a wildcard host are answered on demand via grpcListenerFor().
   */
  grpc: ResourceSet;
  /** Host patterns served to gRPC clients (used to answer listener names on demand). */
  grpcDomains: string[];
  /** Problems found while translating (invalid user input that survived buildModel, Envoy rule violations). */
  errors: ConfigError[];
}

/** One resource ready to send: encoded once, hashed once. */
export interface VersionedResource {
  name: string;
  kind: ResourceKind;
  /** Content hash of the encoded bytes (the Delta xDS per-resource version). */
  version: string;
  /** Encoded message bytes (the `value` of the Any). */
  bytes: Uint8Array;
  object: ProtoObject;
}

export type ResourceMaps = { [K in ResourceKind]: ReadonlyMap<string, VersionedResource> };

export interface Snapshot {
  /** `${bootId}-${seq}`: never reused across restarts. */
  version: string;
  nodeType: NodeType;
  /** The cache key it is published under when not its node type (a sidecar's `sidecar|…` key). */
  cacheKey?: string;
  resources: ResourceMaps;
  /** Resources produced on demand for explicitly requested names (gRPC listeners). */
  resolve(kind: ResourceKind, name: string): VersionedResource | undefined;
  /** The VHDS shape of the route configurations, served to Delta Envoys instead (see src/xds/vhds.ts). */
  vhds?: VhdsView;
}

/** A virtual host as a VHDS resource: named `<route configuration>/<domain>`, encoded once. */
export interface VhdsResource {
  name: string;
  version: string;
  bytes: Uint8Array;
}

/** Route configurations split for VHDS: shells (no inline virtual hosts) and their virtual hosts. */
export interface VhdsView {
  /** Route configuration name → its shell (`vhds` over ADS, no virtual hosts). */
  routes: ReadonlyMap<string, VersionedResource>;
  /** VirtualHost resources by name. */
  vhosts: ReadonlyMap<string, VhdsResource>;
  /** Route configuration name → its virtual hosts, sorted by name. */
  byConfig: ReadonlyMap<string, readonly VhdsResource[]>;
  /** Route configuration name → domain → virtual host name (to answer on-demand aliases). */
  domains: ReadonlyMap<string, ReadonlyMap<string, string>>;
  /** A subscription to a route configuration's name gets all its virtual hosts; else only on demand. */
  eager: boolean;
}
