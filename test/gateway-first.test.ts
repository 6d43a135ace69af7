// The Envoy gateways' part of a build is published before the proxyless gRPC part is translated
// (src/xds/translate.ts gatewayFirstSteps, src/stages/publish.ts): the rest must never change what
// was published, and the whole must be exactly what a translate in one go gives.
import { test } from 'vitest';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { TranslateCache, gatewayFirstSteps, translate } from '../src/xds/translate.js';
import { runSteps } from '../src/model/steps.js';
import { buildModel } from '../src/model/build.js';
import { SnapshotCache } from '../src/xds/cache.js';
import { startServer, makeLogger } from '../src/main.js';
import { benchView } from '../bench/gen.js';
import { goldenCaseModels } from './helpers/golden-cases.js';
import { acceptsConnections, testConfig } from './helpers/envoy.js';
import { freePort } from './helpers/redis.js';
import { descriptorYaml } from './fixtures/index.js';

const cases = [
  ...goldenCaseModels(),
  { name: 'bench-300', model: buildModel(benchView(300)).model, opts: undefined },
  { name: 'bench-300 + ext_authz', model: buildModel(benchView(300)).model, opts: { authz: AUTHZ() } },
];

function AUTHZ(): { address: string; port: number; timeoutMs: number; failureModeAllow: boolean } {
  return { address: '127.0.0.1', port: 18001, timeoutMs: 250, failureModeAllow: false };
}

test(`the Envoy set of the first part is final and the whole equals translate (${cases.length} models)`, () => {
  for (const { name, model, opts } of cases) {
    const cache = new TranslateCache();
    const first = runSteps(gatewayFirstSteps(model, opts, cache));
    const envoyJson = JSON.stringify(first.envoy);
    const errorsJson = JSON.stringify(first.errors);
    const { output } = runSteps(first.rest());
    assert.equal(output.envoy, first.envoy, `${name}: the rest returns the set it published`);
    assert.equal(JSON.stringify(output.envoy), envoyJson, `${name}: the rest changed the Envoy set`);
    assert.equal(JSON.stringify(output.errors), errorsJson, `${name}: the rest added problems`);
    assert.deepEqual(output, translate(model, opts), `${name}: not what translate gives`);
    // The cache is left as a translate in one go leaves it: the next translate on it is a warm one.
    assert.deepEqual(translate(model, opts, cache), output, `${name}: warm translate after the two parts`);
  }
});

test('the golden cases include one whose descriptors drop each other in a shared virtual host', () => {
  // What makes the first part loop (routeVariants) is covered above by this case.
  const errors = cases.flatMap(({ model, opts }) => translate(model, opts).errors);
  assert.ok(errors.some((e) => /routes\(http\) at virtualHosts\["shared\.example\.com"\]/.test(e.message)));
});

test('a server publishes the Envoy snapshot first, with the xDS port listening, then the gRPC one', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'oxds-gwfirst-'));
  t.onTestFinished(() => fs.rmSync(dir, { recursive: true, force: true }));
  const write = (n: number): void =>
    fs.writeFileSync(
      path.join(dir, 'all.yaml'),
      Array.from({ length: n }, (_x, i) =>
        descriptorYaml({
          name: `d${i}`,
          namespace: 'default',
          hosts: [`d${i}.first.test`],
          targets: ['http://127.0.0.1:9'],
        }),
      ).join('---\n'),
    );
  write(20);
  const xdsPort = await freePort();
  const cache = new SnapshotCache();
  const events: Array<{ key: string; version: string; grpcThen: string | undefined; listening?: Promise<boolean> }> =
    [];
  cache.subscribe((key, snap) => {
    const e: (typeof events)[number] = { key, version: snap.version, grpcThen: cache.get('grpc')?.version };
    // Issued now, while the build is still running: refused unless the xDS server already listens.
    if (key === 'envoy' && events.length === 0) e.listening = acceptsConnections(xdsPort);
    events.push(e);
  });
  const server = await startServer(testConfig(dir, { xdsPort, envoyAuthz: 'off' }), makeLogger('silent'), undefined, {
    cache,
  });
  t.onTestFinished(() => server.stop());
  assert.equal(server.cache, cache);
  assert.deepEqual(
    events.map((e) => e.key),
    ['envoy', 'grpc'],
    'both snapshots are set by the time startServer returns, Envoy first',
  );
  const [envoy, grpc] = events as [(typeof events)[number], (typeof events)[number]];
  assert.equal(envoy.grpcThen, undefined, 'no gRPC snapshot yet when the Envoy one is set');
  assert.equal(grpc.version, envoy.version, 'one version per build for both node types');
  assert.equal(await envoy.listening, true, 'the xDS port listens when the first Envoy snapshot is set');
  assert.equal(cache.get('envoy')?.resources.cluster.size, 20);

  // A rebuild: the same order, one new version for both.
  write(21);
  await server.rebuildNow();
  const again = events.slice(2);
  assert.deepEqual(
    again.map((e) => e.key),
    ['envoy', 'grpc'],
  );
  assert.equal(again[0]?.grpcThen, envoy.version, 'the gRPC clients still had the old version meanwhile');
  assert.equal(again[1]?.version, again[0]?.version);
  assert.notEqual(again[0]?.version, envoy.version);
  assert.equal(cache.get('envoy')?.resources.cluster.size, 21);
});
