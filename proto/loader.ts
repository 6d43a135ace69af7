// The one module that owns protobuf loading. Envoy/xds/udpa/validate protos come from the
// pinned @grpc/grpc-js-xds package (its deps/ tree); a process loads them from the descriptor generated
// from those files (proto/envoy-descriptor.json, `npm run proto:gen`), which is faster to read.
// Loaded with camelCase field names (protobufjs `keepCase: false`): the generated types
// (proto/envoy-types.ts) and every builder use those names.
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';
import { TYPE_URL_PREFIX } from './type-urls.js';

const require = createRequire(import.meta.url);

/** Directory of the pinned package that ships the Envoy API protos. */
export function protoDepsDir(): string {
  const pkg = require.resolve('@grpc/grpc-js-xds/package.json');
  return path.join(path.dirname(pkg), 'deps');
}

const INCLUDE_DIRS = ['envoy-api', 'xds', 'googleapis', 'protoc-gen-validate'];

/** The proto files we load (and only those: a few shipped files import protos that are absent). */
export const PROTO_FILES: readonly string[] = [
  'envoy/service/discovery/v3/ads.proto',
  'envoy/service/discovery/v3/discovery.proto',
  'envoy/service/secret/v3/sds.proto',
  'envoy/service/auth/v3/external_auth.proto',
  'envoy/config/listener/v3/listener.proto',
  'envoy/config/route/v3/route.proto',
  'envoy/config/cluster/v3/cluster.proto',
  'envoy/config/endpoint/v3/endpoint.proto',
  'envoy/extensions/transport_sockets/tls/v3/secret.proto',
  'envoy/extensions/transport_sockets/tls/v3/tls.proto',
  'envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.proto',
  'envoy/extensions/filters/network/tcp_proxy/v3/tcp_proxy.proto',
  'envoy/extensions/filters/listener/tls_inspector/v3/tls_inspector.proto',
  'envoy/extensions/filters/listener/original_dst/v3/original_dst.proto',
  'envoy/extensions/filters/listener/http_inspector/v3/http_inspector.proto',
  'envoy/extensions/filters/http/router/v3/router.proto',
  'envoy/extensions/filters/http/on_demand/v3/on_demand.proto',
  'envoy/extensions/filters/http/ext_authz/v3/ext_authz.proto',
  'envoy/extensions/filters/http/rbac/v3/rbac.proto',
  'envoy/extensions/filters/http/cors/v3/cors.proto',
  'envoy/extensions/filters/http/jwt_authn/v3/config.proto',
  'envoy/extensions/filters/http/compressor/v3/compressor.proto',
  'envoy/extensions/compression/gzip/compressor/v3/gzip.proto',
  'envoy/extensions/upstreams/http/v3/http_protocol_options.proto',
  'envoy/service/accesslog/v3/als.proto',
  'envoy/extensions/access_loggers/grpc/v3/als.proto',
  // GlobalConfig throttling, and the Envoy bootstraps of manifests/envoy (checked in tests).
  'envoy/extensions/filters/http/local_ratelimit/v3/local_rate_limit.proto',
  'envoy/config/bootstrap/v3/bootstrap.proto',
  'envoy/extensions/resource_monitors/downstream_connections/v3/downstream_connections.proto',
  'envoy/extensions/access_loggers/filters/cel/v3/cel.proto',
];

export { TYPE_URL_PREFIX, TYPE_URLS, SEND_ORDER, kindOfTypeUrl, type ResourceKind } from './type-urls.js';

let cached: protobuf.Root | undefined;

/** The generated descriptor of PROTO_FILES (proto/gen-descriptor.ts): protobufjs JSON + parsed options. */
export interface ProtoDescriptor {
  nested: Record<string, protobuf.AnyNestedObject>;
  /** `type:` / `field:` / `oneof:` + full name → protobufjs `parsedOptions` (custom options such as PGV rules). */
  parsedOptions: Record<string, unknown[]>;
}

/** proto/envoy-descriptor.json, from this module in proto/ (tsx) or in dist/proto/. */
export function descriptorPath(): string {
  const here = path.dirname(fileURLToPath(import.meta.url));
  const up = path.basename(path.dirname(here)) === 'dist' ? path.join(here, '..', '..') : path.join(here, '..');
  return path.join(up, 'proto', 'envoy-descriptor.json');
}

/** Loads (once per process, synchronously) every proto we use, from the generated descriptor. */
export function protoRoot(): protobuf.Root {
  if (cached) return cached;
  const d = JSON.parse(fs.readFileSync(descriptorPath(), 'utf8')) as ProtoDescriptor;
  const root = new protobuf.Root();
  root.addJSON(d.nested);
  setParsedOptions(root, d.parsedOptions);
  resolveFeatures(root);
  cached = root;
  return root;
}

