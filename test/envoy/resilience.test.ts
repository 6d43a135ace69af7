// Resilience through a real Envoy, as Otoroshi behaves: retries against a backend failing every
// other call, callTimeout / globalTimeout to Otoroshi's 504, a target whose breaker opened (outlier
// ejection) or whose health check fails never gets traffic, even when it is the only one (503
// "overwhelmed", no panic routing), health checks over HTTP/1.1 and HTTP/2, connection refused to
// 502, and the canary split. Envoy's own errors answer JSON or HTML per Accept, as Otoroshi.
// Zero NACKs after each test (startGateway).
import assert from 'node:assert/strict';
import { envoyTest, eventually, startGateway, type Gateway } from '../helpers/envoy.js';
import {
  startHttpBackend,
  type BackendBehaviour,
  type BackendOptions,
  type HttpBackend,
} from '../helpers/http-backends.js';
import { freePort } from '../helpers/redis.js';
import { UPSTREAM_OVERWHELMED, UPSTREAM_REFUSED, UPSTREAM_TIMEOUT } from '../../src/xds/resources/resilience.js';
import { descriptorYaml } from '../fixtures/index.js';

type T = Parameters<Parameters<typeof envoyTest>[1]>[0];
const JSON_ACCEPT = { accept: 'application/json' };

function descriptor(id: string, spec: string): string {
  const doc = { name: id, id, hosts: [`${id}.oto.tools`], forceHttps: false, publicPatterns: ['/.*'], spec };
  return `${descriptorYaml(doc)}---\n`;
}

const target = (b: { port: number }, extra = ''): string => `{url: "http://127.0.0.1:${b.port}"${extra}}`;

async function backend(
  t: T,
  id: string,
  behaviour: BackendBehaviour = {},
  opts: BackendOptions = {},
): Promise<HttpBackend> {
  const b = await startHttpBackend(id, behaviour, opts);
  t.onTestFinished(() => b.stop());
  return b;
}

/** An Envoy counter or gauge of descriptor `id`'s cluster (`cluster.oxds~<id>~<hash>.<suffix>`). */
async function clusterStat(gw: Gateway, id: string, suffix: string): Promise<number> {
  const all = await gw.envoy.stats(suffix);
  const hit = Object.entries(all).find(([k]) => k.startsWith(`cluster.oxds~${id}~`) && k.endsWith(`.${suffix}`));
  return hit?.[1] ?? 0;
}

function assertOtoroshiError(
  r: { status: number; headers: Record<string, unknown>; body: string },
  status: number,
  message: string,
  what: string,
): void {
  assert.equal(r.status, status, `${what}: ${r.body}`);
  assert.equal(r.headers['otoroshi-error'], 'true', what);
  assert.equal(r.headers['otoroshi-error-msg'], message, what);
  assert.deepEqual(JSON.parse(r.body), { 'Otoroshi-Error': message }, what);
}

envoyTest(
  'Envoy resilience: retries 2 turn a backend failing every other call into all 200; retries 1 lets half the 503s ' +
    'through',
  async (t, bin) => {
    const two = await backend(t, 'two', { failEveryOther: true });
    const one = await backend(t, 'one', { failEveryOther: true });
    const cc = (retries: number): string =>
      `clientConfig: {retries: ${retries}, retryInitialDelay: 5, backoffFactor: 1}`;
    const gw = await startGateway(t, bin, {
      files: {
        'd.yaml':
          descriptor('two', `targets: [${target(two)}]\n${cc(2)}`) +
          descriptor('one', `targets: [${target(one)}]\n${cc(1)}`),
      },
    });
    const statuses = async (host: string): Promise<number[]> => {
      const out: number[] = [];
      for (let i = 0; i < 20; i++) out.push((await gw.request({ host, path: `/r/${i}` })).status);
      return out;
    };
    assert.deepEqual(await statuses('two.oto.tools'), new Array<number>(20).fill(200));
    assert.equal(two.calls, 40, 'every request took exactly one retry');
    const once = await statuses('one.oto.tools');
    assert.equal(once.filter((s) => s === 503).length, 10, once.join(','));
    assert.equal(once.filter((s) => s === 200).length, 10);
    assert.equal(one.calls, 20, 'no retry');
  },
);

