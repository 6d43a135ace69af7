// Shared quota counters in Redis: at most ONE round trip per check (a Lua script run with EVALSHA,
// EVAL on NOSCRIPT — ioredis `defineCommand`), atomic check-then-count of the three counters.
// Checks issued while the event loop handles one batch of I/O are coalesced (flushed from
// `setImmediate`, at most `maxBatch` per script call) into ONE script call that processes them in
// order (QUOTA_BATCH_LUA): one command to serialise, send, run and parse instead of N. Redis
// Cluster: a script may only touch keys of one slot, so there a batch holds the checks of one
// client id only (its keys share the `{clientId}` hash tag).
//
// Keys (hash-tagged so the three keys of a client live in one Redis Cluster slot):
//   oxds:{<clientId>}:quota:second:<windowStartMs>   PEXPIREAT windowStart + 10 s
//   oxds:{<clientId>}:quota:daily:<YYYY-MM-DD>        PEXPIREAT next local midnight
//   oxds:{<clientId>}:quota:monthly:<YYYY-MM>         PEXPIREAT next local 1st 00:00
// The period is part of the key, so a clock a little off between instances never resets or
// extends another period; all instances must share the configured time zone.
import { createRequire } from 'node:module';
import type { Cluster, ClusterOptions, Redis, RedisOptions } from 'ioredis';
import type { ApiKeyQuotas } from '../../model/types.js';
import type { QuotaResult, QuotaStore } from '../types.js';
import { QuotaCalendar, THROTTLING_WINDOW_MS, windowStartOf, type Periods } from './calendar.js';

/**
 * KEYS: second, daily, monthly counters.
 * ARGV: 1 window limit (throttlingQuota × 10), 2 dailyQuota, 3 monthlyQuota,
 *       4 window expiry (epoch ms), 5 daily expiry, 6 monthly expiry, 7 '1' consume | '0' peek.
 * Returns {exceeded (0 none, 1 throttling, 2 daily, 3 monthly), second, daily, monthly} — the
 * counts after counting when allowed, the unchanged counts otherwise (a denied call is not counted).
 */
export const QUOTA_LUA = `
local s = tonumber(redis.call('GET', KEYS[1]) or '0')
local d = tonumber(redis.call('GET', KEYS[2]) or '0')
local m = tonumber(redis.call('GET', KEYS[3]) or '0')
if ARGV[7] ~= '1' then return {0, s, d, m} end
if s >= tonumber(ARGV[1]) then return {1, s, d, m} end
if d >= tonumber(ARGV[2]) then return {2, s, d, m} end
if m >= tonumber(ARGV[3]) then return {3, s, d, m} end
s = redis.call('INCR', KEYS[1])
if s == 1 then redis.call('PEXPIREAT', KEYS[1], ARGV[4]) end
d = redis.call('INCR', KEYS[2])
if d == 1 then redis.call('PEXPIREAT', KEYS[2], ARGV[5]) end
m = redis.call('INCR', KEYS[3])
if m == 1 then redis.call('PEXPIREAT', KEYS[3], ARGV[6]) end
return {0, s, d, m}
`;

/**
 * The batched form of QUOTA_LUA (consume only): KEYS = N × (second, daily, monthly),
 * ARGV = N × (window limit, dailyQuota, monthlyQuota, window expiry, daily expiry, monthly expiry).
 * Returns N × {exceeded, second, daily, monthly}, flat. The checks are applied in order within
 * the one atomic script run, so several checks of the same client in a batch count like
 * consecutive single calls.
 */
export const QUOTA_BATCH_LUA = `
local out = {}
local n = #KEYS / 3
for i = 0, n - 1 do
  local k1, k2, k3 = KEYS[3 * i + 1], KEYS[3 * i + 2], KEYS[3 * i + 3]
  local a = 6 * i
  local s = tonumber(redis.call('GET', k1) or '0')
  local d = tonumber(redis.call('GET', k2) or '0')
  local m = tonumber(redis.call('GET', k3) or '0')
  local ex = 0
  if s >= tonumber(ARGV[a + 1]) then ex = 1
  elseif d >= tonumber(ARGV[a + 2]) then ex = 2
  elseif m >= tonumber(ARGV[a + 3]) then ex = 3
  else
    s = redis.call('INCR', k1)
    if s == 1 then redis.call('PEXPIREAT', k1, ARGV[a + 4]) end
    d = redis.call('INCR', k2)
    if d == 1 then redis.call('PEXPIREAT', k2, ARGV[a + 5]) end
    m = redis.call('INCR', k3)
    if m == 1 then redis.call('PEXPIREAT', k3, ARGV[a + 6]) end
  end
  local o = 4 * i
  out[o + 1] = ex
  out[o + 2] = s
  out[o + 3] = d
  out[o + 4] = m
end
return out
`;

