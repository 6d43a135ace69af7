// The validating admission webhook's verdicts (reviewAdmission, pure) and its HTTPS server
// (bounded body, 400 on malformed reviews). The real API server calling it: kube-real-controller.
import { test } from 'vitest';
import assert from 'node:assert/strict';
import https from 'node:https';
import { CertificateAuthority } from '../src/ca/ca.js';
import { MAX_REVIEW_BYTES, reviewAdmission, startWebhookServer } from '../src/k8s/webhook.js';
import type { ConfigView, KubeObject, StoredObject } from '../src/model/types.js';
import { objectKey } from '../src/model/ids.js';

const SD = 'proxy.otoroshi.io/v1alpha1';
const sd = (name: string, spec: Record<string, unknown>): KubeObject =>
  ({
    apiVersion: SD,
    kind: 'ServiceDescriptor',
    metadata: { name, namespace: 'default' },
    spec: { targets: [{ url: 'http://127.0.0.1:1' }], ...spec },
  }) as KubeObject;
const viewOf = (...objects: KubeObject[]): ConfigView => ({
  objects: objects.map((object, i): StoredObject => ({
    key: objectKey(object),
    object: { ...object, metadata: { ...object.metadata, creationTimestamp: '2026-01-01T00:00:00Z' } },
    origin: { seq: i + 1 },
  })),
  loadErrors: [],
});
const review = (object: unknown, operation = 'CREATE'): unknown => ({
  apiVersion: 'admission.k8s.io/v1',
  kind: 'AdmissionReview',
  request: { uid: 'u-1', operation, namespace: 'default', object },
});

function verdict(
  body: unknown,
  view: ConfigView = viewOf(),
): { allowed: boolean; message: string; warnings: string[] } {
  const r = reviewAdmission(body, view, {});
  assert.ok(r.ok, r.ok ? '' : r.error);
  assert.equal(r.review.response.uid, 'u-1');
  return {
    allowed: r.review.response.allowed,
    message: r.review.response.status?.message ?? '',
    warnings: r.review.response.warnings ?? [],
  };
}

test(
  'webhook: a valid descriptor is allowed; an invalid regex, an unknown ' +
    'JwtVerifier and a host+path conflict are denied with the validate lines',
  () => {
    assert.equal(verdict(review(sd('ok', { hosts: ['ok.oto.tools'] }))).allowed, true);
    const regex = verdict(review(sd('re', { hosts: ['re.oto.tools'], publicPatterns: ['(a'] })));
    assert.equal(regex.allowed, false);
    assert.match(
      regex.message,
      new RegExp(
        '^otoroshi-xds: error OXDS_INVALID_REGEX - ServiceDescriptor default/re ' +
          'spec\\.publicPatterns\\[0\\]: invalid RE2 regex',
      ),
    );
    const jwt = verdict(
      review(sd('jwt', { hosts: ['jwt.oto.tools'], jwtVerifier: { type: 'ref', enabled: true, ids: ['nope'] } })),
    );
    assert.equal(jwt.allowed, false);
    assert.match(jwt.message, /OXDS_UNRESOLVED_REFERENCE .*spec\.jwtVerifier\.ids\[0\]: JwtVerifier "nope" not found/);
    const stored = viewOf(sd('first', { hosts: ['shared.oto.tools'] }));
    const conflict = verdict(review(sd('second', { hosts: ['shared.oto.tools'] })), stored);
    assert.equal(conflict.allowed, false);
    assert.match(conflict.message, /OXDS_ROUTE_CONFLICT/);
    // updating the stored object itself is no conflict with its old version
    assert.equal(
      verdict(review(sd('first', { hosts: ['shared.oto.tools'], description: 'x' }), 'UPDATE'), stored).allowed,
      true,
    );
    // a verifier that exists resolves
    const verifier = {
      apiVersion: SD,
      kind: 'JwtVerifier',
      metadata: { name: 'v', namespace: 'default' },
      spec: {
        source: { type: 'InHeader', name: 'jwt' },
        algoSettings: { type: 'HSAlgoSettings', size: 256, secret: 's' },
        strategy: { type: 'PassThrough' },
      },
    } as KubeObject;
    assert.equal(
      verdict(
        review(sd('jwt', { hosts: ['jwt.oto.tools'], jwtVerifier: { type: 'ref', enabled: true, ids: ['v'] } })),
        viewOf(verifier),
      ).allowed,
      true,
    );
  },
);

test('webhook: deletes and other kinds are allowed; malformed reviews name the field', () => {
  assert.equal(verdict(review(sd('x', { hosts: ['x'], publicPatterns: ['('] }), 'DELETE')).allowed, true);
  assert.equal(verdict(review({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'c' } })).allowed, true);
  for (const [body, field] of [
    [null, 'body'],
    [{ kind: 'Nope' }, 'kind'],
    [{ kind: 'AdmissionReview' }, 'request'],
    [{ kind: 'AdmissionReview', request: { uid: '' } }, 'request.uid'],
    [
      { kind: 'AdmissionReview', request: { uid: 'u', operation: 'CREATE', object: { kind: 'ServiceDescriptor' } } },
      'request.object',
    ],
  ] as const) {
    const r = reviewAdmission(body, viewOf(), {});
    assert.equal(r.ok, false);
    assert.ok(!r.ok && r.error.startsWith(field), !r.ok ? r.error : '');
  }
});

function post(
  port: number,
  ca: string,
  body: string | Buffer,
): Promise<{ status: number; json: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const req = https.request(
      {
        host: '127.0.0.1',
        port,
        path: '/validate',
        method: 'POST',
        ca,
        headers: { 'content-type': 'application/json' },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            json: JSON.parse(Buffer.concat(chunks).toString() || '{}') as Record<string, unknown>,
          }),
        );
      },
    );
    req.on('error', (err) =>
      (err as NodeJS.ErrnoException).code === 'ECONNRESET' || (err as NodeJS.ErrnoException).code === 'EPIPE'
        ? resolve({ status: 413, json: {} })
        : reject(err),
    );
    req.end(body);
  });
}

test(
  'webhook server: HTTPS with a certificate from our CA; 400 on a malformed ' +
    'review, 413 past the size bound, 200 with the verdict',
  async () => {
    const ca = CertificateAuthority.create();
    try {
      const issued = ca.issueSync({ hosts: ['127.0.0.1'], key: { algo: 'ecdsa', size: 256 } }, { now: Date.now() });
      assert.ok(issued.ok);
      const srv = await startWebhookServer({
        host: '127.0.0.1',
        port: 0,
        certPem: issued.cert.chainPem,
        keyPem: issued.cert.keyPem,
        review: (b) => reviewAdmission(b, viewOf(), {}),
      });
      try {
        const ok = await post(srv.port, ca.rootCertPem, JSON.stringify(review(sd('ok', { hosts: ['ok.oto.tools'] }))));
        assert.equal(ok.status, 200);
        assert.equal((ok.json['response'] as { allowed: boolean }).allowed, true);
        const bad = await post(srv.port, ca.rootCertPem, '{not json');
        assert.equal(bad.status, 400);
        assert.match(String(bad.json['error']), /^body: not JSON/);
        const huge = await post(srv.port, ca.rootCertPem, Buffer.alloc(MAX_REVIEW_BYTES + 1024, 0x20));
        assert.equal(huge.status, 413);
      } finally {
        await srv.close();
      }
    } finally {
      ca.pool.close();
    }
  },
);
