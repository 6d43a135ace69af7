// Attacks on ext_authz through a live server: catastrophic-backtracking patterns on every regex
// path, and paths / descriptor ids that decide differently from what Envoy routes.
import { test } from 'vitest';
import assert from 'node:assert/strict';
import { checkClient, checkRequest, callCheck, outcome } from '../helpers/check-client.js';
import { descriptor, live } from './harness.js';

const EVIL = '(a+)+b';
const ATTACK = 'a'.repeat(40) + '!'; // 2^40 steps for a backtracking engine

test(
  'ReDoS: "(a+)+b" in publicPatterns, privatePatterns, matchingHeaders, ' +
    'restrictions, JWT excludedPatterns and source.remove is answered at once, and ' +
    'the admin API keeps answering',
  async (t) => {
    const yaml = [
      descriptor('pub', 'pub.oto.tools', `  publicPatterns: ["/${EVIL}"]\n`),
      descriptor('priv', 'priv.oto.tools', `  publicPatterns: ["/.*"]\n  privatePatterns: ["/${EVIL}"]\n`),
      descriptor('hdr', 'hdr.oto.tools', `  publicPatterns: ["/.*"]\n  matchingHeaders: {x-evil: "${EVIL}"}\n`),
      descriptor(
        'restr',
        'restr.oto.tools',
        '  publicPatterns: ["/.*"]\n' +
          `  restrictions: {enabled: true, allowLast: true, forbidden: [{method: "*", path: "/${EVIL}"}]}\n`,
      ),
      descriptor(
        'jwtx',
        'jwtx.oto.tools',
        `  jwtVerifier: {type: ref, enabled: true, ids: [jv], excludedPatterns: ["/${EVIL}"]}\n`,
      ),
      descriptor(
        'jwtr',
        'jwtr.oto.tools',
        `  publicPatterns: ["/.*"]\n  jwtVerifier: {type: ref, enabled: true, ids: [jv]}\n`,
      ),
      `---
apiVersion: proxy.otoroshi.io/v1alpha1
kind: JwtVerifier
metadata: {name: jv, annotations: {otoroshi.io/id: jv}}
spec:
  strict: true
  source: {type: InHeader, name: X-JWT, remove: "${EVIL}"}
  algoSettings: {type: HSAlgoSettings, size: 256, secret: s3cr3t}
  strategy: {type: PassThrough, verificationSettings: {fields: {}, arrayFields: {}}}
`,
    ].join('');
    const { server } = await live(t, { 'evil.yaml': yaml });
    assert.deepEqual(
      server
        .statuses()
        .filter((s) => s.state === 'invalid')
        .map((s) => s.key),
      [],
      'the patterns are valid RE2: accepted',
    );
    const cc = checkClient(server.authzPort);
    t.onTestFinished(() => cc.close());
    const attacks: Array<[string, string, Record<string, string>]> = [
      ['pub.oto.tools', `/${ATTACK}`, {}],
      ['priv.oto.tools', `/${ATTACK}`, {}],
      ['hdr.oto.tools', '/x', { 'x-evil': ATTACK }],
      ['restr.oto.tools', `/${ATTACK}`, {}],
      ['jwtx.oto.tools', `/${ATTACK}`, {}],
      ['jwtr.oto.tools', '/x', { 'x-jwt': ATTACK }],
    ];
    for (const [host, path, headers] of attacks) {
      // callCheck has a 5 s deadline: a backtracking engine needs hours for this input.
      const o = outcome(await callCheck(cc, checkRequest({ host, path, headers })));
      assert.ok(o.status >= 400 || o.status === 0, `${host} answered`);
    }
    // The matchers are still right: a public path is public, the private one is not.
    assert.equal(outcome(await callCheck(cc, checkRequest({ host: 'pub.oto.tools', path: '/aaab' }))).status, 0);
    assert.notEqual(outcome(await callCheck(cc, checkRequest({ host: 'priv.oto.tools', path: '/aab' }))).status, 0);
    assert.equal(outcome(await callCheck(cc, checkRequest({ host: 'restr.oto.tools', path: '/aab' }))).status, 403);
    const res = await fetch(`http://127.0.0.1:${server.adminPort}/live`);
    assert.equal(res.status, 200);
  },
);

test('ReDoS: a host wildcard with many stars is matched in linear time', async (t) => {
  const stars = `${'*a'.repeat(12)}*.oto.tools`;
  const { server } = await live(t, { 'w.yaml': descriptor('w', `"${stars}"`, '  publicPatterns: ["/.*"]\n') });
  const cc = checkClient(server.authzPort);
  t.onTestFinished(() => cc.close());
  const o = outcome(await callCheck(cc, checkRequest({ host: `${'a'.repeat(200)}!.oto.toolz`, path: '/' })));
  assert.equal(o.status, 404);
  assert.equal(
    outcome(await callCheck(cc, checkRequest({ host: `${'a'.repeat(12)}.oto.tools`, path: '/' }))).status,
    0,
  );
});

test(
  'path confusion: without descriptor_id, ext_authz decides on the normalised path ' +
    '(dot segments, merged slashes, unreserved escapes) and refuses encoded slashes',
  async (t) => {
    const { server } = await live(t, {
      'p.yaml':
        descriptor(
          'api',
          'api.oto.tools',
          '  publicPatterns: ["/public/.*"]\n  privatePatterns: ["/public/secret.*"]\n',
        ) + descriptor('admin', 'api.oto.tools', '  paths: [/admin]\n  publicPatterns: ["/.*"]\n'),
    });
    const cc = checkClient(server.authzPort);
    t.onTestFinished(() => cc.close());
    const check = async (path: string): Promise<number> =>
      outcome(await callCheck(cc, checkRequest({ host: 'api.oto.tools', path }))).status;
    assert.equal(await check('/public/ok'), 0, 'a public path is public');
    for (const p of ['/public/./secret', '/public//secret', '/public/%73ecret', '/public/a/../secret']) {
      assert.notEqual(await check(p), 0, `${p} is the private /public/secret`);
    }
    for (const p of ['/public/a%2Fb', '/public/%zz', '/public/a\\b'])
      assert.equal(await check(p), 400, `${p} cannot be normalised: denied`);
    // `/public/../admin` is /admin: the admin descriptor decides (public there), as Envoy would route it.
    const o = outcome(await callCheck(cc, checkRequest({ host: 'API.OTO.TOOLS', path: '/public/../admin' })));
    assert.equal(o.status, 0);
  },
);

test('descriptor_id naming no descriptor is denied instead of falling back to host matching', async (t) => {
  const { server } = await live(t, { 'p.yaml': descriptor('open', 'open.oto.tools', '  publicPatterns: ["/.*"]\n') });
  const cc = checkClient(server.authzPort);
  t.onTestFinished(() => cc.close());
  assert.equal(outcome(await callCheck(cc, checkRequest({ host: 'open.oto.tools', path: '/' }))).status, 0);
  const o = outcome(
    await callCheck(cc, checkRequest({ host: 'open.oto.tools', path: '/', ext: { descriptor_id: 'nope' } })),
  );
  assert.equal(o.status, 404);
});
