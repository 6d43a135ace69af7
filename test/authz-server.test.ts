// The ext_authz gRPC adapter over a real grpc-js server and a raw grpc-js client sending real
// CheckRequests (encoded with protobufjs from the Envoy protos, as Envoy sends them).
import { afterAll, beforeAll, describe, test } from 'vitest';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import pino from 'pino';
import { lookupType, TO_OBJECT_OPTIONS } from '../proto/loader.js';
import { startAuthzServer, type RunningAuthzServer } from '../src/authz/server.js';
import { decodeCheckRequest, encodeAllow, encodeDecision, encodeDeny } from '../src/authz/check-codec.js';
import { errorResponse } from '../src/authz/errors.js';
import { MemoryQuotaStore, createQuotaStore, type FailoverQuotaStore } from '../src/authz/quota/index.js';
import { QuotaStoreUnavailableError, type CheckInput, type Decision, type QuotaStore } from '../src/authz/types.js';
import { redisAvailable, startRedis, REDIS_SKIP_MESSAGE } from './helpers/redis.js';
import { callCheck, checkRequest as baseCheckRequest, type CheckRequestOptions } from './helpers/check-client.js';

const CheckRequest = lookupType('envoy.service.auth.v3.CheckRequest');
const CheckResponse = lookupType('envoy.service.auth.v3.CheckResponse');

/** A real CheckRequest (shared helper), routed to descriptor `svc-1` unless the test says otherwise. */
function checkRequest(o: CheckRequestOptions): Buffer {
  return baseCheckRequest({ ...o, ext: o.ext ?? { descriptor_id: 'svc-1' } });
}
const call = callCheck;

function headersOf(
  list: Array<{ header: { key: string; value: string }; appendAction?: number }> | undefined,
): Record<string, string> {
  const out: Record<string, string> = {};
  for (const h of list ?? []) {
    assert.equal(h.appendAction, 2, 'OVERWRITE_IF_EXISTS_OR_ADD');
    out[h.header.key] = h.header.value;
  }
  return out;
}

