// Generates proto/envoy-descriptor.json: the proto set of proto/loader.ts (PROTO_FILES) as
// protobufjs JSON, plus the parsed custom options (PGV's `(validate.rules)`, which protobufjs's
// own JSON form leaves out), so that a process loads it with one JSON.parse instead of parsing
// ~150 .proto files. Loading the .proto text costs about twice as much at start-up (see
// BENCHMARKS.md "Start-up").
//
// Run: `npm run proto:gen` (writes the file); test/proto-descriptor.test.ts fails when the
// committed file differs from what this generator prints.
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';
import { descriptorPath, protoRootFromSources, type ProtoDescriptor } from './loader.js';

type WithParsed = { fullName: string; parsedOptions?: unknown };

/** `parsedOptions` of every type, field and oneof that has some, by `type:`/`field:`/`oneof:` + full name. */
function parsedOptionsOf(ns: protobuf.NamespaceBase, out: Record<string, unknown[]>): void {
  for (const o of ns.nestedArray) {
    if (o instanceof protobuf.Type) {
      const add = (prefix: string, x: WithParsed): void => {
        const p = x.parsedOptions;
        if (Array.isArray(p) && p.length > 0) out[`${prefix}:${x.fullName.slice(1)}`] = p as unknown[];
      };
      add('type', o);
      for (const f of o.fieldsArray) add('field', f);
      for (const one of o.oneofsArray) add('oneof', one);
    }
    if (o instanceof protobuf.Namespace || o instanceof protobuf.Type) parsedOptionsOf(o, out);
  }
}

/** The descriptor file's text for the protos loaded from source. */
export function generateDescriptor(): string {
  const root = protoRootFromSources();
  const parsedOptions: Record<string, unknown[]> = {};
  parsedOptionsOf(root, parsedOptions);
  const d: ProtoDescriptor = { nested: root.toJSON().nested ?? {}, parsedOptions };
  return `${JSON.stringify(d)}\n`;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  fs.writeFileSync(descriptorPath(), generateDescriptor());
  console.log(`wrote ${descriptorPath()}`);
}
