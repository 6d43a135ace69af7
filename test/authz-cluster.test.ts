// The generated oxds-ext-authz cluster from the flags: replicas (--envoy-authz-address list), TLS
// (--authz-tls-* with --envoy-authz-ca / --envoy-authz-sni). Through Envoy: test/envoy/authz-replicas.test.ts.
import { test } from 'vitest';
import assert from 'node:assert/strict';
import { parseAuthzAddresses, resolveConfig, translateOptionsFrom } from '../src/config.js';
import { extAuthzCluster, extAuthzFilter } from '../src/xds/resources/ext-authz.js';

/** Generated protos as plain JSON, for reading nested fields. */
type Json = any;

test('parseAuthzAddresses: hosts, ports, IPv6, errors naming the entry', () => {
  assert.deepEqual(parseAuthzAddresses('a.svc, 10.0.0.2:9, [::1]:7, ::1', 18001), [
    { address: 'a.svc', port: 18001 },
    { address: '10.0.0.2', port: 9 },
    { address: '::1', port: 7 },
    { address: '::1', port: 18001 },
  ]);
  assert.match(String(parseAuthzAddresses('a:99999', 1)), /"a:99999" is not HOST\[:PORT\]/);
  assert.match(String(parseAuthzAddresses(' , ', 1)), /expected HOST/);
  const bad = resolveConfig({ envoyAuthzAddress: 'ok:1,bad host' }, {});
  assert.ok(!bad.ok && bad.errors.some((e) => e.startsWith('--envoy-authz-address: "bad host"')));
  const noTls = resolveConfig({ envoyAuthzCa: 'ca.pem' }, {});
  assert.ok(!noTls.ok && noTls.errors.some((e) => /--envoy-authz-ca needs --authz-tls-cert/.test(e)));
});

function configOf(flags: Record<string, unknown>): Parameters<typeof translateOptionsFrom>[0] {
  const r = resolveConfig(flags, {});
  assert.ok(r.ok, r.ok ? '' : r.errors.join());
  return r.value;
}

test('one address: a STATIC cluster of one endpoint, no retries, no outlier detection, plaintext', () => {
  const a = translateOptionsFrom(configOf({}), 18001).authz!;
  const c = extAuthzCluster('oxds-ext-authz', a) as Json;
  assert.equal(c.type, 'STATIC');
  assert.equal(c.outlierDetection, undefined);
  assert.equal(c.transportSocket, undefined);
  assert.equal((extAuthzFilter('oxds-ext-authz', a).typedConfig as Json).grpcService.envoyGrpc.retryPolicy, undefined);
});

test('several replicas: every one an endpoint (names → STRICT_DNS), retries on another, outlier ejection', () => {
  const a = translateOptionsFrom(
    configOf({ envoyAuthzAddress: '10.0.0.1,authz-1.svc:9000,10.0.0.3:9001', envoyAuthzPort: 18002 }),
    18001,
  ).authz!;
  const c = extAuthzCluster('oxds-ext-authz', a) as Json;
  assert.equal(c.type, 'STRICT_DNS');
  const eps = (c.loadAssignment.endpoints[0].lbEndpoints as Json[]).map(
    (e: Json) => `${e.endpoint.address.socketAddress.address}:${e.endpoint.address.socketAddress.portValue}`,
  );
  assert.deepEqual(eps, ['10.0.0.1:18002', 'authz-1.svc:9000', '10.0.0.3:9001']);
  assert.deepEqual(c.outlierDetection.consecutive_5xx, { value: 3 });
  const rp = (extAuthzFilter('oxds-ext-authz', a).typedConfig as Json).grpcService.envoyGrpc.retryPolicy;
  assert.deepEqual(rp.numRetries, { value: 2 });
  assert.match(rp.retryOn, /connect-failure/);
});

test('TLS: CA inlined, SNI and DNS SAN from the first name (or --envoy-authz-sni); IP SANs for IP replicas', () => {
  const flags = { authzTlsCert: 'c.pem', authzTlsKey: 'k.pem' };
  const byName = extAuthzCluster(
    'x',
    translateOptionsFrom(configOf({ ...flags, envoyAuthzAddress: 'authz.svc' }), 1, 'PEM').authz!,
  ) as Json;
  const tls = byName.transportSocket.typedConfig;
  assert.equal(tls.sni, 'authz.svc');
  assert.deepEqual(tls.commonTlsContext.alpnProtocols, ['h2']);
  assert.equal(tls.commonTlsContext.validationContext.trustedCa.inlineString, 'PEM');
  assert.deepEqual(tls.commonTlsContext.validationContext.matchTypedSubjectAltNames, [
    { sanType: 'DNS', matcher: { exact: 'authz.svc' } },
  ]);
  const byIp = (
    extAuthzCluster(
      'x',
      translateOptionsFrom(configOf({ ...flags, envoyAuthzAddress: '10.0.0.1,10.0.0.2' }), 1, 'PEM').authz!,
    ) as Json
  ).transportSocket.typedConfig;
  assert.equal(byIp.sni, undefined);
  assert.deepEqual(
    byIp.commonTlsContext.validationContext.matchTypedSubjectAltNames.map((s: Json) => s.matcher.exact),
    ['10.0.0.1', '10.0.0.2'],
  );
  const sni = (
    extAuthzCluster(
      'x',
      translateOptionsFrom(
        configOf({ ...flags, envoyAuthzAddress: '10.0.0.1', envoyAuthzSni: 'authz.internal' }),
        1,
        'PEM',
      ).authz!,
    ) as Json
  ).transportSocket.typedConfig;
  assert.equal(sni.sni, 'authz.internal');
});
