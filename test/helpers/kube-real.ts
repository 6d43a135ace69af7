// A real Kubernetes control plane (etcd + kube-apiserver, optionally kube-controller-manager) per
// test file, started by scripts/kube-up.sh on free loopback ports, stopped by scripts/kube-down.sh.
// The Kubernetes programs are built once by scripts/kube-build.sh into a cache outside the checkout.
//
// `realKubeSkip()` says why these tests cannot run here (undefined: they can). With CI=true nothing
// is skipped: a missing build or etcd is an error.
import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as k8s from '@kubernetes/client-node';
import { KubeClient } from '../../src/k8s/client.js';
import { freePort } from './redis.js';
import { eventually } from './k8s.js';
import { AdsClient, TYPE_URLS, decodeAny } from './ads-client.js';
import type { DiscoveryResponse } from '../../src/xds/server/messages.js';
import { HTTP_ROUTE_CONFIG_NAME, HTTPS_ROUTE_CONFIG_NAME } from '../../src/xds/names.js';

/** The repository root (from the cwd when it is the checkout, else from this compiled file). */
export const REPO = fs.existsSync(path.resolve(process.cwd(), 'scripts/kube-up.sh'))
  ? process.cwd()
  : path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');

const script = (name: string): string => path.join(REPO, 'scripts', name);

/** The version pinned in tools/kube/go.mod. */
export function kubeVersion(): string {
  const m = /^require k8s\.io\/kubernetes (v\S+)/m.exec(fs.readFileSync(path.join(REPO, 'tools/kube/go.mod'), 'utf8'));
  if (!m?.[1]) throw new Error('tools/kube/go.mod: no "require k8s.io/kubernetes vX.Y.Z" line');
  return m[1];
}

/** Where scripts/kube-build.sh puts the binaries (same rule as the script). */
export function kubeBinDir(): string {
  const cache =
    process.env['OXDS_KUBE_CACHE'] ??
    path.join(
      process.env['XDG_CACHE_HOME'] ?? path.join(os.homedir(), '.cache'),
      'otoroshi-xds',
      `kube-${kubeVersion()}`,
    );
  return path.join(cache, 'bin');
}

const has = (cmd: string): boolean => spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
const built = (): boolean =>
  ['kube-apiserver', 'kubectl', 'kube-controller-manager'].every((p) => fs.existsSync(path.join(kubeBinDir(), p)));

