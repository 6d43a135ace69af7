// VHDS through real Envoys (--route-discovery vhds / vhds-on-demand): a Delta Envoy gets the
// gateway route configuration as a shell plus one VirtualHost resource per host; a route change
// reaches it as that one virtual host; a removed descriptor stops being served; an on-demand host
// answers its first request (the on-demand filter holds it while the virtual host is fetched);
// a SotW Envoy on the same server keeps the whole RDS route table.
import assert from 'node:assert/strict';
import { gatewayBootstrapYaml } from '../../src/envoy/bootstrap.js';
import type { RunningServer } from '../../src/main.js';
import {
  descriptorYaml,
  envoyTest,
  eventually,
  EnvoyProcess,
  httpRequest,
  startGateway,
  TEST_GATEWAY_TOKEN,
} from '../helpers/envoy.js';
import { startHttpBackends, type HttpBackend } from '../helpers/http-backends.js';

const VHOST = 'type.googleapis.com/envoy.config.route.v3.VirtualHost';

function descriptors(
  hosts: readonly string[],
  port: (i: number) => number,
  extra: (i: number) => string = () => '',
): string {
  const spec = (h: string, i: number): string =>
    `hosts: [${h}]\ntargets: [{url: "http://127.0.0.1:${port(i)}"}]${extra(i)}`;
  return hosts.map((h, i) => descriptorYaml(`d${i}`, spec(h, i))).join('');
}

/** Pushes and bytes the server sent per short type name (its Prometheus counters). */
async function pushed(server: RunningServer): Promise<Map<string, { pushes: number; bytes: number }>> {
  const text = await server.metrics.registry.metrics();
  const out = new Map<string, { pushes: number; bytes: number }>();
  for (const m of text.matchAll(/^oxds_xds_(pushes|push_bytes)_total\{type="([^"]+)"\} (\S+)$/gm)) {
    const e = out.get(m[2] as string) ?? { pushes: 0, bytes: 0 };
    if (m[1] === 'pushes') e.pushes = Number(m[3]);
    else e.bytes = Number(m[3]);
    out.set(m[2] as string, e);
  }
  return out;
}

const backendOf = (r: { status: number; body: string }): string =>
  r.status === 200 ? (JSON.parse(r.body) as { backend: string }).backend : `status ${r.status}`;

async function backendsFor(t: { onTestFinished(fn: () => Promise<void>): void }, n: number): Promise<HttpBackend[]> {
  const bs = (await startHttpBackends(Array.from({ length: n }, (_, i) => `b${i}`))) as HttpBackend[];
  t.onTestFinished(async () => {
    await Promise.all(bs.map((b) => b.stop()));
  });
  return bs;
}

