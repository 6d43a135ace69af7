// The compiled plain-object encoder (proto/check/encode.ts) must write the bytes of protobufjs'
// `type.encode(type.fromObject(obj)).finish()`: for every resource of every golden case and of the
// benchmark generator, for each wire form (generated values over a test proto that has every scalar,
// repeated, map, oneof and Any shape), and it must hand back null (protobufjs encodes) where it
// does not prove the bytes.
import { test } from 'vitest';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import protobuf from 'protobufjs';
import { buildModel } from '../src/model/build.js';
import { translate } from '../src/xds/translate.js';
import { TYPE_URLS, type ProtoObject } from '../proto/loader.js';
import { goldenCaseResources, resourcesOf } from './helpers/golden-cases.js';
import { resolveType } from '../proto/json.js';
import { encodePlain } from '../proto/check/encode.js';
import { validateResource } from '../src/xds/validate.js';
import { benchView } from '../bench/gen.js';

function reference(type: protobuf.Type, obj: ProtoObject): string {
  return Buffer.from(type.encode(type.fromObject(obj)).finish()).toString('hex');
}

function assertSame(type: protobuf.Type, obj: ProtoObject, what: string): void {
  const mine = encodePlain(type, obj);
  assert.ok(mine, `${what}: the compiled encoder handles it`);
  assert.equal(mine.toString('hex'), reference(type, obj), what);
}

test('every resource of every golden case encodes to protobufjs bytes', () => {
  const cases = goldenCaseResources();
  assert.ok(cases.length > 10);
  let count = 0;
  for (const { name, resources } of cases) {
    for (const [url, obj] of resources) {
      assertSame(resolveType(url), obj, `${name} ${url}`);
      count++;
    }
  }
  assert.ok(count > 100, `${count} golden resources`);
});

test('every resource of 300 generated descriptors encodes to protobufjs bytes', () => {
  const out = translate(buildModel(benchView(300), {}).model, {});
  const all = resourcesOf(out);
  assert.ok(all.length > 1200);
  for (const [url, obj] of all) assertSame(resolveType(url), obj, url);
});

const PROTO = `
syntax = "proto3";
package enctest;
import "google/protobuf/any.proto";
enum Color { COLOR_UNSPECIFIED = 0; RED = 1; NEG = -1; }
message Scalars {
  int32 i32 = 1; uint32 u32 = 2; sint32 s32 = 3; fixed32 f32 = 4; sfixed32 sf32 = 5;
  int64 i64 = 6; uint64 u64 = 7; sint64 s64 = 8; fixed64 f64 = 9; sfixed64 sf64 = 10;
  float fl = 11; double db = 12; bool b = 13; string s = 14; bytes by = 15; Color e = 16;
  optional string os = 17; optional int32 oi = 18;
  oneof kind { string ks = 19; bytes kb = 20; Scalars km = 21; }
  string far = 100000;
}
message Lists {
  repeated int32 i32 = 1; repeated sint64 s64 = 2; repeated double db = 3; repeated float fl = 4;
  repeated bool b = 5; repeated Color e = 6; repeated string s = 7; repeated bytes by = 8;
  repeated Scalars m = 9; repeated fixed32 f32 = 10; repeated sfixed64 sf64 = 11; repeated uint64 u64 = 12;
  repeated int32 unpacked = 13 [packed = false];
  map<string, string> ms = 14; map<string, Scalars> mm = 15; map<int64, int32> mi = 16;
  map<string, Color> me = 17; map<int32, string> m32 = 18;
  google.protobuf.Any any = 19; repeated google.protobuf.Any anys = 20;
}
`;

function testRoot(): protobuf.Root {
  const root = new protobuf.Root();
  const any = protobuf.common.get('google/protobuf/any.proto') as protobuf.INamespace;
  root.addJSON(any.nested ?? {});
  protobuf.parse(PROTO, root, { keepCase: false });
  root.resolveAll();
  return root;
}

