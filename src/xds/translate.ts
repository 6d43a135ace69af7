// translate(model) → Envoy and proxyless-gRPC resources, in two steps: the model is planned
// (src/xds/plan/: which listeners, virtual hosts, ordered routes and clusters each node role gets),
// then builders (src/xds/resources/, emit.ts) make and validate the messages. Deterministic: same
// model, same output, every list sorted. Invalid per-descriptor contributions are dropped with an
// OXDS_ENVOY_VALIDATION error; they never sink the shared route configurations. Memos live in a
// TranslateCache owned by the caller.
import type { ProtoObject } from '../../proto/loader.js';
import type { ConfigError, Model } from '../model/types.js';
import { servedDescriptors } from '../model/serving.js';
import { hostMatches } from '../model/patterns.js';
import { DEFAULT_TRANSLATE_OPTIONS, type ResourceSet, type TranslateOptions, type TranslateOutput } from './types.js';
import * as names from './names.js';
import { byString } from './resources/common.js';
import { type HcmOptions, httpConnectionManager } from './resources/hcm.js';
import { httpListener, httpsListener } from './resources/listener.js';
import type { RouteVariant } from './resources/route.js';
import { extAuthzCluster } from './resources/ext-authz.js';
import { tcpListener } from './resources/tcp.js';
import { planTcpService } from './plan/tcp.js';
import { TranslateCache, type DescriptorMemo, type VhostRec } from './plan/cache.js';
import type { Contribution, TranslateCtx } from './plan/contribution.js';
import { descriptorError, descriptorProblem, vhostIssue } from './plan/errors.js';
import { planVirtualHostsSteps, type OwnEntries, type VhostPlan } from './plan/route-configs.js';
import { routeSteps } from './plan/route-steps.js';
import type { ClusterPlan, ListenerPlan, Plan, RouteConfigPlan, RolePlan } from './plan/types.js';
import { emitVirtualHostsSteps, grpcApiListener, grpcApiListenerMemo, routeConfigRec, type OnBad } from './emit.js';
import { routeConfigHeaders } from './resources/gateway-routes.js';
import { memoFor } from './contributions.js';
import { gatewayFilters, hcmOptions } from './gateway-filters.js';
import { sdsSecrets, tlsResources } from './gateway-tls.js';
import { type Bound, tcpProblem } from './tcp-services.js';
import { STEP_BATCH, eachBatched, runSteps, type Steps } from '../model/steps.js';

export { TranslateCache } from './plan/cache.js';
export { encodedBytes } from './emit.js';
export { envoyDomain, hostRelation } from './plan/hosts.js';
export { clusterHashInput, endpointWeights } from './plan/contribution.js';
export { OPENAPI_PATH } from './plan/route-steps.js';

/** Virtual hosts of one variant: as planned, and as emitted (by key). */
interface Variant {
  plans: VhostPlan[];
  emitted: Map<string, VhostRec>;
}

/** Everything translate works out from one model. */
interface Work {
  o: TranslateOptions;
  authz: boolean;
  ctx: TranslateCtx;
  cache: TranslateCache;
  errors: ConfigError[];
  envoy: ResourceSet;
  grpc: ResourceSet;
  plan: { gateway: RolePlan; grpc: RolePlan };
  /** The route configurations' plans are wanted (goldens, tools): translate alone skips writing them out. */
  withPlan: boolean;
}

function emptySet(): ResourceSet {
  return { listeners: [], routes: [], clusters: [], endpoints: [], secrets: [] };
}

function emptyRole(role: RolePlan['role']): RolePlan {
  return { role, listeners: [], routeConfigs: [], clusters: [], secrets: [] };
}

/**
 * The served descriptors' contributions (memoised), pausing every few hundred descriptors;
 * descriptors with a problem are reported and left out.
 */
function* contributions(w: Work, model: Model): Steps<Map<Contribution, DescriptorMemo>> {
  const memos = new Map<Contribution, DescriptorMemo>();
  const ctxJson = JSON.stringify(w.ctx);
  yield* eachBatched(servedDescriptors(model, descriptorProblem), (s) => {
    w.errors.push(...s.errors);
    if (s.served === undefined) return;
    const m = memoFor(w.cache, s.served, w.authz, w.ctx, ctxJson);
    if (m.problem) w.errors.push({ ...m.problem });
    else memos.set(m.c, m);
  });
  return memos;
}

