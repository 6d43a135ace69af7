// Otoroshi's kustomize base/example.yaml through our server and a real Envoy: the backend
// descriptor names its client certificate by subject DN (`UID=oto-client-cert, O=OtoroshiApps`)
// and trusts `otoroshi-intermediate-ca`; a real HTTPS backend that requires a client certificate,
// serving the example's own `backend-cert` (exported by the server), sees Envoy present
// `oto-client-cert`. Only the target's address is changed (to a local port, `ipAddress` 127.0.0.1).
import fs from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { envoyTest, eventually, startGateway } from './helpers/envoy.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const EXAMPLE = fs.readFileSync(path.join(ROOT, 'testdata', 'otoroshi', 'kustomize', 'example.yaml'), 'utf8');

envoyTest(
  'kustomize base/example.yaml through real Envoy: mTLS to the backend with the client certificate named by its ' +
    'subject DN',
  async (t, bin) => {
    // The backend listens from the start (its port is in the config Envoy gets) and takes its
    // certificate once the server has issued it: a port only reserved meanwhile could be taken.
    const backend = https.createServer({ requestCert: true, rejectUnauthorized: true }, (req, res) => {
      const peer = (req.socket as TLSSocket).getPeerCertificate();
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ subject: peer.subject }));
    });
    await new Promise<void>((resolve) => backend.listen(0, '127.0.0.1', resolve));
    t.onTestFinished(() => new Promise<void>((resolve) => backend.close(() => resolve())));
    const { port } = backend.address() as AddressInfo;
    const target = '- url: https://app-service.default.svc.cluster.local:8443';
    assert.ok(EXAMPLE.includes(target));
    const example = EXAMPLE.replace(
      target,
      `- url: https://app-service.default.svc.cluster.local:${port}\n    ipAddress: 127.0.0.1`,
    );
    const gw = await startGateway(t, bin, { files: { 'example.yaml': example } });
    // The example exports backend-cert (exportSecret: true): file mode writes it under the data dir.
    const secretDir = path.join(gw.config.dataDir, 'secrets', 'default', 'backend-cert');
    const files = await eventually(
      'backend-cert to be issued and exported',
      () => {
        const f = (n: string): string | undefined =>
          fs.existsSync(path.join(secretDir, n)) ? fs.readFileSync(path.join(secretDir, n), 'utf8') : undefined;
        const cert = f('tls.crt');
        const key = f('tls.key');
        const ca = f('ca.crt');
        return cert && key && ca ? { cert, key, ca } : undefined;
      },
      90_000,
    );
    backend.setSecureContext(files);
    await gw.converged();
    // The client certificate (RSA keys are generated off the event loop) may come a rebuild later.
    const res = await eventually(
      'a 200 from the mTLS backend through Envoy',
      async () => {
        const r = await gw.request({ host: 'backend.k3s.local', path: '/' });
        return r.status === 200 ? r : undefined;
      },
      90_000,
    );
    const body = JSON.parse(res.body) as { subject: Record<string, string> };
    assert.equal(body.subject['UID'], 'oto-client-cert');
    assert.equal(body.subject['O'], 'OtoroshiApps');
  },
);
