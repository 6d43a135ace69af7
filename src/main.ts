// Composition root: config → source → debounce → compile → snapshots → cache → ADS, as stages
// (src/stages/): CA, ext_authz, rebuild/publish, xDS, admin, webhook, each with its own start/stop.
import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import pino, { type Logger } from 'pino';
import { modelSettingsFrom, translateOptionsFrom, type Config } from './config.js';
import { createSource, type CreatedSource } from './sources/index.js';
import { WarmUp, runStepsYielding } from './pipeline.js';
import type { AdmissionWebhook } from './k8s/webhook.js';
import { SnapshotCache } from './xds/cache.js';
import type { AdsServer } from './xds/server/server.js';
import { createMetrics, type Metrics } from './metrics.js';
import type { Authorizer } from './authz/decide.js';
import { Audit, auditAuthzHooks, combineAuthzHooks, fileSink, webhookSink, type AuditSink } from './audit.js';
import type { ObjectStatus } from './model/types.js';
import { AdminStage } from './stages/admin.js';
import { AuthzStage } from './stages/authz.js';
import { CaStage } from './stages/ca.js';
import { PublishStage } from './stages/publish.js';
import { startCoredns, startWebhook } from './stages/webhook.js';
import type { CorednsSync } from './k8s/coredns.js';
import { XdsStage } from './stages/xds.js';
import { preloadClientNode } from './k8s/client-node.js';
import { tokenReviewEnabled } from './k8s/token-review.js';

export interface RunningServer {
  xdsPort: number;
  authzPort: number;
  adminPort: number;
  authorizer: Authorizer;
  metrics: Metrics;
  cache: SnapshotCache;
  ads: AdsServer;
  /** Resolves after the next rebuild completes (tests use it after writing files). */
  rebuildNow(): Promise<void>;
  /** Latest statuses of every object. */
  statuses(): ObjectStatus[];
  /** Drops cached workload certificates no stream subscribes to (also done every minute); how many were dropped. */
  evictIdleWorkloadCerts(): number;
  workloadCertCount(): number;
  stop(): Promise<void>;
}

export function makeLogger(level: Config['logLevel']): Logger {
  return pino({ level, base: { svc: 'otoroshi-xds' } }, pino.destination(2));
}

/**
 * The seed from which credentials of ApiKeys that do not set a clientSecret are derived
 * (buildModel is pure, so it cannot draw random secrets). Persisted in the data directory so
 * keys stay stable across restarts; never logged.
 */
export function loadSecretSeed(dataDir: string, logger: Logger): string {
  const file = path.join(dataDir, 'secret-seed');
  try {
    return fs.readFileSync(file, 'utf8').trim();
  } catch {
    const seed = randomBytes(32).toString('hex');
    try {
      fs.mkdirSync(dataDir, { recursive: true, mode: 0o700 });
      fs.writeFileSync(file, seed, { mode: 0o600, flag: 'wx' });
    } catch (err) {
      logger.warn(
        { dataDir, err: (err as Error).message },
        'cannot persist the secret seed: generated apikey secrets will change on restart',
      );
    }
    return seed;
  }
}

/** Things tests replace: the clock of certificate issuance and renewal. */
export interface ServerDeps {
  now?: () => number;
  /** The snapshot cache to publish into (a caller that watches it from before the first build). */
  cache?: SnapshotCache;
}

/** The audit trail: a file and / or a webhook, besides the log. */
function auditFrom(config: Config, logger: Logger): Audit {
  const sinks: AuditSink[] = [];
  if (config.auditFile) sinks.push(fileSink(config.auditFile));
  if (config.auditWebhook) {
    sinks.push(
      webhookSink(config.auditWebhook, {
        onError: (err) => logger.warn({ err: (err as Error).message }, 'audit webhook failed'),
      }),
    );
  }
  return new Audit(logger.child({ c: 'audit' }), sinks);
}

/** The stages of a started server, in start order. */
interface Started {
  metrics: Metrics;
  cache: SnapshotCache;
  audit: Audit;
  source: CreatedSource['source'];
  kube: CreatedSource['controller'];
  webhook: AdmissionWebhook | undefined;
  coredns: CorednsSync | undefined;
  ca: CaStage;
  authz: AuthzStage;
  publish: PublishStage;
  xds: XdsStage;
  admin: AdminStage;
}

