// Compiled encoder of plain objects in protobufjs fromObject form: the bytes of
// `type.encode(type.fromObject(obj)).finish()`, without building the message tree fromObject builds
// nor the per-message forks of protobufjs' Writer (docs/decisions.md, "Compiled plain-object encoder").
//
// Two passes over the object: sizes first (each sub-message, string and packed run pushes its length
// onto a queue, in the order the write pass meets them), then one buffer of the exact total size.
// What protobufjs does, and so what this does:
// - fields in field-number order; a field is written when its value is not null/undefined, default
//   values included (fromObject copies them, the encoder writes every own field); arrays and maps only
//   when non-empty; map entries in Object.keys order, key as field 1, value as field 2;
// - packed runs for repeated scalars where `Field.packed` says so (proto3's default);
// - enums by name or number (int32 varint: a negative one takes 10 bytes), int32 `|0`, uint32 `>>>0`,
//   int64 as a number, a decimal string or a Long-like {low, high}, zigzag for sint, little-endian fixed;
// - floats through a Float32Array as protobufjs writes them, bytes as Uint8Array or base64 text
//   (decoded with protobufjs' own base64 decoder);
// - Any with `@type`: type_url (a leading '.' dropped, '/' added when missing) and the payload, the
//   same object encoded as the type `Any.fromObject` resolves the name to (relative to google.protobuf).
// Anything else (a class instance or array for a message, a value of another kind, a lone surrogate,
// an Any without `@type`, a map key of a type other than string/int64, deep nesting, a proto2 required
// field) is not guessed: `encodePlain` returns null and the caller encodes with protobufjs.
import protobuf from 'protobufjs';
import { resolvedTypeOf } from '../loader.js';
import { fullNameOf, typeOfAnyUrl } from '../json.js';
import { TYPE_URL_PREFIX } from '../type-urls.js';
import { putUtf8, putVarint, utf8Length, varintSize } from '../wire.js';

/** Thrown where the value is not one this encoder can prove; caught by encodePlain (one shared instance). */
const FALLBACK = new Error('plain encoder: not proven, encode with protobufjs');

/** Nesting deeper than this goes to protobufjs, which enforces its own recursion limit. */
const MAX_DEPTH = 64;

/** Lengths (sub-messages, strings, packed runs, map entries) in size-pass order, and decoded bytes. */
let lens: number[] = [];
let li = 0;
let blobs: Uint8Array[] = [];
let bi = 0;
let buf: Buffer = Buffer.alloc(0);
let pos = 0;
let depth = 0;

/** Whether a plain object of one type passes the caller's own checks on its fields (`encodeChecked`). */
export type MessageCheck = (obj: Record<string, unknown>) => boolean;
/** The check of each message type met, or null for none (`encodeChecked`'s argument). */
export type MessageChecks = (type: protobuf.Type) => MessageCheck | null;

/**
 * Set while `encodeChecked` runs: every value must also be one whose encoding the shape check proves
 * exact without a round trip (proto/check/shape.ts), and every message passes `checksOf`; anything
 * else falls back (FALLBACK), and the caller runs the full checks.
 */
let checking = false;
let checksOf: MessageChecks | null = null;

/** One value (a field value, an array item, a map value): its wire type, size and writer. */
interface Elem {
  wire: number;
  /** Bytes of the value (its length prefix included for length-delimited values). */
  size(v: unknown): number;
  /** Writes the value at `pos`. */
  write(v: unknown): void;
}

/** One field: the bytes of its present (non-null) value, keys included, and its writer. */
interface FieldCodec {
  name: string;
  id: number;
  size(v: unknown): number;
  write(v: unknown): void;
}

type SizeFields = (m: Record<string, unknown>, fields: readonly FieldCodec[]) => number;
type WriteFields = (m: Record<string, unknown>, fields: readonly FieldCodec[]) => void;

