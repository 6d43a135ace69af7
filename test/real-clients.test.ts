// Real proxyless xDS clients routing real RPCs through otoroshi-xds:
// @grpc/grpc-js-xds (child processes) and gRPC C-core (Debian python3-grpcio), against gRPC
// echo backends on 127.0.0.1. Each test has its own config directory, server and backends.
import { test, type TestContext } from 'vitest';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { resolveConfig } from '../src/config.js';
import { startServer, type RunningServer } from '../src/main.js';
import type { NodeStatus } from '../src/xds/node-status.js';
import { descriptorYaml as descriptorDocYaml } from './fixtures/index.js';
import { startBackends, type Backends } from './helpers/backends.js';
import { runCCoreBatches, spawnGrpcJsClient, type CallResult, type GrpcJsClient } from './helpers/xds-clients.js';

const HOST = 'greeter.oto.tools';
const TARGET = `xds:///${HOST}`;

const TYPE_URLS = {
  LDS: 'type.googleapis.com/envoy.config.listener.v3.Listener',
  RDS: 'type.googleapis.com/envoy.config.route.v3.RouteConfiguration',
  CDS: 'type.googleapis.com/envoy.config.cluster.v3.Cluster',
  EDS: 'type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment',
} as const;

// ------------------------------------------------------------------ fixtures

interface DescriptorOpts {
  name: string;
  hosts?: string[];
  targets: Array<{ port: number; weight?: number }>;
  matchingHeaders?: Record<string, string>;
}

function descriptorYaml(o: DescriptorOpts): string {
  const headers = Object.entries(o.matchingHeaders ?? {}).map(([k, v]) => `  ${k}: ${JSON.stringify(v)}`);
  return descriptorDocYaml({
    name: o.name,
    namespace: 'default',
    hosts: (o.hosts ?? [HOST]).map((h) => JSON.stringify(h)),
    forceHttps: false,
    enforceSecureCommunication: false,
    targets: o.targets.map((t) => ({ url: `http://127.0.0.1:${t.port}`, weight: t.weight ?? 1 })),
    spec: o.matchingHeaders ? ['matchingHeaders:', ...headers].join('\n') : undefined,
  });
}

interface Env {
  dir: string;
  server: RunningServer;
  backends: Backends;
  port(id: string): number;
  write(file: string, yaml: string): void;
  grpcJs(nodeId: string): Promise<GrpcJsClient>;
  /** Server node statuses + client stderr tails, for failure messages. */
  diag(): string;
}

/**
 * Starts backends, writes the config files (built from the backend ports), starts the server.
 * Everything is torn down in t.after, even when the test fails.
 */
async function setup(
  t: TestContext,
  backendIds: string[],
  files: (port: (id: string) => number) => Record<string, string>,
): Promise<Env> {
  const clients: GrpcJsClient[] = [];
  let server: RunningServer | undefined;
  let backends: Backends | undefined;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'oxds-real-clients-'));
  t.onTestFinished(async () => {
    await Promise.all(clients.map((c) => c.kill()));
    await withTimeout(server?.stop() ?? Promise.resolve(), 5000, 'server.stop()').catch(() => undefined);
    await withTimeout(backends?.stop() ?? Promise.resolve(), 5000, 'backends.stop()').catch(() => undefined);
    fs.rmSync(dir, { recursive: true, force: true });
  });
  backends = await startBackends(backendIds);
  const b = backends;
  const port = (id: string): number => b.byId(id).port;
  for (const [f, y] of Object.entries(files(port))) fs.writeFileSync(path.join(dir, f), y);
  const cfg = resolveConfig(
    { config: dir, xdsPort: 0, adminPort: 0, authzPort: 0, logLevel: 'warn', debounceMs: 20, debounceMaxMs: 200 },
    {},
  );
  if (!cfg.ok) throw new Error(`config: ${cfg.errors.join('; ')}`);
  server = await startServer(cfg.value);
  const s = server;
  return {
    dir,
    server: s,
    backends: b,
    port,
    write: (f, y) => fs.writeFileSync(path.join(dir, f), y),
    grpcJs: async (nodeId) => {
      const c = await spawnGrpcJsClient(s.xdsPort, nodeId);
      clients.push(c);
      return c;
    },
    diag: () =>
      [
        `node statuses: ${JSON.stringify(s.ads.statuses(), null, 1)}`,
        `object statuses: ${JSON.stringify(s.statuses().filter((x) => x.state !== 'valid'))}`,
        ...clients.map((c) => `--- ${c.nodeId} stderr (tail):\n${c.stderr().slice(-3000)}`),
      ].join('\n'),
  };
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise<never>((_, rej) => {
      timer = setTimeout(() => rej(new Error(`${what} timed out after ${ms} ms`)), ms);
    }),
  ]);
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

