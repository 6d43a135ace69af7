// A real redis-server per test file (and per benchmark) on a free loopback port (no persistence); a real
// Redis Cluster (3 primaries) and a Sentinel setup (primary, replica, 3 sentinels) the same way. `available()`
// tells whether redis-server is installed so test files can skip with a clear message.
import { spawnSync, execFileSync, execFile } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

export function redisAvailable(): boolean {
  return spawnSync('redis-server', ['--version'], { stdio: 'ignore' }).status === 0;
}

export const REDIS_SKIP_MESSAGE =
  'redis-server is not installed (apt-get install -y redis-server): Redis tests skipped';

export function sentinelAvailable(): boolean {
  return redisAvailable() && spawnSync('redis-sentinel', ['--version'], { stdio: 'ignore' }).status === 0;
}

export const SENTINEL_SKIP_MESSAGE =
  'redis-sentinel is not installed (apt-get install -y redis-sentinel): Sentinel tests skipped';

/** Whether a listener can bind 127.0.0.1:`port` now. */
function bindable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

/**
 * The kernel's ephemeral port range (port-0 listeners and outgoing connections take theirs there),
 * read once.
 */
export function ephemeralRange(): readonly [number, number] {
  return (ephemeral ??= readEphemeralRange());
}
let ephemeral: readonly [number, number] | undefined;

function readEphemeralRange(): readonly [number, number] {
  try {
    const [lo, hi] = fs.readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
    if (lo && hi) return [lo, hi];
  } catch {
    // not Linux: the IANA dynamic range is the usual default
  }
  return [49152, 65535];
}

/** Ports this process has handed out: never handed out twice. */
const handedOut = new Set<number>();

/**
 * A free loopback TCP port (also used by the benchmarks), taken below the kernel's ephemeral range.
 * A port the kernel chose (`listen(0)`, then closed) goes back to that range, where any port-0
 * listener and any outgoing connection (Envoy's, the server's) may take it before its user binds
 * it; chosen outside that range, only another explicit bind can, and this process hands each port
 * out once.
 */
export async function freePort(): Promise<number> {
  const [ephemeralLow] = ephemeralRange();
  const hi = ephemeralLow - 1;
  const lo = Math.max(1024, hi - 12_000);
  if (hi - lo < 1000) return kernelPort();
  for (let i = 0; i < 1000; i++) {
    const port = lo + Math.floor(Math.random() * (hi - lo + 1));
    if (handedOut.has(port)) continue;
    handedOut.add(port);
    if (await bindable(port)) return port;
  }
  throw new Error(`no free loopback port in ${lo}-${hi}`);
}

function kernelPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address() as net.AddressInfo;
      s.close(() => resolve(a.port));
    });
  });
}

function ping(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const c = net.connect(port, '127.0.0.1');
    let buf = '';
    c.setTimeout(500);
    c.on('connect', () => c.write('PING\r\n'));
    c.on('data', (d) => {
      buf += d.toString();
      if (buf.includes('\r\n')) {
        c.destroy();
        resolve(buf.startsWith('+PONG'));
      }
    });
    c.on('error', () => resolve(false));
    // A server shutting down may accept and close without answering.
    c.on('close', () => resolve(false));
    c.on('timeout', () => {
      c.destroy();
      resolve(false);
    });
  });
}

export interface RunningRedis {
  port: number;
  url: string;
  /** Graceful SHUTDOWN NOSAVE, waits until the port is closed. */
  stop(): Promise<void>;
  /** SIGKILL (a crash), synchronous. */
  kill(): void;
  /** Starts again on the same port (empty: no persistence). */
  restart(): Promise<void>;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** One redis-server (or `redis-sentinel` with `sentinelConf`) daemon in its own directory. */
interface Daemon {
  port: number;
  dir: string;
  launch(): Promise<void>;
  pid(): number | undefined;
  signal(sig: NodeJS.Signals): void;
  waitDown(): Promise<void>;
}

async function daemon(
  extra: readonly string[] = [],
  sentinelConf?: (port: number, dir: string) => string,
): Promise<Daemon> {
  const port = await freePort();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'oxds-redis-'));
  const pidFile = path.join(dir, 'redis.pid');
  const common = [
    '--port',
    String(port),
    '--bind',
    '127.0.0.1',
    '--daemonize',
    'yes',
    '--pidfile',
    pidFile,
    '--dir',
    dir,
    '--logfile',
    path.join(dir, 'redis.log'),
  ];
  const pid = (): number | undefined => {
    try {
      return Number(fs.readFileSync(pidFile, 'utf8').trim()) || undefined;
    } catch {
      return undefined;
    }
  };
  return {
    port,
    dir,
    pid,
    async launch() {
      if (sentinelConf) {
        const conf = path.join(dir, 'sentinel.conf');
        if (!fs.existsSync(conf)) fs.writeFileSync(conf, sentinelConf(port, dir));
        execFileSync('redis-sentinel', [conf, ...common]);
      } else {
        execFileSync('redis-server', [...common, '--save', '', '--appendonly', 'no', ...extra]);
      }
      for (let i = 0; i < 200; i++) {
        if (await ping(port)) return;
        await sleep(50);
      }
      throw new Error(`redis did not start on ${port} (log: ${path.join(dir, 'redis.log')})`);
    },
    signal(sig) {
      const p = pid();
      if (p) {
        try {
          process.kill(p, sig);
        } catch {
          /* already gone */
        }
      }
      if (sig === 'SIGKILL') fs.rmSync(pidFile, { force: true });
    },
    async waitDown() {
      for (let i = 0; i < 100; i++) {
        if (!(await ping(port))) return;
        await sleep(50);
      }
    },
  };
}

