// The validator compiles its shape, PGV and round-trip checks once per message type: these tests
// pin what that must not change (cached plans carry no state from one value to the next, recursive
// types, the round trip still refusing what only the encoder loses) and what it fixes (a key named
// like an Object.prototype member is an unknown field, not a crash).
import { test } from 'vitest';
import assert from 'node:assert/strict';
import { TYPE_URLS, type ProtoObject } from '../proto/loader.js';
import { toProto3Json } from '../proto/json.js';
import { validateResource, type ValidationIssue } from '../src/xds/validate.js';

function issuesOf(obj: ProtoObject): ValidationIssue[] {
  const r = validateResource(TYPE_URLS.cluster, obj);
  return r.ok ? [] : r.issues;
}

const cluster = (over: ProtoObject = {}): ProtoObject => ({
  name: 'svc-a',
  type: 'EDS',
  edsClusterConfig: { edsConfig: { ads: {}, resourceApiVersion: 'V3' }, serviceName: 'svc-a' },
  connectTimeout: { seconds: 5 },
  ...over,
});

test('keys named like Object.prototype members are unknown fields, at any depth', () => {
  for (const key of ['constructor', 'toString', 'hasOwnProperty']) {
    assert.deepEqual(issuesOf(cluster({ [key]: 1 })), [
      { path: key, rule: 'shape.unknown_field', message: `unknown field "${key}" of envoy.config.cluster.v3.Cluster` },
    ]);
    assert.deepEqual(issuesOf(cluster({ connectTimeout: { seconds: 5, [key]: 'x' } })), [
      {
        path: `connectTimeout.${key}`,
        rule: 'shape.unknown_field',
        message: `unknown field "${key}" of google.protobuf.Duration`,
      },
    ]);
  }
});

test('a compiled type checks each value on its own: a failure leaves nothing behind for the next value', () => {
  assert.equal(issuesOf(cluster({ lbPolicy: 'NOPE' }))[0]?.rule, 'shape.enum');
  assert.equal(issuesOf(cluster({ connectTimeout: { seconds: 0 } }))[0]?.rule, 'duration.gt');
  assert.deepEqual(issuesOf(cluster({ lbPolicy: 'ROUND_ROBIN' })), []);
  const ok = validateResource(TYPE_URLS.cluster, cluster());
  assert.ok(ok.ok && ok.bytes.length > 0);
});

test('recursive types (Struct in metadata) are checked at every depth', () => {
  const deep = { fields: { y: { listValue: { values: [{ numberValue: 1 }, { stringValue: 5 }] } } } };
  const md = { filterMetadata: { a: { fields: { x: { structValue: deep } } } } };
  assert.deepEqual(issuesOf(cluster({ metadata: md })), [
    {
      path: 'metadata.filterMetadata["a"].fields["x"].structValue.fields["y"].listValue.values[1].stringValue',
      rule: 'shape.string',
      message: 'expected a string, got number',
    },
  ]);
  deep.fields.y.listValue.values[1] = { stringValue: 'five' } as never;
  assert.deepEqual(issuesOf(cluster({ metadata: md })), []);
});

test('the round trip still refuses what the shape check lets through and the encoder loses', () => {
  // A lone surrogate is a string, but not UTF-8: protobufjs writes its 3 bytes, which decode as 3
  // replacement characters. Envoy would get another name.
  const name = '\ud800x';
  assert.deepEqual(issuesOf(cluster({ name })), [
    {
      path: 'name',
      rule: 'roundtrip',
      message: `value ${JSON.stringify(name)} came back as ${JSON.stringify('\ufffd'.repeat(3) + 'x')}`,
    },
  ]);
  // The same defect in a map key.
  const r = validateResource(TYPE_URLS.cluster, cluster({ metadata: { filterMetadata: { [name]: {} } } }));
  assert.equal(r.ok, false);
  assert.equal(!r.ok && r.issues[0]?.rule, 'roundtrip');
});

// The round trip runs only where the shape check flags a value it cannot prove exact: each class
// of defect the round trip caught must still be refused, with the message it gave before.
test('each class of defect only the round trip catches is still refused, with the same message', () => {
  const SI = 'google.api.expr.v1alpha1.SourceInfo';
  const bad = (type: string, obj: ProtoObject): ValidationIssue[] => {
    const r = validateResource(type, obj);
    return r.ok ? [] : r.issues;
  };
  const rt = (path: string, message: string): ValidationIssue[] => [{ path, rule: 'roundtrip', message }];
  // A lone surrogate in a map key (the string field case is above), and inside an Any payload.
  assert.deepEqual(
    issuesOf(cluster({ metadata: { filterMetadata: { 'k\udc00': {} } } })),
    rt('metadata.filterMetadata["k\\udc00"]', 'map entry was lost'),
  );
  const any = { '@type': 'type.googleapis.com/google.protobuf.StringValue', value: '\ud800' };
  assert.deepEqual(
    issuesOf(cluster({ typedExtensionProtocolOptions: { x: any } })),
    rt('typedExtensionProtocolOptions["x"](StringValue).value', `value "\\ud800" came back as "${'\ufffd'.repeat(3)}"`),
  );
  // Integer map keys that do not come back as written (out of range, not canonical, colliding).
  assert.deepEqual(
    bad(SI, { positions: { '99999999999999999999': 5 } }),
    rt('positions["99999999999999999999"]', 'map entry was lost'),
  );
  assert.deepEqual(bad(SI, { positions: { '007': 5 } }), rt('positions["007"]', 'map entry was lost'));
  assert.deepEqual(bad(SI, { positions: { '-0': 5 } }), rt('positions["-0"]', 'map entry was lost'));
  assert.deepEqual(bad(SI, { positions: { '1': 5, '01': 6 } }), rt('positions', 'map had 2 entries, came back with 1'));
  // Base64 text the encoder cannot read.
  assert.deepEqual(bad('google.protobuf.BytesValue', { value: 'a' }), [
    { path: '', rule: 'encode', message: 'cannot encode: invalid encoding' },
  ]);
});

test('values the shape check proves exact encode to the bytes the round trip accepted', () => {
  const md = { filterMetadata: { a: { fields: { x: { numberValue: 1e308 }, y: { stringValue: 'é✓' } } } } };
  const obj = cluster({ lbPolicy: 'LEAST_REQUEST', metadata: md, connectTimeout: { seconds: 2 ** 40, nanos: 5 } });
  const r = validateResource(TYPE_URLS.cluster, obj);
  assert.ok(r.ok);
  assert.deepEqual(toProto3Json(TYPE_URLS.cluster, r.bytes), toProto3Json(TYPE_URLS.cluster, obj));
});

test('PGV defects are listed in the order of the keys of the object, whatever the order of the fields', () => {
  const late = { path: 'dnsRefreshRate', rule: 'duration.gt', message: 'must be greater than 0.001s (got 1e-9s)' };
  const early = { path: 'connectTimeout', rule: 'duration.gt', message: 'must be greater than 0s (got -1s)' };
  const { connectTimeout: _c, ...rest } = cluster();
  assert.deepEqual(issuesOf({ ...rest, dnsRefreshRate: { nanos: 1 }, connectTimeout: { seconds: -1 } }), [late, early]);
  assert.deepEqual(issuesOf({ ...rest, connectTimeout: { seconds: -1 }, dnsRefreshRate: { nanos: 1 } }), [early, late]);
  // A clean value after a failing one of the same type: the fast visit is not left on the slow path.
  assert.deepEqual(issuesOf(cluster()), []);
});
