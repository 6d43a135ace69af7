// The translated config as ONE static Envoy bootstrap: what `otoroshi-xds validate --envoy` hands
// to `envoy --mode validate`. RDS, EDS and SDS references are inlined (route configurations into
// their HCM, endpoints into their cluster as a STATIC load assignment, secrets into
// static_resources.secrets), so Envoy checks every resource exactly as it would over ADS.
import { gatewayBootstrap, GATEWAY_RUNTIME } from './bootstrap.js';

type Json = Record<string, unknown>;

export interface ConfigJson {
  listeners: unknown[];
  routes: unknown[];
  clusters: unknown[];
  endpoints: unknown[];
  secrets: unknown[];
}

function isObject(v: unknown): v is Json {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function byName(list: unknown[], key: 'name' | 'clusterName'): Map<string, Json> {
  const m = new Map<string, Json>();
  for (const o of list) if (isObject(o) && typeof o[key] === 'string') m.set(o[key], o);
  return m;
}

/** Copies `v`, inlining RDS (by route config name) and dropping SDS config sources (static secrets). */
function inline(v: unknown, routes: Map<string, Json>): unknown {
  if (Array.isArray(v)) return v.map((x) => inline(x, routes));
  if (!isObject(v)) return v;
  const out: Json = {};
  for (const [k, x] of Object.entries(v)) {
    if (k === 'rds' && isObject(x) && typeof x.routeConfigName === 'string') {
      out.routeConfig = routes.get(x.routeConfigName) ?? { name: x.routeConfigName };
    } else if (k === 'sdsConfig' && typeof v.name === 'string') {
      // A secret reference without a config source names a static secret.
      continue;
    } else {
      out[k] = inline(x, routes);
    }
  }
  return out;
}

function staticCluster(c: Json, endpoints: Map<string, Json>): Json {
  if (c.type !== 'EDS') return c;
  const { edsClusterConfig, ...rest } = c;
  const service =
    isObject(edsClusterConfig) && typeof edsClusterConfig.serviceName === 'string'
      ? edsClusterConfig.serviceName
      : String(c.name);
  return { ...rest, type: 'STATIC', loadAssignment: endpoints.get(service) ?? { clusterName: service, endpoints: [] } };
}

/** A bootstrap (proto3 JSON field names) holding every resource of `set` as a static resource. */
export function staticBootstrap(set: ConfigJson): Json {
  const routes = byName(set.routes, 'name');
  const endpoints = byName(set.endpoints, 'clusterName');
  // The same node, runtime and bootstrap cluster as a gateway (ALS streams to that cluster).
  const gateway = gatewayBootstrap({
    xdsAddress: '127.0.0.1:18000',
    nodeId: 'otoroshi-xds-validate',
    nodeCluster: 'otoroshi-gateway',
    adminAddress: '127.0.0.1',
    adminPort: 0,
    delta: true,
  });
  const bootstrapClusters = (gateway.static_resources as { clusters: unknown[] }).clusters;
  return {
    node: gateway.node,
    staticResources: {
      listeners: set.listeners.map((l) => inline(l, routes)),
      clusters: [
        ...bootstrapClusters,
        ...set.clusters.filter(isObject).map((c) => inline(staticCluster(c, endpoints), routes)),
      ],
      secrets: set.secrets,
    },
    layeredRuntime: { layers: [{ name: 'static', staticLayer: { ...GATEWAY_RUNTIME } }] },
  };
}
