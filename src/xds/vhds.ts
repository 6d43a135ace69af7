// The VHDS shape of a snapshot's route configurations, for Delta Envoys: each route configuration
// becomes a shell (`vhds` over ADS, no inline virtual hosts) and each of its virtual hosts a
// `envoy.config.route.v3.VirtualHost` resource named `<route configuration>/<first domain>`, the
// name Envoy's VHDS subscription expects (it subscribes the route configuration's name as a
// namespace and asks `<route configuration>/<Host>` on demand). A route change then reaches an
// Envoy as the one virtual host that changed instead of the whole route table.
//
// The virtual hosts' bytes are spliced from the route configuration's validated encoding (only
// their `name` field is replaced), so nothing is encoded or validated twice; the shells are
// validated (they are new messages).
import type { ProtoObject } from '../../proto/loader.js';
import { TYPE_URL, TYPE_URLS } from '../../proto/type-urls.js';
import {
  lenFieldSize,
  stringFieldSize,
  WireWriter,
  WIRE_I32,
  WIRE_I64,
  WIRE_LEN,
  WIRE_VARINT,
} from '../../proto/wire.js';
import { adsConfigSource } from './resources/common.js';
import { contentHash } from './snapshot.js';
import type { Snapshot, VersionedResource, VhdsResource, VhdsView } from './types.js';
import { validateResource } from './validate.js';

/** RouteConfiguration.virtual_hosts and VirtualHost.name field numbers. */
const RC_VHOSTS = 2;
const VH_NAME = 1;

/** One top-level field of an encoded message: its number and the byte range it spans (key included). */
interface FieldSpan {
  field: number;
  start: number;
  end: number;
  /** For length-delimited fields: where the payload starts. */
  payload: number;
}

function readVarint(b: Uint8Array, pos: number): [number, number] {
  let n = 0;
  let mul = 1;
  for (let i = pos; i < b.length && i < pos + 10; i++) {
    const x = b[i] as number;
    n += (x & 0x7f) * mul;
    if (x < 0x80) return [n, i + 1];
    mul *= 128;
  }
  throw new Error('truncated varint');
}

/** The top-level fields of an encoded message, in order. */
export function fieldSpans(b: Uint8Array): FieldSpan[] {
  const out: FieldSpan[] = [];
  let pos = 0;
  while (pos < b.length) {
    const start = pos;
    const [key, p] = readVarint(b, pos);
    const wire = key & 7;
    let end: number;
    let payload = p;
    if (wire === WIRE_VARINT) end = readVarint(b, p)[1];
    else if (wire === WIRE_I64) end = p + 8;
    else if (wire === WIRE_I32) end = p + 4;
    else if (wire === WIRE_LEN) {
      const [len, q] = readVarint(b, p);
      payload = q;
      end = q + len;
    } else throw new Error(`unsupported wire type ${wire}`);
    if (end > b.length) throw new Error('truncated field');
    out.push({ field: Math.floor(key / 8), start, end, payload });
    pos = end;
  }
  return out;
}

/** A virtual host's bytes under another name (every other field kept as encoded). */
export function renamedVirtualHost(vh: Uint8Array, name: string): Uint8Array {
  const keep = fieldSpans(vh).filter((f) => f.field !== VH_NAME);
  let size = stringFieldSize(VH_NAME, name);
  for (const f of keep) size += f.end - f.start;
  const w = new WireWriter(size).string(VH_NAME, name);
  for (const f of keep) w.raw(vh.subarray(f.start, f.end));
  return w.finish();
}

/** The VHDS resource name of a virtual host of route configuration `rc` whose first domain is `domain`. */
export function vhdsName(rc: string, domain: string): string {
  return `${rc}/${domain}`;
}

interface SplitConfig {
  shell: VersionedResource;
  vhosts: VhdsResource[];
  domains: Map<string, string>;
}

/** Split route configurations, by the (immutable) resource they came from. */
const SPLIT = new WeakMap<VersionedResource, SplitConfig | null>();

/** A virtual host's bytes as encoded in its route configuration, and the resource made of them. */
interface SplitHost {
  src: Uint8Array;
  res: VhdsResource;
}