const EXCEEDED = [undefined, 'throttling', 'daily', 'monthly'] as const;

export type RedisClient = Redis | Cluster;

export type RedisTarget =
  | { kind: 'standalone'; options: RedisOptions }
  | { kind: 'sentinel'; options: RedisOptions }
  | { kind: 'cluster'; nodes: Array<{ host: string; port: number }>; options: ClusterOptions };

function hostPort(s: string, defPort: number): { host: string; port: number } {
  const v6 = /^\[([^\]]+)\](?::(\d+))?$/.exec(s);
  if (v6) return { host: v6[1]!, port: v6[2] ? Number(v6[2]) : defPort };
  const i = s.lastIndexOf(':');
  if (i < 0) return { host: s || '127.0.0.1', port: defPort };
  const port = Number(s.slice(i + 1));
  if (!Number.isInteger(port) || port <= 0 || port > 65535) throw new Error(`invalid port in '${s}'`);
  return { host: s.slice(0, i) || '127.0.0.1', port };
}

/**
 * Parses a quota-store URL:
 *  - `redis://[user:pass@]host:port[/db]` (`rediss://` for TLS)
 *  - `redis+cluster://[user:pass@]h1:p1,h2:p2` — Redis Cluster seed nodes
 *  - `redis+sentinel://[user:pass@]h1:p1,h2:p2/mastername[/db]` — Sentinel (the password is the
 *    master's; `?sentinelPassword=` for the sentinels themselves)
 */
export function parseRedisUrl(url: string): RedisTarget {
  const m = /^(rediss?)(\+cluster|\+sentinel)?:\/\/(?:([^@/]*)@)?([^/?]*)(\/[^?]*)?(?:\?(.*))?$/.exec(url);
  if (!m)
    throw new Error(
      `invalid Redis URL '${url}' (expected redis://host:port[/db], redis+cluster://h1:p1,h2:p2 or ` +
        `redis+sentinel://h1:p1,h2:p2/master)`,
    );
  const tls = m[1] === 'rediss';
  const flavour = m[2];
  const userinfo = m[3];
  const hosts = (m[4] ?? '').split(',').filter((h) => h.length > 0);
  const segments = (m[5] ?? '')
    .split('/')
    .filter((s) => s.length > 0)
    .map(decodeURIComponent);
  const query = new URLSearchParams(m[6] ?? '');
  const auth: RedisOptions = {};
  if (userinfo !== undefined) {
    const j = userinfo.indexOf(':');
    const user = decodeURIComponent(j < 0 ? userinfo : userinfo.slice(0, j));
    const pass = j < 0 ? undefined : decodeURIComponent(userinfo.slice(j + 1));
    if (pass !== undefined) {
      if (user) auth.username = user;
      auth.password = pass;
    } else if (user) auth.password = user; // redis://secret@host
  }
  if (tls) auth.tls = {};
  const parseDb = (s: string | undefined): number | undefined => {
    if (s === undefined) return undefined;
    const n = Number(s);
    if (!Number.isInteger(n) || n < 0) throw new Error(`invalid Redis db '${s}' in '${url}'`);
    return n;
  };
  if (hosts.length === 0) hosts.push('127.0.0.1:6379');
  if (flavour === '+cluster') {
    if (segments.length > 0) throw new Error(`Redis Cluster URLs take no db/path: '${url}'`);
    return { kind: 'cluster', nodes: hosts.map((h) => hostPort(h, 6379)), options: { redisOptions: auth } };
  }
  if (flavour === '+sentinel') {
    const name = segments[0];
    if (!name)
      throw new Error(`Redis Sentinel URL needs the master name: redis+sentinel://h1:p1,h2:p2/mymaster ('${url}')`);
    const db = parseDb(segments[1]);
    const opts: RedisOptions = { ...auth, sentinels: hosts.map((h) => hostPort(h, 26379)), name };
    if (db !== undefined) opts.db = db;
    const sp = query.get('sentinelPassword');
    if (sp) opts.sentinelPassword = sp;
    return { kind: 'sentinel', options: opts };
  }
  if (hosts.length > 1) throw new Error(`several hosts need redis+cluster:// or redis+sentinel:// ('${url}')`);
  const { host, port } = hostPort(hosts[0]!, 6379);
  const opts: RedisOptions = { ...auth, host, port };
  const db = parseDb(segments[0]);
  if (db !== undefined) opts.db = db;
  return { kind: 'standalone', options: opts };
}