/** What `assemble` makes: the virtual hosts of each variant, and the contributions failing in context. */
interface Assembled {
  bad: Map<Contribution, ConfigError>;
  http: Variant;
  secure: Variant | undefined;
  grpc: Variant;
}

/**
 * Plans and emits the virtual hosts of every variant over `cs`, pausing every few hundred virtual
 * hosts; contributions failing in context go to `bad`.
 */
function* assemble(
  w: Work,
  cs: readonly Contribution[],
  memos: ReadonlyMap<Contribution, DescriptorMemo>,
  https: boolean,
): Steps<Assembled> {
  const bad = new Map<Contribution, ConfigError>();
  const onBad =
    (variant: RouteVariant): OnBad =>
    (c, v, issue, route) => {
      if (!bad.has(c)) bad.set(c, descriptorError(c.d, `routes(${variant})`, vhostIssue(v, route, issue)));
    };
  // A virtual host with one candidate has the entries its descriptor's validation planned.
  const own: OwnEntries = (c, v) => memos.get(c)?.own.get(v);
  function* variant(v: RouteVariant, withNotFound: boolean): Steps<Variant> {
    const plans = yield* planVirtualHostsSteps(cs, v, withNotFound, w.authz, w.cache, own);
    const o = { variant: v, withNotFound, authz: w.authz, build: true };
    return { plans, emitted: yield* emitVirtualHostsSteps(w.cache, plans, o, memos, onBad(v)) };
  }
  const http = yield* variant('http', true);
  const secure = https ? yield* variant('https', true) : undefined;
  const grpc = yield* variant('grpc', false);
  return { bad, http, secure, grpc };
}

/**
 * A route valid on its own can still fail in another descriptor's virtual host (another
 * :authority check): drop such descriptors and assemble again (rare; never more than once each).
 */
function* routeVariants(
  w: Work,
  memos: ReadonlyMap<Contribution, DescriptorMemo>,
  https: boolean,
): Steps<Assembled & { cs: Contribution[] }> {
  let cs = [...memos.keys()];
  let vhosts = yield* assemble(w, cs, memos, https);
  while (vhosts.bad.size > 0) {
    const bad = vhosts.bad;
    for (const c of cs) {
      const e = bad.get(c);
      if (e) w.errors.push(e);
    }
    cs = cs.filter((c) => !bad.has(c));
    vhosts = yield* assemble(w, cs, memos, https);
  }
  return { cs, ...vhosts };
}

/** The plan of a route configuration over the emitted virtual hosts of `vs` (in `order`). */
function routeConfigPlan(name: string, variant: RouteVariant, vs: Variant, order: readonly string[]): RouteConfigPlan {
  const byV = new Map(vs.plans.map((p) => [p.v, p]));
  const virtualHosts = order.map((v) => {
    const p = byV.get(v) as VhostPlan;
    const routes = p.entries.map((e) => ({
      descriptor: e.c.d.id,
      ...(e.pathIndex !== undefined ? { pathIndex: e.pathIndex } : {}),
      ...(e.path !== undefined ? { path: e.path } : {}),
      ...(e.authority !== undefined ? { authority: e.authority } : {}),
      steps: routeSteps(e, variant),
    }));
    const domains = variant === 'grpc' && !v.includes('*') ? [v, `${v}:*`] : [v];
    return { name: names.virtualHostName(v), domains, routes, notFound: variant !== 'grpc' };
  });
  return { name, variant, virtualHosts };
}

/** A route configuration of the gateway: planned, then built from its emitted virtual hosts. */
function gatewayRouteConfig(w: Work, name: string, variant: RouteVariant, vs: Variant): void {
  w.envoy.routes.push(routeConfigRec(w.cache, name, [...vs.emitted.values()], routeConfigHeaders(variant)));
  if (w.withPlan) w.plan.gateway.routeConfigs.push(routeConfigPlan(name, variant, vs, [...vs.emitted.keys()]));
}

/** The gateway's HTTP filters and connection manager options, and its HTTPS listener (when a binding is served). */
interface GatewayHttp {
  filters: ProtoObject[];
  hcm: HcmOptions;
  chains: ProtoObject[];
  https: ProtoObject | undefined;
}

function gatewayHttpOf(w: Work, model: Model): GatewayHttp {
  const { o } = w;
  const filters = gatewayFilters(model, model.descriptors, o);
  const hcm = hcmOptions(model);
  const chains = model.tls.length > 0 ? tlsResources(model, w.errors, filters, o.accessLogCluster, hcm).chains : [];
  const https =
    chains.length > 0 ? httpsListener(names.HTTPS_LISTENER_NAME, o.listenAddress, o.httpsPort, chains) : undefined;
  return { filters, hcm, chains, https };
}