const root = testRoot();
const Scalars = root.lookupType('enctest.Scalars');
const Lists = root.lookupType('enctest.Lists');

const I64 = fc.bigInt({ min: -(1n << 63n), max: (1n << 63n) - 1n });
const U64 = fc.bigInt({ min: 0n, max: (1n << 64n) - 1n });
const longLike = (b: bigint) => {
  const u = BigInt.asUintN(64, b);
  return { low: Number(u & 0xffffffffn) | 0, high: Number(u >> 32n) | 0, unsigned: false };
};
const i64 = fc.oneof(fc.maxSafeInteger(), I64.map(String), I64.map(longLike));
const u64 = fc.oneof(fc.maxSafeNat(), U64.map(String), U64.map(longLike));
const real = fc.oneof(fc.double(), fc.constantFrom('NaN', 'Infinity', '-Infinity', -0, 0));
const bytes = fc.oneof(
  fc.uint8Array({ maxLength: 70 }),
  fc.uint8Array({ maxLength: 70 }).map((b) => Buffer.from(b).toString('base64')),
  fc.uint8Array({ maxLength: 70 }).map((b) => Buffer.from(b).toString('base64').replace(/=+$/, '')),
);
const text = fc.string({ unit: 'grapheme', maxLength: 70 });
// A "__proto__" map key is left to protobufjs (see the fallback test).
const mapKey = text.filter((k) => k !== '__proto__');
const color = fc.constantFrom<string | number>('COLOR_UNSPECIFIED', 'RED', 'NEG', 0, 1, -1, 7, -300);
const i32 = fc.integer({ min: -2147483648, max: 2147483647 });
const u32 = fc.integer({ min: 0, max: 4294967295 });

const scalars: fc.Memo<ProtoObject> = fc.memo((d) =>
  fc
    .record(
      {
        i32,
        u32,
        s32: i32,
        f32: u32,
        sf32: i32,
        i64,
        u64,
        s64: i64,
        f64: u64,
        sf64: i64,
        fl: real,
        db: real,
        b: fc.boolean(),
        s: text,
        by: bytes,
        e: color,
        os: text,
        oi: i32,
        far: text,
        kind: fc.oneof(
          fc.record({ ks: text }),
          fc.record({ kb: bytes }),
          d > 1 ? fc.record({ km: scalars(d - 1) }) : fc.constant({}),
        ),
      },
      { requiredKeys: [] },
    )
    .map(({ kind, ...rest }) => ({ ...rest, ...(kind ?? {}) }) as ProtoObject),
);

const anyOf = (o: fc.Arbitrary<ProtoObject>, url: string) => o.map((x) => ({ '@type': url, ...x }));
const lists: fc.Memo<ProtoObject> = fc.memo((d) =>
  fc.record(
    {
      i32: fc.array(i32),
      s64: fc.array(i64),
      db: fc.array(real),
      fl: fc.array(real),
      b: fc.array(fc.boolean()),
      e: fc.array(color),
      s: fc.array(text),
      by: fc.array(bytes),
      m: fc.array(scalars(2), { maxLength: 3 }),
      f32: fc.array(u32),
      sf64: fc.array(i64),
      u64: fc.array(u64),
      unpacked: fc.array(i32),
      ms: fc.dictionary(mapKey, text),
      mm: fc.dictionary(mapKey, scalars(1), { maxKeys: 3 }),
      mi: fc.dictionary(I64.map(String), i32),
      me: fc.dictionary(mapKey, color),
      any: fc.oneof(
        anyOf(scalars(2), 'type.googleapis.com/enctest.Scalars'),
        anyOf(scalars(1), 'enctest.Scalars'),
        anyOf(scalars(1), '.enctest.Scalars'),
        d > 1
          ? anyOf(lists(d - 1), 'type.googleapis.com/enctest.Lists')
          : anyOf(fc.constant({}), 'type.googleapis.com/enctest.Lists'),
      ),
      anys: fc.array(anyOf(scalars(1), 'x.example/enctest.Scalars'), { maxLength: 3 }),
    },
    { requiredKeys: [] },
  ),
);

