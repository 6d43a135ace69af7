// What the three checks of a message share: the issue type, the path being visited and how a
// value is shown in a message. Paths use the loaded (camelCase) field names: `a.b[0]["k"](Type)`.
import protobuf from 'protobufjs';
import { resolvedTypeOf } from '../loader.js';
import { fullNameOf } from '../json.js';

export interface ValidationIssue {
  path: string;
  rule: string;
  message: string;
}
export type ValidationResult = { ok: true; bytes: Uint8Array } | { ok: false; issues: ValidationIssue[] };

/** `virtualHosts[0].domains: must have at least 1 item(s) (repeated.min_items)` */
export function formatIssue(i: ValidationIssue): string {
  return `${i.path || '<root>'}: ${i.message} (${i.rule})`;
}

/** A map key on the path, shown as `["key"]` only when an issue is reported (not per entry visited). */
export class MapKey {
  constructor(readonly key: string) {}
}

export type Seg = string | number | MapKey; // '.name', '(Type)', a map key or an index

function showSeg(s: Seg): string {
  return typeof s === 'number' ? `[${s}]` : typeof s === 'string' ? s : `[${JSON.stringify(s.key)}]`;
}

export class Ctx {
  readonly path: Seg[] = [];
  issues: ValidationIssue[] = [];
  /**
   * Set by the shape check on a value whose encoding it cannot prove exact (see docs/decisions.md,
   * "Round trip only where the shape check cannot prove it"): only then is the round trip run.
   */
  needsRoundTrip = false;
  report(rule: string, message: string, extra?: Seg): void {
    let p = '';
    for (const s of this.path) p += showSeg(s);
    if (extra !== undefined) p += showSeg(extra);
    if (p.startsWith('.')) p = p.slice(1);
    this.issues.push({ path: p, rule, message });
  }
}

export function hasOwn(o: object, k: string): boolean {
  return Object.prototype.hasOwnProperty.call(o, k);
}

export function isPresent(o: Record<string, unknown>, k: string): boolean {
  return o[k] != null && hasOwn(o, k);
}

export function show(v: unknown): string {
  const s =
    typeof v === 'string' ? JSON.stringify(v) : typeof v === 'object' && v !== null ? JSON.stringify(v) : String(v);
  return s !== undefined && s.length > 80 ? s.slice(0, 77) + '...' : String(s);
}

export function kindOf(v: unknown): string {
  return v === null ? 'null' : Array.isArray(v) ? 'array' : v instanceof Uint8Array ? 'bytes' : typeof v;
}

/** The message type of a message-typed field, else null. */
export function elemMessageType(f: protobuf.Field): protobuf.Type | null {
  const rt = resolvedTypeOf(f);
  return rt instanceof protobuf.Type ? rt : null;
}

/** 64-bit integer field types, and whether each is unsigned. */
export const LONGS: Record<string, boolean> = {
  int64: false,
  sint64: false,
  sfixed64: false,
  uint64: true,
  fixed64: true,
};

/** The enum type of an enum-typed field, else null. */
export function enumOf(f: protobuf.Field): protobuf.Enum | null {
  const rt = resolvedTypeOf(f);
  return rt instanceof protobuf.Enum ? rt : null;
}

/** A check compiled once per message type: one closure per field name. */
export interface FieldPlan<F> {
  type: protobuf.Type;
  isAny: boolean;
  byName: Record<string, F | undefined>;
}

/** The plan of `type` in `plans`, compiling each field with `compile` on first use. */
export function compiledPlan<F>(
  plans: WeakMap<protobuf.Type, FieldPlan<F>>,
  type: protobuf.Type,
  compile: (f: protobuf.Field) => F,
): FieldPlan<F> {
  let p = plans.get(type);
  if (p) return p;
  // Registered before its fields compile: recursive types reach it again only through closures, lazily.
  p = { type, isAny: fullNameOf(type) === '.google.protobuf.Any', byName: Object.create(null) };
  plans.set(type, p);
  for (const f of type.fieldsArray) p.byName[f.name] = compile(f);
  return p;
}
