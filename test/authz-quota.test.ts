// Quota stores: memory (injectable clock) and Redis (a real redis-server), failover on outage.
import { afterAll, afterEach, beforeAll, describe, test } from 'vitest';
import assert from 'node:assert/strict';
import {
  MemoryQuotaStore,
  RedisQuotaStore,
  FailoverQuotaStore,
  QuotaCalendar,
  createQuotaStore,
  parseRedisUrl,
} from '../src/authz/quota/index.js';
import { QuotaStoreUnavailableError, type QuotaStore } from '../src/authz/types.js';
import { redisAvailable, startRedis, REDIS_SKIP_MESSAGE, type RunningRedis } from './helpers/redis.js';

const Q = (throttlingQuota: number, dailyQuota = 1e7, monthlyQuota = 1e7) => ({
  throttlingQuota,
  dailyQuota,
  monthlyQuota,
});
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let unhandled: unknown[] = [];
process.on('unhandledRejection', (e) => unhandled.push(e));

describe('calendar', () => {
  test('UTC boundaries', () => {
    const c = new QuotaCalendar('UTC');
    const p = c.periods(Date.UTC(2024, 1, 29, 13, 5, 7));
    assert.equal(p.dayId, '2024-02-29');
    assert.equal(p.dayEndMs, Date.UTC(2024, 2, 1));
    assert.equal(p.monthId, '2024-02');
    assert.equal(p.monthEndMs, Date.UTC(2024, 2, 1));
    const dec = c.periods(Date.UTC(2024, 11, 31, 23, 59, 59));
    assert.equal(dec.monthEndMs, Date.UTC(2025, 0, 1));
  });
  test('non-UTC zone, DST day', () => {
    const c = new QuotaCalendar('Europe/Paris');
    // 2024-03-31 (DST starts 02:00 → 03:00). 2024-03-30T23:30Z is 00:30 local on the 31st.
    const p = c.periods(Date.UTC(2024, 2, 30, 23, 30));
    assert.equal(p.dayId, '2024-03-31');
    assert.equal(p.dayEndMs, Date.UTC(2024, 2, 31, 22, 0)); // midnight CEST = 22:00Z
    assert.equal(p.monthEndMs, Date.UTC(2024, 2, 31, 22, 0));
    const tokyo = new QuotaCalendar('Asia/Tokyo').periods(Date.UTC(2024, 4, 31, 15, 0)); // 00:00 Jun 1 JST
    assert.equal(tokyo.dayId, '2024-06-01');
    assert.equal(tokyo.monthId, '2024-06');
    assert.throws(() => new QuotaCalendar('Not/AZone'), RangeError);
  });
});

/** The semantics every store must have; `now` is the injectable clock. */
// Injected clocks are in the future (Redis would expire keys PEXPIREAT'ed in the past at once).
const Y = new Date().getUTCFullYear() + 2;

