// Hand-written protobuf codec for the ext_authz hot path: CheckRequest bytes → CheckInput
// (reads only the fields the policy needs, straight from the buffer by offset, and skips the
// rest without materialising it) and Decision → CheckResponse bytes. Field numbers are envoy/service/auth/v3 (external_auth.proto,
// attribute_context.proto) and envoy/config/core/v3 (base.proto, address.proto); the tests
// cross-check every byte against protobufjs's reflection codec of the real protos.
import protobuf from 'protobufjs';
import type { CheckInput, Decision } from './types.js';
import { errorResponse } from './errors.js';

const { Writer } = protobuf;
type WriterT = protobuf.Writer;

export interface CodecLimits {
  /** Max number of request headers (default 200; Envoy's own default is 100). */
  maxHeaders: number;
  /** Max total bytes of header names + values, path included (default 96 KiB; Envoy's default is 60 KiB). */
  maxHeaderBytes: number;
}

export const DEFAULT_LIMITS: CodecLimits = { maxHeaders: 200, maxHeaderBytes: 96 * 1024 };

/** A CheckRequest we refuse to evaluate; `status` is the HTTP status of the deny. */
export class MalformedCheckRequest extends Error {
  constructor(
    readonly status: 400 | 431,
    message: string,
  ) {
    super(message);
  }
}

// ------------------------------------------------------------------ decode
//
// Offset-based reader straight over the request Buffer (no protobufjs Reader, no per-entry
// arrays): fields the policy never reads are skipped by length without being decoded, header
// names go through a small bounded intern table (Envoy sends the same names on every request, so
// the lower-cased string is decoded once), values are decoded with one native `utf8Slice` each
// unless they repeat the last value of their name (see `valueOf`).

interface SliceBuffer extends Buffer {
  utf8Slice(start: number, end: number): string;
  latin1Slice(start: number, end: number): string;
}

/** Thrown on any wire-format error; becomes MalformedCheckRequest(400). */
class WireError extends Error {}

// Decoder state (the decoder is synchronous and not re-entrant: module-level cursor).
let B: SliceBuffer;
let P = 0;
let hCount = 0;
let hBytes = 0;
let lim: CodecLimits = DEFAULT_LIMITS;

function varint(): number {
  const b = B;
  let c = b[P++];
  if (c === undefined) throw new WireError('index out of range');
  if (c < 0x80) return c;
  let x = c & 0x7f;
  c = b[P++];
  if (c === undefined) throw new WireError('index out of range');
  x |= (c & 0x7f) << 7;
  if (c < 0x80) return x;
  c = b[P++];
  if (c === undefined) throw new WireError('index out of range');
  x |= (c & 0x7f) << 14;
  if (c < 0x80) return x;
  c = b[P++];
  if (c === undefined) throw new WireError('index out of range');
  x |= (c & 0x7f) << 21;
  if (c < 0x80) return x;
  c = b[P++];
  if (c === undefined) throw new WireError('index out of range');
  x = (x | ((c & 0x0f) << 28)) >>> 0;
  if (c < 0x80) return x;
  // 64-bit varint: protobufjs' uint32 keeps the low 32 bits and skips 5 more bytes
  for (let i = 0; i < 5; i++) {
    c = b[P++];
    if (c === undefined) throw new WireError('index out of range');
    if (c < 0x80) return x;
  }
  throw new WireError('invalid varint encoding');
}

/** Length prefix of a length-delimited field; returns the end offset (checked against `limit`). */
function lenEnd(limit: number): number {
  const n = varint();
  const end = P + n;
  if (end > limit) throw new WireError('index out of range');
  return end;
}

function skip(wireType: number, limit: number): void {
  switch (wireType) {
    case 0:
      varint();
      return;
    case 1:
      P += 8;
      break;
    case 2:
      P = lenEnd(limit);
      return;
    case 3:
      for (;;) {
        const t = varint();
        const w = t & 7;
        if (w === 4) return;
        skip(w, limit);
      }
    case 5:
      P += 4;
      break;
    default:
      throw new WireError(`invalid wire type ${wireType}`);
  }
  if (P > limit) throw new WireError('index out of range');
}

