// TcpServices on the gateway: a listener each, unless its port is taken or Envoy would refuse it.
import type { ProtoObject } from '../../proto/loader.js';
import { TYPE_URLS } from '../../proto/loader.js';
import type { ConfigError, TcpServiceModel } from '../model/types.js';
import { nameOfKey, originFields } from '../model/ids.js';
import { check } from './emit.js';

/** An address Envoy listens on, and what it is, for conflicts. */
export interface Bound {
  address: string;
  port: number;
  what: string;
}

const ANY_ADDRESS = new Set(['0.0.0.0', '::', '']);

/** Two listeners on one port collide when their addresses are equal or either is a wildcard one. */
function overlaps(a: Bound, b: Bound): boolean {
  if (a.port === 0 || a.port !== b.port) return false;
  return a.address === b.address || ANY_ADDRESS.has(a.address) || ANY_ADDRESS.has(b.address);
}

/** Why a TcpService's listener cannot be sent: its port is taken, or a resource breaks Envoy's rules. */
export function tcpProblem(
  t: TcpServiceModel,
  listener: ProtoObject,
  clusters: readonly ProtoObject[],
  taken: readonly Bound[],
): ConfigError | undefined {
  const base = {
    kind: 'TcpService',
    namespace: t.namespace,
    name: nameOfKey(t.sourceKey, t.namespace),
    severity: 'error' as const,
    ...originFields(t.origin),
  };
  const clash = taken.find((b) => overlaps({ address: t.interface, port: t.port, what: '' }, b));
  if (clash)
    return {
      ...base,
      code: 'OXDS_ROUTE_CONFLICT',
      field: 'spec.port',
      message: `port ${t.port} on ${t.interface} is already used by ${clash.what}: listener not published`,
    };
  const issue =
    check(TYPE_URLS.listener, listener) ??
    clusters.map((c) => check(TYPE_URLS.cluster, c)).find((x) => x !== undefined);
  if (issue)
    return {
      ...base,
      code: 'OXDS_ENVOY_VALIDATION',
      field: 'spec',
      message: `listener${issue.path ? ` at ${issue.path}` : ''} violates ${issue.rule}: ${issue.message}`,
    };
  return undefined;
}