/** Why the real-apiserver tests cannot run on this machine, or undefined. Throws under CI=true instead of skipping. */
export function realKubeSkip(): string | undefined {
  let why: string | undefined;
  if (!has('etcd') && !process.env['OXDS_ETCD_BIN'])
    why = 'etcd is not installed (apt-get install -y etcd-server): real kube-apiserver tests skipped';
  else if (!built() && !has('go'))
    why =
      'Go is not installed: real kube-apiserver tests skipped (install Go >= 1.26, ' +
      'then `npm run kube:build` builds kube-apiserver once)';
  else if (!built())
    why =
      `kube-apiserver is not built yet in ${kubeBinDir()}` +
      `: real kube-apiserver tests skipped (run \`npm run kube:build\` once, tens of minutes)`;
  if (why !== undefined && process.env['CI'] === 'true')
    throw new Error(`CI=true: ${why.replace(/: real kube-apiserver tests skipped/, '')} (.ci/run builds it)`);
  return why;
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a program without blocking the event loop (servers under test may live in this process). */
export function run(
  file: string,
  args: readonly string[],
  opts: { env?: NodeJS.ProcessEnv; input?: string; timeoutMs?: number } = {},
): Promise<RunResult> {
  return new Promise((resolve) => {
    const child = execFile(
      file,
      args,
      { env: opts.env ?? process.env, timeout: opts.timeoutMs ?? 120_000, maxBuffer: 64 * 1024 * 1024 },
      (err, stdout, stderr) => {
        const code = err
          ? typeof (err as { code?: unknown }).code === 'number'
            ? (err as { code: number }).code
            : 1
          : 0;
        resolve({ code, stdout: String(stdout), stderr: String(stderr) });
      },
    );
    if (opts.input !== undefined) child.stdin?.end(opts.input);
  });
}

export interface RealKube {
  dir: string;
  /** Cluster-admin kubeconfig (client certificate in system:masters). */
  kubeconfig: string;
  url: string;
  caPem: string;
  client: KubeClient;
  /** kubectl with the admin kubeconfig (or another one). */
  kubectl(args: readonly string[], opts?: { input?: string; kubeconfig?: string }): Promise<RunResult>;
  /** kubectl that must succeed; returns stdout. */
  kubectlOk(args: readonly string[], opts?: { input?: string; kubeconfig?: string }): Promise<string>;
  /** A kubeconfig authenticating as a ServiceAccount (a TokenRequest token). */
  serviceAccountKubeconfig(namespace: string, name: string): Promise<string>;
  /** Audit events (ServiceAccount requests only) recorded so far. */
  auditEvents(): AuditEvent[];
  /** Stops and starts kube-apiserver again on the same port and data (etcd keeps running). */
  restartApiserver(): Promise<{ from: number; to: number }>;
  stop(): Promise<void>;
}

export interface AuditEvent {
  verb: string;
  requestURI: string;
  user: { username: string };
  responseStatus?: { code?: number; message?: string };
  objectRef?: { resource?: string; subresource?: string; namespace?: string; name?: string; apiGroup?: string };
  stage: string;
  requestReceivedTimestamp?: string;
}

export async function startRealKube(opts: { controllerManager?: boolean } = {}): Promise<RealKube> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'oxds-kube-real-'));
  const up = async (): Promise<void> => {
    const r = await run(
      'bash',
      [script('kube-up.sh'), ...(opts.controllerManager ? ['--controller-manager'] : []), dir],
      { timeoutMs: 300_000 },
    );
    if (r.code !== 0) throw new Error(`scripts/kube-up.sh failed (${r.code}):\n${r.stderr.slice(-4000)}`);
  };
  try {
    await up();
  } catch (err) {
    await run('bash', [script('kube-down.sh'), dir]);
    throw err;
  }
  // a test file that ends without its after() hooks (timeout, crash) must not leave etcd and the API server running
  const cleanup = (): void => void spawnSync('bash', [script('kube-down.sh'), '--purge', dir], { stdio: 'ignore' });
  process.once('exit', cleanup);
  const kubeconfig = path.join(dir, 'kubeconfig');
  const env = fs.readFileSync(path.join(dir, 'env'), 'utf8');
  const url = /^APISERVER_URL=(.*)$/m.exec(env)?.[1] ?? '';
  const kc = new k8s.KubeConfig();
  kc.loadFromFile(kubeconfig);
  const kubectlBin = path.join(kubeBinDir(), 'kubectl');
  const kubectl = (args: readonly string[], o: { input?: string; kubeconfig?: string } = {}): Promise<RunResult> =>
    run(kubectlBin, ['--kubeconfig', o.kubeconfig ?? kubeconfig, ...args], {
      ...(o.input !== undefined ? { input: o.input } : {}),
    });
  const kubectlOk = async (
    args: readonly string[],
    o: { input?: string; kubeconfig?: string } = {},
  ): Promise<string> => {
    const r = await kubectl(args, o);
    if (r.code !== 0) throw new Error(`kubectl ${args.join(' ')} failed (${r.code}): ${r.stderr}`);
    return r.stdout;
  };
  const caPem = fs.readFileSync(path.join(dir, 'ca.crt'), 'utf8');
  return {
    dir,
    kubeconfig,
    url,
    caPem,
    client: new KubeClient(kc),
    kubectl,
    kubectlOk,
    async serviceAccountKubeconfig(namespace, name) {
      const token = (await kubectlOk(['-n', namespace, 'create', 'token', name, '--duration', '2h'])).trim();
      const file = path.join(dir, `kubeconfig-${namespace}-${name}`);
      fs.writeFileSync(
        file,
        [
          'apiVersion: v1',
          'kind: Config',
          'clusters:',
          '- name: oxds-test',
          `  cluster: { server: "${url}", certificate-authority: "${path.join(dir, 'ca.crt')}" }`,
          'users:',
          `- name: ${name}`,
          `  user: { token: "${token}" }`,
          'contexts:',
          `- name: ${name}`,
          `  context: { cluster: oxds-test, user: ${name}, namespace: ${namespace} }`,
          `current-context: ${name}`,
          '',
        ].join('\n'),
        { mode: 0o600 },
      );
      return file;
    },
    auditEvents() {
      const file = path.join(dir, 'audit.log');
      if (!fs.existsSync(file)) return [];
      return fs
        .readFileSync(file, 'utf8')
        .split('\n')
        .filter((l) => l.trim() !== '')
        .map((l) => JSON.parse(l) as AuditEvent)
        .filter((e) => e.stage === 'ResponseComplete');
    },
    async restartApiserver() {
      const from = Date.now();
      const down = await run('bash', [script('kube-down.sh'), '--only', 'apiserver', dir]);
      if (down.code !== 0) throw new Error(`kube-down --only apiserver failed: ${down.stderr}`);
      await up();
      return { from, to: Date.now() };
    },
    async stop() {
      process.off('exit', cleanup);
      await run('bash', [script('kube-down.sh'), ...(process.env['OXDS_KEEP_KUBE'] ? [] : ['--purge']), dir]);
    },
  };
}

