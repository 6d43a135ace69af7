// Wire encoding of xDS responses.
//
// A response's `resources` (field 2, repeated) is the bulk of it and the same for every stream
// with the same subscription on the same snapshot: it is encoded once (per resource, then per
// run) and each stream's message is that byte run concatenated with its own small fields
// (version, type_url, nonce, removed names). Protobuf parsers accept fields in any order and
// repeated fields split anywhere, so clients decode exactly the message protobufjs would encode
// (for SotW the bytes are even identical: fields are written in field-number order).
import { TYPE_URLS } from '../../../proto/loader.js';
import type { VersionedResource } from '../types.js';
import { lenFieldSize, stringFieldSize, WireWriter } from '../../../proto/wire.js';

/** Length of google.protobuf.Any{type_url = 1, value = 2} holding resource `r`. */
function anyLength(r: VersionedResource): number {
  return stringFieldSize(1, TYPE_URLS[r.kind]) + lenFieldSize(2, r.bytes.length);
}

/** Per resource: `resources` entry of a DiscoveryResponse (field 2 = Any{type_url, value}). */
const SOTW_ENTRY = new WeakMap<VersionedResource, Buffer>();
export function sotwEntry(r: VersionedResource): Buffer {
  let b = SOTW_ENTRY.get(r);
  if (!b) {
    const any = anyLength(r);
    const w = new WireWriter(lenFieldSize(2, any));
    b = w.message(2, any).string(1, TYPE_URLS[r.kind]).bytes(2, r.bytes).finish();
    SOTW_ENTRY.set(r, b);
  }
  return b;
}

/** Per resource: `resources` entry of a DeltaDiscoveryResponse (field 2 = Resource{name=3, version=1, resource=2}). */
const DELTA_ENTRY = new WeakMap<VersionedResource, Buffer>();
export function deltaEntry(r: VersionedResource): Buffer {
  let b = DELTA_ENTRY.get(r);
  if (!b) {
    const any = anyLength(r);
    const res = stringFieldSize(3, r.name) + stringFieldSize(1, r.version) + lenFieldSize(2, any);
    const w = new WireWriter(lenFieldSize(2, res)).message(2, res).string(3, r.name).string(1, r.version);
    b = w.message(2, any).string(1, TYPE_URLS[r.kind]).bytes(2, r.bytes).finish();
    DELTA_ENTRY.set(r, b);
  }
  return b;
}

export function concatEntries(list: readonly VersionedResource[], entry: (r: VersionedResource) => Buffer): Buffer {
  if (list.length === 1) return entry(list[0] as VersionedResource);
  const parts = new Array<Buffer>(list.length);
  let len = 0;
  for (let i = 0; i < list.length; i++) {
    const b = entry(list[i] as VersionedResource);
    parts[i] = b;
    len += b.length;
  }
  return Buffer.concat(parts, len);
}

/** DiscoveryResponse = version_info(1) + resources(2, shared run) + type_url(4) + nonce(5). */
export function sotwMessage(version: string, run: Buffer, typeUrl: string, nonce: string): Buffer {
  const size = stringFieldSize(1, version) + run.length + stringFieldSize(4, typeUrl) + stringFieldSize(5, nonce);
  return new WireWriter(size).string(1, version).raw(run).string(4, typeUrl).string(5, nonce).finish();
}

/**
 * DeltaDiscoveryResponse = system_version_info(1) + resources(2, shared run) + type_url(4) + nonce(5) +
 * removed_resources(6).
 */
export function deltaMessage(
  version: string,
  run: Buffer | undefined,
  typeUrl: string,
  nonce: string,
  removed: readonly string[],
): Buffer {
  let size = stringFieldSize(1, version) + (run?.length ?? 0) + stringFieldSize(4, typeUrl) + stringFieldSize(5, nonce);
  for (const n of removed) size += stringFieldSize(6, n);
  const w = new WireWriter(size).string(1, version);
  if (run) w.raw(run);
  w.string(4, typeUrl).string(5, nonce);
  for (const n of removed) w.string(6, n);
  return w.finish();
}
