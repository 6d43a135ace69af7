// Issue 5: Certificate CRs → issued by our CA → SDS secrets; rotation; workload identities.
import { test } from 'vitest';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { execFileSync, spawnSync } from 'node:child_process';
import { X509Certificate, createPublicKey } from 'node:crypto';
import { buildModel } from '../src/model/build.js';
import { CertificateAuthority } from '../src/ca/ca.js';
import { CertManager, FileIssuedStore, MemoryIssuedStore, type CaEvent } from '../src/ca/manager.js';
import { certificateSecretData, splitPemChain } from '../src/ca/export.js';
import { parseYamlFile } from '../src/sources/yaml.js';
import { resolveConfig } from '../src/config.js';
import { startServer, makeLogger } from '../src/main.js';
import { nodeIdentity } from '../src/xds/server/node.js';
import { AdsClient, TYPE_URLS, anyName, decodeAny } from './helpers/ads-client.js';
import type { ConfigView, BuildResult, ObjectStatus } from '../src/model/types.js';
import type { ProtoObject } from '../proto/loader.js';
import type { DeltaDiscoveryResponse, DiscoveryResponse } from '../src/xds/server/messages.js';

const DAY = 86_400_000;
const T0 = Date.UTC(2026, 10, 22, 12, 0, 0);

function view(yaml: string): ConfigView {
  const r = parseYamlFile('certs.yaml', yaml, 0);
  return { objects: r.objects, loadErrors: r.errors };
}

function cr(name: string, spec: string): string {
  const body = spec
    .split('\n')
    .map((l) => `  ${l}`)
    .join('\n');
  return (
    `---\napiVersion: proxy.otoroshi.io/v1alpha1\nkind: Certificate\nmetadata: {name: ${name}, namespace: default}\n` +
    `spec:\n${body}\n`
  );
}

function statusOf(b: BuildResult, name: string): ObjectStatus {
  const s = b.statuses.find((x) => x.key === `Certificate/default/${name}`);
  assert.ok(s, `status of ${name}`);
  return s;
}

function leaf(chainPem: string): X509Certificate {
  return new X509Certificate(splitPemChain(chainPem)[0] as string);
}

let sharedCa: CertificateAuthority | undefined;
function ca(): CertificateAuthority {
  sharedCa ??= CertificateAuthority.create({ now: T0 - DAY });
  return sharedCa;
}

// A generous synchronous budget: on a loaded machine the default 20 ms would queue the first
// issuance to the background and these tests would read a model without it (the budget has its own test).
function manager(clock: { t: number }, events: CaEvent[] = [], store = new MemoryIssuedStore()): CertManager {
  const onEvent = (e: CaEvent): number => events.push(e);
  return new CertManager({ ca: ca(), store, now: () => clock.t, rand: () => 0.5, onEvent, syncBudgetMs: 60_000 });
}

function materialize(m: CertManager, yaml: string, now: number): BuildResult {
  const b = buildModel(view(yaml), { now });
  m.materialize(b);
  return b;
}

const WEB = cr(
  'web',
  'csr:\n  hosts: [web.oto.tools, "*.web.oto.tools"]\n  subject: CN=web.oto.tools, O=OtoroshiApps\n  duration: 30 days',
);

test(
  'a Certificate csr is issued by our intermediate CA: SANs, EKU, validity, chain ' +
    'up to the bundle (openssl verify)',
  () => {
    const clock = { t: T0 };
    const b = materialize(manager(clock), WEB, clock.t);
    assert.equal(statusOf(b, 'web').state, 'valid');
    const c = b.model.certificates.find((x) => x.secretName === 'default/web');
    assert.ok(c);
    assert.deepEqual(c.dnsNames, ['web.oto.tools', '*.web.oto.tools']);
    const x = leaf(c.certificateChain);
    assert.match(x.subjectAltName ?? '', /DNS:web\.oto\.tools/);
    assert.equal(Date.parse(x.validTo) - Date.parse(x.validFrom), 30 * DAY);
    assert.equal(splitPemChain(c.certificateChain).length, 3, 'leaf + intermediate + root');
    assert.equal(b.model.caBundle, ca().trustBundlePem);
    // The HTTPS listener serves it for its DNS hosts.
    assert.deepEqual(b.model.tls, [
      {
        secretName: 'default/web',
        serverNames: ['*.web.oto.tools', 'web.oto.tools'],
        source: { kind: 'Certificate', namespace: 'default', name: 'web' },
      },
    ]);
    // An independent implementation agrees.
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'oxds-sds-'));
    const certs = splitPemChain(c.certificateChain);
    fs.writeFileSync(path.join(dir, 'bundle.pem'), b.model.caBundle ?? '');
    fs.writeFileSync(path.join(dir, 'int.pem'), certs[1] ?? '');
    fs.writeFileSync(path.join(dir, 'leaf.pem'), certs[0] ?? '');
    const out = execFileSync(
      'openssl',
      [
        'verify',
        '-attime',
        String(Math.floor(T0 / 1000) + 60),
        '-CAfile',
        path.join(dir, 'bundle.pem'),
        '-untrusted',
        path.join(dir, 'int.pem'),
        path.join(dir, 'leaf.pem'),
      ],
      { encoding: 'utf8' },
    );
    assert.match(out, /OK/);
    const text = execFileSync('openssl', ['x509', '-noout', '-text', '-in', path.join(dir, 'leaf.pem')], {
      encoding: 'utf8',
    });
    assert.match(text, /TLS Web Server Authentication/);
    assert.doesNotMatch(text, /TLS Web Client Authentication/);
    assert.match(text, /CA:FALSE/);
  },
);

