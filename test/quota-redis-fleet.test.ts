// Quotas on real Redis topologies shared by three control-plane replicas (three whole servers:
// YAML → policy → Check over gRPC, each with its own Redis connection):
//   - Redis Cluster (3 primaries): one apikey's quota is enforced exactly under concurrent load on
//     all replicas; the slot holding that apikey's counters migrates to another primary under load.
//   - Sentinel (primary, replica, 3 sentinels): the same exactness, then the primary is SIGKILLed
//     under load and the replica promoted.
// Fail-closed with a generous command timeout (a loaded test machine is slow, not down), so every
// allowed call was counted by Redis: "lost" counts are allowed calls that
// the final counter misses, bounded by the calls in flight at the fault.
import { test } from 'vitest';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { resolveConfig } from '../src/config.js';
import { startServer, makeLogger, type RunningServer } from '../src/main.js';
import { checkRequest } from './helpers/check-client.js';
import { checkLoad, inFlightAt, statusCounts, type CheckSample } from './helpers/check-load.js';
import {
  redisAvailable,
  redisCli,
  sentinelAvailable,
  startRedisCluster,
  startRedisSentinel,
  REDIS_SKIP_MESSAGE,
  SENTINEL_SKIP_MESSAGE,
} from './helpers/redis.js';
import { INVOICES_YAML, apiKeyYaml, yamlDocs } from './fixtures/index.js';

const CLIENT_ID = 'fleet-id';

function config(dailyQuota: number): string {
  return yamlDocs(
    INVOICES_YAML,
    apiKeyYaml({
      name: 'fleet',
      namespace: 'default',
      clientId: CLIENT_ID,
      clientSecret: 'fleet-secret',
      authorizedEntities: ['service_invoices'],
      throttlingQuota: 1000000,
      dailyQuota,
      monthlyQuota: 100000000,
    }),
  );
}

const REQ = checkRequest({
  host: 'invoices.oto.tools',
  path: '/x',
  headers: { 'otoroshi-client-id': CLIENT_ID, 'otoroshi-client-secret': 'fleet-secret' },
});
const REPLICAS = 3;
const WORKERS = 6;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Three control-plane replicas on one Redis URL (fail-closed). */
async function replicas(
  redisUrl: string,
  dailyQuota: number,
): Promise<{ servers: RunningServer[]; stop: () => Promise<void> }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'oxds-quota-fleet-'));
  fs.writeFileSync(path.join(dir, 'c.yaml'), config(dailyQuota));
  const servers: RunningServer[] = [];
  const stop = async (): Promise<void> => {
    await Promise.all(servers.map((s) => s.stop()));
    fs.rmSync(dir, { recursive: true, force: true });
  };
  try {
    for (let i = 0; i < REPLICAS; i++) {
      const r = resolveConfig(
        {
          config: dir,
          xdsPort: 0,
          adminPort: 0,
          authzPort: 0,
          dataDir: path.join(dir, `data-${i}`),
          redisUrl,
          quotaFailMode: 'closed',
          redisCommandTimeoutMs: 2000,
          logLevel: 'silent',
        },
        {},
      );
      assert.ok(r.ok, JSON.stringify(!r.ok && r.errors));
      servers.push(await startServer(r.value, makeLogger('silent')));
    }
  } catch (err) {
    await stop();
    throw err;
  }
  return { servers, stop };
}

/** Sum of this apikey's daily counters on one Redis node (a key per day). */
async function dailyCount(port: number): Promise<number> {
  const keys = (await redisCli(port, '--scan', '--pattern', `oxds:{${CLIENT_ID}}:quota:daily:*`))
    .split('\n')
    .filter((k) => k !== '');
  let n = 0;
  for (const k of keys) n += Number((await redisCli(port, 'get', k)).trim()) || 0;
  return n;
}