/**
 * `kubectl apply -k manifests/` (namespace, CRDs, RBAC, webhook, ...), waits until every CRD is
 * Established, then points the validating webhook at `https://127.0.0.1:<webhookPort>/validate`:
 * the shipped Service reference would make the API server dial the Service's ClusterIP, which is
 * not a loopback address here (and no pod serves it). Without a port, a closed one: "webhook down".
 */
export async function applyManifests(kube: RealKube, webhookPort?: number): Promise<string> {
  const out = await kube.kubectlOk(['apply', '-k', path.join(REPO, 'manifests')]);
  await kube.kubectlOk([
    'wait',
    '--for',
    'condition=Established',
    '--timeout',
    '120s',
    'crd',
    '-l',
    'app.kubernetes.io/part-of=otoroshi-xds',
  ]);
  await pointWebhookAt(kube, webhookPort ?? (await freePort()));
  return out;
}

/** Replaces the webhook's clientConfig by a loopback URL (keeping a caBundle already written). */
export async function pointWebhookAt(kube: RealKube, port: number): Promise<void> {
  const p = '/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations/otoroshi-xds';
  const cur = await kube.client.get<{ webhooks: Array<{ clientConfig: { caBundle?: string } }> }>(p);
  const caBundle = cur.webhooks[0]?.clientConfig.caBundle;
  const patch = [
    {
      op: 'replace',
      path: '/webhooks/0/clientConfig',
      value: { url: `https://127.0.0.1:${port}/validate`, ...(caBundle ? { caBundle } : {}) },
    },
  ];
  await kube.kubectlOk([
    'patch',
    'validatingwebhookconfiguration',
    'otoroshi-xds',
    '--type',
    'json',
    '-p',
    JSON.stringify(patch),
  ]);
}

export interface ServerProcess {
  name: string;
  adminPort: number;
  xdsPort: number;
  /** The admission webhook's port (certificate for 127.0.0.1), when started with one. */
  webhookPort: number | undefined;
  child: ChildProcess;
  /** Everything the process logged so far (pino JSON lines). */
  log(): string;
  /** GET on the admin API (JSON). */
  admin<T = unknown>(p: string): Promise<{ status: number; body: T }>;
  /** SIGKILL, waits for the exit. */
  kill(): Promise<void>;
  /** SIGTERM (graceful), waits for the exit. */
  stop(): Promise<void>;
}

