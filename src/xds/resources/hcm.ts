// HttpConnectionManager builders (the typed_config of the HCM network filter and api_listener).
import type {
  Packed,
  envoy_config_accesslog_v3_AccessLog as AccessLog,
  envoy_extensions_filters_network_http_connection_manager_v3_HttpFilter as HttpFilter,
  envoy_extensions_filters_network_http_connection_manager_v3_Rds as Rds,
  envoy_extensions_filters_network_http_connection_manager_v3_ResponseMapper as ResponseMapper,
} from '../../../proto/envoy-types.js';
import { TYPE_URL } from '../../../proto/type-urls.js';
import { SHARED_ADS_CONFIG_SOURCE, adsConfigSource, wrapped } from './common.js';
import { frozen } from '../shapes.js';

/** The router HTTP filter, with the typed_config both grpc-js-xds and C-core require. */
export function routerFilter(name = 'envoy.filters.http.router'): HttpFilter {
  return { name, typedConfig: { '@type': TYPE_URL.Router } };
}

/**
 * On-demand VHDS: a request for a host the route table does not hold yet waits while Envoy asks
 * the server for that virtual host. Does nothing when the route configuration has no `vhds`.
 */
export function onDemandFilter(): HttpFilter {
  return { name: 'envoy.filters.http.on_demand', typedConfig: { '@type': TYPE_URL.OnDemand } };
}

/** RDS over ADS. */
export function rds(routeConfigName: string): Rds {
  return { configSource: adsConfigSource(), routeConfigName };
}

/** Gateway HCM options of the GlobalConfig and edge features. */
export interface HcmOptions {
  /** X-Forwarded-For hops appended by trusted proxies in front of Envoy (GlobalConfig trusted proxies). */
  xffNumTrustedHops?: number;
  /** Local reply mappers (Otoroshi's error bodies for RBAC / rate-limit replies). */
  localReplyMappers?: readonly ResponseMapper[];
}

/**
 * Gateway HCM: RDS over ADS, `filters` (e.g. ext_authz) then the router, AUTO codec, normalised
 * paths, any Host port stripped before virtual-host matching (Otoroshi strips the port), upstream
 * Server header passed through.
 */
export function httpConnectionManager(
  statPrefix: string,
  routeConfigName: string,
  filters: readonly HttpFilter[] = [],
  accessLogCluster?: string,
  opts: HcmOptions = {},
): Packed<'HttpConnectionManager'> {
  const hcm: Packed<'HttpConnectionManager'> = {
    '@type': TYPE_URL.HttpConnectionManager,
    statPrefix,
    codecType: 'AUTO',
    rds: rds(routeConfigName),
    httpFilters: [...filters, routerFilter()],
    normalizePath: wrapped(true),
    mergeSlashes: true,
    // Encoded slashes (%2F, %5C) are refused (400): no two proxies agree on what they mean.
    pathWithEscapedSlashesAction: 'REJECT_REQUEST',
    stripAnyHostPort: true,
    serverHeaderTransformation: 'PASS_THROUGH',
    // Otoroshi's allowHttp10 defaults to true (Envoy refuses HTTP/1.0 by default).
    httpProtocolOptions: { acceptHttp_10: true },
    // The client address (RBAC remote_ip, X-Forwarded-For) is the peer, or the address trusted proxies report.
    useRemoteAddress: wrapped(true),
    ...(opts.xffNumTrustedHops !== undefined && opts.xffNumTrustedHops > 0
      ? { xffNumTrustedHops: opts.xffNumTrustedHops }
      : {}),
    ...(opts.localReplyMappers && opts.localReplyMappers.length > 0
      ? { localReplyConfig: { mappers: [...opts.localReplyMappers] } }
      : {}),
  };
  const log = grpcAccessLog(accessLogCluster);
  if (log) hcm.accessLog = [log];
  return hcm;
}

/**
 * Envoy's gRPC access logger (ALS) towards `cluster` — the cluster of the bootstrap that points
 * at our xDS port, where the AccessLogService is served. Logs the apikey client id ext_authz set.
 */
export function grpcAccessLog(cluster: string | undefined): AccessLog | undefined {
  if (!cluster) return undefined;
  return {
    name: 'envoy.access_loggers.http_grpc',
    typedConfig: {
      '@type': TYPE_URL.HttpGrpcAccessLogConfig,
      commonConfig: {
        logName: 'otoroshi-xds',
        grpcService: { envoyGrpc: { clusterName: cluster } },
        transportApiVersion: 'V3',
      },
      additionalRequestHeadersToLog: ['otoroshi-client-id'],
    },
  };
}

/** Proxyless gRPC HCM (inside an api_listener): RDS over ADS and a router filter, nothing else. */
/** What every proxyless gRPC api_listener HCM shares (one object each: listeners are never mutated). */
const GRPC_HTTP_FILTERS = frozen([routerFilter('router')]);

export function grpcHttpConnectionManager(
  statPrefix: string,
  routeConfigName: string,
): Packed<'HttpConnectionManager'> {
  return {
    '@type': TYPE_URL.HttpConnectionManager,
    statPrefix,
    rds: { configSource: SHARED_ADS_CONFIG_SOURCE, routeConfigName },
    httpFilters: GRPC_HTTP_FILTERS,
  };
}
