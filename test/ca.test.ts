// The mesh CA (issue 5): certificates checked by independent implementations (openssl, Node's
// X509Certificate, a real node:tls mTLS handshake).
import { test } from 'vitest';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { X509Certificate, createPrivateKey, generateKeyPairSync } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { inspect } from 'node:util';
import {
  CertificateAuthority,
  FileCaStore,
  MemoryCaStore,
  CA_FILES,
  INTERMEDIATE_CA_DN,
  ROOT_CA_DN,
  RsaKeyPool,
  dnEquals,
  dueForRenewal,
  formatDn,
  parseDn,
  parseDurationMs,
  renewAt,
  spiffeIdFor,
  type IssueResult,
  type IssuedCert,
} from '../src/ca/index.js';
import * as der from '../src/ca/der.js';

const NOW = Date.now();
const DAY = 86_400_000;
const ca = CertificateAuthority.create({ now: NOW });
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'oxds-ca-'));
process.on('exit', () => fs.rmSync(tmp, { recursive: true, force: true }));

function ok(r: IssueResult): IssuedCert {
  if (!r.ok) assert.fail(`issue failed: ${r.error.code} ${r.error.message}`);
  return r.cert;
}
let fileN = 0;
function file(text: string): string {
  const f = path.join(tmp, `f${fileN++}.pem`);
  fs.writeFileSync(f, text);
  return f;
}
function openssl(...args: string[]): { status: number | null; out: string } {
  const r = spawnSync('openssl', args, { encoding: 'utf8' });
  return { status: r.status, out: r.stdout + r.stderr };
}
function verify(
  leafPem: string,
  root = ca.rootCertPem,
  untrusted = ca.intermediateCertPem,
  purpose?: string,
): { status: number | null; out: string } {
  return openssl(
    'verify',
    ...(purpose ? ['-purpose', purpose] : []),
    '-CAfile',
    file(root),
    '-untrusted',
    file(untrusted),
    file(leafPem),
  );
}

test('der: lengths, integers, OIDs, times', () => {
  assert.deepEqual([...der.encodeLength(5)], [5]);
  assert.deepEqual([...der.encodeLength(200)], [0x81, 200]);
  assert.deepEqual([...der.encodeLength(300)], [0x82, 1, 44]);
  assert.deepEqual([...der.integer(0)], [2, 1, 0]);
  assert.deepEqual([...der.integer(128)], [2, 2, 0, 128]);
  assert.deepEqual([...der.integer(Buffer.from([0, 0, 5]))], [2, 1, 5]);
  assert.equal(der.oid('1.2.840.10045.4.3.2').toString('hex'), '06082a8648ce3d040302');
  assert.equal(der.decodeOid(der.oid('1.2.840.113549.1.1.11').subarray(2)), '1.2.840.113549.1.1.11');
  assert.equal(
    der
      .x509Time(Date.UTC(2049, 11, 31, 23, 59, 59))
      .toString('latin1')
      .slice(2),
    '491231235959Z',
  );
  assert.equal(
    der
      .x509Time(Date.UTC(2050, 0, 1))
      .toString('latin1')
      .slice(2),
    '20500101000000Z',
  );
  assert.equal(der.x509Time(Date.UTC(2050, 0, 1))[0], der.TAG.GENERALIZED_TIME);
  assert.deepEqual([...der.namedBits([0, 2])], [3, 2, 5, 0xa0]);
  assert.deepEqual([...der.namedBits([5, 6])], [3, 2, 1, 0x06]);
});

test('DN parse / format / equality (§8.3 rules)', () => {
  assert.deepEqual(parseDn('CN=x, O=y'), [
    { type: 'CN', value: 'x' },
    { type: 'O', value: 'y' },
  ]);
  assert.equal(formatDn(parseDn(' cn = a\\, b ,o=Z')), 'CN=a\\, b, O=Z');
  assert.ok(dnEquals('CN=a, O=b', 'o=b,cn=a'));
  assert.ok(dnEquals('sn=x', 'SURNAME=x'));
  assert.ok(!dnEquals('CN=a, O=b', 'CN=A, O=b'), 'values are case-sensitive');
  assert.ok(!dnEquals('CN=a', 'CN=a, O=b'));
  assert.throws(() => parseDn('NOPE=1'));
});

