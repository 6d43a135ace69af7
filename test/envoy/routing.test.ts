// Routing through a real Envoy: hosts (exact, wildcards, upper-case Host), paths and rewrites,
// header matching, weights, with both ADS flavours. Zero NACKs after each test (startGateway).
import assert from 'node:assert/strict';
import { descriptorYaml, envoyTest, startGateway } from '../helpers/envoy.js';
import { startHttpBackends, type HttpBackend } from '../helpers/http-backends.js';

const descriptor = descriptorYaml;

function json(body: string): { backend: string; path: string; headers: Record<string, string> } {
  return JSON.parse(body) as { backend: string; path: string; headers: Record<string, string> };
}

for (const delta of [true, false]) {
  const flavour = delta ? 'Delta' : 'SotW';
  envoyTest(`Envoy (${flavour}): exact, wildcard and upper-case hosts route to their descriptors`, async (t, bin) => {
    const [a, b, c, d] = await startHttpBackends(['exact', 'suffix', 'middle', 'prefix']);
    t.onTestFinished(async () => {
      await Promise.all([a, b, c, d].map((x) => x?.stop()));
    });
    const [ba, bb, bc, bd] = [a, b, c, d] as [HttpBackend, HttpBackend, HttpBackend, HttpBackend];
    const files = {
      'd.yaml':
        descriptor('exact', `hosts: [api.oto.tools]\ntargets: [{url: "http://127.0.0.1:${ba.port}"}]`) +
        descriptor('suffix', `hosts: ["*.suffix.oto.tools"]\ntargets: [{url: "http://127.0.0.1:${bb.port}"}]`) +
        descriptor('middle', `hosts: ["api-*.middle.oto.tools"]\ntargets: [{url: "http://127.0.0.1:${bc.port}"}]`) +
        descriptor('prefix', `hosts: ["prefix.oto.*"]\ntargets: [{url: "http://127.0.0.1:${bd.port}"}]`),
    };
    const gw = await startGateway(t, bin, { files, delta });
    const who = async (host: string): Promise<string> => {
      const r = await gw.request({ host, path: '/x' });
      return r.status === 200 ? json(r.body).backend : `status ${r.status}`;
    };
    assert.equal(await who('api.oto.tools'), 'exact');
    assert.equal(await who('API.OTO.TOOLS'), 'exact');
    assert.equal(await who('api.oto.tools:80'), 'exact');
    assert.equal(await who('a.suffix.oto.tools'), 'suffix');
    assert.equal(await who('A.B.SUFFIX.oto.tools'), 'suffix');
    assert.equal(await who('api-7.middle.oto.tools'), 'middle');
    assert.equal(await who('API-7.Middle.oto.tools'), 'middle');
    assert.equal(await who('prefix.oto.io'), 'prefix');
    assert.equal(await who('nope.oto.tools'), 'status 404');
  });
}

envoyTest('Envoy: matchingRoot, root and stripPath rewrite the path as Otoroshi does', async (t, bin) => {
  const [strip, keep, rooted] = (await startHttpBackends(['strip', 'keep', 'rooted'])) as HttpBackend[];
  t.onTestFinished(async () => {
    await Promise.all([strip, keep, rooted].map((x) => x?.stop()));
  });
  const files = {
    'd.yaml':
      descriptor(
        'strip',
        `hosts: [r.oto.tools]\nmatchingRoot: /strip/\nstripPath: true\ntargets: [{url: "http://127.0.0.1:${strip?.port}"}]`,
      ) +
      descriptor(
        'keep',
        `hosts: [r.oto.tools]\nmatchingRoot: /keep\nstripPath: false\ntargets: [{url: "http://127.0.0.1:${keep?.port}"}]`,
      ) +
      descriptor(
        'rooted',
        `hosts: [r.oto.tools]\nmatchingRoot: /rooted\nroot: /backend/v1\ntargets: [{url: "http://127.0.0.1:${rooted?.port}"}]`,
      ),
  };
  const gw = await startGateway(t, bin, { files });
  const seen = async (p: string): Promise<string> => {
    const r = await gw.request({ host: 'r.oto.tools', path: p });
    assert.equal(r.status, 200, `${p}: ${r.body}`);
    const j = json(r.body);
    return `${j.backend} ${j.path}`;
  };
  assert.equal(await seen('/strip/users?x=1'), 'strip /users?x=1');
  // Otoroshi's literal concatenation: root `/` + what follows `/keep` (stripPath: false keeps it all).
  assert.equal(await seen('/keep/users'), 'keep /keep/users');
  assert.equal(await seen('/rooted/users'), 'rooted /backend/v1/users');
});

envoyTest('Envoy: matchingHeaders pick the descriptor; weights 3:1 split ~75/25 over 400 requests', async (t, bin) => {
  const [v1, v1b, v2] = (await startHttpBackends(['v1', 'v1b', 'v2'])) as HttpBackend[];
  t.onTestFinished(async () => {
    await Promise.all([v1, v1b, v2].map((x) => x?.stop()));
  });
  const files = {
    'd.yaml':
      descriptor(
        'main',
        `hosts: [w.oto.tools]\ntargets: [{url: "http://127.0.0.1:${v1?.port}` +
          `", weight: 3}, {url: "http://127.0.0.1:${v1b?.port}", weight: 1}]`,
      ) +
      descriptor(
        'v2',
        `hosts: [w.oto.tools]\nmatchingHeaders: {x-version: 'v2(\\.[0-9]+)?'}\ntargets: [{url: "http://127.0.0.1:${v2?.port}"}]`,
      ),
  };
  const gw = await startGateway(t, bin, { files });
  assert.equal(json((await gw.request({ host: 'w.oto.tools', headers: { 'x-version': 'v2.1' } })).body).backend, 'v2');
  assert.notEqual(
    json((await gw.request({ host: 'w.oto.tools', headers: { 'x-version': 'v2.x' } })).body).backend,
    'v2',
  );
  const counts: Record<string, number> = {};
  for (let i = 0; i < 400; i++) {
    const r = await gw.request({ host: 'w.oto.tools', path: `/n/${i}` });
    const id = json(r.body).backend;
    counts[id] = (counts[id] ?? 0) + 1;
  }
  // Binomial(400, 0.75): mean 300, sd ~8.7; ±5 sd keeps this deterministic in practice.
  assert.ok((counts.v1 ?? 0) >= 256 && (counts.v1 ?? 0) <= 344, JSON.stringify(counts));
  assert.equal((counts.v1 ?? 0) + (counts.v1b ?? 0), 400);
});
