// Writes what `validate` reports back to the cluster:
//  * each proxy.otoroshi.io CR gets `status` = { state, observedGeneration, conditions[] } with one
//    condition: `Accepted` (True) when valid, `Invalid` (True) with reason = the first error code and
//    message = every problem (`field: message`, `; `-joined) when not;
//  * a Kubernetes Event (type Warning, reason = error code) for every object, CR or Ingress, whose
//    problems changed to a non-empty set;
//  * optionally `status.loadBalancer.ingress` of served Ingresses.
// Writes happen only when the desired status differs from the object's current one (so a new
// leader writes nothing if its predecessor already did), are batched (`batchMs`) and are made only
// while `isLeader()`.
import type { ObjectStatus, StoredObject } from '../model/types.js';
import { KubeApiError, KubeClient, collectionPath, objectPath } from './client.js';
import { isOtoroshiApiVersion, pluralOf } from './resources.js';

export interface Condition {
  type: 'Accepted' | 'Invalid';
  status: 'True' | 'False';
  reason: string;
  message: string;
  observedGeneration?: number;
  lastTransitionTime: string;
}

export interface CrStatus {
  state: 'valid' | 'invalid';
  observedGeneration?: number;
  conditions: Condition[];
}

export interface StatusWriterOptions {
  isLeader: () => boolean;
  batchMs?: number;
  component?: string;
  /** Pod name, reported in Events. */
  instance?: string;
  /** `status.loadBalancer.ingress` of served Ingresses: an IP or a hostname. */
  ingressAddress?: string;
  onLog?: (level: 'info' | 'warn', msg: string, fields?: Record<string, unknown>) => void;
  now?: () => Date;
}

const MAX_MESSAGE = 1024;
const STATUS_CONCURRENCY = 8;

