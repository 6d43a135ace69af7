// Rebuilds let the event loop run between their stages (src/stages/publish.ts), yet what a stream
// receives stays atomic: every response of a version holds that version's config only, for every
// resource type. Each generation g of the config moves all descriptors at once (every endpoint to
// port 21000 + g, every route under /v<g>): a response mixing old and new would hold two ports, two
// prefixes, or an RDS and an EDS of the same version from different generations.
import { test } from 'vitest';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startServer, makeLogger } from '../src/main.js';
import { AdsClient, TYPE_URLS, anyName, decodeAny } from './helpers/ads-client.js';
import { eventually, testConfig, TEST_GATEWAY_TOKEN } from './helpers/envoy.js';
import { descriptorYaml } from './fixtures/index.js';
import type { DiscoveryResponse } from '../src/xds/server/messages.js';

const N = 150;
const GENERATIONS = 4;

function config(g: number): string {
  return Array.from({ length: N }, (_x, i) =>
    descriptorYaml({
      name: `a${i}`,
      namespace: 'default',
      hosts: [`a${i}.atomic.test`],
      forceHttps: false,
      enforceSecureCommunication: false,
      targets: [`http://127.0.0.1:${21000 + g}`],
      spec: `matchingRoot: /v${g}`,
    }),
  ).join('---\n');
}

/** The distinct numbers captured by `re` in the JSON of the response's resources. */
function captured(r: DiscoveryResponse, re: RegExp): Set<number> {
  const out = new Set<number>();
  for (const m of JSON.stringify(r.resources.map(decodeAny)).matchAll(re)) out.add(Number(m[1]));
  return out;
}

test('a stream never receives a version that mixes the old and the new config', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'oxds-atomic-'));
  t.onTestFinished(() => fs.rmSync(dir, { recursive: true, force: true }));
  fs.writeFileSync(path.join(dir, 'all.yaml'), config(1));
  const server = await startServer(testConfig(dir, { envoyAuthz: 'off' }), makeLogger('silent'));
  t.onTestFinished(() => server.stop());
  const client = new AdsClient(server.xdsPort, { node: { id: 'atomic' }, bearer: TEST_GATEWAY_TOKEN });
  t.onTestFinished(() => client.close());
  const initial = await client.syncLikeEnvoy(10_000);
  assert.ok(initial.has(TYPE_URLS.route) && initial.has(TYPE_URLS.endpoint), 'RDS and EDS subscribed');
  const genOfVersion = new Map<string, { gen: number; type: string }>();
  const latest = new Map<string, number>();
  const problems: string[] = [];
  const record = (r: DiscoveryResponse): void => {
    if (r.typeUrl !== TYPE_URLS.route && r.typeUrl !== TYPE_URLS.endpoint) return;
    const gens =
      r.typeUrl === TYPE_URLS.endpoint ? [...captured(r, /"portValue":21(\d{3})/g)] : [...captured(r, /\/v(\d+)/g)];
    if (gens.length !== 1) problems.push(`${r.typeUrl} version ${r.versionInfo}: generations ${gens.join(',')}`);
    const gen = gens[0] ?? -1;
    const seen = genOfVersion.get(r.versionInfo);
    if (seen && seen.gen !== gen)
      problems.push(`version ${r.versionInfo}: ${seen.type} of generation ${seen.gen}, ${r.typeUrl} of ${gen}`);
    genOfVersion.set(r.versionInfo, { gen, type: r.typeUrl });
    latest.set(r.typeUrl, gen);
  };
  for (const r of initial.values()) record(r);
  const pump = (async () => {
    for (;;) {
      const r = await client.nextSotw(60_000).catch(() => undefined);
      if (!r) return;
      record(r);
      client.ack(r, r.typeUrl === TYPE_URLS.route || r.typeUrl === TYPE_URLS.endpoint ? r.resources.map(anyName) : []);
    }
  })();
  for (let g = 2; g <= GENERATIONS; g++) {
    fs.writeFileSync(path.join(dir, 'all.yaml'), config(g));
    await server.rebuildNow();
    await eventually(
      `RDS and EDS of generation ${g} received`,
      () =>
        problems.length > 0 || (latest.get(TYPE_URLS.route) === g && latest.get(TYPE_URLS.endpoint) === g)
          ? true
          : undefined,
      60_000,
    );
    assert.deepEqual(problems, [], `after generation ${g}`);
  }
  client.close();
  await pump;
  assert.deepEqual(problems, []);
  assert.ok(genOfVersion.size >= GENERATIONS, `responses of ${genOfVersion.size} versions checked`);
});