interface Plan {
  /** Fields in field-number order (protobufjs' encoder order). */
  fields: FieldCodec[];
  /** Generated per type: reads each field by its constant name (as protobufjs' fromObject does). */
  sizeFields: SizeFields;
  writeFields: WriteFields;
  /** A proto2 type with a required field: protobufjs writes it even when absent; not handled here. */
  unsupported: boolean;
  isAny: boolean;
  type: protobuf.Type;
  /** The size loop of `encodeChecked`, generated on first use. */
  sizeChecked?: SizeChecked;
  /** `checks(type)`, for the `checksOf` it was asked of. */
  checks?: MessageCheck | null;
  checksFor?: MessageChecks;
}

/** As SizeFields, and -1 when a key is not a field or a oneof has two members set. */
type SizeChecked = (m: Record<string, unknown>, fields: readonly FieldCodec[], extraKeys: number) => number;

const plans = new WeakMap<protobuf.Type, Plan>();

function planOf(type: protobuf.Type): Plan {
  let p = plans.get(type);
  if (p) return p;
  // Registered before its fields compile: recursive types reach it again only through closures, lazily.
  const fields = type.fieldsArray.slice().sort((a, b) => a.id - b.id);
  p = {
    fields: [],
    ...generated(fields),
    unsupported: false,
    isAny: fullNameOf(type) === '.google.protobuf.Any',
    type,
  };
  plans.set(type, p);
  for (const f of fields) {
    if (f.required || f.delimited) p.unsupported = true;
    p.fields.push(compileField(f));
  }
  return p;
}

/**
 * The size and write loops of one type, unrolled: one load per field by constant name, which V8
 * caches per object shape (a for..in with a name lookup per key costs about 1.5 times more). Names are
 * protobuf identifiers, embedded as JSON string literals.
 */
function generated(fields: readonly protobuf.Field[]): { sizeFields: SizeFields; writeFields: WriteFields } {
  let size = 'let n = 0, v;\n';
  let write = 'let v;\n';
  fields.forEach((f, i) => {
    const load = `(v = m[${JSON.stringify(f.name)}]) != null`;
    size += `if (${load}) n += F[${i}].size(v);\n`;
    write += `if (${load}) F[${i}].write(v);\n`;
  });
  return {
    sizeFields: new Function('m', 'F', size + 'return n;') as SizeFields,
    writeFields: new Function('m', 'F', write) as WriteFields,
  };
}

/**
 * The size loop of `encodeChecked`: also counts the keys that are fields (set, or null), which must
 * be all the object's keys (`extraKeys` more in an Any, its `@type`), and sees that at most one
 * member of each oneof is set, as the shape check requires.
 */
function generatedChecked(type: protobuf.Type, fields: readonly FieldCodec[]): SizeChecked {
  let body = 'let n = 0, k = 0, v;\n';
  fields.forEach((f, i) => {
    body += `if ((v = m[${JSON.stringify(f.name)}]) !== undefined) { k++; if (v !== null) n += F[${i}].size(v); }\n`;
  });
  for (const o of type.oneofsArray) {
    if (o.oneof.length <= 1) continue;
    const set = o.oneof.map((name) => `(m[${JSON.stringify(name)}] != null ? 1 : 0)`).join(' + ');
    body += `if (${set} > 1) return -1;\n`;
  }
  body += 'for (const _ in m) k--;\nreturn k + x === 0 ? n : -1;';
  return new Function('m', 'F', 'x', body) as SizeChecked;
}

function isPlain(v: unknown): v is Record<string, unknown> {
  if (typeof v !== 'object' || v === null) return false;
  const proto = Object.getPrototypeOf(v) as unknown;
  return proto === Object.prototype || proto === null;
}

// ---------------------------------------------------------------- varints and fixed-width numbers

/** The two 32-bit halves of the last 64-bit value read by `longBits`. */
let LO = 0;
let HI = 0;

const TWO32 = 4294967296;
const DECIMAL = /^-?\d+$/;
const MIN_I64 = -(1n << 63n);
const MAX_U64 = (1n << 64n) - 1n;