async function stopDaemon(d: Daemon): Promise<void> {
  d.signal('SIGTERM');
  await d.waitDown();
  fs.rmSync(d.dir, { recursive: true, force: true });
}

export async function startRedis(): Promise<RunningRedis> {
  const d = await daemon();
  await d.launch();
  return {
    port: d.port,
    url: `redis://127.0.0.1:${d.port}`,
    stop: () => stopDaemon(d),
    kill: () => d.signal('SIGKILL'),
    async restart() {
      await d.waitDown();
      await d.launch();
    },
  };
}

/** `redis-cli -p PORT args...` → its stdout (rejects on a non-zero exit). Never blocks the event loop. */
export function redisCli(port: number, ...args: Array<string | number>): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(
      'redis-cli',
      ['-h', '127.0.0.1', '-p', String(port), ...args.map(String)],
      { encoding: 'utf8', timeout: 10_000 },
      (err, out) => (err ? reject(err) : resolve(out)),
    );
  });
}

export interface RunningRedisCluster {
  /** The primaries' ports (no replicas). */
  ports: number[];
  /** `redis+cluster://` URL over every primary. */
  url: string;
  /** Node id of the primary on `port`. */
  nodeId(port: number): Promise<string>;
  /** The port of the primary serving `slot`. */
  ownerOf(slot: number): Promise<number>;
  stop(): Promise<void>;
}

/** A Redis Cluster of `n` (≥ 3) primaries, no replicas, every slot assigned, cluster state ok. */
export async function startRedisCluster(n = 3): Promise<RunningRedisCluster> {
  const nodes: Daemon[] = [];
  try {
    for (let i = 0; i < n; i++) {
      // The bus port is chosen like the client port (its default, port + 10000, is not checked).
      const bus = await freePort();
      const d = await daemon([
        '--cluster-port',
        String(bus),
        '--cluster-enabled',
        'yes',
        '--cluster-config-file',
        'nodes.conf',
        '--cluster-node-timeout',
        '5000',
      ]);
      nodes.push(d);
      await d.launch();
    }
    execFileSync(
      'redis-cli',
      ['--cluster', 'create', ...nodes.map((d) => `127.0.0.1:${d.port}`), '--cluster-replicas', '0', '--cluster-yes'],
      { stdio: 'ignore' },
    );
    for (let i = 0; ; i++) {
      const infos = await Promise.all(nodes.map((d) => redisCli(d.port, 'cluster', 'info')));
      const ok = infos.every((info) => info.includes('cluster_state:ok'));
      if (ok) break;
      if (i > 200) throw new Error('Redis Cluster did not reach cluster_state:ok');
      await sleep(50);
    }
  } catch (err) {
    await Promise.all(nodes.map(stopDaemon));
    throw err;
  }
  const ports = nodes.map((d) => d.port);
  // CLUSTER NODES: "<id> <ip:port@bus> <flags> <master> <ping> <pong> <epoch> <link> <slot ranges...>"
  const slotsOf = async (): Promise<Array<[number, number, number]>> =>
    (await redisCli(ports[0]!, 'cluster', 'nodes'))
      .trim()
      .split('\n')
      .flatMap((line) => {
        const f = line.split(' ');
        const port = Number(f[1]!.split('@')[0]!.split(':')[1]);
        return f
          .slice(8)
          .filter((x) => !x.startsWith('['))
          .map((r): [number, number, number] => {
            const [a, b] = r.split('-');
            return [Number(a), Number(b ?? a), port];
          });
      });
  return {
    ports,
    url: `redis+cluster://${ports.map((p) => `127.0.0.1:${p}`).join(',')}`,
    nodeId: async (port) => (await redisCli(port, 'cluster', 'myid')).trim(),
    async ownerOf(slot) {
      const r = (await slotsOf()).find(([a, b]) => slot >= a && slot <= b);
      if (!r) throw new Error(`slot ${slot} has no owner`);
      return r[2];
    },
    stop: async () => {
      await Promise.all(nodes.map(stopDaemon));
    },
  };
}

