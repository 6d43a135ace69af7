// The admin port of a running server: probes, /metrics after real pushes, /debug/proxies and
// /debug/config_dump (key material never shown), driven by a real ADS stream.
import { test } from 'vitest';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { resolveConfig } from '../src/config.js';
import { startServer, makeLogger } from '../src/main.js';
import { AdsClient, TYPE_URLS, anyName } from './helpers/ads-client.js';

function tmpConfig(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'oxds-admin-'));
  fs.copyFileSync('test/fixtures/model/tls/secrets.yaml', path.join(dir, 'secrets.yaml'));
  fs.writeFileSync(
    path.join(dir, 'web.yaml'),
    `apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: web, namespace: default}
spec:
  ingressClassName: otoroshi
  tls: [{hosts: [web.oto.tools], secretName: web-tls}]
  rules:
    - host: web.oto.tools
      http:
        paths:
          - {path: /, pathType: Prefix, backend: {service: {name: web, port: {number: 80}}}}
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: default}
spec: {clusterIP: 10.0.0.10, ports: [{name: http, port: 80}]}
`,
  );
  return dir;
}

async function get(port: number, p: string): Promise<{ status: number; body: string }> {
  const r = await fetch(`http://127.0.0.1:${port}${p}`);
  return { status: r.status, body: await r.text() };
}

test('admin: probes, metrics after a real push, proxies and a redacted config dump', async (t) => {
  const dir = tmpConfig();
  const r = resolveConfig(
    { config: dir, xdsPort: 0, adminPort: 0, authzPort: 0, dataDir: path.join(dir, '.data'), loopbackGateway: 'on' },
    {},
  );
  assert.ok(r.ok);
  const server = await startServer(r.value, makeLogger('silent'));
  t.onTestFinished(() => server.stop());
  const client = new AdsClient(server.xdsPort, { node: { id: 'gw-1', userAgentName: 'envoy' } });
  t.onTestFinished(() => client.close());

  assert.equal((await get(server.adminPort, '/ready')).status, 200);
  assert.equal((await get(server.adminPort, '/live')).status, 200);

  const last = await client.syncLikeEnvoy();
  assert.ok(last.get(TYPE_URLS.listener)?.resources.map(anyName).includes('oxds-https'));
  client.request(TYPE_URLS.secret, ['default/web-tls']);
  const secretResp = await client.nextSotw();
  assert.deepEqual(secretResp.resources.map(anyName), ['default/web-tls']);
  client.ack(secretResp, ['default/web-tls']);
  await new Promise((res) => setTimeout(res, 100));

  const metrics = (await get(server.adminPort, '/metrics')).body;
  assert.match(metrics, /oxds_xds_connected_proxies\{node_type="envoy"\} 1/);
  assert.match(metrics, /oxds_xds_pushes_total\{type="Secret"\} 1/);
  assert.match(metrics, /oxds_config_objects\{kind="Ingress",state="valid"\} 1/);
  assert.match(metrics, /process_cpu_user_seconds_total/);
  assert.match(metrics, /oxds_certificates_expiry_timestamp_seconds\{secret="default\/web-tls"\} \d{10}/);

  const proxies = JSON.parse((await get(server.adminPort, '/debug/proxies')).body) as {
    proxies: Array<{ nodeId: string; nodeType: string }>;
  };
  assert.deepEqual(
    proxies.proxies.map((p) => [p.nodeId, p.nodeType]),
    [['gw-1', 'envoy']],
  );

  // a NACK is counted, shown on /debug/proxies and leaves the type stale
  const nacker = new AdsClient(server.xdsPort, { node: { id: 'gw-2', userAgentName: 'envoy' } });
  t.onTestFinished(() => nacker.close());
  nacker.request(TYPE_URLS.cluster);
  const clusters = await nacker.nextSotw();
  nacker.nack(clusters, 'cluster rejected for the test');
  await new Promise((res) => setTimeout(res, 100));
  const after = (await get(server.adminPort, '/metrics')).body;
  assert.match(after, /oxds_xds_nacks_total\{type="Cluster"\} 1/);
  assert.match(after, /oxds_xds_stale_proxies\{type="Cluster"\} 1/);
  const withNack = JSON.parse((await get(server.adminPort, '/debug/proxies')).body) as {
    proxies: Array<{ nodeId: string; types: Record<string, { lastNack?: { message: string } }> }>;
  };
  const gw2 = withNack.proxies.find((p) => p.nodeId === 'gw-2');
  assert.equal(gw2?.types[TYPE_URLS.cluster]?.lastNack?.message, 'cluster rejected for the test');

  const dumpRes = await get(server.adminPort, '/debug/config_dump?node=gw-1');
  assert.equal(dumpRes.status, 200);
  assert.match(dumpRes.body, /web\.oto\.tools/);
  assert.match(dumpRes.body, /\[redacted\]/);
  assert.doesNotMatch(dumpRes.body, /PRIVATE KEY/);
  assert.equal((await get(server.adminPort, '/debug/config_dump?node=nobody')).status, 404);
  assert.equal((await get(server.adminPort, '/debug/config_dump')).status, 400);
});
