// clientConfig retries and timeouts observed on real RPCs: grpc-js-xds (child process) and gRPC
// C-core (python3-grpcio) clients call a flaky
// gRPC backend on 127.0.0.1 that fails every other attempt with UNAVAILABLE. With
// `clientConfig.retries: 2` (2 attempts, DECISIONS 9) every call succeeds; with retries 1 (the
// default) about half of them fail — the control case that proves the test can fail.
import { test, type TestContext } from 'vitest';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { resolveConfig } from '../src/config.js';
import { startServer, type RunningServer } from '../src/main.js';
import { echoServiceDefinition } from './helpers/backends.js';
import { runCCoreBatches, spawnGrpcJsClient, type CallResult, type GrpcJsClient } from './helpers/xds-clients.js';
import { descriptorYaml } from './fixtures/index.js';

const HOST = 'flaky.oto.tools';

interface Flaky {
  port: number;
  attempts: number;
  stop(): void;
}

/** An Echo backend failing odd-numbered attempts with UNAVAILABLE, or answering after `delayMs`. */
async function startFlaky(delayMs = 0): Promise<Flaky> {
  const server = new grpc.Server();
  const f: Flaky = { port: 0, attempts: 0, stop: () => server.forceShutdown() };
  server.addService(echoServiceDefinition(), {
    Who: (_call: grpc.ServerUnaryCall<unknown, unknown>, cb: grpc.sendUnaryData<unknown>) => {
      f.attempts++;
      if (delayMs > 0) setTimeout(() => cb(null, { backend: 'slow' }), delayMs);
      else if (f.attempts % 2 === 1) cb({ code: grpc.status.UNAVAILABLE, details: 'flaky' } as grpc.ServiceError, null);
      else cb(null, { backend: 'flaky' });
    },
  });
  f.port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, port) =>
      err ? reject(err) : resolve(port),
    ),
  );
  return f;
}

function descriptor(port: number, retries: number, globalTimeout = 30000): string {
  const clientConfig =
    `clientConfig: {retries: ${retries}, retryInitialDelay: 10, backoffFactor: 2, ` +
    `globalTimeout: ${globalTimeout}}`;
  const targets = [`http://127.0.0.1:${port}`];
  return descriptorYaml({
    name: 'flaky',
    namespace: 'default',
    hosts: [HOST],
    forceHttps: false,
    targets,
    spec: clientConfig,
  });
}

async function run(
  t: TestContext,
  retries: number,
  nodeId: string,
  o: { delayMs?: number; globalTimeout?: number; calls?: number; ccore?: boolean } = {},
): Promise<{ ok: number; failed: number; attempts: number; errors: Record<string, number> }> {
  const flaky = await startFlaky(o.delayMs);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'oxds-resilience-'));
  let server: RunningServer | undefined;
  let client: GrpcJsClient | undefined;
  t.onTestFinished(async () => {
    await client?.kill();
    await server?.stop().catch(() => undefined);
    flaky.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  fs.writeFileSync(path.join(dir, 'flaky.yaml'), descriptor(flaky.port, retries, o.globalTimeout));
  const cfg = resolveConfig(
    { config: dir, xdsPort: 0, adminPort: 0, authzPort: 0, logLevel: 'warn', debounceMs: 20, debounceMaxMs: 200 },
    {},
  );
  if (!cfg.ok) throw new Error(cfg.errors.join('; '));
  server = await startServer(cfg.value);
  const before = flaky.attempts;
  let r: CallResult;
  if (o.ccore) {
    const run = await runCCoreBatches(
      server.xdsPort,
      nodeId,
      [{ target: `xds:///${HOST}`, n: o.calls ?? 100, timeout: 3 }],
      { timeoutMs: 25_000 },
    );
    r = run.results[0] ?? { counts: {}, errors: { NO_RESULT: 1 }, ms: 0 };
  } else {
    client = await spawnGrpcJsClient(server.xdsPort, nodeId);
    r = await client.calls(`xds:///${HOST}`, o.calls ?? 100, { deadlineMs: 3000, concurrency: 1 });
  }
  const ok = Object.values(r.counts).reduce((a, b) => a + b, 0);
  const failed = Object.values(r.errors).reduce((a, b) => a + b, 0);
  console.log(
    `retries=${retries}: ${ok} ok, ${failed} failed, ${flaky.attempts - before}` +
      ` backend attempts (${JSON.stringify(r.errors)})`,
  );
  return { ok, failed, attempts: flaky.attempts - before, errors: r.errors };
}

test(
  'grpc-js-xds: clientConfig.retries 2 retries UNAVAILABLE — every call succeeds on the second attempt',
  { timeout: 30_000 },
  async (t) => {
    const r = await run(t, 2, 'grpcjs-retries-on');
    assert.equal(r.failed, 0);
    assert.equal(r.ok, 100);
    assert.equal(r.attempts, 200, 'each call: one failed attempt, one retried success');
  },
);

test(
  "grpc-js-xds: clientConfig.retries 1 (no retry) — the flaky backend's failures reach the client",
  { timeout: 30_000 },
  async (t) => {
    const r = await run(t, 1, 'grpcjs-retries-off');
    assert.ok(r.failed >= 40, `expected ~50 failures without retries, got ${r.failed}`);
    assert.equal(r.attempts, 100);
  },
);

test(
  'grpc-js-xds: clientConfig.globalTimeout bounds the call (max_stream_duration): a slow backend gives ' +
    'DEADLINE_EXCEEDED',
  { timeout: 30_000 },
  async (t) => {
    const r = await run(t, 1, 'grpcjs-timeout-short', { delayMs: 800, globalTimeout: 150, calls: 5 });
    assert.equal(r.ok, 0);
    assert.deepEqual(r.errors, { DEADLINE_EXCEEDED: 5 });
  },
);

test('grpc-js-xds: the same slow backend answers within a longer globalTimeout', { timeout: 30_000 }, async (t) => {
  const r = await run(t, 1, 'grpcjs-timeout-long', { delayMs: 300, globalTimeout: 2000, calls: 5 });
  assert.equal(r.ok, 5);
});

test(
  'gRPC C-core: clientConfig.retries 2 retries UNAVAILABLE — every call succeeds',
  { timeout: 30_000 },
  async (t) => {
    const r = await run(t, 2, 'ccore-retries-on', { ccore: true, calls: 50 });
    assert.equal(r.failed, 0);
    assert.equal(r.ok, 50);
    assert.equal(r.attempts, 100);
  },
);

test(
  'gRPC C-core: clientConfig.globalTimeout bounds the call (max_stream_duration)',
  { timeout: 30_000 },
  async (t) => {
    // Same backend and client timeout (3 s) in both runs: only globalTimeout differs.
    const short = await run(t, 1, 'ccore-timeout-short', { ccore: true, delayMs: 800, globalTimeout: 150, calls: 10 });
    assert.equal(short.ok, 0);
    assert.deepEqual(short.errors, { DEADLINE_EXCEEDED: 10 });
    const long = await run(t, 1, 'ccore-timeout-long', { ccore: true, delayMs: 800, globalTimeout: 5000, calls: 3 });
    assert.equal(long.ok, 3, JSON.stringify(long.errors));
  },
);
