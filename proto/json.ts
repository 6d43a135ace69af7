// Canonical proto3 JSON (as `protoc --json` / Envoy's MessageToJson would print it) for messages
// of the loaded Envoy root, and the reverse (proto3 JSON → protobufjs `fromObject` form).
import protobuf from 'protobufjs';
import { lookupType, protoRoot, resolvedTypeOf, TYPE_URL_PREFIX, type ProtoObject } from './loader.js';

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

const fullNames = new WeakMap<protobuf.ReflectionObject, string>();
/**
 * `ReflectionObject.fullName` is a getter that rebuilds the dotted name on every access (walks
 * the parents, allocates): cache it.
 */
export function fullNameOf(t: protobuf.ReflectionObject): string {
  let n = fullNames.get(t);
  if (n === undefined) {
    n = t.fullName;
    fullNames.set(t, n);
  }
  return n;
}

const WRAPPERS: Record<string, true> = {
  '.google.protobuf.DoubleValue': true,
  '.google.protobuf.FloatValue': true,
  '.google.protobuf.Int64Value': true,
  '.google.protobuf.UInt64Value': true,
  '.google.protobuf.Int32Value': true,
  '.google.protobuf.UInt32Value': true,
  '.google.protobuf.BoolValue': true,
  '.google.protobuf.StringValue': true,
  '.google.protobuf.BytesValue': true,
};

const LONG_TYPES: Record<string, true> = { int64: true, uint64: true, sint64: true, fixed64: true, sfixed64: true };
const UNSIGNED_LONG: Record<string, true> = { uint64: true, fixed64: true };

/** Types whose proto3 JSON form is not a JSON object of fields. */
export function hasSpecialJson(type: protobuf.Type): boolean {
  const n = fullNameOf(type);
  return (
    WRAPPERS[n] === true ||
    n === '.google.protobuf.Duration' ||
    n === '.google.protobuf.Timestamp' ||
    n === '.google.protobuf.Struct' ||
    n === '.google.protobuf.Value' ||
    n === '.google.protobuf.ListValue' ||
    n === '.google.protobuf.FieldMask'
  );
}

/** proto3 JSON name of a field (protoc's ToJsonName: drop `_`, upper-case the next character). */
export function jsonNameOf(field: protobuf.Field): string {
  const explicit = field.options?.['json_name'];
  if (typeof explicit === 'string') return explicit;
  const name = field.name;
  if (name.indexOf('_') < 0) return name;
  let out = '';
  let up = false;
  for (const ch of name) {
    if (ch === '_') {
      up = true;
      continue;
    }
    out += up ? ch.toUpperCase() : ch;
    up = false;
  }
  return out;
}

const anyTypeCache = new Map<string, protobuf.Type | null>();
/** The message type named by an Any type URL, if the loaded root knows it (cached). */
export function typeOfAnyUrl(url: string): protobuf.Type | null {
  let t = anyTypeCache.get(url);
  if (t !== undefined) return t;
  const name = url.substring(url.lastIndexOf('/') + 1);
  t = null;
  if (name.length > 0) {
    try {
      const found = protoRoot().lookup(name.startsWith('.') ? name : '.' + name);
      if (found instanceof protobuf.Type) t = found;
    } catch {
      t = null;
    }
  }
  anyTypeCache.set(url, t);
  return t;
}

// ---------------------------------------------------------------- long / number helpers

interface LongLike {
  low: number;
  high: number;
  unsigned?: boolean;
}
function isLongLike(v: unknown): v is LongLike {
  return (
    typeof v === 'object' &&
    v !== null &&
    typeof (v as LongLike).low === 'number' &&
    typeof (v as LongLike).high === 'number'
  );
}

/** Decimal string of an int64-ish value (number, string, Long). */
export function longToString(v: unknown, unsigned: boolean): string {
  if (typeof v === 'number') return String(Math.trunc(v));
  if (typeof v === 'string') return /^-?\d{1,15}$/.test(v) ? String(Number(v)) : BigInt(v).toString();
  if (typeof v === 'bigint') return v.toString();
  if (isLongLike(v)) {
    // Fast exact path below 2^53.
    if (unsigned || v.unsigned) {
      const hi = v.high >>> 0;
      if (hi < 0x200000) return String(hi * 4294967296 + (v.low >>> 0));
    } else if (v.high > -0x200000 && v.high < 0x200000) {
      return String(v.high * 4294967296 + (v.low >>> 0));
    }
    const lo = BigInt(v.low >>> 0);
    const hi = BigInt(v.high >>> 0);
    let n = (hi << 32n) | lo;
    if (!unsigned && !v.unsigned && n >= 1n << 63n) n -= 1n << 64n;
    if (unsigned && n < 0n) n += 1n << 64n;
    return n.toString();
  }
  return '0';
}

