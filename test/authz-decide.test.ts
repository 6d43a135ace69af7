// ext_authz policy decisions (otoroshi-model.md §4.3, §4.5, §7, §10, §11; DECISIONS 11–14).
import { test } from 'vitest';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { createHmac } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { parseYamlFile } from '../src/sources/yaml.js';
import { buildModel } from '../src/model/build.js';
import type { ApiKeyQuotas, BuildResult, Model } from '../src/model/types.js';
import { buildPolicy } from '../src/authz/policy.js';
import { Authorizer, type JwtEngineLike, type JwtOutcome } from '../src/authz/decide.js';
import { errorResponse, wantsHtml, type Deny } from '../src/authz/errors.js';
import { SECRET_SLOT, secretDigest, secretMatches } from '../src/authz/apikey.js';
import {
  QuotaStoreUnavailableError,
  type CheckInput,
  type Decision,
  type QuotaResult,
  type QuotaStore,
} from '../src/authz/types.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const FIXTURE = fs.readFileSync(path.join(ROOT, 'test', 'fixtures', 'authz', 'base.yaml'), 'utf8');
const NOW = Date.parse('2024-06-01T12:00:00Z');

function build(yaml: string): BuildResult {
  const parsed = parseYamlFile('t.yaml', yaml, 0);
  return buildModel({ objects: parsed.objects, loadErrors: parsed.errors });
}
const BASE = build(FIXTURE);

/** In-memory QuotaStore with an injectable clock (fixed 10 s window, daily/monthly counters). */
class FakeQuota implements QuotaStore {
  counts = new Map<string, { window: number; windowStart: number; daily: number; monthly: number }>();
  down = false;
  consumed = 0;
  constructor(public clock: () => number = () => NOW) {}
  private get(id: string, now: number): { window: number; windowStart: number; daily: number; monthly: number } {
    let c = this.counts.get(id);
    if (c === undefined) {
      c = { window: 0, windowStart: now, daily: 0, monthly: 0 };
      this.counts.set(id, c);
    }
    if (now - c.windowStart >= 10_000) {
      c.window = 0;
      c.windowStart = now;
    }
    return c;
  }
  async consume(clientId: string, q: ApiKeyQuotas, nowMs: number): Promise<QuotaResult> {
    if (this.down) throw new QuotaStoreUnavailableError('down');
    const c = this.get(clientId, nowMs);
    const base = { windowCalls: c.window, degraded: false };
    if (c.window >= q.throttlingQuota * 10)
      return {
        allowed: false,
        exceeded: 'throttling',
        dailyRemaining: q.dailyQuota - c.daily,
        monthlyRemaining: q.monthlyQuota - c.monthly,
        ...base,
      };
    if (c.daily >= q.dailyQuota)
      return {
        allowed: false,
        exceeded: 'daily',
        dailyRemaining: 0,
        monthlyRemaining: q.monthlyQuota - c.monthly,
        ...base,
      };
    if (c.monthly >= q.monthlyQuota)
      return {
        allowed: false,
        exceeded: 'monthly',
        dailyRemaining: q.dailyQuota - c.daily,
        monthlyRemaining: 0,
        ...base,
      };
    c.window++;
    c.daily++;
    c.monthly++;
    this.consumed++;
    return {
      allowed: true,
      dailyRemaining: q.dailyQuota - c.daily,
      monthlyRemaining: q.monthlyQuota - c.monthly,
      windowCalls: c.window,
      degraded: false,
    };
  }
  async peek(clientId: string, q: ApiKeyQuotas, nowMs: number): Promise<Omit<QuotaResult, 'allowed' | 'exceeded'>> {
    const c = this.get(clientId, nowMs);
    return {
      dailyRemaining: q.dailyQuota - c.daily,
      monthlyRemaining: q.monthlyQuota - c.monthly,
      windowCalls: c.window,
      degraded: false,
    };
  }
  async close(): Promise<void> {}
}

interface Setup {
  az: Authorizer;
  quota: FakeQuota;
  suspicious: { kind: string; detail: string }[];
  internal: string[];
}
function setup(model: Model = BASE.model, extra: { jwt?: JwtEngineLike; now?: number } = {}): Setup {
  const quota = new FakeQuota();
  const suspicious: { kind: string; detail: string }[] = [];
  const internal: string[] = [];
  const opts: ConstructorParameters<typeof Authorizer>[0] = {
    quota,
    now: () => extra.now ?? NOW,
    hooks: {
      onSuspicious: (e) => {
        suspicious.push(e);
        if (e.kind === 'internal_error') internal.push(e.detail);
      },
    },
  };
  if (extra.jwt !== undefined) opts.jwt = extra.jwt;
  const az = new Authorizer(opts);
  az.setPolicy(buildPolicy(model));
  return { az, quota, suspicious, internal };
}

function req(
  host: string,
  p: string,
  headers: Record<string, string> = {},
  more: Partial<CheckInput> = {},
): CheckInput {
  const q = p.indexOf('?');
  return {
    method: 'GET',
    host,
    path: q >= 0 ? p.slice(0, q) : p,
    query: q >= 0 ? p.slice(q + 1) : '',
    headers,
    contextExtensions: {},
    ...more,
  };
}
const custom = (id: string, secret: string): Record<string, string> => ({
  'otoroshi-client-id': id,
  'otoroshi-client-secret': secret,
});
const basic = (v: string): string => `Basic ${Buffer.from(v).toString('base64')}`;

function hs256(claims: Record<string, unknown>, secret: string, alg = 'HS256'): string {
  const enc = (o: unknown): string => Buffer.from(JSON.stringify(o)).toString('base64url');
  const head = `${enc({ alg, typ: 'JWT' })}.${enc(claims)}`;
  const hash = alg === 'HS512' ? 'sha512' : alg === 'HS384' ? 'sha384' : 'sha256';
  const sig = alg === 'none' ? '' : createHmac(hash, secret).update(head).digest('base64url');
  return `${head}.${sig}`;
}

