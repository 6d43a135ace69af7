// Child process: the server side of the push benchmark.
//   node push-server.js ads <descriptors>   → the real ADS server (startXdsServer) with a snapshot of N descriptors
//   node push-server.js floor               → a bare grpc-js bidi server (the floor)
// IPC in:  {cmd:'change', what}     (ads) publish a snapshot where one descriptor's path ('route', descriptor 1)
//                                   or one endpoint IP ('endpoint', descriptor 2) changed (changes accumulate)
//          {cmd:'send', bytes:n}     (floor) write an n-byte payload to every open stream
//          {cmd:'stats'}             server-side counters (bytes written per type since the last change)
//          {cmd:'exit'}
// IPC out: {type:'ready', port, ...}, {type:'changed', tSet, ...}, {type:'sent', tSend}, {type:'stats', ...}
import * as grpc from '@grpc/grpc-js';
import fs from 'node:fs';
import inspector from 'node:inspector';
import pino from 'pino';
import { compile, type CompiledSet } from '../src/pipeline.js';
import { buildSnapshot, diffSnapshots, VersionSource } from '../src/xds/snapshot.js';
import { SnapshotCache } from '../src/xds/cache.js';
import { startXdsServer } from '../src/xds/server/server.js';
import { grpcListenerFor } from '../src/xds/translate.js';
import { encodeObject, protoRoot, TYPE_URLS, type ProtoObject, type ResourceKind } from '../proto/loader.js';
import type { Snapshot } from '../src/xds/types.js';
import { benchView, CHANGED_INDEX, EDS_CHANGED_INDEX, sharedNow, type BenchChange } from './gen.js';

const FLOOR_METHOD = '/bench.Floor/Stream';
const role = process.argv[2];
const N = Number(process.argv[3] ?? '1000');

function send(m: unknown): void {
  process.send?.(m);
}