/**
 * The last split of each route configuration name: name → its virtual hosts by resource name. A
 * rebuild makes a new route configuration resource even when one host changed; its other virtual
 * hosts are the same bytes, so their resources (renamed bytes, hash, encoded entries) are reused
 * after one byte comparison instead of being renamed and hashed again.
 */
const LAST_SPLIT = new Map<string, Map<string, SplitHost>>();

/** The VHDS resource `name` of the virtual host encoded as `src`: the previous split's when the bytes are the same. */
function splitHost(prev: Map<string, SplitHost> | undefined, name: string, src: Uint8Array): SplitHost {
  const old = prev?.get(name);
  if (old && Buffer.compare(old.src, src) === 0) return old;
  const bytes = renamedVirtualHost(src, name);
  return { src, res: { name, version: contentHash(bytes), bytes } };
}

function shellOf(rc: VersionedResource): VersionedResource | undefined {
  const { virtualHosts: _drop, vhds: _old, ...rest } = rc.object as ProtoObject & { virtualHosts?: unknown };
  const obj: ProtoObject = { ...rest, vhds: { configSource: adsConfigSource() } };
  const r = validateResource(TYPE_URLS.route, obj);
  if (!r.ok) return undefined;
  return { name: rc.name, kind: 'route', version: contentHash(r.bytes), bytes: r.bytes, object: obj };
}

/** One route configuration split into its shell and virtual hosts; null when it cannot be (kept whole). */
function split(rc: VersionedResource): SplitConfig | null {
  const hit = SPLIT.get(rc);
  if (hit !== undefined) return hit;
  let out: SplitConfig | null = null;
  const objs = (rc.object['virtualHosts'] ?? []) as ProtoObject[];
  let spans: FieldSpan[] = [];
  try {
    spans = fieldSpans(rc.bytes).filter((f) => f.field === RC_VHOSTS);
  } catch {
    // Not our encoding (cannot happen for validated bytes): the configuration stays whole, over RDS.
  }
  const shell = spans.length === objs.length ? shellOf(rc) : undefined;
  if (shell) {
    const vhosts: VhdsResource[] = [];
    const domains = new Map<string, string>();
    const prev = LAST_SPLIT.get(rc.name);
    const next = new Map<string, SplitHost>();
    objs.forEach((o, i) => {
      const ds = (o['domains'] ?? []) as string[];
      const span = spans[i] as FieldSpan;
      const name = vhdsName(rc.name, ds[0] ?? String(o['name']));
      const h = splitHost(prev, name, rc.bytes.subarray(span.payload, span.end));
      next.set(name, h);
      vhosts.push(h.res);
      for (const d of ds) domains.set(d.toLowerCase(), name);
    });
    LAST_SPLIT.set(rc.name, next);
    vhosts.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    out = { shell, vhosts, domains };
  }
  SPLIT.set(rc, out);
  return out;
}

/** The VHDS view of an Envoy gateway snapshot's route configurations. */
export function vhdsView(snap: Snapshot, eager: boolean): VhdsView {
  const routes = new Map<string, VersionedResource>();
  const vhosts = new Map<string, VhdsResource>();
  const byConfig = new Map<string, readonly VhdsResource[]>();
  const domains = new Map<string, ReadonlyMap<string, string>>();
  for (const rc of snap.resources.route.values()) {
    const s = split(rc);
    if (!s) continue;
    routes.set(rc.name, s.shell);
    byConfig.set(rc.name, s.vhosts);
    domains.set(rc.name, s.domains);
    for (const v of s.vhosts) vhosts.set(v.name, v);
  }
  return { routes, vhosts, byConfig, domains, eager };
}

/** What changed between two VHDS views: virtual host name → its route configuration (changed or added; removed). */
export interface VhdsDiff {
  changed: ReadonlyMap<string, string>;
  removed: ReadonlyMap<string, string>;
}

/**
 * Diffs computed into each view, by the view they start from: the streams of a fleet move between
 * the same few views (the current one, and the one a lagging stream last saw), so each pair's diff
 * is computed once. Held only as long as both views are.
 */
const DIFFS = new WeakMap<VhdsView, WeakMap<VhdsView, VhdsDiff>>();