function denied(d: Decision): Deny {
  assert.equal(d.allow, false, `expected a deny, got ${JSON.stringify(d)}`);
  return d as Deny;
}
function expectDeny(d: Decision, status: number, message: string, code?: string): Deny {
  const x = denied(d);
  assert.equal(x.status, status, `status (${x.message})`);
  assert.equal(x.message, message);
  if (code !== undefined) assert.equal(x.code, code);
  return x;
}
function allowed(d: Decision): Extract<Decision, { allow: true }> {
  assert.equal(d.allow, true, `expected an allow, got ${JSON.stringify(d)}`);
  return d as Extract<Decision, { allow: true }>;
}

// ------------------------------------------------------------------ model

test('model: the fixture builds without errors; policy fields have their defaults', () => {
  const bad = BASE.statuses.filter((s) => s.state !== 'valid');
  assert.deepEqual(
    bad.map((s) => [s.key, s.errors]),
    [],
  );
  const api = BASE.model.descriptors.find((d) => d.id === 'api');
  assert.ok(api);
  assert.equal(api.apiKeyConstraints?.jwtAuth.secretSigned, true);
  assert.deepEqual(api.restrictions, { enabled: false, allowLast: true, allowed: [], forbidden: [], notFound: [] });
  assert.deepEqual(api.jwtVerifier, { enabled: false, ids: [], excludedPatterns: [] });
  const gold = BASE.model.descriptors.find((d) => d.id === 'gold');
  assert.equal(gold?.apiKeyConstraints?.customHeadersAuth.clientIdHeaderName, 'X-Id');
  const krot = BASE.model.apikeys.find((k) => k.clientId === 'krot');
  assert.deepEqual(krot?.rotation, { enabled: true, rotationEvery: 744, gracePeriod: 168, nextSecret: 'newsecret' });
  assert.equal(BASE.model.apikeys.find((k) => k.clientId === 'kro')?.restrictions?.forbidden.length, 1);
});

test('model: a partial apiKeyConstraints block keeps its parts, defaults the rest, and warns', () => {
  const r = build(`apiVersion: proxy.otoroshi.io/v1alpha1
kind: ServiceDescriptor
metadata: {name: p}
spec:
  hosts: [p.example.com]
  targets: [{url: "http://10.0.0.1"}]
  apiKeyConstraints: {jwtAuth: {enabled: false}}
`);
  const d = r.model.descriptors[0];
  assert.equal(d?.apiKeyConstraints?.jwtAuth.enabled, false);
  assert.equal(d?.apiKeyConstraints?.basicAuth.enabled, true);
  const w = r.statuses.flatMap((s) => s.errors).filter((e) => e.field === 'spec.apiKeyConstraints');
  assert.equal(w.length, 1);
  assert.equal(w[0]?.severity, 'warning');
});

test(
  'model: jwtVerifier refs resolve by id or name; an unknown id of an enabled ref ' + 'invalidates the descriptor',
  () => {
    const jv = `apiVersion: proxy.otoroshi.io/v1alpha1
kind: JwtVerifier
metadata: {name: my-verifier, annotations: {otoroshi.io/id: jv1}}
spec:
  strict: true
  source: {type: InHeader, name: X-JWT, remove: ''}
  algoSettings: {type: HSAlgoSettings, size: 256, secret: s3cr3t}
  strategy: {type: PassThrough, verificationSettings: {fields: {}, arrayFields: {}}}
---
`;
    const sd = (name: string, ref: string): string => `apiVersion: proxy.otoroshi.io/v1alpha1
kind: ServiceDescriptor
metadata: {name: ${name}}
spec:
  hosts: [${name}.example.com]
  targets: [{url: "http://10.0.0.1"}]
  jwtVerifier: ${ref}
---
`;
    const r = build(
      jv +
        sd('byid', '{type: ref, enabled: true, ids: [jv1]}') +
        sd('byname', '{enabled: true, id: my-verifier, excludedPatterns: ["/health"]}') +
        sd('unknown', '{enabled: true, ids: [nope]}') +
        sd('off', '{enabled: false, ids: [nope]}'),
    );
    const d = (n: string) => r.model.descriptors.find((x) => x.name === n);
    assert.deepEqual(d('byid')?.jwtVerifier, { enabled: true, ids: ['jv1'], excludedPatterns: [] });
    assert.deepEqual(d('byname')?.jwtVerifier, { enabled: true, ids: ['jv1'], excludedPatterns: ['/health'] });
    assert.equal(d('unknown'), undefined);
    const st = r.statuses.find((s) => s.key === 'ServiceDescriptor/default/unknown');
    assert.equal(st?.state, 'invalid');
    assert.equal(st?.errors[0]?.code, 'OXDS_UNRESOLVED_REFERENCE');
    assert.equal(r.statuses.find((s) => s.key === 'ServiceDescriptor/default/off')?.state, 'valid');
    assert.deepEqual(
      r.model.jwtVerifiers?.map((v) => v.id),
      ['jv1'],
    );
  },
);

test('model: an inline local jwtVerifier becomes local:<descriptorId> in model.jwtVerifiers', () => {
  const r = build(`apiVersion: proxy.otoroshi.io/v1alpha1
kind: ServiceDescriptor
metadata: {name: loc, annotations: {otoroshi.io/id: loc}}
spec:
  hosts: [loc.example.com]
  targets: [{url: "http://10.0.0.1"}]
  jwtVerifier:
    type: local
    enabled: true
    strict: true
    source: {type: InHeader, name: X-JWT, remove: ''}
    algoSettings: {type: HSAlgoSettings, size: 256, secret: s3cr3t}
    strategy: {type: PassThrough, verificationSettings: {fields: {}, arrayFields: {}}}
`);
  assert.deepEqual(
    r.statuses.flatMap((s) => s.errors).filter((e) => e.severity === 'error'),
    [],
  );
  assert.deepEqual(r.model.descriptors[0]?.jwtVerifier, { enabled: true, ids: ['local:loc'], excludedPatterns: [] });
  assert.deepEqual(
    r.model.jwtVerifiers?.map((v) => v.id),
    ['local:loc'],
  );
});

