// Envoy access logs (ALS) → traffic metrics: a real StreamAccessLogs stream, as Envoy sends it,
// against the running server; and the generated listeners' access-log config.
import { test } from 'vitest';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { lookupType } from '../proto/loader.js';
import { ALS_PATH, descriptorOf } from '../src/als.js';
import { resolveConfig, translateOptionsFrom } from '../src/config.js';
import { startServer, makeLogger } from '../src/main.js';
import { loadConfigDir } from '../src/sources/yaml.js';
import { compile } from '../src/pipeline.js';

const Msg = lookupType('envoy.service.accesslog.v3.StreamAccessLogsMessage');

function entry(route: string, status: number, clientId?: string): Record<string, unknown> {
  return {
    commonProperties: {
      routeName: route,
      upstreamCluster: 'oxds~x~00000000',
      timeToFirstUpstreamTxByte: { nanos: 2_000_000 },
      timeToLastUpstreamRxByte: { nanos: 12_000_000 },
      duration: { nanos: 15_000_000 },
    },
    request: {
      requestHeadersBytes: 200,
      requestBodyBytes: 50,
      requestHeaders: clientId ? { 'otoroshi-client-id': clientId } : {},
    },
    response: { responseCode: { value: status }, responseHeadersBytes: 100, responseBodyBytes: 900 },
  };
}

test(
  'ALS: access-log entries become per-descriptor request, byte and latency metrics; ' + 'unknown ids stay "unknown"',
  async (t) => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'oxds-als-'));
    const r = resolveConfig(
      {
        config: 'examples',
        xdsPort: 0,
        adminPort: 0,
        authzPort: 0,
        dataDir: path.join(dir, '.data'),
        metricsPerApikey: 'on',
      },
      {},
    );
    assert.ok(r.ok);
    const server = await startServer(r.value, makeLogger('silent'));
    t.onTestFinished(() => server.stop());
    const desc = 'kubernetes-crd-import-default-greeter';
    const client = new grpc.Client(`127.0.0.1:${server.xdsPort}`, grpc.credentials.createInsecure());
    t.onTestFinished(() => client.close());
    await new Promise<void>((resolve, reject) => {
      const call = client.makeClientStreamRequest(
        ALS_PATH,
        (b: Buffer) => b,
        (b: Buffer) => b,
        (err) => (err ? reject(err) : resolve()),
      );
      const send = (o: Record<string, unknown>): void =>
        void call.write(Buffer.from(Msg.encode(Msg.fromObject(o)).finish()));
      send({
        identifier: { node: { id: 'gw-1' }, logName: 'otoroshi-xds' },
        httpLogs: { logEntry: [entry(`${desc}/0`, 200, 'demo-client'), entry(`${desc}/0`, 503)] },
      });
      send({ httpLogs: { logEntry: [entry('attacker-made-up/0', 404, 'random-id')] } });
      call.end();
    });
    const m = await (await fetch(`http://127.0.0.1:${server.adminPort}/metrics`)).text();
    assert.match(m, new RegExp(`oxds_http_requests_total\\{descriptor="${desc}",status_class="2xx"\\} 1`));
    assert.match(m, new RegExp(`oxds_http_requests_total\\{descriptor="${desc}",status_class="5xx"\\} 1`));
    assert.match(m, /oxds_http_requests_total\{descriptor="unknown",status_class="4xx"\} 1/);
    assert.match(m, new RegExp(`oxds_http_request_bytes_total\\{descriptor="${desc}"\\} 500`));
    assert.match(m, new RegExp(`oxds_http_response_bytes_total\\{descriptor="${desc}"\\} 2000`));
    assert.match(m, new RegExp(`oxds_http_upstream_latency_seconds_count\\{descriptor="${desc}"\\} 2`));
    assert.match(m, /oxds_http_envoy_overhead_seconds_count 3/);
    assert.doesNotMatch(m, /random-id/);
  },
);

test('descriptor id from our route or cluster names', () => {
  assert.equal(descriptorOf('svc-a/0', ''), 'svc-a');
  assert.equal(descriptorOf('', 'oxds~svc-b~1a2b3c4d'), 'svc-b');
  assert.equal(descriptorOf('', 'oxds~svc-c~1a2b3c4d~t1'), 'svc-c');
  assert.equal(descriptorOf('', 'outside'), undefined);
});

test('--envoy-als-cluster adds a validated gRPC access logger to the Envoy listeners only', async () => {
  const r = resolveConfig({ config: 'examples', envoyAlsCluster: 'xds_cluster' }, {});
  assert.ok(r.ok);
  const c = compile(await loadConfigDir('examples'), {}, translateOptionsFrom(r.value, 18001));
  assert.deepEqual(
    c.errors.filter((e) => e.severity === 'error'),
    [],
  );
  const http = JSON.stringify(c.envoy.set.listeners);
  assert.match(http, /envoy\.access_loggers\.http_grpc/);
  assert.match(http, /"clusterName":"xds_cluster"/);
  assert.doesNotMatch(JSON.stringify(c.grpc.set.listeners), /access_loggers/);
});