function str(s: number, e: number): string {
  return s === e ? '' : B.utf8Slice(s, e);
}

// Intern tables: header names (lower-cased) and context-extension keys. Envoy sends the same
// names on every request, so each is decoded once; one entry per slot (replaced on collision), so
// memory is bounded. Each entry also remembers the last value seen under that name and reuses the
// string when the next value has the same bytes (accept, user-agent, :method, descriptor_id...),
// for as long as that hits at least a quarter of the time.
interface Interned {
  bytes: Uint8Array;
  /** the name (lower-cased for header names) */
  str: string;
  /** length of the name as sent (UTF-16 units), for the size budget */
  rawLen: number;
  vBytes: Uint8Array | undefined;
  v: string;
  vHits: number;
  vMiss: number;
}
const NAMES: (Interned | undefined)[] = new Array<Interned | undefined>(512).fill(undefined);
const EXT_KEYS: (Interned | undefined)[] = new Array<Interned | undefined>(64).fill(undefined);
const MAX_INTERNED = 64;
const slice = (b: Uint8Array, s: number, e: number): Uint8Array => Uint8Array.prototype.slice.call(b, s, e);

/** Entry of the name just read by `internName` (undefined when not interned). */
let lastEntry: Interned | undefined;
/** Length (UTF-16 units, as sent) of the name just read. */
let nameRawLen = 0;

/** The name at [s, e), lower-cased when `lower`; sets `lastEntry` and `nameRawLen`. */
function internName(table: (Interned | undefined)[], lower: boolean, s: number, e: number): string {
  const len = e - s;
  const b = B;
  if (len === 0 || len > MAX_INTERNED) {
    lastEntry = undefined;
    const raw = str(s, e);
    nameRawLen = raw.length;
    return lower ? raw.toLowerCase() : raw;
  }
  let h = len;
  for (let i = s; i < e; i++) h = (Math.imul(h, 31) + b[i]!) | 0;
  const slot = (h ^ (h >>> 9)) & (table.length - 1);
  const ent = table[slot];
  if (ent !== undefined) {
    const eb = ent.bytes;
    if (eb.length === len) {
      let i = 0;
      while (i < len && eb[i] === b[s + i]) i++;
      if (i === len) {
        lastEntry = ent;
        nameRawLen = ent.rawLen;
        return ent.str;
      }
    }
  }
  const raw = b.utf8Slice(s, e);
  const name = lower ? raw.toLowerCase() : raw;
  const fresh: Interned = {
    bytes: slice(b, s, e),
    str: name,
    rawLen: raw.length,
    vBytes: undefined,
    v: '',
    vHits: 0,
    vMiss: 0,
  };
  table[slot] = fresh;
  lastEntry = fresh;
  nameRawLen = raw.length;
  return name;
}

/** Last-value caches of the HttpRequest fields method, host and scheme. */
const fieldEntry = (name: string): Interned => ({
  bytes: new Uint8Array(0),
  str: name,
  rawLen: 0,
  vBytes: undefined,
  v: '',
  vHits: 0,
  vMiss: 0,
});
const METHOD = fieldEntry('method');
const HOST = fieldEntry('host');
const SCHEME = fieldEntry('scheme');

/** The value at [s, e) of the name whose entry is `ent` (see above). */
function valueOf(ent: Interned | undefined, s: number, e: number): string {
  const len = e - s;
  if (ent === undefined || len === 0 || len > MAX_INTERNED) return str(s, e);
  const b = B;
  const vb = ent.vBytes;
  if (vb !== undefined && vb.length === len) {
    let i = 0;
    while (i < len && vb[i] === b[s + i]) i++;
    if (i === len) {
      ent.vHits++;
      return ent.v;
    }
  }
  const v = b.utf8Slice(s, e);
  if (++ent.vMiss > 1_000_000) {
    ent.vMiss >>= 1;
    ent.vHits >>= 1;
  }
  if (ent.vMiss < 16 || ent.vHits * 3 >= ent.vMiss) {
    ent.vBytes = slice(b, s, e);
    ent.v = v;
  }
  return v;
}