test('model: restriction paths that do not compile are errors; a JS-incompatible public pattern is refused', () => {
  const r = build(`apiVersion: proxy.otoroshi.io/v1alpha1
kind: ServiceDescriptor
metadata: {name: r}
spec:
  hosts: [r.example.com]
  targets: [{url: "http://10.0.0.1"}]
  restrictions: {enabled: true, forbidden: [{method: GET, path: "/(unclosed"}]}
`);
  assert.equal(r.statuses[0]?.state, 'invalid');
  assert.equal(r.statuses[0]?.errors[0]?.field, 'spec.restrictions.forbidden[0].path');
});

// ------------------------------------------------------------------ descriptor choice (§4.3)

test('404 Service not found for an unknown host; 404 invalid host for an unparsable one', async () => {
  const { az } = setup();
  expectDeny(await az.check(req('nope.example.com', '/')), 404, 'Service not found', 'errors.service.not.found');
  expectDeny(await az.check(req('a:b:c', '/')), 404, 'Service not found: invalid host');
});

test(
  'context_extensions.descriptor_id picks the descriptor; an unknown id is denied ' + '(no fall back to host matching)',
  async () => {
    const { az } = setup();
    // host says `other`, extension says `strict` (public, readOnly, headersVerification)
    expectDeny(
      await az.check(req('other.example.com', '/', {}, { contextExtensions: { descriptor_id: 'strict' } })),
      400,
      'Missing header(s)',
    );
    const d = expectDeny(
      await az.check(req('other.example.com', '/', {}, { contextExtensions: { descriptor_id: 'ghost' } })),
      404,
      'Service not found',
    );
    assert.equal(d.descriptorId, undefined);
  },
);

test('host matching strips the port, is case-insensitive, and * wildcards match any depth', async () => {
  const { az } = setup();
  assert.equal(denied(await az.check(req('API.example.com:8443', '/x'))).descriptorId, 'api');
  const h = { 'x-tenant': 'acme' };
  assert.equal(allowed(await az.check(req('a.b.strict.example.com', '/', h))).descriptorId, 'strict');
  expectDeny(await az.check(req('strict.example.com', '/', h)), 404, 'Service not found');
});

test('disabled descriptor named by context_extensions: 503 Service unavailable', async () => {
  const m = structuredClone(BASE.model);
  const other = m.descriptors.find((d) => d.id === 'other');
  assert.ok(other);
  other.enabled = false;
  const { az } = setup(m);
  expectDeny(
    await az.check(req('other.example.com', '/', {}, { contextExtensions: { descriptor_id: 'other' } })),
    503,
    'Service unavailable',
  );
  expectDeny(await az.check(req('other.example.com', '/')), 404, 'Service not found');
});

test('routing constraints choose among matching descriptors; longest path first', async () => {
  const { az } = setup();
  // gold (/api, oneTagIn gold, custom header names X-Id/X-Secret) vs plain (/)
  const gold = allowed(await az.check(req('shop.example.com', '/api/x', { 'x-id': 'kgold', 'x-secret': 'sgold' })));
  assert.equal(gold.descriptorId, 'gold');
  // Basic: both descriptors read it (gold renamed its custom headers)
  const silver = allowed(
    await az.check(req('shop.example.com', '/api/x', { authorization: basic('ksilver:ssilver') })),
  );
  assert.equal(silver.descriptorId, 'plain');
  assert.equal(
    allowed(await az.check(req('shop.example.com', '/other', custom('kgold', 'sgold')))).descriptorId,
    'plain',
  );
});

test(
  'routing mismatch on the chosen descriptor: 401 (Bad API key for headers, ' + 'Invalid API key for clientId-only)',
  async () => {
    const { az } = setup();
    const ctx = { contextExtensions: { descriptor_id: 'gold' } };
    expectDeny(
      await az.check(req('shop.example.com', '/api', { 'x-id': 'ksilver', 'x-secret': 'ssilver' }, ctx)),
      401,
      'Bad API key',
      'errors.bad.api.key',
    );
  },
);

// ------------------------------------------------------------------ pipeline before auth (§4.5)

test('headersVerification: 400 Missing header(s) unless every header equals its value', async () => {
  const { az } = setup();
  expectDeny(
    await az.check(req('x.strict.example.com', '/', { 'x-tenant': 'other' })),
    400,
    'Missing header(s)',
    'errors.missing.headers',
  );
  allowed(await az.check(req('x.strict.example.com', '/', { 'x-tenant': 'acme' })));
});

test('descriptor readOnly: 405 for non GET/HEAD/OPTIONS', async () => {
  const { az } = setup();
  const h = { 'x-tenant': 'acme' };
  expectDeny(
    await az.check(req('x.strict.example.com', '/', h, { method: 'POST' })),
    405,
    'Method not allowed. Can only handle GET, HEAD, OPTIONS',
    'errors.method.not.allowed',
  );
  allowed(await az.check(req('x.strict.example.com', '/', h, { method: 'OPTIONS' })));
});

test('descriptor restrictions: notFound 404 and forbidden 403 with empty body, not allowed 404', async () => {
  const { az } = setup();
  const k = custom('key1', 'secret1');
  const nf = expectDeny(
    await az.check(req('restricted.example.com', '/ok/hidden', k)),
    404,
    'Not Found',
    'errors.not.found',
  );
  assert.equal(nf.emptyBody, true);
  const fb = expectDeny(
    await az.check(req('restricted.example.com', '/ok/admin/x', k)),
    403,
    'Forbidden',
    'errors.forbidden',
  );
  assert.equal(fb.emptyBody, true);
  expectDeny(await az.check(req('restricted.example.com', '/elsewhere', k)), 404, 'Not Found');
  expectDeny(await az.check(req('restricted.example.com', '/ok', k, { method: 'POST' })), 404, 'Not Found');
  allowed(await az.check(req('restricted.example.com', '/both', k, { method: 'DELETE' })));
  allowed(await az.check(req('restricted.example.com', '/ok/fine', k)));
  // before authentication: no key needed to get the 403
  expectDeny(await az.check(req('restricted.example.com', '/ok/admin')), 403, 'Forbidden');
});