// ------------------------------------------------------------------ assertions

function total(r: CallResult): number {
  return Object.values(r.counts).reduce((a, b) => a + b, 0);
}

function errorCount(r: CallResult): number {
  return Object.values(r.errors).reduce((a, b) => a + b, 0);
}

/** Each backend's share is within ±tolerancePp percentage points of its expected share. */
function assertSplit(r: CallResult, expected: Record<string, number>, tolerancePp: number, ctx: string): void {
  assert.equal(errorCount(r), 0, `${ctx}: RPC errors ${JSON.stringify(r.errors)} (first: ${r.firstError ?? '-'})`);
  const n = total(r);
  assert.ok(n > 0, `${ctx}: no successful call`);
  for (const id of Object.keys(r.counts)) {
    assert.ok(id in expected, `${ctx}: unexpected backend ${id} in ${JSON.stringify(r.counts)}`);
  }
  for (const [id, share] of Object.entries(expected)) {
    const got = ((r.counts[id] ?? 0) / n) * 100;
    assert.ok(
      Math.abs(got - share * 100) <= tolerancePp,
      `${ctx}: backend ${id} got ${got.toFixed(1)}% of ${n} calls, expected ${share * 100}` +
        `% ±${tolerancePp} pp (${JSON.stringify(r.counts)})`,
    );
  }
}

function assertOnly(r: CallResult, id: string, n: number, ctx: string): void {
  assert.deepEqual(
    { counts: r.counts, errors: r.errors },
    { counts: { [id]: n }, errors: {} },
    `${ctx}: expected all ${n} calls on ${id}${r.firstError ? ` (first error: ${r.firstError})` : ''}`,
  );
}

/**
 * No connected node ever NACKed, and every node in `nodeIds` is connected, classified as a
 * gRPC node, and has ACKed a non-empty version of LDS, RDS, CDS and EDS equal to the last one
 * sent. Polls briefly: the last ACK may still be in flight.
 */
async function assertAllAcked(server: RunningServer, nodeIds: string[], timeoutMs = 3000): Promise<NodeStatus[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const statuses = server.ads.statuses();
    const nacks = statuses.flatMap((s) =>
      Object.values(s.types)
        .filter((ts) => ts.lastNack)
        .map((ts) => ({
          node: s.nodeId,
          userAgent: `${s.userAgentName} ${s.userAgentVersion}`,
          typeUrl: ts.typeUrl,
          nack: ts.lastNack,
        })),
    );
    assert.deepEqual(nacks, [], `NACKs recorded by the server:\n${JSON.stringify(nacks, null, 1)}`);
    const problems: string[] = [];
    for (const id of nodeIds) {
      const mine = statuses.filter((s) => s.nodeId === id);
      if (mine.length === 0) {
        problems.push(`node ${id} is not connected`);
        continue;
      }
      for (const s of mine) {
        if (s.nodeType !== 'grpc')
          problems.push(`node ${id} (user agent "${s.userAgentName}") classified as ${s.nodeType}`);
        for (const [name, url] of Object.entries(TYPE_URLS)) {
          const ts = s.types[url];
          if (!ts?.ackedVersion) problems.push(`node ${id}: no ACKed ${name} version`);
        }
        for (const ts of Object.values(s.types)) {
          if (ts.sentVersion !== undefined && ts.ackedVersion !== ts.sentVersion) {
            problems.push(`node ${id}: ${ts.typeUrl} sent ${ts.sentVersion}, last ACKed ${ts.ackedVersion ?? 'none'}`);
          }
        }
      }
    }
    if (problems.length === 0) return statuses;
    if (Date.now() > deadline) {
      assert.fail(`${problems.join('\n')}\nstatuses: ${JSON.stringify(statuses, null, 1)}`);
    }
    await sleep(50);
  }
}

