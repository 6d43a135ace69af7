// Encode/decode round trip comparison. Why: the encoder may still lose what the shape check let
// through (an int64 beyond 2^53 given as a number, a float that does not fit, an Any payload that
// does not decode); comparing the decoded message with the input proves Envoy gets what we built.
import protobuf from 'protobufjs';
import { resolvedTypeOf } from '../loader.js';
import { longToString, typeOfAnyUrl } from '../json.js';
import { Ctx, LONGS, compiledPlan, elemMessageType, hasOwn, show, type FieldPlan, type Seg } from './context.js';

function isDefaultCanon(c: unknown): boolean {
  return c === '' || c === 0 || c === false || c === '0';
}

function sameScalar(a: unknown, b: unknown): boolean {
  return a === b || (typeof a === 'number' && typeof b === 'number' && Number.isNaN(a) && Number.isNaN(b));
}

/** Compares one element (a field value, an array item or a map value) of the input with the decoded one. */
type ElemCmp = (a: unknown, b: unknown, ctx: Ctx, seg: Seg) => void;
/** Compares the values of one field in the input and in the decoded message. */
type FieldCmp = (va: unknown, vb: unknown, ctx: Ctx) => void;

/** The compiled comparison of one message type: a comparer per field name, built once per Type. */
type ComparePlan = FieldPlan<FieldCmp>;

const comparePlans = new WeakMap<protobuf.Type, ComparePlan>();

function planOf(type: protobuf.Type): ComparePlan {
  return compiledPlan(comparePlans, type, compileField);
}

function bytesCanon(v: unknown): unknown {
  if (v == null) return '';
  if (typeof v === 'string') return Buffer.from(v, 'base64').toString('base64');
  const u = v as Uint8Array;
  return Buffer.from(u.buffer, u.byteOffset, u.byteLength).toString('base64');
}

/** The canonical form of a scalar value of `f`, in which the input and the decoded value must agree. */
function canonOf(f: protobuf.Field): (v: unknown) => unknown {
  const rt = resolvedTypeOf(f);
  if (rt instanceof protobuf.Enum) {
    const values = rt.values;
    return (v) => (typeof v === 'string' ? (values[v] ?? v) : Number(v ?? 0));
  }
  const t = f.type;
  const unsigned = LONGS[t];
  if (unsigned !== undefined) return (v) => (v == null ? '0' : longToString(v, unsigned));
  switch (t) {
    case 'string':
      return (v) => v ?? '';
    case 'bool':
      return (v) => v === true;
    case 'bytes':
      return bytesCanon;
    case 'double':
      return (v) => (typeof v === 'string' ? Number(v) : Number(v ?? 0));
    case 'float':
      return (v) => Math.fround(typeof v === 'string' ? Number(v) : Number(v ?? 0));
    default:
      return (v) => Number(v ?? 0);
  }
}

function messageCmp(mt: protobuf.Type): ElemCmp {
  let plan: ComparePlan | undefined;
  return (a, b, ctx, seg) => {
    if (a == null && b == null) return;
    if (a == null || b == null) {
      ctx.report(
        'roundtrip',
        a == null ? 'value appeared after encode/decode' : 'message was lost in encode/decode',
        seg,
      );
      return;
    }
    ctx.path.push(seg);
    runPlan((plan ??= planOf(mt)), a as Record<string, unknown>, b as Record<string, unknown>, ctx);
    ctx.path.pop();
  };
}

function scalarCmp(canon: (v: unknown) => unknown): ElemCmp {
  return (a, b, ctx, seg) => {
    // The canonical forms are primitives computed by a pure function: identical inputs agree.
    if (a === b) return;
    if (!sameScalar(canon(a), canon(b))) ctx.report('roundtrip', `value ${show(a)} came back as ${show(b)}`, seg);
  };
}