envoyTest(
  'VHDS (Delta): every host served, a route change is one VirtualHost, a removed host is gone',
  async (t, bin) => {
    const bs = await backendsFor(t, 1);
    const hosts = ['a.vhds.test', 'b.vhds.test', 'c.vhds.test'];
    const gw = await startGateway(t, bin, {
      files: { 'd.yaml': descriptors(hosts, () => bs[0]!.port) },
      delta: true,
      flags: { routeDiscovery: 'vhds' },
    });
    for (const h of hosts) assert.equal(backendOf(await gw.request({ host: h, path: '/x' })), 'b0', h);

    // Envoy holds the shell (vhds, no inline virtual hosts) and the virtual hosts from VHDS.
    const dump = JSON.stringify(await gw.envoy.configDump('?resource=dynamic_route_configs'));
    assert.match(dump, /"vhds"/);
    for (const h of hosts) assert.ok(dump.includes(`oxds-http/${h}`), `virtual host oxds-http/${h} in config_dump`);

    // One route change: b's route adds a request header. Only b's virtual host is pushed; no RDS push.
    const before = await pushed(gw.server);
    const rev = (i: number): string => (i === 1 ? '\nadditionalHeaders: {X-Rev: "2"}' : '');
    const next = descriptors(hosts, () => bs[0]!.port, rev);
    await gw.update({ 'd.yaml': next });
    const revOf = async (host: string): Promise<unknown> => {
      const r = await gw.request({ host, path: '/x' });
      return (JSON.parse(r.body) as { headers: Record<string, string> }).headers['x-rev'];
    };
    assert.equal(await revOf('b.vhds.test'), '2');
    assert.equal(await revOf('a.vhds.test'), undefined);
    const after = await pushed(gw.server);
    const vh = gw.server.cache.get('envoy')?.vhds?.vhosts.get('oxds-http/b.vhds.test');
    assert.ok(vh, 'the changed virtual host is in the snapshot');
    const rdsPushes = (after.get('RouteConfiguration')?.pushes ?? 0) - (before.get('RouteConfiguration')?.pushes ?? 0);
    const vhPushes = (after.get('VirtualHost')?.pushes ?? 0) - (before.get('VirtualHost')?.pushes ?? 0);
    const vhBytes = (after.get('VirtualHost')?.bytes ?? 0) - (before.get('VirtualHost')?.bytes ?? 0);
    assert.equal(rdsPushes, 0, 'no RouteConfiguration pushed for a route change');
    assert.equal(vhPushes, 1, 'one VirtualHost response');
    // One virtual host plus the Delta envelope (version, nonce, type URL, resource name and version).
    assert.ok(
      vhBytes >= vh.bytes.length && vhBytes < vh.bytes.length + 300,
      `${vhBytes} B for a ${vh.bytes.length} B vhost`,
    );

    // A removed descriptor stops being served (Envoy answers 404 for an unknown host).
    await gw.update({ 'd.yaml': descriptors(hosts.slice(0, 2), () => bs[0]!.port, rev) });
    await eventually('c.vhds.test to be gone', async () =>
      (await gw.request({ host: 'c.vhds.test', path: '/x' })).status === 404 ? true : undefined,
    );
    assert.equal(await revOf('b.vhds.test'), '2');
    // An unknown host: asked on demand, answered "does not exist", 404 (not a hang).
    assert.equal((await gw.request({ host: 'nobody.vhds.test', path: '/x' })).status, 404);

    // A SotW Envoy on the same server gets the whole route table over RDS.
    const sotw = await EnvoyProcess.start(
      bin,
      gatewayBootstrapYaml({
        xdsAddress: `127.0.0.1:${gw.server.xdsPort}`,
        nodeId: `${gw.nodeId}-sotw`,
        nodeCluster: 'otoroshi-gateway',
        adminAddress: '127.0.0.1',
        adminPort: 0,
        delta: false,
        token: TEST_GATEWAY_TOKEN,
      }),
    );
    t.onTestFinished(() => sotw.stop());
    await sotw.ready();
    const port = await eventually('the SotW oxds-http listener', () => sotw.listenerPort('oxds-http'));
    await eventually('the SotW Envoy to route b', async () =>
      backendOf(await httpRequest({ port, host: 'b.vhds.test', path: '/x' })) === 'b0' ? true : undefined,
    );
    const sotwDump = JSON.stringify(await sotw.configDump('?resource=dynamic_route_configs'));
    assert.doesNotMatch(sotwDump, /"vhds"/);
    assert.match(sotwDump, /"domains":\["a.vhds.test"\]/);
    assert.deepEqual(await sotw.rejected(), {});
  },
);

