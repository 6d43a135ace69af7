// `otoroshi-xds serve` as a child process (the real CLI), on fixed free loopback ports so that it
// can be killed and started again where Envoy expects it.
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { eventually } from './envoy.js';
import { freePort } from './redis.js';

export interface ServePorts {
  xds: number;
  admin: number;
  authz: number;
}

export async function freeServePorts(): Promise<ServePorts> {
  return { xds: await freePort(), admin: await freePort(), authz: await freePort() };
}

export interface ServeChild {
  child: ChildProcess;
  ports: ServePorts;
  /** The address it binds. */
  host: string;
  /** Its stderr (pino logs), the last 20 kB. */
  log(): string;
  /** JSON from its admin API. */
  admin<T>(p: string): Promise<T>;
  kill(signal?: NodeJS.Signals): Promise<void>;
}

/** Starts `serve` on `configDir` and waits until its admin API says ready; `host`: the address it binds. */
export async function startServeChild(
  configDir: string,
  ports: ServePorts,
  extra: string[] = [],
  host = '127.0.0.1',
  readyTimeoutMs = 60_000,
): Promise<ServeChild> {
  const args = [
    path.resolve('dist/src/cli.js'),
    'serve',
    '--config',
    configDir,
    '--host',
    host,
    '--xds-port',
    String(ports.xds),
    '--admin-port',
    String(ports.admin),
    '--authz-port',
    String(ports.authz),
    '--envoy-http-port',
    '0',
    '--envoy-https-port',
    '0',
    '--envoy-listen-address',
    '127.0.0.1',
    '--data-dir',
    path.join(configDir, '.data'),
    '--log-level',
    'info',
    ...extra,
  ];
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  child.stderr?.on('data', (d: Buffer) => (log = (log + d.toString()).slice(-20_000)));
  let exited: number | null | undefined;
  child.once('exit', (c) => (exited = c));
  const admin = async <T>(p: string): Promise<T> => {
    const r = await fetch(`http://${host}:${ports.admin}${p}`);
    if (!r.ok) throw new Error(`${p}: ${r.status}`);
    return (await r.json()) as T;
  };
  await eventually(
    'serve to be ready',
    async () => {
      if (exited !== undefined) throw new Error(`serve exited with ${String(exited)}: ${log}`);
      const r = await fetch(`http://${host}:${ports.admin}/ready`).catch(() => undefined);
      return r?.status === 200 ? true : undefined;
    },
    readyTimeoutMs,
  ).catch((e: unknown) => {
    child.kill('SIGKILL');
    throw e;
  });
  return {
    child,
    ports,
    host,
    log: () => log,
    admin,
    async kill(signal = 'SIGKILL') {
      if (exited !== undefined) return;
      const done = new Promise<void>((r) => child.once('exit', () => r()));
      child.kill(signal);
      await done;
    },
  };
}
