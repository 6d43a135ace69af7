// Hostile ext_authz input: random bytes, mutated CheckRequest bytes and random structured
// CheckRequests into the real decode (check-codec.ts) + decide (decide.ts) path, and random /
// mutated bytes through the real gRPC server. Properties: never a throw or crash, every answer is
// a well-formed CheckResponse, and never an allow without a valid credential — checked by an
// independent oracle (the key's secret is present in the request, plainly, in Basic auth, or as the
// HMAC key of a JWT; or the key allows clientId-only and its id is present; or the descriptor is public).
import { afterAll, beforeAll, test } from 'vitest';
import { normalizeRequestPath } from '../src/authz/normalize-path.js';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import fc from 'fast-check';
import pino from 'pino';
import { parseYamlFile, assembleView } from '../src/sources/yaml.js';
import { compile } from '../src/pipeline.js';
import { buildPolicy } from '../src/authz/policy.js';
import { Authorizer } from '../src/authz/decide.js';
import { MemoryQuotaStore } from '../src/authz/quota/memory.js';
import { decodeCheckRequest, encodeDecision, MalformedCheckRequest } from '../src/authz/check-codec.js';
import { startAuthzServer, type RunningAuthzServer } from '../src/authz/server.js';
import { lookupType, TO_OBJECT_OPTIONS } from '../proto/loader.js';
import type { CheckInput, Decision } from '../src/authz/types.js';
import { checkRequest, CHECK_PATH } from './helpers/check-client.js';
import { params } from './helpers/fuzz.js';

const POLICY_YAML = `apiVersion: proxy.otoroshi.io/v1alpha1
kind: ServiceGroup
metadata: {name: team, annotations: {otoroshi.io/id: team}}
spec: {name: Team}
---
apiVersion: proxy.otoroshi.io/v1alpha1
kind: ServiceDescriptor
metadata: {name: api, annotations: {otoroshi.io/id: api}}
spec:
  hosts: [api.example.com]
  groups: [team]
  forceHttps: false
  targets: [{url: "http://10.0.0.1:8080"}]
  apiKeyConstraints:
    basicAuth: {enabled: true}
    customHeadersAuth: {enabled: true, clientIdHeaderName: X-Id, clientSecretHeaderName: X-Secret}
    clientIdAuth: {enabled: true}
    jwtAuth: {enabled: true}
---
apiVersion: proxy.otoroshi.io/v1alpha1
kind: ServiceDescriptor
metadata: {name: pub, annotations: {otoroshi.io/id: pub}}
spec:
  hosts: [pub.example.com]
  forceHttps: false
  publicPatterns: ["/open/.*"]
  targets: [{url: "http://10.0.0.2:8080"}]
---
apiVersion: proxy.otoroshi.io/v1alpha1
kind: ApiKey
metadata: {name: k1}
spec: {clientId: key1, clientSecret: secret-one-1234, authorizedEntities: [group_team, service_pub]}
---
apiVersion: proxy.otoroshi.io/v1alpha1
kind: ApiKey
metadata: {name: k2}
spec: {clientId: key2, clientSecret: secret-two-5678, authorizedEntities: [service_api], allowClientIdOnly: true}
---
apiVersion: proxy.otoroshi.io/v1alpha1
kind: ApiKey
metadata: {name: koff}
spec: {clientId: koff, clientSecret: secret-off-0000, enabled: false, authorizedEntities: [service_api]}
`;

const KEYS: Record<string, { secret: string; clientIdOnly: boolean }> = {
  key1: { secret: 'secret-one-1234', clientIdOnly: false },
  key2: { secret: 'secret-two-5678', clientIdOnly: true },
  koff: { secret: 'secret-off-0000', clientIdOnly: false },
};

function policyAuthorizer(): Authorizer {
  const c = compile(
    assembleView([{ relPath: 'p.yaml', ...parseYamlFile('p.yaml', POLICY_YAML, 0) }]),
    { secretSeed: 'x' },
    {},
  );
  assert.deepEqual(
    c.errors.filter((e) => e.severity === 'error'),
    [],
  );
  const a = new Authorizer({ quota: new MemoryQuotaStore() });
  a.setPolicy(buildPolicy(c.model));
  return a;
}

function b64url(s: string | Buffer): string {
  return Buffer.from(s).toString('base64url');
}

function jwt(header: object, claims: object, secret: string | undefined): string {
  const h = b64url(JSON.stringify(header));
  const c = b64url(JSON.stringify(claims));
  const sig = secret === undefined ? '' : b64url(createHmac('sha256', secret).update(`${h}.${c}`).digest());
  return `${h}.${c}.${sig}`;
}

