// Otoroshi's mesh hosts on a real Envoy gateway: a CRD ServiceDescriptor answers on
// <name>.<ns>.otoroshi.mesh (and its three siblings), and the gateway serves the mesh certificate
// from our CA for them by SNI (the client trusts only our root and checks the name).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import tls from 'node:tls';
import { envoyTest, eventually, httpRequest, startGateway } from '../helpers/envoy.js';
import { startHttpBackend } from '../helpers/http-backends.js';

const sd = (
  name: string,
  ns: string,
  spec: string,
  annotations = '{}',
): string => `apiVersion: proxy.otoroshi.io/v1alpha1
kind: ServiceDescriptor
metadata: {name: ${name}, namespace: ${ns}, annotations: ${annotations}}
spec:
  forceHttps: false
  publicPatterns: ['/.*']
${spec.replace(/^/gm, '  ')}
---
`;

envoyTest(
  'gateway: mesh hosts reach the descriptor backend, and the mesh certificate is served for them',
  async (t, bin) => {
    const pay = await startHttpBackend('payments');
    const other = await startHttpBackend('other');
    t.onTestFinished(async () => {
      await Promise.all([pay.stop(), other.stop()]);
    });
    const files = {
      'd.yaml':
        sd(
          'payments',
          'shop',
          `hosts: [payments.oto.tools]\ntargets: [{url: "http://127.0.0.1:${pay.port}"}]`,
          '{global-name/otoroshi.io: pay}',
        ) +
        sd(
          'other',
          'shop',
          `enabledAdditionalHosts: false\nhosts: [other.oto.tools]\ntargets: [{url: "http://127.0.0.1:${other.port}"}]`,
        ),
    };
    const gw = await startGateway(t, bin, { files, flags: { meshHosts: 'on' } });
    for (const host of [
      'payments.shop.otoroshi.mesh',
      'payments.shop.svc.otoroshi.mesh',
      'pay.global.otoroshi.mesh',
      'payments.shop.svc.cluster.local',
      'payments.oto.tools',
    ]) {
      const r = await gw.request({ host, path: '/x' });
      assert.equal(r.status, 200, `${host}: ${r.body}`);
      assert.match(r.body, /payments/, host);
    }
    // enabledAdditionalHosts: false opts a descriptor out; an unknown mesh name is not routed.
    assert.equal((await gw.request({ host: 'other.shop.otoroshi.mesh', path: '/x' })).status, 404);
    assert.equal((await gw.request({ host: 'other.oto.tools', path: '/x' })).status, 200);
    assert.equal((await gw.request({ host: 'payments.global.otoroshi.mesh', path: '/x' })).status, 404);

    // TLS: the mesh certificate, issued by our CA, by SNI; Node checks chain and hostname.
    const ca = fs.readFileSync(path.join(gw.config.dataDir, 'ca', 'ca-root.crt.pem'), 'utf8');
    const port = await gw.httpsPort();
    for (const host of ['payments.shop.otoroshi.mesh', 'payments.shop.svc.otoroshi.mesh', 'pay.global.otoroshi.mesh']) {
      const r = await eventually(`HTTPS for ${host}`, () =>
        httpRequest({ port, host, path: '/s', tls: { ca, servername: host } }),
      );
      assert.equal(r.status, 200, `${host}: ${r.body}`);
      assert.match(r.body, /payments/);
    }
    const peer = await new Promise<tls.PeerCertificate>((resolve, reject) => {
      const s = tls.connect({ host: '127.0.0.1', port, servername: 'payments.shop.otoroshi.mesh', ca }, () => {
        resolve(s.getPeerCertificate());
        s.end();
      });
      s.on('error', reject);
    });
    const sans = (peer.subjectaltname ?? '').split(/,\s*/).sort();
    assert.deepEqual(sans, [
      'DNS:*.global.otoroshi.mesh',
      'DNS:*.otoroshi.mesh',
      'DNS:*.shop.otoroshi.mesh',
      'DNS:*.shop.svc.otoroshi.mesh',
      'DNS:*.svc.otoroshi.mesh',
    ]);
    assert.equal(peer.issuer.CN !== undefined, true);
  },
);
