// The plan: what each node role is sent, in Envoy's terms (listeners, route configurations with
// their virtual hosts and ordered routes, clusters, secrets), before any message is built. Route
// entries name the descriptor they come from and list their routes (steps); builders make them. A role is a
// kind of node: a new one (a sidecar) adds its name here and its own RolePlan.
import type { PathMatch } from '../../model/types.js';
import type { RouteVariant } from '../resources/route.js';
import type { RouteStep } from './route-steps.js';

/** 'gateway': Envoy at the edge; 'grpc': proxyless gRPC clients. */
export type NodeRole = 'gateway' | 'grpc';

export interface RoutePlan {
  /** The descriptor whose routes these are. */
  descriptor: string;
  /** Index in the descriptor's paths (absent: no path, a catch-all). */
  pathIndex?: number;
  path?: PathMatch;
  /** Host patterns checked on :authority (absent: every host of the virtual host matches). */
  authority?: string[];
  /** Its routes, in order (none: this variant has no equivalent, e.g. a 503 for gRPC clients). */
  steps: RouteStep[];
}

export interface VirtualHostPlan {
  name: string;
  domains: string[];
  routes: RoutePlan[];
  /** Otoroshi's 404 closes the list. */
  notFound: boolean;
}

export interface RouteConfigPlan {
  name: string;
  variant: RouteVariant;
  virtualHosts: VirtualHostPlan[];
}

export interface ListenerPlan {
  name: string;
  kind: 'http' | 'https' | 'tcp' | 'api';
  address?: string;
  port?: number;
  /** The route configuration its HTTP connection manager reads (RDS). */
  routeConfig?: string;
  /** https: the server names of each filter chain (empty: the default chain). */
  serverNames?: string[][];
}

export interface ClusterPlan {
  name: string;
  /** The descriptor or TcpService it serves, or what else needs it (ext_authz). */
  owner: string;
  /** The EDS assignment of the cluster, when it has one. */
  endpoints: boolean;
}

export interface RolePlan {
  role: NodeRole;
  listeners: ListenerPlan[];
  routeConfigs: RouteConfigPlan[];
  clusters: ClusterPlan[];
  secrets: string[];
}

export interface Plan {
  roles: RolePlan[];
}
