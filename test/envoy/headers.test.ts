// Otoroshi's own headers through a real Envoy, SotW (RDS) and Delta (VHDS): what the backend and the
// client see on forwarded requests (stripped, added, user overrides, user removals, headers back or
// none of them), and that Otoroshi's direct answers (404, redirects, errors, IP filtering) carry
// exactly their own headers, also next to routes that send the headers back on the same host. Zero
// NACKs after each test (startGateway).
import assert from 'node:assert/strict';
import { envoyTest, startGateway, type HttpResult } from '../helpers/envoy.js';
import { startHttpBackends, type HttpBackend } from '../helpers/http-backends.js';
import { descriptorYaml } from '../fixtures/index.js';

function descriptor(name: string, port: number, spec = '', host = name): string {
  const target = `targets: [{url: "http://127.0.0.1:${port}"}]`;
  const https = spec.includes('forceHttps') ? '' : 'forceHttps: false\n';
  const body = `hosts: [${host}.oto.tools]\n${https}${target}\n${spec}`;
  return `${descriptorYaml({ name, namespace: 'default', publicPatterns: ['/.*'], spec: body })}---\n`;
}

type Headers = Record<string, string>;
const upstream = (r: HttpResult): Headers => (JSON.parse(r.body) as { headers: Headers }).headers;
const TIMESTAMP = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d{4}$/;
/** Headers a client sends that Otoroshi never forwards, and two it sets itself. */
const FORGED: Headers = {
  'Otoroshi-State': 'forged',
  'Otoroshi-Claim': 'forged',
  'Otoroshi-Client-Id': 'forged',
  'Otoroshi-Client-Secret': 'forged',
  'Otoroshi-Authorization': 'forged',
  'Otoroshi-Proxied-Host': 'forged',
  'Otoroshi-Request-Timestamp': 'forged',
  'X-Forwarded-Host': 'forged',
  'X-Keep': 'kept',
};

/** Response header names of a direct answer, without the ones whose presence varies by Envoy build. */
const names = (r: HttpResult): string[] =>
  Object.keys(r.headers)
    .filter((h) => h !== 'date')
    .sort();

