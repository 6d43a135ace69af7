// Audit events: configuration changes and suspicious activity, as structured JSON lines (pino,
// `audit: true`) and optionally to a file (JSON lines) or a webhook (batched POSTs).
import fs from 'node:fs';
import { hash } from 'node:crypto';
import type { Logger } from 'pino';
import type { AuthzHooks } from './authz/types.js';
import type { StoredObject } from './model/types.js';
import { eachBatched, runSteps, type Steps } from './model/steps.js';

export interface AuditEvent {
  /** e.g. `config.object.added`, `security.repeated_bad_secrets`, `quota.exhausted` */
  type: string;
  at: string;
  [field: string]: unknown;
}

export interface AuditSink {
  write(e: AuditEvent): void;
  close(): Promise<void>;
}

/** Appends one JSON line per event. */
export function fileSink(file: string): AuditSink {
  const stream = fs.createWriteStream(file, { flags: 'a', mode: 0o600 });
  stream.on('error', () => undefined);
  return {
    write: (e) => void stream.write(`${JSON.stringify(e)}\n`),
    close: () => new Promise((resolve) => stream.end(() => resolve())),
  };
}

/**
 * POSTs JSON arrays of events, batched every `flushMs`; at most `maxQueue` events wait (older
 * ones are dropped and counted) so a dead webhook never grows memory.
 */
export function webhookSink(
  url: string,
  opts: { flushMs?: number; maxQueue?: number; timeoutMs?: number; onError?: (err: unknown) => void } = {},
): AuditSink & { dropped(): number } {
  let queue: AuditEvent[] = [];
  let dropped = 0;
  let inflight: Promise<void> = Promise.resolve();
  const maxQueue = opts.maxQueue ?? 10_000;
  const flush = (): Promise<void> => {
    if (queue.length === 0) return inflight;
    const batch = queue;
    queue = [];
    inflight = inflight.then(async () => {
      try {
        const res = await fetch(url, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify(batch),
          signal: AbortSignal.timeout(opts.timeoutMs ?? 5000),
        });
        await res.arrayBuffer();
        if (!res.ok) throw new Error(`audit webhook answered ${res.status}`);
      } catch (err) {
        opts.onError?.(err);
      }
    });
    return inflight;
  };
  const timer = setInterval(() => void flush(), opts.flushMs ?? 1000);
  timer.unref();
  return {
    write(e) {
      if (queue.length >= maxQueue) {
        queue.shift();
        dropped++;
      }
      queue.push(e);
    },
    async close() {
      clearInterval(timer);
      await flush();
    },
    dropped: () => dropped,
  };
}

export class Audit {
  constructor(
    private readonly logger: Logger,
    private readonly sinks: AuditSink[] = [],
    private readonly now: () => number = Date.now,
  ) {}

  emit(type: string, fields: Record<string, unknown> = {}): void {
    const e: AuditEvent = { type, at: new Date(this.now()).toISOString(), ...fields };
    this.logger.info({ audit: true, ...e }, type);
    for (const s of this.sinks) {
      try {
        s.write(e);
      } catch {
        /* a sink never breaks the caller */
      }
    }
  }

  async close(): Promise<void> {
    await Promise.all(this.sinks.map((s) => s.close()));
  }
}

/** Content fingerprint of an object as the user wrote it (status and resourceVersion ignored). */
export function objectFingerprint(o: StoredObject): string {
  const { status: _status, ...rest } = o.object;
  const meta = { ...rest.metadata };
  delete meta.resourceVersion;
  return hash('sha1', JSON.stringify({ ...rest, metadata: meta }), 'hex');
}

/**
 * Whether two stored objects have the same content: the same object (a source keeps the objects of
 * an unchanged file or resource) without hashing, else by fingerprint.
 */
export function sameContent(a: StoredObject, b: StoredObject): boolean {
  return a === b || a.object === b.object || objectFingerprint(a) === objectFingerprint(b);
}