envoyTest('VHDS on demand (Delta): no virtual host up front; each host works on its first request', async (t, bin) => {
  const bs = await backendsFor(t, 2);
  const hosts = Array.from({ length: 20 }, (_, i) => `h${i}.ondemand.test`);
  const gw = await startGateway(t, bin, {
    files: { 'd.yaml': descriptors(hosts, (i) => bs[i % 2]!.port) },
    delta: true,
    flags: { routeDiscovery: 'vhds-on-demand' },
  });
  const status = gw.server.ads.statuses().find((s) => s.nodeId === gw.nodeId);
  assert.ok(status?.types[VHOST], 'Envoy subscribed VHDS');
  const dump = JSON.stringify(await gw.envoy.configDump('?resource=dynamic_route_configs'));
  assert.match(dump, /"vhds"/);
  assert.doesNotMatch(dump, /ondemand\.test/, 'no virtual host sent before a request');
  // The first (empty) VHDS response finished the subscription's initialization: no initial fetch timeout.
  const vhds = Object.entries(await gw.envoy.stats('vhds'));
  const timeouts = vhds.filter(([k]) => k.endsWith('.init_fetch_timeout'));
  assert.ok(timeouts.length > 0 && timeouts.every(([, v]) => v === 0), JSON.stringify(timeouts));
  assert.ok(
    vhds.some(([k, v]) => k.endsWith('.update_success') && v > 0),
    JSON.stringify(vhds),
  );
  // An unknown host first: Envoy's own 404, and it must not hide the hosts fetched after it.
  assert.equal((await gw.request({ host: 'nobody.ondemand.test', path: '/x' })).status, 404);
  const before = await pushed(gw.server);
  for (const [i, h] of hosts.entries())
    assert.equal(backendOf(await gw.request({ host: h, path: '/x' })), `b${i % 2}`, `first request to ${h}`);
  const after = await pushed(gw.server);
  const vhPushes = (after.get('VirtualHost')?.pushes ?? 0) - (before.get('VirtualHost')?.pushes ?? 0);
  assert.ok(vhPushes >= 1 && vhPushes <= hosts.length, `${vhPushes} VirtualHost responses for ${hosts.length} hosts`);
  // The fetched hosts keep being updated: a route change of one reaches Envoy.
  const extra = (i: number): string => (i === 3 ? '\nadditionalHeaders: {X-Rev: "3"}' : '');
  await gw.update({ 'd.yaml': descriptors(hosts, (i) => bs[i % 2]!.port, extra) });
  const r = await gw.request({ host: hosts[3] as string, path: '/x' });
  assert.equal((JSON.parse(r.body) as { headers: Record<string, string> }).headers['x-rev'], '3');
});

envoyTest(
  'VHDS on demand (Delta): a deleted host is no longer served (404 like a host never known), and again once recreated',
  async (t, bin) => {
    const bs = await backendsFor(t, 1);
    // h0 is fetched under its own name, h1 under an alias with a port, x.w.rm.test resolves to *.w.rm.test.
    const hosts = ['h0.rm.test', 'h1.rm.test', "'*.w.rm.test'", 'keep.rm.test'];
    const all = descriptors(hosts, () => bs[0]!.port);
    const kept = descriptorYaml('d3', `hosts: [keep.rm.test]\ntargets: [{url: "http://127.0.0.1:${bs[0]!.port}"}]`);
    const gw = await startGateway(t, bin, {
      files: { 'd.yaml': all },
      delta: true,
      flags: { routeDiscovery: 'vhds-on-demand' },
    });
    const asked = ['h0.rm.test', 'h1.rm.test:8080', 'x.w.rm.test'];
    const never = await gw.request({ host: 'never.rm.test', path: '/x' });
    assert.equal(never.status, 404);
    // Asked again: Envoy subscribes the alias again and waits for its answer.
    assert.equal((await gw.request({ host: 'never.rm.test', path: '/x' })).status, 404, 'an unknown host asked twice');
    for (const h of asked)
      assert.equal(backendOf(await gw.request({ host: h, path: '/x' })), 'b0', `first request to ${h}`);
    for (const h of asked) assert.equal(backendOf(await gw.request({ host: h, path: '/x' })), 'b0', `held: ${h}`);

    // The three descriptors deleted: Envoy drops their virtual hosts; a request gets the never-known host's 404.
    await gw.update({ 'd.yaml': kept });
    const gone = ['h0.rm.test', 'h1.rm.test', '*.w.rm.test'].map((n) => `"name":"oxds-http/${n}"`);
    await eventually('Envoy to drop the deleted virtual hosts', async () => {
      const dump = JSON.stringify(await gw.envoy.configDump('?resource=dynamic_route_configs'));
      return gone.every((n) => !dump.includes(n)) ? true : undefined;
    });
    for (const h of asked) {
      const r = await gw.request({ host: h, path: '/x' });
      assert.deepEqual([r.status, r.body], [never.status, never.body], `${h} after its descriptor was deleted`);
    }
    assert.equal(backendOf(await gw.request({ host: 'keep.rm.test', path: '/x' })), 'b0');

    // Recreated: served again (Envoy still subscribes the aliases; a request finds the host).
    await gw.update({ 'd.yaml': all });
    for (const h of asked)
      await eventually(`${h} served again`, async () =>
        backendOf(await gw.request({ host: h, path: '/x' })) === 'b0' ? true : undefined,
      );
  },
);
