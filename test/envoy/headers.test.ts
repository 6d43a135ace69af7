// Otoroshi's own headers through a real Envoy, SotW (RDS) and Delta (VHDS): what the backend and the
// client see on forwarded requests (stripped, added, user overrides, user removals, headers back or
// the upstream's own), and that Otoroshi's direct answers (404, redirects, errors) carry exactly their
// own headers. Zero NACKs after each test (startGateway).
import assert from 'node:assert/strict';
import { envoyTest, startGateway, type HttpResult } from '../helpers/envoy.js';
import { startHttpBackends, type HttpBackend } from '../helpers/http-backends.js';
import { descriptorYaml } from '../fixtures/index.js';

function descriptor(name: string, port: number, spec = ''): string {
  const target = `targets: [{url: "http://127.0.0.1:${port}"}]`;
  const https = spec.includes('forceHttps') ? '' : 'forceHttps: false\n';
  const body = `hosts: [${name}.oto.tools]\n${https}${target}\n${spec}`;
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
      quiet.behaviour.responseHeaders = { 'Otoroshi-Request-Id': 'from-upstream', 'Otoroshi-Proxy-Latency': 'up' };
      const files = {
        'd.yaml':
          descriptor('plain', b.port) +
          descriptor('xfh', b.port, 'xForwardedHeaders: true') +
          descriptor(
            'mine',
            b.port,
            'additionalHeaders: {Otoroshi-State: mine, Otoroshi-Request-Id: literal-id}\n' +
              'missingOnlyHeadersIn: {Otoroshi-Proxied-Host: only-if-absent, X-Keep: not-this}',
          ) +
          descriptor('drops', b.port, 'removeHeadersIn: [Otoroshi-Request-Id, otoroshi-proxied-host, X-Keep]') +
          descriptor('noid', b.port, 'removeHeadersIn: [x-request-id]') +
          descriptor('quiet', quiet.port, 'sendOtoroshiHeadersBack: false') +
          descriptor('secure', b.port, 'forceHttps: true') +
          descriptor(
            'moved',
            b.port,
            'redirection: {enabled: true, code: 301, to: "https://elsewhere.example.com/x"}',
          ) +
          descriptor('maint', b.port, 'maintenanceMode: true') +
          descriptor('ro', b.port, 'readOnly: true') +
          descriptor('hv', b.port, 'headersVerification: {x-token: expected}'),
      };
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

      // sendOtoroshiHeadersBack off: none of Otoroshi's headers back, the upstream's own pass through.
      const q = await gw.request({ host: 'quiet.oto.tools' });
      assert.equal(q.status, 200);
      assert.equal(q.headers['otoroshi-request-id'], 'from-upstream');
      assert.equal(q.headers['otoroshi-proxy-latency'], 'up');
      assert.equal(q.headers['otoroshi-request-timestamp'], undefined);
      assert.equal(upstream(q)['otoroshi-proxied-host'], 'quiet.oto.tools');

      // Direct answers: their own headers, none of Otoroshi's forwarding headers.
      const error = ['connection', 'content-length', 'content-type', 'otoroshi-error', 'otoroshi-error-msg'];
      const moved = ['connection', 'content-length', 'location'];
      const answers: [string, HttpResult, number, string[]][] = [
        ['404', await gw.request({ host: 'nothing.oto.tools' }), 404, error],
        ['forceHttps', await gw.request({ host: 'secure.oto.tools' }), 303, moved],
        ['redirection', await gw.request({ host: 'moved.oto.tools' }), 301, moved],
        ['maintenance', await gw.request({ host: 'maint.oto.tools' }), 503, error],
        ['readOnly', await gw.request({ host: 'ro.oto.tools', method: 'POST' }), 405, error],
        ['headersVerification', await gw.request({ host: 'hv.oto.tools' }), 400, error],
      ];
      for (const [what, r, status, expected] of answers) {
        assert.equal(r.status, status, `${what}: ${r.body}`);
        assert.deepEqual(names(r), expected, what);
      }
      assert.equal(b.seen.filter((s) => /^(secure|moved|maint|hv)\./.test(String(s.headers.host))).length, 0);
    },
  );
}