function charge(kLen: number, vLen: number): void {
  hCount++;
  hBytes += kLen + vLen;
  if (hCount > lim.maxHeaders) throw new MalformedCheckRequest(431, `more than ${lim.maxHeaders} request headers`);
  if (hBytes > lim.maxHeaderBytes)
    throw new MalformedCheckRequest(431, `request headers larger than ${lim.maxHeaderBytes} bytes`);
}

function addHeader(headers: Record<string, string>, key: string, value: string): void {
  const prev = headers[key];
  headers[key] = prev === undefined ? value : `${prev}${key === 'cookie' ? '; ' : ','}${value}`;
}

/** map<string,string> entry (key = 1, value = 2) of `headers` (field 3): straight into `headers`. */
function readHeaderEntry(headers: Record<string, string>, limit: number): void {
  const end = lenEnd(limit);
  let k = '';
  let v = '';
  let kLen = 0;
  let ent: Interned | undefined;
  while (P < end) {
    const tag = varint();
    if (tag === 0x0a) {
      const e = lenEnd(end);
      k = internName(NAMES, true, P, e);
      ent = lastEntry;
      kLen = nameRawLen;
      P = e;
    } else if (tag === 0x12) {
      const e = lenEnd(end);
      v = valueOf(ent, P, e); // the value cache only once the name is known (key before value)
      P = e;
    } else skip(tag & 7, end);
  }
  if (P !== end) throw new WireError('length mismatch');
  charge(kLen, v.length);
  addHeader(headers, k, v);
}

/** config.core.v3.HeaderValue: key 1, value 2, raw_value 3. */
function readHeaderValue(headers: Record<string, string>, limit: number): void {
  const end = lenEnd(limit);
  let k = '';
  let v = '';
  let kLen = 0;
  let rawS = -1;
  let rawE = -1;
  while (P < end) {
    const tag = varint();
    if (tag === 0x0a) {
      const e = lenEnd(end);
      k = internName(NAMES, true, P, e);
      kLen = nameRawLen;
      P = e;
    } else if (tag === 0x12) {
      const e = lenEnd(end);
      v = str(P, e);
      P = e;
    } else if (tag === 0x1a) {
      const e = lenEnd(end);
      rawS = P;
      rawE = e;
      P = e;
    } else skip(tag & 7, end);
  }
  if (P !== end) throw new WireError('length mismatch');
  if (rawE > rawS && v === '') v = B.latin1Slice(rawS, rawE);
  charge(kLen, v.length);
  addHeader(headers, k, v);
}

/**
 * Header objects: instances of a class whose prototype is a null-prototype object, so that no
 * name ('constructor', '__proto__', 'toString'...) resolves to anything inherited (same lookups as
 * `Object.create(null)`), while V8 keeps them in fast mode (hidden-class transitions are shared by
 * every request carrying the same header names) instead of the dictionary mode of
 * `Object.create(null)`.
 */
const HeaderBag = function HeaderBag(this: object) {} as unknown as new () => Record<string, string>;
HeaderBag.prototype = Object.create(null) as object;

interface HttpFields {
  method: string;
  path: string;
  host: string;
  scheme: string;
  query: string;
  headers: Record<string, string>;
}

