// `npm run demo`: the quickstart. Serves examples/ (plus one demo apikey with a tiny quota), starts
// a local Envoy from `bootstrap gateway`, small HTTP backends where examples/ sends traffic, and
// prints curl lines that work. Ctrl-C stops everything.
//   --free-ports   every port picked free (backends too: the example targets are rewritten)
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { resolveConfig } from '../src/config.js';
import { makeLogger, startServer } from '../src/main.js';
import { ENVOY_HOWTO, findEnvoy, repoRoot } from '../src/envoy/find-envoy.js';
import { gatewayBootstrapYaml } from '../src/envoy/bootstrap.js';
import { freePort } from '../test/helpers/redis.js';

/** Where examples/ sends HTTP traffic: descriptors (8081-8083) and the Ingress' EndpointSlice (8080). */
const EXAMPLE_BACKENDS = { web: 8080, 'api-1': 8081, 'api-2': 8082, 'api-v2': 8083 } as const;
type BackendId = keyof typeof EXAMPLE_BACKENDS;

const DEMO_APIKEY = `# Demo only (npm run demo): an apikey with a daily quota of 3 calls, to see the 429.
apiVersion: proxy.otoroshi.io/v1alpha1
kind: ApiKey
metadata: {name: demo-limited, namespace: default}
spec:
  clientId: demo-limited
  clientSecret: demo-limited-secret
  authorizedEntities: [group_demo-group]
  dailyQuota: 3
`;

function startBackend(id: string, port: number): Promise<http.Server> {
  const server = http.createServer((req, res) => {
    res.setHeader('content-type', 'application/json');
    res.end(`${JSON.stringify({ backend: id, method: req.method, path: req.url })}\n`);
  });
  return new Promise((resolve, reject) => {
    server.once('error', (e) => reject(new Error(`demo backend ${id} on 127.0.0.1:${port}: ${e.message}`)));
    server.listen(port, '127.0.0.1', () => resolve(server));
  });
}

/** examples/ copied to `dir` with the backend ports rewritten, plus the demo apikey. */
function demoConfig(dir: string, ports: Record<BackendId, number>): void {
  const src = path.join(repoRoot(), 'examples');
  for (const f of fs.readdirSync(src).filter((x) => /\.ya?ml$/.test(x))) {
    let text = fs.readFileSync(path.join(src, f), 'utf8');
    if (f === 'descriptors.yaml') {
      text = text
        .replaceAll('127.0.0.1:8081', `127.0.0.1:${ports['api-1']}`)
        .replaceAll('127.0.0.1:8082', `127.0.0.1:${ports['api-2']}`)
        .replaceAll('127.0.0.1:8083', `127.0.0.1:${ports['api-v2']}`);
    }
    if (f === 'services.yaml') text = text.replace(/\b8080\b/g, String(ports.web));
    fs.writeFileSync(path.join(dir, f), text);
  }
  fs.writeFileSync(path.join(dir, 'demo-apikey.yaml'), DEMO_APIKEY);
}

/** Status of GET `p` with Host `host` through the local Envoy (0 when it does not answer). */
function statusOf(port: number, host: string, p: string): Promise<number> {
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path: p, headers: { host }, agent: false }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.setTimeout(5000, () => req.destroy());
    req.on('error', () => resolve(0));
  });
}

/** The curl lines printed (and run by the demo's test): a command and the status codes it prints. */
export function curlLines(port: number): { what: string; cmd: string; expect: string }[] {
  const base = `http://127.0.0.1:${port}`;
  const code = `curl -s -o /dev/null -w '%{http_code}\\n'`;
  const key = (id: string, secret: string): string =>
    `-H 'Otoroshi-Client-Id: ${id}' -H 'Otoroshi-Client-Secret: ${secret}'`;
  return [
    {
      what: 'public route (publicPatterns), no apikey',
      cmd: `${code} -H 'Host: api.oto.tools' ${base}/api/public/hello`,
      expect: '200',
    },
    { what: 'the Ingress (web.oto.tools)', cmd: `${code} -H 'Host: web.oto.tools' ${base}/`, expect: '200' },
    {
      what: 'apikey route with the demo apikey',
      cmd: `${code} -H 'Host: api.oto.tools' ${key('demo-client', 'demo-secret')} ${base}/api/users`,
      expect: '200',
    },
    {
      what: 'apikey route without an apikey (Otoroshi: 400)',
      cmd: `${code} -H 'Host: api.oto.tools' ${base}/api/users`,
      expect: '400',
    },
    {
      what: 'apikey route with a wrong secret',
      cmd: `${code} -H 'Host: api.oto.tools' ${key('demo-client', 'wrong')} ${base}/api/users`,
      expect: '401',
    },
    {
      what: 'daily quota of 3: the 4th call is refused',
      cmd:
        `for i in 1 2 3 4; do ${code}` +
        ` -H 'Host: api.oto.tools' ${key('demo-limited', 'demo-limited-secret')} ${base}/api/users; done`,
      expect: '200 200 200 429',
    },
  ];
}

type DemoPorts = { http: number; xds: number; admin: number; authz: number; envoyAdmin: number };