test(
  'an issued certificate is reused while its csr is unchanged, across a restart ' +
    '(file store); a csr edit re-issues',
  () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'oxds-issued-'));
    const file = path.join(dir, 'issued-certs.json');
    const clock = { t: T0 };
    const events: CaEvent[] = [];
    const m1 = manager(clock, events, new FileIssuedStore(file));
    const a = materialize(m1, WEB, clock.t).model.certificates[0];
    const b = materialize(m1, WEB, clock.t).model.certificates[0];
    assert.equal(a?.certificateChain, b?.certificateChain, 'same certificate on a rebuild');
    assert.deepEqual(
      events.map((e) => e.type),
      ['certificate.issued'],
    );
    return m1.store.flush().then(() => {
      assert.equal(fs.statSync(file).mode & 0o777, 0o600);
      const m2 = manager(clock, events, new FileIssuedStore(file));
      const c = materialize(m2, WEB, clock.t).model.certificates[0];
      assert.equal(c?.certificateChain, a?.certificateChain, 'same certificate after a restart');
      const edited = materialize(m2, WEB.replace('30 days', '60 days'), clock.t).model.certificates[0];
      assert.notEqual(edited?.certificateChain, a?.certificateChain);
      assert.equal(events.filter((e) => e.type === 'certificate.issued').length, 2);
    });
  },
);

test(
  'an unknown issuer is an error on that Certificate only (never a self-signed ' +
    'certificate); the others are issued',
  () => {
    const clock = { t: T0 };
    const events: CaEvent[] = [];
    const b = materialize(
      manager(clock, events),
      WEB + cr('bad', 'csr:\n  issuer: CN=Otoroshi Root\n  hosts: [bad.oto.tools]'),
      clock.t,
    );
    const st = statusOf(b, 'bad');
    assert.equal(st.state, 'invalid');
    assert.equal(st.errors[0]?.field, 'spec.csr.issuer');
    assert.equal(st.errors[0]?.code, 'OXDS_UNRESOLVED_REFERENCE');
    assert.deepEqual(
      b.model.certificates.map((c) => c.secretName),
      ['default/web'],
    );
    assert.ok(events.some((e) => e.type === 'certificate.failed' && e.secretName === 'default/bad'));
  },
);

test(
  'issuer by our CA id, by a ca: true Certificate (name, id or DN, declared in any order), ' + 'and the chains verify',
  () => {
    const clock = { t: T0 };
    const yaml =
      cr('leaf-by-dn', 'csr:\n  issuer: CN=Team CA, O=Team\n  hosts: [a.team.local]') +
      cr('leaf-by-name', 'csr:\n  issuer: default/team-ca\n  hosts: [b.team.local]\n  client: true') +
      cr('team-ca', 'csr:\n  issuer: otoroshi-root-ca\n  subject: CN=Team CA, O=Team\n  ca: true') +
      cr('leaf-by-root', 'csr:\n  issuer: otoroshi-root-ca\n  hosts: [c.oto.tools]');
    const b = materialize(manager(clock), yaml, clock.t);
    for (const s of b.statuses) assert.equal(s.state, 'valid', JSON.stringify(s.errors));
    const by = new Map(b.model.certificates.map((c) => [c.secretName, c]));
    const teamCa = leaf(by.get('default/team-ca')?.certificateChain ?? '');
    assert.ok(teamCa.ca);
    const root = new X509Certificate(ca().rootCertPem);
    assert.ok(teamCa.checkIssued(root) && teamCa.verify(root.publicKey));
    for (const n of ['default/leaf-by-dn', 'default/leaf-by-name']) {
      const x = leaf(by.get(n)?.certificateChain ?? '');
      assert.ok(x.checkIssued(teamCa) && x.verify(teamCa.publicKey), n);
    }
    const byRoot = leaf(by.get('default/leaf-by-root')?.certificateChain ?? '');
    assert.ok(byRoot.checkIssued(root));
    // A CA certificate is not an HTTPS server certificate.
    assert.ok(!b.model.tls.some((t) => t.secretName === 'default/team-ca'));
  },
);