/** The gateway's HTTP and HTTPS listeners and route configurations, and the SDS secrets. */
function gatewayHttp(w: Work, model: Model, v: Assembled, gw: GatewayHttp): void {
  const { o } = w;
  const hcm = httpConnectionManager(
    names.statPrefix(names.HTTP_LISTENER_NAME),
    names.HTTP_ROUTE_CONFIG_NAME,
    gw.filters,
    o.accessLogCluster,
    gw.hcm,
  );
  w.envoy.listeners.push(httpListener(names.HTTP_LISTENER_NAME, o.listenAddress, o.httpPort, hcm));
  w.plan.gateway.listeners.push({
    name: names.HTTP_LISTENER_NAME,
    kind: 'http',
    address: o.listenAddress,
    port: o.httpPort,
    routeConfig: names.HTTP_ROUTE_CONFIG_NAME,
  });
  gatewayRouteConfig(w, names.HTTP_ROUTE_CONFIG_NAME, 'http', v.http);
  if (gw.https && v.secure) {
    w.envoy.listeners.push(gw.https);
    const serverNames = gw.chains.map(
      (c) => ((c.filterChainMatch as ProtoObject | undefined)?.serverNames as string[]) ?? [],
    );
    w.plan.gateway.listeners.push({
      name: names.HTTPS_LISTENER_NAME,
      kind: 'https',
      address: o.listenAddress,
      port: o.httpsPort,
      routeConfig: names.HTTPS_ROUTE_CONFIG_NAME,
      serverNames,
    });
    gatewayRouteConfig(w, names.HTTPS_ROUTE_CONFIG_NAME, 'https', v.secure);
  }
  w.envoy.secrets.push(...sdsSecrets(model));
}

/** TcpServices (Envoy only): a listener each, with its clusters, unless its port is taken or Envoy would refuse it. */
function gatewayTcp(w: Work, model: Model, https: boolean): void {
  const { o } = w;
  const taken: Bound[] = [
    { address: o.listenAddress, port: o.httpPort, what: `the HTTP listener (${names.HTTP_LISTENER_NAME})` },
  ];
  if (https)
    taken.push({
      address: o.listenAddress,
      port: o.httpsPort,
      what: `the HTTPS listener (${names.HTTPS_LISTENER_NAME})`,
    });
  for (const t of [...(model.tcpServices ?? [])].sort((a, b) => byString(a.sourceKey, b.sourceKey))) {
    if (!t.enabled) continue;
    const planned = planTcpService(t, model.certificates, w.ctx.caBundle);
    w.errors.push(...planned.errors);
    if (!planned.listener) continue;
    const r = tcpListener(planned.listener);
    const problem = tcpProblem(t, r.listener, r.clusters, taken);
    if (problem) {
      w.errors.push(problem);
      continue;
    }
    taken.push({ address: t.interface, port: t.port, what: `TcpService ${t.sourceKey}` });
    w.envoy.listeners.push(r.listener);
    w.envoy.clusters.push(...r.clusters);
    w.plan.gateway.listeners.push({ name: String(r.listener.name), kind: 'tcp', address: t.interface, port: t.port });
    for (const c of r.clusters)
      w.plan.gateway.clusters.push({ name: String(c.name), owner: t.sourceKey, endpoints: false });
  }
}

/** Clusters and endpoints of every served descriptor, both roles; the host patterns gRPC clients may ask for. */
function* descriptorClusters(w: Work, cs: readonly Contribution[]): Steps<string[]> {
  const domains = new Set<string>();
  const plan = (role: RolePlan, owner: string, clusters: ProtoObject[], endpoints: ProtoObject[]): void => {
    for (const c of clusters) {
      const name = String(c.name);
      role.clusters.push({ name, owner, endpoints: endpoints.some((e) => String(e.clusterName) === name) });
    }
  };
  yield* eachBatched(cs, (c) => {
    w.envoy.clusters.push(...c.envoy.clusters);
    w.envoy.endpoints.push(...c.envoy.endpoints);
    w.grpc.clusters.push(...c.grpc.clusters);
    w.grpc.endpoints.push(...c.grpc.endpoints);
    plan(w.plan.gateway, c.d.id, c.envoy.clusters, c.envoy.endpoints);
    plan(w.plan.grpc, c.d.id, c.grpc.clusters, c.grpc.endpoints);
    for (const p of c.patterns) domains.add(p);
  });
  if (w.o.authz) {
    w.envoy.clusters.push(extAuthzCluster(names.EXT_AUTHZ_CLUSTER_NAME, w.o.authz));
    w.plan.gateway.clusters.push({ name: names.EXT_AUTHZ_CLUSTER_NAME, owner: 'ext_authz', endpoints: false });
  }
  return [...domains].sort(byString);
}

