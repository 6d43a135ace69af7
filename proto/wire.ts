// The one protobuf wire writer of the project: tags, varints and length-delimited fields written
// into a buffer sized first (two passes: the caller adds up field sizes with the *Size functions,
// then writes into a WireWriter of exactly that size, which checks the count on finish).
//
// Hand-written encoders use it where protobufjs' Writer costs too much (the ext_authz Check answer,
// shared xDS response runs, pre-encoded resource lists): the output is byte-identical to what
// protobufjs writes for the same fields in the same order (test/proto-wire.test.ts compares them).
//
// Varints are unsigned 32-bit (what every caller writes: lengths, tags, enums, HTTP and gRPC codes);
// negative or larger numbers are refused rather than silently truncated.

/** Protobuf wire types. */
export const WIRE_VARINT = 0;
export const WIRE_I64 = 1;
export const WIRE_LEN = 2;
export const WIRE_I32 = 5;

/** A field key: field number and wire type (`(field << 3) | wireType`). */
export function tag(field: number, wireType: number): number {
  return ((field << 3) | wireType) >>> 0;
}

/** Bytes taken by `n` (0 ≤ n < 2^32) as a varint. */
export function varintSize(n: number): number {
  if (!(n >= 0 && n <= 0xffffffff)) throw new RangeError(`varint out of range: ${n}`);
  return n < 0x80 ? 1 : n < 0x4000 ? 2 : n < 0x200000 ? 3 : n < 0x10000000 ? 4 : 5;
}

/** UTF-8 byte length of `s` (a JS loop for short ASCII strings, native otherwise). */
export function utf8Length(s: string): number {
  const n = s.length;
  if (n > 64) return Buffer.byteLength(s, 'utf8');
  for (let i = 0; i < n; i++) if (s.charCodeAt(i) >= 0x80) return Buffer.byteLength(s, 'utf8');
  return n;
}

/** Size of a length-delimited field (tag, length, payload) whose payload is `len` bytes. */
export function lenFieldSize(field: number, len: number): number {
  return varintSize(tag(field, WIRE_LEN)) + varintSize(len) + len;
}

/** Size of a string field. */
export function stringFieldSize(field: number, s: string): number {
  return lenFieldSize(field, utf8Length(s));
}

/** Size of a varint field. */
export function varintFieldSize(field: number, n: number): number {
  return varintSize(tag(field, WIRE_VARINT)) + varintSize(n);
}

/** Writes varint `n` at `pos` of `buf`; returns the position after it. */
export function putVarint(buf: Uint8Array, pos: number, n: number): number {
  while (n >= 0x80) {
    buf[pos++] = (n & 0x7f) | 0x80;
    n >>>= 7;
  }
  buf[pos++] = n;
  return pos;
}

/** Writes a length-delimited field (`key` = tag(field, WIRE_LEN)) holding `bytes`; returns the next position. */
export function putBytesField(buf: Uint8Array, pos: number, key: number, bytes: Uint8Array): number {
  pos = putVarint(buf, pos, key);
  pos = putVarint(buf, pos, bytes.length);
  buf.set(bytes, pos);
  return pos + bytes.length;
}

interface Utf8Writable extends Buffer {
  utf8Write(s: string, offset: number, length: number): number;
}

/** Writes `s` (whose UTF-8 length is `len`) at `pos` without a length prefix; returns the next position. */
export function putUtf8(buf: Buffer, pos: number, s: string, len: number): number {
  if (len === s.length && len <= 32) {
    for (let i = 0; i < len; i++) buf[pos + i] = s.charCodeAt(i);
  } else if (len > 0) (buf as Utf8Writable).utf8Write(s, pos, len);
  return pos + len;
}

/** Writes a string field (`key` = tag(field, WIRE_LEN), `len` its UTF-8 length); returns the next position. */
export function putStringField(buf: Buffer, pos: number, key: number, s: string, len: number): number {
  pos = putVarint(buf, pos, key);
  pos = putVarint(buf, pos, len);
  return putUtf8(buf, pos, s, len);
}

/**
 * Writes fields into a buffer of a size computed beforehand. Each method returns the writer;
 * `finish` returns the buffer and throws if fewer or more bytes were written than sized (a sizing
 * bug must not reach a peer as a corrupt message).
 */
export class WireWriter {
  readonly buf: Buffer;
  pos = 0;

  constructor(size: number) {
    this.buf = Buffer.allocUnsafe(size);
  }

  varint(n: number): this {
    this.pos = putVarint(this.buf, this.pos, n);
    return this;
  }

  /** A varint field. */
  uint32(field: number, n: number): this {
    return this.varint(tag(field, WIRE_VARINT)).varint(n);
  }

  /** A string field; `len` is its UTF-8 length when the caller already has it. */
  string(field: number, s: string, len: number = utf8Length(s)): this {
    this.pos = putStringField(this.buf, this.pos, tag(field, WIRE_LEN), s, len);
    return this;
  }

  /** A bytes field (or an encoded sub-message). */
  bytes(field: number, b: Uint8Array): this {
    this.pos = putBytesField(this.buf, this.pos, tag(field, WIRE_LEN), b);
    return this;
  }

  /** The key and length of a sub-message of `len` bytes whose fields are written next. */
  message(field: number, len: number): this {
    return this.varint(tag(field, WIRE_LEN)).varint(len);
  }

  /** Bytes copied as they are (already-encoded fields). */
  raw(b: Uint8Array): this {
    this.buf.set(b, this.pos);
    this.pos += b.length;
    return this;
  }

  finish(): Buffer {
    if (this.pos !== this.buf.length) throw new Error(`wire: wrote ${this.pos} of ${this.buf.length} bytes`);
    return this.buf;
  }
}