describe('ext_authz gRPC adapter', () => {
  let server: RunningAuthzServer;
  let client: grpc.Client;
  const seen: CheckInput[] = [];
  const hookDecisions: Decision[] = [];
  const quota = new MemoryQuotaStore();
  let unhandled = 0;
  const onUnhandled = () => unhandled++;

  async function check(input: CheckInput): Promise<Decision> {
    seen.push(input);
    const mode = input.headers['x-test-mode'];
    if (mode === 'throw') throw new Error('boom');
    if (mode === 'throw-sync') return (null as unknown as { x: () => Promise<Decision> }).x();
    if (mode === 'undefined') return undefined as unknown as Decision;
    if (mode === 'weird-header')
      return {
        allow: true,
        reason: 'public',
        descriptorId: 'd',
        upstreamHeaders: { 'x-a': 'é\u0000' },
        removeUpstreamHeaders: [],
        responseHeaders: {},
      };
    if (mode === 'store-down') throw new QuotaStoreUnavailableError('down');
    if (mode === 'restrict')
      return {
        allow: false,
        reason: 'restriction',
        status: 404,
        message: 'Not Found',
        code: 'errors.not.found',
        emptyBody: true,
      };
    const clientId = input.headers['otoroshi-client-id'];
    if (!clientId)
      return {
        allow: false,
        reason: 'no_apikey',
        status: 400,
        message: 'No ApiKey provided',
        code: 'errors.no.api.key',
      };
    if (input.headers['otoroshi-client-secret'] !== 'secret')
      return { allow: false, reason: 'bad_apikey', status: 401, message: 'Bad API key', code: 'errors.bad.api.key' };
    const q = await quota.consume(clientId, { throttlingQuota: 1000, dailyQuota: 3, monthlyQuota: 100 }, Date.now());
    if (!q.allowed)
      return {
        allow: false,
        reason: 'quota_exceeded',
        status: 429,
        message: 'You performed too much requests',
        code: 'errors.too.much.requests',
        clientId,
      };
    return {
      allow: true,
      reason: 'apikey',
      descriptorId: input.contextExtensions.descriptor_id ?? '',
      clientId,
      upstreamHeaders: { 'Otoroshi-Request-Id': '42', 'Otoroshi-Proxied-Host': input.host },
      removeUpstreamHeaders: ['otoroshi-client-id', 'otoroshi-client-secret'],
      responseHeaders: {
        'Otoroshi-Daily-Calls-Remaining': String(q.dailyRemaining),
        'Otoroshi-Monthly-Calls-Remaining': String(q.monthlyRemaining),
      },
    };
  }

  beforeAll(async () => {
    process.on('unhandledRejection', onUnhandled);
    server = await startAuthzServer('127.0.0.1', 0, {
      check,
      logger: pino({ level: 'silent' }),
      hooks: { onCheck: (d) => hookDecisions.push(d) },
      limits: { maxHeaders: 50, maxHeaderBytes: 16 * 1024 },
    });
    client = new grpc.Client(`127.0.0.1:${server.port}`, grpc.credentials.createInsecure());
  });
  afterAll(async () => {
    client.close();
    await server.stop();
    process.off('unhandledRejection', onUnhandled);
    assert.equal(unhandled, 0);
  });

  test('decodes a CheckRequest into a CheckInput', async () => {
    seen.length = 0;
    await call(
      client,
      checkRequest({
        method: 'post',
        headers: { 'X-Mixed': 'v', accept: 'application/json' },
        ext: { descriptor_id: 'svc-9', other: 'x' },
      }),
    );
    const i = seen[0]!;
    assert.equal(i.method, 'POST');
    assert.equal(i.host, 'api.oto.tools');
    assert.equal(i.path, '/api/x');
    assert.equal(i.query, 'a=1&b=2');
    assert.equal(i.scheme, 'https');
    assert.equal(i.sourceIp, '10.1.2.3');
    assert.equal(i.headers['x-mixed'], 'v');
    assert.equal(i.headers[':path'], '/api/x?a=1&b=2');
    assert.deepEqual({ ...i.contextExtensions }, { descriptor_id: 'svc-9', other: 'x' });
    // header_map form (Envoy ≥ 1.27 with encode_raw_headers), duplicates joined
    const j = decodeCheckRequest(
      checkRequest({
        headerMap: [
          [':path', '/p'],
          ['X-A', '1'],
          ['x-a', '2'],
          ['cookie', 'a=1'],
          ['Cookie', 'b=2'],
        ],
        path: '/p',
      }),
    );
    assert.equal(j.headers['x-a'], '1,2');
    assert.equal(j.headers.cookie, 'a=1; b=2');
    assert.equal(j.path, '/p');
    assert.equal(j.query, '');
  });

  test('allow: headers to set, to remove, response headers; quota counts down', async () => {
    const req = checkRequest({
      headers: { 'otoroshi-client-id': 'cid', 'otoroshi-client-secret': 'secret', accept: 'application/json' },
    });
    const r = await call(client, req);
    assert.equal(r.status?.code ?? 0, 0);
    assert.ok(r.okResponse, 'ok_response');
    assert.equal(r.deniedResponse, undefined);
    assert.deepEqual(headersOf(r.okResponse.headers), {
      'Otoroshi-Request-Id': '42',
      'Otoroshi-Proxied-Host': 'api.oto.tools',
    });
    assert.deepEqual(r.okResponse.headersToRemove, ['otoroshi-client-id', 'otoroshi-client-secret']);
    assert.deepEqual(headersOf(r.okResponse.responseHeadersToAdd), {
      'Otoroshi-Daily-Calls-Remaining': '2',
      'Otoroshi-Monthly-Calls-Remaining': '99',
    });
    const r2 = await call(client, req);
    assert.equal(headersOf(r2.okResponse.responseHeadersToAdd)['Otoroshi-Daily-Calls-Remaining'], '1');
    await call(client, req);
    const over = await call(client, req);
    assert.equal(over.status.code, 7);
    assert.equal(over.deniedResponse.status.code, 429);
    assert.equal(JSON.parse(over.deniedResponse.body)['Otoroshi-Error'], 'You performed too much requests');
  });

  test('deny shape: gRPC status, HTTP status, Otoroshi headers, JSON / HTML / empty body', async () => {
    const json = await call(client, checkRequest({ headers: { accept: 'application/json', 'otoroshi-state': 'st8' } }));
    assert.equal(json.status.code, 7); // PERMISSION_DENIED
    assert.equal(json.okResponse, undefined);
    assert.equal(json.deniedResponse.status.code, 400);
    const h = headersOf(json.deniedResponse.headers);
    assert.equal(h['Otoroshi-Error'], 'true');
    assert.equal(h['Otoroshi-Error-Msg'], 'No ApiKey provided');
    assert.equal(h['Otoroshi-State-Resp'], 'st8');
    assert.equal(h['Content-Type'], 'application/json');
    assert.deepEqual(JSON.parse(json.deniedResponse.body), { 'Otoroshi-Error': 'No ApiKey provided' });

    const html = await call(
      client,
      checkRequest({ headers: { 'otoroshi-client-id': 'c', 'otoroshi-client-secret': 'nope' } }),
    ); // no Accept → HTML
    assert.equal(html.status.code, 16); // UNAUTHENTICATED for 401
    assert.equal(html.deniedResponse.status.code, 401);
    assert.match(html.deniedResponse.body, /<html[\s\S]*Bad API key/);
    assert.equal(headersOf(html.deniedResponse.headers)['Otoroshi-State-Resp'], '--');
    const html2 = await call(client, checkRequest({ headers: { accept: 'application/json,text/html' } }));
    assert.match(html2.deniedResponse.body, /<html/);
    // not trimmed: JSON
    const html3 = await call(client, checkRequest({ headers: { accept: 'application/json, text/html' } }));
    assert.match(html3.deniedResponse.body, /^\{/);

    const empty = await call(
      client,
      checkRequest({ headers: { 'x-test-mode': 'restrict', accept: 'application/json' } }),
    );
    assert.equal(empty.deniedResponse.status.code, 404);
    assert.equal(empty.deniedResponse.body ?? '', '');
  });

  test('a check that throws QuotaStoreUnavailableError → 503 deny', async () => {
    const r = await call(
      client,
      checkRequest({ headers: { 'x-test-mode': 'store-down', accept: 'application/json' } }),
    );
    assert.equal(r.okResponse, undefined);
    assert.equal(r.deniedResponse.status.code, 503);
    assert.deepEqual(JSON.parse(r.deniedResponse.body), { 'Otoroshi-Error': 'Service unavailable' });
  });

  test('a check that throws (async, sync, returns nothing) → 500 deny, never allow', async () => {
    for (const mode of ['throw', 'throw-sync', 'undefined']) {
      const r = await call(client, checkRequest({ headers: { 'x-test-mode': mode, accept: 'application/json' } }));
      assert.equal(r.okResponse, undefined, mode);
      assert.equal(r.status.code, 7);
      assert.equal(r.deniedResponse.status.code, 500);
      assert.match(JSON.parse(r.deniedResponse.body)['Otoroshi-Error'], /^Something went wrong/);
    }
  });

  test('garbage bytes, empty request, missing http attributes → 400 deny', async () => {
    const bodies: Buffer[] = [
      Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0x01]),
      Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'),
      Buffer.alloc(0),
      Buffer.from(
        CheckRequest.encode(
          CheckRequest.fromObject({ attributes: { contextExtensions: { descriptor_id: 'x' } } }),
        ).finish(),
      ),
      Buffer.from([0x0a, 0x05, 0x22, 0x10, 0x12]), // truncated nesting
    ];
    for (let i = 0; i < 300; i++)
      bodies.push(Buffer.from(Array.from({ length: 1 + (i % 60) }, (_, k) => (i * 31 + k * 17) & 0xff)));
    for (const b of bodies) {
      let r: Record<string, any>;
      try {
        r = await call(client, b);
      } catch (err) {
        assert.ok((err as grpc.ServiceError).code !== grpc.status.OK);
        continue;
      }
      // a random byte string may happen to decode as a valid (empty-ish) request: still never an allow
      // unless it carried credentials — which random bytes don't.
      assert.equal(r.okResponse, undefined, `allowed garbage ${b.toString('hex')}`);
      assert.notEqual(r.status?.code ?? 0, 0);
    }
    const r = await call(client, Buffer.alloc(0));
    assert.equal(r.deniedResponse.status.code, 400);
  });

  test('huge or too many headers → 431 deny', async () => {
    const big = await call(
      client,
      checkRequest({
        headers: { 'otoroshi-client-id': 'cid', 'otoroshi-client-secret': 'secret', 'x-big': 'a'.repeat(20_000) },
      }),
    );
    assert.equal(big.okResponse, undefined);
    assert.equal(big.deniedResponse.status.code, 431);
    const many: Record<string, string> = { 'otoroshi-client-id': 'cid', 'otoroshi-client-secret': 'secret' };
    for (let i = 0; i < 60; i++) many[`x-h${i}`] = 'v';
    const r = await call(client, checkRequest({ headers: many }));
    assert.equal(r.deniedResponse.status.code, 431);
    // beyond the gRPC message limit (1 MiB): a gRPC error status (Envoy denies), not an allow
    await assert.rejects(
      call(client, checkRequest({ headers: { 'x-huge': 'a'.repeat(2 * 1024 * 1024) } })),
      (e: grpc.ServiceError) => e.code === grpc.status.RESOURCE_EXHAUSTED,
    );
  });

  test('an allow whose header cannot be encoded still answers', async () => {
    const r = await call(client, checkRequest({ headers: { 'x-test-mode': 'weird-header' } }));
    assert.ok(r.okResponse || r.deniedResponse);
  });

  test("hooks.onCheck sees the adapter's own denies only (the Authorizer reports its decisions)", () => {
    assert.ok(hookDecisions.length >= 5);
    assert.ok(
      hookDecisions.every((d) => !d.allow && ['internal', 'bad_request', 'quota_store_unavailable'].includes(d.reason)),
    );
    assert.ok(hookDecisions.some((d) => !d.allow && d.reason === 'internal'));
    assert.ok(hookDecisions.some((d) => !d.allow && d.reason === 'bad_request'));
  });
});

