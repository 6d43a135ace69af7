// Validation of one message given as a plain object (fromObject form): the strict shape check,
// PGV rules, encode, and a decode round trip proving nothing was dropped (run for the values whose
// exact encoding the shape check cannot prove, docs/decisions.md). One checked encoder pass answers
// first; these reporting passes run only when it doubts (docs/decisions.md). Generic protobuf: which
// messages to validate, and what a failure means, is the caller's (src/xds/validate.ts).
import protobuf from 'protobufjs';
import type { ProtoObject } from '../loader.js';
import { resolveType } from '../json.js';
import { Ctx, kindOf, type ValidationResult } from './context.js';
import { localRules, typeHasWork, visitMessage } from './pgv-rules.js';
import { shapeMessage } from './shape.js';
import { compareMessage } from './round-trip.js';
import { encodeChecked, encodePlain } from './encode.js';

export { formatIssue, type ValidationIssue, type ValidationResult } from './context.js';
export { checkRules } from './pgv-rules.js';

/**
 * Strict shape check (unknown keys, wrong shapes, unknown enum names / @type), encode, PGV rules,
 * and a decode round trip proving nothing was dropped where the shape check cannot prove it.
 * `bytes` is the encoded message.
 */
export function validateMessage(typeNameOrUrl: string, obj: ProtoObject): ValidationResult {
  return validateWith(typeNameOrUrl, obj, true);
}

/**
 * What `validateMessage` answers, from the reporting passes alone (no checked encoder pass first):
 * the reference its fast path is tested against.
 */
export function validateReporting(typeNameOrUrl: string, obj: ProtoObject): ValidationResult {
  return validateWith(typeNameOrUrl, obj, false);
}

function validateWith(typeNameOrUrl: string, obj: ProtoObject, fast: boolean): ValidationResult {
  let type: protobuf.Type;
  try {
    type = resolveType(typeNameOrUrl);
  } catch (e) {
    return {
      ok: false,
      issues: [{ path: '', rule: 'type', message: `unknown message type ${typeNameOrUrl}: ${(e as Error).message}` }],
    };
  }
  if (typeof obj !== 'object' || obj === null || Array.isArray(obj)) {
    return {
      ok: false,
      issues: [{ path: '', rule: 'shape.message', message: `expected a ${type.name} object, got ${kindOf(obj)}` }],
    };
  }
  // One pass that only answers "valid?": the encoder's size pass, checking the shape and each
  // message's own PGV rules as it goes. Any doubt (or defect): the passes below, which report.
  const proven = fast ? encodeChecked(type, obj, localRules) : null;
  if (proven !== null) return { ok: true, bytes: proven };
  const ctx = new Ctx();
  shapeMessage(type, obj, ctx);
  const shapeOk = ctx.issues.length === 0;
  if (typeHasWork(type)) {
    try {
      visitMessage(type, obj, ctx);
    } catch (e) {
      // Only reachable on malformed input (already reported by the shape check).
      if (shapeOk) throw e;
      ctx.path.length = 0;
    }
  }
  if (!shapeOk) return { ok: false, issues: ctx.issues };
  let bytes: Uint8Array | null = encodePlain(type, obj);
  // The compiled encoder writes protobufjs' bytes without its message tree; what it cannot prove
  // exact (see proto/check/encode.ts) protobufjs encodes, and reports what it refuses.
  if (bytes === null)
    try {
      bytes = type.encode(type.fromObject(obj)).finish();
    } catch (e) {
      ctx.issues.push({ path: '', rule: 'encode', message: `cannot encode: ${(e as Error).message}` });
      return { ok: false, issues: ctx.issues };
    }
  if (ctx.issues.length > 0) return { ok: false, issues: ctx.issues };
  // What the round trip would refuse, the shape check flagged: the rest encodes exactly
  // (docs/decisions.md, "Round trip only where the shape check cannot prove it").
  if (!ctx.needsRoundTrip) return { ok: true, bytes };
  let back: Record<string, unknown>;
  try {
    back = type.decode(bytes) as unknown as Record<string, unknown>;
  } catch (e) {
    return {
      ok: false,
      issues: [{ path: '', rule: 'decode', message: `encoded bytes do not decode: ${(e as Error).message}` }],
    };
  }
  compareMessage(type, obj, back, ctx);
  if (ctx.issues.length > 0) return { ok: false, issues: ctx.issues };
  return { ok: true, bytes };
}
