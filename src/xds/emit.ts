// Planned virtual hosts and route configurations → validated, encoded Envoy messages. Every
// route is validated once (strict shape, PGV rules, encode/decode round trip) and its bytes are
// reused by the virtual hosts and route configurations made of it (assembled with proto/wire.ts).
import type { ProtoObject } from '../../proto/loader.js';
import { TYPE_URLS, encodeObject } from '../../proto/loader.js';
import * as names from './names.js';
import { validateResource, type ValidationIssue } from './validate.js';
import { type RouteConfigHeaders, type RouteVariant, routeConfiguration, virtualHost } from './resources/route.js';
import { notFoundRoute, routesOf } from './resources/gateway-routes.js';
import { apiListener } from './resources/listener.js';
import { grpcHttpConnectionManager } from './resources/hcm.js';
import { WireWriter, lenFieldSize, stringFieldSize } from '../../proto/wire.js';
import type { DescriptorMemo, RouteRec, RouteSlot, TranslateCache, VhostRec } from './plan/cache.js';
import type { Contribution } from './plan/contribution.js';
import { grpcDomains } from './plan/hosts.js';
import type { Entry } from './plan/order.js';
import { type VhostPlan, sameItems, vhostKey } from './plan/route-configs.js';
import { eachBatched, type Steps } from '../model/steps.js';

// A VirtualHost's encoding: name (1), domains (2), routes (3, their validated bytes), in field-number
// order as protobufjs emits it. A RouteConfiguration's: name (1), then each virtual host (2), written
// from its routes' bytes (the virtual hosts' own bytes are not kept: they would be a second copy),
// then its header mutation fields (4-10), encoded once per object (routeConfigTail).

/** The encoded length of a virtual host. */
function vhostSize(name: string, domains: readonly string[], routes: readonly RouteRec[]): number {
  let size = stringFieldSize(1, name);
  for (const x of domains) size += stringFieldSize(2, x);
  for (const r of routes) size += lenFieldSize(3, r.bytes.length);
  return size;
}

const ROUTE_CONFIG_TYPE = 'envoy.config.route.v3.RouteConfiguration';
const TAILS = new WeakMap<RouteConfigHeaders, Uint8Array>();

/**
 * The encoding of a route configuration's header mutations: protobufjs's own, by field number, all
 * of them after field 2 (response headers 4-5, request headers 6 and 8, most-specific-wins 10).
 */
function routeConfigTail(headers: RouteConfigHeaders | undefined): Uint8Array | undefined {
  if (headers === undefined) return undefined;
  let tail = TAILS.get(headers);
  if (!tail) {
    tail = encodeObject(ROUTE_CONFIG_TYPE, headers);
    TAILS.set(headers, tail);
  }
  return tail;
}

/** The bytes of route configuration `name` over encoded virtual hosts, with its header mutations. */
function routeConfigBytes(name: string, vhosts: readonly VhostRec[], headers?: RouteConfigHeaders): Uint8Array {
  const tail = routeConfigTail(headers);
  let size = stringFieldSize(1, name) + (tail?.length ?? 0);
  for (const v of vhosts) size += lenFieldSize(2, v.size);
  const w = new WireWriter(size).string(1, name);
  for (const v of vhosts) {
    w.message(2, v.size).string(1, v.name);
    for (const x of v.domains) w.string(2, x);
    for (const r of v.routes) w.bytes(3, r.bytes);
  }
  if (tail) w.raw(tail);
  return w.finish();
}

/**
 * Encoded bytes of every resource translate validated, by output object. validateSet reuses them
 * instead of validating and encoding again; whatever is not here (gateway listeners, secrets) is
 * validated there. Not a memo: the bytes belong to the object (weakly held), which must not be
 * mutated (it is also reused by the next translate when its input did not change).
 */
const ENCODED = new WeakMap<ProtoObject, Uint8Array>();

/** The validated encoding of a resource returned by translate, when translate validated it. */
export function encodedBytes(obj: ProtoObject): Uint8Array | undefined {
  return ENCODED.get(obj);
}

const ROUTE_TYPE = 'envoy.config.route.v3.Route';
const VHOST_TYPE = 'envoy.config.route.v3.VirtualHost';

const REJECTED: ValidationIssue = { path: '', rule: 'unknown', message: 'rejected' };

/** Validates a resource `obj` once; on success its bytes are remembered for validateSet. */
export function check(url: string, obj: ProtoObject): ValidationIssue | undefined {
  const r = validateResource(url, obj);
  if (r.ok) {
    ENCODED.set(obj, r.bytes);
    return undefined;
  }
  return r.issues[0] ?? REJECTED;
}