export interface ObjectChanges {
  added: string[];
  changed: string[];
  removed: string[];
}

/**
 * Which objects were added, changed or removed between two maps (key → fingerprint, or key →
 * object with `same` telling equal content apart).
 */
export function diffObjects<T>(
  prev: ReadonlyMap<string, T>,
  next: ReadonlyMap<string, T>,
  same: (a: T, b: T) => boolean = (a, b) => a === b,
): ObjectChanges {
  return runSteps(diffObjectsSteps(prev, next, same));
}

/** diffObjects, pausing between batches of objects (a rewritten file's objects are all fingerprinted). */
export function* diffObjectsSteps<T>(
  prev: ReadonlyMap<string, T>,
  next: ReadonlyMap<string, T>,
  same: (a: T, b: T) => boolean = (a, b) => a === b,
): Steps<ObjectChanges> {
  const out: ObjectChanges = { added: [], changed: [], removed: [] };
  yield* eachBatched(next, ([k, h]) => {
    const p = prev.get(k);
    if (p === undefined) out.added.push(k);
    else if (!same(p, h)) out.changed.push(k);
  });
  for (const k of prev.keys()) if (!next.has(k)) out.removed.push(k);
  return out;
}

/**
 * Authz hooks that turn suspicious decisions into audit events: alg confusion and internal
 * errors at once; bad secrets only when one source repeats them (`threshold` within `windowMs`,
 * then once per window); an exhausted quota once per client and window.
 */
export function auditAuthzHooks(
  audit: Audit,
  opts: { threshold?: number; windowMs?: number; now?: () => number } = {},
): AuthzHooks {
  const threshold = opts.threshold ?? 5;
  const windowMs = opts.windowMs ?? 60_000;
  const now = opts.now ?? Date.now;
  const badSecrets = new Map<string, { since: number; count: number; reported: boolean }>();
  const quotaReported = new Map<string, number>();
  const sweep = (t: number): void => {
    if (badSecrets.size > 10_000) for (const [k, v] of badSecrets) if (t - v.since > windowMs) badSecrets.delete(k);
    if (quotaReported.size > 10_000) for (const [k, v] of quotaReported) if (t - v > windowMs) quotaReported.delete(k);
  };
  return {
    onSuspicious(e) {
      if (e.kind === 'bad_secret' || e.kind === 'bad_jwt') {
        const t = now();
        sweep(t);
        const src = e.sourceIp ?? 'unknown';
        let s = badSecrets.get(src);
        if (!s || t - s.since > windowMs) {
          s = { since: t, count: 0, reported: false };
          badSecrets.set(src, s);
        }
        s.count++;
        if (s.count >= threshold && !s.reported) {
          s.reported = true;
          audit.emit('security.repeated_bad_secrets', {
            sourceIp: src,
            count: s.count,
            windowMs,
            clientId: e.clientId,
            descriptorId: e.descriptorId,
          });
        }
        return;
      }
      audit.emit(`security.${e.kind}`, { ...e });
    },
    onQuotaExceeded(clientId, which) {
      const t = now();
      sweep(t);
      const k = `${clientId}\u0000${which}`;
      const last = quotaReported.get(k);
      if (last !== undefined && t - last < windowMs) return;
      quotaReported.set(k, t);
      audit.emit('quota.exhausted', { clientId, quota: which });
    },
  };
}

/** Calls every hook set in order (metrics, audit, ...). */
export function combineAuthzHooks(...all: AuthzHooks[]): AuthzHooks {
  return {
    onCheck: (d, s) => all.forEach((h) => h.onCheck?.(d, s)),
    onQuotaExceeded: (c, w) => all.forEach((h) => h.onQuotaExceeded?.(c, w)),
    onQuotaStoreError: (m) => all.forEach((h) => h.onQuotaStoreError?.(m)),
    onSuspicious: (e) => all.forEach((h) => h.onSuspicious?.(e)),
  };
}