/** Exactly `quota` calls allowed over three replicas, every other call 429, no error, no 503. */
async function assertExact(ports: number[], quota: number): Promise<CheckSample[]> {
  const total = quota + 200;
  const l = checkLoad(ports, WORKERS, REQ, total);
  await l.done;
  const counts = statusCounts(l.samples);
  assert.equal(l.samples.length, total);
  assert.deepEqual(counts, { 0: quota, 429: total - quota }, 'exactly the quota allowed, the rest 429');
  for (let r = 0; r < ports.length; r++)
    assert.ok(
      l.samples.some((s) => s.replica === r && s.status === 0),
      `replica ${r} allowed some calls`,
    );
  return l.samples;
}

const clusterSkip = redisAvailable() ? false : REDIS_SKIP_MESSAGE;
const sentinelSkip = sentinelAvailable() ? false : SENTINEL_SKIP_MESSAGE;

test.skipIf(clusterSkip)('Redis Cluster: three replicas enforce one quota exactly under concurrent load', async () => {
  const cluster = await startRedisCluster(3);
  const { servers, stop } = await replicas(cluster.url, 400);
  try {
    await assertExact(
      servers.map((s) => s.authzPort),
      400,
    );
    const slot = Number((await redisCli(cluster.ports[0]!, 'cluster', 'keyslot', CLIENT_ID)).trim());
    assert.equal(await dailyCount(await cluster.ownerOf(slot)), 400, 'the shared counter holds every allowed call');
  } finally {
    await stop();
    await cluster.stop();
  }
});

/** Moves `slot` from its owner to another primary (what `redis-cli --cluster reshard` does, one slot). */
async function migrateSlot(
  cluster: Awaited<ReturnType<typeof startRedisCluster>>,
  slot: number,
): Promise<{ from: number; to: number }> {
  const from = await cluster.ownerOf(slot);
  const to = cluster.ports.find((p) => p !== from)!;
  const [fromId, toId] = await Promise.all([cluster.nodeId(from), cluster.nodeId(to)]);
  await redisCli(to, 'cluster', 'setslot', slot, 'importing', fromId);
  await redisCli(from, 'cluster', 'setslot', slot, 'migrating', toId);
  for (;;) {
    const keys = (await redisCli(from, 'cluster', 'getkeysinslot', slot, 1000)).split('\n').filter((k) => k !== '');
    if (keys.length === 0) break;
    const out = await redisCli(from, 'migrate', '127.0.0.1', to, '', 0, 5000, 'keys', ...keys);
    assert.match(out, /OK|NOKEY/, `MIGRATE answered ${out}`);
  }
  await redisCli(to, 'cluster', 'setslot', slot, 'node', toId);
  await redisCli(from, 'cluster', 'setslot', slot, 'node', toId);
  for (const p of cluster.ports)
    if (p !== from && p !== to) await redisCli(p, 'cluster', 'setslot', slot, 'node', toId);
  return { from, to };
}

test.skipIf(clusterSkip)(
  'Redis Cluster: the slot of the counters migrates under load; no allowed call goes uncounted beyond those in flight',
  async () => {
    const cluster = await startRedisCluster(3);
    const { servers, stop } = await replicas(cluster.url, 100_000_000);
    try {
      const slot = Number((await redisCli(cluster.ports[0]!, 'cluster', 'keyslot', CLIENT_ID)).trim());
      const l = checkLoad(
        servers.map((s) => s.authzPort),
        WORKERS,
        REQ,
      );
      while (l.samples.filter((s) => s.status === 0).length < 300) await sleep(20);
      const t0 = Date.now();
      const { from, to } = await migrateSlot(cluster, slot);
      const t1 = Date.now();
      const before = l.samples.length;
      // Enough calls after the migration to show the new owner serving them.
      while (l.samples.length < before + 300) await sleep(20);
      await l.stop();
      assert.equal(await cluster.ownerOf(slot), to);
      const allowed = l.samples.filter((s) => s.status === 0).length;
      const counted = await dailyCount(to);
      assert.equal(await dailyCount(from), 0, 'no counter left on the old owner');
      const inFlight = inFlightAt(l.samples, t0, t1);
      const failed = l.samples.filter((s) => s.status !== 0);
      const lost = Math.max(0, allowed - counted);
      console.log(
        `# slot migration ${from}→${to} in ${t1 - t0} ms under load: ${l.samples.length} calls, ` +
          `${allowed} allowed, counter ${counted}, lost counts ${lost}, ` +
          `failed calls ${failed.length} ${JSON.stringify(statusCounts(failed))}, ` +
          `in flight during the migration ${inFlight}`,
      );
      assert.ok(lost <= inFlight, `lost counts ${lost} ≤ calls in flight ${inFlight}`);
      assert.ok(failed.length <= inFlight, `failed calls ${failed.length} ≤ calls in flight ${inFlight}`);
      assert.ok(
        failed.every((s) => s.status === 503),
        'a failed call is a clean 503 (fail-closed), never a gRPC error',
      );
      assert.ok(
        l.samples.slice(-100).every((s) => s.status === 0),
        'served again after the migration',
      );
    } finally {
      await stop();
      await cluster.stop();
    }
  },
);

