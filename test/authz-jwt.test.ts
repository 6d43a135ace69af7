import { afterAll, beforeAll, describe, test } from 'vitest';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import * as jose from 'jose';
import {
  JwtEngine,
  decodeUnverifiedClaims,
  transformClaims,
  verifyApikeyJwt,
  type JwtOutcome,
} from '../src/authz/jwt.js';
import { buildJwtVerifier, localJwtVerifier } from '../src/model/jwt-verifier.js';
import { parseYamlFile } from '../src/sources/yaml.js';
import type { CheckInput } from '../src/authz/types.js';
import type {
  DescriptorJwtRef,
  JwtAlgoSettings,
  JwtStrategy,
  JwtTokenSource,
  JwtVerifierModel,
  StoredObject,
} from '../src/model/types.js';

const FIX = path.join(process.cwd(), 'test/fixtures/jwt');
const enc = new TextEncoder();

function input(headers: Record<string, string> = {}, p = '/', query = ''): CheckInput {
  return {
    method: 'GET',
    host: 'api.oto.tools',
    path: p,
    query,
    headers,
    sourceIp: '10.0.0.1',
    contextExtensions: { descriptor_id: 'svc-1' },
  };
}
const PT: JwtStrategy = { type: 'PassThrough', verificationSettings: { fields: {}, arrayFields: {} } };
const BEARER: JwtTokenSource = { type: 'InHeader', name: 'Authorization', remove: 'Bearer ' };

function verifier(id: string, algoSettings: JwtAlgoSettings, o: Partial<JwtVerifierModel> = {}): JwtVerifierModel {
  return {
    id,
    name: id,
    sourceKey: `JwtVerifier/default/${id}`,
    namespace: 'default',
    strict: true,
    source: BEARER,
    algoSettings,
    strategy: PT,
    ...o,
  };
}
function ref(...ids: string[]): DescriptorJwtRef {
  return { enabled: true, ids, excludedPatterns: [] };
}
function hs(size: 256 | 384 | 512, secret = 'secret'): JwtAlgoSettings {
  return { type: 'HSAlgoSettings', size, secret, base64: false };
}
async function signHs(claims: jose.JWTPayload, secret = 'secret', alg = 'HS256'): Promise<string> {
  return new jose.SignJWT(claims).setProtectedHeader({ alg, typ: 'JWT' }).sign(enc.encode(secret));
}
function denied(o: JwtOutcome, status: number, code: string): void {
  assert.equal(o.kind, 'denied', JSON.stringify(o));
  if (o.kind === 'denied') {
    assert.equal(o.status, status);
    assert.equal(o.code, code);
  }
}
function passed(o: JwtOutcome): Extract<JwtOutcome, { kind: 'passed' }> {
  assert.equal(o.kind, 'passed', JSON.stringify(o));
  return o as Extract<JwtOutcome, { kind: 'passed' }>;
}
const nowSec = (): number => Math.floor(Date.now() / 1000);

interface Pair {
  publicPem: string;
  privatePem: string;
  publicKey: jose.CryptoKey;
  privateKey: jose.CryptoKey;
}
async function pair(alg: string): Promise<Pair> {
  const { publicKey, privateKey } = await jose.generateKeyPair(alg, { extractable: true });
  return {
    publicKey,
    privateKey,
    publicPem: await jose.exportSPKI(publicKey),
    privatePem: await jose.exportPKCS8(privateKey),
  };
}

let rsa: Pair;
let ec: Pair;
let rsaOut: Pair;
beforeAll(async () => {
  rsa = await pair('RS256');
  ec = await pair('ES256');
  rsaOut = await pair('RS256');
});