/** Number of an int64-ish value (precision lost beyond 2^53). */
export function longToNumber(v: unknown): number {
  if (typeof v === 'number') return v;
  if (typeof v === 'string') return Number(v);
  if (typeof v === 'bigint') return Number(v);
  if (isLongLike(v))
    return v.unsigned ? (v.high >>> 0) * 4294967296 + (v.low >>> 0) : v.high * 4294967296 + (v.low >>> 0);
  return 0;
}

function shortestFloat(v: number): number {
  if (!Number.isFinite(v)) return v;
  for (let p = 1; p <= 9; p++) {
    const c = Number(v.toPrecision(p));
    if (Math.fround(c) === Math.fround(v)) return c;
  }
  return v;
}

function numberJson(v: number, isFloat: boolean): Json {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return 'Infinity';
  if (v === -Infinity) return '-Infinity';
  return isFloat ? shortestFloat(v) : v;
}

function bytesToBase64(v: unknown): string {
  if (typeof v === 'string') return v;
  if (v instanceof Uint8Array) return Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('base64');
  if (Array.isArray(v)) return Buffer.from(v as number[]).toString('base64');
  return '';
}

function nanosSuffix(nanos: number): string {
  if (nanos === 0) return '';
  if (nanos % 1_000_000 === 0) return '.' + String(nanos / 1_000_000).padStart(3, '0');
  if (nanos % 1_000 === 0) return '.' + String(nanos / 1_000).padStart(6, '0');
  return '.' + String(nanos).padStart(9, '0');
}

/** Canonical proto3 JSON Duration: "1s", "1.500s", "-0.000001s". */
export function formatDuration(seconds: unknown, nanos: unknown): string {
  const s = BigInt(longToString(seconds ?? 0, false));
  const n = Number(nanos ?? 0);
  const negative = s < 0n || (s === 0n && n < 0);
  const abs = (x: bigint): bigint => (x < 0n ? -x : x);
  return (negative ? '-' : '') + abs(s).toString() + nanosSuffix(Math.abs(n)) + 's';
}

/** Canonical RFC 3339 Timestamp: "2024-01-02T03:04:05.500Z". */
export function formatTimestamp(seconds: unknown, nanos: unknown): string {
  const s = longToNumber(seconds ?? 0);
  const n = Number(nanos ?? 0);
  const iso = new Date(s * 1000).toISOString(); // always has .sssZ
  return iso.slice(0, 19) + nanosSuffix(n) + 'Z';
}

/** Duration / Timestamp in fromObject form, zero parts omitted (as protoc would not encode them). */
function secNanos(seconds: string, nanos: number): { seconds?: string; nanos?: number } {
  const out: { seconds?: string; nanos?: number } = {};
  if (seconds !== '0') out.seconds = seconds;
  if (nanos !== 0) out.nanos = nanos;
  return out;
}

export function parseDuration(text: string): { seconds: string; nanos: number } {
  const m = /^(-)?(\d+)(?:\.(\d{1,9}))?s$/.exec(text);
  if (!m) throw new Error(`invalid Duration ${JSON.stringify(text)}`);
  const neg = m[1] === '-';
  const secs = BigInt(m[2] ?? '0');
  const nanos = m[3] ? Number(m[3].padEnd(9, '0')) : 0;
  return { seconds: (neg ? -secs : secs).toString(), nanos: neg ? -nanos : nanos };
}

export function parseTimestamp(text: string): { seconds: string; nanos: number } {
  const m = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2})$/i.exec(text);
  if (!m) throw new Error(`invalid Timestamp ${JSON.stringify(text)}`);
  const ms = Date.parse(`${m[1]}${m[3]}`);
  if (Number.isNaN(ms)) throw new Error(`invalid Timestamp ${JSON.stringify(text)}`);
  return { seconds: String(Math.floor(ms / 1000)), nanos: m[2] ? Number(m[2].padEnd(9, '0')) : 0 };
}

// ---------------------------------------------------------------- message → JSON

function has(msg: object, name: string): boolean {
  return Object.prototype.hasOwnProperty.call(msg, name) && (msg as Record<string, unknown>)[name] != null;
}

function enumJson(e: protobuf.Enum, v: unknown): Json {
  if (fullNameOf(e) === '.google.protobuf.NullValue') return null;
  if (typeof v === 'string') return v;
  const n = Number(v);
  const name = e.valuesById[n];
  return name !== undefined ? name : n;
}