test.skipIf(sentinelSkip)(
  'Sentinel: three replicas enforce one quota exactly; a primary crash under load loses no more than the calls in ' +
    'flight',
  async () => {
    const sentinel = await startRedisSentinel();
    const exact = await replicas(sentinel.url, 400);
    try {
      await assertExact(
        exact.servers.map((s) => s.authzPort),
        400,
      );
      assert.equal(await dailyCount(await sentinel.primaryPort()), 400, 'the shared counter holds every allowed call');
    } finally {
      await exact.stop();
    }
    // Counters of the exactness run are on the primary (and its replica): the failover run uses a fresh key set.
    const { servers, stop } = await replicas(sentinel.url, 100_000_000);
    try {
      const base = await dailyCount(await sentinel.primaryPort());
      const l = checkLoad(
        servers.map((s) => s.authzPort),
        WORKERS,
        REQ,
      );
      while (l.samples.filter((s) => s.status === 0).length < 300) await sleep(20);
      const killedAt = Date.now();
      const { oldPrimary, newPrimary } = await sentinel.crashPrimary();
      const promotedAt = Date.now();
      // ioredis asks the sentinels again on reconnect (back-off ≤ 1 s): wait for allowed calls after the promotion.
      const deadline = Date.now() + 30_000;
      while (l.samples.filter((s) => s.start > promotedAt && s.status === 0).length < 300) {
        assert.ok(Date.now() < deadline, 'calls are allowed again after the failover');
        await sleep(20);
      }
      await l.stop();
      const allowed = l.samples.filter((s) => s.status === 0).length;
      const counted = (await dailyCount(newPrimary)) - base;
      const lost = Math.max(0, allowed - counted);
      const inFlight = inFlightAt(l.samples, killedAt);
      const failed = l.samples.filter((s) => s.status !== 0);
      const outage = failed.length
        ? Math.max(...failed.map((s) => s.end)) - Math.min(...failed.map((s) => s.start))
        : 0;
      console.log(
        `# sentinel failover ${oldPrimary}→${newPrimary} (promoted ${promotedAt - killedAt} ms after the crash): ` +
          `${l.samples.length} calls, ${allowed} allowed, counter ${counted}, lost counts ${lost}, ` +
          `in flight at the crash ${inFlight}; ${failed.length} calls denied 503 during ~${outage} ms of failover`,
      );
      assert.ok(lost <= inFlight, `lost counts ${lost} ≤ calls in flight at the crash ${inFlight}`);
      assert.ok(
        failed.every((s) => s.status === 503),
        'during the failover every call is a clean 503 (fail-closed), never an allow uncounted, never a gRPC error',
      );
      assert.ok(
        failed.every((s) => s.end >= killedAt),
        'no failure before the crash',
      );
    } finally {
      await stop();
      await sentinel.stop();
    }
  },
);