test(
  'autoRenew renews at two thirds of the lifetime keeping the key pair; without it ' +
    'an expired certificate is reported',
  () => {
    const clock = { t: T0 };
    const events: CaEvent[] = [];
    const m = manager(clock, events);
    const yaml =
      cr('renew', 'autoRenew: true\ncsr:\n  hosts: [r.oto.tools]\n  duration: 3 days') +
      cr('norenew', 'csr:\n  hosts: [n.oto.tools]\n  duration: 1 day');
    const b0 = buildModel(view(yaml), { now: clock.t });
    const r0 = m.materialize(b0);
    const first = b0.model.certificates.find((c) => c.secretName === 'default/renew');
    assert.ok(first && r0.nextRenewalAt !== undefined);
    // rand 0.5 → no jitter: exactly two thirds of 3 days
    assert.equal(r0.nextRenewalAt, T0 + 2 * DAY);
    clock.t = T0 + 2 * DAY - 1000;
    assert.equal(
      materialize(m, yaml, clock.t).model.certificates.find((c) => c.secretName === 'default/renew')?.certificateChain,
      first.certificateChain,
      'not yet due',
    );
    clock.t = T0 + 2 * DAY + 1000;
    const b1 = materialize(m, yaml, clock.t);
    const second = b1.model.certificates.find((c) => c.secretName === 'default/renew');
    assert.ok(second);
    assert.notEqual(second.certificateChain, first.certificateChain);
    assert.equal(second.privateKey, first.privateKey, 'renewal keeps the key pair');
    assert.ok(Date.parse(second.notAfter ?? '') > Date.parse(first.notAfter ?? ''));
    assert.ok(events.some((e) => e.type === 'certificate.renewed' && e.secretName === 'default/renew'));
    const st = statusOf(b1, 'norenew');
    assert.equal(st.state, 'valid');
    assert.match(st.errors.map((e) => e.message).join(), /expired/);
  },
);

test(
  'RSA keys come from a pool filled off the event loop: ' + 'the CR is pending, then issued and a rebuild is asked for',
  async () => {
    const clock = { t: T0 };
    let asked = 0;
    const localCa = CertificateAuthority.create({ now: T0 - DAY });
    const m = new CertManager({ ca: localCa, now: () => clock.t, onAsyncIssued: () => asked++ });
    try {
      const yaml = cr('rsa', 'csr:\n  hosts: [rsa.oto.tools]\n  key: {algo: rsa, size: 2048}');
      const b0 = materialize(m, yaml, clock.t);
      assert.equal(b0.model.certificates.length, 0);
      assert.match(
        statusOf(b0, 'rsa')
          .errors.map((e) => e.message)
          .join(),
        /waiting for an RSA-2048 key/,
      );
      for (let i = 0; i < 400 && asked === 0; i++) await new Promise((r) => setTimeout(r, 25));
      assert.equal(asked, 1);
      const b1 = materialize(m, yaml, clock.t);
      const c = b1.model.certificates[0];
      assert.ok(c);
      assert.equal(createPublicKey(c.privateKey).asymmetricKeyType, 'rsa');
      assert.equal(statusOf(b1, 'rsa').errors.length, 0);
    } finally {
      localCa.pool.close();
    }
  },
);

