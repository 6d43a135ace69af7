// A real redis-server per test file (and per benchmark) on a free loopback port (no persistence). `available()`
// tells whether redis-server is installed so test files can skip with a clear message.
import { spawnSync, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

export function redisAvailable(): boolean {
  return spawnSync('redis-server', ['--version'], { stdio: 'ignore' }).status === 0;
}

export const REDIS_SKIP_MESSAGE = 'redis-server is not installed (apt-get install -y redis-server): Redis tests skipped';

/** A free loopback TCP port (also used by the benchmarks). */
export function freePort(): Promise<number> {
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

export async function startRedis(): Promise<RunningRedis> {
  const port = await freePort();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'oxds-redis-'));
  const pidFile = path.join(dir, 'redis.pid');
  const launch = async (): Promise<void> => {
    execFileSync('redis-server', [
      '--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no',
      '--daemonize', 'yes', '--pidfile', pidFile, '--dir', dir, '--logfile', path.join(dir, 'redis.log'),
    ]);
    for (let i = 0; i < 100; i++) {
      if (await ping(port)) return;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`redis-server did not start on ${port}`);
  };
  const pid = (): number | undefined => {
    try {
      return Number(fs.readFileSync(pidFile, 'utf8').trim()) || undefined;
    } catch {
      return undefined;
    }
  };
  const waitDown = async (): Promise<void> => {
    for (let i = 0; i < 100; i++) {
      if (!(await ping(port))) return;
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  await launch();
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    async stop() {
      const p = pid();
      if (p) {
        try {
          process.kill(p, 'SIGTERM');
        } catch {
          /* already gone */
        }
      }
      await waitDown();
      fs.rmSync(dir, { recursive: true, force: true });
    },
    kill() {
      const p = pid();
      if (p) {
        try {
          process.kill(p, 'SIGKILL');
        } catch {
          /* already gone */
        }
      }
      try {
        fs.rmSync(pidFile, { force: true });
      } catch {
        /* ignore */
      }
    },
    async restart() {
      await waitDown();
      await launch();
    },
  };
}
