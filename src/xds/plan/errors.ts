// Errors on the objects a plan comes from, in the shape object statuses carry.
import type { ConfigError, Descriptor } from '../../model/types.js';
import type { ProtoObject } from '../../../proto/loader.js';
import type { ValidationIssue } from '../validate.js';
import * as names from '../names.js';
import { nameOfKey, originFields } from '../../model/ids.js';

/** An error on the object a descriptor comes from (its routes and clusters are not published). */
export function descriptorProblem(
  d: Descriptor,
  code: ConfigError['code'],
  message: string,
  field: string,
): ConfigError {
  return {
    code,
    message: `descriptor ${d.id}: ${message}; its routes and clusters are not published`,
    field,
    kind: d.sourceKind,
    namespace: d.namespace,
    name: nameOfKey(d.sourceKey, d.namespace),
    ...originFields(d.origin),
    severity: 'error',
  };
}

/** An Envoy rule a descriptor's resource breaks. */
export function descriptorError(d: Descriptor, what: string, issue: ValidationIssue): ConfigError {
  const at = issue.path ? ` at ${issue.path}` : '';
  return descriptorProblem(
    d,
    'OXDS_ENVOY_VALIDATION',
    `${what}${at} violates ${issue.rule}: ${issue.message}`,
    issue.path ? `${what}.${issue.path}` : what,
  );
}

/** `virtualHosts["a.example.com"].routes["id/0"].x`: where an issue of a route or virtual host sits. */
export function vhostIssue(v: string, route: ProtoObject | undefined, issue: ValidationIssue): ValidationIssue {
  const vh = `virtualHosts[${JSON.stringify(names.virtualHostName(v))}]`;
  const at = route ? `${vh}.routes[${JSON.stringify(route.name)}]` : vh;
  return { ...issue, path: issue.path ? `${at}.${issue.path}` : at };
}