function semantics(name: string, make0: () => Promise<{ store: QuotaStore; done(): Promise<void> }>): void {
  describe(`${name} semantics`, () => {
    let cleanups: Array<() => Promise<void>> = [];
    const make = async () => {
      const m = await make0();
      cleanups.push(m.done);
      return { store: m.store, done: async () => {} };
    };
    afterEach(async () => {
      for (const c of cleanups) await c();
      cleanups = [];
    });
    test('throttling: fixed 10 s window, at most quota×10 calls, denied calls not counted', async () => {
      const { store, done } = await make();
      const id = `thr-${name}-${Math.random()}`;
      const t0 = Date.UTC(Y, 5, 10, 12, 0, 0); // window start
      for (let i = 1; i <= 20; i++) {
        const r = await store.consume(id, Q(2), t0 + i * 100);
        assert.equal(r.allowed, true, `call ${i}`);
        assert.equal(r.windowCalls, i);
      }
      for (let i = 0; i < 5; i++) {
        const r = await store.consume(id, Q(2), t0 + 9_999);
        assert.equal(r.allowed, false);
        assert.equal(r.exceeded, 'throttling');
        assert.equal(r.windowCalls, 20);
        assert.equal(r.dailyRemaining, 1e7 - 20, 'denied calls are not counted');
      }
      const next = await store.consume(id, Q(2), t0 + 10_000); // fixed window: resets at the edge
      assert.equal(next.allowed, true);
      assert.equal(next.windowCalls, 1);
      assert.equal(next.dailyRemaining, 1e7 - 21);
      const peek = await store.peek(id, Q(2), t0 + 10_001);
      assert.equal(peek.windowCalls, 1);
      assert.equal(peek.dailyRemaining, 1e7 - 21);
      await done();
    });

    test('daily quota resets at local midnight (America/New_York)', async () => {
      const { store, done } = await make();
      const id = `day-${name}-${Math.random()}`;
      // 2024-06-10 23:59:30 EDT = 03:59:30Z on the 11th
      const before = Date.UTC(Y, 5, 11, 3, 59, 30);
      assert.deepEqual(
        [
          (await store.consume(id, Q(100, 2), before)).dailyRemaining,
          (await store.consume(id, Q(100, 2), before + 1)).dailyRemaining,
        ],
        [1, 0],
      );
      const denied = await store.consume(id, Q(100, 2), before + 29_000);
      assert.equal(denied.allowed, false);
      assert.equal(denied.exceeded, 'daily');
      const after = await store.consume(id, Q(100, 2), Date.UTC(Y, 5, 11, 4, 0, 0)); // local midnight
      assert.equal(after.allowed, true);
      assert.equal(after.dailyRemaining, 1);
      assert.equal(after.monthlyRemaining, 1e7 - 3);
      await done();
    });

    test('monthly quota resets on the 1st; remaining counts down', async () => {
      const { store, done } = await make();
      const id = `mon-${name}-${Math.random()}`;
      const jan31 = Date.UTC(Y, 0, 31, 22, 0); // 23:00 in Paris
      let r = await store.consume(id, Q(100, 100, 3), jan31);
      assert.equal(r.monthlyRemaining, 2);
      r = await store.consume(id, Q(100, 100, 3), jan31 + 3_600_000 - 20_000); // Feb 1st 00:00 Paris is 23:00Z
      assert.equal(r.monthlyRemaining, 1);
      r = await store.consume(id, Q(100, 100, 3), jan31 + 3_600_000 - 10_000);
      assert.equal(r.monthlyRemaining, 0);
      r = await store.consume(id, Q(100, 100, 3), jan31 + 3_600_000 - 1);
      assert.equal(r.allowed, false);
      assert.equal(r.exceeded, 'monthly');
      r = await store.consume(id, Q(100, 100, 3), jan31 + 3_600_000);
      assert.equal(r.allowed, true);
      assert.equal(r.monthlyRemaining, 2);
      assert.equal(r.dailyRemaining, 99);
      await done();
    });
  });
}

// Every store in these semantics tests runs with the time zone its test needs.
semantics('memory(New_York/Paris)', async () => {
  const ny = new MemoryQuotaStore({ timeZone: 'America/New_York' });
  const paris = new MemoryQuotaStore({ timeZone: 'Europe/Paris' });
  return { store: zoneRouter(ny, paris), done: async () => {} };
});

/** Routes `day-*` ids to the New York store and the rest to the Paris one. */
function zoneRouter(ny: QuotaStore, paris: QuotaStore): QuotaStore {
  const pick = (id: string) => (id.startsWith('day-') ? ny : paris);
  return {
    consume: (id, q, now) => pick(id).consume(id, q, now),
    peek: (id, q, now) => pick(id).peek(id, q, now),
    close: async () => {
      await ny.close();
      await paris.close();
    },
  };
}

test('memory store stays bounded', async () => {
  const s = new MemoryQuotaStore({ maxEntries: 1000 });
  const t0 = Date.UTC(2024, 0, 15);
  for (let i = 0; i < 5000; i++) s.consumeSync(`k${i}`, Q(10), t0 + i);
  assert.ok(s.size <= 1001, `size ${s.size}`);
  // Next month: every old entry is stale and swept.
  s.consumeSync('fresh', Q(10), Date.UTC(2024, 1, 15));
  assert.equal(s.size, 1);
});

