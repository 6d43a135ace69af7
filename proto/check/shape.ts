// Strict shape check of a plain object in protobufjs fromObject form. Why: `fromObject` silently
// drops unknown keys, coerces wrong types and maps unknown enum names to 0, so a misspelt field
// would reach Envoy as a default. This names every key that is not a field (with a suggestion),
// every value of the wrong kind, unknown enum names and @type URLs, and oneofs set twice.
import protobuf from 'protobufjs';
import { TYPE_URL_PREFIX } from '../type-urls.js';
import { resolvedTypeOf } from '../loader.js';
import { typeOfAnyUrl } from '../json.js';
import { Ctx, LONGS, MapKey, compiledPlan, kindOf, show, type FieldPlan, type Seg } from './context.js';

const INT32_RANGE: Record<string, [number, number]> = {
  int32: [-2147483648, 2147483647],
  sint32: [-2147483648, 2147483647],
  sfixed32: [-2147483648, 2147483647],
  uint32: [0, 4294967295],
  fixed32: [0, 4294967295],
};
const B64 = /^[A-Za-z0-9+/]*={0,2}$/;

function levenshtein(a: string, b: string): number {
  const d: number[] = Array.from({ length: b.length + 1 }, (_x, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let prev = d[0] as number;
    d[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = d[j] as number;
      d[j] = Math.min((d[j] as number) + 1, (d[j - 1] as number) + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = tmp;
    }
  }
  return d[b.length] as number;
}

function suggest(type: protobuf.Type, key: string): string {
  const camel = key.replace(/_([a-z0-9])/g, (_x, c: string) => c.toUpperCase());
  if (camel !== key && type.fields[camel]) return ` (did you mean ${camel}? keys are camelCase)`;
  let best = '';
  let bestD = 3;
  for (const f of type.fieldsArray) {
    const dd = levenshtein(key.toLowerCase(), f.name.toLowerCase());
    if (dd < bestD) {
      bestD = dd;
      best = f.name;
    }
  }
  return best ? ` (did you mean ${best}?)` : '';
}

/** Checks one non-null element value (a field value, an array item or a map value). */
type ElemShape = (v: unknown, ctx: Ctx, seg?: Seg) => void;
/** Checks one present, non-null value of a field of the message `obj`. */
type KeyShape = (v: unknown, obj: Record<string, unknown>, key: string, ctx: Ctx) => void;

/** Checks the fields of an object literal; returns how many of its keys are fields (set, or null). */
type LiteralShape = (m: Record<string, unknown>, F: readonly KeyShape[], ctx: Ctx) => number;

/**
 * The compiled shape check of one message type: a checker per field name, built once per Type, and
 * the unrolled check of an object literal (null when a field is named like an Object.prototype member).
 */
type ShapePlan = FieldPlan<KeyShape> & { literal?: { run: LiteralShape; checks: KeyShape[] } | null };

const shapePlans = new WeakMap<protobuf.Type, ShapePlan>();

function planOf(type: protobuf.Type): ShapePlan {
  const p: ShapePlan = compiledPlan(shapePlans, type, compileKey);
  if (p.literal === undefined) p.literal = generatedShape(p);
  return p;
}

/**
 * One load per field by constant name, which V8 caches per object shape, instead of a name lookup
 * per key. Names are protobuf identifiers, embedded as JSON string literals. Checks in field order.
 */
function generatedShape(plan: ShapePlan): ShapePlan['literal'] {
  const fields = plan.type.fieldsArray;
  if (fields.some((f) => f.name in Object.prototype)) return null;
  let body = 'let v, n = 0;\n';
  fields.forEach((f, i) => {
    const name = JSON.stringify(f.name);
    body += `if ((v = m[${name}]) !== undefined) { n++; if (v !== null) F[${i}](v, m, ${name}, ctx); }\n`;
  });
  return {
    run: new Function('m', 'F', 'ctx', body + 'return n;') as LiteralShape,
    checks: fields.map((f) => plan.byName[f.name] as KeyShape),
  };
}

function messageElem(rt: protobuf.Type): ElemShape {
  const expected = `expected a ${rt.name} object, got `;
  let plan: ShapePlan | undefined;
  return (v, ctx, seg) => {
    if (typeof v !== 'object' || v === null || Array.isArray(v) || v instanceof Uint8Array) {
      ctx.report('shape.message', expected + kindOf(v), seg);
      return;
    }
    if (!ctx.needsRoundTrip && !isPlain(v)) ctx.needsRoundTrip = true;
    if (seg !== undefined) ctx.path.push(seg);
    runPlan((plan ??= planOf(rt)), v as Record<string, unknown>, ctx);
    if (seg !== undefined) ctx.path.pop();
  };
}

function enumElem(rt: protobuf.Enum): ElemShape {
  const values = rt.values;
  return (v, ctx, seg) => {
    if (typeof v !== 'string') ctx.needsRoundTrip = true;
    if (typeof v === 'string') {
      if (values[v] === undefined)
        ctx.report('shape.enum', `unknown ${rt.name} value ${show(v)} (known: ${Object.keys(values).join(', ')})`, seg);
    } else if (typeof v !== 'number' || !Number.isInteger(v))
      ctx.report('shape.enum', `expected a ${rt.name} name, got ${kindOf(v)}`, seg);
  };
}

function int32Elem(t: string, r32: [number, number]): ElemShape {
  const rule = `shape.${t}`;
  return (v, ctx, seg) => {
    if (typeof v !== 'number' || !Number.isInteger(v)) ctx.report(rule, `expected an integer, got ${show(v)}`, seg);
    else if (v < r32[0] || v > r32[1]) ctx.report(rule, `${v} is out of ${t} range`, seg);
  };
}

function longElem(t: string, unsigned: boolean): ElemShape {
  const rule = `shape.${t}`;
  return (v, ctx, seg) => {
    if (typeof v !== 'number') ctx.needsRoundTrip = true;
    if (typeof v === 'number') {
      if (!Number.isSafeInteger(v)) ctx.report(rule, `${v} is not a safe integer (use a decimal string)`, seg);
      else if (unsigned && v < 0) ctx.report(rule, `${v} is negative`, seg);
    } else if (typeof v === 'string') {
      if (!/^-?\d+$/.test(v)) ctx.report(rule, `${show(v)} is not an integer`, seg);
      else {
        const b = BigInt(v);
        const ok = unsigned ? b >= 0n && b < 1n << 64n : b >= -(1n << 63n) && b < 1n << 63n;
        if (!ok) ctx.report(rule, `${v} is out of ${t} range`, seg);
      }
    } else if (!(typeof v === 'object' && v !== null && typeof (v as { low?: unknown }).low === 'number')) {
      ctx.report(rule, `expected an integer, got ${kindOf(v)}`, seg);
    }
  };
}

// A scalar type without a check here: nothing proves its encoding exact, so the round trip runs.
const NO_CHECK: ElemShape = (_v, ctx) => {
  ctx.needsRoundTrip = true;
};

/** An object literal (or a null-prototype one): no class whose instances protobufjs treats apart. */
function isPlain(v: object): boolean {
  const p = Object.getPrototypeOf(v) as unknown;
  return p === Object.prototype || p === null;
}

/** A string without lone surrogates: its UTF-8 encoding decodes back to the same string. */
function wellFormed(s: string): boolean {
  return (s as unknown as { isWellFormed(): boolean }).isWellFormed();
}

function basicElem(t: string): ElemShape | undefined {
  switch (t) {
    case 'string':
      return (v, ctx, seg) => {
        if (typeof v !== 'string') ctx.report('shape.string', `expected a string, got ${kindOf(v)}`, seg);
        else if (!ctx.needsRoundTrip && !wellFormed(v)) ctx.needsRoundTrip = true;
      };
    case 'bool':
      return (v, ctx, seg) => {
        if (typeof v !== 'boolean') ctx.report('shape.bool', `expected a boolean, got ${kindOf(v)}`, seg);
      };
    case 'bytes':
      return (v, ctx, seg) => {
        ctx.needsRoundTrip = true;
        if (typeof v === 'string') {
          if (!B64.test(v)) ctx.report('shape.bytes', 'expected base64 text', seg);
        } else if (!(v instanceof Uint8Array))
          ctx.report('shape.bytes', `expected bytes (Uint8Array or base64), got ${kindOf(v)}`, seg);
      };
    case 'double':
    case 'float':
      return (v, ctx, seg) => {
        if (typeof v !== 'number') ctx.needsRoundTrip = true;
        if (typeof v !== 'number' && !(v === 'NaN' || v === 'Infinity' || v === '-Infinity'))
          ctx.report(`shape.${t}`, `expected a number, got ${kindOf(v)}`, seg);
      };
  }
  return undefined;
}

/** The element check of a field, from its resolved type (message, enum) or its scalar type. */
function compileElem(f: protobuf.Field): ElemShape {
  const rt = resolvedTypeOf(f);
  if (rt instanceof protobuf.Type) return messageElem(rt);
  if (rt instanceof protobuf.Enum) return enumElem(rt);
  const t = f.type;
  const basic = basicElem(t);
  if (basic) return basic;
  const r32 = INT32_RANGE[t];
  if (r32) return int32Elem(t, r32);
  const unsigned = LONGS[t];
  return unsigned !== undefined ? longElem(t, unsigned) : NO_CHECK;
}

function mapKey(f: protobuf.Field, elem: ElemShape): KeyShape {
  const keyType = (f as unknown as protobuf.MapField).keyType;
  const numericKey = keyType !== 'string' && keyType !== 'bool';
  const stringKey = keyType === 'string';
  const seg = '.' + f.name;
  return (v, _obj, _key, ctx) => {
    if (typeof v !== 'object' || Array.isArray(v) || v instanceof Uint8Array) {
      ctx.report('shape.map', `expected an object (map), got ${kindOf(v)}`, seg);
      return;
    }
    ctx.path.push(seg);
    const m = v as Record<string, unknown>;
    if (!stringKey || !isPlain(m)) ctx.needsRoundTrip = true;
    for (const k in m) {
      if (!ctx.needsRoundTrip && (k === '__proto__' || !wellFormed(k))) ctx.needsRoundTrip = true;
      const x = m[k];
      const kseg = new MapKey(k);
      if (numericKey && !/^-?\d+$/.test(k)) ctx.report('shape.map_key', `map key ${show(k)} is not a ${keyType}`, kseg);
      if (x == null) ctx.report('shape.map', 'map value must not be null', kseg);
      else elem(x, ctx, kseg);
    }
    ctx.path.pop();
  };
}

function repeatedKey(f: protobuf.Field, elem: ElemShape): KeyShape {
  const seg = '.' + f.name;
  return (v, _obj, _key, ctx) => {
    if (!Array.isArray(v)) {
      ctx.report('shape.repeated', `expected an array, got ${kindOf(v)}`, seg);
      return;
    }
    ctx.path.push(seg);
    for (let i = 0; i < v.length; i++) {
      if (v[i] == null) ctx.report('shape.repeated', 'array item must not be null', i);
      else elem(v[i], ctx, i);
    }
    ctx.path.pop();
  };
}

/** The checker of one field: oneof exclusivity first, then the map, array or single value. */
function compileKey(f: protobuf.Field): KeyShape {
  const elem = compileElem(f);
  const seg = '.' + f.name;
  const value: KeyShape = f.map
    ? mapKey(f, elem)
    : f.repeated
      ? repeatedKey(f, elem)
      : (v, _obj, _key, ctx) => elem(v, ctx, seg);
  const o = f.partOf;
  if (!o || o.oneof.length <= 1) return value;
  return (v, obj, key, ctx) => {
    shapeOneof(o, key, obj, ctx);
    value(v, obj, key, ctx);
  };
}

/** Reports every shape problem of `obj` as a message of `type` into `ctx`. */
export function shapeMessage(type: protobuf.Type, obj: Record<string, unknown>, ctx: Ctx): void {
  if (!isPlain(obj)) ctx.needsRoundTrip = true;
  runPlan(planOf(type), obj, ctx);
}

function runPlan(plan: ShapePlan, obj: Record<string, unknown>, ctx: Ctx): void {
  if (plan.isAny) shapeAny(plan.type, obj, ctx);
  else shapeFields(plan, obj, ctx, false);
}

/** Per @type URL: whether protobufjs's Any.fromObject encodes the payload as the type we check it as. */
const encoderAgrees = new Map<string, boolean>();

function sameTypeAsEncoder(anyType: protobuf.Type, url: string, t: protobuf.Type): boolean {
  let same = encoderAgrees.get(url);
  if (same === undefined) {
    // Any.fromObject looks the name after the last '/' up relative to google.protobuf.
    same = anyType.lookup(url.substring(url.lastIndexOf('/') + 1)) === t;
    encoderAgrees.set(url, same);
  }
  return same;
}

function shapeAny(anyType: protobuf.Type, obj: Record<string, unknown>, ctx: Ctx): void {
  const url = obj['@type'];
  if (url === undefined) {
    ctx.needsRoundTrip = true;
    for (const k in obj) {
      if (k !== 'type_url' && k !== 'value' && obj[k] !== undefined)
        ctx.report('shape.any', `Any without @type has unexpected key ${show(k)}`, '.' + k);
    }
    return;
  }
  if (typeof url !== 'string') {
    ctx.report('shape.any', '@type must be a string');
    return;
  }
  const t = typeOfAnyUrl(url);
  if (!t) {
    ctx.report('shape.any', `unknown type URL ${show(url)} (not in the loaded protos: the payload would be dropped)`);
    return;
  }
  if (!sameTypeAsEncoder(anyType, url, t)) ctx.needsRoundTrip = true;
  if (!url.startsWith(TYPE_URL_PREFIX))
    ctx.report('shape.any', `type URL ${show(url)} should start with ${TYPE_URL_PREFIX}`);
  ctx.path.push(`(${t.name})`);
  shapeFields(planOf(t), obj, ctx, true);
  ctx.path.pop();
}

function shapeFields(plan: ShapePlan, obj: Record<string, unknown>, ctx: Ctx, inAny: boolean): void {
  const literal = plan.literal;
  if (literal && Object.getPrototypeOf(obj) === Object.prototype) {
    // Fast path: every key is a field (as many keys as fields read) and nothing was reported. Else
    // the keyed check reruns, reporting in the object's key order as it always did.
    const before = ctx.issues.length;
    const known = literal.run(obj, literal.checks, ctx) + (inAny && obj['@type'] !== undefined ? 1 : 0);
    if (ctx.issues.length === before && known === keyCount(obj)) return;
    ctx.issues.length = before;
  }
  shapeKeys(plan, obj, ctx, inAny);
}

/** Own enumerable keys of an object literal. */
function keyCount(obj: Record<string, unknown>): number {
  let n = 0;
  for (const _k in obj) n++;
  return n;
}

function shapeKeys(plan: ShapePlan, obj: Record<string, unknown>, ctx: Ctx, inAny: boolean): void {
  const byName = plan.byName;
  for (const key in obj) {
    const v = obj[key];
    if (v === undefined) continue;
    if (inAny && key === '@type') continue;
    const check = byName[key];
    if (check === undefined) {
      const type = plan.type;
      ctx.report(
        'shape.unknown_field',
        `unknown field ${show(key)} of ${type.fullName.slice(1)}${suggest(type, key)}`,
        '.' + key,
      );
      continue;
    }
    if (v !== null) check(v, obj, key, ctx);
  }
}

/** Called for a present oneof member: reports once (from the first set member) when a sibling is set too. */
function shapeOneof(o: protobuf.OneOf, key: string, obj: Record<string, unknown>, ctx: Ctx): void {
  const members = o.oneof;
  let firstSet = '';
  let count = 0;
  for (let i = 0; i < members.length; i++) {
    const m = members[i] as string;
    if (obj[m] != null) {
      if (count === 0) firstSet = m;
      count++;
    }
  }
  if (count > 1 && firstSet === key) {
    const set = members.filter((m) => obj[m] != null);
    ctx.report('shape.oneof', `only one of ${members.join(', ')} may be set (got ${set.join(', ')})`, '.' + o.name);
  }
}
