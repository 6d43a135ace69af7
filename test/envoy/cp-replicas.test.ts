// Control-plane replicas behind ONE address, as a Kubernetes Service puts them: three `serve`
// processes (same config directory, each on its own "pod IP", same ports) behind a virtual IP that
// iptables DNAT spreads over them inside a network namespace (kube-proxy's iptables mode; round
// robin here, where kube-proxy draws at random, so that the spread is the same on every run). Real
// Envoys (SotW and Delta) in that namespace know only the VIP. The test shows the Envoys spread
// over the replicas (each replica's /debug/proxies), then SIGKILLs one replica under request load
// and removes it from the Service (as kube-proxy does once the pod is gone): its Envoys reconnect
// through the VIP to the others, and every Envoy ends with the same resource content it had, every
// request answered as before, no NACK.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { gatewayBootstrapYaml } from '../../src/envoy/bootstrap.js';
import { envoyTest, eventually, EnvoyProcess } from '../helpers/envoy.js';
import { createServiceNetns, netnsMissing, type ServiceNetns } from '../helpers/netns.js';
import { freePort } from '../helpers/redis.js';
import { startServeChild, type ServeChild } from '../helpers/serve-child.js';

const REPLICAS = 3;
const ENVOYS = 6;
const HOSTS = 12;
const TOKEN = 'replicas-gateway-token';

interface Proxy {
  nodeId: string;
  service: string;
  pending: boolean;
  types: Record<string, { sentVersion?: string; ackedVersion?: string; lastNack?: unknown }>;
}

function config(ports: readonly number[], host: string): string {
  const out: string[] = [];
  for (let i = 0; i < HOSTS; i++)
    out.push(`apiVersion: proxy.otoroshi.io/v1alpha1
kind: ServiceDescriptor
metadata: {name: s${i}, namespace: default}
spec:
  hosts: [s${i}.replicas.test]
  forceHttps: false
  publicPatterns: ['/.*']
  ${i % 3 === 0 ? 'matchingRoot: /api\n  ' : ''}targets: [{url: "http://${host}:${ports[i % ports.length]}"}]
`);
  return out.join('---\n');
}

/** Backends answering their id, bound to the host side of the veth. */
async function backends(host: string, n: number): Promise<{ ports: number[]; stop(): Promise<void> }> {
  const servers = await Promise.all(
    Array.from({ length: n }, async (_, i) => {
      const s = http.createServer((_req, res) => res.end(`b${i}`));
      await new Promise<void>((r) => s.listen(0, host, () => r()));
      return s;
    }),
  );
  return {
    ports: servers.map((s) => (s.address() as { port: number }).port),
    stop: async () => {
      for (const s of servers) s.closeAllConnections();
      await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
    },
  };
}

function get(address: string, port: number, host: string, p: string): Promise<string> {
  return new Promise((resolve) => {
    const req = http.get({ host: address, port, path: p, headers: { host }, agent: false }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve(`${res.statusCode} ${body}`));
    });
    req.setTimeout(10_000, () => req.destroy());
    req.on('error', (e) => resolve(`error ${e.message}`));
  });
}

/** What each request of the fixed set answers through one Envoy. */
async function answers(address: string, port: number): Promise<string[]> {
  const out: string[] = [];
  for (let i = 0; i < HOSTS; i++) out.push(await get(address, port, `s${i}.replicas.test`, '/api/x'));
  out.push(await get(address, port, 's0.replicas.test', '/other'));
  return out;
}

/** The dynamic resources of an Envoy's config dump, without what names the sender (versions, times). */
function content(dump: unknown): unknown {
  const strip = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(strip);
    if (v && typeof v === 'object')
      return Object.fromEntries(
        Object.entries(v as Record<string, unknown>)
          .filter(([k]) => k !== 'version_info' && k !== 'last_updated')
          .map(([k, x]) => [k, strip(x)]),
      );
    return v;
  };
  const configs = (dump as { configs: Record<string, unknown>[] }).configs.filter(
    (c) => !String(c['@type']).includes('Bootstrap'),
  );
  return strip(configs);
}

async function ads(r: ServeChild): Promise<Proxy[]> {
  return (await r.admin<{ proxies: Proxy[] }>('/debug/proxies')).proxies.filter((p) => p.service === 'ads');
}