export interface RedisConnectOptions {
  /** Per-command timeout (ms); default 50. */
  commandTimeoutMs?: number;
  /** ioredis auto-pipelining (default true). */
  autoPipelining?: boolean;
  /**
   * Coalesce concurrent `consume` calls into one script call (default true); at most this many
   * checks per call (`maxBatch`, default 64).
   */
  batching?: boolean;
  maxBatch?: number;
  /** Max reconnect back-off (ms); default 1000. */
  maxReconnectDelayMs?: number;
  onError?: (err: Error) => void;
}

let ioredisModule: typeof import('ioredis') | undefined;
/** ioredis, loaded on first use: a server without Redis quotas never pays for importing it. */
function ioredis(): typeof import('ioredis') {
  ioredisModule ??= createRequire(import.meta.url)('ioredis') as typeof import('ioredis');
  return ioredisModule;
}

/** An ioredis client tuned for the hot path: no offline queue, no retries, short timeouts. */
export function connectRedis(url: string, o: RedisConnectOptions = {}): RedisClient {
  const target = parseRedisUrl(url);
  const maxDelay = o.maxReconnectDelayMs ?? 1000;
  const common: RedisOptions = {
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    commandTimeout: o.commandTimeoutMs ?? 50,
    connectTimeout: 2000,
    // Commands issued in the same tick leave in one socket write (measured ~+20 % checks/s under load).
    enableAutoPipelining: o.autoPipelining ?? true,
    retryStrategy: (times: number) => Math.min(times * 50, maxDelay),
  };
  let client: RedisClient;
  if (target.kind === 'cluster') {
    client = new (ioredis().Cluster)(target.nodes, {
      ...target.options,
      enableOfflineQueue: false,
      enableAutoPipelining: o.autoPipelining ?? true,
      clusterRetryStrategy: (times: number) => Math.min(times * 50, maxDelay),
      redisOptions: { ...common, ...target.options.redisOptions },
    });
  } else {
    client = new (ioredis().Redis)({ ...common, ...target.options });
  }
  client.on('error', (err: Error) => o.onError?.(err));
  return client;
}

type QuotaCommand = (
  k1: string,
  k2: string,
  k3: string,
  ...argv: string[]
) => Promise<[number, number, number, number]>;
type QuotaBatchCommand = (numKeys: number, ...keysThenArgv: string[]) => Promise<number[]>;

/** Keys and arguments of one client for one throttling window (reused by the calls of that window). */
interface Prepared {
  win: number;
  periods: Periods;
  quotas: ApiKeyQuotas;
  keys: [string, string, string];
  argv: [string, string, string, string, string, string];
}

/** One pending `consume` of a batch. */
interface Pending {
  clientId: string;
  quotas: ApiKeyQuotas;
  prep: Prepared;
  resolve: (r: QuotaResult) => void;
  reject: (e: unknown) => void;
}

const PREPARED_MAX = 10_000;

function toResult(quotas: ApiKeyQuotas, ex: number, s: number, d: number, m: number): QuotaResult {
  const exceeded = EXCEEDED[ex];
  const r: QuotaResult = {
    allowed: exceeded === undefined,
    dailyRemaining: Math.max(0, quotas.dailyQuota - d),
    monthlyRemaining: Math.max(0, quotas.monthlyQuota - m),
    windowCalls: s,
    degraded: false,
  };
  if (exceeded) r.exceeded = exceeded;
  return r;
}

export interface RedisQuotaStoreOptions extends RedisConnectOptions {
  /** `redis://...` (see parseRedisUrl); ignored when `client` is given. */
  url?: string;
  client?: RedisClient;
  timeZone?: string;
  /** Key prefix (default `oxds`). */
  prefix?: string;
}