/** AttributeContext.HttpRequest. */
function readHttp(limit: number): HttpFields {
  const end = lenEnd(limit);
  const h: HttpFields = { method: '', path: '', host: '', scheme: '', query: '', headers: new HeaderBag() };
  while (P < end) {
    const tag = varint();
    switch (tag) {
      case 0x12: {
        const e = lenEnd(end);
        h.method = valueOf(METHOD, P, e);
        P = e;
        break;
      } // method = 2
      case 0x1a:
        readHeaderEntry(h.headers, end);
        break; // headers = 3
      case 0x22: {
        const e = lenEnd(end);
        h.path = str(P, e);
        P = e;
        hBytes += h.path.length;
        break;
      } // path = 4
      case 0x2a: {
        const e = lenEnd(end);
        h.host = valueOf(HOST, P, e);
        P = e;
        break;
      } // host = 5
      case 0x32: {
        const e = lenEnd(end);
        h.scheme = valueOf(SCHEME, P, e);
        P = e;
        break;
      } // scheme = 6
      case 0x3a: {
        const e = lenEnd(end);
        h.query = str(P, e);
        P = e;
        break;
      } // query = 7
      case 0x6a: {
        // header_map = 13: HeaderMap { repeated HeaderValue headers = 1 }
        const mapEnd = lenEnd(end);
        while (P < mapEnd) {
          const t = varint();
          if (t === 0x0a) readHeaderValue(h.headers, mapEnd);
          else skip(t & 7, mapEnd);
        }
        if (P !== mapEnd) throw new WireError('length mismatch');
        break;
      }
      default:
        skip(tag & 7, end);
    }
  }
  if (P !== end) throw new WireError('length mismatch');
  if (hBytes > lim.maxHeaderBytes)
    throw new MalformedCheckRequest(431, `request headers larger than ${lim.maxHeaderBytes} bytes`);
  return h;
}

/** Peer → address(1) → socket_address(1) → address(2). */
function readPeerAddress(limit: number): string | undefined {
  const end = lenEnd(limit);
  let ip: string | undefined;
  while (P < end) {
    const tag = varint();
    if (tag === 0x0a) {
      const aEnd = lenEnd(end);
      while (P < aEnd) {
        const t = varint();
        if (t === 0x0a) {
          const sEnd = lenEnd(aEnd);
          while (P < sEnd) {
            const s = varint();
            if (s === 0x12) {
              const e = lenEnd(sEnd);
              ip = str(P, e);
              P = e;
            } else skip(s & 7, sEnd);
          }
          if (P !== sEnd) throw new WireError('length mismatch');
        } else skip(t & 7, aEnd);
      }
      if (P !== aEnd) throw new WireError('length mismatch');
    } else skip(tag & 7, end);
  }
  if (P !== end) throw new WireError('length mismatch');
  return ip;
}

function asSliceBuffer(buf: Uint8Array): SliceBuffer {
  return (Buffer.isBuffer(buf) ? buf : Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength)) as SliceBuffer;
}

/**
 * Decodes a CheckRequest into a CheckInput. Throws MalformedCheckRequest (400) when the bytes
 * are not a CheckRequest or carry no `attributes.request.http`, (431) beyond the size limits.
 */
