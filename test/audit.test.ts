// Audit events: config changes through a running server (file sink), repeated bad secrets from one
// source, exhausted quotas once per window, and the webhook sink batching to a local HTTP server.
import { test } from 'vitest';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { Audit, auditAuthzHooks, webhookSink, type AuditEvent } from '../src/audit.js';
import { resolveConfig } from '../src/config.js';
import { startServer, makeLogger } from '../src/main.js';

const DESC = (name: string, port: number): string => `apiVersion: proxy.otoroshi.io/v1alpha1
kind: ServiceDescriptor
metadata: {name: ${name}, namespace: default}
spec:
  hosts: [${name}.oto.tools]
  forceHttps: false
  targets: [{url: "http://127.0.0.1:${port}"}]
`;

function readEvents(file: string): AuditEvent[] {
  if (!fs.existsSync(file)) return [];
  return fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as AuditEvent);
}

test('every object added, changed or removed becomes an audit event in the audit file', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'oxds-audit-'));
  const conf = path.join(dir, 'conf');
  fs.mkdirSync(conf);
  fs.writeFileSync(path.join(conf, 'a.yaml'), DESC('a', 9001));
  fs.writeFileSync(path.join(conf, 'b.yaml'), DESC('b', 9002));
  const auditFile = path.join(dir, 'audit.jsonl');
  const r = resolveConfig(
    {
      config: conf,
      xdsPort: 0,
      adminPort: 0,
      authzPort: 0,
      dataDir: path.join(dir, '.data'),
      auditFile,
      debounceMs: 10,
      debounceMaxMs: 50,
    },
    {},
  );
  assert.ok(r.ok);
  const server = await startServer(r.value, makeLogger('silent'));
  t.onTestFinished(() => server.stop());
  fs.writeFileSync(path.join(conf, 'a.yaml'), DESC('a', 9009));
  fs.unlinkSync(path.join(conf, 'b.yaml'));
  fs.writeFileSync(path.join(conf, 'c.yaml'), DESC('c', 9003));
  await server.rebuildNow();
  await server.stop();
  const events = readEvents(auditFile);
  const summary = events.map((e) => `${e.type} ${String(e.object ?? e.objects ?? '')}`);
  assert.equal(summary[0], 'config.loaded 2');
  assert.ok(summary.includes('config.object.changed ServiceDescriptor/default/a'), summary.join('\n'));
  assert.ok(summary.includes('config.object.removed ServiceDescriptor/default/b'), summary.join('\n'));
  assert.ok(summary.includes('config.object.added ServiceDescriptor/default/c'), summary.join('\n'));
  assert.ok(events.every((e) => typeof e.at === 'string'));
});

test('repeated bad secrets from one source raise one event per window; a few mistakes raise none', () => {
  const seen: AuditEvent[] = [];
  let now = 0;
  const audit = new Audit(
    pino({ level: 'silent' }),
    [{ write: (e) => seen.push(e), close: async () => {} }],
    () => now,
  );
  const hooks = auditAuthzHooks(audit, { threshold: 5, windowMs: 60_000, now: () => now });
  for (let i = 0; i < 4; i++)
    hooks.onSuspicious?.({ kind: 'bad_secret', sourceIp: '10.0.0.1', clientId: 'k', detail: 'wrong secret' });
  assert.equal(seen.length, 0);
  for (let i = 0; i < 10; i++)
    hooks.onSuspicious?.({ kind: 'bad_secret', sourceIp: '10.0.0.1', clientId: 'k', detail: 'wrong secret' });
  assert.deepEqual(
    seen.map((e) => [e.type, e.sourceIp, e.count]),
    [['security.repeated_bad_secrets', '10.0.0.1', 5]],
  );
  hooks.onSuspicious?.({ kind: 'bad_secret', sourceIp: '10.0.0.2', detail: 'x' });
  assert.equal(seen.length, 1, 'another source has its own count');
  now = 61_000;
  for (let i = 0; i < 5; i++) hooks.onSuspicious?.({ kind: 'bad_secret', sourceIp: '10.0.0.1', detail: 'x' });
  assert.equal(seen.length, 2, 'a new window reports again');
  hooks.onSuspicious?.({ kind: 'jwt_alg_confusion', sourceIp: '10.0.0.3', detail: 'HS256 token on an RSA verifier' });
  assert.equal(seen.at(-1)?.type, 'security.jwt_alg_confusion');
  hooks.onQuotaExceeded?.('k', 'daily');
  hooks.onQuotaExceeded?.('k', 'daily');
  assert.equal(seen.filter((e) => e.type === 'quota.exhausted').length, 1);
});

test('the webhook sink posts batches of events to the URL and survives a failing endpoint', async (t) => {
  const batches: unknown[][] = [];
  let fail = true;
  const srv = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      if (fail) {
        fail = false;
        res.writeHead(500).end();
        return;
      }
      batches.push(JSON.parse(body) as unknown[]);
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  t.onTestFinished(() => {
    srv.close();
  });
  const port = (srv.address() as { port: number }).port;
  const errors: unknown[] = [];
  const sink = webhookSink(`http://127.0.0.1:${port}/audit`, { flushMs: 20, onError: (e) => errors.push(e) });
  const audit = new Audit(pino({ level: 'silent' }), [sink]);
  audit.emit('config.object.added', { object: 'x' });
  await new Promise((r) => setTimeout(r, 100));
  audit.emit('config.object.added', { object: 'y' });
  audit.emit('config.object.removed', { object: 'z' });
  await audit.close();
  assert.equal(errors.length, 1, 'the first POST failed and was reported');
  assert.deepEqual(
    batches.flat().map((e) => (e as AuditEvent).object),
    ['y', 'z'],
  );
});
