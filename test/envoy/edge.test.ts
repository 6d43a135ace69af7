// Edge features through a real Envoy: reserved header names (Host, pseudo-headers) never reject
// the route table, large regexes are accepted, Otoroshi's direct answers (forceHttps, redirection,
// maintenance, readOnly, headersVerification, ipFiltering), CORS, header add/remove both ways,
// TcpService forwarding and port conflicts. Zero NACKs after each test (startGateway).
import assert from 'node:assert/strict';
import net from 'node:net';
import { envoyTest, eventually, startGateway } from '../helpers/envoy.js';
import { startHttpBackends, type HttpBackend } from '../helpers/http-backends.js';
import { freePort } from '../helpers/redis.js';
import { descriptorYaml } from '../fixtures/index.js';

function descriptor(name: string, spec: string): string {
  return `${descriptorYaml({ name, namespace: 'default', publicPatterns: ['/.*'], spec })}---\n`;
}

interface Echo {
  backend: string;
  method: string;
  path: string;
  headers: Record<string, string>;
}

const echo = (body: string): Echo => JSON.parse(body) as Echo;

envoyTest(
  'Envoy: Host and pseudo-headers in header fields never reject the route table; Host → upstream host rewrite; no ' +
    'deprecated field',
  async (t, bin) => {
    const [bad, good] = (await startHttpBackends(['bad', 'good'])) as [HttpBackend, HttpBackend];
    t.onTestFinished(async () => {
      await Promise.all([bad.stop(), good.stop()]);
    });
    const files = {
      'd.yaml':
        descriptor(
          'reserved',
          `hosts: [reserved.oto.tools]\nforceHttps: false\ntargets: [{url: "http://127.0.0.1:${bad.port}"}]
additionalHeaders: {Host: upstream.internal, ':path': /evil, X-Added: yes}
missingOnlyHeadersIn: {HOST: other, ':method': PUT}
removeHeadersIn: [host, ':authority', x-drop]
additionalHeadersOut: {Host: out, ':status': '500', X-Out: out}
missingOnlyHeadersOut: {':path': x}
removeHeadersOut: [':status', x-backend-secret]`,
        ) +
        descriptor(
          'good',
          `hosts: [good.oto.tools]\nforceHttps: false\ntargets: [{url: "http://127.0.0.1:${good.port}"}]`,
        ),
    };
    const gw = await startGateway(t, bin, { files });
    bad.behaviour.responseHeaders = { 'x-backend-secret': 's3cr3t' };
    const r = await gw.request({ host: 'reserved.oto.tools', path: '/p', headers: { 'x-drop': 'gone' } });
    assert.equal(r.status, 200, r.body);
    const seen = echo(r.body);
    assert.equal(seen.backend, 'bad');
    assert.equal(seen.path, '/p');
    assert.equal(seen.method, 'GET');
    assert.equal(seen.headers.host, 'upstream.internal');
    assert.equal(seen.headers['x-added'], 'yes');
    assert.equal(seen.headers['x-drop'], undefined);
    assert.equal(r.headers['x-out'], 'out');
    assert.equal(r.headers['x-backend-secret'], undefined);
    assert.equal(echo((await gw.request({ host: 'good.oto.tools' })).body).backend, 'good');
    const st = gw.server.statuses().find((s) => s.name === 'reserved');
    const fields = (st?.errors ?? [])
      .filter((e) => e.code === 'OXDS_RESERVED_HEADER')
      .map((e) => e.field)
      .sort();
    assert.deepEqual(fields, [
      'spec.additionalHeaders.:path',
      'spec.additionalHeadersOut.:status',
      'spec.additionalHeadersOut.Host',
      'spec.missingOnlyHeadersIn.:method',
      'spec.missingOnlyHeadersIn.HOST',
      'spec.missingOnlyHeadersOut.:path',
      'spec.removeHeadersIn[0]',
      'spec.removeHeadersIn[1]',
      'spec.removeHeadersOut[0]',
    ]);
    assert.equal(st?.state, 'valid');
    assert.doesNotMatch(gw.envoy.log(), /[Dd]eprecated/, 'Envoy warned about a deprecated field');
  },
);

