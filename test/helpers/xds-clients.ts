// Parent-side helpers for real proxyless xDS clients: a @grpc/grpc-js-xds child process
// (xds-client-child.ts) and the gRPC C-core Python client (ccore_client.py).
import { spawn } from 'node:child_process';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { sourceHelper } from './backends.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
/** Compiled child next to this file (dist/test/helpers/xds-client-child.js). */
const CHILD_JS = path.join(HERE, 'xds-client-child.js');
/** Python sources are not copied by tsc: read from the source tree. */
export const CCORE_CLIENT_PY = sourceHelper('ccore_client.py');
/** Debian's python sees Debian's python3-grpcio; a pyenv python first on PATH does not. */
export const SYSTEM_PYTHON = '/usr/bin/python3';

export interface CallResult {
  counts: Record<string, number>;
  errors: Record<string, number>;
  ms: number;
  firstError?: string;
}

export interface CallOptions {
  metadata?: Record<string, string>;
  /** Per-RPC deadline. */
  deadlineMs?: number;
  /** Calls made first and not counted. */
  warmup?: number;
  concurrency?: number;
  /** Call continuously for this long (n is then ignored). */
  durationMs?: number;
}

/** gRPC xDS bootstrap for a node talking to 127.0.0.1:<xdsPort>. */
export function bootstrapJson(xdsPort: number, nodeId: string): string {
  return JSON.stringify({
    xds_servers: [
      { server_uri: `127.0.0.1:${xdsPort}`, channel_creds: [{ type: 'insecure' }], server_features: ['xds_v3'] },
    ],
    // grpc-js-xds requires node.locality (even empty).
    node: { id: nodeId, cluster: 'test', locality: {} },
  });
}

/** Child environment: the inline bootstrap, no inherited bootstrap file; tracing on demand. */
function clientEnv(xdsPort: number, nodeId: string, trace: string | undefined): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, GRPC_XDS_BOOTSTRAP_CONFIG: bootstrapJson(xdsPort, nodeId) };
  delete env.GRPC_XDS_BOOTSTRAP;
  delete env.GRPC_TRACE;
  delete env.GRPC_VERBOSITY;
  if (trace) {
    env.GRPC_TRACE = trace;
    env.GRPC_VERBOSITY = 'DEBUG';
  }
  return env;
}

/** Keeps the last `max` characters of a stream (diagnostics on failure). */
function tail(max: number): { push(s: string): void; text(): string } {
  let buf = '';
  return {
    push(s) {
      buf += s;
      if (buf.length > max) buf = buf.slice(buf.length - max);
    },
    text: () => buf,
  };
}

export interface GrpcJsClient {
  nodeId: string;
  pid: number | undefined;
  /** Runs `n` calls on `target` (channel kept open between calls). */
  calls(target: string, n: number, opts?: CallOptions, timeoutMs?: number): Promise<CallResult>;
  /** Closes every channel in the child. */
  closeChannels(): Promise<void>;
  /** Child's stderr (traces when OXDS_TEST_TRACE / trace option is set). */
  stderr(): string;
  kill(): Promise<void>;
}

/**
 * Starts a @grpc/grpc-js-xds client process with its own bootstrap (node id `nodeId`).
 * Set OXDS_TEST_TRACE=1 (or pass trace) to get GRPC_TRACE=xds_client,xds_resolver in stderr().
 */