export function decodeCheckRequest(buf: Uint8Array, limits: CodecLimits = DEFAULT_LIMITS): CheckInput {
  let http: HttpFields | undefined;
  let sourceIp: string | undefined;
  const ext: Record<string, string> = new HeaderBag();
  B = asSliceBuffer(buf);
  P = 0;
  hCount = 0;
  hBytes = 0;
  lim = limits;
  const len = B.length;
  try {
    while (P < len) {
      const tag = varint();
      if (tag !== 0x0a) {
        skip(tag & 7, len);
        continue;
      } // attributes = 1
      const end = lenEnd(len);
      while (P < end) {
        const t = varint();
        switch (t >>> 3) {
          case 1:
            if ((t & 7) !== 2) throw new WireError('wire type');
            sourceIp = readPeerAddress(end);
            break;
          case 4: {
            // request: Request { time 1, http 2 }
            if ((t & 7) !== 2) throw new WireError('wire type');
            const rEnd = lenEnd(end);
            while (P < rEnd) {
              const u = varint();
              if (u === 0x12) http = readHttp(rEnd);
              else skip(u & 7, rEnd);
            }
            if (P !== rEnd) throw new WireError('length mismatch');
            break;
          }
          case 10: {
            // context_extensions: map<string,string>
            if ((t & 7) !== 2) throw new WireError('wire type');
            const eEnd = lenEnd(end);
            let k = '';
            let v = '';
            let ent: Interned | undefined;
            while (P < eEnd) {
              const u = varint();
              if (u === 0x0a) {
                const e = lenEnd(eEnd);
                k = internName(EXT_KEYS, false, P, e);
                ent = lastEntry;
                P = e;
              } else if (u === 0x12) {
                const e = lenEnd(eEnd);
                v = valueOf(ent, P, e);
                P = e;
              } else skip(u & 7, eEnd);
            }
            if (P !== eEnd) throw new WireError('length mismatch');
            ext[k] = v;
            break;
          }
          default:
            skip(t & 7, end);
        }
      }
      if (P !== end) throw new WireError('length mismatch');
    }
    if (P !== len) throw new WireError('trailing bytes');
  } catch (e) {
    if (e instanceof MalformedCheckRequest) throw e;
    throw new MalformedCheckRequest(400, `undecodable CheckRequest: ${(e as Error).message}`);
  } finally {
    B = EMPTY_BUF;
  }
  if (!http) throw new MalformedCheckRequest(400, 'CheckRequest without attributes.request.http');
  const hd = http.headers;
  let path = http.path || hd[':path'] || '/';
  let query = http.query;
  const q = path.indexOf('?');
  if (q >= 0) {
    if (!query) query = path.slice(q + 1);
    path = path.slice(0, q);
  }
  const hash = path.indexOf('#');
  if (hash >= 0) path = path.slice(0, hash);
  if (path.charCodeAt(0) !== 0x2f) path = `/${path}`;
  const input: CheckInput = {
    method: (http.method || hd[':method'] || '').toUpperCase(),
    host: http.host || hd[':authority'] || hd.host || '',
    path,
    query,
    headers: hd,
    contextExtensions: ext,
  };
  const scheme = http.scheme || hd[':scheme'];
  if (scheme) input.scheme = scheme;
  if (sourceIp) input.sourceIp = sourceIp;
  return input;
}

const EMPTY_BUF = Buffer.alloc(0) as SliceBuffer;

// ------------------------------------------------------------------ encode

const OVERWRITE_IF_EXISTS_OR_ADD = 2;
/** google.rpc.Code */
export const GRPC_OK = 0;
export const GRPC_PERMISSION_DENIED = 7;
export const GRPC_UNAUTHENTICATED = 16;

function toBuffer(u: Uint8Array): Buffer {
  return Buffer.isBuffer(u) ? u : Buffer.from(u.buffer, u.byteOffset, u.byteLength);
}

/** Writes `repeated HeaderValueOption` entries under field tag `tag`. */
function writeHeaders(w: WriterT, tag: number, headers: Record<string, string>): void {
  for (const k in headers) {
    const v = headers[k]!;
    w.uint32(tag)
      .fork()
      .uint32(0x0a)
      .fork()
      .uint32(0x0a)
      .string(k)
      .uint32(0x12)
      .string(v)
      .ldelim()
      .uint32(0x18)
      .int32(OVERWRITE_IF_EXISTS_OR_ADD)
      .ldelim();
  }
}

/** CheckResponse { status {code 0}, ok_response {} } — the answer to an allow without mutations. */
export const ALLOW_EMPTY: Buffer = toBuffer(
  Writer.create().uint32(0x0a).fork().ldelim().uint32(0x1a).fork().ldelim().finish(),
);

// Direct two-pass encoder of the allow (the hot path): byte lengths first, then one
// `Buffer.allocUnsafe` (pooled) written in place. Byte-identical to the protobufjs Writer version
// (tests compare both with protobufjs reflection).

interface WritableBuffer extends Buffer {
  utf8Write(s: string, offset: number, length: number): number;
}

/** UTF-8 byte length (JS loop for short ASCII strings, native otherwise). */
function blen(s: string): number {
  const n = s.length;
  if (n > 64) return Buffer.byteLength(s, 'utf8');
  for (let i = 0; i < n; i++) if (s.charCodeAt(i) >= 0x80) return Buffer.byteLength(s, 'utf8');
  return n;
}

