// Hand-written protobuf codec for the ext_authz hot path: CheckRequest bytes → CheckInput
// (reads only the fields the policy needs, skips the rest without materialising it) and
// Decision → CheckResponse bytes. Field numbers are envoy/service/auth/v3 (external_auth.proto,
// attribute_context.proto) and envoy/config/core/v3 (base.proto, address.proto); the tests
// cross-check every byte against protobufjs's reflection codec of the real protos.
import protobuf from 'protobufjs';
import type { CheckInput, Decision } from './types.js';
import { errorResponse } from './errors.js';

const { Reader, Writer } = protobuf;
type ReaderT = protobuf.Reader;
type WriterT = protobuf.Writer;

export interface CodecLimits {
  /** Max number of request headers (default 200; Envoy's own default is 100). */
  maxHeaders: number;
  /** Max total bytes of header names + values, path included (default 96 KiB; Envoy's default is 60 KiB). */
  maxHeaderBytes: number;
}

export const DEFAULT_LIMITS: CodecLimits = { maxHeaders: 200, maxHeaderBytes: 96 * 1024 };

/** A CheckRequest we refuse to evaluate; `status` is the HTTP status of the deny. */
export class MalformedCheckRequest extends Error {
  constructor(readonly status: 400 | 431, message: string) {
    super(message);
  }
}

// ------------------------------------------------------------------ decode

interface Budget {
  count: number;
  bytes: number;
  limits: CodecLimits;
}

function charge(b: Budget, k: string, v: string): void {
  b.count++;
  b.bytes += k.length + v.length;
  if (b.count > b.limits.maxHeaders) throw new MalformedCheckRequest(431, `more than ${b.limits.maxHeaders} request headers`);
  if (b.bytes > b.limits.maxHeaderBytes) throw new MalformedCheckRequest(431, `request headers larger than ${b.limits.maxHeaderBytes} bytes`);
}

function addHeader(headers: Record<string, string>, rawKey: string, value: string): void {
  const key = rawKey.toLowerCase();
  const prev = headers[key];
  headers[key] = prev === undefined ? value : `${prev}${key === 'cookie' ? '; ' : ','}${value}`;
}

/** map<string,string> entry (key = 1, value = 2). */
function readMapEntry(r: ReaderT): [string, string] {
  const end = r.uint32() + r.pos;
  let k = '';
  let v = '';
  while (r.pos < end) {
    const tag = r.uint32();
    switch (tag >>> 3) {
      case 1: k = r.string(); break;
      case 2: v = r.string(); break;
      default: r.skipType(tag & 7);
    }
  }
  return [k, v];
}

/** config.core.v3.HeaderValue: key 1, value 2, raw_value 3. */
function readHeaderValue(r: ReaderT): [string, string] {
  const end = r.uint32() + r.pos;
  let k = '';
  let v = '';
  let raw: Uint8Array | undefined;
  while (r.pos < end) {
    const tag = r.uint32();
    switch (tag >>> 3) {
      case 1: k = r.string(); break;
      case 2: v = r.string(); break;
      case 3: raw = r.bytes(); break;
      default: r.skipType(tag & 7);
    }
  }
  if (raw !== undefined && raw.length > 0 && v === '') v = Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength).toString('latin1');
  return [k, v];
}

interface HttpFields {
  method: string;
  path: string;
  host: string;
  scheme: string;
  query: string;
  headers: Record<string, string>;
}