describe('algorithms', () => {
  for (const size of [256, 384, 512] as const) {
    test(`HS${size} verifies`, async () => {
      const e = new JwtEngine([verifier('v', hs(size))]);
      const t = await signHs({ sub: 'bob' }, 'secret', `HS${size}`);
      const o = passed(await e.verify(ref('v'), input({ authorization: `Bearer ${t}` })));
      assert.equal(o.claims['sub'], 'bob');
      assert.equal(o.verifierId, 'v');
      // the size must match
      const other = await signHs({ sub: 'bob' }, 'secret', size === 256 ? 'HS512' : 'HS256');
      denied(await e.verify(ref('v'), input({ authorization: `Bearer ${other}` })), 400, 'error.bad.token');
    });
  }

  test('HS base64 secret', async () => {
    const raw = Buffer.from('0123456789abcdef0123456789abcdef');
    const e = new JwtEngine([
      verifier('v', { type: 'HSAlgoSettings', size: 256, secret: raw.toString('base64'), base64: true }),
    ]);
    const t = await new jose.SignJWT({ a: 1 }).setProtectedHeader({ alg: 'HS256' }).sign(new Uint8Array(raw));
    passed(await e.verify(ref('v'), input({ authorization: `Bearer ${t}` })));
  });

  test('RS256, PS256 (RSAlgoSettings accepts RS and PS) and ES256 verify; a bare base64 SPKI works', async () => {
    const bare = rsa.publicPem.replace(/-----[A-Z ]+-----/g, '').replace(/\s+/g, '');
    const e = new JwtEngine([
      verifier('rs', { type: 'RSAlgoSettings', size: 256, publicKey: rsa.publicPem }),
      verifier('rsbare', { type: 'RSAlgoSettings', size: 256, publicKey: bare }),
      verifier('es', { type: 'ESAlgoSettings', size: 256, publicKey: ec.publicPem }),
    ]);
    const rs = await new jose.SignJWT({ sub: 'r' }).setProtectedHeader({ alg: 'RS256' }).sign(rsa.privateKey);
    const psKey = await jose.importPKCS8(rsa.privatePem, 'PS256');
    const ps = await new jose.SignJWT({ sub: 'p' }).setProtectedHeader({ alg: 'PS256' }).sign(psKey);
    const es = await new jose.SignJWT({ sub: 'e' }).setProtectedHeader({ alg: 'ES256' }).sign(ec.privateKey);
    assert.equal(passed(await e.verify(ref('rs'), input({ authorization: `Bearer ${rs}` }))).claims['sub'], 'r');
    assert.equal(passed(await e.verify(ref('rsbare'), input({ authorization: `Bearer ${rs}` }))).claims['sub'], 'r');
    assert.equal(passed(await e.verify(ref('rs'), input({ authorization: `Bearer ${ps}` }))).claims['sub'], 'p');
    assert.equal(passed(await e.verify(ref('es'), input({ authorization: `Bearer ${es}` }))).claims['sub'], 'e');
    // an RS token against ES settings, RS384 against RS256 settings
    denied(await e.verify(ref('es'), input({ authorization: `Bearer ${rs}` })), 400, 'error.bad.token');
    const rs384 = await new jose.SignJWT({})
      .setProtectedHeader({ alg: 'RS384' })
      .sign(await jose.importPKCS8(rsa.privatePem, 'RS384'));
    denied(await e.verify(ref('rs'), input({ authorization: `Bearer ${rs384}` })), 400, 'error.bad.token');
  });

  test('wrong signature → 400 error.bad.token', async () => {
    const e = new JwtEngine([
      verifier('v', hs(256)),
      verifier('r', { type: 'RSAlgoSettings', size: 256, publicKey: rsa.publicPem }),
    ]);
    const t = await signHs({ sub: 'bob' }, 'other-secret');
    denied(await e.verify(ref('v'), input({ authorization: `Bearer ${t}` })), 400, 'error.bad.token');
    const good = await signHs({ sub: 'bob' });
    const [h, , s] = good.split('.');
    const tampered = `${h}.${Buffer.from(JSON.stringify({ sub: 'admin' })).toString('base64url')}.${s}`;
    denied(await e.verify(ref('v'), input({ authorization: `Bearer ${tampered}` })), 400, 'error.bad.token');
    const wrongKey = await new jose.SignJWT({}).setProtectedHeader({ alg: 'RS256' }).sign(rsaOut.privateKey);
    denied(await e.verify(ref('r'), input({ authorization: `Bearer ${wrongKey}` })), 400, 'error.bad.token');
    denied(await e.verify(ref('v'), input({ authorization: 'Bearer not-a-jwt' })), 400, 'error.bad.token');
    denied(await e.verify(ref('v'), input({ authorization: 'Bearer a.b.c.d' })), 400, 'error.bad.token');
  });

  test('exp / nbf / iat with a 10 s leeway', async () => {
    let clock = 1_700_000_000_000;
    const now = clock / 1000;
    const e = new JwtEngine([verifier('v', hs(256))], { nowMs: () => clock });
    const call = async (claims: jose.JWTPayload): Promise<JwtOutcome> =>
      e.verify(ref('v'), input({ authorization: `Bearer ${await signHs(claims)}` }));
    denied(await call({ exp: now - 11 }), 400, 'error.bad.token');
    passed(await call({ exp: now - 9 }));
    denied(await call({ nbf: now + 30 }), 400, 'error.bad.token');
    passed(await call({ nbf: now + 9 }));
    denied(await call({ iat: now + 30 }), 400, 'error.bad.token');
    passed(await call({ iat: now + 9, exp: now + 60 }));
    clock += 120_000;
    denied(await call({ exp: now + 60 }), 400, 'error.bad.token');
  });

  test('alg none is refused and reported', async () => {
    const events: Array<{ kind: string; detail: string; sourceIp?: string; descriptorId?: string }> = [];
    const e = new JwtEngine(
      [verifier('v', hs(256)), verifier('r', { type: 'RSAlgoSettings', size: 256, publicKey: rsa.publicPem })],
      {
        hooks: { onSuspicious: (ev) => events.push(ev) },
      },
    );
    const unsecured = new jose.UnsecuredJWT({ sub: 'admin' }).encode();
    denied(await e.verify(ref('v'), input({ authorization: `Bearer ${unsecured}` })), 400, 'error.bad.token');
    denied(await e.verify(ref('r'), input({ authorization: `Bearer ${unsecured}` })), 400, 'error.bad.token');
    const b64 = (s: string): string => Buffer.from(s).toString('base64url');
    const noneUpper = `${b64('{"alg":"NONE"}')}.${b64('{"sub":"x"}')}.`;
    denied(await e.verify(ref('v'), input({ authorization: `Bearer ${noneUpper}` })), 400, 'error.bad.token');
    assert.equal(events.length, 3);
    assert.equal(events[0]?.kind, 'jwt_alg_confusion');
    assert.equal(events[0]?.sourceIp, '10.0.0.1');
    assert.equal(events[0]?.descriptorId, 'svc-1');
  });

  test('HS/RS confusion (HS token MACed with the RSA public key) is refused and reported', async () => {
    const events: string[] = [];
    const e = new JwtEngine([verifier('r', { type: 'RSAlgoSettings', size: 256, publicKey: rsa.publicPem })], {
      hooks: { onSuspicious: (ev) => events.push(`${ev.kind}: ${ev.detail}`) },
    });
    for (const secret of [rsa.publicPem, rsa.publicPem.trim()]) {
      const forged = await signHs({ sub: 'admin' }, secret);
      denied(await e.verify(ref('r'), input({ authorization: `Bearer ${forged}` })), 400, 'error.bad.token');
    }
    assert.equal(events.length, 2);
    assert.match(events[0] ?? '', /^jwt_alg_confusion: .*HS256.*RSAlgoSettings/);
  });
});

