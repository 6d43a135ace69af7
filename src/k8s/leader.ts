// Leader election on a coordination.k8s.io/v1 Lease (client-go's LeaseLock algorithm, small).
//
// Every `retryPeriodMs` each candidate reads the Lease:
//  * absent → create it holding it;
//  * held by us → renew (`renewTime`), with the resourceVersion as precondition;
//  * held by another → take it over only once the record has not changed for
//    `leaseDurationSeconds` *as observed locally* (no comparison of clocks between replicas);
//  * a leader that cannot renew for `leaseDurationSeconds` steps down before anyone can take over.
// stop() releases the Lease (empty holder) so a successor takes over at once.
// Talks to the API server with client-node's typed CoordinationV1Api.
import { EventEmitter } from 'node:events';
import { clientNode, type ClientNode as k8s } from './client-node.js';
import type { KubeClient } from './client.js';

export interface LeaderElectorOptions {
  namespace: string;
  name: string;
  identity: string;
  leaseDurationSeconds?: number;
  retryPeriodMs?: number;
  onLog?: (level: 'info' | 'warn', msg: string, fields?: Record<string, unknown>) => void;
}

/** The HTTP status of a client-node ApiException (undefined for transport errors). */
function statusOf(err: unknown): number | undefined {
  return err instanceof clientNode().ApiException ? err.code : undefined;
}

/** Kubernetes MicroTime (serialised with microseconds). */
function microTime(): k8s.V1MicroTime {
  return new (clientNode().V1MicroTime)();
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
  private readonly api: k8s.CoordinationV1Api;

  constructor(
    client: KubeClient,
    private readonly opts: LeaderElectorOptions,
  ) {
    super();
    this.api = client.kc.makeApiClient(clientNode().CoordinationV1Api);
    this.duration = opts.leaseDurationSeconds ?? 15;
    this.retry = opts.retryPeriodMs ?? 2000;
  }

  private async read(): Promise<k8s.V1Lease | undefined> {
    try {
      return await this.api.readNamespacedLease({ name: this.opts.name, namespace: this.opts.namespace });
    } catch (err) {
      if (statusOf(err) === 404) return undefined;
      throw err;
    }
  }

  isLeader(): boolean {
    return this.leading;
  }

  get identity(): string {
    return this.opts.identity;
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
    if (this.leading && Date.now() - this.lastRenew > this.duration * 1000)
      this.setLeading(false, 'could not renew the lease in time');
  }

  private async tryAcquireOrRenew(): Promise<void> {
    const lease = await this.read();
    if (!lease) {
      await this.api.createNamespacedLease({
        namespace: this.opts.namespace,
        body: {
          apiVersion: 'coordination.k8s.io/v1',
          kind: 'Lease',
          metadata: { name: this.opts.name, namespace: this.opts.namespace },
          spec: {
            holderIdentity: this.opts.identity,
            leaseDurationSeconds: this.duration,
            acquireTime: microTime(),
            renewTime: microTime(),
            leaseTransitions: 0,
          },
        },
      });
      this.renewed();
      return;
    }
    const spec: k8s.V1LeaseSpec = lease.spec ?? {};
    const record = JSON.stringify([spec.holderIdentity, spec.renewTime, spec.acquireTime]);
    if (this.observed?.record !== record) this.observed = { record, at: Date.now() };
    const holder = spec.holderIdentity ?? '';
    const mine = holder === this.opts.identity;
    const expired =
      holder === '' || Date.now() - this.observed.at > (spec.leaseDurationSeconds ?? this.duration) * 1000;
    if (!mine && !expired) {
      if (this.leading) this.setLeading(false, `lease held by ${holder}`);
      return;
    }
    const next: k8s.V1LeaseSpec = {
      ...spec,
      holderIdentity: this.opts.identity,
      leaseDurationSeconds: this.duration,
      renewTime: microTime(),
    };
    if (!mine) {
      next.acquireTime = microTime();
      next.leaseTransitions = (spec.leaseTransitions ?? 0) + 1;
    }
    try {
      // the read resourceVersion is a precondition: 409 when another candidate wrote first
      await this.api.replaceNamespacedLease({
        name: this.opts.name,
        namespace: this.opts.namespace,
        body: { ...lease, spec: next },
      });
    } catch (err) {
      if (statusOf(err) === 409) return; // re-read next round
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
    this.opts.onLog?.('info', v ? 'leader election: now leading' : 'leader election: stopped leading', {
      identity: this.opts.identity,
      why,
    });
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
      const lease = await this.read();
      if (lease?.spec?.holderIdentity === this.opts.identity) {
        await this.api.replaceNamespacedLease({
          name: this.opts.name,
          namespace: this.opts.namespace,
          body: {
            ...lease,
            spec: { ...lease.spec, holderIdentity: '', leaseDurationSeconds: 1, renewTime: microTime() },
          },
        });
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
