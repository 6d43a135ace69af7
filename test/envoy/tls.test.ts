// TLS through a real Envoy: HTTPS listeners serving Certificate CRs by SNI over SDS (the client
// trusts only our CA), TcpService SNI passthrough and termination checked with `openssl s_client`,
// gzip, and GlobalConfig throttling and IP filtering.
import type { TestContext } from 'vitest';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import zlib from 'node:zlib';
import { descriptorYaml, envoyTest, eventually, httpRequest, startGateway } from '../helpers/envoy.js';
import { startHttpBackend } from '../helpers/http-backends.js';
import { freePort } from '../helpers/redis.js';

function certificate(name: string, host: string): string {
  return `apiVersion: proxy.otoroshi.io/v1alpha1
kind: Certificate
metadata: {name: ${name}, namespace: default}
spec:
  csr: {hosts: [${host}], subject: "CN=${host}, O=OtoroshiApps"}
---
`;
}

const caRoot = (dataDir: string): string => fs.readFileSync(path.join(dataDir, 'ca', 'ca-root.crt.pem'), 'utf8');

/** `openssl s_client` to 127.0.0.1:port with SNI `name`: what it printed (certificate, verify result, data). */
function sClient(port: number, name: string, caFile: string, input: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const args = ['s_client', '-connect', `127.0.0.1:${port}`, '-servername', name, '-CAfile', caFile, '-ign_eof'];
    const child = spawn('openssl', args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    child.on('error', reject);
    child.on('exit', () => {
      clearTimeout(timer);
      resolve(out);
    });
    child.stdin.end(input);
  });
}

/** A TCP server that answers `echo:<data>` and closes; optionally TLS with `key`/`cert`. */
async function echoServer(
  t: Pick<TestContext, 'onTestFinished'>,
  creds?: { key: string; cert: string },
): Promise<number> {
  const onConn = (s: net.Socket): void => {
    s.once('data', (d: Buffer) => s.end(`echo:${d.toString().trim()}\n`));
    s.on('error', () => undefined);
  };
  const server = creds ? tls.createServer(creds, onConn) : net.createServer(onConn);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  t.onTestFinished(() => new Promise<void>((r) => server.close(() => r())));
  return (server.address() as net.AddressInfo).port;
}

envoyTest(
  'Envoy HTTPS: each host gets its own certificate by SNI, from our CA over SDS; gzip when asked',
  async (t, bin) => {
    const json = JSON.stringify({ items: Array.from({ length: 50 }, (_, i) => ({ id: i, name: `item-${i}` })) });
    const b = await startHttpBackend('tls', { body: json, responseHeaders: { 'content-type': 'application/json' } });
    t.onTestFinished(() => b.stop());
    const target = `targets: [{url: "http://127.0.0.1:${b.port}"}]`;
    const files = {
      'c.yaml': certificate('a-cert', 'a.oto.tools') + certificate('b-cert', 'b.oto.tools'),
      'd.yaml':
        descriptorYaml('a', `hosts: [a.oto.tools]\n${target}`) +
        descriptorYaml('b', `hosts: [b.oto.tools]\ngzip: {enabled: true, whiteList: [application/json]}\n${target}`),
    };
    const gw = await startGateway(t, bin, { files });
    const port = await gw.httpsPort();
    const ca = caRoot(gw.config.dataDir);
    for (const host of ['a.oto.tools', 'b.oto.tools']) {
      // Node checks the chain against our root and the name against the SNI: a wrong certificate fails.
      const r = await eventually(`HTTPS for ${host}`, () =>
        httpRequest({ port, host, path: '/x', tls: { ca, servername: host } }),
      );
      assert.equal(r.status, 200, r.body);
    }
    const peer = await new Promise<tls.PeerCertificate>((resolve, reject) => {
      const s = tls.connect({ host: '127.0.0.1', port, servername: 'b.oto.tools', ca }, () => {
        resolve(s.getPeerCertificate());
        s.end();
      });
      s.on('error', reject);
    });
    assert.match(peer.subjectaltname ?? '', /DNS:b\.oto\.tools/);
    assert.equal(peer.subject.CN, 'b.oto.tools');

    // gzip: compressed only for a client that accepts it; the body is the backend's.
    const zipped = await gw.request({ host: 'b.oto.tools', path: '/z', headers: { 'accept-encoding': 'gzip' } });
    assert.equal(zipped.headers['content-encoding'], 'gzip');
    const plain = await gw.request({ host: 'b.oto.tools', path: '/z' });
    assert.equal(plain.headers['content-encoding'], undefined);
    assert.equal(plain.body, json);
    const raw = await new Promise<Buffer>((resolve, reject) => {
      const s = net.connect(gw.httpPort, '127.0.0.1', () =>
        s.write('GET /z HTTP/1.1\r\nHost: b.oto.tools\r\nAccept-Encoding: gzip\r\nConnection: close\r\n\r\n'),
      );
      const chunks: Buffer[] = [];
      s.on('data', (d: Buffer) => chunks.push(d));
      s.on('end', () => resolve(Buffer.concat(chunks)));
      s.on('error', reject);
    });
    const head = raw.subarray(0, raw.indexOf('\r\n\r\n')).toString();
    assert.match(head, /content-encoding: gzip/i);
    let body = raw.subarray(raw.indexOf('\r\n\r\n') + 4);
    if (/transfer-encoding: chunked/i.test(head)) {
      const parts: Buffer[] = [];
      for (;;) {
        const eol = body.indexOf('\r\n');
        const size = parseInt(body.subarray(0, eol).toString(), 16);
        if (!(size > 0)) break;
        parts.push(body.subarray(eol + 2, eol + 2 + size));
        body = body.subarray(eol + 2 + size + 2);
      }
      body = Buffer.concat(parts);
    }
    assert.equal(zlib.gunzipSync(body).toString(), json);
  },
);

