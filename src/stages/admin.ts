// The admin stage: readiness, health, metrics, proxies and config dumps over HTTP.
import type { FastifyInstance } from 'fastify';
import type { Config } from '../config.js';
import { buildAdminApp } from '../admin/app.js';
import { configDumpFor } from '../admin/config-dump.js';
import type { Metrics } from '../metrics.js';
import type { SnapshotCache } from '../xds/cache.js';
import type { AdsServer } from '../xds/server/server.js';
import type { PublishStage } from './publish.js';

export class AdminStage {
  port = 0;
  private readonly app: FastifyInstance;

  constructor(
    private readonly config: Config,
    deps: { metrics: Metrics; cache: SnapshotCache; publish: PublishStage; ads: AdsServer },
  ) {
    const { ads, cache, publish } = deps;
    this.app = buildAdminApp({
      ready: () => publish.ready,
      health: () => ({
        builds: publish.builds,
        lastBuildMs: Math.round(publish.lastBuildMs),
        proxies: ads.statuses().length,
      }),
      registry: deps.metrics.registry,
      proxies: () => ads.statuses(),
      configDump: (nodeId) => configDumpFor(nodeId, ads.statuses(), (s) => cache.get(s.nodeType)),
      ...(config.adminToken ? { token: config.adminToken } : {}),
    });
  }

  async start(): Promise<void> {
    await this.app.listen({ host: this.config.host, port: this.config.adminPort });
    const addr = this.app.server.address();
    this.port = typeof addr === 'object' && addr ? addr.port : this.config.adminPort;
  }

  async stop(): Promise<void> {
    await this.app.close();
  }
}
