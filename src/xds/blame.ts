// What Envoy rejected (a NACK's error_detail, or `envoy --mode validate` output), traced back to
// the objects that produced it. Generated names carry their owner: routes `<descriptorId>/<n>`,
// clusters `oxds~<descriptorId>~<hash>` (and `~canary`, `~<target>`), TcpService listeners and
// clusters `oxds-tcp~<id>[~part]`. When Envoy's message names none of them, a value it quotes
// (a regex, a header name...) is looked up in the routes and clusters that carry it.
import { originFields } from '../model/ids.js';
import { toProto3Json } from '../../proto/json.js';
import { TYPE_URLS, type ResourceKind } from '../../proto/loader.js';
import type { ConfigError, Model, ObjectOrigin } from '../model/types.js';
import { RESOURCE_SET_KEYS, type ResourceSet } from './types.js';

type Json = Record<string, unknown>;

/** The resource set as proto3 JSON: `{listeners, routes, clusters, endpoints, secrets}`. */
export function setToJson(set: ResourceSet): Record<keyof ResourceSet, unknown[]> {
  const out = { listeners: [], routes: [], clusters: [], endpoints: [], secrets: [] } as Record<
    keyof ResourceSet,
    unknown[]
  >;
  for (const kind of Object.keys(RESOURCE_SET_KEYS) as ResourceKind[]) {
    const key = RESOURCE_SET_KEYS[kind];
    out[key] = set[key].map((o) => toProto3Json(TYPE_URLS[kind], o));
  }
  return out;
}

/** Longest Envoy message we read (a NACK detail can quote a whole resource). */
const MESSAGE_LIMIT = 64 * 1024;
/** More owners than this for one message is not a trace, it is a guess: blame nobody. */
const MAX_OWNERS = 3;

function isObject(v: unknown): v is Json {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** The owner id inside a generated cluster or listener name, if any. */
export function ownerOfName(name: string): string | undefined {
  const m = /^oxds(?:-tcp)?~([^~]+)(?:~|$)/.exec(name);
  return m?.[1];
}

/** Every string value inside `v` (bounded walk). */
function strings(v: unknown, out: Set<string>, depth = 0): Set<string> {
  if (depth > 64) return out;
  if (typeof v === 'string') out.add(v);
  else if (Array.isArray(v)) for (const x of v) strings(x, out, depth + 1);
  else if (isObject(v)) for (const x of Object.values(v)) strings(x, out, depth + 1);
  return out;
}

/** Quoted values in Envoy's message ('...' or "..."), the way Envoy cites what it refuses. */
function quoted(message: string): string[] {
  const out: string[] = [];
  for (const m of message.matchAll(/'([^'\n]{1,4096})'|"([^"\n]{1,4096})"/g)) {
    const v = m[1] ?? m[2];
    if (v !== undefined && v.length > 0) out.push(v);
  }
  return out;
}

interface Part {
  owner: string;
  name: string;
  values: Set<string>;
}

/** Every route (owner = descriptor id of its name) and every generated cluster / listener. */
function parts(set: Record<keyof ResourceSet, unknown[]>): Part[] {
  const out: Part[] = [];
  for (const rc of set.routes.filter(isObject)) {
    for (const vh of Array.isArray(rc.virtualHosts) ? rc.virtualHosts.filter(isObject) : []) {
      for (const r of Array.isArray(vh.routes) ? vh.routes.filter(isObject) : []) {
        const name = typeof r.name === 'string' ? r.name : '';
        const slash = name.lastIndexOf('/');
        if (slash > 0) out.push({ owner: name.slice(0, slash), name, values: strings(r, new Set()) });
      }
    }
  }
  for (const o of [...set.clusters, ...set.listeners].filter(isObject)) {
    const name = typeof o.name === 'string' ? o.name : '';
    const owner = ownerOfName(name);
    if (owner !== undefined) out.push({ owner, name, values: strings(o, new Set()) });
  }
  return out;
}

/**
 * Owner ids (descriptor or TcpService ids) that `message` traces to in `set`: the generated names
 * it contains, else the parts holding a value it quotes. Empty when nothing (or too much) matches.
 */
export function blameOwners(message: string, set: Record<keyof ResourceSet, unknown[]>): string[] {
  const text = message.slice(0, MESSAGE_LIMIT);
  const all = parts(set);
  let owners = new Set(all.filter((p) => text.includes(p.name)).map((p) => p.owner));
  if (owners.size === 0) {
    const q = quoted(text);
    owners = new Set(all.filter((p) => q.some((v) => p.values.has(v))).map((p) => p.owner));
  }
  return owners.size <= MAX_OWNERS ? [...owners].sort() : [];
}

interface Owned {
  kind: string;
  namespace: string;
  name: string;
  origin: ObjectOrigin;
  sourceKey: string;
}

/** The model object behind an owner id (a descriptor, else a TcpService). */
export function ownerObject(model: Model, id: string): Owned | undefined {
  const d = model.descriptors.find((x) => x.id === id);
  if (d) return { kind: d.sourceKind, namespace: d.namespace, name: d.name, origin: d.origin, sourceKey: d.sourceKey };
  const t = (model.tcpServices ?? []).find((x) => x.id === id);
  if (t) return { kind: 'TcpService', namespace: t.namespace, name: t.name, origin: t.origin, sourceKey: t.sourceKey };
  return undefined;
}

/** One OXDS_ENVOY_REJECTED error per object Envoy's message traces to (one without object when none). */
export function envoyRejectionErrors(message: string, set: ResourceSet, model: Model): ConfigError[] {
  const detail = message.slice(0, 2000);
  const objects = blameOwners(message, setToJson(set))
    .map((id) => ownerObject(model, id))
    .filter((o): o is Owned => o !== undefined);
  if (objects.length === 0)
    return [{ code: 'OXDS_ENVOY_REJECTED', severity: 'error', message: `Envoy rejected the configuration: ${detail}` }];
  return objects.map((o) => ({
    code: 'OXDS_ENVOY_REJECTED',
    severity: 'error',
    kind: o.kind,
    namespace: o.namespace,
    name: o.name,
    ...originFields(o.origin),
    message: `Envoy rejected it: ${detail}`,
  }));
}