function jwtSignedWith(token: string, secret: string): boolean {
  const parts = token.replaceAll('Bearer ', '').trim().split('.');
  if (parts.length !== 3) return false;
  for (const alg of ['sha256', 'sha384', 'sha512']) {
    const sig = createHmac(alg, secret).update(`${parts[0]}.${parts[1]}`).digest();
    if (Buffer.from(parts[2] ?? '', 'base64url').equals(sig)) return true;
  }
  return false;
}

/** Independent oracle: does `input` carry a valid credential of `clientId`? */
function credentialPresent(input: CheckInput, clientId: string): boolean {
  const k = KEYS[clientId];
  if (!k) return false;
  const values: string[] = [...Object.values(input.headers)];
  for (const part of input.query.split('&')) {
    const v = part.slice(part.indexOf('=') + 1);
    values.push(v);
    try {
      values.push(decodeURIComponent(v));
    } catch {
      /* raw only */
    }
  }
  for (const v of values) {
    if (k.clientIdOnly && v.includes(clientId)) return true;
    if (v.includes(k.secret)) return true;
    for (const tok of v.split(/[\s;=]+/)) {
      if (Buffer.from(tok, 'base64').toString('utf8').includes(k.secret)) return true;
      if (jwtSignedWith(tok, k.secret)) return true;
    }
  }
  return false;
}

function allowViolation(d: Decision, input: CheckInput): string | undefined {
  if (!d.allow) return undefined;
  if (d.reason === 'public')
    return d.descriptorId === 'pub' && (normalizeRequestPath(input.path) ?? '').startsWith('/open/')
      ? undefined
      : `public allow on ${d.descriptorId} ${input.path}`;
  if (
    d.reason === 'apikey' &&
    d.clientId !== undefined &&
    d.clientId !== 'koff' &&
    credentialPresent(input, d.clientId)
  )
    return undefined;
  return `allowed without a valid credential: ${JSON.stringify({ reason: d.reason, clientId: d.clientId, input })}`;
}

const CheckResponse = lookupType('envoy.service.auth.v3.CheckResponse');

/** The encoded answer must be a CheckResponse; allow ⇔ status 0 with an ok_response. */
function responseViolation(buf: Buffer, d: Decision): string | undefined {
  const r = CheckResponse.toObject(CheckResponse.decode(buf), { ...TO_OBJECT_OPTIONS, enums: Number }) as {
    status?: { code?: number };
    okResponse?: unknown;
    deniedResponse?: unknown;
  };
  const allowed = (r.status?.code ?? 0) === 0;
  if (allowed !== d.allow) return `encoded allow=${allowed} but decision allow=${d.allow}`;
  return undefined;
}

const authorizer = policyAuthorizer();

async function decideBytes(buf: Uint8Array): Promise<{ input?: CheckInput; d: Decision }> {
  let input: CheckInput;
  try {
    input = decodeCheckRequest(buf);
  } catch (err) {
    if (!(err instanceof MalformedCheckRequest))
      throw new Error(`decode threw a non-Malformed error: ${(err as Error).stack}`);
    return {
      d: { allow: false, reason: 'bad_request', status: 400, message: 'Bad Request', code: 'errors.bad.request' },
    };
  }
  return { input, d: await authorizer.check(input) };
}

// ----------------------------------------------------------------------------- generators