test('parseRedisUrl', () => {
  assert.deepEqual(parseRedisUrl('redis://127.0.0.1:6380/2'), {
    kind: 'standalone',
    options: { host: '127.0.0.1', port: 6380, db: 2 },
  });
  assert.deepEqual(parseRedisUrl('redis://:pw@h'), {
    kind: 'standalone',
    options: { password: 'pw', host: 'h', port: 6379 },
  });
  assert.deepEqual(parseRedisUrl('rediss://u:p@h:1'), {
    kind: 'standalone',
    options: { username: 'u', password: 'p', tls: {}, host: 'h', port: 1 },
  });
  assert.deepEqual(parseRedisUrl('redis+cluster://h1:7000,h2:7001'), {
    kind: 'cluster',
    nodes: [
      { host: 'h1', port: 7000 },
      { host: 'h2', port: 7001 },
    ],
    options: { redisOptions: {} },
  });
  assert.deepEqual(parseRedisUrl('redis+sentinel://:pw@s1:26379,s2/mymaster/1?sentinelPassword=sp'), {
    kind: 'sentinel',
    options: {
      password: 'pw',
      sentinels: [
        { host: 's1', port: 26379 },
        { host: 's2', port: 26379 },
      ],
      name: 'mymaster',
      db: 1,
      sentinelPassword: 'sp',
    },
  });
  assert.throws(() => parseRedisUrl('redis+sentinel://s1:26379'), /master name/);
  assert.throws(() => parseRedisUrl('redis://a:1,b:2'), /cluster/);
  assert.throws(() => parseRedisUrl('http://x'), /invalid Redis URL/);
});

test('createQuotaStore without a URL is the memory store', async () => {
  const s = createQuotaStore({});
  assert.ok(s instanceof MemoryQuotaStore);
  await s.close();
});

const haveRedis = redisAvailable();
if (!haveRedis) console.log(`# ${REDIS_SKIP_MESSAGE}`);