/** Calls `probe` until `done(result)` or the time is up; returns the last result and elapsed ms. */
async function pollUntil(
  probe: () => Promise<CallResult>,
  done: (r: CallResult) => boolean,
  maxMs: number,
): Promise<{ last: CallResult; ms: number; seen: CallResult[] }> {
  const t0 = performance.now();
  const seen: CallResult[] = [];
  for (;;) {
    const last = await probe();
    seen.push(last);
    const ms = Math.round(performance.now() - t0);
    if (done(last) || ms > maxMs) return { last, ms, seen };
    await sleep(50);
  }
}

// ------------------------------------------------------------------ tests

test('grpc-js-xds splits calls 3:1 across weighted targets', { timeout: 30_000 }, async (t) => {
  const env = await setup(t, ['b0', 'b1'], (port) => ({
    'greeter.yaml': descriptorYaml({
      name: 'greeter',
      targets: [
        { port: port('b0'), weight: 3 },
        { port: port('b1'), weight: 1 },
      ],
    }),
  }));
  const client = await env.grpcJs('grpcjs-weights');
  const r = await client.calls(TARGET, 400, { warmup: 10, deadlineMs: 3000 });
  console.log(`grpc-js split over 400 calls: ${JSON.stringify(r.counts)} in ${r.ms} ms`);
  try {
    assertSplit(r, { b0: 0.75, b1: 0.25 }, 8, 'grpc-js 3:1');
  } catch (e) {
    console.log(env.diag());
    throw e;
  }
  await assertAllAcked(env.server, ['grpcjs-weights']);
});

test('gRPC C-core splits calls 3:1 across weighted targets', { timeout: 30_000 }, async (t) => {
  const env = await setup(t, ['b0', 'b1'], (port) => ({
    'greeter.yaml': descriptorYaml({
      name: 'greeter',
      targets: [
        { port: port('b0'), weight: 3 },
        { port: port('b1'), weight: 1 },
      ],
    }),
  }));
  const run = await runCCoreBatches(
    env.server.xdsPort,
    'ccore-weights',
    [{ target: TARGET, n: 400, warmup: 10, timeout: 3 }],
    {
      timeoutMs: 20_000,
      whileConnected: async () => {
        await assertAllAcked(env.server, ['ccore-weights']);
      },
    },
  );
  const r = run.results[0]!;
  console.log(`C-core split over 400 calls: ${JSON.stringify(r.counts)} in ${r.ms} ms (process ${run.ms} ms)`);
  try {
    assertSplit(r, { b0: 0.75, b1: 0.25 }, 8, 'C-core 3:1');
  } catch (e) {
    console.log(`${env.diag()}\nC-core stderr:\n${run.stderr.slice(-4000)}`);
    throw e;
  }
});

