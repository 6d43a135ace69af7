// ext_authz end to end through a real Envoy: the four apikey extraction ways, Otoroshi's denials as
// the client sees them (status, Otoroshi-Error headers, JSON or HTML body), quotas to 429 with the
// remaining-calls headers, JWT verifiers, and the apikey's client id reaching the backend (never
// its secret, never a client-sent id). Zero NACKs after each test (startGateway).
import assert from 'node:assert/strict';
import { SignJWT } from 'jose';
import { envoyTest, eventually, startGateway, type Gateway } from '../helpers/envoy.js';
import { startHttpBackend, type HttpBackend } from '../helpers/http-backends.js';
import { freePort } from '../helpers/redis.js';

const HOST = 'priv.oto.tools';
const SECRET = 'partner-secret-0123456789';

function config(port: number): string {
  return `apiVersion: proxy.otoroshi.io/v1alpha1
kind: ServiceGroup
metadata: {name: apis, annotations: {otoroshi.io/id: apis}}
spec: {name: APIs}
---
apiVersion: proxy.otoroshi.io/v1alpha1
kind: ServiceDescriptor
metadata: {name: priv, annotations: {otoroshi.io/id: priv}}
spec:
  groups: [apis]
  hosts: [${HOST}]
  forceHttps: false
  publicPatterns: ['/public/.*']
  targets: [{url: "http://127.0.0.1:${port}"}]
---
apiVersion: proxy.otoroshi.io/v1alpha1
kind: ServiceDescriptor
metadata: {name: jwt, annotations: {otoroshi.io/id: jwt}}
spec:
  hosts: [jwt.oto.tools]
  forceHttps: false
  publicPatterns: ['/.*']
  jwtVerifier: {type: ref, enabled: true, ids: [hs-verifier], excludedPatterns: ['/health']}
  targets: [{url: "http://127.0.0.1:${port}"}]
---
apiVersion: proxy.otoroshi.io/v1alpha1
kind: JwtVerifier
metadata: {name: hs-verifier, annotations: {otoroshi.io/id: hs-verifier}}
spec:
  strict: true
  source: {type: InHeader, name: X-JWT, remove: ''}
  algoSettings: {type: HSAlgoSettings, size: 256, secret: verifier-secret}
  strategy: {type: PassThrough, verificationSettings: {fields: {team: core}, arrayFields: {}}}
---
apiVersion: proxy.otoroshi.io/v1alpha1
kind: ApiKey
metadata: {name: partner}
spec:
  clientId: partner-id
  clientSecret: ${SECRET}
  allowClientIdOnly: true
  authorizedEntities: [group_apis]
  dailyQuota: 100000
  monthlyQuota: 1000000
---
apiVersion: proxy.otoroshi.io/v1alpha1
kind: ApiKey
metadata: {name: small}
spec:
  clientId: small-id
  clientSecret: small-secret
  authorizedEntities: [service_priv]
  dailyQuota: 3
---
apiVersion: proxy.otoroshi.io/v1alpha1
kind: ApiKey
metadata: {name: strict}
spec:
  clientId: strict-id
  clientSecret: strict-secret
  authorizedEntities: [service_priv]
---
apiVersion: proxy.otoroshi.io/v1alpha1
kind: ApiKey
metadata: {name: off}
spec:
  clientId: off-id
  clientSecret: off-secret
  enabled: false
  authorizedEntities: [service_priv]
`;
}

interface Echo {
  backend: string;
  path: string;
  headers: Record<string, string | undefined>;
}

const basic = (id: string, secret: string): string => `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}`;

async function apikeyJwt(clientId: string, secret: string): Promise<string> {
  return new SignJWT({ clientId })
    .setProtectedHeader({ alg: 'HS256' })
    .setIssuedAt()
    .setExpirationTime('5m')
    .sign(Buffer.from(secret));
}

async function withGateway(
  t: Parameters<Parameters<typeof envoyTest>[1]>[0],
  bin: string,
  delta = true,
  flags: Record<string, unknown> = {},
): Promise<{ gw: Gateway; backend: HttpBackend }> {
  const backend = await startHttpBackend('priv');
  t.onTestFinished(() => backend.stop());
  const gw = await startGateway(t, bin, { files: { 'c.yaml': config(backend.port) }, delta, flags });
  return { gw, backend };
}