test('hand-written encoders match protobufjs reflection', () => {
  const allow = encodeAllow({
    allow: true,
    reason: 'apikey',
    descriptorId: 'd',
    upstreamHeaders: { a: '1' },
    removeUpstreamHeaders: ['b'],
    responseHeaders: { c: '3' },
  });
  const ref = CheckResponse.encode(
    CheckResponse.fromObject({
      status: {},
      okResponse: {
        headers: [{ header: { key: 'a', value: '1' }, appendAction: 'OVERWRITE_IF_EXISTS_OR_ADD' }],
        headersToRemove: ['b'],
        responseHeadersToAdd: [{ header: { key: 'c', value: '3' }, appendAction: 'OVERWRITE_IF_EXISTS_OR_ADD' }],
      },
    }),
  ).finish();
  assert.equal(allow.toString('hex'), Buffer.from(ref).toString('hex'));
  const deny = encodeDeny({ status: 429, headers: { 'Otoroshi-Error': 'true' }, body: '{}' });
  const refDeny = CheckResponse.encode(
    CheckResponse.fromObject({
      status: { code: 7 },
      deniedResponse: {
        status: { code: 429 },
        headers: [{ header: { key: 'Otoroshi-Error', value: 'true' }, appendAction: 'OVERWRITE_IF_EXISTS_OR_ADD' }],
        body: '{}',
      },
    }),
  ).finish();
  assert.equal(deny.toString('hex'), Buffer.from(refDeny).toString('hex'));
});