test(
  'model: a Certificate needs csr or chain + privateKey; ' + 'a user-provided pair is served as is; names are unique',
  () => {
    const b = buildModel(
      view(
        cr('empty', 'description: nothing') +
          cr('bad-secret-name', 'exportSecret: true\nsecretName: Not_Valid\ncsr:\n  hosts: [x.oto.tools]') +
          cr('exported', 'exportSecret: true\ncsr:\n  hosts: [e.oto.tools]'),
      ),
      { now: T0 },
    );
    assert.equal(statusOf(b, 'empty').errors[0]?.field, 'spec.csr');
    assert.equal(statusOf(b, 'bad-secret-name').errors[0]?.field, 'spec.secretName');
    assert.deepEqual(
      b.model.certificateRequests?.map((r) => [r.secretName, r.exportSecret]),
      [['default/exported', { namespace: 'default', name: 'exported-secret' }]],
    );
    // user-provided chain + key (here: one the CA issued), and a TLS Secret with the same name
    const clock = { t: T0 };
    const issued = materialize(manager(clock), WEB, clock.t).model.certificates[0];
    assert.ok(issued);
    const indent = (s: string): string => s.trim().split('\n').join('\n    ');
    const provided = cr(
      'web',
      `chain: |\n    ${indent(issued.certificateChain)}\nprivateKey: |\n    ${indent(issued.privateKey)}`,
    );
    const secret = `---
apiVersion: v1
kind: Secret
type: kubernetes.io/tls
metadata: {name: web, namespace: default}
stringData:
  tls.crt: |
    ${indent(issued.certificateChain)}
  tls.key: |
    ${indent(issued.privateKey)}
`;
    const b2 = buildModel(view(secret + provided), { now: T0 });
    assert.equal(b2.model.certificates.length, 1);
    assert.equal(statusOf(b2, 'web').errors[0]?.code, 'OXDS_DUPLICATE_OBJECT');
    const b3 = buildModel(view(provided), { now: T0 });
    assert.equal(b3.model.certificates[0]?.certificateChain.trim(), issued.certificateChain.trim());
    assert.deepEqual(b3.model.tls[0]?.serverNames, ['*.web.oto.tools', 'web.oto.tools']);
    // a wrong key is reported without echoing key material
    const wrong = buildModel(
      view(cr('web', `chain: |\n    ${indent(issued.certificateChain)}\nprivateKey: not a key`)),
      {
        now: T0,
      },
    );
    const msg = statusOf(wrong, 'web').errors[0];
    assert.equal(msg?.field, 'spec.privateKey');
  },
);

test('exported secret data follows Otoroshi: tls.crt chain, cert.crt leaf, ca-chain.crt, ca.crt = root', () => {
  const clock = { t: T0 };
  const c = materialize(manager(clock), WEB, clock.t).model.certificates[0];
  assert.ok(c);
  const d = certificateSecretData(c);
  const certs = splitPemChain(c.certificateChain);
  assert.equal(d['tls.crt'], c.certificateChain);
  assert.equal(d['tls.key'], c.privateKey);
  assert.equal(d['cert.crt'], certs[0]);
  assert.equal(d['ca-chain.crt'], `${certs[1]}\n\n${certs[2]}`);
  assert.equal(d['ca.crt'], certs[2]);
  assert.equal(
    new X509Certificate(d['ca.crt'] ?? '').fingerprint256,
    new X509Certificate(ca().rootCertPem).fingerprint256,
  );
});

// ---------------------------------------------------------------- through the server, over SDS

interface Harness {
  dir: string;
  clock: { t: number };
  server: Awaited<ReturnType<typeof startServer>>;
}

/**
 * `gateway`: loopback clients are gateways holding every certificate; `metadata`: the insecure self-asserted mode
 * (sidecars name their identity).
 */
async function harness(yaml: string, start = T0, auth: 'gateway' | 'metadata' = 'gateway'): Promise<Harness> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'oxds-sds-srv-'));
  fs.mkdirSync(path.join(dir, 'conf'));
  fs.writeFileSync(path.join(dir, 'conf', 'certs.yaml'), yaml);
  const r = resolveConfig(
    {
      config: path.join(dir, 'conf'),
      xdsPort: 0,
      adminPort: 0,
      authzPort: 0,
      dataDir: path.join(dir, '.data'),
      debounceMs: 5,
      debounceMaxMs: 20,
      ...(auth === 'gateway'
        ? { loopbackGateway: 'on', gatewaySecrets: 'all' }
        : { xdsNodeAuth: 'insecure-node-metadata' }),
    },
    {},
  );
  assert.ok(r.ok);
  const clock = { t: start };
  const server = await startServer(r.value, makeLogger('silent'), undefined, { now: () => clock.t });
  return { dir, clock, server };
}

function secretOf(r: DiscoveryResponse | DeltaDiscoveryResponse): ProtoObject[] {
  const res = r.resources as unknown as Array<{
    type_url: string;
    value: Uint8Array;
    resource?: { type_url: string; value: Uint8Array };
  }>;
  return res.map((x) => decodeAny((x.resource ?? x) as never));
}