/**
 * Proxyless gRPC: one route configuration per api_listener host, with the virtual hosts that
 * can match it (its own, and the wildcard ones matching it), in the shared order; and one for
 * the on-demand listeners (grpcListenerFor) of hosts that only wildcard patterns match.
 */
function* grpcRoutes(w: Work, vs: Variant, domains: readonly string[]): Steps {
  const wild = [...vs.emitted.keys()].filter((v) => v.includes('*'));
  const add = (rcName: string, order: string[]): void => {
    w.grpc.routes.push(
      routeConfigRec(
        w.cache,
        rcName,
        order.map((v) => vs.emitted.get(v) as VhostRec),
      ),
    );
    if (w.withPlan) w.plan.grpc.routeConfigs.push(routeConfigPlan(rcName, 'grpc', vs, order));
  };
  let n = 0;
  for (const host of domains) {
    if (++n % STEP_BATCH === 0) yield;
    if (host.includes('*')) continue;
    const h = host.toLowerCase();
    const order = wild.length > 0 ? wild.filter((v) => hostMatches(v, h)) : [];
    if (vs.emitted.has(h)) order.push(h);
    if (order.length > 1) order.sort(byString);
    const rcName = names.grpcRouteConfigName(host);
    add(rcName, order);
    w.grpc.listeners.push(grpcApiListenerMemo(w.cache, host, rcName));
    w.plan.grpc.listeners.push({ name: host, kind: 'api', routeConfig: rcName });
  }
  if (domains.some((p) => p.includes('*'))) add(names.GRPC_WILDCARD_ROUTE_CONFIG_NAME, wild);
}

/** Sorts `list` in place by `String(o[key])` (stable), each key read once. */
function sortByName(list: ProtoObject[], key: string): void {
  const keyed = list.map((o) => ({ k: String(o[key]), o }));
  keyed.sort((a, b) => byString(a.k, b.k));
  keyed.forEach((x, i) => (list[i] = x.o));
}

function sortPlan(role: RolePlan): void {
  const cmp = (a: { name: string }, b: { name: string }): number => byString(a.name, b.name);
  role.listeners.sort(cmp);
  role.routeConfigs.sort(cmp);
  role.clusters.sort(cmp);
  role.secrets.sort(byString);
}

/** Sorts every list of `set` by name (endpoints by cluster name). */
function sortSet(set: ResourceSet): void {
  sortByName(set.listeners, 'name');
  sortByName(set.routes, 'name');
  sortByName(set.clusters, 'name');
  sortByName(set.endpoints, 'clusterName');
  sortByName(set.secrets, 'name');
}

/** Sorts the gRPC set (the Envoy set is sorted before the rest starts) and the plans. */
function* finish(w: Work): Steps {
  sortSet(w.grpc);
  yield;
  w.plan.gateway.secrets = w.envoy.secrets.map((s) => String(s.name));
  sortPlan(w.plan.gateway);
  sortPlan(w.plan.grpc);
}

/** The plan of `model` and the resources built from it. */
export function translatePlanned(
  model: Model,
  opts: Partial<TranslateOptions> | undefined,
  cache: TranslateCache,
  withPlan = true,
): { output: TranslateOutput; plan: Plan } {
  return runSteps(translatePlannedSteps(model, opts, cache, withPlan));
}

/** `translatePlanned` as steps: it pauses in the descriptor loop and between the phases. */
function* translatePlannedSteps(
  model: Model,
  opts: Partial<TranslateOptions> | undefined,
  cache: TranslateCache,
  withPlan: boolean,
): Steps<{ output: TranslateOutput; plan: Plan }> {
  const staged = yield* gatewayFirstSteps(model, opts, cache, withPlan);
  return yield* staged.rest();
}