// ------------------------------------------------------------------ public / private

test('public patterns allow without a key; private patterns win over public ones; query is ignored', async () => {
  const { az, quota } = setup();
  const a = allowed(await az.check(req('api.example.com', '/public/doc?x=1')));
  assert.equal(a.reason, 'public');
  assert.equal(a.clientId, undefined);
  assert.equal(quota.consumed, 0);
  expectDeny(await az.check(req('api.example.com', '/public/secret/x')), 400, 'No ApiKey provided');
  expectDeny(await az.check(req('api.example.com', '/private')), 400, 'No ApiKey provided', 'errors.no.api.key');
});

test('public route strips spoofed Otoroshi-Client-Id / secret headers upstream', async () => {
  const { az } = setup();
  const a = allowed(await az.check(req('api.example.com', '/public/doc', { 'otoroshi-client-id': 'admin' })));
  assert.deepEqual(a.upstreamHeaders, {});
  assert.ok(a.removeUpstreamHeaders.includes('otoroshi-client-id'));
  assert.ok(a.removeUpstreamHeaders.includes('otoroshi-client-secret'));
});

test('detectApiKeySooner: a key on a public route is validated (bad key denied, good key counted)', async () => {
  const { az, quota } = setup();
  const h = { 'x-tenant': 'acme' };
  allowed(await az.check(req('x.strict.example.com', '/', h)));
  expectDeny(
    await az.check(req('x.strict.example.com', '/', { ...h, ...custom('key1', 'wrong') })),
    401,
    'Bad API key',
  );
  const a = allowed(await az.check(req('x.strict.example.com', '/', { ...h, ...custom('key1', 'secret1') })));
  assert.equal(a.reason, 'apikey');
  assert.equal(a.clientId, 'key1');
  assert.equal(quota.consumed, 1);
});

// ------------------------------------------------------------------ apikey methods (§7.2)

test(
  'custom headers: allow sets Otoroshi-Client-Id upstream, removes the secret, ' + 'returns remaining quotas',
  async () => {
    const { az } = setup();
    const a = allowed(await az.check(req('api.example.com', '/x', custom('key1', 'secret1'))));
    assert.equal(a.reason, 'apikey');
    assert.equal(a.clientId, 'key1');
    assert.deepEqual(a.upstreamHeaders, { 'Otoroshi-Client-Id': 'key1' });
    assert.ok(a.removeUpstreamHeaders.includes('otoroshi-client-secret'));
    assert.ok(a.removeUpstreamHeaders.includes('otoroshi-authorization'));
    assert.ok(!a.removeUpstreamHeaders.includes('otoroshi-client-id'));
    assert.deepEqual(a.responseHeaders, {
      'Otoroshi-Daily-Calls-Remaining': '99',
      'Otoroshi-Monthly-Calls-Remaining': '999',
    });
  },
);

test('sendOtoroshiHeadersBack false: no quota headers', async () => {
  const m = structuredClone(BASE.model);
  m.apikeys.find((k) => k.clientId === 'key1')?.authorizedEntities.push('service_other');
  const { az } = setup(m);
  assert.deepEqual(
    allowed(await az.check(req('other.example.com', '/', custom('key1', 'secret1')))).responseHeaders,
    {},
  );
});

test('401 Invalid API key: unknown clientId, or a key not authorized on the service nor its groups', async () => {
  const { az } = setup();
  expectDeny(
    await az.check(req('api.example.com', '/x', custom('ghost', 'x'))),
    401,
    'Invalid API key',
    'errors.invalid.api.key',
  );
  expectDeny(await az.check(req('other.example.com', '/x', custom('key1', 'secret1'))), 401, 'Invalid API key');
});

test('a key is authorized through one of the descriptor groups', async () => {
  const { az } = setup();
  assert.equal(allowed(await az.check(req('api.example.com', '/x', custom('kgroup', 'sgroup')))).clientId, 'kgroup');
});

test('401 Bad API key on a wrong secret, reported as suspicious', async () => {
  const { az, suspicious } = setup();
  expectDeny(
    await az.check(req('api.example.com', '/x', custom('key1', 'secret1x'))),
    401,
    'Bad API key',
    'errors.bad.api.key',
  );
  expectDeny(await az.check(req('api.example.com', '/x', custom('key1', ''))), 401, 'Bad API key');
  assert.equal(suspicious.filter((s) => s.kind === 'bad_secret').length, 2);
});

test('disabled key: 401 Bad API key (reason apikey_disabled)', async () => {
  const { az } = setup();
  const d = expectDeny(await az.check(req('api.example.com', '/x', custom('koff', 'soff'))), 401, 'Bad API key');
  assert.equal(d.reason, 'apikey_disabled');
});

test('expired validUntil is checked on every path, clientId-only included', async () => {
  const { az } = setup();
  const d = expectDeny(await az.check(req('api.example.com', '/x', { 'x-api-key': 'kold' })), 401, 'Bad API key');
  assert.equal(d.reason, 'apikey_expired');
  expectDeny(await az.check(req('api.example.com', '/x', custom('kold', 'sold'))), 401, 'Bad API key');
  const { az: past } = setup(BASE.model, { now: Date.parse('2019-12-31T00:00:00Z') });
  allowed(await past.check(req('api.example.com', '/x', { 'x-api-key': 'kold' })));
});

test(
  'clientId-only: allowed with allowClientIdOnly (header or query); 400 Bad API ' + 'key without; 401 unknown',
  async () => {
    const { az } = setup();
    allowed(await az.check(req('api.example.com', '/x', { 'x-api-key': 'kcid' })));
    allowed(await az.check(req('api.example.com', '/x?a=1&x-api-key=kcid')));
    expectDeny(
      await az.check(req('api.example.com', '/x', { 'x-api-key': 'kcidno' })),
      400,
      'Bad API key',
      'errors.bad.api.key',
    );
    expectDeny(await az.check(req('api.example.com', '/x', { 'x-api-key': 'ghost' })), 401, 'Invalid API key');
  },
);

