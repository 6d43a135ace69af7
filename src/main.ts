// Composition root: config → source → debounce → compile → snapshots → cache → ADS.
import * as grpc from '@grpc/grpc-js';
import pino, { type Logger } from 'pino';
import type { FastifyInstance } from 'fastify';
import { modelSettingsFrom, serverCredentialsFrom, splitList, translateOptionsFrom, type Config } from './config.js';
import { createSource } from './sources/index.js';
import { Debouncer } from './debounce.js';
import { compile, formatError, type CompiledSet } from './pipeline.js';
import { buildSnapshot, VersionSource } from './xds/snapshot.js';
import { SnapshotCache } from './xds/cache.js';
import { AdsServer } from './xds/ads-server.js';
import { EnvoyRejections } from './xds/rejections.js';
import { grpcListenerFor } from './xds/translate.js';
import { withRetiredClusters, nextRetirement, type RetiredClusters } from './xds/retire.js';
import { encodeObject, TYPE_URLS, type ProtoObject, type ResourceKind } from './proto/loader.js';
import { buildAdminApp } from './admin/app.js';
import { createMetrics, type Metrics } from './metrics.js';
import { configDumpFor } from './admin/config-dump.js';
import { createTrafficMetrics, registerAls } from './als.js';
import { createQuotaStore, FailoverQuotaStore } from './authz/quota/index.js';
import { JwtEngine } from './authz/jwt.js';
import { Authorizer } from './authz/decide.js';
import { buildPolicy } from './authz/policy.js';
import { startAuthzServer } from './authz/server.js';
import {
  Audit,
  auditAuthzHooks,
  combineAuthzHooks,
  diffObjects,
  fileSink,
  objectFingerprint,
  webhookSink,
  type AuditSink,
} from './audit.js';
import type { BuildResult, ConfigError, Model, ObjectStatus, StoredObject } from './model/types.js';
import type { NodeType, ResourceSet } from './xds/types.js';
import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { CertificateAuthority, FileCaStore, spiffeIdFor } from './ca/index.js';
import { CertManager, FileIssuedStore, type CaEvent } from './ca/manager.js';
import { exportSecretsToFiles } from './ca/file-export.js';
import { apikeySecrets, certificateSecrets } from './k8s/secret-exporter.js';
import { KubeSecretCaStore } from './ca/kube-store.js';
import { KubeClient, loadKubeConfig } from './k8s/client.js';
import { metadataString, type NodeInfo } from './xds/ads-server.js';
import { injectOptionsFrom } from './k8s/inject-config.js';
import { kubeTokenReviewer, tokenReviewEnabled } from './k8s/token-review.js';
import { corednsSyncFrom, type CorednsSync } from './k8s/coredns.js';
import { AdmissionWebhook } from './k8s/webhook.js';
import {
  identityAuthenticator,
  maySeeSecret,
  secretFactsOf,
  type NodeAuthPolicy,
  type SecretFacts,
} from './xds/node-auth.js';

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

function encoderFor(compiled: CompiledSet): (kind: ResourceKind, obj: ProtoObject) => Uint8Array {
  return (kind, obj) => compiled.bytes.get(obj) ?? encodeObject(TYPE_URLS[kind], obj);
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
}

/** The CA: user-provided PEM files (--ca-cert/--ca-key/--ca-root-cert), else generated once and kept in the data directory. */
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

/** NAMESPACE / SERVICE_ACCOUNT of a node's metadata (Istio's keys, or camelCase). */
export function nodeIdentity(node: NodeInfo): { namespace: string; serviceAccount: string } | undefined {
  const pick = (...keys: string[]): string | undefined => {
    for (const k of keys) {
      const v = metadataString(node.metadata, k);
      if (v !== undefined && v !== '') return v;
    }
    return undefined;
  };
  const namespace = pick('NAMESPACE', 'namespace');
  const serviceAccount = pick('SERVICE_ACCOUNT', 'serviceAccount', 'service_account');
  return namespace !== undefined && serviceAccount !== undefined ? { namespace, serviceAccount } : undefined;
}