test('durations', () => {
  assert.equal(parseDurationMs('30 days'), 30 * DAY);
  assert.equal(parseDurationMs('24h'), DAY);
  assert.equal(parseDurationMs('1 hour 30 minutes'), 5_400_000);
  assert.equal(parseDurationMs('31536000000'), 365 * DAY);
  assert.equal(parseDurationMs(1000), 1000);
  assert.equal(parseDurationMs('soon'), undefined);
  assert.equal(parseDurationMs(-5), undefined);
});

test('root / intermediate / leaf: openssl verify, openssl -text fields, Node checkIssued/verify', () => {
  const leaf = ok(
    ca.issueSync(
      {
        hosts: ['api.example.com', '*.svc.local', '10.0.0.1', 'spiffe://cluster.local/ns/default/sa/api'],
        client: true,
        duration: '30 days',
        subject: 'CN=api, O=Acme',
      },
      { now: NOW },
    ),
  );
  const v = verify(leaf.certPem, ca.rootCertPem, ca.intermediateCertPem, 'sslserver');
  assert.equal(v.status, 0, v.out);
  assert.match(v.out, /: OK/);
  assert.equal(verify(leaf.certPem, ca.rootCertPem, ca.intermediateCertPem, 'sslclient').status, 0);
  // intermediate verified against the root alone
  assert.equal(openssl('verify', '-CAfile', file(ca.rootCertPem), file(ca.intermediateCertPem)).status, 0);

  const text = openssl('x509', '-noout', '-text', '-in', file(leaf.certPem)).out;
  assert.match(text, /DNS:api\.example\.com/);
  assert.match(text, /DNS:\*\.svc\.local/);
  assert.match(text, /IP Address:10\.0\.0\.1/);
  assert.match(text, /URI:spiffe:\/\/cluster\.local\/ns\/default\/sa\/api/);
  assert.match(text, /TLS Web Server Authentication, TLS Web Client Authentication/);
  assert.match(text, /X509v3 Key Usage: critical\s+Digital Signature, Key Encipherment/);
  assert.match(text, /X509v3 Basic Constraints: critical\s+CA:FALSE/);
  assert.match(text, /Signature Algorithm: ecdsa-with-SHA256/);
  assert.match(text, /Subject: CN = api, O = Acme/);
  assert.match(
    text,
    /Issuer: CN = Otoroshi Default Intermediate CA Certificate, OU = Otoroshi Certificates, O = Otoroshi/,
  );
  assert.match(text, /Subject Key Identifier/);
  assert.match(text, /Authority Key Identifier/);

  const x = new X509Certificate(leaf.certPem);
  const int = new X509Certificate(ca.intermediateCertPem);
  const root = new X509Certificate(ca.rootCertPem);
  assert.ok(x.checkIssued(int));
  assert.ok(x.verify(int.publicKey));
  assert.ok(int.checkIssued(root) && int.verify(root.publicKey));
  assert.ok(root.verify(root.publicKey));
  assert.equal(Date.parse(x.validFrom), Math.floor(NOW / 1000) * 1000);
  assert.equal(Date.parse(x.validTo), Math.floor((NOW + 30 * DAY) / 1000) * 1000);
  assert.equal(leaf.notAfter - leaf.notBefore, 30 * DAY);
  assert.equal(x.serialNumber.toLowerCase().replace(/^0+/, ''), leaf.serialHex.replace(/^0+/, ''));
  assert.ok(leaf.serialHex.length >= 16);
  assert.ok(x.checkPrivateKey(createPrivateKey(leaf.keyPem)));
  // chain per Otoroshi §8.3 step 4: leaf, intermediate, root
  assert.deepEqual(
    der.fromPem(leaf.chainPem, 'CERTIFICATE').map((d) => new X509Certificate(d).subject.split('\n')[0]),
    ['CN=api', 'CN=Otoroshi Default Intermediate CA Certificate', 'CN=Otoroshi Default Root CA Certificate'],
  );
  // root and intermediate
  const rootText = openssl('x509', '-noout', '-text', '-in', file(ca.rootCertPem)).out;
  assert.match(
    rootText,
    /Subject: CN = Otoroshi Default Root CA Certificate, OU = Otoroshi Certificates, O = Otoroshi/,
  );
  assert.match(rootText, /CA:TRUE/);
  assert.match(rootText, /Certificate Sign, CRL Sign/);
  assert.ok(Date.parse(root.validTo) - NOW > 9.9 * 365 * DAY);
});