/** Starts `otoroshi-xds serve --source kubernetes` (compiled dist/src/cli.js) as a child process. */
export async function startControlPlane(opts: {
  name: string;
  kubeconfig: string;
  leaseNamespace: string;
  webhookPort?: number;
  args?: string[];
  env?: NodeJS.ProcessEnv;
}): Promise<ServerProcess> {
  const [xdsPort, authzPort, adminPort] = [await freePort(), await freePort(), await freePort()];
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), `oxds-cp-${opts.name}-`));
  fs.writeFileSync(path.join(dataDir, 'secret-seed'), 'a-shared-test-seed-0123456789abcdef');
  const args = [
    path.join(REPO, 'dist/src/cli.js'),
    'serve',
    '--source',
    'kubernetes',
    '--kubeconfig',
    opts.kubeconfig,
    '--xds-port',
    String(xdsPort),
    '--authz-port',
    String(authzPort),
    '--admin-port',
    String(adminPort),
    '--data-dir',
    dataDir,
    '--pod-name',
    opts.name,
    '--lease-namespace',
    opts.leaseNamespace,
    '--lease-duration-seconds',
    '3',
    '--debounce-ms',
    '20',
    '--debounce-max-ms',
    '200',
    '--cluster-grace-ms',
    '0',
    '--log-level',
    'debug',
    ...(opts.webhookPort !== undefined
      ? ['--webhook-port', String(opts.webhookPort), '--webhook-hosts', '127.0.0.1']
      : []),
    ...(opts.args ?? []),
  ];
  const child = spawn(process.execPath, args, {
    env: { ...process.env, ...(opts.env ?? {}) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let log = '';
  child.stdout?.on('data', (d: Buffer) => (log += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (log += d.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const admin = async <T>(p: string): Promise<{ status: number; body: T }> => {
    const res = await fetch(`http://127.0.0.1:${adminPort}${p}`);
    const text = await res.text();
    let body: unknown = text;
    try {
      body = JSON.parse(text);
    } catch {
      /* text */
    }
    return { status: res.status, body: body as T };
  };
  const sp: ServerProcess = {
    name: opts.name,
    adminPort,
    xdsPort,
    webhookPort: opts.webhookPort,
    child,
    log: () => log,
    admin,
    async kill() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    },
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
  await eventually(
    async () => {
      if (child.exitCode !== null)
        throw new Error(`control plane ${opts.name} exited (${child.exitCode}):\n${log.slice(-3000)}`);
      try {
        return (await admin('/ready')).status === 200;
      } catch {
        return false;
      }
    },
    60_000,
    `control plane ${opts.name} ready`,
  );
  return sp;
}

/** Lines of a pino JSON log whose text mentions a 403 / Forbidden answer of the API server. */
export function forbiddenLines(log: string): string[] {
  return log.split('\n').filter((l) => /\b403\b|Forbidden|forbidden/.test(l));
}

/**
 * What a replica serves, seen as an Envoy would: a SotW ADS stream (LDS + CDS wildcard, RDS for
 * `routeNames` — by default the gateway's two route configurations —, EDS for every EDS cluster),
 * every response ACKed. `text()` is the JSON of the latest resources of every type.
 */
export class XdsWatcher {
  private readonly client: AdsClient;
  private readonly latest = new Map<string, Record<string, unknown>[]>();
  private edsNames: string[] = [];
  private closed = false;

  constructor(
    port: number,
    node: string | { id: string; metadata: Record<string, string> },
    private readonly routeNames: readonly string[] = [HTTP_ROUTE_CONFIG_NAME, HTTPS_ROUTE_CONFIG_NAME],
  ) {
    const n = typeof node === 'string' ? { id: node, cluster: 'kube-test' } : node;
    this.client = new AdsClient(port, { node: n });
    this.client.request(TYPE_URLS.listener);
    this.client.request(TYPE_URLS.cluster);
    this.client.request(TYPE_URLS.route, [...routeNames]);
    void this.loop();
  }

  private async loop(): Promise<void> {
    while (!this.closed) {
      let r: DiscoveryResponse;
      try {
        r = await this.client.nextSotw(3_600_000);
      } catch {
        return;
      }
      const objects = r.resources.map(decodeAny);
      this.latest.set(r.typeUrl, objects);
      if (r.typeUrl === TYPE_URLS.route) this.client.ack(r, [...this.routeNames]);
      else if (r.typeUrl === TYPE_URLS.endpoint) this.client.ack(r, this.edsNames);
      else this.client.ack(r);
      if (r.typeUrl === TYPE_URLS.cluster) {
        const eds = objects
          .filter((c) => c['type'] === 'EDS' || c['type'] === 3 || c['edsClusterConfig'] !== undefined)
          .map((c) => String(c['name']))
          .sort();
        if (JSON.stringify(eds) !== JSON.stringify(this.edsNames)) {
          this.edsNames = eds;
          this.client.request(TYPE_URLS.endpoint, eds);
        }
      }
    }
  }

  text(): string {
    return JSON.stringify([...this.latest.entries()]);
  }

  /** The latest resource of `typeUrl` named `name`. */
  of(typeUrl: string, name: string): Record<string, unknown> | undefined {
    return this.latest.get(typeUrl)?.find((x) => x['name'] === name);
  }

  close(): void {
    this.closed = true;
    this.client.close();
  }
}