/** Sets LO/HI to the two's-complement bits of an int64-family value, as Long.fromValue + LongBits do. */
function longBits(v: unknown, unsigned: boolean): void {
  if (typeof v === 'number') {
    if (!Number.isSafeInteger(v) || (unsigned && v < 0)) throw FALLBACK;
    LO = v >>> 0;
    HI = Math.floor(v / TWO32) >>> 0;
    return;
  }
  if (typeof v === 'string') {
    if (!DECIMAL.test(v)) throw FALLBACK;
    if (v.length <= 15) {
      longBits(Number(v), unsigned);
      return;
    }
    const b = BigInt(v);
    if (unsigned ? b < 0n || b > MAX_U64 : b < MIN_I64 || b >= 1n << 63n) throw FALLBACK;
    const u = BigInt.asUintN(64, b);
    LO = Number(u & 0xffffffffn);
    HI = Number(u >> 32n);
    return;
  }
  if (typeof v === 'object' && v !== null) {
    const l = v as { low?: unknown; high?: unknown };
    if (typeof l.low !== 'number' || (typeof l.high !== 'number' && l.high !== undefined)) throw FALLBACK;
    LO = l.low >>> 0;
    HI = (l.high ?? 0) >>> 0;
    return;
  }
  throw FALLBACK;
}

function varint64Size(lo: number, hi: number): number {
  const p1 = ((lo >>> 28) | (hi << 4)) >>> 0;
  const p2 = hi >>> 24;
  if (p2 !== 0) return p2 < 128 ? 9 : 10;
  if (p1 !== 0) return p1 < 16384 ? (p1 < 128 ? 5 : 6) : p1 < 2097152 ? 7 : 8;
  return lo < 16384 ? (lo < 128 ? 1 : 2) : lo < 2097152 ? 3 : 4;
}

function putVarint64(lo: number, hi: number): void {
  while (hi) {
    buf[pos++] = (lo & 127) | 128;
    lo = ((lo >>> 7) | (hi << 25)) >>> 0;
    hi >>>= 7;
  }
  while (lo > 127) {
    buf[pos++] = (lo & 127) | 128;
    lo >>>= 7;
  }
  buf[pos++] = lo;
}

function putFixed32(n: number): void {
  buf[pos] = n & 255;
  buf[pos + 1] = (n >>> 8) & 255;
  buf[pos + 2] = (n >>> 16) & 255;
  buf[pos + 3] = n >>> 24;
  pos += 4;
}

const f32 = new Float32Array(1);
const f32b = new Uint8Array(f32.buffer);
const f64 = new Float64Array(1);
const f64b = new Uint8Array(f64.buffer);
const LE = f32b.length === 4 && new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

function putFloat(n: number): void {
  f32[0] = n;
  if (LE) for (let i = 0; i < 4; i++) buf[pos + i] = f32b[i] as number;
  else for (let i = 0; i < 4; i++) buf[pos + i] = f32b[3 - i] as number;
  pos += 4;
}

function putDouble(n: number): void {
  f64[0] = n;
  if (LE) for (let i = 0; i < 8; i++) buf[pos + i] = f64b[i] as number;
  else for (let i = 0; i < 8; i++) buf[pos + i] = f64b[7 - i] as number;
  pos += 8;
}

function int32Size(n: number): number {
  return n < 0 ? 10 : varintSize(n);
}

function putInt32(n: number): void {
  if (n < 0) putVarint64(n >>> 0, 0xffffffff);
  else pos = putVarint(buf, pos, n);
}

function num(v: unknown): number {
  if (typeof v !== 'number') throw FALLBACK;
  return v;
}

/** double/float: fromObject's `Number(v)` of a number or a text ("NaN", "Infinity"...). */
function real(v: unknown): number {
  if (typeof v === 'number') return v;
  if (typeof v === 'string') return Number(v);
  throw FALLBACK;
}

// ---------------------------------------------------------------- element codecs

const WIRE_VARINT = 0;
const WIRE_I64 = 1;
const WIRE_LEN = 2;
const WIRE_I32 = 5;

/** The value's own check under `encodeChecked` (its kind is checked by `toN`). */
type Exact = (v: unknown) => boolean;
const IS_INT32: Exact = (v) => ((v as number) | 0) === v;
const IS_UINT32: Exact = (v) => (v as number) >>> 0 === v;
const IS_NUMBER: Exact = (v) => typeof v === 'number';
const IS_STRING: Exact = (v) => typeof v === 'string';

