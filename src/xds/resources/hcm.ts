// HttpConnectionManager builders (the typed_config of the HCM network filter and api_listener).
import type { ProtoObject } from '../../proto/loader.js';
import { TYPES, adsConfigSource, wrapped } from './common.js';

/** The router HTTP filter, with the typed_config both grpc-js-xds and C-core require. */
export function routerFilter(name = 'envoy.filters.http.router'): ProtoObject {
  return { name, typedConfig: { '@type': TYPES.router } };
}

/** RDS over ADS. */
export function rds(routeConfigName: string): ProtoObject {
  return { configSource: adsConfigSource(), routeConfigName };
}

/**
 * Gateway HCM: RDS over ADS, `filters` (e.g. ext_authz) then the router, AUTO codec, normalised
 * paths, any Host port stripped before virtual-host matching (Otoroshi strips the port), upstream
 * Server header passed through.
 */
export function httpConnectionManager(
  statPrefix: string,
  routeConfigName: string,
  filters: readonly ProtoObject[] = [],
  accessLogCluster?: string,
): ProtoObject {
  const hcm: ProtoObject = {
    '@type': TYPES.hcm,
    statPrefix,
    codecType: 'AUTO',
    rds: rds(routeConfigName),
    httpFilters: [...filters, routerFilter()],
    normalizePath: wrapped(true),
    mergeSlashes: true,
    stripAnyHostPort: true,
    serverHeaderTransformation: 'PASS_THROUGH',
  };
  const log = grpcAccessLog(accessLogCluster);
  if (log) hcm.accessLog = [log];
  return hcm;
}

/**
 * Envoy's gRPC access logger (ALS) towards `cluster` — the cluster of the bootstrap that points
 * at our xDS port, where the AccessLogService is served. Logs the apikey client id ext_authz set.
 */
export function grpcAccessLog(cluster: string | undefined): ProtoObject | undefined {
  if (!cluster) return undefined;
  return {
    name: 'envoy.access_loggers.http_grpc',
    typedConfig: {
      '@type': TYPES.httpGrpcAccessLog,
      commonConfig: { logName: 'otoroshi-xds', grpcService: { envoyGrpc: { clusterName: cluster } }, transportApiVersion: 'V3' },
      additionalRequestHeadersToLog: ['otoroshi-client-id'],
    },
  };
}

/** Proxyless gRPC HCM (inside an api_listener): RDS over ADS and a router filter, nothing else. */
export function grpcHttpConnectionManager(statPrefix: string, routeConfigName: string): ProtoObject {
  return {
    '@type': TYPES.hcm,
    statPrefix,
    rds: rds(routeConfigName),
    httpFilters: [routerFilter('router')],
  };
}