export interface RunningRedisSentinel {
  /** `redis+sentinel://` URL over the sentinels, master name `oxds`. */
  url: string;
  masterName: string;
  sentinelPorts: number[];
  /** The primary's port as the sentinels currently report it. */
  primaryPort(): Promise<number>;
  /** SIGKILLs the current primary (a crash) and resolves once the sentinels promoted the replica. */
  crashPrimary(timeoutMs?: number): Promise<{ oldPrimary: number; newPrimary: number }>;
  stop(): Promise<void>;
}

/**
 * One primary, one replica and three sentinels (quorum 2, down after 1 s). A primary crash is
 * detected and the replica promoted within a few seconds.
 */
export async function startRedisSentinel(): Promise<RunningRedisSentinel> {
  const masterName = 'oxds';
  const all: Daemon[] = [];
  try {
    const primary = await daemon();
    all.push(primary);
    await primary.launch();
    const replica = await daemon(['--replicaof', '127.0.0.1', String(primary.port)]);
    all.push(replica);
    await replica.launch();
    for (let i = 0; ; i++) {
      if ((await redisCli(replica.port, 'info', 'replication')).includes('master_link_status:up')) break;
      if (i > 200) throw new Error('Redis replica did not sync');
      await sleep(50);
    }
    const conf = (_port: number, dir: string): string =>
      [
        `dir ${dir}`,
        `sentinel monitor ${masterName} 127.0.0.1 ${primary.port} 2`,
        `sentinel down-after-milliseconds ${masterName} 1000`,
        `sentinel failover-timeout ${masterName} 10000`,
        `sentinel parallel-syncs ${masterName} 1`,
        '',
      ].join('\n');
    const sentinels: Daemon[] = [];
    for (let i = 0; i < 3; i++) {
      const s = await daemon([], conf);
      all.push(s);
      sentinels.push(s);
      await s.launch();
    }
    const sentinelPorts = sentinels.map((s) => s.port);
    const primaryPort = async (): Promise<number> => {
      for (const p of sentinelPorts) {
        try {
          const out = (await redisCli(p, 'sentinel', 'get-master-addr-by-name', masterName)).trim().split('\n');
          if (out.length >= 2) return Number(out[1]);
        } catch {
          /* that sentinel is down: ask the next */
        }
      }
      throw new Error('no sentinel answers');
    };
    // Every sentinel sees the replica and the other sentinels before a failover can be tested.
    for (let i = 0; ; i++) {
      const infos = await Promise.all(sentinelPorts.map((p) => redisCli(p, 'sentinel', 'master', masterName)));
      const ready = infos.every((info) => {
        const field = (k: string): number => {
          const lines = info.trim().split('\n');
          const j = lines.indexOf(k);
          return j < 0 ? 0 : Number(lines[j + 1]);
        };
        return field('num-slaves') >= 1 && field('num-other-sentinels') >= 2;
      });
      if (ready) break;
      if (i > 600) throw new Error('sentinels did not discover each other');
      await sleep(50);
    }
    const byPort = new Map(all.map((d) => [d.port, d]));
    return {
      url: `redis+sentinel://${sentinelPorts.map((p) => `127.0.0.1:${p}`).join(',')}/${masterName}`,
      masterName,
      sentinelPorts,
      primaryPort,
      async crashPrimary(timeoutMs = 30_000) {
        const oldPrimary = await primaryPort();
        byPort.get(oldPrimary)!.signal('SIGKILL');
        const deadline = Date.now() + timeoutMs;
        for (;;) {
          const now = await primaryPort();
          if (now !== oldPrimary && (await redisCli(now, 'role').catch(() => '')).startsWith('master'))
            return { oldPrimary, newPrimary: now };
          if (Date.now() > deadline) throw new Error(`no failover within ${timeoutMs} ms`);
          await sleep(100);
        }
      },
      stop: async () => {
        await Promise.all(all.map(stopDaemon));
      },
    };
  } catch (err) {
    await Promise.all(all.map(stopDaemon));
    throw err;
  }
}
