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
/** Gateway HCM options of the GlobalConfig and edge features (issue 3). */
export interface HcmOptions {
  /** X-Forwarded-For hops appended by trusted proxies in front of Envoy (GlobalConfig trusted proxies). */
  xffNumTrustedHops?: number;
  /** Local reply mappers (Otoroshi's error bodies for RBAC / rate-limit replies). */
  localReplyMappers?: readonly ProtoObject[];
}

export function httpConnectionManager(
  statPrefix: string,
  routeConfigName: string,
  filters: readonly ProtoObject[] = [],
  accessLogCluster?: string,
  opts: HcmOptions = {},
): ProtoObject {
  const hcm: ProtoObject = {
    '@type': TYPES.hcm,
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
export function grpcAccessLog(cluster: string | undefined): ProtoObject | undefined {
  if (!cluster) return undefined;
  return {
    name: 'envoy.access_loggers.http_grpc',
    typedConfig: {
      '@type': TYPES.httpGrpcAccessLog,
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
export function grpcHttpConnectionManager(statPrefix: string, routeConfigName: string): ProtoObject {
  return {
    '@type': TYPES.hcm,
    statPrefix,
    rds: rds(routeConfigName),
    httpFilters: [routerFilter('router')],
  };
}
