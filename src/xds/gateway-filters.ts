// The gateway's HTTP filter chain and HTTP connection manager options, from the model.
import type { ProtoObject } from '../../proto/loader.js';
import type { Descriptor, Model } from '../model/types.js';
import type { TranslateOptions } from './types.js';
import * as names from './names.js';
import { byString } from './resources/common.js';
import {
  GLOBAL_RBAC_FILTER_NAME,
  RBAC_FILTER_NAME,
  corsFilter,
  globalRateLimitFilter,
  gzipFilter,
  gzipFilterName,
  ipDeniedMapper,
  rbacFilter,
  throttledMapper,
} from './resources/features.js';
import { extAuthzFilter } from './resources/ext-authz.js';
import { onDemandFilter, type HcmOptions } from './resources/hcm.js';
import { upstreamErrorMappers } from './resources/resilience.js';

/** The gateway HTTP filters before the router (Otoroshi features, then ext_authz), in Otoroshi's order. */
export function gatewayFilters(model: Model, descriptors: readonly Descriptor[], o: TranslateOptions): ProtoObject[] {
  const g = model.globalConfig;
  const out: ProtoObject[] = [];
  const rl = g ? globalRateLimitFilter(g) : undefined;
  if (rl) out.push(rl);
  if (g && g.ipFiltering.whitelist.length + g.ipFiltering.blacklist.length > 0)
    out.push(rbacFilter(GLOBAL_RBAC_FILTER_NAME, g.ipFiltering));
  out.push(rbacFilter(RBAC_FILTER_NAME, undefined), corsFilter());
  if (o.authz) out.push(extAuthzFilter(names.EXT_AUTHZ_CLUSTER_NAME, o.authz));
  const gz = new Map<string, ProtoObject>();
  for (const d of descriptors) if (d.enabled && d.gzip) gz.set(gzipFilterName(d.gzip), gzipFilter(d.gzip));
  for (const k of [...gz.keys()].sort(byString)) out.push(gz.get(k) as ProtoObject);
  // First: the virtual host is fetched before any filter reads the route (per-route ext_authz,
  // RBAC, CORS), so a host fetched on demand is authorized like any other.
  if (o.vhds) out.unshift(onDemandFilter());
  return out;
}

export function hcmOptions(model: Model): HcmOptions {
  const g = model.globalConfig;
  return {
    ...(g && g.trustedProxies > 0 ? { xffNumTrustedHops: g.trustedProxies } : {}),
    localReplyMappers: [
      ipDeniedMapper(),
      ...(g && globalRateLimitFilter(g) ? [throttledMapper()] : []),
      ...upstreamErrorMappers(),
    ],
  };
}