describe('token location, strictness, ref semantics', () => {
  test('strict → 400 error.expected.token.not.found; non-strict → skipped', async () => {
    const e = new JwtEngine([verifier('s', hs(256)), verifier('n', hs(256), { strict: false })]);
    const o = await e.verify(ref('s'), input());
    denied(o, 400, 'error.expected.token.not.found');
    assert.equal(o.kind === 'denied' && o.reason, 'jwt_missing');
    assert.deepEqual(await e.verify(ref('n'), input()), { kind: 'skipped' });
    // non-strict still verifies a token that is present
    denied(await e.verify(ref('n'), input({ authorization: 'Bearer x.y.z' })), 400, 'error.bad.token');
  });

  test('header with remove "Bearer " (a regex), query param, cookie', async () => {
    const t = await signHs({ sub: 'bob' });
    const e = new JwtEngine([
      verifier('h', hs(256)),
      verifier('hre', hs(256), { source: { type: 'InHeader', name: 'X-JWT', remove: '^(?i:bearer)?\\s*' } }),
      verifier('hraw', hs(256), { source: { type: 'InHeader', name: 'jwt', remove: '' } }),
      verifier('q', hs(256), { source: { type: 'InQueryParam', name: 'access_token' } }),
      verifier('c', hs(256), { source: { type: 'InCookie', name: 'jwt' } }),
    ]);
    passed(await e.verify(ref('h'), input({ authorization: `Bearer ${t}` })));
    denied(await e.verify(ref('h'), input({ authorization: `Basic ${t}` })), 400, 'error.bad.token');
    passed(await e.verify(ref('hraw'), input({ jwt: t })));
    passed(await e.verify(ref('q'), input({}, '/', `a=1&access_token=${t}&b=2`)));
    denied(
      await e.verify(ref('q'), input({ authorization: `Bearer ${t}` }, '/', 'x=1')),
      400,
      'error.expected.token.not.found',
    );
    passed(await e.verify(ref('c'), input({ cookie: `a=1; jwt=${t}; b=2` })));
    denied(await e.verify(ref('c'), input({ cookie: 'a=1' })), 400, 'error.expected.token.not.found');
  });

  test('fields (string equality, aud array, iss/sub/jti) and arrayFields', async () => {
    const e = new JwtEngine([
      verifier('f', hs(256), {
        strategy: {
          type: 'PassThrough',
          verificationSettings: {
            fields: { iss: 'oto', aud: 'backend', role: 'admin' },
            arrayFields: { groups: 'a, b' },
          },
        },
      }),
      verifier('num', hs(256), {
        strategy: { type: 'PassThrough', verificationSettings: { fields: { level: '3' }, arrayFields: {} } },
      }),
    ]);
    const call = async (id: string, claims: jose.JWTPayload): Promise<JwtOutcome> =>
      e.verify(ref(id), input({ authorization: `Bearer ${await signHs(claims)}` }));
    const ok = { iss: 'oto', aud: ['x', 'backend'], role: 'admin', groups: ['b', 'c', 'a'] };
    passed(await call('f', ok));
    passed(await call('f', { ...ok, aud: 'backend' }));
    denied(await call('f', { ...ok, aud: ['x'] }), 400, 'error.bad.token');
    denied(await call('f', { ...ok, iss: 'other' }), 400, 'error.bad.token');
    denied(await call('f', { ...ok, role: undefined }), 400, 'error.bad.token');
    denied(await call('f', { ...ok, groups: ['a'] }), 400, 'error.bad.token');
    denied(await call('f', { ...ok, groups: 'a,b' }), 400, 'error.bad.token');
    passed(await call('num', { level: '3' }));
    denied(await call('num', { level: 3 }), 400, 'error.bad.token'); // java-jwt withClaim(String): a number is not "3"
  });

  test('excludedPatterns (full match), disabled ref, empty ids', async () => {
    const e = new JwtEngine([verifier('v', hs(256))]);
    const r: DescriptorJwtRef = { enabled: true, ids: ['v'], excludedPatterns: ['/public/.*', '/health'] };
    assert.equal((await e.verify(r, input({}, '/public/x'))).kind, 'skipped');
    assert.equal((await e.verify(r, input({}, '/health'))).kind, 'skipped');
    denied(await e.verify(r, input({}, '/healthz')), 400, 'error.expected.token.not.found');
    denied(await e.verify(r, input({}, '/x/public/y')), 400, 'error.expected.token.not.found');
    assert.equal((await e.verify({ ...r, enabled: false }, input())).kind, 'skipped');
    assert.equal((await e.verify({ ...r, ids: [] }, input())).kind, 'skipped');
  });

  test('the first verifier that passes wins; all failing → last failure; unknown id → 500', async () => {
    const e = new JwtEngine([
      verifier('a', hs(256, 'secret-a')),
      verifier('b', hs(256, 'secret-b')),
      verifier('q', hs(256), { source: { type: 'InQueryParam', name: 't' } }),
    ]);
    const tb = await signHs({ sub: 'b' }, 'secret-b');
    assert.equal(passed(await e.verify(ref('a', 'b'), input({ authorization: `Bearer ${tb}` }))).verifierId, 'b');
    const ta = await signHs({ sub: 'a' }, 'secret-a');
    assert.equal(passed(await e.verify(ref('a', 'b'), input({ authorization: `Bearer ${ta}` }))).verifierId, 'a');
    // all fail: the last failure (q: token missing) is returned
    denied(
      await e.verify(ref('a', 'q'), input({ authorization: 'Bearer x.y.z' })),
      400,
      'error.expected.token.not.found',
    );
    const o = await e.verify(ref('nope'), input({ authorization: `Bearer ${ta}` }));
    denied(o, 500, 'error.bad.globaljwtverifier.id');
    assert.equal(o.kind === 'denied' && o.reason, 'internal');
    // an unknown id followed by a passing one: passes
    passed(await e.verify(ref('nope', 'a'), input({ authorization: `Bearer ${ta}` })));
    // setVerifiers replaces the set
    e.setVerifiers([verifier('a', hs(256, 'secret-a'))]);
    denied(await e.verify(ref('b'), input({ authorization: `Bearer ${tb}` })), 500, 'error.bad.globaljwtverifier.id');
  });
});

