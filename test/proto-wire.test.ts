import { test } from 'vitest';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import protobuf from 'protobufjs';
import {
  WireWriter,
  lenFieldSize,
  putVarint,
  stringFieldSize,
  tag,
  utf8Length,
  varintFieldSize,
  varintSize,
  WIRE_LEN,
} from '../proto/wire.js';

type Field =
  | { field: number; kind: 'uint32'; n: number }
  | { field: number; kind: 'string'; s: string }
  | { field: number; kind: 'bytes'; b: Uint8Array }
  | { field: number; kind: 'message'; fields: Field[] };

const fieldNo = fc.integer({ min: 1, max: 536_870_911 });
const field: fc.Memo<Field> = fc.memo((depth) =>
  fc.oneof(
    { depthSize: 'small' },
    fc.record({ field: fieldNo, kind: fc.constant('uint32' as const), n: fc.nat({ max: 0xffffffff }) }),
    fc.record({ field: fieldNo, kind: fc.constant('string' as const), s: fc.string({ unit: 'binary' }) }),
    fc.record({ field: fieldNo, kind: fc.constant('bytes' as const), b: fc.uint8Array({ maxLength: 300 }) }),
    depth > 1
      ? fc.record({ field: fieldNo, kind: fc.constant('message' as const), fields: fc.array(field(depth - 1)) })
      : fc.record({ field: fieldNo, kind: fc.constant('uint32' as const), n: fc.nat() }),
  ),
);

function reference(w: protobuf.Writer, fields: readonly Field[]): protobuf.Writer {
  for (const f of fields) {
    if (f.kind === 'uint32') w.uint32(tag(f.field, 0)).uint32(f.n);
    else if (f.kind === 'string') w.uint32(tag(f.field, 2)).string(f.s);
    else if (f.kind === 'bytes') w.uint32(tag(f.field, 2)).bytes(f.b);
    else reference(w.uint32(tag(f.field, 2)).fork(), f.fields).ldelim();
  }
  return w;
}

function bodySize(fields: readonly Field[]): number {
  let size = 0;
  for (const f of fields) {
    if (f.kind === 'uint32') size += varintFieldSize(f.field, f.n);
    else if (f.kind === 'string') size += stringFieldSize(f.field, f.s);
    else if (f.kind === 'bytes') size += lenFieldSize(f.field, f.b.length);
    else size += lenFieldSize(f.field, bodySize(f.fields));
  }
  return size;
}

function write(w: WireWriter, fields: readonly Field[]): WireWriter {
  for (const f of fields) {
    if (f.kind === 'uint32') w.uint32(f.field, f.n);
    else if (f.kind === 'string') w.string(f.field, f.s);
    else if (f.kind === 'bytes') w.bytes(f.field, f.b);
    else write(w.message(f.field, bodySize(f.fields)), f.fields);
  }
  return w;
}

test('wire: any message is byte-identical to what protobufjs writes for the same fields', () => {
  fc.assert(
    fc.property(fc.array(field(3), { maxLength: 12 }), (fields) => {
      const expected = Buffer.from(reference(protobuf.Writer.create(), fields).finish());
      const got = write(new WireWriter(bodySize(fields)), fields).finish();
      assert.deepEqual(got, expected);
    }),
    { numRuns: 400 },
  );
});

test('wire: varint sizes and bytes at every length boundary', () => {
  const cases: [number, number[]][] = [
    [0, [0]],
    [127, [0x7f]],
    [128, [0x80, 0x01]],
    [16_383, [0xff, 0x7f]],
    [16_384, [0x80, 0x80, 0x01]],
    [2_097_151, [0xff, 0xff, 0x7f]],
    [2_097_152, [0x80, 0x80, 0x80, 0x01]],
    [268_435_455, [0xff, 0xff, 0xff, 0x7f]],
    [268_435_456, [0x80, 0x80, 0x80, 0x80, 0x01]],
    [0xffffffff, [0xff, 0xff, 0xff, 0xff, 0x0f]],
  ];
  for (const [n, bytes] of cases) {
    assert.equal(varintSize(n), bytes.length, `size of ${n}`);
    const buf = new Uint8Array(8);
    assert.equal(putVarint(buf, 1, n), 1 + bytes.length);
    assert.deepEqual([...buf.subarray(1, 1 + bytes.length)], bytes, `bytes of ${n}`);
  }
});

test('wire: numbers a uint32 varint cannot hold are refused, not truncated', () => {
  for (const n of [-1, 2 ** 32, Number.NaN, Infinity]) assert.throws(() => varintSize(n), RangeError);
  assert.throws(() => varintFieldSize(1, -5), /varint out of range: -5/);
});

test('wire: UTF-8 lengths of ASCII, multi-byte and long strings', () => {
  for (const s of ['', 'abc', 'é', '€uro', '😀', 'x'.repeat(65), 'é'.repeat(40), '\u0000']) {
    assert.equal(utf8Length(s), Buffer.byteLength(s, 'utf8'), JSON.stringify(s));
  }
});

test('wire: finish refuses a buffer written short or long (a sizing bug never reaches a peer)', () => {
  assert.throws(() => new WireWriter(10).string(1, 'abc').finish(), /wrote 5 of 10 bytes/);
  assert.throws(() => new WireWriter(3).string(1, 'abcd').finish(), /wrote 6 of 3 bytes|out of range/);
  assert.deepEqual(
    new WireWriter(lenFieldSize(2, 3)).bytes(2, Buffer.from('xyz')).finish(),
    Buffer.from([0x12, 3, 120, 121, 122]),
  );
  assert.equal(tag(2, WIRE_LEN), 0x12);
});

test('wire: raw runs and sub-message headers compose into one message', () => {
  const inner = new WireWriter(stringFieldSize(1, 'a')).string(1, 'a').finish();
  const size = 2 * lenFieldSize(3, inner.length);
  const got = new WireWriter(size)
    .message(3, inner.length)
    .raw(inner)
    .raw(Buffer.from([0x1a, 3, 0x0a, 1, 0x61]))
    .finish();
  assert.deepEqual(got, Buffer.from([0x1a, 3, 0x0a, 1, 0x61, 0x1a, 3, 0x0a, 1, 0x61]));
});
