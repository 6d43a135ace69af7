// Hostile access logs: anyone who reaches the xDS port can open an ALS stream. Random and
// structured StreamAccessLogsMessages (made-up route / cluster / client ids, odd status codes,
// negative or huge sizes and durations) and raw garbage on the running server. Properties: the
// server keeps serving (a canary ADS stream stays connected and is updated), every stream gets a
// clean answer, and metric label values stay bounded: descriptors and apikeys of the model, or
// "unknown" — never a value taken from the request (cardinality cannot be inflated from outside).
import { test } from 'vitest';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import fc from 'fast-check';
import { lookupType } from '../proto/loader.js';
import { ALS_PATH } from '../src/als.js';
import { resolveConfig } from '../src/config.js';
import { startServer, makeLogger } from '../src/main.js';
import { AdsClient, TYPE_URLS } from './helpers/ads-client.js';
import { params } from './helpers/fuzz.js';

const Msg = lookupType('envoy.service.accesslog.v3.StreamAccessLogsMessage');
const DESC = 'kubernetes-crd-import-default-greeter';

const idArb = fc.oneof(
  fc.constantFrom(DESC, `${DESC}/0`, 'oxds~x~0', '', '/', 'unknown', 'demo-client'),
  fc.string({ maxLength: 30 }),
);
const numArb = fc.oneof(
  fc.integer({ min: -1, max: 1000 }),
  fc.constantFrom(0, 2 ** 31 - 1, 2 ** 32, Number.MAX_SAFE_INTEGER),
);
const entryArb = fc.record(
  {
    commonProperties: fc.record(
      {
        routeName: idArb,
        upstreamCluster: idArb,
        duration: fc.record({ seconds: numArb, nanos: fc.integer({ min: 0, max: 999_999_999 }) }),
        timeToLastUpstreamRxByte: fc.record({ seconds: numArb, nanos: fc.integer({ min: 0, max: 999_999_999 }) }),
      },
      { requiredKeys: [] },
    ),
    request: fc.record(
      {
        requestHeadersBytes: numArb,
        requestBodyBytes: numArb,
        requestHeaders: fc.dictionary(fc.constantFrom('otoroshi-client-id', 'x-api-key', 'authorization'), idArb),
      },
      { requiredKeys: [] },
    ),
    response: fc.record(
      { responseCode: fc.record({ value: fc.integer({ min: 0, max: 1000 }) }), responseBodyBytes: numArb },
      { requiredKeys: [] },
    ),
  },
  { requiredKeys: [] },
);
const msgArb = fc.oneof(
  {
    weight: 4,
    arbitrary: fc
      .array(entryArb, { maxLength: 5 })
      .map((logEntry) => Buffer.from(Msg.encode(Msg.fromObject({ httpLogs: { logEntry } })).finish())),
  },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 200 }).map((u) => Buffer.from(u)) },
);

test('fuzz ALS: hostile access logs never crash the server nor inflate metric cardinality', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'oxds-fuzz-als-'));
  t.onTestFinished(() => fs.rmSync(dir, { recursive: true, force: true }));
  const r = resolveConfig(
    {
      config: 'examples',
      xdsPort: 0,
      adminPort: 0,
      authzPort: 0,
      dataDir: path.join(dir, '.data'),
      metricsPerApikey: 'on',
    },
    {},
  );
  assert.ok(r.ok);
  const server = await startServer(r.value, makeLogger('silent'));
  t.onTestFinished(() => server.stop());
  const canary = new AdsClient(server.xdsPort, { node: { id: 'canary' } });
  t.onTestFinished(() => canary.close());
  canary.request(TYPE_URLS.cluster);
  canary.ack(await canary.nextSotw(5000));
  const client = new grpc.Client(`127.0.0.1:${server.xdsPort}`, grpc.credentials.createInsecure());
  t.onTestFinished(() => client.close());
  const id = (b: Buffer): Buffer => b;
  let statuses = 0;
  await fc.assert(
    fc.asyncProperty(fc.array(msgArb, { minLength: 1, maxLength: 4 }), async (msgs) => {
      await new Promise<void>((resolve) => {
        const call = client.makeClientStreamRequest(ALS_PATH, id, id, { deadline: Date.now() + 5000 }, () => {
          statuses++;
          resolve();
        });
        for (const m of msgs) call.write(m);
        call.end();
      });
      if (canary.status) throw new Error(`canary ended: ${canary.status.details}`);
    }),
    params(400),
  );
  assert.ok(statuses >= 400);
  const m = await (await fetch(`http://127.0.0.1:${server.adminPort}/metrics`)).text();
  const known = new Set([...server.authorizer.getPolicy().descriptorsById.keys(), 'unknown']);
  const descriptors = new Set(
    [...m.matchAll(/^oxds_http_[a-z_]+\{[^}]*descriptor="([^"]*)"/gm)].map((x) => x[1] ?? ''),
  );
  assert.ok(descriptors.size > 0, 'some access logs were counted');
  for (const d of descriptors) assert.ok(known.has(d), `descriptor label from outside the model: ${JSON.stringify(d)}`);
  const clients = new Set([...m.matchAll(/client_id="([^"]*)"/g)].map((x) => x[1] ?? ''));
  const keys = new Set(server.authorizer.getPolicy().apikeys.keys());
  for (const c of clients) assert.ok(keys.has(c), `client_id label from outside the model: ${JSON.stringify(c)}`);
  // Still serving xDS.
  assert.equal(canary.status, undefined);
  assert.ok(server.ads.statuses().some((s) => s.nodeId === 'canary'));
});