describe('JWKS', () => {
  let server: http.Server;
  let url: string;
  let hits = 0;
  let keys: jose.JWK[] = [];
  let k1: Pair;
  let k2: Pair;
  let ek: Pair;
  let seenHeader: string | undefined;

  beforeAll(async () => {
    k1 = await pair('RS256');
    k2 = await pair('RS256');
    ek = await pair('ES256');
    const j1 = { ...(await jose.exportJWK(k1.publicKey)), kid: 'k1', use: 'sig' };
    const je = { ...(await jose.exportJWK(ek.publicKey)), kid: 'e1' };
    keys = [j1, je];
    server = http.createServer((req, res) => {
      if (req.url === '/hang') return; // never answers
      hits++;
      seenHeader = req.headers['x-api-key'] as string | undefined;
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ keys }));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => {
    server.closeAllConnections();
    server.close();
  });

  const jwks = (
    u: string,
    o: Partial<Extract<JwtAlgoSettings, { type: 'JWKSAlgoSettings' }>> = {},
  ): JwtAlgoSettings => ({
    type: 'JWKSAlgoSettings',
    url: u,
    headers: { 'X-Api-Key': 'abc' },
    timeout: 2000,
    ttl: 3_600_000,
    kty: 'RSA',
    ...o,
  });
  const sign = (p: Pair, alg: string, kid?: string): Promise<string> =>
    new jose.SignJWT({ sub: kid ?? 'none' })
      .setProtectedHeader(kid === undefined ? { alg } : { alg, kid })
      .sign(p.privateKey);

  test('verify by kid, cached across calls, unknown kid → refetch, ttl honoured', async () => {
    hits = 0;
    let clock = Date.now();
    const e = new JwtEngine(
      [verifier('j', jwks(`${url}/jwks`, { ttl: 60_000 })), verifier('j2', jwks(`${url}/jwks`))],
      { nowMs: () => clock },
    );
    const t1 = await sign(k1, 'RS256', 'k1');
    passed(await e.verify(ref('j'), input({ authorization: `Bearer ${t1}` })));
    assert.equal(seenHeader, 'abc');
    for (let i = 0; i < 5; i++) passed(await e.verify(ref('j'), input({ authorization: `Bearer ${t1}` })));
    passed(await e.verify(ref('j2'), input({ authorization: `Bearer ${t1}` }))); // one set per url
    assert.equal(hits, 1);
    // concurrent calls share one fetch
    const e2 = new JwtEngine([verifier('j', jwks(`${url}/jwks`))]);
    hits = 0;
    const all = await Promise.all(
      Array.from({ length: 10 }, () => e2.verify(ref('j'), input({ authorization: `Bearer ${t1}` }))),
    );
    all.forEach(passed);
    assert.equal(hits, 1);
    e2.close();

    // ES256 key of the same set
    hits = 0;
    passed(await e.verify(ref('j'), input({ authorization: `Bearer ${await sign(ek, 'ES256', 'e1')}` })));
    assert.equal(hits, 0);

    // rotation: k2 appears; unknown kid refetches once the cooldown (10 s) has passed
    keys = [...keys, { ...(await jose.exportJWK(k2.publicKey)), kid: 'k2' }];
    const t2 = await sign(k2, 'RS256', 'k2');
    clock += 11_000;
    passed(await e.verify(ref('j'), input({ authorization: `Bearer ${t2}` })));
    assert.equal(hits, 1);
    // an unknown kid within the cooldown does not hammer the IdP
    const t3 = await sign(k2, 'RS256', 'k3');
    denied(await e.verify(ref('j'), input({ authorization: `Bearer ${t3}` })), 400, 'error.bad.input.algorithm.name');
    denied(await e.verify(ref('j'), input({ authorization: `Bearer ${t3}` })), 400, 'error.bad.input.algorithm.name');
    assert.equal(hits, 1);
    // ttl: after 60 s the set is fetched again
    clock += 61_000;
    passed(await e.verify(ref('j'), input({ authorization: `Bearer ${t1}` })));
    assert.equal(hits, 2);
    e.close();
  });

  test('no kid, alg not applicable to the JWK, HS confusion, signature by another key', async () => {
    const events: string[] = [];
    const e = new JwtEngine([verifier('j', jwks(`${url}/jwks`))], {
      hooks: { onSuspicious: (ev) => events.push(ev.kind) },
    });
    denied(
      await e.verify(ref('j'), input({ authorization: `Bearer ${await sign(k1, 'RS256')}` })),
      400,
      'error.bad.input.algorithm.name',
    );
    denied(
      await e.verify(ref('j'), input({ authorization: `Bearer ${await sign(ek, 'ES256', 'k1')}` })),
      400,
      'error.bad.input.algorithm.name',
    );
    const forged = await new jose.SignJWT({}).setProtectedHeader({ alg: 'HS256', kid: 'k1' }).sign(enc.encode('x'));
    denied(
      await e.verify(ref('j'), input({ authorization: `Bearer ${forged}` })),
      400,
      'error.bad.input.algorithm.name',
    );
    assert.deepEqual(events, ['jwt_alg_confusion']);
    const other = await new jose.SignJWT({}).setProtectedHeader({ alg: 'RS256', kid: 'k1' }).sign(k2.privateKey);
    denied(await e.verify(ref('j'), input({ authorization: `Bearer ${other}` })), 400, 'error.bad.token');
    e.close();
  });

  test('a JWKS server that never answers fails within the timeout', async () => {
    const warnings: string[] = [];
    const e = new JwtEngine([verifier('j', jwks(`${url}/hang`, { timeout: 300 }))], {
      logger: { warn: (_o, m) => warnings.push(m) },
    });
    const t = await sign(k1, 'RS256', 'k1');
    const start = performance.now();
    denied(await e.verify(ref('j'), input({ authorization: `Bearer ${t}` })), 400, 'error.bad.input.algorithm.name');
    const took = performance.now() - start;
    assert.ok(took >= 250 && took < 1500, `took ${took} ms`);
    assert.ok(warnings.includes('jwt verifier: JWKS fetch failed'));
    // within the cooldown a second request does not wait for another timeout
    const s2 = performance.now();
    denied(await e.verify(ref('j'), input({ authorization: `Bearer ${t}` })), 400, 'error.bad.input.algorithm.name');
    assert.ok(performance.now() - s2 < 100);
    // fetchTimeoutMs caps the verifier's timeout
    const e2 = new JwtEngine([verifier('j', jwks(`${url}/hang`, { timeout: 5000 }))], { fetchTimeoutMs: 200 });
    const s3 = performance.now();
    denied(await e2.verify(ref('j'), input({ authorization: `Bearer ${t}` })), 400, 'error.bad.input.algorithm.name');
    assert.ok(performance.now() - s3 < 1000);
    e.close();
    e2.close();
  });
});

