// Envoy bootstraps for this control plane (`otoroshi-xds bootstrap gateway`): everything but the
// connection to the control plane and the admin interface comes over ADS. The object uses proto
// field names (snake_case), as Envoy's YAML does.
import net from 'node:net';
import { createRequire } from 'node:module';
import type * as YamlLib from 'yaml';
import { TYPE_URL } from '../../proto/type-urls.js';

// Loaded on first use: the commands importing this module for its parsers need no YAML library.
const yamlLib = (): typeof YamlLib => createRequire(import.meta.url)('yaml') as typeof YamlLib;

/** The bootstrap cluster that reaches the xDS port; also the one access logs are streamed to. */
export const XDS_CLUSTER_NAME = 'xds_cluster';

/**
 * Runtime values our generated config needs. Envoy rejects a regex whose RE2 program is larger
 * than `re2.max_program_size.error_level` (default 100): host wildcards, `matchingHeaders` and
 * `customTimeouts` patterns compile to larger programs, and one rejected regex would reject the
 * whole route configuration. The limit is raised to what Istio's bootstraps use; a pattern larger
 * still is a NACK, which the server traces back to its object (see docs/envoy.md).
 */
export const RE2_MAX_PROGRAM_SIZE = 32_768;

export const GATEWAY_RUNTIME: Readonly<Record<string, number>> = {
  're2.max_program_size.error_level': RE2_MAX_PROGRAM_SIZE,
  're2.max_program_size.warn_level': RE2_MAX_PROGRAM_SIZE,
};

/** Envoy refuses new downstream connections past this (protects the gateway). */
export const GATEWAY_MAX_DOWNSTREAM_CONNECTIONS = 50_000;

/** The overload manager's downstream connection limit (the runtime key for it is deprecated). */
function overloadManager(): Yamlish {
  return {
    resource_monitors: [
      {
        name: 'envoy.resource_monitors.global_downstream_max_connections',
        typed_config: {
          '@type': TYPE_URL.DownstreamConnectionsConfig,
          max_active_downstream_connections: GATEWAY_MAX_DOWNSTREAM_CONNECTIONS,
        },
      },
    ],
  };
}

export interface XdsTlsOptions {
  /** CA bundle (PEM file) that signed the control plane's serving certificate. */
  caFile?: string;
  /** Client certificate and key (PEM files) when the xDS port requires mTLS. */
  certFile?: string;
  keyFile?: string;
  /** SNI and name checked in the control plane's certificate (default: the xDS host). */
  serverName?: string;
}

export interface GatewayBootstrapOptions {
  /** `HOST:PORT` (or `[v6]:PORT`) where the control plane's --xds-port is reachable. */
  xdsAddress: string;
  nodeId: string;
  nodeCluster: string;
  adminAddress: string;
  adminPort: number;
  /** Incremental (Delta) ADS, else state of the world. */
  delta: boolean;
  tls?: XdsTlsOptions;
  /** Runtime values over GATEWAY_RUNTIME (e.g. a lower `re2.max_program_size.error_level`). */
  runtime?: Record<string, number>;
  /** Sent as `authorization: Bearer <token>` on the xDS stream: the server's --gateway-token proves a gateway. */
  token?: string;
}

export const GATEWAY_DEFAULTS = {
  nodeId: 'otoroshi-gateway',
  nodeCluster: 'otoroshi-gateway',
  adminAddress: '127.0.0.1',
  adminPort: 9901,
  delta: true,
} as const;

/** `host:port`, `[v6]:port` → parts; an error message for anything else. */
export function parseHostPort(s: string): { host: string; port: number } | string {
  const m = /^\[([0-9a-fA-F:.]+)\]:(\d{1,5})$/.exec(s) ?? /^([^:[\]\s]+):(\d{1,5})$/.exec(s);
  const port = m ? Number(m[2]) : NaN;
  if (!m || !m[1] || !(port >= 1 && port <= 65535))
    return `expected HOST:PORT (port 1-65535), got ${JSON.stringify(s)}`;
  return { host: m[1], port };
}

type Yamlish = Record<string, unknown>;

function dataSource(file: string): Yamlish {
  return { filename: file };
}