function mapCmp(seg: string, elem: ElemCmp): FieldCmp {
  return (va, vb, ctx) => {
    if (va == null && vb == null) return;
    const ma = (va ?? {}) as Record<string, unknown>;
    const mb = (vb ?? {}) as Record<string, unknown>;
    const ka = Object.keys(ma);
    if (ka.length !== Object.keys(mb).length) {
      ctx.report('roundtrip', `map had ${ka.length} entries, came back with ${Object.keys(mb).length}`, seg);
      return;
    }
    ctx.path.push(seg);
    for (const k of ka) {
      if (!hasOwn(mb, k)) ctx.report('roundtrip', 'map entry was lost', `[${JSON.stringify(k)}]`);
      else elem(ma[k], mb[k], ctx, `[${JSON.stringify(k)}]`);
    }
    ctx.path.pop();
  };
}

function repeatedCmp(seg: string, elem: ElemCmp): FieldCmp {
  return (va, vb, ctx) => {
    if (va == null && vb == null) return;
    const ra = (va ?? []) as unknown[];
    const rb = (vb ?? []) as unknown[];
    if (ra.length !== rb.length) {
      ctx.report('roundtrip', `had ${ra.length} item(s), came back with ${rb.length}`, seg);
      return;
    }
    ctx.path.push(seg);
    for (let i = 0; i < ra.length; i++) elem(ra[i], rb[i], ctx, i);
    ctx.path.pop();
  };
}

function compileField(f: protobuf.Field): FieldCmp {
  const seg = '.' + f.name;
  const mt = elemMessageType(f);
  const canon = mt ? null : canonOf(f);
  const elem = mt ? messageCmp(mt) : scalarCmp(canon as (v: unknown) => unknown);
  if (f.map) return mapCmp(seg, elem);
  if (f.repeated) return repeatedCmp(seg, elem);
  if (mt) return (va, vb, ctx) => elem(va, vb, ctx, seg);
  const c = canon as (v: unknown) => unknown;
  const presence = f.partOf != null;
  return (va, vb, ctx) => {
    if (va === vb) return;
    if (va == null && vb == null) return;
    const ca = c(va);
    const cb = c(vb);
    if (sameScalar(ca, cb)) return;
    // Defaults are interchangeable with absence except for oneof members (presence).
    if (!presence && isDefaultCanon(ca) && isDefaultCanon(cb)) return;
    ctx.report('roundtrip', `value ${show(va)} came back as ${show(vb)}`, seg);
  };
}

/** Compares the plain input `a` with the decoded message `b` (Any payloads decoded on the way). */
export function compareMessage(
  type: protobuf.Type,
  a: Record<string, unknown>,
  b: Record<string, unknown>,
  ctx: Ctx,
): void {
  runPlan(planOf(type), a, b, ctx);
}

function runPlan(plan: ComparePlan, a: Record<string, unknown>, b: Record<string, unknown>, ctx: Ctx): void {
  if (plan.isAny) compareAny(plan, a, b, ctx);
  else compareFields(plan, a, b, ctx);
}

function compareAny(plan: ComparePlan, a: Record<string, unknown>, b: Record<string, unknown>, ctx: Ctx): void {
  const ua = a['@type'];
  if (typeof ua !== 'string') {
    compareFields(plan, a, b, ctx);
    return;
  }
  const ub = b['type_url'] ?? b['typeUrl'];
  if (ua !== ub) {
    ctx.report('roundtrip', `Any type ${show(ua)} came back as ${show(ub)}`);
    return;
  }
  const t = typeOfAnyUrl(ua);
  if (!t) return;
  let inner: Record<string, unknown>;
  try {
    inner = t.decode((b['value'] ?? new Uint8Array(0)) as Uint8Array) as unknown as Record<string, unknown>;
  } catch (e) {
    ctx.report('roundtrip', `Any payload does not decode as ${t.name}: ${(e as Error).message}`);
    return;
  }
  ctx.path.push(`(${t.name})`);
  compareFields(planOf(t), a, inner, ctx);
  ctx.path.pop();
}

function compareFields(plan: ComparePlan, a: Record<string, unknown>, b: Record<string, unknown>, ctx: Ctx): void {
  const byName = plan.byName;
  for (const name in a) {
    const cmp = byName[name];
    if (cmp !== undefined) cmp(a[name], b[name], ctx);
  }
  // Fields set in `b` but absent from `a` cannot appear: the shape check already proved every key
  // of `a` is a field, and fromObject only reads those keys.
}
