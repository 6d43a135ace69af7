// What a rebuild reports about the configuration: audit events for objects added / changed /
// removed since the last build, and config problems logged once (when they appear and resolve).
import type { Logger } from 'pino';
import { diffObjectsSteps, sameContent, type Audit } from '../audit.js';
import { runSteps, type Steps } from '../model/steps.js';
import { formatError } from '../pipeline.js';
import type { ConfigError, StoredObject } from '../model/types.js';

/** At most this many events per kind of change and build; the rest is one `.more` event with the count. */
const MAX_EVENTS_PER_KIND = 100;

/** One audit event per object added / changed / removed since the last build. */
export class ConfigChangeAudit {
  /** The objects of the last build, by key: fingerprinted only when one is replaced by another object. */
  private last: Map<string, StoredObject> | undefined;

  constructor(
    private readonly audit: Audit,
    /** What the first event says the configuration was loaded from. */
    private readonly sourceName: string,
  ) {}

  record(objects: readonly StoredObject[]): void {
    runSteps(this.recordSteps(objects));
  }

  /** record, the objects compared in batches (the server's rebuilds). */
  *recordSteps(objects: readonly StoredObject[]): Steps {
    const next = new Map(objects.map((o) => [o.key, o]));
    if (this.last === undefined) {
      this.audit.emit('config.loaded', { objects: next.size, source: this.sourceName });
    } else {
      const d = yield* diffObjectsSteps(this.last, next, sameContent);
      const origin = new Map(objects.map((o) => [o.key, o.origin.file]));
      for (const [type, keys] of [
        ['config.object.added', d.added],
        ['config.object.changed', d.changed],
        ['config.object.removed', d.removed],
      ] as const) {
        for (const key of keys.slice(0, MAX_EVENTS_PER_KIND))
          this.audit.emit(type, { object: key, file: origin.get(key) });
        if (keys.length > MAX_EVENTS_PER_KIND)
          this.audit.emit(`${type}.more`, { count: keys.length - MAX_EVENTS_PER_KIND });
      }
    }
    this.last = next;
  }
}

/** Logs each config problem once (when it appears), not on every rebuild. */
export class ProblemLog {
  private last = new Set<string>();

  constructor(private readonly logger: Logger) {}

  record(errors: readonly ConfigError[]): void {
    const lines = new Set(errors.map(formatError));
    for (const l of lines) if (!this.last.has(l)) this.logger.warn({ problem: l }, 'config problem');
    for (const l of this.last) if (!lines.has(l)) this.logger.info({ problem: l }, 'config problem resolved');
    this.last = lines;
  }
}
