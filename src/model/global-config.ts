// GlobalConfig CRD → GlobalConfigModel . One per cluster
// (build.ts keeps the oldest). Fields Envoy cannot express are reported as OXDS_NOT_SUPPORTED.
import type { GlobalConfigModel, StoredObject } from './types.js';
import { asObject, bool, num, type Problems } from './problems.js';
import { ipFilteringFrom } from './edge-features.js';

const QUOTA_DEFAULT = 10_000_000;

export function buildGlobalConfig(so: StoredObject, p: Problems): GlobalConfigModel {
  const spec = asObject(so.object.spec);
  const trustXForwarded = bool(spec, 'trustXForwarded', true);
  // Our extension: how many proxies in front of Envoy append to X-Forwarded-For. Otoroshi trusts
  // the left-most X-Forwarded-For entry when trustXForwarded is on; Envoy counts trusted hops from
  // the right: one hop (a load balancer in front) unless trustedProxies says otherwise.
  const trustedProxies = trustXForwarded ? (num(spec, 'trustedProxies') ?? 1) : 0;
  const g: GlobalConfigModel = {
    sourceKey: so.key,
    maintenanceMode: bool(spec, 'maintenanceMode', false),
    trustXForwarded,
    trustedProxies,
    ipFiltering: ipFilteringFrom(spec['ipFiltering'], 'spec.ipFiltering', p) ?? { whitelist: [], blacklist: [] },
    throttlingQuota: num(spec, 'throttlingQuota') ?? QUOTA_DEFAULT,
    perIpThrottlingQuota: num(spec, 'perIpThrottlingQuota') ?? QUOTA_DEFAULT,
  };
  if (g.perIpThrottlingQuota < QUOTA_DEFAULT) {
    p.warn(
      'OXDS_NOT_SUPPORTED',
      'perIpThrottlingQuota is not supported (Envoy local rate limits have no per-client-IP buckets): ignored',
      'spec.perIpThrottlingQuota',
    );
  }
  if (bool(spec, 'limitConcurrentRequests', false))
    p.warn('OXDS_NOT_SUPPORTED', 'limitConcurrentRequests is not supported: ignored', 'spec.limitConcurrentRequests');
  const endless = spec['endlessIpAddresses'];
  if (Array.isArray(endless) && endless.length > 0)
    p.warn('OXDS_NOT_SUPPORTED', 'endlessIpAddresses is not supported: ignored', 'spec.endlessIpAddresses');
  return g;
}