describe('strategies', () => {
  test('Sign re-signs the payload with the output key, in the same header with the remove prefix', async () => {
    const e = new JwtEngine([
      verifier('s', hs(256), {
        strategy: {
          type: 'Sign',
          verificationSettings: { fields: {}, arrayFields: {} },
          algoSettings: {
            type: 'RSAlgoSettings',
            size: 256,
            publicKey: rsaOut.publicPem,
            privateKey: rsaOut.privatePem,
          },
        },
      }),
    ]);
    const t = await signHs({ sub: 'bob', exp: nowSec() + 60 });
    const o = passed(await e.verify(ref('s'), input({ authorization: `Bearer ${t}` })));
    const h = o.mutation.upstreamHeaders['authorization'] ?? '';
    assert.ok(h.startsWith('Bearer '));
    const out = h.slice('Bearer '.length);
    const v = await jose.jwtVerify(out, rsaOut.publicKey, { algorithms: ['RS256'] });
    assert.equal(v.payload['sub'], 'bob');
    assert.equal(v.protectedHeader.typ, 'JWT');
    assert.deepEqual(o.mutation.removeUpstreamHeaders, []);
    // cached: same output for the same token
    const o2 = passed(await e.verify(ref('s'), input({ authorization: `Bearer ${t}` })));
    assert.equal(o2.mutation.upstreamHeaders['authorization'], h);
  });

  test('Sign from a cookie rewrites the cookie; from a query param injects nothing', async () => {
    const signWith: JwtStrategy = {
      type: 'Sign',
      verificationSettings: { fields: {}, arrayFields: {} },
      algoSettings: hs(512, 'out'),
    };
    const e = new JwtEngine([
      verifier('c', hs(256), { source: { type: 'InCookie', name: 'jwt' }, strategy: signWith }),
      verifier('q', hs(256), { source: { type: 'InQueryParam', name: 'jwt' }, strategy: signWith }),
    ]);
    const t = await signHs({ sub: 'bob' });
    const o = passed(await e.verify(ref('c'), input({ cookie: `a=1; jwt=${t}; b=2` })));
    const cookie = o.mutation.upstreamHeaders['cookie'] ?? '';
    const m = /^a=1; jwt=([^;]+); b=2$/.exec(cookie);
    assert.ok(m, cookie);
    await jose.jwtVerify(m[1] ?? '', enc.encode('out'), { algorithms: ['HS512'] });
    const q = passed(await e.verify(ref('q'), input({}, '/', `jwt=${t}`)));
    assert.deepEqual(q.mutation, { upstreamHeaders: {}, removeUpstreamHeaders: [], responseHeaders: {} });
  });

  test(
    'Transform maps / adds / removes claims, signs, ' + 'writes the location header and removes the source header',
    async () => {
      const e = new JwtEngine([
        verifier('t', hs(256), {
          strategy: {
            type: 'Transform',
            verificationSettings: { fields: {}, arrayFields: {} },
            algoSettings: { type: 'ESAlgoSettings', size: 256, publicKey: ec.publicPem, privateKey: ec.privatePem },
            transformSettings: {
              location: { type: 'InHeader', name: 'X-Backend-Token', remove: '' },
              mappingSettings: {
                map: { name: 'MyNameIs', sub: 'user' },
                values: {
                  foo: 123,
                  who: 'user-${token.sub}',
                  fallback: '${token.missing:dflt}',
                  nope: '${token.missing}',
                  gone: null,
                  other: '${req.path}',
                },
                remove: ['secret'],
              },
            },
          },
        }),
      ]);
      const t = await signHs({ sub: 'bob', name: 'Bob', secret: 's3cr3t', keep: true, nul: 'null' });
      const o = passed(await e.verify(ref('t'), input({ authorization: `Bearer ${t}` })));
      assert.deepEqual(o.mutation.removeUpstreamHeaders, ['authorization']);
      const out = o.mutation.upstreamHeaders['x-backend-token'] ?? '';
      const v = await jose.jwtVerify(out, ec.publicKey, { algorithms: ['ES256'] });
      assert.deepEqual(v.payload, {
        user: 'bob',
        MyNameIs: 'Bob',
        keep: true,
        foo: 123,
        who: 'user-bob',
        fallback: 'dflt',
        nope: 'no-token-missing',
        other: 'bad-expr',
      });
      assert.equal(o.claims['name'], 'Bob', 'claims are the verified input claims');
    },
  );

  test('transformClaims: expressions', () => {
    const out = transformClaims(
      { a: 'x-y', n: 3, arr: [1, 2] },
      {
        map: {},
        values: { r: "${token.a.replace('-', '+')}", alt: '${token.zz|token.n}', j: '${token.arr}', keep: 'plain' },
        remove: [],
      },
    );
    assert.deepEqual(out, { a: 'x-y', n: 3, arr: [1, 2], r: 'x+y', alt: '3', j: '[1,2]', keep: 'plain' });
  });
});

