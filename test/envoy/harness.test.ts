// The harness itself: a listener on port 0 keeps its port across listener updates (tests keep using
// the port they read once), and a config change is served once `update` returns.
import assert from 'node:assert/strict';
import { envoyTest, startGateway } from '../helpers/envoy.js';
import { startHttpBackend } from '../helpers/http-backends.js';

const desc = (port: number, extra = ''): string => `apiVersion: proxy.otoroshi.io/v1alpha1
kind: ServiceDescriptor
metadata: {name: one, namespace: default}
spec:
  hosts: [one.oto.tools]
  forceHttps: false
  publicPatterns: ['/.*']
  targets: [{url: "http://127.0.0.1:${port}"}]
${extra}`;

const GLOBAL = `---
apiVersion: proxy.otoroshi.io/v1alpha1
kind: GlobalConfig
metadata: {name: global, namespace: default}
spec:
  ipFiltering: {blacklist: [10.9.9.9]}
`;

envoyTest(
  'harness: a listener update keeps the port; update() returns once Envoy serves the change',
  async (t, bin) => {
    const b = await startHttpBackend('one');
    t.onTestFinished(() => b.stop());
    const gw = await startGateway(t, bin, { files: { 'd.yaml': desc(b.port) } });
    assert.equal((await gw.request({ host: 'one.oto.tools' })).status, 200);
    const before = await gw.envoy.stat('listener_manager.listener_modified');
    // A GlobalConfig adds a filter to every HCM: the listener itself changes.
    await gw.update({ 'd.yaml': desc(b.port) + GLOBAL });
    assert.ok((await gw.envoy.stat('listener_manager.listener_modified')) > before, 'the listener was replaced');
    assert.equal(await gw.envoy.listenerPort('oxds-http'), gw.httpPort);
    assert.equal((await gw.request({ host: 'one.oto.tools' })).status, 200);
    await gw.update({ 'd.yaml': desc(b.port, '  readOnly: true\n') });
    assert.equal((await gw.request({ host: 'one.oto.tools', method: 'POST', body: 'x' })).status, 405);
  },
);