for (const delta of [false, true]) {
  envoyTest(
    `Envoy (${delta ? 'Delta, VHDS' : 'SotW, RDS'}): Otoroshi's headers upstream and back, user overrides and ` +
      'removals, the upstream’s own headers; direct answers carry only their own headers',
    async (t, bin) => {
      const [b, quiet] = (await startHttpBackends(['b', 'quiet'])) as [HttpBackend, HttpBackend];
      t.onTestFinished(async () => {
        await Promise.all([b.stop(), quiet.stop()]);
      });
      quiet.behaviour.responseHeaders = {
        'Otoroshi-Request-Id': 'from-upstream',
        'Otoroshi-Proxy-Latency': 'up',
        'X-Up': 'up',
      };
      // name, backend port, spec, host (name when absent)
      const docs: [string, number, string?, string?][] = [
        ['plain', b.port],
        ['xfh', b.port, 'xForwardedHeaders: true'],
        [
          'mine',
          b.port,
          'additionalHeaders: {Otoroshi-State: mine, Otoroshi-Request-Id: literal-id}\n' +
            'missingOnlyHeadersIn: {Otoroshi-Proxied-Host: only-if-absent, X-Keep: not-this}',
        ],
        ['drops', b.port, 'removeHeadersIn: [Otoroshi-Request-Id, otoroshi-proxied-host, X-Keep]'],
        ['noid', b.port, 'removeHeadersIn: [x-request-id]'],
        ['quiet', quiet.port, 'sendOtoroshiHeadersBack: false'],
        [
          'quietmine',
          quiet.port,
          'sendOtoroshiHeadersBack: false\nadditionalHeadersOut: {Otoroshi-Proxy-Latency: mine}',
        ],
        ['outdrops', quiet.port, 'removeHeadersOut: [Otoroshi-Request-Id, otoroshi-proxy-latency, X-Up]'],
        ['outmine', quiet.port, 'additionalHeadersOut: {Otoroshi-Request-Id: literal-out}'],
        ['mixedquiet', quiet.port, 'sendOtoroshiHeadersBack: false\nmatchingRoot: /quiet', 'mixed'],
        ['mixed', b.port, 'matchingRoot: /loud'],
        ['mixedro', b.port, 'readOnly: true\nmatchingRoot: /ro', 'mixed'],
        ['mixedmaint', b.port, 'maintenanceMode: true\nmatchingRoot: /maint', 'mixed'],
        ['scoped', b.port, 'matchingRoot: /api'],
        ['blocked', b.port, 'ipFiltering: {blacklist: [127.0.0.1]}'],
        ['secure', b.port, 'forceHttps: true'],
        ['moved', b.port, 'redirection: {enabled: true, code: 301, to: "https://elsewhere.example.com/x"}'],
        ['maint', b.port, 'maintenanceMode: true'],
        ['ro', b.port, 'readOnly: true'],
        ['hv', b.port, 'headersVerification: {x-token: expected}'],
      ];
      const files = { 'd.yaml': docs.map(([n, port, spec, host]) => descriptor(n, port, spec, host)).join('') };
      const gw = await startGateway(t, bin, { files, delta });

      const plain = await gw.request({ host: 'plain.oto.tools', headers: FORGED });
      assert.equal(plain.status, 200, plain.body);
      const up = upstream(plain);
      for (const h of ['otoroshi-state', 'otoroshi-claim', 'otoroshi-client-id', 'otoroshi-client-secret'])
        assert.equal(up[h], undefined, `${h} is stripped`);
      assert.equal(up['otoroshi-authorization'], undefined);
      assert.equal(up['x-forwarded-host'], undefined, 'xForwardedHeaders off strips X-Forwarded-*');
      assert.equal(up['x-keep'], 'kept');
      assert.equal(up['otoroshi-proxied-host'], 'plain.oto.tools');
      assert.ok(up['x-request-id'], JSON.stringify(up));
      assert.equal(up['otoroshi-request-id'], up['x-request-id']);
      assert.match(String(up['otoroshi-request-timestamp']), TIMESTAMP);
      assert.equal(plain.headers['otoroshi-request-id'], up['x-request-id'], 'the same id back to the client');
      assert.match(String(plain.headers['otoroshi-request-timestamp']), TIMESTAMP);
      assert.match(String(plain.headers['otoroshi-proxy-latency']), /^\d+$/);

      const xfh = upstream(await gw.request({ host: 'xfh.oto.tools', headers: FORGED }));
      assert.equal(xfh['x-forwarded-host'], 'xfh.oto.tools');
      assert.equal(xfh['otoroshi-proxied-host'], 'xfh.oto.tools');
      assert.equal(xfh['otoroshi-state'], undefined);

      // The user's headers override Otoroshi's; a stripped name the user adds is added (not removed).
      const mine = upstream(await gw.request({ host: 'mine.oto.tools', headers: FORGED }));
      assert.equal(mine['otoroshi-state'], 'mine');
      assert.equal(mine['otoroshi-request-id'], 'literal-id');
      assert.equal(mine['otoroshi-proxied-host'], 'mine.oto.tools', 'missingOnly never replaces a set header');
      assert.equal(mine['x-keep'], 'kept');
      assert.equal(mine['otoroshi-claim'], undefined);

      // The user's removals apply to what the client sent, before Otoroshi's own headers are added.
      const drops = upstream(await gw.request({ host: 'drops.oto.tools', headers: FORGED }));
      assert.equal(drops['x-keep'], undefined);
      assert.equal(drops['otoroshi-request-id'], drops['x-request-id']);
      assert.equal(drops['otoroshi-proxied-host'], 'drops.oto.tools');
      assert.match(String(drops['otoroshi-request-timestamp']), TIMESTAMP);
      const noid = await gw.request({ host: 'noid.oto.tools' });
      assert.equal(upstream(noid)['x-request-id'], undefined);
      assert.equal(upstream(noid)['otoroshi-request-id'], undefined, 'no request id left to copy');
      assert.equal(noid.headers['otoroshi-request-id'], noid.headers['x-request-id']);
      assert.equal(upstream(noid)['otoroshi-proxied-host'], 'noid.oto.tools');

      // sendOtoroshiHeadersBack off: none of those headers back, the upstream's own dropped too (Otoroshi
      // always drops them from the upstream's response, and adds its own only when the flag is on).
      const q = await gw.request({ host: 'quiet.oto.tools' });
      assert.equal(q.status, 200);
      assert.equal(q.headers['otoroshi-request-id'], undefined);
      assert.equal(q.headers['otoroshi-proxy-latency'], undefined);
      assert.equal(q.headers['otoroshi-request-timestamp'], undefined);
      assert.equal(q.headers['x-up'], 'up', 'the upstream’s other headers pass through');
      assert.equal(upstream(q)['otoroshi-proxied-host'], 'quiet.oto.tools');
      const qm = await gw.request({ host: 'quietmine.oto.tools' });
      assert.equal(qm.headers['otoroshi-proxy-latency'], 'mine', 'additionalHeadersOut still applies');
      assert.equal(qm.headers['otoroshi-request-id'], undefined);

      // The user's response removals apply to the upstream's headers, before Otoroshi's are added back;
      // the user's additions override Otoroshi's.
      const od = await gw.request({ host: 'outdrops.oto.tools' });
      assert.equal(od.headers['x-up'], undefined);
      assert.equal(od.headers['otoroshi-request-id'], upstream(od)['x-request-id']);
      assert.match(String(od.headers['otoroshi-proxy-latency']), /^\d+$/);
      assert.match(String(od.headers['otoroshi-request-timestamp']), TIMESTAMP);
      const om = await gw.request({ host: 'outmine.oto.tools' });
      assert.equal(om.headers['otoroshi-request-id'], 'literal-out');
      assert.match(String(om.headers['otoroshi-proxy-latency']), /^\d+$/);

      // One host, routes with and without the headers back.
      const loud = await gw.request({ host: 'mixed.oto.tools', path: '/loud' });
      assert.equal(loud.status, 200, loud.body);
      assert.equal(loud.headers['otoroshi-request-id'], upstream(loud)['x-request-id']);
      assert.match(String(loud.headers['otoroshi-proxy-latency']), /^\d+$/);
      const mq = await gw.request({ host: 'mixed.oto.tools', path: '/quiet' });
      assert.equal(mq.status, 200, mq.body);
      assert.equal(mq.headers['otoroshi-request-id'], undefined);
      assert.equal(mq.headers['otoroshi-request-timestamp'], undefined);
      assert.equal(mq.headers['x-up'], 'up');

      // Direct answers: their own headers, none of Otoroshi's forwarding headers.
      const error = ['connection', 'content-length', 'content-type', 'otoroshi-error', 'otoroshi-error-msg'];
      const moved = ['connection', 'content-length', 'location'];
      // Envoy's own local replies on a forwarding route (RBAC here, ext_authz denials alike) get the
      // route's headers back (not the latency: no response duration yet), from the route or the route
      // configuration alike.
      const forbidden = [...error, 'otoroshi-request-id', 'otoroshi-request-timestamp'].sort();
      const answers: [string, HttpResult, number, string[]][] = [
        ['404', await gw.request({ host: 'nothing.oto.tools' }), 404, error],
        ['forceHttps', await gw.request({ host: 'secure.oto.tools' }), 303, moved],
        ['redirection', await gw.request({ host: 'moved.oto.tools' }), 301, moved],
        ['maintenance', await gw.request({ host: 'maint.oto.tools' }), 503, error],
        ['readOnly', await gw.request({ host: 'ro.oto.tools', method: 'POST' }), 405, error],
        ['headersVerification', await gw.request({ host: 'hv.oto.tools' }), 400, error],
        // On hosts whose other routes send the headers back.
        ['404 next to a route', await gw.request({ host: 'scoped.oto.tools', path: '/other' }), 404, error],
        ['404 on a mixed host', await gw.request({ host: 'mixed.oto.tools', path: '/nope' }), 404, error],
        [
          'readOnly, mixed host',
          await gw.request({ host: 'mixed.oto.tools', path: '/ro', method: 'POST' }),
          405,
          error,
        ],
        ['maintenance, mixed host', await gw.request({ host: 'mixed.oto.tools', path: '/maint' }), 503, error],
        ['ipFiltering', await gw.request({ host: 'blocked.oto.tools' }), 403, forbidden],
      ];
      for (const [what, r, status, expected] of answers) {
        assert.equal(r.status, status, `${what}: ${r.body}`);
        assert.deepEqual(names(r), expected, what);
      }
      assert.equal(b.seen.filter((s) => /^(secure|moved|maint|hv|blocked)\./.test(String(s.headers.host))).length, 0);
    },
  );
}
