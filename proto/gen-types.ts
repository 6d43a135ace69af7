// Generates proto/envoy-types.ts: TypeScript types of the object shape our builders hand to the
// encoder (protobufjs `fromObject` form), for the messages of proto/type-urls.ts and every
// message they reach. Why not proto-loader-gen-types or pbts: both type google.protobuf.Any as
// `{type_url, value}` or an untyped `@type` bag, and pbts types enums as numbers; here Any is the
// union of our packed messages (so a misspelt field inside a typed_config fails `tsc` too) and
// enums are their names. The reflection comes from the very root proto/loader.ts loads.
//
// Run: `npm run proto:gen` (writes the file); test/proto-types.test.ts fails when the committed
// file differs from what this generator prints.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';
import { protoRoot } from './loader.js';
import { MESSAGES } from './type-urls.js';

const ANY = '.google.protobuf.Any';

const SCALARS: Record<string, string> = {
  string: 'string',
  bool: 'boolean',
  bytes: 'Uint8Array | string',
  double: 'number',
  float: 'number',
  int32: 'number',
  uint32: 'number',
  sint32: 'number',
  fixed32: 'number',
  sfixed32: 'number',
  // 64-bit integers: a number below 2^53, or a decimal string.
  int64: 'number | string',
  uint64: 'number | string',
  sint64: 'number | string',
  fixed64: 'number | string',
  sfixed64: 'number | string',
};

/** Packages shortened in names that would be too long for a 120-character line. */
const SHORT_PACKAGES: ReadonlyArray<readonly [string, string]> = [
  ['envoy.extensions.filters.network.http_connection_manager.v3.', 'hcm_v3_'],
  ['envoy.extensions.transport_sockets.tls.v3.', 'tls_v3_'],
  ['envoy.config.core.v3.', 'core_v3_'],
];

/** Longest name kept whole: longer ones get their package shortened (SHORT_PACKAGES). */
const MAX_NAME = 85;

/**
 * The TypeScript name of a message or enum: its full name with `_` for `.`; past MAX_NAME characters, with a short
 * package prefix (so that a field of that type still fits a 120-character line).
 */
export function tsName(t: protobuf.ReflectionObject): string {
  const full = t.fullName.slice(1);
  const name = full.replace(/\./g, '_');
  if (name.length <= MAX_NAME) return name;
  const short = SHORT_PACKAGES.find(([pkg]) => full.startsWith(pkg));
  return short === undefined ? name : short[1] + full.slice(short[0].length).replace(/\./g, '_');
}

/** Every message and enum reachable from the roots (Any payloads excluded: Any is the union of the roots). */
function closure(roots: readonly protobuf.Type[]): Array<protobuf.Type | protobuf.Enum> {
  const seen = new Map<string, protobuf.Type | protobuf.Enum>();
  const stack: Array<protobuf.Type | protobuf.Enum> = [...roots];
  while (stack.length > 0) {
    const t = stack.pop() as protobuf.Type | protobuf.Enum;
    if (seen.has(t.fullName) || t.fullName === ANY) continue;
    seen.set(t.fullName, t);
    if (t instanceof protobuf.Type)
      for (const f of t.fieldsArray) {
        const rt = f.resolve().resolvedType;
        if (rt instanceof protobuf.Type || rt instanceof protobuf.Enum) stack.push(rt);
      }
  }
  return [...seen.values()].sort((a, b) => (a.fullName < b.fullName ? -1 : a.fullName > b.fullName ? 1 : 0));
}

function fieldType(f: protobuf.Field): string {
  const rt = f.resolvedType;
  let t: string;
  if (rt instanceof protobuf.Type) t = rt.fullName === ANY ? 'Any' : tsName(rt);
  else if (rt instanceof protobuf.Enum) t = tsName(rt);
  else {
    const s = SCALARS[f.type];
    if (s === undefined) throw new Error(`${f.fullName}: unknown scalar type ${f.type}`);
    t = s;
  }
  if (f.map) return `{ [key: string]: ${t} }`;
  if (f.repeated) return t.includes(' ') ? `Array<${t}>` : `${t}[]`;
  return t;
}

