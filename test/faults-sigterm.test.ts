// SIGTERM on the real CLI (`otoroshi-xds serve`, spawned) with an ADS stream, an access-log stream
// and served Checks: graceful shutdown — xDS streams are
// ended with UNAVAILABLE (clients reconnect elsewhere), every port stops accepting, the audit
// file is flushed, and the process exits 0 on its own (the CLI's 10 s force-exit would exit 1).
import { test } from 'vitest';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import * as grpc from '@grpc/grpc-js';
import { AdsClient, TYPE_URLS } from './helpers/ads-client.js';
import { checkClient, checkRequest, callCheck } from './helpers/check-client.js';
import { openRawStream } from './helpers/raw-grpc.js';
import { acceptsConnections } from './helpers/envoy.js';

const CONFIG = `apiVersion: proxy.otoroshi.io/v1alpha1
kind: ServiceDescriptor
metadata: {name: web, namespace: default}
spec:
  hosts: [web.oto.tools]
  forceHttps: false
  publicPatterns: ["/.*"]
  targets: [{url: "http://127.0.0.1:9001"}]
`;

test('SIGTERM: the CLI drains streams, closes every port, flushes the audit file and exits 0', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'oxds-sigterm-'));
  t.onTestFinished(() => fs.rmSync(dir, { recursive: true, force: true }));
  fs.mkdirSync(path.join(dir, 'config'));
  fs.writeFileSync(path.join(dir, 'config', 'web.yaml'), CONFIG);
  const audit = path.join(dir, 'audit.jsonl');
  const child = spawn(
    process.execPath,
    [
      'dist/src/cli.js',
      'serve',
      '--config',
      path.join(dir, 'config'),
      '--xds-port',
      '0',
      '--authz-port',
      '0',
      '--admin-port',
      '0',
      '--data-dir',
      path.join(dir, '.data'),
      '--audit-file',
      audit,
      '--log-level',
      'info',
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  t.onTestFinished(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  const logs: Array<Record<string, unknown>> = [];
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('exit', (code, signal) => resolve({ code, signal })),
  );
  const serving = new Promise<{ xdsPort: number; authzPort: number; adminPort: number }>((resolve, reject) => {
    readline.createInterface({ input: child.stderr! }).on('line', (line) => {
      let o: Record<string, unknown>;
      try {
        o = JSON.parse(line) as Record<string, unknown>;
      } catch {
        logs.push({ raw: line });
        return;
      }
      logs.push(o);
      if (o.msg === 'otoroshi-xds serving')
        resolve({ xdsPort: Number(o.xdsPort), authzPort: Number(o.authzPort), adminPort: Number(o.adminPort) });
    });
    child.on('exit', () => reject(new Error(`exited before serving: ${JSON.stringify(logs)}`)));
  });
  const ports = await serving;

  // A connected xDS client with a synced stream, and a served Check.
  const client = new AdsClient(ports.xdsPort, { node: { id: 'gw' } });
  t.onTestFinished(() => client.close());
  client.request(TYPE_URLS.cluster);
  client.ack(await client.nextSotw(5000));
  const cc = checkClient(ports.authzPort);
  const d = await callCheck(cc, checkRequest({ host: 'web.oto.tools', path: '/' }));
  assert.equal(d.status?.code ?? 0, 0);
  cc.close();

  // An Envoy access-log stream (client-streaming, never ended by Envoy) must not block the shutdown.
  const als = openRawStream(
    { port: ports.xdsPort },
    '/envoy.service.accesslog.v3.AccessLogService/StreamAccessLogs',
    () => undefined,
  );
  t.onTestFinished(() => als.close());
  als.write(new Uint8Array(0));
  await new Promise((r) => setTimeout(r, 200));

  child.kill('SIGTERM');
  const status = await client.ended(10_000);
  assert.equal(
    status.code,
    grpc.status.UNAVAILABLE,
    `the stream is ended for the client to reconnect elsewhere: ${status.details}`,
  );
  assert.equal(
    await als.ended,
    String(grpc.status.UNAVAILABLE),
    'the access-log stream is ended cleanly too (not cut by the force timeout)',
  );
  const exit = await exited;
  assert.deepEqual(
    exit,
    { code: 0, signal: null },
    `graceful exit (not the force-exit): ${JSON.stringify(logs.slice(-5))}`,
  );
  assert.ok(logs.some((l) => l.msg === 'shutting down' && l.signal === 'SIGTERM'));
  for (const [name, p] of Object.entries(ports))
    assert.ok(!(await acceptsConnections(p)), `${name} ${p} no longer accepts connections`);
  const events = fs
    .readFileSync(audit, 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { type?: string });
  assert.ok(
    events.some((e) => e.type === 'config.loaded'),
    `audit flushed: ${JSON.stringify(events)}`,
  );
  assert.ok(
    !logs.some((l) => typeof l.level === 'number' && l.level >= 50),
    `no error logged during shutdown: ${JSON.stringify(logs.filter((l) => (l.level as number) >= 50))}`,
  );
});
