// A raw ext_authz client: real CheckRequests encoded from the Envoy protos, as Envoy sends them.
import * as grpc from '@grpc/grpc-js';
import { lookupType, TO_OBJECT_OPTIONS } from '../../proto/loader.js';

export const CHECK_PATH = '/envoy.service.auth.v3.Authorization/Check';
const CheckRequest = lookupType('envoy.service.auth.v3.CheckRequest');
const CheckResponse = lookupType('envoy.service.auth.v3.CheckResponse');

export interface CheckRequestOptions {
  method?: string;
  path?: string;
  host?: string;
  headers?: Record<string, string>;
  headerMap?: Array<[string, string]>;
  ext?: Record<string, string>;
  ip?: string;
}

export function checkRequest(o: CheckRequestOptions): Buffer {
  const host = o.host ?? 'api.oto.tools';
  const p = o.path ?? '/api/x?a=1&b=2';
  const method = o.method ?? 'GET';
  const http: Record<string, unknown> = { id: '123', method, path: p, host, scheme: 'https', protocol: 'HTTP/1.1' };
  if (o.headerMap) http.headerMap = { headers: o.headerMap.map(([key, value]) => ({ key, value })) };
  else http.headers = { ':authority': host, ':path': p, ':method': method, ...o.headers };
  const msg = CheckRequest.fromObject({
    attributes: {
      source: { address: { socketAddress: { address: o.ip ?? '10.1.2.3', portValue: 55000 } } },
      destination: { address: { socketAddress: { address: '10.0.0.1', portValue: 8080 } } },
      request: { time: { seconds: 1700000000 }, http },
      contextExtensions: o.ext ?? {},
      metadataContext: {},
    },
  });
  return Buffer.from(CheckRequest.encode(msg).finish());
}

/** The decoded CheckResponse (enums as numbers). */
export type CheckResponseObject = Record<string, any>;

const id = (b: Buffer): Buffer => b;
export function callCheck(client: grpc.Client, body: Buffer): Promise<CheckResponseObject> {
  return new Promise((resolve, reject) => {
    client.makeUnaryRequest(CHECK_PATH, id, id, body, { deadline: Date.now() + 5000 }, (err, res) => {
      if (err) reject(err);
      else
        resolve(
          CheckResponse.toObject(CheckResponse.decode(res!), {
            ...TO_OBJECT_OPTIONS,
            enums: Number,
          }) as CheckResponseObject,
        );
    });
  });
}

export function checkClient(port: number): grpc.Client {
  return new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
}

/** `[{header: {key, value}}]` → `{key: value}`. */
export function headersOf(list: Array<{ header: { key: string; value: string } }> | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const h of list ?? []) out[h.header.key] = h.header.value;
  return out;
}

/** The HTTP status a deny carries (0 for an allow) and its Otoroshi message. */
export function outcome(r: CheckResponseObject): {
  status: number;
  message?: string;
  headers: Record<string, string>;
  body?: string;
} {
  if (r.okResponse || (r.status?.code ?? 0) === 0) {
    return {
      status: 0,
      headers: { ...headersOf(r.okResponse?.headers), ...headersOf(r.okResponse?.responseHeadersToAdd) },
    };
  }
  const d = r.deniedResponse ?? {};
  const headers = headersOf(d.headers);
  return { status: d.status?.code ?? 0, message: headers['Otoroshi-Error-Msg'], headers, body: d.body };
}
