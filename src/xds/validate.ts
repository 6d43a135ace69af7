// The Envoy-specific side of validation: what we validate (the xDS resources we publish, by kind
// or type URL, as Envoy will check them on receipt) and how a failure is reported (an error
// naming the resource, which is then not sent). The checks themselves are generic protobuf code
// in proto/check/: strict shape, PGV rules, encode/decode round trip.
import type { ProtoObject } from '../../proto/loader.js';
import { TYPE_URLS, type ResourceKind } from '../../proto/type-urls.js';
import { validateMessage, type ValidationIssue, type ValidationResult } from '../../proto/check/validate.js';
import type { ConfigError } from '../model/types.js';
import type { NodeType } from './types.js';
import { resourceName } from './snapshot.js';

export { checkRules, formatIssue, type ValidationIssue, type ValidationResult } from '../../proto/check/validate.js';

/**
 * Validates `obj` as the message of `typeNameOrUrl` (an xDS resource or any part of one) the way
 * Envoy will: `bytes` is the encoded message when it passes.
 */
export function validateResource(typeNameOrUrl: string, obj: ProtoObject): ValidationResult {
  return validateMessage(typeNameOrUrl, obj);
}

/** Validates an xDS resource of `kind`. */
export function validateKind(kind: ResourceKind, obj: ProtoObject): ValidationResult {
  return validateMessage(TYPE_URLS[kind], obj);
}

/** `path: message; path: message` */
export function issuesText(issues: readonly ValidationIssue[]): string {
  return issues.map((i) => `${i.path}: ${i.message}`).join('; ');
}

/** The error of a resource that failed validation: it is not sent to `nodeType` nodes. */
export function rejectedResource(
  nodeType: NodeType,
  kind: ResourceKind,
  obj: ProtoObject,
  issues: readonly ValidationIssue[],
): ConfigError {
  const name = resourceName(kind, obj);
  return {
    code: 'OXDS_ENVOY_VALIDATION',
    severity: 'error',
    kind: kind,
    name,
    message: `${nodeType} ${kind} ${name} rejected, not sent: ${issuesText(issues)}`,
  };
}