describe.skipIf(haveRedis ? false : REDIS_SKIP_MESSAGE)('Redis', () => {
  let redis: RunningRedis;
  beforeAll(async () => {
    redis = await startRedis();
  });
  afterAll(async () => {
    await redis?.stop();
  });

  semantics('redis(New_York/Paris)', async () => {
    const ny = new RedisQuotaStore({ url: redis.url, timeZone: 'America/New_York' });
    const paris = new RedisQuotaStore({ url: redis.url, timeZone: 'Europe/Paris' });
    await Promise.all([ny.ready(), paris.ready()]);
    const store = zoneRouter(ny, paris);
    return { store, done: () => store.close() };
  });

  test('keys are hash-tagged and expire at the period ends', async () => {
    const s = new RedisQuotaStore({ url: redis.url, timeZone: 'UTC' });
    await s.ready();
    const now = Date.now();
    await s.consume('ttl-key', Q(5), now);
    const k = s.keys('ttl-key', now);
    assert.match(k.second, /^oxds:\{ttl-key\}:quota:second:\d+$/);
    const pttl = await s.client.pttl(k.second);
    assert.ok(pttl > 0 && pttl <= 10_000, `window ttl ${pttl}`);
    const dttl = await s.client.pttl(k.daily);
    assert.ok(dttl > 0 && dttl <= 86_400_000, `daily ttl ${dttl}`);
    const mttl = await s.client.pttl(k.monthly);
    assert.ok(mttl >= dttl && mttl <= 31 * 86_400_000, `monthly ttl ${mttl}`);
    await s.close();
  });

  test('two store instances (two servers) share the counters; NOSCRIPT recovers', async () => {
    const a = new RedisQuotaStore({ url: redis.url });
    const b = new RedisQuotaStore({ url: redis.url });
    await Promise.all([a.ready(), b.ready()]);
    const q = Q(1000, 10);
    const now = Date.now();
    const seen: number[] = [];
    for (let i = 0; i < 5; i++) {
      seen.push((await a.consume('shared', q, now)).dailyRemaining);
      seen.push((await b.consume('shared', q, now)).dailyRemaining);
    }
    assert.deepEqual(seen, [9, 8, 7, 6, 5, 4, 3, 2, 1, 0]);
    const denied = await b.consume('shared', q, now);
    assert.equal(denied.allowed, false);
    assert.equal(denied.exceeded, 'daily');
    await a.client.script('FLUSH');
    assert.equal((await a.peek('shared', q, now)).dailyRemaining, 0);
    // concurrent calls from both: exactly quota allowed (atomic check-and-count)
    const results = await Promise.all(
      Array.from({ length: 40 }, (_, i) => (i % 2 ? a : b).consume('race', Q(2, 1e7), now)),
    );
    assert.equal(results.filter((r) => r.allowed).length, 20);
    await a.close();
    await b.close();
  });

  test('concurrent checks are batched into one script call: same answers as one call per check', async () => {
    const batched = new RedisQuotaStore({ url: redis.url, maxBatch: 16 });
    const single = new RedisQuotaStore({ url: redis.url, batching: false });
    await Promise.all([batched.ready(), single.ready()]);
    const now = Date.now();
    // 50 checks of 3 clients issued in the same tick: b0 within quotas, b1 daily 10, b2 window of 10
    const ids = Array.from({ length: 50 }, (_, i) => ['b0', 'b1', 'b2'][i % 3]!);
    const quotas = (id: string) => (id === 'b1' ? Q(2, 10) : id === 'b2' ? Q(1) : Q(2));
    const got = await Promise.all(ids.map((id) => batched.consume(id, quotas(id), now)));
    assert.equal(batched.stats.checks, 50);
    assert.equal(batched.stats.calls, 4, 'ceil(50 / 16) script calls');
    // the same sequence, one call per check, on fresh ids
    const want: Awaited<ReturnType<RedisQuotaStore['consume']>>[] = [];
    for (const id of ids) want.push(await single.consume(`${id}-ref`, quotas(id), now));
    assert.deepEqual(got, want);
    assert.equal(got.filter((r, i) => ids[i] === 'b0' && r.allowed).length, 17);
    assert.deepEqual(
      got.filter((_, i) => ids[i] === 'b1').map((r) => r.exceeded ?? 'ok'),
      [...Array(10).fill('ok'), ...Array(7).fill('daily')],
    );
    assert.deepEqual(
      got.filter((_, i) => ids[i] === 'b2').map((r) => r.exceeded ?? 'ok'),
      [...Array(10).fill('ok'), ...Array(6).fill('throttling')],
    );
    // counted in order: windowCalls 1..20 then denied at 20 for b0
    assert.deepEqual(
      got
        .filter((_, i) => ids[i] === 'b0')
        .map((r) => r.windowCalls)
        .slice(0, 3),
      [1, 2, 3],
    );
    // NOSCRIPT on the batch script: ioredis falls back to EVAL
    await batched.client.script('FLUSH');
    const again = await Promise.all([batched.consume('b3', Q(100), now), batched.consume('b3', Q(100), now)]);
    assert.deepEqual(
      again.map((r) => r.windowCalls),
      [1, 2],
    );
    // keys and expiries are the single-call ones
    const k = batched.keys('b3', now);
    assert.equal(await batched.client.get(k.second), '2');
    const pttl = await batched.client.pttl(k.second);
    assert.ok(pttl > 0 && pttl <= 10_000, `window ttl ${pttl}`);
    await batched.close();
    await single.close();
  });

  test('a failed batch rejects every check of it (fail-open wrapper answers each from local counters)', async () => {
    const s = new RedisQuotaStore({ url: redis.url });
    await s.ready();
    const f = new FailoverQuotaStore(s, { failMode: 'open' });
    (s as unknown as { batchCmd: () => Promise<number[]> }).batchCmd = () => Promise.reject(new Error('boom'));
    const r = await Promise.all([
      f.consume('bf', Q(10), Date.now()),
      f.consume('bf', Q(10), Date.now()),
      f.consume('bf', Q(10), Date.now()),
    ]);
    assert.deepEqual(
      r.map((x) => [x.degraded, x.windowCalls]),
      [
        [true, 1],
        [true, 2],
        [true, 3],
      ],
    );
    await s.close();
  });

  test(
    'Redis killed: fail-open uses local counters (degraded, hook), fail-closed throws; ' + 'restart resumes sharing',
    async () => {
      unhandled = [];
      const events: string[] = [];
      const hooks = { onQuotaStoreError: (m: 'fail-open' | 'fail-closed') => events.push(m) };
      const open = createQuotaStore({ redisUrl: redis.url, hooks }) as FailoverQuotaStore;
      const open2 = createQuotaStore({ redisUrl: redis.url, hooks }) as FailoverQuotaStore;
      const closed = createQuotaStore({ redisUrl: redis.url, failMode: 'closed', hooks }) as FailoverQuotaStore;
      await Promise.all([open.primary.ready(), open2.primary.ready(), closed.primary.ready()]);
      const q = Q(1000, 100);
      const now = () => Date.now();
      assert.equal((await open.consume('fo', q, now())).dailyRemaining, 99);
      assert.equal((await open2.consume('fo', q, now())).dailyRemaining, 98);
      assert.equal((await closed.consume('fo', q, now())).degraded, false);

      redis.kill();
      // Whatever the connection state (in-flight, reconnecting), answers keep coming.
      const t = Date.now();
      const during: number[] = [];
      for (let i = 0; i < 30; i++) {
        const r = await open.consume('fo', q, now());
        assert.equal(r.allowed, true);
        if (r.degraded) during.push(r.dailyRemaining);
        await sleep(5);
      }
      assert.ok(Date.now() - t < 3000, 'no call waits for Redis');
      assert.ok(during.length >= 25, `degraded answers: ${during.length}`);
      // local counters: count down from the quota on this instance only
      assert.deepEqual(during.slice(-3), [during.at(-3)!, during.at(-3)! - 1, during.at(-3)! - 2]);
      await assert.rejects(closed.consume('fo', q, now()), QuotaStoreUnavailableError);
      assert.ok(events.includes('fail-open') && events.includes('fail-closed'));
      assert.equal(open.degraded, true);

      await redis.restart();
      await Promise.all([open.primary.ready(), open2.primary.ready(), closed.primary.ready()]);
      // Redis restarted empty (no persistence): shared counting resumes from zero, both instances see it.
      const r1 = await open.consume('fo', q, now());
      const r2 = await open2.consume('fo', q, now());
      const r3 = await closed.consume('fo', q, now());
      assert.deepEqual([r1.degraded, r2.degraded, r3.degraded], [false, false, false]);
      assert.deepEqual([r1.dailyRemaining, r2.dailyRemaining, r3.dailyRemaining], [99, 98, 97]);
      assert.equal(open.degraded, false);
      await Promise.all([open.close(), open2.close(), closed.close()]);
      await sleep(50);
      assert.deepEqual(unhandled, []);
    },
  );

  test('a hung Redis times out after commandTimeoutMs (fail-open)', async () => {
    const s = createQuotaStore({ redisUrl: redis.url, commandTimeoutMs: 30 }) as FailoverQuotaStore;
    await s.primary.ready();
    const blocker = new RedisQuotaStore({ url: redis.url, commandTimeoutMs: 5000 });
    await blocker.ready();
    // Block the server for 300 ms with a busy Lua script.
    const busy = blocker.client
      .eval(
        'local t = redis.call("TIME"); local e = t[1]*1000000 + t[2] + 300000; while true do local n = ' +
          'redis.call("TIME"); if n[1]*1000000 + n[2] > e then break end end return 1',
        0,
      )
      .catch(() => 0);
    await sleep(20);
    const t0 = Date.now();
    const r = await s.consume('hung', Q(10), Date.now());
    const took = Date.now() - t0;
    assert.equal(r.degraded, true);
    assert.ok(took < 200, `took ${took} ms`);
    await busy;
    await Promise.all([s.close(), blocker.close()]);
  });
});
