// Apikey JWTs (§7.2) through the whole decision (Authorizer with a compiled policy and an injected
// clock): alg none in every spelling, HS/RS and HS/ES confusion, missing alg, empty / foreign
// signatures, a token signed with another key's secret, exp / nbf / iat at and beyond the 10 s
// leeway (clock skew both ways), non-numeric times, crit headers. (The JwtVerifier engine's own
// cases — alg none, HS/RS confusion with the RSA public key, exp/nbf/iat — are in authz-jwt.test.ts.)
import { test } from 'vitest';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { parseYamlFile, assembleView } from '../src/sources/yaml.js';
import { compile } from '../src/pipeline.js';
import { buildPolicy } from '../src/authz/policy.js';
import { Authorizer } from '../src/authz/decide.js';
import { MemoryQuotaStore } from '../src/authz/quota/memory.js';
import type { CheckInput, Decision } from '../src/authz/types.js';

const YAML_TEXT = `apiVersion: proxy.otoroshi.io/v1alpha1
kind: ServiceDescriptor
metadata: {name: api, annotations: {otoroshi.io/id: api}}
spec:
  hosts: [api.example.com]
  forceHttps: false
  targets: [{url: "http://10.0.0.1:8080"}]
  apiKeyConstraints: {jwtAuth: {enabled: true}}
---
apiVersion: proxy.otoroshi.io/v1alpha1
kind: ApiKey
metadata: {name: k1}
spec: {clientId: key1, clientSecret: secret-one, authorizedEntities: [service_api]}
---
apiVersion: proxy.otoroshi.io/v1alpha1
kind: ApiKey
metadata: {name: k2}
spec: {clientId: key2, clientSecret: secret-two, authorizedEntities: [service_api]}
`;

const NOW_MS = 1_900_000_000_000;
const NOW = NOW_MS / 1000;

function authorizer(): Authorizer {
  const c = compile(
    assembleView([{ relPath: 'p.yaml', ...parseYamlFile('p.yaml', YAML_TEXT, 0) }]),
    { secretSeed: 'x' },
    {},
  );
  assert.deepEqual(
    c.errors.filter((e) => e.severity === 'error'),
    [],
  );
  const a = new Authorizer({ quota: new MemoryQuotaStore(), now: () => NOW_MS });
  a.setPolicy(buildPolicy(c.model));
  return a;
}
const A = authorizer();

const b64 = (o: unknown): string => Buffer.from(typeof o === 'string' ? o : JSON.stringify(o)).toString('base64url');
function token(
  header: Record<string, unknown>,
  claims: Record<string, unknown>,
  sign: { secret: string; hash?: string } | 'empty' | string,
): string {
  const h = b64(header);
  const c = b64(claims);
  const sig =
    sign === 'empty'
      ? ''
      : typeof sign === 'string'
        ? sign
        : createHmac(sign.hash ?? 'sha256', sign.secret)
            .update(`${h}.${c}`)
            .digest('base64url');
  return `${h}.${c}.${sig}`;
}

function check(tok: string): Promise<Decision> {
  const input: CheckInput = {
    method: 'GET',
    host: 'api.example.com',
    path: '/x',
    query: '',
    headers: { authorization: `Bearer ${tok}` },
    contextExtensions: {},
  };
  return A.check(input);
}

async function allowed(tok: string, why: string): Promise<void> {
  const d = await check(tok);
  assert.equal(d.allow, true, `${why}: ${JSON.stringify(d)}`);
}
async function denied(tok: string, why: string): Promise<void> {
  const d = await check(tok);
  assert.equal(d.allow, false, `${why} must be denied`);
  if (!d.allow) assert.ok(d.status === 400 || d.status === 401, `${why}: ${d.status} ${d.message}`);
}

const HS = { alg: 'HS256', typ: 'JWT' };
const key1 = { secret: 'secret-one' };

test('apikey JWT: a valid HS256/384/512 token is allowed (baseline)', async () => {
  await allowed(token(HS, { iss: 'key1' }, key1), 'HS256');
  await allowed(token({ alg: 'HS384' }, { clientId: 'key1' }, { secret: 'secret-one', hash: 'sha384' }), 'HS384');
  await allowed(token({ alg: 'HS512' }, { client_id: 'key1' }, { secret: 'secret-one', hash: 'sha512' }), 'HS512');
});

test('apikey JWT: alg none in every spelling, missing alg, empty or foreign signatures', async () => {
  for (const alg of ['none', 'None', 'NONE', 'nOnE', '', null, 0]) {
    await denied(token({ alg, typ: 'JWT' }, { iss: 'key1' }, 'empty'), `alg ${JSON.stringify(alg)} unsigned`);
    await denied(token({ alg, typ: 'JWT' }, { iss: 'key1' }, key1), `alg ${JSON.stringify(alg)} with an HMAC`);
  }
  await denied(token({ typ: 'JWT' }, { iss: 'key1' }, key1), 'no alg');
  await denied(token(HS, { iss: 'key1' }, 'empty'), 'HS256 with an empty signature');
  await denied(token(HS, { iss: 'key1' }, 'AAAA'), 'HS256 with a junk signature');
  await denied(token(HS, { iss: 'key1' }, { secret: 'secret-two' }), 'signed with another key’s secret');
  await denied(token(HS, { iss: 'key1' }, { secret: '' }), 'signed with an empty secret');
  await denied(
    token({ alg: 'HS256' }, { iss: 'key1' }, { secret: 'secret-one', hash: 'sha512' }),
    'HS256 header, HS512 MAC',
  );
  await denied(token({ alg: 'HS256', crit: ['exp'] }, { iss: 'key1' }, key1), 'crit header');
});

test('apikey JWT: HS/RS and HS/ES confusion (asymmetric alg header, HMAC with the secret) is refused', async () => {
  for (const alg of ['RS256', 'RS512', 'PS256', 'ES256', 'ES384', 'EdDSA']) {
    await denied(token({ alg }, { iss: 'key1' }, key1), `${alg} header MACed with the client secret`);
  }
});

test('apikey JWT: exp / nbf / iat with the 10 s leeway (clock skew both ways)', async () => {
  await allowed(token(HS, { iss: 'key1', exp: NOW - 9 }, key1), 'expired 9 s ago (skew within leeway)');
  await denied(token(HS, { iss: 'key1', exp: NOW - 11 }, key1), 'expired 11 s ago');
  await denied(token(HS, { iss: 'key1', exp: 0 }, key1), 'exp 0');
  await allowed(token(HS, { iss: 'key1', nbf: NOW + 9 }, key1), 'not before 9 s from now (skew within leeway)');
  await denied(token(HS, { iss: 'key1', nbf: NOW + 11 }, key1), 'not before 11 s from now');
  await allowed(token(HS, { iss: 'key1', iat: NOW + 9 }, key1), 'issued 9 s in the future');
  await denied(token(HS, { iss: 'key1', iat: NOW + 3600 }, key1), 'issued an hour in the future');
  for (const bad of ['soon', '1900000000', null, true, [NOW + 60], { n: 1 }]) {
    await denied(token(HS, { iss: 'key1', exp: bad }, key1), `exp ${JSON.stringify(bad)}`);
    await denied(token(HS, { iss: 'key1', nbf: bad }, key1), `nbf ${JSON.stringify(bad)}`);
  }
  await allowed(token(HS, { iss: 'key1', exp: NOW + 1e9 }, key1), 'far future exp');
});
