// The committed descriptor (proto/envoy-descriptor.json, what protoRoot() loads) is exactly what the
// generator prints from the .proto sources we pin, and it carries what the sources say: every
// message type with its fields, and the PGV rules the validator reads.
import { test } from 'vitest';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import protobuf from 'protobufjs';
import { generateDescriptor } from '../proto/gen-descriptor.js';
import { descriptorPath, protoRoot, protoRootFromSources } from '../proto/loader.js';
import { MESSAGES } from '../proto/type-urls.js';
import { validateMessage } from '../proto/check/validate.js';

test('proto/envoy-descriptor.json has not drifted from `npm run proto:gen`', () => {
  const committed = fs.readFileSync(descriptorPath(), 'utf8');
  assert.ok(committed === generateDescriptor(), 'proto/envoy-descriptor.json is stale: run npm run proto:gen');
});

/** Every message type under `ns`, by full name. */
function typesOf(ns: protobuf.NamespaceBase, out = new Map<string, protobuf.Type>()): Map<string, protobuf.Type> {
  for (const o of ns.nestedArray) {
    if (o instanceof protobuf.Type) out.set(o.fullName, o);
    if (o instanceof protobuf.Namespace || o instanceof protobuf.Type) typesOf(o, out);
  }
  return out;
}

test('the descriptor root has the types, fields, options and encoding of the .proto sources', () => {
  const fromJson = typesOf(protoRoot());
  const fromSource = typesOf(protoRootFromSources());
  assert.deepEqual([...fromJson.keys()].sort(), [...fromSource.keys()].sort());
  for (const [name, src] of fromSource) {
    const t = fromJson.get(name) as protobuf.Type;
    for (const f of src.fieldsArray) {
      const g = t.fields[f.name];
      assert.ok(g, `${name}.${f.name} missing`);
      assert.equal(g.id, f.id, `${name}.${f.name} id`);
      assert.equal(g.type, f.type, `${name}.${f.name} type`);
      assert.equal(g.repeated, f.repeated, `${name}.${f.name} repeated`);
      assert.equal(g.packed, f.packed, `${name}.${f.name} packed`);
      assert.deepEqual(g.parsedOptions ?? null, f.parsedOptions ?? null, `${name}.${f.name} parsed options`);
    }
  }
  for (const full of Object.values(MESSAGES)) assert.ok(fromJson.has(`.${full}`), full);
});

test('PGV rules loaded from the descriptor are enforced (cluster connect_timeout must be > 0)', () => {
  const r = validateMessage('envoy.config.cluster.v3.Cluster', { name: 'c', connectTimeout: { seconds: 0 } });
  assert.equal(r.ok, false);
  assert.ok(!r.ok && r.issues.some((i) => i.path === 'connectTimeout'), JSON.stringify(r));
});