describe('model builder', () => {
  function objects(file: string): StoredObject[] {
    const { objects: objs, errors } = parseYamlFile(file, readFileSync(path.join(FIX, file), 'utf8'), 0);
    assert.deepEqual(errors, []);
    return objs;
  }

  test('the spec example CRD builds (and verifies)', async () => {
    const [a, b] = objects('verifier.yaml');
    const r = buildJwtVerifier(a!);
    assert.deepEqual(
      r.errors.filter((x) => x.severity === 'error'),
      [],
    );
    assert.ok(r.verifier);
    assert.equal(r.verifier.id, 'kubernetes-crd-import-default-http-app-verifier');
    assert.equal(r.verifier.name, 'http-app-verifier');
    assert.equal(r.verifier.strict, true);
    assert.deepEqual(r.verifier.source, { type: 'InHeader', name: 'jwt', remove: '' });
    assert.deepEqual(r.verifier.algoSettings, { type: 'HSAlgoSettings', size: 512, secret: 'secret', base64: false });
    assert.deepEqual(r.verifier.strategy, {
      type: 'PassThrough',
      verificationSettings: { fields: { foo: 'bar' }, arrayFields: {} },
    });
    const e = new JwtEngine([r.verifier]);
    const t = await signHs({ foo: 'bar' }, 'secret', 'HS512');
    passed(await e.verify(ref(r.verifier.id), input({ jwt: t })));
    denied(
      await e.verify(ref(r.verifier.id), input({ jwt: await signHs({ foo: 'baz' }, 'secret', 'HS512') })),
      400,
      'error.bad.token',
    );

    const r2 = buildJwtVerifier(b!);
    assert.ok(r2.verifier, JSON.stringify(r2.errors));
    assert.equal(r2.verifier.id, 'my-verifier');
    assert.equal(r2.verifier.strict, false, 'reader default strict=false');
    assert.deepEqual(r2.verifier.algoSettings, {
      type: 'JWKSAlgoSettings',
      url: 'https://idp.example.com/.well-known/jwks.json',
      headers: { 'x-api': 'k' },
      timeout: 2000,
      ttl: 3600000,
      kty: 'RSA',
    });
    assert.deepEqual(r2.verifier.strategy.verificationSettings, { fields: {}, arrayFields: {} });
    assert.ok(r2.errors.some((x) => x.severity === 'warning' && x.field === 'spec.strategy.verificationSettings'));
    assert.equal(r2.errors[0]?.namespace, 'apps');
    assert.equal(r2.errors[0]?.kind, 'JwtVerifier');
  });

  test('a bad PEM is an error naming the field', () => {
    const [o] = objects('bad-pem.yaml');
    const r = buildJwtVerifier(o!);
    assert.equal(r.verifier, undefined);
    const e = r.errors.find((x) => x.severity === 'error');
    assert.equal(e?.code, 'OXDS_INVALID_FIELD');
    assert.equal(e?.field, 'spec.algoSettings.publicKey');
    assert.equal(e?.name, 'bad-pem');
    assert.equal(e?.file, 'bad-pem.yaml');
  });

  test('a missing secret (and a Sign key without private key) are errors naming the fields', () => {
    const [o] = objects('missing-secret.yaml');
    const r = buildJwtVerifier(o!);
    assert.equal(r.verifier, undefined);
    const fields = r.errors.filter((x) => x.severity === 'error').map((x) => `${x.code} ${x.field}`);
    assert.ok(fields.includes('OXDS_MISSING_FIELD spec.algoSettings.secret'), fields.join('\n'));
    assert.ok(fields.includes('OXDS_INVALID_FIELD spec.strategy.algoSettings.publicKey'), fields.join('\n'));
  });

  test('field-level checks: sizes, curves, expressions, sign keys, unsupported kinds', () => {
    const so = (spec: unknown): StoredObject => ({
      key: 'JwtVerifier/default/x',
      object: { apiVersion: 'proxy.otoroshi.io/v1alpha1', kind: 'JwtVerifier', metadata: { name: 'x' }, spec },
      origin: { seq: 0 },
    });
    const base = {
      source: { type: 'InHeader', name: 'X-JWT', remove: '' },
      strategy: { type: 'PassThrough', verificationSettings: { fields: {}, arrayFields: {} } },
    };
    const errFields = (spec: unknown): string[] =>
      buildJwtVerifier(so(spec))
        .errors.filter((x) => x.severity === 'error')
        .map((x) => x.field ?? '');
    assert.deepEqual(errFields({ ...base, algoSettings: { type: 'HSAlgoSettings', size: 128, secret: 's' } }), [
      'spec.algoSettings.size',
    ]);
    assert.deepEqual(
      errFields({ ...base, algoSettings: { type: 'HSAlgoSettings', size: 256, secret: '${env.SECRET}' } }),
      ['spec.algoSettings.secret'],
    );
    assert.deepEqual(
      errFields({ ...base, algoSettings: { type: 'ESAlgoSettings', size: 384, publicKey: ec.publicPem } }),
      ['spec.algoSettings.publicKey'],
    );
    assert.deepEqual(
      errFields({ ...base, algoSettings: { type: 'RSAlgoSettings', size: 256, publicKey: ec.publicPem } }),
      ['spec.algoSettings.publicKey'],
    );
    assert.deepEqual(
      errFields({
        ...base,
        algoSettings: { type: 'RSAlgoSettings', size: 256, publicKey: rsa.publicPem, privateKey: 'garbage' },
      }),
      ['spec.algoSettings.privateKey'],
    );
    assert.deepEqual(errFields({ ...base, algoSettings: { type: 'KidAlgoSettings' } }), ['spec.algoSettings.type']);
    assert.deepEqual(errFields({ ...base, algoSettings: { type: 'JWKSAlgoSettings' } }), ['spec.algoSettings.url']);
    assert.deepEqual(
      errFields({
        ...base,
        source: { type: 'InHeader', name: 'X', remove: '(' },
        algoSettings: { type: 'HSAlgoSettings', size: 256, secret: 's' },
      }),
      ['spec.source.remove'],
    );
    assert.deepEqual(
      errFields({ ...base, source: undefined, algoSettings: { type: 'HSAlgoSettings', size: 256, secret: 's' } }),
      ['spec.source'],
    );
    assert.deepEqual(
      errFields({
        ...base,
        algoSettings: { type: 'HSAlgoSettings', size: 256, secret: 's' },
        strategy: {
          type: 'Sign',
          verificationSettings: { fields: {}, arrayFields: {} },
          algoSettings: { type: 'JWKSAlgoSettings', url: 'https://x' },
        },
      }),
      ['spec.strategy.algoSettings.type'],
    );
    assert.deepEqual(
      errFields({
        ...base,
        algoSettings: { type: 'HSAlgoSettings', size: 256, secret: 's' },
        strategy: {
          type: 'Sign',
          verificationSettings: { fields: {}, arrayFields: {} },
          algoSettings: { type: 'RSAlgoSettings', size: 256, publicKey: rsa.publicPem },
        },
      }),
      ['spec.strategy.algoSettings.privateKey'],
    );
    // source.remove missing: lenient ("" + warning); bare base64 keys are normalised to PEM
    const bare = rsa.publicPem.replace(/-----[A-Z ]+-----/g, '').replace(/\s+/g, '');
    const r = buildJwtVerifier(
      so({
        ...base,
        source: { type: 'InHeader', name: 'X-JWT' },
        algoSettings: { type: 'RSAlgoSettings', size: 256, publicKey: bare },
      }),
    );
    assert.ok(r.verifier);
    assert.deepEqual(r.verifier.source, { type: 'InHeader', name: 'X-JWT', remove: '' });
    assert.ok(
      r.verifier.algoSettings.type === 'RSAlgoSettings' &&
        r.verifier.algoSettings.publicKey.startsWith('-----BEGIN PUBLIC KEY-----'),
    );
    assert.ok(r.errors.some((x) => x.severity === 'warning' && x.field === 'spec.source.remove'));
  });

  test('localJwtVerifier: id local:<descriptorId>, field prefix', () => {
    const spec = {
      type: 'local',
      enabled: true,
      strict: true,
      source: { type: 'InHeader', name: 'Authorization', remove: 'Bearer ' },
      algoSettings: { type: 'HSAlgoSettings', size: 256, secret: 'secret' },
      strategy: { type: 'PassThrough', verificationSettings: { fields: { iss: 'x' }, arrayFields: {} } },
    };
    const r = localJwtVerifier('svc-1', 'apps', 'ServiceDescriptor/apps/svc', spec, 'spec.jwtVerifier');
    assert.ok(r.verifier);
    assert.equal(r.verifier.id, 'local:svc-1');
    assert.equal(r.verifier.namespace, 'apps');
    assert.equal(r.verifier.strict, true);
    const bad = localJwtVerifier(
      'svc-1',
      'apps',
      'ServiceDescriptor/apps/svc',
      { ...spec, algoSettings: { type: 'HSAlgoSettings', size: 256 } },
      'spec.jwtVerifier',
    );
    assert.equal(bad.verifier, undefined);
    assert.equal(bad.errors[0]?.field, 'spec.jwtVerifier.algoSettings.secret');
    assert.equal(bad.errors[0]?.kind, 'ServiceDescriptor');
    assert.equal(bad.errors[0]?.name, 'svc');
  });
});