/** The demo's fixed ports, or free ones with --free-ports. */
async function demoPorts(free: boolean): Promise<{ ports: DemoPorts; backendPorts: Record<BackendId, number> }> {
  const pick = async (fixed: number): Promise<number> => (free ? freePort() : fixed);
  const ports = {
    http: await pick(10080),
    xds: await pick(18000),
    admin: await pick(18080),
    authz: await pick(18001),
    envoyAdmin: await pick(19901),
  };
  const backendPorts = {} as Record<BackendId, number>;
  for (const [id, p] of Object.entries(EXAMPLE_BACKENDS) as [BackendId, number][]) backendPorts[id] = await pick(p);
  return { ports, backendPorts };
}

async function startDemoServer(dir: string, root: string, ports: DemoPorts, token: string) {
  const r = resolveConfig(
    {
      gatewayToken: token,
      config: dir,
      host: '127.0.0.1',
      xdsPort: ports.xds,
      adminPort: ports.admin,
      authzPort: ports.authz,
      envoyHttpPort: ports.http,
      envoyHttpsPort: 0,
      envoyListenAddress: '127.0.0.1',
      dataDir: path.join(root, 'data'),
      logLevel: 'warn',
    },
    process.env,
  );
  if (!r.ok) throw new Error(r.errors.join('\n'));
  return startServer(r.value, makeLogger(r.value.logLevel));
}

/** Envoy on the demo's bootstrap (Delta ADS, node token), logging to `run`/envoy.log. */
function startDemoEnvoy(bin: string, run: string, xdsPort: number, adminPort: number, token: string): ChildProcess {
  fs.writeFileSync(
    path.join(run, 'envoy.yaml'),
    gatewayBootstrapYaml({
      xdsAddress: `127.0.0.1:${xdsPort}`,
      nodeId: 'demo-gateway',
      nodeCluster: 'otoroshi-gateway',
      adminAddress: '127.0.0.1',
      adminPort,
      delta: true,
      token,
    }),
  );
  return spawn(
    bin,
    [
      '-c',
      path.join(run, 'envoy.yaml'),
      '--disable-hot-restart',
      '-l',
      'warning',
      '--log-path',
      path.join(run, 'envoy.log'),
      '--concurrency',
      '1',
    ],
    { stdio: 'ignore' },
  );
}

function printBanner(
  dir: string,
  server: { xdsPort: number; adminPort: number },
  envoyBin: string,
  ports: DemoPorts,
  backendPorts: Record<BackendId, number>,
): void {
  const out = [
    `otoroshi-xds demo: config ${dir} (examples/ + demo-apikey.yaml), xDS 127.0.0.1:${server.xdsPort}, ` +
      `admin http://127.0.0.1:${server.adminPort}`,
    `Envoy ${envoyBin}: HTTP on 127.0.0.1:${ports.http}, admin http://127.0.0.1:${ports.envoyAdmin}`,
    `demo backends: ${Object.entries(backendPorts)
      .map(([id, p]) => `${id} 127.0.0.1:${p}`)
      .join(', ')}`,
    '',
    'Try (each line prints the HTTP status codes shown after it):',
    ...curlLines(ports.http).flatMap((l) => [`# ${l.what}: ${l.expect}`, l.cmd]),
    '',
    'Demo ready. Ctrl-C stops the server, Envoy and the backends.',
  ];
  process.stdout.write(`${out.join('\n')}\n`);
}

async function main(): Promise<void> {
  const free = process.argv.includes('--free-ports');
  const envoy = findEnvoy();
  if ('missing' in envoy) {
    process.stderr.write(`npm run demo needs Envoy: ${envoy.missing}; ${ENVOY_HOWTO}\n`);
    process.exit(1);
  }
  const { ports, backendPorts } = await demoPorts(free);
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'oxds-demo-'));
  const dir = path.join(root, 'config');
  const run = path.join(root, 'envoy');
  fs.mkdirSync(dir);
  fs.mkdirSync(run);
  demoConfig(dir, backendPorts);
  const backends = await Promise.all(
    (Object.entries(backendPorts) as [BackendId, number][]).map(([id, p]) => startBackend(id, p)),
  );

  // The demo's Envoy proves it is a gateway with a token of this run (node authorization).
  const token = randomBytes(16).toString('hex');
  const server = await startDemoServer(dir, root, ports, token);
  const proxy = startDemoEnvoy(envoy.bin, run, server.xdsPort, ports.envoyAdmin, token);
  let proxyExit: number | null | undefined;
  proxy.once('exit', (c) => (proxyExit = c));

  const stop = async (code: number): Promise<never> => {
    proxy.kill('SIGTERM');
    await server.stop();
    for (const b of backends) b.close();
    fs.rmSync(root, { recursive: true, force: true });
    process.exit(code);
  };
  process.on('SIGINT', () => void stop(0));
  process.on('SIGTERM', () => void stop(0));

  // Ready when Envoy's HTTP listener answers with a route of examples/.
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (proxyExit !== undefined) {
      process.stderr.write(
        `envoy exited with ${String(proxyExit)}` +
          `: ${fs.readFileSync(path.join(run, 'envoy.log'), 'utf8').slice(-2000)}\n`,
      );
      await stop(1);
    }
    const ok = (await statusOf(ports.http, 'api.oto.tools', '/api/public/ready')) === 200;
    if (ok) break;
    if (Date.now() > deadline) {
      process.stderr.write('Envoy did not serve the demo config within 60 s\n');
      await stop(1);
    }
    await new Promise((res) => setTimeout(res, 200));
  }
  printBanner(dir, server, envoy.bin, ports, backendPorts);
}

main().catch((e: unknown) => {
  process.stderr.write(`npm run demo: ${(e as Error).message}\n`);
  process.exit(1);
});
