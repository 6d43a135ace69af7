// A minimal DER (ITU-T X.690) encoder and reader: just what X.509 certificates need.
// Small pure functions over Buffers; no ASN.1 schema machinery (that is where generic
// libraries spend their time).

export const TAG = {
  BOOLEAN: 0x01,
  INTEGER: 0x02,
  BIT_STRING: 0x03,
  OCTET_STRING: 0x04,
  NULL: 0x05,
  OID: 0x06,
  UTF8_STRING: 0x0c,
  PRINTABLE_STRING: 0x13,
  IA5_STRING: 0x16,
  UTC_TIME: 0x17,
  GENERALIZED_TIME: 0x18,
  SEQUENCE: 0x30,
  SET: 0x31,
} as const;

/** The DER length octets for a content length. */
export function encodeLength(n: number): Buffer {
  if (!Number.isInteger(n) || n < 0) throw new RangeError(`invalid DER length ${n}`);
  if (n < 0x80) return Buffer.from([n]);
  if (n < 0x100) return Buffer.from([0x81, n]);
  if (n < 0x10000) return Buffer.from([0x82, n >> 8, n & 0xff]);
  if (n < 0x1000000) return Buffer.from([0x83, n >> 16, (n >> 8) & 0xff, n & 0xff]);
  return Buffer.from([0x84, (n >>> 24) & 0xff, (n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff]);
}

/** Header (tag + length) size for a content length. */
function headerSize(n: number): number {
  return n < 0x80 ? 2 : n < 0x100 ? 3 : n < 0x10000 ? 4 : n < 0x1000000 ? 5 : 6;
}

/** Writes tag + length at `off` of `out`; returns the offset after the header. */
function writeHeader(out: Buffer, off: number, tag: number, n: number): number {
  out[off++] = tag;
  if (n < 0x80) out[off++] = n;
  else if (n < 0x100) {
    out[off++] = 0x81;
    out[off++] = n;
  } else if (n < 0x10000) {
    out[off++] = 0x82;
    out[off++] = n >> 8;
    out[off++] = n & 0xff;
  } else if (n < 0x1000000) {
    out[off++] = 0x83;
    out[off++] = n >> 16;
    out[off++] = (n >> 8) & 0xff;
    out[off++] = n & 0xff;
  } else {
    out[off++] = 0x84;
    out[off++] = (n >>> 24) & 0xff;
    out[off++] = (n >> 16) & 0xff;
    out[off++] = (n >> 8) & 0xff;
    out[off++] = n & 0xff;
  }
  return off;
}

/** A TLV from one or several content buffers, in one allocation. */
export function tlv(tag: number, content: Buffer | readonly Buffer[]): Buffer {
  if (Buffer.isBuffer(content)) {
    const out = Buffer.allocUnsafe(headerSize(content.length) + content.length);
    const off = writeHeader(out, 0, tag, content.length);
    content.copy(out, off);
    return out;
  }
  let n = 0;
  for (const c of content) n += c.length;
  const out = Buffer.allocUnsafe(headerSize(n) + n);
  let off = writeHeader(out, 0, tag, n);
  for (const c of content) {
    c.copy(out, off);
    off += c.length;
  }
  return out;
}

export const sequence = (...parts: Buffer[]): Buffer => tlv(TAG.SEQUENCE, parts);

/** SET OF: DER requires the encodings sorted (X.690 §11.6). */
export function set(...parts: Buffer[]): Buffer {
  return tlv(TAG.SET, [...parts].sort(Buffer.compare));
}

export const NULL = Buffer.from([0x05, 0x00]);

export function boolean(v: boolean): Buffer {
  return Buffer.from([TAG.BOOLEAN, 1, v ? 0xff : 0x00]);
}

/** INTEGER from a non-negative number/bigint, or from big-endian unsigned magnitude bytes. */
export function integer(v: number | bigint | Buffer): Buffer {
  let bytes: Buffer;
  if (Buffer.isBuffer(v)) bytes = v;
  else {
    let b = BigInt(v);
    if (b < 0n) throw new RangeError('negative INTEGER not supported');
    const hex = b.toString(16);
    bytes = Buffer.from(hex.length % 2 ? '0' + hex : hex, 'hex');
    b = 0n;
  }
  let start = 0;
  while (start < bytes.length - 1 && bytes[start] === 0) start++;
  let mag = bytes.subarray(start);
  if (mag.length === 0) mag = Buffer.from([0]);
  if ((mag[0] ?? 0) & 0x80) mag = Buffer.concat([Buffer.from([0]), mag]);
  return tlv(TAG.INTEGER, mag);
}

const OID_CACHE = new Map<string, Buffer>();
/** OBJECT IDENTIFIER from dotted form (memoised: the same few OIDs recur in every certificate). */
export function oid(dotted: string): Buffer {
  let b = OID_CACHE.get(dotted);
  if (b === undefined) {
    b = encodeOid(dotted);
    if (OID_CACHE.size < 1024) OID_CACHE.set(dotted, b);
  }
  return b;
}

function encodeOid(dotted: string): Buffer {
  const arcs = dotted.split('.').map((s) => {
    if (!/^\d+$/.test(s)) throw new RangeError(`invalid OID ${dotted}`);
    return BigInt(s);
  });
  const [a, b, ...rest] = arcs;
  if (a === undefined || b === undefined || a > 2n) throw new RangeError(`invalid OID ${dotted}`);
  const out: number[] = [];
  for (const arc of [a * 40n + b, ...rest]) {
    const chunk: number[] = [];
    let x = arc;
    do {
      chunk.unshift(Number(x & 0x7fn));
      x >>= 7n;
    } while (x > 0n);
    for (let i = 0; i < chunk.length - 1; i++) chunk[i] = (chunk[i] ?? 0) | 0x80;
    out.push(...chunk);
  }
  return tlv(TAG.OID, Buffer.from(out));
}

export function bitString(bytes: Buffer, unusedBits = 0): Buffer {
  return tlv(TAG.BIT_STRING, [Buffer.from([unusedBits]), bytes]);
}

/** A named-bit BIT STRING (KeyUsage): bit 0 is the MSB of the first byte; trailing zero bits dropped. */
export function namedBits(bits: readonly number[]): Buffer {
  const max = Math.max(...bits);
  const bytes = Buffer.alloc(Math.floor(max / 8) + 1);
  for (const bit of bits) bytes[bit >> 3] = (bytes[bit >> 3] ?? 0) | (0x80 >> (bit & 7));
  const last = bytes[bytes.length - 1] ?? 0;
  let unused = 0;
  while (unused < 7 && (last & (1 << unused)) === 0) unused++;
  return bitString(bytes, unused);
}

export const octetString = (bytes: Buffer): Buffer => tlv(TAG.OCTET_STRING, bytes);
export const utf8String = (s: string): Buffer => tlv(TAG.UTF8_STRING, Buffer.from(s, 'utf8'));
export const ia5String = (s: string): Buffer => tlv(TAG.IA5_STRING, Buffer.from(s, 'ascii'));

export function printableString(s: string): Buffer {
  if (!isPrintable(s)) throw new RangeError('not a PrintableString');
  return tlv(TAG.PRINTABLE_STRING, Buffer.from(s, 'ascii'));
}

export function isPrintable(s: string): boolean {
  return /^[A-Za-z0-9 '()+,\-./:=?]*$/.test(s);
}

/** Context-specific tag: explicit (constructed, wraps a full TLV) or implicit (primitive content). */
export const explicit = (n: number, content: Buffer | readonly Buffer[]): Buffer => tlv(0xa0 | n, content);
export const implicit = (n: number, content: Buffer): Buffer => tlv(0x80 | n, content);

const p2 = (n: number): string => (n < 10 ? '0' : '') + n;

/** UTCTime `YYMMDDHHMMSSZ` (seconds, Zulu, as RFC 5280 §4.1.2.5.1 requires). */
export function utcTime(ms: number): Buffer {
  const d = new Date(ms);
  const y = d.getUTCFullYear();
  if (y < 1950 || y > 2049) throw new RangeError('UTCTime covers 1950–2049');
  return tlv(TAG.UTC_TIME, Buffer.from(p2(y % 100) + monthToSecondZ(d), 'ascii'));
}

/** `MMDDHHMMSSZ` of a date, in UTC: the part UTCTime and GeneralizedTime share. */
function monthToSecondZ(d: Date): string {
  return (
    p2(d.getUTCMonth() + 1) +
    p2(d.getUTCDate()) +
    p2(d.getUTCHours()) +
    p2(d.getUTCMinutes()) +
    p2(d.getUTCSeconds()) +
    'Z'
  );
}

/** GeneralizedTime `YYYYMMDDHHMMSSZ` (no fractional seconds, RFC 5280 §4.1.2.5.2). */
export function generalizedTime(ms: number): Buffer {
  const d = new Date(ms);
  const y = d.getUTCFullYear();
  if (y < 0 || y > 9999) throw new RangeError('GeneralizedTime covers years 0000–9999');
  return tlv(TAG.GENERALIZED_TIME, Buffer.from(String(y).padStart(4, '0') + monthToSecondZ(d), 'ascii'));
}

/** RFC 5280 `Time`: UTCTime through 2049, GeneralizedTime from 2050. */
export function x509Time(ms: number): Buffer {
  const y = new Date(ms).getUTCFullYear();
  return y >= 1950 && y <= 2049 ? utcTime(ms) : generalizedTime(ms);
}

// ---------------------------------------------------------------- reader

export interface Tlv {
  tag: number;
  /** Offset of the tag byte in the source buffer. */
  start: number;
  /** Offset of the content. */
  contentStart: number;
  /** Offset after the content. */
  end: number;
}

/** Reads the TLV at `off` (definite lengths only, as DER requires). */
export function readTlv(buf: Buffer, off = 0): Tlv {
  const tag = buf[off];
  let lb = buf[off + 1];
  if (tag === undefined || lb === undefined) throw new RangeError('truncated DER');
  if ((tag & 0x1f) === 0x1f) throw new RangeError('high-tag-number form not supported');
  let p = off + 2;
  let len = lb;
  if (lb & 0x80) {
    const k = lb & 0x7f;
    if (k === 0 || k > 4) throw new RangeError('unsupported DER length');
    len = 0;
    for (let i = 0; i < k; i++) {
      lb = buf[p++];
      if (lb === undefined) throw new RangeError('truncated DER');
      len = len * 256 + lb;
    }
  }
  if (p + len > buf.length) throw new RangeError('truncated DER');
  return { tag, start: off, contentStart: p, end: p + len };
}

/** The children of a constructed TLV. */
export function children(buf: Buffer, parent: Tlv): Tlv[] {
  const out: Tlv[] = [];
  let p = parent.contentStart;
  while (p < parent.end) {
    const t = readTlv(buf, p);
    out.push(t);
    p = t.end;
  }
  return out;
}

export const raw = (buf: Buffer, t: Tlv): Buffer => buf.subarray(t.start, t.end);
export const content = (buf: Buffer, t: Tlv): Buffer => buf.subarray(t.contentStart, t.end);

/** Dotted form of an OID's content bytes. */
export function decodeOid(bytes: Buffer): string {
  const arcs: bigint[] = [];
  let x = 0n;
  for (const b of bytes) {
    x = (x << 7n) | BigInt(b & 0x7f);
    if ((b & 0x80) === 0) {
      arcs.push(x);
      x = 0n;
    }
  }
  const [first, ...rest] = arcs;
  if (first === undefined) return '';
  const a = first < 40n ? 0n : first < 80n ? 1n : 2n;
  return [a, first - a * 40n, ...rest].join('.');
}

/** PEM armour with 64-column lines. */
export function toPem(der: Buffer, label: string): string {
  const b64 = der.toString('base64');
  let body = '';
  for (let i = 0; i < b64.length; i += 64) body += b64.slice(i, i + 64) + '\n';
  return `-----BEGIN ${label}-----\n${body}-----END ${label}-----\n`;
}

/** Every PEM block with the given label, decoded. */
export function fromPem(pem: string, label: string): Buffer[] {
  const out: Buffer[] = [];
  const re = new RegExp(`-----BEGIN ${label}-----([^-]*)-----END ${label}-----`, 'g');
  for (const m of pem.matchAll(re)) out.push(Buffer.from((m[1] ?? '').replace(/\s+/g, ''), 'base64'));
  return out;
}