const RENEW = cr('api', 'autoRenew: true\ncsr:\n  hosts: [api.oto.tools]\n  duration: 3 days');

test(
  'SDS: a Certificate CR is the secret <ns>/<name>, the bundle is ' +
    'otoroshi-ca-bundle; rotation is a Secret update only (Delta ADS)',
  async () => {
    const h = await harness(RENEW);
    const c = new AdsClient(h.server.xdsPort, { mode: 'delta' });
    try {
      c.subscribe(TYPE_URLS.listener, ['*']);
      c.subscribe(TYPE_URLS.cluster, ['*']);
      c.subscribe(TYPE_URLS.secret, ['default/api', 'otoroshi-ca-bundle']);
      const first = new Map<string, DeltaDiscoveryResponse>();
      while (first.size < 3) {
        const r = await c.nextDelta();
        first.set(r.typeUrl, r);
        c.ackDelta(r);
      }
      const secrets = secretOf(first.get(TYPE_URLS.secret) as DeltaDiscoveryResponse);
      const byName = new Map(secrets.map((s) => [String(s['name']), s]));
      const api = byName.get('default/api') as
        | { tlsCertificate: { certificateChain: { inlineString: string }; privateKey: { inlineString: string } } }
        | undefined;
      const bundle = byName.get('otoroshi-ca-bundle') as
        { validationContext: { trustedCa: { inlineString: string } } } | undefined;
      assert.ok(api && bundle);
      const x = leaf(api.tlsCertificate.certificateChain.inlineString);
      assert.match(x.subjectAltName ?? '', /api\.oto\.tools/);
      const root = new X509Certificate(bundle.validationContext.trustedCa.inlineString);
      assert.ok(root.ca);
      // The HTTPS listener references the secret by name (not inline).
      const lds = secretOf(first.get(TYPE_URLS.listener) as DeltaDiscoveryResponse);
      assert.match(JSON.stringify(lds), /"default\/api"/);
      assert.doesNotMatch(JSON.stringify(lds), /BEGIN/);

      // Renewal time: renewed, pushed as a Secret update, nothing else.
      // past two thirds of 3 days plus the largest jitter (10% of the lifetime), before expiry
      h.clock.t = T0 + 2.5 * DAY;
      await h.server.rebuildNow();
      const upd = await c.nextDelta();
      assert.equal(upd.typeUrl, TYPE_URLS.secret);
      c.ackDelta(upd);
      const renewed = secretOf(upd);
      assert.deepEqual(
        renewed.map((s) => s['name']),
        ['default/api'],
      );
      const y = leaf((renewed[0] as typeof api & ProtoObject).tlsCertificate.certificateChain.inlineString);
      assert.notEqual(y.serialNumber, x.serialNumber);
      assert.ok(Date.parse(y.validTo) > Date.parse(x.validTo));
      await c.expectNone(300);
    } finally {
      c.close();
      await h.server.stop();
    }
  },
);

test('SDS: the standalone SecretDiscoveryService (SotW) serves the same secrets', async () => {
  const h = await harness(RENEW);
  const c = new AdsClient(h.server.xdsPort, { service: 'sds' });
  try {
    c.request(TYPE_URLS.secret, ['default/api']);
    const r = await c.nextSotw();
    assert.deepEqual(r.resources.map(anyName), ['default/api']);
  } finally {
    c.close();
    await h.server.stop();
  }
});

