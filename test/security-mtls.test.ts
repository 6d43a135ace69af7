// TLS / mTLS on the xDS and ext_authz ports from PEM files (--xds-tls-cert/--xds-tls-key/
// --xds-client-ca, --authz-tls-*): a client with a certificate signed by the client CA is served;
// a plaintext client, a TLS client without a certificate and one whose certificate another CA
// signed are refused. Certificates are made with the openssl CLI (test-only, 1 day).
import { test } from 'vitest';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { resolveConfig } from '../src/config.js';
import { startServer, makeLogger } from '../src/main.js';
import { AdsClient, TYPE_URLS } from './helpers/ads-client.js';
import { checkRequest, callCheck } from './helpers/check-client.js';

const haveOpenssl = spawnSync('openssl', ['version'], { stdio: 'ignore' }).status === 0;

function pki(dir: string): Record<string, string> {
  const f = (n: string): string => path.join(dir, n);
  const ossl = (...args: string[]): void => {
    execFileSync('openssl', args, { stdio: 'ignore' });
  };
  const key = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
  for (const ca of ['ca', 'rogue'])
    ossl('req', '-x509', ...key, '-keyout', f(`${ca}.key`), '-out', f(`${ca}.crt`), '-days', '1', '-subj', `/CN=${ca}`);
  fs.writeFileSync(f('server.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n');
  fs.writeFileSync(f('client.ext'), 'extendedKeyUsage=clientAuth\n');
  const leaf = (name: string, ca: string, ext: string): void => {
    ossl('req', ...key, '-keyout', f(`${name}.key`), '-out', f(`${name}.csr`), '-subj', `/CN=${name}`);
    ossl(
      'x509',
      '-req',
      '-in',
      f(`${name}.csr`),
      '-CA',
      f(`${ca}.crt`),
      '-CAkey',
      f(`${ca}.key`),
      '-CAcreateserial',
      '-out',
      f(`${name}.crt`),
      '-days',
      '1',
      '-extfile',
      f(ext),
    );
  };
  leaf('server', 'ca', 'server.ext');
  leaf('client', 'ca', 'client.ext');
  leaf('intruder', 'rogue', 'client.ext');
  return Object.fromEntries(
    ['ca', 'server', 'client', 'intruder'].flatMap((n) => [
      [`${n}.crt`, f(`${n}.crt`)],
      [`${n}.key`, f(`${n}.key`)],
    ]),
  );
}

test('mTLS: config validation of the TLS flags', () => {
  const bad = resolveConfig({ xdsTlsCert: 'a.pem' }, {});
  assert.ok(!bad.ok && bad.errors.some((e) => /--xds-tls-cert and --xds-tls-key go together/.test(e)));
  const bad2 = resolveConfig({ authzClientCa: 'ca.pem' }, {});
  assert.ok(!bad2.ok && bad2.errors.some((e) => /--authz-client-ca needs/.test(e)));
  const ok = resolveConfig({}, { OXDS_XDS_TLS_CERT: 'c', OXDS_XDS_TLS_KEY: 'k', OXDS_XDS_CLIENT_CA: 'ca' });
  assert.ok(ok.ok && ok.value.xdsClientCa === 'ca');
});

test.skipIf(haveOpenssl ? false : 'openssl CLI not installed')(
  'mTLS on the xDS and ext_authz ports: only clients with a certificate from the client CA are served',
  async (t) => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'oxds-mtls-'));
    t.onTestFinished(() => fs.rmSync(dir, { recursive: true, force: true }));
    const p = pki(dir);
    const cfgDir = path.join(dir, 'config');
    fs.mkdirSync(cfgDir);
    fs.writeFileSync(
      path.join(cfgDir, 'web.yaml'),
      `apiVersion: proxy.otoroshi.io/v1alpha1
kind: ServiceDescriptor
metadata: {name: web, namespace: default}
spec: {hosts: [web.oto.tools], forceHttps: false, publicPatterns: ["/.*"], targets: [{url: "http://127.0.0.1:9001"}]}
`,
    );
    const r = resolveConfig(
      {
        config: cfgDir,
        xdsPort: 0,
        authzPort: 0,
        adminPort: 0,
        dataDir: path.join(dir, '.data'),
        xdsTlsCert: p['server.crt'],
        xdsTlsKey: p['server.key'],
        xdsClientCa: p['ca.crt'],
        authzTlsCert: p['server.crt'],
        authzTlsKey: p['server.key'],
        authzClientCa: p['ca.crt'],
      },
      {},
    );
    assert.ok(r.ok, r.ok ? '' : r.errors.join());
    const server = await startServer(r.value, makeLogger('silent'));
    t.onTestFinished(() => server.stop());
    const read = (k: string): Buffer => fs.readFileSync(p[k]!);
    const creds = {
      mtls: grpc.credentials.createSsl(read('ca.crt'), read('client.key'), read('client.crt')),
      noCert: grpc.credentials.createSsl(read('ca.crt')),
      rogue: grpc.credentials.createSsl(read('ca.crt'), read('intruder.key'), read('intruder.crt')),
      plain: grpc.credentials.createInsecure(),
    };

    // xDS
    const ok = new AdsClient(server.xdsPort, { node: { id: 'gw' }, credentials: creds.mtls });
    t.onTestFinished(() => ok.close());
    ok.request(TYPE_URLS.cluster);
    const resp = await ok.nextSotw(5000);
    assert.equal(resp.typeUrl, TYPE_URLS.cluster);
    for (const [name, c] of [
      ['plaintext', creds.plain],
      ['TLS without a client certificate', creds.noCert],
      ['a certificate from another CA', creds.rogue],
    ] as const) {
      const bad = new AdsClient(server.xdsPort, { node: { id: `bad-${name}` }, credentials: c });
      t.onTestFinished(() => bad.close());
      bad.request(TYPE_URLS.cluster);
      await assert.rejects(bad.nextSotw(3000), `xDS refuses ${name}`);
    }
    assert.deepEqual(
      server.ads.statuses().map((s) => s.nodeId),
      ['gw'],
    );

    // ext_authz
    const body = checkRequest({ host: 'web.oto.tools', path: '/' });
    const authz = (c: grpc.ChannelCredentials): grpc.Client =>
      new grpc.Client(`127.0.0.1:${server.authzPort}`, c, { 'grpc.ssl_target_name_override': 'localhost' });
    const good = authz(creds.mtls);
    const d = await callCheck(good, body);
    good.close();
    assert.equal(d.status?.code ?? 0, 0);
    for (const c of [creds.plain, creds.noCert, creds.rogue]) {
      const cl = authz(c);
      await assert.rejects(callCheck(cl, body));
      cl.close();
    }
  },
);
