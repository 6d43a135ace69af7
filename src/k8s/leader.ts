// Leader election on a coordination.k8s.io/v1 Lease (client-go's LeaseLock algorithm, small).
//
// Every `retryPeriodMs` each candidate reads the Lease:
//  * absent → create it holding it;
//  * held by us → renew (`renewTime`), with the resourceVersion as precondition;
//  * held by another → take it over only once the record has not changed for
//    `leaseDurationSeconds` *as observed locally* (no comparison of clocks between replicas);
//  * a leader that cannot renew for `leaseDurationSeconds` steps down before anyone can take over.
// stop() releases the Lease (empty holder) so a successor takes over at once.
import { EventEmitter } from 'node:events';
import { KubeApiError, KubeClient, objectPath, collectionPath } from './client.js';

export interface LeaderElectorOptions {
  namespace: string;
  name: string;
  identity: string;
  leaseDurationSeconds?: number;
  retryPeriodMs?: number;
  onLog?: (level: 'info' | 'warn', msg: string, fields?: Record<string, unknown>) => void;
}

interface LeaseSpec {
  holderIdentity?: string;
  leaseDurationSeconds?: number;
  acquireTime?: string;
  renewTime?: string;
  leaseTransitions?: number;
}

interface Lease {
  apiVersion?: string;
  kind?: string;
  metadata: { name: string; namespace?: string; resourceVersion?: string };
  spec?: LeaseSpec;
}

/** Kubernetes MicroTime: RFC 3339 with microseconds. */
export function microTime(d: Date = new Date()): string {
  return d.toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}

export class LeaderElector extends EventEmitter {
  private leading = false;
  private timer: NodeJS.Timeout | undefined;
  private running = false;
  private observed: { record: string; at: number } | undefined;
  private lastRenew = 0;
  private tickChain: Promise<void> = Promise.resolve();
  private readonly duration: number;
  private readonly retry: number;

  constructor(
    private readonly client: KubeClient,
    private readonly opts: LeaderElectorOptions,
  ) {
    super();
    this.duration = opts.leaseDurationSeconds ?? 15;
    this.retry = opts.retryPeriodMs ?? 2000;
  }

  isLeader(): boolean {
    return this.leading;
  }

  get identity(): string {
    return this.opts.identity;
  }

  private get path(): string {
    return objectPath('coordination.k8s.io/v1', 'leases', this.opts.namespace, this.opts.name);
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.schedule(0);
  }

  private schedule(ms: number): void {
    if (!this.running) return;
    this.timer = setTimeout(() => {
      this.tickChain = this.tickChain.then(() => this.tick()).finally(() => this.schedule(this.retry));
    }, ms);
    this.timer.unref();
  }

  /** One round of the algorithm (exposed for tests). */
  async tick(): Promise<void> {
    try {
      await this.tryAcquireOrRenew();
    } catch (err) {
      this.opts.onLog?.('warn', 'leader election: lease request failed', { err: (err as Error).message });
    }
    // a leader that could not renew within the lease duration steps down
    if (this.leading && Date.now() - this.lastRenew > this.duration * 1000) this.setLeading(false, 'could not renew the lease in time');
  }

  private async tryAcquireOrRenew(): Promise<void> {
    const now = new Date();
    const lease = await this.client.find<Lease>(this.path);
    if (!lease) {
      await this.client.create(collectionPath('coordination.k8s.io/v1', 'leases', this.opts.namespace), {
        apiVersion: 'coordination.k8s.io/v1',
        kind: 'Lease',
        metadata: { name: this.opts.name, namespace: this.opts.namespace },
        spec: { holderIdentity: this.opts.identity, leaseDurationSeconds: this.duration, acquireTime: microTime(now), renewTime: microTime(now), leaseTransitions: 0 },
      });
      this.renewed();
      return;
    }
    const spec = lease.spec ?? {};
    const record = JSON.stringify([spec.holderIdentity, spec.renewTime, spec.acquireTime]);
    if (this.observed?.record !== record) this.observed = { record, at: Date.now() };
    const holder = spec.holderIdentity ?? '';
    const mine = holder === this.opts.identity;
    const expired = holder === '' || Date.now() - this.observed.at > (spec.leaseDurationSeconds ?? this.duration) * 1000;
    if (!mine && !expired) {
      if (this.leading) this.setLeading(false, `lease held by ${holder}`);
      return;
    }
    const next: LeaseSpec = {
      ...spec,
      holderIdentity: this.opts.identity,
      leaseDurationSeconds: this.duration,
      renewTime: microTime(now),
    };
    if (!mine) {
      next.acquireTime = microTime(now);
      next.leaseTransitions = (spec.leaseTransitions ?? 0) + 1;
    }
    try {
      await this.client.replace(this.path, { ...lease, spec: next });
    } catch (err) {
      if (err instanceof KubeApiError && err.statusCode === 409) return; // someone else wrote first: re-read next round
      throw err;
    }
    this.renewed();
  }

  private renewed(): void {
    this.lastRenew = Date.now();
    if (!this.leading) this.setLeading(true, 'acquired the lease');
  }

  private setLeading(v: boolean, why: string): void {
    this.leading = v;
    this.opts.onLog?.('info', v ? 'leader election: now leading' : 'leader election: stopped leading', { identity: this.opts.identity, why });
    this.emit(v ? 'leading' : 'stopped-leading');
  }

  /** Stops electing; a leader releases the Lease so another replica takes over at once. */
  async stop(): Promise<void> {
    this.running = false;
    if (this.timer) clearTimeout(this.timer);
    await this.tickChain.catch(() => undefined);
    if (!this.leading) return;
    this.setLeading(false, 'stopping');
    try {
      const lease = await this.client.find<Lease>(this.path);
      if (lease?.spec?.holderIdentity === this.opts.identity) {
        await this.client.replace(this.path, { ...lease, spec: { ...lease.spec, holderIdentity: '', leaseDurationSeconds: 1, renewTime: microTime() } });
      }
    } catch (err) {
      this.opts.onLog?.('warn', 'leader election: could not release the lease', { err: (err as Error).message });
    }
  }

  /** Stops renewing without releasing (a crashed or partitioned leader, for tests). */
  abandon(): void {
    this.running = false;
    if (this.timer) clearTimeout(this.timer);
  }
}