test(
  'workload identity: a sidecar gets the SPIFFE certificate its node metadata ' +
    'names, not another one; mTLS works with SDS material',
  async () => {
    // real time: the TLS stack checks validity against the wall clock
    const h = await harness(cr('api', 'csr:\n  hosts: [localhost]\n  duration: 3 days'), Date.now(), 'metadata');
    const spiffe = 'spiffe://cluster.local/ns/shop/sa/cart';
    const node = {
      id: 'sidecar~10.0.0.7~cart-1.shop~shop.svc.cluster.local',
      metadata: { NAMESPACE: 'shop', SERVICE_ACCOUNT: 'cart' },
    };
    assert.deepEqual(nodeIdentity({ metadata: node.metadata } as never), { namespace: 'shop', serviceAccount: 'cart' });
    const c = new AdsClient(h.server.xdsPort, { mode: 'delta', node });
    const other = new AdsClient(h.server.xdsPort, {
      mode: 'delta',
      node: { id: 'intruder', metadata: { NAMESPACE: 'shop', SERVICE_ACCOUNT: 'other' } },
    });
    try {
      c.subscribe(TYPE_URLS.secret, [spiffe, 'otoroshi-ca-bundle', 'default/api']);
      const r = await c.nextDelta();
      c.ackDelta(r);
      const got = new Map(
        secretOf(r).map((s) => [
          String(s['name']),
          s as ProtoObject & {
            tlsCertificate?: { certificateChain: { inlineString: string }; privateKey: { inlineString: string } };
            validationContext?: { trustedCa: { inlineString: string } };
          },
        ]),
      );
      const wl = got.get(spiffe)?.tlsCertificate;
      const server = got.get('default/api')?.tlsCertificate;
      const bundle = got.get('otoroshi-ca-bundle')?.validationContext?.trustedCa.inlineString;
      assert.ok(wl && server && bundle);
      const x = leaf(wl.certificateChain.inlineString);
      assert.match(x.subjectAltName ?? '', new RegExp(`URI:${spiffe.replace(/[/.]/g, '\\$&')}`));
      assert.equal(Date.parse(x.validTo) - Date.parse(x.validFrom), DAY);

      other.subscribe(TYPE_URLS.secret, [spiffe]);
      await other.expectNone(300);

      // A real mTLS handshake with what SDS delivered: server cert (Certificate CR) + client workload cert.
      const srv = tls.createServer(
        {
          cert: server.certificateChain.inlineString,
          key: server.privateKey.inlineString,
          ca: bundle,
          requestCert: true,
          rejectUnauthorized: true,
        },
        (s) => {
          const peer = s.getPeerCertificate();
          s.end(String(peer.subjectaltname ?? ''));
        },
      );
      await new Promise<void>((res) => srv.listen(0, '127.0.0.1', res));
      const port = (srv.address() as { port: number }).port;
      try {
        const seen = await new Promise<string>((res, rej) => {
          const sock = tls.connect(
            {
              host: '127.0.0.1',
              port,
              servername: 'localhost',
              cert: wl.certificateChain.inlineString,
              key: wl.privateKey.inlineString,
              ca: bundle,
            },
            () => undefined,
          );
          let buf = '';
          sock.on('data', (d) => (buf += String(d)));
          sock.on('end', () => res(buf));
          sock.on('error', rej);
        });
        assert.match(seen, /URI:spiffe:\/\/cluster\.local\/ns\/shop\/sa\/cart/);
      } finally {
        srv.close();
      }
    } finally {
      c.close();
      other.close();
      await h.server.stop();
    }
  },
);

// ---------------------------------------------------------------- CLI and file export

const CLI = path.resolve('dist/src/cli.js');
function cli(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], {
    encoding: 'utf8',
    timeout: 30_000,
    env: { ...process.env, OXDS_LOG_LEVEL: 'silent' },
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

test('translate is deterministic with Certificate CRs (placeholder PEM), and validate names an unknown issuer', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'oxds-cli-ca-'));
  fs.writeFileSync(
    path.join(dir, 'c.yaml'),
    WEB + cr('rsa', 'csr:\n  hosts: [rsa.oto.tools]\n  key: {algo: rsa, size: 4096}'),
  );
  const a = cli('translate', '--config', dir);
  const b = cli('translate', '--config', dir);
  assert.equal(a.status, 0, a.stderr);
  assert.equal(a.stdout, b.stdout);
  const out = JSON.parse(a.stdout) as { secrets: Array<{ name: string }>; listeners: unknown[] };
  assert.deepEqual(
    out.secrets.map((s) => s.name),
    ['default/rsa', 'default/web', 'otoroshi-ca-bundle'],
  );
  assert.doesNotMatch(a.stdout, /BEGIN/);
  fs.writeFileSync(path.join(dir, 'd.yaml'), cr('orphan', 'csr:\n  issuer: CN=Nobody\n  hosts: [o.oto.tools]'));
  const v = cli('validate', '--config', dir);
  assert.equal(v.status, 1);
  assert.match(v.stdout, /d\.yaml#0 Certificate default\/orphan spec\.csr\.issuer: unknown issuer "CN=Nobody"/);
});