/** The four extraction ways, each allowed, the backend seeing the client id and no credential header it must not. */
async function assertExtractionWays(gw: Gateway): Promise<void> {
  const jwt = await apikeyJwt('partner-id', SECRET);
  const ways: [string, Record<string, string>][] = [
    ['Otoroshi-Client-Id/Secret', { 'Otoroshi-Client-Id': 'partner-id', 'Otoroshi-Client-Secret': SECRET }],
    ['Basic auth', { Authorization: basic('partner-id', SECRET) }],
    ['bearer JWT signed with the secret', { Authorization: `Bearer ${jwt}` }],
    ['x-api-key (allowClientIdOnly)', { 'x-api-key': 'partner-id' }],
  ];
  for (const [way, headers] of ways) {
    const r = await gw.request({ host: HOST, path: '/orders', headers: { accept: 'application/json', ...headers } });
    assert.equal(r.status, 200, `${way}: ${r.body}`);
    const seen = (JSON.parse(r.body) as Echo).headers;
    assert.equal(seen['otoroshi-client-id'], 'partner-id', `${way}: the backend gets the client id`);
    assert.equal(seen['otoroshi-client-secret'], undefined, `${way}: never the secret`);
    assert.equal(r.headers['otoroshi-daily-calls-remaining'] !== undefined, true, `${way}: remaining calls sent back`);
  }
}

for (const delta of [true, false]) {
  const flavour = delta ? 'Delta' : 'SotW';
  envoyTest(
    `Envoy (${flavour}) ext_authz: the four apikey extraction ways pass ` +
      'and the backend gets Otoroshi-Client-Id, never the secret',
    async (t, bin) => {
      const { gw } = await withGateway(t, bin, delta);
      await assertExtractionWays(gw);
      const noKey = await gw.request({ host: HOST, path: '/orders', headers: { accept: 'application/json' } });
      assert.equal(noKey.status, 400);
    },
  );
}

envoyTest(
  'Envoy ext_authz: a client-sent Otoroshi-Client-Id never reaches the backend (public path, or another key)',
  async (t, bin) => {
    const { gw, backend } = await withGateway(t, bin);
    const pub = await gw.request({ host: HOST, path: '/public/doc', headers: { 'Otoroshi-Client-Id': 'forged' } });
    assert.equal(pub.status, 200, pub.body);
    assert.equal(
      (JSON.parse(pub.body) as Echo).headers['otoroshi-client-id'],
      undefined,
      'public call: no client id at all',
    );
    const other = await gw.request({
      host: HOST,
      path: '/x',
      headers: { 'Otoroshi-Client-Id': 'forged', Authorization: basic('strict-id', 'strict-secret') },
    });
    assert.equal(other.status, 200, other.body);
    assert.equal((JSON.parse(other.body) as Echo).headers['otoroshi-client-id'], 'strict-id');
    assert.equal(
      (JSON.parse(other.body) as Echo).headers['authorization'],
      basic('strict-id', 'strict-secret'),
      'Authorization is not removed (Otoroshi keeps it)',
    );
    assert.ok(backend.seen.every((s) => s.headers['otoroshi-client-id'] !== 'forged'));
  },
);