envoyTest(
  'Envoy TcpService: SNI passthrough keeps the backend certificate; termination serves ours (openssl s_client)',
  async (t, bin) => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'oxds-tcp-tls-'));
    const key = path.join(dir, 'k.pem');
    const crt = path.join(dir, 'c.pem');
    const gen = spawnSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:P-256',
        '-nodes',
        '-subj',
        '/CN=pg.oto.tools',
        '-addext',
        'subjectAltName=DNS:pg.oto.tools',
        '-keyout',
        key,
        '-out',
        crt,
        '-days',
        '1',
      ],
      { encoding: 'utf8' },
    );
    assert.equal(gen.status, 0, gen.stderr);
    const tlsBackend = await echoServer(t, { key: fs.readFileSync(key, 'utf8'), cert: fs.readFileSync(crt, 'utf8') });
    const plainBackend = await echoServer(t);
    const [passPort, termPort] = [await freePort(), await freePort()];
    const files = {
      'c.yaml': certificate('db-cert', 'db.oto.tools'),
      't.yaml': `apiVersion: proxy.otoroshi.io/v1alpha1
kind: TcpService
metadata: {name: passthrough, namespace: default}
spec:
  port: ${passPort}
  interface: 127.0.0.1
  tls: PassThrough
  sni: {enabled: true}
  rules:
    - domain: pg.oto.tools
      targets: [{host: pg.oto.tools, ip: 127.0.0.1, port: ${tlsBackend}}]
---
apiVersion: proxy.otoroshi.io/v1alpha1
kind: TcpService
metadata: {name: terminated, namespace: default}
spec:
  port: ${termPort}
  interface: 127.0.0.1
  tls: Enabled
  sni: {enabled: true}
  rules:
    - domain: db.oto.tools
      targets: [{host: db.internal, ip: 127.0.0.1, port: ${plainBackend}}]
`,
    };
    const gw = await startGateway(t, bin, { files });
    const caFile = path.join(dir, 'ca.pem');
    fs.writeFileSync(caFile, caRoot(gw.config.dataDir));

    const pass = await eventually('passthrough', async () => {
      const out = await sClient(passPort, 'pg.oto.tools', crt, 'hello\n');
      return out.includes('echo:hello') ? out : undefined;
    });
    assert.match(pass, /subject=.*CN\s*=\s*pg\.oto\.tools/);
    assert.match(pass, /Verify return code: 0 \(ok\)/, "the backend's own certificate reached the client");

    const term = await eventually('termination', async () => {
      const out = await sClient(termPort, 'db.oto.tools', caFile, 'hello\n');
      return out.includes('echo:hello') ? out : undefined;
    });
    assert.match(term, /subject=.*CN\s*=\s*db\.oto\.tools/);
    assert.match(term, /Verify return code: 0 \(ok\)/, 'our CA signed the certificate Envoy served');
  },
);

envoyTest(
  "Envoy GlobalConfig: throttling answers Otoroshi's 429 past quota x 10 per 10 s; global IP filtering 403",
  async (t, bin) => {
    const b = await startHttpBackend('g');
    t.onTestFinished(() => b.stop());
    const d = descriptorYaml('g', `hosts: [g.oto.tools]\ntargets: [{url: "http://127.0.0.1:${b.port}"}]`);
    const global = (spec: string): string => `apiVersion: proxy.otoroshi.io/v1alpha1
kind: GlobalConfig
metadata: {name: global, namespace: default}
spec:
${spec.replace(/^/gm, '  ')}
`;
    const gw = await startGateway(t, bin, { files: { 'd.yaml': d, 'g.yaml': global('throttlingQuota: 1') } });
    // 10 tokens per 10 s: 25 requests can get at most 20 through even if a refill falls in between.
    const statuses: number[] = [];
    let denied: Awaited<ReturnType<typeof gw.request>> | undefined;
    for (let i = 0; i < 25; i++) {
      const r = await gw.request({ host: 'g.oto.tools', path: `/t/${i}`, headers: { accept: 'application/json' } });
      statuses.push(r.status);
      if (r.status === 429) denied = r;
    }
    assert.ok(statuses.filter((s) => s === 200).length >= 10, statuses.join(','));
    assert.ok(denied, `no 429 in ${statuses.join(',')}`);
    assert.equal(denied.headers['otoroshi-error'], 'true');
    assert.equal(denied.headers['otoroshi-error-msg'], '[GLOBAL] You performed too much requests');
    assert.deepEqual(JSON.parse(denied.body), { 'Otoroshi-Error': '[GLOBAL] You performed too much requests' });

    await gw.update({ 'g.yaml': global('ipFiltering: {blacklist: [127.0.0.1]}') });
    const blocked = await gw.request({ host: 'g.oto.tools', headers: { accept: 'application/json' } });
    assert.equal(blocked.status, 403);
    assert.equal(blocked.headers['otoroshi-error-msg'], 'Your IP address is not allowed');
    const seen = b.calls;
    await gw.update({ 'g.yaml': global('ipFiltering: {whitelist: [127.0.0.1]}') });
    assert.equal((await gw.request({ host: 'g.oto.tools' })).status, 200);
    assert.equal(b.calls, seen + 1);
  },
);