const hostArb = fc.oneof(
  fc.constantFrom(
    'api.example.com',
    'pub.example.com',
    'API.EXAMPLE.COM:443',
    'api.example.com.',
    'evil.com',
    '',
    'api.example.com:99999',
  ),
  fc.string({ maxLength: 20 }),
);
const pathArb = fc.oneof(
  fc.constantFrom('/', '/x', '/open/a', '/open/../private', '//open/x', '/open', '%2Fopen/x', '/x?a=1', ''),
  fc.string({ maxLength: 30 }),
);
const credValue = fc.oneof(
  fc.constantFrom(
    'key1',
    'key2',
    'koff',
    'secret-one-1234',
    'secret-two-5678',
    'secret-off-0000',
    'wrong',
    '',
    ' key1',
    'KEY1',
    'key1\u0000',
  ),
  fc.constantFrom(
    `Basic ${Buffer.from('key1:secret-one-1234').toString('base64')}`,
    `Basic ${Buffer.from('key1:wrong').toString('base64')}`,
    `Basic ${Buffer.from('key1:').toString('base64')}`,
    `Basic ${Buffer.from(':secret-one-1234').toString('base64')}`,
    `Basic ${Buffer.from('key1').toString('base64')}`,
    `Basic ${Buffer.from('koff:secret-off-0000').toString('base64')}`,
    'Basic',
    'Basic ',
    'Basic !!!',
    `Bearer ${jwt({ alg: 'HS256', typ: 'JWT' }, { iss: 'key1' }, 'secret-one-1234')}`,
    `Bearer ${jwt({ alg: 'none', typ: 'JWT' }, { iss: 'key1' }, undefined)}`,
    `Bearer ${jwt({ alg: 'HS256' }, { iss: 'key1' }, 'wrong')}`,
    `Bearer ${jwt({ alg: 'HS256' }, { iss: 'key1', exp: 1 }, 'secret-one-1234')}`,
    `Bearer ${jwt({ alg: 'RS256' }, { iss: 'key1' }, 'secret-one-1234')}`,
    `Bearer ${jwt({ alg: 'HS256' }, { clientId: 'key2' }, '')}`,
    'Bearer a.b.c',
    'Bearer ...',
    'Bearer ',
  ),
  fc.string({ maxLength: 40 }),
);
const headerName = fc.constantFrom(
  'otoroshi-client-id',
  'otoroshi-client-secret',
  'authorization',
  'x-id',
  'x-secret',
  'x-api-key',
  'otoroshi-authorization',
  'otoroshi-token',
  'cookie',
  'x-forwarded-for',
  'host',
);
const queryArb = fc
  .array(
    fc.tuple(fc.constantFrom('clientId', 'apikey', 'basic_auth', 'bearer_auth', 'jwt', 'x', 'client_id'), credValue),
    { maxLength: 3 },
  )
  .map((ps) => ps.map(([k, v]) => `${k}=${encodeURIComponent(v)}`).join('&'));

const structuredArb = fc.record({
  method: fc.constantFrom('GET', 'POST', 'DELETE', 'get', '', 'CONNECT', 'X'),
  host: hostArb,
  path: pathArb,
  query: queryArb,
  headers: fc.array(fc.tuple(headerName, credValue), { maxLength: 5 }),
  descriptorId: fc.option(fc.constantFrom('api', 'pub', 'nope', ''), { nil: undefined }),
});

type Structured = typeof structuredArb extends fc.Arbitrary<infer T> ? T : never;

function encodeStructured(s: Structured): Buffer {
  const p = s.query ? `${s.path}?${s.query}` : s.path;
  return checkRequest({
    method: s.method,
    host: s.host,
    path: p,
    headerMap: s.headers,
    ext: s.descriptorId !== undefined ? { descriptor_id: s.descriptorId } : {},
  });
}

const validRequests: Buffer[] = [
  checkRequest({
    host: 'api.example.com',
    path: '/x',
    headers: { 'x-id': 'key1', 'x-secret': 'secret-one-1234' },
    ext: { descriptor_id: 'api' },
  }),
  checkRequest({
    host: 'pub.example.com',
    path: '/x',
    headers: { 'otoroshi-client-id': 'key1', 'otoroshi-client-secret': 'secret-one-1234' },
  }),
  checkRequest({
    host: 'api.example.com',
    path: '/x',
    headers: { authorization: `Basic ${Buffer.from('key1:secret-one-1234').toString('base64')}` },
  }),
  checkRequest({ host: 'api.example.com', path: '/x', headers: { 'x-id': 'key1', 'x-secret': 'secret-one-1234' } }),
  checkRequest({ host: 'api.example.com', path: '/x', headers: { 'x-api-key': 'key2' } }),
  checkRequest({ host: 'pub.example.com', path: '/open/x' }),
];

const byteEdits = fc.array(
  fc.record({
    at: fc.nat(),
    op: fc.constantFrom('flip', 'set', 'insert', 'delete', 'truncate', 'dup'),
    byte: fc.integer({ min: 0, max: 255 }),
    len: fc.integer({ min: 1, max: 16 }),
  }),
  { minLength: 1, maxLength: 6 },
);

type ByteEdits = typeof byteEdits extends fc.Arbitrary<infer T> ? T : never;

function editBytes(src: Buffer, edits: ByteEdits): Buffer {
  let b = Buffer.from(src);
  for (const e of edits) {
    const at = b.length === 0 ? 0 : e.at % b.length;
    if (e.op === 'flip' && b.length) b[at] = (b[at] ?? 0) ^ (1 << (e.byte % 8));
    else if (e.op === 'set' && b.length) b[at] = e.byte;
    else if (e.op === 'insert') b = Buffer.concat([b.subarray(0, at), Buffer.alloc(e.len, e.byte), b.subarray(at)]);
    else if (e.op === 'delete') b = Buffer.concat([b.subarray(0, at), b.subarray(at + e.len)]);
    else if (e.op === 'truncate') b = b.subarray(0, at);
    else if (e.op === 'dup') b = Buffer.concat([b.subarray(0, at + e.len), b.subarray(at)]);
  }
  return b;
}

