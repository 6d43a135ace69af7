// A minimal protobuf writer for messages made of length-delimited fields only. It assembles a
// virtual host or a route configuration from the already validated encodings of its parts, so a
// change to one route does not re-encode the whole configuration.

function varintSize(n: number): number {
  let s = 1;
  while (n >= 0x80) {
    n >>>= 7;
    s++;
  }
  return s;
}

function writeField(buf: Uint8Array, pos: number, tag: number, bytes: Uint8Array): number {
  buf[pos++] = tag;
  let n = bytes.length;
  while (n >= 0x80) {
    buf[pos++] = (n & 0x7f) | 0x80;
    n >>>= 7;
  }
  buf[pos++] = n;
  buf.set(bytes, pos);
  return pos + bytes.length;
}

/**
 * A message made of length-delimited fields only, in field-number order (what protobufjs emits):
 * `head` (field 1, a string), then `strings` (field 2), then `parts` (field `partsTag`). Encoded
 * sub-messages are concatenated as they are: a repeated message field is its elements' encodings.
 */
export function encodeDelimited(
  head: string,
  strings: readonly string[],
  partsTag: number,
  parts: readonly Uint8Array[],
): Uint8Array {
  const h = Buffer.from(head, 'utf8');
  const ss = strings.map((x) => Buffer.from(x, 'utf8'));
  let size = 1 + varintSize(h.length) + h.length;
  for (const b of ss) size += 1 + varintSize(b.length) + b.length;
  for (const b of parts) size += 1 + varintSize(b.length) + b.length;
  const buf = Buffer.allocUnsafe(size);
  let pos = writeField(buf, 0, 0x0a, h);
  for (const b of ss) pos = writeField(buf, pos, 0x12, b);
  for (const b of parts) pos = writeField(buf, pos, partsTag, b);
  return buf;
}
