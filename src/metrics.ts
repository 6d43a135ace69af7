// Prometheus metrics (prom-client) on an injected registry — never the global one.
// Low cardinality: labels are node types, xDS types, decisions and reasons; no per-apikey or
// per-descriptor series here.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { XdsHooks } from './xds/node-status.js';
import type { AuthzHooks, Decision } from './authz/types.js';
import type { ObjectStatus, TlsCertificate } from './model/types.js';
import type { NodeType } from './xds/types.js';
import { TYPE_URLS } from '../proto/loader.js';
import { OTOROSHI_KINDS } from './model/build.js';

/**
 * Known label values: every labelled counter starts at 0 for each of them, so that rates and
 * alerts see 0 rather than no series before the first event.
 */
export const KNOWN_LABELS = {
  type: Object.values(TYPE_URLS).map(shortType),
  result: ['ok', 'error'],
  quota: ['throttling', 'daily', 'monthly'],
  mode: ['fail-open', 'fail-closed'],
  securityKind: ['bad_secret', 'bad_jwt', 'jwt_alg', 'jwt_alg_confusion', 'internal_error'],
  objectKind: [...OTOROSHI_KINDS, 'Ingress'],
  objectState: ['valid', 'invalid'],
} as const;

/** `type.googleapis.com/envoy.config.cluster.v3.Cluster` → `Cluster`. */
export function shortType(typeUrl: string): string {
  const i = typeUrl.lastIndexOf('.');
  return i >= 0 ? typeUrl.slice(i + 1) : typeUrl;
}

/** What the metrics read of a connected stream (a subset of NodeStatus). */
export interface ProxyView {
  nodeType: NodeType;
  types?: Record<string, { sentVersion?: string; ackedVersion?: string }>;
}

export interface Metrics {
  registry: Registry;
  xdsHooks: XdsHooks;
  authzHooks: AuthzHooks;
  observeSnapshotBuild(seconds: number, ok: boolean): void;
  setConfigObjects(statuses: readonly ObjectStatus[]): void;
  /** Expiry of every certificate served (one series per SDS secret name: bounded by the config). */
  setCertificates(certs: readonly TlsCertificate[]): void;
  /** Reads connected proxies (node type, per-type sent/ACKed versions) at scrape time. */
  setProxySource(source: () => ProxyView[]): void;
}

/** Gauges computed at scrape time from the connected streams. */
function registerProxyGauges(registry: Registry, proxySource: () => ProxyView[]): void {
  new Gauge({
    name: 'oxds_xds_connected_proxies',
    help: 'xDS streams currently open, by node type',
    labelNames: ['node_type'],
    registers: [registry],
    collect() {
      const counts: Record<NodeType, number> = { envoy: 0, grpc: 0 };
      for (const p of proxySource()) counts[p.nodeType]++;
      for (const [k, v] of Object.entries(counts)) this.set({ node_type: k }, v);
    },
  });
  new Gauge({
    name: 'oxds_xds_stale_proxies',
    help: 'streams whose last response of a type is not ACKed (sent version != ACKed version), by type',
    labelNames: ['type'],
    registers: [registry],
    collect() {
      this.reset();
      const counts = new Map<string, number>(KNOWN_LABELS.type.map((t) => [t, 0]));
      for (const p of proxySource()) {
        for (const [typeUrl, t] of Object.entries(p.types ?? {})) {
          if (t.sentVersion !== undefined && t.sentVersion !== t.ackedVersion)
            counts.set(shortType(typeUrl), (counts.get(shortType(typeUrl)) ?? 0) + 1);
        }
      }
      for (const [type, n] of counts) this.set({ type }, n);
    },
  });
}

function xdsMetrics(registry: Registry) {
  const pushes = new Counter({
    name: 'oxds_xds_pushes_total',
    help: 'xDS responses sent, by resource type',
    labelNames: ['type'],
    registers: [registry],
  });
  const pushBytes = new Counter({
    name: 'oxds_xds_push_bytes_total',
    help: 'bytes of xDS responses sent, by resource type',
    labelNames: ['type'],
    registers: [registry],
  });
  const pushDuration = new Histogram({
    name: 'oxds_xds_push_duration_seconds',
    help: 'time from a config change or request to the response being written',
    labelNames: ['type'],
    buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [registry],
  });
  const acks = new Counter({
    name: 'oxds_xds_acks_total',
    help: 'ACKs received, by resource type',
    labelNames: ['type'],
    registers: [registry],
  });
  const nacks = new Counter({
    name: 'oxds_xds_nacks_total',
    help: 'NACKs received, by resource type',
    labelNames: ['type'],
    registers: [registry],
  });
  const badRequests = new Counter({
    name: 'oxds_xds_bad_requests_total',
    help: 'discovery requests ignored or refused',
    registers: [registry],
  });
  for (const type of KNOWN_LABELS.type) for (const c of [pushes, pushBytes, acks, nacks]) c.inc({ type }, 0);
  for (const type of KNOWN_LABELS.type) pushDuration.zero({ type });
  badRequests.inc(0);
  return { pushes, pushBytes, pushDuration, acks, nacks, badRequests };
}

