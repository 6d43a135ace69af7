// Strict shape check of a plain object in protobufjs fromObject form. Why: `fromObject` silently
// drops unknown keys, coerces wrong types and maps unknown enum names to 0, so a misspelt field
// would reach Envoy as a default. This names every key that is not a field (with a suggestion),
// every value of the wrong kind, unknown enum names and @type URLs, and oneofs set twice.
import protobuf from 'protobufjs';
import { TYPE_URL_PREFIX } from '../type-urls.js';
import { resolvedTypeOf } from '../loader.js';
import { fullNameOf, typeOfAnyUrl } from '../json.js';
import { Ctx, LONGS, kindOf, show, type Seg } from './context.js';

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

function shapeScalar(f: protobuf.Field, v: unknown, ctx: Ctx, seg?: Seg): void {
  const rt = resolvedTypeOf(f);
  if (rt instanceof protobuf.Type) {
    if (typeof v !== 'object' || v === null || Array.isArray(v) || v instanceof Uint8Array) {
      ctx.report('shape.message', `expected a ${rt.name} object, got ${kindOf(v)}`, seg);
      return;
    }
    if (seg !== undefined) ctx.path.push(seg);
    shapeMessage(rt, v as Record<string, unknown>, ctx);
    if (seg !== undefined) ctx.path.pop();
    return;
  }
  if (rt instanceof protobuf.Enum) {
    if (typeof v === 'string') {
      if (rt.values[v] === undefined)
        ctx.report(
          'shape.enum',
          `unknown ${rt.name} value ${show(v)} (known: ${Object.keys(rt.values).join(', ')})`,
          seg,
        );
    } else if (typeof v !== 'number' || !Number.isInteger(v))
      ctx.report('shape.enum', `expected a ${rt.name} name, got ${kindOf(v)}`, seg);
    return;
  }
  const t = f.type;
  switch (t) {
    case 'string':
      if (typeof v !== 'string') ctx.report('shape.string', `expected a string, got ${kindOf(v)}`, seg);
      return;
    case 'bool':
      if (typeof v !== 'boolean') ctx.report('shape.bool', `expected a boolean, got ${kindOf(v)}`, seg);
      return;
    case 'bytes':
      if (typeof v === 'string') {
        if (!B64.test(v)) ctx.report('shape.bytes', 'expected base64 text', seg);
      } else if (!(v instanceof Uint8Array))
        ctx.report('shape.bytes', `expected bytes (Uint8Array or base64), got ${kindOf(v)}`, seg);
      return;
    case 'double':
    case 'float':
      if (typeof v !== 'number' && !(v === 'NaN' || v === 'Infinity' || v === '-Infinity'))
        ctx.report(`shape.${t}`, `expected a number, got ${kindOf(v)}`, seg);
      return;
  }
  const r32 = INT32_RANGE[t];
  if (r32) {
    if (typeof v !== 'number' || !Number.isInteger(v))
      ctx.report(`shape.${t}`, `expected an integer, got ${show(v)}`, seg);
    else if (v < r32[0] || v > r32[1]) ctx.report(`shape.${t}`, `${v} is out of ${t} range`, seg);
    return;
  }
  const unsigned = LONGS[t];
  if (unsigned !== undefined) {
    if (typeof v === 'number') {
      if (!Number.isSafeInteger(v)) ctx.report(`shape.${t}`, `${v} is not a safe integer (use a decimal string)`, seg);
      else if (unsigned && v < 0) ctx.report(`shape.${t}`, `${v} is negative`, seg);
    } else if (typeof v === 'string') {
      if (!/^-?\d+$/.test(v)) ctx.report(`shape.${t}`, `${show(v)} is not an integer`, seg);
      else {
        const b = BigInt(v);
        const ok = unsigned ? b >= 0n && b < 1n << 64n : b >= -(1n << 63n) && b < 1n << 63n;
        if (!ok) ctx.report(`shape.${t}`, `${v} is out of ${t} range`, seg);
      }
    } else if (!(typeof v === 'object' && v !== null && typeof (v as { low?: unknown }).low === 'number')) {
      ctx.report(`shape.${t}`, `expected an integer, got ${kindOf(v)}`, seg);
    }
  }
}

/** Reports every shape problem of `obj` as a message of `type` into `ctx`. */
export function shapeMessage(type: protobuf.Type, obj: Record<string, unknown>, ctx: Ctx): void {
  if (fullNameOf(type) === '.google.protobuf.Any') {
    const url = obj['@type'];
    if (url === undefined) {
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
    if (!url.startsWith(TYPE_URL_PREFIX))
      ctx.report('shape.any', `type URL ${show(url)} should start with ${TYPE_URL_PREFIX}`);
    ctx.path.push(`(${t.name})`);
    shapeFields(t, obj, ctx, true);
    ctx.path.pop();
    return;
  }
  shapeFields(type, obj, ctx, false);
}

function shapeFields(type: protobuf.Type, obj: Record<string, unknown>, ctx: Ctx, inAny: boolean): void {
  const fields = type.fields;
  for (const key in obj) {
    const v = obj[key];
    if (v === undefined) continue;
    if (inAny && key === '@type') continue;
    const f = fields[key];
    if (!f) {
      ctx.report(
        'shape.unknown_field',
        `unknown field ${show(key)} of ${type.fullName.slice(1)}${suggest(type, key)}`,
        '.' + key,
      );
      continue;
    }
    if (v === null) continue;
    const o = f.partOf;
    if (o && o.oneof.length > 1) shapeOneof(o, key, obj, ctx);
    const seg = '.' + key;
    if (f.map) {
      if (typeof v !== 'object' || Array.isArray(v) || v instanceof Uint8Array) {
        ctx.report('shape.map', `expected an object (map), got ${kindOf(v)}`, seg);
        continue;
      }
      ctx.path.push(seg);
      const m = v as Record<string, unknown>;
      for (const k in m) {
        const x = m[k];
        const kseg = `[${JSON.stringify(k)}]`;
        if (
          (f as unknown as protobuf.MapField).keyType !== 'string' &&
          (f as unknown as protobuf.MapField).keyType !== 'bool' &&
          !/^-?\d+$/.test(k)
        )
          ctx.report(
            'shape.map_key',
            `map key ${show(k)} is not a ${(f as unknown as protobuf.MapField).keyType}`,
            kseg,
          );
        if (x == null) ctx.report('shape.map', 'map value must not be null', kseg);
        else shapeScalar(f, x, ctx, kseg);
      }
      ctx.path.pop();
    } else if (f.repeated) {
      if (!Array.isArray(v)) {
        ctx.report('shape.repeated', `expected an array, got ${kindOf(v)}`, seg);
        continue;
      }
      ctx.path.push(seg);
      for (let i = 0; i < v.length; i++) {
        if (v[i] == null) ctx.report('shape.repeated', 'array item must not be null', i);
        else shapeScalar(f, v[i], ctx, i);
      }
      ctx.path.pop();
    } else {
      shapeScalar(f, v, ctx, seg);
    }
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