/**
 * The virtual hosts added, changed or removed from `from` to `to` (any two views: a stream several
 * generations behind gets the diff to the current one), computed once per pair of views for every
 * stream. Unchanged route configurations are the same split arrays (split once per immutable
 * resource), so only the configurations that changed are walked.
 */
export function vhdsDiff(from: VhdsView, to: VhdsView): VhdsDiff {
  let into = DIFFS.get(to);
  if (!into) DIFFS.set(to, (into = new WeakMap()));
  const hit = into.get(from);
  if (hit) return hit;
  const changed = new Map<string, string>();
  const removed = new Map<string, string>();
  for (const [rc, vs] of to.byConfig) {
    const old = from.byConfig.get(rc);
    if (old === vs) continue;
    for (const v of vs) if (from.vhosts.get(v.name)?.version !== v.version) changed.set(v.name, rc);
    for (const v of old ?? []) if (!to.vhosts.has(v.name)) removed.set(v.name, rc);
  }
  for (const [rc, old] of from.byConfig)
    if (!to.byConfig.has(rc)) for (const v of old) if (!to.vhosts.has(v.name)) removed.set(v.name, rc);
  const diff = { changed, removed };
  into.set(from, diff);
  return diff;
}

/**
 * The virtual host an on-demand alias (`<route configuration>/<Host>`) resolves to, as Envoy
 * matches domains: exact, then the longest `*.suffix`, then the longest `prefix.*`. Never the `*`
 * catch-all: once Envoy holds it, every host it does not hold yet matches it and is no longer
 * fetched on demand (the catch-all is sent eagerly, or the unknown host gets Envoy's own 404).
 */
export function resolveAlias(view: VhdsView, alias: string): string | undefined {
  const slash = alias.lastIndexOf('/');
  if (slash <= 0) return undefined;
  const ds = view.domains.get(alias.slice(0, slash));
  if (!ds) return undefined;
  let host = alias.slice(slash + 1).toLowerCase();
  const port = /:\d+$/.exec(host);
  if (port && !host.endsWith(']')) host = host.slice(0, port.index);
  const exact = ds.get(host);
  if (exact) return exact;
  for (let i = host.indexOf('.'); i >= 0; i = host.indexOf('.', i + 1)) {
    const hit = ds.get(`*${host.slice(i)}`);
    if (hit) return hit;
  }
  for (let i = host.lastIndexOf('.'); i > 0; i = host.lastIndexOf('.', i - 1)) {
    const hit = ds.get(`${host.slice(0, i + 1)}*`);
    if (hit) return hit;
  }
  return undefined;
}

/** Size of a Delta `Resource` entry's own fields (name, version, aliases) and its Any. */
/** Entries without aliases are the same bytes for every stream: encoded once per resource. */
const PLAIN_ENTRIES = new WeakMap<VhdsResource, Buffer>();

export function vhdsEntry(
  r: VhdsResource | undefined,
  name: string,
  version: string,
  aliases: readonly string[],
): Buffer {
  if (r === undefined || aliases.length > 0 || name !== r.name || version !== r.version)
    return encodeVhdsEntry(r, name, version, aliases);
  let b = PLAIN_ENTRIES.get(r);
  if (b === undefined) PLAIN_ENTRIES.set(r, (b = encodeVhdsEntry(r, name, version, aliases)));
  return b;
}

function encodeVhdsEntry(
  r: VhdsResource | undefined,
  name: string,
  version: string,
  aliases: readonly string[],
): Buffer {
  const url = TYPE_URL.VirtualHost;
  const any = r ? stringFieldSize(1, url) + lenFieldSize(2, r.bytes.length) : 0;
  let res = stringFieldSize(3, name) + stringFieldSize(1, version) + (r ? lenFieldSize(2, any) : 0);
  for (const a of aliases) res += stringFieldSize(4, a);
  const w = new WireWriter(lenFieldSize(2, res)).message(2, res).string(3, name).string(1, version);
  if (r) w.message(2, any).string(1, url).bytes(2, r.bytes);
  for (const a of aliases) w.string(4, a);
  return w.finish();
}