describe('apikey JWT (§7.2) and decodeUnverifiedClaims', () => {
  const now = 1_700_000_000_000;
  const s = now / 1000;
  const opts = { nowMs: now, leewaySec: 10, allowedAlgs: ['HS256', 'HS384', 'HS512'] as const };

  test('HS-signed with the clientSecret; exp/nbf/iat only when present', async () => {
    assert.deepEqual(await verifyApikeyJwt(await signHs({ clientId: 'c' }, 'sec'), 'sec', opts), {
      ok: true,
      claims: { clientId: 'c' },
    });
    assert.equal((await verifyApikeyJwt(await signHs({ clientId: 'c' }, 'sec', 'HS512'), 'sec', opts)).ok, true);
    assert.equal((await verifyApikeyJwt(await signHs({ clientId: 'c' }, 'other'), 'sec', opts)).ok, false);
    assert.equal(
      (
        await verifyApikeyJwt(await signHs({ clientId: 'c' }, 'sec', 'HS384'), 'sec', {
          ...opts,
          allowedAlgs: ['HS256'],
        })
      ).ok,
      false,
    );
    assert.equal((await verifyApikeyJwt(new jose.UnsecuredJWT({ clientId: 'c' }).encode(), 'sec', opts)).ok, false);
    assert.equal((await verifyApikeyJwt(await signHs({ exp: s - 11 }, 'sec'), 'sec', opts)).ok, false);
    assert.equal((await verifyApikeyJwt(await signHs({ exp: s - 9 }, 'sec'), 'sec', opts)).ok, true);
    assert.equal((await verifyApikeyJwt(await signHs({ nbf: s + 11 }, 'sec'), 'sec', opts)).ok, false);
    assert.equal((await verifyApikeyJwt(await signHs({ iat: s + 11 }, 'sec'), 'sec', opts)).ok, false);
    assert.equal(
      (await verifyApikeyJwt(await signHs({ exp: 'soon' } as unknown as jose.JWTPayload, 'sec'), 'sec', opts)).ok,
      false,
    );
    assert.equal((await verifyApikeyJwt('a.b', 'sec', opts)).ok, false);
  });

  test('maxJwtLifespanSecs and xsrfToken', async () => {
    const m = { ...opts, maxJwtLifespanSecs: 60 };
    assert.equal((await verifyApikeyJwt(await signHs({ iat: s, exp: s + 60 }, 'sec'), 'sec', m)).ok, true);
    assert.equal((await verifyApikeyJwt(await signHs({ iat: s, exp: s + 61 }, 'sec'), 'sec', m)).ok, false);
    const r = await verifyApikeyJwt(await signHs({ exp: s + 30 }, 'sec'), 'sec', m);
    assert.ok(!r.ok && /iat/.test(r.reason));
    const x = await signHs({ xsrfToken: 'tok' }, 'sec');
    assert.equal((await verifyApikeyJwt(x, 'sec', { ...opts, xsrfHeader: 'tok' })).ok, true);
    assert.equal((await verifyApikeyJwt(x, 'sec', { ...opts, xsrfHeader: 'nope' })).ok, false);
    assert.equal((await verifyApikeyJwt(x, 'sec', opts)).ok, false);
  });

  test('decodeUnverifiedClaims', async () => {
    assert.deepEqual(decodeUnverifiedClaims(await signHs({ clientId: 'c' })), { clientId: 'c' });
    assert.equal(decodeUnverifiedClaims('a.b'), undefined);
    assert.equal(decodeUnverifiedClaims('a.b.c.d'), undefined);
    assert.equal(decodeUnverifiedClaims('!!.@@.##'), undefined);
    assert.equal(decodeUnverifiedClaims(`x.${Buffer.from('[1]').toString('base64url')}.y`), undefined);
    assert.equal(decodeUnverifiedClaims(undefined as unknown as string), undefined);
  });
});

