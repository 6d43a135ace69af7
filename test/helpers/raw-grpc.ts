// A minimal gRPC-over-HTTP/2 stream client on node:http2 (no grpc-js): length-prefixed messages
// in and out. Used where grpc-js gets in the way: a client that truly never reads (grpc-js keeps
// reading into its own buffer when paused) and thousands of cheap ADS streams in benchmarks.
import http2 from 'node:http2';

export const ADS_SOTW_PATH = '/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources';
export const ADS_DELTA_PATH = '/envoy.service.discovery.v3.AggregatedDiscoveryService/DeltaAggregatedResources';

export function grpcFrame(msg: Uint8Array): Buffer {
  const b = Buffer.allocUnsafe(5 + msg.length);
  b[0] = 0;
  b.writeUInt32BE(msg.length, 1);
  b.set(msg, 5);
  return b;
}

export interface RawStream {
  session: http2.ClientHttp2Session;
  stream: http2.ClientHttp2Stream;
  write(msg: Uint8Array): void;
  close(): void;
  /** Resolves with grpc-status when the stream ends. */
  ended: Promise<string | undefined>;
}

/**
 * Opens one bidi stream on `session` (or a new session to `port`). `onMessage` gets each complete
 * response message; without it the stream is never read (no data listener, paused): HTTP/2 flow
 * control then stops the server after one window.
 */
export function openRawStream(
  target: { port: number } | { session: http2.ClientHttp2Session },
  path: string,
  onMessage?: (msg: Buffer) => void,
): RawStream {
  const session = 'session' in target ? target.session : http2.connect(`http://127.0.0.1:${target.port}`);
  if (!('session' in target)) session.on('error', () => undefined);
  const stream = session.request({
    ':method': 'POST',
    ':path': path,
    'content-type': 'application/grpc',
    te: 'trailers',
  });
  stream.on('error', () => undefined);
  let status: string | undefined;
  const ended = new Promise<string | undefined>((resolve) => {
    stream.on('trailers', (t) => {
      status = String(t['grpc-status'] ?? '');
      // The call is over: like a gRPC client, finish our half too (else the server waits for it).
      stream.close(http2.constants.NGHTTP2_NO_ERROR);
    });
    stream.on('response', (h) => {
      if (h['grpc-status'] !== undefined) {
        // Trailers-only answer: the call is over.
        status = String(h['grpc-status']);
        stream.close(http2.constants.NGHTTP2_NO_ERROR);
      }
    });
    stream.on('close', () => resolve(status));
  });
  if (onMessage) {
    let buf: Buffer = Buffer.alloc(0);
    stream.on('data', (chunk: Buffer) => {
      buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
      while (buf.length >= 5) {
        const len = buf.readUInt32BE(1);
        if (buf.length < 5 + len) break;
        const msg = buf.subarray(5, 5 + len);
        buf = buf.subarray(5 + len);
        onMessage(msg);
      }
    });
  } else {
    stream.pause();
  }
  return {
    session,
    stream,
    write: (msg) => {
      stream.write(grpcFrame(msg));
    },
    close: () => {
      stream.close(http2.constants.NGHTTP2_CANCEL);
      if (!('session' in target)) session.close();
    },
    ended,
  };
}
