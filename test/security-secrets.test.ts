// No secret leaks: a server whose config holds apikey secrets, a JWT verifier HMAC secret and TLS
// private keys (valid and broken), protected by an admin token, is exercised through every
// surface (xDS incl. SDS, ext_authz with right and wrong credentials, admin endpoints, the
// `validate` CLI); then its logs (pino at trace level), audit file, /metrics, /debug/*, admin
// error bodies, Check deny bodies/headers, object statuses and CLI output are grepped for every
// secret — must find none. (SDS responses are the one place a private key must go: not grepped.)
// Also: the admin token (probes open, everything else 401 without it, constant-time compare).
import { test } from 'vitest';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import pino from 'pino';
import { resolveConfig } from '../src/config.js';
import { startServer } from '../src/main.js';
import { formatError } from '../src/pipeline.js';
import { buildAdminApp, bearerMatches } from '../src/admin/app.js';
import { AdsClient, TYPE_URLS, anyName } from './helpers/ads-client.js';
import { checkClient, checkRequest, callCheck, outcome } from './helpers/check-client.js';
import { createHash } from 'node:crypto';

const APIKEY_SECRET = 'apikey-S3CR3T-9f8e7d6c5b4a';
const JWT_SECRET = 'jwt-hmac-S3CR3T-0a1b2c3d4e5f';
const ADMIN_TOKEN = 'admin-T0KEN-77e1c0ffee';
const GATEWAY_TOKEN = 'gateway-T0KEN-5eed1e55';
const WRONG_SECRET = 'provided-WRONG-s3cret-5150';

const tlsFixture = fs.readFileSync('test/fixtures/model/tls/secrets.yaml', 'utf8');
/** The fixture's first PEM private key, with its END line, unindented. */
function keyPem(): string {
  const end = tlsFixture.indexOf('-----END PRIVATE KEY-----') + '-----END PRIVATE KEY-----'.length;
  return tlsFixture.slice(tlsFixture.indexOf('-----BEGIN PRIVATE KEY-----'), end).replace(/^\s+/gm, '');
}
/** Every private key of the config: PEM bodies (decoded from data: base64 too). */
function privateKeyBodies(): string[] {
  const out: string[] = [];
  const pems = [...tlsFixture.matchAll(/tls\.key: ([A-Za-z0-9+/=]{40,})/g)].map((m) =>
    Buffer.from(m[1] ?? '', 'base64').toString('utf8'),
  );
  pems.push(
    tlsFixture
      .slice(tlsFixture.indexOf('-----BEGIN PRIVATE KEY-----'), tlsFixture.indexOf('-----END PRIVATE KEY-----'))
      .replace(/^\s+/gm, ''),
  );
  for (const pem of pems) {
    const body = pem.replace(/-----[A-Z ]+-----/g, '').replace(/\s+/g, '');
    assert.ok(body.length > 60);
    // any 24-character run of the key's base64 is a leak
    for (let i = 0; i + 24 <= body.length; i += 12) out.push(body.slice(i, i + 24));
  }
  return out;
}