envoyTest(
  'Envoy: a large matchingHeaders regex and many wildcard hosts are accepted (RE2 program size raised)',
  async (t, bin) => {
    const [big, many] = (await startHttpBackends(['big', 'many'])) as [HttpBackend, HttpBackend];
    t.onTestFinished(async () => {
      await Promise.all([big.stop(), many.stop()]);
    });
    const alternatives = Array.from({ length: 200 }, (_, i) => `tenant-${i}-[a-z]+`).join('|');
    const hosts = Array.from({ length: 60 }, (_, i) => `"api-*.zone${i}.oto.tools"`).join(', ');
    const files = {
      'd.yaml':
        descriptor(
          'big',
          `hosts: [big.oto.tools]\nforceHttps: false\nmatchingHeaders: {x-tenant: '(?:${alternatives})'}\ntargets: [{url: "http://127.0.0.1:${big.port}"}]`,
        ) +
        descriptor('many', `hosts: [${hosts}]\nforceHttps: false\ntargets: [{url: "http://127.0.0.1:${many.port}"}]`),
    };
    const gw = await startGateway(t, bin, { files });
    assert.equal(
      echo((await gw.request({ host: 'big.oto.tools', headers: { 'x-tenant': 'tenant-199-abc' } })).body).backend,
      'big',
    );
    assert.equal((await gw.request({ host: 'big.oto.tools', headers: { 'x-tenant': 'tenant-200-abc' } })).status, 404);
    assert.equal(echo((await gw.request({ host: 'API-7.zone59.oto.tools' })).body).backend, 'many');
    assert.equal((await gw.request({ host: 'api-7.zone60.oto.tools' })).status, 404);
  },
);

envoyTest(
  'Envoy: a regex is checked as Envoy compiles it: (?<name>...) is served, a JavaScript escape (\\u0041) is refused ' +
    'on the object (field named), nothing is NACKed',
  async (t, bin) => {
    const [named, js] = (await startHttpBackends(['named', 'js'])) as [HttpBackend, HttpBackend];
    t.onTestFinished(async () => {
      await Promise.all([named.stop(), js.stop()]);
    });
    const files = {
      'd.yaml':
        descriptor(
          'named',
          `hosts: [named.oto.tools]\nforceHttps: false\nmatchingHeaders: {x-tenant: '(?<tenant>t-[0-9]+)'}\ntargets: [{url: "http://127.0.0.1:${named.port}"}]`,
        ) +
        descriptor(
          'js',
          `hosts: [js.oto.tools]\nforceHttps: false\nmatchingHeaders: {x-tenant: '\\u0041+'}\ntargets: [{url: "http://127.0.0.1:${js.port}"}]`,
        ),
    };
    // Zero NACKs (startGateway): the refused regex never reaches Envoy, which would refuse the
    // whole route table for it ("invalid escape sequence: \\u").
    const gw = await startGateway(t, bin, { files });
    assert.equal(
      echo((await gw.request({ host: 'named.oto.tools', headers: { 'x-tenant': 't-42' } })).body).backend,
      'named',
    );
    assert.equal((await gw.request({ host: 'named.oto.tools', headers: { 'x-tenant': 'u-42' } })).status, 404);
    assert.equal((await gw.request({ host: 'js.oto.tools', headers: { 'x-tenant': 'AAA' } })).status, 404);
    const st = gw.server.statuses().find((s) => s.name === 'js');
    assert.equal(st?.state, 'invalid');
    const err = st?.errors.find((e) => e.code === 'OXDS_INVALID_REGEX');
    assert.match(err?.message ?? '', /invalid escape sequence: \\u/);
    assert.match(err?.field ?? '', /matchingHeaders\.x-tenant$/);
  },
);