/** The validating admission webhook of a cluster-mode server (same model validation as the controller). */
function startWebhook(
  config: Config,
  kube: NonNullable<ReturnType<typeof createSource>['controller']>,
  source: ReturnType<typeof createSource>['source'],
  ca: () => CertificateAuthority | undefined,
  deps: { secretSeed: string; clock: () => number },
  logger: Logger,
): AdmissionWebhook {
  const log = logger.child({ c: 'webhook' });
  const ns = config.leaseNamespace ?? new KubeClient(loadKubeConfig(config.kubeconfig)).currentNamespace();
  const hosts = config.webhookHosts
    ? splitList(config.webhookHosts)
    : [`otoroshi-xds-webhook.${ns}.svc`, `otoroshi-xds-webhook.${ns}.svc.cluster.local`];
  const webhook = new AdmissionWebhook({
    host: config.host,
    port: config.webhookPort ?? 0,
    hosts,
    configName: config.webhookConfigName,
    inject: { options: injectOptionsFrom(config, ns), configName: config.injectWebhookConfigName },
    client: new KubeClient(loadKubeConfig(config.kubeconfig)),
    ca,
    isLeader: () => kube.isLeader(),
    view: () => source.view(),
    settings: () => ({ secretSeed: deps.secretSeed, ...modelSettingsFrom(config), now: deps.clock() }),
    now: deps.clock,
    onLog: (level, msg, fields) => log[level](fields ?? {}, msg),
  });
  kube.elector.on('leading', () => webhook.poke());
  webhook.start();
  return webhook;
}

/** The CoreDNS mesh block, kept by the leader (--coredns-integration on|dry-run; docs/mesh-control-plane.md). */
function startCoredns(
  config: Config,
  kube: NonNullable<ReturnType<typeof createSource>['controller']>,
  logger: Logger,
): CorednsSync | undefined {
  const log = logger.child({ c: 'coredns' });
  const client = new KubeClient(loadKubeConfig(config.kubeconfig));
  const ns = config.leaseNamespace ?? client.currentNamespace();
  const sync = corednsSyncFrom(
    config,
    ns,
    client,
    () => kube.isLeader(),
    (level, msg, fields) => log[level](fields ?? {}, msg),
  );
  if (sync === undefined) return undefined;
  kube.elector.on('leading', () => void sync.step());
  sync.start();
  return sync;
}

