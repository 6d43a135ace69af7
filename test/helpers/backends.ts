// gRPC echo backends for the real-client tests: each answers Who with its own id.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';

/**
 * A file of the source tree's test/helpers (tsc copies neither .proto nor .py files): looked up
 * from the cwd (the repo root) first, then from this compiled file (dist/test/helpers).
 */
export function sourceHelper(file: string): string {
  const fromCwd = path.resolve(process.cwd(), 'test/helpers', file);
  if (fs.existsSync(fromCwd)) return fromCwd;
  return path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../test/helpers', file);
}

export const ECHO_PROTO = sourceHelper('echo.proto');

export interface Backend {
  id: string;
  port: number;
  /** Calls answered so far. */
  calls: number;
}

export interface Backends {
  backends: Backend[];
  byId(id: string): Backend;
  stop(): Promise<void>;
}

type EchoService = grpc.ServiceDefinition;

let cachedService: EchoService | undefined;

export function echoServiceDefinition(): EchoService {
  if (!cachedService) {
    const def = protoLoader.loadSync(ECHO_PROTO, { keepCase: true, defaults: true });
    const pkg = grpc.loadPackageDefinition(def) as unknown as {
      oxds: { test: { Echo: { service: EchoService } } };
    };
    cachedService = pkg.oxds.test.Echo.service;
  }
  return cachedService;
}

/** Starts one backend per id on 127.0.0.1:0. */
export async function startBackends(ids: string[]): Promise<Backends> {
  const service = echoServiceDefinition();
  const servers: grpc.Server[] = [];
  const backends: Backend[] = [];
  try {
    for (const id of ids) {
      const server = new grpc.Server();
      const b: Backend = { id, port: 0, calls: 0 };
      server.addService(service, {
        Who: (_call: grpc.ServerUnaryCall<unknown, unknown>, cb: grpc.sendUnaryData<unknown>) => {
          b.calls++;
          cb(null, { backend: id });
        },
      });
      servers.push(server);
      b.port = await new Promise<number>((resolve, reject) =>
        server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, port) =>
          err ? reject(err) : resolve(port),
        ),
      );
      backends.push(b);
    }
  } catch (err) {
    for (const s of servers) s.forceShutdown();
    throw err;
  }
  return {
    backends,
    byId(id) {
      const b = backends.find((x) => x.id === id);
      if (!b) throw new Error(`no backend ${id}`);
      return b;
    },
    stop: async () => {
      await Promise.all(
        servers.map(
          (s) =>
            new Promise<void>((resolve) => {
              const t = setTimeout(() => {
                s.forceShutdown();
                resolve();
              }, 1000);
              s.tryShutdown(() => {
                clearTimeout(t);
                resolve();
              });
            }),
        ),
      );
    },
  };
}