/** A minimal apikey check over a given quota store (the real Authorizer is tested in authz-decide). */
function quotaCheck(quota: QuotaStore) {
  return async (input: CheckInput): Promise<Decision> => {
    const clientId = input.headers['otoroshi-client-id'] ?? '';
    let q;
    try {
      q = await quota.consume(clientId, { throttlingQuota: 1000, dailyQuota: 5, monthlyQuota: 100 }, Date.now());
    } catch (err) {
      if (err instanceof QuotaStoreUnavailableError)
        return {
          allow: false,
          reason: 'quota_store_unavailable',
          status: 503,
          message: 'Service unavailable',
          code: 'errors.service.unavailable',
        };
      throw err;
    }
    if (!q.allowed)
      return {
        allow: false,
        reason: 'quota_exceeded',
        status: 429,
        message: 'You performed too much requests',
        code: 'errors.too.much.requests',
      };
    return {
      allow: true,
      reason: 'apikey',
      descriptorId: 'd',
      clientId,
      upstreamHeaders: {},
      removeUpstreamHeaders: [],
      responseHeaders: { 'Otoroshi-Daily-Calls-Remaining': String(q.dailyRemaining), 'X-Degraded': String(q.degraded) },
    };
  };
}

test.skipIf(redisAvailable() ? false : REDIS_SKIP_MESSAGE)(
  'two gRPC servers sharing Redis: remaining counts down across both; Redis down → fail-open / fail-closed 503',
  async () => {
    const redis = await startRedis();
    const logger = pino({ level: 'silent' });
    const stores = [
      createQuotaStore({ redisUrl: redis.url }),
      createQuotaStore({ redisUrl: redis.url }),
      createQuotaStore({ redisUrl: redis.url, failMode: 'closed' }),
    ] as FailoverQuotaStore[];
    await Promise.all(stores.map((s) => s.primary.ready()));
    const servers = await Promise.all(
      stores.map((s) => startAuthzServer('127.0.0.1', 0, { check: quotaCheck(s), logger })),
    );
    const clients = servers.map((s) => new grpc.Client(`127.0.0.1:${s.port}`, grpc.credentials.createInsecure()));
    try {
      const req = checkRequest({ headers: { 'otoroshi-client-id': 'shared-key', accept: 'application/json' } });
      const remaining: string[] = [];
      for (let i = 0; i < 5; i++) {
        const r = await call(clients[i % 2]!, req);
        remaining.push(headersOf(r.okResponse.responseHeadersToAdd)['Otoroshi-Daily-Calls-Remaining']!);
      }
      assert.deepEqual(remaining, ['4', '3', '2', '1', '0']);
      assert.equal((await call(clients[0]!, req)).deniedResponse.status.code, 429);
      assert.equal((await call(clients[1]!, req)).deniedResponse.status.code, 429);

      redis.kill();
      // Polled, not slept on: how soon a client notices the dead server depends on the machine's load.
      const poll = async <T>(what: string, probe: () => Promise<T | undefined>): Promise<T> => {
        for (let i = 0; i < 600; i++) {
          const v = await probe();
          if (v !== undefined) return v;
          await new Promise((r) => setTimeout(r, 50));
        }
        throw new Error(`timed out waiting for ${what}`);
      };
      const open = await poll('a degraded fail-open answer', async () => {
        const r = await call(clients[0]!, req);
        return r.okResponse && headersOf(r.okResponse.responseHeadersToAdd)['X-Degraded'] === 'true' ? r : undefined;
      });
      assert.ok(open.okResponse, 'fail-open: local counters allow');
      const closed = await poll('a fail-closed 503', async () => {
        const r = await call(clients[2]!, req);
        return r.deniedResponse?.status?.code === 503 ? r : undefined;
      });
      assert.equal(closed.deniedResponse.status.code, 503);

      await redis.restart();
      await Promise.all(stores.map((s) => s.primary.ready()));
      // Degraded answers use local counters and never touch Redis: the first non-degraded one is Redis' first count.
      const after = await poll('a non-degraded answer', async () => {
        const r = await call(clients[1]!, req);
        return r.okResponse && headersOf(r.okResponse.responseHeadersToAdd)['X-Degraded'] === 'false' ? r : undefined;
      });
      // Redis restarted empty
      assert.equal(headersOf(after.okResponse.responseHeadersToAdd)['Otoroshi-Daily-Calls-Remaining'], '4');
    } finally {
      for (const c of clients) c.close();
      await Promise.all(servers.map((s) => s.stop()));
      await Promise.all(stores.map((s) => s.close()));
      await redis.stop();
    }
  },
);