test('secret rotation: nextSecret is accepted while rotation is enabled; not when disabled', async () => {
  const { az } = setup();
  allowed(await az.check(req('api.example.com', '/x', custom('krot', 'oldsecret'))));
  allowed(await az.check(req('api.example.com', '/x', custom('krot', 'newsecret'))));
  const m = structuredClone(BASE.model);
  const k = m.apikeys.find((x) => x.clientId === 'krot');
  assert.ok(k?.rotation);
  k.rotation.enabled = false;
  const { az: off } = setup(m);
  expectDeny(await off.check(req('api.example.com', '/x', custom('krot', 'newsecret'))), 401, 'Bad API key');
});

test('Basic: header, Authorization: Basic, and query; id:secret split on the first and LAST colon', async () => {
  const { az } = setup();
  allowed(await az.check(req('api.example.com', '/x', { 'otoroshi-authorization': basic('key1:secret1') })));
  allowed(await az.check(req('api.example.com', '/x', { authorization: basic('key1:secret1') })));
  allowed(
    await az.check(
      req('api.example.com', `/x?basic_auth=${encodeURIComponent(Buffer.from('key1:secret1').toString('base64'))}`),
    ),
  );
  allowed(await az.check(req('api.example.com', '/x', { authorization: basic('key1:ignored:secret1') })));
  expectDeny(await az.check(req('api.example.com', '/x', { authorization: basic('key1:bad') })), 401, 'Bad API key');
  expectDeny(await az.check(req('api.example.com', '/x', { authorization: basic(':') })), 400, 'No ApiKey provided');
});

test('JWT signed with the key secret: allowed from Otoroshi-Token, Bearer, query and cookie', async () => {
  const { az } = setup();
  const tok = hs256({ clientId: 'key1', iat: NOW / 1000, exp: NOW / 1000 + 60 }, 'secret1');
  allowed(await az.check(req('api.example.com', '/x', { 'otoroshi-token': tok })));
  allowed(await az.check(req('api.example.com', '/x', { authorization: `Bearer ${tok}` })));
  allowed(await az.check(req('api.example.com', `/x?bearer_auth=${tok}`)));
  allowed(await az.check(req('api.example.com', '/x', { cookie: `a=b; access_token=${tok}` })));
  for (const claim of ['client_id', 'cid', 'iss']) {
    allowed(
      await az.check(
        req('api.example.com', '/x', { 'otoroshi-token': hs256({ [claim]: 'key1' }, 'secret1', 'HS512') }),
      ),
    );
  }
});

test(
  'JWT: 400 Bad API key 1 on a bad signature or an expired token; 401 Invalid ' +
    'ApiKey provided for unknown keys and alg none',
  async () => {
    const { az, suspicious } = setup();
    expectDeny(
      await az.check(req('api.example.com', '/x', { 'otoroshi-token': hs256({ clientId: 'key1' }, 'wrong') })),
      400,
      'Bad API key 1',
      'errors.bad.api.key',
    );
    expectDeny(
      await az.check(
        req('api.example.com', '/x', {
          'otoroshi-token': hs256({ clientId: 'key1', exp: NOW / 1000 - 60 }, 'secret1'),
        }),
      ),
      400,
      'Bad API key 1',
    );
    expectDeny(
      await az.check(req('api.example.com', '/x', { 'otoroshi-token': hs256({ clientId: 'ghost' }, 'secret1') })),
      401,
      'Invalid ApiKey provided',
      'errors.invalid.api.key',
    );
    expectDeny(
      await az.check(req('api.example.com', '/x', { 'otoroshi-token': hs256({ sub: 'x' }, 'secret1') })),
      401,
      'Invalid ApiKey provided',
    );
    expectDeny(
      await az.check(
        req('api.example.com', '/x', { 'otoroshi-token': `${hs256({ clientId: 'key1' }, '', 'none')}c2ln` }),
      ),
      401,
      'Invalid ApiKey provided',
    );
    // an unsigned `a.b.` token has 2 parts for Otoroshi (Java split): not a credential at all
    expectDeny(
      await az.check(req('api.example.com', '/x', { 'otoroshi-token': hs256({ clientId: 'key1' }, '', 'none') })),
      400,
      'No ApiKey provided',
    );
    assert.ok(suspicious.some((s) => s.kind === 'jwt_alg'));
    // the rotation nextSecret is not accepted for JWTs
    expectDeny(
      await az.check(req('api.example.com', '/x', { 'otoroshi-token': hs256({ clientId: 'krot' }, 'newsecret') })),
      400,
      'Bad API key 1',
    );
  },
);

test('extraction order: x-api-key, then custom headers, then JWT, then Basic; no fallback', async () => {
  const { az } = setup();
  const tok = hs256({ clientId: 'key1' }, 'secret1');
  // custom headers win over a valid Bearer token
  expectDeny(
    await az.check(req('api.example.com', '/x', { ...custom('key1', 'wrong'), authorization: `Bearer ${tok}` })),
    401,
    'Bad API key',
  );
  // x-api-key wins over valid custom headers
  expectDeny(
    await az.check(req('api.example.com', '/x', { 'x-api-key': 'kcidno', ...custom('key1', 'secret1') })),
    400,
    'Bad API key',
  );
  // JWT wins over a valid Basic header
  expectDeny(
    await az.check(
      req('api.example.com', '/x', {
        'otoroshi-token': hs256({ clientId: 'key1' }, 'bad'),
        'otoroshi-authorization': basic('key1:secret1'),
      }),
    ),
    400,
    'Bad API key 1',
  );
  // only one of the two custom headers: not present → next method (Basic) is used
  allowed(
    await az.check(
      req('api.example.com', '/x', { 'otoroshi-client-id': 'key1', authorization: basic('key1:secret1') }),
    ),
  );
  // a Bearer value that is not a JWT is not a credential
  expectDeny(await az.check(req('api.example.com', '/x', { authorization: 'Bearer abc' })), 400, 'No ApiKey provided');
});