function vlen(n: number): number {
  return n < 0x80 ? 1 : n < 0x4000 ? 2 : n < 0x200000 ? 3 : n < 0x10000000 ? 4 : 5;
}

function putVarint(b: Buffer, o: number, n: number): number {
  while (n >= 0x80) {
    b[o++] = (n & 0x7f) | 0x80;
    n >>>= 7;
  }
  b[o++] = n;
  return o;
}

function putStr(b: WritableBuffer, o: number, s: string, len: number): number {
  o = putVarint(b, o, len);
  if (len === s.length && len <= 32) {
    for (let i = 0; i < len; i++) b[o + i] = s.charCodeAt(i);
  } else if (len > 0) b.utf8Write(s, o, len);
  return o + len;
}

// scratch lengths of the strings of the current encoding (pass 1 → pass 2)
let LENS: number[] = new Array<number>(64).fill(0);

function headersSize(headers: Record<string, string>, li: number): [number, number] {
  let size = 0;
  for (const k in headers) {
    const kb = blen(k);
    const vb = blen(headers[k]!);
    if (li + 2 > LENS.length) LENS = LENS.concat(new Array<number>(LENS.length).fill(0));
    LENS[li++] = kb;
    LENS[li++] = vb;
    const hv = 1 + vlen(kb) + kb + 1 + vlen(vb) + vb;
    const hvo = 1 + vlen(hv) + hv + 2;
    size += 1 + vlen(hvo) + hvo;
  }
  return [size, li];
}

function putHeaders(
  b: WritableBuffer,
  o: number,
  tag: number,
  headers: Record<string, string>,
  li: number,
): [number, number] {
  for (const k in headers) {
    const kb = LENS[li++]!;
    const vb = LENS[li++]!;
    const hv = 1 + vlen(kb) + kb + 1 + vlen(vb) + vb;
    const hvo = 1 + vlen(hv) + hv + 2;
    b[o++] = tag;
    o = putVarint(b, o, hvo);
    b[o++] = 0x0a;
    o = putVarint(b, o, hv);
    b[o++] = 0x0a;
    o = putStr(b, o, k, kb);
    b[o++] = 0x12;
    o = putStr(b, o, headers[k]!, vb);
    b[o++] = 0x18;
    b[o++] = OVERWRITE_IF_EXISTS_OR_ADD;
  }
  return [o, li];
}

/**
 * The key of the apikey's client id in the Check's `dynamic_metadata` (Envoy stores it under the
 * filter's namespace, `envoy.filters.http.ext_authz`). Our routes read it back to set
 * `Otoroshi-Client-Id` upstream: a header only ext_authz can produce (the client's own is removed).
 */
export const CLIENT_ID_METADATA_KEY = 'client_id';

interface MetadataSizes {
  id: number;
  value: number;
  entry: number;
  struct: number;
}

/** Sizes of `dynamic_metadata` = Struct { fields { key: client_id, value: Value { string_value } } }. */
function metadataSizes(clientId: string): MetadataSizes {
  const id = blen(clientId);
  const value = 1 + vlen(id) + id;
  const key = CLIENT_ID_METADATA_KEY.length;
  const entry = 1 + vlen(key) + key + 1 + vlen(value) + value;
  return { id, value, entry, struct: 1 + vlen(entry) + entry };
}

function putMetadata(b: WritableBuffer, o: number, clientId: string, m: MetadataSizes): number {
  b[o++] = 0x22; // dynamic_metadata = 4
  o = putVarint(b, o, m.struct);
  b[o++] = 0x0a; // Struct.fields = 1 (map entry)
  o = putVarint(b, o, m.entry);
  b[o++] = 0x0a; // key = 1
  o = putStr(b, o, CLIENT_ID_METADATA_KEY, CLIENT_ID_METADATA_KEY.length);
  b[o++] = 0x12; // value = 2
  o = putVarint(b, o, m.value);
  b[o++] = 0x1a; // Value.string_value = 3
  return putStr(b, o, clientId, m.id);
}

