// The request path as Envoy routes on it (normalize_path + merge_slashes +
// path_with_escaped_slashes_action REJECT_REQUEST in our generated HCMs), so that ext_authz decides
// on the same path for callers whose Envoy we did not configure: percent-encoded unreserved
// characters decoded, other escapes upper-cased, runs of `/` merged, `.` and `..` segments removed
// (RFC 3986 5.2.4). Encoded slashes (`%2F`, `%5C`), a backslash, control characters, and broken
// escapes cannot be normalised the same way by every proxy: undefined (deny).

const HEX = '0123456789ABCDEF';

function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  const u = c & ~0x20;
  if (u >= 0x41 && u <= 0x46) return u - 0x41 + 10;
  return -1;
}

/** RFC 3986 unreserved: ALPHA / DIGIT / "-" / "." / "_" / "~". */
function isUnreserved(b: number): boolean {
  return (
    (b >= 0x41 && b <= 0x5a) ||
    (b >= 0x61 && b <= 0x7a) ||
    (b >= 0x30 && b <= 0x39) ||
    b === 0x2d ||
    b === 0x2e ||
    b === 0x5f ||
    b === 0x7e
  );
}

/**
 * Decodes unreserved escapes, upper-cases the others; undefined for a broken escape, an encoded slash or a forbidden
 * character.
 */
function decodeUnreserved(path: string): string | undefined {
  let out = '';
  for (let i = 0; i < path.length; i++) {
    const c = path.charCodeAt(i);
    if (c <= 0x20 || c === 0x7f || c === 0x5c) return undefined;
    if (c !== 0x25) {
      out += path[i];
      continue;
    }
    const h = hexValue(path.charCodeAt(i + 1));
    const l = hexValue(path.charCodeAt(i + 2));
    if (h < 0 || l < 0) return undefined;
    const b = h * 16 + l;
    if (b === 0x2f || b === 0x5c) return undefined;
    out += isUnreserved(b) ? String.fromCharCode(b) : `%${HEX[h]}${HEX[l]}`;
    i += 2;
  }
  return out;
}

/** Merged slashes, then RFC 3986 remove_dot_segments on an absolute path. */
function removeDotSegments(path: string): string {
  const parts = path.split('/');
  const out: string[] = [];
  for (let i = 1; i < parts.length; i++) {
    const s = parts[i] as string;
    const last = i === parts.length - 1;
    if (s === '' && !last) continue; // merged slash
    if (s === '.') {
      if (last) out.push('');
      continue;
    }
    if (s === '..') {
      out.pop();
      if (last) out.push('');
      continue;
    }
    out.push(s);
  }
  return `/${out.join('/')}`;
}

const NEEDS_WORK = /%|\/\/|\/\.|[\\\u0000-\u0020\u007f]/;

/** The normalised path (query already removed), or undefined when it must be denied. */
export function normalizeRequestPath(path: string): string | undefined {
  const p = path.startsWith('/') ? path : `/${path}`;
  if (!NEEDS_WORK.test(p)) return p;
  const decoded = decodeUnreserved(p);
  return decoded === undefined ? undefined : removeDotSegments(decoded);
}