test('server-only EKU by default; default subject CN = first DNS host; defaults ECDSA P-256, 365 days', () => {
  const c = ok(ca.issueSync({ hosts: ['www.example.org'] }, { now: NOW }));
  const x = new X509Certificate(c.certPem);
  assert.equal(x.subject, 'CN=www.example.org');
  assert.equal(x.publicKey.asymmetricKeyType, 'ec');
  assert.equal(x.publicKey.asymmetricKeyDetails?.namedCurve, 'prime256v1');
  assert.equal(c.notAfter - c.notBefore, 365 * DAY);
  const text = openssl('x509', '-noout', '-text', '-in', file(c.certPem)).out;
  assert.match(text, /TLS Web Server Authentication\n/);
  assert.doesNotMatch(text, /Client Authentication/);
  assert.equal(verify(c.certPem, ca.rootCertPem, ca.intermediateCertPem, 'sslclient').status === 0, false);
  // P-384 leaf, SHA-384 digest requested
  const p384 = ok(
    ca.issueSync({ hosts: ['a.b'], key: { algo: 'ecdsa', size: 384 }, signatureAlg: 'SHA384WithECDSA' }, { now: NOW }),
  );
  const t384 = openssl('x509', '-noout', '-text', '-in', file(p384.certPem)).out;
  assert.match(t384, /secp384r1|P-384/);
  assert.match(t384, /ecdsa-with-SHA384/);
  assert.equal(verify(p384.certPem).status, 0);
});

test('workload certificate: SPIFFE URI SAN, empty subject (SAN critical), 24 h, client+server', () => {
  const id = spiffeIdFor('cluster.local', 'shop', 'cart');
  assert.equal(id, 'spiffe://cluster.local/ns/shop/sa/cart');
  const w = ok(ca.workload(id, { now: NOW }));
  assert.equal(w.notAfter - w.notBefore, DAY);
  assert.deepEqual(w.sans, [`URI:${id}`]);
  const text = openssl('x509', '-noout', '-text', '-in', file(w.certPem)).out;
  assert.match(text, /X509v3 Subject Alternative Name: critical\s+URI:spiffe:\/\/cluster\.local\/ns\/shop\/sa\/cart/);
  assert.equal(verify(w.certPem, ca.rootCertPem, ca.intermediateCertPem, 'sslclient').status, 0);
  assert.ok(w.renewAt > w.notBefore + DAY * 0.55 && w.renewAt < w.notBefore + DAY * 0.78);
  const bad = ca.workload('http://nope', { now: NOW });
  assert.equal(bad.ok, false);
});

test('issuer: by id, by DN (set/case rules), root; unknown issuer is an error, never self-signed', () => {
  const byId = ok(ca.issueSync({ hosts: ['a.example'], issuer: 'otoroshi-root-ca' }, { now: NOW }));
  assert.ok(new X509Certificate(byId.certPem).checkIssued(new X509Certificate(ca.rootCertPem)));
  assert.equal(byId.issuerId, 'otoroshi-root-ca');
  assert.equal(openssl('verify', '-CAfile', file(ca.rootCertPem), file(byId.certPem)).status, 0);
  assert.equal(der.fromPem(byId.chainPem, 'CERTIFICATE').length, 2);

  const byDn = ok(
    ca.issueSync(
      {
        hosts: ['b.example'],
        issuer: 'o=Otoroshi, ou=Otoroshi Certificates, cn=Otoroshi Default Intermediate CA Certificate',
      },
      { now: NOW },
    ),
  );
  assert.equal(byDn.issuerId, 'otoroshi-intermediate-ca');
  assert.equal(verify(byDn.certPem).status, 0);
  assert.ok(dnEquals(ROOT_CA_DN, ca.rootDn) && dnEquals(INTERMEDIATE_CA_DN, ca.intermediateDn));

  for (const issuer of [
    'CN=Otoroshi Root',
    'some-other-ca',
    'CN=otoroshi default intermediate ca certificate, OU=Otoroshi Certificates, O=Otoroshi',
  ]) {
    const r = ca.issueSync({ hosts: ['c.example'], issuer }, { now: NOW });
    assert.equal(r.ok, false, issuer);
    if (!r.ok) {
      assert.equal(r.error.code, 'OXDS_UNRESOLVED_REFERENCE');
      assert.equal(r.error.field, 'spec.csr.issuer');
      assert.equal(r.error.severity, 'error');
    }
  }
  // invalid csr fields are errors with a field path
  const r1 = ca.issueSync({ hosts: ['x'], duration: 'forever' }, { now: NOW });
  assert.ok(!r1.ok && r1.error.field === 'spec.csr.duration');
  const r2 = ca.issueSync({}, { now: NOW });
  assert.ok(!r2.ok && r2.error.code === 'OXDS_MISSING_FIELD');
  const r3 = ca.issueSync({ hosts: ['x'], key: { algo: 'dsa' } }, { now: NOW });
  assert.ok(!r3.ok && r3.error.field === 'spec.csr.key.algo');
});