export class RedisQuotaStore implements QuotaStore {
  readonly client: RedisClient;
  private readonly calendar: QuotaCalendar;
  private readonly prefix: string;
  private readonly ownsClient: boolean;
  private readonly cmd: QuotaCommand;
  private readonly batchCmd: QuotaBatchCommand;
  private readonly batching: boolean;
  private readonly maxBatch: number;
  private readonly cluster: boolean;
  private pending: Pending[] = [];
  private readonly prepared = new Map<string, Prepared>();
  private flushScheduled = false;
  /** Script calls sent by `consume` and the checks they carried (bench/diagnostics). */
  readonly stats = { calls: 0, checks: 0 };

  constructor(opts: RedisQuotaStoreOptions) {
    if (opts.client) {
      this.client = opts.client;
      this.ownsClient = false;
    } else {
      if (!opts.url) throw new Error('RedisQuotaStore needs a url or a client');
      this.client = connectRedis(opts.url, opts);
      this.ownsClient = true;
    }
    this.calendar = new QuotaCalendar(opts.timeZone ?? 'UTC');
    this.prefix = opts.prefix ?? 'oxds';
    this.client.defineCommand('oxdsQuota', { numberOfKeys: 3, lua: QUOTA_LUA });
    this.cmd = (this.client as unknown as { oxdsQuota: QuotaCommand }).oxdsQuota.bind(this.client);
    this.client.defineCommand('oxdsQuotaBatch', { lua: QUOTA_BATCH_LUA });
    this.batchCmd = (this.client as unknown as { oxdsQuotaBatch: QuotaBatchCommand }).oxdsQuotaBatch.bind(this.client);
    this.batching = opts.batching ?? true;
    this.maxBatch = Math.max(1, opts.maxBatch ?? 64);
    this.cluster = this.client instanceof ioredis().Cluster;
    this.flush = this.flush.bind(this);
  }

  /** true when commands can be sent now (connected, ready-checked). */
  isReady(): boolean {
    return this.client.status === 'ready';
  }