test('apikeyConstraints names: custom header names replace the defaults', async () => {
  const { az } = setup();
  const ctx = { contextExtensions: { descriptor_id: 'gold' } };
  allowed(await az.check(req('shop.example.com', '/api', { 'x-id': 'kgold', 'x-secret': 'sgold' }, ctx)));
  const d = await az.check(req('shop.example.com', '/api', { 'x-id': 'kgold', 'x-secret': 'sgold' }, ctx));
  assert.ok(allowed(d).removeUpstreamHeaders.includes('x-secret'));
});

test('key readOnly: 405 after authentication; key restrictions: 403 empty body', async () => {
  const { az, quota } = setup();
  expectDeny(
    await az.check(req('api.example.com', '/x', custom('kro', 'sro'), { method: 'POST' })),
    405,
    'Method not allowed. Can only handle GET, HEAD, OPTIONS',
  );
  const f = expectDeny(
    await az.check(req('api.example.com', '/x', custom('kro', 'sro'), { method: 'DELETE' })),
    403,
    'Forbidden',
  );
  assert.equal(f.emptyBody, true);
  allowed(await az.check(req('api.example.com', '/x', custom('kro', 'sro'))));
  assert.equal(quota.consumed, 1, 'denied calls are not counted');
});

// ------------------------------------------------------------------ quotas

test('429 You performed too much requests once a quota is exhausted; the denied call is not counted', async () => {
  const m = structuredClone(BASE.model);
  const k = m.apikeys.find((x) => x.clientId === 'key1');
  assert.ok(k);
  k.dailyQuota = 2;
  const { az } = setup(m);
  const exceeded: string[] = [];
  const az2 = new Authorizer({
    quota: new FakeQuota(),
    now: () => NOW,
    hooks: { onQuotaExceeded: (_c, w) => exceeded.push(w) },
  });
  az2.setPolicy(buildPolicy(m));
  for (const a of [az, az2]) {
    assert.equal(
      allowed(await a.check(req('api.example.com', '/x', custom('key1', 'secret1')))).responseHeaders[
        'Otoroshi-Daily-Calls-Remaining'
      ],
      '1',
    );
    allowed(await a.check(req('api.example.com', '/x', custom('key1', 'secret1'))));
    expectDeny(
      await a.check(req('api.example.com', '/x', custom('key1', 'secret1'))),
      429,
      'You performed too much requests',
      'errors.too.much.requests',
    );
  }
  assert.deepEqual(exceeded, ['daily']);
});

test('quota store down (fail-closed): 503, never an allow', async () => {
  const { az, quota } = setup();
  quota.down = true;
  const d = expectDeny(
    await az.check(req('api.example.com', '/x', custom('key1', 'secret1'))),
    503,
    'Service unavailable',
  );
  assert.equal(d.reason, 'quota_store_unavailable');
  allowed(await az.check(req('api.example.com', '/public/x')));
});

// ------------------------------------------------------------------ JWT verifier ref (§11)

function verifierModel(ref: { enabled: boolean; ids: string[]; excludedPatterns: string[] }, known: boolean): Model {
  const m = structuredClone(BASE.model);
  const d = m.descriptors.find((x) => x.id === 'api');
  assert.ok(d);
  d.jwtVerifier = ref;
  m.jwtVerifiers = known
    ? [
        {
          id: 'jv',
          name: 'jv',
          sourceKey: 'JwtVerifier/default/jv',
          namespace: 'default',
          strict: true,
          source: { type: 'InHeader', name: 'x-jwt', remove: '' },
          algoSettings: { type: 'HSAlgoSettings', size: 256, secret: 's', base64: false },
          strategy: { type: 'PassThrough', verificationSettings: { fields: {}, arrayFields: {} } },
        },
      ]
    : [];
  return m;
}
class FakeJwt implements JwtEngineLike {
  calls = 0;
  constructor(private readonly out: JwtOutcome) {}
  async verify(): Promise<JwtOutcome> {
    this.calls++;
    return this.out;
  }
}

test(
  'JWT verifier: denied outcome is returned as is (after apikey checks), passed ' + 'outcome merges its mutation',
  async () => {
    const ref = { enabled: true, ids: ['jv'], excludedPatterns: ['/public/skip'] };
    const deniedJwt = new FakeJwt({
      kind: 'denied',
      status: 400,
      message: 'error.expected.token.not.found',
      code: 'error.expected.token.not.found',
      reason: 'jwt_missing',
    });
    const { az, quota } = setup(verifierModel(ref, true), { jwt: deniedJwt });
    const d = expectDeny(
      await az.check(req('api.example.com', '/x', custom('key1', 'secret1'))),
      400,
      'error.expected.token.not.found',
    );
    assert.equal(d.reason, 'jwt_missing');
    assert.equal(quota.consumed, 0, 'a call denied by the verifier is not counted');
    expectDeny(await az.check(req('api.example.com', '/x')), 400, 'No ApiKey provided');
    allowed(await az.check(req('api.example.com', '/public/skip')));
    assert.equal(deniedJwt.calls, 1);

    const passed = new FakeJwt({
      kind: 'passed',
      verifierId: 'jv',
      claims: {},
      mutation: { upstreamHeaders: { 'x-jwt': 'resigned' }, removeUpstreamHeaders: ['X-Old'], responseHeaders: {} },
    });
    const { az: ok } = setup(verifierModel(ref, true), { jwt: passed });
    const a = allowed(await ok.check(req('api.example.com', '/public/doc')));
    assert.equal(a.reason, 'jwt_verifier');
    assert.equal(a.upstreamHeaders['x-jwt'], 'resigned');
    assert.ok(a.removeUpstreamHeaders.includes('x-old'));
  },
);