/** The handle of a started server; `stop` stops the stages in reverse order (the source first). */
function runningServer(s: Started): RunningServer {
  const { ca, authz, publish, xds, admin } = s;
  let stopped = false;
  return {
    xdsPort: xds.port,
    authzPort: authz.port,
    authorizer: authz.authorizer,
    adminPort: admin.port,
    metrics: s.metrics,
    cache: s.cache,
    ads: xds.ads,
    statuses: () => publish.statuses,
    evictIdleWorkloadCerts: () => xds.evictIdleWorkloadCerts(),
    workloadCertCount: () => ca.certs?.workloadCount ?? 0,
    rebuildNow: () => publish.rebuildNow(),
    stop: async () => {
      if (stopped) return;
      stopped = true;
      s.source.stop();
      await s.webhook?.stop();
      s.coredns?.stop();
      await s.kube?.stop();
      publish.stop();
      ca.stop();
      await xds.stop();
      await authz.stop();
      await admin.stop();
      await ca.flush();
      await s.audit.close();
    },
  };
}

export async function startServer(
  config: Config,
  logger: Logger = makeLogger(config.logLevel),
  metrics: Metrics = createMetrics(),
  deps: ServerDeps = {},
): Promise<RunningServer> {
  const clock = deps.now ?? Date.now;
  // The Kubernetes client is loaded only by servers that talk to an API server.
  if (config.source === 'kubernetes' || tokenReviewEnabled(config)) await preloadClientNode();
  const cache = deps.cache ?? new SnapshotCache();
  const secretSeed = loadSecretSeed(config.dataDir, logger);
  const audit = auditFrom(config, logger);
  const authz = new AuthzStage(config, logger, combineAuthzHooks(metrics.authzHooks, auditAuthzHooks(audit)));
  // The CA may change (ready, certificate issued or due) before the publish stage exists: the first
  // rebuild publishes it then.
  let onCaChange = (): void => undefined;
  const ca = new CaStage({
    config,
    logger,
    now: clock,
    onChange: () => onCaChange(),
    onEvent: ({ type, ...data }) => audit.emit(type, data),
  });
  await ca.start();
  // Each file's objects are checked (and a sample compiled) as it is read, while the parser works on
  // the next files: the source starts after ext_authz, whose port the compile needs.
  const warm = new WarmUp(() => ({
    settings: { secretSeed, ...modelSettingsFrom(config), now: clock() },
    opts: translateOptionsFrom(config, authz.port, authz.caPem),
  }));
  const { source, controller: kube } = createSource(config, logger, (objects) => runStepsYielding(warm.steps(objects)));
  const publish = new PublishStage({
    config,
    logger,
    metrics,
    audit,
    cache,
    source,
    kube,
    ca,
    authz,
    secretSeed,
    now: clock,
  });
  onCaChange = () => publish.poke();
  // ext_authz is bound first: the generated Envoy config names its port.
  await authz.start();
  // The xDS port listens before the first build: Envoys that connect early get its Envoy snapshot
  // as soon as it is set, while the rest of the build (proxyless gRPC) runs.
  const xds = new XdsStage({ config, logger, metrics, cache, publish, ca });
  await xds.start();
  await source.start();
  await publish.firstBuild();
  warm.firstBuildDone();
  kube?.start();
  const webhook =
    kube && config.webhookPort !== undefined
      ? startWebhook(config, kube, source, () => ca.certs?.ca, { secretSeed, clock }, logger)
      : undefined;
  const coredns = kube ? startCoredns(config, kube, logger) : undefined;
  const admin = new AdminStage(config, { metrics, cache, publish, ads: xds.ads });
  await admin.start();
  logger.info(
    {
      xdsPort: xds.port,
      authzPort: authz.port,
      adminPort: admin.port,
      configDir: config.configDir,
      quotaStore: config.redisUrl ? 'redis' : 'memory',
    },
    'otoroshi-xds serving',
  );

  return runningServer({ metrics, cache, audit, source, kube, webhook, coredns, ca, authz, publish, xds, admin });
}