export function encodeAllow(d: Extract<Decision, { allow: true }>): Buffer {
  const up = d.upstreamHeaders;
  const rm = d.removeUpstreamHeaders;
  const resp = d.responseHeaders;
  // pass 1: sizes
  let [okSize, li] = headersSize(up, 0);
  const rmStart = li;
  for (let i = 0; i < rm.length; i++) {
    const n = blen(rm[i]!);
    if (li + 1 > LENS.length) LENS = LENS.concat(new Array<number>(LENS.length).fill(0));
    LENS[li++] = n;
    okSize += 1 + vlen(n) + n;
  }
  const respStart = li;
  const [respSize] = headersSize(resp, li);
  okSize += respSize;
  const meta = d.clientId !== undefined ? metadataSizes(d.clientId) : undefined;
  if (okSize === 0 && meta === undefined) return ALLOW_EMPTY;
  // pass 2: write
  const out = Buffer.allocUnsafe(
    2 + 1 + vlen(okSize) + okSize + (meta !== undefined ? 1 + vlen(meta.struct) + meta.struct : 0),
  ) as WritableBuffer;
  out[0] = 0x0a; // status = 1 {}
  out[1] = 0x00;
  out[2] = 0x1a; // ok_response = 3
  let o = putVarint(out, 3, okSize);
  [o] = putHeaders(out, o, 0x12, up, 0); // headers = 2
  li = rmStart;
  for (let i = 0; i < rm.length; i++) {
    // headers_to_remove = 5
    out[o++] = 0x2a;
    o = putStr(out, o, rm[i]!, LENS[li++]!);
  }
  [o] = putHeaders(out, o, 0x32, resp, respStart); // response_headers_to_add = 6
  if (meta !== undefined && d.clientId !== undefined) o = putMetadata(out, o, d.clientId, meta);
  if (o !== out.length) throw new Error(`encodeAllow: wrote ${o} of ${out.length} bytes`);
  return out;
}

export interface DenyParts {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/** CheckResponse { status {code grpcCode}, denied_response { status {code}, headers, body } }. */
export function encodeDeny(
  p: DenyParts,
  grpcCode: number = p.status === 401 ? GRPC_UNAUTHENTICATED : GRPC_PERMISSION_DENIED,
): Buffer {
  const w = Writer.create();
  w.uint32(0x0a).fork().uint32(0x08).int32(grpcCode).ldelim(); // status = 1
  w.uint32(0x12).fork(); // denied_response = 2
  w.uint32(0x0a).fork().uint32(0x08).int32(p.status).ldelim(); // HttpStatus { code = 1 }
  writeHeaders(w, 0x12, p.headers);
  if (p.body) w.uint32(0x1a).string(p.body);
  w.ldelim();
  return toBuffer(w.finish());
}

// Deny answers without per-request parts (no `responseHeaders`, no `Otoroshi-State`) depend only on
// (status, emptyBody, message, Accept): cached, bounded.
const DENY_CACHE = new Map<string, Buffer>();
const DENY_CACHE_MAX = 1024;
const MAX_CACHED_ACCEPT = 256;

/** Encodes any decision; deny bodies/headers come from the Otoroshi error formatter. */
export function encodeDecision(d: Decision, input: Pick<CheckInput, 'headers'> | undefined): Buffer {
  if (d.allow) return encodeAllow(d);
  const headers = input?.headers;
  const accept = headers?.accept;
  const state = headers?.['otoroshi-state'];
  if (
    d.responseHeaders === undefined &&
    (state === undefined || state === '') &&
    (accept === undefined || accept.length <= MAX_CACHED_ACCEPT)
  ) {
    const key = `${d.status}\u0000${d.emptyBody === true ? 1 : 0}\u0000${accept ?? '\u0001'}\u0000${d.message}`;
    let out = DENY_CACHE.get(key);
    if (out === undefined) {
      out = encodeDeny(errorResponse(d, accept, state));
      if (DENY_CACHE.size >= DENY_CACHE_MAX) DENY_CACHE.clear();
      DENY_CACHE.set(key, out);
    }
    return out;
  }
  return encodeDeny(errorResponse(d, accept, state));
}