const CONFIG = `${tlsFixture}
---
apiVersion: v1
kind: Secret
metadata: {name: broken-key-tls, namespace: default}
type: kubernetes.io/tls
stringData:
  tls.crt: "-----BEGIN CERTIFICATE-----\\nMIIBroken\\n-----END CERTIFICATE-----\\n"
  tls.key: ${JSON.stringify(keyPem())}
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: web, namespace: default}
spec:
  ingressClassName: otoroshi
  tls: [{hosts: [web.oto.tools], secretName: web-tls}, {hosts: [broken.oto.tools], secretName: broken-key-tls}]
  rules:
    - host: web.oto.tools
      http: {paths: [{path: /, pathType: Prefix, backend: {service: {name: web, port: {number: 80}}}}]}
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: default}
spec: {clusterIP: 10.0.0.10, ports: [{name: http, port: 80}]}
---
apiVersion: proxy.otoroshi.io/v1alpha1
kind: JwtVerifier
metadata: {name: jv, annotations: {otoroshi.io/id: jv}}
spec:
  strict: true
  source: {type: InHeader, name: X-JWT, remove: ''}
  algoSettings: {type: HSAlgoSettings, size: 256, secret: ${JWT_SECRET}}
  strategy: {type: PassThrough, verificationSettings: {fields: {}, arrayFields: {}}}
---
apiVersion: proxy.otoroshi.io/v1alpha1
kind: ServiceDescriptor
metadata: {name: api, annotations: {otoroshi.io/id: api}}
spec:
  hosts: [api.oto.tools]
  forceHttps: false
  targets: [{url: "http://10.0.0.1:8080"}]
  apiKeyConstraints: {basicAuth: {enabled: true}, jwtAuth: {enabled: true}}
---
apiVersion: proxy.otoroshi.io/v1alpha1
kind: ServiceDescriptor
metadata: {name: jwtd, annotations: {otoroshi.io/id: jwtd}}
spec:
  hosts: [jwt.oto.tools]
  forceHttps: false
  publicPatterns: ["/.*"]
  targets: [{url: "http://10.0.0.2:8080"}]
  jwtVerifier: {type: ref, enabled: true, ids: [jv]}
---
apiVersion: proxy.otoroshi.io/v1alpha1
kind: ApiKey
metadata: {name: partner, namespace: default}
spec: {clientId: partner, clientSecret: ${APIKEY_SECRET}, authorizedEntities: [service_api]}
---
apiVersion: proxy.otoroshi.io/v1alpha1
kind: ApiKey
metadata: {name: generated, namespace: default}
spec: {clientId: generated, authorizedEntities: [service_api]}
`;

function hs256(claims: object, secret: string): string {
  const h = Buffer.from(JSON.stringify({ alg: 'HS256', typ: 'JWT' })).toString('base64url');
  const c = Buffer.from(JSON.stringify(claims)).toString('base64url');
  return `${h}.${c}.${createHmac('sha256', secret).update(`${h}.${c}`).digest('base64url')}`;
}
const basic = (id: string, s: string): string => `Basic ${Buffer.from(`${id}:${s}`).toString('base64')}`;

