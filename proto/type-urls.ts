// The one list of protobuf messages we build, by the short name the code uses, and their type
// URLs. It is also the generator's input (proto/gen-types.ts): the generated types cover these
// messages and every message they reach, nothing else. A new Any payload or xDS resource is added
// here first, then `npm run proto:gen`.

export const TYPE_URL_PREFIX = 'type.googleapis.com/';

/** Short name → full protobuf name, for every message we build (xDS resources and Any payloads). */
export const MESSAGES = {
  // xDS resources
  Listener: 'envoy.config.listener.v3.Listener',
  RouteConfiguration: 'envoy.config.route.v3.RouteConfiguration',
  Cluster: 'envoy.config.cluster.v3.Cluster',
  ClusterLoadAssignment: 'envoy.config.endpoint.v3.ClusterLoadAssignment',
  Secret: 'envoy.extensions.transport_sockets.tls.v3.Secret',
  VirtualHost: 'envoy.config.route.v3.VirtualHost',
  // Any payloads: network, listener and HTTP filters
  HttpConnectionManager: 'envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager',
  TcpProxy: 'envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy',
  TlsInspector: 'envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector',
  OriginalDst: 'envoy.extensions.filters.listener.original_dst.v3.OriginalDst',
  HttpInspector: 'envoy.extensions.filters.listener.http_inspector.v3.HttpInspector',
  Router: 'envoy.extensions.filters.http.router.v3.Router',
  OnDemand: 'envoy.extensions.filters.http.on_demand.v3.OnDemand',
  ExtAuthz: 'envoy.extensions.filters.http.ext_authz.v3.ExtAuthz',
  ExtAuthzPerRoute: 'envoy.extensions.filters.http.ext_authz.v3.ExtAuthzPerRoute',
  Rbac: 'envoy.extensions.filters.http.rbac.v3.RBAC',
  RbacPerRoute: 'envoy.extensions.filters.http.rbac.v3.RBACPerRoute',
  Cors: 'envoy.extensions.filters.http.cors.v3.Cors',
  CorsPolicy: 'envoy.extensions.filters.http.cors.v3.CorsPolicy',
  Compressor: 'envoy.extensions.filters.http.compressor.v3.Compressor',
  CompressorPerRoute: 'envoy.extensions.filters.http.compressor.v3.CompressorPerRoute',
  Gzip: 'envoy.extensions.compression.gzip.compressor.v3.Gzip',
  LocalRateLimit: 'envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit',
  FilterConfig: 'envoy.config.route.v3.FilterConfig',
  // Any payloads: transport sockets, upstream options, access logs, bootstrap extensions
  DownstreamTlsContext: 'envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext',
  UpstreamTlsContext: 'envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext',
  HttpProtocolOptions: 'envoy.extensions.upstreams.http.v3.HttpProtocolOptions',
  HttpGrpcAccessLogConfig: 'envoy.extensions.access_loggers.grpc.v3.HttpGrpcAccessLogConfig',
  CelExpressionFilter: 'envoy.extensions.access_loggers.filters.cel.v3.ExpressionFilter',
  DownstreamConnectionsConfig:
    'envoy.extensions.resource_monitors.downstream_connections.v3.DownstreamConnectionsConfig',
} as const;

export type MessageName = keyof typeof MESSAGES;
export type TypeUrlOf<K extends MessageName> = `${typeof TYPE_URL_PREFIX}${(typeof MESSAGES)[K]}`;

function typeUrls(): { [K in MessageName]: TypeUrlOf<K> } {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(MESSAGES)) out[k] = TYPE_URL_PREFIX + v;
  return out as { [K in MessageName]: TypeUrlOf<K> };
}

/** Type URL of every message we build, by short name (`TYPE_URL.Cluster`). */
export const TYPE_URL = typeUrls();

/** xDS resource type URLs, by resource kind. */
export const TYPE_URLS = {
  listener: TYPE_URL.Listener,
  route: TYPE_URL.RouteConfiguration,
  cluster: TYPE_URL.Cluster,
  endpoint: TYPE_URL.ClusterLoadAssignment,
  secret: TYPE_URL.Secret,
} as const;
export type ResourceKind = keyof typeof TYPE_URLS;

/** Order in which resource kinds are sent (make-before-break: CDS → EDS → LDS → RDS → SDS). */
export const SEND_ORDER: readonly ResourceKind[] = ['cluster', 'endpoint', 'listener', 'route', 'secret'];

export function kindOfTypeUrl(typeUrl: string): ResourceKind | undefined {
  for (const k of SEND_ORDER) if (TYPE_URLS[k] === typeUrl) return k;
  return undefined;
}