const allowsSeen = { n: 0 };

async function assertSafe(buf: Uint8Array): Promise<void> {
  const { input, d } = await decideBytes(buf);
  if (d.allow) allowsSeen.n++;
  const v = input ? allowViolation(d, input) : undefined;
  if (v) throw new Error(v);
  const enc = encodeDecision(d, input);
  const rv = responseViolation(enc, d);
  if (rv) throw new Error(rv);
}

// ----------------------------------------------------------------------------- properties

test('fuzz authz: the seed requests are allowed (the oracle accepts real credentials)', async () => {
  for (const b of validRequests) {
    const { input, d } = await decideBytes(b);
    assert.equal(d.allow, true, JSON.stringify(d));
    assert.equal(allowViolation(d, input!), undefined);
  }
});

test('fuzz authz: random bytes are denied cleanly (decode + decide + encode)', async () => {
  await fc.assert(fc.asyncProperty(fc.uint8Array({ maxLength: 600 }), assertSafe), params(3000));
});

test('fuzz authz: mutated valid CheckRequests never allow without a valid credential', async () => {
  await fc.assert(
    fc.asyncProperty(fc.nat({ max: validRequests.length - 1 }), byteEdits, (i, edits) =>
      assertSafe(editBytes(validRequests[i] as Buffer, edits)),
    ),
    params(3000),
  );
});

test('fuzz authz: random structured CheckRequests never allow without a valid credential', async () => {
  allowsSeen.n = 0;
  await fc.assert(
    fc.asyncProperty(structuredArb, (s) => assertSafe(encodeStructured(s))),
    params(3000),
  );
  assert.ok(allowsSeen.n > 0, 'the generator reaches allows (else the property is vacuous)');
});

// ----------------------------------------------------------------------------- real gRPC server

let server: RunningAuthzServer;
let client: grpc.Client;
let unhandled = 0;
const onUnhandled = (): void => {
  unhandled++;
};
beforeAll(async () => {
  process.on('unhandledRejection', onUnhandled);
  server = await startAuthzServer('127.0.0.1', 0, {
    check: (i) => authorizer.check(i),
    logger: pino({ level: 'silent' }),
  });
  client = new grpc.Client(`127.0.0.1:${server.port}`, grpc.credentials.createInsecure());
});
afterAll(async () => {
  process.off('unhandledRejection', onUnhandled);
  client.close();
  await server.stop();
});

const id = (b: Buffer): Buffer => b;
function rawCheck(body: Buffer): Promise<{ err?: grpc.ServiceError; res?: Buffer }> {
  return new Promise((resolve) => {
    client.makeUnaryRequest(CHECK_PATH, id, id, body, { deadline: Date.now() + 5000 }, (err, res) =>
      resolve(err ? { err } : { res: res! }),
    );
  });
}

test('fuzz authz over gRPC: random and mutated bytes get a CheckResponse deny, the server keeps serving', async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.oneof(
        fc.uint8Array({ maxLength: 400 }).map((u) => Buffer.from(u)),
        fc
          .tuple(fc.nat({ max: validRequests.length - 1 }), byteEdits)
          .map(([i, e]) => editBytes(validRequests[i] as Buffer, e)),
        structuredArb.map(encodeStructured),
      ),
      async (body) => {
        const { err, res } = await rawCheck(body);
        if (err) throw new Error(`gRPC error instead of a CheckResponse: ${err.code} ${err.details}`);
        const r = CheckResponse.toObject(CheckResponse.decode(res!), { ...TO_OBJECT_OPTIONS, enums: Number }) as {
          status?: { code?: number };
        };
        if ((r.status?.code ?? 0) === 0) {
          // An allow over the wire must be an allow the oracle accepts for the same bytes.
          const input = decodeCheckRequest(body);
          const local = await authorizer.check(input);
          const v = allowViolation(local, input);
          if (v) throw new Error(v);
        }
      },
    ),
    params(800),
  );
  // still serving a valid request afterwards
  const { res } = await rawCheck(validRequests[0] as Buffer);
  const r = CheckResponse.toObject(CheckResponse.decode(res!), { ...TO_OBJECT_OPTIONS, enums: Number }) as {
    status?: { code?: number };
  };
  assert.equal(r.status?.code ?? 0, 0);
  assert.equal(unhandled, 0, 'no unhandled rejection');
});