test('a ca:true certificate can itself issue (by material, by id, by DN)', () => {
  const sub = ok(ca.issueSync({ subject: 'CN=Team CA, O=Acme', ca: true, duration: '365 days' }, { now: NOW }));
  const subText = openssl('x509', '-noout', '-text', '-in', file(sub.certPem)).out;
  assert.match(subText, /CA:TRUE/);
  assert.match(subText, /Certificate Sign, CRL Sign/);
  const material = {
    id: 'kubernetes-crd-import-default-team-ca',
    certPem: sub.certPem,
    keyPem: sub.keyPem,
    chainPem: sub.chainPem,
  };
  const leaves = [
    ok(ca.issueSync({ hosts: ['team.example'] }, { now: NOW, issuer: sub })),
    ok(ca.issueSync({ hosts: ['team.example'], issuer: material.id }, { now: NOW, issuers: [material] })),
    ok(
      ca.issueSync(
        { hosts: ['team.example'], issuer: 'team' },
        { now: NOW, issuers: (ref) => (ref === 'team' ? material : undefined) },
      ),
    ),
  ];
  // the resolver-function form: unknown → error
  const viaFn = ca.issueSync(
    { hosts: ['team.example'], issuer: 'O=Acme, CN=Team CA' },
    { now: NOW, issuers: () => undefined },
  );
  assert.equal(viaFn.ok, false);
  const byDn = ok(
    ca.issueSync({ hosts: ['team.example'], issuer: 'O=Acme, CN=Team CA' }, { now: NOW, issuers: [material] }),
  );
  for (const leaf of [...leaves, byDn]) {
    const x = new X509Certificate(leaf.certPem);
    assert.ok(x.checkIssued(new X509Certificate(sub.certPem)) && x.verify(new X509Certificate(sub.certPem).publicKey));
    // chain: leaf, team CA, intermediate, root; verifiable by openssl with the chain as untrusted
    assert.equal(der.fromPem(leaf.chainPem, 'CERTIFICATE').length, 4);
    const r = verify(leaf.certPem, ca.rootCertPem, sub.certPem + ca.intermediateCertPem);
    assert.equal(r.status, 0, r.out);
  }
  // a non-CA certificate cannot issue
  const notCa = ok(ca.issueSync({ hosts: ['leaf.example'] }, { now: NOW }));
  const r = ca.issueSync({ hosts: ['z.example'] }, { now: NOW, issuer: notCa });
  assert.ok(!r.ok && /not a CA/.test(r.error.message));
});

test('RSA 2048 via the key pool (generated off the event loop)', async () => {
  const pool = new RsaKeyPool({ target: { 2048: 1, 3072: 0 } });
  const rsaCa = CertificateAuthority.fromMaterial(ca.material(), { pool });
  const c = ok(
    await rsaCa.issue(
      { hosts: ['rsa.example'], key: { algo: 'rsa', size: 2048 }, signatureAlg: 'SHA256WithRSAEncryption' },
      { now: NOW },
    ),
  );
  pool.close();
  const x = new X509Certificate(c.certPem);
  assert.equal(x.publicKey.asymmetricKeyType, 'rsa');
  assert.equal(x.publicKey.asymmetricKeyDetails?.modulusLength, 2048);
  assert.ok(x.checkPrivateKey(createPrivateKey(c.keyPem)));
  assert.equal(verify(c.certPem).status, 0);
  assert.match(openssl('x509', '-noout', '-text', '-in', file(c.certPem)).out, /Public-Key: \(2048 bit\)/);
  // issueSync without a ready key: an error, not a blocking generation
  const empty = CertificateAuthority.fromMaterial(ca.material(), {
    pool: new RsaKeyPool({ target: { 2048: 0, 3072: 0 } }),
  });
  const r = empty.issueSync({ hosts: ['x'], key: { algo: 'rsa', size: 2048 } }, { now: NOW });
  assert.ok(!r.ok);
  const r2 = await empty.issue({ hosts: ['x'], key: { algo: 'rsa', size: 1024 } }, { now: NOW });
  assert.ok(!r2.ok && r2.error.field === 'spec.csr.key.size');
});

