// The generated oxds-ext-authz cluster through a real Envoy: TLS to a Check port that speaks it
// (--authz-tls-*), and load balancing over several ext_authz replicas (--envoy-authz-address
// a:p,b:q,...) with one replica stopped under load. A private descriptor: every request is a Check.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { envoyTest, eventually, startGateway, testConfig, writeFiles } from '../helpers/envoy.js';
import { startHttpBackends, type HttpBackend } from '../helpers/http-backends.js';
import { freePort } from '../helpers/redis.js';
import { startServer, makeLogger, type RunningServer } from '../../src/main.js';
import { apiKeyYaml, descriptorYaml, yamlDocs } from '../fixtures/index.js';

function files(port: number): Record<string, string> {
  return {
    'd.yaml': yamlDocs(
      descriptorYaml({
        name: 'orders',
        namespace: 'default',
        id: 'orders',
        hosts: ['orders.oto.tools'],
        forceHttps: false,
        targets: [`http://127.0.0.1:${port}`],
      }),
      apiKeyYaml({
        name: 'buyer',
        namespace: 'default',
        clientId: 'buyer-id',
        clientSecret: 'buyer-secret',
        authorizedEntities: ['service_orders'],
        throttlingQuota: 1000000,
        dailyQuota: 100000000,
        monthlyQuota: 1000000000,
      }),
    ),
  };
}

const KEY = { 'otoroshi-client-id': 'buyer-id', 'otoroshi-client-secret': 'buyer-secret' };
const haveOpenssl = spawnSync('openssl', ['version'], { stdio: 'ignore' }).status === 0;

/** A CA and a server certificate for 127.0.0.1 / authz.oto.internal, signed by it. */
function serverPki(dir: string): { ca: string; cert: string; key: string } {
  const f = (n: string): string => path.join(dir, n);
  const ossl = (...args: string[]): void => void execFileSync('openssl', args, { stdio: 'ignore' });
  const key = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
  ossl('req', '-x509', ...key, '-keyout', f('ca.key'), '-out', f('ca.crt'), '-days', '1', '-subj', '/CN=authz-ca');
  fs.writeFileSync(
    f('server.ext'),
    'subjectAltName=IP:127.0.0.1,DNS:authz.oto.internal\nextendedKeyUsage=serverAuth\n',
  );
  ossl('req', ...key, '-keyout', f('server.key'), '-out', f('server.csr'), '-subj', '/CN=authz');
  ossl(
    'x509',
    '-req',
    '-in',
    f('server.csr'),
    '-CA',
    f('ca.crt'),
    '-CAkey',
    f('ca.key'),
    '-CAcreateserial',
    '-out',
    f('server.crt'),
    '-days',
    '1',
    '-extfile',
    f('server.ext'),
  );
  return { ca: f('ca.crt'), cert: f('server.crt'), key: f('server.key') };
}

function checksOf(server: RunningServer): Promise<number> {
  return server.metrics.registry
    .getSingleMetric('oxds_authz_checks_total')!
    .get()
    .then((m) => m.values.reduce((n, v) => n + v.value, 0));
}

if (haveOpenssl) {
  envoyTest(
    'Envoy: the oxds-ext-authz cluster speaks TLS to a TLS ext_authz port (certificate verified)',
    async (t, bin) => {
      const [backend] = (await startHttpBackends(['orders'])) as HttpBackend[];
      t.onTestFinished(() => backend!.stop());
      const pkiDir = fs.mkdtempSync(path.join(os.tmpdir(), 'oxds-authz-tls-'));
      t.onTestFinished(() => fs.rmSync(pkiDir, { recursive: true, force: true }));
      const p = serverPki(pkiDir);
      const gw = await startGateway(t, bin, {
        files: files(backend!.port),
        flags: { authzTlsCert: p.cert, authzTlsKey: p.key, envoyAuthzCa: p.ca },
      });
      const ok = await gw.request({ host: 'orders.oto.tools', path: '/x', headers: KEY });
      assert.equal(ok.status, 200, `allowed through a TLS Check: ${ok.body}`);
      const denied = await gw.request({ host: 'orders.oto.tools', path: '/x' });
      assert.notEqual(denied.status, 503, 'a deny comes from the Check service, not from status_on_error');
      assert.ok(denied.status >= 400 && denied.status < 500, `denied by the Check: ${denied.status}`);
      assert.ok(
        (await gw.envoy.stat('cluster.oxds-ext-authz.ssl.handshake')) > 0,
        'Envoy made TLS handshakes to ext_authz',
      );
    },
  );

  envoyTest(
    'Envoy: a Check port with TLS and a CA that did not sign it fails closed (503), never plaintext',
    async (t, bin) => {
      const [backend] = (await startHttpBackends(['orders'])) as HttpBackend[];
      t.onTestFinished(() => backend!.stop());
      const pkiDir = fs.mkdtempSync(path.join(os.tmpdir(), 'oxds-authz-tls-'));
      t.onTestFinished(() => fs.rmSync(pkiDir, { recursive: true, force: true }));
      const p = serverPki(pkiDir);
      const rogue = serverPki(fs.mkdtempSync(path.join(pkiDir, 'rogue-')));
      const gw = await startGateway(t, bin, {
        files: files(backend!.port),
        flags: { authzTlsCert: p.cert, authzTlsKey: p.key, envoyAuthzCa: rogue.ca },
      });
      const r = await gw.request({ host: 'orders.oto.tools', path: '/x', headers: KEY });
      assert.equal(r.status, 503, 'an unverifiable ext_authz certificate denies (status_on_error)');
      assert.ok(
        (await gw.envoy.stat('cluster.oxds-ext-authz.ssl.fail_verify_error')) > 0,
        'Envoy refused the certificate',
      );
    },
  );
}

