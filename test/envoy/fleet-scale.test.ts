// A fleet-sized config through a real Envoy: 10,200 ServiceDescriptors (one cluster and one EDS
// resource each). In SotW mode Envoy subscribes EDS by name for every cluster — one request with
// 10,200 names, which must not trip the server's --xds-max-names bound; in Delta mode the same
// names arrive as subscriptions. Envoy must stay connected (one stream, no NACK) and route
// requests to the first, a middle and the last descriptor, then take a route change.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { envoyTest, eventually, startGateway } from '../helpers/envoy.js';
import { descriptorYaml } from '../fixtures/index.js';
import { startHttpBackends, type HttpBackend } from '../helpers/http-backends.js';

const N = 10_200;
const EDS = 'type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment';

function descriptors(ports: readonly number[], extra = ''): string {
  const out: string[] = [];
  for (let i = 0; i < N; i++) {
    const doc = descriptorYaml({
      name: `s${i}`,
      namespace: 'default',
      hosts: [`s${i}.fleet.oto.tools`],
      forceHttps: false,
      publicPatterns: ['/.*'],
      targets: [`http://127.0.0.1:${ports[i % ports.length]}`],
    });
    out.push(`${doc}${i === N - 1 ? extra : ''}`);
  }
  return out.join('---\n');
}

function rssMiB(pid: number | undefined): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Math.round(Number(m?.[1] ?? 0) / 1024);
}

for (const delta of [false, true]) {
  const flavour = delta ? 'Delta' : 'SotW';
  envoyTest(
    `Envoy (${flavour}): ${N.toLocaleString('en')} descriptors — one EDS name per cluster — stay connected and serve`,
    async (t, bin) => {
      const backends = (await startHttpBackends(['b0', 'b1', 'b2', 'b3'])) as HttpBackend[];
      t.onTestFinished(async () => {
        await Promise.all(backends.map((b) => b.stop()));
      });
      const ports = backends.map((b) => b.port);
      const started = Date.now();
      const gw = await startGateway(t, bin, {
        files: { 'd.yaml': descriptors(ports) },
        delta,
        flags: {
          logLevel: process.env.OXDS_TEST_LOG ?? 'silent',
          maxConfigFileBytes: 64 * 1024 * 1024,
          maxConfigTotalBytes: 64 * 1024 * 1024,
        },
      });
      const readyMs = Date.now() - started;
      const who = async (i: number): Promise<string> => {
        const r = await gw.request({ host: `s${i}.fleet.oto.tools`, path: '/x' });
        return r.status === 200 ? (JSON.parse(r.body) as { backend: string }).backend : `status ${r.status}`;
      };
      for (const i of [0, Math.floor(N / 2), N - 1]) assert.equal(await who(i), `b${i % 4}`, `descriptor s${i}`);
      assert.ok(
        (await gw.envoy.stat('cluster_manager.active_clusters')) >= N,
        'every descriptor cluster is active in Envoy',
      );
      const streams = gw.server.ads.statuses().filter((s) => s.nodeId === gw.nodeId && s.service === 'ads');
      assert.equal(streams.length, 1, 'one ADS stream, never reset');
      const eds = streams[0]!.types[EDS];
      assert.ok(eds !== undefined && eds.resourceCount >= N, `EDS resources sent: ${eds?.resourceCount}`);
      if (!delta) assert.ok(eds.subscribed.length >= N, `SotW subscribed EDS names: ${eds.subscribed.length}`);
      // A route change (a new path on the last descriptor) reaches the same, still connected Envoy.
      await gw.update({ 'd.yaml': descriptors(ports, '  matchingRoot: /moved\n') });
      assert.equal(await who(N - 1), 'status 404', 'the old path of the changed descriptor is gone');
      const moved = await gw.request({ host: `s${N - 1}.fleet.oto.tools`, path: '/moved/x' });
      assert.equal(moved.status, 200);
      assert.equal(
        gw.server.ads.statuses().filter((s) => s.nodeId === gw.nodeId && s.service === 'ads')[0]?.streamId,
        streams[0]!.streamId,
        `same stream after the change; Envoy log: ${gw.envoy.log().slice(-3000)}`,
      );
      await eventually('Envoy alive', async () =>
        (await gw.envoy.get('/ready')).trim() === 'LIVE' ? true : undefined,
      );
      console.log(
        `# ${flavour}: ${N} descriptors served by a real Envoy ${readyMs}` +
          ` ms after start (server + Envoy); Envoy RSS ${rssMiB(gw.envoy.child.pid)}` +
          ` MiB, control plane RSS ${Math.round(process.memoryUsage().rss / 1048576)} MiB (test process)`,
      );
    },
    { timeout: 900_000 },
  );
}
