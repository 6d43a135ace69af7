// Quota store factory: embedded memory counters by default, Redis (behind the failover wrapper)
// when a URL is configured.
import type { AuthzHooks, QuotaStore } from '../types.js';
import { FailoverQuotaStore, type FailMode } from './failover.js';
import { MemoryQuotaStore } from './memory.js';
import { RedisQuotaStore } from './redis.js';

export { QuotaCalendar, THROTTLING_WINDOW_MS, windowStartOf, type Periods } from './calendar.js';
export { MemoryQuotaStore, type MemoryQuotaStoreOptions } from './memory.js';
export {
  RedisQuotaStore,
  parseRedisUrl,
  connectRedis,
  QUOTA_LUA,
  type RedisTarget,
  type RedisClient,
  type RedisQuotaStoreOptions,
} from './redis.js';
export { FailoverQuotaStore, type FailMode, type FailoverQuotaStoreOptions } from './failover.js';

export interface CreateQuotaStoreOptions {
  /** `redis://host:port[/db]`, `redis+cluster://h1:p1,h2:p2`, `redis+sentinel://h1:p1,h2:p2/master`. */
  redisUrl?: string;
  /** What to do when Redis cannot answer (default `open`: local counters, degraded). */
  failMode?: FailMode;
  /** IANA time zone for daily/monthly resets (default UTC). */
  timeZone?: string;
  hooks?: AuthzHooks;
  /** Redis command timeout (ms, default 50). */
  commandTimeoutMs?: number;
  /** Concurrent checks coalesced into one Redis script call (default on, at most `maxBatch` = 64). */
  batching?: boolean;
  maxBatch?: number;
  logger?: { warn(obj: object, msg?: string): void; info(obj: object, msg?: string): void };
}

export function createQuotaStore(opts: CreateQuotaStoreOptions = {}): QuotaStore {
  const timeZone = opts.timeZone ?? 'UTC';
  if (!opts.redisUrl) return new MemoryQuotaStore({ timeZone });
  let lastErrorLog = 0;
  const redis = new RedisQuotaStore({
    url: opts.redisUrl,
    timeZone,
    commandTimeoutMs: opts.commandTimeoutMs ?? 50,
    ...(opts.batching !== undefined ? { batching: opts.batching } : {}),
    ...(opts.maxBatch !== undefined ? { maxBatch: opts.maxBatch } : {}),
    onError: (err) => {
      // ioredis emits one error per reconnect attempt: log at most every 10 s.
      const now = Date.now();
      if (now - lastErrorLog > 10_000) {
        lastErrorLog = now;
        opts.logger?.warn({ err: err.message }, 'quota store (redis) connection error');
      }
    },
  });
  const f: ConstructorParameters<typeof FailoverQuotaStore>[1] = { failMode: opts.failMode ?? 'open', timeZone };
  if (opts.hooks) f.hooks = opts.hooks;
  if (opts.logger) f.logger = opts.logger;
  return new FailoverQuotaStore(redis, f);
}