function rfc3339(d: Date): string {
  return d.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** The status a CR should carry. Pure. `previous` keeps lastTransitionTime when nothing changed. */
export function desiredStatus(
  s: ObjectStatus,
  generation: number | undefined,
  previous: CrStatus | undefined,
  now: Date,
): CrStatus {
  const errors = s.errors.filter((e) => e.severity === 'error');
  const warnings = s.errors.filter((e) => e.severity === 'warning');
  const line = (e: { field?: string; message: string }): string => (e.field ? `${e.field}: ${e.message}` : e.message);
  let cond: Omit<Condition, 'lastTransitionTime'>;
  if (s.state === 'valid') {
    const w = warnings.map(line).join('; ');
    cond = {
      type: 'Accepted',
      status: 'True',
      reason: 'Accepted',
      message: w ? `accepted with warnings: ${w}` : 'accepted',
    };
  } else {
    const first = errors[0] ?? s.errors[0];
    cond = {
      type: 'Invalid',
      status: 'True',
      reason: first ? reasonOf(first.code) : 'Invalid',
      message: (errors.length ? errors : s.errors).map(line).join('; '),
    };
  }
  if (cond.message.length > MAX_MESSAGE) cond.message = cond.message.slice(0, MAX_MESSAGE - 3) + '...';
  if (generation !== undefined) cond.observedGeneration = generation;
  const prev = previous?.conditions?.find((c) => c.type === cond.type && c.status === cond.status);
  const out: CrStatus = {
    state: s.state,
    conditions: [{ ...cond, lastTransitionTime: prev?.lastTransitionTime ?? rfc3339(now) }],
  };
  if (generation !== undefined) out.observedGeneration = generation;
  return out;
}

/** Condition reasons must be CamelCase identifiers: OXDS_ROUTE_CONFLICT → OxdsRouteConflict. */
export function reasonOf(code: string): string {
  return code
    .toLowerCase()
    .split('_')
    .map((w) => (w ? w[0]!.toUpperCase() + w.slice(1) : ''))
    .join('');
}

function sameStatus(a: CrStatus | undefined, b: CrStatus): boolean {
  if (!a || a.state !== b.state || a.observedGeneration !== b.observedGeneration) return false;
  const strip = (c: Condition[] | undefined): string =>
    JSON.stringify((c ?? []).map(({ lastTransitionTime: _t, ...rest }) => rest));
  return strip(a.conditions) === strip(b.conditions);
}

interface Pending {
  path: string;
  status: CrStatus;
}

export class StatusWriter {
  private latest: { statuses: readonly ObjectStatus[]; objects: readonly StoredObject[] } | undefined;
  private timer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> = Promise.resolve();
  /** Problems last reported as an Event, per object key (so an Event is sent once per change). */
  private readonly reported = new Map<string, string>();
  private readonly written = new Map<string, string>();
  writes = 0;
  events = 0;

  constructor(
    private readonly client: KubeClient,
    private readonly opts: StatusWriterOptions,
  ) {}

  /** Called after every rebuild with the statuses and the objects they came from. */
  update(statuses: readonly ObjectStatus[], objects: readonly StoredObject[]): void {
    this.latest = { statuses, objects };
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.flush();
    }, this.opts.batchMs ?? 250);
    this.timer.unref();
  }

  /** Writes what differs now (also used when leadership is gained). */
  flush(): Promise<void> {
    this.flushing = this.flushing
      .then(() => this.flushOnce())
      .catch((err: unknown) => this.opts.onLog?.('warn', 'status write failed', { err: (err as Error).message }));
    return this.flushing;
  }

  private async flushOnce(): Promise<void> {
    const latest = this.latest;
    if (!latest || !this.opts.isLeader()) return;
    const now = this.opts.now?.() ?? new Date();
    const byKey = new Map(latest.objects.map((o) => [o.key, o]));
    // forget objects that are gone
    const live = new Set(latest.statuses.map((s) => s.key));
    for (const m of [this.reported, this.written]) for (const k of [...m.keys()]) if (!live.has(k)) m.delete(k);
    const pending: Pending[] = [];
    const events: Array<{ so: StoredObject; s: ObjectStatus }> = [];
    for (const s of latest.statuses) {
      const so = byKey.get(s.key);
      if (!so) continue;
      const obj = so.object;
      const problems = s.errors.map((e) => `${e.severity} ${e.code} ${e.field ?? ''} ${e.message}`).join('\n');
      if (problems !== '' && s.errors.some((e) => e.severity === 'error') && this.reported.get(s.key) !== problems)
        events.push({ so, s });
      if (problems === '' || !s.errors.some((e) => e.severity === 'error')) this.reported.delete(s.key);
      if (!isOtoroshiApiVersion(obj.apiVersion)) {
        // never on an Ingress of another controller (valid, with an OXDS_INGRESS_IGNORED warning)
        const ours = !s.errors.some((e) => e.code === 'OXDS_INGRESS_IGNORED');
        if (obj.kind === 'Ingress' && this.opts.ingressAddress && s.state === 'valid' && ours) {
          const lb = /^[\d.:a-fA-F]+$/.test(this.opts.ingressAddress)
            ? { ip: this.opts.ingressAddress }
            : { hostname: this.opts.ingressAddress };
          const cur = JSON.stringify((obj['status'] as { loadBalancer?: unknown } | undefined)?.loadBalancer ?? {});
          const want = { ingress: [lb] };
          if (cur !== JSON.stringify(want))
            pending.push({
              path: `${objectPath('networking.k8s.io/v1', 'ingresses', s.namespace, s.name)}/status`,
              status: { loadBalancer: want } as unknown as CrStatus,
            });
        }
        continue;
      }
      const plural = pluralOf(s.kind);
      if (!plural) continue;
      const current = obj['status'] as CrStatus | undefined;
      const gen = typeof obj.metadata.generation === 'number' ? obj.metadata.generation : undefined;
      const want = desiredStatus(s, gen, current, now);
      if (sameStatus(current, want)) continue;
      // the informer may lag behind our own last write: do not write the same thing twice
      const fp = JSON.stringify([
        obj.metadata.resourceVersion,
        want.state,
        want.observedGeneration,
        want.conditions.map((c) => [c.type, c.reason, c.message]),
      ]);
      if (this.written.get(s.key) === fp) continue;
      this.written.set(s.key, fp);
      pending.push({ path: `${objectPath(obj.apiVersion, plural, s.namespace, s.name)}/status`, status: want });
    }
    const write = async (p: Pending): Promise<void> => {
      try {
        await this.client.patch(p.path, { status: p.status }, 'merge');
        this.writes++;
      } catch (err) {
        // 404: deleted meanwhile; anything else is retried with the next rebuild
        if (!(err instanceof KubeApiError && err.statusCode === 404))
          this.opts.onLog?.('warn', 'status write failed', { path: p.path, err: (err as Error).message });
        this.written.clear();
      }
    };
    // a few writes in flight (a first leader may have thousands to write)
    for (let i = 0; i < pending.length; i += STATUS_CONCURRENCY)
      await Promise.all(pending.slice(i, i + STATUS_CONCURRENCY).map(write));
    for (const { so, s } of events) {
      try {
        await this.event(so, s, now);
        this.reported.set(
          s.key,
          s.errors.map((e) => `${e.severity} ${e.code} ${e.field ?? ''} ${e.message}`).join('\n'),
        );
        this.events++;
      } catch (err) {
        this.opts.onLog?.('warn', 'event write failed', { key: s.key, err: (err as Error).message });
      }
    }
  }

  private async event(so: StoredObject, s: ObjectStatus, now: Date): Promise<void> {
    const obj = so.object;
    const first = s.errors.find((e) => e.severity === 'error') ?? s.errors[0]!;
    const ns = s.namespace || 'default';
    const t = rfc3339(now);
    const component = this.opts.component ?? 'otoroshi-xds';
    let message = s.errors
      .filter((e) => e.severity === 'error')
      .map((e) => (e.field ? `${e.field}: ${e.message}` : e.message))
      .join('; ');
    if (message.length > MAX_MESSAGE) message = message.slice(0, MAX_MESSAGE - 3) + '...';
    await this.client.create(collectionPath('v1', 'events', ns), {
      apiVersion: 'v1',
      kind: 'Event',
      metadata: {
        name: `${s.name}.${now.getTime().toString(16)}${Math.floor(Math.random() * 0xffff).toString(16)}`,
        namespace: ns,
      },
      involvedObject: {
        apiVersion: obj.apiVersion,
        kind: obj.kind,
        name: s.name,
        namespace: ns,
        uid: obj.metadata.uid,
        resourceVersion: obj.metadata.resourceVersion,
      },
      reason: reasonOf(first.code),
      message,
      type: 'Warning',
      source: { component },
      reportingComponent: component,
      ...(this.opts.instance ? { reportingInstance: this.opts.instance } : {}),
      firstTimestamp: t,
      lastTimestamp: t,
      count: 1,
    });
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }
}