/** AttributeContext.HttpRequest. */
function readHttp(r: ReaderT, b: Budget): HttpFields {
  const end = r.uint32() + r.pos;
  const h: HttpFields = { method: '', path: '', host: '', scheme: '', query: '', headers: Object.create(null) as Record<string, string> };
  while (r.pos < end) {
    const tag = r.uint32();
    switch (tag >>> 3) {
      case 2: h.method = r.string(); break;
      case 3: { const [k, v] = readMapEntry(r); charge(b, k, v); addHeader(h.headers, k, v); break; }
      case 4: h.path = r.string(); b.bytes += h.path.length; break;
      case 5: h.host = r.string(); break;
      case 6: h.scheme = r.string(); break;
      case 7: h.query = r.string(); break;
      case 13: { // header_map: HeaderMap { repeated HeaderValue headers = 1 }
        const mapEnd = r.uint32() + r.pos;
        while (r.pos < mapEnd) {
          const t = r.uint32();
          if (t >>> 3 === 1 && (t & 7) === 2) {
            const [k, v] = readHeaderValue(r);
            charge(b, k, v);
            addHeader(h.headers, k, v);
          } else r.skipType(t & 7);
        }
        break;
      }
      default: r.skipType(tag & 7);
    }
  }
  if (b.bytes > b.limits.maxHeaderBytes) throw new MalformedCheckRequest(431, `request headers larger than ${b.limits.maxHeaderBytes} bytes`);
  return h;
}

/** Peer → address(1) → socket_address(1) → address(2). */
function readPeerAddress(r: ReaderT): string | undefined {
  const end = r.uint32() + r.pos;
  let ip: string | undefined;
  while (r.pos < end) {
    const tag = r.uint32();
    if (tag === 0x0a) {
      const aEnd = r.uint32() + r.pos;
      while (r.pos < aEnd) {
        const t = r.uint32();
        if (t === 0x0a) {
          const sEnd = r.uint32() + r.pos;
          while (r.pos < sEnd) {
            const s = r.uint32();
            if (s === 0x12) ip = r.string();
            else r.skipType(s & 7);
          }
        } else r.skipType(t & 7);
      }
    } else r.skipType(tag & 7);
  }
  return ip;
}

/**
 * Decodes a CheckRequest into a CheckInput. Throws MalformedCheckRequest (400) when the bytes
 * are not a CheckRequest or carry no `attributes.request.http`, (431) beyond the size limits.
 */
export function decodeCheckRequest(buf: Uint8Array, limits: CodecLimits = DEFAULT_LIMITS): CheckInput {
  const b: Budget = { count: 0, bytes: 0, limits };
  let http: HttpFields | undefined;
  let sourceIp: string | undefined;
  const ext: Record<string, string> = Object.create(null) as Record<string, string>;
  try {
    const r = Reader.create(buf);
    while (r.pos < r.len) {
      const tag = r.uint32();
      if (tag !== 0x0a) { r.skipType(tag & 7); continue; } // attributes = 1
      const end = r.uint32() + r.pos;
      while (r.pos < end) {
        const t = r.uint32();
        switch (t >>> 3) {
          case 1: if ((t & 7) !== 2) throw new Error('wire type'); sourceIp = readPeerAddress(r); break;
          case 4: { // request: Request { time 1, http 2 }
            if ((t & 7) !== 2) throw new Error('wire type');
            const rEnd = r.uint32() + r.pos;
            while (r.pos < rEnd) {
              const u = r.uint32();
              if (u === 0x12) http = readHttp(r, b);
              else r.skipType(u & 7);
            }
            break;
          }
          case 10: { if ((t & 7) !== 2) throw new Error('wire type'); const [k, v] = readMapEntry(r); ext[k] = v; break; }
          default: r.skipType(t & 7);
        }
      }
      if (r.pos !== end) throw new Error('length mismatch');
    }
    if (r.pos !== r.len) throw new Error('trailing bytes');
  } catch (e) {
    if (e instanceof MalformedCheckRequest) throw e;
    throw new MalformedCheckRequest(400, `undecodable CheckRequest: ${(e as Error).message}`);
  }
  if (!http) throw new MalformedCheckRequest(400, 'CheckRequest without attributes.request.http');
  const hd = http.headers;
  let path = http.path || hd[':path'] || '/';
  let query = http.query;
  const q = path.indexOf('?');
  if (q >= 0) {
    if (!query) query = path.slice(q + 1);
    path = path.slice(0, q);
  }
  const hash = path.indexOf('#');
  if (hash >= 0) path = path.slice(0, hash);
  if (!path.startsWith('/')) path = `/${path}`;
  const input: CheckInput = {
    method: (http.method || hd[':method'] || '').toUpperCase(),
    host: http.host || hd[':authority'] || hd.host || '',
    path,
    query,
    headers: hd,
    contextExtensions: ext,
  };
  const scheme = http.scheme || hd[':scheme'];
  if (scheme) input.scheme = scheme;
  if (sourceIp) input.sourceIp = sourceIp;
  return input;
}