export async function spawnGrpcJsClient(
  xdsPort: number,
  nodeId: string,
  opts: { trace?: string; readyTimeoutMs?: number } = {},
): Promise<GrpcJsClient> {
  const trace = opts.trace ?? (process.env.OXDS_TEST_TRACE ? 'xds_client,xds_resolver' : undefined);
  const child = spawn(process.execPath, [CHILD_JS], {
    env: clientEnv(xdsPort, nodeId, trace),
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  const errTail = tail(256 * 1024);
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (d: string) => errTail.push(d));
  let exited = false;
  const exitWaiters: Array<() => void> = [];
  const pending = new Map<number, { resolve(v: Record<string, unknown>): void; reject(e: Error): void }>();
  let readyResolve!: () => void;
  let readyReject!: (e: Error) => void;
  const ready = new Promise<void>((res, rej) => {
    readyResolve = res;
    readyReject = rej;
  });
  child.on('exit', (code, signal) => {
    exited = true;
    const err = new Error(
      `grpc-js client ${nodeId} exited (code ${code}, signal ${signal}); stderr:\n${errTail.text().slice(-4000)}`,
    );
    readyReject(err);
    for (const p of pending.values()) p.reject(err);
    pending.clear();
    for (const w of exitWaiters.splice(0)) w();
  });
  child.on('error', (e) => readyReject(e));
  const rl = readline.createInterface({ input: child.stdout! });
  rl.on('line', (line) => {
    let msg: Record<string, unknown>;
    try {
      msg = JSON.parse(line) as Record<string, unknown>;
    } catch {
      errTail.push(`[stdout] ${line}\n`);
      return;
    }
    if (msg.ready) return readyResolve();
    const id = msg.id as number;
    const p = pending.get(id);
    if (!p) return;
    pending.delete(id);
    if (typeof msg.error === 'string') p.reject(new Error(`child ${nodeId}: ${msg.error}`));
    else p.resolve(msg);
  });

  const kill = async (): Promise<void> => {
    if (exited) return;
    const done = new Promise<void>((r) => exitWaiters.push(r));
    child.kill('SIGKILL');
    await Promise.race([done, new Promise((r) => setTimeout(r, 2000))]);
  };

  const readyTimeout = opts.readyTimeoutMs ?? 15_000;
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      ready,
      new Promise<never>((_, rej) => {
        timer = setTimeout(
          () => rej(new Error(`grpc-js client ${nodeId} not ready after ${readyTimeout} ms`)),
          readyTimeout,
        );
      }),
    ]);
  } catch (e) {
    await kill();
    throw e;
  } finally {
    clearTimeout(timer);
  }

  let nextId = 1;
  const send = (cmd: Record<string, unknown>, timeoutMs: number): Promise<Record<string, unknown>> => {
    if (exited) return Promise.reject(new Error(`grpc-js client ${nodeId} has exited`));
    const id = nextId++;
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => {
        pending.delete(id);
        reject(new Error(`grpc-js client ${nodeId}: command ${JSON.stringify(cmd)} timed out after ${timeoutMs} ms`));
      }, timeoutMs);
      pending.set(id, {
        resolve: (v) => {
          clearTimeout(t);
          resolve(v);
        },
        reject: (e) => {
          clearTimeout(t);
          reject(e);
        },
      });
      child.stdin!.write(`${JSON.stringify({ ...cmd, id })}\n`);
    });
  };

  return {
    nodeId,
    pid: child.pid,
    calls: async (target, n, o = {}, timeoutMs) => {
      const deadlineMs = o.deadlineMs ?? 3000;
      const budget =
        timeoutMs ?? (o.durationMs ?? 0) + deadlineMs * ((o.warmup ?? 0) + (o.durationMs !== undefined ? 4 : n)) + 5000;
      const r = await send(
        {
          target,
          n,
          metadata: o.metadata ?? {},
          deadlineMs,
          warmup: o.warmup ?? 0,
          concurrency: o.concurrency ?? 4,
          ...(o.durationMs !== undefined ? { durationMs: o.durationMs } : {}),
        },
        Math.min(budget, 60_000),
      );
      return r as unknown as CallResult;
    },
    closeChannels: async () => {
      await send({ cmd: 'close' }, 5000);
    },
    stderr: () => errTail.text(),
    kill,
  };
}

