// ClusterLoadAssignment builders: one locality per target, weights on locality AND endpoints.
import type {
  ClusterLoadAssignment,
  envoy_config_core_v3_Metadata as Metadata,
  envoy_config_endpoint_v3_LbEndpoint as LbEndpoint,
  envoy_config_endpoint_v3_LocalityLbEndpoints as LocalityLbEndpoints,
} from '../../../proto/envoy-types.js';
import { socketAddress, wrapped } from './common.js';

/** One address of a target, already resolved (IP) or to resolve (hostname, STRICT_DNS only). */
export interface EndpointAddress {
  address: string;
  port: number;
  ready: boolean;
}

/** What a locality is made of: a target's id, weight and addresses. */
export interface LocalityInput {
  targetId: string;
  /** Locality weight (gRPC honours it). */
  weight: number;
  /** Per-endpoint weight (Envoy honours it when locality-weighted LB is off). */
  endpointWeight: number;
  addresses: EndpointAddress[];
  /** Set for auto_host_rewrite when targets do not share one host. */
  hostname?: string;
  /** Endpoint metadata (transport socket match), when any. */
  metadata?: Metadata;
}

export function lbEndpoint(a: EndpointAddress, weight: number, hostname?: string, metadata?: Metadata): LbEndpoint {
  const endpoint: LbEndpoint['endpoint'] = { address: socketAddress(a.address, a.port) };
  if (hostname !== undefined) endpoint.hostname = hostname;
  const out: LbEndpoint = { endpoint };
  if (!a.ready) out.healthStatus = 'UNHEALTHY';
  if (metadata) out.metadata = metadata;
  out.loadBalancingWeight = wrapped(weight);
  return out;
}

/** undefined for a target with no address (a locality with zero endpoints is omitted). */
export function localityLbEndpoints(l: LocalityInput): LocalityLbEndpoints | undefined {
  if (l.addresses.length === 0 || l.weight <= 0) return undefined;
  const sorted = [...l.addresses].sort((a, b) =>
    a.address < b.address ? -1 : a.address > b.address ? 1 : a.port - b.port,
  );
  return {
    locality: { subZone: l.targetId },
    lbEndpoints: sorted.map((a) => lbEndpoint(a, l.endpointWeight, l.hostname, l.metadata)),
    loadBalancingWeight: wrapped(l.weight),
  };
}

export function clusterLoadAssignment(
  clusterName: string,
  localities: readonly LocalityInput[],
): ClusterLoadAssignment {
  const endpoints = [...localities]
    .sort((a, b) => (a.targetId < b.targetId ? -1 : a.targetId > b.targetId ? 1 : 0))
    .map(localityLbEndpoints)
    .filter((e): e is LocalityLbEndpoints => e !== undefined);
  return { clusterName, endpoints };
}
