// Loopback HTTP backends for the real-Envoy tests. Each answers with JSON describing the request it
// received (its id, method, path, headers), so a test sees what Envoy forwarded. Behaviours: fail
// every other call, answer slowly, a fixed status, HTTP/2 (h2c), TLS with client certificates.
import http from 'node:http';
import http2 from 'node:http2';
import https from 'node:https';
import type net from 'node:net';
import type tls from 'node:tls';

export interface Seen {
  method: string;
  path: string;
  headers: Record<string, string | string[] | undefined>;
  /** Peer certificate subject alt names (TLS backends). */
  peerSan?: string;
}

export interface BackendBehaviour {
  /** Answer 503 on every other call (1st, 3rd, ...). */
  failEveryOther?: boolean;
  /** Delay before answering, in ms. */
  delayMs?: number;
  status?: number;
  /** Health-check path answering `healthStatus` (default 200). */
  healthPath?: string;
  healthStatus?: number;
  /** Response body (default: the JSON description). */
  body?: string;
  responseHeaders?: Record<string, string>;
}

export interface HttpBackend {
  id: string;
  port: number;
  calls: number;
  /** Requests answered (excluding health checks). */
  seen: Seen[];
  /** Health-check requests received. */
  healthChecks: Seen[];
  behaviour: BackendBehaviour;
  stop(): Promise<void>;
}

type AnyReq = http.IncomingMessage | http2.Http2ServerRequest;
type AnyRes = http.ServerResponse | http2.Http2ServerResponse;

function handler(b: HttpBackend): (req: AnyReq, res: AnyRes) => void {
  return (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const sock = req.socket as net.Socket | tls.TLSSocket;
      const peer = 'getPeerCertificate' in sock ? sock.getPeerCertificate() : undefined;
      const seen: Seen = {
        method: req.method ?? '',
        path: req.url ?? '',
        headers: { ...req.headers },
        ...(peer?.subjectaltname ? { peerSan: peer.subjectaltname } : {}),
      };
      const beh = b.behaviour;
      if (beh.healthPath !== undefined && seen.path === beh.healthPath) {
        b.healthChecks.push(seen);
        res.writeHead(beh.healthStatus ?? 200, { 'content-type': 'text/plain' });
        res.end('ok');
        return;
      }
      b.calls++;
      b.seen.push(seen);
      const status = beh.failEveryOther && b.calls % 2 === 1 ? 503 : (beh.status ?? 200);
      const send = (): void => {
        const body =
          beh.body ?? JSON.stringify({ backend: b.id, ...seen, body: Buffer.concat(chunks).toString('utf8') });
        res.writeHead(status, {
          'content-type': beh.body !== undefined ? 'text/plain' : 'application/json',
          'x-backend': b.id,
          ...(beh.responseHeaders ?? {}),
        });
        res.end(body);
      };
      if (beh.delayMs) {
        // A response the client gave up on (a timeout test) must not keep the process alive.
        const timer = setTimeout(send, beh.delayMs);
        res.once('close', () => clearTimeout(timer));
      } else send();
    });
  };
}

export interface BackendOptions {
  http2?: boolean;
  /** TLS server: key + cert (PEM), and optionally the CA clients must present a certificate from. */
  tls?: { key: string; cert: string; ca?: string; requestCert?: boolean };
}

export async function startHttpBackend(
  id: string,
  behaviour: BackendBehaviour = {},
  opts: BackendOptions = {},
): Promise<HttpBackend> {
  const b: HttpBackend = { id, port: 0, calls: 0, seen: [], healthChecks: [], behaviour, stop: async () => undefined };
  const h = handler(b);
  let server: net.Server;
  if (opts.tls) {
    server = https.createServer(
      {
        key: opts.tls.key,
        cert: opts.tls.cert,
        ...(opts.tls.ca ? { ca: opts.tls.ca } : {}),
        requestCert: opts.tls.requestCert ?? false,
        rejectUnauthorized: opts.tls.requestCert ?? false,
      },
      h,
    );
  } else if (opts.http2) {
    server = http2.createServer(h);
  } else {
    server = http.createServer(h);
  }
  const sockets = new Set<net.Socket>();
  server.on('connection', (s: net.Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  b.port = (server.address() as net.AddressInfo).port;
  b.stop = () =>
    new Promise<void>((resolve) => {
      for (const s of sockets) s.destroy();
      server.close(() => resolve());
    });
  return b;
}

export async function startHttpBackends(
  ids: string[],
  behaviour: BackendBehaviour = {},
  opts: BackendOptions = {},
): Promise<HttpBackend[]> {
  return Promise.all(ids.map((id) => startHttpBackend(id, { ...behaviour }, opts)));
}