test(
  'matchingHeaders routes x-canary: yes to the canary descriptor, other calls never reach it',
  { timeout: 30_000 },
  async (t) => {
    const env = await setup(t, ['A', 'C'], (port) => ({
      'main.yaml': descriptorYaml({ name: 'greeter', targets: [{ port: port('A') }] }),
      'canary.yaml': descriptorYaml({
        name: 'greeter-canary',
        targets: [{ port: port('C') }],
        matchingHeaders: { 'x-canary': 'yes' },
      }),
    }));
    const canary = { 'x-canary': 'yes' };

    // grpc-js-xds
    const client = await env.grpcJs('grpcjs-headers');
    try {
      const withHeader = await client.calls(TARGET, 50, { metadata: canary, warmup: 2 });
      assertOnly(withHeader, 'C', 50, 'grpc-js with x-canary: yes');
      const without = await client.calls(TARGET, 50, { warmup: 2 });
      assertOnly(without, 'A', 50, 'grpc-js without x-canary');
      const otherValue = await client.calls(TARGET, 20, { metadata: { 'x-canary': 'no' } });
      assertOnly(otherValue, 'A', 20, 'grpc-js with x-canary: no');
    } catch (e) {
      console.log(env.diag());
      throw e;
    }

    // C-core
    const run = await runCCoreBatches(
      env.server.xdsPort,
      'ccore-headers',
      [
        { target: TARGET, n: 50, metadata: canary, warmup: 2 },
        { target: TARGET, n: 50, warmup: 2 },
        { target: TARGET, n: 20, metadata: { 'x-canary': 'no' } },
      ],
      {
        timeoutMs: 20_000,
        whileConnected: () => assertAllAcked(env.server, ['grpcjs-headers', 'ccore-headers']).then(() => undefined),
      },
    );
    try {
      assertOnly(run.results[0]!, 'C', 50, 'C-core with x-canary: yes');
      assertOnly(run.results[1]!, 'A', 50, 'C-core without x-canary');
      assertOnly(run.results[2]!, 'A', 20, 'C-core with x-canary: no');
    } catch (e) {
      console.log(`${env.diag()}\nC-core stderr:\n${run.stderr.slice(-4000)}`);
      throw e;
    }
  },
);

test(
  'editing the YAML moves the traffic of a connected grpc-js client within 5 s, without restart',
  { timeout: 30_000 },
  async (t) => {
    const env = await setup(t, ['A', 'B'], (port) => ({
      'greeter.yaml': descriptorYaml({ name: 'greeter', targets: [{ port: port('A') }] }),
    }));
    const client = await env.grpcJs('grpcjs-live');
    assertOnly(await client.calls(TARGET, 20, { warmup: 2 }), 'A', 20, 'before the edit');
    const versionBefore = env.server.cache.versions().grpc;

    env.write('greeter.yaml', descriptorYaml({ name: 'greeter', targets: [{ port: env.port('B') }] }));
    const { last, ms, seen } = await pollUntil(
      () => client.calls(TARGET, 10, { deadlineMs: 2000, concurrency: 1 }),
      (r) => r.counts.B === 10,
      5000,
    );
    const failed = seen.filter((r) => errorCount(r) > 0);
    console.log(
      `traffic moved to B ${ms} ms after the edit (${seen.length} probes, ${failed.length}` +
        ` with errors${failed[0] ? `: ${failed[0].firstError}` : ''}` +
        `); grpc version ${versionBefore} → ${env.server.cache.versions().grpc}`,
    );
    try {
      assertOnly(last, 'B', 10, `within 5 s of the edit (after ${ms} ms)`);
      // And it stays there.
      assertOnly(await client.calls(TARGET, 50), 'B', 50, 'after the edit');
    } catch (e) {
      console.log(env.diag());
      throw e;
    }
    await assertAllAcked(env.server, ['grpcjs-live']);
  },
);

/**
 * A connected grpc-js client calls continuously (4 in flight) for 1.5 s while greeter.yaml is
 * rewritten 300 ms in from (name greeter, target A) to (name `newName`, target B): every call
 * must succeed, some on A, some on B.
 */