function xdsTransportSocket(tls: XdsTlsOptions, host: string): Yamlish {
  const common: Yamlish = {};
  if (tls.certFile !== undefined && tls.keyFile !== undefined) {
    common.tls_certificates = [{ certificate_chain: dataSource(tls.certFile), private_key: dataSource(tls.keyFile) }];
  }
  const serverName = tls.serverName ?? host;
  if (tls.caFile !== undefined) {
    common.validation_context = {
      trusted_ca: dataSource(tls.caFile),
      ...(net.isIP(serverName) === 0
        ? { match_typed_subject_alt_names: [{ san_type: 'DNS', matcher: { exact: serverName } }] }
        : {}),
    };
  }
  common.alpn_protocols = ['h2'];
  return {
    name: 'envoy.transport_sockets.tls',
    typed_config: {
      '@type': TYPE_URL.UpstreamTlsContext,
      ...(net.isIP(serverName) === 0 ? { sni: serverName } : {}),
      common_tls_context: common,
    },
  };
}

/**
 * Dead control plane detection on the ADS connection. A rebuild runs on the control plane's event
 * loop, and while it runs nothing reads the socket, so an HTTP/2 PING waits for the rebuild to end:
 * 10,000 descriptors blocked the loop for up to 8.7 s on a 2-core machine at load 18 (0.9 s when
 * idle; bench/loop-block.ts), and a 5 s PING timeout then reset the stream, which made Envoy fetch
 * everything again. TCP keepalive is answered by the kernel, busy process or not: it finds a dead
 * host or a cut network within 30 + 3 × 5 s. The PING stays for a process that is alive but never
 * answers again, with a timeout above any rebuild block measured.
 */
export const XDS_HTTP2_KEEPALIVE = { interval: '30s', timeout: '30s' } as const;
export const XDS_TCP_KEEPALIVE = { keepalive_time: 30, keepalive_interval: 5, keepalive_probes: 3 } as const;

function xdsCluster(host: string, port: number, tls: XdsTlsOptions | undefined): Yamlish {
  return {
    name: XDS_CLUSTER_NAME,
    // An IP needs no resolution; a name (a Kubernetes Service) is re-resolved as pods change.
    type: net.isIP(host) === 0 ? 'STRICT_DNS' : 'STATIC',
    connect_timeout: '5s',
    lb_policy: 'ROUND_ROBIN',
    typed_extension_protocol_options: {
      'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': {
        '@type': TYPE_URL.HttpProtocolOptions,
        explicit_http_config: { http2_protocol_options: { connection_keepalive: XDS_HTTP2_KEEPALIVE } },
      },
    },
    upstream_connection_options: { tcp_keepalive: XDS_TCP_KEEPALIVE },
    load_assignment: {
      cluster_name: XDS_CLUSTER_NAME,
      endpoints: [
        { lb_endpoints: [{ endpoint: { address: { socket_address: { address: host, port_value: port } } } }] },
      ],
    },
    ...(tls ? { transport_socket: xdsTransportSocket(tls, host) } : {}),
  };
}

/** The gateway bootstrap as an object (proto field names). */
export function gatewayBootstrap(o: GatewayBootstrapOptions): Yamlish {
  const hp = parseHostPort(o.xdsAddress);
  if (typeof hp === 'string') throw new Error(`--xds-address: ${hp}`);
  return {
    node: { id: o.nodeId, cluster: o.nodeCluster, metadata: { OXDS_NODE_TYPE: 'envoy' } },
    dynamic_resources: {
      ads_config: {
        api_type: o.delta ? 'DELTA_GRPC' : 'GRPC',
        transport_api_version: 'V3',
        set_node_on_first_message_only: true,
        grpc_services: [
          {
            envoy_grpc: { cluster_name: XDS_CLUSTER_NAME },
            ...(o.token !== undefined
              ? { initial_metadata: [{ key: 'authorization', value: `Bearer ${o.token}` }] }
              : {}),
          },
        ],
      },
      cds_config: { ads: {}, resource_api_version: 'V3' },
      lds_config: { ads: {}, resource_api_version: 'V3' },
    },
    static_resources: { clusters: [xdsCluster(hp.host, hp.port, o.tls)] },
    admin: { address: { socket_address: { address: o.adminAddress, port_value: o.adminPort } } },
    layered_runtime: { layers: [{ name: 'static', static_layer: { ...GATEWAY_RUNTIME, ...(o.runtime ?? {}) } }] },
    overload_manager: overloadManager(),
  };
}

const GATEWAY_HEADER = `# Envoy bootstrap for an otoroshi-xds GATEWAY (edge proxy), printed by \`otoroshi-xds bootstrap gateway\`.
# Everything else comes over ADS:
#   - listeners oxds-http / oxds-https (when TLS certificates exist) and one per TcpService, route
#     configurations, one cluster per descriptor (EDS / STRICT_DNS), SDS secrets;
#   - the ext_authz cluster \`oxds-ext-authz\` and the ext_authz filter in every HCM (unless --envoy-authz off).
# Run the control plane with \`--envoy-als-cluster ${XDS_CLUSTER_NAME}\` to receive access logs (metrics).
`;