function setParsedOptions(root: protobuf.Root, all: ProtoDescriptor['parsedOptions']): void {
  for (const [key, parsed] of Object.entries(all)) {
    const i = key.indexOf(':');
    const what = key.slice(0, i);
    const full = key.slice(i + 1);
    const dot = full.lastIndexOf('.');
    const obj =
      what === 'type'
        ? root.lookupType(full)
        : what === 'field'
          ? root.lookupType(full.slice(0, dot)).fields[full.slice(dot + 1)]
          : root.lookupType(full.slice(0, dot)).oneofs[full.slice(dot + 1)];
    if (!obj) throw new Error(`proto/envoy-descriptor.json: no ${key} (run npm run proto:gen)`);
    (obj as unknown as { parsedOptions: unknown[] }).parsedOptions = parsed;
  }
}

/** Parses PROTO_FILES from the .proto sources (the generator of the descriptor, and its drift test). */
export function protoRootFromSources(): protobuf.Root {
  const deps = protoDepsDir();
  const dirs = INCLUDE_DIRS.map((d) => path.join(deps, d));
  const descriptorProto = path.join(
    path.dirname(require.resolve('protobufjs/package.json')),
    'google/protobuf/descriptor.proto',
  );
  const root = new protobuf.Root();
  root.resolvePath = (_origin: string, target: string): string => {
    if (target === 'google/protobuf/descriptor.proto') return descriptorProto;
    if (path.isAbsolute(target)) return target;
    for (const d of dirs) {
      const p = path.join(d, target);
      if (fs.existsSync(p)) return p;
    }
    return target; // google/protobuf/* well-known types are bundled with protobufjs (common)
  };
  root.loadSync(PROTO_FILES as string[], { keepCase: false });
  return root;
}

/**
 * Editions features (packed encoding, field presence) of every object, which encoding needs.
 * The type references are not resolved here: `Root.resolveAll` would also generate a constructor
 * for each of the ~2,000 loaded types, about 100 ms of every start-up, while a process uses a few
 * hundred. protobufjs resolves the fields of a type when it first encodes or converts one; our own
 * walks over fields go through `resolvedTypeOf`.
 */
function resolveFeatures(root: protobuf.Root): void {
  const r = root as unknown as { _edition?: string; _resolveFeaturesRecursive?: (edition?: string) => void };
  if (typeof r._resolveFeaturesRecursive !== 'function') {
    root.resolveAll(); // another protobufjs: resolve everything, as before
    return;
  }
  r._resolveFeaturesRecursive(r._edition);
}

const fieldTypes = new WeakMap<protobuf.Field, protobuf.Type | protobuf.Enum | null>();
/**
 * The message or enum type a field refers to (null for a scalar), looked up on first use as
 * `Field.resolve` would. Not `resolve()` itself: it also generates the constructor of the field's
 * message type, code our walks never run (a fifth of what a small `translate` spends on protobufjs).
 */
export function resolvedTypeOf(f: protobuf.Field): protobuf.Type | protobuf.Enum | null {
  if (f.resolved) return f.resolvedType;
  let t = fieldTypes.get(f);
  if (t === undefined) {
    const scope = f.declaringField ? f.declaringField.parent : f.parent;
    t = BASIC_TYPES[f.type] === true || !scope ? null : scope.lookupTypeOrEnum(f.type);
    fieldTypes.set(f, t);
  }
  return t;
}

/** protobuf's scalar type names (protobufjs `types.defaults`): a field of any other type names a message or enum. */
const BASIC_TYPES: Record<string, true> = Object.fromEntries(
  Object.keys(protobuf.types.defaults).map((k) => [k, true]),
);

export function lookupType(fullName: string): protobuf.Type {
  return protoRoot().lookupType(
    fullName.startsWith(TYPE_URL_PREFIX) ? fullName.slice(TYPE_URL_PREFIX.length) : fullName,
  );
}

export function typeOfUrl(typeUrl: string): protobuf.Type {
  return lookupType(typeUrl);
}

/**
 * Plain object in protobufjs "fromObject" form: camelCase field names, enums as strings, Any as `{'@type': url, ...}`.
 */
export type ProtoObject = { [key: string]: unknown };

/** Encodes a plain object of the given type to bytes. */
export function encodeObject(typeName: string, obj: ProtoObject): Uint8Array {
  const t = lookupType(typeName);
  return t.encode(t.fromObject(obj)).finish();
}

/** Decodes bytes of the given type into a plain object (enums as strings, longs as strings, Any as @type). */
export function decodeToObject(typeName: string, bytes: Uint8Array): ProtoObject {
  const t = lookupType(typeName);
  return t.toObject(t.decode(bytes), TO_OBJECT_OPTIONS) as ProtoObject;
}

export const TO_OBJECT_OPTIONS: protobuf.IConversionOptions = {
  enums: String,
  longs: String,
  bytes: String,
  defaults: false,
  json: true,
};