envoyTest(
  "Envoy resilience: callTimeout per try and globalTimeout per request answer Otoroshi's 504",
  async (t, bin) => {
    const slow = await backend(t, 'slow', { delayMs: 60_000 });
    const files = {
      'd.yaml':
        // Three tries of 300 ms each, well inside the 30 s global timeout: the per-try timeout fires.
        descriptor(
          'pertry',
          `targets: [${target(slow)}]\n` +
            'clientConfig: {retries: 3, callTimeout: 300, globalTimeout: 30000, ' +
            'retryInitialDelay: 5, backoffFactor: 1}',
        ) +
        descriptor(
          'global',
          `targets: [${target(slow)}]\nclientConfig: {retries: 1, callTimeout: 30000, globalTimeout: 400}`,
        ),
    };
    const gw = await startGateway(t, bin, { files });
    const r = await gw.request({ host: 'pertry.oto.tools', path: '/p', timeoutMs: 60_000, headers: JSON_ACCEPT });
    assertOtoroshiError(r, 504, UPSTREAM_TIMEOUT, 'per-try timeout');
    assert.equal(slow.seen.filter((s) => s.path === '/p').length, 3, 'three attempts');
    const g = await gw.request({ host: 'global.oto.tools', path: '/g', timeoutMs: 60_000, headers: JSON_ACCEPT });
    assertOtoroshiError(g, 504, UPSTREAM_TIMEOUT, 'global timeout');
    assert.equal(slow.seen.filter((s) => s.path === '/g').length, 1);
  },
);

envoyTest(
  "Envoy resilience: a single target whose breaker opened (maxErrors) fails fast with Otoroshi's 503, no panic routing",
  async (t, bin) => {
    const bad = await backend(t, 'bad', { status: 500 });
    const gw = await startGateway(t, bin, {
      files: {
        'd.yaml': descriptor(
          'single',
          `targets: [${target(bad)}]\nclientConfig: {retries: 1, maxErrors: 3, sampleInterval: 120000}`,
        ),
      },
    });
    for (let i = 0; i < 3; i++)
      assert.equal(
        (await gw.request({ host: 'single.oto.tools', path: `/e/${i}` })).status,
        500,
        "the backend's own 500 passes through",
      );
    await eventually('the target to be ejected', async () =>
      (await clusterStat(gw, 'single', 'outlier_detection.ejections_active')) === 1 ? true : undefined,
    );
    // Ejection reaches the worker asynchronously: wait for the first fast failure, then every call fails fast.
    await eventually('a fast failure', async () =>
      (await gw.request({ host: 'single.oto.tools', path: '/wait' })).status === 503 ? true : undefined,
    );
    const hits = bad.calls;
    for (let i = 0; i < 5; i++)
      assertOtoroshiError(
        await gw.request({ host: 'single.oto.tools', path: `/f/${i}`, headers: JSON_ACCEPT }),
        503,
        UPSTREAM_OVERWHELMED,
        'breaker open',
      );
    assert.equal(bad.calls, hits, 'the ejected target got no traffic');
  },
);

envoyTest(
  'Envoy resilience: outlier detection ejects the failing target of two; every call then reaches the healthy one',
  async (t, bin) => {
    const good = await backend(t, 'good');
    const bad = await backend(t, 'bad', { status: 502 });
    const gw = await startGateway(t, bin, {
      files: {
        'd.yaml': descriptor(
          'pair',
          `targets: [${target(good)}, ${target(bad)}` +
            `]\nclientConfig: {retries: 1, maxErrors: 2, sampleInterval: 120000}`,
        ),
      },
    });
    await eventually('the failing target to be ejected', async () => {
      await gw.request({ host: 'pair.oto.tools', path: '/warm' });
      return (await clusterStat(gw, 'pair', 'outlier_detection.ejections_active')) === 1 ? true : undefined;
    });
    await eventually('the ejection to reach the worker', async () => {
      const before = bad.calls;
      for (let i = 0; i < 4; i++) await gw.request({ host: 'pair.oto.tools', path: '/probe' });
      return bad.calls === before ? true : undefined;
    });
    const badHits = bad.calls;
    for (let i = 0; i < 20; i++) {
      const r = await gw.request({ host: 'pair.oto.tools', path: `/ok/${i}` });
      assert.equal(r.status, 200, r.body);
      assert.equal((JSON.parse(r.body) as { backend: string }).backend, 'good');
    }
    assert.equal(bad.calls, badHits);
  },
);