/**
 * A validated route: its bytes, or its first problem. Routes are parts of virtual hosts, never
 * resources: their bytes live in their RouteRec only (validateSet never asks for them).
 */
function checkedRoute(obj: ProtoObject): RouteRec | ValidationIssue {
  const r = validateResource(ROUTE_TYPE, obj);
  return r.ok ? { obj, bytes: r.bytes } : (r.issues[0] ?? REJECTED);
}

/** routeKey of the entries without an :authority check, by kind then path index + 1 (0: no path). */
const PLAIN_ROUTE_KEYS = new Map(
  ['g', 'r', 'h'].map((v) => [v, Array.from({ length: 16 }, (_, i) => `${v}|${i === 0 ? '-' : i - 1}|`)]),
);

function routeKey(e: Entry, variant: RouteVariant): string {
  // http and https routes differ only by forceHttps redirects.
  const v = variant === 'grpc' ? 'g' : variant === 'http' && e.c.route.forceHttps ? 'r' : 'h';
  const plain = e.authority ? undefined : PLAIN_ROUTE_KEYS.get(v)?.[e.pathIndex === undefined ? 0 : e.pathIndex + 1];
  return plain ?? `${v}|${e.pathIndex ?? '-'}|${e.authority ? e.authority.join('\n') : ''}`;
}

function validatedRoutes(objs: readonly ProtoObject[]): RouteSlot {
  if (objs.length === 0) return null;
  const recs: RouteRec[] = [];
  for (const obj of objs) {
    const r = checkedRoute(obj);
    if (!('bytes' in r))
      return { issue: { ...r, path: `routes[${JSON.stringify(obj.name)}]${r.path ? `.${r.path}` : ''}` } };
    recs.push(r);
  }
  return recs;
}

/** The validated routes of an entry (memoised on the descriptor), null when the variant has none. */
function routeSlot(e: Entry, variant: RouteVariant, memo: DescriptorMemo): RouteSlot {
  const key = routeKey(e, variant);
  let slot = memo.routes.get(key);
  if (slot === undefined) {
    slot = validatedRoutes(routesOf(e, variant));
    if (memo.routes.size >= 1024) memo.routes.clear();
    memo.routes.set(key, slot);
  }
  return slot;
}

function vhostDomains(v: string, variant: RouteVariant): string[] {
  return variant === 'grpc' ? grpcDomains(v) : [v];
}

/** The problem of a virtual host's own fields (name, domains), memoised. */
function shellIssue(cache: TranslateCache, v: string, variant: RouteVariant): ValidationIssue | null {
  const shells = variant === 'grpc' ? cache.grpcShells : cache.shells;
  let m = shells.get(v);
  if (!m) {
    const r = validateResource(VHOST_TYPE, { name: names.virtualHostName(v), domains: vhostDomains(v, variant) });
    m = { used: cache.generation, issue: r.ok ? null : (r.issues[0] ?? null) };
    shells.set(v, m);
  }
  return cache.touch(m).issue;
}

function vhostRec(
  cache: TranslateCache,
  p: VhostPlan,
  variant: RouteVariant,
  routes: RouteRec[],
  prev: VhostRec | undefined,
): VhostRec {
  let m = prev;
  if (!m || !sameItems(m.routes, routes)) {
    const name = names.virtualHostName(p.v);
    const domains = vhostDomains(p.v, variant);
    const objs = routes.map((r) => r.obj);
    const size = vhostSize(name, domains, routes);
    m = { used: cache.generation, name, routes, obj: virtualHost(name, domains, objs), domains, size };
    cache.vhosts.set(p.key, m);
  }
  return cache.touch(m);
}

function notFoundRec(cache: TranslateCache, authz: boolean): RouteRec {
  let rec = cache.notFound.get(authz);
  if (!rec) {
    const r = checkedRoute(notFoundRoute(authz));
    if (!('bytes' in r)) throw new Error(`the not-found route is invalid: ${r.path}: ${r.message}`);
    rec = r;
    cache.notFound.set(authz, rec);
  }
  return rec;
}

/**
 * A route configuration over validated virtual hosts: bytes assembled from theirs. `headers`: its
 * header mutations (the same object for every call with the same name: they are encoded once).
 */