function varintElem(toN: (v: unknown) => number, exact: Exact): Elem {
  return {
    wire: WIRE_VARINT,
    size: (v) => {
      const n = toN(v);
      if (checking && !exact(v)) throw FALLBACK;
      return varintSize(n);
    },
    write: (v) => {
      pos = putVarint(buf, pos, toN(v));
    },
  };
}

function int32Elem(toN: (v: unknown) => number, exact: Exact): Elem {
  return {
    wire: WIRE_VARINT,
    size: (v) => {
      const n = toN(v);
      if (checking && !exact(v)) throw FALLBACK;
      return int32Size(n);
    },
    write: (v) => putInt32(toN(v)),
  };
}

function longElem(unsigned: boolean, zigzag: boolean, fixed: boolean): Elem {
  const bits = (v: unknown): void => {
    longBits(v, unsigned);
    if (zigzag) {
      const mask = HI >> 31;
      HI = (((HI << 1) | (LO >>> 31)) ^ mask) >>> 0;
      LO = ((LO << 1) ^ mask) >>> 0;
    }
  };
  // The shape check proves int64 exact only as a number (else the round trip runs).
  if (fixed)
    return {
      wire: WIRE_I64,
      size: (v) => {
        longBits(v, unsigned);
        if (checking && typeof v !== 'number') throw FALLBACK;
        return 8;
      },
      write: (v) => {
        bits(v);
        putFixed32(LO);
        putFixed32(HI);
      },
    };
  return {
    wire: WIRE_VARINT,
    size: (v) => {
      bits(v);
      if (checking && typeof v !== 'number') throw FALLBACK;
      return varint64Size(LO, HI);
    },
    write: (v) => {
      bits(v);
      putVarint64(LO, HI);
    },
  };
}

const STRING: Elem = {
  wire: WIRE_LEN,
  size: (v) => {
    if (typeof v !== 'string') throw FALLBACK;
    const n = utf8Length(v);
    // Not all ASCII: protobufjs writes a lone surrogate one way under 40 characters, another above.
    if (n !== v.length && !(v as unknown as { isWellFormed(): boolean }).isWellFormed()) throw FALLBACK;
    lens.push(n);
    return varintSize(n) + n;
  },
  write: (v) => {
    const n = lens[li++] as number;
    pos = putVarint(buf, pos, n);
    pos = putUtf8(buf, pos, v as string, n);
  },
};

const b64 = protobuf.util.base64;

/** bytes as fromObject takes them: a Uint8Array as it is, base64 text decoded by protobufjs' decoder. */
function bytesOf(v: unknown): Uint8Array {
  if (v instanceof Uint8Array) return v;
  if (typeof v !== 'string') throw FALLBACK;
  const out = Buffer.alloc(Math.trunc(b64.length(v)));
  // A count that differs from the length fromObject allocates would leave its bytes unset there.
  if (b64.decode(v, out, 0) !== out.length) throw FALLBACK;
  return out;
}

const BYTES: Elem = {
  wire: WIRE_LEN,
  size: (v) => {
    // The shape check never proves bytes exact: the round trip runs.
    if (checking) throw FALLBACK;
    const b = bytesOf(v);
    blobs.push(b);
    return varintSize(b.length) + b.length;
  },
  write: () => {
    const b = blobs[bi++] as Uint8Array;
    pos = putVarint(buf, pos, b.length);
    buf.set(b, pos);
    pos += b.length;
  },
};

const BOOL: Elem = {
  wire: WIRE_VARINT,
  size: (v) => {
    if (typeof v !== 'boolean') throw FALLBACK;
    return 1;
  },
  write: (v) => {
    buf[pos++] = v ? 1 : 0;
  },
};

/** A fixed-width value (4 bytes for I32, 8 for I64): `toN` checks its kind in the size pass too. */
function fixedElem(wire: number, toN: (v: unknown) => number, put: (n: number) => void, exact: Exact): Elem {
  const n = wire === WIRE_I32 ? 4 : 8;
  return {
    wire,
    size: (v) => {
      toN(v);
      if (checking && !exact(v)) throw FALLBACK;
      return n;
    },
    write: (v) => put(toN(v)),
  };
}