test(
  'decoder: a stream of varied requests decodes like protobufjs reflection (name interning, ' + 'last-value caches)',
  () => {
    // pseudo-random but reproducible: names repeat (interned), values sometimes repeat (cached), sometimes not
    let seed = 7;
    const rnd = (n: number): number => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return seed % n;
    };
    const names = [
      'accept',
      'User-Agent',
      'x-request-id',
      'Otoroshi-Client-Id',
      'otoroshi-client-secret',
      'x-é',
      'cookie',
      'X-Forwarded-For',
    ];
    const values = ['application/json', 'text/html', '', 'Mozilla/5.0', 'é-ü-€', 'a'.repeat(70), 'svc-1', 'svc-2'];
    for (let i = 0; i < 400; i++) {
      const headers: Record<string, string> = {};
      for (let j = 0; j < 1 + rnd(6); j++)
        headers[names[rnd(names.length)]!] = rnd(3) === 0 ? `v-${i}-${j}` : values[rnd(values.length)]!;
      const ext: Record<string, string> =
        rnd(4) === 0
          ? { descriptor_id: `svc-${i}` }
          : { descriptor_id: values[rnd(values.length)]!, Other: values[rnd(values.length)]! };
      const method = ['GET', 'post', 'DELETE'][rnd(3)]!;
      const host = ['a.oto.tools', 'b.oto.tools:8443'][rnd(2)]!;
      const body = checkRequest({ headers, ext, method, host });
      const ref = CheckRequest.toObject(CheckRequest.decode(body), TO_OBJECT_OPTIONS) as {
        attributes: {
          request: { http: { headers: Record<string, string> } };
          contextExtensions: Record<string, string>;
        };
      };
      const want: Record<string, string> = {};
      for (const [k, v] of Object.entries(ref.attributes.request.http.headers)) want[k.toLowerCase()] = v;
      const got = decodeCheckRequest(body);
      assert.deepEqual({ ...got.headers }, want, `request ${i}`);
      assert.deepEqual({ ...got.contextExtensions }, ref.attributes.contextExtensions, `request ${i}`);
      assert.equal(got.method, method.toUpperCase());
      assert.equal(got.host, host);
      assert.equal(got.scheme, 'https');
      assert.equal(Object.getPrototypeOf(Object.getPrototypeOf(got.headers)), null, 'nothing inherited');
      assert.equal(got.headers['constructor'], undefined);
    }
    // a map entry with the value before the key (legal protobuf): no value cache mix-up
    const entry = (k: string, v: string, valueFirst: boolean): Buffer => {
      const kb = Buffer.concat([Buffer.from([0x0a, Buffer.byteLength(k)]), Buffer.from(k)]);
      const vb = Buffer.concat([Buffer.from([0x12, Buffer.byteLength(v)]), Buffer.from(v)]);
      const e = valueFirst ? Buffer.concat([vb, kb]) : Buffer.concat([kb, vb]);
      return Buffer.concat([Buffer.from([0x1a, e.length]), e]);
    };
    const wrap = (httpBody: Buffer): Buffer => {
      const http = Buffer.concat([Buffer.from([0x12, httpBody.length]), httpBody]);
      const req = Buffer.concat([Buffer.from([0x22, http.length]), http]);
      return Buffer.concat([Buffer.from([0x0a, req.length]), req]);
    };
    assert.equal(
      decodeCheckRequest(wrap(Buffer.concat([entry('accept', 'one', false), entry('x-b', 'two', false)]))).headers[
        'accept'
      ],
      'one',
    );
    const swapped = decodeCheckRequest(
      wrap(Buffer.concat([entry('x-b', 'three', false), entry('accept', 'four', true)])),
    );
    assert.deepEqual({ ...swapped.headers }, { 'x-b': 'three', accept: 'four' });
  },
);