const IDENT = /^[A-Za-z_$][A-Za-z0-9_$]*$/;

function messageDecl(t: protobuf.Type): string[] {
  const out = [`export type ${tsName(t)} = {`];
  for (const f of t.fieldsArray) {
    const key = IDENT.test(f.name) ? f.name : `'${f.name}'`;
    const oneof = f.partOf && f.partOf.oneof.length > 1 ? ` // oneof ${f.partOf.name}` : '';
    out.push(...fitLine(`  ${key}?: ${fieldType(f)};`, oneof));
  }
  if (out.length === 1) return [`export type ${tsName(t)} = { [key: string]: never };`];
  out.push('};');
  return out;
}

/** A field line with its trailing comment, the comment moved above the field when the line would pass 120. */
function fitLine(field: string, comment: string): string[] {
  if (field.length + comment.length <= 120) return [field + comment];
  return comment === '' ? [field] : [`  //${comment.slice(3)}`, field];
}

function enumDecl(e: protobuf.Enum): string[] {
  const names = Object.keys(e.values).map((n) => `'${n}'`);
  const one = `export type ${tsName(e)} = ${names.join(' | ')};`;
  if (one.length <= 120) return [one];
  return [`export type ${tsName(e)} =`, ...names.map((n, i) => `  | ${n}${i === names.length - 1 ? ';' : ''}`)];
}

/** `export type Alias = Target;`, the target on its own line when the line would pass 120. */
function aliasDecl(alias: string, target: string): string {
  const one = `export type ${alias} = ${target};`;
  return one.length <= 120 ? one : `export type ${alias} =\n  ${target};`;
}

/** The text of proto/envoy-types.ts. */
export function generateTypes(root: protobuf.Root = protoRoot()): string {
  const aliases = Object.entries(MESSAGES) as Array<[string, string]>;
  const roots = aliases.map(([, full]) => root.lookupType(full));
  // An empty message is `{ [key: string]: never }` (no key allowed); packed, only `@type` is.
  const packable = (t: protobuf.Type): string => (t.fieldsArray.length === 0 ? 'Record<never, never>' : tsName(t));
  const lines = [
    '// Generated by `npm run proto:gen` (proto/gen-types.ts): do not edit. The protobufjs fromObject shape',
    '// (camelCase fields, enums by name, 64-bit integers as number or string, Any as `@type` + fields) of',
    '// the messages listed in proto/type-urls.ts and every message they reach.',
    "import type { TypeUrlOf } from './type-urls.js';",
    '',
    '/** The messages of proto/type-urls.ts, by short name. */',
    'export interface Messages {',
    ...aliases.map(([alias], i) => `  ${alias}: ${packable(roots[i] as protobuf.Type)};`),
    '}',
    '',
    '/** A message packed in a google.protobuf.Any: its type URL as `@type`, then its own fields. */',
    "export type Packed<K extends keyof Messages> = { '@type': TypeUrlOf<K> } & Messages[K];",
    '',
    '/** google.protobuf.Any: any message of proto/type-urls.ts, packed. */',
    'export type Any = { [K in keyof Messages]: Packed<K> }[keyof Messages];',
    '',
    ...aliases.map(([alias], i) => aliasDecl(alias, tsName(roots[i] as protobuf.Type))),
    '',
  ];
  for (const t of closure(roots)) lines.push(...(t instanceof protobuf.Type ? messageDecl(t) : enumDecl(t)), '');
  return lines.join('\n');
}

function repoRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  while (!fs.existsSync(path.join(dir, 'package.json'))) {
    const up = path.dirname(dir);
    if (up === dir) throw new Error('package.json not found above ' + fileURLToPath(import.meta.url));
    dir = up;
  }
  return dir;
}

/** Path of the committed generated file. */
export function generatedTypesPath(): string {
  return path.join(repoRoot(), 'proto', 'envoy-types.ts');
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  const file = generatedTypesPath();
  fs.writeFileSync(file, generateTypes());
  process.stdout.write(`wrote ${path.relative(process.cwd(), file)}\n`);
}