envoyTest(
  'Envoy: the oxds-ext-authz cluster balances over three replicas; one stopped under load fails no more than the ' +
    'calls in flight',
  async (t, bin) => {
    const [backend] = (await startHttpBackends(['orders'])) as HttpBackend[];
    t.onTestFinished(() => backend!.stop());
    // Two more control planes on the same objects: ext_authz replicas.
    const extra: RunningServer[] = [];
    const dirs: string[] = [];
    t.onTestFinished(async () => {
      await Promise.all(extra.map((s) => s.stop().catch(() => undefined)));
      for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
    });
    for (let i = 0; i < 2; i++) {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'oxds-authz-replica-'));
      dirs.push(dir);
      writeFiles(dir, files(backend!.port));
      const c = testConfig(dir);
      extra.push(await startServer(c, makeLogger(c.logLevel)));
    }
    const own = await freePort();
    const addresses = [own, ...extra.map((s) => s.authzPort)].map((p) => `127.0.0.1:${p}`).join(',');
    const gw = await startGateway(t, bin, {
      files: files(backend!.port),
      flags: { authzPort: own, envoyAuthzAddress: addresses },
    });
    const replicas = [gw.server, ...extra];
    const before = await Promise.all(replicas.map(checksOf));
    for (let i = 0; i < 60; i++) {
      const r = await gw.request({ host: 'orders.oto.tools', path: '/x', headers: KEY });
      if (r.status !== 200)
        assert.fail(`request ${i}: ${r.status} ${r.body} ${JSON.stringify(await gw.envoy.stats('oxds-ext-authz'))}`);
    }
    const spread = (await Promise.all(replicas.map(checksOf))).map((n, i) => n - before[i]!);
    assert.ok(
      spread.every((n) => n >= 5),
      `every replica answered Checks: ${spread.join('/')}`,
    );

    // Load through Envoy; replica 3 stops in the middle.
    interface Sample {
      start: number;
      end: number;
      status: number;
    }
    const samples: Sample[] = [];
    let running = true;
    const worker = async (): Promise<void> => {
      while (running) {
        const start = Date.now();
        const status = await gw.request({ host: 'orders.oto.tools', path: '/x', headers: KEY }).then(
          (r) => r.status,
          () => -1,
        );
        samples.push({ start, end: Date.now(), status });
      }
    };
    const workers = Array.from({ length: 8 }, worker);
    await eventually('load before the stop', () => (samples.length >= 200 ? true : undefined));
    const stoppedAt = Date.now();
    await extra[1]!.stop();
    const stoppedBy = Date.now();
    await eventually(
      'load after the stop',
      () => (samples.filter((s) => s.start > stoppedBy).length >= 300 ? true : undefined),
      60_000,
    );
    running = false;
    await Promise.all(workers);
    const failed = samples.filter((s) => s.status !== 200);
    const inFlight = samples.filter((s) => s.start <= stoppedBy && s.end >= stoppedAt).length;
    console.log(
      `# ext_authz replica stopped under load through Envoy: ${samples.length} requests, ${failed.length}` +
        ` failed ${JSON.stringify(failed.map((s) => s.status))}, ${inFlight} in flight during the stop`,
    );
    assert.ok(failed.length <= inFlight, `failed ${failed.length} ≤ in flight ${inFlight}`);
    assert.ok(
      samples.filter((s) => s.start > stoppedBy + 2000).every((s) => s.status === 200),
      'all allowed once the replica is gone',
    );
  },
);
