// What the leader does in a cluster, after every rebuild: statuses + Events (StatusWriter) and
// exported secrets (SecretExporter). Every replica builds and serves its own config from its own
// informers; only the Lease holder writes.
import type { ConfigView, Model, ObjectStatus } from '../model/types.js';
import type { KubeClient } from './client.js';
import { LeaderElector } from './leader.js';
import { StatusWriter } from './status-writer.js';
import {
  SecretExporter,
  apikeySecrets,
  certificateSecrets,
  desiredFingerprint,
  type DesiredSecret,
  type SyncResult,
} from './secret-exporter.js';

export interface KubeControllerOptions {
  namespaces: string[];
  leaseNamespace: string;
  leaseName: string;
  identity: string;
  leaseDurationSeconds?: number;
  retryPeriodMs?: number;
  statusBatchMs?: number;
  ingressAddress?: string;
  restartDependantDeployments?: boolean;
  /** Extra desired secrets (e.g. Certificate exports from the CA), added to the ApiKey ones. */
  extraSecrets?: () => DesiredSecret[];
  onLog?: (level: 'info' | 'warn', msg: string, fields?: Record<string, unknown>) => void;
}

export class KubeController {
  readonly elector: LeaderElector;
  readonly statusWriter: StatusWriter;
  readonly exporter: SecretExporter;
  /** Undefined until the first build: never reconcile (= delete) from an unknown desired set. */
  private desired: DesiredSecret[] | undefined;
  private exportedFp: string | undefined;
  private exportChain: Promise<unknown> = Promise.resolve();
  lastSync: SyncResult | undefined;

  constructor(
    client: KubeClient,
    private readonly opts: KubeControllerOptions,
  ) {
    this.elector = new LeaderElector(client, {
      namespace: opts.leaseNamespace,
      name: opts.leaseName,
      identity: opts.identity,
      ...(opts.leaseDurationSeconds !== undefined ? { leaseDurationSeconds: opts.leaseDurationSeconds } : {}),
      ...(opts.retryPeriodMs !== undefined ? { retryPeriodMs: opts.retryPeriodMs } : {}),
      ...(opts.onLog ? { onLog: opts.onLog } : {}),
    });
    const isLeader = (): boolean => this.elector.isLeader();
    this.statusWriter = new StatusWriter(client, {
      isLeader,
      instance: opts.identity,
      ...(opts.statusBatchMs !== undefined ? { batchMs: opts.statusBatchMs } : {}),
      ...(opts.ingressAddress ? { ingressAddress: opts.ingressAddress } : {}),
      ...(opts.onLog ? { onLog: opts.onLog } : {}),
    });
    this.exporter = new SecretExporter(client, {
      namespaces: opts.namespaces,
      restartDependantDeployments: opts.restartDependantDeployments ?? false,
      ...(opts.onLog ? { onLog: opts.onLog } : {}),
    });
    this.elector.on('leading', () => {
      this.exportedFp = undefined; // a new leader reconciles everything once
      void this.statusWriter.flush();
      void this.exportSecrets();
    });
  }

  start(): void {
    this.elector.start();
  }

  isLeader(): boolean {
    return this.elector.isLeader();
  }

  /** Called after every rebuild. */
  afterBuild(view: ConfigView, statuses: readonly ObjectStatus[], model: Model): void {
    this.statusWriter.update(statuses, view.objects);
    this.desired = [
      ...apikeySecrets(model.apikeys, view.objects),
      ...certificateSecrets(model.certificates, view.objects),
      ...(this.opts.extraSecrets?.() ?? []),
    ];
    void this.exportSecrets();
  }

  /** Reconciles exported secrets when leading and something changed (serialised). */
  exportSecrets(): Promise<unknown> {
    this.exportChain = this.exportChain.then(async () => {
      const desired = this.desired;
      if (!this.elector.isLeader() || desired === undefined) return;
      const fp = desiredFingerprint(desired);
      if (fp === this.exportedFp) return;
      try {
        this.lastSync = await this.exporter.sync(desired);
        this.exportedFp = fp;
        const r = this.lastSync;
        if (r.created.length + r.updated.length + r.deleted.length + r.restarted.length > 0)
          this.opts.onLog?.('info', 'exported secrets reconciled', { ...r });
      } catch (err) {
        this.opts.onLog?.('warn', 'secret export failed; retried after the next rebuild', {
          err: (err as Error).message,
        });
      }
    });
    return this.exportChain;
  }

  async stop(): Promise<void> {
    this.statusWriter.stop();
    await this.exportChain.catch(() => undefined);
    await this.elector.stop();
  }
}
