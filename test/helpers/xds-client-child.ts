// Child process: a proxyless @grpc/grpc-js-xds client driven by line-delimited JSON on stdin.
// One process per xDS node: grpc-js-xds registers the xds: resolver globally and reads its
// bootstrap (GRPC_XDS_BOOTSTRAP_CONFIG) once per process.
//
// stdin:  {"id":1,"target":"xds:///greeter.oto.tools","n":400,"metadata":{"x-canary":"yes"},"deadlineMs":3000}
//         optional: "concurrency" (default 4), "warmup" (calls made first and not counted),
//         "durationMs" (call continuously for that long instead of n calls)
//         {"id":2,"cmd":"close"} closes every channel; {"cmd":"exit"} exits.
// stdout: {"ready":true,"loadMs":...} once, then one line per command:
//         {"id":1,"counts":{"b0":300,"b1":100},"errors":{"UNAVAILABLE":0},"ms":...,"firstError":"..."}
import readline from 'node:readline';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { ECHO_PROTO } from './backends.js';

interface Command {
  id?: number;
  cmd?: 'call' | 'close' | 'exit';
  target?: string;
  n?: number;
  metadata?: Record<string, string>;
  deadlineMs?: number;
  concurrency?: number;
  warmup?: number;
  durationMs?: number;
}

interface WhoReply {
  backend: string;
}

type EchoClient = grpc.Client & {
  Who(
    req: { name: string },
    md: grpc.Metadata,
    opts: grpc.CallOptions,
    cb: (err: grpc.ServiceError | null, reply?: WhoReply) => void,
  ): grpc.ClientUnaryCall;
};
type EchoCtor = new (target: string, creds: grpc.ChannelCredentials) => EchoClient;

function out(obj: unknown): void {
  process.stdout.write(`${JSON.stringify(obj)}\n`);
}

const t0 = performance.now();
const xds = (await import('@grpc/grpc-js-xds')) as { register?: () => void; default?: { register(): void } };
(xds.register ?? xds.default?.register)?.();
const def = protoLoader.loadSync(ECHO_PROTO, { keepCase: true, defaults: true });
const Echo = (grpc.loadPackageDefinition(def) as unknown as { oxds: { test: { Echo: EchoCtor } } }).oxds.test.Echo;
const clients = new Map<string, EchoClient>();

function clientFor(target: string): EchoClient {
  let c = clients.get(target);
  if (!c) {
    c = new Echo(target, grpc.credentials.createInsecure());
    clients.set(target, c);
  }
  return c;
}

function callOnce(c: EchoClient, metadata: Record<string, string>, deadlineMs: number): Promise<WhoReply> {
  const md = new grpc.Metadata();
  for (const [k, v] of Object.entries(metadata)) md.set(k, v);
  return new Promise((resolve, reject) => {
    c.Who({ name: 'x' }, md, { deadline: Date.now() + deadlineMs }, (err, reply) =>
      err ? reject(err) : resolve(reply as WhoReply),
    );
  });
}

async function run(cmd: Command): Promise<unknown> {
  const target = cmd.target;
  if (!target) throw new Error('missing target');
  const c = clientFor(target);
  const metadata = cmd.metadata ?? {};
  const deadlineMs = cmd.deadlineMs ?? 3000;
  const counts: Record<string, number> = {};
  const errors: Record<string, number> = {};
  let firstError: string | undefined;
  const start = performance.now();
  for (let i = 0; i < (cmd.warmup ?? 0); i++) {
    try {
      await callOnce(c, metadata, deadlineMs);
    } catch {
      /* warm-up only */
    }
  }
  let next = 0;
  const n = cmd.n ?? 1;
  const until = cmd.durationMs !== undefined ? performance.now() + cmd.durationMs : undefined;
  const more = (): boolean => (until !== undefined ? performance.now() < until : next < n);
  const worker = async (): Promise<void> => {
    while (more()) {
      next++;
      try {
        const r = await callOnce(c, metadata, deadlineMs);
        counts[r.backend] = (counts[r.backend] ?? 0) + 1;
      } catch (e) {
        const err = e as grpc.ServiceError;
        const name = grpc.status[err.code] ?? String(err.code);
        errors[name] = (errors[name] ?? 0) + 1;
        firstError ??= `${name}: ${err.details ?? err.message}`;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, cmd.concurrency ?? 4) }, worker));
  return {
    id: cmd.id,
    counts,
    errors,
    ms: Math.round(performance.now() - start),
    ...(firstError ? { firstError } : {}),
  };
}

// Commands run one at a time, in order.
let chain: Promise<void> = Promise.resolve();
const rl = readline.createInterface({ input: process.stdin });
rl.on('line', (line) => {
  if (!line.trim()) return;
  chain = chain.then(async () => {
    let cmd: Command;
    try {
      cmd = JSON.parse(line) as Command;
    } catch (e) {
      out({ error: `bad json: ${String(e)}` });
      return;
    }
    if (cmd.cmd === 'exit') process.exit(0);
    if (cmd.cmd === 'close') {
      for (const c of clients.values()) c.close();
      clients.clear();
      out({ id: cmd.id, closed: true });
      return;
    }
    try {
      out(await run(cmd));
    } catch (e) {
      out({ id: cmd.id, error: String(e) });
    }
  });
});
rl.on('close', () => process.exit(0));
out({ ready: true, loadMs: Math.round(performance.now() - t0) });
