// Encode/decode round trip comparison. Why: the encoder may still lose what the shape check let
// through (an int64 beyond 2^53 given as a number, a float that does not fit, an Any payload that
// does not decode); comparing the decoded message with the input proves Envoy gets what we built.
import protobuf from 'protobufjs';
import { resolvedTypeOf } from '../loader.js';
import { fullNameOf, longToString, typeOfAnyUrl } from '../json.js';
import { Ctx, LONGS, elemMessageType, hasOwn, show, type Seg } from './context.js';

function canonScalar(f: protobuf.Field, v: unknown): unknown {
  const rt = resolvedTypeOf(f);
  if (rt instanceof protobuf.Enum) return typeof v === 'string' ? (rt.values[v] ?? v) : Number(v ?? 0);
  const t = f.type;
  if (LONGS[t] !== undefined) return v == null ? '0' : longToString(v, LONGS[t] === true);
  switch (t) {
    case 'string':
      return v ?? '';
    case 'bool':
      return v === true;
    case 'bytes':
      if (v == null) return '';
      if (typeof v === 'string') return Buffer.from(v, 'base64').toString('base64');
      {
        const u = v as Uint8Array;
        return Buffer.from(u.buffer, u.byteOffset, u.byteLength).toString('base64');
      }
    case 'double':
    case 'float': {
      const n = typeof v === 'string' ? Number(v) : Number(v ?? 0);
      return t === 'float' ? Math.fround(n) : n;
    }
    default:
      return Number(v ?? 0);
  }
}

function isDefaultCanon(c: unknown): boolean {
  return c === '' || c === 0 || c === false || c === '0';
}

function sameScalar(a: unknown, b: unknown): boolean {
  return a === b || (typeof a === 'number' && typeof b === 'number' && Number.isNaN(a) && Number.isNaN(b));
}

function compareValue(f: protobuf.Field, a: unknown, b: unknown, ctx: Ctx, seg: Seg): void {
  const mt = elemMessageType(f);
  if (mt) {
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
    compareMessage(mt, a as Record<string, unknown>, b as Record<string, unknown>, ctx);
    ctx.path.pop();
    return;
  }
  const ca = canonScalar(f, a);
  const cb = canonScalar(f, b);
  if (!sameScalar(ca, cb)) ctx.report('roundtrip', `value ${show(a)} came back as ${show(b)}`, seg);
}

/** Compares the plain input `a` with the decoded message `b` (Any payloads decoded on the way). */
export function compareMessage(
  type: protobuf.Type,
  a: Record<string, unknown>,
  b: Record<string, unknown>,
  ctx: Ctx,
): void {
  if (fullNameOf(type) === '.google.protobuf.Any') {
    const ua = a['@type'];
    if (typeof ua !== 'string') {
      compareFields(type, a, b, ctx);
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
    compareFields(t, a, inner, ctx);
    ctx.path.pop();
    return;
  }
  compareFields(type, a, b, ctx);
}

function compareFields(type: protobuf.Type, a: Record<string, unknown>, b: Record<string, unknown>, ctx: Ctx): void {
  const fields = type.fields;
  for (const name in a) {
    const f = fields[name];
    if (f) compareField(f, a[name], b[name], ctx);
  }
  // Fields set in `b` but absent from `a` cannot appear: the shape check already proved every key
  // of `a` is a field, and fromObject only reads those keys.
}

function compareField(f: protobuf.Field, va: unknown, vb: unknown, ctx: Ctx): void {
  if (va == null && vb == null) return;
  const seg = '.' + f.name;
  if (f.map) {
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
      else compareValue(f, ma[k], mb[k], ctx, `[${JSON.stringify(k)}]`);
    }
    ctx.path.pop();
  } else if (f.repeated) {
    const ra = (va ?? []) as unknown[];
    const rb = (vb ?? []) as unknown[];
    if (ra.length !== rb.length) {
      ctx.report('roundtrip', `had ${ra.length} item(s), came back with ${rb.length}`, seg);
      return;
    }
    ctx.path.push(seg);
    for (let i = 0; i < ra.length; i++) compareValue(f, ra[i], rb[i], ctx, i);
    ctx.path.pop();
  } else if (elemMessageType(f)) {
    compareValue(f, va, vb, ctx, seg);
  } else {
    const ca = canonScalar(f, va);
    const cb = canonScalar(f, vb);
    if (sameScalar(ca, cb)) return;
    // Defaults are interchangeable with absence except for oneof members (presence).
    if (!f.partOf && isDefaultCanon(ca) && isDefaultCanon(cb)) return;
    ctx.report('roundtrip', `value ${show(va)} came back as ${show(vb)}`, seg);
  }
}