envoyTest(
  'Envoy ext_authz: every Otoroshi denial reaches the client with its status, headers and JSON or HTML body',
  async (t, bin) => {
    const { gw, backend } = await withGateway(t, bin);
    const cases: { what: string; headers: Record<string, string>; status: number; message: string }[] = [
      { what: 'no apikey', headers: {}, status: 400, message: 'No ApiKey provided' },
      {
        what: 'unknown client id',
        headers: { 'Otoroshi-Client-Id': 'nobody', 'Otoroshi-Client-Secret': 'x' },
        status: 401,
        message: 'Invalid API key',
      },
      {
        what: 'wrong secret',
        headers: { 'Otoroshi-Client-Id': 'partner-id', 'Otoroshi-Client-Secret': 'wrong' },
        status: 401,
        message: 'Bad API key',
      },
      {
        what: 'wrong Basic secret',
        headers: { Authorization: basic('partner-id', 'wrong') },
        status: 401,
        message: 'Bad API key',
      },
      {
        what: 'disabled key',
        headers: { 'Otoroshi-Client-Id': 'off-id', 'Otoroshi-Client-Secret': 'off-secret' },
        status: 401,
        message: 'Bad API key',
      },
      {
        what: 'x-api-key without allowClientIdOnly',
        headers: { 'x-api-key': 'strict-id' },
        status: 400,
        message: 'Bad API key',
      },
      {
        what: 'JWT signed with another secret',
        headers: { Authorization: `Bearer ${await apikeyJwt('partner-id', 'not-the-secret')}` },
        status: 400,
        message: 'Bad API key 1',
      },
    ];
    for (const c of cases) {
      const json = await gw.request({
        host: HOST,
        path: '/orders',
        headers: { accept: 'application/json', ...c.headers },
      });
      assert.equal(json.status, c.status, `${c.what}: ${json.body}`);
      assert.equal(json.headers['otoroshi-error'], 'true', c.what);
      assert.equal(json.headers['otoroshi-error-msg'], c.message, c.what);
      assert.match(String(json.headers['content-type']), /^application\/json/, c.what);
      assert.deepEqual(JSON.parse(json.body), { 'Otoroshi-Error': c.message }, c.what);
      const html = await gw.request({ host: HOST, path: '/orders', headers: { accept: 'text/html', ...c.headers } });
      assert.equal(html.status, c.status, c.what);
      assert.match(String(html.headers['content-type']), /^text\/html/, c.what);
      assert.ok(html.body.includes(`<p>${c.message}</p>`), `${c.what}: ${html.body}`);
    }
    // Without Accept, Otoroshi answers HTML; Otoroshi-State comes back as Otoroshi-State-Resp.
    const bare = await gw.request({ host: HOST, path: '/orders', headers: { 'Otoroshi-State': 'st-42' } });
    assert.equal(bare.status, 400);
    assert.match(String(bare.headers['content-type']), /^text\/html/);
    assert.equal(bare.headers['otoroshi-state-resp'], 'st-42');
    assert.equal(backend.seen.length, 0, 'no denied request reached the backend');
  },
);

envoyTest(
  "Envoy ext_authz: quotas count down in Otoroshi-Daily-Calls-Remaining, then 429 with Otoroshi's error",
  async (t, bin) => {
    const { gw, backend } = await withGateway(t, bin);
    const key = {
      'Otoroshi-Client-Id': 'small-id',
      'Otoroshi-Client-Secret': 'small-secret',
      accept: 'application/json',
    };
    const remaining: string[] = [];
    for (let i = 0; i < 3; i++) {
      const r = await gw.request({ host: HOST, path: `/q/${i}`, headers: key });
      assert.equal(r.status, 200, r.body);
      remaining.push(String(r.headers['otoroshi-daily-calls-remaining']));
      assert.ok(r.headers['otoroshi-monthly-calls-remaining'] !== undefined);
    }
    assert.deepEqual(remaining, ['2', '1', '0']);
    const over = await gw.request({ host: HOST, path: '/q/3', headers: key });
    assert.equal(over.status, 429);
    assert.equal(over.headers['otoroshi-error'], 'true');
    assert.equal(over.headers['otoroshi-error-msg'], 'You performed too much requests');
    assert.deepEqual(JSON.parse(over.body), { 'Otoroshi-Error': 'You performed too much requests' });
    assert.equal(backend.seen.length, 3, 'the refused call never reached the backend');
    // Another key is not affected.
    assert.equal((await gw.request({ host: HOST, path: '/q', headers: { 'x-api-key': 'partner-id' } })).status, 200);
  },
);

envoyTest(
  'Envoy ext_authz: a JWT verifier passes a valid token, refuses an invalid or missing one, skips excluded paths',
  async (t, bin) => {
    const { gw, backend } = await withGateway(t, bin);
    const sign = (claims: Record<string, unknown>, secret: string): Promise<string> =>
      new SignJWT(claims)
        .setProtectedHeader({ alg: 'HS256' })
        .setIssuedAt()
        .setExpirationTime('5m')
        .sign(Buffer.from(secret));
    const host = 'jwt.oto.tools';
    const ok = await gw.request({
      host,
      path: '/a',
      headers: { 'X-JWT': await sign({ team: 'core' }, 'verifier-secret') },
    });
    assert.equal(ok.status, 200, ok.body);
    assert.ok((JSON.parse(ok.body) as Echo).headers['x-jwt'] !== undefined, 'PassThrough forwards the token');
    const cases: [string, Record<string, string>][] = [
      ['wrong signature', { 'X-JWT': await sign({ team: 'core' }, 'another-secret') }],
      ['claim mismatch', { 'X-JWT': await sign({ team: 'other' }, 'verifier-secret') }],
      ['not a JWT', { 'X-JWT': 'garbage' }],
    ];
    for (const [what, headers] of cases) {
      const r = await gw.request({ host, path: '/a', headers: { accept: 'application/json', ...headers } });
      assert.equal(r.status, 400, `${what}: ${r.body}`);
      assert.equal(r.headers['otoroshi-error'], 'true', what);
      assert.deepEqual(JSON.parse(r.body), { 'Otoroshi-Error': 'error.bad.token' }, what);
    }
    const missing = await gw.request({ host, path: '/a', headers: { accept: 'application/json' } });
    assert.equal(missing.status, 400);
    assert.deepEqual(JSON.parse(missing.body), { 'Otoroshi-Error': 'error.expected.token.not.found' });
    assert.equal((await gw.request({ host, path: '/health' })).status, 200, 'excluded pattern: no token needed');
    assert.equal(backend.seen.length, 2);
  },
);