test('an RSA issuer (ca:true cert with an RSA key) signs with sha256WithRSAEncryption', () => {
  // build an RSA intermediate signed by our root through a ca:true csr with a provided RSA key
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const sub = ok(ca.issueSync({ subject: 'CN=RSA Sub CA', ca: true }, { now: NOW, key: privateKey }));
  const leaf = ok(ca.issueSync({ hosts: ['r.example'] }, { now: NOW, issuer: sub }));
  assert.match(
    openssl('x509', '-noout', '-text', '-in', file(leaf.certPem)).out,
    /Signature Algorithm: sha256WithRSAEncryption/,
  );
  assert.equal(verify(leaf.certPem, ca.rootCertPem, sub.certPem + ca.intermediateCertPem).status, 0);
});

async function handshake(
  server: { key: string; cert: string },
  client: { key: string; cert: string },
  trust: string,
): Promise<{ ok: boolean; serverError?: string; data?: string }> {
  return new Promise((resolve) => {
    let serverError: string | undefined;
    const srv = tls.createServer(
      { key: server.key, cert: server.cert, ca: trust, requestCert: true, rejectUnauthorized: true },
      (s) => {
        s.end('hello ' + (s.getPeerCertificate().subjectaltname ?? ''));
      },
    );
    srv.on('tlsClientError', (e) => (serverError = e.message));
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port;
      let data = '';
      const c = tls.connect({
        host: '127.0.0.1',
        port,
        servername: 'localhost',
        ca: trust,
        key: client.key,
        cert: client.cert,
      });
      const done = (ok: boolean): void => {
        c.destroy();
        srv.close();
        resolve(serverError === undefined ? { ok, data } : { ok, serverError, data });
      };
      c.on('data', (d: Buffer) => (data += d.toString()));
      c.on('end', () => done(data.startsWith('hello')));
      c.on('error', () => setTimeout(() => done(false), 20));
    });
  });
}

test('real mTLS handshake on 127.0.0.1 with certificates from the CA; a foreign client cert is refused', async () => {
  const server = ok(ca.issueSync({ hosts: ['localhost', '127.0.0.1'] }, { now: Date.now() }));
  const client = ok(ca.workload('spiffe://cluster.local/ns/shop/sa/cart', { now: Date.now() }));
  const good = await handshake(
    { key: server.keyPem, cert: server.chainPem },
    { key: client.keyPem, cert: client.chainPem },
    ca.trustBundlePem,
  );
  assert.equal(good.ok, true, JSON.stringify(good));
  assert.match(good.data ?? '', /URI:spiffe:\/\/cluster\.local\/ns\/shop\/sa\/cart/);

  const other = CertificateAuthority.create();
  assert.notEqual(other.rootFingerprint, ca.rootFingerprint);
  const foreign = ok(other.workload('spiffe://cluster.local/ns/shop/sa/cart', { now: Date.now() }));
  const bad = await handshake(
    { key: server.keyPem, cert: server.chainPem },
    { key: foreign.keyPem, cert: foreign.chainPem },
    ca.trustBundlePem,
  );
  assert.equal(bad.ok, false);
  assert.ok(bad.serverError !== undefined, 'the server rejected the client certificate');
});

test('FileCaStore: 0600 files, reload gives the same CA; loadOrCreate creates once', async () => {
  const dir = path.join(tmp, 'data', 'ca');
  const a = await CertificateAuthority.loadOrCreate(new FileCaStore(dir));
  for (const f of Object.values(CA_FILES)) {
    const st = fs.statSync(path.join(dir, f));
    assert.equal(st.mode & 0o777, 0o600, f);
  }
  assert.equal(fs.statSync(dir).mode & 0o777, 0o700);
  assert.deepEqual(fs.readdirSync(dir).sort(), Object.values(CA_FILES).sort(), 'no temp files left');
  const b = await CertificateAuthority.loadOrCreate(new FileCaStore(dir));
  assert.equal(b.rootFingerprint, a.rootFingerprint);
  assert.equal(b.intermediateCertPem, a.intermediateCertPem);
  const leaf = ok(b.issueSync({ hosts: ['x.example'] }, { now: NOW }));
  assert.equal(verify(leaf.certPem, a.rootCertPem, a.intermediateCertPem).status, 0);
  // partial material is an error, never a silently regenerated root
  fs.unlinkSync(path.join(dir, CA_FILES.intermediateKey));
  await assert.rejects(CertificateAuthority.loadOrCreate(new FileCaStore(dir)), /incomplete CA material/);
  // memory store
  const mem = new MemoryCaStore();
  const m1 = await CertificateAuthority.loadOrCreate(mem);
  const m2 = await CertificateAuthority.loadOrCreate(mem);
  assert.equal(mem.saves, 1);
  assert.equal(m1.rootFingerprint, m2.rootFingerprint);
});