test('allow encoder (direct) and cached deny encoder match protobufjs reflection', () => {
  const cases: Array<{ up: Record<string, string>; rm: string[]; resp: Record<string, string> }> = [
    {
      up: { 'Otoroshi-Client-Id': 'k', 'X-Ü': 'é€'.repeat(40) },
      rm: ['otoroshi-client-secret', 'x-long-' + 'a'.repeat(200)],
      resp: { 'Otoroshi-Daily-Calls-Remaining': '999999999', e: '' },
    },
    { up: {}, rm: [], resp: { a: 'b'.repeat(20_000) } },
    { up: { a: '1' }, rm: [], resp: {} },
  ];
  for (const c of cases) {
    const got = encodeAllow({
      allow: true,
      reason: 'apikey',
      descriptorId: 'd',
      upstreamHeaders: c.up,
      removeUpstreamHeaders: c.rm,
      responseHeaders: c.resp,
    });
    const hv = (h: Record<string, string>) =>
      Object.entries(h).map(([key, value]) => ({ header: { key, value }, appendAction: 'OVERWRITE_IF_EXISTS_OR_ADD' }));
    const ref = CheckResponse.encode(
      CheckResponse.fromObject({
        status: {},
        okResponse: { headers: hv(c.up), headersToRemove: c.rm, responseHeadersToAdd: hv(c.resp) },
      }),
    ).finish();
    assert.equal(got.toString('hex'), Buffer.from(ref).toString('hex'));
  }
  // With an apikey: its client id also goes to dynamic_metadata (routes set Otoroshi-Client-Id from it).
  for (const clientId of ['k', 'ü'.repeat(100)]) {
    const got = encodeAllow({
      allow: true,
      reason: 'apikey',
      descriptorId: 'd',
      clientId,
      upstreamHeaders: { 'Otoroshi-Client-Id': clientId },
      removeUpstreamHeaders: ['x'],
      responseHeaders: {},
    });
    const ref = CheckResponse.encode(
      CheckResponse.fromObject({
        status: {},
        okResponse: {
          headers: [
            { header: { key: 'Otoroshi-Client-Id', value: clientId }, appendAction: 'OVERWRITE_IF_EXISTS_OR_ADD' },
          ],
          headersToRemove: ['x'],
        },
        dynamicMetadata: { fields: { client_id: { stringValue: clientId } } },
      }),
    ).finish();
    assert.equal(got.toString('hex'), Buffer.from(ref).toString('hex'));
  }
  const d: Decision = {
    allow: false,
    reason: 'no_apikey',
    status: 400,
    message: 'No ApiKey provided',
    code: 'errors.no.api.key',
  };
  const json1 = encodeDecision(d, { headers: { accept: 'application/json' } });
  const html = encodeDecision(d, { headers: { accept: 'text/html' } });
  const json2 = encodeDecision(d, { headers: { accept: 'application/json' } });
  assert.equal(json1, json2, 'same answer reused');
  assert.notEqual(json1.toString('hex'), html.toString('hex'));
  const withState = (s: string) =>
    CheckResponse.toObject(
      CheckResponse.decode(encodeDecision(d, { headers: { accept: 'application/json', 'otoroshi-state': s } })),
      TO_OBJECT_OPTIONS,
    ) as { deniedResponse: { headers: Array<{ header: { key: string; value: string } }> } };
  assert.equal(
    withState('s1').deniedResponse.headers.find((h) => h.header.key === 'Otoroshi-State-Resp')?.header.value,
    's1',
  );
  assert.equal(
    withState('s2').deniedResponse.headers.find((h) => h.header.key === 'Otoroshi-State-Resp')?.header.value,
    's2',
  );
  assert.equal(
    encodeDecision(d, { headers: { accept: 'application/json' } }).toString('hex'),
    encodeDeny(errorResponse(d, 'application/json')).toString('hex'),
  );
});
