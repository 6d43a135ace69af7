// The xDS stage: the ADS/SDS server and the access-log service on the xDS port, who may hold
// which secret (docs/node-authorization.md), and the eviction of idle workload certificates.
import fs from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { serverCredentialsFrom, splitList, type Config } from '../config.js';
import { createTrafficMetrics, registerAls } from '../als.js';
import { spiffeIdFor } from '../ca/index.js';
import type { Metrics } from '../metrics.js';
import type { ResourceKind } from '../../proto/loader.js';
import type { SnapshotCache } from '../xds/cache.js';
import { identityAuthenticator, maySeeSecret, type NodeAuthPolicy, type NodePrincipal } from '../xds/node-auth.js';
import type { NodeInfo } from '../xds/server/messages.js';
import { nodeIdentity } from '../xds/server/node.js';
import { AdsServer } from '../xds/server/server.js';
import { KubeClient, loadKubeConfig } from '../k8s/client.js';
import { kubeTokenReviewer, tokenReviewEnabled } from '../k8s/token-review.js';
import type { CaStage } from './ca.js';
import type { PublishStage } from './publish.js';
import { sidecarSnapshotKey } from '../xds/sidecar/snapshots.js';

/** The node authorization policy the config gives. */
export function nodeAuthPolicyFrom(config: Config): NodeAuthPolicy {
  return {
    mode: config.xdsNodeAuth,
    trustDomain: config.trustDomain,
    gatewayIdentities: splitList(config.gatewayIdentities ?? ''),
    gatewayTokens: config.gatewayToken !== undefined ? [config.gatewayToken] : [],
    loopbackGateway: config.loopbackGateway === 'on',
  };
}

const EVICT_EVERY_MS = 60_000;
const SHUTDOWN_GRACE_MS = 5000;

export interface XdsStageOptions {
  config: Config;
  logger: Logger;
  metrics: Metrics;
  cache: SnapshotCache;
  publish: PublishStage;
  ca: CaStage;
}

export class XdsStage {
  readonly ads: AdsServer;
  port = 0;
  private readonly server: grpc.Server;
  private readonly als: { closeAll(): void };
  private readonly evictTimer: NodeJS.Timeout;

  constructor(private readonly o: XdsStageOptions) {
    const { config, logger, metrics, publish } = o;
    this.ads = new AdsServer({
      cache: o.cache,
      logger: logger.child({ c: 'ads' }),
      maxNames: config.xdsMaxNames,
      hooks: {
        ...metrics.xdsHooks,
        onNack: (typeUrl, detail) => {
          metrics.xdsHooks.onNack?.(typeUrl, detail);
          publish.onNack(typeUrl, detail);
        },
      },
      snapshotKey: sidecarSnapshotKey(config.trustDomain, publish.sidecars),
      // Secrets go only to the nodes allowed to hold them (docs/node-authorization.md).
      authenticate: identityAuthenticator({
        ...nodeAuthPolicyFrom(config),
        ...(tokenReviewEnabled(config)
          ? {
              reviewToken: kubeTokenReviewer(new KubeClient(loadKubeConfig(config.kubeconfig)), {
                audience: config.xdsTokenAudience,
              }),
            }
          : {}),
      }),
      allowName: (principal, node, kind, name) => this.allowName(principal, node, kind, name),
    });
    publish.snapshotKeysInUse = () => this.ads.snapshotKeys();
    metrics.setProxySource(() => this.ads.statuses());
    this.warnInsecureModes();
    this.evictTimer = setInterval(() => this.evictIdleWorkloadCerts(), EVICT_EVERY_MS);
    this.evictTimer.unref();
    this.server = new grpc.Server({
      'grpc.max_receive_message_length': 16 * 1024 * 1024,
      'grpc.keepalive_time_ms': 30_000,
      'grpc.keepalive_timeout_ms': 10_000,
      'grpc.keepalive_permit_without_calls': 1,
    });
    this.ads.register(this.server);
    // Envoy's access logs (ALS) arrive on the xDS port: its bootstrap already has a cluster for it.
    this.als = registerAls(this.server, {
      metrics: createTrafficMetrics(metrics.registry, () => publish.known, config.metricsPerApikey === 'on'),
      logger: logger.child({ c: 'als' }),
    });
  }

  private allowName(principal: NodePrincipal, node: NodeInfo, kind: ResourceKind, name: string): boolean {
    if (kind !== 'secret') return true;
    const { config } = this.o;
    return maySeeSecret(
      principal,
      name,
      this.o.publish.secretFacts.get(name),
      () => {
        const id = nodeIdentity(node);
        return id !== undefined && spiffeIdFor(config.trustDomain, id.namespace, id.serviceAccount) === name;
      },
      config.gatewaySecrets,
    );
  }

  private warnInsecureModes(): void {
    const { config, logger } = this.o;
    if (config.xdsNodeAuth === 'insecure-node-metadata')
      logger.warn(
        '--xds-node-auth insecure-node-metadata: every xDS client receives every certificate and its private key',
      );
    if (config.loopbackGateway === 'on')
      logger.warn(
        '--loopback-gateway on: every plaintext xDS client on loopback receives the gateway certificates (local ' +
          'development only)',
      );
  }

  /** Drops workload certificates nobody subscribes to any more (minted again on demand); how many. */
  evictIdleWorkloadCerts(): number {
    const held = new Set<string>();
    for (const s of this.ads.statuses())
      for (const t of Object.values(s.types)) for (const n of t.subscribed) if (n.startsWith('spiffe://')) held.add(n);
    return this.o.ca.certs?.retainWorkloads(held) ?? 0;
  }

  async start(): Promise<void> {
    const { config } = this.o;
    this.port = await new Promise<number>((resolve, reject) =>
      this.server.bindAsync(
        `${config.host}:${config.xdsPort}`,
        serverCredentialsFrom({ cert: config.xdsTlsCert, key: config.xdsTlsKey, clientCa: config.xdsClientCa }, (f) =>
          fs.readFileSync(f),
        ),
        (err, port) => (err ? reject(err) : resolve(port)),
      ),
    );
  }

  /** Ends every stream (clients reconnect elsewhere), then shuts the server down (forced after 5 s). */
  async stop(): Promise<void> {
    clearInterval(this.evictTimer);
    this.ads.closeAllStreams();
    this.als.closeAll();
    await new Promise<void>((resolve) => {
      const t = setTimeout(() => {
        this.server.forceShutdown();
        resolve();
      }, SHUTDOWN_GRACE_MS);
      this.server.tryShutdown(() => {
        clearTimeout(t);
        resolve();
      });
    });
  }
}
