// The committed generated types (proto/envoy-types.ts) are exactly what the generator prints from
// the protos we load today, and every message proto/type-urls.ts lists exists in them.
import { test } from 'vitest';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { generateTypes, generatedTypesPath } from '../proto/gen-types.js';
import { MESSAGES, TYPE_URL } from '../proto/type-urls.js';
import { typeOfAnyUrl } from '../proto/json.js';

function firstDifference(a: string, b: string): string {
  const la = a.split('\n');
  const lb = b.split('\n');
  for (let i = 0; i < Math.max(la.length, lb.length); i++)
    if (la[i] !== lb[i]) return `line ${i + 1}: committed ${JSON.stringify(la[i])}, generated ${JSON.stringify(lb[i])}`;
  return '';
}

test('proto/envoy-types.ts has not drifted from `npm run proto:gen`', () => {
  const committed = fs.readFileSync(generatedTypesPath(), 'utf8');
  const generated = generateTypes();
  assert.ok(
    committed === generated,
    `proto/envoy-types.ts is stale (run npm run proto:gen): ${firstDifference(committed, generated)}`,
  );
});

test('every message of proto/type-urls.ts is a loaded type with a generated type', () => {
  const text = generateTypes();
  for (const [alias, full] of Object.entries(MESSAGES)) {
    const t = typeOfAnyUrl(TYPE_URL[alias as keyof typeof MESSAGES]);
    assert.ok(t, `${alias}: ${full} is not in the loaded protos`);
    assert.equal(t.fullName, '.' + full);
    assert.match(text, new RegExp(`^export type ${alias} =\\s+${full.replace(/\./g, '_')};$`, 'm'));
  }
});

test('generated field names are the ones the encoder reads (camelCase, as loaded)', () => {
  const text = generateTypes();
  // protobufjs camelCases `consecutive_5xx` to itself and `accept_http_10` to `acceptHttp_10`.
  assert.match(text, /^ {2}consecutive_5xx\?: google_protobuf_UInt32Value;$/m);
  assert.match(text, /^ {2}acceptHttp_10\?: boolean;$/m);
  assert.match(text, /^ {2}connectTimeout\?: google_protobuf_Duration;$/m);
  assert.match(text, /^ {2}typedConfig\?: Any; \/\/ oneof configType$/m);
});