test('JWT verifier: unknown verifier id → 500 error.bad.globaljwtverifier.id; no engine → internal deny', async () => {
  const ref = { enabled: true, ids: ['missing'], excludedPatterns: [] };
  const { az } = setup(verifierModel(ref, false), { jwt: new FakeJwt({ kind: 'skipped' }) });
  expectDeny(await az.check(req('api.example.com', '/public/doc')), 500, 'error.bad.globaljwtverifier.id');
  const { az: none } = setup(verifierModel({ enabled: true, ids: ['jv'], excludedPatterns: [] }, true));
  assert.equal(denied(await none.check(req('api.example.com', '/public/doc'))).status, 500);
});

test(
  'JWT verifier denies but the key has no quota left: 429 first (Otoroshi checks ' + 'quotas before the verifier)',
  async () => {
    const m = verifierModel({ enabled: true, ids: ['jv'], excludedPatterns: [] }, true);
    const k = m.apikeys.find((x) => x.clientId === 'key1');
    assert.ok(k);
    k.dailyQuota = 0;
    const { az } = setup(m, {
      jwt: new FakeJwt({
        kind: 'denied',
        status: 400,
        message: 'error.bad.token',
        code: 'error.bad.token',
        reason: 'jwt_invalid',
      }),
    });
    expectDeny(
      await az.check(req('api.example.com', '/x', custom('key1', 'secret1'))),
      429,
      'You performed too much requests',
    );
  },
);

// ------------------------------------------------------------------ robustness

test('junk CheckInputs never allow and never throw', async () => {
  const { az } = setup();
  const junk: unknown[] = [
    null,
    undefined,
    42,
    'GET /',
    {},
    { host: 'api.example.com' },
    { host: 'api.example.com', path: '/x', headers: null, contextExtensions: null },
    {
      host: 'api.example.com',
      path: '/x',
      headers: { 'otoroshi-client-id': 5, 'otoroshi-client-secret': ['a'] },
      contextExtensions: {},
    },
    {
      host: 'api.example.com',
      path: '/x',
      headers: { authorization: 'Basic \u0000\u0001\u00ff' },
      contextExtensions: {},
    },
    {
      host: 'api.example.com',
      path: '/x',
      headers: { authorization: `Bearer ${'a'.repeat(100000)}.${'b'.repeat(100000)}.c` },
      contextExtensions: {},
    },
    { host: 'api.example.com', path: '/x', headers: { 'otoroshi-token': 'e30.e30.' }, contextExtensions: {} },
    { host: 'api.example.com', path: '/x', headers: { 'otoroshi-token': '!!!.@@@.###' }, contextExtensions: {} },
    { host: 'api.example.com', path: '/x', headers: { 'x-api-key': 'x'.repeat(1 << 20) }, contextExtensions: {} },
    { host: 'api.example.com', path: '/x', query: '%E0%A4%A&x-api-key=%', headers: {}, contextExtensions: {} },
    {
      host: 'api.example.com',
      path: '/x',
      headers: { cookie: ';;;=;access_token' },
      contextExtensions: { descriptor_id: 42 },
    },
    { host: '\u0000', path: '\n', method: '\u0000', headers: {}, contextExtensions: {} },
    { host: 'api.example.com', path: '/public/secret', headers: {}, contextExtensions: { descriptor_id: '__proto__' } },
  ];
  let seed = 7;
  const rnd = (): number => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff;
  const rstr = (n: number): string =>
    Array.from({ length: Math.floor(rnd() * n) }, () => String.fromCharCode(Math.floor(rnd() * 0x2ff))).join('');
  const keys = [
    'x-api-key',
    'otoroshi-client-id',
    'otoroshi-client-secret',
    'authorization',
    'otoroshi-token',
    'otoroshi-authorization',
    'cookie',
  ];
  for (let i = 0; i < 300; i++) {
    const headers: Record<string, string> = {};
    for (const k of keys)
      if (rnd() < 0.4) headers[k] = (rnd() < 0.3 ? ['Basic ', 'Bearer '][Math.floor(rnd() * 2)] : '') + rstr(40);
    junk.push({
      method: rstr(6),
      host: rnd() < 0.5 ? 'api.example.com' : rstr(20),
      path: `/${rstr(20)}`,
      query: rstr(30),
      headers,
      contextExtensions: {},
    });
  }
  for (const j of junk) {
    const d = await az.check(j as CheckInput);
    if (d.allow) {
      // the only acceptable allow: a public path of `api` with no credential at all
      assert.equal(d.reason, 'public', JSON.stringify(j).slice(0, 200));
    }
  }
});

test('an exception inside the decision becomes a 500 internal deny reported to hooks', async () => {
  const { az, internal } = setup();
  const boom: QuotaStore = {
    consume: () => Promise.resolve(undefined as unknown as QuotaResult),
    peek: () => Promise.reject(new Error('x')),
    close: () => Promise.resolve(),
  };
  const a = new Authorizer({ quota: boom, now: () => NOW, hooks: { onSuspicious: (e) => internal.push(e.kind) } });
  a.setPolicy(buildPolicy(BASE.model));
  const d = denied(await a.check(req('api.example.com', '/x', custom('key1', 'secret1'))));
  assert.equal(d.status, 500);
  assert.equal(d.reason, 'internal');
  assert.deepEqual(internal, ['internal_error']);
  void az;
});

test('onCheck hook receives every decision with its duration; a throwing hook does not break decisions', async () => {
  const seen: [boolean, number][] = [];
  const a = new Authorizer({
    quota: new FakeQuota(),
    now: () => NOW,
    hooks: {
      onCheck: (d, s) => {
        seen.push([d.allow, s]);
        throw new Error('hook bug');
      },
    },
  });
  a.setPolicy(buildPolicy(BASE.model));
  allowed(await a.check(req('api.example.com', '/x', custom('key1', 'secret1'))));
  assert.equal(seen.length, 1);
  assert.ok((seen[0]?.[1] ?? -1) >= 0);
});