// ------------------------------------------------------------------ encode

const OVERWRITE_IF_EXISTS_OR_ADD = 2;
/** google.rpc.Code */
export const GRPC_OK = 0;
export const GRPC_PERMISSION_DENIED = 7;
export const GRPC_UNAUTHENTICATED = 16;

function toBuffer(u: Uint8Array): Buffer {
  return Buffer.isBuffer(u) ? u : Buffer.from(u.buffer, u.byteOffset, u.byteLength);
}

/** Writes `repeated HeaderValueOption` entries under field tag `tag`. */
function writeHeaders(w: WriterT, tag: number, headers: Record<string, string>): void {
  for (const k in headers) {
    const v = headers[k]!;
    w.uint32(tag).fork()
      .uint32(0x0a).fork().uint32(0x0a).string(k).uint32(0x12).string(v).ldelim()
      .uint32(0x18).int32(OVERWRITE_IF_EXISTS_OR_ADD)
      .ldelim();
  }
}

/** CheckResponse { status {code 0}, ok_response {} } — the answer to an allow without mutations. */
export const ALLOW_EMPTY: Buffer = toBuffer(Writer.create().uint32(0x0a).fork().ldelim().uint32(0x1a).fork().ldelim().finish());

const STATUS_OK_PREFIX = Buffer.from([0x0a, 0x00]);

export function encodeAllow(d: Extract<Decision, { allow: true }>): Buffer {
  let empty = d.removeUpstreamHeaders.length === 0;
  if (empty) for (const _ in d.upstreamHeaders) { empty = false; break; }
  if (empty) for (const _ in d.responseHeaders) { empty = false; break; }
  if (empty) return ALLOW_EMPTY;
  const w = Writer.create();
  w.uint32(0x1a).fork(); // ok_response = 3
  writeHeaders(w, 0x12, d.upstreamHeaders); // headers = 2
  for (const h of d.removeUpstreamHeaders) w.uint32(0x2a).string(h); // headers_to_remove = 5
  writeHeaders(w, 0x32, d.responseHeaders); // response_headers_to_add = 6
  w.ldelim();
  return Buffer.concat([STATUS_OK_PREFIX, toBuffer(w.finish())]);
}

export interface DenyParts {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/** CheckResponse { status {code grpcCode}, denied_response { status {code}, headers, body } }. */
export function encodeDeny(p: DenyParts, grpcCode: number = p.status === 401 ? GRPC_UNAUTHENTICATED : GRPC_PERMISSION_DENIED): Buffer {
  const w = Writer.create();
  w.uint32(0x0a).fork().uint32(0x08).int32(grpcCode).ldelim(); // status = 1
  w.uint32(0x12).fork(); // denied_response = 2
  w.uint32(0x0a).fork().uint32(0x08).int32(p.status).ldelim(); // HttpStatus { code = 1 }
  writeHeaders(w, 0x12, p.headers);
  if (p.body) w.uint32(0x1a).string(p.body);
  w.ldelim();
  return toBuffer(w.finish());
}

/** Encodes any decision; deny bodies/headers come from the Otoroshi error formatter. */
export function encodeDecision(d: Decision, input: Pick<CheckInput, 'headers'> | undefined): Buffer {
  if (d.allow) return encodeAllow(d);
  const headers = input?.headers;
  return encodeDeny(errorResponse(d, headers?.accept, headers?.['otoroshi-state']));
}