test('speed: verify() HS256 with a cached key', async () => {
  const e = new JwtEngine([
    verifier('v', hs(256), {
      strategy: { type: 'PassThrough', verificationSettings: { fields: { iss: 'oto' }, arrayFields: {} } },
    }),
  ]);
  const t = await signHs({ iss: 'oto', sub: 'bob', exp: nowSec() + 3600 });
  const inp = input({ authorization: `Bearer ${t}` });
  const r = ref('v');
  for (let i = 0; i < 2000; i++) passed(await e.verify(r, inp));
  const n = 20000;
  const start = process.hrtime.bigint();
  for (let i = 0; i < n; i++) await e.verify(r, inp);
  const us = Number(process.hrtime.bigint() - start) / 1000 / n;
  const apikeyStart = process.hrtime.bigint();
  for (let i = 0; i < n; i++)
    await verifyApikeyJwt(t, 'secret', { nowMs: Date.now(), leewaySec: 10, allowedAlgs: ['HS256'] });
  const usApikey = Number(process.hrtime.bigint() - apikeyStart) / 1000 / n;
  console.log(
    `# JwtEngine.verify HS256 (cached key): ${us.toFixed(1)}` +
      ` µs/op; verifyApikeyJwt HS256: ${usApikey.toFixed(1)} µs/op`,
  );
  assert.ok(us < 1000);
});