async function grpcJsEditUnderLoad(t: TestContext, nodeId: string, newName: string): Promise<void> {
  const env = await setup(t, ['A', 'B'], (port) => ({
    'greeter.yaml': descriptorYaml({ name: 'greeter', targets: [{ port: port('A') }] }),
  }));
  const client = await env.grpcJs(nodeId);
  assertOnly(await client.calls(TARGET, 20, { warmup: 2 }), 'A', 20, 'before the edit');
  const clustersBefore = env.server.ads.statuses().find((s) => s.nodeId === nodeId)?.types[TYPE_URLS.CDS]?.subscribed;

  const load = client.calls(TARGET, 0, { durationMs: 1500, concurrency: 4, deadlineMs: 2000 });
  await sleep(300);
  env.write('greeter.yaml', descriptorYaml({ name: newName, targets: [{ port: env.port('B') }] }));
  const r = await load;
  const clustersAfter = env.server.ads.statuses().find((s) => s.nodeId === nodeId)?.types[TYPE_URLS.CDS]?.subscribed;
  console.log(
    `continuous calls across the edit: ${JSON.stringify(r.counts)} errors ${JSON.stringify(r.errors)}` +
      `${r.firstError ? ` first: ${r.firstError}` : ''}` +
      `; CDS ${JSON.stringify(clustersBefore)} → ${JSON.stringify(clustersAfter)}`,
  );
  try {
    assert.ok(
      (r.counts.A ?? 0) > 0 && (r.counts.B ?? 0) > 0,
      `the edit happened during the load: ${JSON.stringify(r.counts)}`,
    );
    assert.deepEqual(r.errors, {}, `no RPC failed across the edit (first error: ${r.firstError ?? '-'})`);
    assertOnly(await client.calls(TARGET, 20), 'B', 20, 'after the edit');
  } catch (e) {
    console.log(env.diag());
    throw e;
  }
  await assertAllAcked(env.server, [nodeId]);
}

test("grpc-js: editing a descriptor's targets under load fails no RPC", { timeout: 30_000 }, async (t) => {
  await grpcJsEditUnderLoad(t, 'grpcjs-mbb-targets', 'greeter');
});

test(
  'grpc-js: replacing the descriptor that serves a host under load fails no RPC (make-before-break)',
  { timeout: 30_000 },
  async (t) => {
    // A new descriptor id means a new cluster: the client must get the new cluster before the
    // old one disappears from CDS.
    await grpcJsEditUnderLoad(t, 'grpcjs-mbb-replace', 'greeter-v2');
  },
);

/** The C-core twin of grpcJsEditUnderLoad (one process: before, continuous calls across the edit, after). */
async function ccoreEditUnderLoad(t: TestContext, nodeId: string, newName: string): Promise<void> {
  const env = await setup(t, ['A', 'B'], (port) => ({
    'greeter.yaml': descriptorYaml({ name: 'greeter', targets: [{ port: port('A') }] }),
  }));
  let editTimer: NodeJS.Timeout | undefined;
  let ackCheck: unknown;
  t.onTestFinished(() => clearTimeout(editTimer));
  // Batch 0: on A. Batch 1: continuous calls for 1.5 s, the edit lands 300 ms in. Batch 2: on B.
  const run = await runCCoreBatches(
    env.server.xdsPort,
    nodeId,
    [
      { target: TARGET, n: 20, warmup: 2 },
      { target: TARGET, n: 0, duration: 1.5, timeout: 2 },
      { target: TARGET, n: 50, timeout: 2 },
    ],
    {
      timeoutMs: 20_000,
      onBatchStart: (i) => {
        if (i === 1) {
          editTimer = setTimeout(
            () => env.write('greeter.yaml', descriptorYaml({ name: newName, targets: [{ port: env.port('B') }] })),
            300,
          );
        }
      },
      // Checked after the routing assertions, which say more about a failure.
      whileConnected: async () => {
        ackCheck = await assertAllAcked(env.server, [nodeId]).then(
          () => undefined,
          (e: unknown) => e,
        );
      },
    },
  );
  const [before, during, after] = run.results as [CallResult, CallResult, CallResult];
  console.log(
    `C-core continuous calls across the edit: ${JSON.stringify(during.counts)}` +
      ` errors ${JSON.stringify(during.errors)}${during.firstError ? ` first: ${during.firstError}` : ''}`,
  );
  try {
    assertOnly(before, 'A', 20, 'C-core before the edit');
    assertOnly(after, 'B', 50, 'C-core 1.2 s after the edit');
    assert.ok(
      (during.counts.A ?? 0) > 0 && (during.counts.B ?? 0) > 0,
      `the edit happened during the load: ${JSON.stringify(during.counts)}`,
    );
    assert.deepEqual(during.errors, {}, `no RPC failed across the edit (first error: ${during.firstError ?? '-'})`);
  } catch (e) {
    console.log(`${env.diag()}\nC-core stderr:\n${run.stderr.slice(-4000)}`);
    throw e;
  }
  if (ackCheck) throw ackCheck;
}