  /** Resolves once connected (rejects after `timeoutMs`). */
  ready(timeoutMs = 5000): Promise<void> {
    if (this.isReady()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => {
        this.client.off('ready', onReady);
        reject(new Error('Redis not ready'));
      }, timeoutMs);
      const onReady = (): void => {
        clearTimeout(t);
        resolve();
      };
      this.client.once('ready', onReady);
    });
  }

  keys(clientId: string, nowMs: number): { second: string; daily: string; monthly: string } {
    const p = this.calendar.periods(nowMs);
    const base = `${this.prefix}:{${clientId}}:quota:`;
    return {
      second: `${base}second:${windowStartOf(nowMs)}`,
      daily: `${base}daily:${p.dayId}`,
      monthly: `${base}monthly:${p.monthId}`,
    };
  }

  private run(
    clientId: string,
    quotas: ApiKeyQuotas,
    nowMs: number,
    consume: boolean,
  ): Promise<[number, number, number, number]> {
    const p = this.calendar.periods(nowMs);
    const win = windowStartOf(nowMs);
    const base = `${this.prefix}:{${clientId}}:quota:`;
    return this.cmd(
      `${base}second:${win}`,
      `${base}daily:${p.dayId}`,
      `${base}monthly:${p.monthId}`,
      String(quotas.throttlingQuota * 10),
      String(quotas.dailyQuota),
      String(quotas.monthlyQuota),
      String(win + THROTTLING_WINDOW_MS),
      String(p.dayEndMs),
      String(p.monthEndMs),
      consume ? '1' : '0',
    );
  }

  consume(clientId: string, quotas: ApiKeyQuotas, nowMs: number): Promise<QuotaResult> {
    if (!this.batching) {
      this.stats.calls++;
      this.stats.checks++;
      return this.run(clientId, quotas, nowMs, true).then(([ex, s, d, m]) => toResult(quotas, ex, s, d, m));
    }
    const prep = this.prepare(clientId, quotas, nowMs);
    return new Promise<QuotaResult>((resolve, reject) => {
      this.pending.push({ clientId, quotas, prep, resolve, reject });
      if (!this.flushScheduled) {
        this.flushScheduled = true;
        setImmediate(this.flush);
      }
    });
  }

  /** Keys + script arguments, built once per client, window and quotas object. */
  private prepare(clientId: string, quotas: ApiKeyQuotas, nowMs: number): Prepared {
    const periods = this.calendar.periods(nowMs);
    const win = windowStartOf(nowMs);
    const old = this.prepared.get(clientId);
    if (old !== undefined && old.win === win && old.periods === periods && old.quotas === quotas) return old;
    const base = `${this.prefix}:{${clientId}}:quota:`;
    const prep: Prepared = {
      win,
      periods,
      quotas,
      keys: [`${base}second:${win}`, `${base}daily:${periods.dayId}`, `${base}monthly:${periods.monthId}`],
      argv: [
        String(quotas.throttlingQuota * 10),
        String(quotas.dailyQuota),
        String(quotas.monthlyQuota),
        String(win + THROTTLING_WINDOW_MS),
        String(periods.dayEndMs),
        String(periods.monthEndMs),
      ],
    };
    if (this.prepared.size >= PREPARED_MAX) this.prepared.clear();
    this.prepared.set(clientId, prep);
    return prep;
  }

  /** Sends the pending checks: batches of ≤ maxBatch (per client id on Redis Cluster). */
  private flush(): void {
    this.flushScheduled = false;
    const all = this.pending;
    if (all.length === 0) return;
    this.pending = [];
    if (!this.cluster) {
      for (let i = 0; i < all.length; i += this.maxBatch) this.send(all.slice(i, i + this.maxBatch));
      return;
    }
    const byClient = new Map<string, Pending[]>();
    for (const x of all) {
      const g = byClient.get(x.clientId);
      if (g === undefined) byClient.set(x.clientId, [x]);
      else g.push(x);
    }
    for (const g of byClient.values())
      for (let i = 0; i < g.length; i += this.maxBatch) this.send(g.slice(i, i + this.maxBatch));
  }

  private send(batch: Pending[]): void {
    this.stats.calls++;
    this.stats.checks += batch.length;
    if (batch.length === 1) {
      const x = batch[0]!;
      let one: Promise<[number, number, number, number]>;
      try {
        const { keys, argv } = x.prep;
        one = this.cmd(keys[0], keys[1], keys[2], argv[0], argv[1], argv[2], argv[3], argv[4], argv[5], '1');
      } catch (err) {
        x.reject(err);
        return;
      }
      one.then(([ex, s, d, m]) => x.resolve(toResult(x.quotas, ex, s, d, m)), x.reject);
      return;
    }
    const n = batch.length;
    const args: string[] = new Array<string>(9 * n);
    for (let i = 0; i < n; i++) {
      const { keys, argv } = batch[i]!.prep;
      args[3 * i] = keys[0];
      args[3 * i + 1] = keys[1];
      args[3 * i + 2] = keys[2];
      const a = 3 * n + 6 * i;
      for (let j = 0; j < 6; j++) args[a + j] = argv[j]!;
    }
    let cmd: Promise<number[]>;
    try {
      cmd = this.batchCmd(3 * n, ...args);
    } catch (err) {
      for (const x of batch) x.reject(err);
      return;
    }
    cmd.then(
      (out) => {
        if (!Array.isArray(out) || out.length !== 4 * n) {
          const err = new Error(
            `quota batch script returned ${Array.isArray(out) ? out.length : typeof out} values for ${n} checks`,
          );
          for (const x of batch) x.reject(err);
          return;
        }
        for (let i = 0; i < n; i++) {
          const o = 4 * i;
          batch[i]!.resolve(toResult(batch[i]!.quotas, out[o]!, out[o + 1]!, out[o + 2]!, out[o + 3]!));
        }
      },
      (err: unknown) => {
        for (const x of batch) x.reject(err);
      },
    );
  }

  async peek(
    clientId: string,
    quotas: ApiKeyQuotas,
    nowMs: number,
  ): Promise<Omit<QuotaResult, 'allowed' | 'exceeded'>> {
    const [, s, d, m] = await this.run(clientId, quotas, nowMs, false);
    return {
      dailyRemaining: Math.max(0, quotas.dailyQuota - d),
      monthlyRemaining: Math.max(0, quotas.monthlyQuota - m),
      windowCalls: s,
      degraded: false,
    };
  }

  /**
   * QUIT, bounded: ioredis can leave QUIT's promise pending forever (a Cluster or Sentinel
   * client whose connections were just replaced), so after `timeoutMs` the sockets are dropped.
   */
  async close(timeoutMs = 1000): Promise<void> {
    if (!this.ownsClient) return;
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), timeoutMs);
    });
    try {
      if ((await Promise.race([this.client.quit(), timedOut])) === 'timeout') this.client.disconnect();
    } catch {
      this.client.disconnect();
    } finally {
      clearTimeout(timer);
    }
  }
}
