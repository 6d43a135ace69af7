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
 * Gateway HCM: RDS over ADS, router, AUTO codec, normalised paths, any Host port stripped before
 * virtual-host matching (Otoroshi strips the port), upstream Server header passed through.
 */
export function httpConnectionManager(statPrefix: string, routeConfigName: string): ProtoObject {
  return {
    '@type': TYPES.hcm,
    statPrefix,
    codecType: 'AUTO',
    rds: rds(routeConfigName),
    httpFilters: [routerFilter()],
    normalizePath: wrapped(true),
    mergeSlashes: true,
    stripAnyHostPort: true,
    serverHeaderTransformation: 'PASS_THROUGH',
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