envoyTest(
  "Envoy: Otoroshi's direct answers: forceHttps 303, redirection, maintenance/build 503, readOnly 405, " +
    'headersVerification 400, ipFiltering 403',
  async (t, bin) => {
    const [b] = (await startHttpBackends(['b'])) as [HttpBackend];
    t.onTestFinished(() => b.stop());
    const target = `targets: [{url: "http://127.0.0.1:${b.port}"}]`;
    const files = {
      'd.yaml':
        descriptor('secure', `hosts: [secure.oto.tools]\nforceHttps: true\n${target}`) +
        descriptor(
          'moved',
          `hosts: [moved.oto.tools]\nforceHttps: false\nredirection: {enabled: true, code: 301, to: "https://elsewhere.example.com/x"}\n${target}`,
        ) +
        descriptor('maint', `hosts: [maint.oto.tools]\nforceHttps: false\nmaintenanceMode: true\n${target}`) +
        descriptor('build', `hosts: [build.oto.tools]\nforceHttps: false\nbuildMode: true\n${target}`) +
        descriptor('ro', `hosts: [ro.oto.tools]\nforceHttps: false\nreadOnly: true\n${target}`) +
        descriptor(
          'hv',
          `hosts: [hv.oto.tools]\nforceHttps: false\nheadersVerification: {x-token: expected}\n${target}`,
        ) +
        descriptor(
          'black',
          `hosts: [black.oto.tools]\nforceHttps: false\nipFiltering: {blacklist: [127.0.0.1]}\n${target}`,
        ) +
        descriptor(
          'white',
          `hosts: [white.oto.tools]\nforceHttps: false\nipFiltering: {whitelist: [10.0.0.0/8]}\n${target}`,
        ) +
        descriptor(
          'allowed',
          `hosts: [allowed.oto.tools]\nforceHttps: false\nipFiltering: {whitelist: [127.0.0.0/8]}\n${target}`,
        ),
    };
    const gw = await startGateway(t, bin, { files });
    const r303 = await gw.request({ host: 'secure.oto.tools', path: '/a?b=1' });
    assert.equal(r303.status, 303);
    assert.equal(r303.headers.location, 'https://secure.oto.tools/a?b=1');
    const r301 = await gw.request({ host: 'moved.oto.tools', path: '/whatever' });
    assert.equal(r301.status, 301);
    assert.equal(r301.headers.location, 'https://elsewhere.example.com/x');
    const otoroshiError = async (
      host: string,
      status: number,
      message: string,
      o: { method?: string; headers?: Record<string, string> } = {},
    ): Promise<void> => {
      const r = await gw.request({ host, ...o });
      assert.equal(r.status, status, `${host}: ${r.body}`);
      assert.deepEqual(JSON.parse(r.body), { 'Otoroshi-Error': message }, host);
      assert.equal(r.headers['otoroshi-error'], 'true');
      assert.match(String(r.headers['content-type']), /application\/json/);
    };
    await otoroshiError('maint.oto.tools', 503, 'Service in maintenance mode');
    await otoroshiError('build.oto.tools', 503, 'Service under construction');
    await otoroshiError('ro.oto.tools', 405, 'Method not allowed. Can only handle GET, HEAD, OPTIONS', {
      method: 'POST',
    });
    assert.equal((await gw.request({ host: 'ro.oto.tools' })).status, 200);
    await otoroshiError('hv.oto.tools', 400, 'Missing header(s)');
    await otoroshiError('hv.oto.tools', 400, 'Missing header(s)', { headers: { 'x-token': 'wrong' } });
    assert.equal((await gw.request({ host: 'hv.oto.tools', headers: { 'x-token': 'expected' } })).status, 200);
    await otoroshiError('black.oto.tools', 403, 'Your IP address is not allowed');
    await otoroshiError('white.oto.tools', 403, 'Your IP address is not allowed');
    assert.equal((await gw.request({ host: 'allowed.oto.tools' })).status, 200);
    assert.equal(
      b.seen.filter((s) => s.headers.host === 'black.oto.tools' || s.headers.host === 'maint.oto.tools').length,
      0,
      'denied requests never reach the backend',
    );
  },
);

envoyTest(
  'Envoy: CORS preflight and simple requests; allowOrigin * never allows credentials; Otoroshi headers back and ' +
    'X-Forwarded-*',
  async (t, bin) => {
    const [b] = (await startHttpBackends(['b'])) as [HttpBackend];
    t.onTestFinished(() => b.stop());
    const target = `targets: [{url: "http://127.0.0.1:${b.port}"}]`;
    const cors = (origin: string): string =>
      `cors: {enabled: true, allowOrigin: "${origin}", allowMethods: [GET, PUT], allowHeaders: [x-custom], ` +
      'exposeHeaders: [x-exposed], maxAge: 600, allowCredentials: true}';
    const files = {
      'd.yaml':
        descriptor(
          'listed',
          `hosts: [listed.oto.tools]\nforceHttps: false\nxForwardedHeaders: true\n${cors('https://app.example.com')}\n${target}`,
        ) +
        descriptor(
          'star',
          `hosts: [star.oto.tools]\nforceHttps: false\nsendOtoroshiHeadersBack: false\n${cors('*')}\n${target}`,
        ),
    };
    const gw = await startGateway(t, bin, { files });
    const preflight = await gw.request({
      host: 'listed.oto.tools',
      method: 'OPTIONS',
      headers: { origin: 'https://app.example.com', 'access-control-request-method': 'PUT' },
    });
    assert.equal(preflight.status, 200);
    assert.equal(preflight.headers['access-control-allow-origin'], 'https://app.example.com');
    assert.match(String(preflight.headers['access-control-allow-methods']), /PUT/);
    assert.equal(preflight.headers['access-control-max-age'], '600');
    assert.equal(preflight.headers['access-control-allow-credentials'], 'true');
    const simple = await gw.request({ host: 'listed.oto.tools', headers: { origin: 'https://app.example.com' } });
    assert.equal(simple.headers['access-control-allow-origin'], 'https://app.example.com');
    assert.equal(simple.headers['access-control-expose-headers'], 'x-exposed');
    const other = await gw.request({ host: 'listed.oto.tools', headers: { origin: 'https://evil.example.com' } });
    assert.equal(other.headers['access-control-allow-origin'], undefined);
    // Otoroshi's headers back (default on), and X-Forwarded-* to the backend when asked.
    assert.ok(simple.headers['otoroshi-request-id'], JSON.stringify(simple.headers));
    assert.ok(simple.headers['otoroshi-proxy-latency'] !== undefined);
    const up = echo(simple.body);
    assert.equal(up.headers['x-forwarded-host'], 'listed.oto.tools');
    assert.equal(up.headers['x-forwarded-proto'], 'http');
    assert.equal(up.headers['otoroshi-proxied-host'], 'listed.oto.tools');
    const star = await gw.request({
      host: 'star.oto.tools',
      method: 'OPTIONS',
      headers: { origin: 'https://evil.example.com', 'access-control-request-method': 'GET' },
    });
    assert.equal(star.headers['access-control-allow-origin'], 'https://evil.example.com');
    assert.equal(star.headers['access-control-allow-credentials'], undefined);
    const starSimple = await gw.request({ host: 'star.oto.tools', headers: { 'x-forwarded-for': '192.0.2.1' } });
    assert.equal(starSimple.headers['otoroshi-request-id'], undefined);
    assert.equal(
      echo(starSimple.body).headers['x-forwarded-for'],
      undefined,
      'xForwardedHeaders: false strips X-Forwarded-*',
    );
    const warn = gw.server
      .statuses()
      .find((s) => s.name === 'star')
      ?.errors.find((e) => e.field === 'spec.cors.allowCredentials');
    assert.ok(warn, 'a warning says credentials are not allowed with *');
  },
);

