// The CA stage: Certificate CRs are issued between buildModel and translate, workload certificates
// on demand. File mode loads (or creates) the CA before serving; cluster mode keeps trying in the
// background (the API server may be down at start), and until then Certificate CRs wait.
import fs from 'node:fs';
import path from 'node:path';
import type { Logger } from 'pino';
import type { Config } from '../config.js';
import { CertificateAuthority, FileCaStore } from '../ca/index.js';
import { KubeSecretCaStore } from '../k8s/ca-secret-store.js';
import { CertManager, FileIssuedStore, type CaEvent } from '../ca/manager.js';
import { KubeClient, loadKubeConfig } from '../k8s/client.js';
import type { BuildResult } from '../model/types.js';
import type { ProtoObject } from '../../proto/loader.js';

/**
 * The CA: user-provided PEM files (--ca-cert/--ca-key/--ca-root-cert), else generated once and kept in the data
 * directory.
 */
export async function loadCertificateAuthority(config: Config): Promise<CertificateAuthority> {
  if (config.caCert !== undefined && config.caKey !== undefined && config.caRootCert !== undefined) {
    const read = (f: string, what: string): string => {
      try {
        return fs.readFileSync(f, 'utf8');
      } catch (e) {
        throw new Error(`cannot read the ${what} ${f}: ${(e as NodeJS.ErrnoException).code ?? 'error'}`);
      }
    };
    return CertificateAuthority.fromPem(
      read(config.caRootCert, 'root CA certificate'),
      read(config.caCert, 'CA certificate'),
      read(config.caKey, 'CA key'),
    );
  }
  if (config.source === 'kubernetes') {
    // Every replica must sign with the same CA: it lives in a Secret next to the Lease.
    const client = new KubeClient(loadKubeConfig(config.kubeconfig));
    return CertificateAuthority.loadOrCreate(
      new KubeSecretCaStore(client, config.leaseNamespace ?? client.currentNamespace()),
    );
  }
  return CertificateAuthority.loadOrCreate(new FileCaStore(path.join(config.dataDir, 'ca')));
}

/** Before the CA is loaded (cluster mode), Certificate CRs say why they have no certificate yet. */
export function markWaitingForCa(built: BuildResult): void {
  const keys = new Set((built.model.certificateRequests ?? []).map((r) => r.sourceKey));
  for (const st of built.statuses) {
    if (!keys.has(st.key)) continue;
    st.errors.push({
      code: 'OXDS_UNRESOLVED_REFERENCE',
      message: 'waiting for the CA (its Secret cannot be read yet)',
      field: 'spec.csr',
      severity: 'warning',
      kind: st.kind,
      namespace: st.namespace,
      name: st.name,
    });
  }
}

export interface CaStageOptions {
  config: Config;
  logger: Logger;
  now: () => number;
  /** Something changed that a rebuild must publish (CA ready, certificate issued or due). */
  onChange: () => void;
  onEvent: (e: CaEvent) => void;
}

const FIRST_TRY_MS = 5000;

export class CaStage {
  /** Undefined until the CA is loaded. */
  certs: CertManager | undefined;
  private retry: NodeJS.Timeout | undefined;
  private renewTimer: NodeJS.Timeout | undefined;
  private renewalAt: number | undefined; // what renewTimer is set for
  private stopping = false;

  constructor(private readonly o: CaStageOptions) {}

  private manager(ca: CertificateAuthority): CertManager {
    const { config } = this.o;
    return new CertManager({
      ca,
      store: new FileIssuedStore(path.join(config.dataDir, 'issued-certs.json')),
      now: this.o.now,
      trustDomain: config.trustDomain,
      workloadTtlMs: config.workloadCertTtlMs,
      maxWorkloads: config.maxWorkloadCerts,
      onAsyncIssued: () => this.o.onChange(),
      onEvent: this.o.onEvent,
    });
  }

  /** File mode: the CA or a throw. Cluster mode: one bounded try, then retries in the background. */
  async start(): Promise<void> {
    const { config, logger } = this.o;
    if (config.source !== 'kubernetes') {
      this.certs = this.manager(await loadCertificateAuthority(config));
      return;
    }
    // One try before serving (a reachable API server gives a CA before the first snapshot).
    try {
      const ca = await Promise.race([
        loadCertificateAuthority(config),
        new Promise<never>((_, reject) => setTimeout(() => reject(new Error('timed out')), FIRST_TRY_MS).unref()),
      ]);
      this.certs = this.manager(ca);
    } catch (err) {
      logger.warn({ err: (err as Error).message }, 'CA not available yet; Certificate CRs wait');
      this.attempt(1000);
    }
  }

  private attempt(delayMs: number): void {
    loadCertificateAuthority(this.o.config).then(
      (ca) => {
        if (this.stopping) {
          ca.pool.close();
          return;
        }
        this.certs = this.manager(ca);
        this.o.logger.info({ rootSha256: ca.rootFingerprint }, 'CA ready');
        this.o.onChange(); // publish the bundle and the waiting Certificate CRs
      },
      (err: unknown) => {
        if (this.stopping) return;
        this.o.logger.warn(
          { err: (err as Error).message, retryMs: delayMs },
          'CA not available yet; Certificate CRs wait',
        );
        this.retry = setTimeout(() => this.attempt(Math.min(delayMs * 2, 30_000)), delayMs);
        this.retry.unref();
      },
    );
  }

  /** Issues the build's Certificate CRs (or marks them waiting); returns when the next one is due. */
  materialize(built: BuildResult): number | undefined {
    if (this.certs !== undefined) return this.certs.materialize(built).nextRenewalAt;
    markWaitingForCa(built);
    return undefined;
  }

  /** The SDS secret of a workload certificate (SDS name = its SPIFFE id), minted on demand. */
  workloadSecret(name: string): ProtoObject | undefined {
    if (!name.startsWith('spiffe://')) return undefined;
    const cert = this.certs?.workload(name);
    if (cert === undefined) return undefined;
    if (this.renewalAt === undefined || cert.renewAt < this.renewalAt) this.scheduleRenewal(cert.renewAt);
    return {
      name,
      tlsCertificate: { certificateChain: { inlineString: cert.chainPem }, privateKey: { inlineString: cert.keyPem } },
    };
  }

  /** Rebuild when the next certificate (Certificate CR with autoRenew, or workload) is due. */
  scheduleRenewal(at: number | undefined): void {
    if (this.renewTimer) clearTimeout(this.renewTimer);
    this.renewTimer = undefined;
    this.renewalAt = at;
    if (at === undefined) return;
    // setTimeout holds at most ~24.8 days: wake up then and look again.
    const delay = Math.min(Math.max(0, at - this.o.now()) + 5, 2 ** 31 - 1);
    this.renewTimer = setTimeout(() => this.o.onChange(), delay);
    this.renewTimer.unref();
  }

  stop(): void {
    this.stopping = true;
    if (this.renewTimer) clearTimeout(this.renewTimer);
    if (this.retry) clearTimeout(this.retry);
    this.certs?.ca.pool.close();
  }

  /** Writes the issued-certificate store (after everything else stopped). */
  async flush(): Promise<void> {
    await this.certs?.store.flush().catch(() => undefined);
  }
}
