// Fault: Redis (the shared quota store) is SIGKILLed while the ext_authz port is under load, then
// restarted empty. Through the whole server (YAML → policy → Check over gRPC):
//   - fail-open: every request of the outage is still answered from local counters (allowed),
//   - fail-closed: every request of the outage is a clean 503 deny (never an allow, never a gRPC error),
//   - after the restart decisions go to Redis again (its counters exist and count down),
//   - no unhandled rejection, no crash, every request answered.
import { test } from 'vitest';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { resolveConfig } from '../src/config.js';
import { startServer, makeLogger, type RunningServer } from '../src/main.js';
import { checkClient, checkRequest, callCheck, outcome } from './helpers/check-client.js';
import { checkLoad } from './helpers/check-load.js';
import { redisAvailable, startRedis, REDIS_SKIP_MESSAGE } from './helpers/redis.js';
import { INVOICES_YAML, apiKeyYaml, yamlDocs } from './fixtures/index.js';

const CONFIG = yamlDocs(
  INVOICES_YAML,
  apiKeyYaml({
    name: 'partner',
    namespace: 'default',
    clientId: 'partner-id',
    clientSecret: 'partner-secret',
    authorizedEntities: ['service_invoices'],
    throttlingQuota: 100000,
    dailyQuota: 1000000,
    monthlyQuota: 10000000,
  }),
);

const REQ = checkRequest({
  host: 'invoices.oto.tools',
  path: '/x',
  headers: { 'otoroshi-client-id': 'partner-id', 'otoroshi-client-secret': 'partner-secret' },
});

async function serverWith(
  redisUrl: string,
  failMode: 'open' | 'closed',
): Promise<{ server: RunningServer; dir: string }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'oxds-faults-redis-'));
  fs.writeFileSync(path.join(dir, 'c.yaml'), CONFIG);
  const r = resolveConfig(
    {
      config: dir,
      xdsPort: 0,
      adminPort: 0,
      authzPort: 0,
      dataDir: path.join(dir, '.data'),
      redisUrl,
      quotaFailMode: failMode,
    },
    {},
  );
  assert.ok(r.ok);
  return { server: await startServer(r.value, makeLogger('silent')), dir };
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Checks per phase the assertions need. */
const PHASE = 20;

/** Polls `cond` until it holds (a generous bound: only a broken server reaches it). */
async function until(what: string, cond: () => boolean | Promise<boolean>): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for: ${what}`);
    await sleep(20);
  }
}

async function scenario(failMode: 'open' | 'closed'): Promise<void> {
  let unhandled = 0;
  const onUnhandled = (): void => {
    unhandled++;
  };
  process.on('unhandledRejection', onUnhandled);
  const redis = await startRedis();
  const { server } = await serverWith(redis.url, failMode);
  try {
    const l = checkLoad([server.authzPort], 4, REQ);
    const s = l.samples;
    // Each phase lasts until it has enough answered Checks (conditions, not durations: a loaded
    // machine only makes the phases longer).
    const answered = (from: number): number => s.filter((x) => x.start > from).length;
    await until('Checks answered before the kill', () => answered(0) > 2 * PHASE);
    const killedAt = Date.now();
    redis.kill();
    await until('Checks answered during the outage', () => answered(killedAt + 300) > 2 * PHASE);
    const restartAt = Date.now();
    await redis.restart();
    // Recovered once the quota store writes its counters into the restarted (empty) Redis.
    const probe = new Redis(redis.port, '127.0.0.1', { lazyConnect: true, maxRetriesPerRequest: 1 });
    try {
      await probe.connect();
      await until('counters written to the restarted Redis', async () => (await probe.dbsize()) > 0);
    } finally {
      probe.disconnect();
    }
    const recoveredBy = Date.now();
    await until('Checks answered after the recovery', () => answered(recoveredBy) > PHASE);
    await l.stop();

    const errors = s.filter((x) => x.status === -1);
    assert.deepEqual(errors.slice(0, 3), [], 'every Check is answered with a CheckResponse (no gRPC error)');
    const before = s.filter((x) => x.end < killedAt);
    const outage = s.filter((x) => x.start > killedAt + 300 && x.end < restartAt);
    const after = s.filter((x) => x.start > recoveredBy);
    assert.ok(
      before.length > PHASE && outage.length > PHASE && after.length > PHASE,
      `enough load in each phase: ${before.length}/${outage.length}/${after.length}`,
    );
    assert.deepEqual(
      before
        .filter((x) => x.status !== 0)
        .slice(0, 3)
        .map((x) => ({ ...x, sinceFirst: x.start - (s[0]?.start ?? 0), idx: s.indexOf(x) })),
      [],
      'allowed while Redis is up',
    );
    if (failMode === 'open') {
      assert.deepEqual(
        [...new Set(outage.map((x) => x.status))],
        [0],
        'fail-open: allowed from local counters during the outage',
      );
    } else {
      assert.deepEqual(
        [...new Set(outage.map((x) => x.status))],
        [503],
        'fail-closed: 503 during the outage, never an allow',
      );
    }
    assert.ok(
      after.every((x) => x.status === 0),
      'allowed again after the restart',
    );
    // Counters resumed in Redis: it holds the key's counters again, and consecutive calls count down.
    const r = new Redis(redis.port, '127.0.0.1', { lazyConnect: true, maxRetriesPerRequest: 1 });
    await r.connect();
    const keys = await r.dbsize();
    r.disconnect();
    assert.ok(keys > 0, 'Redis holds counters again after the restart');
    const client = checkClient(server.authzPort);
    const a = outcome(await callCheck(client, REQ));
    const b = outcome(await callCheck(client, REQ));
    client.close();
    const ra = Number(a.headers['Otoroshi-Daily-Calls-Remaining']);
    const rb = Number(b.headers['Otoroshi-Daily-Calls-Remaining']);
    assert.equal(rb, ra - 1, 'the shared counter counts each call once');
    assert.ok(
      ra > 1_000_000 - s.filter((x) => x.end > restartAt).length - 10 && ra < 1_000_000,
      `counting restarted from the empty Redis: ${ra}`,
    );
    assert.equal(unhandled, 0, 'no unhandled rejection');
  } finally {
    process.off('unhandledRejection', onUnhandled);
    await server.stop();
    await redis.stop();
  }
}

const skip = redisAvailable() ? false : REDIS_SKIP_MESSAGE;

test.skipIf(skip)('fault: Redis killed under ext_authz load and restarted (fail-open)', () => scenario('open'));
test.skipIf(skip)('fault: Redis killed under ext_authz load and restarted (fail-closed)', () => scenario('closed'));