function isDefaultScalar(field: protobuf.Field, v: unknown): boolean {
  if (v == null) return true;
  const et = resolvedTypeOf(field);
  if (et instanceof protobuf.Enum) return v === 0 || (typeof v === 'string' && et.values[v] === 0);
  switch (field.type) {
    case 'string':
      return v === '';
    case 'bool':
      return v === false;
    case 'bytes':
      return (v as { length?: number }).length === 0;
    default:
      if (LONG_TYPES[field.type]) return longToNumber(v) === 0;
      return v === 0 && !Object.is(v, -0);
  }
}

function scalarJson(field: protobuf.Field, v: unknown): Json {
  const rt = resolvedTypeOf(field);
  if (rt instanceof protobuf.Enum) return enumJson(rt, v);
  if (rt instanceof protobuf.Type) return messageJson(rt, v as protobuf.Message);
  switch (field.type) {
    case 'string':
      return String(v);
    case 'bool':
      return Boolean(v);
    case 'bytes':
      return bytesToBase64(v);
    case 'double':
      return numberJson(Number(v), false);
    case 'float':
      return numberJson(Number(v), true);
    default:
      if (LONG_TYPES[field.type]) return longToString(v, UNSIGNED_LONG[field.type] === true);
      return Number(v);
  }
}

function messageJson(type: protobuf.Type, msg: protobuf.Message | Record<string, unknown>): Json {
  const m = msg as unknown as Record<string, unknown>;
  const full = fullNameOf(type);
  if (full === '.google.protobuf.Any') {
    const inlineUrl = m['@type'];
    // fromObject form: the payload's fields sit beside `@type`.
    if (typeof inlineUrl === 'string') {
      const inner = typeOfAnyUrl(inlineUrl);
      if (!inner) throw new Error(`cannot print Any with unknown type URL ${inlineUrl}`);
      const body = messageJson(inner, m);
      if (hasSpecialJson(inner)) return { '@type': inlineUrl, value: body };
      return { '@type': inlineUrl, ...(body as Record<string, Json>) };
    }
    const url = String(m['type_url'] ?? m['typeUrl'] ?? '');
    const value = (m['value'] ?? new Uint8Array(0)) as Uint8Array;
    if (url === '') return {};
    const inner = typeOfAnyUrl(url);
    if (!inner) throw new Error(`cannot print Any with unknown type URL ${url}`);
    const decoded = inner.decode(value);
    const body = messageJson(inner, decoded);
    if (hasSpecialJson(inner)) return { '@type': url, value: body };
    return { '@type': url, ...(body as Record<string, Json>) };
  }
  if (WRAPPERS[full]) {
    const f = type.fields['value'] as protobuf.Field;
    return scalarJson(f, m['value'] ?? f.resolve().typeDefault);
  }
  if (full === '.google.protobuf.Duration') return formatDuration(m['seconds'], m['nanos']);
  if (full === '.google.protobuf.Timestamp') return formatTimestamp(m['seconds'], m['nanos']);
  if (full === '.google.protobuf.FieldMask') {
    const paths = (m['paths'] as string[] | undefined) ?? [];
    return paths.map((p) => p.replace(/_([a-z])/g, (_x, c: string) => c.toUpperCase())).join(',');
  }
  if (full === '.google.protobuf.Struct') {
    const out: Record<string, Json> = {};
    const fields = (m['fields'] ?? {}) as Record<string, protobuf.Message>;
    const vt = resolvedTypeOf(type.fields['fields'] as protobuf.Field) as protobuf.Type;
    for (const k of Object.keys(fields)) out[k] = messageJson(vt, fields[k] as protobuf.Message);
    return out;
  }
  if (full === '.google.protobuf.ListValue') {
    const vt = resolvedTypeOf(type.fields['values'] as protobuf.Field) as protobuf.Type;
    return ((m['values'] as protobuf.Message[] | undefined) ?? []).map((x) => messageJson(vt, x));
  }
  if (full === '.google.protobuf.Value') {
    for (const f of type.fieldsArray) {
      if (!has(m, f.name)) continue;
      return scalarJson(f, m[f.name]);
    }
    return null;
  }
  const out: Record<string, Json> = {};
  for (const field of type.fieldsArray) {
    const name = field.name;
    if (!has(m, name)) continue;
    const v = m[name];
    const key = jsonNameOf(field);
    if (field.map) {
      const obj = v as Record<string, unknown>;
      const keys = Object.keys(obj);
      if (keys.length === 0) continue;
      const o: Record<string, Json> = {};
      for (const k of keys) o[k] = scalarJson(field, obj[k]);
      out[key] = o;
    } else if (field.repeated) {
      const arr = v as unknown[];
      if (arr.length === 0) continue;
      out[key] = arr.map((x) => scalarJson(field, x));
    } else if (resolvedTypeOf(field) instanceof protobuf.Type) {
      out[key] = messageJson(resolvedTypeOf(field) as protobuf.Type, v as protobuf.Message);
    } else {
      if (!field.partOf && isDefaultScalar(field, v)) continue;
      out[key] = scalarJson(field, v);
    }
  }
  return out;
}