/** `name{labels} value` lines of a Prometheus text exposition, as `name{labels}` → value. */
function samples(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    const m = /^([a-z_]+\{[^}]*\}|[a-z_]+) (\S+)$/.exec(line);
    if (m?.[1] !== undefined) out.set(m[1], Number(m[2]));
  }
  return out;
}

envoyTest(
  'Envoy ALS: traffic metrics per descriptor and per apikey on our /metrics (--envoy-als-cluster xds_cluster, ' +
    '--metrics-per-apikey on)',
  async (t, bin) => {
    const { gw } = await withGateway(t, bin, true, { envoyAlsCluster: 'xds_cluster', metricsPerApikey: 'on' });
    const partner = { 'Otoroshi-Client-Id': 'partner-id', 'Otoroshi-Client-Secret': SECRET };
    for (let i = 0; i < 5; i++)
      assert.equal((await gw.request({ host: HOST, path: `/m/${i}`, headers: partner })).status, 200);
    for (let i = 0; i < 2; i++)
      assert.equal(
        (
          await gw.request({
            host: HOST,
            path: `/m/${i}`,
            headers: { Authorization: basic('strict-id', 'strict-secret') },
          })
        ).status,
        200,
      );
    assert.equal((await gw.request({ host: HOST, path: '/public/x' })).status, 200);
    assert.equal((await gw.request({ host: HOST, path: '/m', headers: { accept: 'application/json' } })).status, 400);
    const metrics = await eventually('the access logs to be counted', async () => {
      const text = await (await fetch(`http://127.0.0.1:${gw.server.adminPort}/metrics`)).text();
      const m = samples(text);
      return (m.get('oxds_http_requests_total{descriptor="priv",status_class="2xx"}') ?? 0) >= 8 &&
        (m.get('oxds_http_requests_total{descriptor="priv",status_class="4xx"}') ?? 0) >= 1 &&
        (m.get('oxds_http_apikey_requests_total{client_id="strict-id"}') ?? 0) >= 2
        ? m
        : undefined;
    });
    assert.equal(metrics.get('oxds_http_requests_total{descriptor="priv",status_class="2xx"}'), 8);
    assert.equal(metrics.get('oxds_http_apikey_requests_total{client_id="partner-id"}'), 5);
    assert.equal(metrics.get('oxds_http_apikey_requests_total{client_id="strict-id"}'), 2);
    assert.ok((metrics.get('oxds_http_request_bytes_total{descriptor="priv"}') ?? 0) > 0);
    assert.ok((metrics.get('oxds_http_response_bytes_total{descriptor="priv"}') ?? 0) > 0);
    assert.ok((metrics.get('oxds_http_upstream_latency_seconds_count{descriptor="priv"}') ?? 0) >= 8);
  },
);

envoyTest(
  'Envoy ext_authz: --authz-fail-mode open lets requests through when the Check is unreachable, never a client-sent ' +
    'client id',
  async (t, bin) => {
    const port = await freePort(); // nothing listens there: every Check fails
    const { gw } = await withGateway(t, bin, true, { authzFailMode: 'open', envoyAuthzPort: port });
    const r = await gw.request({
      host: HOST,
      path: '/orders',
      headers: { 'Otoroshi-Client-Id': 'forged', 'Otoroshi-Client-Secret': 'x' },
    });
    assert.equal(r.status, 200, r.body);
    const seen = (JSON.parse(r.body) as Echo).headers;
    assert.equal(seen['otoroshi-client-id'], undefined);
    assert.equal(seen['otoroshi-client-secret'], undefined);
  },
);
