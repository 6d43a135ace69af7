// Embedded quota counters (the default when no Redis is configured, and the local fallback of
// FailoverQuotaStore). Same semantics as the Redis store: fixed 10 s throttling window
// (≤ throttlingQuota × 10 calls), daily / monthly counters reset at local midnight / the 1st.
import type { ApiKeyQuotas } from '../../model/types.js';
import type { QuotaResult, QuotaStore } from '../types.js';
import { QuotaCalendar, THROTTLING_WINDOW_MS, windowStartOf } from './calendar.js';

interface Counters {
  winStart: number;
  winCount: number;
  dayId: string;
  dayCount: number;
  monthId: string;
  monthCount: number;
}

export interface MemoryQuotaStoreOptions {
  /** IANA time zone for daily/monthly resets (default UTC). */
  timeZone?: string;
  /** Upper bound of tracked client ids (default 1,000,000); beyond it stale then oldest entries go. */
  maxEntries?: number;
  /** Answers carry this `degraded` flag (the failover store's local counters set true). */
  degraded?: boolean;
}

const SWEEP_EVERY_MS = 60_000;

export class MemoryQuotaStore implements QuotaStore {
  private readonly calendar: QuotaCalendar;
  private readonly maxEntries: number;
  private readonly degraded: boolean;
  private readonly counters = new Map<string, Counters>();
  private lastSweep = 0;

  constructor(opts: MemoryQuotaStoreOptions = {}) {
    this.calendar = new QuotaCalendar(opts.timeZone ?? 'UTC');
    this.maxEntries = opts.maxEntries ?? 1_000_000;
    this.degraded = opts.degraded ?? false;
  }

  get size(): number {
    return this.counters.size;
  }

  consume(clientId: string, quotas: ApiKeyQuotas, nowMs: number): Promise<QuotaResult> {
    return Promise.resolve(this.consumeSync(clientId, quotas, nowMs));
  }

  peek(clientId: string, quotas: ApiKeyQuotas, nowMs: number): Promise<Omit<QuotaResult, 'allowed' | 'exceeded'>> {
    const c = this.current(clientId, nowMs, false);
    return Promise.resolve({
      dailyRemaining: Math.max(0, quotas.dailyQuota - (c?.dayCount ?? 0)),
      monthlyRemaining: Math.max(0, quotas.monthlyQuota - (c?.monthCount ?? 0)),
      windowCalls: c?.winCount ?? 0,
      degraded: this.degraded,
    });
  }

  /** Synchronous core of `consume` (no I/O). */
  consumeSync(clientId: string, quotas: ApiKeyQuotas, nowMs: number): QuotaResult {
    if (nowMs - this.lastSweep >= SWEEP_EVERY_MS || this.counters.size > this.maxEntries) this.sweep(nowMs);
    const c = this.current(clientId, nowMs, true)!;
    let exceeded: QuotaResult['exceeded'];
    if (c.winCount >= quotas.throttlingQuota * 10) exceeded = 'throttling';
    else if (c.dayCount >= quotas.dailyQuota) exceeded = 'daily';
    else if (c.monthCount >= quotas.monthlyQuota) exceeded = 'monthly';
    if (exceeded) {
      return {
        allowed: false,
        exceeded,
        dailyRemaining: Math.max(0, quotas.dailyQuota - c.dayCount),
        monthlyRemaining: Math.max(0, quotas.monthlyQuota - c.monthCount),
        windowCalls: c.winCount,
        degraded: this.degraded,
      };
    }
    c.winCount++;
    c.dayCount++;
    c.monthCount++;
    return {
      allowed: true,
      dailyRemaining: Math.max(0, quotas.dailyQuota - c.dayCount),
      monthlyRemaining: Math.max(0, quotas.monthlyQuota - c.monthCount),
      windowCalls: c.winCount,
      degraded: this.degraded,
    };
  }

  /** Counters of the current periods (older periods reset to zero). */
  private current(clientId: string, nowMs: number, create: boolean): Counters | undefined {
    const p = this.calendar.periods(nowMs);
    const win = windowStartOf(nowMs);
    let c = this.counters.get(clientId);
    if (!c) {
      if (!create) return undefined;
      c = { winStart: win, winCount: 0, dayId: p.dayId, dayCount: 0, monthId: p.monthId, monthCount: 0 };
      this.counters.set(clientId, c);
      return c;
    }
    if (c.winStart !== win) {
      c.winStart = win;
      c.winCount = 0;
    }
    if (c.dayId !== p.dayId) {
      c.dayId = p.dayId;
      c.dayCount = 0;
    }
    if (c.monthId !== p.monthId) {
      c.monthId = p.monthId;
      c.monthCount = 0;
    }
    return c;
  }

  /**
   * Drops entries whose every counter belongs to a past period (they would read as zero), then,
   * above `maxEntries`, entries of past days, then the oldest inserted (their counts are lost).
   */
  sweep(nowMs: number): void {
    this.lastSweep = nowMs;
    const p = this.calendar.periods(nowMs);
    const win = windowStartOf(nowMs);
    for (const [k, c] of this.counters) {
      if (c.monthId !== p.monthId && c.winStart + THROTTLING_WINDOW_MS <= win) this.counters.delete(k);
    }
    if (this.counters.size <= this.maxEntries) return;
    // Evict down to 90 % so that a full map does not sweep on every call.
    const target = Math.floor(this.maxEntries * 0.9);
    for (const [k, c] of this.counters) {
      if (this.counters.size <= target) return;
      if (c.dayId !== p.dayId && c.winStart !== win) this.counters.delete(k);
    }
    for (const k of this.counters.keys()) {
      if (this.counters.size <= target) return;
      this.counters.delete(k);
    }
  }

  close(): Promise<void> {
    this.counters.clear();
    return Promise.resolve();
  }
}
