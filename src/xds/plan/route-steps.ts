// Which routes one planned entry gets in a route configuration variant, in Otoroshi's order:
// redirection, headersVerification (400), readOnly (405), forceHttps (303), ipFiltering (RBAC,
// 403, on the route), maintenance/build (503), then forwarding (customTimeouts first). Direct
// responses and redirects never call ext_authz: Otoroshi answers them before authentication.
import type { CustomTimeout } from '../../model/types.js';
import { sortedBy } from '../resources/common.js';
import type { RouteVariant } from '../resources/route.js';
import type { Entry } from './order.js';

/** The route of `api.openApiDescriptorUrl`: a 302 to it from OPENAPI_PATH. */
export const OPENAPI_PATH = '/.well-known/otoroshi/openapi.json';

/** One route of an entry; `suffix` makes its name unique among the entry's routes. */
export type RouteStep =
  | { kind: 'openapi'; suffix: '~openapi'; to: string }
  | { kind: 'redirect'; suffix: ''; code: number; to: string }
  | { kind: 'header-required'; suffix: string; header: string; value: string }
  | { kind: 'read-only'; suffix: '~ro' }
  | { kind: 'https-redirect'; suffix: '' }
  | { kind: 'unavailable'; suffix: ''; message: string }
  | { kind: 'forward'; suffix: string; timeouts?: CustomTimeout };

/** Steps answered before forwarding on Envoy variants: openapi, redirection, headersVerification, readOnly. */
function envoyGuards(e: Entry): { steps: RouteStep[]; final: boolean } {
  const d = e.c.d;
  const steps: RouteStep[] = [];
  if (d.openApiDescriptorUrl !== undefined && (e.pathIndex ?? 0) === 0)
    steps.push({ kind: 'openapi', suffix: '~openapi', to: d.openApiDescriptorUrl });
  if (d.redirection) {
    steps.push({ kind: 'redirect', suffix: '', code: d.redirection.code, to: d.redirection.to });
    return { steps, final: true };
  }
  sortedBy(Object.entries(d.headersVerification), ([k]) => k).forEach(([header, value], i) =>
    steps.push({ kind: 'header-required', suffix: `~hv${i}`, header, value }),
  );
  if (d.readOnly) steps.push({ kind: 'read-only', suffix: '~ro' });
  return { steps, final: false };
}

/** The routes of an entry for a variant, in order (empty when that variant has no equivalent). */
export function routeSteps(e: Entry, variant: RouteVariant): RouteStep[] {
  const d = e.c.d;
  const guards = variant === 'grpc' ? { steps: [], final: false } : envoyGuards(e);
  const steps: RouteStep[] = guards.steps;
  if (guards.final) return steps;
  if (variant === 'http' && d.forceHttps) return [...steps, { kind: 'https-redirect', suffix: '' }];
  if (d.maintenanceMode || d.buildMode) {
    if (variant === 'grpc') return steps; // grpc-js-xds NACKs a route whose action is not `route`
    const message = d.maintenanceMode ? 'Service in maintenance mode' : 'Service under construction';
    return [...steps, { kind: 'unavailable', suffix: '', message }];
  }
  if (variant !== 'grpc')
    d.clientConfig.customTimeouts.forEach((timeouts, i) =>
      steps.push({ kind: 'forward', suffix: `~ct${i}`, timeouts }),
    );
  return [...steps, { kind: 'forward', suffix: '' }];
}