export async function startServer(
  config: Config,
  logger: Logger = makeLogger(config.logLevel),
  metrics: Metrics = createMetrics(),
  deps: ServerDeps = {},
): Promise<RunningServer> {
  const clock = deps.now ?? Date.now;
  const cache = new SnapshotCache();
  const secretSeed = loadSecretSeed(config.dataDir, logger);
  const sinks: AuditSink[] = [];
  if (config.auditFile) sinks.push(fileSink(config.auditFile));
  if (config.auditWebhook) {
    sinks.push(
      webhookSink(config.auditWebhook, {
        onError: (err) => logger.warn({ err: (err as Error).message }, 'audit webhook failed'),
      }),
    );
  }
  const audit = new Audit(logger.child({ c: 'audit' }), sinks);
  const authzHooks = combineAuthzHooks(metrics.authzHooks, auditAuthzHooks(audit));
  let fingerprints: Map<string, string> | undefined;
  // Label values the traffic metrics accept (bounded cardinality): the current model's ids.
  let known: { descriptors: ReadonlySet<string>; apikeys: ReadonlySet<string> } = {
    descriptors: new Set(),
    apikeys: new Set(),
  };
  // ext_authz: quota store (in-memory, or Redis with fail-open/closed), JWT verifiers, policy.
  // Store failures are reported once, by the Authorizer (degraded answer or fail-closed error).
  // With TLS on the ext_authz port, Envoy's oxds-ext-authz cluster verifies it with this CA (inlined in CDS).
  const authzCaPem =
    config.authzTlsCert !== undefined ? fs.readFileSync(config.envoyAuthzCa ?? config.authzTlsCert, 'utf8') : undefined;
  if (config.authzClientCa !== undefined && config.envoyAuthz === 'on') {
    logger.warn(
      '--authz-client-ca: the generated oxds-ext-authz cluster presents no client certificate; Envoys need their own cluster (or --envoy-authz off)',
    );
  }
  const quota = createQuotaStore({
    redisUrl: config.redisUrl,
    failMode: config.quotaFailMode,
    timeZone: config.quotaTimeZone,
    commandTimeoutMs: config.redisCommandTimeoutMs,
    logger: logger.child({ c: 'quota' }),
  });
  const jwt = new JwtEngine([], { hooks: authzHooks, logger: logger.child({ c: 'jwt' }) });
  const authorizer = new Authorizer({ quota, jwt, hooks: authzHooks });
  // The CA stage: Certificate CRs issued between buildModel and translate; workload certs on demand.
  // File mode loads (or creates) the CA before serving; cluster mode keeps trying in the
  // background (the API server may be down at start), and until then Certificate CRs wait.
  let renewTimer: NodeJS.Timeout | undefined;
  let renewalAt: number | undefined; // what renewTimer is set for
  let certs: CertManager | undefined;
  let caRetry: NodeJS.Timeout | undefined;
  let stopping = false;
  const makeCertManager = (ca: CertificateAuthority): CertManager =>
    new CertManager({
      ca,
      store: new FileIssuedStore(path.join(config.dataDir, 'issued-certs.json')),
      now: clock,
      trustDomain: config.trustDomain,
      workloadTtlMs: config.workloadCertTtlMs,
      maxWorkloads: config.maxWorkloadCerts,
      onAsyncIssued: () => debouncer.poke(),
      onEvent: (e: CaEvent) => {
        const { type, ...data } = e;
        audit.emit(type, data);
      },
    });
  if (config.source !== 'kubernetes') {
    certs = makeCertManager(await loadCertificateAuthority(config));
  } else {
    const attempt = (delayMs: number): void => {
      loadCertificateAuthority(config).then(
        (ca) => {
          if (stopping) {
            stopping = true;
            if (caRetry) clearTimeout(caRetry);
            certs?.ca.pool.close();
            return;
          }
          certs = makeCertManager(ca);
          logger.info({ rootSha256: ca.rootFingerprint }, 'CA ready');
          debouncer.poke(); // publish the bundle and the waiting Certificate CRs
        },
        (err: unknown) => {
          if (stopping) return;
          logger.warn({ err: (err as Error).message, retryMs: delayMs }, 'CA not available yet; Certificate CRs wait');
          caRetry = setTimeout(() => attempt(Math.min(delayMs * 2, 30_000)), delayMs);
          caRetry.unref();
        },
      );
    };
    // One try before serving (a reachable API server gives a CA before the first snapshot).
    try {
      const ca = await Promise.race([
        loadCertificateAuthority(config),
        new Promise<never>((_, reject) => setTimeout(() => reject(new Error('timed out')), 5000).unref()),
      ]);
      certs = makeCertManager(ca);
    } catch (err) {
      logger.warn({ err: (err as Error).message }, 'CA not available yet; Certificate CRs wait');
      attempt(1000);
    }
  }
  const versions = new VersionSource();
  const { source, controller: kube } = createSource(config, logger);
  let statuses: ObjectStatus[] = [];
  let lastErrorLines = new Set<string>();
  let ready = false;
  let builds = 0;
  let lastBuildMs = 0;
  const published: Partial<Record<NodeType, ResourceSet>> = {};
  const retired: Record<NodeType, RetiredClusters> = { envoy: new Map(), grpc: new Map() };
  let retireTimer: NodeJS.Timeout | undefined;

  const rejections = new EnvoyRejections();
  let lastModel: Model | undefined;
  // NACK feedback: the objects a NACK traces to are left out of the next snapshot.
  const onNackDetail = (typeUrl: string, detail: string | undefined): void => {
    if (detail === undefined || lastModel === undefined) return;
    const sets = [published.envoy, published.grpc].filter((x): x is ResourceSet => x !== undefined);
    const keys = rejections.record(detail, sets, lastModel, source.view());
    if (keys.length === 0) return;
    logger.warn(
      { typeUrl, objects: keys, error: detail.slice(0, 500) },
      'Envoy rejected the config made from these objects: left out until they change',
    );
    debouncer.poke();
  };

  let secretFacts = new Map<string, SecretFacts>();
  const rebuild = (): void => {
    if (source.synced?.() === false) {
      logger.warn('config source not synced yet (API server unreachable?): nothing published');
      return;
    }
    const t0 = performance.now();
    try {
      const full = source.view();
      auditChanges(full.objects);
      // Objects Envoy rejected stay out until they change.
      const { view, statuses: rejectedStatuses } = rejections.filter(full);
      let renewal: number | undefined;
      const c = compile(
        view,
        { secretSeed, ...modelSettingsFrom(config), now: clock() },
        translateOptionsFrom(config, authz.port, authzCaPem),
        (built) => {
          if (certs !== undefined) renewal = certs.materialize(built).nextRenewalAt;
          else waitForCa(built);
        },
      );
      scheduleRenewal(renewal);
      statuses = [...c.statuses, ...rejectedStatuses];
      lastModel = c.model;
      kube?.afterBuild(full, statuses, c.model);
      metrics.setConfigObjects(statuses);
      metrics.setCertificates(c.model.certificates);
      if (kube === undefined) exportFiles(c.model, view.objects); // cluster mode: Secrets, by the leader
      jwt.setVerifiers(c.model.jwtVerifiers ?? []);
      authorizer.setPolicy(buildPolicy(c.model));
      known = {
        descriptors: new Set(c.model.descriptors.map((d) => d.id)),
        apikeys: new Set(c.model.apikeys.map((k) => k.clientId)),
      };
      logErrors([...c.errors, ...rejectedStatuses.flatMap((st) => st.errors)]);
      const version = versions.next();
      const now = Date.now();
      const envoySet = withRetiredClusters(published.envoy, c.envoy.set, retired.envoy, now, config.clusterGraceMs);
      const grpcSet = withRetiredClusters(published.grpc, c.grpc.set, retired.grpc, now, config.clusterGraceMs);
      // Workload certificates (SDS name = the SPIFFE id) are minted on demand, per snapshot.
      const envoy = buildSnapshot('envoy', version, envoySet, encoderFor(c.envoy), (kind, name) =>
        kind === 'secret' ? workloadSecret(name) : undefined,
      );
      const domains = c.grpcDomains;
      const grpcSnap = buildSnapshot('grpc', version, grpcSet, encoderFor(c.grpc), (kind, name) =>
        kind === 'listener' ? grpcListenerFor(name, domains) : undefined,
      );
      secretFacts = secretFactsOf(envoySet);
      cache.setMany({ envoy, grpc: grpcSnap });
      published.envoy = envoySet;
      published.grpc = grpcSet;
      scheduleRetirement();
      ready = true;
      builds++;
      lastBuildMs = performance.now() - t0;
      metrics.observeSnapshotBuild(lastBuildMs / 1000, true);
      const invalid = statuses.filter((s) => s.state === 'invalid').length;
      logger.info(
        { version, descriptors: c.model.descriptors.length, invalidObjects: invalid, ms: Math.round(lastBuildMs) },
        'snapshot published',
      );
    } catch (err) {
      // A system error: keep the last good snapshot.
      metrics.observeSnapshotBuild((performance.now() - t0) / 1000, false);
      logger.error({ err }, 'snapshot build failed; keeping the last good snapshot');
    }
  };

  // File mode: Certificates and ApiKeys with exportSecret are written under <data-dir>/secrets/<ns>/<name>/.
  function exportFiles(model: Model, objects: readonly StoredObject[]): void {
    try {
      const secrets = [
        ...apikeySecrets(model.apikeys, objects),
        ...certificateSecrets(model.certificates, objects),
      ].map((d) => ({
        namespace: d.namespace,
        name: d.name,
        data: d.data,
        owner: `${d.owner.kind}/${d.owner.namespace}/${d.owner.name}`,
        ownerNamespace: d.owner.namespace,
      }));
      const r = exportSecretsToFiles(path.join(config.dataDir, 'secrets'), secrets);
      for (const n of r.written) audit.emit('secret.exported', { secret: n, to: 'file' });
      for (const n of r.removed) audit.emit('secret.deleted', { secret: n, to: 'file' });
      for (const n of r.refused) logger.warn({ secret: n }, 'exportSecret refused');
    } catch (err) {
      logger.warn({ err: (err as Error).message }, 'cannot export secrets to files');
    }
  }

  // Before the CA is loaded (cluster mode), Certificate CRs say why they have no certificate yet.
  function waitForCa(built: BuildResult): void {
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

  function workloadSecret(name: string): ProtoObject | undefined {
    if (!name.startsWith('spiffe://')) return undefined;
    const cert = certs?.workload(name);
    if (cert === undefined) return undefined;
    if (renewalAt === undefined || cert.renewAt < renewalAt) scheduleRenewal(cert.renewAt);
    return {
      name,
      tlsCertificate: { certificateChain: { inlineString: cert.chainPem }, privateKey: { inlineString: cert.keyPem } },
    };
  }

  // Rebuild when the next certificate (Certificate CR with autoRenew, or workload) is due.
  function scheduleRenewal(at: number | undefined): void {
    if (renewTimer) clearTimeout(renewTimer);
    renewTimer = undefined;
    renewalAt = at;
    if (at === undefined) return;
    // setTimeout holds at most ~24.8 days: wake up then and look again.
    renewTimer = setTimeout(() => debouncer.poke(), Math.min(Math.max(0, at - clock()) + 5, 2 ** 31 - 1));
    renewTimer.unref();
  }

  // Rebuild once the oldest retired cluster has served its grace period.
  function scheduleRetirement(): void {
    if (retireTimer) clearTimeout(retireTimer);
    retireTimer = undefined;
    const at = [
      nextRetirement(retired.envoy, config.clusterGraceMs),
      nextRetirement(retired.grpc, config.clusterGraceMs),
    ]
      .filter((x): x is number => x !== undefined)
      .sort((a, b) => a - b)[0];
    if (at === undefined) return;
    retireTimer = setTimeout(() => debouncer.poke(), Math.max(0, at - Date.now()) + 5);
    retireTimer.unref();
  }

  // One audit event per object added / changed / removed since the last build.
  function auditChanges(objects: readonly StoredObject[]): void {
    const next = new Map(objects.map((o) => [o.key, objectFingerprint(o)]));
    if (fingerprints === undefined) {
      audit.emit('config.loaded', {
        objects: next.size,
        source: config.source === 'kubernetes' ? 'kubernetes' : config.configDir,
      });
    } else {
      const d = diffObjects(fingerprints, next);
      const origin = new Map(objects.map((o) => [o.key, o.origin.file]));
      const max = 100;
      for (const [type, keys] of [
        ['config.object.added', d.added],
        ['config.object.changed', d.changed],
        ['config.object.removed', d.removed],
      ] as const) {
        for (const key of keys.slice(0, max)) audit.emit(type, { object: key, file: origin.get(key) });
        if (keys.length > max) audit.emit(`${type}.more`, { count: keys.length - max });
      }
    }
    fingerprints = next;
  }

  // Log each problem once (when it appears), not on every rebuild.
  function logErrors(errors: ConfigError[]): void {
    const lines = new Set(errors.map(formatError));
    for (const l of lines) if (!lastErrorLines.has(l)) logger.warn({ problem: l }, 'config problem');
    for (const l of lastErrorLines) if (!lines.has(l)) logger.info({ problem: l }, 'config problem resolved');
    lastErrorLines = lines;
  }

  let waiters: Array<() => void> = [];
  const debouncer = new Debouncer(
    () => {
      rebuild();
      const w = waiters;
      waiters = [];
      for (const f of w) f();
    },
    config.debounceMs,
    config.debounceMaxMs,
  );
  source.on('change', () => debouncer.poke());
  source.on('error', (err: unknown) => logger.error({ err }, 'config source error'));
  // A configured Redis gets a bounded chance to connect before the first Check (else fail-closed
  // would answer 503s while a healthy Redis is still connecting).
  if (quota instanceof FailoverQuotaStore && !(await quota.whenReady(3000))) {
    logger.warn('quota store (redis) not reachable at startup: serving per --quota-fail-mode until it is');
  }
  // ext_authz is bound first: the generated Envoy config names its port.
  const authz = await startAuthzServer(config.host, config.authzPort, {
    check: (input) => authorizer.check(input),
    logger: logger.child({ c: 'authz' }),
    hooks: authzHooks,
    credentials: serverCredentialsFrom(
      { cert: config.authzTlsCert, key: config.authzTlsKey, clientCa: config.authzClientCa },
      (f) => fs.readFileSync(f),
    ),
  });
  if (config.envoyAuthz === 'on' && !config.envoyAuthzAddress && (config.host === '0.0.0.0' || config.host === '::')) {
    logger.warn(
      '--host is a wildcard: Envoy is told to reach ext_authz at 127.0.0.1; set --envoy-authz-address (e.g. the Service name) for remote Envoys',
    );
  }
  await source.start();
  rebuild();
  kube?.start();
  const webhook =
    kube && config.webhookPort !== undefined
      ? startWebhook(config, kube, source, () => certs?.ca, { secretSeed, clock }, logger)
      : undefined;
  const coredns = kube ? startCoredns(config, kube, logger) : undefined;

  const ads = new AdsServer({
    cache,
    logger: logger.child({ c: 'ads' }),
    maxNames: config.xdsMaxNames,
    hooks: {
      ...metrics.xdsHooks,
      onNack: (typeUrl, detail) => {
        metrics.xdsHooks.onNack?.(typeUrl, detail);
        onNackDetail(typeUrl, detail);
      },
    },
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
    allowName: (principal, node, kind, name) => {
      if (kind !== 'secret') return true;
      return maySeeSecret(
        principal,
        name,
        secretFacts.get(name),
        () => {
          const id = nodeIdentity(node);
          return id !== undefined && spiffeIdFor(config.trustDomain, id.namespace, id.serviceAccount) === name;
        },
        config.gatewaySecrets,
      );
    },
  });
  metrics.setProxySource(() => ads.statuses());
  if (config.xdsNodeAuth === 'insecure-node-metadata')
    logger.warn(
      '--xds-node-auth insecure-node-metadata: every xDS client receives every certificate and its private key',
    );
  if (config.loopbackGateway === 'on')
    logger.warn(
      '--loopback-gateway on: every plaintext xDS client on loopback receives the gateway certificates (local development only)',
    );
  // Workload certificates nobody subscribes to any more are dropped (minted again on demand).
  const evictIdleWorkloadCerts = (): number => {
    const held = new Set<string>();
    for (const s of ads.statuses())
      for (const t of Object.values(s.types)) for (const n of t.subscribed) if (n.startsWith('spiffe://')) held.add(n);
    return certs?.retainWorkloads(held) ?? 0;
  };
  const evictTimer = setInterval(evictIdleWorkloadCerts, 60_000);
  evictTimer.unref();
  const server = new grpc.Server({
    'grpc.max_receive_message_length': 16 * 1024 * 1024,
    'grpc.keepalive_time_ms': 30_000,
    'grpc.keepalive_timeout_ms': 10_000,
    'grpc.keepalive_permit_without_calls': 1,
  });
  ads.register(server);
  // Envoy's access logs (ALS) arrive on the xDS port: its bootstrap already has a cluster for it.
  const als = registerAls(server, {
    metrics: createTrafficMetrics(metrics.registry, () => known, config.metricsPerApikey === 'on'),
    logger: logger.child({ c: 'als' }),
  });
  const xdsPort = await new Promise<number>((resolve, reject) =>
    server.bindAsync(
      `${config.host}:${config.xdsPort}`,
      serverCredentialsFrom({ cert: config.xdsTlsCert, key: config.xdsTlsKey, clientCa: config.xdsClientCa }, (f) =>
        fs.readFileSync(f),
      ),
      (err, port) => (err ? reject(err) : resolve(port)),
    ),
  );

  const admin: FastifyInstance = buildAdminApp({
    ready: () => ready,
    health: () => ({ builds, lastBuildMs: Math.round(lastBuildMs), proxies: ads.statuses().length }),
    registry: metrics.registry,
    proxies: () => ads.statuses(),
    configDump: (nodeId) => configDumpFor(nodeId, ads.statuses(), (s) => cache.get(s.nodeType)),
    ...(config.adminToken ? { token: config.adminToken } : {}),
  });
  await admin.listen({ host: config.host, port: config.adminPort });
  const addr = admin.server.address();
  const adminPort = typeof addr === 'object' && addr ? addr.port : config.adminPort;
  logger.info(
    {
      xdsPort,
      authzPort: authz.port,
      adminPort,
      configDir: config.configDir,
      quotaStore: config.redisUrl ? 'redis' : 'memory',
    },
    'otoroshi-xds serving',
  );

  let stopped = false;
  return {
    xdsPort,
    authzPort: authz.port,
    authorizer,
    adminPort,
    metrics,
    cache,
    ads,
    statuses: () => statuses,
    evictIdleWorkloadCerts,
    workloadCertCount: () => certs?.workloadCount ?? 0,
    rebuildNow: async () => {
      await source.scan();
      await new Promise<void>((resolve) => {
        waiters.push(resolve);
        debouncer.poke();
      });
    },
    stop: async () => {
      if (stopped) return;
      stopped = true;
      source.stop();
      await webhook?.stop();
      coredns?.stop();
      await kube?.stop();
      debouncer.cancel();
      if (retireTimer) clearTimeout(retireTimer);
      if (renewTimer) clearTimeout(renewTimer);
      clearInterval(evictTimer);
      stopping = true;
      if (caRetry) clearTimeout(caRetry);
      certs?.ca.pool.close();
      ads.closeAllStreams();
      als.closeAll();
      await new Promise<void>((resolve) => {
        const t = setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, 5000);
        server.tryShutdown(() => {
          clearTimeout(t);
          resolve();
        });
      });
      await authz.stop();
      await admin.close();
      jwt.close();
      await quota.close();
      await certs?.store.flush().catch(() => undefined);
      await audit.close();
    },
  };
}

export type { NodeType };