/** Every xDS byte a replica has sent (its oxds_xds_push_bytes_total, all types). */
async function pushedBytes(r: ServeChild): Promise<number> {
  const text = await (await fetch(`http://${r.host}:${r.ports.admin}/metrics`)).text();
  let sum = 0;
  for (const m of text.matchAll(/^oxds_xds_push_bytes_total\{[^}]*\} (\S+)$/gm)) sum += Number(m[1]);
  return sum;
}

function converged(p: Proxy): boolean {
  const types = Object.values(p.types);
  return !p.pending && types.length > 0 && types.every((t) => t.sentVersion === t.ackedVersion);
}

const missing = netnsMissing();
envoyTest(
  `${REPLICAS} control-plane replicas behind one Service VIP: Envoys spread; ` +
    "a killed replica's Envoys move with the same config",
  async (t, bin) => {
    if (missing !== undefined) {
      if (process.env.CI === 'true') assert.fail(`CI=true and network namespaces are unavailable: ${missing}`);
      t.skip(`network namespaces: ${missing}`);
      return;
    }
    const net: ServiceNetns = createServiceNetns(`cp${process.pid}`, 20 + (process.pid % 200), REPLICAS);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'oxds-cp-replicas-'));
    const replicas: ServeChild[] = [];
    const envoys: EnvoyProcess[] = [];
    const be = await backends(net.hostAddress, 3);
    t.onTestFinished(async () => {
      await Promise.all(envoys.map((e) => e.stop()));
      await Promise.all(replicas.map((r) => r.kill('SIGKILL')));
      await be.stop();
      net.destroy();
      fs.rmSync(dir, { recursive: true, force: true });
    });
    fs.writeFileSync(path.join(dir, 'd.yaml'), config(be.ports, net.hostAddress));
    // Same ports on every pod IP, like the pods of one Deployment.
    const ports = { xds: await freePort(), admin: await freePort(), authz: await freePort() };
    for (const ip of net.podAddresses)
      replicas.push(
        await startServeChild(
          dir,
          ports,
          [
            '--log-level',
            'warn',
            '--gateway-token',
            TOKEN,
            '--envoy-listen-address',
            net.nsAddress,
            // ext_authz through the Service too: every replica then generates the same clusters.
            '--envoy-authz-address',
            net.vip,
            '--data-dir',
            path.join(dir, `.data-${ip}`),
          ],
          ip,
        ),
      );
    const endpoints = (port: number, live: readonly ServeChild[]): { address: string; port: number }[] =>
      live.map((r) => ({ address: net.podAddresses[replicas.indexOf(r)]!, port }));
    net.setService(ports.xds, endpoints(ports.xds, replicas));
    net.setService(ports.authz, endpoints(ports.authz, replicas));

    // Envoys one after the other: each opens one ADS connection to the VIP.
    const gws: { envoy: EnvoyProcess; nodeId: string; port: number }[] = [];
    for (let i = 0; i < ENVOYS; i++) {
      const nodeId = `replicas-${i}-${i % 2 === 0 ? 'sotw' : 'delta'}`;
      const envoy = await EnvoyProcess.start(
        net.wrap(bin),
        gatewayBootstrapYaml({
          xdsAddress: `${net.vip}:${ports.xds}`,
          nodeId,
          nodeCluster: 'otoroshi-gateway',
          adminAddress: net.nsAddress,
          adminPort: 0,
          delta: i % 2 === 1,
          token: TOKEN,
        }),
      );
      envoys.push(envoy);
      await envoy.ready();
      const port = await eventually('the oxds-http listener', () => envoy.listenerPort('oxds-http'), 60_000);
      gws.push({ envoy, nodeId, port });
    }
    const where = async (live: readonly ServeChild[]): Promise<Map<string, number>> => {
      const m = new Map<string, number>();
      for (const r of live) for (const p of await ads(r)) if (converged(p)) m.set(p.nodeId, replicas.indexOf(r));
      return m;
    };
    const placed = await eventually(
      'every Envoy connected to one replica and in sync',
      async () => {
        const m = await where(replicas);
        return m.size === ENVOYS ? m : undefined;
      },
      60_000,
    );
    const perReplica = replicas.map((_, i) => [...placed.values()].filter((x) => x === i).length);
    assert.deepEqual(perReplica, [2, 2, 2], `Envoys per replica through the VIP: ${JSON.stringify([...placed])}`);

    const expected = 'b0 b1 b2'.split(' ');
    const before = await Promise.all(gws.map((g) => answers(net.nsAddress, g.port)));
    for (const a of before) {
      assert.deepEqual(
        a.slice(0, HOSTS),
        Array.from({ length: HOSTS }, (_, i) => `200 ${expected[i % 3]}`),
        'every host answered by its backend',
      );
      assert.match(a[HOSTS]!, /^404 .*Service not found/, 's0 only matches under /api');
    }
    const dumps = await Promise.all(gws.map(async (g) => content(await g.envoy.configDump('?include_eds'))));
    // Delta Envoys hold the route tables as VHDS shells + virtual hosts, SotW Envoys as RDS: the same
    // resources within each flavour (and the same answers for all, above).
    for (const flavour of ['sotw', 'delta']) {
      const same = dumps.filter((_, i) => gws[i]!.nodeId.endsWith(flavour));
      assert.ok(same.length >= 2, flavour);
      for (const d of same.slice(1)) assert.deepEqual(d, same[0], `every ${flavour} Envoy holds the same resources`);
    }

    // Request loops through every Envoy while one replica dies.
    let stop = false;
    let total = 0;
    const failures: string[] = [];
    const loops = gws.map(async (g, k) => {
      for (let n = 0; !stop; n++) {
        const i = (n + k) % HOSTS;
        const got = await get(net.nsAddress, g.port, `s${i}.replicas.test`, '/api/x');
        total++;
        if (got !== `200 ${expected[i % 3]}`) failures.push(`${g.nodeId} s${i}: ${got}`);
      }
    });
    const victim = replicas[0]!;
    const moved = [...placed].filter(([, r]) => r === 0).map(([n]) => n);
    const sentBefore = await Promise.all(replicas.slice(1).map(pushedBytes));
    const t0 = performance.now();
    await victim.kill('SIGKILL');
    const live = replicas.slice(1);
    net.setService(ports.xds, endpoints(ports.xds, live));
    net.setService(ports.authz, endpoints(ports.authz, live));
    const after = await eventually(
      `the Envoys of the killed replica (${moved.join(', ')}) connected to the others and in sync`,
      async () => {
        const m = await where(live);
        return m.size === ENVOYS ? m : undefined;
      },
      120_000,
    );
    const movedMs = performance.now() - t0;
    const resent = (await Promise.all(live.map(pushedBytes))).reduce((a, b, i) => a + b - sentBefore[i]!, 0);
    stop = true;
    await Promise.all(loops);
    for (const n of moved) assert.notEqual(after.get(n), 0);

    const dumpsAfter = await Promise.all(gws.map(async (g) => content(await g.envoy.configDump('?include_eds'))));
    for (let i = 0; i < gws.length; i++)
      assert.deepEqual(dumpsAfter[i], dumps[i], `${gws[i]!.nodeId}: same resource content after the move`);
    const answersAfter = await Promise.all(gws.map((g) => answers(net.nsAddress, g.port)));
    assert.deepEqual(answersAfter, before, 'every request answers as before');
    assert.deepEqual(failures, [], 'no request failed while the replica died');
    for (const g of gws) assert.deepEqual(await g.envoy.rejected(), {}, `${g.nodeId}: no NACK`);
    for (const r of live)
      for (const p of await ads(r))
        for (const [type, s] of Object.entries(p.types)) assert.equal(s.lastNack, undefined, `${p.nodeId} ${type}`);
    // Each moved Envoy is on a new stream of a surviving replica; the others never left theirs.
    for (const [n, r] of placed) if (r !== 0) assert.equal(after.get(n), r, `${n} stayed on replica ${r}`);
    console.log(
      `# replicas: Envoys per replica ${JSON.stringify(perReplica)}; replica 0 killed: ${moved.length} Envoys moved ` +
        `to ${JSON.stringify(moved.map((n) => after.get(n)))} and in sync ${movedMs.toFixed(0)} ms later, ` +
        `${resent} B of xDS sent to them; ` +
        `${total} requests during the move, ${failures.length} failed; resource content unchanged; 0 NACKs`,
    );
  },
  { timeout: 300_000 },
);