test(
  "C-core: editing a descriptor's targets under load fails no RPC and moves traffic",
  { timeout: 30_000 },
  async (t) => {
    await ccoreEditUnderLoad(t, 'ccore-mbb-targets', 'greeter');
  },
);

test(
  'C-core: replacing the descriptor that serves a host under load fails no RPC (make-before-break)',
  { timeout: 30_000 },
  async (t) => {
    await ccoreEditUnderLoad(t, 'ccore-mbb-replace', 'greeter-v2');
  },
);

test('an invalid descriptor next to a valid one leaves the valid one routing', { timeout: 30_000 }, async (t) => {
  const env = await setup(t, ['A', 'X'], (port) => ({
    'greeter.yaml': descriptorYaml({ name: 'greeter', targets: [{ port: port('A') }] }),
    // Same host, would win for x-canary calls if it were accepted: its regex does not compile.
    'broken.yaml': descriptorYaml({
      name: 'broken',
      targets: [{ port: port('X') }],
      matchingHeaders: { 'x-canary': '([a-z' },
    }),
  }));
  const invalid = env.server.statuses().filter((s) => s.state === 'invalid');
  assert.deepEqual(
    invalid.map((s) => s.name),
    ['broken'],
    `exactly the broken descriptor is reported invalid: ${JSON.stringify(env.server.statuses())}`,
  );
  assert.ok(
    invalid[0]!.errors.some((e) => e.code === 'OXDS_INVALID_REGEX'),
    `the broken descriptor carries OXDS_INVALID_REGEX: ${JSON.stringify(invalid[0]!.errors)}`,
  );

  const client = await env.grpcJs('grpcjs-invalid');
  try {
    assertOnly(await client.calls(TARGET, 30, { warmup: 2 }), 'A', 30, 'grpc-js, no header');
    assertOnly(await client.calls(TARGET, 30, { metadata: { 'x-canary': '([a-z' } }), 'A', 30, 'grpc-js, header');
  } catch (e) {
    console.log(env.diag());
    throw e;
  }

  // Adding another broken object live (bad target URL, bad YAML) keeps the valid route serving.
  env.write(
    'broken2.yaml',
    'apiVersion: proxy.otoroshi.io/v1alpha1\nkind: ServiceDescriptor\nmetadata:\n  name: broken2\n  namespace: ' +
      'default\nspec:\n  hosts: ["greeter.oto.tools"]\n  targets:\n    - url: "not a url"\n',
  );
  env.write('garbage.yaml', 'apiVersion: [unterminated\n');
  await withTimeout(env.server.rebuildNow(), 5000, 'rebuildNow');
  const r = await client.calls(TARGET, 30);
  try {
    assertOnly(r, 'A', 30, 'grpc-js after more broken objects');
  } catch (e) {
    console.log(env.diag());
    throw e;
  }

  const run = await runCCoreBatches(env.server.xdsPort, 'ccore-invalid', [{ target: TARGET, n: 30, warmup: 2 }], {
    timeoutMs: 20_000,
    whileConnected: () => assertAllAcked(env.server, ['grpcjs-invalid', 'ccore-invalid']).then(() => undefined),
  });
  assertOnly(run.results[0]!, 'A', 30, 'C-core');
});