export interface CCoreBatch {
  target: string;
  n: number;
  metadata?: Record<string, string>;
  /** Per-RPC timeout in seconds (default 5). */
  timeout?: number;
  /** wait_for_ready calls made first and not counted. */
  warmup?: number;
  /** Call continuously for this many seconds (n is then ignored). */
  duration?: number;
}

export interface CCoreRun {
  results: CallResult[];
  stderr: string;
  ms: number;
}

export interface CCoreOptions {
  /** Kill the process after this long (default 30 s). */
  timeoutMs?: number;
  trace?: string;
  /**
   * Called after the results are printed while the process (and its xDS stream) is still
   * alive, e.g. to inspect the server's node statuses. The process exits when it resolves.
   */
  whileConnected?: (results: CallResult[]) => Promise<void> | void;
  /** Called when batch `index` starts its counted calls (after its warm-up). */
  onBatchStart?: (index: number) => void;
}

/**
 * Runs batches of calls from one gRPC C-core process (one xDS node, channels kept open across
 * batches). Killed after `timeoutMs`. Set OXDS_TEST_TRACE=1 (or trace) for GRPC_TRACE=xds_client.
 */
export function runCCoreBatches(
  xdsPort: number,
  nodeId: string,
  batches: CCoreBatch[],
  opts: CCoreOptions = {},
): Promise<CCoreRun> {
  const trace = opts.trace ?? (process.env.OXDS_TEST_TRACE ? 'xds_client,xds_resolver' : undefined);
  const timeoutMs = opts.timeoutMs ?? 30_000;
  const hold = opts.whileConnected !== undefined;
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn(SYSTEM_PYTHON, [CCORE_CLIENT_PY, JSON.stringify({ batches, hold })], {
      env: clientEnv(xdsPort, nodeId, trace),
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const out = tail(1024 * 1024);
    const err = tail(256 * 1024);
    let results: CallResult[] | undefined;
    let callbackError: unknown;
    let callbackDone: Promise<void> = Promise.resolve();
    child.stdout.setEncoding('utf8');
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (d: string) => err.push(d));
    const rl = readline.createInterface({ input: child.stdout });
    rl.on('line', (line) => {
      out.push(`${line}\n`);
      if (results) return;
      let msg: { results?: CallResult[]; event?: string; batch?: number };
      try {
        msg = JSON.parse(line) as typeof msg;
      } catch {
        return;
      }
      if (msg.event === 'start') {
        opts.onBatchStart?.(msg.batch ?? -1);
        return;
      }
      if (!msg.results) return;
      results = msg.results;
      if (hold) {
        const r = results;
        callbackDone = (async () => {
          try {
            await opts.whileConnected!(r);
          } catch (e) {
            callbackError = e;
          } finally {
            child.stdin.end();
          }
        })();
      }
    });
    if (!hold) child.stdin.end();
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
    }, timeoutMs);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      void callbackDone.then(() => {
        if (callbackError) return reject(callbackError);
        if (!results) {
          return reject(
            new Error(
              `C-core client ${nodeId} failed (code ${code}, signal ${signal}` +
                `${signal === 'SIGKILL' ? `, killed after ${timeoutMs} ms` : ''}` +
                `); stdout: ${out.text().slice(-2000)}; stderr:\n${err.text().slice(-6000)}`,
            ),
          );
        }
        resolve({ results, stderr: err.text(), ms: Math.round(performance.now() - t0) });
      });
    });
  });
}

/** One batch of `n` calls from a fresh C-core process (node id `ccore-<random>`). */
export async function runCCoreCalls(
  xdsPort: number,
  target: string,
  n: number,
  metadata: Record<string, string> = {},
  opts: CCoreOptions & { nodeId?: string; warmup?: number } = {},
): Promise<CallResult & { stderr: string }> {
  const nodeId = opts.nodeId ?? `ccore-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
  const run = await runCCoreBatches(xdsPort, nodeId, [{ target, n, metadata, warmup: opts.warmup ?? 0 }], opts);
  return { ...run.results[0]!, stderr: run.stderr };
}