function scalarElem(t: string): Elem | null {
  switch (t) {
    case 'string':
      return STRING;
    case 'bytes':
      return BYTES;
    case 'bool':
      return BOOL;
    case 'double':
      return fixedElem(WIRE_I64, real, putDouble, IS_NUMBER);
    case 'float':
      return fixedElem(WIRE_I32, real, putFloat, IS_NUMBER);
    case 'int32':
      return int32Elem((v) => num(v) | 0, IS_INT32);
    case 'uint32':
      return varintElem((v) => num(v) >>> 0, IS_UINT32);
    case 'sint32':
      return varintElem((v) => {
        const n = num(v) | 0;
        return ((n << 1) ^ (n >> 31)) >>> 0;
      }, IS_INT32);
    case 'fixed32':
      return fixedElem(WIRE_I32, (v) => num(v) >>> 0, putFixed32, IS_UINT32);
    case 'sfixed32':
      return fixedElem(WIRE_I32, (v) => num(v) >>> 0, putFixed32, IS_INT32);
    case 'int64':
      return longElem(false, false, false);
    case 'uint64':
      return longElem(true, false, false);
    case 'sint64':
      return longElem(false, true, false);
    case 'fixed64':
      return longElem(true, false, true);
    case 'sfixed64':
      return longElem(false, false, true);
  }
  return null;
}

function enumElem(e: protobuf.Enum): Elem {
  const values = e.values;
  // A known name or any number (fromObject passes unknown numbers through); int32 on the wire.
  const toN = (v: unknown): number => {
    if (typeof v === 'string') {
      if (!Object.prototype.hasOwnProperty.call(values, v)) throw FALLBACK;
      return values[v] as number;
    }
    return num(v) | 0;
  };
  // A number is proven only by the round trip (the shape check flags it).
  return int32Elem(toN, IS_STRING);
}

function messageElem(mt: protobuf.Type): Elem {
  let plan: Plan | undefined;
  return {
    wire: WIRE_LEN,
    size: (v) => {
      const i = lens.length;
      lens.push(0);
      const n = sizeMessage((plan ??= planOf(mt)), v);
      lens[i] = n;
      return varintSize(n) + n;
    },
    write: (v) => {
      pos = putVarint(buf, pos, lens[li++] as number);
      writeMessage(plan as Plan, v as Record<string, unknown>);
    },
  };
}

function elemOf(f: protobuf.Field): Elem | null {
  const rt = resolvedTypeOf(f);
  if (rt instanceof protobuf.Type) return messageElem(rt);
  if (rt instanceof protobuf.Enum) return enumElem(rt);
  return scalarElem(f.type);
}

// ---------------------------------------------------------------- field codecs

/** The key of field `id` with `wire` type, as bytes. */
function keyBytes(id: number, wire: number): number[] {
  const out: number[] = [];
  let n = ((id << 3) | wire) >>> 0;
  while (n >= 0x80) {
    out.push((n & 0x7f) | 0x80);
    n >>>= 7;
  }
  out.push(n);
  return out;
}

function putKey(key: number[]): void {
  for (let i = 0; i < key.length; i++) buf[pos++] = key[i] as number;
}

const UNPROVEN: Omit<FieldCodec, 'name' | 'id'> = {
  size: () => {
    throw FALLBACK;
  },
  write: () => {
    throw FALLBACK;
  },
};

function singularField(f: protobuf.Field, elem: Elem): FieldCodec {
  const key = keyBytes(f.id, elem.wire);
  const kl = key.length;
  return {
    name: f.name,
    id: f.id,
    size: (v) => kl + elem.size(v),
    write: (v) => {
      putKey(key);
      elem.write(v);
    },
  };
}