test('security: no secret or private key in logs, audit, metrics, debug endpoints, errors or CLI output', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'oxds-security-'));
  t.onTestFinished(() => fs.rmSync(dir, { recursive: true, force: true }));
  const cfgDir = path.join(dir, 'config');
  fs.mkdirSync(cfgDir);
  fs.writeFileSync(path.join(cfgDir, 'all.yaml'), CONFIG);
  const auditFile = path.join(dir, 'audit.jsonl');
  let logText = '';
  const sink = new Writable({
    write(chunk: Buffer, _e, cb) {
      logText += chunk.toString();
      cb();
    },
  });
  const r = resolveConfig(
    {
      config: cfgDir,
      xdsPort: 0,
      adminPort: 0,
      authzPort: 0,
      dataDir: path.join(dir, '.data'),
      auditFile,
      adminToken: ADMIN_TOKEN,
      gatewayToken: GATEWAY_TOKEN,
      logLevel: 'trace',
    },
    {},
  );
  assert.ok(r.ok);
  const server = await startServer(r.value, pino({ level: 'trace' }, sink));
  let stopped = false;
  t.onTestFinished(() => (stopped ? undefined : server.stop()));
  const seed = fs.readFileSync(path.join(dir, '.data', 'secret-seed'), 'utf8').trim();
  const outputs: Record<string, string> = {};

  // xDS, including SDS (the private key legitimately travels there: that response is not grepped).
  const ads = new AdsClient(server.xdsPort, { node: { id: 'gw-1' }, bearer: GATEWAY_TOKEN });
  t.onTestFinished(() => ads.close());
  await ads.syncLikeEnvoy();
  ads.request(TYPE_URLS.secret, ['default/web-tls']);
  const sds = await ads.nextSotw(3000);
  assert.deepEqual(sds.resources.map(anyName), ['default/web-tls']);
  ads.ack(sds, ['default/web-tls']);
  const nacker = new AdsClient(server.xdsPort, { node: { id: 'gw-2' } });
  t.onTestFinished(() => nacker.close());
  nacker.request(TYPE_URLS.cluster);
  nacker.nack(await nacker.nextSotw(3000), 'rejected for the test');

  // ext_authz with right and wrong credentials of every kind.
  const cc = checkClient(server.authzPort);
  t.onTestFinished(() => cc.close());
  const checks: Array<[string, Record<string, string>, number]> = [
    ['api.oto.tools', { authorization: basic('partner', APIKEY_SECRET) }, 0],
    ['api.oto.tools', { authorization: basic('partner', WRONG_SECRET) }, 400],
    ['api.oto.tools', { 'otoroshi-client-id': 'partner', 'otoroshi-client-secret': WRONG_SECRET }, 400],
    ['api.oto.tools', { authorization: `Bearer ${hs256({ iss: 'partner' }, APIKEY_SECRET)}` }, 0],
    ['api.oto.tools', { authorization: `Bearer ${hs256({ iss: 'partner' }, WRONG_SECRET)}` }, 400],
    ['api.oto.tools', { authorization: `Bearer ${hs256({ iss: 'partner', exp: 1 }, APIKEY_SECRET)}` }, 400],
    ['jwt.oto.tools', { 'x-jwt': hs256({ sub: 'bob' }, JWT_SECRET) }, 0],
    ['jwt.oto.tools', { 'x-jwt': hs256({ sub: 'bob' }, WRONG_SECRET) }, 400],
  ];
  const denyTexts: string[] = [];
  for (const [host, headers, expected] of checks) {
    const o = outcome(await callCheck(cc, checkRequest({ host, path: '/x', headers })));
    if (expected === 0) assert.equal(o.status, 0, `${host} ${JSON.stringify(headers)} → ${JSON.stringify(o)}`);
    else assert.ok(o.status >= 400, `${host} ${JSON.stringify(headers)} denied`);
    denyTexts.push(JSON.stringify(o));
  }
  // Enough wrong secrets from one address to raise an audit event (it must name the key, not a secret).
  for (let i = 0; i < 5; i++)
    await callCheck(
      cc,
      checkRequest({
        host: 'api.oto.tools',
        path: '/x',
        headers: { authorization: basic('partner', `${WRONG_SECRET}${i}`) },
      }),
    );
  outputs['ext_authz answers'] = denyTexts.join('\n');

  // Admin endpoints (with the token), and what a caller without it sees.
  const auth = { authorization: `Bearer ${ADMIN_TOKEN}` };
  const base = `http://127.0.0.1:${server.adminPort}`;
  for (const p of ['/metrics', '/debug/proxies', '/debug/config_dump?node=gw-1', '/health', '/ready', '/live']) {
    const res = await fetch(`${base}${p}`, { headers: auth });
    assert.equal(res.status, 200, p);
    outputs[p] = await res.text();
  }
  assert.match(
    outputs['/debug/config_dump?node=gw-1'] ?? '',
    /\[redacted\]/,
    'the dump shows that key material was redacted',
  );
  for (const p of ['/metrics', '/debug/proxies', '/debug/config_dump?node=gw-1', '/nope']) {
    const res = await fetch(`${base}${p}`, { headers: { authorization: 'Bearer wrong' } });
    assert.equal(res.status, 401, `${p} without the token`);
    outputs[`401 ${p}`] = await res.text();
  }

  // Object statuses and the problems they carry (the broken key Secret is reported, not echoed).
  const problems = server.statuses().flatMap((s) => s.errors.map(formatError));
  assert.ok(
    problems.some((l) => l.includes('broken-key-tls')),
    `the broken Secret is reported: ${problems.join('\n')}`,
  );
  outputs['statuses'] = JSON.stringify(server.statuses());

  // The validate CLI on the same directory.
  const v = spawnSync(process.execPath, ['dist/src/cli.js', 'validate', '--config', cfgDir], { encoding: 'utf8' });
  outputs['validate CLI'] = `${v.stdout}\n${v.stderr}`;
  assert.match(outputs['validate CLI'] ?? '', /broken-key-tls/);

  ads.close();
  nacker.close();
  await server.stop();
  stopped = true;
  outputs['logs'] = logText;
  outputs['audit'] = fs.readFileSync(auditFile, 'utf8');
  assert.ok(outputs['logs']!.length > 1000 && outputs['audit']!.length > 100, 'there is output to grep');
  assert.match(outputs['audit'] ?? '', /partner/, 'the audit trail names the apikey (not its secret)');

  const needles: Array<[string, string]> = [
    ['apikey clientSecret', APIKEY_SECRET],
    ['JWT verifier secret', JWT_SECRET],
    ['admin token', ADMIN_TOKEN],
    ['gateway token', GATEWAY_TOKEN],
    ['a wrong secret a client sent', WRONG_SECRET],
    ['the secret seed', seed],
    ['a signed apikey JWT', hs256({ iss: 'partner' }, APIKEY_SECRET).split('.')[2] ?? ''],
    ['PEM private key marker', 'PRIVATE KEY'],
    ...privateKeyBodies().map((b): [string, string] => ['private key material', b]),
  ];
  const leaks: string[] = [];
  for (const [where, text] of Object.entries(outputs)) {
    for (const [what, needle] of needles) {
      if (needle && text.includes(needle))
        leaks.push(
          `${what} found in ${where}` +
            `: …${text.slice(Math.max(0, text.indexOf(needle) - 80), text.indexOf(needle) + 40)}…`,
        );
    }
  }
  assert.deepEqual(leaks, []);
});