if (role === 'floor') {
  const calls = new Set<grpc.ServerDuplexStream<Buffer, Buffer>>();
  const server = new grpc.Server({ 'grpc.max_receive_message_length': 256 * 1024 * 1024 });
  const def = {
    Stream: {
      path: FLOOR_METHOD,
      requestStream: true,
      responseStream: true,
      requestSerialize: (b: Buffer) => b,
      requestDeserialize: (b: Buffer) => b,
      responseSerialize: (b: Buffer) => b,
      responseDeserialize: (b: Buffer) => b,
    },
  } as unknown as grpc.ServiceDefinition;
  server.addService(def, {
    Stream: (call: grpc.ServerDuplexStream<Buffer, Buffer>) => {
      calls.add(call);
      call.on('data', () => call.write(Buffer.from([1]))); // "synced"
      const drop = (): void => {
        calls.delete(call);
      };
      call.on('end', drop);
      call.on('error', drop);
      call.on('cancelled', drop);
    },
  });
  const port = await new Promise<number>((res, rej) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? rej(e) : res(p))),
  );
  let written = 0;
  process.on('message', (m: { cmd: string; bytes?: number }) => {
    if (m.cmd === 'send') {
      // Same shape of work as the ADS pump: one buffer per stream, written without copying.
      const payload = Buffer.alloc(m.bytes ?? 1, 7);
      const tSend = sharedNow();
      for (const c of calls) {
        c.write(payload);
        written += payload.length;
      }
      send({ type: 'sent', tSend, streams: calls.size, syncMs: sharedNow() - tSend });
    } else if (m.cmd === 'stats') {
      send({ type: 'stats', written, streams: calls.size });
    } else if (m.cmd === 'exit') {
      server.forceShutdown();
      process.exit(0);
    }
  });
  send({ type: 'ready', port });
} else {
  protoRoot();
  const encoderFor =
    (c: CompiledSet) =>
    (kind: ResourceKind, obj: ProtoObject): Uint8Array =>
      c.bytes.get(obj) ?? encodeObject(TYPE_URLS[kind], obj);
  const versions = new VersionSource('bench');
  const build = (
    changed?: BenchChange[],
  ): { envoy: Snapshot; grpc: Snapshot; ms: number; bytes: Record<string, number> } => {
    const t0 = performance.now();
    const c = compile(benchView(N, changed), {}, {});
    if (c.errors.some((e) => e.severity === 'error'))
      throw new Error(`bench config has errors: ${c.errors[0]?.message}`);
    const v = versions.next();
    const envoy = buildSnapshot('envoy', v, c.envoy.set, encoderFor(c.envoy));
    const domains = c.grpcDomains;
    const grpcSnap = buildSnapshot('grpc', v, c.grpc.set, encoderFor(c.grpc), (kind, name) =>
      kind === 'listener' ? grpcListenerFor(name, domains) : undefined,
    );
    const bytes: Record<string, number> = {};
    for (const k of Object.keys(envoy.resources) as ResourceKind[]) {
      let n = 0;
      for (const r of envoy.resources[k].values()) n += r.bytes.length;
      bytes[k] = n;
    }
    return { envoy, grpc: grpcSnap, ms: performance.now() - t0, bytes };
  };
  const cache = new SnapshotCache();
  const first = build();
  cache.set('envoy', first.envoy);
  cache.set('grpc', first.grpc);

  // Server-side counters from the ADS hooks (bytes written, per type).
  let pushBytes: Record<string, number> = {};
  let pushCount: Record<string, number> = {};
  let lastPushAt = 0;
  let acks = 0;
  let nacks = 0;
  let open = 0;
  const logger = pino({ level: process.env['BENCH_LOG_LEVEL'] ?? 'warn' }, pino.destination(2));
  const handle = await startXdsServer('127.0.0.1', 0, {
    cache,
    logger,
    serverOptions: { 'grpc.max_receive_message_length': 16 * 1024 * 1024 },
    hooks: {
      onPush: (typeUrl, bytes) => {
        const k = typeUrl.slice(typeUrl.lastIndexOf('.') + 1);
        pushBytes[k] = (pushBytes[k] ?? 0) + bytes;
        pushCount[k] = (pushCount[k] ?? 0) + 1;
        lastPushAt = sharedNow();
      },
      onAck: () => {
        acks++;
      },
      onNack: () => {
        nacks++;
      },
      onStreamOpen: () => {
        open++;
      },
      onStreamClose: () => {
        open--;
      },
    },
  });
  // BENCH_PROFILE_DIR: CPU profile of the server from cache.set until the stats request.
  const profDir = process.env['BENCH_PROFILE_DIR'];
  const session = profDir ? new inspector.Session() : undefined;
  const post = (method: string): Promise<unknown> =>
    new Promise((res, rej) => session?.post(method, (e: Error | null, r?: unknown) => (e ? rej(e) : res(r))));
  if (session) {
    session.connect();
    await post('Profiler.enable');
  }
  let gen = 0;
  const changes = new Map<number, BenchChange>();
  let current = first;
  /** Names that changed per kind (from the same diff the ADS server computes), for the clients' "affected" check. */
  const diffNames = (a: Snapshot, b: Snapshot): Record<string, { changed: string[]; removed: string[] }> => {
    const d = diffSnapshots(a, b);
    const out: Record<string, { changed: string[]; removed: string[] }> = {};
    for (const [k, v] of Object.entries(d))
      if (v.size > 0) out[k] = { changed: [...v.changed], removed: [...v.removed] };
    return out;
  };
  process.on('message', async (m: { cmd: string; what?: 'route' | 'endpoint' }) => {
    if (m.cmd === 'change') {
      gen++;
      const what = m.what ?? 'route';
      const index = what === 'route' ? CHANGED_INDEX : EDS_CHANGED_INDEX;
      changes.set(index, { index, gen, what });
      const next = build([...changes.values()]);
      const diff = { envoy: diffNames(current.envoy, next.envoy), grpc: diffNames(current.grpc, next.grpc) };
      current = next;
      pushBytes = {};
      pushCount = {};
      if (session) await post('Profiler.start');
      const tSet = sharedNow();
      cache.set('envoy', next.envoy);
      cache.set('grpc', next.grpc);
      const setMs = sharedNow() - tSet;
      send({ type: 'changed', tSet, setMs, buildMs: next.ms, version: next.envoy.version, what, diff });
    } else if (m.cmd === 'stats') {
      if (session && profDir) {
        const r = (await post('Profiler.stop')) as { profile: unknown };
        fs.mkdirSync(profDir, { recursive: true });
        fs.writeFileSync(`${profDir}/push-server-${process.pid}-change${gen}.cpuprofile`, JSON.stringify(r.profile));
      }
      send({
        type: 'stats',
        pushBytes,
        pushCount,
        lastPushAt,
        acks,
        nacks,
        open,
        streams: handle.ads.statuses().length,
        sharedEncoding: (handle.ads as { sharedEncodingStats?: () => unknown }).sharedEncodingStats?.(),
      });
    } else if (m.cmd === 'exit') {
      logger.level = 'error'; // shutdown closes every stream with a warning each
      void handle.stop(500).then(() => process.exit(0));
    }
  });
  send({ type: 'ready', port: handle.port, buildMs: first.ms, envoyBytes: first.bytes, version: first.envoy.version });
}