function stateMetrics(registry: Registry) {
  const build = new Histogram({
    name: 'oxds_snapshot_build_duration_seconds',
    help: 'time to rebuild the model, translate, validate and publish a snapshot',
    labelNames: ['result'],
    buckets: [0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  });
  const objects = new Gauge({
    name: 'oxds_config_objects',
    help: 'configuration objects, by kind and state',
    labelNames: ['kind', 'state'],
    registers: [registry],
  });
  for (const result of KNOWN_LABELS.result) build.zero({ result });
  return { build, objects };
}

function authzMetrics(registry: Registry) {
  const checks = new Counter({
    name: 'oxds_authz_checks_total',
    help: 'ext_authz decisions, by decision and reason',
    labelNames: ['decision', 'reason'],
    registers: [registry],
  });
  const checkDuration = new Histogram({
    name: 'oxds_authz_check_duration_seconds',
    help: 'ext_authz decision time',
    buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.1],
    registers: [registry],
  });
  const quotaExceeded = new Counter({
    name: 'oxds_quota_exceeded_total',
    help: 'calls refused by a quota, by quota',
    labelNames: ['quota'],
    registers: [registry],
  });
  const quotaStoreErrors = new Counter({
    name: 'oxds_quota_store_errors_total',
    help: 'quota store failures, by the policy applied (fail-open: local counters; fail-closed: 503)',
    labelNames: ['mode'],
    registers: [registry],
  });
  for (const quota of KNOWN_LABELS.quota) quotaExceeded.inc({ quota }, 0);
  for (const mode of KNOWN_LABELS.mode) quotaStoreErrors.inc({ mode }, 0);
  return { checks, checkDuration, quotaExceeded, quotaStoreErrors };
}

function securityMetrics(registry: Registry) {
  const certExpiry = new Gauge({
    name: 'oxds_certificates_expiry_timestamp_seconds',
    help: 'notAfter of each certificate served over SDS (unix seconds), by secret name',
    labelNames: ['secret'],
    registers: [registry],
  });
  const suspicious = new Counter({
    name: 'oxds_security_events_total',
    help: 'suspicious events (bad secrets, alg confusion...)',
    labelNames: ['kind'],
    registers: [registry],
  });

  for (const kind of KNOWN_LABELS.securityKind) suspicious.inc({ kind }, 0);
  return { certExpiry, suspicious };
}

function xdsHooksOf(m: ReturnType<typeof xdsMetrics>): XdsHooks {
  return {
    onPush(typeUrl, bytes, ms) {
      const type = shortType(typeUrl);
      m.pushes.inc({ type });
      m.pushBytes.inc({ type }, bytes);
      m.pushDuration.observe({ type }, ms / 1000);
    },
    onAck: (typeUrl) => m.acks.inc({ type: shortType(typeUrl) }),
    onNack: (typeUrl) => m.nacks.inc({ type: shortType(typeUrl) }),
    onBadRequest: () => m.badRequests.inc(),
  };
}

function authzHooksOf(m: ReturnType<typeof authzMetrics>, suspicious: Counter): AuthzHooks {
  // One labelled child per (decision, reason), resolved once: no label object hashed per Check.
  const children = new Map<string, Counter.Internal>();
  const childOf = (allow: boolean, reason: string): Counter.Internal => {
    const key = allow ? `a${reason}` : `d${reason}`;
    let c = children.get(key);
    if (c === undefined) {
      c = m.checks.labels({ decision: allow ? 'allow' : 'deny', reason });
      children.set(key, c);
    }
    return c;
  };
  return {
    onCheck(decision: Decision, seconds: number) {
      childOf(decision.allow, decision.reason).inc();
      m.checkDuration.observe(seconds);
    },
    onQuotaExceeded: (_clientId, which) => m.quotaExceeded.inc({ quota: which }),
    onQuotaStoreError: (mode) => m.quotaStoreErrors.inc({ mode }),
    onSuspicious: (e) => suspicious.inc({ kind: e.kind }),
  };
}

/** Objects per kind and state: every known kind × state at 0, then the counts. */
function setObjectCounts(objects: Gauge, statuses: readonly ObjectStatus[]): void {
  objects.reset();
  const counts = new Map<string, number>();
  for (const kind of new Set([...KNOWN_LABELS.objectKind, ...statuses.map((x) => x.kind)]))
    for (const state of KNOWN_LABELS.objectState) counts.set(`${kind}\u0000${state}`, 0);
  for (const s of statuses) {
    const k = `${s.kind}\u0000${s.state}`;
    counts.set(k, (counts.get(k) ?? 0) + 1);
  }
  for (const [k, n] of counts) {
    const [kind, state] = k.split('\u0000');
    objects.set({ kind: kind ?? '', state: state ?? '' }, n);
  }
}

export function createMetrics(opts: { registry?: Registry; processMetrics?: boolean } = {}): Metrics {
  const registry = opts.registry ?? new Registry();
  if (opts.processMetrics !== false) collectDefaultMetrics({ register: registry });
  let proxySource: () => ProxyView[] = () => [];
  registerProxyGauges(registry, () => proxySource());
  const xds = xdsMetrics(registry);
  const state = stateMetrics(registry);
  const authz = authzMetrics(registry);
  const { certExpiry, suspicious } = securityMetrics(registry);
  return {
    registry,
    xdsHooks: xdsHooksOf(xds),
    authzHooks: authzHooksOf(authz, suspicious),
    observeSnapshotBuild: (seconds, ok) => state.build.observe({ result: ok ? 'ok' : 'error' }, seconds),
    setConfigObjects: (statuses) => setObjectCounts(state.objects, statuses),
    setCertificates(certs) {
      certExpiry.reset();
      for (const c of certs) {
        const t = c.notAfter ? Date.parse(c.notAfter) : NaN;
        if (!Number.isNaN(t)) certExpiry.set({ secret: c.secretName }, Math.floor(t / 1000));
      }
    },
    setProxySource(source) {
      proxySource = source;
    },
  };
}