export function gatewayBootstrapYaml(o: GatewayBootstrapOptions): string {
  return GATEWAY_HEADER + yamlLib().stringify(gatewayBootstrap(o), { lineWidth: 0 });
}

// ------------------------------------------------------------------ sidecar

/** Node metadata keys a sidecar bootstrap sets (ports and addresses; identity is never taken from them). */
export const SIDECAR_META = {
  role: 'OXDS_ROLE',
  namespace: 'NAMESPACE',
  serviceAccount: 'SERVICE_ACCOUNT',
  appPort: 'OXDS_SIDECAR_APP_PORT',
  inboundPort: 'OXDS_SIDECAR_INBOUND_PORT',
  inboundAddress: 'OXDS_SIDECAR_INBOUND_ADDRESS',
  outboundPort: 'OXDS_SIDECAR_OUTBOUND_PORT',
  proxyPort: 'OXDS_SIDECAR_PROXY_PORT',
} as const;

export const SIDECAR_DEFAULTS = {
  appPort: 8080,
  inboundPort: 15006,
  inboundAddress: '0.0.0.0',
  outboundPort: 15001,
  proxyPort: 15080,
  adminAddress: '127.0.0.1',
  adminPort: 15000,
  nodeCluster: 'otoroshi-sidecar',
  delta: true,
} as const;

export interface SidecarBootstrapOptions {
  xdsAddress: string;
  namespace: string;
  serviceAccount: string;
  /** Default `sidecar~<namespace>~<serviceAccount>`; set it per pod (e.g. `$(POD_NAME).$(POD_NAMESPACE)`). */
  nodeId?: string;
  nodeCluster?: string;
  appPort?: number;
  inboundPort?: number;
  inboundAddress?: string;
  outboundPort?: number;
  /** Explicit HTTP proxy port on 127.0.0.1 (0: none). */
  proxyPort?: number;
  adminAddress?: string;
  adminPort?: number;
  delta?: boolean;
  tls?: XdsTlsOptions;
  token?: string;
}

/** The sidecar bootstrap as an object (proto field names): only the xDS cluster and the admin interface are static. */
export function sidecarBootstrap(o: SidecarBootstrapOptions): Yamlish {
  const d = { ...SIDECAR_DEFAULTS, ...definedOnly(o) };
  const base = gatewayBootstrap({
    xdsAddress: o.xdsAddress,
    nodeId: o.nodeId ?? `sidecar~${o.namespace}~${o.serviceAccount}`,
    nodeCluster: d.nodeCluster,
    adminAddress: d.adminAddress,
    adminPort: d.adminPort,
    delta: d.delta,
    ...(o.tls ? { tls: o.tls } : {}),
    ...(o.token !== undefined ? { token: o.token } : {}),
  });
  const node = base.node as Yamlish;
  node.metadata = {
    OXDS_NODE_TYPE: 'envoy',
    [SIDECAR_META.role]: 'sidecar',
    [SIDECAR_META.namespace]: o.namespace,
    [SIDECAR_META.serviceAccount]: o.serviceAccount,
    [SIDECAR_META.appPort]: String(d.appPort),
    [SIDECAR_META.inboundAddress]: d.inboundAddress,
    [SIDECAR_META.inboundPort]: String(d.inboundPort),
    [SIDECAR_META.outboundPort]: String(d.outboundPort),
    [SIDECAR_META.proxyPort]: String(d.proxyPort),
  };
  // A sidecar is not an edge proxy: the gateway's connection limit does not apply.
  delete base.overload_manager;
  return base;
}

function definedOnly<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

const SIDECAR_HEADER = `# Envoy bootstrap for an otoroshi-xds SIDECAR (one Envoy per pod, next to its application),
# printed by \`otoroshi-xds bootstrap sidecar\`. Everything else comes over ADS, scoped to this
# workload (docs/mesh.md):
#   - oxds-sidecar-inbound: mTLS with the workload's SPIFFE certificate (SDS), forwards to the app port;
#   - oxds-sidecar-outbound (intercepted traffic) and oxds-sidecar-proxy (explicit HTTP proxy on 127.0.0.1).
# The workload identity is what the xDS connection proves (client certificate), never the metadata below.
`;

export function sidecarBootstrapYaml(o: SidecarBootstrapOptions): string {
  return SIDECAR_HEADER + yamlLib().stringify(sidecarBootstrap(o), { lineWidth: 0 });
}
