import { test } from 'vitest';
import assert from 'node:assert/strict';
import { resolveConfig } from '../src/config.js';
import { nextRunAt, Debouncer } from '../src/debounce.js';
import { buildAdminApp } from '../src/admin/app.js';

test('config: flags win over env, env over defaults', () => {
  const r = resolveConfig({ xdsPort: '19000' }, { OXDS_XDS_PORT: '17000', OXDS_ADMIN_PORT: '17080' });
  assert.ok(r.ok);
  assert.equal(r.value.xdsPort, 19000);
  assert.equal(r.value.adminPort, 17080);
  assert.equal(r.value.authzPort, 18001);
  assert.equal(r.value.host, '127.0.0.1');
  assert.equal(r.value.configDir, 'examples');
  assert.ok(Object.isFrozen(r.value));
});

test('config: a bad port names the flag or variable it came from', () => {
  const r = resolveConfig({ adminPort: '99999' }, { OXDS_XDS_PORT: 'abc' });
  assert.equal(r.ok, false);
  if (r.ok) return;
  assert.ok(
    r.errors.some((e) => e.startsWith('--admin-port')),
    r.errors.join('\n'),
  );
  assert.ok(
    r.errors.some((e) => e.startsWith('OXDS_XDS_PORT')),
    r.errors.join('\n'),
  );
});

test('config: rejects an unknown log level and a max delay below the quiet period', () => {
  const r = resolveConfig({ logLevel: 'loud', debounceMs: '500', debounceMaxMs: '100' }, {});
  assert.equal(r.ok, false);
  if (r.ok) return;
  assert.equal(r.errors.length, 2);
});

test('debounce: waits for quiet, but never past the maximum delay', () => {
  assert.equal(nextRunAt(1000, 1000, 100, 1000), 1100);
  assert.equal(nextRunAt(1000, 1050, 100, 1000), 1150);
  assert.equal(nextRunAt(1000, 1950, 100, 1000), 2000);
  assert.equal(nextRunAt(1000, 5000, 100, 1000), 2000);
});

test('debounce: a burst of pokes runs once; pokes during a run cause exactly one more run', async () => {
  let runs = 0;
  let release: (() => void) | undefined;
  const d = new Debouncer(
    () => {
      runs++;
      if (runs === 1) return new Promise<void>((r) => (release = r));
      return undefined;
    },
    10,
    50,
  );
  for (let i = 0; i < 20; i++) d.poke();
  await new Promise((r) => setTimeout(r, 40));
  assert.equal(runs, 1);
  d.poke();
  d.poke();
  release?.();
  await new Promise((r) => setTimeout(r, 60));
  assert.equal(runs, 2);
  d.cancel();
});

test('debounce: an exclusive run never overlaps a run; pokes during it run once after it', async () => {
  const order: string[] = [];
  let releaseRun: (() => void) | undefined;
  const d = new Debouncer(
    () => {
      order.push('run');
      if (order.length === 1) return new Promise<void>((r) => (releaseRun = r));
      return undefined;
    },
    1,
    5,
  );
  d.poke();
  while (releaseRun === undefined) await new Promise((r) => setTimeout(r, 2));
  // A run is in progress: the exclusive one waits for it.
  let releaseExclusive: (() => void) | undefined;
  const exclusive = d.exclusive(() => {
    order.push('exclusive');
    return new Promise<void>((r) => (releaseExclusive = r));
  });
  await new Promise((r) => setTimeout(r, 20));
  assert.deepEqual(order, ['run']);
  releaseRun();
  while (releaseExclusive === undefined) await new Promise((r) => setTimeout(r, 2));
  // Pokes while the exclusive run holds: nothing runs until it ends, then exactly one run.
  d.poke();
  d.poke();
  await new Promise((r) => setTimeout(r, 20));
  assert.deepEqual(order, ['run', 'exclusive']);
  releaseExclusive();
  await exclusive;
  while (order.length < 3) await new Promise((r) => setTimeout(r, 2));
  await new Promise((r) => setTimeout(r, 20));
  assert.deepEqual(order, ['run', 'exclusive', 'run']);
  d.cancel();
});

test('admin: /live answers at once, /ready is 503 until the first snapshot, /health reports', async () => {
  let ready = false;
  const app = buildAdminApp({ ready: () => ready, health: () => ({ builds: ready ? 1 : 0 }) });
  assert.equal((await app.inject('/live')).statusCode, 200);
  assert.equal((await app.inject('/ready')).statusCode, 503);
  ready = true;
  assert.equal((await app.inject('/ready')).statusCode, 200);
  const h = (await app.inject('/health')).json();
  assert.deepEqual(h, { status: 'ok', ready: true, builds: 1 });
  await app.close();
});

test('metrics: pushes, NACKs, builds, objects and connected proxies are exported on /metrics', async () => {
  const { createMetrics } = await import('../src/metrics.js');
  const m = createMetrics({ processMetrics: false });
  m.setProxySource(() => [{ nodeType: 'grpc' }, { nodeType: 'grpc' }, { nodeType: 'envoy' }]);
  m.xdsHooks.onPush?.('type.googleapis.com/envoy.config.cluster.v3.Cluster', 120, 3);
  m.xdsHooks.onNack?.('type.googleapis.com/envoy.config.route.v3.RouteConfiguration');
  m.observeSnapshotBuild(0.02, true);
  m.setConfigObjects([
    { key: 'a', kind: 'ServiceDescriptor', namespace: 'd', name: 'a', origin: { seq: 1 }, state: 'valid', errors: [] },
    {
      key: 'b',
      kind: 'ServiceDescriptor',
      namespace: 'd',
      name: 'b',
      origin: { seq: 2 },
      state: 'invalid',
      errors: [],
    },
  ]);
  m.authzHooks.onCheck?.(
    { allow: false, reason: 'no_apikey', status: 400, message: 'No ApiKey provided', code: 'errors.no.api.key' },
    0.0002,
  );
  const app = buildAdminApp({ ready: () => true, health: () => ({}), registry: m.registry });
  const res = await app.inject('/metrics');
  assert.equal(res.statusCode, 200);
  const body = res.body;
  assert.match(body, /oxds_xds_connected_proxies\{node_type="grpc"\} 2/);
  assert.match(body, /oxds_xds_connected_proxies\{node_type="envoy"\} 1/);
  assert.match(body, /oxds_xds_pushes_total\{type="Cluster"\} 1/);
  assert.match(body, /oxds_xds_push_bytes_total\{type="Cluster"\} 120/);
  assert.match(body, /oxds_xds_nacks_total\{type="RouteConfiguration"\} 1/);
  assert.match(body, /oxds_snapshot_build_duration_seconds_count\{result="ok"\} 1/);
  assert.match(body, /oxds_config_objects\{kind="ServiceDescriptor",state="invalid"\} 1/);
  assert.match(body, /oxds_authz_checks_total\{decision="deny",reason="no_apikey"\} 1/);
  await app.close();
});
