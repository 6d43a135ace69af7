// Wraps the Redis store: when Redis cannot answer (not connected, error, or command timeout),
// either answer from local in-memory counters (fail-open, the default — docs/decisions.md: "Quota store outage";
// answers carry `degraded: true`) or throw QuotaStoreUnavailableError (fail-closed → 503). Every degraded
// decision is reported through `hooks.onQuotaStoreError`. Recovery is automatic: ioredis
// reconnects in the background and the next check after `ready` goes to Redis again.
import type { ApiKeyQuotas } from '../../model/types.js';
import { QuotaStoreUnavailableError, type AuthzHooks, type QuotaResult, type QuotaStore } from '../types.js';
import { MemoryQuotaStore } from './memory.js';
import type { RedisQuotaStore } from './redis.js';

export type FailMode = 'open' | 'closed';

interface MinimalLogger {
  warn(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
}

export interface FailoverQuotaStoreOptions {
  failMode?: FailMode;
  hooks?: AuthzHooks;
  timeZone?: string;
  logger?: MinimalLogger;
}

export class FailoverQuotaStore implements QuotaStore {
  readonly failMode: FailMode;
  readonly local: MemoryQuotaStore;
  private readonly hooks: AuthzHooks | undefined;
  private readonly logger: MinimalLogger | undefined;
  private degradedSince: number | undefined;

  constructor(
    readonly primary: RedisQuotaStore,
    opts: FailoverQuotaStoreOptions = {},
  ) {
    this.failMode = opts.failMode ?? 'open';
    this.hooks = opts.hooks;
    this.logger = opts.logger;
    this.local = new MemoryQuotaStore({ timeZone: opts.timeZone ?? 'UTC', degraded: true });
  }

  /**
   * Waits (at most `timeoutMs`) for the first connection to Redis, so a server does not start
   * answering from the fallback (fail-closed: 503s) while a healthy Redis is still connecting.
   * Never rejects: a Redis that stays down is the normal outage path.
   */
  async whenReady(timeoutMs = 3000): Promise<boolean> {
    try {
      await this.primary.ready(timeoutMs);
      return true;
    } catch {
      return false;
    }
  }

  /** true while the last answer came from the fallback. */
  get degraded(): boolean {
    return this.degradedSince !== undefined;
  }

  private fail(err: unknown): void {
    if (this.degradedSince === undefined) {
      this.degradedSince = Date.now();
      this.logger?.warn(
        { err: err instanceof Error ? err.message : String(err), failMode: this.failMode },
        'quota store unavailable',
      );
    }
    try {
      this.hooks?.onQuotaStoreError?.(this.failMode === 'open' ? 'fail-open' : 'fail-closed');
    } catch {
      /* a hook never breaks a decision */
    }
  }

  private ok(): void {
    if (this.degradedSince !== undefined) {
      this.logger?.info({ degradedMs: Date.now() - this.degradedSince }, 'quota store recovered');
      this.degradedSince = undefined;
    }
  }

  consume(clientId: string, quotas: ApiKeyQuotas, nowMs: number): Promise<QuotaResult> {
    // Hot path: no async function, no Error allocated unless Redis actually failed.
    if (this.primary.isReady()) {
      let p: Promise<QuotaResult>;
      try {
        p = this.primary.consume(clientId, quotas, nowMs);
      } catch (e) {
        return this.fallback(e, clientId, quotas, nowMs);
      }
      return p.then(
        (r) => {
          if (this.degradedSince !== undefined) this.ok();
          return r;
        },
        (e: unknown) => this.fallback(e, clientId, quotas, nowMs),
      );
    }
    return this.fallback(new Error('redis not ready'), clientId, quotas, nowMs);
  }

  private fallback(err: unknown, clientId: string, quotas: ApiKeyQuotas, nowMs: number): Promise<QuotaResult> {
    try {
      this.fail(err);
      if (this.failMode === 'closed') return Promise.reject(new QuotaStoreUnavailableError('quota store unavailable'));
      return Promise.resolve(this.local.consumeSync(clientId, quotas, nowMs));
    } catch (e) {
      return Promise.reject(e);
    }
  }

  async peek(
    clientId: string,
    quotas: ApiKeyQuotas,
    nowMs: number,
  ): Promise<Omit<QuotaResult, 'allowed' | 'exceeded'>> {
    if (this.primary.isReady()) {
      try {
        return await this.primary.peek(clientId, quotas, nowMs);
      } catch {
        /* fall through */
      }
    }
    if (this.failMode === 'closed') throw new QuotaStoreUnavailableError('quota store unavailable');
    return this.local.peek(clientId, quotas, nowMs);
  }

  async close(): Promise<void> {
    await Promise.all([this.primary.close(), this.local.close()]);
  }
}