envoyTest(
  'Envoy resilience: active health checks over HTTP/1.1 and HTTP/2 (h2c targets); a target failing it gets no traffic',
  async (t, bin) => {
    const h1 = await backend(t, 'h1', { healthPath: '/health' });
    const h2 = await backend(t, 'h2', { healthPath: '/health' }, { http2: true });
    const sick = await backend(t, 'sick', { healthPath: '/health', healthStatus: 503 });
    const hc = 'healthCheck: {enabled: true, url: /health}';
    const files = {
      'd.yaml':
        descriptor('h1', `targets: [${target(h1)}]\n${hc}`) +
        descriptor('h2', `targets: [${target(h2, ', protocol: HTTP/2.0')}]\n${hc}`) +
        descriptor('sick', `targets: [${target(sick)}]\n${hc}`),
    };
    const gw = await startGateway(t, bin, { files });
    await eventually('health checks on both protocols', () =>
      h1.healthChecks.length > 0 && h2.healthChecks.length > 0 && sick.healthChecks.length > 0 ? true : undefined,
    );
    // The h2c-only backend answers HTTP/2 alone: a check over HTTP/1.1 could not reach it. Node's
    // HTTP/2 server exposes the request's pseudo-headers.
    assert.equal(h2.healthChecks[0]?.headers[':path'], '/health', 'the health check came over HTTP/2');
    assert.equal(h1.healthChecks[0]?.headers[':path'], undefined, 'HTTP/1.1 for an HTTP/1.1 target');
    await eventually('both healthy', async () =>
      (await clusterStat(gw, 'h1', 'membership_healthy')) === 1 &&
      (await clusterStat(gw, 'h2', 'membership_healthy')) === 1
        ? true
        : undefined,
    );
    for (const id of ['h1', 'h2']) {
      const r = await gw.request({ host: `${id}.oto.tools`, path: '/x' });
      assert.equal(r.status, 200, `${id}: ${r.body}`);
    }
    assert.equal(h2.seen[0]?.headers[':path'], '/x', 'requests over HTTP/2 too');
    await eventually('the sick target marked unhealthy', async () =>
      (await clusterStat(gw, 'sick', 'health_check.failure')) > 0 ? true : undefined,
    );
    assertOtoroshiError(
      await gw.request({ host: 'sick.oto.tools', path: '/x', headers: JSON_ACCEPT }),
      503,
      UPSTREAM_OVERWHELMED,
      'no healthy target',
    );
    assert.equal(sick.calls, 0);
  },
);

envoyTest("Envoy resilience: a refused connection answers Otoroshi's 502", async (t, bin) => {
  const port = await freePort();
  const gw = await startGateway(t, bin, {
    files: {
      'd.yaml': descriptor('refused', `targets: [{url: "http://127.0.0.1:${port}"}]\nclientConfig: {retries: 1}`),
    },
  });
  assertOtoroshiError(
    await gw.request({ host: 'refused.oto.tools', path: '/x', headers: JSON_ACCEPT }),
    502,
    UPSTREAM_REFUSED,
    'connection refused',
  );
  // HTML as Otoroshi sends it: without Accept, or with a text/html token.
  for (const headers of [{}, { accept: 'application/json,text/html' }] as Record<string, string>[]) {
    const r = await gw.request({ host: 'refused.oto.tools', path: '/x', headers });
    assert.equal(r.status, 502);
    assert.equal(r.headers['otoroshi-error-msg'], UPSTREAM_REFUSED);
    assert.match(String(r.headers['content-type']), /^text\/html/);
    assert.ok(r.body.includes(`<p>${UPSTREAM_REFUSED}</p>`), r.body);
  }
});

envoyTest('Envoy resilience: canary traffic 0.2 sends ~20 % of 400 requests to the canary targets', async (t, bin) => {
  const main = await backend(t, 'main');
  const canary = await backend(t, 'canary');
  const gw = await startGateway(t, bin, {
    files: {
      'd.yaml': descriptor(
        'split',
        `targets: [${target(main)}]\ncanary: {enabled: true, traffic: 0.2, targets: [${target(canary)}]}`,
      ),
    },
  });
  const counts: Record<string, number> = {};
  for (let i = 0; i < 400; i++) {
    const r = await gw.request({ host: 'split.oto.tools', path: `/c/${i}` });
    assert.equal(r.status, 200, r.body);
    const id = (JSON.parse(r.body) as { backend: string }).backend;
    counts[id] = (counts[id] ?? 0) + 1;
  }
  // Binomial(400, 0.2): mean 80, sd 8; ±5 sd.
  assert.ok((counts.canary ?? 0) >= 40 && (counts.canary ?? 0) <= 120, JSON.stringify(counts));
  assert.equal((counts.canary ?? 0) + (counts.main ?? 0), 400);
});
