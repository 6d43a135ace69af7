// The rebuild / publish stage: on every (debounced) change of the source, compile the view, issue
// certificates, hand the model to ext_authz and publish one snapshot per node type: the Envoy
// gateways' as soon as it is made, then the proxyless gRPC clients' (translated after it). A failed
// build keeps the last good snapshot; objects Envoy rejected stay out until they change.
import type { Logger } from 'pino';
import { vhdsView } from '../xds/vhds.js';
import { modelSettingsFrom, translateOptionsFrom, type Config } from '../config.js';
import type { Audit } from '../audit.js';
import { Debouncer } from '../debounce.js';
import type { Metrics } from '../metrics.js';
import type { ConfigError, Model, ObjectStatus } from '../model/types.js';
import {
  compileGatewayFirstSteps,
  formatError,
  runStepsYielding,
  type Compiled,
  type CompiledSet,
} from '../pipeline.js';
import { encodeObject, TYPE_URLS, type ProtoObject, type ResourceKind } from '../../proto/loader.js';
import type { ConfigSource } from '../sources/index.js';
import type { KubeController } from '../k8s/controller.js';
import type { SnapshotCache } from '../xds/cache.js';
import { secretFactsSteps, type SecretFacts } from '../xds/node-auth.js';
import { EnvoyRejections } from '../xds/rejections.js';
import { nextRetirement, withRetiredClusters, type RetiredClusters } from '../xds/retire.js';
import { buildSnapshotSteps, VersionSource } from '../xds/snapshot.js';
import { TranslateCache, grpcListenerFor } from '../xds/translate.js';
import { SidecarSnapshots, sidecarBuilder } from '../xds/sidecar/snapshots.js';
import type { NodeType, ResourceSet } from '../xds/types.js';
import type { AuthzStage } from './authz.js';
import type { CaStage } from './ca.js';
import { ConfigChangeAudit, ProblemLog } from './config-changes.js';
import { exportSecretFiles } from './secret-files.js';

function encoderFor(compiled: CompiledSet): (kind: ResourceKind, obj: ProtoObject) => Uint8Array {
  return (kind, obj) => compiled.bytes.get(obj) ?? encodeObject(TYPE_URLS[kind], obj);
}

export interface PublishStageOptions {
  config: Config;
  logger: Logger;
  metrics: Metrics;
  audit: Audit;
  cache: SnapshotCache;
  source: ConfigSource;
  kube: KubeController | undefined;
  ca: CaStage;
  authz: AuthzStage;
  secretSeed: string;
  now: () => number;
}

/** Label values the traffic metrics accept (bounded cardinality): the current model's ids. */
export interface KnownIds {
  descriptors: ReadonlySet<string>;
  apikeys: ReadonlySet<string>;
}

export class PublishStage {
  statuses: ObjectStatus[] = [];
  ready = false;
  builds = 0;
  lastBuildMs = 0;
  known: KnownIds = { descriptors: new Set(), apikeys: new Set() };
  /** Which nodes may hold each secret of the published Envoy set. */
  secretFacts = new Map<string, SecretFacts>();
  private readonly versions = new VersionSource();
  private readonly published: Partial<Record<NodeType, ResourceSet>> = {};
  private readonly retired: Record<NodeType, RetiredClusters> = { envoy: new Map(), grpc: new Map() };
  private retireTimer: NodeJS.Timeout | undefined;
  private readonly rejections = new EnvoyRejections();
  private lastModel: Model | undefined;
  private readonly changes: ConfigChangeAudit;
  private readonly problems: ProblemLog;
  private readonly debouncer: Debouncer;
  private waiters: Array<() => void> = [];
  /** Memos of translate, kept across rebuilds (an unchanged descriptor is not translated again). */
  private readonly translateCache = new TranslateCache();
  /** Sidecar nodes: one snapshot per workload shape, rebuilt with every build (docs/mesh.md). */
  readonly sidecars: SidecarSnapshots;
  /** Snapshot keys the open xDS streams read (set by the xDS stage): unused sidecar keys are dropped. */
  snapshotKeysInUse: () => Set<string> = () => new Set();

  constructor(private readonly o: PublishStageOptions) {
    const { config } = o;
    this.changes = new ConfigChangeAudit(o.audit, config.source === 'kubernetes' ? 'kubernetes' : config.configDir);
    this.problems = new ProblemLog(o.logger);
    this.debouncer = new Debouncer(() => this.runOnce(), config.debounceMs, config.debounceMaxMs);
    o.source.on('change', () => this.poke());
    o.source.on('error', (err: unknown) => o.logger.error({ err }, 'config source error'));
    this.sidecars = new SidecarSnapshots(o.cache, (key, err) =>
      o.logger.error({ key, err: (err as Error).message }, 'sidecar snapshot not published'),
    );
  }

