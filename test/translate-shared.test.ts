// Parts every descriptor's resources have in common are one frozen object shared by all of them:
// the resources themselves stay distinct objects, and a write to a shared part throws instead of
// changing every descriptor's resource.
import { test } from 'vitest';
import assert from 'node:assert/strict';
import { buildModel } from '../src/model/build.js';
import { translate } from '../src/xds/translate.js';
import { benchView } from '../bench/gen.js';
import { frozen } from '../src/xds/shapes.js';

type Obj = Record<string, unknown>;
const AUTHZ = { address: '127.0.0.1', port: 9001, timeoutMs: 1000, failureModeAllow: false };

test('frozen: freezes nested objects and arrays, returns its argument', () => {
  const v = { a: { b: [{ c: 1 }] } };
  assert.equal(frozen(v), v);
  assert.ok(Object.isFrozen(v.a.b[0]));
  assert.throws(() => {
    (v.a.b[0] as Obj).c = 2;
  }, TypeError);
});

test('descriptor clusters share their common parts, frozen; each cluster is its own object', () => {
  const out = translate(buildModel(benchView(3)).model, { authz: AUTHZ });
  const clusters = out.envoy.clusters.filter((c) => String(c.name).startsWith('oxds~')) as Obj[];
  assert.equal(clusters.length, 3);
  const [a, b] = clusters as [Obj, Obj];
  assert.notEqual(a, b);
  assert.ok(!Object.isFrozen(a));
  for (const key of ['circuitBreakers', 'commonLbConfig', 'connectTimeout', 'outlierDetection']) {
    assert.ok(a[key] !== undefined, key);
    assert.equal(a[key], b[key], `${key} is shared`);
    assert.ok(Object.isFrozen(a[key]), `${key} is frozen`);
  }
  assert.throws(() => {
    ((a.circuitBreakers as Obj).thresholds as Obj[]).push({});
  }, TypeError);
  const grpc = out.grpc.clusters as Obj[];
  assert.equal((grpc[0]?.edsClusterConfig as Obj).edsConfig, (a.edsClusterConfig as Obj).edsConfig);
});

test('route actions share their timeouts, gRPC api_listeners their router filters', () => {
  const out = translate(buildModel(benchView(3)).model, { authz: AUTHZ });
  const vhosts = (out.envoy.routes[0]?.virtualHosts ?? []) as Obj[];
  const routes = vhosts.flatMap((v) => v.routes as Obj[]);
  const forwards = routes.filter((r) => r.route !== undefined);
  assert.ok(forwards.length >= 2);
  const [r1, r2] = forwards as [Obj, Obj];
  assert.notEqual(r1.route, r2.route);
  assert.equal((r1.route as Obj).timeout, (r2.route as Obj).timeout);
  assert.ok(Object.isFrozen((r1.route as Obj).timeout));
  const listeners = out.grpc.listeners as Obj[];
  const hcm = (l: Obj | undefined): Obj => ((l?.apiListener as Obj).apiListener as Obj) ?? {};
  assert.equal(hcm(listeners[0]).httpFilters, hcm(listeners[1]).httpFilters);
});