test('ca show prints the CA without keys; ca issue prints or writes a certificate that openssl verifies', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'oxds-cli-ca2-'));
  const data = path.join(dir, 'data');
  const show = cli('ca', 'show', '--data-dir', data);
  assert.equal(show.status, 0, show.stderr);
  assert.match(show.stdout, /root CA[\s\S]+BEGIN CERTIFICATE[\s\S]+intermediate CA/);
  assert.doesNotMatch(show.stdout, /PRIVATE KEY/);
  // The same CA on the next run (persisted in the data dir).
  assert.equal(cli('ca', 'show', '--data-dir', data).stdout, show.stdout);
  fs.writeFileSync(
    path.join(dir, 'csr.yaml'),
    'apiVersion: proxy.otoroshi.io/v1alpha1\nkind: Certificate\nmetadata: {name: x}\nspec:\n  csr:\n    hosts: ' +
      '[svc.oto.tools]\n    client: true\n',
  );
  const printed = cli('ca', 'issue', '--data-dir', data, '--csr', path.join(dir, 'csr.yaml'));
  assert.equal(printed.status, 0, printed.stderr);
  assert.match(printed.stdout, /SANs: +DNS:svc\.oto\.tools[\s\S]+PRIVATE KEY/);
  const outDir = path.join(dir, 'out');
  assert.equal(
    cli('ca', 'issue', '--data-dir', data, '--csr', path.join(dir, 'csr.yaml'), '--out-dir', outDir).status,
    0,
  );
  assert.equal(fs.statSync(path.join(outDir, 'tls.key')).mode & 0o777, 0o600);
  const v = execFileSync(
    'openssl',
    [
      'verify',
      '-CAfile',
      path.join(outDir, 'ca.crt'),
      '-untrusted',
      path.join(outDir, 'ca-chain.crt'),
      path.join(outDir, 'cert.crt'),
    ],
    { encoding: 'utf8' },
  );
  assert.match(v, /OK/);
  const bad = path.join(dir, 'bad.yaml');
  fs.writeFileSync(bad, 'issuer: otoroshi-nope\nhosts: [a.b]\n');
  const r = cli('ca', 'issue', '--data-dir', data, '--csr', bad);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /issuer: unknown issuer "otoroshi-nope"/);
});

test(
  'file mode exportSecret: ' + 'the secret data lands in <data-dir>/secrets/<ns>/<name>/ and goes away with the CR',
  async () => {
    const h = await harness(
      cr('exp', 'exportSecret: true\nsecretName: exp-tls\ncsr:\n  hosts: [exp.oto.tools]'),
      Date.now(),
    );
    try {
      const dir = path.join(h.dir, '.data', 'secrets', 'default', 'exp-tls');
      assert.deepEqual(
        fs
          .readdirSync(dir)
          .filter((f) => !f.startsWith('.'))
          .sort(),
        ['ca-chain.crt', 'ca.crt', 'cert.crt', 'tls.crt', 'tls.key'],
      );
      assert.equal(fs.statSync(path.join(dir, 'tls.key')).mode & 0o777, 0o600);
      const x = new X509Certificate(fs.readFileSync(path.join(dir, 'cert.crt')));
      assert.match(x.subjectAltName ?? '', /exp\.oto\.tools/);
      // a directory that is not ours is never removed
      const foreign = path.join(h.dir, '.data', 'secrets', 'default', 'not-ours');
      fs.mkdirSync(foreign, { recursive: true });
      fs.writeFileSync(path.join(h.dir, 'conf', 'certs.yaml'), WEB);
      await h.server.rebuildNow();
      assert.equal(fs.existsSync(dir), false);
      assert.equal(fs.existsSync(foreign), true);
    } finally {
      await h.server.stop();
    }
  },
);

test(
  'a mass issuance beyond the synchronous budget is queued and finished in the background; ' + 'nothing is lost',
  async () => {
    const clock = { t: T0 };
    let done = 0;
    const m = new CertManager({
      ca: ca(),
      now: () => clock.t,
      syncBudgetMs: 0,
      sliceMs: 2,
      onAsyncIssued: () => done++,
    });
    let yaml = '';
    for (let i = 0; i < 300; i++) yaml += cr(`svc-${i}`, `csr:\n  hosts: [svc-${i}.oto.tools]`);
    const b0 = materialize(m, yaml, clock.t);
    assert.ok(b0.model.certificates.length < 300, 'some certificates were queued');
    const queued = b0.statuses.filter((s) => s.errors.some((e) => /queued/.test(e.message)));
    assert.equal(queued.length, 300 - b0.model.certificates.length);
    assert.ok(
      queued.every((s) => s.state === 'valid'),
      'queued is a warning, not an error',
    );
    for (let i = 0; i < 400 && done === 0; i++) await new Promise((r) => setTimeout(r, 10));
    assert.equal(done, 1);
    assert.equal(m.queued, 0);
    const b1 = materialize(m, yaml, clock.t);
    assert.equal(b1.model.certificates.length, 300);
    assert.ok(b1.statuses.every((s) => s.errors.length === 0));
  },
);