  /** Schedules a (debounced) rebuild. */
  poke(): void {
    this.debouncer.poke();
  }

  /** Resolves after the next rebuild completes (tests use it after writing files). */
  async rebuildNow(): Promise<void> {
    await this.o.source.scan();
    await new Promise<void>((resolve) => {
      this.waiters.push(resolve);
      this.poke();
    });
  }

  private async runOnce(): Promise<void> {
    // Waiters that arrive while this build runs are answered by the next one (it sees their change).
    const w = this.waiters;
    this.waiters = [];
    await this.rebuildYielding();
    for (const f of w) f();
  }

  /** NACK feedback: the objects a NACK traces to are left out of the next snapshot. */
  onNack(typeUrl: string, detail: string | undefined): void {
    if (detail === undefined || this.lastModel === undefined) return;
    const sets = [this.published.envoy, this.published.grpc].filter((x): x is ResourceSet => x !== undefined);
    const keys = this.rejections.record(detail, sets, this.lastModel, this.o.source.view());
    if (keys.length === 0) return;
    this.o.logger.warn(
      { typeUrl, objects: keys, error: detail.slice(0, 500) },
      'Envoy rejected the config made from these objects: left out until they change',
    );
    this.poke();
  }

  /**
   * The first build, like every rebuild (the xDS server, already listening, serves its Envoy snapshot
   * while the proxyless gRPC part is made), as one of the debouncer's runs: a change or a certificate
   * issued meanwhile is built after it, never alongside.
   */
  async firstBuild(): Promise<void> {
    await this.debouncer.exclusive(() => this.rebuildYielding());
  }

  /**
   * A rebuild, letting the event loop run between its stages: xDS and ext_authz sockets are read
   * meanwhile. What a node sees stays atomic: each snapshot is set at once, when it is complete.
   */
  async rebuildYielding(): Promise<void> {
    if (!this.canBuild()) return;
    const t0 = performance.now();
    try {
      this.built(await runStepsYielding(this.compileAndPublish()), t0);
    } catch (err) {
      this.failed(err, t0);
    }
  }

  private canBuild(): boolean {
    if (this.o.source.synced?.() !== false) return true;
    this.o.logger.warn('config source not synced yet (API server unreachable?): nothing published');
    return false;
  }

  private built({ model, version }: { model: Model; version: string }, t0: number): void {
    this.ready = true;
    this.builds++;
    this.lastBuildMs = performance.now() - t0;
    this.o.metrics.observeSnapshotBuild(this.lastBuildMs / 1000, true);
    const invalid = this.statuses.filter((s) => s.state === 'invalid').length;
    this.o.logger.info(
      { version, descriptors: model.descriptors.length, invalidObjects: invalid, ms: Math.round(this.lastBuildMs) },
      'snapshot published',
    );
  }

  private failed(err: unknown, t0: number): void {
    // A system error: keep the last good snapshot.
    this.o.metrics.observeSnapshotBuild((performance.now() - t0) / 1000, false);
    this.o.logger.error({ err }, 'snapshot build failed; keeping the last good snapshot');
  }

  private *compileAndPublish(): Generator<void, { model: Model; version: string }> {
    const { config, ca, authz, kube, metrics } = this.o;
    const full = this.o.source.view();
    yield* this.changes.recordSteps(full.objects);
    // Objects Envoy rejected stay out until they change.
    const { view, statuses: rejectedStatuses } = this.rejections.filter(full);
    let renewal: number | undefined;
    const translateOpts = translateOptionsFrom(config, authz.port, authz.caPem);
    const first = yield* compileGatewayFirstSteps(
      view,
      { secretSeed: this.o.secretSeed, ...modelSettingsFrom(config), now: this.o.now() },
      translateOpts,
      (built) => {
        renewal = ca.materialize(built);
      },
      this.translateCache,
    );
    yield;
    const model = first.model;
    ca.scheduleRenewal(renewal);
    this.statuses = [...first.statuses, ...rejectedStatuses];
    this.lastModel = model;
    kube?.afterBuild(full, this.statuses, model);
    metrics.setConfigObjects(this.statuses);
    metrics.setCertificates(model.certificates);
    // cluster mode: Secrets, by the leader
    if (kube === undefined) exportSecretFiles(config.dataDir, model, view.objects, this.o.audit, this.o.logger);
    yield* authz.setModelSteps(model);
    this.known = {
      descriptors: new Set(model.descriptors.map((d) => d.id)),
      apikeys: new Set(model.apikeys.map((k) => k.clientId)),
    };
    const version = this.versions.next();
    // Envoy gateways get theirs first: the rest of the compile (proxyless gRPC) cannot change it.
    yield* this.publishEnvoy(version, first.envoy);
    yield;
    const c = yield* first.rest();
    this.problems.record([...c.errors, ...rejectedStatuses.flatMap((st) => st.errors)]);
    yield;
    yield* this.publishGrpc(version, c);
    yield;
    this.sidecars.rebuild(
      sidecarBuilder({
        model,
        objects: view.objects,
        mesh: { meshDomain: config.meshDomain, clusterDomain: config.clusterDomain },
        outboundPolicy: config.meshOutboundPolicy,
        ...(translateOpts.authz ? { authz: translateOpts.authz } : {}),
        gateway: this.published.envoy ?? c.envoy.set,
        workloadSecret: (name) => ca.workloadSecret(name),
        trustDomain: config.trustDomain,
        onErrors: (errors) => this.logSidecarErrors(errors),
      }),
      version,
      this.snapshotKeysInUse(),
    );
    return { model, version };
  }