function repeatedField(f: protobuf.Field, elem: Elem): FieldCodec {
  const packed = f.packed && elem.wire !== WIRE_LEN;
  const key = keyBytes(f.id, packed ? WIRE_LEN : elem.wire);
  const kl = key.length;
  const items = (v: unknown): unknown[] => {
    if (!Array.isArray(v)) throw FALLBACK;
    return v;
  };
  if (packed)
    return {
      name: f.name,
      id: f.id,
      size: (v) => {
        const a = items(v);
        if (a.length === 0) return 0;
        let n = 0;
        for (let i = 0; i < a.length; i++) n += elem.size(a[i]);
        lens.push(n);
        return kl + varintSize(n) + n;
      },
      write: (v) => {
        const a = v as unknown[];
        if (a.length === 0) return;
        putKey(key);
        pos = putVarint(buf, pos, lens[li++] as number);
        for (let i = 0; i < a.length; i++) elem.write(a[i]);
      },
    };
  return {
    name: f.name,
    id: f.id,
    size: (v) => {
      const a = items(v);
      let n = a.length * kl;
      for (let i = 0; i < a.length; i++) n += elem.size(a[i]);
      return n;
    },
    write: (v) => {
      const a = v as unknown[];
      for (let i = 0; i < a.length; i++) {
        putKey(key);
        elem.write(a[i]);
      }
    },
  };
}

/** A map key (given as the object's string key) as field 1 of the entry. */
function mapKeyElem(keyType: string): Elem | null {
  if (keyType === 'string') return STRING;
  if (keyType === 'int64') return longElem(false, false, false);
  return null;
}

function mapField(f: protobuf.Field, elem: Elem): FieldCodec {
  const keyElem = mapKeyElem((f as unknown as protobuf.MapField).keyType);
  if (!keyElem) return { name: f.name, id: f.id, ...UNPROVEN };
  const key = keyBytes(f.id, WIRE_LEN);
  const kl = key.length;
  const kKey = (1 << 3) | keyElem.wire;
  const vKey = (2 << 3) | elem.wire;
  return {
    name: f.name,
    id: f.id,
    size: (v) => {
      // Other key types than string: only the round trip proves them.
      if (!isPlain(v) || (checking && keyElem !== STRING)) throw FALLBACK;
      let n = 0;
      for (const k of Object.keys(v)) {
        if (k === '__proto__') throw FALLBACK;
        const i = lens.length;
        lens.push(0);
        const e = 1 + keyElem.size(k) + 1 + elem.size(v[k]);
        lens[i] = e;
        n += kl + varintSize(e) + e;
      }
      return n;
    },
    write: (v) => {
      const m = v as Record<string, unknown>;
      for (const k of Object.keys(m)) {
        putKey(key);
        pos = putVarint(buf, pos, lens[li++] as number);
        buf[pos++] = kKey;
        keyElem.write(k);
        buf[pos++] = vKey;
        elem.write(m[k]);
      }
    },
  };
}

function compileField(f: protobuf.Field): FieldCodec {
  const elem = elemOf(f);
  if (!elem) return { name: f.name, id: f.id, ...UNPROVEN };
  if (f.map) return mapField(f, elem);
  if (f.repeated) return repeatedField(f, elem);
  return singularField(f, elem);
}

// ---------------------------------------------------------------- messages

/** The Any payload type protobufjs' Any.fromObject resolves `@type` to, and the type_url it sends. */
const anyTargets = new Map<string, { type: protobuf.Type; url: string } | null>();

function anyTarget(anyType: protobuf.Type, url: string): { type: protobuf.Type; url: string } | null {
  let t = anyTargets.get(url);
  if (t !== undefined) return t;
  const found = anyType.lookup(url.substring(url.lastIndexOf('/') + 1));
  let typeUrl = url.charAt(0) === '.' ? url.slice(1) : url;
  if (typeUrl.indexOf('/') === -1) typeUrl = '/' + typeUrl;
  t = found instanceof protobuf.Type && found !== anyType ? { type: found, url: typeUrl } : null;
  anyTargets.set(url, t);
  return t;
}

/** Size of an Any given with `@type`: type_url (1) and the payload (2), both always written. */
function sizeAny(plan: Plan, obj: Record<string, unknown>): number {
  const url = obj['@type'];
  if (typeof url !== 'string' || url === '') throw FALLBACK;
  const t = anyTarget(plan.type, url);
  if (!t) throw FALLBACK;
  if (checking && !provenAny(url, t.type)) throw FALLBACK;
  const u = STRING.size(t.url);
  const i = lens.length;
  lens.push(0);
  const n = sizeMessage(planOf(t.type), obj, 1);
  lens[i] = n;
  return 1 + u + 1 + varintSize(n) + n;
}