export function routeConfigRec(
  cache: TranslateCache,
  name: string,
  vhosts: VhostRec[],
  headers?: RouteConfigHeaders,
): ProtoObject {
  let m = cache.routeConfigs.get(name);
  if (!m || !sameItems(m.vhosts, vhosts)) {
    const obj = routeConfiguration(
      name,
      vhosts.map((v) => v.obj),
      headers,
    );
    const ok = m ? m.ok : validateResource(TYPE_URLS.route, { name, ...headers }).ok;
    // When the configuration's own fields are invalid, validateSet validates it whole (and reports).
    if (ok) ENCODED.set(obj, routeConfigBytes(name, vhosts, headers));
    m = { used: cache.generation, vhosts, obj, ok };
    cache.routeConfigs.set(name, m);
  }
  return cache.touch(m).obj;
}

export type OnBad = (c: Contribution, v: string, issue: ValidationIssue, route: ProtoObject | undefined) => void;

/** How virtual hosts are emitted: with Otoroshi's 404 last, with ext_authz, kept (`build`) or only checked. */
export interface EmitOptions {
  variant: RouteVariant;
  withNotFound: boolean;
  authz: boolean;
  build: boolean;
}

/** The routes of a planned virtual host, or the entries that make it invalid. */
function vhostRoutes(
  cache: TranslateCache,
  p: VhostPlan,
  o: EmitOptions,
  memos: ReadonlyMap<Contribution, DescriptorMemo>,
): { routes: RouteRec[]; invalid: [Entry, ValidationIssue][] | undefined } {
  const routes: RouteRec[] = [];
  let invalid: [Entry, ValidationIssue][] | undefined;
  for (const e of p.entries) {
    const slot = routeSlot(e, o.variant, memos.get(e.c) as DescriptorMemo);
    if (slot === null) continue;
    if ('issue' in slot) (invalid ??= []).push([e, slot.issue]);
    else routes.push(...slot);
  }
  if (o.withNotFound) routes.push(notFoundRec(cache, o.authz));
  return { routes, invalid };
}

/** Emits planned virtual host `p` into `out` (when `o.build`); contributions that break it go to `onBad`. */
function emitVirtualHost(
  cache: TranslateCache,
  p: VhostPlan,
  o: EmitOptions,
  memos: ReadonlyMap<Contribution, DescriptorMemo>,
  onBad: OnBad,
  out: Map<string, VhostRec>,
): void {
  const prev = o.build ? cache.vhosts.get(p.key) : undefined;
  if (prev?.entries === p.entries) {
    out.set(p.v, cache.touch(prev));
    return;
  }
  const { routes, invalid } = vhostRoutes(cache, p, o, memos);
  if (routes.length === 0 && !invalid) return;
  const shell = shellIssue(cache, p.v, o.variant);
  if (shell) {
    for (const e of p.entries) onBad(e.c, p.v, shell, undefined);
    return;
  }
  if (invalid) {
    for (const [e, issue] of invalid) onBad(e.c, p.v, issue, undefined);
    return;
  }
  if (o.build) {
    const rec = vhostRec(cache, p, o.variant, routes, prev);
    rec.entries = p.entries;
    out.set(p.v, rec);
  }
}

/** Planned virtual hosts → validated virtual hosts (by key); contributions that break one go to `onBad`. */
export function emitVirtualHosts(
  cache: TranslateCache,
  plans: readonly VhostPlan[],
  o: EmitOptions,
  memos: ReadonlyMap<Contribution, DescriptorMemo>,
  onBad: OnBad,
): Map<string, VhostRec> {
  const out = new Map<string, VhostRec>();
  for (const p of plans) emitVirtualHost(cache, p, o, memos, onBad, out);
  return out;
}

/** `emitVirtualHosts` as steps: it pauses every few hundred virtual hosts. */
export function* emitVirtualHostsSteps(
  cache: TranslateCache,
  plans: readonly VhostPlan[],
  o: EmitOptions,
  memos: ReadonlyMap<Contribution, DescriptorMemo>,
  onBad: OnBad,
): Steps<Map<string, VhostRec>> {
  const out = new Map<string, VhostRec>();
  yield* eachBatched(plans, (p) => emitVirtualHost(cache, p, o, memos, onBad, out));
  return out;
}

export function grpcApiListener(name: string, routeConfigName: string): ProtoObject {
  return apiListener(name, grpcHttpConnectionManager(names.statPrefix(`oxds-grpc-${name}`), routeConfigName));
}

/** The api_listener of a concrete gRPC host, validated once (when invalid, validateSet reports it). */
export function grpcApiListenerMemo(cache: TranslateCache, name: string, routeConfigName: string): ProtoObject {
  let m = cache.listeners.get(name);
  if (!m) {
    const obj = grpcApiListener(name, routeConfigName);
    check(TYPE_URLS.listener, obj);
    m = { used: cache.generation, obj };
    cache.listeners.set(name, m);
  }
  return cache.touch(m).obj;
}

export { vhostKey };