  /** The Envoy gateways' snapshot, built in steps and set at once. */
  private *publishEnvoy(version: string, compiled: CompiledSet): Generator<void, void> {
    const { config, ca } = this.o;
    const set = withRetiredClusters(
      this.published.envoy,
      compiled.set,
      this.retired.envoy,
      Date.now(),
      config.clusterGraceMs,
    );
    // Workload certificates (SDS name = the SPIFFE id) are minted on demand, per snapshot.
    // The published snapshots lend their unchanged resources (not hashed again).
    const envoy = yield* buildSnapshotSteps(
      'envoy',
      version,
      set,
      encoderFor(compiled),
      (kind, name) => (kind === 'secret' ? ca.workloadSecret(name) : undefined),
      this.o.cache.get('envoy'),
    );
    yield;
    // Delta Envoys get the route configurations split for VHDS (SotW Envoys keep RDS).
    if (config.routeDiscovery !== 'rds') envoy.vhds = vhdsView(envoy, config.routeDiscovery === 'vhds');
    yield;
    const secretFacts = yield* secretFactsSteps(set);
    // What set walks is done here in batches; the snapshot itself is set at once.
    yield* this.o.cache.prepareSteps({ envoy });
    this.secretFacts = secretFacts;
    this.o.cache.setMany({ envoy });
    this.published.envoy = set;
    this.scheduleRetirement();
  }

  /** The proxyless gRPC clients' snapshot (same version as the Envoy one of the build). */
  private *publishGrpc(version: string, c: Compiled): Generator<void, void> {
    const { config } = this.o;
    const set = withRetiredClusters(
      this.published.grpc,
      c.grpc.set,
      this.retired.grpc,
      Date.now(),
      config.clusterGraceMs,
    );
    const domains = c.grpcDomains;
    const grpc = yield* buildSnapshotSteps(
      'grpc',
      version,
      set,
      encoderFor(c.grpc),
      (kind, name) => (kind === 'listener' ? grpcListenerFor(name, domains) : undefined),
      this.o.cache.get('grpc'),
    );
    yield;
    yield* this.o.cache.prepareSteps({ grpc });
    this.o.cache.setMany({ grpc });
    this.published.grpc = set;
    this.scheduleRetirement();
  }

  /** Sidecar resources that failed validation: logged once per distinct problem (bounded). */
  private readonly sidecarProblemsSeen = new Set<string>();
  private logSidecarErrors(errors: readonly ConfigError[]): void {
    for (const e of errors) {
      const line = formatError(e);
      if (this.sidecarProblemsSeen.has(line)) continue;
      if (this.sidecarProblemsSeen.size >= 1000) this.sidecarProblemsSeen.clear();
      this.sidecarProblemsSeen.add(line);
      this.o.logger.warn({ problem: line }, 'sidecar config problem');
    }
  }

  /** Rebuild once the oldest retired cluster has served its grace period. */
  private scheduleRetirement(): void {
    const grace = this.o.config.clusterGraceMs;
    if (this.retireTimer) clearTimeout(this.retireTimer);
    this.retireTimer = undefined;
    const at = [nextRetirement(this.retired.envoy, grace), nextRetirement(this.retired.grpc, grace)]
      .filter((x): x is number => x !== undefined)
      .sort((a, b) => a - b)[0];
    if (at === undefined) return;
    this.retireTimer = setTimeout(() => this.poke(), Math.max(0, at - Date.now()) + 5);
    this.retireTimer.unref();
  }

  stop(): void {
    this.debouncer.cancel();
    if (this.retireTimer) clearTimeout(this.retireTimer);
  }
}