// ------------------------------------------------------------------ secrets

test('secrets are compared in constant time over a fixed-size slot or a fixed-length digest (timingSafeEqual)', () => {
  for (const secret of ['secret1', 'é'.repeat(64), 'x'.repeat(SECRET_SLOT), 'y'.repeat(SECRET_SLOT + 1)]) {
    const d = secretDigest(secret);
    assert.equal(d.kind, Buffer.byteLength(secret) > SECRET_SLOT ? 'sha256' : 'padded');
    assert.equal(secretMatches(secret, d), true, secret);
    assert.equal(secretMatches(secret.slice(0, -1), d), false);
    assert.equal(secretMatches(`${secret}\u0000`, d), false, 'a NUL past the end is not the zero padding');
    assert.equal(secretMatches(secret.repeat(1000), d), false);
    assert.equal(secretMatches('', d), false);
  }
  assert.equal(secretMatches('', secretDigest('')), true);
  const src = fs.readFileSync(path.join(ROOT, 'src', 'authz', 'apikey.ts'), 'utf8');
  assert.match(src, /timingSafeEqual\(SCRATCH, expected\.slot\)/);
  assert.match(src, /timingSafeEqual\(sha256\(provided\), expected\.digest\)/);
  const dec = fs.readFileSync(path.join(ROOT, 'src', 'authz', 'decide.ts'), 'utf8');
  assert.doesNotMatch(dec, /clientSecret\s*[!=]==/);
});

// ------------------------------------------------------------------ error responses (§10)

test(
  'errorResponse: JSON body, Otoroshi-Error headers; HTML when Accept has an exact ' + 'text/html token or is missing',
  () => {
    const d: Deny = {
      allow: false,
      reason: 'no_apikey',
      status: 400,
      message: 'No ApiKey provided',
      code: 'errors.no.api.key',
    };
    const j = errorResponse(d, 'application/json');
    assert.equal(j.status, 400);
    assert.equal(j.body, '{"Otoroshi-Error":"No ApiKey provided"}');
    assert.equal(j.headers['Otoroshi-Error'], 'true');
    assert.equal(j.headers['Otoroshi-Error-Msg'], 'No ApiKey provided');
    assert.equal(j.headers['Otoroshi-State-Resp'], '--');
    assert.equal(j.headers['Content-Type'], 'application/json');
    const h = errorResponse(d, undefined, 'st4te');
    assert.match(h.body, /<p>No ApiKey provided<\/p>/);
    assert.equal(h.headers['Content-Type'], 'text/html; charset=utf-8');
    assert.equal(h.headers['Otoroshi-State-Resp'], 'st4te');
    assert.equal(wantsHtml('text/html,application/xhtml+xml'), true);
    assert.equal(wantsHtml('application/json, text/html'), false, 'tokens are not trimmed');
    assert.equal(wantsHtml(''), false);
    assert.equal(wantsHtml('*/*'), false);
  },
);

test('errorResponse: restrictions have an empty body', () => {
  const d: Deny = {
    allow: false,
    reason: 'restriction',
    status: 403,
    message: 'Forbidden',
    code: 'errors.forbidden',
    emptyBody: true,
  };
  const r = errorResponse(d, 'text/html');
  assert.equal(r.body, '');
  assert.equal(r.headers['Otoroshi-Error-Msg'], 'Forbidden');
  assert.equal(r.headers['Content-Type'], undefined);
});

test(
  'callers that are not our routes (no descriptor_id: another mesh, Istio CUSTOM) ' +
    'get IP filtering, maintenance and build mode here',
  async () => {
    const sd = (name: string, extra: string): string =>
      `---\napiVersion: proxy.otoroshi.io/v1alpha1\nkind: ServiceDescriptor\nmetadata: {name: ${name}, namespace: default}\nspec:\n  hosts: [${name}.example.com]\n  targets: [{url: "http://10.0.0.1:80"}]\n  publicPatterns: ["/.*"]\n  ${extra}\n`;
    const yaml =
      sd('filtered', 'ipFiltering: {whitelist: ["10.1.0.0/16", "192.168.1.*"], blacklist: ["10.1.2.3"]}') +
      sd('down', 'maintenanceMode: true') +
      sd('wip', 'buildMode: true');
    const b = build(yaml);
    assert.ok(
      b.statuses.every((s) => s.state === 'valid'),
      JSON.stringify(b.statuses.flatMap((s) => s.errors)),
    );
    const { az } = setup(b.model);
    const from = (ip: string | undefined): Partial<CheckInput> => (ip === undefined ? {} : { sourceIp: ip });
    allowed(await az.check(req('filtered.example.com', '/', {}, from('10.1.9.9'))));
    allowed(await az.check(req('filtered.example.com', '/', {}, from('192.168.1.77'))));
    expectDeny(
      await az.check(req('filtered.example.com', '/', {}, from('10.1.2.3'))),
      403,
      'Your IP address is not allowed',
      'errors.ip.address.not.allowed',
    );
    expectDeny(
      await az.check(req('filtered.example.com', '/', {}, from('172.16.0.1'))),
      403,
      'Your IP address is not allowed',
    );
    expectDeny(
      await az.check(req('filtered.example.com', '/', {}, from(undefined))),
      403,
      'Your IP address is not allowed',
    );
    expectDeny(
      await az.check(req('down.example.com', '/')),
      503,
      'Service in maintenance mode',
      'errors.service.in.maintenance',
    );
    expectDeny(
      await az.check(req('wip.example.com', '/')),
      503,
      'Service under construction',
      'errors.service.under.construction',
    );
    // Our own routes already did these checks in Envoy: with descriptor_id they are not repeated.
    const id = b.model.descriptors.find((d) => d.hosts.includes('filtered.example.com'))?.id ?? '';
    allowed(
      await az.check(
        req('filtered.example.com', '/', {}, { sourceIp: '172.16.0.1', contextExtensions: { descriptor_id: id } }),
      ),
    );
  },
);