/** What translate has made for Envoy gateways when the rest (proxyless gRPC) is still to do. */
export interface GatewayFirst {
  /** The Envoy resources: final (the rest only adds gRPC ones), every list sorted. */
  envoy: ResourceSet;
  /** Problems found so far (the rest finds none of its own: its output's `errors` is this list). */
  errors: readonly ConfigError[];
  /** Translates the rest (call it once) and returns the whole output and plan (what translatePlanned gives). */
  rest(): Steps<{ output: TranslateOutput; plan: Plan }>;
}

/**
 * translate in two parts: the Envoy gateways' resources first, then (`rest`) the proxyless gRPC
 * route configurations and api_listeners. Everything that decides what is served (descriptor
 * memos, the virtual hosts of every variant, gRPC's included, and the descriptors they drop) is in
 * the first part, so the rest cannot change the Envoy set: a server can publish it before the gRPC
 * part runs. `rest` must run before the cache is used by another translate.
 */
export function* gatewayFirstSteps(
  model: Model,
  opts: Partial<TranslateOptions> | undefined,
  cache: TranslateCache,
  withPlan = false,
): Steps<GatewayFirst> {
  const o: TranslateOptions = { ...DEFAULT_TRANSLATE_OPTIONS, ...(opts ?? {}) };
  const ctx: TranslateCtx = { caBundle: model.caBundle !== undefined && model.caBundle.trim() !== '' };
  const plan = { gateway: emptyRole('gateway'), grpc: emptyRole('grpc') };
  const w: Work = {
    o,
    authz: o.authz !== undefined,
    ctx,
    cache,
    errors: [],
    envoy: emptySet(),
    grpc: emptySet(),
    plan,
    withPlan,
  };
  cache.begin();
  const memos = yield* contributions(w, model);
  yield;
  const gw = gatewayHttpOf(w, model);
  const v = yield* routeVariants(w, memos, gw.https !== undefined);
  yield;
  gatewayHttp(w, model, v, gw);
  gatewayTcp(w, model, gw.https !== undefined);
  yield;
  const domains = yield* descriptorClusters(w, v.cs);
  sortSet(w.envoy);
  function* rest(): Steps<{ output: TranslateOutput; plan: Plan }> {
    yield* grpcRoutes(w, v.grpc, domains);
    yield;
    yield* finish(w);
    cache.end();
    const output = { envoy: w.envoy, grpc: w.grpc, grpcDomains: domains, errors: w.errors };
    return { output, plan: { roles: [plan.gateway, plan.grpc] } };
  }
  return { envoy: w.envoy, errors: w.errors, rest };
}

/**
 * Resources of `model` for every node role. `cache` carries the memos of the previous translate
 * (pass the same one for every model of a stream; a fresh one is a cold translate).
 */
export function translate(model: Model, opts?: Partial<TranslateOptions>, cache?: TranslateCache): TranslateOutput {
  return runSteps(translateSteps(model, opts, cache));
}

/** `translate` as steps (the server's rebuilds let the event loop run at every pause). */
export function* translateSteps(
  model: Model,
  opts?: Partial<TranslateOptions>,
  cache?: TranslateCache,
): Steps<TranslateOutput> {
  return (yield* translatePlannedSteps(model, opts, cache ?? new TranslateCache(), false)).output;
}

/** The plan alone (what goldens under testdata/plan/ show). */
export function planOf(model: Model, opts?: Partial<TranslateOptions>): Plan {
  return translatePlanned(model, opts, new TranslateCache()).plan;
}

/**
 * The RouteConfiguration an api_listener named `name` uses: `oxds-grpc~<host>` when its host
 * (`:port` stripped) is a concrete pattern, else the wildcard one (undefined when nothing matches).
 */
function grpcRouteConfigFor(name: string, domains: readonly string[]): string | undefined {
  const host = name.replace(/:[0-9]+$/, '');
  if (host === '') return undefined;
  const h = host.toLowerCase();
  let wild = false;
  for (const p of domains) {
    if (!p.includes('*')) {
      if (p.toLowerCase() === h) return names.grpcRouteConfigName(p);
    } else if (!wild && hostMatches(p, host)) wild = true;
  }
  return wild ? names.GRPC_WILDCARD_ROUTE_CONFIG_NAME : undefined;
}

/** An api_listener named `name` when its host (`:port` stripped) matches one of the patterns. */
export function grpcListenerFor(name: string, domains: readonly string[]): ProtoObject | undefined {
  const rc = grpcRouteConfigFor(name, domains);
  return rc === undefined ? undefined : grpcApiListener(name, rc);
}

export type { ListenerPlan, ClusterPlan };
