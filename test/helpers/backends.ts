// gRPC echo backends for the real-client tests: each answers Who with its own id.
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';

/** echo.proto is not copied by tsc: it is read from the source tree (cwd = repo root). */
export const ECHO_PROTO = path.resolve(process.cwd(), 'test/helpers/echo.proto');

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