envoyTest(
  'Envoy: a TcpService forwards plain TCP; one on a taken port (another TcpService, the HTTP listener) is refused ' +
    '(OXDS_ROUTE_CONFLICT)',
  async (t, bin) => {
    const echoServer = net.createServer((s) => s.pipe(s));
    await new Promise<void>((r) => echoServer.listen(0, '127.0.0.1', r));
    t.onTestFinished(() => new Promise<void>((r) => echoServer.close(() => r())));
    const backendPort = (echoServer.address() as net.AddressInfo).port;
    const port = await freePort();
    const httpPort = await freePort();
    const tcp = (name: string, on = port): string => `apiVersion: proxy.otoroshi.io/v1alpha1
kind: TcpService
metadata: {name: ${name}, namespace: default}
spec:
  port: ${on}
  interface: 127.0.0.1
  rules:
    - domain: "*"
      targets: [{host: 127.0.0.1, port: ${backendPort}}]
---
`;
    const files = { 't.yaml': tcp('a-first') + tcp('b-second') + tcp('on-http', httpPort) };
    const gw = await startGateway(t, bin, { files, flags: { envoyHttpPort: httpPort } });
    assert.equal(gw.httpPort, httpPort);
    const reply = await eventually('bytes echoed through the TcpService listener', () => roundTrip(port, 'hello tcp'));
    assert.equal(reply, 'hello tcp');
    const second = gw.server.statuses().find((s) => s.name === 'b-second');
    assert.equal(second?.state, 'invalid');
    assert.ok(
      second?.errors.some((e) => e.code === 'OXDS_ROUTE_CONFLICT' && e.field === 'spec.port'),
      JSON.stringify(second?.errors),
    );
    assert.equal(gw.server.statuses().find((s) => s.name === 'a-first')?.state, 'valid');
    // On the HTTP listener's port: refused, and the HTTP listener keeps serving.
    const onHttp = gw.server.statuses().find((s) => s.name === 'on-http');
    assert.equal(onHttp?.state, 'invalid');
    assert.ok(
      onHttp?.errors.some((e) => e.code === 'OXDS_ROUTE_CONFLICT' && /HTTP listener/.test(e.message)),
      JSON.stringify(onHttp?.errors),
    );
    assert.equal((await gw.request({ host: 'nothing.oto.tools' })).status, 404);
  },
);

function roundTrip(port: number, text: string): Promise<string | undefined> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    let got = '';
    const done = (v: string | undefined): void => {
      s.destroy();
      resolve(v);
    };
    s.setTimeout(5_000, () => done(undefined));
    s.on('error', () => done(undefined));
    s.on('data', (d: Buffer) => {
      got += d.toString();
      if (got.length >= text.length) done(got);
    });
    s.on('connect', () => s.write(text));
  });
}
