// ext_authz through the whole server (YAML → model → policy → Check over gRPC), as a user sees
// it: 400 without a key, allowed with one, remaining-calls headers counting down, 429 after the
// daily quota — in memory, and across two server processes sharing a real Redis.
import { test } from 'vitest';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { resolveConfig, type Config } from '../src/config.js';
import { startServer, makeLogger, type RunningServer } from '../src/main.js';
import { checkClient, checkRequest, callCheck, outcome } from './helpers/check-client.js';
import { redisAvailable, startRedis, REDIS_SKIP_MESSAGE } from './helpers/redis.js';

const CONFIG = `apiVersion: proxy.otoroshi.io/v1alpha1
kind: ServiceGroup
metadata: {name: billing, annotations: {otoroshi.io/id: billing}}
spec: {description: billing APIs}
---
apiVersion: proxy.otoroshi.io/v1alpha1
kind: ServiceDescriptor
metadata: {name: invoices, namespace: default}
spec:
  groups: [billing]
  hosts: [invoices.oto.tools]
  forceHttps: false
  publicPatterns: [/health]
  targets: [{url: "http://127.0.0.1:9100"}]
---
apiVersion: proxy.otoroshi.io/v1alpha1
kind: ApiKey
metadata: {name: partner, namespace: default}
spec:
  clientId: partner-id
  clientSecret: partner-secret
  authorizedEntities: [billing]
  dailyQuota: 4
`;

function configDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'oxds-authz-e2e-'));
  fs.writeFileSync(path.join(dir, 'billing.yaml'), CONFIG);
  return dir;
}

function config(dir: string, extra: Record<string, unknown> = {}): Config {
  const r = resolveConfig(
    { config: dir, xdsPort: 0, adminPort: 0, authzPort: 0, dataDir: path.join(dir, '.data'), ...extra },
    {},
  );
  assert.ok(r.ok, r.ok ? '' : r.errors.join('\n'));
  return r.value;
}

const withKey = {
  'otoroshi-client-id': 'partner-id',
  'otoroshi-client-secret': 'partner-secret',
  accept: 'application/json',
};

async function check(
  server: RunningServer,
  o: Parameters<typeof checkRequest>[0],
): Promise<ReturnType<typeof outcome>> {
  const client = checkClient(server.authzPort);
  try {
    return outcome(await callCheck(client, checkRequest(o)));
  } finally {
    client.close();
  }
}

test(
  'ext_authz on the running server: ' + 'public path, 400 without a key, remaining calls, 429 after the daily quota',
  async (t) => {
    const server = await startServer(config(configDir()), makeLogger('silent'));
    t.onTestFinished(() => server.stop());
    const host = 'invoices.oto.tools';

    assert.equal((await check(server, { host, path: '/health' })).status, 0, 'public pattern allows without a key');
    const noKey = await check(server, { host, path: '/invoices', headers: { accept: 'application/json' } });
    assert.equal(noKey.status, 400);
    assert.equal(noKey.message, 'No ApiKey provided');
    assert.equal(noKey.headers['Otoroshi-Error'], 'true');
    assert.deepEqual(JSON.parse(noKey.body ?? '{}'), { 'Otoroshi-Error': 'No ApiKey provided' });

    const wrong = await check(server, {
      host,
      path: '/invoices',
      headers: { ...withKey, 'otoroshi-client-secret': 'nope' },
    });
    assert.equal(wrong.status, 401);
    assert.equal(wrong.message, 'Bad API key');

    const remaining: string[] = [];
    for (let i = 0; i < 4; i++) {
      const ok = await check(server, { host, path: '/invoices', headers: withKey });
      assert.equal(ok.status, 0, `call ${i + 1} allowed`);
      assert.equal(ok.headers['Otoroshi-Client-Id'], 'partner-id');
      remaining.push(ok.headers['Otoroshi-Daily-Calls-Remaining'] ?? '?');
    }
    assert.deepEqual(remaining, ['3', '2', '1', '0']);
    const over = await check(server, { host, path: '/invoices', headers: withKey });
    assert.equal(over.status, 429);
    assert.equal(over.message, 'You performed too much requests');

    const unknownHost = await check(server, { host: 'nowhere.oto.tools', path: '/', headers: withKey });
    assert.equal(unknownHost.status, 404);
    assert.equal(unknownHost.message, 'Service not found');

    const metrics = await (await fetch(`http://127.0.0.1:${server.adminPort}/metrics`)).text();
    assert.match(metrics, /oxds_authz_checks_total\{decision="allow",reason="apikey"\} 4/);
    assert.match(metrics, /oxds_quota_exceeded_total\{quota="daily"\} 1/);
  },
);

test.skipIf(redisAvailable() ? false : REDIS_SKIP_MESSAGE)(
  'two server processes sharing Redis count one quota: remaining calls go down across both',
  async (t) => {
    const redis = await startRedis();
    t.onTestFinished(() => redis.stop());
    const dir = configDir();
    const a = await startServer(config(dir, { redisUrl: redis.url }), makeLogger('silent'));
    t.onTestFinished(() => a.stop());
    const b = await startServer(
      config(dir, { redisUrl: redis.url, dataDir: path.join(dir, '.data-b') }),
      makeLogger('silent'),
    );
    t.onTestFinished(() => b.stop());
    const host = 'invoices.oto.tools';
    const seen: string[] = [];
    for (const s of [a, b, a, b]) {
      const r = await check(s, { host, path: '/invoices', headers: withKey });
      assert.equal(r.status, 0);
      seen.push(r.headers['Otoroshi-Daily-Calls-Remaining'] ?? '?');
    }
    assert.deepEqual(seen, ['3', '2', '1', '0']);
    assert.equal((await check(b, { host, path: '/invoices', headers: withKey })).status, 429);
    assert.equal((await check(a, { host, path: '/invoices', headers: withKey })).status, 429);
  },
);