test('admin token: probes open, everything else 401 without the right bearer token', async () => {
  const app = buildAdminApp({
    ready: () => true,
    health: () => ({}),
    proxies: () => [],
    configDump: () => ({}),
    token: 's3cr3t-token',
  });
  const get = async (url: string, authorization?: string): Promise<number> =>
    (await app.inject({ method: 'GET', url, ...(authorization !== undefined ? { headers: { authorization } } : {}) }))
      .statusCode;
  for (const p of ['/live', '/ready', '/health', '/health?x=1']) assert.equal(await get(p), 200, p);
  for (const p of ['/debug/proxies', '/debug/config_dump?node=a', '/metrics', '/unknown', '/debug/proxies?/live']) {
    assert.equal(await get(p), 401, `${p} without a token`);
    assert.equal(await get(p, 'Bearer wrong'), 401, `${p} with a wrong token`);
    assert.equal(await get(p, 's3cr3t-token'), 401, `${p} without the Bearer scheme`);
    assert.equal(await get(p, 'Basic czNjcjN0LXRva2Vu'), 401, `${p} with Basic`);
  }
  assert.equal(await get('/debug/proxies', 'Bearer s3cr3t-token'), 200);
  assert.equal(await get('/debug/proxies', 'bearer  s3cr3t-token'), 200);
  // Without a token configured the API stays open (bind it to loopback).
  const open = buildAdminApp({ ready: () => true, health: () => ({}), proxies: () => [] });
  assert.equal((await open.inject({ method: 'GET', url: '/debug/proxies' })).statusCode, 200);
  const expected = createHash('sha256').update('abc').digest();
  assert.equal(bearerMatches('Bearer abc', expected), true);
  assert.equal(bearerMatches('Bearer abcd', expected), false);
  assert.equal(bearerMatches(undefined, expected), false);
  assert.equal(
    bearerMatches('Bearer ', createHash('sha256').update('').digest()),
    false,
    'an empty token never matches',
  );
  await app.close();
  await open.close();
});

test('admin token: --admin-token / OXDS_ADMIN_TOKEN', () => {
  const a = resolveConfig({ adminToken: 'x' }, {});
  assert.ok(a.ok && a.value.adminToken === 'x');
  const b = resolveConfig({}, { OXDS_ADMIN_TOKEN: 'y' });
  assert.ok(b.ok && b.value.adminToken === 'y');
  const c = resolveConfig({}, {});
  assert.ok(c.ok && c.value.adminToken === undefined);
});