const resolved = new Map<string, protobuf.Type>();
/** Type by full name or type URL (any prefix), cached: Root.lookupType walks namespaces every call. */
export function resolveType(typeNameOrUrl: string): protobuf.Type {
  let t = resolved.get(typeNameOrUrl);
  if (!t) {
    t = lookupType(typeNameOrUrl.startsWith(TYPE_URL_PREFIX) ? typeNameOrUrl : typeNameOrUrl.replace(/^.*\//, ''));
    resolved.set(typeNameOrUrl, t);
  }
  return t;
}

/**
 * Canonical proto3 JSON of a message given as protobufjs plain object (fromObject form) or as
 * encoded bytes. Default values are omitted (oneof members are always printed), int64 as strings,
 * enums by name, Any with `@type` and its payload converted recursively.
 *
 * A plain object is printed by walking it against the type, without `fromObject`: protobufjs
 * would generate a converter for every type it meets first (a third of what `translate` of a
 * small directory spends after start-up). The walk reads what `fromObject` would keep; for an
 * object that passes validation (every published resource does) the two print the same.
 */
export function toProto3Json(typeNameOrUrl: string, obj: ProtoObject | Uint8Array): unknown {
  const type = resolveType(typeNameOrUrl);
  return messageJson(type, obj instanceof Uint8Array ? type.decode(obj) : obj);
}

// ---------------------------------------------------------------- JSON → fromObject form

function fail(path: string, what: string): never {
  throw new Error(`${path || '<root>'}: ${what}`);
}

function fieldByJsonName(type: protobuf.Type): Map<string, protobuf.Field> {
  let m = byJsonCache.get(type);
  if (m) return m;
  m = new Map();
  for (const f of type.fieldsArray) {
    m.set(jsonNameOf(f), f);
    m.set(f.name, f);
  }
  byJsonCache.set(type, m);
  return m;
}
const byJsonCache = new WeakMap<protobuf.Type, Map<string, protobuf.Field>>();

function scalarFromJson(field: protobuf.Field, v: unknown, path: string): unknown {
  const rt = resolvedTypeOf(field);
  if (rt instanceof protobuf.Type) return messageFromJson(rt, v, path);
  if (rt instanceof protobuf.Enum) {
    if (fullNameOf(rt) === '.google.protobuf.NullValue') return 'NULL_VALUE';
    if (typeof v === 'string') {
      if (rt.values[v] === undefined) fail(path, `unknown ${rt.name} value ${JSON.stringify(v)}`);
      return v;
    }
    if (typeof v === 'number' && Number.isInteger(v)) return v;
    return fail(path, `enum ${rt.name} expected`);
  }
  switch (field.type) {
    case 'string':
      if (typeof v !== 'string') fail(path, 'string expected');
      return v;
    case 'bool':
      if (typeof v !== 'boolean') fail(path, 'boolean expected');
      return v;
    case 'bytes':
      if (typeof v !== 'string') fail(path, 'base64 string expected');
      return Buffer.from(v.replace(/-/g, '+').replace(/_/g, '/'), 'base64').toString('base64');
    case 'double':
    case 'float': {
      const n = typeof v === 'string' ? Number(v) : v;
      if (typeof n !== 'number' || (Number.isNaN(n) && v !== 'NaN')) fail(path, 'number expected');
      return n;
    }
    default: {
      if (LONG_TYPES[field.type]) {
        if (typeof v === 'number' && Number.isInteger(v)) return String(v);
        if (typeof v === 'string' && /^-?\d+$/.test(v)) return v;
        return fail(path, `${field.type} expected`);
      }
      const n = typeof v === 'string' && /^-?\d+$/.test(v) ? Number(v) : v;
      if (typeof n !== 'number' || !Number.isInteger(n)) fail(path, `${field.type} expected`);
      return n;
    }
  }
}

function valueFromJson(v: unknown, path: string): ProtoObject {
  if (v === null) return { nullValue: 'NULL_VALUE' };
  if (typeof v === 'number') return { numberValue: v };
  if (typeof v === 'string') return { stringValue: v };
  if (typeof v === 'boolean') return { boolValue: v };
  if (Array.isArray(v)) return { listValue: { values: v.map((x, i) => valueFromJson(x, `${path}[${i}]`)) } };
  if (typeof v === 'object') return { structValue: structFromJson(v, path) };
  return fail(path, 'JSON value expected');
}

function structFromJson(v: unknown, path: string): ProtoObject {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) fail(path, 'object expected');
  const fields: Record<string, ProtoObject> = {};
  for (const [k, x] of Object.entries(v as Record<string, unknown>)) fields[k] = valueFromJson(x, `${path}.${k}`);
  return { fields };
}

function messageFromJson(type: protobuf.Type, v: unknown, path: string): ProtoObject {
  const full = fullNameOf(type);
  if (WRAPPERS[full]) return { value: scalarFromJson(type.fields['value'] as protobuf.Field, v, path) };
  if (full === '.google.protobuf.Duration') {
    if (typeof v !== 'string') fail(path, 'Duration string expected');
    const d = parseDuration(v);
    return secNanos(d.seconds, d.nanos);
  }
  if (full === '.google.protobuf.Timestamp') {
    if (typeof v !== 'string') fail(path, 'Timestamp string expected');
    const t = parseTimestamp(v);
    return secNanos(t.seconds, t.nanos);
  }
  if (full === '.google.protobuf.FieldMask') {
    if (typeof v !== 'string') fail(path, 'FieldMask string expected');
    return { paths: v === '' ? [] : v.split(',').map((p) => p.replace(/[A-Z]/g, (c) => '_' + c.toLowerCase())) };
  }
  if (full === '.google.protobuf.Struct') return structFromJson(v, path);
  if (full === '.google.protobuf.Value') return valueFromJson(v, path);
  if (full === '.google.protobuf.ListValue') {
    if (!Array.isArray(v)) fail(path, 'array expected');
    return { values: v.map((x, i) => valueFromJson(x, `${path}[${i}]`)) };
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) fail(path, 'object expected');
  const src = v as Record<string, unknown>;
  if (full === '.google.protobuf.Any') {
    const url = src['@type'];
    if (url === undefined) return {};
    if (typeof url !== 'string') fail(path, '@type must be a string');
    const inner = typeOfAnyUrl(url);
    if (!inner) fail(path, `unknown Any type URL ${url}`);
    const innerPath = `${path}(${inner.name})`;
    if (hasSpecialJson(inner)) return { '@type': url, ...messageFromJson(inner, src['value'], innerPath) };
    const rest: Record<string, unknown> = {};
    for (const k of Object.keys(src)) if (k !== '@type') rest[k] = src[k];
    return { '@type': url, ...messageFromJson(inner, rest, innerPath) };
  }
  const fields = fieldByJsonName(type);
  const out: ProtoObject = {};
  for (const key of Object.keys(src)) {
    const x = src[key];
    const field = fields.get(key);
    if (!field) fail(`${path}.${key}`, `unknown field of ${type.fullName.slice(1)}`);
    const p = path ? `${path}.${field.name}` : field.name;
    const rt = resolvedTypeOf(field);
    if (x === null && !(rt && fullNameOf(rt) === '.google.protobuf.Value')) continue;
    if (field.map) {
      if (typeof x !== 'object' || x === null || Array.isArray(x)) fail(p, 'object expected');
      const o: Record<string, unknown> = {};
      for (const [k, y] of Object.entries(x as Record<string, unknown>))
        o[k] = scalarFromJson(field, y, `${p}[${JSON.stringify(k)}]`);
      out[field.name] = o;
    } else if (field.repeated) {
      if (!Array.isArray(x)) fail(p, 'array expected');
      out[field.name] = x.map((y, i) => scalarFromJson(field, y, `${p}[${i}]`));
    } else {
      const y = scalarFromJson(field, x, p);
      // proto3: a default-valued scalar outside a oneof is not encoded by protoc; keep it out.
      if (!field.partOf && !(rt instanceof protobuf.Type) && isDefaultScalar(field, y)) continue;
      out[field.name] = y;
    }
  }
  return out;
}

/** proto3 JSON → protobufjs `fromObject` form (camelCase names, enums as names, int64 as strings). */
export function fromProto3Json(typeNameOrUrl: string, json: unknown): ProtoObject {
  return messageFromJson(resolveType(typeNameOrUrl), json, '');
}