function writeAny(obj: Record<string, unknown>): void {
  const t = anyTargets.get(obj['@type'] as string) as { type: protobuf.Type; url: string };
  buf[pos++] = (1 << 3) | WIRE_LEN;
  STRING.write(t.url);
  buf[pos++] = (2 << 3) | WIRE_LEN;
  pos = putVarint(buf, pos, lens[li++] as number);
  writeMessage(planOf(t.type), obj);
}

/** Per @type URL: the shape check's type is the encoder's, and the URL is sent unchanged. */
const provenAnys = new Map<string, boolean>();

function provenAny(url: string, target: protobuf.Type): boolean {
  let ok = provenAnys.get(url);
  if (ok === undefined) {
    ok = typeOfAnyUrl(url) === target && url.startsWith(TYPE_URL_PREFIX);
    provenAnys.set(url, ok);
  }
  return ok;
}

/** `extraKeys`: keys of `v` that are not fields of the plan's type (an Any payload's `@type`). */
function sizeMessage(plan: Plan, v: unknown, extraKeys = 0): number {
  if (!isPlain(v) || plan.unsupported || depth >= MAX_DEPTH) throw FALLBACK;
  if (plan.isAny) return sizeAny(plan, v);
  depth++;
  const n = checking ? sizeChecked(plan, v, extraKeys) : plan.sizeFields(v, plan.fields);
  depth--;
  return n;
}

function sizeChecked(plan: Plan, v: Record<string, unknown>, extraKeys: number): number {
  const n = (plan.sizeChecked ??= generatedChecked(plan.type, plan.fields))(v, plan.fields, extraKeys);
  if (n < 0) throw FALLBACK;
  const of = checksOf as MessageChecks;
  if (plan.checksFor !== of) {
    plan.checks = of(plan.type);
    plan.checksFor = of;
  }
  const check = plan.checks;
  if (check && !check(v)) throw FALLBACK;
  return n;
}

function writeMessage(plan: Plan, obj: Record<string, unknown>): void {
  if (plan.isAny) writeAny(obj);
  else plan.writeFields(obj, plan.fields);
}

/**
 * `type.encode(type.fromObject(obj)).finish()`, byte for byte, or null where this encoder does not
 * prove the bytes (the caller then encodes with protobufjs, which also reports what it refuses).
 */
export function encodePlain(type: protobuf.Type, obj: Record<string, unknown>): Buffer | null {
  return encode(type, obj);
}

/**
 * The bytes of `encodePlain`, when `obj` is also a value the shape check passes without flagging a
 * round trip (every key a field, at most one member per oneof, int32/uint32 in range, int64 and
 * floats as numbers, enums by name, no bytes, string map keys, Any with a type.googleapis.com/
 * `@type` of the type protobufjs resolves) and every message in it passes `checks` of its type.
 * Else null, also where encodePlain would give bytes: the caller then runs the full checks.
 */
export function encodeChecked(type: protobuf.Type, obj: Record<string, unknown>, checks: MessageChecks): Buffer | null {
  checking = true;
  checksOf = checks;
  try {
    return encode(type, obj);
  } finally {
    checking = false;
    checksOf = null;
  }
}

function encode(type: protobuf.Type, obj: Record<string, unknown>): Buffer | null {
  lens = [];
  blobs = [];
  li = 0;
  bi = 0;
  depth = 0;
  try {
    const plan = planOf(type);
    const n = sizeMessage(plan, obj);
    buf = Buffer.allocUnsafe(n);
    pos = 0;
    writeMessage(plan, obj);
    if (pos !== n || li !== lens.length || bi !== blobs.length)
      throw new Error(`plain encoder: wrote ${pos} of ${n} bytes (a sizing bug)`);
    return buf;
  } catch {
    // FALLBACK, or anything else unforeseen: protobufjs encodes it (correctness first).
    return null;
  } finally {
    blobs = [];
    buf = EMPTY;
  }
}

const EMPTY = Buffer.alloc(0);