test('generated values of every wire form encode to protobufjs bytes', () => {
  fc.assert(
    fc.property(scalars(3), (o) => assertSame(Scalars, o, JSON.stringify(o))),
    { numRuns: 400 },
  );
  fc.assert(
    fc.property(lists(2), (o) => assertSame(Lists, o, 'Lists')),
    { numRuns: 300 },
  );
});

test('fixed cases: 10-byte negative int32 and enum, zigzag, int64 past 2^53, explicit defaults, NaN and -0', () => {
  const cases: Array<[protobuf.Type, ProtoObject, string]> = [
    [Scalars, { i32: -1 }, '08ffffffffffffffffff01'],
    [Scalars, { e: 'NEG' }, '8001ffffffffffffffffff01'],
    [Scalars, { s32: -1, s64: '-2' }, '18014003'],
    [Scalars, { i64: '9007199254740993' }, '308180808080808010'],
    [Scalars, { u64: '18446744073709551615' }, '38ffffffffffffffffff01'],
    // proto3 defaults given explicitly are written (fromObject copies them), absent ones are not.
    [Scalars, { s: '', by: '', e: 'COLOR_UNSPECIFIED', b: false, i32: 0 }, '0800680072007a00800100'],
    [Scalars, {}, ''],
    [Scalars, { db: NaN, fl: -0 }, '5d00000080' + '61000000000000f87f'],
    [Lists, { i32: [], ms: {} }, ''],
    [Lists, { i32: [1, -1], unpacked: [1, 2] }, '0a0b01ffffffffffffffffff01' + '68016802'],
  ];
  for (const [t, o, hex] of cases) {
    assert.equal(encodePlain(t, o)?.toString('hex'), hex, JSON.stringify(o));
    assertSame(t, o, JSON.stringify(o));
  }
});

test('what the encoder does not prove is left to protobufjs (null), and validation still answers', () => {
  const cases: Array<[protobuf.Type, ProtoObject, string]> = [
    [Scalars, { s: 'a\uD800b' }, 'a lone surrogate'],
    [Scalars, { ks: 'x'.repeat(50) + '\uDC00' }, 'a lone surrogate in a long string'],
    [Lists, { m32: { '1': 'x' } }, 'an int32 map key'],
    [Lists, { ms: JSON.parse('{"__proto__": "x"}') as ProtoObject }, 'a __proto__ map key'],
    [Lists, { any: { type_url: 'type.googleapis.com/enctest.Scalars', value: new Uint8Array([8, 1]) } }, 'no @type'],
    [Lists, { any: { '@type': 'type.googleapis.com/google.protobuf.Any' } }, 'Any in Any'],
    [Scalars, { km: Scalars.fromObject({ i32: 1 }) as unknown as ProtoObject }, 'a message instance'],
    [Scalars, { by: 'a' }, 'base64 protobufjs refuses'],
    [Scalars, { e: 'toString' }, 'an enum name inherited from Object.prototype'],
    [Scalars, { i64: 2 ** 60 }, 'an unsafe int64 number'],
  ];
  for (const [t, o, what] of cases) assert.equal(encodePlain(t, o), null, what);
  // Through the validator, a fallback keeps the answer it had: protobufjs' bytes, or its refusal.
  const cluster = { name: 'c', type: 'STATIC', connectTimeout: { seconds: '5' } };
  const r = validateResource(TYPE_URLS.cluster, cluster);
  assert.ok(r.ok);
  assert.equal(Buffer.from(r.bytes).toString('hex'), reference(resolveType(TYPE_URLS.cluster), cluster));
  const bad = validateResource(TYPE_URLS.cluster, { ...cluster, name: 'c\uD800' });
  assert.ok(!bad.ok && bad.issues.some((i) => i.path === 'name'));
});
