// A descriptor's contribution, memoised on its content, with the first problem of the resources
// it would add on its own (checked once; its bytes are reused by the route configurations).
import type { ConfigError, Descriptor } from '../model/types.js';
import { TYPE_URLS } from '../../proto/loader.js';
import type { ValidationIssue } from './validate.js';
import type { DescriptorMemo, TranslateCache } from './plan/cache.js';
import { type TranslateCtx, contribution, type Contribution } from './plan/contribution.js';
import { descriptorError, vhostIssue } from './plan/errors.js';
import { ownPlans, ownVirtualHosts } from './plan/route-configs.js';
import { check, emitVirtualHosts, encodedBytes } from './emit.js';

/** The first problem of a contribution in its own virtual hosts (each variant), clusters and endpoints. */
function validateContribution(cache: TranslateCache, c: Contribution, memo: DescriptorMemo): ConfigError | null {
  const memos = new Map([[c, memo]]);
  // https differs from http only by forceHttps redirects: validate it only when it differs.
  for (const variant of c.d.forceHttps ? (['http', 'https', 'grpc'] as const) : (['http', 'grpc'] as const)) {
    let problem: ValidationIssue | undefined;
    const o = { variant, withNotFound: false, authz: c.authz, build: false };
    emitVirtualHosts(cache, ownPlans(c, memo.own, variant), o, memos, (_c, host, issue, route) => {
      problem ??= vhostIssue(host, route, issue);
    });
    if (problem) return descriptorError(c.d, `routes(${variant})`, problem);
  }
  for (const o of [...c.envoy.clusters, ...c.grpc.clusters]) {
    const issue = check(TYPE_URLS.cluster, o);
    if (issue) return descriptorError(c.d, `cluster ${String(o.name)}`, issue);
  }
  for (const o of [...c.envoy.endpoints, ...c.grpc.endpoints]) {
    if (encodedBytes(o) !== undefined) continue; // shared by both roles: checked once
    const issue = check(TYPE_URLS.endpoint, o);
    if (issue) return descriptorError(c.d, `endpoints ${String(o.clusterName)}`, issue);
  }
  return null;
}

const PLAIN = [Object.prototype, Array.prototype, null];

/**
 * Whether two values would serialise to the same JSON text, compared in place (no text is made):
 * plain objects with the same keys in the same order (key order can show in what is built from
 * them), arrays of the same length, equal primitives. Anything else (a class instance, NaN, an
 * undefined-valued key on one side only) counts as different: a false "different" only costs a recompute.
 */
export function sameData(a: unknown, b: unknown, depth = 0): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null || depth > 64) return false;
  const pa: unknown = Object.getPrototypeOf(a);
  if (pa !== Object.getPrototypeOf(b) || !PLAIN.includes(pa as object | null)) return false;
  if (Array.isArray(a)) {
    const y = b as unknown[];
    if (a.length !== y.length) return false;
    for (let i = 0; i < a.length; i++) if (!sameData(a[i], y[i], depth + 1)) return false;
    return true;
  }
  const x = a as Record<string, unknown>;
  const y = b as Record<string, unknown>;
  const kx = Object.keys(x);
  const ky = Object.keys(y);
  if (kx.length !== ky.length) return false;
  for (let i = 0; i < kx.length; i++) {
    const k = kx[i] as string;
    if (k !== ky[i] || !sameData(x[k], y[k], depth + 1)) return false;
  }
  return true;
}

/**
 * Whether `m` was computed from the same content as `d`: the same object, or equal data (a
 * rebuilt model has new descriptor objects; compared in place rather than through their JSON).
 */
function sameDescriptor(m: DescriptorMemo, d: Descriptor): boolean {
  if (m.d === d) return true;
  if (!sameData(m.d, d)) return false;
  m.d = d;
  return true;
}

/**
 * The memo of a descriptor: its contribution and verdict, recomputed only when its content changed.
 * `ctxJson` is `JSON.stringify(ctx)`, computed once per translate by the caller.
 */
export function memoFor(
  cache: TranslateCache,
  d: Descriptor,
  authz: boolean,
  ctx: TranslateCtx,
  ctxJson: string,
): DescriptorMemo {
  // By id (served descriptors have distinct ids); the source key is part of the compared data.
  let m = cache.descriptors.get(d.id);
  if (!m || m.c.authz !== authz || m.ctxJson !== ctxJson || !sameDescriptor(m, d)) {
    const c = contribution(d, authz, ctx);
    m = { used: cache.generation, d, ctxJson, c, problem: null, routes: new Map(), own: ownVirtualHosts(c) };
    m.problem = validateContribution(cache, m.c, m);
    cache.descriptors.set(d.id, m);
  }
  return cache.touch(m);
}