test('fromPem (user-provided CA), validation errors carry no key material', () => {
  const m = ca.material();
  const fromPem = CertificateAuthority.fromPem(m.root.certPem, m.intermediate.certPem, m.intermediate.keyPem);
  const leaf = ok(fromPem.issueSync({ hosts: ['p.example'] }, { now: NOW }));
  assert.equal(verify(leaf.certPem).status, 0);
  // no root key: naming the root as issuer is an error
  const r = fromPem.issueSync({ hosts: ['p.example'], issuer: 'otoroshi-root-ca' }, { now: NOW });
  assert.ok(!r.ok && /root CA key is not available/.test(r.error.message));
  // mismatched key / wrong root
  const other = CertificateAuthority.create().material();
  const keyBody = (other.intermediate.keyPem.split('\n')[1] ?? '').slice(0, 20);
  for (const f of [
    () => CertificateAuthority.fromPem(m.root.certPem, m.intermediate.certPem, other.intermediate.keyPem),
    () => CertificateAuthority.fromPem(other.root.certPem, m.intermediate.certPem, m.intermediate.keyPem),
    () =>
      CertificateAuthority.fromPem(
        m.root.certPem,
        m.intermediate.certPem,
        other.intermediate.keyPem.replace('PRIVATE', 'GARBAGE'),
      ),
  ]) {
    assert.throws(f, (e: Error) => !e.message.includes(keyBody) && !e.message.includes('PRIVATE KEY'));
  }
  // keys are not visible through JSON / inspect
  const s = JSON.stringify(ca) + inspect(ca, { showHidden: true, depth: 5 });
  assert.doesNotMatch(s, /PRIVATE KEY/);
});

test('renewal maths', () => {
  const nb = 1_000_000;
  const na = nb + 3 * DAY;
  assert.equal(renewAt(nb, na, 0), nb + 2 * DAY);
  assert.equal(
    renewAt(nb, na, 0.1, () => 0.5),
    nb + 2 * DAY,
  );
  assert.equal(
    renewAt(nb, na, 0.1, () => 0),
    nb + 2 * DAY - 0.3 * DAY,
  );
  assert.ok(renewAt(nb, na, 0.1, () => 0.999999) <= nb + 2 * DAY + 0.3 * DAY);
  // never later than notAfter − 5 min, never before notBefore
  assert.equal(
    renewAt(nb, nb + 6 * 60_000, 0.5, () => 0.99),
    nb + 60_000,
  );
  assert.equal(renewAt(nb, nb + 60_000, 0), nb);
  assert.equal(
    renewAt(nb, na, 2, () => 0),
    nb,
  );
  assert.ok(!dueForRenewal({ notBefore: nb, notAfter: na }, nb + 2 * DAY - 1));
  assert.ok(dueForRenewal({ notBefore: nb, notAfter: na }, nb + 2 * DAY));
  assert.ok(dueForRenewal({ notBefore: nb, notAfter: na, renewAt: nb + DAY }, nb + DAY));
  // renewal keeps the key (opts.key) like Otoroshi's Cert.renew
  const first = ok(ca.issueSync({ hosts: ['renew.example'] }, { now: NOW }));
  const again = ok(ca.issueSync({ hosts: ['renew.example'] }, { now: NOW + DAY, key: createPrivateKey(first.keyPem) }));
  assert.equal(
    new X509Certificate(again.certPem).publicKey.export({ type: 'spki', format: 'pem' }),
    new X509Certificate(first.certPem).publicKey.export({ type: 'spki', format: 'pem' }),
  );
  assert.notEqual(again.serialHex, first.serialHex);
});

test('issueMany yields to the event loop', async () => {
  const reqs = Array.from({ length: 300 }, (_, i) => ({
    hosts: [`spiffe://cluster.local/ns/n/sa/s${i}`],
    client: true,
    duration: '24h',
  }));
  let ticks = 0;
  const t = setInterval(() => ticks++, 0);
  const res = await ca.issueMany(reqs, { now: NOW, batch: 50 });
  clearInterval(t);
  assert.equal(res.length, 300);
  assert.ok(res.every((r) => r.ok));
  assert.ok(ticks >= 3, `timers ran during issuance (${ticks})`);
});