test(
  'workload certificates rotate before they expire: ' + 'the sidecar gets a new Secret (new key), and nothing else',
  async () => {
    const h = await harness(WEB, T0, 'metadata');
    const spiffe = 'spiffe://cluster.local/ns/shop/sa/cart';
    const c = new AdsClient(h.server.xdsPort, {
      mode: 'delta',
      node: { id: 'cart-1', metadata: { NAMESPACE: 'shop', SERVICE_ACCOUNT: 'cart' } },
    });
    try {
      c.subscribe(TYPE_URLS.cluster, ['*']);
      c.subscribe(TYPE_URLS.secret, [spiffe]);
      const got: DeltaDiscoveryResponse[] = [];
      while (got.length < 2) {
        const r = await c.nextDelta();
        got.push(r);
        c.ackDelta(r);
      }
      const first = secretOf(
        got.find((r) => r.typeUrl === TYPE_URLS.secret) as DeltaDiscoveryResponse,
      )[0] as ProtoObject & {
        tlsCertificate: { certificateChain: { inlineString: string }; privateKey: { inlineString: string } };
      };
      // 24 h lifetime: due at 16 h ± 2.4 h
      h.clock.t = T0 + 19 * 3_600_000;
      await h.server.rebuildNow();
      const upd = await c.nextDelta();
      c.ackDelta(upd);
      assert.equal(upd.typeUrl, TYPE_URLS.secret);
      const next = secretOf(upd)[0] as typeof first;
      assert.equal(next['name'], spiffe);
      assert.notEqual(
        next.tlsCertificate.privateKey.inlineString,
        first.tlsCertificate.privateKey.inlineString,
        'a new key pair',
      );
      assert.ok(
        Date.parse(leaf(next.tlsCertificate.certificateChain.inlineString).validTo) >
          Date.parse(leaf(first.tlsCertificate.certificateChain.inlineString).validTo),
      );
      await c.expectNone(300);
    } finally {
      c.close();
      await h.server.stop();
    }
  },
);

test("two replicas creating the CA at once: the one whose save loses (EEXIST) uses the winner's CA", async () => {
  const winner = CertificateAuthority.create({ now: T0 - DAY }).material();
  let saves = 0;
  let loads = 0;
  const store = {
    load: () => Promise.resolve(loads++ === 0 ? undefined : winner),
    save: () => {
      saves++;
      return Promise.reject(Object.assign(new Error('exists'), { code: 'EEXIST' }));
    },
  };
  const got = await CertificateAuthority.loadOrCreate(store);
  assert.equal(saves, 1);
  assert.equal(got.rootCertPem, winner.root.certPem);
  got.pool.close();
});

test(
  'the next renewal is never in the past: a due certificate that cannot be renewed ' +
    'is retried a minute later; a workload nobody asks for again is dropped',
  () => {
    const clock = { t: T0 };
    const m = manager(clock);
    const ca = cr('team-ca', 'csr:\n  subject: CN=Team CA\n  ca: true\n  duration: 30 days');
    const leafCr = cr(
      'leaf',
      'autoRenew: true\ncsr:\n  issuer: default/team-ca\n  hosts: [l.oto.tools]\n  duration: 3 days',
    );
    const first = buildModel(view(ca + leafCr), { now: clock.t });
    assert.equal(m.materialize(first).nextRenewalAt, T0 + 2 * DAY);
    // the issuer disappears, and the leaf becomes due: its renewal fails
    clock.t = T0 + 2.5 * DAY;
    const b = buildModel(view(leafCr), { now: clock.t });
    const r = m.materialize(b);
    assert.equal(statusOf(b, 'leaf').state, 'invalid');
    assert.equal(r.nextRenewalAt, clock.t + 60_000);
    // a workload certificate: scheduled while fresh, forgotten once due and not asked for again
    const w = m.workload('spiffe://cluster.local/ns/a/sa/b');
    assert.ok(w);
    assert.equal(m.materialize(buildModel(view(''), { now: clock.t })).nextRenewalAt, w.renewAt);
    clock.t = w.renewAt + 1;
    assert.equal(m.materialize(buildModel(view(''), { now: clock.t })).nextRenewalAt, undefined);
  },
);
