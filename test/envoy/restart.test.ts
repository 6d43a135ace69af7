// Control-plane restart under traffic through a real Envoy: while `serve` is down Envoy keeps
// serving its last config (0 failed requests); restarted, Envoy reconnects, converges, and the
// new versions were never used before.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { descriptorYaml, envoyTest, eventually, EnvoyProcess, httpRequest } from '../helpers/envoy.js';
import { startHttpBackends, type HttpBackend } from '../helpers/http-backends.js';
import { freeServePorts, startServeChild, type ServeChild } from '../helpers/serve-child.js';
import { gatewayBootstrapYaml } from '../../src/envoy/bootstrap.js';
import type { NodeStatus } from '../../src/xds/node-status.js';

/** Versions this node ACKed, per type, once every type it was sent is ACKed (else undefined). */
async function ackedVersions(s: ServeChild, nodeId: string): Promise<string[] | undefined> {
  const { proxies } = await s.admin<{ proxies: NodeStatus[] }>('/debug/proxies');
  const node = proxies.find((p) => p.nodeId === nodeId && p.service === 'ads');
  if (!node || node.pending) return undefined;
  const types = Object.values(node.types);
  if (types.length === 0 || types.some((t) => t.sentVersion !== undefined && t.sentVersion !== t.ackedVersion))
    return undefined;
  return types.flatMap((t) => (t.ackedVersion !== undefined ? [t.ackedVersion] : []));
}

for (const delta of [true, false]) {
  const flavour = delta ? 'Delta' : 'SotW';
  envoyTest(
    `Envoy (${flavour}): the control plane killed and restarted under traffic, 0 failed requests, new versions`,
    async (t, bin) => {
      const [a, b] = (await startHttpBackends(['a', 'b'])) as [HttpBackend, HttpBackend];
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'oxds-restart-'));
      const ports = await freeServePorts();
      fs.writeFileSync(
        path.join(dir, 'd.yaml'),
        descriptorYaml('a', `hosts: [a.oto.tools]\ntargets: [{url: "http://127.0.0.1:${a.port}"}]`),
      );
      let server = await startServeChild(dir, ports);
      const nodeId = `restart-${process.pid}-${flavour}`;
      const envoy = await EnvoyProcess.start(
        bin,
        gatewayBootstrapYaml({
          xdsAddress: `127.0.0.1:${ports.xds}`,
          nodeId,
          nodeCluster: 'otoroshi-gateway',
          adminAddress: '127.0.0.1',
          adminPort: 0,
          delta,
        }),
      );
      t.onTestFinished(async () => {
        await envoy.stop();
        await server.kill();
        await Promise.all([a.stop(), b.stop()]);
        fs.rmSync(dir, { recursive: true, force: true });
      });
      await envoy.ready();
      const port = await eventually('the oxds-http listener', () => envoy.listenerPort('oxds-http'));
      const before = await eventually('Envoy to ACK the first snapshot', () => ackedVersions(server, nodeId));
      await eventually('a.oto.tools served', async () =>
        (await httpRequest({ port, host: 'a.oto.tools' })).status === 200 ? true : undefined,
      );

      // Traffic: one request after the other, each on a fresh connection, until told to stop.
      const failures: string[] = [];
      let sent = 0;
      let phase: 'up' | 'down' | 'back' = 'up';
      const counts = { up: 0, down: 0, back: 0 };
      let running = true;
      const traffic = (async () => {
        while (running) {
          const p = phase;
          const r = await httpRequest({ port, host: 'a.oto.tools', path: `/n/${sent++}` }).catch((e: Error) => ({
            status: 0,
            body: e.message,
          }));
          counts[p]++;
          if (r.status !== 200) failures.push(`${p}: ${r.status} ${r.body.slice(0, 200)}`);
        }
      })();
      await eventually('traffic before the kill', () => (counts.up >= 20 ? true : undefined));

      await server.kill('SIGKILL');
      phase = 'down';
      await eventually('Envoy to see the control plane gone', async () =>
        (await envoy.stat('control_plane.connected_state')) === 0 ? true : undefined,
      );
      await eventually('traffic while the control plane is down', () => (counts.down >= 50 ? true : undefined), 60_000);

      server = await startServeChild(dir, ports);
      phase = 'back';
      const after = await eventually(
        'Envoy to reconnect and ACK the new server',
        () => ackedVersions(server, nodeId),
        90_000,
      );
      await eventually('traffic after the restart', () => (counts.back >= 20 ? true : undefined));
      running = false;
      await traffic;

      assert.deepEqual(failures, [], `${failures.length} failed of ${sent}`);
      assert.ok(counts.down >= 50);
      for (const v of after)
        assert.ok(!before.includes(v), `version ${v} reused after the restart (before: ${before.join(', ')})`);
      assert.equal(await envoy.stat('control_plane.connected_state'), 1);

      // The new server drives Envoy: a change after the restart is served.
      fs.writeFileSync(
        path.join(dir, 'd.yaml'),
        descriptorYaml('a', `hosts: [a.oto.tools]\ntargets: [{url: "http://127.0.0.1:${a.port}"}]`) +
          descriptorYaml('b', `hosts: [b.oto.tools]\ntargets: [{url: "http://127.0.0.1:${b.port}"}]`),
      );
      await eventually(
        'b.oto.tools served after the restart',
        async () => {
          const r = await httpRequest({ port, host: 'b.oto.tools' });
          return r.status === 200 && (JSON.parse(r.body) as { backend: string }).backend === 'b' ? true : undefined;
        },
        60_000,
      );
      assert.deepEqual(await envoy.rejected(), {});
    },
    { timeout: 180_000 },
  );
}
